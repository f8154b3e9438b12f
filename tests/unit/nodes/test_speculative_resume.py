"""Crash and resume of the speculative agent (listen -> commit | abort -> respond).

Crashes are injected in-process with a ``BaseException`` subclass raised by the model (at
a chosen point of the interaction) or at the commit point; nothing after the injection
point runs, and the crashed run's journal is only detached, as with a kill. A new
:class:`SpeculativeRun` (new model, new input stream, same thread) then resumes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_speculative.core.executor import idempotency_key_of
from langgraph_speculative.core.ledger import Speculation
from langgraph_speculative.core.safety import label_tool
from langgraph_speculative.durability.checkpointer import InterruptAwareCheckpointer
from langgraph_speculative.errors import InputUpdateError
from langgraph_speculative.integrations import (
    LatencyModel,
    ModelTurn,
    PlannedCall,
    ScriptedChatModel,
    ScriptedTask,
)
from langgraph_speculative.integrations.sim.scripted_listener import (
    ListenerView,
    ListeningResponder,
)
from langgraph_speculative.nodes.speculative import SpeculativeRun, create_speculative_agent
from langgraph_speculative.speculative.interaction_format import ToolResult

GUARD = 20.0
BACKENDS = ["stateless", "interruptible"]
FINAL = "Weather in Paris, and book a table there"


class Crash(BaseException):
    """A simulated process death."""


class World:
    """A weather service (safe) and a booking service that dedupes by idempotency key."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.bookings: dict[str, str] = {}  # key -> city: one effect per key
        self.booking_keys: list[str] = []
        self.committed = False  # set at the commit point of the crashed run
        self.book_started_before_commit = False

    def tools(self) -> list[BaseTool]:
        world = self

        @tool
        async def get_weather(city: str) -> str:
            """Current weather of a city."""
            world.runs["get_weather"] += 1
            return f"sunny in {city}"

        @tool
        async def book_table(city: str, config: RunnableConfig) -> str:
            """Book a table (a side effect, deduped by idempotency key)."""
            world.runs["book_table"] += 1
            if not world.committed:
                world.book_started_before_commit = True
            key = idempotency_key_of(config)
            assert key is not None
            world.booking_keys.append(key)
            world.bookings.setdefault(key, city)
            return f"table booked in {city}"

        label_tool(get_weather, safe=True)
        label_tool(book_table, safe=False, takes_idempotency_key=True)
        return [get_weather, book_table]


def _fn(name: str) -> dict[str, Any]:
    return {"name": name, "parameters": {"type": "dict", "properties": {"city": {}}}}


TASK = ScriptedTask(
    "resume",
    FINAL,
    (_fn("get_weather"), _fn("book_table")),
    (
        PlannedCall("0", "get_weather", {"city": "Paris"}),
        PlannedCall("1", "book_table", {"city": "Paris"}),
    ),
)


class CrashingListener:
    """The listening model, dying at the first step where ``when(view)`` holds."""

    def __init__(self, when: Callable[[ListenerView], bool] | None) -> None:
        self.inner = ListeningResponder(TASK, premature=0.0)
        self.when = when
        self.steps = 0

    def __call__(self, messages: Sequence[BaseMessage]) -> ModelTurn:
        self.steps += 1
        view = self.inner.view(messages)
        if self.when is not None and self.when(view):
            self.when = None
            raise Crash("killed while the model was writing")
        return self.inner(messages)

    def next_action(self, messages: Sequence[BaseMessage]) -> ModelTurn:
        return self(messages)


def _model(backend: str, script: CrashingListener) -> ScriptedChatModel:
    return ScriptedChatModel(script=script, latency=LatencyModel.zero(), backend=backend)


def _graph(saver: InterruptAwareCheckpointer, backend: str) -> Any:
    del backend  # one graph serves every backend: the run carries the model
    return create_speculative_agent().compile(checkpointer=saver)


async def _until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(GUARD):
        while not predicate():
            await asyncio.sleep(0.002)


def _shown(run: SpeculativeRun, call_id: str) -> bool:
    return any(isinstance(i, ToolResult) and i.call_id == call_id for i in run.items)


async def _crash(
    saver: InterruptAwareCheckpointer,
    backend: str,
    world: World,
    when: Callable[[ListenerView], bool] | None,
    config: RunnableConfig,
    *,
    final: bool = True,
    patch: Callable[[SpeculativeRun], None] | None = None,
) -> SpeculativeRun:
    """Run an interaction that dies at the injection point; return the dead run."""
    graph = _graph(saver, backend)
    model = _model(backend, CrashingListener(when))
    with pytest.raises(Crash):
        async with SpeculativeRun(model, world.tools()) as run:
            if patch is not None:
                patch(run)

            async def user() -> None:
                run.input.push("Weather")
                run.input.push("Weather in Paris")
                await _until(lambda: _shown(run, "c0"))  # the weather result reached the model
                if final:
                    run.input.push(FINAL, final=True)

            talking = asyncio.create_task(user())
            try:
                async with asyncio.timeout(GUARD):
                    await graph.ainvoke({"messages": [HumanMessage("hi")]}, config, context=run)
            finally:
                talking.cancel()
                await asyncio.gather(talking, return_exceptions=True)
    return run


async def _resume(
    saver: InterruptAwareCheckpointer,
    backend: str,
    world: World,
    config: RunnableConfig,
    *,
    then_say: str | None = None,
) -> tuple[SpeculativeRun, dict[str, Any]]:
    graph = _graph(saver, backend)
    async with SpeculativeRun(_model(backend, CrashingListener(None)), world.tools()) as run:
        assert await run.resume(graph, config)
        if then_say is not None:
            run.input.push(then_say, final=True)
        async with asyncio.timeout(GUARD):
            out = await graph.ainvoke(None, config, context=run)
    return run, out


def _check_messages(out: dict[str, Any], plan: Sequence[str]) -> list[ToolMessage]:
    messages = out["messages"]
    results = [m for m in messages if isinstance(m, ToolMessage)]
    ids = [m.tool_call_id for m in results]
    assert sorted(ids) == sorted(plan)  # one result per plan call: no duplicate, none lost
    assert len({m.id for m in messages}) == len(messages)
    assert isinstance(messages[-1], AIMessage) and messages[-1].content
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    assert [h.content for h in humans] == ["hi", FINAL]  # the user said it once
    return results


@pytest.fixture(params=["memory", "sqlite"])
async def saver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """The wrapper over an in-memory saver, and over AsyncSqliteSaver on a file."""
    if request.param == "memory":
        yield InterruptAwareCheckpointer(InMemorySaver())
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "c.db")) as inner:
        yield InterruptAwareCheckpointer(inner)


def _config() -> RunnableConfig:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_crash_while_listening_after_the_final_input(
    backend: str, saver: InterruptAwareCheckpointer
) -> None:
    world, config = World(), _config()
    dead = await _crash(saver, backend, world, lambda v: v.final and not v.confirmed, config)
    # before the commit point: the weather ran, the booking was held (never run)
    assert world.runs == Counter({"get_weather": 1})
    assert dead.ledger.get("c1").started_at is None  # held, then cancelled by the close

    run, out = await _resume(saver, backend, world, config)
    assert run.input.final and run.input.latest is not None and run.input.latest.text == FINAL
    assert [u.seq for u in run.input.updates()] == [1, 2, 3]  # the user did not repeat
    assert run.id == dead.id  # the interaction keeps its id (message ids)
    _check_messages(out, ["c0", "c1"])
    assert world.runs == Counter({"get_weather": 1, "book_table": 1})  # weather reused
    assert len(world.bookings) == 1
    assert run.resume_stats["resumed_calls"] >= 1
    assert run.resume_stats["replayed_inputs"] == 3
    assert run.resume_stats["replayed_turns"] >= 1
    assert run.unsafe_before_commit() == 0 and run.leaked_results() == 0


@pytest.mark.parametrize("backend", BACKENDS)
async def test_crash_before_the_final_input_then_the_user_goes_on(
    backend: str, saver: InterruptAwareCheckpointer
) -> None:
    world, config = World(), _config()
    seen_weather = lambda v: "c0" in v.results and not v.final  # noqa: E731
    await _crash(saver, backend, world, seen_weather, config, final=False)
    assert world.runs == Counter({"get_weather": 1})

    run, out = await _resume(saver, backend, world, config, then_say=FINAL)
    updates = run.input.updates()
    assert [(u.seq, u.final) for u in updates] == [(1, False), (2, False), (3, True)]
    assert updates[-1].text == FINAL
    _check_messages(out, ["c0", "c1"])
    assert world.runs == Counter({"get_weather": 1, "book_table": 1})
    assert run.resume_stats["replayed_inputs"] == 2


@pytest.mark.parametrize("backend", BACKENDS)
async def test_crash_at_the_commit_point(backend: str, saver: InterruptAwareCheckpointer) -> None:
    world, config = World(), _config()

    def patch(run: SpeculativeRun) -> None:
        commit = run.speculation.commit

        def dying(plan: Any) -> Any:
            world.committed = True
            commit(plan)  # the decisions are taken (and journaled), then the process dies
            raise Crash("killed at the commit point")

        run.speculation.commit = dying  # type: ignore[method-assign]

    dead = await _crash(saver, backend, world, None, config, patch=patch)
    assert dead.ledger.get("c1").speculation is Speculation.COMMITTED
    assert not world.book_started_before_commit

    run, out = await _resume(saver, backend, world, config)
    _check_messages(out, ["c0", "c1"])
    assert world.runs["get_weather"] == 1  # the speculative result is adopted, not re-run
    assert len(world.bookings) == 1  # the booking took effect once
    assert len(set(world.booking_keys)) == 1  # a re-run (if any) had the same key
    assert out["commit"]["adopted"] == {"c0": "c0", "c1": "c1"}
    assert run.ledger.get("c1").speculation is Speculation.COMMITTED
    assert run.unsafe_before_commit() == 0


@pytest.mark.parametrize("backend", BACKENDS)
async def test_crash_after_the_commit_point_before_the_answer(
    backend: str, saver: InterruptAwareCheckpointer
) -> None:
    world, config = World(), _config()
    # the model dies once it has every result of its plan, before it answers
    every_result = lambda v: v.confirmed and {"c0", "c1"} <= v.results  # noqa: E731

    def patch(run: SpeculativeRun) -> None:
        commit = run.speculation.commit

        def marking(plan: Any) -> Any:
            world.committed = True
            return commit(plan)

        run.speculation.commit = marking  # type: ignore[method-assign]

    await _crash(saver, backend, world, every_result, config, patch=patch)
    assert world.runs == Counter({"get_weather": 1, "book_table": 1})
    graph = _graph(saver, backend)
    snapshot = await graph.aget_state(config)
    assert snapshot.next == ("respond",)  # the commit point had passed

    run, out = await _resume(saver, backend, world, config)
    results = _check_messages(out, ["c0", "c1"])
    assert world.runs == Counter({"get_weather": 1, "book_table": 1})  # nothing re-ran
    assert run.resume_stats["resumed_calls"] == 2
    assert {m.tool_call_id: m.content for m in results} == {
        "c0": "sunny in Paris",
        "c1": "table booked in Paris",
    }
    assert out["commit"] == snapshot.values["commit"]  # the decision stands


async def test_resume_on_a_fresh_or_finished_thread_is_a_no_op() -> None:
    saver = InterruptAwareCheckpointer(InMemorySaver())
    world, config = World(), _config()
    graph = _graph(saver, "stateless")
    async with SpeculativeRun(_model("stateless", CrashingListener(None)), world.tools()) as run:
        assert not await run.resume(graph, config)  # nothing stored yet
        run.input.push(FINAL, final=True)
        out = await graph.ainvoke({"messages": [HumanMessage("hi")]}, config, context=run)
    _check_messages(out, ["c0", "c1"])
    async with SpeculativeRun(_model("stateless", CrashingListener(None)), world.tools()) as run:
        assert not await run.resume(graph, config)  # finished: nothing to resume
    assert world.runs == Counter({"get_weather": 1, "book_table": 1})


async def test_updates_pushed_before_the_restore_are_refused() -> None:
    saver = InterruptAwareCheckpointer(InMemorySaver())
    world, config = World(), _config()
    await _crash(saver, "stateless", world, lambda v: v.final and not v.confirmed, config)
    graph = _graph(saver, "stateless")
    async with SpeculativeRun(_model("stateless", CrashingListener(None)), world.tools()) as run:
        run.input.push("Weather in")  # too early: the journaled updates come first
        with pytest.raises(InputUpdateError, match="restore before pushing"):
            await run.resume(graph, config)
