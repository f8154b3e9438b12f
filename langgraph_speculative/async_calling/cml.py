"""CML, the text format of asynchronous function calling (AsyncLM), defined once.

A model without native tool calling talks to tools in plain text:

* ``[CALL] id [HEAD] {"name": ..., "arguments": {...}} [END]``: the model calls a tool;
* ``[INTR] id [HEAD] value [END]``: a result, injected into the context by the runtime
  (never written by the model);
* ``[TRAP][END]``: the model has nothing left to do until a result arrives.

This module renders calls and interrupts, parses call bodies (JSON, or Python call syntax with
literal arguments), builds the few-shot system prompt that teaches a cloud model the format, and
converts a LangChain transcript (``tool_calls`` and ``ToolMessage`` objects) to CML text.
:class:`~langgraph_speculative.async_calling.token_monitor.TokenMonitor` reads the format back from
a stream.

Example:
    ```python
    from langchain_core.messages.tool import tool_call
    from langgraph_speculative.async_calling.cml import (
        parse_call_body,
        render_call,
        render_interrupt,
    )

    text = render_call(tool_call(name="get_weather", args={"city": "Paris"}, id="c1"))
    print(text)  # [CALL] c1 [HEAD] {"name": "get_weather", "arguments": {"city": "Paris"}} [END]
    assert parse_call_body('get_weather(city="Paris", days=3)') == (
        "get_weather",
        {"city": "Paris", "days": 3},
    )
    print(render_interrupt("c1", "sunny, 21 C"))  # [INTR] c1 [HEAD] sunny, 21 C [END]
    ```
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from langgraph_speculative.errors import CMLSyntaxError

__all__ = [
    "CALL",
    "END",
    "HEAD",
    "INTR",
    "MARKERS",
    "TRAP",
    "TRAP_BLOCK",
    "cml_system_prompt",
    "parse_call_body",
    "render_call",
    "render_interrupt",
    "to_cml_transcript",
]

CALL = "[CALL]"
"""Opens a call block: ``[CALL] id [HEAD] body [END]``."""
HEAD = "[HEAD]"
"""Separates a block's id from its body."""
END = "[END]"
"""Closes a call, interrupt or trap block."""
INTR = "[INTR]"
"""Opens an interrupt (a result): ``[INTR] id [HEAD] value [END]``."""
TRAP = "[TRAP]"
"""Opens a trap: the model waits for the next result."""
TRAP_BLOCK = TRAP + END
"""The whole trap block, ``[TRAP][END]``."""
MARKERS: tuple[str, ...] = (CALL, HEAD, END, INTR, TRAP)
"""Every CML marker."""

_ARG_KEYS = ("arguments", "args", "parameters")
_JSON_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None}


def _escape_markers(json_text: str) -> str:
    # In JSON text a marker can only occur inside a string literal (``[`` followed by an
    # upper-case letter is not valid JSON outside strings), so writing its ``[`` as the
    # escape ``\u005b`` keeps the value and keeps the block's own ``[END]`` the first one.
    for marker in MARKERS:
        if marker in json_text:
            json_text = json_text.replace(marker, "\\u005b" + marker[1:])
    return json_text


def render_call(call: ToolCall) -> str:
    r"""Render a tool call as a CML call block.

    Markers inside string arguments are written with a JSON escape (``\u005b``), so the
    block's ``[END]`` is always the first one after its ``[HEAD]``.

    Args:
        call: The call; ``id`` may be ``None`` (rendered empty).

    Returns:
        ``[CALL] {id} [HEAD] {"name": ..., "arguments": {...}} [END]``.
    """
    body = json.dumps({"name": call["name"], "arguments": call["args"]}, ensure_ascii=False)
    return f"{CALL} {call.get('id') or ''} {HEAD} {_escape_markers(body)} {END}"


def render_interrupt(call_id: str, content: str) -> str:
    """Render a tool result as a CML interrupt block.

    Args:
        call_id: The id of the call the result answers.
        content: The result text, written as is.

    Returns:
        ``[INTR] {call_id} [HEAD] {content} [END]``.
    """
    return f"{INTR} {call_id} {HEAD} {content} {END}"


# -- parsing call bodies -------------------------------------------------------------------


def _literal(node: ast.expr, body: str) -> Any:
    """Convert an expression node holding a JSON-like literal, refusing everything else."""
    if isinstance(node, ast.Constant):
        value = node.value
        if value is None or isinstance(value, str | int | float | bool):
            return value
        raise CMLSyntaxError(
            f"unsupported literal {ast.unparse(node)!r}: use str, number, bool or null",
            body=body,
        )
    if isinstance(node, ast.Name):
        if node.id in _JSON_WORDS:
            return _JSON_WORDS[node.id]
        raise CMLSyntaxError(
            f"name {node.id!r} is not allowed in arguments: only literal values are",
            body=body,
        )
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub | ast.UAdd)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
        and not isinstance(node.operand.value, bool)
    ):
        number = node.operand.value
        return -number if isinstance(node.op, ast.USub) else number
    if isinstance(node, ast.List | ast.Tuple):
        items: list[Any] = []
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                raise CMLSyntaxError("unpacking (*) is not allowed in arguments", body=body)
            items.append(_literal(elt, body))
        return items
    if isinstance(node, ast.Dict):
        out: dict[str, Any] = {}
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            if key_node is None:
                raise CMLSyntaxError("unpacking (**) is not allowed in arguments", body=body)
            key = _literal(key_node, body)
            if not isinstance(key, str):
                raise CMLSyntaxError(f"object keys must be strings, got {key!r}", body=body)
            out[key] = _literal(value_node, body)
        return out
    raise CMLSyntaxError(
        f"unsupported expression {ast.unparse(node)!r}: only literal values are allowed",
        body=body,
    )


def _dotted_name(node: ast.expr, body: str) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted_name(node.value, body)}.{node.attr}"
    raise CMLSyntaxError(
        f"the called object {ast.unparse(node)!r} is not a (dotted) tool name", body=body
    )


def _parse_expression(body: str) -> ast.expr:
    try:
        return ast.parse(body, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise CMLSyntaxError(f"call body is neither JSON nor a call: {exc}", body=body) from None


def _from_mapping(obj: Any, body: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(obj, dict):
        raise CMLSyntaxError("call body must be a JSON object", body=body)
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CMLSyntaxError('call body needs a non-empty string "name"', body=body)
    args: Any = {}
    for key in _ARG_KEYS:
        if key in obj:
            args = obj[key]
            break
    if args is None:
        args = {}
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as exc:
            raise CMLSyntaxError(f"arguments string is not JSON: {exc}", body=body) from None
    if not isinstance(args, dict):
        raise CMLSyntaxError(
            f"arguments must be a JSON object, got {type(args).__name__}", body=body
        )
    return name.strip(), args


def _from_call(
    node: ast.expr, body: str, param_order: Mapping[str, Sequence[str]] | None
) -> tuple[str, dict[str, Any]]:
    if not isinstance(node, ast.Call):
        raise CMLSyntaxError(
            'call body must be {"name": ..., "arguments": {...}} or name(arg=value, ...)',
            body=body,
        )
    name = _dotted_name(node.func, body)
    args: dict[str, Any] = {}
    if node.args:
        order = None if param_order is None else param_order.get(name)
        if order is None:
            raise CMLSyntaxError(
                f"positional arguments to {name!r} need its parameter order; "
                "write name=value instead",
                body=body,
            )
        if len(node.args) > len(order):
            raise CMLSyntaxError(
                f"{name!r} takes at most {len(order)} positional arguments, got {len(node.args)}",
                body=body,
            )
        for param, arg in zip(order, node.args, strict=False):
            if isinstance(arg, ast.Starred):
                raise CMLSyntaxError("unpacking (*) is not allowed in arguments", body=body)
            args[param] = _literal(arg, body)
    for kw in node.keywords:
        if kw.arg is None:
            raise CMLSyntaxError("unpacking (**) is not allowed in arguments", body=body)
        if kw.arg in args:
            raise CMLSyntaxError(f"argument {kw.arg!r} given twice", body=body)
        args[kw.arg] = _literal(kw.value, body)
    return name, args


def parse_call_body(
    body: str, param_order: Mapping[str, Sequence[str]] | None = None
) -> tuple[str, dict[str, Any]]:
    """Read the body of a CML call block.

    Two forms are accepted:

    * JSON ``{"name": str, "arguments": {...}}``; the arguments key may also be ``args``
      or ``parameters`` and its value may be a JSON string holding the object. A Python
      dict literal (single quotes) is accepted too.
    * Python call syntax ``get_weather(city="Paris", days=3)`` or ``math.factorial(5)``:
      a (dotted) name and literal arguments only (strings, numbers, booleans, ``None``,
      lists, tuples, dicts; ``true``/``false``/``null`` as well). Nothing is evaluated.
      Positional arguments need ``param_order``.

    Args:
        body: The text between ``[HEAD]`` and ``[END]``.
        param_order: Parameter names of each tool in order, used to name positional
            arguments of the Python form.

    Returns:
        The tool name and its arguments.

    Raises:
        CMLSyntaxError: If the body is in neither form, holds a non-literal value, or
            uses positional arguments without a known parameter order.
    """
    text = body.strip()
    if not text:
        raise CMLSyntaxError("empty call body", body=body)
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            node = _parse_expression_or_none(text)
            if not isinstance(node, ast.Dict):
                raise CMLSyntaxError(f"call body is not valid JSON: {exc}", body=body) from None
            obj = _literal(node, body)
        return _from_mapping(obj, body)
    return _from_call(_parse_expression(text), body, param_order)


def _parse_expression_or_none(text: str) -> ast.expr | None:
    try:
        return _parse_expression(text)
    except CMLSyntaxError:
        return None


# -- the prompt ------------------------------------------------------------------------------

_PROMPT_HEAD = """\
You call tools asynchronously. You never stop to wait for a tool: you write a call and \
keep going; its result arrives later, as an interrupt, while you work.

The format (CML):
- Call a tool: [CALL] <id> [HEAD] {"name": "<tool>", "arguments": {<JSON object>}} [END]
  <id> is a short id you choose, unique in the conversation (c1, c2, ...).
- A result arrives (in a user message) as: [INTR] <id> [HEAD] <result> [END]
  Only the system writes [INTR]. Never write [INTR] yourself and never invent a result.
- Write [TRAP][END] when nothing is left to do until a result arrives: you pause until \
the next [INTR].

Rules:
1. Emit a call as soon as all its inputs are known; do not wait for other calls.
2. Emit independent calls (inputs known, not needing each other's results) one after \
another, longest expected duration first.
3. A call that needs another call's result comes only after that result has arrived as \
[INTR].
4. When every needed result is in, answer in plain text, without markers.
"""

_PROMPT_EXAMPLES = """\
Example 1: independent calls (example tools: get_population takes about 2000 ms, \
get_weather about 800 ms).
User: What is the weather in Paris, and how many people live in France?
Assistant: [CALL] c1 [HEAD] {"name": "get_population", "arguments": {"country": "France"}} [END]
[CALL] c2 [HEAD] {"name": "get_weather", "arguments": {"city": "Paris"}} [END]
[TRAP][END]
User: [INTR] c2 [HEAD] sunny, 21 C [END]
Assistant: [TRAP][END]
User: [INTR] c1 [HEAD] 68.4 million [END]
Assistant: It is sunny in Paris (21 C), and France has about 68.4 million inhabitants.

Example 2: a dependent call (example tools: search_flights, book_flight).
User: Book the cheapest flight from Hefei to Beijing tomorrow.
Assistant: [CALL] c1 [HEAD] {"name": "search_flights", "arguments": {"from": "Hefei", \
"to": "Beijing", "date": "tomorrow"}} [END]
[TRAP][END]
User: [INTR] c1 [HEAD] [{"flight": "MU5123", "price": 620}, {"flight": "CA1802", \
"price": 710}] [END]
Assistant: [CALL] c2 [HEAD] {"name": "book_flight", "arguments": {"flight": "MU5123"}} [END]
[TRAP][END]
User: [INTR] c2 [HEAD] booked, confirmation K7Q2 [END]
Assistant: I booked flight MU5123 (620 yuan), confirmation K7Q2.
"""


def _tool_expected_ms(tool: BaseTool | dict[str, Any]) -> float | None:
    if isinstance(tool, BaseTool):
        meta: Any = tool.metadata or {}
    else:
        meta = tool.get("metadata") or {}
        if "expected_ms" in tool:
            return float(tool["expected_ms"])
    value = meta.get("expected_ms") if isinstance(meta, Mapping) else None
    return None if value is None else float(value)


def cml_system_prompt(
    tools: Sequence[BaseTool | dict[str, Any]],
    *,
    expected_ms: Mapping[str, float] | None = None,
) -> str:
    """Build the few-shot system prompt that teaches a model CML.

    For cloud models without native tool calling (or when CML is preferred): it explains
    the format, lists the tools with their JSON schema and expected duration, states the
    scheduling rules (calls as soon as inputs are known, independent calls longest first,
    dependent calls only after the result arrived, ``[TRAP][END]`` when waiting, never
    ``[INTR]``) and gives two worked examples, one parallel and one dependent.

    Args:
        tools: Tools as LangChain tools or dicts (OpenAI tool format, or ``name`` /
            ``description`` / ``parameters``); a dict may carry ``expected_ms`` or
            ``metadata["expected_ms"]``.
        expected_ms: Expected duration of each tool by name, in milliseconds; overrides
            a tool's ``metadata["expected_ms"]``.

    Returns:
        The system prompt text.
    """
    lines = [_PROMPT_HEAD, "Your tools:"]
    for tool in tools:
        spec_source: Any = tool
        if isinstance(tool, dict):
            spec_source = {k: v for k, v in tool.items() if k not in ("metadata", "expected_ms")}
        function = convert_to_openai_tool(spec_source)["function"]
        name = str(function["name"])
        ms = expected_ms.get(name) if expected_ms is not None else None
        if ms is None:
            ms = _tool_expected_ms(tool)
        duration = "unknown" if ms is None else f"about {ms:.0f} ms"
        description = " ".join(str(function.get("description") or "").split())
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        lines.append(f"- {name} (expected duration: {duration}): {description}".rstrip())
        lines.append(f"  arguments (JSON schema): {json.dumps(schema, ensure_ascii=False)}")
    lines.append("")
    lines.append(_PROMPT_EXAMPLES)
    return "\n".join(lines)


# -- transcripts -----------------------------------------------------------------------------


def _render_invalid(call: Mapping[str, Any]) -> str:
    body = json.dumps(
        {"name": call.get("name") or "", "arguments": call.get("args") or ""},
        ensure_ascii=False,
    )
    return f"{CALL} {call.get('id') or ''} {HEAD} {_escape_markers(body)} {END}"


def to_cml_transcript(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """Convert a LangChain transcript into plain-text CML.

    For a model without native tool calling: an ``AIMessage`` keeps its text followed by
    its calls rendered as ``[CALL]`` blocks (one a line; its ``tool_calls`` and
    ``invalid_tool_calls`` are removed); each run of consecutive ``ToolMessage`` objects
    becomes one ``HumanMessage`` of ``[INTR]`` blocks, newline separated. Other messages
    pass unchanged, so the conversion is idempotent.

    Args:
        messages: The transcript.

    Returns:
        A new list of messages without tool calls or tool messages.
    """
    out: list[BaseMessage] = []
    interrupts: list[str] = []

    def flush() -> None:
        if interrupts:
            out.append(HumanMessage(content="\n".join(interrupts)))
            interrupts.clear()

    for message in messages:
        if isinstance(message, ToolMessage):
            interrupts.append(render_interrupt(message.tool_call_id, message.text))
            continue
        flush()
        if isinstance(message, AIMessage) and (message.tool_calls or message.invalid_tool_calls):
            blocks = [render_call(call) for call in message.tool_calls]
            blocks += [_render_invalid(call) for call in message.invalid_tool_calls]
            text = message.text
            content = "\n".join([text, *blocks] if text else blocks)
            extra = {k: v for k, v in message.additional_kwargs.items() if k != "tool_calls"}
            out.append(
                message.model_copy(
                    update={
                        "content": content,
                        "tool_calls": [],
                        "invalid_tool_calls": [],
                        "additional_kwargs": extra,
                    }
                )
            )
        else:
            out.append(message)
    flush()
    return out
