"""The token monitor: watch a model's stream and report each tool call the moment it is complete.

AsyncLM's token monitor sits on the model's output. :class:`TokenMonitor` reads LangChain
``AIMessageChunk`` objects from any model (the scripted model, ``ChatOpenAI``, or a model
that writes CML text) and turns them into events:

* :class:`TextDelta`: visible text (CML blocks removed);
* :class:`CallStarted`: a call is being written (the *critical section* begins: no
  interrupt may be injected until it ends);
* :class:`CallComplete`: the call's arguments are complete; hand it to the executor now;
* :class:`CallMalformed`: the call cannot be read; answer it with an error message (the
  run goes on);
* :class:`Trap`: the model wrote ``[TRAP][END]``: it waits for a result;
* :class:`InjectionAttempt`: the model wrote an ``[INTR]`` block itself; it is rejected.

Native tool calls (OpenAI-style ``tool_call_chunks``) are complete the moment strict
``json.loads`` of their accumulated ``args`` returns a dict; a higher ``index``, a
``finish_reason`` or :meth:`TokenMonitor.finish` close calls whose arguments never
closed. CML markers are recognised even when split across chunks at any character.

Example:
    ```python
    from langchain_core.messages import AIMessageChunk
    from langgraph_speculative.async_calling.token_monitor import CallComplete, TokenMonitor

    monitor = TokenMonitor()
    stream = ['Let me check. [CALL] c1 [HE', 'AD] {"name": "get_weather", ',
              '"arguments": {"city": "Paris"}} [END]', "[TRAP][END]"]
    for piece in stream:
        for event in monitor.feed(AIMessageChunk(content=piece)):
            if isinstance(event, CallComplete):
                print("run now:", event.call["name"], event.call["args"])
    monitor.finish()
    print(repr(monitor.text))  # 'Let me check. '
    ```
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from langchain_core.messages import AIMessage, AIMessageChunk, ToolCall
from langchain_core.messages.tool import tool_call

from langgraph_speculative.async_calling.cml import CALL, END, HEAD, INTR, TRAP, parse_call_body
from langgraph_speculative.errors import CMLSyntaxError, StreamFormatError

__all__ = [
    "CallComplete",
    "CallMalformed",
    "CallStarted",
    "InjectionAttempt",
    "MonitorEvent",
    "TextDelta",
    "TokenMonitor",
    "Trap",
]


# -- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Visible text written by the model (CML blocks removed).

    Attributes:
        text: The new text.
    """

    text: str


@dataclass(frozen=True, slots=True)
class CallStarted:
    """A tool call is being written: the critical section begins.

    Attributes:
        index: The call's stream index (native) or CML block number (0, 1, ...).
        id: The call id.
        name: The tool name, if known yet (``None`` for CML: the name is in the body).
    """

    index: int
    id: str
    name: str | None


@dataclass(frozen=True, slots=True)
class CallComplete:
    """A tool call's arguments are complete: it can run now. The critical section ends.

    Attributes:
        index: The call's stream index (native) or CML block number.
        call: The call, with ``name``, ``args`` and ``id``.
    """

    index: int
    call: ToolCall


@dataclass(frozen=True, slots=True)
class CallMalformed:
    """A tool call cannot be read. The critical section ends; the run goes on.

    The node answers it with an error ``ToolMessage`` for ``id``. It may come without a
    :class:`CallStarted` when a CML block broke before its ``[HEAD]``; ``index`` is -1
    for a native fragment that could not be assigned to any call.

    Attributes:
        index: The call's stream index, CML block number, or -1.
        id: The call id (generated when the stream gave none).
        name: The tool name, if known.
        raw: The raw arguments (native) or the raw block text (CML).
        error: What is wrong.
    """

    index: int
    id: str
    name: str | None
    raw: str
    error: str


@dataclass(frozen=True, slots=True)
class Trap:
    """The model wrote ``[TRAP][END]``: nothing left to do until a result arrives."""


@dataclass(frozen=True, slots=True)
class InjectionAttempt:
    """The model wrote an ``[INTR]`` block itself. It is rejected, never taken as a result.

    Attributes:
        raw: The block text (not passed on as visible text).
    """

    raw: str


MonitorEvent: TypeAlias = (
    TextDelta | CallStarted | CallComplete | CallMalformed | Trap | InjectionAttempt
)
"""Any event :class:`TokenMonitor` reports."""


# -- native calls ----------------------------------------------------------------------------

_NON_SPACE = re.compile(r"\S")
_STRUCTURE = re.compile(r'["{}\[\]]')
_IN_STRING = re.compile(r'["\\]')


class _NativeCall:
    """One streamed native call and an incremental scan of its JSON arguments.

    The scan tracks string/escape state and bracket depth, so each argument character is
    looked at once; ``json.loads`` runs once, when the top-level object closes.
    """

    __slots__ = (
        "args_parts",
        "closed",
        "depth",
        "done",
        "doomed",
        "escape",
        "id",
        "in_string",
        "index",
        "name",
        "parsed",
        "started",
    )

    def __init__(self, index: int, call_id: str, name: str | None) -> None:
        self.index = index
        self.id = call_id
        self.name = name
        self.args_parts: list[str] = []
        self.started = False  # saw the first non-space character
        self.doomed = False  # that character was not "{": can never be an object
        self.closed = False  # the top-level object closed
        self.depth = 0
        self.in_string = False
        self.escape = False
        self.done = False  # CallComplete or CallMalformed was reported
        self.parsed: dict[str, Any] | None = None

    @property
    def raw(self) -> str:
        if len(self.args_parts) > 1:
            self.args_parts = ["".join(self.args_parts)]
        return self.args_parts[0] if self.args_parts else ""

    def add(self, fragment: str) -> bool:
        """Append an argument fragment; return True if the arguments are now complete."""
        if not fragment:
            return False
        self.args_parts.append(fragment)
        if self.closed or self.doomed:
            return False
        pos, n = 0, len(fragment)
        if not self.started:
            first = _NON_SPACE.search(fragment)
            if first is None:
                return False
            self.started = True
            if fragment[first.start()] != "{":
                self.doomed = True
                return False
            pos = first.start()
        while pos < n:
            if self.in_string:
                if self.escape:
                    self.escape = False
                    pos += 1
                    continue
                m = _IN_STRING.search(fragment, pos)
                if m is None:
                    return False
                pos = m.end()
                if m.group() == "\\":
                    self.escape = True
                else:
                    self.in_string = False
                continue
            m = _STRUCTURE.search(fragment, pos)
            if m is None:
                return False
            pos = m.end()
            c = m.group()
            if c == '"':
                self.in_string = True
            elif c in "{[":
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth <= 0:
                    self.closed = True
                    break
        if not self.closed:
            return False
        try:
            value = json.loads(self.raw)
        except ValueError:
            return False  # invalid for good; reported at the next fallback point
        if isinstance(value, dict):
            self.parsed = value
            return True
        return False  # pragma: no cover - an object that closed is a dict or an error


# -- CML scanner states ----------------------------------------------------------------------

_TEXT, _TRAP, _CALL_ID, _CALL_BODY, _INTR = range(5)
_WATCH: dict[int, tuple[str, ...]] = {
    _TEXT: (CALL, INTR, TRAP),
    _CALL_ID: (HEAD, END, CALL, INTR),
    _CALL_BODY: (END, CALL, INTR),
    _INTR: (END, CALL),
}


def _content_text(content: str | list[str | dict[Any, Any]]) -> str:
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "".join(parts)


class TokenMonitor:
    """Watch a model's stream and report tool calls, text, traps and injection attempts.

    Feed every chunk with :meth:`feed` and act on the events it returns at once; call
    :meth:`finish` when the stream ends. One monitor reads one model response.

    Native calls (``tool_call_chunks``) are tracked per ``index``: the call starts at its
    first fragment (:class:`CallStarted`) and is complete the moment strict ``json.loads``
    of its accumulated arguments returns a dict (:class:`CallComplete`). Arguments that
    are still open when a higher index starts, when a chunk carries
    ``response_metadata["finish_reason"]``, or at :meth:`finish` are closed then: empty
    arguments mean ``{}``; anything else that does not parse to an object is
    :class:`CallMalformed`. Fragments for a call already reported are ignored. A fragment
    without ``index`` joins the open call with its id, else starts a new call if it
    carries an id or name, else joins the only open call; if that is ambiguous it is
    reported as :class:`CallMalformed` with index -1. Nothing the model streams raises.

    With ``cml=True`` the content text is also read as CML (see
    :mod:`langgraph_speculative.async_calling.cml`). The first ``[END]`` after ``[HEAD]`` closes a
    call block. A ``[CALL]`` or ``[INTR]`` inside an open call block makes that call
    :class:`CallMalformed` and opens the new block. ``[TRAP]`` is a :class:`Trap` (an
    ``[END]`` after it, whitespace allowed between, is swallowed). A marker split across
    chunks is held back until it is decided, so :attr:`text` may lag by up to five
    characters.

    Args:
        cml: Read CML markers in the content text.
        id_prefix: Prefix of generated call ids.
        param_order: Parameter order per tool, for positional arguments in Python-style
            CML call bodies.

    Example:
        ```python
        from langchain_core.messages import AIMessageChunk
        from langgraph_speculative.async_calling.token_monitor import TokenMonitor

        monitor = TokenMonitor()
        first = {"name": "search", "args": "", "id": "call_1", "index": 0}
        events = monitor.feed(AIMessageChunk(content="", tool_call_chunks=[first]))
        assert monitor.in_call
        frag = {"name": None, "args": '{"q": "x"}', "id": None, "index": 0}
        events = monitor.feed(AIMessageChunk(content="", tool_call_chunks=[frag]))
        print(events)  # [CallComplete(index=0, call={...'name': 'search'...})]
        assert not monitor.in_call and monitor.calls[0]["args"] == {"q": "x"}
        ```
    """

    def __init__(
        self,
        *,
        cml: bool = True,
        id_prefix: str = "call",
        param_order: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._cml = cml
        self._id_prefix = id_prefix
        self._param_order = param_order
        self._calls: list[ToolCall] = []
        self._text_parts: list[str] = []
        self._finished = False
        # native calls
        self._native: dict[int, _NativeCall] = {}
        self._open: dict[int, _NativeCall] = {}
        self._orphans = 0
        # CML
        self._state = _TEXT
        self._hold = ""
        self._cml_count = 0
        self._block_index = -1
        self._block_id: str | None = None
        self._id_parts: list[str] = []
        self._body_parts: list[str] = []
        self._raw_parts: list[str] = []

    # -- public API ----------------------------------------------------------------------
    @property
    def in_call(self) -> bool:
        """Whether the stream is inside a call being written (the critical section).

        True while a native call's arguments are incomplete, or inside a CML ``[CALL]``
        or ``[INTR]`` block. No interrupt may be injected while it is True.
        """
        return bool(self._open) or self._state in (_CALL_ID, _CALL_BODY, _INTR)

    @property
    def calls(self) -> list[ToolCall]:
        """The calls completed so far, in order of completion (a copy)."""
        return list(self._calls)

    @property
    def text(self) -> str:
        """The visible text so far (CML blocks removed; held-back marker prefixes excluded)."""
        if len(self._text_parts) > 1:
            self._text_parts = ["".join(self._text_parts)]
        return self._text_parts[0] if self._text_parts else ""

    def feed(self, chunk: AIMessageChunk | AIMessage) -> list[MonitorEvent]:
        """Read one chunk of the stream.

        The chunk's content text is read first, then its tool-call fragments in order,
        then its ``finish_reason`` (which closes every open native call). A full
        ``AIMessage`` (not a chunk) is read as one chunk holding its whole calls.

        Args:
            chunk: The next chunk.

        Returns:
            The events this chunk caused, in stream order.

        Raises:
            StreamFormatError: If called after :meth:`finish`.
        """
        if self._finished:
            raise StreamFormatError("TokenMonitor.feed() called after finish()")
        out: list[MonitorEvent] = []
        text = _content_text(chunk.content)
        if text:
            if self._cml:
                self._scan(text, out)
            else:
                self._emit_text(text, out)
        if isinstance(chunk, AIMessageChunk):
            for tc in chunk.tool_call_chunks:
                self._native_fragment(
                    tc.get("index"), tc.get("id"), tc.get("name"), tc.get("args") or "", out
                )
        else:
            for call in chunk.tool_calls:
                args = json.dumps(call["args"], ensure_ascii=False)
                self._native_fragment(None, call.get("id"), call["name"], args, out)
        if chunk.response_metadata.get("finish_reason"):
            self._close_native(None, out)
        return out

    def finish(self) -> list[MonitorEvent]:
        """End the stream: close whatever is still open.

        Held-back text is flushed; an unterminated CML call block is
        :class:`CallMalformed`, an unterminated ``[INTR]`` block an
        :class:`InjectionAttempt`, a pending ``[TRAP]`` a :class:`Trap`; native calls
        still open are completed (empty arguments: ``{}``) or malformed. Calling it again
        returns no events.

        Returns:
            The closing events.
        """
        if self._finished:
            return []
        out: list[MonitorEvent] = []
        hold, self._hold = self._hold, ""
        state = self._state
        if state == _TEXT:
            if hold:
                self._emit_text(hold, out)
        elif state == _TRAP:
            out.append(Trap())
        elif state in (_CALL_ID, _CALL_BODY):
            self._raw_parts.append(hold)
            self._cml_malformed("the stream ended inside a [CALL] block (no [END])", out)
        else:
            self._raw_parts.append(hold)
            self._injection(out)
        self._state = _TEXT
        self._close_native(None, out)
        self._finished = True
        return out

    # -- shared helpers ------------------------------------------------------------------
    def _emit_text(self, text: str, out: list[MonitorEvent]) -> None:
        self._text_parts.append(text)
        if out and isinstance(out[-1], TextDelta):
            out[-1] = TextDelta(out[-1].text + text)
        else:
            out.append(TextDelta(text))

    def _complete(self, index: int, call: ToolCall, out: list[MonitorEvent]) -> None:
        self._calls.append(call)
        out.append(CallComplete(index=index, call=call))

    # -- native calls --------------------------------------------------------------------
    def _native_fragment(
        self,
        index: int | None,
        call_id: str | None,
        name: str | None,
        args: str,
        out: list[MonitorEvent],
    ) -> None:
        if index is None:
            index = self._resolve_index(call_id, name, args, out)
            if index is None:
                return
        call = self._native.get(index)
        if call is None:
            self._close_native(index, out)  # a higher index started: close lower ones
            call = _NativeCall(index, call_id or f"{self._id_prefix}_{index}", name)
            self._native[index] = call
            self._open[index] = call
            out.append(CallStarted(index=index, id=call.id, name=name))
        elif call.done:
            return
        elif name and name != call.name:
            call.name = (call.name or "") + name  # a name streamed in fragments
        if call.add(args):
            self._finish_native(call, out)

    def _resolve_index(
        self, call_id: str | None, name: str | None, args: str, out: list[MonitorEvent]
    ) -> int | None:
        if call_id:
            for call in self._native.values():
                if call.id == call_id:
                    return call.index
        if call_id or name:
            return max(self._native, default=-1) + 1
        if len(self._open) == 1:
            return next(iter(self._open))
        self._orphans += 1
        out.append(
            CallMalformed(
                index=-1,
                id=f"{self._id_prefix}_orphan_{self._orphans}",
                name=None,
                raw=args,
                error="a tool-call fragment without index, id or name, and "
                f"{len(self._open)} calls open: it cannot be assigned",
            )
        )
        return None

    def _finish_native(self, call: _NativeCall, out: list[MonitorEvent]) -> None:
        """Report a call whose arguments parsed (or are being closed by a fallback)."""
        call.done = True
        self._open.pop(call.index, None)
        args = call.parsed
        error: str | None = None
        raw = call.raw
        if args is None:
            if not raw.strip():
                args = {}
            else:
                try:
                    value = json.loads(raw)
                except ValueError as exc:
                    error = f"arguments are not valid JSON: {exc}"
                else:
                    if isinstance(value, dict):
                        args = value
                    else:
                        error = f"arguments must be a JSON object, got {type(value).__name__}"
        if error is None and not call.name:
            error = "the call has no tool name"
        if error is not None or args is None:
            out.append(
                CallMalformed(
                    index=call.index,
                    id=call.id,
                    name=call.name,
                    raw=raw,
                    error=error or "arguments are not a JSON object",
                )
            )
            return
        self._complete(call.index, tool_call(name=call.name or "", args=args, id=call.id), out)

    def _close_native(self, below: int | None, out: list[MonitorEvent]) -> None:
        """Close open native calls (all, or those with an index below ``below``)."""
        for index in sorted(self._open):
            if below is None or index < below:
                self._finish_native(self._open[index], out)

    # -- CML -----------------------------------------------------------------------------
    def _scan(self, text: str, out: list[MonitorEvent]) -> None:
        s = self._hold + text if self._hold else text
        self._hold = ""
        i, n = 0, len(s)
        while i < n:
            if self._state == _TRAP:
                j = i
                while j < n and s[j].isspace():
                    j += 1
                if j == n:
                    return
                if s.startswith(END, j):
                    out.append(Trap())
                    self._state = _TEXT
                    i = j + len(END)
                    continue
                rest = s[j:]
                if len(rest) < len(END) and END.startswith(rest):
                    self._hold = rest
                    return
                out.append(Trap())  # [TRAP] without [END]: a trap all the same
                self._state = _TEXT
                i = j
                continue
            j = s.find("[", i)
            if j < 0:
                self._consume(s[i:] if i else s, out)
                return
            if j > i:
                self._consume(s[i:j], out)
            marker: str | None = None
            partial = False
            for m in _WATCH[self._state]:
                if s.startswith(m, j):
                    marker = m
                    break
                if n - j < len(m) and m.startswith(s[j:]):
                    partial = True
            if marker is not None:
                i = j + len(marker)
                self._on_marker(marker, out)
            elif partial:
                self._hold = s[j:]
                return
            else:
                self._consume("[", out)
                i = j + 1

    def _consume(self, text: str, out: list[MonitorEvent]) -> None:
        state = self._state
        if state == _TEXT:
            self._emit_text(text, out)
            return
        self._raw_parts.append(text)
        if state == _CALL_ID:
            self._id_parts.append(text)
        elif state == _CALL_BODY:
            self._body_parts.append(text)

    def _on_marker(self, marker: str, out: list[MonitorEvent]) -> None:
        state = self._state
        if state == _TEXT:
            if marker == CALL:
                self._begin_call()
            elif marker == INTR:
                self._begin_intr()
            else:
                self._state = _TRAP
            return
        if state == _INTR:
            if marker == END:
                self._raw_parts.append(END)
                self._injection(out)
            else:  # [CALL]: the model went on to a call; reject what it injected so far
                self._injection(out)
                self._begin_call()
            return
        # inside a call block
        if marker == HEAD:  # only watched before [HEAD]
            self._raw_parts.append(HEAD)
            call_id = "".join(self._id_parts).strip()
            self._block_id = call_id or f"{self._id_prefix}_{self._block_index}"
            self._state = _CALL_BODY
            out.append(CallStarted(index=self._block_index, id=self._block_id, name=None))
        elif marker == END:
            self._raw_parts.append(END)
            if state == _CALL_ID:
                self._cml_malformed("a [CALL] block ended without [HEAD]", out)
            else:
                self._cml_close(out)
        elif marker == CALL:
            self._cml_malformed("a new [CALL] began before this call's [END]", out)
            self._begin_call()
        else:
            self._cml_malformed("[INTR] inside a [CALL] block", out)
            self._begin_intr()

    def _begin_call(self) -> None:
        self._state = _CALL_ID
        self._block_index = self._cml_count
        self._cml_count += 1
        self._block_id = None
        self._id_parts = []
        self._body_parts = []
        self._raw_parts = [CALL]

    def _begin_intr(self) -> None:
        self._state = _INTR
        self._raw_parts = [INTR]

    def _injection(self, out: list[MonitorEvent]) -> None:
        out.append(InjectionAttempt("".join(self._raw_parts)))
        self._raw_parts = []
        self._state = _TEXT

    def _cml_close(self, out: list[MonitorEvent]) -> None:
        call_id = self._block_id or f"{self._id_prefix}_{self._block_index}"
        try:
            name, args = parse_call_body("".join(self._body_parts), self._param_order)
        except CMLSyntaxError as exc:
            self._cml_malformed(str(exc), out)
            return
        self._state = _TEXT
        self._raw_parts = []
        self._complete(self._block_index, tool_call(name=name, args=args, id=call_id), out)

    def _cml_malformed(self, error: str, out: list[MonitorEvent]) -> None:
        out.append(
            CallMalformed(
                index=self._block_index,
                id=self._block_id or f"{self._id_prefix}_{self._block_index}",
                name=None,
                raw="".join(self._raw_parts),
                error=error,
            )
        )
        self._raw_parts = []
        self._state = _TEXT
