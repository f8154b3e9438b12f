"""Asynchronous function calling: AsyncToolCallingNode, its back-ends and compositions."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Annotated, Any

import openai
import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.tools import BaseTool, ToolException, tool
from langgraph.errors import _mark_invalid_resume
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import InjectedState, ToolNode
from langgraph.types import Send
from pydantic import BaseModel, Field, ValidationError

import langgraph_speculative.async_calling as async_calling_wing
from langgraph_speculative.async_calling.cml import TRAP_BLOCK, render_call
from langgraph_speculative.async_calling.interrupts import LatencyEstimator, is_pending_placeholder
from langgraph_speculative.async_calling.run import AsyncRun
from langgraph_speculative.async_calling.token_monitor import TokenMonitor
from langgraph_speculative.bench.timeline import TimelineRecorder
from langgraph_speculative.core.executor import ToolExecutor
from langgraph_speculative.core.ledger import CallLedger
from langgraph_speculative.errors import (
    AsyncOnlyError,
    RequestLimitError,
    SpeculativeError,
    StalledError,
    WaitTimeoutError,
)
from langgraph_speculative.integrations import (
    LatencyModel,
    ModelTurn,
    PlannedCall,
    ScriptedChatModel,
    ScriptedTask,
    TaskResponder,
)
from langgraph_speculative.integrations.sim.server import SimServer
from langgraph_speculative.integrations.sim.sessions import SimulatedSession
from langgraph_speculative.integrations.sim.tools import ToolJournal, make_simulated_tools
from langgraph_speculative.nodes import (
    AsyncToolCallingMiddleware,
    AsyncToolCallingNode,
    async_tools_condition,
    create_async_agent,
)

GUARD = 20.0  # seconds: a hang fails the test instead of blocking the suite
BACKENDS = ["stateless", "interruptible"]
ZERO = LatencyModel.zero()


def fn(name: str, *params: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"The {name} tool.",
        "parameters": {
            "type": "object",
            "properties": {p: {"type": "string"} for p in params},
            "required": list(params),
        },
    }


def tool_latency(ms: float) -> LatencyModel:
    return LatencyModel(ttft_ms=0, tpot_ms=0, tool_lo_ms=ms, tool_hi_ms=ms)


def scripted(script: Any, backend: str = "stateless", latency: LatencyModel = ZERO) -> Any:
    return ScriptedChatModel(script=script, latency=latency, backend=backend)  # type: ignore[arg-type]


def assert_openai_valid(messages: Sequence[BaseMessage]) -> None:
    """Every AIMessage with calls is followed by exactly its calls' ToolMessages."""
    seen_ids: list[str] = []
    i = 0
    while i < len(messages):
        msg = messages[i]
        assert not isinstance(msg, ToolMessage), f"ToolMessage without its call at {i}: {msg!r}"
        i += 1
        if not isinstance(msg, AIMessage):
            continue
        ids = [c["id"] for c in msg.tool_calls] + [c["id"] for c in msg.invalid_tool_calls]
        assert all(ids), f"a call without id: {msg!r}"
        seen_ids += [str(x) for x in ids]
        answers: list[str] = []
        while i < len(messages) and isinstance(messages[i], ToolMessage):
            answers.append(messages[i].tool_call_id)  # type: ignore[union-attr]
            i += 1
        assert sorted(answers) == sorted(str(x) for x in ids), (ids, answers)
    assert len(seen_ids) == len(set(seen_ids)), f"call ids repeat: {seen_ids}"


def tool_messages(messages: Sequence[BaseMessage]) -> dict[str, ToolMessage]:
    return {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}


async def guarded(awaitable: Any) -> Any:
    """Await ``awaitable``; fail the test if it hangs (instead of blocking the suite)."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=GUARD)
    if not done:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        pytest.fail(f"hung for {GUARD} s")
    return task.result()


class Recorder:
    """A responder wrapper that records every request the model got."""

    def __init__(self, inner: Callable[[Sequence[BaseMessage]], ModelTurn]) -> None:
        self.inner = inner
        self.requests: list[list[BaseMessage]] = []

    def __call__(self, messages: Sequence[BaseMessage]) -> ModelTurn:
        self.requests.append(list(messages))
        return self.inner(messages)


def fixed(*turns: ModelTurn) -> Callable[[Sequence[BaseMessage]], ModelTurn]:
    """A fixed script as a responder: turn k answers the request after k AI messages."""

    def respond(messages: Sequence[BaseMessage]) -> ModelTurn:
        return turns[sum(1 for m in messages if isinstance(m, AIMessage))]

    return respond


# -- tasks -----------------------------------------------------------------------------------
CHAIN = ScriptedTask(
    "chain",
    "a, then b, then c; and d",
    (fn("step", "key"),),
    (
        PlannedCall("a", "step", {"key": "a"}),
        PlannedCall("b", "step", {"key": "b"}, depends_on=("a",)),
        PlannedCall("c", "step", {"key": "c"}, depends_on=("b",)),
        PlannedCall("d", "step", {"key": "d"}),
    ),
    answer_tokens=6,
)
PAIR = ScriptedTask(
    "pair",
    "weather in Paris and Rome",
    (fn("get_weather", "city"),),
    (
        PlannedCall("0", "get_weather", {"city": "Paris"}),
        PlannedCall("1", "get_weather", {"city": "Rome"}),
    ),
    answer_tokens=6,
)


def task_tools(
    task: ScriptedTask, ms: float = 0.0, journal: ToolJournal | None = None
) -> list[BaseTool]:
    return list(make_simulated_tools(task.functions, latency=tool_latency(ms), journal=journal))


# -- basics ----------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
async def test_chain_task_end_to_end(backend: str) -> None:
    journal = ToolJournal()
    model = scripted(TaskResponder(CHAIN, policy="async"), backend)
    node = AsyncToolCallingNode(model, task_tools(CHAIN, 2, journal))
    assert node.backend == backend
    out = await guarded(node.arun([HumanMessage(CHAIN.question)]))
    assert out[-1].content == CHAIN.final_answer()
    assert_openai_valid([HumanMessage(CHAIN.question), *out])
    assert Counter(e.call_id for e in journal.entries) == {
        CHAIN.tool_call_id(c): 1 for c in CHAIN.calls
    }
    assert not any(is_pending_placeholder(m) for m in out)
    assert all(TRAP_BLOCK not in str(m.content) for m in out)


def test_bad_options_are_rejected() -> None:
    model = scripted([ModelTurn(text="x")])
    with pytest.raises(ValueError, match="until"):
        AsyncToolCallingNode(model, [], until="forever")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend"):
        AsyncToolCallingNode(model, [], backend="quantum")  # type: ignore[arg-type]


async def test_interruptible_needs_a_session_model() -> None:
    model = ChunkModel(turns=[[AIMessageChunk(content="x")]])
    node = AsyncToolCallingNode(model, [], backend="interruptible")
    with pytest.raises(SpeculativeError, match="cannot open interruptible sessions"):
        await node.arun([HumanMessage("q")])


@pytest.mark.parametrize("until", ["answer", "turn"])
def test_a_sync_invoke_names_ainvoke(until: str) -> None:
    journal = ToolJournal()
    model = scripted(TaskResponder(PAIR, policy="async"))
    node = AsyncToolCallingNode(model, task_tools(PAIR, 0, journal), until=until)  # type: ignore[arg-type]
    graph = create_async_agent(model, task_tools(PAIR, 0, journal)).compile()
    for run in (graph.invoke, node.invoke):
        with pytest.raises(
            AsyncOnlyError, match=r"AsyncToolCallingNode is async only.*ainvoke"
        ) as info:
            run({"messages": [HumanMessage(PAIR.question)]})
        assert isinstance(info.value, SpeculativeError) and isinstance(info.value, TypeError)
    assert not journal.entries  # no tool ran


async def test_the_node_is_named_and_runs_as_before() -> None:
    node = AsyncToolCallingNode(scripted(TaskResponder(PAIR, policy="async")), task_tools(PAIR))
    builder = StateGraph(MessagesState)
    builder.add_node(node)  # named after the node, as before it was a runnable
    builder.add_edge(START, "async_tool_calling")
    builder.add_edge("async_tool_calling", END)
    out = await guarded(builder.compile().ainvoke({"messages": [HumanMessage(PAIR.question)]}))
    assert out["messages"][-1].content == PAIR.final_answer()
    direct = await guarded(node.ainvoke({"messages": [HumanMessage(PAIR.question)]}))
    assert direct["messages"][-1].content == PAIR.final_answer()
    assert_openai_valid([HumanMessage(PAIR.question), *direct["messages"]])


async def test_async_run_relays_a_stream_and_starts_its_calls() -> None:
    node = AsyncToolCallingNode(ChunkModel(turns=[]), [lookup], until="turn")
    chunks = [
        AIMessageChunk(content="Looking. ", id="m1"),
        tc(0, "", "c1", "lookup"),
        tc(0, '{"key": "a"}'),
        tc(1, '{"key": "b"}', "c1", "lookup"),  # a reused id: made unique
    ]

    async def stream() -> AsyncIterator[AIMessageChunk]:
        for chunk in chunks:
            yield chunk

    async with ToolExecutor(node.tools) as executor:
        run = AsyncRun(node, [HumanMessage("q")], executor, None, only_known_tools=True)
        message = await guarded(run.relay(stream()))
        await guarded(run.wait_all())
    assert message.content == "Looking. " and message.id == "m1"
    assert [c["id"] for c in message.tool_calls] == ["c1", "c1_dup1"]
    assert {k: m.content for k, m in run.results.items()} == {
        "c1": "value of a",
        "c1_dup1": "value of b",
    }
    assert async_calling_wing.AsyncRun is AsyncRun


# -- critical sections -----------------------------------------------------------------------
class RecordingSession(SimulatedSession):
    """Records every chunk it yields and, at each injection, how many it had yielded."""

    def __init__(self, model: ScriptedChatModel, messages: Sequence[BaseMessage]) -> None:
        super().__init__(model, messages)
        self.yielded: list[AIMessageChunk] = []
        self.injected: list[tuple[int, float, list[str]]] = []
        self.yield_times: list[float] = []

    def inject(self, messages: Sequence[BaseMessage]) -> None:
        ids = [m.tool_call_id for m in messages if isinstance(m, ToolMessage)]
        self.injected.append((len(self.yielded), time.time(), ids))
        super().inject(messages)

    def __aiter__(self) -> AsyncIterator[AIMessageChunk]:
        inner = super().__aiter__()

        async def gen() -> AsyncIterator[AIMessageChunk]:
            async for chunk in inner:
                self.yielded.append(chunk)
                self.yield_times.append(time.time())
                yield chunk

        return gen()


class RecordingModel(ScriptedChatModel):
    sessions: list[RecordingSession] = Field(default_factory=list)

    def open_session(
        self, messages: Sequence[BaseMessage], *, tools: Sequence[BaseTool] = ()
    ) -> RecordingSession:
        base = super().open_session(messages, tools=tools)
        session = RecordingSession(base._model, messages)
        self.sessions.append(session)
        return session


class GateHandler(AsyncCallbackHandler):
    """Opens ``gate`` on the first chunk of a ``write`` call, then yields to the event loop.

    So a result becomes ready exactly while the node handles the chunk that starts a call.
    """

    def __init__(self, gate: asyncio.Event) -> None:
        self.gate = gate

    async def on_llm_new_token(
        self, token: str, *, chunk: ChatGenerationChunk | None = None, **kwargs: Any
    ) -> None:
        message = chunk.message if chunk is not None else None
        if isinstance(message, AIMessageChunk) and any(
            c.get("name") == "write" for c in message.tool_call_chunks
        ):
            self.gate.set()
            for _ in range(20):
                await asyncio.sleep(0)


@pytest.mark.parametrize("gated", [False, True])
async def test_interrupts_are_never_delivered_inside_a_call(gated: bool) -> None:
    long_text = "lorem ipsum " * 80  # about 240 tokens: 240 ms to write at 1 ms a token
    task = ScriptedTask(
        "crit",
        "q",
        (fn("fast", "key"), fn("write", "text")),
        (PlannedCall("f", "fast", {"key": "x"}), PlannedCall("w", "write", {"text": long_text})),
        answer_tokens=4,
    )

    gate = asyncio.Event()

    @tool
    async def fast(key: str) -> str:
        """Done while the long call is being written."""
        if gated:
            await gate.wait()  # done right as the long call starts
        else:
            await asyncio.sleep(0.02)  # done in the middle of the long call
        return "fast result"

    @tool
    async def write(text: str) -> str:
        """Instant too; its call takes long to write."""
        return "written"

    model = RecordingModel(
        script=TaskResponder(task, policy="async"),
        latency=LatencyModel(ttft_ms=0, tpot_ms=1, tool_lo_ms=0, tool_hi_ms=0),
        backend="interruptible",
    )
    ledger = CallLedger()
    config = {"callbacks": [GateHandler(gate)]} if gated else None
    node = AsyncToolCallingNode(model, [fast, write])
    out = await guarded(node.arun([HumanMessage("q")], config, ledger=ledger))  # type: ignore[arg-type]
    assert out[-1].content == task.final_answer()
    (session,) = model.sessions
    f = ledger.get(task.tool_call_id(task.call("f")))
    w = ledger.get(task.tool_call_id(task.call("w")))
    assert f.finished_at is not None and w.finished_at is not None
    # the fast result was ready while the long call was still being written ...
    w_started = next(
        t
        for c, t in zip(session.yielded, session.yield_times, strict=True)
        if any(x.get("id") == w.id for x in c.tool_call_chunks)
    )
    assert w_started <= f.finished_at < w.created_at
    assert session.injected, "results were never injected"
    for count, _, _ in session.injected:
        monitor = TokenMonitor()
        for chunk in session.yielded[:count]:
            monitor.feed(chunk)
        assert not monitor.in_call, f"injected inside a call, after chunk {count}"
    # ... and was delivered after the call was complete
    (when,) = [t for _, t, ids in session.injected if f.id in ids]
    assert when >= w.created_at
    delivered = {i for _, _, ids in session.injected for i in ids}
    assert delivered == {f.id, w.id}
    assert_openai_valid([HumanMessage("q"), *out])


# -- traps -----------------------------------------------------------------------------------
async def test_interruptible_trap_waits_without_spinning_and_answers_last() -> None:
    task = ScriptedTask(
        "two",
        "q",
        (fn("lookup", "key"),),
        (PlannedCall("x", "lookup", {"key": "x"}), PlannedCall("y", "lookup", {"key": "yy"})),
        answer_tokens=4,
    )
    steps = Counter[str]()

    class Counting(TaskResponder):
        def next_action(self, messages: Sequence[BaseMessage]) -> ModelTurn:
            steps["all"] += 1
            return super().next_action(messages)

    @tool
    async def lookup(key: str) -> str:
        """Takes 10 ms per character of the key."""
        await asyncio.sleep(0.01 * len(key))
        return key

    model = RecordingModel(
        script=Counting(task, policy="async"), latency=ZERO, backend="interruptible"
    )
    ledger = CallLedger()
    out = await guarded(
        AsyncToolCallingNode(model, [lookup]).arun([HumanMessage("q")], ledger=ledger)
    )
    (session,) = model.sessions
    text = "".join(str(c.content) for c in session.yielded)
    assert text.count("[TRAP]") == 1
    assert steps["all"] <= 5  # x, y, trap, (x arrives: still waiting), answer
    answer_started = next(
        t
        for c, t in zip(session.yielded, session.yield_times, strict=True)
        if str(c.content).startswith("Done")
    )
    assert all(r.finished_at is not None and r.finished_at <= answer_started for r in ledger)
    assert out[-1].content == task.final_answer()


async def test_stateless_final_answer_waits_for_every_result() -> None:
    recorder = Recorder(TaskResponder(PAIR, policy="async"))
    ledger = CallLedger()
    node = AsyncToolCallingNode(scripted(recorder), task_tools(PAIR, 5))
    out = await guarded(node.arun([HumanMessage(PAIR.question)], ledger=ledger))
    assert out[-1].content == PAIR.final_answer()
    final_prompt = recorder.requests[-1]
    assert not any(is_pending_placeholder(m) for m in final_prompt)
    assert set(tool_messages(final_prompt)) == {PAIR.tool_call_id(c) for c in PAIR.calls}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_trap_with_nothing_outstanding_is_an_error(backend: str) -> None:
    model = scripted([ModelTurn(text="Let me wait. " + TRAP_BLOCK)], backend)
    with pytest.raises(SpeculativeError, match="no call is outstanding"):
        await guarded(AsyncToolCallingNode(model, []).arun([HumanMessage("q")]))


async def test_endless_calls_hit_max_model_requests() -> None:
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    model = scripted(lambda messages: ModelTurn.calls(("ping", {})))
    node = AsyncToolCallingNode(model, [ping], max_model_requests=3)
    with pytest.raises(RequestLimitError, match="3 requests") as info:
        await guarded(node.arun([HumanMessage("q")]))
    assert isinstance(info.value, SpeculativeError) and info.value.limit == 3


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_early_answer_is_asked_again_once_results_are_in(backend: str) -> None:
    # the model answers while a call still runs; the node waits for the result and asks
    # the model again, so the final answer sees every result
    @tool
    async def fast() -> str:
        """Instant."""
        return "fast"

    @tool
    async def slow() -> str:
        """Slow."""
        await asyncio.sleep(0.05)
        return "slow"

    fast.metadata = {"expected_ms": 1}
    slow.metadata = {"expected_ms": 10_000}
    first = ModelTurn.calls(("fast", {}), ("slow", {}))

    def respond(messages: Sequence[BaseMessage]) -> ModelTurn:
        if not any(isinstance(m, AIMessage) for m in messages):
            return first
        results = {m.content for m in messages if isinstance(m, ToolMessage)}
        return ModelTurn(text="final" if {"fast", "slow"} <= results else "too early")

    recorder = Recorder(respond)
    node = AsyncToolCallingNode(
        scripted(recorder, backend),
        [fast, slow],
        estimator=LatencyEstimator.for_tools([fast, slow], ttft_ms=1),
    )
    out = await guarded(node.arun([HumanMessage("q")]))
    assert [m.content for m in out if isinstance(m, AIMessage)][-1] == "final"
    last_prompt = recorder.requests[-1]
    assert [m.content for m in tool_messages(last_prompt).values()] == ["fast", "slow"]
    assert_openai_valid([HumanMessage("q"), *out])


# -- dependencies ----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
async def test_dependent_calls_are_emitted_after_their_inputs_arrived(backend: str) -> None:
    ledger = CallLedger()
    model = scripted(TaskResponder(CHAIN, policy="async"), backend)
    node = AsyncToolCallingNode(model, task_tools(CHAIN, 5))
    out = await guarded(node.arun([HumanMessage(CHAIN.question)], ledger=ledger))
    assert out[-1].content == CHAIN.final_answer()

    def rec(cid: str) -> Any:
        return ledger.get(CHAIN.tool_call_id(CHAIN.call(cid)))

    a, b, c, d = (rec(x) for x in "abcd")
    assert a.finished_at is not None and b.finished_at is not None
    assert b.created_at >= a.finished_at
    assert c.created_at >= b.finished_at
    assert d.created_at < a.finished_at  # independent: emitted at once, next to a


# -- cancellation ----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
async def test_cancelling_the_run_cancels_every_tool(backend: str) -> None:
    started: list[str] = []
    cancelled: list[str] = []
    both = asyncio.Event()

    @tool
    async def get_weather(city: str) -> str:
        """Sleeps for a long time."""
        started.append(city)
        if len(started) == 2:
            both.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(city)
            raise
        return "never"

    model = scripted(TaskResponder(PAIR, policy="async"), backend)
    graph = create_async_agent(model, [get_weather]).compile()
    before = asyncio.all_tasks()
    run = asyncio.create_task(graph.ainvoke({"messages": [HumanMessage(PAIR.question)]}))
    await guarded(both.wait())
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    leftover = [t for t in asyncio.all_tasks() - before if not t.done()]
    assert leftover == [], leftover
    assert sorted(cancelled) == ["Paris", "Rome"]


# -- tool errors and timeouts ----------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
async def test_tool_errors_and_timeouts_become_error_messages(backend: str) -> None:
    task = ScriptedTask(
        "errs",
        "q",
        (fn("boom", "key"), fn("hang", "key"), fn("fine", "key")),
        (
            PlannedCall("0", "boom", {"key": "x"}),
            PlannedCall("1", "hang", {"key": "x"}),
            PlannedCall("2", "fine", {"key": "x"}),
        ),
        answer_tokens=4,
    )

    @tool
    async def boom(key: str) -> str:
        """Fails."""
        raise ValueError("kaboom")

    @tool
    async def hang(key: str) -> str:
        """Never returns in time."""
        await asyncio.sleep(30)
        return "late"

    @tool
    async def fine(key: str) -> str:
        """Works."""
        return "fine"

    model = scripted(TaskResponder(task, policy="async"), backend)
    node = AsyncToolCallingNode(model, [boom, hang, fine], timeout=0.05)
    out = await guarded(node.arun([HumanMessage("q")]))
    results = tool_messages(out)
    err = results[task.tool_call_id(task.call("0"))]
    assert err.status == "error" and "kaboom" in str(err.content)
    late = results[task.tool_call_id(task.call("1"))]
    assert late.status == "error" and "timed out" in str(late.content)
    ok = results[task.tool_call_id(task.call("2"))]
    assert ok.status == "success" and ok.content == "fine"
    assert out[-1].content == task.final_answer()  # the model went on
    assert_openai_valid([HumanMessage("q"), *out])


@pytest.mark.parametrize("backend", BACKENDS)
async def test_unhandled_tool_error_propagates_and_does_not_hang(backend: str) -> None:
    cancelled: list[str] = []

    @tool
    async def get_weather(city: str) -> str:
        """Paris fails (once the model is trapped, waiting); Rome takes long."""
        if city == "Paris":
            await asyncio.sleep(0.02)
            raise ValueError("no weather in Paris")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(city)
            raise
        return "sunny"

    model = scripted(TaskResponder(PAIR, policy="async"), backend)
    node = AsyncToolCallingNode(model, [get_weather], handle_tool_errors=False)
    with pytest.raises(ValueError, match="no weather in Paris"):
        await guarded(node.arun([HumanMessage(PAIR.question)]))
    assert cancelled == ["Rome"]


# -- malformed calls -------------------------------------------------------------------------
class ChunkModel(BaseChatModel):
    """Streams fixed chunk lists, one per request; records what it was sent."""

    turns: list[list[AIMessageChunk]]
    requests: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "chunks"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ChunkModel:  # type: ignore[override]
        return self

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        raise NotImplementedError

    async def _astream(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        turn = self.turns[len(self.requests)]
        self.requests.append(list(messages))
        for chunk in turn:
            yield ChatGenerationChunk(message=chunk)


def tc(index: int, args: str, id: str | None = None, name: str | None = None) -> AIMessageChunk:
    return AIMessageChunk(
        content="",
        tool_call_chunks=[{"index": index, "id": id, "name": name, "args": args}],
    )


@tool
async def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


async def test_native_args_that_never_parse_become_an_error_message() -> None:
    model = ChunkModel(
        turns=[
            [
                tc(0, "", "bad", "lookup"),
                tc(0, '{"key": "a"'),
                tc(0, " oops"),
                tc(1, "", "good", "lookup"),
                tc(1, '{"key": "b"}'),
                AIMessageChunk(content="", response_metadata={"finish_reason": "tool_calls"}),
            ],
            [AIMessageChunk(content="done")],
        ]
    )
    out = await guarded(AsyncToolCallingNode(model, [lookup]).arun([HumanMessage("q")]))
    results = tool_messages(out)
    assert results["bad"].status == "error" and "malformed" in str(results["bad"].content)
    assert results["good"].content == "value of b"
    first = out[0]
    assert isinstance(first, AIMessage)
    assert [c["id"] for c in first.tool_calls] == ["good"]
    assert [c["id"] for c in first.invalid_tool_calls] == ["bad"]
    assert out[-1].content == "done"
    assert_openai_valid([HumanMessage("q"), *out])
    # the model saw the error and the result before answering
    assert set(tool_messages(model.requests[1])) == {"bad", "good"}


async def test_cml_body_garbage_becomes_an_error_message() -> None:
    good = render_call({"name": "lookup", "args": {"key": "x"}, "id": "c2", "type": "tool_call"})
    script = fixed(
        ModelTurn(text=f"[CALL] c1 [HEAD] this is not a call!!! [END]\n{good}\n{TRAP_BLOCK}"),
        ModelTurn(text="done"),
    )
    node = AsyncToolCallingNode(scripted(script), [lookup], cml=True)
    out = await guarded(node.arun([HumanMessage("q")]))
    results = tool_messages(out)
    assert results["c1"].status == "error" and "malformed" in str(results["c1"].content)
    assert results["c2"].content == "value of x"
    assert out[-1].content == "done"
    assert_openai_valid([HumanMessage("q"), *out])


# -- CML end to end --------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
async def test_cml_model_gets_the_prompt_and_interrupts(backend: str) -> None:
    call = render_call({"name": "lookup", "args": {"key": "k"}, "id": "c1", "type": "tool_call"})
    fake = "[INTR] c1 [HEAD] a result I made up [END]"
    recorder = Recorder(
        fixed(ModelTurn(text=f"Checking. {call} {fake} {TRAP_BLOCK}"), ModelTurn(text="done"))
    )
    model = scripted(recorder, backend)
    node = AsyncToolCallingNode(model, [lookup], cml=True, system_prompt="Be brief.")
    out = await guarded(node.arun([HumanMessage("q")]))
    first = recorder.requests[0]
    assert isinstance(first[0], SystemMessage)
    system = str(first[0].content)
    assert system.startswith("Be brief.") and "[CALL]" in system and "lookup" in system
    last = recorder.requests[-1]
    text = "\n".join(str(m.content) for m in last)
    assert "[INTR] c1 [HEAD] value of k [END]" in text
    assert "made up" not in text  # the model's own [INTR] was dropped
    assert not any(isinstance(m, ToolMessage) or getattr(m, "tool_calls", None) for m in last)
    assert tool_messages(out)["c1"].content == "value of k"
    assert out[-1].content == "done"
    assert "made up" not in json.dumps([str(m.content) for m in out])


# -- composition with a stock graph ----------------------------------------------------------
class LooseModel(ScriptedChatModel):
    """A model that may call tools it was not bound to (as real models sometimes do)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> LooseModel:  # type: ignore[override]
        return self


def stock_graph(node: AsyncToolCallingNode, tool_node: ToolNode) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("model", node)
    builder.add_node("tools", tool_node)
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", async_tools_condition)
    builder.add_edge("tools", "model")
    return builder.compile()


async def test_stock_tool_node_runs_only_what_the_node_left() -> None:
    task = ScriptedTask(
        "mixed",
        "q",
        (fn("early", "key"), fn("later", "key")),
        (
            PlannedCall("0", "early", {"key": "a"}),
            PlannedCall("1", "later", {"key": "b"}),
            PlannedCall("2", "early", {"key": "c"}, depends_on=("1",)),
        ),
        answer_tokens=4,
    )
    runs = Counter[str]()

    @tool
    async def early(key: str) -> str:
        """Run by the node."""
        runs[f"early:{key}"] += 1
        return f"early {key}"

    @tool
    async def later(key: str) -> str:
        """Only the ToolNode has it."""
        runs[f"later:{key}"] += 1
        return f"later {key}"

    model = LooseModel(script=TaskResponder(task, policy="parallel"), latency=ZERO)
    node = AsyncToolCallingNode(model, [early], until="turn")
    graph = stock_graph(node, ToolNode([early, later]))
    out = await guarded(graph.ainvoke({"messages": [HumanMessage("q")]}))
    messages = out["messages"]
    assert messages[-1].content == task.final_answer()
    assert runs == {"early:a": 1, "later:b": 1, "early:c": 1}
    assert_openai_valid(messages)
    later_id = task.tool_call_id(task.call("1"))
    assert tool_messages(messages)[later_id].content == "later b"  # not an error


async def test_turn_node_output_and_routing() -> None:
    model = LooseModel(script=TaskResponder(PAIR, policy="parallel"), latency=ZERO)
    node = AsyncToolCallingNode(model, [], until="turn")  # knows no tool: leaves both
    out = await guarded(node.arun([HumanMessage(PAIR.question)]))
    assert len(out) == 1 and isinstance(out[0], AIMessage) and len(out[0].tool_calls) == 2
    routed = async_tools_condition({"messages": [HumanMessage("q"), *out]})
    assert isinstance(routed, list) and all(isinstance(s, Send) for s in routed)
    assert [s.node for s in routed] == ["tools", "tools"]
    assert [s.arg[0]["id"] for s in routed] == [c["id"] for c in out[0].tool_calls]
    assert async_tools_condition([HumanMessage("q"), *out]) == "tools"  # list state
    answered = [*out, ToolMessage("x", tool_call_id=out[0].tool_calls[0]["id"])]
    routed = async_tools_condition({"messages": answered}, tools_node="my_tools")
    assert [s.node for s in routed] == ["my_tools"]  # type: ignore[union-attr]
    both = [*answered, ToolMessage("y", tool_call_id=out[0].tool_calls[1]["id"])]
    assert async_tools_condition({"messages": both}) == "model"
    assert async_tools_condition({"messages": both}, model_node="agent") == "agent"
    assert async_tools_condition({"messages": [*both, AIMessage("bye")]}) == END
    assert async_tools_condition({"messages": [HumanMessage("hi")]}) == END


async def test_tools_needing_graph_state_are_left_to_the_tool_node() -> None:
    task = ScriptedTask(
        "inj",
        "q",
        (fn("count_messages"), fn("get_weather", "city")),
        (PlannedCall("0", "count_messages", {}), PlannedCall("1", "get_weather", {"city": "X"})),
        answer_tokens=4,
    )

    @tool
    def count_messages(state: Annotated[dict[str, Any], InjectedState]) -> str:
        """Count the conversation's messages."""
        return str(len(state["messages"]))

    @tool
    async def get_weather(city: str) -> str:
        """Weather."""
        return "sunny"

    tools = [count_messages, get_weather]
    model = scripted(TaskResponder(task, policy="parallel"))
    node = AsyncToolCallingNode(model, tools, until="turn")
    out = await guarded(
        stock_graph(node, ToolNode(tools)).ainvoke({"messages": [HumanMessage("q")]})
    )
    results = tool_messages(out["messages"])
    assert results[task.tool_call_id(task.call("0"))].content == "3"  # state via ToolNode
    assert results[task.tool_call_id(task.call("1"))].content == "sunny"
    assert out["messages"][-1].content == task.final_answer()


async def test_answer_mode_answers_unknown_tools_with_an_error() -> None:
    model = LooseModel(
        script=fixed(ModelTurn.calls(("nope", {})), ModelTurn(text="ok")), latency=ZERO
    )
    out = await guarded(AsyncToolCallingNode(model, [lookup]).arun([HumanMessage("q")]))
    (err,) = tool_messages(out).values()
    assert err.status == "error" and "nope" in str(err.content)
    assert out[-1].content == "ok"


# -- create_agent middleware -----------------------------------------------------------------
async def test_middleware_starts_calls_mid_stream_and_runs_each_once() -> None:
    journal = ToolJournal()
    task = ScriptedTask(
        "mw",
        "q",
        (fn("lookup", "key"),),
        (
            PlannedCall("0", "lookup", {"key": "a" * 60}),
            PlannedCall("1", "lookup", {"key": "b" * 60}),
            PlannedCall("2", "lookup", {"key": "c"}, depends_on=("0",)),
        ),
        answer_tokens=8,
    )
    tools = task_tools(task, 0, journal)
    model = ScriptedChatModel(
        script=TaskResponder(task, policy="parallel"),
        latency=LatencyModel(ttft_ms=1, tpot_ms=1, tool_lo_ms=0, tool_hi_ms=0),
    )
    agent = create_agent(model, tools, middleware=[AsyncToolCallingMiddleware()])
    recorder = TimelineRecorder()
    out = await guarded(agent.ainvoke({"messages": [HumanMessage("q")]}, {"callbacks": [recorder]}))
    messages = out["messages"]
    assert messages[-1].content == task.final_answer()
    assert_openai_valid(messages)
    assert Counter(e.call_id for e in journal.entries) == {
        task.tool_call_id(c): 1 for c in task.calls
    }
    spans = recorder.spans()
    models = [s for s in spans if s.kind == "model"]
    tool_spans = [s for s in spans if s.kind == "tool"]
    assert len(models) == 3  # one span per model request: the wrapper is not traced
    assert len(tool_spans) == 3
    first_model = models[0]
    assert min(s.start for s in tool_spans) < first_model.end  # started mid-stream


async def test_middleware_leaves_unknown_tools_to_the_tool_node() -> None:
    runs = Counter[str]()

    @tool
    async def get_weather(city: str) -> str:
        """Weather."""
        runs[city] += 1
        return f"sunny in {city}"

    model = ScriptedChatModel(script=TaskResponder(PAIR, policy="parallel"), latency=ZERO)
    # the middleware runs no tool early: the agent's tool node runs them, once each
    agent = create_agent(model, [get_weather], middleware=[AsyncToolCallingMiddleware(tools=[])])
    out = await guarded(agent.ainvoke({"messages": [HumanMessage(PAIR.question)]}))
    assert out["messages"][-1].content == PAIR.final_answer()
    assert runs == {"Paris": 1, "Rome": 1}
    assert_openai_valid(out["messages"])


async def test_middleware_leaves_tools_needing_graph_state_to_the_tool_node() -> None:
    task = ScriptedTask(
        "mwinj",
        "q",
        (fn("count_messages"), fn("get_weather", "city")),
        (PlannedCall("0", "count_messages", {}), PlannedCall("1", "get_weather", {"city": "X"})),
        answer_tokens=4,
    )
    runs = Counter[str]()

    @tool
    def count_messages(state: Annotated[dict[str, Any], InjectedState]) -> str:
        """Count the conversation's messages."""
        runs["count"] += 1
        return str(len(state["messages"]))

    @tool
    async def get_weather(city: str) -> str:
        """Weather."""
        runs["weather"] += 1
        return "sunny"

    model = ScriptedChatModel(script=TaskResponder(task, policy="parallel"), latency=ZERO)
    agent = create_agent(
        model, [count_messages, get_weather], middleware=[AsyncToolCallingMiddleware()]
    )
    out = await guarded(agent.ainvoke({"messages": [HumanMessage("q")]}))
    messages = out["messages"]
    assert messages[-1].content == task.final_answer()
    assert runs == {"count": 1, "weather": 1}
    results = tool_messages(messages)
    assert results[task.tool_call_id(task.call("0"))].status == "success"
    assert_openai_valid(messages)


async def test_middleware_keeps_structured_output_calls() -> None:
    from langchain.agents.structured_output import ToolStrategy
    from pydantic import BaseModel

    class Weather(BaseModel):
        city: str
        sky: str

    @tool
    async def get_weather(city: str) -> str:
        """Weather."""
        return "sunny"

    script = [
        ModelTurn.calls(("get_weather", {"city": "Paris"})),
        ModelTurn.calls(("Weather", {"city": "Paris", "sky": "sunny"})),
    ]
    model = ScriptedChatModel(script=script, latency=ZERO)
    agent = create_agent(
        model,
        [get_weather],
        response_format=ToolStrategy(Weather),
        middleware=[AsyncToolCallingMiddleware()],
    )
    out = await guarded(agent.ainvoke({"messages": [HumanMessage("q")]}))
    assert out["structured_response"] == Weather(city="Paris", sky="sunny")
    assert_openai_valid(out["messages"])


# -- deterministic ids and placeholders ------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
async def test_reapplying_the_output_replaces_instead_of_duplicating(backend: str) -> None:
    model = scripted(TaskResponder(PAIR, policy="async"), backend)
    node = AsyncToolCallingNode(model, task_tools(PAIR))
    start = [HumanMessage(PAIR.question, id="h1")]
    first = await guarded(node.arun(start))
    state = add_messages(start, first)  # type: ignore[arg-type]
    again = await guarded(node.arun(start))  # a re-run of the node on the same input
    merged = add_messages(state, again)  # type: ignore[arg-type]
    assert [m.id for m in merged] == [m.id for m in state]
    assert len(merged) == len(state)
    assert_openai_valid(merged)
    # the graph runs the node inside a graph the same way
    graph = create_async_agent(model, task_tools(PAIR)).compile()
    out = await guarded(graph.ainvoke({"messages": start}))
    assert [m.id for m in out["messages"]] == [m.id for m in state]


async def test_placeholders_are_replaced_by_results() -> None:
    # a slow and a fast chain: the fast result prompts an early request, in which the slow
    # call is answered by a placeholder; the final transcript has the real result
    result = await run_two_chains(margin=1.0)
    prompts = result["recorder"].requests
    slow_id = result["slow_id"]
    early = [p for p in prompts if slow_id in tool_messages(p)]
    placeholders = [
        tool_messages(p)[slow_id]
        for p in early
        if is_pending_placeholder(tool_messages(p)[slow_id])
    ]
    assert placeholders, "no request was made while the slow call ran"
    final = tool_messages(result["out"])[slow_id]
    assert not is_pending_placeholder(final) and final.content == "slow done"
    assert final.id == placeholders[0].id  # the same id: add_messages replaces it
    assert not any(is_pending_placeholder(m) for m in result["out"])


# -- stateless batching ----------------------------------------------------------------------
TWO_CHAINS = ScriptedTask(
    "chains",
    "q",
    (fn("slow", "key"), fn("fast", "key")),
    (
        PlannedCall("s1", "slow", {"key": "s1"}),
        PlannedCall("f1", "fast", {"key": "f1"}),
        PlannedCall("f2", "fast", {"key": "f2"}, depends_on=("f1",)),
    ),
    answer_tokens=4,
)


async def run_two_chains(margin: float) -> dict[str, Any]:
    @tool
    async def slow(key: str) -> str:
        """Slow."""
        await asyncio.sleep(0.3)
        return "slow done"

    @tool
    async def fast(key: str) -> str:
        """Fast."""
        return "fast done"

    slow.metadata = {"expected_ms": 300}
    fast.metadata = {"expected_ms": 1}
    tools = [slow, fast]
    recorder = Recorder(TaskResponder(TWO_CHAINS, policy="async"))
    estimator = LatencyEstimator.for_tools(tools, ttft_ms=5)
    node = AsyncToolCallingNode(
        scripted(recorder), tools, backend="stateless", estimator=estimator, margin=margin
    )
    ledger = CallLedger()
    out = await guarded(node.arun([HumanMessage("q")], ledger=ledger))
    assert out[-1].content == TWO_CHAINS.final_answer()
    assert_openai_valid([HumanMessage("q"), *out])

    def rec(cid: str) -> Any:
        return ledger.get(TWO_CHAINS.tool_call_id(TWO_CHAINS.call(cid)))

    return {
        "out": out,
        "recorder": recorder,
        "slow_id": rec("s1").id,
        "s1": rec("s1"),
        "f2": rec("f2"),
    }


async def test_early_request_lets_the_fast_chain_go_on() -> None:
    result = await run_two_chains(margin=1.0)
    assert result["f2"].started_at < result["s1"].finished_at
    assert len(result["recorder"].requests) >= 3


async def test_without_early_requests_the_fast_chain_waits() -> None:
    result = await run_two_chains(margin=1e6)  # never worth a new request
    assert result["f2"].started_at >= result["s1"].finished_at
    assert len(result["recorder"].requests) == 3  # calls, the dependent call, the answer


# -- transcripts valid for OpenAI ------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ms", [0.0, 3.0])
async def test_transcripts_are_valid_for_openai(backend: str, ms: float) -> None:
    recorder = Recorder(TaskResponder(CHAIN, policy="async"))
    if backend == "interruptible":
        model = scripted(TaskResponder(CHAIN, policy="async"), backend)
    else:
        model = scripted(recorder, backend)
    out = await guarded(
        AsyncToolCallingNode(model, task_tools(CHAIN, ms)).arun([HumanMessage(CHAIN.question)])
    )
    assert_openai_valid([HumanMessage(CHAIN.question), *out])
    for prompt in recorder.requests:  # what the stateless model was sent, placeholders too
        assert_openai_valid(prompt)


def test_the_checker_catches_bad_transcripts() -> None:
    call = {"name": "t", "args": {}, "id": "c1", "type": "tool_call"}
    with pytest.raises(AssertionError):
        assert_openai_valid([AIMessage("", tool_calls=[call]), AIMessage("x")])
    with pytest.raises(AssertionError):
        assert_openai_valid([ToolMessage("x", tool_call_id="c1")])
    with pytest.raises(AssertionError):
        assert_openai_valid(
            [
                AIMessage("", tool_calls=[call]),
                ToolMessage("x", tool_call_id="c1"),
                ToolMessage("x", tool_call_id="c2"),
            ]
        )


# -- through the real ChatOpenAI -------------------------------------------------------------
@pytest.fixture(scope="module")
def srv() -> Iterator[SimServer]:
    with SimServer(tasks=[CHAIN, PAIR], latency=ZERO) as server:
        yield server


@pytest.mark.parametrize("task", [CHAIN, PAIR], ids=lambda t: t.id)
async def test_stateless_node_through_chat_openai(srv: SimServer, task: ScriptedTask) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        base_url=srv.base_url,
        api_key="sim",  # type: ignore[arg-type]
        model=f"async/{task.id}",
        streaming=True,
        max_retries=0,
        http_async_client=openai.DefaultAsyncHttpxClient(),
    )
    journal = ToolJournal()
    node = AsyncToolCallingNode(llm, task_tools(task, 2, journal), backend="stateless")
    out = await guarded(node.arun([HumanMessage(task.question)]))
    assert out[-1].content == task.final_answer()
    assert Counter(e.call_id for e in journal.entries) == {
        task.tool_call_id(c): 1 for c in task.calls
    }
    assert_openai_valid([HumanMessage(task.question), *out])


@pytest.mark.parametrize("until", ["answer", "turn"])
async def test_a_model_that_does_not_stream_still_works(until: str) -> None:
    # LangChain yields one whole AIMessage from astream() when streaming is disabled
    @tool
    async def get_weather(city: str) -> str:
        """Weather."""
        return f"sunny in {city}"

    model = ScriptedChatModel(
        script=[ModelTurn.calls(("get_weather", {"city": "Paris"})), ModelTurn(text="Sunny.")],
        latency=LatencyModel.zero(),
        disable_streaming=True,
    )
    node = AsyncToolCallingNode(model, [get_weather], until=until)  # type: ignore[arg-type]
    out = await node.arun([HumanMessage("Weather in Paris?")])
    assert isinstance(out[0], AIMessage) and out[0].tool_calls[0]["args"] == {"city": "Paris"}
    assert isinstance(out[1], ToolMessage) and out[1].content == "sunny in Paris"
    if until == "answer":
        assert out[-1].content == "Sunny."


def test_bound_tools_tell_the_model_their_expected_duration() -> None:
    @tool
    async def slow_search(q: str) -> str:
        """Search the web."""
        return q

    slow_search.metadata = {"expected_ms": 1500}
    captured: list[Any] = []

    class Capturing(ScriptedChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            captured.extend(tools)
            return super().bind_tools(tools, **kwargs)

    node = AsyncToolCallingNode(Capturing(script=[ModelTurn(text="x")]), [slow_search])
    node.bound_model  # noqa: B018 - binding happens on first use
    assert "about 1500 ms" in captured[0].description
    assert slow_search.description == "Search the web."  # the tool itself is unchanged


# -- every wait is bounded, or fails at once when it cannot end --------------------------------
@pytest.mark.parametrize("bad", [None, 0, -2, float("inf"), True])
def test_wait_timeout_must_be_a_finite_positive_number(bad: Any) -> None:
    with pytest.raises(ValueError, match="wait_timeout"):
        AsyncToolCallingNode(scripted([ModelTurn(text="x")]), [], wait_timeout=bad)
    with pytest.raises(ValueError, match="wait_timeout"):
        AsyncToolCallingMiddleware(wait_timeout=bad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("until", ["answer", "turn"])
async def test_a_hung_tool_fails_after_the_wait_timeout(backend: str, until: str) -> None:
    task = ScriptedTask("h", "q", (fn("hang", "key"),), (PlannedCall("0", "hang", {"key": "k"}),))
    cancelled: list[str] = []

    @tool
    async def hang(key: str) -> str:
        """Never returns."""
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(key)
            raise
        return "never"

    model = scripted(TaskResponder(task, policy="async"), backend)
    node = AsyncToolCallingNode(model, [hang], until=until, wait_timeout=0.2)  # type: ignore[arg-type]
    started = time.perf_counter()
    with pytest.raises(WaitTimeoutError) as info:
        await guarded(node.arun([HumanMessage("q")]))
    assert time.perf_counter() - started < GUARD / 2
    error = info.value
    assert isinstance(error, TimeoutError) and error.timeout == 0.2
    call_id = task.tool_call_id(task.call("0"))
    assert f"{call_id} (hang, running)" in str(error)
    assert cancelled == ["k"]  # the node stopped it on its way out


class StallingModel(BaseChatModel):
    """Streams one chunk, then never another."""

    @property
    def _llm_type(self) -> str:
        return "stalling"

    def bind_tools(self, tools: Any, **kwargs: Any) -> StallingModel:  # type: ignore[override]
        return self

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        raise NotImplementedError

    async def _astream(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(message=AIMessageChunk(content="Let me "))
        await asyncio.Event().wait()
        yield ChatGenerationChunk(message=AIMessageChunk(content="never"))  # pragma: no cover


@pytest.mark.parametrize("until", ["answer", "turn"])
async def test_a_model_stream_that_stops_fails_after_the_wait_timeout(until: str) -> None:
    node = AsyncToolCallingNode(StallingModel(), [], until=until, wait_timeout=0.2)  # type: ignore[arg-type]
    with pytest.raises(WaitTimeoutError, match="the model's next stream chunk") as info:
        await guarded(node.arun([HumanMessage("q")]))
    assert "model request 1" in str(info.value)


async def test_the_middleware_bounds_the_model_stream() -> None:
    agent = create_agent(
        StallingModel(), [], middleware=[AsyncToolCallingMiddleware(wait_timeout=0.2)]
    )
    with pytest.raises(WaitTimeoutError, match="the model's next stream chunk"):
        await guarded(agent.ainvoke({"messages": [HumanMessage("q")]}))


async def test_a_session_trapped_again_with_nothing_outstanding_fails_at_once() -> None:
    # the model traps while its call runs (right), is woken by the result, and traps again
    # silently (a trapped session writes nothing): no call is outstanding, no result can
    # wake it; the old node waited for ever
    @tool
    async def lookup(key: str) -> str:
        """Takes a moment."""
        await asyncio.sleep(0.01)
        return key

    turns = [
        ModelTurn(tool_calls=(tool_call_of("lookup", {"key": "x"}, "c1"),)),
        ModelTurn(text=TRAP_BLOCK),
        ModelTurn(text=TRAP_BLOCK),
        ModelTurn(text="never"),
    ]
    node = AsyncToolCallingNode(scripted(turns, "interruptible"), [lookup])  # default bound
    started = time.perf_counter()
    with pytest.raises(StalledError, match="no call is outstanding"):
        await guarded(node.arun([HumanMessage("q")]))
    assert time.perf_counter() - started < 5


def tool_call_of(name: str, args: dict[str, Any], call_id: str) -> Any:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


# -- handle_tool_errors: the same as ToolNode's -----------------------------------------------
class ResumeSchema(BaseModel):
    answer: str


@tool
async def explode(why: str) -> str:
    """Fails in several ways."""
    if why == "tool":
        raise ToolException(f"tool exception: {why}")
    if why == "key":
        raise KeyError(why)
    if why == "resume":  # what interrupt() raises for a resume value of the wrong shape
        try:
            ResumeSchema.model_validate({})
        except ValidationError as exc:
            _mark_invalid_resume(exc)
            raise
    raise ValueError(f"bad input: {why}")


@tool
async def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def value_error_handler(e: ValueError) -> str:
    return f"value handler saw {e}"


def union_handler(e: KeyError | ValueError) -> str:
    return f"union handler saw {e!r}"


# ToolNode reads a union from the raw annotation, which this module's future import turns
# into a string; give it the evaluated one so both sides see the same handler.
union_handler.__annotations__ = {"e": KeyError | ValueError, "return": str}


def reraising_handler(e: Exception) -> str:
    if isinstance(e, KeyError):
        return "key"
    raise e


def list_handler(e: Exception) -> Any:
    return ["part one", {"type": "text", "text": f"saw {type(e).__name__}"}]


HANDLE_TOOL_ERRORS: dict[str, Any] = {
    "true": True,
    "false": False,
    "string": "Something went wrong, try again.",
    "empty_string": "",
    "callable_value_error": value_error_handler,
    "callable_union": union_handler,
    "callable_unannotated": lambda e: f"lambda saw {e!r}",
    "callable_reraising": reraising_handler,
    "callable_list": list_handler,
    "type_value_error": ValueError,
    "type_tool_exception": ToolException,
    "tuple_matching": (KeyError, ValueError),
    "tuple_not_matching": (TypeError, KeyError),
    "empty_tuple": (),
}
FAILURES = {
    "value_error": ("explode", {"why": "nope"}),
    "key_error": ("explode", {"why": "key"}),
    "tool_exception": ("explode", {"why": "tool"}),
    "invalid_resume": ("explode", {"why": "resume"}),
    "invalid_args": ("add", {"a": "x", "b": "1"}),
}
Outcome = tuple[str, Any, Any]


async def tool_node_outcome(name: str, args: dict[str, Any], **options: Any) -> Outcome:
    """What a stock ToolNode makes of one call: its message, or what it raises."""
    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode([explode, add], **options))
    graph.add_edge(START, "tools")
    call = tool_call_of(name, args, "t1")
    try:
        out = await graph.compile().ainvoke(
            {"messages": [HumanMessage("q"), AIMessage(content="", tool_calls=[call])]}
        )
    except Exception as exc:
        return ("raised", type(exc), str(exc))
    message = out["messages"][-1]
    return ("message", message.status, message.content)


async def async_agent_outcome(
    name: str, args: dict[str, Any], backend: str, **options: Any
) -> Outcome:
    """What create_async_agent makes of the same call: its message, or what it raises."""
    fns = ({"name": name, "parameters": {"type": "object", "properties": {}}},)
    task = ScriptedTask("e", "q", fns, (PlannedCall("0", name, args),), answer_tokens=2)
    model = scripted(TaskResponder(task, policy="async"), backend)
    agent = create_async_agent(model, [explode, add], **options).compile()
    try:
        out = await guarded(agent.ainvoke({"messages": [HumanMessage("q")]}))
    except Exception as exc:
        return ("raised", type(exc), str(exc))
    (message,) = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert out["messages"][-1].content == task.final_answer()  # the model went on
    return ("message", message.status, message.content)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("handler", list(HANDLE_TOOL_ERRORS))
async def test_handle_tool_errors_behaves_as_in_tool_node(
    handler: str, failure: str, backend: str
) -> None:
    flag = HANDLE_TOOL_ERRORS[handler]
    name, args = FAILURES[failure]
    expected = await tool_node_outcome(name, args, handle_tool_errors=flag)
    got = await async_agent_outcome(name, args, backend, handle_tool_errors=flag)
    assert got == expected


def stock_default() -> Any:
    """ToolNode's own default handler (invalid arguments become a message, the rest raise)."""
    return inspect.signature(ToolNode.__init__).parameters["handle_tool_errors"].default


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("failure", list(FAILURES))
async def test_the_default_is_tool_node_with_true(failure: str, backend: str) -> None:
    # the documented difference: create_async_agent's default is handle_tool_errors=True
    # (the model sees every tool error while its other calls run); ToolNode's default
    # handles only invalid arguments, and passing it gives ToolNode's behaviour
    name, args = FAILURES[failure]
    got = await async_agent_outcome(name, args, backend)
    assert got == await tool_node_outcome(name, args, handle_tool_errors=True)
    stock = await tool_node_outcome(name, args)
    assert stock[0] == ("message" if failure == "invalid_args" else "raised")
    assert await async_agent_outcome(name, args, backend, handle_tool_errors=stock_default()) == (
        stock
    )
