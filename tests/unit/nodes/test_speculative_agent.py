"""The speculative agent graph: listen -> (commit | abort) -> respond, on live input."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    ToolMessage,
    convert_to_openai_messages,
)
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_speculative import label_tool
from langgraph_speculative.core.ledger import CallState, Speculation
from langgraph_speculative.errors import (
    AsyncOnlyError,
    InputUpdateError,
    InteractionFormatError,
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
)
from langgraph_speculative.integrations.sim.scripted_listener import (
    ListenerView,
    ListeningResponder,
)
from langgraph_speculative.integrations.sim.speech import speech_updates
from langgraph_speculative.nodes.speculative import (
    SpeculativeRun,
    create_speculative_agent,
)
from langgraph_speculative.speculative.interaction_format import (
    Action,
    Answer,
    Call,
    Confirm,
    ModelAction,
    Pause,
    Revise,
    ToolResult,
    UserInput,
    render_actions,
    to_messages,
)

GUARD_S = 20  # only against hangs; nothing asserts how fast a run is
BACKENDS = ["interruptible", "stateless"]


def schema(name: str, *props: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} tool",
        "parameters": {"type": "dict", "properties": {p: {"type": "string"} for p in props}},
    }


class Lab:
    """Tools that log (event, tool, args, time) and may sleep or wait for a gate."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, dict[str, Any], float]] = []
        self.gates: dict[str, asyncio.Event] = {}

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    def tool(
        self,
        name: str,
        *,
        safe: bool = True,
        delay: float = 0.0,
        gated: bool = False,
        swallow_cancel: bool = False,
        fail: bool = False,
    ) -> BaseTool:
        async def run(**kwargs: Any) -> str:
            self.log.append(("start", name, kwargs, time.time()))
            try:
                if gated:
                    await self.gate(name).wait()
                if delay:
                    await asyncio.sleep(delay)
            except asyncio.CancelledError:
                self.log.append(("cancelled", name, kwargs, time.time()))
                if not swallow_cancel:
                    raise
                await asyncio.sleep(0.005)
                self.log.append(("late", name, kwargs, time.time()))
                return "LATE RESULT"
            if fail:
                raise ValueError("kaput")
            self.log.append(("done", name, kwargs, time.time()))
            return f"{name}:{sorted(kwargs.items())}"

        props = {"city", "artist", "q", "to"}
        tool = StructuredTool.from_function(
            coroutine=run,
            name=name,
            description=f"{name} tool",
            args_schema={
                "type": "object",
                "properties": {p: {"type": "string"} for p in props},
            },
        )
        return label_tool(tool, safe=safe)

    def count(self, event: str, name: str) -> int:
        return sum(1 for e, n, _, _ in self.log if e == event and n == name)

    def times(self, event: str, name: str) -> list[float]:
        return [t for e, n, _, t in self.log if e == event and n == name]


class Heard:
    """Wraps a model's script; records every transcript the model decided on.

    :func:`say` waits on it, so each partial update is pushed only once the model acted on
    the one before: what the model sees no longer depends on how fast the loop runs.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.heard: set[str] = set()

    def __call__(self, messages: Sequence[BaseMessage]) -> ModelTurn:
        self.heard.add(_READER.view(messages).transcript)
        step = getattr(self.inner, "next_action", None)
        turn: ModelTurn = step(messages) if callable(step) else self.inner(messages)
        return turn

    next_action = __call__


def model_of(
    script: Any, backend: str = "interruptible", *, ttft: float = 0.0, tpot: float = 0.0
) -> ScriptedChatModel:
    return ScriptedChatModel(
        script=Heard(script) if callable(script) else script,
        latency=LatencyModel(ttft_ms=ttft, tpot_ms=tpot, tool_lo_ms=0, tool_hi_ms=0),
        backend=backend,  # type: ignore[arg-type]
    )


_READER = ListeningResponder(ScriptedTask("r", "r", (), ()))


class Script:
    """A custom model: its actions are a function of what it has seen (a ListenerView)."""

    def __init__(self, decide: Callable[[ListenerView], list[Action]]) -> None:
        self.decide = decide
        self.requests = 0

    def __call__(self, messages: Sequence[BaseMessage]) -> ModelTurn:
        self.requests += 1
        actions = self.decide(_READER.view(messages)) or [Pause()]
        waits = all(isinstance(a, Pause) for a in actions)
        more = not waits and not any(isinstance(a, Answer) for a in actions)
        return ModelTurn(text=render_actions(actions) + "\n", waits=waits, more=more)

    next_action = __call__


async def say(
    run: SpeculativeRun,
    text: str,
    *,
    wpm: float = 6000,
    cps: float = 200,
    lockstep: bool = True,
) -> None:
    """Speak ``text`` word by word at ``wpm``.

    In ``lockstep`` (with a :class:`Heard` script), each update also waits until the model
    decided on the one before (it is never pushed sooner than its time): every partial
    transcript reaches the model, however slow the loop is, so a test does not depend on
    which updates a loaded machine batches together.
    """
    heard = getattr(run.model, "script", None)
    seen = heard.heard if lockstep and isinstance(heard, Heard) else None
    start = time.perf_counter()
    for update in speech_updates(text, wpm=wpm, cps=cps):
        delay = start + update.at_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        run.input.push(update.text, final=update.final)
        if seen is not None and not update.final:
            await wait_until(lambda text=update.text: text in seen)


async def wait_until(probe: Callable[[], bool]) -> None:
    async with asyncio.timeout(GUARD_S):
        while not probe():
            await asyncio.sleep(0.001)


async def invoke(
    run: SpeculativeRun, speech: Any = None, *, stream: bool = False, graph: Any = None
) -> tuple[dict[str, Any], list[str]]:
    """Run the graph with ``speech`` playing beside it; return the state and the nodes run."""
    graph = graph or create_speculative_agent().compile()
    speaker = asyncio.create_task(speech) if speech is not None else None
    nodes: list[str] = []
    try:
        async with asyncio.timeout(GUARD_S):
            if not stream:
                return await graph.ainvoke({"messages": []}, context=run), nodes
            state: dict[str, Any] = {"messages": []}
            async for chunk in graph.astream({"messages": []}, context=run, stream_mode="updates"):
                for node, update in chunk.items():
                    nodes.append(node)
                    for key, value in (update or {}).items():
                        if key == "messages":
                            state["messages"] += value
                        else:
                            state[key] = value
            return state, nodes
    finally:
        if speaker is not None:
            speaker.cancel()
            await asyncio.gather(speaker, return_exceptions=True)


WEATHER_PLAY = ScriptedTask(
    "wp",
    "What is the weather in Paris and play Taylor Swift please",
    (schema("get_weather", "city"), schema("play_song", "artist")),
    (
        PlannedCall("0", "get_weather", {"city": "Paris"}),
        PlannedCall("1", "play_song", {"artist": "Taylor Swift"}),
    ),
)


def lab_tools(lab: Lab, **kw: Any) -> list[BaseTool]:
    return [lab.tool("get_weather", **kw), lab.tool("play_song", safe=False, **kw)]


# -- the happy path on both model back-ends --------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_answers_with_a_valid_history(backend: str) -> None:
    lab = Lab()
    listener = ListeningResponder(WEATHER_PLAY, premature=1.0)
    model = model_of(listener, backend)
    async with SpeculativeRun(model, lab_tools(lab, delay=0.002), run_id="r1") as run:
        out, _ = await invoke(run, say(run, WEATHER_PLAY.question))
    messages = out["messages"]
    assert [type(m) for m in messages] == [
        HumanMessage,
        AIMessage,
        ToolMessage,
        ToolMessage,
        AIMessage,
    ]
    human, plan, r0, r1, answer = messages
    assert human.content == WEATHER_PLAY.question
    assert [(c["id"], c["name"], c["args"]) for c in plan.tool_calls] == [
        ("c0", "get_weather", {"city": "Paris"}),
        ("c1", "play_song", {"artist": "Taylor Swift"}),
    ]
    assert [r0.tool_call_id, r1.tool_call_id] == ["c0", "c1"]
    assert [r0.id, r1.id] == ["tool-result-r1-c0", "tool-result-r1-c1"]
    assert [r0.id, r1.id] == [run.message_id("result", "c0"), run.message_id("result", "c1")]
    assert r0.content == "get_weather:[('city', 'Paris')]"
    assert answer.content == WEATHER_PLAY.final_answer()
    assert [m["role"] for m in convert_to_openai_messages(messages)] == [
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]
    assert len({m.id for m in messages}) == len(messages)
    assert out["final_plan"] == [dict(c) for c in plan.tool_calls]
    # the model saw every result of the plan, and nothing of an aborted call after the end
    seen = {i.call_id for i in run.items if isinstance(i, ToolResult) and i.status != "cancelled"}
    assert seen >= {"c0", "c1"}
    assert run.leaked_results() == 0 and run.unsafe_before_commit() == 0
    assert run.stats["revised"] >= 1  # premature=1.0: "Taylor" first, then "Taylor Swift"
    assert lab.count("start", "play_song") == 1
    assert run.answer_at is not None and run.commit_at is not None
    assert run.final_at is not None and run.final_at <= run.commit_at <= run.answer_at


async def test_stateless_driver_sends_the_transcript_with_the_models_own_actions() -> None:
    lab = Lab()
    script = Script(lambda v: ListeningResponder(WEATHER_PLAY, premature=0.0).step(v))
    requests: list[list[BaseMessage]] = []

    def record(messages: Sequence[BaseMessage]) -> ModelTurn:
        requests.append(list(messages))
        return script(messages)

    model = model_of(record, "stateless")
    async with SpeculativeRun(model, lab_tools(lab)) as run:
        out, _ = await invoke(run, say(run, WEATHER_PLAY.question, wpm=3000))
    assert out["messages"][-1].content == WEATHER_PLAY.final_answer()
    assert len(requests) > 3  # a new request per batch of updates
    last = requests[-1]
    ai = [m for m in last if isinstance(m, AIMessage)]
    # (a line of its own: the reply may follow an earlier PAUSE in the same AI message)
    assert any(line.startswith("CALL c0 ") for m in ai for line in str(m.content).splitlines())
    assert any("CONFIRM c0 c1" in str(m.content) for m in ai)
    # the request is the system prompt plus the transcript as it was (a prefix of the items)
    prefixes = [to_messages(run.items[:k], t0=run.t0) for k in range(len(run.items) + 1)]
    assert last[1:] in prefixes


async def test_stateless_request_after_a_reply_without_pause() -> None:
    """CONFIRM ends a reply; the next request comes at once, without new input."""
    lab = Lab()
    lab.gate("get_weather").set()

    def decide(v: ListenerView) -> list[Action]:
        if not v.final:
            return [Call("c0", "get_weather", {"city": "Paris"})] if "c0" not in v.calls else []
        if not v.confirmed:
            return [Confirm(("c0",))]
        return [Answer("sunny")] if "c0" in v.results else []

    model = model_of(Script(decide), "stateless")
    async with SpeculativeRun(model, [lab.tool("get_weather")]) as run:
        out, _ = await invoke(run, say(run, "Weather in Paris"))
    assert out["messages"][-1].content == "sunny"
    assert lab.count("start", "get_weather") == 1


# -- unsafe tools -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_unsafe_call_asked_early_runs_only_after_commit(backend: str) -> None:
    lab = Lab()
    task = ScriptedTask(
        "b",
        "Book a ticket to Paris for me and my whole family please",
        (schema("book_ticket", "to"),),
        (PlannedCall("0", "book_ticket", {"to": "Paris"}),),
    )
    model = model_of(ListeningResponder(task, premature=0.0), backend)
    async with SpeculativeRun(model, [lab.tool("book_ticket", safe=False)]) as run:
        await invoke(run, say(run, task.question, wpm=1500))
    rec = run.ledger.get("c0")
    assert run.final_at is not None and run.commit_at is not None
    assert rec.created_at < run.final_at  # asked for while the user was still talking
    assert not rec.safe and rec.started_at is not None
    assert rec.started_at >= run.commit_at
    assert lab.times("start", "book_ticket")[0] >= run.commit_at
    assert rec.speculation is Speculation.COMMITTED
    assert run.unsafe_before_commit() == 0
    final_index = next(i for i, x in enumerate(run.items) if isinstance(x, UserInput) and x.final)
    calls = [
        i
        for i, x in enumerate(run.items)
        if isinstance(x, ModelAction) and isinstance(x.action, Call)
    ]
    assert calls and calls[0] < final_index


# -- aborted calls ---------------------------------------------------------------------------


def slow_then_weather(v: ListenerView) -> list[Action]:
    """Calls a slow search early, then at the end only the weather (the search is dropped)."""
    if not v.final:
        return [Call("s1", "slow_search", {"q": "cats"})] if "s1" not in v.calls else []
    if not v.confirmed:
        return [Call("c0", "get_weather", {"city": "Paris"}), Confirm(("c0",))]
    return [Answer("It is sunny.")] if "c0" in v.results else []


def assert_never_leaked(run: SpeculativeRun, out: dict[str, Any], call_id: str) -> None:
    final_index = run.items.index(
        next(x for x in run.items if isinstance(x, UserInput) and x.final)
    )
    after = run.items[final_index + 1 :]
    assert not [x for x in after if isinstance(x, ToolResult) and x.call_id == call_id]
    assert not [
        m for m in out["messages"] if isinstance(m, ToolMessage) and m.tool_call_id == call_id
    ]
    assert all("LATE RESULT" not in str(x) for x in run.items)
    assert run.leaked_results() == 0


@pytest.mark.parametrize("backend", BACKENDS)
async def test_late_result_of_an_aborted_call_is_dropped(backend: str) -> None:
    lab = Lab()
    tools = [
        lab.tool("slow_search", gated=True, swallow_cancel=True),
        lab.tool("get_weather"),
    ]
    model = model_of(Script(slow_then_weather), backend)
    async with SpeculativeRun(model, tools) as run:
        out, nodes = await invoke(
            run, say(run, "Search cats no wait weather in Paris"), stream=True
        )
        await asyncio.sleep(0.02)  # the search's late result comes now
    assert nodes == ["listen", "abort", "respond"]
    rec = run.ledger.get("s1")
    assert rec.speculation is Speculation.ABORTED and rec.state is CallState.CANCELLED
    assert lab.count("late", "slow_search") == 1  # the tool did return, after the commit
    assert lab.times("late", "slow_search")[0] > (run.commit_at or 0)
    assert run.outcome is not None and run.outcome.aborted == ["s1"]
    assert run.stats["aborted"] == 1
    assert_never_leaked(run, out, "s1")
    assert out["messages"][-1].content == "It is sunny."


async def test_result_finished_between_final_input_and_commit_is_held_then_dropped() -> None:
    lab = Lab()
    tools = [lab.tool("slow_search", gated=True), lab.tool("get_weather")]
    model = model_of(Script(slow_then_weather), "interruptible", tpot=2.0)

    async def speech(run: SpeculativeRun) -> None:
        run.input.push("Search cats")
        await asyncio.sleep(0.01)
        run.input.push("Search cats no wait weather in Paris please", final=True)
        lab.gate("slow_search").set()  # finishes while the model writes its CONFIRM

    async with SpeculativeRun(model, tools) as run:
        out, _ = await invoke(run, speech(run))
    rec = run.ledger.get("s1")
    assert rec.state is CallState.DONE and rec.speculation is Speculation.ABORTED
    assert run.final_at is not None and run.commit_at is not None
    assert rec.finished_at is not None and run.final_at <= rec.finished_at < run.commit_at
    assert_never_leaked(run, out, "s1")
    assert out["commit"]["aborted"] == ["s1"]
    assert out["messages"][-1].content == "It is sunny."


async def test_plan_result_finished_before_commit_is_shown_at_commit() -> None:
    lab = Lab()

    def decide(v: ListenerView) -> list[Action]:
        if not v.final:
            return []
        if not v.confirmed:
            return [Call("c0", "get_weather", {"city": "Paris"}), Confirm(("c0",))]
        return [Answer("sunny")] if "c0" in v.results else []

    model = model_of(Script(decide), "interruptible", tpot=2.0)
    async with SpeculativeRun(model, [lab.tool("get_weather")]) as run:
        out, _ = await invoke(run, say(run, "weather in Paris"))
    rec = run.ledger.get("c0")
    assert rec.finished_at is not None and run.commit_at is not None
    assert rec.finished_at < run.commit_at  # ran after the final input, before CONFIRM was done
    results = [x for x in run.items if isinstance(x, ToolResult) and x.call_id == "c0"]
    assert len(results) == 1 and results[0].at >= run.commit_at
    assert out["messages"][-1].content == "sunny"


# -- input while tools run and while the model writes -----------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_input_arrives_during_tool_runs_and_model_streaming(backend: str) -> None:
    lab = Lab()
    task = ScriptedTask(
        "m",
        "Weather in Paris then in Rome and play Taylor Swift and weather in Berlin too please",
        (schema("get_weather", "city"), schema("play_song", "artist")),
        (
            PlannedCall("0", "get_weather", {"city": "Paris"}),
            PlannedCall("1", "get_weather", {"city": "Rome"}),
            PlannedCall("2", "play_song", {"artist": "Taylor Swift"}),
            PlannedCall("3", "get_weather", {"city": "Berlin"}),
        ),
    )
    model = model_of(ListeningResponder(task, premature=1.0), backend, tpot=0.5)
    async with SpeculativeRun(model, lab_tools(lab, delay=0.03)) as run:
        out, _ = await invoke(run, say(run, task.question, wpm=2400))
    assert out["messages"][-1].content == task.final_answer()
    plan = [(c["name"], c["args"]) for c in out["final_plan"]]
    assert plan == [(c.name, dict(c.args)) for c in task.calls]
    inputs = [u.at for u in run.ledger.inputs]
    overlaps = [
        r.id
        for r in run.ledger
        if r.started_at is not None
        and r.finished_at is not None
        and any(r.started_at < at < r.finished_at for at in inputs)
    ]
    assert overlaps  # the user spoke while a tool ran
    assert run.leaked_results() == 0 and run.unsafe_before_commit() == 0


@pytest.mark.parametrize("backend", BACKENDS)
async def test_final_update_before_any_speculation(backend: str) -> None:
    lab = Lab()
    model = model_of(ListeningResponder(WEATHER_PLAY, premature=1.0), backend)
    saver = InMemorySaver()
    graph = create_speculative_agent().compile(checkpointer=saver)
    async with SpeculativeRun(model, lab_tools(lab)) as run:
        run.input.push(WEATHER_PLAY.question, final=True)
        async with asyncio.timeout(GUARD_S):
            nodes = [
                node
                async for chunk in graph.astream(
                    {"messages": []},
                    {"configurable": {"thread_id": "t"}},
                    context=run,
                    stream_mode="updates",
                )
                for node in chunk
            ]
        state = (await graph.aget_state({"configurable": {"thread_id": "t"}})).values
    assert nodes == ["listen", "commit", "respond"]
    assert state["messages"][-1].content == WEATHER_PLAY.final_answer()
    assert run.final_at is not None
    assert all(r.created_at >= run.final_at for r in run.ledger)
    assert run.stats["revised"] == 0


# -- commit vs abort ----------------------------------------------------------------------


async def run_nodes(run: SpeculativeRun, speech: Any) -> tuple[list[str], dict[str, Any]]:
    graph = create_speculative_agent().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    speaker = asyncio.create_task(speech)
    try:
        async with asyncio.timeout(GUARD_S):
            nodes = [
                node
                async for chunk in graph.astream(
                    {"messages": []}, config, context=run, stream_mode="updates"
                )
                for node in chunk
            ]
    finally:
        speaker.cancel()
        await asyncio.gather(speaker, return_exceptions=True)
    return nodes, (await graph.aget_state(config)).values


async def test_every_speculative_call_confirmed_takes_the_commit_edge() -> None:
    lab = Lab()
    model = model_of(ListeningResponder(WEATHER_PLAY, premature=0.0))
    async with SpeculativeRun(model, lab_tools(lab)) as run:
        nodes, state = await run_nodes(run, say(run, WEATHER_PLAY.question, wpm=1500))
    assert nodes == ["listen", "commit", "respond"]
    assert state["commit"]["aborted"] == [] and state["commit"]["started"] == []
    assert set(state["commit"]["adopted"]) == {"c0", "c1"}
    assert run.ledger.get("c0").created_at < (run.final_at or 0)  # it was speculative


async def test_a_revised_premature_call_takes_the_commit_edge() -> None:
    """The model revised its premature call itself: nothing is left unconfirmed."""
    lab = Lab()
    model = model_of(ListeningResponder(WEATHER_PLAY, premature=1.0))
    async with SpeculativeRun(model, lab_tools(lab, delay=0.001)) as run:
        nodes, state = await run_nodes(run, say(run, WEATHER_PLAY.question, wpm=1500))
    assert run.stats["revised"] >= 1
    assert nodes == ["listen", "commit", "respond"]
    assert state["commit"]["aborted"] == []
    old = [r for r in run.ledger if r.speculation is Speculation.ABORTED]
    assert old  # the premature version is aborted (at the revision, or dropped at commit)
    assert {r.args.get("artist") for r in old if r.tool == "play_song"} <= {"Taylor"}


async def test_an_unconfirmed_speculative_call_takes_the_abort_edge() -> None:
    lab = Lab()
    tools = [lab.tool("slow_search", gated=True), lab.tool("get_weather")]
    model = model_of(Script(slow_then_weather))
    async with SpeculativeRun(model, tools) as run:
        nodes, state = await run_nodes(run, say(run, "Search cats no wait weather in Paris"))
    assert nodes == ["listen", "abort", "respond"]
    assert state["commit"]["aborted"] == ["s1"]
    assert lab.count("cancelled", "slow_search") == 1  # running: it got CancelledError
    assert_never_leaked(run, state, "s1")
    assert [type(m) for m in state["messages"]] == [HumanMessage, AIMessage, ToolMessage, AIMessage]


# -- dependencies, the cache, calls after the commit point -----------------------------------


def revising_listener(v: ListenerView) -> list[Action]:
    """Search the artist heard so far, play it once the search is in; revise as it grows.

    After the final input it confirms what stands (``b`` only if it plays the final
    artist); after the commit point it calls what is still missing, then answers.
    """
    artist = "Taylor Swift" if "Swift" in v.transcript else "Taylor"
    b_stands = "b" in v.calls and v.calls["b"][1]["artist"] == artist
    if v.confirmed:
        if "a" in v.results and not b_stands:
            return [Call("b", "play_song", {"artist": artist}, ("a",))]
        return [Answer("playing")] if {"a", "b"} <= v.results else []
    if "a" not in v.calls:
        return [Call("a", "search", {"artist": artist})]
    if v.calls["a"][1]["artist"] != artist:
        return [Revise("a", "search", {"artist": artist})]
    if v.final:
        return [Confirm(("a", "b") if b_stands else ("a",))]
    if "a" in v.results and not b_stands:
        return [Call("b", "play_song", {"artist": artist}, depends_on=("a",))]
    return []


def b_plays(run: SpeculativeRun, artist: str) -> bool:
    rec = run.speculation.record_of("b")
    return rec is not None and rec.args.get("artist") == artist


def b_cancelled(run: SpeculativeRun) -> bool:
    """The model was told that b was cancelled (its search was revised)."""
    return any(
        isinstance(x, ToolResult) and x.call_id == "b" and x.status == "cancelled"
        for x in run.items
    )


@pytest.mark.parametrize("backend", BACKENDS)
async def test_revision_cancels_dependents_and_tells_the_model(backend: str) -> None:
    # Deterministic: each update waits for the model action it is about (the final input
    # only once the model called b again on the revised search's result), so the model's
    # view at the final input does not depend on how fast the event loop runs.
    lab = Lab()
    tools = [lab.tool("search"), lab.tool("play_song", safe=False)]
    model = model_of(Script(revising_listener), backend)

    async def speech(run: SpeculativeRun) -> None:
        run.input.push("play Taylor")
        await wait_until(lambda: b_plays(run, "Taylor"))
        run.input.push("play Taylor Swift")
        await wait_until(lambda: b_plays(run, "Taylor Swift"))
        run.input.push("play Taylor Swift", final=True)

    async with SpeculativeRun(model, tools) as run:
        out, _ = await invoke(run, speech(run))
    notices = [x for x in run.items if isinstance(x, ToolResult) and x.call_id == "b"]
    assert notices[0].status == "cancelled"
    assert "revised or withdrawn" in notices[0].content
    assert run.ledger.get("b").speculation is Speculation.ABORTED
    assert run.ledger.get("b").started_at is None  # unsafe: never ran
    assert [c["id"] for c in out["final_plan"]] == ["a", "b"]
    assert out["final_plan"][1]["args"] == {"artist": "Taylor Swift"}
    assert out["messages"][-1].content == "playing"
    assert lab.count("start", "play_song") == 1
    assert run.extra_calls == []


def gated_search(lab: Lab, slow: str) -> BaseTool:
    """``search`` that waits for the gate ``slow`` when asked for that artist."""

    async def search(artist: str) -> str:
        lab.log.append(("start", "search", {"artist": artist}, time.time()))
        if artist == slow:
            await lab.gate(slow).wait()
        return f"search:{artist}"

    tool = StructuredTool.from_function(coroutine=search, name="search", description="search")
    return label_tool(tool, safe=True)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_final_input_before_the_revised_result_still_answers(backend: str) -> None:
    # The race the old test script lost under load, scripted: the final input arrives
    # while the revised search still runs, so the model confirms only a, and calls b
    # again after the commit point, when a's result is in.
    lab = Lab()
    tools = [gated_search(lab, "Taylor Swift"), lab.tool("play_song", safe=False)]
    model = model_of(Script(revising_listener), backend)

    async def speech(run: SpeculativeRun) -> None:
        run.input.push("play Taylor")
        await wait_until(lambda: b_plays(run, "Taylor"))
        run.input.push("play Taylor Swift")
        await wait_until(lambda: b_cancelled(run))
        run.input.push("play Taylor Swift", final=True)
        await wait_until(lambda: run.commit_at is not None)
        lab.gate("Taylor Swift").set()

    async with SpeculativeRun(model, tools) as run:
        out, _ = await invoke(run, speech(run))
    assert [c["id"] for c in out["final_plan"]] == ["a"]
    assert [c["args"] for c in run.extra_calls] == [{"artist": "Taylor Swift"}]
    assert out["messages"][-1].content == "playing"
    assert lab.count("start", "play_song") == 1  # once: the call after the commit point
    assert lab.times("start", "play_song")[0] >= (run.commit_at or 0)
    assert run.ledger.get("b").started_at is None  # the speculative b never ran


def old_revision_script(v: ListenerView) -> list[Action]:
    """The script the revision test had: once confirmed it never calls b again."""
    if v.confirmed:
        return [Answer("playing")] if {"a", "b"} <= v.results else []
    artist = "Taylor Swift" if "Swift" in v.transcript else "Taylor"
    if "a" not in v.calls:
        return [Call("a", "search", {"artist": artist})]
    if v.calls["a"][1]["artist"] != artist:
        return [Revise("a", "search", {"artist": artist})]
    if v.final:
        if "a" in v.results and v.calls["b"][1]["artist"] != artist:
            return [Confirm(("a",)), Call("b", "play_song", {"artist": artist}, ("a",))]
        return [Confirm(("a", "b"))] if "a" in v.results else [Confirm(("a",))]
    if "a" not in v.results:
        return []
    if "b" not in v.calls or v.calls["b"][1]["artist"] != artist:
        return [Call("b", "play_song", {"artist": artist}, depends_on=("a",))]
    return []


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_model_waiting_after_every_result_is_in_fails_at_once(backend: str) -> None:
    # The hang under load, made deterministic: the final input comes before the revised
    # search's result, the old script confirms only a, sees a's result after the commit
    # point and pauses for ever (b was cancelled and is never called again). The run
    # must fail at once, not wait: nothing can reach the model any more.
    lab = Lab()
    tools = [gated_search(lab, "Taylor Swift"), lab.tool("play_song", safe=False)]
    model = model_of(Script(old_revision_script), backend)

    async def speech(run: SpeculativeRun) -> None:
        run.input.push("play Taylor")
        await wait_until(lambda: b_plays(run, "Taylor"))
        run.input.push("play Taylor Swift")
        await wait_until(lambda: b_cancelled(run))
        run.input.push("play Taylor Swift", final=True)
        await wait_until(lambda: run.commit_at is not None)
        lab.gate("Taylor Swift").set()

    started = time.perf_counter()
    async with SpeculativeRun(model, tools) as run:
        with pytest.raises(StalledError, match="every result is in: it must ANSWER"):
            async with asyncio.timeout(5):  # the old code waited here for ever
                await invoke(run, speech(run))
    assert time.perf_counter() - started < 5
    assert run.commit_at is not None and list(run.speculation.final_records()) == ["a"]


async def test_a_cached_result_is_shown_under_the_id_that_asks_for_it() -> None:
    lab = Lab()

    def decide(v: ListenerView) -> list[Action]:
        if "a" not in v.calls:
            return [Call("a", "get_weather", {"city": "Paris"})]
        if "a" in v.results and "b" not in v.calls:
            return [Call("b", "get_weather", {"city": "Paris"})]
        if v.final and not v.confirmed:
            return [Confirm(("a", "b"))]
        return [Answer("sunny twice")] if v.confirmed and {"a", "b"} <= v.results else []

    model = model_of(Script(decide))

    async def speech(run: SpeculativeRun) -> None:
        run.input.push("weather in Paris")
        async with asyncio.timeout(GUARD_S):
            while not any(isinstance(x, ToolResult) and x.call_id == "b" for x in run.items):
                await asyncio.sleep(0.001)
        run.input.push("weather in Paris twice", final=True)

    async with SpeculativeRun(model, [lab.tool("get_weather")]) as run:
        out, _ = await invoke(run, speech(run))
    assert lab.count("start", "get_weather") == 1
    assert run.stats["reused"] == 1
    b = [x for x in run.items if isinstance(x, ToolResult) and x.call_id == "b"]
    assert len(b) == 1 and b[0].status == "success"
    tool_messages = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert [m.tool_call_id for m in tool_messages] == ["a", "b"]
    assert len({m.id for m in tool_messages}) == 2


async def test_calls_after_the_commit_point_get_their_own_ai_message() -> None:
    lab = Lab()

    def decide(v: ListenerView) -> list[Action]:
        if not v.final:
            return []
        if not v.confirmed:
            return [Confirm(())]
        if "c5" not in v.calls:
            return [Call("c5", "get_weather", {"city": "Rome"})]
        return [Answer("warm")] if "c5" in v.results else []

    model = model_of(Script(decide))
    async with SpeculativeRun(model, [lab.tool("get_weather")], run_id="x") as run:
        out, _ = await invoke(run, say(run, "weather in Rome"))
    messages = out["messages"]
    assert [type(m) for m in messages] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    assert messages[1].id == "calls-x" and messages[1].tool_calls[0]["id"] == "c5"
    assert messages[2].tool_call_id == "c5" and messages[-1].content == "warm"
    assert run.extra_calls[0]["args"] == {"city": "Rome"}
    assert convert_to_openai_messages(messages)[1]["tool_calls"][0]["id"] == "c5"


async def test_two_interactions_share_a_thread() -> None:
    lab = Lab()
    graph = create_speculative_agent().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "chat"}}
    for n in range(2):
        model = model_of(ListeningResponder(WEATHER_PLAY, premature=0.0))
        async with SpeculativeRun(model, lab_tools(lab)) as run:
            run.input.push(WEATHER_PLAY.question, final=True)
            async with asyncio.timeout(GUARD_S):
                out = await graph.ainvoke({"messages": []}, config, context=run)
        assert len(out["messages"]) == 5 * (n + 1)
    assert len({m.id for m in out["messages"]}) == 10
    assert [type(m) for m in out["messages"][5:]] == [type(m) for m in out["messages"][:5]]


# -- errors: clear, never a hang ------------------------------------------------------------


async def test_bad_input_updates_raise_clear_errors() -> None:
    async with SpeculativeRun(model_of([]), []) as run:
        for bad in ["", "   ", "\n"]:
            with pytest.raises(InputUpdateError, match="empty"):
                run.input.push(bad)
        with pytest.raises(InputUpdateError):
            run.input.push(123)  # type: ignore[arg-type]
        run.input.push("hello", final=True)
        with pytest.raises(InputUpdateError, match="final"):
            run.input.push("hello again")


def fixed(text: str) -> list[ModelTurn]:
    return [ModelTurn(text=text)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("script", "final", "error", "match"),
    [
        (fixed("HELLO WORLD\n"), True, InteractionFormatError, "not an action"),
        (fixed('CALL c1 {"name": "get_weather"\n'), True, InteractionFormatError, "JSON"),
        (fixed("CONFIRM\n"), False, SpeculativeError, "before the final input"),
        (fixed("CONFIRM c9\n"), True, SpeculativeError, "unknown call 'c9'"),
        (fixed("ANSWER too soon\n"), True, SpeculativeError, "before confirming"),
    ],
)
async def test_protocol_errors_fail_the_graph(
    backend: str, script: list[ModelTurn], final: bool, error: type[Exception], match: str
) -> None:
    lab = Lab()
    model = model_of(script, backend, ttft=1.0)
    async with SpeculativeRun(model, [lab.tool("get_weather")]) as run:
        run.input.push("weather in Paris", final=final)
        with pytest.raises(error, match=match):
            await invoke(run)


async def test_revising_after_the_commit_point_is_an_error() -> None:
    model = model_of(fixed('CONFIRM\nREVISE c1 {"name": "get_weather", "arguments": {}}\n'))
    async with SpeculativeRun(model, [Lab().tool("get_weather")]) as run:
        run.input.push("weather", final=True)
        with pytest.raises(SpeculativeError, match="REVISE after the commit point"):
            await invoke(run)


async def test_session_ending_without_an_answer_is_an_error() -> None:
    model = model_of(fixed("CONFIRM\n"))
    async with SpeculativeRun(model, []) as run:
        run.input.push("hi", final=True)
        with pytest.raises(SpeculativeError, match="ended without an answer"):
            await invoke(run)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_input_closed_before_the_final_update(backend: str) -> None:
    model = model_of(Script(lambda v: []), backend)

    async def speech(run: SpeculativeRun) -> None:
        run.input.push("weather in")
        await asyncio.sleep(0.005)
        run.input.close()

    async with SpeculativeRun(model, []) as run:
        with pytest.raises(SpeculativeError, match="closed before the user's final input"):
            await invoke(run, speech(run))


async def test_stateless_pause_with_nothing_to_wait_for_is_an_error() -> None:
    model = model_of(Script(lambda v: []), "stateless")
    async with SpeculativeRun(model, []) as run:
        run.input.push("weather in Paris", final=True)
        with pytest.raises(SpeculativeError, match="without CONFIRM"):
            await invoke(run)

    model = model_of(Script(lambda v: [] if v.confirmed else [Confirm(())]), "stateless")
    async with SpeculativeRun(model, []) as run:
        run.input.push("weather in Paris", final=True)
        with pytest.raises(SpeculativeError, match="must ANSWER"):
            await invoke(run)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_unhandled_tool_error_fails_the_run(backend: str) -> None:
    lab = Lab()

    def decide(v: ListenerView) -> list[Action]:
        if "c0" not in v.calls:
            return [Call("c0", "get_weather", {"city": "Paris"})]
        return []

    model = model_of(Script(decide), backend)
    tools = [lab.tool("get_weather", fail=True)]
    async with SpeculativeRun(model, tools, handle_tool_errors=False) as run:
        with pytest.raises(ValueError, match="kaput"):
            await invoke(run, say(run, "weather in Paris"))


async def test_handled_tool_error_reaches_the_model() -> None:
    lab = Lab()

    def decide(v: ListenerView) -> list[Action]:
        if "c0" not in v.calls:
            return [Call("c0", "get_weather", {"city": "Paris"})]
        if v.final and not v.confirmed:
            return [Confirm(("c0",))]
        return [Answer("failed")] if v.confirmed and "c0" in v.results else []

    model = model_of(Script(decide))
    async with SpeculativeRun(model, [lab.tool("get_weather", fail=True)]) as run:
        out, _ = await invoke(run, say(run, "weather in Paris"))
    result = next(x for x in run.items if isinstance(x, ToolResult))
    assert result.status == "error" and "kaput" in result.content
    assert out["messages"][2].status == "error"


async def test_a_run_serves_one_interaction_and_needs_its_context() -> None:
    lab = Lab()
    model = model_of(ListeningResponder(WEATHER_PLAY, premature=0.0))
    async with SpeculativeRun(model, lab_tools(lab)) as run:
        run.input.push(WEATHER_PLAY.question, final=True)
        await invoke(run)
        with pytest.raises(SpeculativeError, match="already ran"):
            await run.listen([])
    graph = create_speculative_agent().compile()
    with pytest.raises(SpeculativeError, match="SpeculativeRun as the runtime context"):
        await graph.ainvoke({"messages": []}, context={"x": 1})


async def test_a_sync_invoke_or_stream_is_refused_naming_ainvoke() -> None:
    graph = create_speculative_agent().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "sync"}}
    async with SpeculativeRun(model_of([]), []) as run:
        run.input.push("hello", final=True)
        calls = [
            lambda: graph.invoke({"messages": []}, config, context=run),
            lambda: list(graph.stream({"messages": []}, config, context=run)),
            lambda: create_speculative_agent().compile().invoke({"messages": []}),  # no context
        ]
        for call in calls:
            with pytest.raises(AsyncOnlyError, match=r"'listen' is async only.*ainvoke/astream"):
                call()
        assert run.items == []  # the model never heard anything
    assert issubclass(AsyncOnlyError, SpeculativeError) and issubclass(AsyncOnlyError, TypeError)


def test_the_factory_takes_no_model_or_tools_and_warns_on_the_old_call() -> None:
    nodes = set(create_speculative_agent().nodes)
    assert nodes == {"listen", "commit", "abort", "respond"}
    with pytest.warns(DeprecationWarning, match="takes no model or tools"):
        old = create_speculative_agent(model_of([]), [])
    assert set(old.nodes) == nodes


# -- cancellation ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_cancelling_the_run_leaves_no_tasks(backend: str) -> None:
    lab = Lab()
    tools = [lab.tool("get_weather", gated=True), lab.tool("play_song", safe=False)]
    model = model_of(ListeningResponder(WEATHER_PLAY, premature=0.0), backend, tpot=0.2)
    graph = create_speculative_agent().compile()
    before = asyncio.all_tasks()
    async with SpeculativeRun(model, tools) as run:
        run.input.push("What is the weather in Paris")
        agent = asyncio.create_task(graph.ainvoke({"messages": []}, context=run))
        async with asyncio.timeout(GUARD_S):
            while not lab.count("start", "get_weather"):
                await asyncio.sleep(0.001)
        run.input.push("What is the weather in Paris and play")  # mid-speech
        await asyncio.sleep(0.005)
        agent.cancel()
        with pytest.raises(asyncio.CancelledError):
            await agent
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == before
    assert lab.count("cancelled", "get_weather") == 1
    assert lab.count("start", "play_song") == 0
    assert all(r.state.terminal for r in run.ledger)


async def test_a_pause_begun_before_the_model_read_the_final_input_is_not_an_error() -> None:
    # the session decides PAUSE, then the final input is injected while the pause streams:
    # the model had not read it, so the run goes on to the next step (which confirms)
    def decide(v: ListenerView) -> list[Action]:
        if v.confirmed:
            return [Answer("found")] if "a" in v.results else []
        if v.final:
            return [Call("a", "search", {"artist": "x"}), Confirm(("a",))]
        return []

    lab = Lab()
    script = Script(decide)
    model = model_of(script, "interruptible", tpot=20.0)

    async def speech(run: SpeculativeRun) -> None:
        run.input.push("play")
        async with asyncio.timeout(GUARD_S):
            while script.requests < 1:  # the model decided its first turn: PAUSE
                await asyncio.sleep(0.001)
        run.input.push("play x", final=True)  # injected while the pause is being streamed

    async with SpeculativeRun(model, [lab.tool("search")]) as run:
        out, _ = await invoke(run, speech(run))
    assert out["messages"][-1].content == "found"
    assert lab.count("start", "search") == 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_model_that_pauses_after_the_final_input_gets_a_clear_error(backend: str) -> None:
    # results are held from the final input until CONFIRM, so waiting would never end
    def decide(v: ListenerView) -> list[Action]:
        return [] if v.final else [Call("a", "search", {"artist": "x"})]

    lab = Lab()
    model = model_of(Script(decide), backend)

    async def speech(run: SpeculativeRun) -> None:
        run.input.push("play x", final=True)

    async with SpeculativeRun(model, [lab.tool("search")]) as run:
        with pytest.raises(SpeculativeError, match="paused after the final input"):
            await invoke(run, speech(run))


# -- every wait is bounded, or fails at once when it cannot end --------------------------------


@pytest.mark.parametrize("bad", [None, 0, -1.0, float("inf"), float("nan"), True, "5"])
def test_wait_timeout_must_be_a_finite_positive_number(bad: Any) -> None:
    with pytest.raises(ValueError, match="wait_timeout"):
        SpeculativeRun(model_of([]), [], wait_timeout=bad)


@pytest.mark.parametrize(
    ("backend", "awaited"),
    [
        ("interruptible", "the model session's next chunk"),
        ("stateless", "a new input update or tool result to show the model"),
    ],
)
async def test_input_that_never_comes_fails_after_the_wait_timeout(
    backend: str, awaited: str
) -> None:
    model = model_of(Script(lambda v: []), backend)  # it waits for more input
    started = time.perf_counter()
    async with SpeculativeRun(model, [], wait_timeout=0.2) as run:
        run.input.push("weather in")  # ... and the user never says more
        with pytest.raises(WaitTimeoutError) as info:
            await invoke(run)
    assert 0.2 <= time.perf_counter() - started < GUARD_S / 2
    error = info.value
    assert isinstance(error, TimeoutError) and isinstance(error, SpeculativeError)
    assert error.timeout == 0.2 and error.awaited == awaited
    assert str(error).startswith(f"waited 0.2 s for {awaited}")
    assert "final input not heard yet" in str(error)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_model_waiting_for_a_hung_tool_fails_after_the_wait_timeout(backend: str) -> None:
    lab = Lab()

    def decide(v: ListenerView) -> list[Action]:
        if not v.final:
            return []
        if not v.confirmed:
            return [Call("c0", "get_weather", {"city": "Paris"}), Confirm(("c0",))]
        return [Answer("sunny")] if "c0" in v.results else []  # waits for the result

    model = model_of(Script(decide), backend)
    async with SpeculativeRun(
        model, [lab.tool("get_weather", gated=True)], wait_timeout=0.2
    ) as run:
        run.input.push("weather in Paris", final=True)
        with pytest.raises(WaitTimeoutError, match=r"c0 \(get_weather, running\)") as info:
            await invoke(run)
    assert "commit point passed" in str(info.value)
    assert lab.count("cancelled", "get_weather") == 1  # closing the run stopped it


async def test_a_result_respond_needs_that_never_comes_fails_after_the_wait_timeout() -> None:
    lab = Lab()

    def decide(v: ListenerView) -> list[Action]:
        if not v.confirmed:
            return [Call("c0", "get_weather", {"city": "Paris"}), Confirm(("c0",))]
        return [Answer("sunny")]  # at once: respond waits for c0's result

    model = model_of(Script(decide))
    async with SpeculativeRun(
        model, [lab.tool("get_weather", gated=True)], wait_timeout=0.2
    ) as run:
        run.input.push("weather in Paris", final=True)
        with pytest.raises(WaitTimeoutError, match="the result of call 'c0' \\(get_weather\\)"):
            await invoke(run)
    assert run.answer_at is not None


async def test_a_session_waiting_silently_after_the_final_input_fails_at_once() -> None:
    # The model pauses, then reads the final input and goes on waiting without writing
    # anything (a trapped session stays trapped silently): nothing else can come before it
    # confirms, so the run fails at once; the old code waited for ever.
    script = Script(lambda v: [])
    model = model_of(script, "interruptible")

    async def speech(run: SpeculativeRun) -> None:
        run.input.push("play")
        await wait_until(lambda: any(isinstance(x, ModelAction) for x in run.items))
        run.input.push("play x", final=True)

    started = time.perf_counter()
    async with SpeculativeRun(model, []) as run:  # the default wait_timeout (300 s)
        with pytest.raises(StalledError, match=r"final input .* nothing else can arrive"):
            async with asyncio.timeout(5):
                await invoke(run, speech(run))
    assert time.perf_counter() - started < 5
    assert script.requests >= 2  # it did read the final input
    assert [type(x.action) for x in run.items if isinstance(x, ModelAction)] == [Pause]
