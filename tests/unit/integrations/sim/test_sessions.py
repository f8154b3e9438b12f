"""SimulatedSession: the interruptible back-end's simulated decoding session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.tools import tool

from langgraph_speculative.async_calling.cml import TRAP_BLOCK
from langgraph_speculative.errors import ScriptError
from langgraph_speculative.integrations import (
    LatencyModel,
    ModelTurn,
    PlannedCall,
    ScriptedChatModel,
    ScriptedTask,
    TaskResponder,
)
from langgraph_speculative.integrations.sim.sessions import (
    InterruptibleChatModel,
    InterruptibleSession,
    SimulatedSession,
)

GUARD = 10.0  # seconds: a hang fails the test instead of blocking the suite
FN = {"name": "lookup", "parameters": {"type": "object", "properties": {"key": {"type": "string"}}}}


def model(script: object) -> ScriptedChatModel:
    return ScriptedChatModel(
        script=script,  # type: ignore[arg-type]
        latency=LatencyModel.zero(),
        backend="interruptible",
    )


async def collect(session: SimulatedSession) -> list[AIMessageChunk]:
    return [chunk async for chunk in session]


def text_of(chunks: Sequence[AIMessageChunk]) -> str:
    return "".join(c.content for c in chunks if isinstance(c.content, str))


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0)

    await asyncio.wait_for(poll(), GUARD)


def result(call_id: str, content: str = "ok") -> ToolMessage:
    return ToolMessage(content, tool_call_id=call_id)


def test_protocols() -> None:
    m = model([ModelTurn(text="hi")])
    assert isinstance(m, InterruptibleChatModel)
    assert isinstance(m.open_session([HumanMessage("hi")]), InterruptibleSession)


def test_stateless_model_cannot_open_sessions() -> None:
    m = ScriptedChatModel(script=[ModelTurn(text="hi")], latency=LatencyModel.zero())
    with pytest.raises(ScriptError, match="stateless"):
        m.open_session([HumanMessage("hi")])


async def test_streams_once_and_ends_with_finish_metadata() -> None:
    session = model([ModelTurn(text="hello world")]).open_session([HumanMessage("hi")])
    chunks = await collect(session)
    assert text_of(chunks) == "hello world"
    last = chunks[-1]
    assert last.response_metadata["finish_reason"] == "stop"
    assert last.usage_metadata is not None
    assert last.usage_metadata["output_tokens"] == ModelTurn(text="hello world").output_tokens
    with pytest.raises(ScriptError, match="streams once"):
        session.__aiter__()


async def test_inject_before_start_is_seen_by_the_first_step() -> None:
    seen: list[list[BaseMessage]] = []

    def responder(messages: Sequence[BaseMessage]) -> ModelTurn:
        seen.append(list(messages))
        return ModelTurn(text="done")

    session = model(responder).open_session([HumanMessage("q")])
    session.inject([HumanMessage("early news")])
    session.inject([])  # nothing: ignored
    assert session.injections == 1
    assert text_of(await collect(session)) == "done"
    assert [m.content for m in seen[0]] == ["q", "early news"]
    assert [type(m) for m in session.context] == [HumanMessage, HumanMessage, AIMessage]


async def test_absorbed_counts_what_the_step_of_each_chunk_had_read() -> None:
    # an injection while a step streams is read at the next step, not by the chunk in flight
    slow = ScriptedChatModel(
        script=[ModelTurn(text=TRAP_BLOCK), ModelTurn(text="done")],
        latency=LatencyModel(ttft_ms=0, tpot_ms=5.0, tool_lo_ms=0, tool_hi_ms=0),
        backend="interruptible",
    )
    session = slow.open_session([HumanMessage("q")])
    read: list[tuple[str, int]] = []

    async def reader() -> None:
        async for chunk in session:
            if isinstance(chunk.content, str) and chunk.content:
                read.append((chunk.content, session.absorbed))

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)  # the first step is decided and streaming
    session.inject([result("c1")])
    await asyncio.wait_for(task, GUARD)
    assert "".join(text for text, _ in read) == TRAP_BLOCK + "done"
    assert {n for text, n in read if text in TRAP_BLOCK} == {0}  # pieces of the first step
    assert read[-1][1] == 1


async def test_fixed_list_script_plays_turns_in_order() -> None:
    call = ModelTurn.calls(("lookup", {"key": "a"}))
    session = model([call, ModelTurn(text="answer")]).open_session([HumanMessage("q")])
    chunks = await collect(session)
    ids = {tc["id"] for c in chunks for tc in c.tool_call_chunks if tc.get("id")}
    assert ids == {call.tool_calls[0]["id"]}
    assert text_of(chunks) == "answer"
    ai = [m for m in session.context if isinstance(m, AIMessage)]
    assert [len(m.tool_calls) for m in ai] == [1, 0]


async def test_fixed_list_that_runs_out_raises() -> None:
    call = ModelTurn.calls(("lookup", {"key": "a"}))
    session = model([call]).open_session([HumanMessage("q")])
    with pytest.raises(ScriptError, match="turn 2"):
        await collect(session)


async def test_trap_waits_for_an_injection() -> None:
    session = model([ModelTurn(text=TRAP_BLOCK), ModelTurn(text="done")]).open_session(
        [HumanMessage("q")]
    )
    chunks: list[AIMessageChunk] = []
    trapped = asyncio.Event()

    async def read() -> None:
        async for chunk in session:
            chunks.append(chunk)
            if TRAP_BLOCK in text_of(chunks):
                trapped.set()

    reader = asyncio.create_task(read())
    await asyncio.wait_for(trapped.wait(), GUARD)
    for _ in range(5):  # it does not go on by itself
        await asyncio.sleep(0)
    assert not reader.done()
    assert "done" not in text_of(chunks)
    session.inject([result("c1")])
    await asyncio.wait_for(reader, GUARD)
    assert text_of(chunks) == TRAP_BLOCK + "done"
    assert any(isinstance(m, ToolMessage) for m in session.context)


async def test_fixed_list_trap_turns_each_wait_for_one_injection() -> None:
    # a second trap turn while still trapped is silent, but it is used up: the next
    # injection moves the script on (it used to re-read the same trap turn forever)
    script = [ModelTurn(text=TRAP_BLOCK), ModelTurn(text=TRAP_BLOCK), ModelTurn(text="done")]
    session = model(script).open_session([HumanMessage("q")])
    chunks: list[AIMessageChunk] = []

    async def read() -> None:
        async for chunk in session:
            chunks.append(chunk)

    def ai_turns() -> int:
        return sum(1 for m in session.context if isinstance(m, AIMessage))

    reader = asyncio.create_task(read())
    await until(lambda: TRAP_BLOCK in text_of(chunks))
    session.inject([result("c1")])
    await until(lambda: ai_turns() == 2)  # the silent trap turn
    assert not reader.done()
    session.inject([result("c2")])
    await asyncio.wait_for(reader, GUARD)
    assert text_of(chunks) == TRAP_BLOCK + "done"  # stayed trapped silently


async def test_task_responder_session_traps_once_and_answers_after_every_result() -> None:
    task = ScriptedTask(
        "two",
        "q",
        (FN,),
        (PlannedCall("0", "lookup", {"key": "a"}), PlannedCall("1", "lookup", {"key": "b"})),
        answer_tokens=4,
    )
    steps: list[int] = []

    class Counting(TaskResponder):
        def next_action(self, messages: Sequence[BaseMessage]) -> ModelTurn:
            steps.append(len(messages))
            return super().next_action(messages)

    session = model(Counting(task, policy="async")).open_session([HumanMessage("q")])
    chunks: list[AIMessageChunk] = []

    async def read() -> None:
        async for chunk in session:
            chunks.append(chunk)

    reader = asyncio.create_task(read())
    await until(lambda: TRAP_BLOCK in text_of(chunks))
    assert len(steps) == 3  # call 0, call 1, trap
    session.inject([result(task.tool_call_id(task.call("0")))])
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(steps) == 4  # one look, still waiting: no spinning
    assert not reader.done()
    session.inject([result(task.tool_call_id(task.call("1")))])
    await asyncio.wait_for(reader, GUARD)
    assert len(steps) == 5
    text = text_of(chunks)
    assert text.count("[TRAP]") == 1  # the trap is not re-emitted
    assert text.endswith(task.final_answer())
    # the silent trap is not written into the context of a responder-driven session
    assert sum(1 for m in session.context if isinstance(m, AIMessage)) == 4


async def test_responder_calling_an_unbound_tool_is_a_script_error() -> None:
    task = ScriptedTask("t", "q", (FN,), (PlannedCall("0", "lookup", {"key": "a"}),))

    @tool
    def other(x: str) -> str:
        """Another tool."""
        return x

    session = model(TaskResponder(task, policy="async")).open_session(
        [HumanMessage("q")], tools=[other]
    )
    with pytest.raises(ScriptError, match="not bound"):
        await collect(session)


async def test_waiting_says_when_the_session_is_blocked_until_an_injection() -> None:
    # the trap, a silent trap again, then the answer: `waiting` is true exactly while the
    # generation is blocked with nothing unread (what the nodes' stall detectors read)
    script = [ModelTurn(text=TRAP_BLOCK), ModelTurn(text=TRAP_BLOCK), ModelTurn(text="done")]
    session = model(script).open_session([HumanMessage("q")])
    assert session.waiting is False
    chunks: list[AIMessageChunk] = []

    async def read() -> None:
        async for chunk in session:
            chunks.append(chunk)

    reader = asyncio.create_task(read())
    await until(lambda: session.waiting)
    assert text_of(chunks) == TRAP_BLOCK and session.absorbed == session.injections == 0
    session.inject([result("c1")])
    assert session.waiting  # woken, but not yet run: the stall detectors also check absorbed
    await until(lambda: session.absorbed == 1 and session.waiting)  # trapped again, silently
    assert text_of(chunks) == TRAP_BLOCK
    session.inject([result("c2")])
    await asyncio.wait_for(reader, GUARD)
    assert session.waiting is False and text_of(chunks) == TRAP_BLOCK + "done"
