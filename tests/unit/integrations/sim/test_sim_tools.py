from __future__ import annotations

import asyncio
import json
import math
import threading
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from pydantic import ValidationError

from langgraph_speculative.core.safety import is_safe_tool
from langgraph_speculative.errors import DataFormatError
from langgraph_speculative.integrations.sim import tools as sim_tools
from langgraph_speculative.integrations.sim.latency import LatencyModel
from langgraph_speculative.integrations.sim.tools import (
    ToolJournal,
    default_result,
    expected_tool_ms,
    is_unsafe_name,
    make_simulated_tool,
    make_simulated_tools,
    openai_safe_name,
)

ZERO = LatencyModel.zero()


def fn(name: str, props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} tool",
        "parameters": {"type": "dict", "properties": props, "required": required or []},
    }


def one(ptype: dict[str, Any], *, required: bool = True) -> Any:
    return make_simulated_tool(fn("t", {"x": ptype}, ["x"] if required else []), latency=ZERO)


def ok(tool: Any, args: dict[str, Any]) -> None:
    out = tool.invoke(args)
    assert json.loads(out)["tool"] == tool.name


def bad(tool: Any, args: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        tool.invoke(args)


# --- schema conversion --------------------------------------------------------------------


def test_string_integer_float_boolean() -> None:
    ok(one({"type": "string"}), {"x": "a"})
    bad(one({"type": "string"}), {"x": 3})
    ok(one({"type": "integer"}), {"x": 3})
    bad(one({"type": "integer"}), {"x": "three"})
    bad(one({"type": "integer"}), {"x": 2.5})
    ok(one({"type": "float"}), {"x": 2.5})
    ok(one({"type": "float"}), {"x": 2})  # ints are fine for floats
    bad(one({"type": "float"}), {"x": "x"})
    ok(one({"type": "boolean"}), {"x": True})
    bad(one({"type": "boolean"}), {"x": "maybe"})


def test_enum() -> None:
    tool = one({"type": "string", "enum": ["celsius", "fahrenheit"]})
    ok(tool, {"x": "celsius"})
    bad(tool, {"x": "kelvin"})
    schema = tool.tool_call_schema.model_json_schema()
    assert schema["properties"]["x"]["enum"] == ["celsius", "fahrenheit"]


def test_array_tuple_dict_any() -> None:
    arr = one({"type": "array", "items": {"type": "integer"}})
    ok(arr, {"x": [1, 2]})
    bad(arr, {"x": ["a"]})
    bad(arr, {"x": 1})
    ok(one({"type": "array"}), {"x": [1, "a", None]})
    tup = one({"type": "tuple", "items": {"type": "float"}})
    ok(tup, {"x": [1.5, 2]})
    bad(tup, {"x": ["a", "b"]})
    nested = one(
        {
            "type": "dict",
            "properties": {"lo": {"type": "integer"}, "hi": {"type": "integer"}},
            "required": ["lo"],
        }
    )
    ok(nested, {"x": {"lo": 1}})
    ok(nested, {"x": {"lo": 1, "hi": 2}})
    bad(nested, {"x": {"hi": 2}})  # nested required
    bad(nested, {"x": {"lo": 1, "other": 2}})  # nested unknown key
    ok(one({"type": "dict"}), {"x": {"anything": [1]}})
    anything = one({"type": "any"})
    for value in (1, "a", [1], {"k": None}):
        ok(anything, {"x": value})


def test_optional_and_missing_required() -> None:
    tool = make_simulated_tool(
        fn("t", {"a": {"type": "string"}, "b": {"type": "integer", "default": 3}}, ["a"]),
        latency=ZERO,
    )
    ok(tool, {"a": "x"})
    ok(tool, {"a": "x", "b": None})
    ok(tool, {"a": "x", "b": 4})
    bad(tool, {"b": 4})
    bad(tool, {"a": "x", "c": 1})  # unknown parameter
    schema = tool.tool_call_schema.model_json_schema()
    assert schema["required"] == ["a"]
    assert schema["properties"]["b"]["default"] == 3  # BFCL default shown to the model


def test_openai_format_and_wrapper() -> None:
    params = {
        "type": "object",
        "properties": {"q": {"type": "string"}, "n": {"type": "number"}},
        "required": ["q"],
    }
    plain = make_simulated_tool({"name": "search", "parameters": params}, latency=ZERO)
    wrapped = make_simulated_tool(
        {"type": "function", "function": {"name": "search", "parameters": params}}, latency=ZERO
    )
    for tool in (plain, wrapped):
        assert tool.name == "search"
        ok(tool, {"q": "x", "n": 1.5})
        bad(tool, {"n": 1.5})
    union = one({"type": ["string", "null"]})
    ok(union, {"x": "a"})
    bad(union, {"x": 1})


def test_awkward_parameter_names() -> None:
    tool = make_simulated_tool(
        fn("t", {"_class": {"type": "string"}, "model_3d": {"type": "boolean"}}, ["_class"]),
        latency=ZERO,
    )
    ok(tool, {"_class": "a", "model_3d": True})
    bad(tool, {"model_3d": True})
    props = convert_to_openai_tool(tool)["function"]["parameters"]["properties"]
    assert set(props) == {"_class", "model_3d"}


def test_no_parameters() -> None:
    tool = make_simulated_tool({"name": "pwd", "parameters": {"type": "dict"}}, latency=ZERO)
    ok(tool, {})
    bad(tool, {"x": 1})


def test_unknown_type_names_the_function() -> None:
    with pytest.raises(DataFormatError, match=r"my\.fn.*Mystery"):
        make_simulated_tool(fn("my.fn", {"m": {"type": "Mystery"}}), latency=ZERO)
    with pytest.raises(DataFormatError, match="nested"):
        make_simulated_tool(
            fn("nested", {"m": {"type": "array", "items": {"type": "weird"}}}), latency=ZERO
        )
    with pytest.raises(DataFormatError, match="no_such"):
        make_simulated_tool(fn("f", {"a": {"type": "string"}}, ["no_such"]), latency=ZERO)
    with pytest.raises(DataFormatError):
        make_simulated_tool({"description": "nameless"}, latency=ZERO)


# --- results, latency, journal -------------------------------------------------------------


def test_deterministic_result_and_key_order() -> None:
    tool = make_simulated_tool(
        fn("f", {"a": {"type": "integer"}, "b": {"type": "string"}}), latency=ZERO
    )
    first = tool.invoke({"a": 1, "b": "x"})
    assert tool.invoke({"b": "x", "a": 1}) == first
    assert first == default_result("f", {"a": 1, "b": "x"})
    assert json.loads(first)["result"] != json.loads(tool.invoke({"a": 2, "b": "x"}))["result"]
    assert len(json.loads(first)["result"]) == 12


def test_custom_result() -> None:
    tool = make_simulated_tool(
        fn("f", {"a": {"type": "integer"}}),
        latency=ZERO,
        result=lambda name, args: f"{name}:{args['a']}",
    )
    assert tool.invoke({"a": 7}) == "f:7"


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    seen: list[float] = []

    async def fake_async_sleep(delay: float) -> None:
        seen.append(delay)

    monkeypatch.setattr(sim_tools, "_sleep", seen.append)
    monkeypatch.setattr(sim_tools, "_async_sleep", fake_async_sleep)
    return seen


async def test_latency_stable_across_calls_and_modes(delays: list[float]) -> None:
    lat = LatencyModel(tool_lo_ms=30, tool_hi_ms=500, seed=3)
    props = {"city": {"type": "string"}, "days": {"type": "float"}, "opt": {"type": "integer"}}
    tool = make_simulated_tool(fn("weather.get", props, ["city"]), latency=lat)
    planned = {"city": "Paris", "days": 2}
    expected = lat.tool_ms("weather.get", planned) / 1000
    tool.invoke({"city": "Paris", "days": 2})
    tool.invoke({"days": 2, "city": "Paris", "opt": None})
    await tool.ainvoke({"days": 2, "city": "Paris"})
    await tool.ainvoke(
        {
            "name": "weather.get",
            "args": {"days": 2, "city": "Paris"},
            "id": "c",
            "type": "tool_call",
        }
    )
    assert delays == [expected] * 4  # caller's values (2, not 2.0), key order irrelevant
    tool.invoke({"city": "Rome", "days": 2})
    assert delays[-1] == lat.tool_ms("weather.get", {"city": "Rome", "days": 2}) / 1000


async def test_journal_records_executions() -> None:
    journal = ToolJournal()
    tool = make_simulated_tool(
        fn("f", {"a": {"type": "integer"}, "b": {"type": "integer"}}, ["a"]),
        latency=ZERO,
        journal=journal,
    )
    tool.invoke({"a": 1, "b": 2})
    msg = await tool.ainvoke(
        {"name": "f", "args": {"b": 2, "a": 1}, "id": "c1", "type": "tool_call"}
    )
    assert isinstance(msg, ToolMessage) and msg.tool_call_id == "c1"
    await tool.ainvoke({"a": 5, "b": None})
    first, second, third = journal.entries
    assert (first.tool, dict(first.args), first.call_id) == ("f", {"a": 1, "b": 2}, None)
    assert second.call_id == "c1"
    assert dict(third.args) == {"a": 5}
    assert all(e.completed and e.started_at <= e.finished_at for e in journal.entries)
    assert first.finished_at <= second.started_at
    assert journal.count("f") == 3
    assert journal.count("f", {"b": 2, "a": 1}) == 2
    assert journal.count("f", {"a": 5, "b": None}) == 1
    assert journal.count("g") == 0
    with pytest.raises(ValidationError):
        tool.invoke({"a": "x"})
    assert len(journal) == 3  # invalid arguments never execute
    journal.reset()
    assert journal.entries == () and journal.count("f") == 0


async def test_journal_records_cancelled_execution(monkeypatch: pytest.MonkeyPatch) -> None:
    started = asyncio.Event()

    async def blocking_sleep(delay: float) -> None:
        started.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(sim_tools, "_async_sleep", blocking_sleep)
    journal = ToolJournal()
    tool = make_simulated_tool(
        fn("slow", {}), latency=LatencyModel(tool_lo_ms=50, tool_hi_ms=50), journal=journal
    )
    task = asyncio.create_task(tool.ainvoke({}))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (entry,) = journal.entries
    assert not entry.completed
    assert journal.count("slow") == 1 and journal.count("slow", completed_only=True) == 0


def test_journal_is_thread_safe() -> None:
    journal = ToolJournal()
    tool = make_simulated_tool(fn("f", {"i": {"type": "integer"}}), latency=ZERO, journal=journal)

    def work(k: int) -> None:
        for i in range(50):
            tool.invoke({"i": k * 100 + i})

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(journal) == 400 and journal.count("f", {"i": 701}) == 1


async def test_tool_node_turns_bad_args_into_error_message() -> None:
    tool = make_simulated_tool(fn("f", {"a": {"type": "integer"}}, ["a"]), latency=ZERO)
    calls = [
        {"name": "f", "args": {"a": 1}, "id": "good", "type": "tool_call"},
        {"name": "f", "args": {"a": "x"}, "id": "bad", "type": "tool_call"},
    ]
    builder = StateGraph(MessagesState)
    builder.add_node("tools", ToolNode([tool]))
    builder.add_edge(START, "tools")
    graph = builder.compile()
    out = await graph.ainvoke({"messages": [AIMessage(content="", tool_calls=calls)]})
    by_id = {m.tool_call_id: m for m in out["messages"] if isinstance(m, ToolMessage)}
    assert by_id["good"].status == "success"
    assert by_id["bad"].status == "error"


# --- names, safety, metadata ----------------------------------------------------------------


def test_unsafe_name_rule() -> None:
    for name in ("spotify.play", "send_message", "BookFlight", "cancel_order", "set_budget_limit"):
        assert is_unsafe_name(name), name
    for name in ("get_weather", "math.factorial", "ls", "cd", "get_stock_info"):
        assert not is_unsafe_name(name), name
    assert is_unsafe_name("displayCarStatus")  # substring rule, conservative by design
    assert not is_safe_tool(make_simulated_tool(fn("spotify.play", {}), latency=ZERO))
    assert is_safe_tool(make_simulated_tool(fn("get_weather", {}), latency=ZERO))
    assert is_safe_tool(make_simulated_tool(fn("spotify.play", {}), latency=ZERO, safe=True))


def test_expected_ms_metadata() -> None:
    lat = LatencyModel(tool_lo_ms=30, tool_hi_ms=480)
    tool = make_simulated_tool(fn("f", {}), latency=lat)
    assert tool.metadata is not None
    assert tool.metadata["expected_ms"] == pytest.approx(math.sqrt(30 * 480))
    assert expected_tool_ms(ZERO) == 0
    assert expected_tool_ms(LatencyModel(tool_lo_ms=100, tool_hi_ms=100)) == 100


def test_dotted_names_kept() -> None:
    tool = make_simulated_tool(fn("math.factorial", {"n": {"type": "integer"}}), latency=ZERO)
    assert tool.name == "math.factorial"
    assert convert_to_openai_tool(tool)["function"]["name"] == "math.factorial"
    assert openai_safe_name("math.factorial") == "math_factorial"
    assert openai_safe_name("a b/c-d_e") == "a_b_c-d_e"
    assert len(openai_safe_name("x" * 100)) == 64


def test_duplicate_names() -> None:
    a = fn("f", {"a": {"type": "integer"}})
    tools = make_simulated_tools([a, dict(a), fn("g", {})], latency=ZERO)
    assert [t.name for t in tools] == ["f", "g"]
    with pytest.raises(DataFormatError, match="'f'"):
        make_simulated_tools([a, fn("f", {"a": {"type": "string"}})], latency=ZERO)


def test_string_input_for_single_parameter() -> None:
    tool = make_simulated_tool(fn("f", {"q": {"type": "string"}}, ["q"]), latency=ZERO)
    assert tool.invoke("hello") == default_result("f", {"q": "hello"})
