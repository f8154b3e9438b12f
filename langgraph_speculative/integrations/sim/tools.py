"""Simulated tools built from function JSON schemas (BFCL or OpenAI format).

:func:`make_simulated_tool` turns one function schema into a LangChain tool (a
:class:`SimulatedTool`, which is a ``StructuredTool``) whose ``args_schema`` is a pydantic
model built with ``pydantic.create_model``. Arguments that do not fit the schema (a wrong
type, a value outside an ``enum``, a missing required parameter, an unknown parameter)
raise ``pydantic.ValidationError`` on invoke, which LangGraph's ``ToolNode`` and this
project's executor turn into an error ``ToolMessage``.

Running a tool sleeps ``latency.tool_ms(name, args)`` milliseconds (``asyncio.sleep`` when
awaited, ``time.sleep`` when invoked synchronously) and returns a deterministic string.
``args`` are the arguments *as the caller gave them* (after validation, without
``None``-valued optionals), so the latency of a call depends only on (name, canonical JSON
of its arguments) and is the same in every benchmark mode and in
``latency.tool_ms(call.name, call.args)`` of a planned call. Every execution is recorded
in an optional :class:`ToolJournal`.

Supported property types: ``string``, ``integer``, ``float``/``number``, ``boolean``,
``array`` (``items`` optional), ``tuple`` (a JSON array), ``dict``/``object`` (a nested
model when it lists ``properties``), ``any`` and ``null``; a list of types is a union and
a missing type means any value; the Java and JavaScript type names of BFCL's records map
onto these (:func:`canonical_type`). ``enum`` becomes a ``Literal``; parameters not in
``required`` are optional (default ``None``; the schema's own ``default`` is only shown to
the model).

Tool names are kept as given, dots included (``spotify.play``). OpenAI's API only accepts
``^[a-zA-Z0-9_-]{1,64}$``; the simulated model does not care, and an application that
sends these tools to a real endpoint can rename them with :func:`openai_safe_name` (which
nothing in this module applies by itself).

Tools are labelled safe/unsafe (``langgraph_speculative.core.safety.label_tool``) by the name
rule of ``BENCHMARKS.md`` section 2 (:func:`is_unsafe_name`), and carry the median of the
latency model's tool latency as a prior in ``metadata["expected_ms"]``.

Example:
    ```python
    from langgraph_speculative.integrations.sim.latency import LatencyModel
    from langgraph_speculative.integrations.sim.tools import ToolJournal, make_simulated_tool

    schema = {
        "name": "spotify.play",
        "description": "Play songs of an artist.",
        "parameters": {
            "type": "dict",
            "properties": {
                "artist": {"type": "string"},
                "duration": {"type": "integer"},
            },
            "required": ["artist"],
        },
    }
    journal = ToolJournal()
    tool = make_simulated_tool(schema, latency=LatencyModel.zero(), journal=journal)
    out = tool.invoke({"artist": "Taylor Swift", "duration": 20})
    assert out == tool.invoke({"duration": 20, "artist": "Taylor Swift"})
    assert journal.count("spotify.play", {"artist": "Taylor Swift", "duration": 20}) == 2
    ```
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import keyword
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union

from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.tools.base import ArgsSchema
from pydantic import BaseModel, ConfigDict, Field, create_model

from langgraph_speculative.core.ledger import canonical_json
from langgraph_speculative.core.safety import label_tool
from langgraph_speculative.errors import DataFormatError
from langgraph_speculative.integrations.sim.latency import LatencyModel

__all__ = [
    "UNSAFE_NAME_PATTERN",
    "JournalEntry",
    "ResultFn",
    "SimulatedTool",
    "ToolJournal",
    "canonical_type",
    "default_result",
    "expected_tool_ms",
    "function_name",
    "is_unsafe_name",
    "make_simulated_tool",
    "make_simulated_tools",
    "openai_safe_name",
]

UNSAFE_NAME_PATTERN = re.compile(
    r"send|post|book|buy|pay|order|delete|remove|create|update|set|transfer|play|cancel",
    re.IGNORECASE,
)
"""Names matching this (anywhere, case-insensitive) are unsafe (``BENCHMARKS.md`` sec. 2)."""

ResultFn = Callable[[str, Mapping[str, Any]], str]
"""A result function: ``(tool name, arguments) -> tool output text``."""

_sleep = time.sleep  # module-level so tests can observe the delays without sleeping
_async_sleep = asyncio.sleep
_ARGS_KEY = "__simulated_args__"
_CALL_ID_KEY = "__simulated_call_id__"
_OPENAI_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def is_unsafe_name(name: str) -> bool:
    """Tell whether a tool is unsafe by the benchmark's name rule.

    The rule is a plain substring match of :data:`UNSAFE_NAME_PATTERN`, so it is
    conservative (``displayCarStatus`` contains ``play`` and counts as unsafe).

    Args:
        name: The tool name.

    Returns:
        ``True`` if the name contains send, post, book, buy, pay, order, delete, remove,
        create, update, set, transfer, play or cancel (any case).
    """
    return UNSAFE_NAME_PATTERN.search(name) is not None


def openai_safe_name(name: str) -> str:
    """Map a tool name onto OpenAI's allowed alphabet ``^[a-zA-Z0-9_-]{1,64}$``.

    Every other character (for example the dot of ``math.factorial``) becomes ``_`` and
    the result is cut to 64 characters. Distinct names may collide; the caller checks.

    Args:
        name: The original tool name.

    Returns:
        The sanitised name (``"_"`` for an empty name).
    """
    return (_OPENAI_NAME.sub("_", name) or "_")[:64]


def default_result(name: str, args: Mapping[str, Any]) -> str:
    """The deterministic output of a simulated tool.

    Args:
        name: The tool name.
        args: The call's arguments.

    Returns:
        JSON ``{"tool": name, "result": <12 hex digits of sha256(name + canonical args)>}``.
    """
    digest = hashlib.sha256((name + canonical_json(dict(args))).encode()).hexdigest()[:12]
    return json.dumps({"tool": name, "result": digest}, ensure_ascii=False)


def expected_tool_ms(latency: LatencyModel) -> float:
    """Prior expected latency of a tool call: the geometric mean of the latency range.

    This is the median of the log-uniform tool latency (with the same clamping of the
    lower bound as :meth:`LatencyModel.tool_ms`).

    Args:
        latency: The latency model.

    Returns:
        ``sqrt(lo * hi)`` in milliseconds (``hi`` if the range is a single value or zero).
    """
    lo, hi = latency.tool_lo_ms, latency.tool_hi_ms
    if hi <= 0 or lo == hi:
        return hi
    return math.sqrt(max(lo, 1e-3) * hi)


def _drop_none(args: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if v is not None}


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One execution of a simulated tool.

    Attributes:
        tool: Tool name.
        args: Arguments as given by the caller (``None``-valued optionals left out).
        call_id: The ``tool_call_id`` of the ``ToolCall`` the tool was invoked with, or
            ``None`` when it was invoked with plain arguments.
        started_at: ``time.perf_counter()`` when the execution started.
        finished_at: ``time.perf_counter()`` when it finished (or was cancelled).
        completed: ``False`` if the execution was cancelled or failed before returning.
    """

    tool: str
    args: Mapping[str, Any]
    call_id: str | None
    started_at: float
    finished_at: float
    completed: bool = True


class ToolJournal:
    """A thread-safe record of every simulated tool execution.

    Example:
        ```python
        from langgraph_speculative.integrations.sim.tools import ToolJournal

        journal = ToolJournal()
        assert journal.count("get_weather") == 0
        ```
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[JournalEntry] = []

    def record(self, entry: JournalEntry) -> None:
        """Append one execution (thread-safe).

        Args:
            entry: The execution.
        """
        with self._lock:
            self._entries.append(entry)

    @property
    def entries(self) -> tuple[JournalEntry, ...]:
        """Every execution so far, in the order they finished."""
        with self._lock:
            return tuple(self._entries)

    def count(
        self, tool: str, args: Mapping[str, Any] | None = None, *, completed_only: bool = False
    ) -> int:
        """Count executions of ``tool`` (with arguments equal to ``args``, if given).

        Arguments compare by canonical JSON (key order does not matter; ``None`` values
        are ignored, as the tools ignore them).

        Args:
            tool: Tool name.
            args: Arguments to match, or ``None`` to count every execution of ``tool``.
            completed_only: Count only executions that returned (not cancelled ones).

        Returns:
            The number of matching executions.
        """
        key = None if args is None else canonical_json(_drop_none(args))
        return sum(
            1
            for e in self.entries
            if e.tool == tool
            and (key is None or canonical_json(dict(e.args)) == key)
            and (e.completed or not completed_only)
        )

    def reset(self) -> None:
        """Forget every recorded execution."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        """Number of recorded executions."""
        with self._lock:
            return len(self._entries)


class SimulatedTool(StructuredTool):
    """A ``StructuredTool`` that validates arguments but passes them on as given.

    ``args_schema`` validates the input (raising ``pydantic.ValidationError``); the
    function then receives the caller's own values (not pydantic's coerced copies, so
    ``5`` for a float parameter stays ``5``) and the ``tool_call_id``, if any. Build it
    with :func:`make_simulated_tool`.
    """

    @property
    def tool_call_schema(self) -> ArgsSchema:
        """The schema shown to a model: ``args_schema`` itself (original parameter names).

        A simulated tool has no injected arguments, so nothing needs hiding; the stock
        subset model would lose the aliases of parameters such as ``_class``.
        """
        return self.args_schema

    def validate_args(self, tool_input: str | Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``tool_input`` against ``args_schema`` and return the caller's values.

        Args:
            tool_input: A dict of arguments, or a string (a JSON object, or the value of
                the only parameter).

        Returns:
            The arguments as given, ``None`` values left out.

        Raises:
            pydantic.ValidationError: If the arguments do not fit the schema.
        """
        schema = self.args_schema
        assert isinstance(schema, type) and issubclass(schema, BaseModel)
        if isinstance(tool_input, str):
            tool_input = _string_input(schema, tool_input)
        schema.model_validate(tool_input)
        assert isinstance(tool_input, Mapping)
        return copy.deepcopy(_drop_none(tool_input))

    def _to_args_and_kwargs(
        self, tool_input: str | dict[str, Any], tool_call_id: str | None
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        return (), {_ARGS_KEY: self.validate_args(tool_input), _CALL_ID_KEY: tool_call_id}


def _string_input(schema: type[BaseModel], text: str) -> Any:
    fields = list(schema.model_fields.values())
    if len(fields) == 1:
        info = fields[0]
        return {info.alias or next(iter(schema.model_fields)): text}
    try:
        return json.loads(text)
    except ValueError:
        return text  # model_validate reports it


# --- schema -> pydantic -------------------------------------------------------------------

_SCALARS: dict[str, Any] = {
    "string": str,
    "integer": int,
    "float": float,
    "number": float,
    "boolean": bool,
    "any": Any,
    "null": type(None),
}
_ARRAYS = ("array", "tuple")
_OBJECTS = ("dict", "object")
_TYPE_ALIASES: dict[str, str] = {
    # BFCL's Java and JavaScript categories name their parameters' types in those languages.
    "String": "string",
    "char": "string",
    "Character": "string",
    "Boolean": "boolean",
    "int": "integer",
    "Integer": "integer",
    "long": "integer",
    "Long": "integer",
    "short": "integer",
    "byte": "integer",
    "double": "float",
    "Double": "float",
    "Float": "float",
    "Array": "array",
    "ArrayList": "array",
    "List": "array",
    "Set": "array",
    "HashMap": "dict",
    "Map": "dict",
    "Object": "any",
    "": "any",
}


def canonical_type(kind: str) -> str:
    """The JSON-schema type a schema's type name stands for.

    BFCL's Java and JavaScript records name types in those languages (``String``,
    ``HashMap``, ``long``, ``ArrayList``); they map onto ``string``, ``dict``, ``integer``
    and ``array``. Other names are returned unchanged.

    Args:
        kind: The ``type`` of a property schema.

    Returns:
        The type name this module builds a validator for.
    """
    return _TYPE_ALIASES.get(kind, kind)


_MODEL_CONFIG = ConfigDict(extra="forbid", protected_namespaces=())


def function_name(schema: Mapping[str, Any]) -> str:
    """The name of a function schema (plain, or wrapped as ``{"type": "function", ...}``).

    Args:
        schema: The function schema.

    Returns:
        The function name.

    Raises:
        DataFormatError: If the schema has no string name.
    """
    name = _unwrap(schema).get("name")
    if not isinstance(name, str) or not name:
        raise DataFormatError(f"function schema without a name: {str(dict(schema))[:200]}")
    return name


def _unwrap(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    inner = schema.get("function")
    if schema.get("type") == "function" and isinstance(inner, Mapping):
        return inner
    return schema


def _field_name(prop: str, taken: set[str]) -> str:
    ok = (
        prop.isidentifier()
        and not keyword.iskeyword(prop)
        and not prop.startswith("_")
        and not hasattr(BaseModel, prop)
        and prop not in (_ARGS_KEY, _CALL_ID_KEY)
    )
    if ok and prop not in taken:
        return prop
    i = 0
    while f"field_{i}" in taken:
        i += 1
    return f"field_{i}"


class _Builder:
    def __init__(self, fname: str) -> None:
        self.fname = fname

    def fail(self, where: str, why: str) -> DataFormatError:
        return DataFormatError(f"function {self.fname!r}, {where}: {why}")

    def model(self, params: Mapping[str, Any], where: str, title: str) -> type[BaseModel]:
        props = params.get("properties") or {}
        required = params.get("required") or []
        if not isinstance(props, Mapping):
            raise self.fail(where, "'properties' must be an object")
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise self.fail(where, "'required' must be a list of names")
        missing = sorted(set(required) - set(props))
        if missing:
            raise self.fail(where, f"required parameters {missing} are not in 'properties'")
        fields: dict[str, Any] = {}
        for prop, spec in props.items():
            if not isinstance(spec, Mapping):
                raise self.fail(f"{where}.{prop}", "a property schema must be an object")
            ann = self.annotation(spec, f"{where}.{prop}", f"{title}.{prop}")
            extra: dict[str, Any] = {}
            if "default" in spec and _jsonable(spec["default"]):
                extra["json_schema_extra"] = {"default": spec["default"]}
            desc = spec.get("description")
            desc = desc if isinstance(desc, str) else None
            fname = _field_name(prop, set(fields))
            alias = prop if fname != prop else None
            if prop in required:
                info = Field(..., description=desc, alias=alias, **extra)
            else:
                ann = Union[ann, None]  # noqa: UP007 (runtime-built annotation)
                info = Field(default=None, description=desc, alias=alias, **extra)
            fields[fname] = (ann, info)
        model: type[BaseModel] = create_model(title, __config__=_MODEL_CONFIG, **fields)
        return model

    def annotation(self, spec: Mapping[str, Any], where: str, title: str) -> Any:
        enum = spec.get("enum")
        if isinstance(enum, list) and enum and all(_literal_ok(v) for v in enum):
            return Literal[tuple(enum)]
        kind = spec.get("type")
        if isinstance(kind, list):
            if not kind:
                raise self.fail(where, "empty type list")
            parts = [self.annotation({**spec, "type": k}, where, title) for k in kind]
            return Union[tuple(parts)] if len(parts) > 1 else parts[0]  # noqa: UP007
        if kind is None:
            if "properties" in spec:
                return self.model(spec, where, title)
            return Any
        if not isinstance(kind, str):
            raise self.fail(where, f"type must be a string, got {kind!r}")
        kind = canonical_type(kind)
        if kind in _SCALARS:
            return _SCALARS[kind]
        if kind in _ARRAYS:
            items = spec.get("items")
            if isinstance(items, list):  # positional item schemas
                types = [self.annotation(s, f"{where}[{i}]", title) for i, s in enumerate(items)]
                return tuple.__class_getitem__(tuple(types) if types else ())
            item = self.annotation(items, f"{where}[]", title) if items else Any
            if kind == "array":
                return list.__class_getitem__(item)
            return tuple.__class_getitem__((item, ...))
        if kind in _OBJECTS:
            if spec.get("properties"):
                return self.model(spec, where, title)
            return dict[str, Any]
        raise self.fail(where, f"unknown type {kind!r}")


def _literal_ok(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


# --- factories ----------------------------------------------------------------------------


def make_simulated_tool(
    schema: Mapping[str, Any],
    *,
    latency: LatencyModel,
    journal: ToolJournal | None = None,
    result: ResultFn | None = None,
    safe: bool | None = None,
) -> BaseTool:
    """Build a simulated tool from one function schema.

    Args:
        schema: The function schema: ``{"name", "description", "parameters"}`` (BFCL or
            OpenAI), or OpenAI's ``{"type": "function", "function": {...}}`` wrapper.
        latency: The latency model; a call sleeps ``latency.tool_ms(name, args)`` ms.
        journal: Where to record executions (optional).
        result: Output of a call, ``(name, args) -> str`` (default :func:`default_result`).
        safe: The safety label; ``None`` applies :func:`is_unsafe_name`.

    Returns:
        A :class:`SimulatedTool` named exactly as the schema (dots kept), labelled
        safe/unsafe, with ``metadata["expected_ms"]`` set.

    Raises:
        DataFormatError: If the schema has no name, a property has an unknown type, or
            the parameter block is malformed (the message names the function).
    """
    name = function_name(schema)
    body = _unwrap(schema)
    params = body.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise DataFormatError(f"function {name!r}: 'parameters' must be an object")
    builder = _Builder(name)
    kind = params.get("type", "dict")
    if kind not in _OBJECTS:
        raise builder.fail("parameters", f"type must be dict or object, got {kind!r}")
    args_schema = builder.model(params, "parameters", openai_safe_name(name))
    description = body.get("description")
    produce = result or default_result

    def start(args: Mapping[str, Any]) -> tuple[float, float]:
        return latency.tool_ms(name, args) / 1000.0, time.perf_counter()

    def finish(args: Mapping[str, Any], call_id: str | None, t0: float, done: bool) -> None:
        if journal is not None:
            journal.record(JournalEntry(name, args, call_id, t0, time.perf_counter(), done))

    def run_sync(**kwargs: Any) -> str:
        args, call_id = kwargs[_ARGS_KEY], kwargs[_CALL_ID_KEY]
        delay, t0 = start(args)
        done = False
        try:
            if delay > 0:
                _sleep(delay)
            out = produce(name, args)
            done = True
            return out
        finally:
            finish(args, call_id, t0, done)

    async def run_async(**kwargs: Any) -> str:
        args, call_id = kwargs[_ARGS_KEY], kwargs[_CALL_ID_KEY]
        delay, t0 = start(args)
        done = False
        try:
            if delay > 0:
                await _async_sleep(delay)
            out = produce(name, args)
            done = True
            return out
        finally:
            finish(args, call_id, t0, done)

    tool = SimulatedTool(
        name=name,
        description=description if isinstance(description, str) else "",
        args_schema=args_schema,
        func=run_sync,
        coroutine=run_async,
        metadata={"expected_ms": expected_tool_ms(latency)},
    )
    return label_tool(tool, safe=not is_unsafe_name(name) if safe is None else safe)


def make_simulated_tools(
    schemas: Iterable[Mapping[str, Any]],
    *,
    latency: LatencyModel,
    journal: ToolJournal | None = None,
    result: ResultFn | None = None,
) -> list[BaseTool]:
    """Build simulated tools for several function schemas (see :func:`make_simulated_tool`).

    Identical schemas given twice make one tool.

    Args:
        schemas: Function schemas.
        latency: The latency model.
        journal: Shared journal of every tool (optional).
        result: Output function of every tool (optional).

    Returns:
        One tool per distinct name, in first-seen order.

    Raises:
        DataFormatError: If two different schemas share a name, or a schema is malformed.
    """
    seen: dict[str, str] = {}
    tools: list[BaseTool] = []
    for schema in schemas:
        name = function_name(schema)
        key = canonical_json(dict(_unwrap(schema)))
        if name in seen:
            if seen[name] != key:
                raise DataFormatError(f"two different schemas for the function {name!r}")
            continue
        seen[name] = key
        tools.append(make_simulated_tool(schema, latency=latency, journal=journal, result=result))
    return tools
