"""SpeculationManager: revise/withdraw with cascades, the result cache, commit and abort."""

from __future__ import annotations

import asyncio
import time

import pytest
from langchain_core.messages import ToolCall
from langchain_core.tools import BaseTool, StructuredTool

from langgraph_speculative import ToolExecutor, label_tool
from langgraph_speculative.core.ledger import CallState, Speculation
from langgraph_speculative.core.safety import is_safe_tool
from langgraph_speculative.errors import SpeculativeError
from langgraph_speculative.speculative.manager import CommitOutcome, SpeculationManager


class Lab:
    """Tools whose runs the test controls: each waits for its gate, and logs what happened."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, str, float]] = []  # (event, tool, x, time)
        self.gates: dict[str, asyncio.Event] = {}

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    def tool(self, name: str, *, safe: bool | None = True) -> BaseTool:
        async def run(x: str = "") -> str:
            self.log.append(("start", name, x, time.time()))
            try:
                await self.gate(name).wait()
            except asyncio.CancelledError:
                self.log.append(("cancelled", name, x, time.time()))
                raise
            self.log.append(("done", name, x, time.time()))
            return f"{name}({x})"

        tool = StructuredTool.from_function(coroutine=run, name=name, description=f"{name} tool")
        return tool if safe is None else label_tool(tool, safe=safe)

    def count(self, event: str, name: str, x: str | None = None) -> int:
        return sum(1 for e, n, a, _ in self.log if e == event and n == name and x in (None, a))


def call(cid: str, name: str, x: str = "") -> ToolCall:
    return ToolCall(name=name, args={"x": x}, id=cid, type="tool_call")


async def settle_loop(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def wait_state(ex: ToolExecutor, rid: str, *states: CallState) -> None:
    async with asyncio.timeout(5):
        while ex.ledger.get(rid).state not in states:
            await asyncio.sleep(0.001)


@pytest.fixture
def lab() -> Lab:
    return Lab()


async def chain(lab: Lab, spec: SpeculationManager, ex: ToolExecutor, *, a_done: bool) -> None:
    """a -> b -> c, d independent; a finished (b running) or a running (b, c pending)."""
    spec.propose(call("a", "ta", "1"))
    spec.propose(call("b", "tb", "1"), depends_on=["a"])
    spec.propose(call("c", "tc", "1"), depends_on=["b"])
    spec.propose(call("d", "td", "1"))
    if a_done:
        lab.gate("ta").set()
        await wait_state(ex, "a", CallState.DONE)
        await wait_state(ex, "b", CallState.RUNNING, CallState.DONE)
        await wait_started(lab, "tb")
    else:
        await wait_state(ex, "a", CallState.RUNNING)
        await wait_started(lab, "ta")
    await wait_state(ex, "d", CallState.RUNNING, CallState.DONE)


async def wait_started(lab: Lab, tool: str) -> None:
    """Wait until the tool's body runs (RUNNING in the ledger comes a little earlier)."""
    async with asyncio.timeout(10):
        while lab.count("start", tool) < 1:
            await asyncio.sleep(0.001)


# -- revision and removal with cascades ---------------------------------------------------


async def test_revising_a_running_call_cancels_it_and_its_dependents(lab: Lab) -> None:
    tools = [lab.tool(n) for n in ("ta", "tb", "tc", "td")]
    async with ToolExecutor(tools) as ex:
        spec = SpeculationManager(ex)
        await chain(lab, spec, ex, a_done=False)
        new = spec.propose(call("a", "ta", "2"))
        await settle_loop()
        assert new.id == "a~v2"
        assert lab.count("cancelled", "ta", "1") == 1  # the running old version was stopped
        for rid in ("a", "b", "c"):
            rec = ex.ledger.get(rid)
            assert rec.speculation is Speculation.ABORTED
            assert rec.state is CallState.CANCELLED
        assert lab.count("start", "tb") == 0 and lab.count("start", "tc") == 0
        assert spec.drain_cancelled() == ["b", "c"]
        assert spec.drain_cancelled() == []
        assert ex.ledger.get("d").state is CallState.RUNNING  # independent: untouched
        assert set(spec.live()) == {"a", "d"}
        assert spec.stats["revised"] == 1 and spec.stats["aborted"] == 3


async def test_revising_a_finished_call_cancels_running_dependents(lab: Lab) -> None:
    tools = [lab.tool(n) for n in ("ta", "tb", "tc", "td")]
    async with ToolExecutor(tools) as ex:
        spec = SpeculationManager(ex)
        await chain(lab, spec, ex, a_done=True)
        spec.propose(call("a", "ta", "2"))
        await settle_loop()
        assert lab.count("cancelled", "tb", "1") == 1  # b was running: CancelledError
        assert ex.ledger.get("b").state is CallState.CANCELLED
        assert ex.ledger.get("c").state is CallState.CANCELLED  # never started
        assert lab.count("start", "tc") == 0
        old_a = ex.ledger.get("a")
        assert old_a.state is CallState.DONE
        assert old_a.speculation is Speculation.SPECULATIVE  # kept in the cache until commit
        assert spec.logical_ids("a") == [] and spec.logical_ids("a~v2") == ["a"]
        # finished dependents are aborted too, and never handed out after the commit
        lab.gate("ta").set()
        lab.gate("td").set()
        await wait_state(ex, "a~v2", CallState.DONE)
        outcome = spec.commit([call("a", "ta", "2"), call("d", "td", "1")])
        assert outcome.adopted == {"a": "a~v2", "d": "d"}
        assert outcome.aborted == []  # b and c went with the revision, not at the commit
        assert outcome.discarded == ["a"]  # the old version of a, finished
        assert ex.ledger.get("a").speculation is Speculation.ABORTED
        with pytest.raises(SpeculativeError, match="not a call of the final plan"):
            await spec.result("b")
        assert (await spec.result("a")).content == "ta(2)"


async def test_revising_after_dependents_finished_aborts_them(lab: Lab) -> None:
    tools = [lab.tool(n) for n in ("ta", "tb", "tc", "td")]
    async with ToolExecutor(tools) as ex:
        spec = SpeculationManager(ex)
        for g in ("ta", "tb", "tc", "td"):
            lab.gate(g).set()
        await chain(lab, spec, ex, a_done=True)
        await wait_state(ex, "c", CallState.DONE)
        spec.propose(call("a", "ta", "2"))
        assert [ex.ledger.get(r).speculation for r in ("b", "c")] == [Speculation.ABORTED] * 2
        assert spec.result_so_far("b") is None and spec.result_so_far("c") is None
        assert spec.result_so_far("d") is not None
        assert spec.drain_cancelled() == ["b", "c"]


async def test_removing_a_call_cascades(lab: Lab) -> None:
    tools = [lab.tool(n) for n in ("ta", "tb", "tc", "td")]
    async with ToolExecutor(tools) as ex:
        spec = SpeculationManager(ex)
        await chain(lab, spec, ex, a_done=True)
        aborted = spec.withdraw("a")
        await settle_loop()
        assert aborted == ["a", "b", "c"]  # a itself too, although it had finished
        assert lab.count("cancelled", "tb") == 1
        assert spec.record_of("a") is None
        assert set(spec.live()) == {"d"}
        assert spec.withdraw("a") == []  # twice: nothing left
        assert spec.withdraw("never") == []
        assert spec.stats["withdrawn"] == 1
        # a dependency must be a known call
        with pytest.raises(SpeculativeError, match="unknown call 'a'"):
            spec.propose(call("e", "tb", "9"), depends_on=["a"])
        with pytest.raises(SpeculativeError, match="itself"):
            spec.propose(call("e", "tb", "9"), depends_on=["e"])


async def test_revising_to_identical_args_is_a_no_op(lab: Lab) -> None:
    async with ToolExecutor([lab.tool("ta")]) as ex:
        spec = SpeculationManager(ex)
        first = spec.propose(call("a", "ta", "1"))
        again = spec.propose(call("a", "ta", "1"))
        assert again is first
        assert spec.stats["revised"] == 0 and spec.stats["launched"] == 1
        lab.gate("ta").set()
        await wait_state(ex, "a", CallState.DONE)
        assert spec.propose(call("a", "ta", "1")) is first
        assert lab.count("start", "ta") == 1
        assert len(ex.ledger) == 1


# -- the result cache ----------------------------------------------------------------------


async def test_commit_adopts_an_identical_call_without_running_it_again(lab: Lab) -> None:
    lab.gate("ta").set()
    async with ToolExecutor([lab.tool("ta")]) as ex:
        spec = SpeculationManager(ex)
        spec.propose(call("a", "ta", "Taylor"))
        spec.propose(call("a", "ta", "Taylor Swift"))
        await wait_state(ex, "a~v2", CallState.DONE)
        # the final plan names the call under another id: the cache finds it
        outcome = spec.commit([call("final_1", "ta", "Taylor Swift")])
        assert outcome.adopted == {"final_1": "a~v2"}
        assert outcome.started == []
        message = await spec.result("final_1")
        assert message.content == "ta(Taylor Swift)"
        assert message.tool_call_id == "final_1"
        assert lab.count("start", "ta", "Taylor Swift") == 1
        assert spec.stats["committed"] == 1


async def test_revising_back_reuses_the_finished_version(lab: Lab) -> None:
    lab.gate("ta").set()
    async with ToolExecutor([lab.tool("ta")]) as ex:
        spec = SpeculationManager(ex)
        spec.propose(call("a", "ta", "1"))
        await wait_state(ex, "a", CallState.DONE)
        spec.propose(call("a", "ta", "2"))
        back = spec.propose(call("a", "ta", "1"))
        assert back.id == "a"
        assert spec.stats["reused"] == 1 and spec.stats["revised"] == 2
        await wait_state(ex, "a~v2", CallState.DONE, CallState.CANCELLED)
        assert lab.count("start", "ta", "1") == 1


async def test_safe_identical_calls_share_one_run(lab: Lab) -> None:
    lab.gate("ta").set()
    async with ToolExecutor([lab.tool("ta")]) as ex:
        spec = SpeculationManager(ex)
        first = spec.propose(call("a", "ta", "1"))
        second = spec.propose(call("b", "ta", "1"))
        assert second is first
        assert spec.logical_ids("a") == ["a", "b"]
        outcome = spec.commit([call("a", "ta", "1"), call("b", "ta", "1")])
        assert outcome.adopted == {"a": "a", "b": "a"}
        assert [(await spec.result(c)).tool_call_id for c in ("a", "b")] == ["a", "b"]
        assert lab.count("start", "ta") == 1


async def test_identical_unsafe_calls_are_two_side_effects(lab: Lab) -> None:
    lab.gate("pay").set()
    async with ToolExecutor([lab.tool("pay", safe=False)]) as ex:
        spec = SpeculationManager(ex)
        first = spec.propose(call("p1", "pay", "5"))
        second = spec.propose(call("p2", "pay", "5"))
        assert first is not second
        outcome = spec.commit([call("p1", "pay", "5"), call("p2", "pay", "5")])
        assert outcome.adopted == {"p1": "p1", "p2": "p2"}
        await spec.result("p1")
        await spec.result("p2")
        assert lab.count("done", "pay", "5") == 2


async def test_a_failed_speculative_call_runs_again_at_commit(lab: Lab) -> None:
    async def broken(x: str = "") -> str:
        raise ValueError("boom")

    tool = label_tool(
        StructuredTool.from_function(coroutine=broken, name="tb", description="broken"), safe=True
    )
    async with ToolExecutor([tool], handle_tool_errors=True) as ex:
        spec = SpeculationManager(ex)
        spec.propose(call("a", "tb", "1"))
        await wait_state(ex, "a", CallState.FAILED)
        outcome = spec.commit([call("a", "tb", "1")])
        assert outcome.started == ["a"]
        assert outcome.aborted == ["a"]  # the failed version is not adopted
        assert spec.final_records() == {"a": "a~final2"}
        assert (await spec.result("a")).status == "error"


# -- unsafe tools ------------------------------------------------------------------------


async def test_unsafe_call_runs_only_after_commit(lab: Lab) -> None:
    lab.gate("book_ticket").set()
    async with ToolExecutor([lab.tool("book_ticket", safe=False)]) as ex:
        spec = SpeculationManager(ex)
        rec = spec.propose(call("b", "book_ticket", "Paris"))
        await asyncio.sleep(0.01)
        assert rec.state is CallState.PENDING and rec.started_at is None
        assert lab.count("start", "book_ticket") == 0
        commit_at = time.time()
        spec.commit([call("b", "book_ticket", "Paris")])
        assert (await spec.result("b")).content == "book_ticket(Paris)"
        assert rec.started_at is not None and rec.started_at >= commit_at
        assert next(t for e, _, _, t in lab.log if e == "start") >= commit_at


async def test_unlabelled_tools_are_unsafe_and_the_executor_enforces_it(lab: Lab) -> None:
    lab.gate("mystery").set()
    tool = lab.tool("mystery", safe=None)
    assert not is_safe_tool(tool)
    async with ToolExecutor([tool]) as ex:  # no speculation manager: the executor itself
        rec = ex.submit(call("m", "mystery", "1"), speculative=True)
        assert rec.safe is False
        await asyncio.sleep(0.01)
        assert rec.state is CallState.PENDING and lab.count("start", "mystery") == 0
        ex.abort("m")  # withdrawn before the commit point: it never runs
        assert rec.state is CallState.CANCELLED
        rec2 = ex.submit(call("m2", "mystery", "2"), speculative=True)
        await asyncio.sleep(0.01)
        assert lab.count("start", "mystery") == 0
        ex.commit("m2")
        await ex.wait("m2")
        assert rec2.state is CallState.DONE
        assert lab.count("start", "mystery", "1") == 0


async def test_withdrawn_unsafe_call_never_runs(lab: Lab) -> None:
    lab.gate("send").set()
    async with ToolExecutor([lab.tool("send", safe=False)]) as ex:
        spec = SpeculationManager(ex)
        spec.propose(call("s", "send", "hi"))
        spec.propose(call("s", "send", "hello"))  # revised: the first version is aborted
        outcome = spec.commit([])
        assert outcome.aborted == ["s~v2"]
        await asyncio.sleep(0.01)
        assert lab.count("start", "send") == 0


# -- commit vs abort ----------------------------------------------------------------------


async def test_unconfirmed_counts_live_calls_only(lab: Lab) -> None:
    lab.gate("ta").set()
    async with ToolExecutor([lab.tool("ta"), lab.tool("tb")]) as ex:
        spec = SpeculationManager(ex)
        spec.propose(call("a", "ta", "Taylor"))
        await wait_state(ex, "a", CallState.DONE)
        spec.propose(call("a", "ta", "Taylor Swift"))  # the old version is the model's
        spec.propose(call("b", "tb", "x"))
        assert spec.unconfirmed([call("a", "ta", "Taylor Swift"), call("b", "tb", "x")]) == []
        assert spec.unconfirmed([call("a", "ta", "Taylor Swift")]) == ["b"]
        assert spec.unconfirmed([call("z", "ta", "Taylor Swift")]) == ["b"]  # by the cache
        assert spec.unconfirmed([call("a", "ta", "Taylor Swift!")]) == ["a~v2", "b"]
        assert not spec.committed  # a dry run
        outcome = spec.commit([call("a", "ta", "Taylor Swift")])
        assert outcome.aborted == ["b"] and not outcome.all_confirmed
        assert outcome.discarded == ["a"]
        assert CommitOutcome().all_confirmed


async def test_commit_starts_missing_calls_after_their_dependencies(lab: Lab) -> None:
    for g in ("ta", "tb"):
        lab.gate(g).set()
    async with ToolExecutor([lab.tool("ta"), lab.tool("tb")]) as ex:
        spec = SpeculationManager(ex)
        spec.propose(call("a", "ta", "1"))
        spec.propose(call("b", "tb", "1"), depends_on=["a"])
        spec.propose(call("a", "ta", "2"))  # b goes with the old a
        assert spec.drain_cancelled() == ["b"]
        outcome = spec.commit([call("a", "ta", "2"), call("b", "tb", "2")])
        assert outcome.started == ["b"]
        assert ex.ledger.get(spec.final_records()["b"]).depends_on == ("a~v2",)
        assert (await spec.result("b")).content == "tb(2)"


async def test_protocol_errors(lab: Lab) -> None:
    lab.gate("ta").set()
    async with ToolExecutor([lab.tool("ta")]) as ex:
        spec = SpeculationManager(ex)
        with pytest.raises(SpeculativeError, match="needs an id"):
            spec.propose(ToolCall(name="ta", args={}, id="", type="tool_call"))
        with pytest.raises(SpeculativeError, match="after the commit point"):
            spec.add_final(call("x", "ta"))
        with pytest.raises(SpeculativeError, match="only after commit"):
            await spec.result("x")
        with pytest.raises(SpeculativeError, match="unique"):
            spec.commit([call("x", "ta"), call("x", "ta", "2")])
        assert not spec.committed
        spec.commit([call("x", "ta")])
        with pytest.raises(SpeculativeError, match="closed"):
            spec.commit([])
        with pytest.raises(SpeculativeError, match="closed"):
            spec.propose(call("y", "ta"))
        with pytest.raises(SpeculativeError, match="closed"):
            spec.withdraw("x")
        with pytest.raises(SpeculativeError, match="unique"):
            spec.add_final(call("x", "ta"))
        rec = spec.add_final(call("y", "ta", "later"))
        assert rec.speculation is Speculation.NONE
        assert spec.final_ids(rec.id) == ["y"]
        assert (await spec.result("y")).content == "ta(later)"
