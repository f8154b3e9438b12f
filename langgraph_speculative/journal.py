"""The run journal: write-ahead records of a node run, stored beside LangGraph's checkpoints.

Between two supersteps LangGraph saves nothing of what happens *inside* a node. A node
that streams a model and runs tools for many seconds would, after a crash, start again
from nothing: re-ask the model (which answers differently) and re-run every tool (paying
twice). A :class:`RunJournal` records, as they happen, the calls a node starts, the
results that arrive (keyed by tool call id), the model turns it completes, speculative
commits and aborts, input updates, and which results the model has seen; each record is
durable *before* the node acts on it (a result is stored before it is delivered).

Storage format. Records ride as pending writes of the task's **parent checkpoint** (the
checkpoint the superstep started from, which a resumed run loads again), on channel
:data:`JOURNAL_CHANNEL`. Records are written in batches (group commit: everything queued
when a flush starts goes in ONE ``put_writes`` call), each batch under its own synthetic
task id ``lgs-journal:<task id>:<seq of its first record, 10 digits>``, its records at
write indexes 0, 1, ... LangGraph ignores pending writes whose task id is not one of the
step's tasks, and every saver keeps the first write of a ``(task id, index)`` pair, so
records are never overwritten. The value is a plain dict (any serializer stores it)::

    {"lgs": 1, "seq": 3, "type": "call_finished", "owner": "<run id>", "at": 1712.5,
     "data": {...}}

Types: ``call_started``, ``call_finished``, ``speculation``, ``turn``, ``input``,
``delivered``, ``release``. Leases (which run owns the task) are written the same way on
:data:`LEASE_CHANNEL` under ``lgs-lease:<task id>:<epoch, 6 digits>``: the first claim of
an epoch wins, and the loser gets
:class:`~langgraph_speculative.errors.ConcurrentResumeError`. A damaged or foreign record
raises :class:`~langgraph_speculative.errors.JournalCorruptError` naming the thread, the
task and the record.

Nodes get their journal with
:func:`~langgraph_speculative.checkpointer.journal_for`; this module is the format and the
writer.

Example:
    ```python
    import asyncio
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph_speculative.journal import RunJournal
    from langgraph_speculative.ledger import CallRecord

    saver = InMemorySaver()
    parent = saver.put(
        {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}, empty_checkpoint(), {}, {}
    )

    async def main() -> None:
        ck = parent["configurable"]["checkpoint_id"]
        where = dict(thread_id="t1", checkpoint_ns="", checkpoint_id=ck, task_id="task1")
        first = RunJournal(saver, **where)
        await first.open()
        await first.call_started(CallRecord("c1", "pay", {"amount": 5}, idempotency_key="k"))
        first.detach()  # the process "dies" here: no result was recorded
        again = RunJournal(saver, **where)
        state = await again.open()
        assert [r.id for r in state.running()] == ["c1"]
        await again.close()

    asyncio.run(main())
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import ToolMessage, message_to_dict, messages_from_dict
from langchain_core.runnables import RunnableConfig

from langgraph_speculative.errors import (
    CheckpointerError,
    ConcurrentResumeError,
    JournalCorruptError,
    SpeculativeError,
)
from langgraph_speculative.ledger import CallRecord, CallState, InputRecord, Speculation
from langgraph_speculative.resume import OutcomeUnknownHook, ResumeState, TurnRecord

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

_log = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "JOURNAL_CHANNEL",
    "JOURNAL_TASK_PREFIX",
    "LEASE_CHANNEL",
    "LEASE_TASK_PREFIX",
    "RECORD_TYPES",
    "JournalRecord",
    "JournalStats",
    "Lease",
    "RunJournal",
    "journal_session",
]

FORMAT_VERSION = 1
"""Version of the record format (the ``lgs`` field of every record)."""

JOURNAL_CHANNEL = "lgs:journal"
"""The channel journal records are written on."""

LEASE_CHANNEL = "lgs:lease"
"""The channel lease claims are written on."""

JOURNAL_TASK_PREFIX = "lgs-journal:"
"""Prefix of the synthetic task ids of journal records."""

LEASE_TASK_PREFIX = "lgs-lease:"
"""Prefix of the synthetic task ids of lease claims."""

RECORD_TYPES = frozenset(
    {"call_started", "call_finished", "speculation", "turn", "input", "delivered", "release"}
)
"""Every record type the journal writes."""

_RECORD_KEYS = frozenset({"lgs", "seq", "type", "owner", "at", "data"})
_LEASE_KEYS = frozenset({"lgs", "epoch", "owner", "host", "pid", "at", "ttl"})
_LIVE_OWNERS: set[str] = set()  # journals of this process that are open (for same-pid leases)


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One journal record.

    Attributes:
        seq: Position in the task's journal (1, 2, ...).
        type: One of :data:`RECORD_TYPES`.
        owner: Id of the run (journal) that wrote it.
        at: Wall-clock time (``time.time()``) it was written.
        data: The type's payload (JSON-able).
    """

    seq: int
    type: str
    owner: str
    at: float
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Return the stored form."""
        return {
            "lgs": FORMAT_VERSION,
            "seq": self.seq,
            "type": self.type,
            "owner": self.owner,
            "at": self.at,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, value: Any) -> JournalRecord:
        """Read the stored form.

        Raises:
            SpeculativeError: If ``value`` is not a journal record of this format.
        """
        if not isinstance(value, Mapping):
            raise SpeculativeError(f"expected a mapping, got {type(value).__name__}")
        if set(value) != _RECORD_KEYS:
            raise SpeculativeError(f"expected keys {sorted(_RECORD_KEYS)}, got {sorted(value)}")
        if value["lgs"] != FORMAT_VERSION:
            raise SpeculativeError(f"format version {value['lgs']!r} is not {FORMAT_VERSION}")
        seq, kind, owner, at, data = (value[k] for k in ("seq", "type", "owner", "at", "data"))
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise SpeculativeError(f"seq must be an integer >= 1, got {seq!r}")
        if kind not in RECORD_TYPES:
            raise SpeculativeError(f"unknown record type {kind!r}")
        if not isinstance(owner, str) or not owner:
            raise SpeculativeError(f"owner must be a non-empty string, got {owner!r}")
        if isinstance(at, bool) or not isinstance(at, int | float):
            raise SpeculativeError(f"at must be a number, got {at!r}")
        if not isinstance(data, Mapping):
            raise SpeculativeError(f"data must be a mapping, got {type(data).__name__}")
        return cls(seq, kind, owner, float(at), dict(data))


@dataclass(frozen=True, slots=True)
class Lease:
    """A claim of a task by one run: who may write its journal.

    Attributes:
        epoch: 1 for the first run of the task, +1 for each takeover.
        owner: Id of the claiming run.
        host: Host name of the claiming process.
        pid: Process id of the claiming process.
        at: When it was claimed.
        ttl: Seconds after the owner's last record when a lease of another host is stale.
    """

    epoch: int
    owner: str
    host: str
    pid: int
    at: float
    ttl: float

    def to_dict(self) -> dict[str, Any]:
        """Return the stored form."""
        return {
            "lgs": FORMAT_VERSION,
            "epoch": self.epoch,
            "owner": self.owner,
            "host": self.host,
            "pid": self.pid,
            "at": self.at,
            "ttl": self.ttl,
        }

    @classmethod
    def from_dict(cls, value: Any) -> Lease:
        """Read the stored form.

        Raises:
            SpeculativeError: If ``value`` is not a lease of this format.
        """
        if not isinstance(value, Mapping) or set(value) != _LEASE_KEYS:
            raise SpeculativeError(f"not a lease record: {value!r:.200}")
        if value["lgs"] != FORMAT_VERSION:
            raise SpeculativeError(f"lease format version {value['lgs']!r} is not supported")
        epoch, pid = value["epoch"], value["pid"]
        for name, number in (("epoch", epoch), ("pid", pid)):
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise SpeculativeError(f"lease {name} must be an integer >= 1, got {number!r}")
        if not isinstance(value["owner"], str) or not isinstance(value["host"], str):
            raise SpeculativeError("lease owner and host must be strings")
        for name in ("at", "ttl"):
            if isinstance(value[name], bool) or not isinstance(value[name], int | float):
                raise SpeculativeError(f"lease {name} must be a number")
        return cls(epoch, value["owner"], value["host"], pid, float(value["at"]), value["ttl"])


@dataclass(slots=True)
class JournalStats:
    """Counters of one journal.

    Attributes:
        writes: Records and lease claims written.
        reads: Journal reads (checkpoint loads).
        write_s: Seconds spent in the saver's write calls.
        read_s: Seconds spent in the saver's read calls.
    """

    writes: int = 0
    reads: int = 0
    write_s: float = 0.0
    read_s: float = 0.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with (
        contextlib.suppress(OSError, IndexError),  # a zombie is dead (Linux /proc)
        open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f,
    ):
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    return True


class RunJournal:
    """The write-ahead journal of one node run (one LangGraph task).

    Open it (:meth:`open`) before the run does anything: that reads what an earlier,
    crashed run of the same task recorded (:attr:`state`) and claims the task's lease.
    Records are written in order; :meth:`write` and the typed helpers return once the
    record is durable, :meth:`post` queues it (for synchronous callers) and
    :meth:`flush` waits for the queue. :meth:`close` ends the run normally; a run that
    crashes only :meth:`detach` es.

    Args:
        saver: The checkpoint saver to store records in.
        thread_id: The thread.
        checkpoint_ns: Namespace of the parent checkpoint (``""`` for the root graph).
        checkpoint_id: Id of the parent checkpoint (the one the superstep started from).
        task_id: The LangGraph task id (the same when the task runs again after a crash).
        on_outcome_unknown: Hook for running-at-crash calls that cannot safely re-run
            (:data:`~langgraph_speculative.resume.OutcomeUnknownHook`).
        lease_ttl: Seconds after its last record when another host's lease is stale.
        parent_wait: Seconds to wait for the parent checkpoint to be stored (LangGraph
            stores it in the background with ``durability="async"``).

    Raises:
        SpeculativeError: On an empty thread, checkpoint or task id, or a ``lease_ttl``
            that is not positive.
    """

    def __init__(
        self,
        saver: BaseCheckpointSaver[Any],
        *,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        task_id: str,
        on_outcome_unknown: OutcomeUnknownHook | None = None,
        lease_ttl: float = 120.0,
        parent_wait: float = 5.0,
    ) -> None:
        for name, value in (
            ("thread_id", thread_id),
            ("checkpoint_id", checkpoint_id),
            ("task_id", task_id),
        ):
            if not isinstance(value, str) or not value:
                raise SpeculativeError(f"a run journal needs a non-empty {name}, got {value!r}")
        if not lease_ttl > 0:
            raise SpeculativeError(f"lease_ttl must be > 0 seconds, got {lease_ttl!r}")
        self.saver = saver
        self.thread_id = thread_id
        self.checkpoint_ns = checkpoint_ns
        self.checkpoint_id = checkpoint_id
        self.task_id = task_id
        self.on_outcome_unknown = on_outcome_unknown
        self.lease_ttl = float(lease_ttl)
        self.parent_wait = parent_wait
        self.owner = uuid.uuid4().hex
        self.state: ResumeState | None = None
        self.lease: Lease | None = None
        self.stats = JournalStats()
        self._seq = 0
        self._queue: list[JournalRecord] = []  # records not yet handed to a write
        self._tail: asyncio.Task[None] | None = None  # the last write (they run in order)
        self._waiting: asyncio.Task[None] | None = None  # a write that has not taken its batch
        self._config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint_id,
            }
        }

    # -- naming ------------------------------------------------------------------------
    @property
    def where(self) -> str:
        """Thread and task, for error messages."""
        return f"thread {self.thread_id!r}, task {self.task_id!r}"

    def _batch_task(self, seq: int) -> str:
        return f"{JOURNAL_TASK_PREFIX}{self.task_id}:{seq:010d}"

    def _lease_task(self, epoch: int) -> str:
        return f"{LEASE_TASK_PREFIX}{self.task_id}:{epoch:06d}"

    # -- reading -----------------------------------------------------------------------
    async def _pending_writes(self, *, wait: bool) -> list[tuple[str, str, Any]] | None:
        deadline = time.monotonic() + (self.parent_wait if wait else 0.0)
        delay = 0.002
        while True:
            started = time.perf_counter()
            tup = await self.saver.aget_tuple(self._config)
            self.stats.reads += 1
            self.stats.read_s += time.perf_counter() - started
            if tup is not None or time.monotonic() >= deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        if tup is None:
            return None
        return [(w[0], w[1], w[2]) for w in (tup.pending_writes or ())]

    async def read(self) -> tuple[list[JournalRecord], list[Lease]]:
        """Read and validate this task's journal records and lease claims.

        Returns:
            Records in ``seq`` order, leases in epoch order.

        Raises:
            JournalCorruptError: A damaged record, or a foreign write on a journal channel.
        """
        return self._parse(await self._pending_writes(wait=False) or [])

    def _parse(
        self, writes: Sequence[tuple[str, str, Any]]
    ) -> tuple[list[JournalRecord], list[Lease]]:
        mine = f"{JOURNAL_TASK_PREFIX}{self.task_id}:"
        my_lease = f"{LEASE_TASK_PREFIX}{self.task_id}:"
        records: dict[int, JournalRecord] = {}
        batches: dict[int, list[JournalRecord]] = {}
        leases: dict[int, Lease] = {}
        for task_id, channel, value in writes:
            if channel in (JOURNAL_CHANNEL, LEASE_CHANNEL) and not (
                task_id.startswith((JOURNAL_TASK_PREFIX, LEASE_TASK_PREFIX))
            ):
                raise JournalCorruptError(
                    f"{self.where}: a foreign write on journal channel {channel!r} "
                    f"(task {task_id!r}): not a journal record"
                )
            if task_id.startswith(mine):
                batch = self._number(task_id, mine, channel, JOURNAL_CHANNEL)
                try:
                    rec = JournalRecord.from_dict(value)
                except SpeculativeError as exc:
                    raise JournalCorruptError(
                        f"{self.where}, journal record {batch}: damaged or foreign record: {exc}"
                    ) from exc
                batches.setdefault(batch, []).append(rec)
            elif task_id.startswith(my_lease):
                epoch = self._number(task_id, my_lease, channel, LEASE_CHANNEL)
                try:
                    lease = Lease.from_dict(value)
                    if lease.epoch != epoch:
                        raise SpeculativeError(f"epoch {lease.epoch} is stored as {epoch}")
                except SpeculativeError as exc:
                    raise JournalCorruptError(
                        f"{self.where}, lease {epoch}: damaged or foreign record: {exc}"
                    ) from exc
                leases[epoch] = lease
        for batch, recs in batches.items():
            seqs = sorted(r.seq for r in recs)
            if seqs != list(range(batch, batch + len(recs))):
                raise JournalCorruptError(
                    f"{self.where}, journal record {batch}: damaged or foreign record: seq "
                    f"{seqs[0] if len(seqs) == 1 else seqs} is stored as {batch} (a batch of "
                    f"{len(recs)} from seq {batch})"
                )
            for rec in recs:
                if rec.seq in records:
                    raise JournalCorruptError(
                        f"{self.where}, journal record {rec.seq}: stored twice (batches "
                        f"overlap): damaged or foreign record"
                    )
                records[rec.seq] = rec
        return [records[k] for k in sorted(records)], [leases[k] for k in sorted(leases)]

    def _number(self, task_id: str, prefix: str, channel: str, expected: str) -> int:
        text = task_id[len(prefix) :]
        if channel != expected or not text.isdigit():
            raise JournalCorruptError(
                f"{self.where}: write {task_id!r} on channel {channel!r} is not a journal "
                f"record (expected channel {expected!r} and a numeric index)"
            )
        return int(text)

    def _replay(self, records: Sequence[JournalRecord]) -> ResumeState:
        state = ResumeState()
        for rec in records:
            try:
                _apply(state, rec)
            except (SpeculativeError, KeyError, TypeError, ValueError) as exc:
                raise JournalCorruptError(
                    f"{self.where}, journal record {rec.seq} ({rec.type}): {exc}"
                ) from exc
            if not state.owners or state.owners[-1] != rec.owner:
                state.owners.append(rec.owner)
        state.records = len(records)
        return state

    # -- opening and the lease -------------------------------------------------------
    async def open(self) -> ResumeState:
        """Read the task's journal, replay it, and claim the task.

        Calling it again returns the same state.

        Returns:
            What earlier runs of the task recorded (empty on a first run).

        Raises:
            JournalCorruptError: If a record is damaged or foreign.
            ConcurrentResumeError: If another live run holds the task, or claimed it first.
            CheckpointerError: If the parent checkpoint is not in the store.
        """
        if self.state is not None:
            return self.state
        # the parent's pending writes as the wrapping checkpointer last saw them (it just
        # stored the checkpoint, or LangGraph just loaded it through it): no read needed
        take = getattr(self.saver, "_take_pending_writes", None)
        cached = take(self._config) if callable(take) else None
        if cached is not None:
            try:
                return await self._open(list(cached))
            except ConcurrentResumeError:
                pass  # the cached view may be stale: decide on a fresh read
        return await self._open(None)

    def _missing_parent(self) -> CheckpointerError:
        return CheckpointerError(
            f"{self.where}: checkpoint {self.checkpoint_id!r} (namespace "
            f"{self.checkpoint_ns!r}) is not in the store after {self.parent_wait:g} s, "
            "so a journal hung on it could never be read back"
        )

    async def _open(self, writes: list[tuple[str, str, Any]] | None) -> ResumeState:
        if writes is None:
            writes = await self._pending_writes(wait=True)
            if writes is None:
                raise self._missing_parent()
        records, leases = self._parse(writes)
        current = leases[-1] if leases else None
        if current is not None and self._alive(current, records):
            raise ConcurrentResumeError(
                f"{self.where}: another run holds it (owner {current.owner}, host "
                f"{current.host!r}, pid {current.pid}, claimed at {current.at:.3f}); "
                "only one process may run or resume a thread at a time"
            )
        epoch = current.epoch + 1 if current is not None else 1
        host, pid = socket.gethostname(), os.getpid()
        lease = Lease(epoch, self.owner, host, pid, time.time(), self.lease_ttl)
        await self._put(self._lease_task(epoch), LEASE_CHANNEL, [lease.to_dict()])
        # read back: the first claim of an epoch wins (and the records are complete now)
        stored = await self._pending_writes(wait=True)
        if stored is None:
            raise self._missing_parent()
        records, after = self._parse(stored)
        won = next((x for x in after if x.epoch == epoch), None)
        if won is None or won.owner != self.owner:
            other = f"owner {won.owner}, host {won.host!r}, pid {won.pid}" if won else "unknown"
            raise ConcurrentResumeError(
                f"{self.where}: another run claimed it first ({other}); only one process "
                "may run or resume a thread at a time"
            )
        newer = [x for x in after if x.epoch > epoch]
        if newer:
            raise ConcurrentResumeError(
                f"{self.where}: another run took it over (owner {newer[-1].owner})"
            )
        state = self._replay(records)
        self._seq = records[-1].seq if records else 0
        self.lease = lease
        self.state = state
        _LIVE_OWNERS.add(self.owner)
        return state

    def _alive(self, lease: Lease, records: Sequence[JournalRecord]) -> bool:
        mine = [r for r in records if r.owner == lease.owner]
        if any(r.type == "release" for r in mine):
            return False
        if lease.host == socket.gethostname():
            if lease.pid == os.getpid():
                return lease.owner in _LIVE_OWNERS
            return _pid_alive(lease.pid)
        last = max([lease.at, *(r.at for r in mine)])
        return time.time() < last + lease.ttl

    # -- writing -----------------------------------------------------------------------
    async def _put(self, task_id: str, channel: str, values: Sequence[dict[str, Any]]) -> None:
        started = time.perf_counter()
        await self.saver.aput_writes(self._config, [(channel, v) for v in values], task_id, "")
        self.stats.writes += 1
        self.stats.write_s += time.perf_counter() - started

    async def _drain(self, previous: asyncio.Task[None] | None) -> None:
        """Write, after ``previous``, everything queued by then as ONE batch."""
        try:
            if previous is not None:
                await previous  # in order: a failed write fails every later one
        finally:
            if self._waiting is asyncio.current_task():
                self._waiting = None  # records queued from now on need another write
        batch, self._queue = self._queue, []
        if batch:
            await self._put(
                self._batch_task(batch[0].seq), JOURNAL_CHANNEL, [r.to_dict() for r in batch]
            )

    def _start_flush(self) -> asyncio.Task[None] | None:
        """The write that makes every queued record durable (started if need be)."""
        if self._queue and self._waiting is None:
            task = asyncio.ensure_future(self._drain(self._tail))
            task.add_done_callback(_retrieve)
            self._tail = self._waiting = task
        return self._waiting or self._tail

    def _enqueue(self, kind: str, data: dict[str, Any]) -> None:
        if kind not in RECORD_TYPES:
            raise SpeculativeError(f"unknown journal record type {kind!r}")
        if self.state is None:
            raise SpeculativeError(f"{self.where}: open the journal before writing to it")
        self._seq += 1
        self._queue.append(JournalRecord(self._seq, kind, self.owner, time.time(), data))

    async def write(self, kind: str, data: dict[str, Any]) -> None:
        """Write one record and return once it (and every earlier one) is durable.

        Records queued meanwhile go in the same saver call (group commit).

        Raises:
            SpeculativeError: If the journal is not open or ``kind`` is unknown.
        """
        self._enqueue(kind, data)
        await self.flush()

    def post(self, kind: str, data: dict[str, Any]) -> None:
        """Queue one record and start writing it (for synchronous callers).

        :meth:`flush` waits for it.

        Raises:
            SpeculativeError: If the journal is not open or ``kind`` is unknown.
        """
        self._enqueue(kind, data)
        self._start_flush()

    def defer(self, kind: str, data: dict[str, Any]) -> None:
        """Queue one record without writing it yet: it goes with the next write or flush.

        For records that only need to be durable before what comes after them (the
        queue is written in order, so any later durable record carries it along).

        Raises:
            SpeculativeError: If the journal is not open or ``kind`` is unknown.
        """
        self._enqueue(kind, data)

    async def flush(self) -> None:
        """Wait until every record written, posted or deferred so far is durable."""
        task = self._start_flush()
        if task is not None:
            await asyncio.shield(task)

    async def close(self) -> None:
        """End the run normally: release the lease and wait for every record."""
        if self.state is not None and self.owner in _LIVE_OWNERS:
            self.post("release", {})
            try:
                await self.flush()
            finally:
                self.detach()

    def detach(self) -> None:
        """Stop owning the task without writing (what a crash amounts to)."""
        _LIVE_OWNERS.discard(self.owner)

    # -- typed records -----------------------------------------------------------------
    async def call_started(
        self,
        record: CallRecord,
        *,
        request: int | None = None,
        alias_of: str | None = None,
        durable: bool = True,
    ) -> None:
        """Record that a call is about to run.

        With ``durable`` (the default) the record is durable before this returns, so
        before the tool is invoked: a resumed run knows the call may have happened. An
        idempotent tool needs no such promise (it simply runs again), so its record may
        be deferred (``durable=False``) to travel with the result.
        """
        snapshot = record.to_dict()
        snapshot["result"] = None
        data = {"call": snapshot, "request": request, "alias_of": alias_of}
        if durable:
            await self.write("call_started", data)
        else:
            self.defer("call_started", data)

    def finished_data(
        self, call_id: str, state: CallState, message: ToolMessage | None, error: str | None
    ) -> dict[str, Any]:
        """The payload of a ``call_finished`` record."""
        return {
            "id": call_id,
            "state": state.value,
            "result": message_to_dict(message) if message is not None else None,
            "error": error,
        }

    async def call_finished(
        self,
        call_id: str,
        state: CallState,
        message: ToolMessage | None,
        error: str | None = None,
    ) -> None:
        """Record a call's result (durable before the result is delivered)."""
        await self.write("call_finished", self.finished_data(call_id, state, message, error))

    def post_call_finished(
        self,
        record: CallRecord,
        state: CallState,
        message: ToolMessage | None,
        error: str | None = None,
    ) -> None:
        """Queue a call's end (for a cancellation decided synchronously).

        The record travels with it: the call may never have started.
        """
        data = self.finished_data(record.id, state, message, error)
        data["call"] = {**record.to_dict(), "result": None}
        self.post("call_finished", data)

    def post_speculation(self, call_id: str, speculation: Speculation) -> None:
        """Queue a speculative call's commit or abort."""
        self.post("speculation", {"id": call_id, "speculation": speculation.value})

    async def turn(self, turn: TurnRecord, *, durable: bool = True) -> None:
        """Record a completed model turn.

        With ``durable`` (the default) it is durable before this returns, so a resumed
        run replays the turn instead of asking the model again. A turn whose calls may
        all simply run again can be deferred (``durable=False``): it then becomes durable
        with the next durable record (a call about to start, a result about to be
        delivered) or flush (before the next model request, at the end of the run).
        """
        if durable:
            await self.write("turn", turn.to_dict())
        else:
            self.defer("turn", turn.to_dict())

    def post_input(self, update: InputRecord) -> None:
        """Queue an input update."""
        self.post("input", update.to_dict())

    def post_delivered(self, call_ids: Sequence[str]) -> None:
        """Queue that the model has now seen the results of ``call_ids``."""
        if call_ids:
            self.post("delivered", {"ids": list(call_ids)})


@contextlib.asynccontextmanager
async def journal_session(journal: RunJournal | None) -> AsyncIterator[RunJournal | None]:
    """Open ``journal`` for the body of a node run and end it as the run ends.

    A run that returns, raises an ``Exception`` or is cancelled releases its claim (the
    process lives on, another may resume the task); any other ``BaseException`` (a
    process going down, or a test's simulated crash) only detaches, as a crash would.
    ``None`` passes through, so nodes write ``async with journal_session(journal_for(
    config)) as journal:`` and work the same without the checkpointer.

    Raises:
        JournalCorruptError: If the journal is damaged (when opening).
        ConcurrentResumeError: If another live run holds the task (when opening).
    """
    if journal is None:
        yield None
        return
    await journal.open()
    try:
        yield journal
    except (Exception, asyncio.CancelledError):
        await journal.close()
        raise
    except BaseException:
        journal.detach()
        raise
    else:
        await journal.close()
    finally:
        journal.detach()


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a write's exception as seen (it is re-raised to whoever awaits the chain)."""
    if not task.cancelled():
        task.exception()


def _message(data: Any) -> ToolMessage | None:
    if data is None:
        return None
    message = messages_from_dict([data])[0]
    if not isinstance(message, ToolMessage):
        raise TypeError(f"a result is a {type(message).__name__}, not a ToolMessage")
    return message


def _apply(state: ResumeState, rec: JournalRecord) -> None:
    data = rec.data
    if rec.type == "call_started":
        request = data.get("request")
        alias = data.get("alias_of")
        if request is not None and (isinstance(request, bool) or not isinstance(request, int)):
            raise TypeError(f"request must be an integer or null, got {request!r}")
        if alias is not None and not isinstance(alias, str):
            raise TypeError(f"alias_of must be a string or null, got {alias!r}")
        state.add_started(CallRecord.from_dict(data["call"]), request=request, alias_of=alias)
    elif rec.type == "call_finished":
        error = data.get("error")
        if not isinstance(data["id"], str) or (error is not None and not isinstance(error, str)):
            raise TypeError("id and error must be strings")
        if data["id"] not in state.calls and data.get("call") is not None:
            state.add_started(CallRecord.from_dict(data["call"]))  # ended before it started
        state.add_finished(data["id"], data["state"], _message(data.get("result")), error)
    elif rec.type == "speculation":
        if not isinstance(data["id"], str):
            raise TypeError("id must be a string")
        state.speculation[data["id"]] = Speculation(data["speculation"])
    elif rec.type == "turn":
        state.add_turn(TurnRecord.from_dict(data))
    elif rec.type == "input":
        state.add_input(InputRecord.from_dict(data))
    elif rec.type == "delivered":
        ids = data["ids"]
        if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
            raise TypeError(f"ids must be a list of call ids, got {ids!r}")
        state.delivered.update(ids)
    # "release" carries nothing to replay
