from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool, tool

from langgraph_speculative.cache.plans.plan import Plan
from langgraph_speculative.cache.plans.planner import (
    DEFAULT_SYSTEM_PROMPT,
    LLMPlanner,
    PlanDraft,
    TemplatePlanner,
)
from langgraph_speculative.errors import (
    MissingParameterError,
    PlanCacheError,
    PlanValidationError,
    RequestError,
)
from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel


@tool
def search_trains(origin: str, destination: str, date: str = "today") -> str:
    """Trains between two cities on a date."""
    return "[]"


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


TOOLS: list[BaseTool] = [search_trains, weather]
SLOTS = {"startLoc_city": "合肥", "endLoc_city": "北京", "startDate_date": "后天"}


def draft(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"steps": [{"description": "d", "output": "o", **s} for s in steps]}


GOOD = draft(
    {"id": "s1", "tool": "search_trains",
     "inputs": {"origin": "合肥", "destination": "北京", "date": "后天"}},
    {"id": "s2", "tool": "weather", "inputs": {"city": "北京"}},
)  # fmt: skip


class Script:
    """A responder that plays turns in order and keeps every conversation it was shown."""

    def __init__(self, *turns: ModelTurn) -> None:
        self.turns = list(turns)
        self.seen: list[list[BaseMessage]] = []

    def __call__(self, messages: Sequence[BaseMessage]) -> ModelTurn:
        self.seen.append(list(messages))
        return self.turns[len(self.seen) - 1]

    def model(self) -> ScriptedChatModel:
        return ScriptedChatModel(script=self, latency=LatencyModel.zero())


def plan_turn(data: dict[str, Any]) -> ModelTurn:
    return ModelTurn.calls(("PlanDraft", data))


async def test_the_plan_comes_back_as_a_template() -> None:
    script = Script(plan_turn(GOOD))
    planner = LLMPlanner(script.model(), TOOLS)
    plan = await planner.aplan("后天合肥到北京的火车", SLOTS, label="train.QUERY")
    assert plan.steps[0].inputs == {
        "origin": "{param:startLoc_city}",
        "destination": "{param:endLoc_city}",
        "date": "{param:startDate_date}",
    }
    assert plan.steps[1].inputs == {"city": "{param:endLoc_city}"}
    assert plan.parameters == ["startLoc_city", "endLoc_city", "startDate_date"]
    assert plan.intent == "train.QUERY" and plan.source_request == "后天合肥到北京的火车"
    assert plan.filled_inputs({**SLOTS, "endLoc_city": "上海"})["s2"] == {"city": "上海"}
    assert planner.calls == 1 and planner.elapsed_ms == planner.last_ms >= 0
    planner.reset_clock()
    assert (planner.calls, planner.elapsed_ms) == (0, 0.0)


def test_the_prompt_shows_the_tools_request_and_parameters() -> None:
    script = Script(plan_turn(GOOD))
    LLMPlanner(script.model(), TOOLS).plan("后天合肥到北京的火车", SLOTS)
    system, human = script.seen[0]
    assert isinstance(system, SystemMessage) and isinstance(human, HumanMessage)
    assert str(system.content).startswith(DEFAULT_SYSTEM_PROMPT)
    assert "- search_trains: Trains between two cities on a date." in str(system.content)
    assert "origin (string, required), destination (string, required), date (string)" in str(
        system.content
    )
    assert "Request: 后天合肥到北京的火车" in str(human.content)
    assert "- endLoc_city: 北京" in str(human.content)


def test_a_multi_valued_parameter_reaches_the_planner_as_a_list() -> None:
    template = Plan.model_validate(
        {
            "parameters": ["name"],
            "steps": [
                {
                    "id": "s1",
                    "description": "scores",
                    "tool": "scores",
                    "output": "o",
                    "inputs": {"teams": "{param:name}"},
                }
            ],
        }
    )
    planner = TemplatePlanner({"sports.MATCH": template}, planner_ms=1)
    plan = planner.plan("湖人对勇士", {"name": ["湖人", "勇士"]}, label="sports.MATCH")
    assert plan.filled_inputs({"name": ["马刺", "掘金"]}) == {"s1": {"teams": ["马刺", "掘金"]}}
    script = Script(plan_turn(GOOD))
    LLMPlanner(script.model(), TOOLS).plan("湖人对勇士", {"name": ["湖人", "勇士"]})
    assert '- name: ["湖人", "勇士"]' in str(script.seen[0][1].content)


def test_a_custom_system_prompt_keeps_the_catalog() -> None:
    script = Script(plan_turn(GOOD))
    LLMPlanner(script.model(), TOOLS, system_prompt="Plan briefly.").plan("x", {})
    text = str(script.seen[0][0].content)
    assert text.startswith("Plan briefly.\n\nTools:\n- search_trains")


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (draft({"id": "s1", "tool": "fly", "inputs": {}}), "'fly' is not one of the tools"),
        (
            draft({"id": "s1", "tool": "weather", "inputs": {"town": "北京"}}),
            "tool 'weather' has no input 'town' (its inputs: city)",
        ),
        (
            draft({"id": "s1", "tool": "search_trains", "inputs": {"origin": "合肥"}}),
            "tool 'search_trains' needs input 'destination'",
        ),
        (
            draft(
                {
                    "id": "s1",
                    "tool": "weather",
                    "inputs": {"city": "{step:s2}"},
                    "depends_on": ["s2"],
                },
                {"id": "s2", "tool": "weather", "inputs": {"city": "x"}, "depends_on": ["s1"]},
            ),
            "cycle",
        ),
        (
            draft({"id": "s1", "tool": "weather", "inputs": {"city": "{step:s0}"}}),
            "not the output of a dependency",
        ),
        (
            draft({"id": "s1", "tool": "weather", "inputs": {"city": "{param:town}"}}),
            "{param:town} names no parameter",
        ),
        ({"steps": [{"id": "s1"}]}, "does not match the PlanDraft schema"),
        ({"steps": []}, "at least one step"),
    ],
)
async def test_an_invalid_plan_is_retried_once_with_the_error(
    bad: dict[str, Any], error: str
) -> None:
    script = Script(plan_turn(bad), plan_turn(GOOD))
    plan = await LLMPlanner(script.model(), TOOLS).aplan("后天合肥到北京的火车", SLOTS)
    assert [s.id for s in plan.steps] == ["s1", "s2"]
    retry = script.seen[1]
    assert len(retry) == 4  # system, request, the bad plan, the error
    feedback = retry[-1]
    assert isinstance(feedback, ToolMessage) and feedback.status == "error"
    assert feedback.tool_call_id == script.turns[0].tool_calls[0]["id"]
    assert error in str(feedback.content)


async def test_two_invalid_plans_raise() -> None:
    bad = draft({"id": "s1", "tool": "fly", "inputs": {}})
    script = Script(plan_turn(bad), plan_turn(bad))
    planner = LLMPlanner(script.model(), TOOLS)
    with pytest.raises(PlanValidationError, match=r"no valid plan in 2 attempts.*'fly'"):
        await planner.aplan("x", {})
    assert len(script.seen) == 2 and planner.calls == 1


def test_no_retry_when_retries_is_zero() -> None:
    script = Script(plan_turn(draft({"id": "s1", "tool": "fly", "inputs": {}})))
    with pytest.raises(PlanValidationError, match="in 1 attempt;"):
        LLMPlanner(script.model(), TOOLS, retries=0).plan("x", {})
    assert len(script.seen) == 1


def test_a_text_answer_is_asked_again() -> None:
    script = Script(ModelTurn(text="I would search trains."), plan_turn(GOOD))
    plan = LLMPlanner(script.model(), TOOLS).plan("后天合肥到北京的火车", SLOTS)
    assert len(plan.steps) == 2
    last = script.seen[1][-1]
    assert isinstance(last, HumanMessage) and "no plan was submitted" in str(last.content)


def test_every_extra_tool_call_is_answered() -> None:
    bad = ModelTurn.calls(
        ("PlanDraft", draft({"id": "s1", "tool": "fly", "inputs": {}})), ("PlanDraft", GOOD)
    )
    script = Script(bad, plan_turn(GOOD))
    LLMPlanner(script.model(), TOOLS).plan("x", SLOTS)
    answers = [m for m in script.seen[1] if isinstance(m, ToolMessage)]
    assert [a.tool_call_id for a in answers] == [c["id"] for c in bad.tool_calls]


def test_parameter_references_written_by_the_model_are_kept() -> None:
    written = draft({"id": "s1", "tool": "weather", "inputs": {"city": "{param:endLoc_city}"}})
    plan = LLMPlanner(Script(plan_turn(written)).model(), TOOLS).plan("去北京", SLOTS)
    assert plan.steps[0].inputs == {"city": "{param:endLoc_city}"}
    assert plan.parameters == ["endLoc_city"]


def test_bad_requests_and_parameters() -> None:
    planner = LLMPlanner(Script().model(), TOOLS)
    with pytest.raises(RequestError):
        planner.plan("  ", {})
    with pytest.raises(PlanValidationError, match="must be strings"):
        planner.plan("x", {"a": 1})  # type: ignore[dict-item]
    with pytest.raises(PlanValidationError, match="non-empty lists of strings"):
        planner.plan("x", {"a": []})
    with pytest.raises(PlanValidationError, match="non-empty lists of strings"):
        planner.plan("x", {"a": ["ok", 2]})  # type: ignore[list-item]
    with pytest.raises(ValueError, match="retries"):
        LLMPlanner(Script().model(), TOOLS, retries=-1)
    with pytest.raises(ValueError, match="at least one tool"):
        LLMPlanner(Script().model(), [])
    with pytest.raises(ValueError, match="two tools are named 'weather'"):
        LLMPlanner(Script().model(), [weather, weather])


def test_plan_draft_schema_is_slim() -> None:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    spec = convert_to_openai_tool(PlanDraft)["function"]
    assert spec["name"] == "PlanDraft" and "parallel" in spec["description"]
    assert "parameters" not in spec["parameters"]["properties"]  # the planner fills those


# -- TemplatePlanner --------------------------------------------------------------------
TEMPLATE = Plan.model_validate(
    {
        "parameters": ["startLoc_city", "endLoc_city", "startDate_date"],
        "steps": [
            {"id": "s1", "description": "search", "tool": "search_trains", "output": "trains",
             "inputs": {"origin": "{param:startLoc_city}", "destination": "{param:endLoc_city}",
                        "date": "{param:startDate_date}"}},
            {"id": "s2", "description": "weather", "tool": "weather", "output": "forecast",
             "inputs": {"city": "{param:endLoc_city}"}, "depends_on": ["s1"]},
        ],
    }
)  # fmt: skip


async def test_template_planner_fills_with_the_request_slots() -> None:
    planner = TemplatePlanner({"train.QUERY": TEMPLATE}, planner_ms=31800)
    plan = await planner.aplan("后天合肥到北京", SLOTS, label="train.QUERY")
    assert plan.parameters == ["startLoc_city", "endLoc_city", "startDate_date"]
    assert plan.filled_inputs(SLOTS) == TEMPLATE.filled_inputs(SLOTS)
    assert plan.intent == "train.QUERY" and plan.source_request == "后天合肥到北京"
    assert plan.signature() == TEMPLATE.signature()
    short = planner.plan("去北京", {"endLoc_city": "北京"}, label="train.QUERY")
    assert short.filled_inputs({"endLoc_city": "上海"}) == {
        "s1": {"destination": "上海"},
        "s2": {"city": "上海"},
    }
    assert (planner.calls, planner.last_ms, planner.elapsed_ms) == (2, 31800, 63600)


def test_template_planner_finds_the_label() -> None:
    gold = {"去北京": "train.QUERY"}
    planner = TemplatePlanner({"train.QUERY": TEMPLATE}, label_of=gold.get)
    assert planner.plan("去北京", {"endLoc_city": "北京"}).intent == "train.QUERY"
    with pytest.raises(PlanCacheError, match="no class label"):
        planner.plan("做饭", {})
    with pytest.raises(PlanCacheError, match=r"no plan template for class 'x' \(known: train"):
        planner.plan("做饭", {}, label="x")
    assert planner.calls == 1


def test_template_planner_errors() -> None:
    with pytest.raises(ValueError, match="planner_ms"):
        TemplatePlanner({}, planner_ms=-1)
    with pytest.raises(ValueError, match="planner_ms"):
        TemplatePlanner({}, planner_ms=float("nan"))
    with pytest.raises(ValueError, match="labels"):
        TemplatePlanner({"": TEMPLATE})
    with pytest.raises(PlanValidationError, match="not a Plan"):
        TemplatePlanner({"a": {"steps": []}})  # type: ignore[dict-item]
    inside = Plan(
        parameters=["a"],
        steps=[{"id": "s1", "description": "", "tool": "weather", "output": "",
                "inputs": {"city": "near {param:a}"}}],
    )  # fmt: skip
    with pytest.raises(MissingParameterError):
        TemplatePlanner({"k": inside}).plan("x", {}, label="k")
    with pytest.raises(RequestError):
        TemplatePlanner({"k": inside}).plan("", {}, label="k")
