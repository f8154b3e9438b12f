"""The call ledger: one record per tool call, whatever node started it.

Every tool call, early (asynchronous calling), speculative, or from a reused plan, is one
:class:`CallRecord` in one :class:`CallLedger`. Nodes write and read the ledger, the
executor runs what it says, and the checkpointer saves it.

Execution state machine::

    pending -> running -> done | failed | cancelled
    pending -> failed | cancelled      (refused before it ran, or withdrawn)

Speculation (only for calls made before the user's input was final)::

    speculative -> committed | aborted

Any other move raises :class:`~langgraph_speculative.errors.IllegalTransitionError`.

The ledger also keeps the interaction's *input records* (:class:`InputRecord`): every
partial and final user update and every environment event, in order (see
:mod:`langgraph_speculative.speculative.input_stream`), so a restored run knows what the agent had
heard when it made each speculative call. :meth:`CallLedger.snapshot` saves both.

Example:
    ```python
    from langgraph_speculative import CallLedger
    from langgraph_speculative.core.ledger import CallState

    ledger = CallLedger()
    rec = ledger.create("call_1", "get_weather", {"city": "Paris"}, safe=True)
    ledger.transition("call_1", CallState.RUNNING)
    ledger.transition("call_1", CallState.DONE)
    assert rec.state is CallState.DONE
    ```
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, cast

from langchain_core.messages import ToolMessage, message_to_dict, messages_from_dict

from langgraph_speculative.errors import IllegalTransitionError, SpeculativeError, UnknownCallError

_log = logging.getLogger(__name__)

__all__ = [
    "CallLedger",
    "CallRecord",
    "CallState",
    "InputKind",
    "InputRecord",
    "LedgerEvent",
    "Speculation",
    "canonical_json",
]


class CallState(StrEnum):
    """Execution state of a tool call."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Whether no further execution transition is possible."""
        return self in _TERMINAL


class Speculation(StrEnum):
    """Speculation state of a tool call (``none`` for calls made on final input)."""

    NONE = "none"
    SPECULATIVE = "speculative"
    COMMITTED = "committed"
    ABORTED = "aborted"


_TERMINAL = frozenset({CallState.DONE, CallState.FAILED, CallState.CANCELLED})
_ALLOWED: dict[CallState, frozenset[CallState]] = {
    CallState.PENDING: frozenset({CallState.RUNNING, CallState.FAILED, CallState.CANCELLED}),
    CallState.RUNNING: frozenset({CallState.DONE, CallState.FAILED, CallState.CANCELLED}),
    CallState.DONE: frozenset(),
    CallState.FAILED: frozenset(),
    CallState.CANCELLED: frozenset(),
}
_SPEC_ALLOWED: dict[Speculation, frozenset[Speculation]] = {
    Speculation.NONE: frozenset(),
    Speculation.SPECULATIVE: frozenset({Speculation.COMMITTED, Speculation.ABORTED}),
    Speculation.COMMITTED: frozenset(),
    Speculation.ABORTED: frozenset(),
}


def canonical_json(value: Any) -> str:
    """Serialise a JSON-able value canonically (sorted keys, no spaces, UTF-8 kept).

    Two argument dicts that mean the same thing give the same string, so the result can key
    caches and seed the latency model.

    Args:
        value: Any JSON-serialisable value.

    Returns:
        The canonical JSON text.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _default_idempotency_key(call_id: str, tool: str, args: Mapping[str, Any]) -> str:
    try:
        text = canonical_json(args)
    except (TypeError, ValueError):  # not JSON-able (a set, a datetime, ...): still a key
        text = json.dumps(args, sort_keys=True, separators=(",", ":"), default=repr)
    digest = hashlib.sha256(f"{call_id}\x00{tool}\x00{text}".encode())
    return digest.hexdigest()[:32]


def _opt_float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key} must be a number or null, got {type(value).__name__}")
    return float(value)


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{key} must be a non-empty string, got {value!r}")
    return value


@dataclass(slots=True)
class CallRecord:
    """One tool call and everything known about it.

    Attributes:
        id: The tool call id (the model's ``tool_call_id``).
        tool: The tool's name.
        args: The call's arguments.
        state: Execution state.
        speculation: Speculation state.
        safe: Whether the tool has no side effect (see :mod:`langgraph_speculative.core.safety`).
        idempotency_key: A key that identifies this call's side effect across re-runs.
        depends_on: Ids of calls whose results this call needs.
        result: The ``ToolMessage`` the call produced (also for handled errors).
        error: Text of the error, for failed or cancelled calls.
        created_at: Wall-clock time (``time.time()``) the record was created.
        started_at: When it started running, if it did.
        finished_at: When it reached a terminal state, if it did.
        attempts: How many times it was started.
    """

    id: str
    tool: str
    args: dict[str, Any]
    state: CallState = CallState.PENDING
    speculation: Speculation = Speculation.NONE
    safe: bool = False
    idempotency_key: str = ""
    depends_on: tuple[str, ...] = ()
    result: ToolMessage | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0

    @property
    def may_run(self) -> bool:
        """Whether the safety rule lets this call run now (unsafe speculative calls wait)."""
        if self.speculation is Speculation.ABORTED:
            return False
        return self.safe or self.speculation is not Speculation.SPECULATIVE

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable snapshot of the record."""
        return {
            "id": self.id,
            "tool": self.tool,
            "args": dict(self.args),
            "state": self.state.value,
            "speculation": self.speculation.value,
            "safe": self.safe,
            "idempotency_key": self.idempotency_key,
            "depends_on": list(self.depends_on),
            "result": message_to_dict(self.result) if self.result is not None else None,
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallRecord:
        """Rebuild a record from :meth:`to_dict` output.

        Raises:
            SpeculativeError: If the data is not a record snapshot.
        """
        try:
            if not isinstance(data, Mapping):
                raise TypeError(f"a record snapshot is a mapping, got {type(data).__name__}")
            result = data.get("result")
            message = messages_from_dict([result])[0] if result is not None else None
            if message is not None and not isinstance(message, ToolMessage):
                raise TypeError(f"result is a {type(message).__name__}, not a ToolMessage")
            args = data["args"]
            if not isinstance(args, Mapping):
                raise TypeError(f"args must be a mapping, got {type(args).__name__}")
            depends_on = data.get("depends_on", ())
            if isinstance(depends_on, str) or not all(isinstance(d, str) and d for d in depends_on):
                raise TypeError(f"depends_on must be a list of call ids, got {depends_on!r}")
            safe = data.get("safe", False)
            if not isinstance(safe, bool):
                raise TypeError(f"safe must be a boolean, got {safe!r}")
            key = data.get("idempotency_key", "")
            error = data.get("error")
            if not isinstance(key, str) or (error is not None and not isinstance(error, str)):
                raise TypeError("idempotency_key and error must be strings")
            attempts = data.get("attempts", 0)
            if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
                raise TypeError(f"attempts must be a non-negative integer, got {attempts!r}")
            created_at = _opt_float(data, "created_at")
            return cls(
                id=_text(data, "id"),
                tool=_text(data, "tool"),
                args=dict(args),
                state=CallState(data["state"]),
                speculation=Speculation(data.get("speculation", "none")),
                safe=safe,
                idempotency_key=key,
                depends_on=tuple(depends_on),
                result=message,
                error=error,
                created_at=0.0 if created_at is None else created_at,
                started_at=_opt_float(data, "started_at"),
                finished_at=_opt_float(data, "finished_at"),
                attempts=attempts,
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise SpeculativeError(f"not a call record snapshot: {exc}") from exc


InputKind = Literal["user", "event"]
"""Who an input record comes from: the ``"user"`` (transcript updates) or an ``"event"``
of the environment."""

_INPUT_KINDS: frozenset[str] = frozenset({"user", "event"})
_INPUT_KEYS: frozenset[str] = frozenset({"seq", "text", "final", "at", "kind", "source"})


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One update of the interaction's input, as the ledger keeps it.

    :class:`langgraph_speculative.speculative.input_stream.InputUpdate` is this same class: the
    stream hands these records to readers and to the ledger alike.

    Attributes:
        seq: Sequence number, 1, 2, ... in arrival order (user updates and events share
            the numbering).
        text: For a user update, the *whole* transcript so far, not a delta (a speech
            recogniser's later partials may rewrite earlier words); for an event, the
            event's own text.
        final: Whether this is the user's final update (always ``False`` for events).
        at: Wall-clock time (``time.time()``) the update arrived.
        kind: ``"user"`` or ``"event"``.
        source: Where an event comes from (for example ``"calendar"``); ``None`` for user
            updates unless the app names one.

    Raises:
        SpeculativeError: On a field of the wrong type, a ``seq`` below 1, a non-finite
            ``at``, an unknown ``kind`` or a final event.
    """

    seq: int
    text: str
    final: bool = False
    at: float = field(default_factory=time.time)
    kind: InputKind = "user"
    source: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or self.seq < 1:
            raise SpeculativeError(f"input seq must be an integer >= 1, got {self.seq!r}")
        if not isinstance(self.text, str):
            raise SpeculativeError(f"input text must be a str, got {type(self.text).__name__}")
        if not isinstance(self.final, bool):
            raise SpeculativeError(f"input final must be a bool, got {self.final!r}")
        at: object = self.at
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
            raise SpeculativeError(f"input time must be a finite number, got {at!r}")
        if not isinstance(at, float):
            object.__setattr__(self, "at", float(at))
        if not isinstance(self.kind, str) or self.kind not in _INPUT_KINDS:
            raise SpeculativeError(f"input kind must be 'user' or 'event', got {self.kind!r}")
        if self.source is not None and not isinstance(self.source, str):
            raise SpeculativeError(f"input source must be a str or None, got {self.source!r}")
        if self.kind == "event" and self.final:
            raise SpeculativeError("an environment event cannot be final")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable snapshot of the record."""
        return {
            "seq": self.seq,
            "text": self.text,
            "final": self.final,
            "at": self.at,
            "kind": self.kind,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputRecord:
        """Rebuild a record from :meth:`to_dict` output.

        ``final``, ``kind`` and ``source`` may be missing (``False``, ``"user"``,
        ``None``); ``seq``, ``text`` and ``at`` are required; other keys are refused.

        Raises:
            SpeculativeError: If the data is not an input record snapshot.
        """
        if not isinstance(data, Mapping):
            raise SpeculativeError(
                f"not an input record snapshot: expected a mapping, got {type(data).__name__}"
            )
        unknown = set(data) - _INPUT_KEYS
        missing = {"seq", "text", "at"} - set(data)
        if unknown or missing:
            raise SpeculativeError(
                "not an input record snapshot: "
                + (f"unknown keys {sorted(map(str, unknown))}" if unknown else "")
                + ("; " if unknown and missing else "")
                + (f"missing keys {sorted(missing)}" if missing else "")
            )
        kind = data.get("kind", "user")
        if not isinstance(kind, str) or kind not in _INPUT_KINDS:
            raise SpeculativeError(f"not an input record snapshot: unknown kind {kind!r}")
        try:
            return cls(
                seq=data["seq"],
                text=data["text"],
                final=data.get("final", False),
                at=data["at"],
                kind=cast(InputKind, kind),
                source=data.get("source"),
            )
        except SpeculativeError as exc:
            raise SpeculativeError(f"not an input record snapshot: {exc}") from exc


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """A change to the ledger, as its listeners see it.

    Attributes:
        kind: ``"created"``, ``"state"`` or ``"speculation"``.
        record: The record after the change.
    """

    kind: str
    record: CallRecord


LedgerListener = Callable[[LedgerEvent], None]


class CallLedger:
    """The registry of every tool call of a run, and of the input the run received.

    The ledger is not thread-safe; it is meant to be used from one asyncio event loop (as
    graph nodes and the executor are).

    Args:
        records: Call records to start with.
        inputs: Input records to start with, in strictly increasing ``seq`` order.

    Raises:
        SpeculativeError: If ``inputs`` are not in strictly increasing ``seq`` order.
    """

    __slots__ = ("_inputs", "_listeners", "_records")

    def __init__(
        self, records: Sequence[CallRecord] = (), *, inputs: Sequence[InputRecord] = ()
    ) -> None:
        self._records: dict[str, CallRecord] = {r.id: r for r in records}
        self._listeners: list[LedgerListener] = []
        self._inputs: list[InputRecord] = []
        for record in inputs:
            self.record_input(record)

    # -- reading -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[CallRecord]:
        return iter(self._records.values())

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._records

    def get(self, call_id: str) -> CallRecord:
        """Return the record of ``call_id``.

        Raises:
            UnknownCallError: If the ledger holds no such call.
        """
        try:
            return self._records[call_id]
        except KeyError:
            raise UnknownCallError(call_id) from None

    def in_state(self, *states: CallState) -> list[CallRecord]:
        """Return the records in any of ``states``, in creation order."""
        wanted = set(states)
        return [r for r in self._records.values() if r.state in wanted]

    def dependents(self, call_id: str) -> list[CallRecord]:
        """Return every record that depends on ``call_id``, directly or transitively.

        The records come in creation order; ``call_id`` itself is never among them.
        """
        direct: dict[str, list[str]] = {}
        for rec in self._records.values():
            for dep in rec.depends_on:
                direct.setdefault(dep, []).append(rec.id)
        found = {call_id}
        frontier = [call_id]
        while frontier:
            for child in direct.get(frontier.pop(), ()):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
        return [r for r in self._records.values() if r.id in found and r.id != call_id]

    @property
    def inputs(self) -> tuple[InputRecord, ...]:
        """Every input record (user updates and environment events), in ``seq`` order."""
        return tuple(self._inputs)

    # -- writing -----------------------------------------------------------------------
    def subscribe(self, listener: LedgerListener) -> Callable[[], None]:
        """Call ``listener`` on every change; return a function that unsubscribes it.

        The ledger has already changed when a listener runs; an exception a listener raises
        is logged and does not stop the other listeners or undo the change. Unsubscribing
        twice is harmless.
        """
        self._listeners.append(listener)
        subscribed = [True]

        def unsubscribe() -> None:
            if subscribed[0]:
                subscribed[0] = False
                self._listeners.remove(listener)

        return unsubscribe

    def create(
        self,
        call_id: str,
        tool: str,
        args: Mapping[str, Any],
        *,
        safe: bool = False,
        speculative: bool = False,
        idempotency_key: str | None = None,
        depends_on: Sequence[str] = (),
    ) -> CallRecord:
        """Create a pending record.

        Args:
            call_id: The tool call id; must be new to this ledger and non-empty.
            tool: Tool name.
            args: Arguments (must be a mapping).
            safe: Whether the tool is side-effect free.
            speculative: Whether the call was made before the input was final.
            idempotency_key: Key of the call's side effect; derived from id, tool and
                arguments when omitted.
            depends_on: Ids of calls whose results this call needs (must be in the ledger).

        Returns:
            The new record.

        Raises:
            SpeculativeError: On an empty or duplicate id, non-mapping args, or a
                dependency the ledger does not hold.
        """
        if not call_id:
            raise SpeculativeError("a tool call needs a non-empty id")
        if call_id in self._records:
            raise SpeculativeError(f"call id {call_id!r} is already in the ledger")
        if not isinstance(args, Mapping):
            raise SpeculativeError(
                f"call {call_id!r}: args must be a mapping, got {type(args).__name__}"
            )
        if isinstance(depends_on, str):
            raise SpeculativeError(
                f"call {call_id!r}: depends_on must be a sequence of call ids, not a string"
            )
        for dep in depends_on:
            if dep not in self._records:
                raise UnknownCallError(dep)
        record = CallRecord(
            id=call_id,
            tool=tool,
            args=dict(args),
            safe=safe,
            speculation=Speculation.SPECULATIVE if speculative else Speculation.NONE,
            idempotency_key=idempotency_key or _default_idempotency_key(call_id, tool, args),
            depends_on=tuple(depends_on),
        )
        self._records[call_id] = record
        self._emit("created", record)
        return record

    def transition(
        self,
        call_id: str,
        state: CallState,
        *,
        result: ToolMessage | None = None,
        error: str | None = None,
    ) -> CallRecord:
        """Move a record to ``state``.

        Raises:
            UnknownCallError: If the call is not in the ledger.
            IllegalTransitionError: If the state machine forbids the move.
        """
        record = self.get(call_id)
        if state not in _ALLOWED[record.state]:
            raise IllegalTransitionError(call_id, record.state.value, state.value)
        now = time.time()
        if state is CallState.RUNNING:
            record.started_at = now
            record.attempts += 1
        else:
            record.finished_at = now
        if result is not None:
            record.result = result
        if error is not None:
            record.error = error
        record.state = state
        self._emit("state", record)
        return record

    def set_speculation(self, call_id: str, speculation: Speculation) -> CallRecord:
        """Commit or abort a speculative call.

        Raises:
            UnknownCallError: If the call is not in the ledger.
            IllegalTransitionError: If the call is not speculative (or already settled).
        """
        record = self.get(call_id)
        if speculation not in _SPEC_ALLOWED[record.speculation]:
            raise IllegalTransitionError(call_id, record.speculation.value, speculation.value)
        record.speculation = speculation
        self._emit("speculation", record)
        return record

    def record_input(self, update: InputRecord | Mapping[str, Any]) -> InputRecord:
        """Append one input record (a user update or an environment event).

        Input records are not call changes: listeners are not called.

        Args:
            update: The record, or its :meth:`InputRecord.to_dict` form.
                (:class:`~langgraph_speculative.speculative.input_stream.InputUpdate` is
                :class:`InputRecord`.)

        Returns:
            The stored record.

        Raises:
            SpeculativeError: If ``update`` is not an input record, or its ``seq`` is not
                greater than that of the last record.
        """
        record = update if isinstance(update, InputRecord) else InputRecord.from_dict(update)
        if self._inputs and record.seq <= self._inputs[-1].seq:
            raise SpeculativeError(
                f"input seq must increase: got {record.seq} after {self._inputs[-1].seq}"
            )
        self._inputs.append(record)
        return record

    # -- persistence -------------------------------------------------------------------
    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Return a JSON-serialisable snapshot of every call record and input record.

        Returns:
            ``{"calls": [call record, ...], "inputs": [input record, ...]}``.
        """
        return {
            "calls": [r.to_dict() for r in self._records.values()],
            "inputs": [r.to_dict() for r in self._inputs],
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> CallLedger:
        """Rebuild a ledger from :meth:`snapshot` output.

        Accepts the current form ``{"calls": [...], "inputs": [...]}`` (``"inputs"`` may
        be missing) and the older form, a bare list of call records (no inputs).

        Raises:
            SpeculativeError: If the data is not a ledger snapshot (neither form, unknown
                keys, two records sharing an id, input records out of ``seq`` order).
        """
        inputs_data: Any = ()
        if isinstance(data, Mapping):
            unknown = set(data) - {"calls", "inputs"}
            if unknown or "calls" not in data:
                raise SpeculativeError(
                    'not a ledger snapshot: expected keys "calls" and "inputs", got '
                    f"{sorted(map(str, data))}"
                )
            calls_data: Any = data["calls"]
            inputs_data = data.get("inputs", ())
        else:
            calls_data = data
        for what, items in (("call", calls_data), ("input", inputs_data)):
            if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
                raise SpeculativeError(
                    f"not a ledger snapshot: expected a list of {what} records, "
                    f"got {type(items).__name__}"
                )
        records = [CallRecord.from_dict(item) for item in calls_data]
        ids = {r.id for r in records}
        if len(ids) != len(records):
            raise SpeculativeError("not a ledger snapshot: two records share an id")
        inputs = [InputRecord.from_dict(item) for item in inputs_data]
        return cls(records, inputs=inputs)

    def _emit(self, kind: str, record: CallRecord) -> None:
        if self._listeners:
            event = LedgerEvent(kind, record)
            for listener in tuple(self._listeners):
                try:
                    listener(event)
                except Exception:
                    _log.exception("ledger listener %r failed on a %s event", listener, kind)
