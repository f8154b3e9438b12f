"""Crash and resume: kill a run at each phase, resume it, check the ledger and the messages.

Crashes are injected in-process with a ``BaseException`` subclass (nothing after the
injection point runs, as with a kill: the journal is only detached), plus one real
``SIGKILL`` of a child process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO_ROOT
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import Field

from langgraph_speculative.core.executor import ToolExecutor, idempotency_key_of
from langgraph_speculative.core.ledger import CallRecord, CallState, Speculation
from langgraph_speculative.core.safety import label_tool
from langgraph_speculative.durability.checkpointer import InterruptAwareCheckpointer
from langgraph_speculative.durability.journal import RunJournal
from langgraph_speculative.durability.resume import Resolution, raise_outcome_unknown
from langgraph_speculative.errors import OutcomeUnknownError
from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel
from langgraph_speculative.nodes import AsyncToolCallingNode, create_async_agent

ZERO = LatencyModel.zero()
GUARD = 20.0


class Crash(BaseException):
    """A simulated process death."""


# -- the world: a payment service that dedupes by key, an email outbox ---------------------
class World:
    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()  # tool name -> invocations
        self.payments: dict[str, int] = {}  # idempotency key -> amount (one effect per key)
        self.payment_attempts: list[str] = []
        self.emails: list[str] = []
        self.crash_in: set[str] = set()  # tools that crash (once) after their side effect
        self.gates: dict[str, asyncio.Event] = {}
        # a crashing tool waits until these tools' results are durable (so the test knows
        # which calls had finished at the crash)
        self.durable: dict[str, asyncio.Event] = {}

    def watch(self, saver: Any, *tools: str) -> Any:
        """Let ``saver`` tell the world when a result of ``tools`` is journaled."""
        for name in tools:
            self.durable.setdefault(name, asyncio.Event())
        put = saver.aput_writes

        async def aput_writes(config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
            await put(config, writes, task_id, task_path)
            for _, value in writes:
                if isinstance(value, dict) and value.get("type") == "call_finished":
                    name = ((value["data"].get("result") or {}).get("data") or {}).get("name")
                    if name in self.durable:
                        self.durable[name].set()

        saver.aput_writes = aput_writes
        return saver

    def tools(self) -> list[BaseTool]:
        world = self

        @tool
        async def get_weather(city: str) -> str:
            """Current weather of a city."""
            world.runs["get_weather"] += 1
            return f"sunny in {city}"

        @tool
        async def pay(amount: int, config: RunnableConfig) -> str:
            """Pay an amount (idempotent per key)."""
            world.runs["pay"] += 1
            key = idempotency_key_of(config)
            assert key is not None
            world.payment_attempts.append(key)
            world.payments.setdefault(key, amount)
            await world._maybe_crash("pay")
            return f"paid {amount}"

        @tool
        async def send_email(to: str) -> str:
            """Send an email (no key: not safe to repeat)."""
            world.runs["send_email"] += 1
            world.emails.append(to)
            await world._maybe_crash("send_email")
            return f"sent to {to}"

        label_tool(get_weather, safe=True)
        label_tool(pay, safe=False, takes_idempotency_key=True)
        label_tool(send_email, safe=False)
        return [get_weather, pay, send_email]

    async def _maybe_crash(self, name: str) -> None:
        gate = self.gates.get(name)
        if gate is not None:
            await gate.wait()
        if name in self.crash_in:
            for event in self.durable.values():
                await event.wait()
            self.crash_in.discard(name)
            raise Crash(f"killed inside {name}")


class CrashingModel(ScriptedChatModel):
    """A scripted model that can die after ``n`` chunks of its ``k``-th request."""

    control: dict[str, Any] = Field(default_factory=dict)  # shared by copies (bind_tools)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.control["requests"] = self.control.get("requests", 0) + 1
        crash = self.control.pop("crash", None)  # (request number, after chunks)
        n = 0
        async for gen in super()._astream(messages, stop, run_manager, **kwargs):
            if crash is not None and crash[0] == self.control["requests"] and n == crash[1]:
                raise Crash(f"killed in request {crash[0]} after {n} chunks")
            n += 1
            await asyncio.sleep(0)  # let dispatched tools run meanwhile
            yield gen
        if crash is not None and crash[1] < 0 and crash[0] == self.control["requests"]:
            for _ in range(20):  # the stream is over: let the calls it set off get going
                await asyncio.sleep(0)
            raise Crash(f"killed at the end of request {crash[0]}")
        if crash is not None and crash[0] != self.control["requests"]:
            self.control["crash"] = crash  # not this request: keep it armed


def fresh_ids_responder(turns: Sequence[ModelTurn]) -> Any:
    """Turn k of ``turns`` for the k-th request, with NEW call ids every time it is asked."""

    def respond(messages: Sequence[BaseMessage]) -> ModelTurn:
        k = sum(1 for m in messages if isinstance(m, AIMessage))
        turn = turns[k]
        calls = tuple({**c, "id": f"call_{uuid.uuid4().hex[:10]}"} for c in turn.tool_calls)
        return ModelTurn(text=turn.text, tool_calls=calls)  # type: ignore[arg-type]

    return respond


def agent(
    world: World, script: Any, saver: InterruptAwareCheckpointer
) -> tuple[Any, CrashingModel, AsyncToolCallingNode]:
    model = CrashingModel(script=script, latency=ZERO)
    builder = create_async_agent(model, world.tools())
    node = builder.nodes["agent"].runnable  # the AsyncToolCallingNode (a Runnable)
    graph = builder.compile(checkpointer=saver)
    return graph, model, node


def tool_messages(messages: Sequence[BaseMessage]) -> Counter[str]:
    return Counter(m.tool_call_id for m in messages if isinstance(m, ToolMessage))


def assert_well_formed(messages: Sequence[BaseMessage]) -> None:
    """Every call of every AIMessage answered exactly once; no orphan ToolMessage."""
    calls = [c["id"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
    answered = tool_messages(messages)
    assert Counter(calls) == answered, (calls, answered)
    assert all(n == 1 for n in answered.values())


PAY_AND_WEATHER = [
    ModelTurn.calls(("pay", {"amount": 42}), ("get_weather", {"city": "Paris"})),
    ModelTurn(text="Paid, and it is sunny."),
]


async def run_crash_resume(
    world: World,
    script: Any,
    *,
    crash: tuple[int, int] | None = None,
    watch: Sequence[str] = (),
    **saver_kw: Any,
) -> tuple[dict[str, Any], AsyncToolCallingNode, CrashingModel]:
    saver = InterruptAwareCheckpointer(world.watch(InMemorySaver(), *watch), **saver_kw)
    graph, model, node = agent(world, script, saver)
    if crash is not None:
        model.control["crash"] = crash
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    async with asyncio.timeout(GUARD):
        with pytest.raises(Crash):
            await graph.ainvoke({"messages": [HumanMessage("pay and weather")]}, config)
        out = await graph.ainvoke(None, config)
    return out, node, model


# -- the phases ------------------------------------------------------------------------------
async def test_crash_before_dispatch_asks_again_and_runs_once() -> None:
    world = World()
    out, node, _ = await run_crash_resume(world, PAY_AND_WEATHER, crash=(1, 0))
    assert out["messages"][-1].content == "Paid, and it is sunny."
    assert world.runs == Counter({"pay": 1, "get_weather": 1})
    assert len(world.payments) == 1
    assert_well_formed(out["messages"])
    assert node.resume_stats["resumed_calls"] == 0


async def test_crash_mid_tool_reruns_a_keyed_tool_with_the_same_key() -> None:
    world = World()
    world.crash_in.add("pay")  # the payment went through, then the process died
    out, node, _ = await run_crash_resume(world, PAY_AND_WEATHER, watch=["get_weather"])
    assert world.runs["pay"] == 2 and world.runs["get_weather"] == 1  # re-run ...
    assert len(set(world.payment_attempts)) == 1  # ... with the same key ...
    assert world.payments == {world.payment_attempts[0]: 42}  # ... so one payment
    assert node.resume_stats["rerun_calls"] >= 1
    assert_well_formed(out["messages"])
    assert out["messages"][-1].content == "Paid, and it is sunny."


async def test_crash_mid_tool_never_reruns_an_unkeyed_unsafe_tool() -> None:
    world = World()
    world.crash_in.add("send_email")
    script = [ModelTurn.calls(("send_email", {"to": "bob"})), ModelTurn(text="Done.")]
    out, node, _ = await run_crash_resume(world, script)
    assert world.emails == ["bob"]  # never sent twice
    answer = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert len(answer) == 1 and answer[0].status == "error"
    assert "Outcome unknown" in str(answer[0].content)
    assert node.resume_stats["unknown_outcomes"] == 1
    assert_well_formed(out["messages"])


async def test_outcome_unknown_hook_can_deliver_or_rerun_or_stop() -> None:
    script = [ModelTurn.calls(("send_email", {"to": "bob"})), ModelTurn(text="Done.")]
    seen: list[CallRecord] = []

    async def deliver(record: CallRecord) -> Resolution:
        seen.append(record)
        return Resolution.deliver("the outbox shows it was sent")

    world = World()
    world.crash_in.add("send_email")
    out, _, _ = await run_crash_resume(world, script, on_outcome_unknown=deliver)
    assert [r.tool for r in seen] == ["send_email"] and seen[0].args == {"to": "bob"}
    result = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert result.content == "the outbox shows it was sent" and result.status == "success"
    assert world.emails == ["bob"]

    world = World()
    world.crash_in.add("send_email")
    out, _, _ = await run_crash_resume(
        world, script, on_outcome_unknown=lambda r: Resolution.rerun()
    )
    assert world.emails == ["bob", "bob"]  # the app chose to re-run it

    world = World()
    world.crash_in.add("send_email")
    saver = InterruptAwareCheckpointer(InMemorySaver(), on_outcome_unknown=raise_outcome_unknown)
    graph, _, _ = agent(world, script, saver)
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    with pytest.raises(Crash):
        await graph.ainvoke({"messages": [HumanMessage("mail bob")]}, config)
    with pytest.raises(OutcomeUnknownError) as info:
        await graph.ainvoke(None, config)
    assert info.value.tool == "send_email" and world.emails == ["bob"]


async def test_crash_after_result_before_delivery_reuses_the_result() -> None:
    world = World()
    # request 2 (the one that would show the results to the model) dies at once
    out, node, model = await run_crash_resume(world, PAY_AND_WEATHER, crash=(2, 0))
    assert world.runs == Counter({"pay": 1, "get_weather": 1})  # nothing ran again
    assert node.resume_stats["resumed_calls"] == 2
    assert node.resume_stats["replayed_turns"] == 1  # turn 1 was not asked again
    assert model.control["requests"] == 3  # 2 before the crash, 1 after
    assert_well_formed(out["messages"])
    assert out["messages"][-1].content == "Paid, and it is sunny."


async def test_crash_mid_stream_matches_renamed_calls_and_runs_nothing_twice() -> None:
    world = World()
    world.gates["send_email"] = asyncio.Event()
    turns = [
        ModelTurn.calls(
            ("pay", {"amount": 7}), ("get_weather", {"city": "Oslo"}), ("send_email", {"to": "a"})
        ),
        ModelTurn(text="All done."),
    ]
    # die in the middle of request 1: pay and get_weather are out (and done), the email
    # call is not complete yet; the model, asked again, names every call differently
    chunks_before_email = 2 + len('{"amount": 7}') // 4 + 1 + 2 + len('{"city": "Oslo"}') // 4 + 1

    async def open_gate() -> None:
        await asyncio.sleep(0.05)
        world.gates["send_email"].set()

    opener = asyncio.create_task(open_gate())
    out, node, _ = await run_crash_resume(
        world, fresh_ids_responder(turns), crash=(1, chunks_before_email)
    )
    await opener
    assert world.runs["pay"] == 1 and world.runs["get_weather"] == 1
    assert world.runs["send_email"] == 1
    assert node.resume_stats["resumed_calls"] == 2  # matched by tool and arguments
    assert_well_formed(out["messages"])
    assert out["messages"][-1].content == "All done."


async def test_crash_after_the_final_turn_replays_without_asking_the_model() -> None:
    world = World()
    out, _, model = await run_crash_resume(world, PAY_AND_WEATHER, crash=(2, -1))
    # request 2 was streamed whole, then the process died before the node returned:
    # its turn was not journaled (the turn record follows the stream), so it is asked again
    assert model.control["requests"] == 3
    assert world.runs == Counter({"pay": 1, "get_weather": 1})
    assert_well_formed(out["messages"])


async def test_second_crash_during_resume_still_runs_nothing_twice() -> None:
    world = World()
    saver = InterruptAwareCheckpointer(InMemorySaver())
    graph, model, node = agent(world, PAY_AND_WEATHER, saver)
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    model.control["crash"] = (2, 0)
    with pytest.raises(Crash):
        await graph.ainvoke({"messages": [HumanMessage("go")]}, config)
    model.control["crash"] = (3, 0)
    with pytest.raises(Crash):
        await graph.ainvoke(None, config)
    out = await graph.ainvoke(None, config)
    assert world.runs == Counter({"pay": 1, "get_weather": 1})
    assert_well_formed(out["messages"])
    assert node.resume_stats["replayed_turns"] == 2


# -- executor level: commit and abort survive -----------------------------------------------
def _journal(saver: Any) -> RunJournal:
    tup = saver.get_tuple({"configurable": {"thread_id": "t", "checkpoint_ns": ""}})
    if tup is None:
        stored = saver.put(
            {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}, empty_checkpoint(), {}, {}
        )
    else:
        stored = tup.config
    checkpoint_id = stored["configurable"]["checkpoint_id"]
    return RunJournal(
        saver, thread_id="t", checkpoint_ns="", checkpoint_id=checkpoint_id, task_id="k"
    )


async def test_crash_during_commit_resumes_the_committed_call_with_its_key() -> None:
    world = World()
    tools = world.tools()
    saver = InMemorySaver()
    call = {"name": "pay", "args": {"amount": 3}, "id": "p1", "type": "tool_call"}
    world.crash_in.add("pay")
    journal = _journal(saver)
    await journal.open()
    with pytest.raises(Crash):
        async with ToolExecutor(tools, journal=journal) as ex:
            ex.submit(call, speculative=True)  # type: ignore[arg-type]
            assert ex.ledger.get("p1").state is CallState.PENDING  # held: unsafe
            ex.commit("p1")
            await ex.wait("p1")
    journal.detach()
    again = _journal(saver)
    state = await again.open()
    assert state.speculation == {"p1": Speculation.COMMITTED}
    assert [r.id for r in state.running()] == ["p1"]
    async with ToolExecutor(tools, journal=again) as ex:
        ex.submit(call, speculative=True)  # type: ignore[arg-type]
        ex.commit("p1")
        assert (await ex.wait("p1")).content == "paid 3"
    await again.close()
    assert len(set(world.payment_attempts)) == 1 and len(world.payments) == 1


async def test_abort_survives_a_crash() -> None:
    world = World()
    tools = world.tools()
    saver = InMemorySaver()
    call = {"name": "pay", "args": {"amount": 3}, "id": "p1", "type": "tool_call"}
    journal = _journal(saver)
    await journal.open()
    async with ToolExecutor(tools, journal=journal) as ex:
        ex.submit(call, speculative=True)  # type: ignore[arg-type]
        ex.abort("p1")
        await journal.flush()
    journal.detach()  # crash
    again = _journal(saver)
    state = await again.open()
    assert state.speculation == {"p1": Speculation.ABORTED}
    async with ToolExecutor(tools, journal=again) as ex:
        ex.submit(call, speculative=True)  # type: ignore[arg-type]
        assert ex.ledger.get("p1").state is CallState.CANCELLED
        assert ex.resumed_calls == 1
    assert world.runs["pay"] == 0


# -- durability modes ------------------------------------------------------------------------
@pytest.mark.parametrize("durability", ["sync", "async"])
async def test_durable_modes_resume_without_repeating(durability: str) -> None:
    world = World()
    saver = InterruptAwareCheckpointer(InMemorySaver())
    graph, model, _ = agent(world, PAY_AND_WEATHER, saver)
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    model.control["crash"] = (2, 0)
    with pytest.raises(Crash):
        await graph.ainvoke({"messages": [HumanMessage("go")]}, config, durability=durability)
    out = await graph.ainvoke(None, config, durability=durability)
    assert world.runs == Counter({"pay": 1, "get_weather": 1})
    assert_well_formed(out["messages"])


async def test_exit_mode_promises_only_deterministic_keys() -> None:
    """With "exit" nothing is stored mid-run: the run starts over, tools run again, and
    only the idempotency key (deterministic call ids here) keeps the payment single."""
    world = World()
    saver = InterruptAwareCheckpointer(InMemorySaver())
    graph, model, node = agent(world, PAY_AND_WEATHER, saver)
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    model.control["crash"] = (2, 0)
    with pytest.raises(Crash):
        await graph.ainvoke({"messages": [HumanMessage("go")]}, config, durability="exit")
    # nothing of the node's work was stored (LangGraph saved the input on the way out of
    # this in-process crash; after a real kill not even that): the node starts over
    out = await graph.ainvoke(None, config, durability="exit")
    assert world.runs == Counter({"pay": 2, "get_weather": 2})  # re-run: not promised
    assert len(world.payments) == 1  # same call id, tool, args -> same key
    assert node.resume_stats["resumed_calls"] == 0
    assert_well_formed(out["messages"])


# -- real savers -----------------------------------------------------------------------------
async def test_resume_on_async_sqlite(tmp_path: Path) -> None:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    world = World()
    world.crash_in.add("pay")
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "c.db")) as inner:
        saver = InterruptAwareCheckpointer(world.watch(inner, "get_weather"))
        graph, _, _ = agent(world, PAY_AND_WEATHER, saver)
        config: RunnableConfig = {"configurable": {"thread_id": "t"}}
        with pytest.raises(Crash):
            await graph.ainvoke({"messages": [HumanMessage("go")]}, config)
        out = await graph.ainvoke(None, config)
    assert len(world.payments) == 1 and world.runs["get_weather"] == 1
    assert_well_formed(out["messages"])


async def test_resume_on_postgres(postgres_dsn: str) -> None:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    world = World()
    async with AsyncPostgresSaver.from_conn_string(postgres_dsn) as inner:
        await inner.setup()
        saver = InterruptAwareCheckpointer(inner)
        graph, model, node = agent(world, PAY_AND_WEATHER, saver)
        model.control["crash"] = (2, 0)
        config: RunnableConfig = {"configurable": {"thread_id": f"t-{uuid.uuid4()}"}}
        with pytest.raises(Crash):
            await graph.ainvoke({"messages": [HumanMessage("go")]}, config)
        out = await graph.ainvoke(None, config)
    assert world.runs == Counter({"pay": 1, "get_weather": 1})
    assert node.resume_stats["resumed_calls"] == 2
    assert_well_formed(out["messages"])


# -- a real kill ----------------------------------------------------------------------------
_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from langchain_core.messages import HumanMessage
    from langchain_core.runnables import RunnableConfig
    from langchain_core.tools import tool
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph_speculative.durability.checkpointer import InterruptAwareCheckpointer
    from langgraph_speculative.core.executor import idempotency_key_of
    from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel
    from langgraph_speculative.nodes import create_async_agent
    from langgraph_speculative.core.safety import label_tool

    db, effects, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    def effect(kind, key):
        with effects.open("a") as f:
            f.write(json.dumps([kind, key]) + "\\n")
            f.flush()

    @tool
    async def pay(amount: int, config: RunnableConfig) -> str:
        '''Pay.'''
        key = idempotency_key_of(config)
        effect("pay", key)
        if mode == "first":
            await asyncio.sleep(60)  # killed here
        return f"paid {amount}"

    @tool
    async def get_weather(city: str) -> str:
        '''Weather.'''
        effect("weather", city)
        return "sunny"

    label_tool(pay, safe=False, takes_idempotency_key=True)
    label_tool(get_weather, safe=True)
    script = [
        ModelTurn(text="", tool_calls=(
            {"name": "get_weather", "args": {"city": "Rome"}, "id": "w1", "type": "tool_call"},
            {"name": "pay", "args": {"amount": 9}, "id": "p1", "type": "tool_call"},
        )),
        ModelTurn(text="done"),
    ]

    async def main():
        async with AsyncSqliteSaver.from_conn_string(str(db)) as inner:
            graph = create_async_agent(
                ScriptedChatModel(script=script, latency=LatencyModel.zero()),
                [get_weather, pay],
            ).compile(checkpointer=InterruptAwareCheckpointer(inner))
            config = {"configurable": {"thread_id": "kill"}}
            if mode == "first":
                await graph.ainvoke({"messages": [HumanMessage("go")]}, config)
            else:
                out = await graph.ainvoke(None, config)
                print(json.dumps([[type(m).__name__, getattr(m, "tool_call_id", None)]
                                  for m in out["messages"]]))

    asyncio.run(main())
    """
)


def _weather_durable(db: Path) -> bool:
    """Whether the journal in ``db`` holds the finish record of call ``w1``."""
    import sqlite3

    if not db.exists():
        return False
    try:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT value FROM writes WHERE channel = 'lgs:journal'")
            return any(b"call_finished" in v and b"w1" in v for (v,) in rows)
    except sqlite3.OperationalError:  # not created yet, or locked for a moment
        return False


def test_sigkill_mid_tool_then_resume_in_a_new_process(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    db, effects = tmp_path / "c.db", tmp_path / "effects.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen([sys.executable, str(script), str(db), str(effects), "first"], env=env)
    try:
        deadline = 60.0
        import time

        start = time.monotonic()
        while time.monotonic() - start < deadline:
            if effects.exists() and '"pay"' in effects.read_text() and _weather_durable(db):
                break  # mid-payment, with the weather result durable
            if child.poll() is not None:
                pytest.fail(f"the child ended early with {child.returncode}")
            time.sleep(0.02)
        else:
            pytest.fail("the child never reached the payment")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    done = subprocess.run(
        [sys.executable, str(script), str(db), str(effects), "resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    import json

    lines = [json.loads(x) for x in effects.read_text().splitlines()]
    pays = [key for kind, key in lines if kind == "pay"]
    assert len(pays) == 2 and len(set(pays)) == 1  # re-run with the same key: one payment
    assert [k for k, _ in lines].count("weather") == 1  # the finished call was not re-run
    messages = json.loads(done.stdout.strip().splitlines()[-1])
    tool_ids = [tid for kind, tid in messages if kind == "ToolMessage"]
    assert sorted(tool_ids) == ["p1", "w1"]  # each result delivered once
    assert messages[-1][0] == "AIMessage"


# -- other surfaces: until="turn" and the create_agent middleware ----------------------------
async def test_turn_mode_replays_the_turn_and_reruns_the_keyed_call() -> None:
    from langgraph.graph import END, START, MessagesState, StateGraph

    world = World()
    world.crash_in.add("pay")
    model = CrashingModel(script=PAY_AND_WEATHER, latency=ZERO)
    node = AsyncToolCallingNode(model, world.tools(), until="turn")
    builder = StateGraph(MessagesState)
    builder.add_node("model", node)
    builder.add_edge(START, "model")
    builder.add_conditional_edges(
        "model", lambda s: "model" if isinstance(s["messages"][-1], ToolMessage) else END
    )
    saver = InterruptAwareCheckpointer(world.watch(InMemorySaver(), "get_weather"))
    graph = builder.compile(checkpointer=saver)
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    with pytest.raises(Crash):
        await graph.ainvoke({"messages": [HumanMessage("go")]}, config)
    out = await graph.ainvoke(None, config)
    assert model.control["requests"] == 2  # turn 1 replayed, not asked again
    assert node.resume_stats == {
        "resumed_calls": 1,
        "rerun_calls": 1,
        "unknown_outcomes": 0,
        "replayed_turns": 1,
        "orphaned_calls": 0,
    }
    assert len(world.payments) == 1 and world.runs["get_weather"] == 1
    assert_well_formed(out["messages"])


async def test_middleware_reuses_results_after_a_crash() -> None:
    from langchain.agents import create_agent

    from langgraph_speculative.nodes import AsyncToolCallingMiddleware

    world = World()
    world.crash_in.add("pay")
    model = CrashingModel(script=PAY_AND_WEATHER, latency=ZERO)
    graph = create_agent(
        model,
        world.tools(),
        middleware=[AsyncToolCallingMiddleware()],
        checkpointer=InterruptAwareCheckpointer(world.watch(InMemorySaver(), "get_weather")),
    )
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    with pytest.raises(Crash):
        await graph.ainvoke({"messages": [HumanMessage("go")]}, config)
    out = await graph.ainvoke(None, config)
    # the middleware asks the model again (same ids here): results are matched by id
    assert world.runs["get_weather"] == 1 and len(world.payments) == 1
    assert_well_formed(out["messages"])
    assert out["messages"][-1].content == "Paid, and it is sunny."


async def test_interruptible_sessions_reuse_results_after_a_crash() -> None:
    world = World()
    world.crash_in.add("pay")
    model = ScriptedChatModel(script=PAY_AND_WEATHER, latency=ZERO, backend="interruptible")
    saver = InterruptAwareCheckpointer(world.watch(InMemorySaver(), "get_weather"))
    builder = create_async_agent(model, world.tools())
    node = builder.nodes["agent"].runnable
    graph = builder.compile(checkpointer=saver)
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    with pytest.raises(Crash):
        await graph.ainvoke({"messages": [HumanMessage("go")]}, config)
    out = await graph.ainvoke(None, config)
    # the session is opened again (sessions are not replayed); its calls are matched
    assert world.runs["get_weather"] == 1 and len(world.payments) == 1
    assert node.resume_stats["resumed_calls"] == 1 and node.resume_stats["rerun_calls"] == 1
    assert_well_formed(out["messages"])
    assert out["messages"][-1].content == "Paid, and it is sunny."


async def test_a_call_the_resumed_model_drops_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    world = World()
    asked = [0]

    def respond(messages: Sequence[BaseMessage]) -> ModelTurn:
        asked[0] += 1
        if asked[0] == 1:  # before the crash: pay (fresh id)
            pay = {"name": "pay", "args": {"amount": 5}, "id": "first", "type": "tool_call"}
            return ModelTurn(tool_calls=(pay,))  # type: ignore[arg-type]
        if not any(isinstance(m, ToolMessage) for m in messages):
            return ModelTurn.calls(("get_weather", {"city": "Rome"}))  # changed its mind
        return ModelTurn(text="ok")

    with caplog.at_level("WARNING", logger="langgraph_speculative"):
        out, node, _ = await run_crash_resume(world, respond, crash=(1, -1))
    assert world.runs["pay"] == 1  # started before the crash, never re-run
    assert node.resume_stats["orphaned_calls"] == 1
    assert any("pay" in r.getMessage() and "orphan" in r.getMessage() for r in caplog.records)
    assert_well_formed(out["messages"])


async def test_a_reused_id_for_another_call_is_not_mistaken_for_the_old_one() -> None:
    world = World()
    asked = [0]

    def respond(messages: Sequence[BaseMessage]) -> ModelTurn:
        asked[0] += 1
        if any(isinstance(m, ToolMessage) for m in messages):
            return ModelTurn(text="ok")
        # the same id both times, for a different call after the crash; the payment's
        # durable start record carries the first weather result into the journal
        args = {"city": "Rome"} if asked[0] == 1 else {"city": "Oslo"}
        call = {"name": "get_weather", "args": args, "id": "call_0", "type": "tool_call"}
        pay = {"name": "pay", "args": {"amount": 5}, "id": "call_1", "type": "tool_call"}
        return ModelTurn(tool_calls=(call, pay))  # type: ignore[arg-type]

    out, node, _ = await run_crash_resume(world, respond, crash=(1, -1), watch=["get_weather"])
    results = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    weather = [m for m in results if m.name == "get_weather"]
    assert [m.content for m in weather] == ["sunny in Oslo"]  # not Rome's saved result
    assert weather[0].tool_call_id == "call_0_dup1"
    assert world.runs["pay"] == 1  # the payment's saved result is reused
    assert node.resume_stats["resumed_calls"] == 1 and node.resume_stats["orphaned_calls"] == 1
    assert_well_formed(out["messages"])


# -- plan execution ---------------------------------------------------------------------------
async def test_plan_execution_resumes_without_re_running_a_finished_step() -> None:
    from langgraph_speculative.cache import (
        LabelledRequest,
        Plan,
        PlanCache,
        PlanStep,
        TemplatePlanner,
    )
    from langgraph_speculative.nodes.plan_reuse import create_plan_reuse_graph

    world = World()
    world.crash_in.add("pay")  # the payment step dies after its effect
    pairs = [("合肥", "北京"), ("长沙", "上海"), ("广州", "深圳"), ("南京", "杭州")]
    examples = [
        LabelledRequest(
            f"{a}到{b}的火车票", "train", "QUERY", {"startLoc_city": a, "endLoc_city": b}
        )
        for a, b in pairs
    ]
    examples += [
        LabelledRequest(f"{d}怎么做", "cookbook", "QUERY", {"dishName": d})
        for d in ["糖醋排骨", "红烧肉", "宫保鸡丁", "麻婆豆腐"]
    ]
    template = Plan(
        parameters=["endLoc_city"],
        steps=[
            PlanStep(
                id="weather",
                description="weather at the destination",
                tool="get_weather",
                inputs={"city": "{param:endLoc_city}"},
                output="forecast",
            ),
            PlanStep(
                id="ticket",
                description="pay the ticket",
                tool="pay",
                inputs={"amount": 42},
                output="receipt",
            ),
        ],
    )
    planner = TemplatePlanner({"train.QUERY": template})
    builder = create_plan_reuse_graph(PlanCache.from_examples(examples), planner, world.tools())
    saver = InterruptAwareCheckpointer(world.watch(InMemorySaver(), "get_weather"))
    graph = builder.compile(checkpointer=saver)
    config: RunnableConfig = {"configurable": {"thread_id": "plan"}}
    async with asyncio.timeout(GUARD):
        with pytest.raises(Crash):
            await graph.ainvoke({"messages": [HumanMessage("合肥到北京的火车票")]}, config)
        assert world.runs == Counter({"get_weather": 1, "pay": 1})
        out = await graph.ainvoke(None, config)
    assert world.runs["get_weather"] == 1  # finished before the crash: not run again
    assert world.runs["pay"] == 2  # running at the crash, keyed: re-run ...
    assert len(set(world.payment_attempts)) == 1 and len(world.payments) == 1  # ... same key
    assert_well_formed(out["messages"])
    results = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert sorted(str(m.content) for m in results) == ["paid 42", "sunny in 北京"]
