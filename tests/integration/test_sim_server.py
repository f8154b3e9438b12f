"""The OpenAI-compatible simulated model server, driven by the real ChatOpenAI."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from helpers import REPO_ROOT
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from langgraph_speculative import cli
from langgraph_speculative.integrations import (
    LatencyModel,
    ModelTurn,
    PlannedCall,
    ScriptedTask,
)
from langgraph_speculative.integrations.sim import server as sim_server
from langgraph_speculative.integrations.sim.latency import add_latency_arguments
from langgraph_speculative.integrations.sim.server import SimServer

WEATHER = {
    "name": "get_weather",
    "description": "Current weather of a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
TIME = {
    "name": "get_time",
    "description": "Local time of a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
TRIP = ScriptedTask(
    id="trip",
    question="Weather in Paris and Rome, then the time in the warmer one?",
    functions=(WEATHER, TIME),
    calls=(
        PlannedCall("0", "get_weather", {"city": "Paris"}),
        PlannedCall("1", "get_weather", {"city": "Rome"}),
        PlannedCall("2", "get_time", {"city": "Rome"}, depends_on=("0", "1")),
    ),
)
SOLO = ScriptedTask(
    id="solo",
    question="Weather in Oslo?",
    functions=(WEATHER,),
    calls=(PlannedCall("0", "get_weather", {"city": "Oslo"}),),
    answer_tokens=8,
)
OPENAI_TOOLS = [{"type": "function", "function": f} for f in (WEATHER, TIME)]


@tool
def get_weather(city: str) -> str:
    """Current weather of a city."""
    return f"sunny in {city}"


@tool
def get_time(city: str) -> str:
    """Local time of a city."""
    return f"12:00 in {city}"


@pytest.fixture(scope="module")
def srv() -> Iterator[SimServer]:
    server = SimServer(tasks=[TRIP, SOLO], latency=LatencyModel.zero())
    server.register("fixed", [ModelTurn(text="only one turn")])
    server.register("rogue", [ModelTurn.calls(("delete_everything", {}))])
    with server:
        yield server


def chat(srv: SimServer, model: str, **kwargs: Any) -> ChatOpenAI:
    kwargs.setdefault("streaming", True)
    kwargs.setdefault("stream_usage", True)
    # A fresh async HTTP client per model: langchain-openai caches its default one per
    # (base_url, timeout), and pytest-asyncio gives each test its own event loop.
    return ChatOpenAI(
        base_url=srv.base_url,
        api_key="sim",
        model=model,
        max_retries=0,
        http_async_client=openai.DefaultAsyncHttpxClient(),
        **kwargs,
    )


def sse_events(lines: Iterator[str]) -> list[Any]:
    events: list[Any] = []
    for line in lines:
        if line.startswith("data: "):
            data = line[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


# -- ChatOpenAI end to end ----------------------------------------------------------------
async def test_astream_yields_the_scripted_tool_calls(srv: SimServer) -> None:
    llm = chat(srv, "parallel/trip").bind_tools([get_weather, get_time])
    merged: AIMessageChunk | None = None
    async for chunk in llm.astream(TRIP.question):
        assert isinstance(chunk, AIMessageChunk)
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    expected = [TRIP.tool_call(TRIP.call("0")), TRIP.tool_call(TRIP.call("1"))]
    assert [(c["name"], c["args"], c["id"]) for c in merged.tool_calls] == [
        (c["name"], c["args"], c["id"]) for c in expected
    ]
    assert merged.response_metadata["finish_reason"] == "tool_calls"
    assert merged.usage_metadata is not None and merged.usage_metadata["output_tokens"] > 0


async def test_ainvoke_streaming_and_not(srv: SimServer) -> None:
    for streaming in (True, False):
        llm = chat(srv, "sequential/trip", streaming=streaming).bind_tools(OPENAI_TOOLS)
        reply = await llm.ainvoke([HumanMessage(TRIP.question)])
        assert isinstance(reply, AIMessage)
        assert reply.tool_calls == [TRIP.tool_call(TRIP.call("0"))]
        assert reply.response_metadata["finish_reason"] == "tool_calls"


def test_sync_invoke_non_streaming(srv: SimServer) -> None:
    llm = chat(srv, "fixed", streaming=False)
    reply = llm.invoke("hello")
    assert reply.content == "only one turn"
    assert reply.tool_calls == []
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] == ModelTurn(text="only one turn").output_tokens


async def test_tool_results_sent_back_give_the_next_turn(srv: SimServer) -> None:
    llm = chat(srv, "parallel/trip").bind_tools(OPENAI_TOOLS)
    first = await llm.ainvoke(TRIP.question)
    history = [HumanMessage(TRIP.question), first]
    history += [ToolMessage("ok", tool_call_id=c["id"]) for c in first.tool_calls]
    second = await llm.ainvoke(history)
    assert second.tool_calls == [TRIP.tool_call(TRIP.call("2"))]
    history += [second, ToolMessage("12:00", tool_call_id=second.tool_calls[0]["id"])]
    final = await llm.ainvoke(history)
    assert final.content == TRIP.final_answer()
    assert final.response_metadata["finish_reason"] == "stop"


@pytest.mark.parametrize("policy", ["parallel", "sequential"])
async def test_create_agent_runs_a_task_to_its_answer(srv: SimServer, policy: str) -> None:
    # "<policy>" alone: the server finds the task by the first user message.
    agent = create_agent(chat(srv, policy), tools=[get_weather, get_time])
    state = await agent.ainvoke({"messages": [HumanMessage(TRIP.question)]})
    messages = state["messages"]
    assert messages[-1].content == TRIP.final_answer()
    tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
    assert sorted(m.tool_call_id for m in tool_messages) == sorted(
        TRIP.tool_call_id(c) for c in TRIP.calls
    )
    ai_turns = [m for m in messages if isinstance(m, AIMessage)]
    assert len(ai_turns) == (3 if policy == "parallel" else 4)


# -- errors -------------------------------------------------------------------------------
async def test_unknown_model_is_not_found(srv: SimServer) -> None:
    for model in ("no-such-model", "parallel/no-such-task", "greedy/trip"):
        with pytest.raises(openai.NotFoundError) as info:
            await chat(srv, model).ainvoke(TRIP.question)
        assert "does not exist" in str(info.value) or "no task" in str(info.value)


async def test_policy_without_matching_question_is_not_found(srv: SimServer) -> None:
    with pytest.raises(openai.NotFoundError, match="no task with the question"):
        await chat(srv, "parallel").ainvoke("a question no task has")


def test_malformed_requests_are_400_json(srv: SimServer) -> None:
    url = f"{srv.base_url}/chat/completions"
    bad_bodies: list[tuple[bytes, str]] = [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"model": "fixed"}).encode(), "'messages'"),
        (json.dumps({"model": "fixed", "messages": []}).encode(), "'messages'"),
        (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), "'model'"),
        (json.dumps({"model": "fixed", "messages": [{"role": "alien"}]}).encode(), "malformed"),
        (
            json.dumps(
                {"model": "fixed", "messages": [{"role": "user", "content": "x"}], "tools": [1]}
            ).encode(),
            "malformed tool",
        ),
    ]
    with httpx.Client(timeout=10) as client:
        for body, fragment in bad_bodies:
            resp = client.post(url, content=body, headers={"content-type": "application/json"})
            assert resp.status_code == 400, body
            error = resp.json()["error"]
            assert fragment in error["message"]
            assert error["type"] == "invalid_request_error"
            assert error["code"]
        missing = client.get(f"{srv.base_url}/no/such/path")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        wrong_method = client.get(url)
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"]["code"] == "http_405"


async def test_script_errors_are_400(srv: SimServer) -> None:
    exhausted = [HumanMessage("a"), AIMessage("only one turn"), HumanMessage("b")]
    with pytest.raises(openai.BadRequestError, match="the script has 1 turns"):
        await chat(srv, "fixed").ainvoke(exhausted)
    with pytest.raises(openai.BadRequestError, match="not bound"):
        await chat(srv, "rogue").bind_tools([get_weather]).ainvoke("go")
    # A task asked to go on while results are missing (a ScriptError of the responder).
    llm = chat(srv, "parallel/trip", streaming=False)
    first = await llm.ainvoke(TRIP.question)
    with pytest.raises(openai.BadRequestError, match="are missing"):
        await llm.ainvoke([HumanMessage(TRIP.question), first])


def test_responder_crash_is_a_json_500_not_a_hang() -> None:
    def broken(messages: Any) -> ModelTurn:
        raise KeyError("boom")

    with SimServer() as server:
        server.register("broken", broken)
        body = {"model": "broken", "messages": [{"role": "user", "content": "x"}]}
        resp = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=10)
        assert resp.status_code == 500
        assert "KeyError" in resp.json()["error"]["message"]


# -- wire format --------------------------------------------------------------------------
def test_stream_wire_format(srv: SimServer) -> None:
    body = {
        "model": "parallel/trip",
        "messages": [{"role": "user", "content": TRIP.question}],
        "tools": OPENAI_TOOLS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", f"{srv.base_url}/chat/completions", json=body, timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.iter_lines())
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0
    finish = chunks[-2]["choices"][0]
    assert finish["finish_reason"] == "tool_calls" and finish["delta"] == {}
    deltas = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[:-2]]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])
    firsts = [d for d in deltas if "id" in d]
    assert firsts == [
        {
            "index": i,
            "id": TRIP.tool_call_id(TRIP.call(cid)),
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
        for i, cid in enumerate(["0", "1"])
    ]
    for index, city in enumerate(["Paris", "Rome"]):
        args = "".join(
            d["function"]["arguments"] for d in deltas if d["index"] == index and "id" not in d
        )
        assert json.loads(args) == {"city": city}
        assert all(set(d) == {"index", "function"} for d in deltas if "id" not in d)


def test_stream_without_usage_and_text_only(srv: SimServer) -> None:
    body = {"model": "fixed", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", f"{srv.base_url}/chat/completions", json=body, timeout=10) as r:
        events = sse_events(r.iter_lines())
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["choices"] for c in chunks)  # no usage chunk without include_usage
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "only one turn"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_models_endpoint(srv: SimServer) -> None:
    resp = httpx.get(f"{srv.base_url}/models", timeout=10)
    ids = {m["id"] for m in resp.json()["data"]}
    assert {"fixed", "rogue", "parallel", "sequential", "parallel/trip", "sequential/solo"} <= ids
    assert resp.json()["object"] == "list"


# -- lifecycle ----------------------------------------------------------------------------
async def test_client_disconnect_ends_the_stream() -> None:
    slow = LatencyModel(ttft_ms=0, tpot_ms=20, tool_lo_ms=0, tool_hi_ms=0)
    with SimServer(latency=slow) as server:
        server.register("long", [ModelTurn(text="x" * 4000)])  # 1000 tokens: 20 s
        body = {"model": "long", "messages": [{"role": "user", "content": "go"}], "stream": True}
        async with (
            httpx.AsyncClient(timeout=10) as client,
            client.stream("POST", f"{server.base_url}/chat/completions", json=body) as r,
        ):
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    break
            assert server.active_streams == 1
        deadline = time.monotonic() + 5
        while server.active_streams and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert server.active_streams == 0


def test_stop_ends_streams_in_progress() -> None:
    slow = LatencyModel(ttft_ms=0, tpot_ms=20, tool_lo_ms=0, tool_hi_ms=0)
    server = SimServer(latency=slow)
    server.register("long", [ModelTurn(text="x" * 4000)])
    body = {"model": "long", "messages": [{"role": "user", "content": "go"}], "stream": True}
    with server, httpx.Client(timeout=10) as client:
        r = client.send(
            client.build_request("POST", f"{server.base_url}/chat/completions", json=body),
            stream=True,
        )
        next(r.iter_lines())
        t0 = time.monotonic()
    stopped_in = time.monotonic() - t0
    r.close()
    assert server.active_streams == 0
    assert stopped_in < 5  # far below the 20 s the stream would take


def test_port_zero_picks_a_free_port_and_restarts() -> None:
    server = SimServer()
    with server:
        assert server.port > 0
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert httpx.get(f"{server.base_url}/models", timeout=10).status_code == 200
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.base_url}/models", timeout=2)
    with server:  # a stopped server starts again
        assert httpx.get(f"{server.base_url}/models", timeout=10).status_code == 200


def test_repeated_task_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="repeats"):
        SimServer(tasks=[SOLO, SOLO])


# -- command line -------------------------------------------------------------------------
def serve_sim_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="serve-sim")
    add_latency_arguments(parser)
    sim_server.add_arguments(parser)
    return parser


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "example.com", "::"])
def test_serve_sim_refuses_non_loopback_host(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        serve_sim_parser().parse_args(["--host", host])
    assert info.value.code == 2
    assert "loopback" in capsys.readouterr().err
    with pytest.raises(ValueError, match="loopback"):
        SimServer(host=host)
    args = serve_sim_parser().parse_args([])
    args.host = host
    with pytest.raises(ValueError, match="loopback"):
        sim_server.build_server(args)


def test_serve_sim_via_cli_main_refuses_non_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        cli.build_parser()
    except ImportError as exc:  # other sub-commands are still being written
        pytest.skip(f"the CLI does not import yet: {exc}")
    with pytest.raises(SystemExit) as info:
        cli.main(["serve-sim", "--host", "0.0.0.0"])
    assert info.value.code == 2
    assert "loopback" in capsys.readouterr().err


def test_build_server_uses_the_latency_flags() -> None:
    args = serve_sim_parser().parse_args(["--port", "0", "--ttft-ms", "7", "--tpot-ms", "1"])
    server = sim_server.build_server(args)
    assert (server.latency.ttft_ms, server.latency.tpot_ms) == (7, 1)
    assert server.host == "127.0.0.1" and server.tasks == []
    args.data = "questions.json"
    with pytest.raises(ValueError, match="go together"):
        sim_server.build_server(args)


BFCL = REPO_ROOT.parent / "shared" / "data" / "bfcl"


@pytest.mark.shared_data
def test_build_server_loads_bfcl_tasks() -> None:
    if importlib.util.find_spec("langgraph_speculative.integrations.sim.bfcl") is None:
        pytest.skip("the BFCL loader is not there yet")
    if not BFCL.is_dir():
        pytest.skip("../shared/data is absent")
    args = serve_sim_parser().parse_args(
        [
            "--port",
            "0",
            "--data",
            str(BFCL / "BFCL_v4_parallel.json"),
            "--answers",
            str(BFCL / "possible_answer" / "BFCL_v4_parallel.json"),
            "--limit",
            "3",
            "--answer-tokens",
            "5",
        ]
    )
    server = sim_server.build_server(args)
    assert len(server.tasks) == 3
    assert all(t.answer_tokens == 5 for t in server.tasks)
    task = server.tasks[0]
    with server:
        reply = chat(server, f"parallel/{task.id}", streaming=False).invoke(task.question)
    assert len(reply.tool_calls) == len([c for c in task.calls if not c.depends_on])


def test_run_serves_until_interrupted() -> None:
    code = (
        "import argparse, sys\n"
        "from langgraph_speculative.integrations.sim.latency import add_latency_arguments\n"
        "from langgraph_speculative.integrations.sim import server as sim_server\n"
        "p = argparse.ArgumentParser()\n"
        "add_latency_arguments(p)\n"
        "sim_server.add_arguments(p)\n"
        "sys.exit(sim_server.run(p.parse_args(sys.argv[1:])))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--profile", "local"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "serving the simulated model at http://127.0.0.1:" in line, proc.stderr
        base_url = line.split(" at ")[1].split()[0]
        deadline = time.monotonic() + 20
        while True:
            try:
                resp = httpx.get(f"{base_url}/models", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert resp.status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
