"""Load Berkeley Function Calling Leaderboard (BFCL) files as scripted tasks.

``bench async`` (``BENCHMARKS.md`` section 1) plays BFCL records on the simulated model:
each record becomes a :class:`~langgraph_speculative.integrations.ScriptedTask` whose
calls are the ground truth.

* Single-turn categories (``simple_python``, ``multiple``, ``parallel``,
  ``parallel_multiple``, ``live_*``): the question is the last user message of the first
  turn, the tools are the record's ``function`` list (BFCL schemas kept as they are), and
  each ground-truth entry ``{name: {param: [acceptable values]}}`` becomes an independent
  call with the *first* acceptable value of each parameter; a parameter whose acceptable
  values include ``""`` is optional and left out. Call ids are ``"0"``, ``"1"``, ...
* ``multi_turn_base``: only turn 0 is used. Its ground truth is a list of Python call
  strings (``"cd(folder='document')"``, ``"sort('final_report.pdf')"``), parsed with
  ``ast`` (literal arguments only; positional arguments follow the order of the
  function's ``properties``). The tools come from ``multi_turn_func_doc/`` beside the
  data file (one file per class in ``involved_classes``, see
  :data:`MULTI_TURN_FUNC_DOC_FILES`), minus the record's ``excluded_function``. The calls
  of one record form a chain (each depends on the one before); call ids are
  ``"r{k}.{i}"`` (chain ``k`` of the task, call ``i`` of the chain). ``merge=K`` joins K
  distinct records into one task (K independent chains) after a seeded shuffle of the
  records.

* ``simple_java`` and ``simple_javascript``: every parameter is shown as a ``string`` in
  that language's notation, as BFCL's own preprocessing shows it to the model under test,
  and typed ground-truth values are given in string form (``true``, ``[1, 2]``).
* ``multi_turn_miss_func``, ``multi_turn_miss_param``, ``multi_turn_long_context``: read
  as ``multi_turn_base`` (functions a ``miss_func`` record adds in a later turn are not
  offered in turn 0). ``irrelevance``, ``memory``, ``web_search`` and the other categories
  whose ground truth is no list of calls are refused (:data:`UNPLAYABLE_CATEGORIES`).

Files are JSON Lines (a file holding one JSON array is read too), records joined to their
answers on ``id``. Real files hold records that cannot be played: a ground-truth argument
that fails its function's own schema (a string where the schema wants integers, a value
outside an ``enum``), a call of an unknown function, a required parameter the answer
leaves out, a broken line. The loader checks every ground-truth call against the schema,
exactly as the simulated tool will validate it, skips such records and lists each in
:attr:`BfclTasks.skipped` (record id, file, line, what is wrong); with ``strict=True`` the
first one raises :class:`~langgraph_speculative.errors.DataFormatError` naming the record
instead.

Example:
    ```python
    from langgraph_speculative.integrations.sim.bfcl import load_bfcl

    tasks = load_bfcl(
        "../shared/data/bfcl/BFCL_v4_parallel.json",
        "../shared/data/bfcl/possible_answer/BFCL_v4_parallel.json",
        limit=10,
        seed=0,
    )
    for task in tasks:
        print(task.id, [c.name for c in task.calls])
    print(tasks.skip_summary())  # which records could not be played, and why
    ```
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

from pydantic import ValidationError

from langgraph_speculative.core.ledger import canonical_json
from langgraph_speculative.errors import DataFormatError, ScriptError, SkipKind, SkippedRecord
from langgraph_speculative.integrations.sim.latency import LatencyModel
from langgraph_speculative.integrations.sim.scripted_tasks import PlannedCall, ScriptedTask
from langgraph_speculative.integrations.sim.tools import (
    SimulatedTool,
    canonical_type,
    make_simulated_tool,
)

__all__ = [
    "BFCL_CATEGORIES",
    "MULTI_TURN_FUNC_DOC_FILES",
    "UNPLAYABLE_CATEGORIES",
    "BfclTasks",
    "Kind",
    "add_strict_argument",
    "bfcl_category",
    "load_bfcl",
    "parse_call",
]

Kind = Literal["single_turn", "multi_turn"]
"""Kind of BFCL file: one task per record (``single_turn``) or turn-0 chains (``multi_turn``)."""

BFCL_CATEGORIES: dict[str, Kind] = {
    "simple_python": "single_turn",
    "simple_java": "single_turn",
    "simple_javascript": "single_turn",
    "multiple": "single_turn",
    "parallel": "single_turn",
    "parallel_multiple": "single_turn",
    "live_simple": "single_turn",
    "live_multiple": "single_turn",
    "live_parallel": "single_turn",
    "live_parallel_multiple": "single_turn",
    "multi_turn_base": "multi_turn",
    "multi_turn_miss_func": "multi_turn",
    "multi_turn_miss_param": "multi_turn",
    "multi_turn_long_context": "multi_turn",
    "multi_turn_composite": "multi_turn",
}
"""Supported BFCL categories (file ``BFCL_v{N}_{category}.json``) and their kind.

Every ``multi_turn_*`` variant is read like ``multi_turn_base``: only turn 0 is played, and
turn 0 of a ``miss_func`` / ``miss_param`` record is an ordinary turn. A file of another
name is read by its records' shape (:func:`load_bfcl`)."""

UNPLAYABLE_CATEGORIES: dict[str, str] = {
    "irrelevance": "its records have no ground-truth calls (the model must call nothing)",
    "live_irrelevance": "its records have no ground-truth calls (the model must call nothing)",
    "live_relevance": "its records have no ground-truth calls (any relevant call passes)",
    "memory": "its ground truth is a final answer, not a list of calls",
    "web_search": "its ground truth is a final answer, not a list of calls",
    "format_sensitivity": "its records have no ground-truth calls of their own",
}
"""BFCL categories whose records hold no calls to play, and why (``load_bfcl`` refuses them)."""

MULTI_TURN_FUNC_DOC_FILES: dict[str, str] = {
    "GorillaFileSystem": "gorilla_file_system.json",
    "MathAPI": "math_api.json",
    "MessageAPI": "message_api.json",
    "TwitterAPI": "posting_api.json",
    "TicketAPI": "ticket_api.json",
    "TradingBot": "trading_bot.json",
    "TravelAPI": "travel_booking.json",
    "VehicleControlAPI": "vehicle_control.json",
    "WebSearchAPI": "web_search.json",
    "MemoryAPI_kv": "memory_kv.json",
    "MemoryAPI_vector": "memory_vector.json",
    "MemoryAPI_rec_sum": "memory_rec_sum.json",
}
"""Class named in a multi-turn record's ``involved_classes`` -> its function-doc file."""

_FILE_NAME = re.compile(r"^BFCL_v\d+_(?P<category>.+)\.jsonl?$")
_ID_IN_LINE = re.compile(r'"id"\s*:\s*"([^"]*)"')
_log = logging.getLogger(__name__)


def bfcl_category(path: str | Path) -> str | None:
    """The BFCL category a file name encodes (``BFCL_v4_parallel.json`` -> ``parallel``).

    Args:
        path: The data (or answer) file.

    Returns:
        The category, or ``None`` if the name does not follow BFCL's pattern.
    """
    match = _FILE_NAME.match(Path(path).name)
    return match.group("category") if match else None


@dataclass(frozen=True, slots=True)
class BfclTasks(Sequence[ScriptedTask]):
    """The tasks :func:`load_bfcl` read, and the records it skipped.

    A sequence of :class:`~langgraph_speculative.integrations.ScriptedTask`, so it is
    used as a list of tasks; ``skipped`` says what was left out.

    Attributes:
        tasks: The playable tasks, in order.
        skipped: The records that were skipped, in file order.
        source: The question file's name.
    """

    tasks: tuple[ScriptedTask, ...]
    skipped: tuple[SkippedRecord, ...] = ()
    source: str = ""

    @overload
    def __getitem__(self, index: int) -> ScriptedTask: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ScriptedTask]: ...
    def __getitem__(self, index: int | slice) -> ScriptedTask | Sequence[ScriptedTask]:
        return self.tasks[index]

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[ScriptedTask]:
        return iter(self.tasks)

    def require_tasks(self) -> BfclTasks:
        """These tasks, or a clear error when every record was skipped (nothing to run).

        Raises:
            DataFormatError: If there is no task, naming what was skipped and why.
        """
        if not self.tasks:
            raise DataFormatError(f"{self.skip_summary()}: no playable task is left")
        return self

    def skip_summary(self) -> str:
        """One line for a benchmark's table: how many records were skipped and why."""
        if not self.skipped:
            return f"{self.source}: no record skipped"
        kinds = Counter(s.kind for s in self.skipped)
        parts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        first = self.skipped[0]
        return (
            f"{self.source}: skipped {len(self.skipped)} record(s) ({parts}); first: "
            f"{first.id}: {first.reason}"
        )


class _Invalid(DataFormatError):
    """A well-formed record whose ground truth cannot be played (``kind="invalid"``)."""


@dataclass(frozen=True, slots=True)
class _Record:
    line: int
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.data["id"])


class _Reader:
    """Reads one load's files, collecting skipped records (or raising, when strict)."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.skipped: list[SkippedRecord] = []
        self._models: dict[str, SimulatedTool] = {}

    def skip(self, exc: DataFormatError, file: str, line: int | None, rid: str | None) -> None:
        if self.strict:
            raise exc
        reason = str(exc)
        if exc.record_id is not None:
            reason = reason.removeprefix(f"record {exc.record_id!r}: ")
        kind: SkipKind = "invalid" if isinstance(exc, _Invalid) else "malformed"
        shown = rid if rid is not None else f"{file} line {line}"
        self.skipped.append(SkippedRecord(shown, reason, kind, file, line))

    def objects(self, path: Path) -> Iterator[tuple[int, Any]]:
        """Yield ``(line, value)`` of a JSON Lines file (or a JSON array); skip bad lines."""
        with path.open(encoding="utf-8-sig") as fh:
            text = fh.read()
        if text.lstrip().startswith("["):  # a JSON array instead of JSON Lines
            try:
                values = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataFormatError(f"{path.name}: not valid JSON ({exc})") from None
            yield from enumerate(values, start=1)
            return
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                found = _ID_IN_LINE.search(line)
                rid = found.group(1) if found else None
                error = DataFormatError(
                    f"{path.name} line {lineno}: not valid JSON ({exc.msg})", record_id=rid
                )
                self.skip(error, path.name, lineno, rid)

    def records(self, path: Path) -> list[_Record]:
        """The records of a question or answer file, each with a unique string id."""
        records: list[_Record] = []
        seen: set[str] = set()
        for lineno, data in self.objects(path):
            rid = data.get("id") if isinstance(data, dict) else None
            if not isinstance(data, dict):
                error = DataFormatError(
                    f"{path.name} line {lineno}: a line must hold a JSON object"
                )
            elif not isinstance(rid, str) or not rid:
                error = DataFormatError(f"{path.name} line {lineno}: record without a string 'id'")
            elif rid in seen:
                error = DataFormatError(f"{path.name} line {lineno}: id repeats", record_id=rid)
            else:
                seen.add(rid)
                records.append(_Record(lineno, data))
                continue
            self.skip(error, path.name, lineno, rid if isinstance(rid, str) else None)
        return records

    def check_call(
        self, rid: str, name: str, args: Mapping[str, Any], function: Mapping[str, Any]
    ) -> None:
        """Validate a ground-truth call against its function's schema, as the tool will."""
        key = canonical_json(dict(function))
        tool = self._models.get(key)
        if tool is None:
            try:
                built = make_simulated_tool(function, latency=LatencyModel.zero())
            except DataFormatError as exc:
                raise _Invalid(str(exc), record_id=rid) from None
            assert isinstance(built, SimulatedTool)
            tool = self._models[key] = built
        try:
            tool.validate_args(args)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(arguments)"
            raise _Invalid(
                f"the ground-truth call {name}({_shown(args)}) fails its schema: "
                f"argument {where}: {first['msg']} (got {_shown(first.get('input'))})"
                + (f"; {len(exc.errors()) - 1} more error(s)" if len(exc.errors()) > 1 else ""),
                record_id=rid,
            ) from None


def _shown(value: Any, limit: int = 80) -> str:
    if isinstance(value, Mapping):
        text = ", ".join(
            f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in value.items()
        )
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_LANGUAGES = {"simple_java": "Java", "simple_javascript": "JavaScript"}


def _in_string_form(functions: list[dict[str, Any]], language: str) -> list[dict[str, Any]]:
    """BFCL's own preprocessing of Java and JavaScript functions.

    Every parameter becomes a ``string`` holding the value in that language's notation
    (its type, and the element or entry schema, move into the description), as BFCL
    shows these functions to the model under test.
    """
    out: list[dict[str, Any]] = []
    for function in functions:
        params = dict(function.get("parameters") or {})
        props = params.get("properties")
        if isinstance(props, Mapping):
            converted: dict[str, Any] = {}
            for name, spec in props.items():
                spec = dict(spec) if isinstance(spec, Mapping) else {}
                kind = spec.get("type")
                hint = (
                    f" This parameter can be of any type of {language} object in string "
                    "representation."
                    if kind == "any"
                    else f" This is {language} {kind} type parameter in string representation."
                )
                spec["description"] = str(spec.get("description", "")) + hint
                spec.pop("items", None)
                spec.pop("properties", None)
                spec["type"] = "string"
                converted[name] = spec
            params["properties"] = converted
        out.append({**function, "parameters": params})
    return out


def _as_string(value: Any) -> str:
    """A typed ground-truth value in the string form the Java/JavaScript schemas ask for."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _question(rec: _Record) -> str:
    turns = rec.data.get("question")
    if not isinstance(turns, list) or not turns or not isinstance(turns[0], list):
        raise DataFormatError("missing or malformed 'question'", record_id=rec.id)
    for message in reversed(turns[0]):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
    raise DataFormatError("the first turn of 'question' has no user message", record_id=rec.id)


def _properties(function: Mapping[str, Any]) -> dict[str, Any]:
    params = function.get("parameters")
    props = params.get("properties") if isinstance(params, Mapping) else None
    return dict(props) if isinstance(props, Mapping) else {}


def _functions(value: Any, rid: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise DataFormatError("missing or empty 'function' list", record_id=rid)
    for f in value:
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            raise DataFormatError("a 'function' entry has no name", record_id=rid)
    return value


def _check_args(
    reader: _Reader,
    rid: str,
    name: str,
    args: Mapping[str, Any],
    functions: Mapping[str, Mapping[str, Any]],
) -> None:
    if name not in functions:
        raise _Invalid(
            f"the answer calls {name!r}, which is not among the record's functions "
            f"{sorted(functions)}",
            record_id=rid,
        )
    props = _properties(functions[name])
    unknown = sorted(set(args) - set(props))
    if unknown:
        raise _Invalid(
            f"the answer gives {name!r} parameters {unknown} its schema does not have",
            record_id=rid,
        )
    reader.check_call(rid, name, args, functions[name])


def _task(
    rid: str,
    question: str,
    functions: Sequence[Mapping[str, Any]],
    calls: Sequence[PlannedCall],
    answer_tokens: int,
) -> ScriptedTask:
    try:
        return ScriptedTask(rid, question, tuple(functions), tuple(calls), answer_tokens)
    except ScriptError as exc:
        raise DataFormatError(str(exc), record_id=rid) from exc


# --- single turn --------------------------------------------------------------------------


def _single_turn_calls(
    reader: _Reader, rid: str, truth: Any, functions: Mapping[str, Mapping[str, Any]]
) -> list[PlannedCall]:
    if not isinstance(truth, list):
        raise DataFormatError("'ground_truth' must be a list of calls", record_id=rid)
    if not truth:
        raise _Invalid("the ground truth holds no call", record_id=rid)
    calls: list[PlannedCall] = []
    for i, entry in enumerate(truth):
        if not isinstance(entry, Mapping) or len(entry) != 1:
            raise DataFormatError(
                f"ground-truth entry {i} must be {{function: {{param: [values]}}}}",
                record_id=rid,
            )
        ((name, params),) = entry.items()
        if not isinstance(params, Mapping):
            raise DataFormatError(f"ground-truth entry {i}: parameters of {name!r}", record_id=rid)
        if name not in functions:
            _check_args(reader, rid, name, {}, functions)
        where = f"ground-truth entry {i}: {name}"
        block = functions[name].get("parameters")
        args = _pick_args(params, block if isinstance(block, Mapping) else {}, rid, where)
        _check_args(reader, rid, name, args, functions)
        calls.append(PlannedCall(str(i), name, args))
    return calls


def _pick_args(
    params: Mapping[str, Any], schema: Mapping[str, Any], rid: str, where: str
) -> dict[str, Any]:
    """First acceptable value of each parameter; parameters that accept ``""`` left out.

    ``schema`` is the parameter block (``properties``, ``required``). A few BFCL answers
    accept ``""`` for a parameter their own schema requires; the first other acceptable
    value is used then, so that every planned call fits its schema. An optional nested
    key with no acceptable value at all (``[]``) is left out too.
    """
    props = schema.get("properties")
    props = props if isinstance(props, Mapping) else {}
    required = schema.get("required")
    required = required if isinstance(required, list) else []
    args: dict[str, Any] = {}
    for param, values in params.items():
        if not isinstance(values, list):
            raise DataFormatError(f"{where}.{param} must list acceptable values", record_id=rid)
        if "" in values or not values:  # optional: the model may leave it out, and does
            if param not in required:
                continue
            values = [v for v in values if v != ""]
            if not values:
                raise _Invalid(
                    f"{where}.{param} is required by its schema, but the answer accepts no "
                    "value for it",
                    record_id=rid,
                )
        args[param] = _pick_value(values[0], props.get(param), rid, f"{where}.{param}")
    return args


def _pick_value(value: Any, spec: Any, rid: str, where: str) -> Any:
    """Resolve BFCL's nested answers.

    Inside a ``dict`` parameter (also as array items), each key again maps to a list of
    acceptable values, as BFCL's checker reads it, whether or not the schema lists the
    dict's ``properties``.
    """
    if not isinstance(spec, Mapping):
        return value
    kind = spec.get("type")
    if isinstance(kind, str) and canonical_type(kind) in ("dict", "object"):
        if (
            isinstance(value, Mapping)
            and value
            and all(isinstance(v, list) for v in value.values())
        ):
            return _pick_args(value, spec, rid, where)
        return value
    if (
        isinstance(kind, str)
        and canonical_type(kind) in ("array", "tuple")
        and isinstance(value, list)
    ):
        items = spec.get("items")
        return [_pick_value(v, items, rid, f"{where}[{j}]") for j, v in enumerate(value)]
    return value


def _load_single_turn(
    reader: _Reader,
    records: list[_Record],
    answers: Mapping[str, _Record],
    answer_tokens: int,
    file: str,
    language: str | None,
) -> list[ScriptedTask]:
    tasks: list[ScriptedTask] = []
    for rec in records:
        try:
            question = _question(rec)
            functions = _functions(rec.data.get("function"), rec.id)
            answer = answers.get(rec.id)
            if answer is None:
                raise DataFormatError("no answer record with this id", record_id=rec.id)
            if "ground_truth" not in answer.data:
                raise DataFormatError("the answer record has no 'ground_truth'", record_id=rec.id)
            truth = answer.data["ground_truth"]
            if language is not None:
                functions = _in_string_form(functions, language)
                truth = _truth_as_strings(truth, rec.id)
            by_name = {f["name"]: f for f in functions}
            calls = _single_turn_calls(reader, rec.id, truth, by_name)
            tasks.append(_task(rec.id, question, functions, calls, answer_tokens))
        except DataFormatError as exc:
            reader.skip(exc, file, rec.line, rec.id)
    return tasks


def _truth_as_strings(truth: Any, rid: str) -> list[dict[str, dict[str, list[Any]]]]:
    """Every acceptable value of a Java/JavaScript answer in string form (``""`` kept)."""
    if not isinstance(truth, list):
        raise DataFormatError("'ground_truth' must be a list of calls", record_id=rid)
    out: list[dict[str, dict[str, list[Any]]]] = []
    for entry in truth:
        if not isinstance(entry, Mapping):
            return list(truth)  # _single_turn_calls names the malformed entry
        call: dict[str, dict[str, list[Any]]] = {}
        for name, params in entry.items():
            if not isinstance(params, Mapping):
                return list(truth)
            call[name] = {
                p: [_as_string(v) for v in vals] if isinstance(vals, list) else vals
                for p, vals in params.items()
            }
        out.append(call)
    return out


# --- multi turn ---------------------------------------------------------------------------


def parse_call(text: str, functions: Mapping[str, Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Parse one BFCL multi-turn ground-truth call such as ``"mv(source='a', destination='b')"``.

    Positional arguments map onto the function's parameters in the order of its schema's
    ``properties``. Argument values must be Python literals; tuples become lists (JSON).

    Args:
        text: The call text.
        functions: The function schemas available, by name.

    Returns:
        ``(function name, arguments)``.

    Raises:
        ValueError: If the text is not a single call of a known function with literal
            arguments (the loader wraps it in ``DataFormatError``).
    """
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"cannot parse call {text!r}: {exc.msg}") from None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"{text!r} is not a call of a plain function name")
    name = node.func.id
    if name not in functions:
        raise ValueError(f"{text!r} calls {name!r}, which is not among the record's functions")
    order = list(_properties(functions[name]))
    if len(node.args) > len(order):
        raise ValueError(
            f"{text!r} passes {len(node.args)} positional arguments; {name!r} "
            f"has {len(order)} parameters"
        )
    args: dict[str, Any] = {}
    for param, value in zip(order, node.args, strict=False):
        args[param] = _literal(value, text)
    for kw in node.keywords:
        if kw.arg is None:
            raise ValueError(f"{text!r} uses ** arguments")
        if kw.arg in args:
            raise ValueError(f"{text!r} gives {kw.arg!r} twice")
        if kw.arg not in order:
            raise ValueError(f"{text!r}: {name!r} has no parameter {kw.arg!r}")
        args[kw.arg] = _literal(kw.value, text)
    return name, args


def _literal(node: ast.expr, text: str) -> Any:
    if isinstance(node, ast.Starred):
        raise ValueError(f"{text!r} uses * arguments")
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"{text!r}: argument {ast.unparse(node)!r} is not a literal") from None
    return _to_json(value, text)


def _to_json(value: Any, text: str) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_to_json(v, text) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _to_json(v, text) for k, v in value.items()}
    raise ValueError(f"{text!r}: argument value {value!r} has no JSON form")


class _FuncDocs:
    """Lazily loaded ``multi_turn_func_doc`` files (a broken doc file fails the load)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[str, list[dict[str, Any]]] = {}

    def functions(self, cls: str, rid: str) -> list[dict[str, Any]]:
        file = MULTI_TURN_FUNC_DOC_FILES.get(cls)
        if file is None:
            raise _Invalid(
                f"unknown class {cls!r} in 'involved_classes' (known: "
                f"{sorted(MULTI_TURN_FUNC_DOC_FILES)})",
                record_id=rid,
            )
        if file not in self._cache:
            path = self.folder / file
            if not path.is_file():
                raise DataFormatError(f"function docs of {cls!r} not found at {path}")
            docs: list[dict[str, Any]] = []
            for lineno, doc in _Reader(strict=True).objects(path):
                if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
                    raise DataFormatError(f"{file} line {lineno}: a function doc needs a name")
                docs.append(doc)
            self._cache[file] = docs
        return self._cache[file]


@dataclass(frozen=True, slots=True)
class _Chain:
    rid: str
    question: str
    functions: list[dict[str, Any]]
    calls: list[tuple[str, dict[str, Any]]]


def _chain(
    reader: _Reader, rec: _Record, answers: Mapping[str, _Record], docs: _FuncDocs
) -> _Chain:
    rid = rec.id
    question = _question(rec)
    classes = rec.data.get("involved_classes")
    if not isinstance(classes, list) or not classes:
        raise DataFormatError("missing or empty 'involved_classes'", record_id=rid)
    excluded = rec.data.get("excluded_function") or []
    if not isinstance(excluded, list):
        raise DataFormatError("'excluded_function' must be a list", record_id=rid)
    missed = rec.data.get("missed_function") or {}  # multi_turn_miss_func: given in later turns
    if not isinstance(missed, Mapping):
        raise DataFormatError("'missed_function' must map turns to names", record_id=rid)
    excluded = [
        *excluded,
        *(n for turn, names in missed.items() if str(turn) != "0" for n in names),
    ]
    functions: dict[str, dict[str, Any]] = {}
    for cls in classes:
        for doc in docs.functions(str(cls), rid):
            name = doc["name"]
            if name in excluded:
                continue
            if name in functions and functions[name] != doc:
                raise DataFormatError(f"two different docs for function {name!r}", record_id=rid)
            functions[name] = doc
    answer = answers.get(rid)
    if answer is None:
        raise DataFormatError("no answer record with this id", record_id=rid)
    truth = answer.data.get("ground_truth")
    if not isinstance(truth, list) or not truth or not isinstance(truth[0], list):
        raise DataFormatError("'ground_truth' must be a list of turns (lists)", record_id=rid)
    if not truth[0]:
        raise _Invalid("turn 0 of the ground truth holds no call", record_id=rid)
    calls: list[tuple[str, dict[str, Any]]] = []
    for text in truth[0]:
        if not isinstance(text, str):
            raise DataFormatError(f"ground-truth call {text!r} is not a string", record_id=rid)
        try:
            name, args = parse_call(text, functions)
        except ValueError as exc:
            raise _Invalid(str(exc), record_id=rid) from None
        reader.check_call(rid, name, args, functions[name])
        calls.append((name, args))
    return _Chain(rid, question, list(functions.values()), calls)


def _merged_task(chains: Sequence[_Chain], answer_tokens: int) -> ScriptedTask:
    functions: dict[str, dict[str, Any]] = {}
    calls: list[PlannedCall] = []
    for k, chain in enumerate(chains):
        for f in chain.functions:
            functions.setdefault(f["name"], f)
        prev: str | None = None
        for i, (name, args) in enumerate(chain.calls):
            cid = f"r{k}.{i}"
            calls.append(PlannedCall(cid, name, args, (prev,) if prev else ()))
            prev = cid
    return _task(
        "+".join(c.rid for c in chains),
        "\n".join(c.question for c in chains),
        list(functions.values()),
        calls,
        answer_tokens,
    )


def _load_multi_turn(
    reader: _Reader,
    records: list[_Record],
    answers: Mapping[str, _Record],
    folder: Path,
    merge: int,
    seed: int,
    answer_tokens: int,
    file: str,
) -> list[ScriptedTask]:
    docs = _FuncDocs(folder)
    chains: list[_Chain] = []
    for rec in records:
        try:
            chains.append(_chain(reader, rec, answers, docs))
        except DataFormatError as exc:
            reader.skip(exc, file, rec.line, rec.id)
    if merge > 1:
        random.Random(seed).shuffle(chains)
    groups = [chains[i : i + merge] for i in range(0, len(chains) - merge + 1, merge)]
    return [_merged_task(group, answer_tokens) for group in groups]


# --- entry point --------------------------------------------------------------------------


def add_strict_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--strict`` (fail on the first bad record) to a command that reads BFCL files."""
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail on the first record that cannot be played, instead of skipping it and "
        "listing it under 'skipped' in the report",
    )


def _kind(data_path: Path, records: list[_Record]) -> Kind:
    category = bfcl_category(data_path)
    if category in UNPLAYABLE_CATEGORIES:
        raise ValueError(
            f"BFCL category {category!r} ({data_path.name}) cannot be played: "
            f"{UNPLAYABLE_CATEGORIES[category]}; supported: {sorted(BFCL_CATEGORIES)}"
        )
    if category in BFCL_CATEGORIES:
        return BFCL_CATEGORIES[category]
    shaped: Kind = (
        "multi_turn" if records and "involved_classes" in records[0].data else "single_turn"
    )
    if category is not None:
        if category.startswith("multi_turn"):
            shaped = "multi_turn"
        _log.warning(
            "BFCL category %r (%s) is not one this loader knows; reading it as %s by its "
            "records' shape",
            category,
            data_path.name,
            shaped,
        )
    return shaped


def load_bfcl(
    data_path: str | Path,
    answers_path: str | Path,
    *,
    merge: int = 1,
    limit: int | None = None,
    seed: int = 0,
    answer_tokens: int = 20,
    strict: bool = False,
) -> BfclTasks:
    """Load a BFCL question file and its ground truth as scripted tasks.

    The kind of file (single-turn or multi-turn) comes from its name
    (:func:`bfcl_category`); a file with another name is multi-turn if its records list
    ``involved_classes``. JSON Lines is BFCL's format; a file holding one JSON array is
    read too.

    Every ground-truth call is checked against its function's own schema, exactly as the
    simulated tool will validate it. A record that cannot be played is skipped and
    reported in ``skipped`` (``invalid``: a call that fails its schema, an unknown
    function or parameter; ``malformed``: a line that is not JSON, a missing field or
    answer, a repeated id), unless ``strict`` is set.

    Args:
        data_path: The question file (JSON Lines).
        answers_path: The ground-truth file (JSON Lines, joined on ``id``).
        merge: Multi-turn only: records per task (K independent chains, from K distinct
            playable records, grouped after a ``random.Random(seed)`` shuffle; an
            incomplete last group is dropped). ``1`` keeps one task per record, in file
            order.
        limit: Keep the first ``limit`` tasks after a ``random.Random(seed)`` shuffle of
            the task list. With ``None`` (the default) every task is kept, in file order
            (or merge order); the shuffle only happens when ``limit`` is set.
        seed: Seed of the shuffles.
        answer_tokens: Length of each task's final answer, in tokens.
        strict: Fail on the first bad record instead of skipping it.

    Returns:
        The tasks (a sequence) with the records that were skipped.

    Raises:
        ValueError: On ``merge`` < 1, ``merge`` > 1 for a single-turn file, ``limit`` < 0,
            or a BFCL category whose records hold no calls (:data:`UNPLAYABLE_CATEGORIES`).
        DataFormatError: With ``strict``, on the first malformed or unplayable record
            (the message names the record, and the line for a line that is not JSON);
            always, on a file that is not JSON at all or a broken function-doc file.
        OSError: If a file cannot be read.
    """
    data_path, answers_path = Path(data_path), Path(answers_path)
    if merge < 1:
        raise ValueError(f"merge must be >= 1, got {merge}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    reader = _Reader(strict)
    records = reader.records(data_path)
    kind = _kind(data_path, records)
    if kind == "single_turn" and merge != 1:
        raise ValueError(
            f"merge={merge} needs a multi_turn_base file; {data_path.name} is single-turn "
            "(use merge=1)"
        )
    answers = {a.id: a for a in reader.records(answers_path)}
    if kind == "single_turn":
        language = _LANGUAGES.get(bfcl_category(data_path) or "")
        tasks = _load_single_turn(reader, records, answers, answer_tokens, data_path.name, language)
    else:
        folder = data_path.parent / "multi_turn_func_doc"
        tasks = _load_multi_turn(
            reader, records, answers, folder, merge, seed, answer_tokens, data_path.name
        )
    if limit is not None:
        random.Random(seed).shuffle(tasks)
        tasks = tasks[:limit]
    if reader.skipped:
        _log.warning(
            "%s: skipped %d record(s) that cannot be played (first: %s: %s)",
            data_path.name,
            len(reader.skipped),
            reader.skipped[0].id,
            reader.skipped[0].reason,
        )
    return BfclTasks(tuple(tasks), tuple(reader.skipped), data_path.name)
