from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langgraph.graph.message import add_messages

from langgraph_speculative import CallLedger, ToolExecutor
from langgraph_speculative.cache.plans.plan import Plan
from langgraph_speculative.cache.plans.runner import (
    PlanRun,
    plan_call_id,
    plan_message_id,
    run_plan,
)
from langgraph_speculative.core.executor import result_message_id
from langgraph_speculative.core.ledger import CallState
from langgraph_speculative.errors import MissingParameterError, SpeculativeError


def make_plan(*steps: dict[str, Any], parameters: list[str] | None = None) -> Plan:
    full = [{"description": s["id"], "output": "", "inputs": {}, **s} for s in steps]
    return Plan.model_validate({"steps": full, "parameters": parameters or []})


class Recorder:
    """Tools that record their calls; ``search`` and ``weather`` meet at a shared event."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.arrived: set[str] = set()
        self.both = asyncio.Event()

    async def _meet(self, name: str) -> None:
        self.arrived.add(name)
        if {"search", "weather"} <= self.arrived:
            self.both.set()
        # a runner that ran these one after the other would time out here
        await asyncio.wait_for(self.both.wait(), timeout=10)

    def tools(self) -> list[BaseTool]:
        rec = self

        @tool
        async def search(origin: str, destination: str) -> str:
            """Trains between two cities (JSON)."""
            rec.calls.append(("search", {"origin": origin, "destination": destination}))
            await rec._meet("search")
            return json.dumps([{"number": "G7", "price": 553.5, "to": destination}])

        @tool
        async def weather(city: str) -> str:
            """Weather in a city."""
            rec.calls.append(("weather", {"city": city}))
            await rec._meet("weather")
            return f"sunny in {city}"

        @tool
        def book(train: str, price: float, note: str = "") -> str:
            """Book a train."""
            rec.calls.append(("book", {"train": train, "price": price, "note": note}))
            return f"booked {train} for {price}"

        @tool
        def fail(reason: str) -> str:
            """Always fails."""
            rec.calls.append(("fail", {"reason": reason}))
            raise RuntimeError(reason)

        @tool
        def echo(text: Any) -> str:
            """Echo the input as JSON."""
            rec.calls.append(("echo", {"text": text}))
            return json.dumps({"got": text}, ensure_ascii=False)

        return [search, weather, book, fail, echo]


TRIP = make_plan(
    {"id": "s1", "tool": "search", "inputs": {"origin": "长沙", "destination": "上海"}},
    {"id": "s2", "tool": "weather", "inputs": {"city": "上海"}},
    {
        "id": "s3",
        "tool": "book",
        "depends_on": ["s1", "s2"],
        "inputs": {
            "train": "{step:s1.0.number}",
            "price": "{step:s1.0.price}",
            "note": "{step:s2}; to {step:s1.0.to}",
        },
    },
)


async def test_independent_steps_overlap_and_dependents_see_outputs() -> None:
    rec = Recorder()
    async with ToolExecutor(rec.tools()) as executor:
        run = await run_plan(TRIP, executor, call_id_prefix="r1")
    assert rec.both.is_set()  # search and weather were both running at once
    assert run.ok and run.failed == {} and run.errors == {}
    assert [c[0] for c in rec.calls[:2]] in (["search", "weather"], ["weather", "search"])
    assert rec.calls[2] == (
        "book",
        {"train": "G7", "price": 553.5, "note": "sunny in 上海; to 上海"},
    )
    assert run.calls["s3"]["args"]["price"] == 553.5  # a whole-value reference keeps its type
    assert run.outputs["s3"].content == "booked G7 for 553.5"
    assert set(run.outputs) == {"s1", "s2", "s3"}
    record = executor.ledger.get("r1:s3")
    assert record.depends_on == ("r1:s1", "r1:s2") and record.state is CallState.DONE


async def test_call_ids_and_messages_are_deterministic() -> None:
    runs: list[PlanRun] = []
    for _ in range(2):
        rec = Recorder()
        async with ToolExecutor(rec.tools()) as executor:
            runs.append(await run_plan(TRIP, executor, call_id_prefix="req-9"))
    first, second = (r.messages() for r in runs)
    assert first == second
    ai, *results = first
    assert isinstance(ai, AIMessage) and ai.id == plan_message_id("req-9")
    assert [c["id"] for c in ai.tool_calls] == ["req-9:s1", "req-9:s2", "req-9:s3"]
    assert all(isinstance(m, ToolMessage) for m in results)
    assert [m.tool_call_id for m in results] == [c["id"] for c in ai.tool_calls]
    ids = [result_message_id(plan_call_id("req-9", s)) for s in ("s1", "s2", "s3")]
    assert [m.id for m in results] == ids
    assert runs[0].call_id("s2") == "req-9:s2"

    state = add_messages([HumanMessage("trip", id="h")], first)
    again = add_messages(state, second)  # re-sending replaces, never duplicates
    assert [m.id for m in again] == [m.id for m in state]
    assert again.index(ai) < min(again.index(m) for m in results)


async def test_a_failed_step_fails_its_dependents_only() -> None:
    rec = Recorder()
    plan = make_plan(
        {"id": "a", "tool": "fail", "inputs": {"reason": "boom"}},
        {"id": "b", "tool": "echo", "depends_on": ["a"], "inputs": {"text": "{step:a}"}},
        {"id": "c", "tool": "echo", "depends_on": ["b"], "inputs": {"text": "x"}},
        {"id": "d", "tool": "echo", "inputs": {"text": "independent"}},
    )
    async with ToolExecutor(rec.tools(), handle_tool_errors=True) as executor:
        run = await run_plan(plan, executor, call_id_prefix="p")
    assert [c[0] for c in rec.calls] == ["fail", "echo"]  # only a and d ran
    assert set(run.failed) == {"a", "b", "c"} and not run.ok
    assert "boom" in run.failed["a"]
    assert run.failed["b"] == "its dependency 'a' failed"
    assert run.failed["c"] == "its dependency 'b' failed"
    assert set(run.outputs) == {"d"}
    assert "p:b" not in executor.ledger  # not run: never submitted
    messages = run.messages()
    assert len(messages[0].tool_calls) == 4 and len(messages) == 5
    assert [m.tool_call_id for m in messages[1:]] == ["p:a", "p:d", "p:b", "p:c"]  # topological
    assert messages[3].status == "error" and messages[3].content.startswith("Not run:")
    assert run.calls["b"]["args"] == {"text": "{step:a}"}  # what it would have been called with


async def test_unknown_tool_uses_the_executors_message() -> None:
    rec = Recorder()
    plan = make_plan(
        {"id": "s1", "tool": "teleport", "inputs": {"to": "月球"}},
        {"id": "s2", "tool": "echo", "depends_on": ["s1"], "inputs": {"text": "{step:s1}"}},
    )
    async with ToolExecutor(rec.tools()) as executor:
        run = await run_plan(plan, executor, call_id_prefix="u")
    assert "teleport is not a valid tool" in str(run.results["s1"].content)
    assert set(run.failed) == {"s1", "s2"} and rec.calls == []


async def test_unfilled_parameters_fail_before_anything_runs() -> None:
    rec = Recorder()
    plan = make_plan(
        {"id": "s1", "tool": "echo", "inputs": {"text": "x"}},
        {"id": "s2", "tool": "weather", "inputs": {"city": "{param:endLoc_city}"}},
        parameters=["endLoc_city"],
    )
    async with ToolExecutor(rec.tools()) as executor:
        with pytest.raises(MissingParameterError) as info:
            await run_plan(plan, executor, call_id_prefix="m")
        assert len(executor.ledger) == 0
    assert info.value.missing == ("endLoc_city",) and rec.calls == []


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("{step:s1.missing}", "s1 has no 'missing' (it is an object with keys got)"),
        ("{step:s1.got.5}", "s1.got has no '5' (it is a list of 2)"),
        ("{step:s2.x}", "the output of 's2' is not JSON"),
    ],
)
async def test_unresolvable_references_fail_the_step(reference: str, reason: str) -> None:
    rec = Recorder()
    plan = make_plan(
        {"id": "s1", "tool": "echo", "inputs": {"text": ["a", "b"]}},
        {"id": "s2", "tool": "book", "inputs": {"train": "G1", "price": 1}},
        {"id": "s3", "tool": "echo", "depends_on": ["s1", "s2"], "inputs": {"text": reference}},
    )
    async with ToolExecutor(rec.tools()) as executor:
        run = await run_plan(plan, executor, call_id_prefix="x")
    assert set(run.failed) == {"s3"}
    assert reason in run.failed["s3"]
    assert [c[0] for c in rec.calls] == ["echo", "book"]


async def test_references_inside_nested_inputs_and_templates() -> None:
    rec = Recorder()
    plan = make_plan(
        {"id": "s1", "tool": "echo", "inputs": {"text": {"城市": "上海", "n": [1, 2]}}},
        {
            "id": "s2",
            "tool": "echo",
            "depends_on": ["s1"],
            "inputs": {
                "text": {"all": ["{step:s1.got}", "n={step:s1.got.n}", "{step:s1.got.城市}"]}
            },
        },
    )
    async with ToolExecutor(rec.tools()) as executor:
        run = await run_plan(plan, executor, call_id_prefix="n")
    assert run.ok
    assert rec.calls[1][1]["text"] == {"all": [{"城市": "上海", "n": [1, 2]}, "n=[1, 2]", "上海"]}


async def test_unhandled_exceptions_are_raised_after_every_step_settled() -> None:
    rec = Recorder()
    plan = make_plan(
        {"id": "a", "tool": "fail", "inputs": {"reason": "kaputt"}},
        {"id": "b", "tool": "echo", "inputs": {"text": "ok"}},
    )
    async with ToolExecutor(rec.tools()) as executor:  # default: tool errors propagate
        with pytest.raises(RuntimeError, match="kaputt"):
            await run_plan(plan, executor, call_id_prefix="e")
        assert executor.ledger.get("e:b").state is CallState.DONE
    async with ToolExecutor(rec.tools()) as executor:
        run = await run_plan(plan, executor, call_id_prefix="e", return_exceptions=True)
    assert isinstance(run.errors["a"], RuntimeError) and set(run.failed) == {"a"}
    assert run.results["a"].status == "error" and "kaputt" in str(run.results["a"].content)


async def test_a_resumed_run_reuses_finished_calls() -> None:
    rec = Recorder()
    ledger = CallLedger()
    first_half = make_plan(
        {"id": "s1", "tool": "search", "inputs": {"origin": "长沙", "destination": "上海"}},
        {"id": "s2", "tool": "weather", "inputs": {"city": "上海"}},
    )
    async with ToolExecutor(rec.tools(), ledger=ledger) as executor:
        await run_plan(first_half, executor, call_id_prefix="crash")
    # the process dies here; the ledger survives (as a snapshot) and the run resumes
    restored = CallLedger.from_snapshot(ledger.snapshot())
    rec2 = Recorder()
    async with ToolExecutor(rec2.tools(), ledger=restored) as executor:
        run = await run_plan(TRIP, executor, call_id_prefix="crash")
    assert run.ok and run.reused == {"s1", "s2"}
    assert [c[0] for c in rec2.calls] == ["book"]  # s1 and s2 were not run again
    assert run.outputs["s3"].content == "booked G7 for 553.5"


async def test_a_recorded_failure_is_not_retried_on_resume() -> None:
    rec = Recorder()
    plan = make_plan({"id": "a", "tool": "fail", "inputs": {"reason": "once"}})
    ledger = CallLedger()
    async with ToolExecutor(rec.tools(), ledger=ledger) as executor:
        await run_plan(plan, executor, call_id_prefix="f", return_exceptions=True)
    async with ToolExecutor(rec.tools(), ledger=ledger) as executor:
        run = await run_plan(plan, executor, call_id_prefix="f")
    assert len(rec.calls) == 1 and run.reused == {"a"} and set(run.failed) == {"a"}
    assert "once" in str(run.results["a"].content)


async def test_an_id_taken_by_another_call_is_an_error() -> None:
    rec = Recorder()
    other = make_plan({"id": "s1", "tool": "weather", "inputs": {"city": "北京"}})
    async with ToolExecutor(rec.tools()) as executor:
        executor.submit({"name": "echo", "args": {"text": 1}, "id": "dup:s1", "type": "tool_call"})
        with pytest.raises(SpeculativeError, match="use another call_id_prefix"):
            await run_plan(other, executor, call_id_prefix="dup")


async def test_an_unfinished_call_from_another_executor_is_an_error() -> None:
    rec = Recorder()
    plan = make_plan({"id": "s1", "tool": "echo", "inputs": {"text": "x"}})
    ledger = CallLedger()
    ledger.create("orphan:s1", "echo", {"text": "x"})  # pending, but nobody runs it
    async with ToolExecutor(rec.tools(), ledger=ledger) as executor:
        with pytest.raises(SpeculativeError, match="this executor is not running it"):
            await run_plan(plan, executor, call_id_prefix="orphan")


async def test_cancelling_the_run_cancels_its_calls() -> None:
    started = asyncio.Event()

    @tool
    async def slow(x: int) -> str:
        """Never finishes on its own."""
        started.set()
        await asyncio.Event().wait()
        return "never"

    plan = make_plan({"id": "s1", "tool": "slow", "inputs": {"x": 1}})
    async with ToolExecutor([slow]) as executor:
        task = asyncio.ensure_future(run_plan(plan, executor, call_id_prefix="c"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert executor.ledger.get("c:s1").state is CallState.CANCELLED


async def test_the_prefix_must_not_be_empty() -> None:
    async with ToolExecutor(Recorder().tools()) as executor:
        with pytest.raises(ValueError, match="call_id_prefix"):
            await run_plan(TRIP, executor, call_id_prefix="")


async def test_the_executor_can_be_shared_with_other_calls() -> None:
    rec = Recorder()
    plan = make_plan({"id": "s1", "tool": "echo", "inputs": {"text": "plan"}})
    async with ToolExecutor(rec.tools()) as executor:
        executor.submit(
            {"name": "echo", "args": {"text": "other"}, "id": "o1", "type": "tool_call"}
        )
        run = await run_plan(plan, executor, call_id_prefix="sh")
        other = await executor.wait("o1")
        seen = {c.call_id for c in executor.ready()}
    assert run.ok and json.loads(str(other.content)) == {"got": "other"}
    assert seen == {"o1", "sh:s1"}  # completions stay on the queue for their owners


async def test_a_run_resumed_from_the_journal_does_not_repeat_finished_steps() -> None:
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.memory import InMemorySaver

    from langgraph_speculative.durability.journal import RunJournal

    saver = InMemorySaver()
    parent = saver.put(
        {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}, empty_checkpoint(), {}, {}
    )
    where = {
        "thread_id": "t",
        "checkpoint_ns": "",
        "checkpoint_id": parent["configurable"]["checkpoint_id"],
        "task_id": "task-1",
    }
    first_half = Plan(steps=TRIP.steps[:2])
    journal = RunJournal(saver, **where)
    await journal.open()
    async with ToolExecutor(Recorder().tools(), journal=journal) as executor:
        await run_plan(first_half, executor, call_id_prefix="j")
    journal.detach()  # the process dies after s1 and s2 finished
    rec = Recorder()
    resumed = RunJournal(saver, **where)
    await resumed.open()
    async with ToolExecutor(rec.tools(), journal=resumed) as executor:
        run = await run_plan(TRIP, executor, call_id_prefix="j")  # a fresh ledger: same ids
        assert executor.resumed_calls == 2
    await resumed.close()
    assert [c[0] for c in rec.calls] == ["book"] and run.ok
    assert run.outputs["s3"].content == "booked G7 for 553.5"
