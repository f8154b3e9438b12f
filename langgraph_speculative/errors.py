"""Typed errors raised by langgraph-speculative.

Every error the library raises on bad input derives from :class:`SpeculativeError`, so an
application can catch the whole family in one place and still tell the cases apart.
"""

from __future__ import annotations

__all__ = [
    "CMLSyntaxError",
    "DataFormatError",
    "IllegalTransitionError",
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
