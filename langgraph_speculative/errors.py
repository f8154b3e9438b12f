"""Typed errors raised by langgraph-speculative.

Every error the library raises on bad input derives from :class:`SpeculativeError`, so an
application can catch the whole family in one place and still tell the cases apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "AsyncOnlyError",
    "CMLSyntaxError",
    "CacheCorruptError",
    "CheckpointerError",
    "ConcurrentResumeError",
    "ConcurrentWriterError",
    "DataFormatError",
    "EmbeddingDimensionError",
    "IllegalTransitionError",
    "InputClosedError",
    "InputUpdateError",
    "InteractionFormatError",
    "JournalCorruptError",
    "MissingParameterError",
    "NotFittedError",
    "OutcomeUnknownError",
    "PlanCacheError",
    "PlanValidationError",
    "RequestError",
    "RequestLimitError",
    "ScriptError",
    "SkipKind",
    "SkippedRecord",
    "SpeculativeError",
    "StalledError",
    "StreamFormatError",
    "ToolTimeoutError",
    "UnknownCallError",
    "UnsafeBeforeCommitError",
    "WaitTimeoutError",
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


SkipKind = Literal["malformed", "invalid"]
"""Why a lenient loader skipped a record: ``malformed`` (its structure is broken: not JSON,
a missing or mistyped field, no answer) or ``invalid`` (well-formed, but it cannot be used:
a ground-truth call that fails its own schema, an unknown function)."""


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A record a lenient loader left out, where a strict one raises :class:`DataFormatError`.

    The BFCL loader and the labelled-request loader of the plan cache both report these,
    and every benchmark lists them under ``skipped`` in its JSON report.

    Attributes:
        id: The record's id (the 0-based index for files whose records have none; for a
            line with no readable id, ``"<file> line N"``).
        reason: What is wrong, naming the field, function or argument.
        kind: ``malformed`` or ``invalid`` (:data:`SkipKind`).
        file: The name of the file the record is in.
        line: Its 1-based line in that file, where known.

    Example:
        ```python
        from langgraph_speculative.errors import SkippedRecord

        skipped = SkippedRecord("r7", "field 'text' is missing", "malformed", "dev.json", 9)
        assert skipped.to_json()["id"] == "r7"
        ```
    """

    id: str
    reason: str
    kind: SkipKind = "malformed"
    file: str = ""
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry of a report's ``skipped`` list: ``{id, reason, kind, file, line}``."""
        return {
            "id": self.id,
            "reason": self.reason,
            "kind": self.kind,
            "file": self.file,
            "line": self.line,
        }


class ToolTimeoutError(SpeculativeError, TimeoutError):
    """A tool call ran longer than the executor's per-call timeout."""


class WaitTimeoutError(SpeculativeError, TimeoutError):
    """A node waited longer than its bound for something that did not come.

    Every wait of the agent nodes (a model's next stream chunk or session chunk, a new
    input update or tool result to show the model, a tool result a node needs) is bounded
    by the node's ``wait_timeout``. The message says what was awaited, for how long, and
    what the run was waiting on then.

    Attributes:
        awaited: What the node waited for.
        timeout: The bound, in seconds.
    """

    def __init__(self, awaited: str, timeout: float, *, detail: str = "") -> None:
        self.awaited = awaited
        self.timeout = timeout
        suffix = f" ({detail})" if detail else ""
        super().__init__(
            f"waited {timeout:g} s for {awaited} without it arriving{suffix}; "
            "raise wait_timeout if this can be expected"
        )


class StalledError(SpeculativeError):
    """Progress is impossible: the model waits for something that can never arrive.

    Raised at once, instead of waiting forever, when a model pauses (``PAUSE``, a trap, or
    an interruptible session waiting for an injection) while no input update, tool result
    or cancellation notice can reach it any more.
    """


class RequestLimitError(SpeculativeError):
    """The model made the most requests a node allows without giving its final answer.

    See ``max_model_requests`` of
    :class:`~langgraph_speculative.nodes.async_calling.AsyncToolCallingNode`.

    Attributes:
        limit: The request limit that was reached.
    """

    def __init__(self, message: str, *, limit: int) -> None:
        self.limit = limit
        super().__init__(message)


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

    Raised by :class:`~langgraph_speculative.speculative.input_stream.InputStream` when, for
    example, an update's text is not a string, is empty, is longer than the stream's ``max_chars``,
    or a user update arrives after the final one.
    """


class InputClosedError(SpeculativeError):
    """The input stream was closed: nothing more will arrive, and nothing more is accepted.

    Readers waiting for an update that never came get this error when the stream closes.
    """


class InteractionFormatError(StreamFormatError):
    """A line of model output is not an action of the clock-based interaction format.

    See :mod:`langgraph_speculative.speculative.interaction_format`.

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


# --- plan reuse (the plan cache) ---------------------------------------------------------


class PlanCacheError(SpeculativeError):
    """Base class of the plan cache's errors (intent, parameters, embeddings, plans, stores)."""


class RequestError(PlanCacheError, ValueError):
    """A request given to the plan cache cannot be used: empty, blank, or over the size limit."""


class NotFittedError(PlanCacheError):
    """A model of the plan cache was used before it was fitted or loaded.

    The models are the intent classifier, the parameter extractor and fitted embedders.
    """


class EmbeddingDimensionError(PlanCacheError, ValueError):
    """A vector has another dimension than its index (or the embedder gave one of another)."""


class PlanValidationError(PlanCacheError, ValueError):
    """A structured plan is invalid.

    For example: an unknown dependency, a cycle, a duplicate step id, or an input that
    references a parameter or step output that does not exist.
    """


class MissingParameterError(PlanValidationError):
    """A plan was filled without a value for a parameter it references.

    Attributes:
        missing: The names of the parameters that had no value.
    """

    def __init__(self, message: str, *, missing: tuple[str, ...] = ()) -> None:
        self.missing = missing
        super().__init__(message)


class CacheCorruptError(PlanCacheError):
    """A saved cache (directory or table) is damaged, partly written, or of another format.

    Nothing is served from it; the error names the file or record that failed to check.
    """


class ConcurrentWriterError(PlanCacheError):
    """Another writer holds the cache directory (or changed it since it was loaded)."""


# --- the interrupt-aware checkpointer ----------------------------------------------------


class CheckpointerError(SpeculativeError):
    """Base class of the interrupt-aware checkpointer's errors."""


class JournalCorruptError(CheckpointerError):
    """A ledger journal record in the checkpoint store is damaged or not one of ours."""


class ConcurrentResumeError(CheckpointerError):
    """Another live process is already running (or resuming) the same thread."""


class OutcomeUnknownError(CheckpointerError):
    """A tool was running at a crash and cannot safely run again: its outcome is unknown.

    The tool is not idempotent and takes no idempotency key, so whether its side effect
    happened is unknown; it is reported, never silently run twice.

    Attributes:
        call_id: The tool call id.
        tool: The tool's name.
    """

    def __init__(self, message: str, *, call_id: str, tool: str) -> None:
        self.call_id = call_id
        self.tool = tool
        super().__init__(message)


# --- async-only nodes ------------------------------------------------------------------


class AsyncOnlyError(SpeculativeError, TypeError):
    """A node (or middleware) that runs only asynchronously was called synchronously.

    Run the graph with ``ainvoke`` / ``astream`` instead of ``invoke`` / ``stream``.

    Attributes:
        what: The name of the async-only node or middleware.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(
            f"{what} is async only: call the graph with ainvoke/astream (not invoke/stream)"
        )
