"""The in-process ScriptedChatModel, and its parity with ChatOpenAI through the sim server."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import openai
import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from langgraph_speculative.errors import ScriptError
from langgraph_speculative.integrations import (
    LatencyModel,
    ModelTurn,
    PlannedCall,
    ScriptedChatModel,
    ScriptedTask,
    TaskResponder,
    plan_stream,
)
from langgraph_speculative.integrations.sim.server import SimServer

SEARCH = {
    "name": "search",
    "description": "Search the web.",
    "parameters": {
        "type": "object",
        "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["query"],
    },
}
FETCH = {
    "name": "fetch",
    "description": "Fetch a page.",
    "parameters": {
        "type": "object",
        "properties": {"url": {"type": "string"}},
        "required": ["url"],
    },
}
TASK = ScriptedTask(
    id="research",
    question="Find three reviews of the café « Zürich-Süd » and summarise them.",
    functions=(SEARCH, FETCH),
    calls=(
        PlannedCall("0", "search", {"query": "café « Zürich-Süd » reviews", "limit": 3}),
        PlannedCall("1", "fetch", {"url": "https://example.org/a?x=1&y=ü"}),
        PlannedCall("2", "fetch", {"url": "https://example.org/b"}, depends_on=("0",)),
    ),
    answer_tokens=13,
)
MIXED = [
    ModelTurn.calls(
        ("search", {"query": "naïve ☃ query"}),
        ("fetch", {"url": "https://example.org"}),
        text="Let me look that up — 一下.",
    ),
    ModelTurn(text=""),  # an empty turn
]
TOOLS = [{"type": "function", "function": f} for f in (SEARCH, FETCH)]


@tool
def search(query: str, limit: int = 3) -> str:
    """Search the web."""
    return f"results for {query}"


@tool
def fetch(url: str) -> str:
    """Fetch a page."""
    return f"page {url}"


@pytest.fixture(scope="module")
def srv() -> Iterator[SimServer]:
    server = SimServer(tasks=[TASK], latency=LatencyModel.zero())
    server.register("mixed", MIXED)
    with server:
        yield server


def openai_model(srv: SimServer, model: str, **kwargs: Any) -> ChatOpenAI:
    kwargs.setdefault("streaming", True)
    return ChatOpenAI(
        base_url=srv.base_url,
        api_key="sim",
        model=model,
        stream_usage=True,
        max_retries=0,
        # A fresh async HTTP client per model: langchain-openai caches its default one per
        # (base_url, timeout), and pytest-asyncio gives each test its own event loop.
        http_async_client=openai.DefaultAsyncHttpxClient(),
        **kwargs,
    )


def shape(chunk: AIMessageChunk) -> tuple[Any, ...]:
    """What must be equal chunk by chunk between the two models.

    Left out, because they are provider specific: ``id`` (both get LangChain run ids),
    ``response_metadata`` (ChatOpenAI adds ``model_provider: "openai"`` to every chunk and
    reports the request's model name, such as ``"parallel/research"``, where the in-process
    model reports its ``model_name``), and ``usage_metadata`` details (ChatOpenAI adds
    empty ``input_token_details``/``output_token_details``).
    """
    usage = chunk.usage_metadata
    return (
        chunk.content,
        [(c["name"], c["args"], c["id"], c["index"]) for c in chunk.tool_call_chunks],
        chunk.response_metadata.get("finish_reason"),
        None if usage is None else (usage["input_tokens"], usage["output_tokens"]),
        chunk.chunk_position,
    )


def conversation(
    task: ScriptedTask, policy: Literal["parallel", "sequential"]
) -> list[list[BaseMessage]]:
    """The prompt of every turn of ``task`` played to its end, with fake tool results."""
    responder = TaskResponder(task, policy=policy)
    history: list[BaseMessage] = [HumanMessage(task.question)]
    prompts = []
    while True:
        prompts.append(list(history))
        turn = responder(history)
        history.append(AIMessage(content=turn.text, tool_calls=list(turn.tool_calls)))
        if not turn.tool_calls:
            return prompts
        history += [ToolMessage(f"r{c['id']}", tool_call_id=c["id"]) for c in turn.tool_calls]


async def collect(model: Any, prompt: Sequence[BaseMessage]) -> list[AIMessageChunk]:
    chunks = []
    async for chunk in model.astream(prompt):
        assert isinstance(chunk, AIMessageChunk)
        chunks.append(chunk)
    return chunks


# -- parity with ChatOpenAI through the server ------------------------------------------
@pytest.mark.parametrize("policy", ["parallel", "sequential"])
async def test_task_stream_matches_chatopenai_chunk_by_chunk(
    srv: SimServer, policy: Literal["parallel", "sequential"]
) -> None:
    local = ScriptedChatModel(script=TaskResponder(TASK, policy=policy)).bind_tools(TOOLS)
    remote = openai_model(srv, f"{policy}/{TASK.id}").bind_tools(TOOLS)
    for prompt in conversation(TASK, policy):
        mine = await collect(local, prompt)
        theirs = await collect(remote, prompt)
        assert [shape(c) for c in mine] == [shape(c) for c in theirs]
        merged_mine, merged_theirs = sum(mine[1:], mine[0]), sum(theirs[1:], theirs[0])
        assert merged_mine.tool_calls == merged_theirs.tool_calls
        assert merged_mine.content == merged_theirs.content


async def test_mixed_text_and_calls_match_chunk_by_chunk(srv: SimServer) -> None:
    local = ScriptedChatModel(script=MIXED).bind_tools([search, fetch])
    remote = openai_model(srv, "mixed").bind_tools([search, fetch])
    for prompt in ([HumanMessage("go")], [HumanMessage("go"), AIMessage("x"), HumanMessage("on")]):
        mine = await collect(local, prompt)
        theirs = await collect(remote, prompt)
        assert [shape(c) for c in mine] == [shape(c) for c in theirs]
    # And the first turn streams what plan_stream plans, text before calls.
    mine = await collect(local, [HumanMessage("go")])
    pieces = plan_stream(MIXED[0])
    assert len(mine) == len(pieces) + 3  # + finish, usage, LangChain's closing chunk
    assert "".join(str(c.content) for c in mine) == MIXED[0].text


async def test_ainvoke_aggregates_equal(srv: SimServer) -> None:
    local = ScriptedChatModel(script=TaskResponder(TASK)).bind_tools(TOOLS)
    remote = openai_model(srv, f"parallel/{TASK.id}").bind_tools(TOOLS)
    mine = await local.ainvoke(TASK.question)
    theirs = await remote.ainvoke(TASK.question)
    expected = [TASK.tool_call(TASK.call(i)) for i in ("0", "1")]
    assert mine.tool_calls == theirs.tool_calls == expected
    assert mine.response_metadata["finish_reason"] == "tool_calls"
    assert theirs.response_metadata["finish_reason"] == "tool_calls"
    assert mine.usage_metadata is not None and theirs.usage_metadata is not None
    assert mine.usage_metadata["output_tokens"] == theirs.usage_metadata["output_tokens"]


# -- the script ---------------------------------------------------------------------------
async def test_fixed_script_exhausted_raises() -> None:
    model = ScriptedChatModel(script=[ModelTurn(text="one")])
    assert (await model.ainvoke("a")).content == "one"
    later = [HumanMessage("a"), AIMessage("one"), HumanMessage("b")]
    with pytest.raises(ScriptError, match="1 turns; turn 2"):
        await model.ainvoke(later)
    with pytest.raises(ScriptError):
        async for _ in model.astream(later):
            pass
    with pytest.raises(ScriptError):
        model.invoke(later)


async def test_unbound_tool_raises() -> None:
    model = ScriptedChatModel(script=[ModelTurn.calls(("fetch", {"url": "u"}))])
    bound = model.bind_tools([search])
    with pytest.raises(ScriptError, match="not bound"):
        await bound.ainvoke("go")
    with pytest.raises(ScriptError, match="not bound"):
        bound.invoke("go")
    # Unbound model: unchecked; bound to the right tool: fine.
    assert (await model.ainvoke("go")).tool_calls[0]["name"] == "fetch"
    assert (await model.bind_tools([fetch]).ainvoke("go")).tool_calls[0]["name"] == "fetch"


def test_sync_invoke_and_stream() -> None:
    model = ScriptedChatModel(script=MIXED).bind_tools([search, fetch])
    reply = model.invoke("go")
    assert isinstance(reply, AIMessage)
    assert reply.content == MIXED[0].text
    assert reply.tool_calls == list(MIXED[0].tool_calls)
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    streamed = list(model.stream("go"))
    merged = sum(streamed[1:], streamed[0])
    assert isinstance(merged, AIMessageChunk)
    assert merged.tool_calls == reply.tool_calls


def test_sync_invoke_through_the_server(srv: SimServer) -> None:
    remote = openai_model(srv, "mixed").bind_tools([search, fetch])
    reply = remote.invoke("go")
    assert reply.content == MIXED[0].text
    assert reply.tool_calls == list(MIXED[0].tool_calls)


# -- latency ------------------------------------------------------------------------------
PACED = LatencyModel(ttft_ms=50, tpot_ms=2, tool_lo_ms=0, tool_hi_ms=0)
PACED_TURN = ModelTurn.calls(("search", {"query": "pacing", "limit": 1}))


async def _first_and_last(model: Any) -> tuple[float, float]:
    t0 = time.monotonic()
    first = last = None
    async for _ in model.astream("go"):
        now = time.monotonic() - t0
        first = now if first is None else first
        last = now
    assert first is not None and last is not None
    return first * 1000, last * 1000


async def test_pacing_lower_bounds() -> None:
    # Lower bounds only: a loaded machine may be slower, never faster.
    first_ms = PACED.ttft_ms + plan_stream(PACED_TURN)[0].tokens * PACED.tpot_ms
    total_ms = PACED.ttft_ms + PACED_TURN.output_tokens * PACED.tpot_ms
    local = ScriptedChatModel(script=[PACED_TURN], latency=PACED)
    first, last = await _first_and_last(local)
    assert first >= first_ms - 1
    assert last >= total_ms - 1
    with SimServer(latency=PACED) as server:
        server.register("paced", [PACED_TURN])
        first, last = await _first_and_last(openai_model(server, "paced"))
        assert first >= first_ms - 1
        assert last >= total_ms - 1
        t0 = time.monotonic()
        reply = await openai_model(server, "paced", streaming=False).ainvoke("go")
        assert (time.monotonic() - t0) * 1000 >= total_ms - 1  # non-streaming waits too
        assert reply.tool_calls == list(PACED_TURN.tool_calls)


async def test_prefill_charges_only_the_uncached_suffix() -> None:
    lat = LatencyModel(ttft_ms=10, tpot_ms=0, prefill_ms_per_1k=1000)
    model = ScriptedChatModel(script=[ModelTurn(text="a")] * 3, latency=lat)
    prompt: list[BaseMessage] = [HumanMessage("x" * 400)]  # 100 tokens
    assert model.prompt_ms(prompt) == pytest.approx(10 + 100)
    assert model.prompt_ms(prompt) == pytest.approx(10)  # cached now
    longer = [*prompt, AIMessage("y" * 40)]  # + 10 uncached tokens
    assert model.prompt_ms(longer) == pytest.approx(10 + 10)
