"""Speculative tool calls: launch on partial input, revise, withdraw, then commit or abort.

A model listening to a user who is still talking may call tools before the input is
final. :class:`SpeculationManager` keeps those calls on the shared ledger and executor:

- :meth:`~SpeculationManager.propose` starts a speculative call under the model's
  (logical) id. Safe tools run at once; unsafe ones are held by the executor until the
  commit point. Proposing the same id again with other arguments *revises* the call: the
  old run is cancelled (or, if finished, kept only in the result cache), and every call
  that depended on it (``depends_on``, transitively) is aborted with it. Proposing it again
  with the same arguments changes nothing.
- :meth:`~SpeculationManager.withdraw` removes a call and, in cascade, its dependents.
- Results of **safe** tools are cached by (tool, canonical arguments): a new proposal
  identical to a live or finished safe call shares its record (it does not run again),
  and a final call identical to a speculative one is adopted without running again.
  Unsafe calls are never shared: two identical unsafe calls are two side effects.
- :meth:`~SpeculationManager.commit` takes the final plan (the calls that stand once the
  input is final): matching speculative calls are committed and adopted (held unsafe ones
  start now), missing ones are started, and every other speculative call is aborted.
  Results of aborted calls are never handed out afterwards.

Which calls a plan leaves unconfirmed (:meth:`~SpeculationManager.unconfirmed`) is what
decides the speculative agent's *abort* edge: a live speculative call (the current version
of a call the model has not withdrawn) that the plan does not adopt. Old versions the model
revised itself, and calls it withdrew, were settled by the model before the commit point
and do not count; finished old versions are dropped at the commit point as *discarded*.

Example:
    ```python
    import asyncio
    from langchain_core.tools import tool
    from langgraph_speculative import ToolExecutor, label_tool
    from langgraph_speculative.speculative.manager import SpeculationManager

    @tool
    async def search(q: str) -> str:
        '''Search.'''
        return f"results for {q}"

    label_tool(search, safe=True)

    async def main() -> str:
        async with ToolExecutor([search]) as ex:
            spec = SpeculationManager(ex)
            def call(q: str) -> dict:
                return {"name": "search", "args": {"q": q}, "id": "c1", "type": "tool_call"}

            spec.propose(call("Taylor"))  # said so far: "Play Taylor"
            spec.propose(call("Taylor Swift"))  # revised: same id
            spec.commit([call("Taylor Swift")])  # adopted, not run again
            return str((await spec.result("c1")).content)

    assert asyncio.run(main()) == "results for Taylor Swift"
    ```
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from langchain_core.messages import ToolCall, ToolMessage

from langgraph_speculative.core.executor import ToolExecutor, result_message_id
from langgraph_speculative.core.ledger import CallRecord, CallState, Speculation, canonical_json
from langgraph_speculative.errors import SpeculativeError

__all__ = ["CommitOutcome", "SpeculationManager"]


@dataclass(frozen=True, slots=True)
class CommitOutcome:
    """What the commit point decided.

    Attributes:
        adopted: Final call id to the speculative record whose result it reuses.
        started: Final call ids that had to run now (no usable speculative result).
        aborted: Record ids of live speculative calls the final plan did not confirm.
        discarded: Record ids of finished old versions (revised by the model) dropped now.
    """

    adopted: dict[str, str] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)

    @property
    def all_confirmed(self) -> bool:
        """Whether every live speculative call was confirmed (the commit edge, not abort)."""
        return not self.aborted


def _key(tool: str, args: object) -> tuple[str, str]:
    return tool, canonical_json(args)


def _call_id(call: ToolCall) -> str:
    cid = call.get("id") or ""
    if not isinstance(cid, str):
        raise SpeculativeError(f"a call id must be a str, got {cid!r}")
    return cid


_UNUSABLE = (CallState.FAILED, CallState.CANCELLED)


class SpeculationManager:
    """Speculative calls of one interaction, on a shared executor (see module docs).

    Args:
        executor: The run's executor (its ledger records every version of every call).

    Attributes:
        stats: Counts of ``launched``, ``revised``, ``withdrawn``, ``committed`` (final
            calls served by a speculative record), ``aborted`` (speculative records
            aborted, each once: at revision or withdrawal, or at the commit point) and
            ``reused`` (a proposal served by the result cache).
    """

    def __init__(self, executor: ToolExecutor) -> None:
        self.executor = executor
        self.stats: Counter[str] = Counter()
        self._current: dict[str, str] = {}  # logical id -> record id
        self._users: dict[str, list[str]] = {}  # record id -> logical ids it serves
        self._deps: dict[str, tuple[str, ...]] = {}  # logical id -> logical ids it needs
        self._versions: Counter[str] = Counter()
        self._cache: dict[tuple[str, str], str] = {}  # (tool, args) -> record id
        self._final: dict[str, str] | None = None  # final call id -> record id
        self._final_users: dict[str, list[str]] = {}  # record id -> final call ids
        self._cancelled: list[str] = []  # logical ids aborted in cascade, not yet drained
        self._finished_by: Callable[[CallRecord], bool] | None = None  # replay: as of when

    def state_of(self, record: CallRecord) -> CallState:
        """The state of a record as the manager's decisions see it.

        Normally the record's own state. While :meth:`replaying` a journal, a record the
        journal saw finish only *later* than the point being replayed counts as running,
        so the replayed decisions (share a cached call, abort a revised one, adopt at the
        commit point) are the ones the crashed run took.

        Args:
            record: A record of the ledger.

        Returns:
            Its state (``RUNNING`` for a record not yet finished at the replay point).
        """
        finished_by = self._finished_by
        if finished_by is not None and record.state.terminal and not finished_by(record):
            return CallState.RUNNING
        return record.state

    @contextlib.contextmanager
    def replaying(self, finished_by: Callable[[CallRecord], bool]) -> Iterator[None]:
        """Replay a crashed run's decisions with records' states as of the replay point.

        A resumed run restores finished calls at once (their results are reused), which
        would make calls look finished earlier than they were; inside this block
        :meth:`state_of` asks ``finished_by`` instead.

        Args:
            finished_by: Whether a (terminal) record had finished at the current point of
                the replay.

        Yields:
            Nothing; the view ends with the block.
        """
        previous, self._finished_by = self._finished_by, finished_by
        try:
            yield
        finally:
            self._finished_by = previous

    @property
    def committed(self) -> bool:
        """Whether :meth:`commit` has run."""
        return self._final is not None

    def record_of(self, call_id: str) -> CallRecord | None:
        """The current record of a logical call id.

        The record may be aborted (a call cancelled because one it depended on changed).

        Args:
            call_id: The model's id of the call.

        Returns:
            The record, or ``None`` if the call was withdrawn or never made.
        """
        rid = self._current.get(call_id)
        return self.executor.ledger.get(rid) if rid is not None else None

    def live(self) -> dict[str, CallRecord]:
        """The live calls.

        Returns:
            Logical call id to its live (not aborted) record, in the order calls were made.
        """
        out: dict[str, CallRecord] = {}
        for cid, rid in self._current.items():
            rec = self.executor.ledger.get(rid)
            if rec.speculation is not Speculation.ABORTED:
                out[cid] = rec
        return out

    def logical_ids(self, record_id: str) -> list[str]:
        """The logical call ids a record currently serves.

        Args:
            record_id: A record id of the ledger.

        Returns:
            The ids (several when the cache shares the record; none once it is retired).
        """
        return list(self._users.get(record_id, ()))

    def final_ids(self, record_id: str) -> list[str]:
        """The final call ids a record serves.

        Args:
            record_id: A record id of the ledger.

        Returns:
            The ids (empty before the commit point and for records outside the plan).
        """
        return list(self._final_users.get(record_id, ()))

    def drain_cancelled(self) -> list[str]:
        """Logical ids aborted in cascade since the last drain (a call they needed changed).

        The model did not revise or withdraw these itself; a runtime tells it that they were
        cancelled.

        Returns:
            The logical ids, in the order they were cancelled.
        """
        out, self._cancelled = self._cancelled, []
        return out

    # -- before the commit point ------------------------------------------------------
    def propose(self, call: ToolCall, *, depends_on: Sequence[str] = ()) -> CallRecord:
        """Start (or revise) a speculative call under the model's id.

        Args:
            call: The call; its ``id`` is the model's logical id.
            depends_on: Logical ids of calls whose results this call needs.

        Returns:
            The record now serving the logical id (a cached one for a repeated safe call;
            the unchanged one when the call is proposed again as it was).

        Raises:
            SpeculativeError: After the commit point, for an empty id, or for an unknown
                (or its own) dependency.
        """
        self._check_open()
        logical = _call_id(call)
        if not logical:
            raise SpeculativeError("a speculative call needs an id")
        args = dict(call.get("args") or {})
        key = _key(call["name"], args)
        deps = tuple(dict.fromkeys(depends_on))
        for dep in deps:
            if dep == logical:
                raise SpeculativeError(f"call {logical!r} cannot depend on itself")
            if dep not in self._current:
                raise SpeculativeError(f"call {logical!r} depends on unknown call {dep!r}")
        old = self.record_of(logical)
        if old is not None:
            if _key(old.tool, old.args) == key and old.speculation is not Speculation.ABORTED:
                return old  # the same call again: nothing to revise
            self.stats["revised"] += 1
            self._retire(logical, abort_finished=False)
        self._deps[logical] = deps
        if not deps:
            cached = self._cache.get(key)
            if cached is not None:
                rec = self.executor.ledger.get(cached)
                if (
                    rec.safe
                    and not rec.depends_on
                    and rec.speculation is Speculation.SPECULATIVE
                    and self.state_of(rec) not in _UNUSABLE
                ):
                    self._serve(logical, cached)
                    self.stats["reused"] += 1
                    return rec
        self._versions[logical] += 1
        version = self._versions[logical]
        rid = logical if version == 1 else f"{logical}~v{version}"
        while rid in self.executor.ledger:
            self._versions[logical] += 1
            rid = f"{logical}~v{self._versions[logical]}"
        record = self.executor.submit(
            ToolCall(name=call["name"], args=args, id=rid, type="tool_call"),
            speculative=True,
            depends_on=[self._current[d] for d in deps],
        )
        self._serve(logical, rid)
        self._cache[key] = rid
        self.stats["launched"] += 1
        return record

    def withdraw(self, call_id: str) -> list[str]:
        """Withdraw a call and, in cascade, every call depending on it.

        Args:
            call_id: The model's id of the call.

        Returns:
            The record ids aborted (the call's own, unless another logical call shares it,
            then its dependents').

        Raises:
            SpeculativeError: After the commit point.
        """
        self._check_open()
        if call_id not in self._current:
            return []
        self.stats["withdrawn"] += 1
        return self._retire(call_id, abort_finished=True)

    def result_so_far(self, call_id: str) -> ToolMessage | None:
        """The result of a live speculative call, if it has arrived.

        For the model to act on before the input is final.

        Args:
            call_id: The model's id of the call.

        Returns:
            The result labelled with ``call_id``, or ``None`` while it runs (or if the call
            was aborted).
        """
        rec = self.record_of(call_id)
        if rec is None or rec.speculation is Speculation.ABORTED or rec.result is None:
            return None
        return _relabel(rec.result, call_id)

    # -- the commit point ---------------------------------------------------------------
    def unconfirmed(self, final_calls: Sequence[ToolCall]) -> list[str]:
        """Record ids of live speculative calls that committing ``final_calls`` would abort.

        Nothing changes; this is what the speculative agent's router asks (the abort edge
        when the list is not empty).

        Args:
            final_calls: The final plan.

        Returns:
            The record ids, in the order the calls were made.

        Raises:
            SpeculativeError: After the commit point, or if final call ids repeat.
        """
        self._check_open()
        adopted = {rid for rid in self._adoption(final_calls).values() if rid is not None}
        return self._live_unadopted(adopted)

    def commit(self, final_calls: Sequence[ToolCall]) -> CommitOutcome:
        """Settle every speculative call against the final plan.

        A final call adopts, in this order, the current record of the live speculative
        call with the same id and the same tool and arguments, or else a cached record of
        the same tool and arguments (an unsafe record serves one final call only). The
        record is committed (a held unsafe call starts now) and its result reused. Other
        final calls start now, not speculatively (after the final calls they depend on,
        when the model declared ``depends_on``). Every speculative record not adopted is
        aborted (cancelled if still running; its result is never handed out).

        Args:
            final_calls: The final plan; each call's ``id`` is its final id.

        Returns:
            What was adopted, started, aborted and discarded.

        Raises:
            SpeculativeError: If called twice or final call ids repeat.
        """
        self._check_open()
        adoption = self._adoption(final_calls)
        adopted_ids = {rid for rid in adoption.values() if rid is not None}
        outcome = CommitOutcome()
        final: dict[str, str] = {}
        for call in final_calls:
            cid = _call_id(call)
            rid = adoption[cid]
            if rid is None:
                continue
            rec = self.executor.ledger.get(rid)
            if rec.speculation is Speculation.SPECULATIVE:
                self.executor.commit(rid)
            outcome.adopted[cid] = rid
            final[cid] = rid
            self.stats["committed"] += 1
        live = set(self._live_unadopted(adopted_ids))
        for rec in list(self.executor.ledger):
            if rec.speculation is Speculation.SPECULATIVE and rec.id not in adopted_ids:
                self.executor.abort(rec.id)
                (outcome.aborted if rec.id in live else outcome.discarded).append(rec.id)
                self.stats["aborted"] += 1
        for call in final_calls:
            cid = _call_id(call)
            if adoption[cid] is not None:
                continue
            rid = self._fresh_id(cid)
            deps = [final[d] for d in self._deps.get(cid, ()) if d in final]
            self.executor.submit(
                ToolCall(
                    name=call["name"], args=dict(call.get("args") or {}), id=rid, type="tool_call"
                ),
                depends_on=deps,
            )
            outcome.started.append(cid)
            final[cid] = rid
        self._final = {_call_id(c): final[_call_id(c)] for c in final_calls}
        for cid, rid in self._final.items():
            self._final_users.setdefault(rid, []).append(cid)
        return outcome

    def add_final(self, call: ToolCall) -> CallRecord:
        """Start a call the model makes after the commit point (not speculative).

        Args:
            call: The call; its ``id`` joins the final plan.

        Returns:
            Its record.

        Raises:
            SpeculativeError: Before the commit point, or for an id already in the plan.
        """
        if self._final is None:
            raise SpeculativeError("add_final() is for calls after the commit point")
        cid = _call_id(call)
        if not cid or cid in self._final:
            raise SpeculativeError(f"final call ids must be unique and non-empty: {cid!r}")
        rid = self._fresh_id(cid)
        record = self.executor.submit(
            ToolCall(name=call["name"], args=dict(call.get("args") or {}), id=rid, type="tool_call")
        )
        self._final[cid] = rid
        self._final_users.setdefault(rid, []).append(cid)
        return record

    def final_records(self) -> dict[str, str]:
        """The final plan's records.

        Returns:
            Final call id to the record serving it (empty before the commit point).
        """
        return dict(self._final or {})

    async def result(self, final_call_id: str, timeout: float | None = None) -> ToolMessage:
        """Wait for a final call's result.

        Args:
            final_call_id: An id of the final plan (or of a call added after it).
            timeout: Seconds to wait at most (``None``: no limit).

        Returns:
            The result, labelled with ``final_call_id``.

        Raises:
            SpeculativeError: Before the commit point, or for an id not in the final plan.
            WaitTimeoutError: If the result did not come within ``timeout``.
        """
        if self._final is None:
            raise SpeculativeError("results of final calls exist only after commit()")
        rid = self._final.get(final_call_id)
        if rid is None:
            raise SpeculativeError(f"{final_call_id!r} is not a call of the final plan")
        message = await self.executor.wait(rid, timeout)
        return _relabel(message, final_call_id)

    # -- internals ------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._final is not None:
            raise SpeculativeError("the commit point has passed; speculation is closed")

    def _serve(self, logical: str, rid: str) -> None:
        self._current[logical] = rid
        users = self._users.setdefault(rid, [])
        if logical not in users:
            users.append(logical)

    def _usable(self, rid: str | None, key: tuple[str, str], taken: set[str]) -> bool:
        if rid is None:
            return False
        rec = self.executor.ledger.get(rid)
        return (
            _key(rec.tool, rec.args) == key
            and rec.speculation is Speculation.SPECULATIVE
            and self.state_of(rec) not in _UNUSABLE
            and (rec.safe or rid not in taken)
        )

    def _adoption(self, final_calls: Sequence[ToolCall]) -> dict[str, str | None]:
        """Final call id to the speculative record it adopts (``None``: start it fresh)."""
        out: dict[str, str | None] = {}
        taken: set[str] = set()  # unsafe records already serving a final call
        for call in final_calls:
            cid = _call_id(call)
            if not cid or cid in out:
                raise SpeculativeError(f"final call ids must be unique and non-empty: {cid!r}")
            key = _key(call["name"], dict(call.get("args") or {}))
            rid: str | None = None
            for candidate in (self._current.get(cid), self._cache.get(key)):
                if self._usable(candidate, key, taken):
                    rid = candidate
                    break
            if rid is not None:
                taken.add(rid)
            out[cid] = rid
        return out

    def _live_unadopted(self, adopted: set[str]) -> list[str]:
        out: list[str] = []
        for rec in self.live().values():
            if (
                rec.speculation is Speculation.SPECULATIVE
                and rec.id not in adopted
                and rec.id not in out
            ):
                out.append(rec.id)
        return out

    def _fresh_id(self, call_id: str) -> str:
        rid = call_id
        n = 1
        while rid in self.executor.ledger:
            n += 1
            rid = f"{call_id}~final{n}"
        return rid

    def _retire(self, logical: str, *, abort_finished: bool) -> list[str]:
        """Detach a logical id from its record; cascade to the calls that needed it.

        The record itself is aborted when no other logical id uses it and it is still
        running (or always, for a withdrawal); a finished old version of a revision stays
        cached until the commit point.
        """
        rid = self._current.pop(logical)
        aborted = self._cascade(logical)
        users = self._users.get(rid, [])
        if logical in users:
            users.remove(logical)
        rec = self.executor.ledger.get(rid)
        if not users and (abort_finished or not self.state_of(rec).terminal) and self._abort(rec):
            aborted.insert(0, rec.id)
        return aborted

    def _cascade(self, logical: str) -> list[str]:
        """Abort the current records of every logical call depending on ``logical``."""
        found: list[str] = []
        frontier = [logical]
        while frontier:
            cur = frontier.pop()
            for other, deps in self._deps.items():
                if cur in deps and other not in found and other != logical:
                    found.append(other)
                    frontier.append(other)
        aborted: list[str] = []
        for other in self._deps:  # in proposal order
            rid = self._current.get(other)
            if other in found and rid is not None and self._abort(self.executor.ledger.get(rid)):
                aborted.append(rid)
                self._cancelled.append(other)
        return aborted

    def _abort(self, rec: CallRecord) -> bool:
        if rec.speculation is not Speculation.SPECULATIVE:
            return False
        self.executor.abort(rec.id)
        key = _key(rec.tool, rec.args)
        if self._cache.get(key) == rec.id:
            del self._cache[key]
        self.stats["aborted"] += 1
        return True


def _relabel(message: ToolMessage, call_id: str) -> ToolMessage:
    """A copy of ``message`` answering ``call_id`` (with that id's deterministic message id)."""
    if message.tool_call_id == call_id:
        return message
    return message.model_copy(update={"tool_call_id": call_id, "id": result_message_id(call_id)})
