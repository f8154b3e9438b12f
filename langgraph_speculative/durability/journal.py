"""The run journal: write-ahead records of a node run, stored beside LangGraph's checkpoints.

Between two supersteps LangGraph saves nothing of what happens *inside* a node. A node
that streams a model and runs tools for many seconds would, after a crash, start again
from nothing: re-ask the model (which answers differently) and re-run every tool (paying
twice). A :class:`RunJournal` records, as they happen, the calls a node starts, the
results that arrive (keyed by tool call id), the model turns it completes, speculative
commits and aborts, input updates, and which results the model has seen; each record is
durable *before* the node acts on it (a result is stored before it is delivered).

Storage format (:mod:`langgraph_speculative.durability.records`). Records ride as pending
writes of the task's **parent checkpoint** (the checkpoint the superstep started from,
which a resumed run loads again), on channel :data:`JOURNAL_CHANNEL`, in batches (group
commit: everything queued when a flush starts goes in ONE ``put_writes`` call), each
batch under its own synthetic task id, so records are never overwritten. Types:
``call_started``, ``call_finished``, ``speculation``, ``turn``, ``input``, ``delivered``,
``start``, ``release``. A damaged or foreign record raises
:class:`~langgraph_speculative.errors.JournalCorruptError` naming the thread, the task and
the record.

Leases (which run owns a task). The process that *stored* a checkpoint owns its tasks
without writing anything: the wrapping checkpointer carries a creator lease (epoch 0:
owner, host, pid, time) in the checkpoint's metadata under :data:`LEASE_METADATA_KEY`
(and strips it from every metadata it returns), and the creator's journal records are
its heartbeat. Its first records must be durable within ``claim_window / 2`` seconds of
the checkpoint (a ``start`` record is posted after ``claim_window / 4`` if nothing else
was written); a creator slower than that reads back once to check that nobody took
over. Any other run (a resume: the checkpoint was *loaded*) claims the task: a claim on
:data:`LEASE_CHANNEL` under ``lgs-lease:<task id>:<epoch, 6 digits>`` (the first claim of
an epoch wins), then a read-back; the loser gets
:class:`~langgraph_speculative.errors.ConcurrentResumeError`, and a claim that turns out
to be premature is voided (``lgs-lease:<task id>:<epoch>v``). A lease is stale when its
run released the task, its process is gone (same host), its last record is older than
its ``ttl`` (another host), or, for a creator that never started the task (its run
ended before it, e.g. ``interrupt_before``), ``claim_window`` seconds after it stored the
checkpoint.

Nodes get their journal with :func:`~langgraph_speculative.durability.checkpointer.journal_for`;
this module is the writer (and the lease protocol); the record format, re-exported here,
lives in :mod:`langgraph_speculative.durability.records`.

Example:
    ```python
    import asyncio
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph_speculative.durability.journal import RunJournal
    from langgraph_speculative.core.ledger import CallRecord

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
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.messages import ToolMessage, message_to_dict
from langchain_core.runnables import RunnableConfig

from langgraph_speculative.core.ledger import CallRecord, CallState, InputRecord, Speculation
from langgraph_speculative.durability.records import (
    FORMAT_VERSION,
    JOURNAL_CHANNEL,
    JOURNAL_TASK_PREFIX,
    LEASE_CHANNEL,
    LEASE_METADATA_KEY,
    LEASE_TASK_PREFIX,
    RECORD_TYPES,
    CheckpointView,
    JournalRecord,
    JournalStats,
    Lease,
    journal_task_id,
    lease_task_id,
    parse_writes,
    replay,
    void_record,
)
from langgraph_speculative.durability.resume import OutcomeUnknownHook, ResumeState, TurnRecord
from langgraph_speculative.errors import (
    CheckpointerError,
    ConcurrentResumeError,
    JournalCorruptError,
    SpeculativeError,
)

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

_log = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "JOURNAL_CHANNEL",
    "JOURNAL_TASK_PREFIX",
    "LEASE_CHANNEL",
    "LEASE_METADATA_KEY",
    "LEASE_TASK_PREFIX",
    "RECORD_TYPES",
    "CheckpointView",
    "JournalRecord",
    "JournalStats",
    "Lease",
    "RunJournal",
    "journal_session",
]

# journals of this process that are open, by (owner, task id), for same-pid leases
_LIVE: Counter[tuple[str, str]] = Counter()


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
            (:data:`~langgraph_speculative.durability.resume.OutcomeUnknownHook`).
        lease_ttl: Seconds after its last record when another host's lease is stale.
        parent_wait: Seconds to wait for the parent checkpoint to be stored (LangGraph
            stores it in the background with ``durability="async"``).
        claim_window: Seconds after storing a checkpoint within which its creator's
            first records are due (see the module docs); until then a run that loaded
            the checkpoint may not take a task over from a live creator that has not
            started it yet.

    Raises:
        SpeculativeError: On an empty thread, checkpoint or task id, or a ``lease_ttl``
            or ``claim_window`` that is not positive.
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
        claim_window: float = 4.0,
    ) -> None:
        for name, value in (
            ("thread_id", thread_id),
            ("checkpoint_id", checkpoint_id),
            ("task_id", task_id),
        ):
            if not isinstance(value, str) or not value:
                raise SpeculativeError(f"a run journal needs a non-empty {name}, got {value!r}")
        if not lease_ttl > 0 or not claim_window > 0:
            raise SpeculativeError(
                f"lease_ttl and claim_window must be > 0 seconds, got {lease_ttl!r}, "
                f"{claim_window!r}"
            )
        self.saver = saver
        self.thread_id = thread_id
        self.checkpoint_ns = checkpoint_ns
        self.checkpoint_id = checkpoint_id
        self.task_id = task_id
        self.on_outcome_unknown = on_outcome_unknown
        self.lease_ttl = float(lease_ttl)
        self.parent_wait = parent_wait
        self.claim_window = float(claim_window)
        self.owner = uuid.uuid4().hex
        self.state: ResumeState | None = None
        self.records: list[JournalRecord] = []
        """The records of earlier runs of the task, in ``seq`` order (set by :meth:`open`)."""
        self.lease: Lease | None = None
        self._live: tuple[str, str] | None = None  # our entry in _LIVE while open
        self._top_epoch = 0  # highest claimed epoch (voided ones too) of the last parse
        self._check_after: float | None = None  # first write after this: read back once
        self._keepalive: asyncio.TimerHandle | None = None
        self._parent: CheckpointView | None = None  # a parent being stored in the background
        self._guards = False  # a record queued guards a side effect (a call about to run)
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

    # -- reading -----------------------------------------------------------------------
    async def _fetch(self, *, wait: bool) -> CheckpointView | None:
        """Read the parent checkpoint afresh (waiting for it to be stored if ``wait``)."""
        raw = getattr(self.saver, "_aget_raw", None)  # a wrapper: metadata not stripped
        deadline = time.monotonic() + (self.parent_wait if wait else 0.0)
        delay = 0.002
        while True:
            started = time.perf_counter()
            seen_at = time.time()
            tup = await (
                raw(self._config) if callable(raw) else self.saver.aget_tuple(self._config)
            )
            self.stats.reads += 1
            self.stats.read_s += time.perf_counter() - started
            if tup is not None or time.monotonic() >= deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        if tup is None:
            return None
        return CheckpointView(
            [(w[0], w[1], w[2]) for w in (tup.pending_writes or ())],
            (tup.metadata or {}).get(LEASE_METADATA_KEY),
            seen_at,
        )

    async def read(self) -> tuple[list[JournalRecord], list[Lease]]:
        """Read and validate this task's journal records and lease claims.

        Returns:
            Records in ``seq`` order, leases in epoch order (claims; voided ones left
            out; the creator lease of the checkpoint's metadata first, if it has one).

        Raises:
            JournalCorruptError: A damaged record, or a foreign write on a journal channel.
        """
        view = await self._fetch(wait=False)
        if view is None:
            return [], []
        records, leases = self._parse(view.writes)
        creator = self._creator(view.carried)
        return records, ([creator] if creator is not None else []) + leases

    def _creator(self, carried: Any) -> Lease | None:
        if carried is None:
            return None
        try:
            lease = Lease.from_dict(carried)
            if lease.epoch != 0:
                raise SpeculativeError(f"a creator lease has epoch 0, not {lease.epoch}")
        except SpeculativeError as exc:
            raise JournalCorruptError(
                f"{self.where}: the creator lease in the metadata of checkpoint "
                f"{self.checkpoint_id!r} (key {LEASE_METADATA_KEY!r}) is damaged or "
                f"foreign: {exc}"
            ) from exc
        return lease

    def _parse(
        self, writes: Sequence[tuple[str, str, Any]]
    ) -> tuple[list[JournalRecord], list[Lease]]:
        records, leases, self._top_epoch = parse_writes(writes, self.task_id, self.where)
        return records, leases

    # -- opening and the lease -------------------------------------------------------
    async def open(self) -> ResumeState:
        """Read the task's journal, replay it, and claim the task.

        Calling it again returns the same state. Through the wrapping checkpointer, a
        task of a checkpoint this process just stored needs no saver call at all (the
        checkpoint carries the creator lease; see the module docs).

        Returns:
            What earlier runs of the task recorded (empty on a first run).

        Raises:
            JournalCorruptError: If a record is damaged or foreign.
            ConcurrentResumeError: If another live run holds the task, or claimed it first.
            CheckpointerError: If the parent checkpoint is not in the store.
        """
        if self.state is not None:
            return self.state
        take = getattr(self.saver, "_take_view", None)
        view = take(self._config, self.task_id) if callable(take) else None
        if callable(take) and view is None:
            # with durability="async" LangGraph may start the task before it hands the
            # parent checkpoint to the wrapper: give the put a moment to begin
            deadline = time.monotonic() + min(0.05, self.parent_wait)
            tries = 0
            while view is None and time.monotonic() < deadline:
                await asyncio.sleep(0 if tries < 20 else 0.001)  # a put starts at once
                tries += 1
                view = take(self._config, self.task_id)
        if isinstance(view, CheckpointView):
            creator = self._creator(view.carried)
            if (
                view.created
                and creator is not None
                and creator.owner == getattr(self.saver, "owner", None)
                and time.time() < creator.at + self.claim_window / 2
            ):
                self._parent = view  # the first write waits until it is stored
                return self._open_created(creator)
            if not view.created:
                try:
                    return await self._open(view)
                except ConcurrentResumeError:
                    pass  # the view may be stale: decide on a fresh read
        return await self._open(None)

    def _adopt(self, now: float) -> bool:
        """Take a task of a checkpoint this process stored whose view was not at hand."""
        owner = getattr(self.saver, "owner", None)
        fresh = CheckpointView.registered(
            str(owner), self.thread_id, self.checkpoint_ns, self.checkpoint_id
        )
        if fresh is None or self.task_id in fresh.opened or not fresh.stored:
            return False
        if not now < fresh.seen_at + self.claim_window / 2:
            return False
        fresh.opened.add(self.task_id)
        return True

    async def _stored(self, view: CheckpointView) -> bool:
        """Wait (up to ``parent_wait``) until a checkpoint stored in the background is in."""
        deadline = time.monotonic() + self.parent_wait
        while not view.stored and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        return view.stored

    def _open_created(self, creator: Lease) -> ResumeState:
        """Own a task of a checkpoint this process just stored: nobody else can have it."""
        self.owner = creator.owner  # records by the creator are its lease's heartbeat
        self.lease = creator
        self._check_after = creator.at + self.claim_window / 2
        self._keepalive = asyncio.get_running_loop().call_later(
            self.claim_window / 4, self._heartbeat
        )
        return self._opened([])

    def _opened(self, records: list[JournalRecord]) -> ResumeState:
        state = replay(records, self.where)
        self.records = records
        self._seq = records[-1].seq if records else 0
        self.state = state
        self._live = (self.owner, self.task_id)
        _LIVE[self._live] += 1
        return state

    def _heartbeat(self) -> None:
        """Make the creator's run visible if it has written nothing yet."""
        self._keepalive = None
        if self.state is not None and self._live is not None and self._tail is None:
            with contextlib.suppress(SpeculativeError):
                self.post("start", {})

    def _missing_parent(self) -> CheckpointerError:
        return CheckpointerError(
            f"{self.where}: checkpoint {self.checkpoint_id!r} (namespace "
            f"{self.checkpoint_ns!r}) is not in the store after {self.parent_wait:g} s, "
            "so a journal hung on it could never be read back"
        )

    def _holder(
        self, view: CheckpointView
    ) -> tuple[list[JournalRecord], list[Lease], Lease | None]:
        records, leases = self._parse(view.writes)
        current = leases[-1] if leases else self._creator(view.carried)
        return records, leases, current

    def _held(self, lease: Lease, *, took: bool = False) -> ConcurrentResumeError:
        verb = "another run took it over" if took else "another run holds it"
        return ConcurrentResumeError(
            f"{self.where}: {verb} (owner {lease.owner}, host {lease.host!r}, pid "
            f"{lease.pid}, claimed at {lease.at:.3f}); only one process may run or resume "
            "a thread at a time"
        )

    async def _open(self, view: CheckpointView | None) -> ResumeState:
        if view is None:
            view = await self._fetch(wait=True)
            if view is None:
                raise self._missing_parent()
        records, leases, current = self._holder(view)
        if (
            current is not None
            and current.epoch == 0
            and current.owner == getattr(self.saver, "owner", None)
            and not records
            and not leases
            and self._adopt(view.seen_at)
        ):
            return self._open_created(current)  # stored here after all (and not started)
        if current is not None and self._alive(current, records, view.seen_at):
            raise self._held(current)
        epoch = self._top_epoch + 1
        host, pid = socket.gethostname(), os.getpid()
        lease = Lease(epoch, self.owner, host, pid, time.time(), self.lease_ttl)
        await self._put(lease_task_id(self.task_id, epoch), LEASE_CHANNEL, [lease.to_dict()])
        # read back: the first claim of an epoch wins (and the records are complete now)
        stored = await self._fetch(wait=True)
        if stored is None:
            raise self._missing_parent()
        records, after = self._parse(stored.writes)
        won = next((x for x in after if x.epoch == epoch), None)
        if won is None or won.owner != self.owner:
            other = f"owner {won.owner}, host {won.host!r}, pid {won.pid}" if won else "unknown"
            raise ConcurrentResumeError(
                f"{self.where}: another run claimed it first ({other}); only one process "
                "may run or resume a thread at a time"
            )
        newer = [x for x in after if x.epoch > epoch]
        if newer:
            raise self._held(newer[-1], took=True)
        if current is not None and self._alive(current, records, stored.seen_at):
            # the holder wrote meanwhile (a creator's first records): it keeps the task
            await self._put(
                lease_task_id(self.task_id, epoch, void=True),
                LEASE_CHANNEL,
                [void_record(epoch, self.owner)],
            )
            raise self._held(current)
        self.lease = lease
        if current is not None and self._may_still_write(current, records):
            self._check_after = float("-inf")  # a late creator may write the same seqs
        return self._opened(records)

    def _may_still_write(self, lease: Lease, records: Sequence[JournalRecord]) -> bool:
        """Whether a creator judged never-started could still write its first records."""
        if lease.epoch != 0 or any(r.owner == lease.owner for r in records):
            return False
        if lease.host != socket.gethostname():
            return True
        return lease.pid != os.getpid() and _pid_alive(lease.pid)

    def _alive(self, lease: Lease, records: Sequence[JournalRecord], now: float) -> bool:
        """Whether ``lease`` still holds the task, judged on a view seen at ``now``."""
        mine = [r for r in records if r.owner == lease.owner]
        if any(r.type == "release" for r in mine):
            return False
        never_started = lease.epoch == 0 and not mine
        if lease.host == socket.gethostname():
            if lease.pid == os.getpid():  # this process: known exactly
                if _LIVE[(lease.owner, self.task_id)] > 0:
                    return True
                fresh = (
                    CheckpointView.registered(
                        lease.owner, self.thread_id, self.checkpoint_ns, self.checkpoint_id
                    )
                    if never_started
                    else None
                )
                return (
                    fresh is not None
                    and self.task_id not in fresh.opened
                    and now < lease.at + self.claim_window
                )
            if not _pid_alive(lease.pid):
                return False
            return not never_started or now < lease.at + self.claim_window
        if never_started:
            return now < lease.at + min(self.claim_window, lease.ttl)
        last = max([lease.at, *(r.at for r in mine)])
        return now < last + lease.ttl

    async def _check(self, first: int) -> None:
        """After a late first write: is the task still ours, and are our records stored?"""
        view = await self._fetch(wait=False)
        if view is None:
            raise self._missing_parent()
        records, leases = self._parse(view.writes)
        assert self.lease is not None
        newer = [x for x in leases if x.epoch > self.lease.epoch]
        if newer:
            raise self._held(newer[-1], took=True)
        theirs = next((r for r in records if r.seq >= first and r.owner != self.owner), None)
        if theirs is not None:
            raise ConcurrentResumeError(
                f"{self.where}: another run (owner {theirs.owner}) wrote journal record "
                f"{theirs.seq} at the same time; only one process may run or resume a "
                "thread at a time"
            )

    # -- writing -----------------------------------------------------------------------
    async def _put(self, task_id: str, channel: str, values: Sequence[dict[str, Any]]) -> None:
        started = time.perf_counter()
        await self.saver.aput_writes(self._config, [(channel, v) for v in values], task_id, "")
        self.stats.writes += 1
        self.stats.write_s += time.perf_counter() - started

    async def _drain(self, previous: asyncio.Task[None] | None) -> None:
        """Write, after ``previous``, everything queued by then as ONE batch."""
        try:
            # one turn of the event loop first: records that what set off this write
            # queues at once (a finished call's dependents starting) go in the same batch
            await asyncio.sleep(0)
            if previous is not None:
                await previous  # in order: a failed write fails every later one
        finally:
            if self._waiting is asyncio.current_task():
                self._waiting = None  # records queued from now on need another write
        if self._parent is not None and self._queue and self._guards:
            # a record that guards a side effect hangs on the parent: it is durable only
            # once the parent is (durability="async" stores it in the background); other
            # records may land first (lost with the parent, they promised nothing)
            parent, self._parent = self._parent, None
            if not await self._stored(parent):
                raise self._missing_parent()
        batch, self._queue = self._queue, []
        if batch:
            await self._put(
                journal_task_id(self.task_id, batch[0].seq),
                JOURNAL_CHANNEL,
                [r.to_dict() for r in batch],
            )
            check_after, self._check_after = self._check_after, None
            if check_after is not None and time.time() > check_after:
                await self._check(batch[0].seq)

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

    async def close(self, *, release: bool = True) -> None:
        """End the run: wait for its writes and stop owning the task.

        Args:
            release: Write a ``release`` record (and everything queued with it), so that
                another process may resume the task at once. ``False`` (for a node run
                that returned and does not :attr:`owes_release`): nothing more is
                written, since LangGraph's own write of the node's output supersedes the
                journal; writes under way are awaited and records only deferred (which
                promised nothing) are dropped.
        """
        if self.state is None or self._live is None:
            return
        try:
            if release:
                self.post("release", {})
                await self.flush()
            else:
                pending = self._waiting or self._tail
                if pending is not None:
                    await asyncio.shield(pending)
        finally:
            self.detach()

    @property
    def owes_release(self) -> bool:
        """Whether the run must write a ``release`` record when it ends.

        A creator that wrote nothing need not: its lease goes stale ``claim_window``
        seconds after its checkpoint was stored. A run that wrote a record, or claimed
        the task on a resume, would otherwise look alive to another process on its host
        for as long as its process lives (to one on another host, for ``lease_ttl``).
        """
        return self._tail is not None or (self.lease is not None and self.lease.epoch > 0)

    def detach(self) -> None:
        """Stop owning the task without writing (what a crash amounts to)."""
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if self._live is not None:
            _LIVE[self._live] -= 1
            if _LIVE[self._live] <= 0:
                del _LIVE[self._live]
            self._live = None

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
            self._guards = True
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
        delivered) or flush (before the next model request); a run that returns drops it
        (its output, saved by LangGraph, holds the turn).
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

    A run that raises an ``Exception`` or is cancelled releases its claim (the process
    lives on, another may resume the task at once); so does a run that returns, if it
    :attr:`~RunJournal.owes_release` (LangGraph saves the node's output next, but if that
    fails, another process must not take the run for a live one). Any other
    ``BaseException`` (a process going down, or a test's simulated crash) only detaches,
    as a crash would.
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
        await journal.close(release=journal.owes_release)
    finally:
        journal.detach()


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a write's exception as seen (it is re-raised to whoever awaits the chain)."""
    if not task.cancelled():
        task.exception()
