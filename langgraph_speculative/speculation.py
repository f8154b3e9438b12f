"""Speculative tool calls: launch on partial input, revise, withdraw, then commit or abort.

A model listening to a user who is still talking may call tools before the input is
final. :class:`SpeculationManager` keeps those calls on the shared ledger and executor:

- :meth:`~SpeculationManager.propose` starts a speculative call under the model's
  (logical) id. Safe tools run at once; unsafe ones are held by the executor until the
  commit point. Proposing the same id again *revises* the call: the old run is cancelled
  (or, if finished, kept only in the result cache), and every call that depended on it is
  aborted with it.
- :meth:`~SpeculationManager.withdraw` removes a call and, in cascade, its dependents.
- Results are cached by (tool, canonical arguments): a final call identical to a
  speculative one is adopted at once, without running again.
- :meth:`~SpeculationManager.commit` takes the final plan (the calls that stand once the
  input is final): matching speculative calls are committed and adopted (held unsafe ones
  start now), missing ones are started, and everything else is aborted. Results of aborted
  calls are never handed out afterwards.

Example:
    ```python
    import asyncio
    from langchain_core.tools import tool
    from langgraph_speculative import ToolExecutor, label_tool
    from langgraph_speculative.speculation import SpeculationManager

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

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from langchain_core.messages import ToolCall, ToolMessage

from langgraph_speculative.errors import SpeculativeError
from langgraph_speculative.executor import ToolExecutor, result_message_id
from langgraph_speculative.ledger import CallRecord, CallState, Speculation, canonical_json

__all__ = ["CommitOutcome", "SpeculationManager"]


@dataclass(frozen=True, slots=True)
class CommitOutcome:
    """What the commit point decided.

    Attributes:
        adopted: Final call id to the speculative record whose result it reuses.
        started: Final call ids that had to run now (no usable speculative result).
        aborted: Record ids aborted (not confirmed by the final plan).
    """

    adopted: dict[str, str] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)

    @property
    def all_confirmed(self) -> bool:
        """Whether every speculative call was confirmed (the commit edge, not abort)."""
        return not self.aborted


def _key(tool: str, args: object) -> tuple[str, str]:
    return tool, canonical_json(args)


class SpeculationManager:
    """Speculative calls of one interaction, on a shared executor (see module docs).

    Args:
        executor: The run's executor (its ledger records every version of every call).

    Attributes:
        stats: Counts of ``launched``, ``revised``, ``withdrawn``, ``committed`` (adopted
            speculative results), ``aborted`` and ``reused`` (a proposal served by the
            result cache).
    """

    def __init__(self, executor: ToolExecutor) -> None:
        self.executor = executor
        self.stats: Counter[str] = Counter()
        self._current: dict[str, str] = {}  # logical id -> record id
        self._versions: Counter[str] = Counter()
        self._cache: dict[tuple[str, str], str] = {}  # (tool, args) -> record id
        self._final: dict[str, str] | None = None  # final call id -> record id

    @property
    def committed(self) -> bool:
        """Whether :meth:`commit` has run."""
        return self._final is not None

    def record_of(self, call_id: str) -> CallRecord | None:
        """The live record of a logical call id (``None`` if withdrawn or unknown)."""
        rid = self._current.get(call_id)
        return self.executor.ledger.get(rid) if rid is not None else None

    def live(self) -> dict[str, CallRecord]:
        """Logical call id to its live (not aborted) record."""
        out: dict[str, CallRecord] = {}
        for cid, rid in self._current.items():
            rec = self.executor.ledger.get(rid)
            if rec.speculation is not Speculation.ABORTED:
                out[cid] = rec
        return out

    # -- before the commit point ------------------------------------------------------
    def propose(self, call: ToolCall, *, depends_on: Sequence[str] = ()) -> CallRecord:
        """Start (or revise) a speculative call under the model's id.

        Args:
            call: The call; its ``id`` is the model's logical id.
            depends_on: Logical ids of calls whose results this call needs.

        Returns:
            The record now serving the logical id (a cached one for a repeated call).

        Raises:
            SpeculativeError: After the commit point, or for an unknown dependency.
        """
        self._check_open()
        logical = call.get("id") or ""
        if not logical:
            raise SpeculativeError("a speculative call needs an id")
        key = _key(call["name"], call.get("args", {}))
        old = self.record_of(logical)
        if old is not None:
            if _key(old.tool, old.args) == key and old.speculation is not Speculation.ABORTED:
                return old  # the same call again: nothing to revise
            self.stats["revised"] += 1
            self._supersede(old)
        cached = self._cache.get(key)
        if cached is not None:
            rec = self.executor.ledger.get(cached)
            if rec.speculation is not Speculation.ABORTED and rec.state is not CallState.FAILED:
                self._current[logical] = cached
                self.stats["reused"] += 1
                return rec
        deps = []
        for dep in depends_on:
            rid = self._current.get(dep)
            if rid is None:
                raise SpeculativeError(f"call {logical!r} depends on unknown call {dep!r}")
            deps.append(rid)
        self._versions[logical] += 1
        version = self._versions[logical]
        rid = logical if version == 1 else f"{logical}~v{version}"
        record = self.executor.submit(
            ToolCall(name=call["name"], args=dict(call.get("args", {})), id=rid, type="tool_call"),
            speculative=True,
            depends_on=deps,
        )
        self._current[logical] = rid
        self._cache[key] = rid
        self.stats["launched"] += 1
        return record

    def withdraw(self, call_id: str) -> list[str]:
        """Withdraw a call and, in cascade, every call depending on it.

        Returns:
            The record ids aborted.

        Raises:
            SpeculativeError: After the commit point.
        """
        self._check_open()
        rec = self.record_of(call_id)
        if rec is None:
            return []
        self.stats["withdrawn"] += 1
        aborted = self._abort_with_dependents(rec)
        self._current.pop(call_id, None)
        return aborted

    def result_so_far(self, call_id: str) -> ToolMessage | None:
        """The result of a live speculative call, if it has arrived.

        For the model to act on before the input is final; labelled with the logical id.
        """
        rec = self.record_of(call_id)
        if rec is None or rec.speculation is Speculation.ABORTED or rec.result is None:
            return None
        return _relabel(rec.result, call_id)

    # -- the commit point ---------------------------------------------------------------
    def commit(self, final_calls: Sequence[ToolCall]) -> CommitOutcome:
        """Settle every speculative call against the final plan.

        A final call identical (tool and arguments) to a live speculative call adopts it:
        the record is committed (a held unsafe call starts now) and its result is reused.
        Other final calls start now, not speculatively. Every speculative record not
        adopted is aborted (cancelled if still running; its result is never handed out).

        Raises:
            SpeculativeError: If called twice or final call ids repeat.
        """
        self._check_open()
        final: dict[str, str] = {}
        outcome = CommitOutcome()
        used: set[str] = set()
        for call in final_calls:
            cid = call.get("id") or ""
            if not cid or cid in final:
                raise SpeculativeError(f"final call ids must be unique and non-empty: {cid!r}")
            rid = self._adoptable(call, used)
            if rid is not None:
                used.add(rid)
                rec = self.executor.ledger.get(rid)
                if rec.speculation is Speculation.SPECULATIVE:
                    self.executor.commit(rid)
                outcome.adopted[cid] = rid
                self.stats["committed"] += 1
            else:
                rid = self._fresh_id(cid)
                self.executor.submit(
                    ToolCall(
                        name=call["name"], args=dict(call.get("args", {})), id=rid, type="tool_call"
                    )
                )
                outcome.started.append(cid)
            final[cid] = rid
        for rec in list(self.executor.ledger):
            if rec.speculation is Speculation.SPECULATIVE and rec.id not in used:
                self.executor.abort(rec.id)
                outcome.aborted.append(rec.id)
                self.stats["aborted"] += 1
        self._final = final
        return outcome

    def add_final(self, call: ToolCall) -> CallRecord:
        """Start a call the model makes after the commit point (not speculative).

        Raises:
            SpeculativeError: Before the commit point, or for an id already in the plan.
        """
        if self._final is None:
            raise SpeculativeError("add_final() is for calls after the commit point")
        cid = call.get("id") or ""
        if not cid or cid in self._final:
            raise SpeculativeError(f"final call ids must be unique and non-empty: {cid!r}")
        rid = self._fresh_id(cid)
        record = self.executor.submit(
            ToolCall(name=call["name"], args=dict(call.get("args", {})), id=rid, type="tool_call")
        )
        self._final[cid] = rid
        return record

    def final_records(self) -> dict[str, str]:
        """Final call id to the record serving it (empty before the commit point)."""
        return dict(self._final or {})

    async def result(self, final_call_id: str) -> ToolMessage:
        """Wait for a final call's result, labelled with the final call's id.

        Raises:
            SpeculativeError: Before the commit point, or for an id not in the final plan.
        """
        if self._final is None:
            raise SpeculativeError("results of final calls exist only after commit()")
        rid = self._final.get(final_call_id)
        if rid is None:
            raise SpeculativeError(f"{final_call_id!r} is not a call of the final plan")
        message = await self.executor.wait(rid)
        return _relabel(message, final_call_id)

    # -- internals ------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._final is not None:
            raise SpeculativeError("the commit point has passed; speculation is closed")

    def _adoptable(self, call: ToolCall, used: set[str]) -> str | None:
        rid = self._cache.get(_key(call["name"], call.get("args", {})))
        if rid is None or rid in used:
            return None
        rec = self.executor.ledger.get(rid)
        if rec.speculation is Speculation.ABORTED or rec.state in (
            CallState.FAILED,
            CallState.CANCELLED,
        ):
            return None
        return rid

    def _fresh_id(self, call_id: str) -> str:
        rid = call_id
        n = 1
        while rid in self.executor.ledger:
            n += 1
            rid = f"{call_id}~final{n}"
        return rid

    def _supersede(self, old: CallRecord) -> None:
        """Retire a revised call's old version.

        Stop it if running, keep a finished result cached, and abort whatever depended on it.
        """
        for dep in self.executor.ledger.dependents(old.id):
            self._abort(dep)
        if not old.state.terminal:
            self._abort(old)

    def _abort_with_dependents(self, rec: CallRecord) -> list[str]:
        out = [rec.id] if self._abort(rec) else []
        for dep in self.executor.ledger.dependents(rec.id):
            if self._abort(dep):
                out.append(dep.id)
        return out

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
