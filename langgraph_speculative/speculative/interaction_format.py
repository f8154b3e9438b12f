r"""The clock-based interaction format of speculative interaction, defined once.

A speculative agent works while the user is still speaking. What it sees is a transcript
of *events*, one per line, each stamped with the clock since the interaction started;
what it writes is *actions*, one per line. The same text serves the prompt of a cloud
model (:func:`~langgraph_speculative.speculative.interaction_prompt.interaction_system_prompt`,
:func:`to_messages`) and training data for small models (:func:`render_transcript`).

Events (written by the runtime)::

    [t=1.20s] USER partial: Play songs from Taylor        the whole transcript so far
    [t=3.40s] USER final: Play songs from Taylor Swift    the user has finished
    [t=2.50s] EVENT calendar: Meeting moved to 3 pm       an environment event
    [t=2.31s] RESULT c1: ["Anti-Hero", "Shake It Off"]    a tool result as it finishes
    [t=2.31s] RESULT c4 (error): timeout                  ... failed, or "(cancelled)"
    [t=2.05s] MODEL CALL c1 {"name": ..., ...}            the model's own action, echoed

Actions (written by the model)::

    CALL <id> {"name": "<tool>", "arguments": {...}}      call a tool (speculatively before
                                                          the final input); optional
                                                          "depends_on": ["<id>", ...]
    REVISE <id> {"name": ..., "arguments": {...}}         replace the earlier call <id>
    REMOVE <id>                                           withdraw it (dependents go too)
    PAUSE                                                 wait for more input
    CONFIRM <id> <id> ...                                 after the final input: these
                                                          speculative calls stand (the
                                                          commit point); others are withdrawn
    ANSWER <text>                                         the final answer

Format rules:

* The clock is ``at - t0`` in seconds with two decimals (times before ``t0`` show as
  ``0.00s``).
* **One event or action is one line.** Free text (transcripts, event text, results,
  answers) is escaped: ``\`` is written ``\\``, a line feed ``\n``, a carriage return
  ``\r``, and the other line breaks of :meth:`str.splitlines` (``\x0b``, ``\x0c``,
  ``\x1c``-``\x1e``, ``\x85``, ``\u2028``, ``\u2029``) as ``\uXXXX``.
  :func:`unescape_text` reverses it exactly; an unknown escape such as ``\p`` is kept as
  written. JSON bodies are compact single-line JSON (non-ASCII kept, those line breaks
  ``\u``-escaped).
* Ids are non-empty, hold no whitespace, do not start with ``{`` and do not end with
  ``:`` (so ``CALL <id> {...}`` and ``RESULT <id>: ...`` read back unambiguously). An
  event's source is written with ``:`` as ``\u003a``.
* :func:`parse_actions` reads model output: blank lines are skipped; a leading clock
  ``[t=...]`` and ``MODEL`` are tolerated (a model imitating the transcript); ``ANSWER``
  ends the output, so lines after it continue the answer (a model writing a multi-line
  answer); anything else raises
  :class:`~langgraph_speculative.errors.InteractionFormatError` naming the line.
* :func:`parse_events` reads a rendered transcript back into events (clock rounded to
  10 ms); :func:`render_actions` writes actions as a model does.

Example:
    ```python
    from langgraph_speculative.speculative.interaction_format import (
        Call, Confirm, ModelAction, ToolResult, UserInput, parse_actions, render_transcript,
    )

    t0 = 1000.0
    call = Call("c1", "spotify.play", {"artist": "Taylor"})
    text = render_transcript(
        [
            UserInput("Play songs from Taylor", final=False, at=t0 + 1.2),
            ModelAction(call, at=t0 + 2.05),
            ToolResult("c1", "playing", at=t0 + 2.31),
            UserInput("Play songs from Taylor Swift", final=True, at=t0 + 3.4),
            ModelAction(Confirm(("c1",)), at=t0 + 3.52),
        ],
        t0=t0,
    )
    print(text)
    assert text.splitlines()[1] == (
        '[t=2.05s] MODEL CALL c1 {"name": "spotify.play", "arguments": {"artist": "Taylor"}}'
    )
    assert parse_actions('CALL c1 {"name": "spotify.play", "arguments": {"artist": "Taylor"}}\n'
                         "CONFIRM c1") == [call, Confirm(("c1",))]
    ```
"""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from langgraph_speculative.core.ledger import InputRecord
from langgraph_speculative.errors import InteractionFormatError

__all__ = [
    "ACTION_KEYWORDS",
    "Action",
    "Answer",
    "Call",
    "Confirm",
    "EnvironmentEvent",
    "Event",
    "Item",
    "ModelAction",
    "Pause",
    "Remove",
    "ResultStatus",
    "Revise",
    "ToolResult",
    "UserInput",
    "escape_text",
    "event_from_input",
    "parse_actions",
    "parse_events",
    "render",
    "render_actions",
    "render_transcript",
    "to_messages",
    "unescape_text",
]

ACTION_KEYWORDS: tuple[str, ...] = ("CALL", "REVISE", "REMOVE", "PAUSE", "CONFIRM", "ANSWER")
"""The keyword that starts each kind of action line."""

ResultStatus: TypeAlias = Literal["success", "error", "cancelled"]
"""How a tool call ended, as a ``RESULT`` event tells it."""

# Line breaks of str.splitlines other than \n and \r, written as \uXXXX.
_OTHER_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"} | {
    ch: f"\\u{ord(ch):04x}" for ch in _OTHER_BREAKS
}
_ESCAPE_RE = re.compile("[" + re.escape("".join(_ESCAPES)) + "]")
_UNESCAPE_RE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|(.))", re.DOTALL)
_JSON_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_PREFIX_RE = re.compile(r"^\s*(?:\[t=[^\]\n]*\]\s*)?(?:MODEL\s+)?")
_STATUSES: frozenset[str] = frozenset({"success", "error", "cancelled"})


# -- escaping ------------------------------------------------------------------------------


def escape_text(text: str) -> str:
    r"""Escape free text so that it fits on one line.

    ``\`` becomes ``\\``, a line feed ``\n``, a carriage return ``\r``, and the other line
    breaks of :meth:`str.splitlines` ``\uXXXX``. Nothing else changes (Unicode is kept).

    Args:
        text: Any text.

    Returns:
        The escaped text; ``escape_text(t).splitlines()`` has at most one line.
    """
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group()], text)


def unescape_text(text: str) -> str:
    r"""Reverse :func:`escape_text`: ``unescape_text(escape_text(t)) == t`` for every ``t``.

    ``\\``, ``\n``, ``\r``, ``\t`` and ``\uXXXX`` are decoded; any other backslash
    sequence is kept as written (so ``C:\path`` survives).

    Args:
        text: Escaped text.

    Returns:
        The original text.
    """

    def decode(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return chr(int(m.group(1), 16))
        ch = m.group(2)
        return {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}.get(ch, m.group())

    return _UNESCAPE_RE.sub(decode, text)


def _escape_source(source: str) -> str:
    # a colon would end the source early when the line is read back
    return escape_text(source).replace(":", "\\u003a")


def _json_line(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    for ch, esc in _JSON_BREAKS.items():  # only possible inside string literals
        text = text.replace(ch, esc)
    return text


# -- validation helpers --------------------------------------------------------------------


def _check_id(value: object, what: str = "id") -> str:
    if not isinstance(value, str) or not value:
        raise InteractionFormatError(f"{what} must be a non-empty str, got {value!r}")
    if any(ch.isspace() for ch in value):
        raise InteractionFormatError(f"{what} must not contain whitespace, got {value!r}")
    if value.startswith("{") or value.endswith(":"):
        raise InteractionFormatError(
            f"{what} must not start with '{{' nor end with ':', got {value!r}"
        )
    return value


def _check_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InteractionFormatError(f"tool name must be a non-empty str, got {value!r}")
    return value


def _check_arguments(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InteractionFormatError(
            f"arguments must be a JSON object (dict), got {type(value).__name__}"
        )
    if not all(isinstance(k, str) for k in value):
        raise InteractionFormatError("argument names must be strings")
    try:  # store the JSON round trip: what parsing the rendered call gives back
        normalised: dict[str, Any] = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InteractionFormatError(f"arguments are not JSON-serialisable: {exc}") from None
    return normalised


def _check_ids(value: object, what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InteractionFormatError(f"{what} must be a sequence of ids, got {value!r}")
    ids = tuple(_check_id(v, f"an id in {what}") for v in value)
    if len(set(ids)) != len(ids):
        raise InteractionFormatError(f"{what} names an id twice: {' '.join(ids)}")
    return ids


def _check_time(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InteractionFormatError(f"time must be a finite number, got {value!r}")
    return float(value)


def _check_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InteractionFormatError(f"{what} must be a str, got {type(value).__name__}")
    return value


# -- actions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CallBody:
    """The fields and checks ``CALL`` and ``REVISE`` share."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict, hash=False)
    depends_on: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_id(self.id)
        _check_name(self.name)
        object.__setattr__(self, "arguments", _check_arguments(self.arguments))
        object.__setattr__(self, "depends_on", _check_ids(self.depends_on, "depends_on"))


@dataclass(frozen=True, slots=True)
class Call(_CallBody):
    """``CALL <id> {"name": ..., "arguments": {...}}``: the model calls a tool.

    Before the user's final input the call is speculative: a safe tool runs at once, an
    unsafe one waits for ``CONFIRM``.

    Attributes:
        id: The call's id, unique in the interaction.
        name: The tool's name.
        arguments: The arguments, stored as their JSON round trip (tuples become lists).
        depends_on: Ids of calls whose results this call uses (rendered only when set):
            withdrawing one of them cancels this call too.

    Raises:
        InteractionFormatError: On a bad id, name or arguments.
    """


@dataclass(frozen=True, slots=True)
class Revise(_CallBody):
    """``REVISE <id> {...}``: replace the earlier call with the same id.

    Attributes:
        id: The id of the call being revised.
        name: The tool's name (may differ from the original call's).
        arguments: The new arguments.
        depends_on: Ids of calls whose results the revised call uses.

    Raises:
        InteractionFormatError: On a bad id, name or arguments.
    """


@dataclass(frozen=True, slots=True)
class Remove:
    """``REMOVE <id>``: withdraw a call; the runtime cancels the calls that depend on it.

    Attributes:
        id: The id of the call withdrawn.

    Raises:
        InteractionFormatError: On a bad id.
    """

    id: str

    def __post_init__(self) -> None:
        _check_id(self.id)


@dataclass(frozen=True, slots=True)
class Pause:
    """``PAUSE``: nothing to do until more input (or a result) arrives."""


@dataclass(frozen=True, slots=True)
class Confirm:
    """``CONFIRM <id> <id> ...``: after the final input, these speculative calls stand.

    This is the commit point: the listed calls are committed (unsafe ones may now run);
    speculative calls not listed are withdrawn. ``CONFIRM`` alone confirms none.

    Attributes:
        ids: The ids of the calls that stand, each once.

    Raises:
        InteractionFormatError: On a bad or repeated id.
    """

    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", _check_ids(self.ids, "CONFIRM"))


@dataclass(frozen=True, slots=True)
class Answer:
    """``ANSWER <text>``: the final answer to the user.

    Attributes:
        text: The answer (may span lines: it is escaped when rendered).

    Raises:
        InteractionFormatError: On non-str or blank text.
    """

    text: str

    def __post_init__(self) -> None:
        if not _check_str(self.text, "answer text").strip():
            raise InteractionFormatError("an answer needs non-blank text")


Action: TypeAlias = Call | Revise | Remove | Pause | Confirm | Answer
"""Anything the model writes."""

_ACTION_TYPES = (Call, Revise, Remove, Pause, Confirm, Answer)


# -- events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserInput:
    """``USER partial: ...`` / ``USER final: ...``: a transcript update.

    Attributes:
        text: The whole transcript so far.
        final: Whether the user has finished.
        at: Wall-clock time (``time.time()``) of the update.

    Raises:
        InteractionFormatError: On a field of the wrong type.
    """

    text: str
    final: bool
    at: float

    def __post_init__(self) -> None:
        _check_str(self.text, "user text")
        if not isinstance(self.final, bool):
            raise InteractionFormatError(f"final must be a bool, got {self.final!r}")
        object.__setattr__(self, "at", _check_time(self.at))


@dataclass(frozen=True, slots=True)
class EnvironmentEvent:
    """``EVENT <source>: ...``: something happened in the environment.

    Attributes:
        text: The event.
        at: Wall-clock time of the event.
        source: Where it comes from (``EVENT: ...`` without one).

    Raises:
        InteractionFormatError: On a field of the wrong type.
    """

    text: str
    at: float
    source: str | None = None

    def __post_init__(self) -> None:
        _check_str(self.text, "event text")
        if self.source is not None:
            _check_str(self.source, "event source")
        object.__setattr__(self, "at", _check_time(self.at))


@dataclass(frozen=True, slots=True)
class ToolResult:
    """``RESULT <id>: ...``: a tool call finished (``RESULT <id> (error): ...`` if it failed).

    Attributes:
        call_id: The id of the call.
        content: The result as text.
        at: Wall-clock time the call finished.
        status: ``"success"``, ``"error"``, or ``"cancelled"`` (the runtime cancelled the
            call, for example because a call it depended on was removed).

    Raises:
        InteractionFormatError: On a bad id, content or status.
    """

    call_id: str
    content: str
    at: float
    status: ResultStatus = "success"

    def __post_init__(self) -> None:
        _check_id(self.call_id, "call_id")
        _check_str(self.content, "result content")
        if not isinstance(self.status, str) or self.status not in _STATUSES:
            raise InteractionFormatError(
                f"status must be 'success', 'error' or 'cancelled', got {self.status!r}"
            )
        object.__setattr__(self, "at", _check_time(self.at))

    @classmethod
    def from_message(cls, message: ToolMessage, *, at: float) -> ToolResult:
        """Make the event of a tool's ``ToolMessage``.

        Args:
            message: The result message (its ``tool_call_id``, text and ``status``).
            at: When the call finished.

        Returns:
            The event.
        """
        status: ResultStatus = "error" if message.status == "error" else "success"
        return cls(message.tool_call_id, message.text, at, status)


@dataclass(frozen=True, slots=True)
class ModelAction:
    """``MODEL <action>``: an action of the model, echoed back with its time.

    Attributes:
        action: The action.
        at: Wall-clock time the model took it.

    Raises:
        InteractionFormatError: If ``action`` is not an action.
    """

    action: Action
    at: float

    def __post_init__(self) -> None:
        if not isinstance(self.action, _ACTION_TYPES):
            raise InteractionFormatError(f"not an action: {self.action!r}")
        object.__setattr__(self, "at", _check_time(self.at))


Event: TypeAlias = UserInput | EnvironmentEvent | ToolResult | ModelAction
"""Anything stamped with the clock in a transcript."""

Item: TypeAlias = Event | Action | InputRecord
"""What :func:`render` takes: an event, a bare action, or an input stream update."""


def event_from_input(update: InputRecord) -> UserInput | EnvironmentEvent:
    """Turn an input stream update into its event.

    Args:
        update: A user update or an environment event of the stream (an
            :class:`~langgraph_speculative.speculative.input_stream.InputUpdate`).

    Returns:
        A :class:`UserInput` or an :class:`EnvironmentEvent`.
    """
    if update.kind == "event":
        return EnvironmentEvent(update.text, update.at, update.source)
    return UserInput(update.text, update.final, update.at)


# -- rendering -----------------------------------------------------------------------------


def _clock(at: float, t0: float) -> str:
    return f"[t={max(at - t0, 0.0):.2f}s]"


def _render_action(action: Action) -> str:
    if isinstance(action, Call | Revise):
        body: dict[str, Any] = {"name": action.name, "arguments": action.arguments}
        if action.depends_on:
            body["depends_on"] = list(action.depends_on)
        keyword = "CALL" if isinstance(action, Call) else "REVISE"
        return f"{keyword} {action.id} {_json_line(body)}"
    if isinstance(action, Remove):
        return f"REMOVE {action.id}"
    if isinstance(action, Pause):
        return "PAUSE"
    if isinstance(action, Confirm):
        return " ".join(("CONFIRM", *action.ids))
    if isinstance(action, Answer):
        return f"ANSWER {escape_text(action.text)}"
    raise InteractionFormatError(f"not an action or event: {action!r}")


def render(item: Item, *, t0: float) -> str:
    """Render one event or action as one line.

    Events get the clock ``[t=X.XXs]`` (``item.at - t0``); a bare action renders as the
    model writes it (``CALL c1 {...}``; ``t0`` is not used); a :class:`ModelAction` as
    ``[t=X.XXs] MODEL CALL c1 {...}``. Input stream updates render as their event.

    Args:
        item: The event or action.
        t0: Wall-clock time the interaction started.

    Returns:
        The line (no line break in it).

    Raises:
        InteractionFormatError: If ``item`` is neither an event nor an action.
    """
    if isinstance(item, InputRecord):
        item = event_from_input(item)
    if isinstance(item, UserInput):
        kind = "final" if item.final else "partial"
        return f"{_clock(item.at, t0)} USER {kind}: {escape_text(item.text)}"
    if isinstance(item, EnvironmentEvent):
        source = "" if item.source is None else " " + _escape_source(item.source)
        return f"{_clock(item.at, t0)} EVENT{source}: {escape_text(item.text)}"
    if isinstance(item, ToolResult):
        status = "" if item.status == "success" else f" ({item.status})"
        return f"{_clock(item.at, t0)} RESULT {item.call_id}{status}: {escape_text(item.content)}"
    if isinstance(item, ModelAction):
        return f"{_clock(item.at, t0)} MODEL {_render_action(item.action)}"
    return _render_action(item)


def render_transcript(items: Iterable[Item], *, t0: float) -> str:
    r"""Render events and actions as a transcript, one line each (see :func:`render`).

    Args:
        items: Events and actions in time order.
        t0: Wall-clock time the interaction started.

    Returns:
        The lines joined by ``\n`` (no trailing line break).
    """
    return "\n".join(render(item, t0=t0) for item in items)


def render_actions(actions: Iterable[Action | ModelAction]) -> str:
    r"""Render actions as a model writes them: one bare action line each.

    A :class:`ModelAction` renders as its action (no clock, no ``MODEL``).
    ``parse_actions(render_actions(actions)) == list(actions)`` when only the last action
    may be an :class:`Answer`.

    Args:
        actions: The actions, in order.

    Returns:
        The lines joined by ``\n`` (no trailing line break).
    """
    return "\n".join(_render_action(a.action if isinstance(a, ModelAction) else a) for a in actions)


def to_messages(items: Iterable[Item], *, t0: float) -> list[BaseMessage]:
    """Render a transcript as chat messages for a model.

    Each run of consecutive events becomes one ``HumanMessage`` of clock-stamped lines;
    each run of consecutive model actions (:class:`ModelAction` or bare actions) becomes
    one ``AIMessage`` of action lines as the model writes them, without clock or
    ``MODEL`` (the runtime stamps the time). So a model is prompted with, and trained on,
    exactly the lines it must produce. Prepend :func:`interaction_system_prompt` as the
    system message.

    Args:
        items: Events and actions in time order.
        t0: Wall-clock time the interaction started.

    Returns:
        The messages, alternating between human and AI.
    """
    out: list[BaseMessage] = []
    lines: list[str] = []
    model_turn = False

    def flush() -> None:
        if lines:
            text = "\n".join(lines)
            out.append(AIMessage(content=text) if model_turn else HumanMessage(content=text))
            lines.clear()

    for item in items:
        is_action = isinstance(item, (ModelAction, *_ACTION_TYPES))
        if is_action != model_turn:
            flush()
            model_turn = is_action
        if isinstance(item, ModelAction):
            lines.append(_render_action(item.action))
        else:
            lines.append(render(item, t0=t0))
    flush()
    return out


# -- parsing -------------------------------------------------------------------------------


def _parse_body(body: str, keyword: str, line: str, lineno: int) -> tuple[str, dict[str, Any], Any]:
    try:
        obj = json.loads(body)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InteractionFormatError(
            f"{keyword} body is not valid JSON ({exc})", line=line, lineno=lineno
        ) from None
    if not isinstance(obj, dict):
        raise InteractionFormatError(
            f'{keyword} body must be a JSON object {{"name": ..., "arguments": {{...}}}}',
            line=line,
            lineno=lineno,
        )
    unknown = sorted(set(obj) - {"name", "arguments", "depends_on"})
    if unknown:
        raise InteractionFormatError(
            f"{keyword} body has unknown keys {unknown} "
            '(allowed: "name", "arguments", "depends_on")',
            line=line,
            lineno=lineno,
        )
    name, arguments = obj.get("name"), obj.get("arguments")
    if not isinstance(name, str) or not name.strip():
        raise InteractionFormatError(
            f'{keyword} body needs a non-empty string "name"', line=line, lineno=lineno
        )
    if not isinstance(arguments, dict):
        raise InteractionFormatError(
            f'{keyword} body needs an object "arguments" (use {{}} for none)',
            line=line,
            lineno=lineno,
        )
    depends_on = obj.get("depends_on", [])
    if not isinstance(depends_on, list):
        raise InteractionFormatError(
            f'{keyword} "depends_on" must be a list of ids', line=line, lineno=lineno
        )
    return name, arguments, depends_on


def _parse_line(line: str, lineno: int) -> Action:
    text = _PREFIX_RE.sub("", line, count=1)
    keyword, rest = ([*text.split(None, 1), ""])[:2]
    try:
        if keyword in ("CALL", "REVISE"):
            parts = rest.strip().split(None, 1)
            if not parts or parts[0].startswith("{"):
                raise InteractionFormatError(
                    f"{keyword} needs an id before its JSON body: {keyword} <id> {{...}}"
                )
            if len(parts) < 2:
                raise InteractionFormatError(f"{keyword} {parts[0]} has no JSON body")
            call_id, body = parts
            name, arguments, depends_on = _parse_body(body, keyword, line, lineno)
            cls = Call if keyword == "CALL" else Revise
            return cls(call_id, name, arguments, depends_on)
        if keyword == "REMOVE":
            ids = rest.split()
            if len(ids) != 1:
                raise InteractionFormatError("REMOVE takes exactly one id: REMOVE <id>")
            return Remove(ids[0])
        if keyword == "PAUSE":
            if rest.strip():
                raise InteractionFormatError("PAUSE takes nothing after it")
            return Pause()
        if keyword == "CONFIRM":
            return Confirm(tuple(rest.split()))
    except InteractionFormatError as exc:
        if exc.line is not None:
            raise
        raise InteractionFormatError(str(exc), line=line, lineno=lineno) from None
    raise InteractionFormatError(
        f"not an action; a line must start with one of {', '.join(ACTION_KEYWORDS)}",
        line=line,
        lineno=lineno,
    )


def parse_actions(text: str) -> list[Action]:
    r"""Read the actions in a model's output, one per line.

    Blank lines are skipped, and a leading clock ``[t=...]`` and ``MODEL`` are tolerated.
    ``ANSWER`` is the last action: the rest of the output after it, even over several
    lines, is its text (unescaped, trailing blank lines dropped; a bare ``ANSWER`` line
    means the text starts on the next line). For every action ``a``,
    ``parse_actions(render(a, t0=...)) == [a]``.

    Args:
        text: The model's output.

    Returns:
        The actions, in order.

    Raises:
        InteractionFormatError: On a line that is not an action (the error names the line
            and its number), a malformed JSON body, a bad id, or an empty answer.
    """
    if not isinstance(text, str):
        raise InteractionFormatError(f"model output must be a str, got {type(text).__name__}")
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    actions: list[Action] = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        lineno = index + 1
        stripped = _PREFIX_RE.sub("", line, count=1)
        if stripped == "ANSWER" or stripped.startswith("ANSWER "):
            first = [stripped[len("ANSWER ") :]] if stripped != "ANSWER" else []
            rest = "\n".join([*first, *lines[index + 1 :]])
            rest = re.sub(r"\n\s*\Z", "", rest)
            try:
                actions.append(Answer(unescape_text(rest)))
            except InteractionFormatError as exc:
                raise InteractionFormatError(str(exc), line=line, lineno=lineno) from None
            return actions
        actions.append(_parse_line(line, lineno))
    return actions


_EVENT_RE = re.compile(r"\[t=(\d+(?:\.\d+)?)s\] (USER|EVENT|RESULT|MODEL)(.*)", re.DOTALL)
_USER_RE = re.compile(r" (partial|final):(?: (.*))?", re.DOTALL)
_SOURCE_RE = re.compile(r"(?: ([^:]*))?:(?: (.*))?", re.DOTALL)
_RESULT_RE = re.compile(r" (\S*[^\s:])(?: \((error|cancelled)\))?:(?: (.*))?", re.DOTALL)
_STATUS_OF: dict[str | None, ResultStatus] = {
    None: "success",
    "error": "error",
    "cancelled": "cancelled",
}


def _parse_event_line(line: str, lineno: int, t0: float) -> Event:
    m = _EVENT_RE.fullmatch(line.lstrip(" \t"))
    if m is None:
        raise InteractionFormatError(
            "not an event; a line must look like [t=1.20s] USER|EVENT|RESULT|MODEL ...",
            line=line,
            lineno=lineno,
        )
    at = t0 + float(m.group(1))
    kind, rest = m.group(2), m.group(3)
    try:
        if kind == "MODEL":
            body = rest.removeprefix(" ")
            if body == "ANSWER" or body.startswith("ANSWER "):  # in a transcript: one line
                return ModelAction(Answer(unescape_text(body[len("ANSWER ") :])), at)
            return ModelAction(_parse_line(line, lineno), at)
        if kind == "USER":
            um = _USER_RE.fullmatch(rest)
            if um is None:
                raise InteractionFormatError("USER must be followed by 'partial: ' or 'final: '")
            return UserInput(unescape_text(um.group(2) or ""), um.group(1) == "final", at)
        if kind == "EVENT":
            em = _SOURCE_RE.fullmatch(rest)
            if em is None:
                raise InteractionFormatError("EVENT must be followed by ': ' or ' <source>: '")
            source = None if em.group(1) is None else unescape_text(em.group(1))
            return EnvironmentEvent(unescape_text(em.group(2) or ""), at, source)
        rm = _RESULT_RE.fullmatch(rest)
        if rm is None:
            raise InteractionFormatError(
                "RESULT must be followed by ' <id>: ' or ' <id> (error|cancelled): '"
            )
        return ToolResult(
            rm.group(1), unescape_text(rm.group(3) or ""), at, _STATUS_OF[rm.group(2)]
        )
    except InteractionFormatError as exc:
        if exc.line is not None:
            raise
        raise InteractionFormatError(str(exc), line=line, lineno=lineno) from None


def parse_events(text: str, *, t0: float = 0.0) -> list[Event]:
    """Read a rendered transcript back into events (the inverse of :func:`render_transcript`).

    Every non-blank line must be a clock-stamped event (``USER``, ``EVENT``, ``RESULT``
    or ``MODEL``); text is unescaped; an event's time is ``t0`` plus its clock (so times
    come back rounded to 10 ms). Input stream updates come back as :class:`UserInput` /
    :class:`EnvironmentEvent`. In a transcript an ``ANSWER`` is one line.

    Args:
        text: The transcript, for example the content of a ``HumanMessage`` made by
            :func:`to_messages`.
        t0: Wall-clock time the interaction started.

    Returns:
        The events, in order.

    Raises:
        InteractionFormatError: On a line that is not an event (the error names it).
    """
    if not isinstance(text, str):
        raise InteractionFormatError(f"a transcript must be a str, got {type(text).__name__}")
    events: list[Event] = []
    for index, raw in enumerate(text.split("\n")):
        line = raw[:-1] if raw.endswith("\r") else raw
        if line.strip():
            events.append(_parse_event_line(line, index + 1, t0))
    return events


_IN_INTERACTION_PROMPT = frozenset({"interaction_system_prompt"})


def __getattr__(name: str) -> Any:
    """Names that moved to :mod:`~langgraph_speculative.speculative.interaction_prompt`.

    ``interaction_system_prompt`` is defined there now and stays importable from here,
    imported on first use (that module builds on this one).

    Args:
        name: The attribute asked for.

    Returns:
        The moved name's value.

    Raises:
        AttributeError: If ``name`` is not a name of this module.
    """
    if name not in _IN_INTERACTION_PROMPT:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module("langgraph_speculative.speculative.interaction_prompt")
    value = getattr(module, name)
    globals()[name] = value
    return value
