"""Typed errors raised by langgraph-speculative.

Every error the library raises on bad input derives from :class:`SpeculativeError`, so an
application can catch the whole family in one place and still tell the cases apart.
"""

from __future__ import annotations

__all__ = [
    "CMLSyntaxError",
    "DataFormatError",
    "IllegalTransitionError",
    "InputClosedError",
    "InputUpdateError",
    "InteractionFormatError",
    "ScriptError",
    "SpeculativeError",
    "StreamFormatError",
    "ToolTimeoutError",
    "UnknownCallError",
    "UnsafeBeforeCommitError",
]


class SpeculativeError(Exception):
    """Base class of every error raised by langgraph-speculative."""


class IllegalTransitionError(SpeculativeError):
    """A call record was asked to move to a state its state machine does not allow.

    Attributes:
        call_id: The id of the call record.
        current: The state the record is in.
        requested: The state that was asked for.
    """

    def __init__(self, call_id: str, current: str, requested: str) -> None:
        self.call_id = call_id
        self.current = current
        self.requested = requested
        super().__init__(f"call {call_id!r}: illegal transition {current} -> {requested}")


class UnknownCallError(SpeculativeError, KeyError):
    """A call id was looked up that the ledger does not hold."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        super().__init__(f"no call with id {call_id!r} in the ledger")

    def __str__(self) -> str:
        return str(self.args[0])


class UnsafeBeforeCommitError(SpeculativeError):
    """An unsafe (side-effecting) tool was asked to run before its call was committed."""


class ScriptError(SpeculativeError):
    """A scripted model or task script is inconsistent.

    For example it names a tool the task does not have, or the model was asked for a turn
    the script cannot give.
    """


class StreamFormatError(SpeculativeError):
    """A model stream chunk does not have the shape the reader expects."""


class DataFormatError(SpeculativeError):
    """A data file (for example a BFCL record) is malformed.

    Attributes:
        record_id: The id of the offending record, or ``None`` if it has none.
    """

    def __init__(self, message: str, *, record_id: str | None = None) -> None:
        self.record_id = record_id
        prefix = f"record {record_id!r}: " if record_id is not None else ""
        super().__init__(prefix + message)


class ToolTimeoutError(SpeculativeError, TimeoutError):
    """A tool call ran longer than the executor's per-call timeout."""


class CMLSyntaxError(StreamFormatError):
    """The body of a CML ``[CALL] id [HEAD] body [END]`` block cannot be read as a call.

    The body must be ``{"name": ..., "arguments": {...}}`` JSON or a Python-style call of
    literal arguments (``get_weather(city="Paris")``).

    Attributes:
        body: The offending body text.
    """

    def __init__(self, message: str, *, body: str = "") -> None:
        self.body = body
        super().__init__(message)


class InputUpdateError(SpeculativeError):
    """An input update is malformed or comes too late.

    Raised by :class:`~langgraph_speculative.input_stream.InputStream` when, for example,
    an update's text is not a string, is empty, is longer than the stream's ``max_chars``,
    or a user update arrives after the final one.
    """


class InputClosedError(SpeculativeError):
    """The input stream was closed: nothing more will arrive, and nothing more is accepted.

    Readers waiting for an update that never came get this error when the stream closes.
    """


class InteractionFormatError(StreamFormatError):
    """A line of model output is not an action of the clock-based interaction format.

    See :mod:`langgraph_speculative.interaction_format`.

    Attributes:
        line: The offending line (``None`` when the error is not about one line).
        lineno: Its 1-based number in the text that was parsed, if known.
    """

    def __init__(self, message: str, *, line: str | None = None, lineno: int | None = None) -> None:
        self.line = line
        self.lineno = lineno
        where = ""
        if line is not None:
            where = f" (line {lineno}: {line!r})" if lineno is not None else f" (line {line!r})"
        super().__init__(message + where)
