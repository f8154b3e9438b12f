"""The plan-reuse graph: lookup routes to the cached plan or the planner; plans run as DAGs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_speculative.cache import (
    LabelledRequest,
    LLMPlanner,
    Plan,
    PlanCache,
    PlanStep,
    TemplatePlanner,
)
from langgraph_speculative.errors import AsyncOnlyError, RequestError, SpeculativeError
from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel
from langgraph_speculative.nodes.plan_reuse import (
    PlanCacheNode,
    PlanExecutionNode,
    Planner,
    PlannerNode,
    PlanReuseState,
    create_plan_reuse_graph,
)

CALLS: list[tuple[str, dict[str, Any]]] = []


@tool
async def search_trains(origin: str, destination: str) -> str:
    """Trains between two cities."""
    CALLS.append(("search_trains", {"origin": origin, "destination": destination}))
    return f"G1 {origin}->{destination}"


@tool
async def weather(city: str) -> str:
    """Weather of a city."""
    CALLS.append(("weather", {"city": city}))
    return f"sunny in {city}"


@tool
async def summarise(trains: str, weather: str) -> str:
    """Put two results together."""
    CALLS.append(("summarise", {"trains": trains, "weather": weather}))
    return f"{trains}; {weather}"


TOOLS = [search_trains, weather, summarise]

TEMPLATE = Plan(
    parameters=["startLoc_city", "endLoc_city"],
    steps=[
        PlanStep(
            id="trains",
            description="search trains",
            tool="search_trains",
            inputs={"origin": "{param:startLoc_city}", "destination": "{param:endLoc_city}"},
            output="trains",
        ),
        PlanStep(
            id="weather",
            description="weather at the destination",
            tool="weather",
            inputs={"city": "{param:endLoc_city}"},
            output="weather",
        ),
        PlanStep(
            id="answer",
            description="combine",
            tool="summarise",
            inputs={"trains": "{step:trains}", "weather": "{step:weather}"},
            depends_on=["trains", "weather"],
            output="answer",
        ),
    ],
)

PAIRS = [("合肥", "北京"), ("长沙", "上海"), ("广州", "深圳"), ("南京", "杭州"), ("成都", "西安")]


@pytest.fixture(scope="module")
def trained() -> PlanCache:
    examples = [
        LabelledRequest(
            f"{a}到{b}的火车票", "train", "QUERY", {"startLoc_city": a, "endLoc_city": b}
        )
        for a, b in PAIRS
    ] + [
        LabelledRequest(f"{d}怎么做", "cookbook", "QUERY", {"dishName": d})
        for d in ["糖醋排骨", "红烧肉", "宫保鸡丁", "麻婆豆腐", "鱼香肉丝"]
    ]
    return PlanCache.from_examples(examples)


@pytest.fixture
def cache(trained: PlanCache) -> PlanCache:
    return trained.empty_copy()


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


def test_template_planner_satisfies_the_planner_protocol() -> None:
    assert isinstance(TemplatePlanner({"train.QUERY": TEMPLATE}), Planner)


async def test_miss_plans_and_stores_then_hit_reuses(cache: PlanCache) -> None:
    planner = TemplatePlanner({"train.QUERY": TEMPLATE})
    graph = create_plan_reuse_graph(cache, planner, TOOLS).compile()
    first = await graph.ainvoke({"messages": [HumanMessage("合肥到北京的火车票")]})
    assert first["plan_source"] == "planner" and planner.calls == 1
    assert first["plan_lookup"]["intent"] == "train.QUERY"
    assert first["messages"][-1].content == "G1 合肥->北京; sunny in 北京"
    CALLS.clear()
    again = await graph.ainvoke({"messages": [HumanMessage("长沙到上海的火车票")]})
    assert again["plan_source"] == "cache" and planner.calls == 1
    assert again["plan_lookup"]["score"] >= again["plan_lookup"]["threshold"]
    assert again["messages"][-1].content == "G1 长沙->上海; sunny in 上海"
    assert sorted(c[0] for c in CALLS) == ["search_trains", "summarise", "weather"]
    ai = [m for m in again["messages"] if isinstance(m, AIMessage)]
    assert len(ai) == 1 and len(ai[0].tool_calls) == 3
    tool_msgs = [m for m in again["messages"] if isinstance(m, ToolMessage)]
    assert {m.tool_call_id for m in tool_msgs} == {c["id"] for c in ai[0].tool_calls}


async def test_rerun_with_a_checkpointer_replaces_messages(cache: PlanCache) -> None:
    planner = TemplatePlanner({"train.QUERY": TEMPLATE})
    graph = create_plan_reuse_graph(cache, planner, TOOLS).compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    human = HumanMessage("合肥到北京的火车票", id="h1")
    await graph.ainvoke({"messages": [human]}, config)
    out = await graph.ainvoke({"messages": [human]}, config)  # the same turn sent again
    ids = [m.id for m in out["messages"]]
    assert len(ids) == len(set(ids)) == 5  # human, plan calls, three results


async def test_lookup_node_routes_with_command(cache: PlanCache) -> None:
    node = PlanCacheNode(cache, on_hit="run", on_miss="think")
    command = await node({"messages": [HumanMessage("合肥到北京的火车票")]})
    assert command.goto == "think"
    assert command.update["plan"] is None
    with pytest.raises(RequestError, match="no user"):
        await node({"messages": [AIMessage("hi")]})


async def test_execution_node_needs_a_plan() -> None:
    node = PlanExecutionNode(TOOLS)
    with pytest.raises(RequestError, match="without a plan"):
        await node({"messages": [HumanMessage("x")], "plan": None})


async def test_llm_planner_in_the_graph(cache: PlanCache) -> None:
    draft = {
        "steps": [
            {
                "id": "trains",
                "description": "search trains",
                "tool": "search_trains",
                "inputs": {"origin": "合肥", "destination": "北京"},
                "depends_on": [],
                "output": "trains",
            }
        ]
    }
    model = ScriptedChatModel(
        script=[ModelTurn.calls(("PlanDraft", draft))], latency=LatencyModel.zero()
    )
    planner = LLMPlanner(model, TOOLS)
    graph = create_plan_reuse_graph(cache, planner, TOOLS).compile()
    out = await graph.ainvoke({"messages": [HumanMessage("合肥到北京的火车票")]})
    assert out["plan_source"] == "planner"
    assert out["messages"][-1].content == "G1 合肥->北京"
    again = await graph.ainvoke({"messages": [HumanMessage("南京到杭州的火车票")]})
    assert again["plan_source"] == "cache"  # the LLM's concrete plan was stored as a template
    assert again["messages"][-1].content == "G1 南京->杭州"


async def test_respond_node_answers_from_the_results(cache: PlanCache) -> None:
    model = ScriptedChatModel(
        script=lambda messages: ModelTurn(text="Take G1."), latency=LatencyModel.zero()
    )
    planner = TemplatePlanner({"train.QUERY": TEMPLATE})
    graph = create_plan_reuse_graph(cache, planner, TOOLS, model=model).compile()
    out = await graph.ainvoke({"messages": [HumanMessage("合肥到北京的火车票")]})
    assert out["messages"][-1].content == "Take G1."


async def test_concurrent_runs_share_the_cache(cache: PlanCache) -> None:
    planner = TemplatePlanner({"train.QUERY": TEMPLATE})
    graph = create_plan_reuse_graph(cache, planner, TOOLS).compile()
    await graph.ainvoke({"messages": [HumanMessage("合肥到北京的火车票")]})
    outs = await asyncio.gather(
        *(graph.ainvoke({"messages": [HumanMessage(f"{a}到{b}的火车票")]}) for a, b in PAIRS)
    )
    assert all(o["plan_source"] == "cache" for o in outs)
    assert [o["messages"][-1].content for o in outs] == [
        f"G1 {a}->{b}; sunny in {b}" for a, b in PAIRS
    ]


async def test_the_same_request_asked_twice_keeps_both_answers(cache: PlanCache) -> None:
    planner = TemplatePlanner({"train.QUERY": TEMPLATE})
    graph = create_plan_reuse_graph(cache, planner, TOOLS).compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "twice"}}
    await graph.ainvoke({"messages": [HumanMessage("合肥到北京的火车票")]}, config)
    out = await graph.ainvoke({"messages": [HumanMessage("合肥到北京的火车票")]}, config)
    tool_msgs = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert len(tool_msgs) == 6  # three results per turn, none replaced
    assert len({m.id for m in out["messages"]}) == len(out["messages"])


def test_a_sync_invoke_of_the_graph_names_ainvoke(cache: PlanCache) -> None:
    graph = create_plan_reuse_graph(cache, TemplatePlanner({}), TOOLS).compile()
    with pytest.raises(AsyncOnlyError, match=r"PlanCacheNode is async only.*ainvoke") as info:
        graph.invoke({"messages": [HumanMessage("合肥到北京的火车票")]})
    assert isinstance(info.value, SpeculativeError) and isinstance(info.value, TypeError)
    assert info.value.what == "PlanCacheNode"
    assert not CALLS  # nothing ran


def test_every_plan_node_refuses_a_sync_invoke(cache: PlanCache) -> None:
    state: PlanReuseState = {"messages": [HumanMessage("合肥到北京的火车票")]}
    nodes: list[PlanCacheNode | PlannerNode | PlanExecutionNode] = [
        PlanCacheNode(cache),
        PlannerNode(cache, TemplatePlanner({})),
        PlanExecutionNode(TOOLS),
    ]
    for node in nodes:
        with pytest.raises(AsyncOnlyError, match=f"{type(node).__name__} is async only"):
            node.invoke(state)


async def test_plan_nodes_ainvoke_outside_a_graph(cache: PlanCache) -> None:
    human = HumanMessage("合肥到北京的火车票", id="h1")
    planned = await PlannerNode(cache, TemplatePlanner({"train.QUERY": TEMPLATE})).ainvoke(
        {"messages": [human]}
    )
    assert planned["plan_source"] == "planner"
    out = await PlanExecutionNode(TOOLS).ainvoke({"messages": [human], "plan": planned["plan"]})
    assert out["messages"][-1].content == "G1 合肥->北京; sunny in 北京"
    command = await PlanCacheNode(cache).ainvoke({"messages": [human]})
    assert command.goto == "execute_plan"  # the planner's plan was stored
