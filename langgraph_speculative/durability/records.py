"""The journal's record format: channels, task ids, records, leases, and their decoding.

A :class:`~langgraph_speculative.durability.journal.RunJournal` stores its records as
pending writes of the task's **parent checkpoint** (the checkpoint the superstep started
from, which a resumed run loads again), on channel :data:`JOURNAL_CHANNEL`. Records are
written in batches (group commit: everything queued when a flush starts goes in ONE
``put_writes`` call), each batch under its own synthetic task id
``lgs-journal:<task id>:<seq of its first record, 10 digits>`` (:func:`journal_task_id`),
its records at write indexes 0, 1, ... LangGraph ignores pending writes whose task id is
not one of the step's tasks, and every saver keeps the first write of a
``(task id, index)`` pair, so records are never overwritten. The value is a plain dict
(any serializer stores it)::

    {"lgs": 1, "seq": 3, "type": "call_finished", "owner": "<run id>", "at": 1712.5,
     "data": {...}}

Types: :data:`RECORD_TYPES`. Lease claims (:class:`Lease`) go on :data:`LEASE_CHANNEL`
under ``lgs-lease:<task id>:<epoch, 6 digits>``, a voided claim under the same id with a
``v`` appended (:func:`lease_task_id`, :func:`void_record`); the creator lease rides in
the checkpoint's metadata under :data:`LEASE_METADATA_KEY`. :func:`parse_writes` reads a
task's records and claims back from a checkpoint's pending writes, :func:`replay` turns
the records into a :class:`~langgraph_speculative.durability.resume.ResumeState`; a
damaged or foreign record raises
:class:`~langgraph_speculative.errors.JournalCorruptError` naming the thread, the task and
the record.

Example:
    ```python
    from langgraph_speculative.durability.records import (
        JOURNAL_CHANNEL,
        JournalRecord,
        journal_task_id,
        parse_writes,
        replay,
    )

    rec = JournalRecord(1, "delivered", "run-1", 1712.5, {"ids": ["c1"]})
    writes = [(journal_task_id("task1", 1), JOURNAL_CHANNEL, rec.to_dict())]
    records, leases, top_epoch = parse_writes(writes, "task1", "task 'task1'")
    assert records == [rec] and leases == [] and top_epoch == 0
    assert replay(records, "task 'task1'").delivered == {"c1"}
    ```
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import ToolMessage, messages_from_dict

from langgraph_speculative.core.ledger import CallRecord, InputRecord, Speculation
from langgraph_speculative.durability.resume import ResumeState, TurnRecord
from langgraph_speculative.errors import JournalCorruptError, SpeculativeError

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
    "journal_task_id",
    "lease_task_id",
    "parse_writes",
    "replay",
    "void_record",
]

FORMAT_VERSION = 1
"""Version of the record format (the ``lgs`` field of every record)."""

JOURNAL_CHANNEL = "lgs:journal"
"""The channel journal records are written on."""

LEASE_CHANNEL = "lgs:lease"
"""The channel lease claims are written on."""

LEASE_METADATA_KEY = "lgs:lease"
"""The checkpoint metadata key of the creator lease (stripped by the wrapping checkpointer)."""

JOURNAL_TASK_PREFIX = "lgs-journal:"
"""Prefix of the synthetic task ids of journal records."""

LEASE_TASK_PREFIX = "lgs-lease:"
"""Prefix of the synthetic task ids of lease claims."""

RECORD_TYPES = frozenset(
    {
        "call_started",
        "call_finished",
        "speculation",
        "turn",
        "input",
        "delivered",
        "start",
        "release",
    }
)
"""Every record type the journal writes."""

_RECORD_KEYS = frozenset({"lgs", "seq", "type", "owner", "at", "data"})
_LEASE_KEYS = frozenset({"lgs", "epoch", "owner", "host", "pid", "at", "ttl"})
_VOID_KEYS = frozenset({"lgs", "void", "owner"})
# checkpoints stored by wrappers of this process, by (owner, thread, namespace, id), while
# their wrapper remembers them (for same-pid creator leases whose task has not started)
_CREATED: weakref.WeakValueDictionary[tuple[str, str, str, str], CheckpointView] = (
    weakref.WeakValueDictionary()
)


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
        epoch: 0 for the creator lease carried in checkpoint metadata, then 1 for the
            first claim of the task, +1 for each takeover.
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
        for name, number, least in (("epoch", epoch, 0), ("pid", pid, 1)):
            if isinstance(number, bool) or not isinstance(number, int) or number < least:
                raise SpeculativeError(
                    f"lease {name} must be an integer >= {least}, got {number!r}"
                )
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


@dataclass(slots=True, weakref_slot=True)
class CheckpointView:
    """What a wrapping checkpointer knows of a checkpoint without reading it again.

    Attributes:
        writes: The checkpoint's pending writes ``(task id, channel, value)`` as seen.
        carried: The raw creator lease of its metadata (:data:`LEASE_METADATA_KEY`).
        seen_at: When they were seen (``time.time()``).
        created: Whether this process stored the checkpoint (then ``writes`` is empty).
        stored: Whether the store has it (``False`` while a background put runs).
        opened: Tasks whose journal already used this view (each may use it once).
    """

    writes: list[tuple[str, str, Any]]
    carried: Any
    seen_at: float
    created: bool = False
    stored: bool = True
    opened: set[str] = field(default_factory=set)

    def register(self, owner: str, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> None:
        """Make a checkpoint this process stored known to its other journals."""
        _CREATED[(owner, thread_id, checkpoint_ns, checkpoint_id)] = self

    @staticmethod
    def registered(
        owner: str, thread_id: str, checkpoint_ns: str, checkpoint_id: str
    ) -> CheckpointView | None:
        """The view :meth:`register` ed for a checkpoint, while its wrapper remembers it."""
        return _CREATED.get((owner, thread_id, checkpoint_ns, checkpoint_id))


# -- task ids and the void record -------------------------------------------------------------
def journal_task_id(task_id: str, seq: int) -> str:
    """The synthetic task id of the batch of ``task_id``'s records that starts at ``seq``."""
    return f"{JOURNAL_TASK_PREFIX}{task_id}:{seq:010d}"


def lease_task_id(task_id: str, epoch: int, *, void: bool = False) -> str:
    """The synthetic task id of ``task_id``'s lease claim of ``epoch`` (or of its voiding)."""
    return f"{LEASE_TASK_PREFIX}{task_id}:{epoch:06d}{'v' if void else ''}"


def void_record(epoch: int, owner: str) -> dict[str, Any]:
    """The stored form of ``owner`` voiding its (premature) claim of ``epoch``."""
    return {"lgs": FORMAT_VERSION, "void": epoch, "owner": owner}


# -- reading ------------------------------------------------------------------------------------
def parse_writes(
    writes: Sequence[tuple[str, str, Any]], task_id: str, where: str
) -> tuple[list[JournalRecord], list[Lease], int]:
    """Read and validate one task's journal records and lease claims.

    Args:
        writes: A checkpoint's pending writes ``(task id, channel, value)``.
        task_id: The LangGraph task whose records and claims to read.
        where: Thread and task, for error messages.

    Returns:
        The task's records in ``seq`` order, its claims in epoch order (voided ones left
        out), and the highest epoch claimed (voided ones too; 0 if none).

    Raises:
        JournalCorruptError: A damaged record, or a foreign write on a journal channel.
    """
    mine = f"{JOURNAL_TASK_PREFIX}{task_id}:"
    my_lease = f"{LEASE_TASK_PREFIX}{task_id}:"
    records: dict[int, JournalRecord] = {}
    batches: dict[int, list[JournalRecord]] = {}
    leases: dict[int, Lease] = {}
    voided: set[int] = set()
    for write_task, channel, value in writes:
        if channel in (JOURNAL_CHANNEL, LEASE_CHANNEL) and not (
            write_task.startswith((JOURNAL_TASK_PREFIX, LEASE_TASK_PREFIX))
        ):
            raise JournalCorruptError(
                f"{where}: a foreign write on journal channel {channel!r} "
                f"(task {write_task!r}): not a journal record"
            )
        if write_task.startswith(mine):
            batch = _number(write_task, mine, channel, JOURNAL_CHANNEL, where)
            try:
                rec = JournalRecord.from_dict(value)
            except SpeculativeError as exc:
                raise JournalCorruptError(
                    f"{where}, journal record {batch}: damaged or foreign record: {exc}"
                ) from exc
            batches.setdefault(batch, []).append(rec)
        elif write_task.startswith(my_lease) and write_task.endswith("v"):
            epoch = _number(write_task[:-1], my_lease, channel, LEASE_CHANNEL, where)
            if not (
                isinstance(value, Mapping)
                and set(value) == _VOID_KEYS
                and value["void"] == epoch
                and value["lgs"] == FORMAT_VERSION
            ):
                raise JournalCorruptError(f"{where}, lease {epoch}: damaged or foreign void record")
            voided.add(epoch)
        elif write_task.startswith(my_lease):
            epoch = _number(write_task, my_lease, channel, LEASE_CHANNEL, where)
            try:
                lease = Lease.from_dict(value)
                if lease.epoch != epoch:
                    raise SpeculativeError(f"epoch {lease.epoch} is stored as {epoch}")
            except SpeculativeError as exc:
                raise JournalCorruptError(
                    f"{where}, lease {epoch}: damaged or foreign record: {exc}"
                ) from exc
            leases[epoch] = lease
    for batch, recs in batches.items():
        seqs = sorted(r.seq for r in recs)
        if seqs != list(range(batch, batch + len(recs))):
            raise JournalCorruptError(
                f"{where}, journal record {batch}: damaged or foreign record: seq "
                f"{seqs[0] if len(seqs) == 1 else seqs} is stored as {batch} (a batch of "
                f"{len(recs)} from seq {batch})"
            )
        for rec in recs:
            if rec.seq in records:
                raise JournalCorruptError(
                    f"{where}, journal record {rec.seq}: stored twice (batches "
                    f"overlap): damaged or foreign record"
                )
            records[rec.seq] = rec
    kept = [leases[k] for k in sorted(leases) if k not in voided]
    top_epoch = max(max(leases, default=0), max(voided, default=0))
    return [records[k] for k in sorted(records)], kept, top_epoch


def _number(task_id: str, prefix: str, channel: str, expected: str, where: str) -> int:
    text = task_id[len(prefix) :]
    if channel != expected or not text.isdigit():
        raise JournalCorruptError(
            f"{where}: write {task_id!r} on channel {channel!r} is not a journal "
            f"record (expected channel {expected!r} and a numeric index)"
        )
    return int(text)


def replay(records: Sequence[JournalRecord], where: str) -> ResumeState:
    """Rebuild what the runs that wrote ``records`` had done.

    Args:
        records: One task's records in ``seq`` order (as :func:`parse_writes` returns them).
        where: Thread and task, for error messages.

    Raises:
        JournalCorruptError: If a record's payload is damaged.
    """
    state = ResumeState()
    for rec in records:
        try:
            _apply(state, rec)
        except (SpeculativeError, KeyError, TypeError, ValueError) as exc:
            raise JournalCorruptError(
                f"{where}, journal record {rec.seq} ({rec.type}): {exc}"
            ) from exc
        if not state.owners or state.owners[-1] != rec.owner:
            state.owners.append(rec.owner)
    state.records = len(records)
    return state


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
