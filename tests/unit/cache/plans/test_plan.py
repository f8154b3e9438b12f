from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from langchain_core.utils.function_calling import convert_to_openai_tool

from langgraph_speculative.cache.plans.plan import (
    LIST_SEPARATOR,
    Plan,
    PlanStep,
    iter_references,
    parameter_reference,
    step_reference,
)
from langgraph_speculative.errors import MissingParameterError, PlanValidationError
from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel


def step(sid: str, tool: str = "t", deps: list[str] | None = None, **inputs: Any) -> PlanStep:
    return PlanStep(
        id=sid, description=f"do {sid}", tool=tool, inputs=inputs, depends_on=deps or [], output=""
    )


def train_plan() -> Plan:
    return Plan(
        steps=[
            step("s1", "search_trains", origin="合肥", destination="北京南站", date="后天"),
            step("s2", "weather", city="北京", day="后天"),
            step(
                "s3",
                "book",
                ["s1", "s2"],
                train="{step:s1.0.number}",
                note="合肥 -> 北京, {step:s2}",
                extra={"seats": [1, "合肥"], "flag": True},
            ),
        ]
    )


SLOTS = {"startLoc_city": "合肥", "endLoc_city": "北京", "startDate_date": "后天"}


# -- references ------------------------------------------------------------------------
def test_references_are_parsed_in_order() -> None:
    refs = list(iter_references("a {param:x} b {step:s1} {step:s-2.k.0.名字}"))
    assert [(r.kind, r.name, r.path) for r in refs] == [
        ("param", "x", ()),
        ("step", "s1", ()),
        ("step", "s-2", ("k", "0", "名字")),
    ]
    assert [r.text for r in refs] == ["{param:x}", "{step:s1}", "{step:s-2.k.0.名字}"]
    assert parameter_reference("dishName") == "{param:dishName}"
    assert step_reference("s1", "a", "0") == "{step:s1.a.0}"


@pytest.mark.parametrize(
    "text",
    ["{param:}", "{param:a b}", "{param:1x}", "{step:s1..x}", "{step:s1", "x {param:y", "{step:}"],
)
def test_malformed_references_are_rejected(text: str) -> None:
    with pytest.raises(PlanValidationError, match="malformed reference"):
        list(iter_references(text))
    with pytest.raises(PlanValidationError, match=r"step 's1', inputs\.q.*malformed"):
        Plan(parameters=["a"], steps=[step("s1", q=text)])


def test_plain_braces_are_literal_text() -> None:
    plan = Plan(steps=[step("s1", q='{"a": 1} {param} {step}')])
    assert plan.parameter_names() == []


# -- validation ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": []}, "at least one step"),
        ({"steps": [step("s1"), step("s1")]}, "duplicate step ids: s1"),
        ({"steps": [step("s1", deps=["s9"])]}, "'s1' depends on 's9', which is not a step"),
        ({"steps": [step("a", deps=["b"]), step("b", deps=["a"])]}, "cycle: "),
        ({"steps": [step("a", deps=["a"])]}, "cycle: a -> a"),
        ({"steps": [step("s1", x="{param:city}")]}, r"\{param:city\} names no parameter"),
        (
            {"steps": [step("s1"), step("s2", x="{step:s1}")]},
            r"step 's2', inputs\.x: \{step:s1\} is not the output of a dependency",
        ),
        ({"steps": [step("s1", x="{step:s1}")]}, "dependencies: none"),
        ({"steps": [step("s1")], "parameters": ["a", "a"]}, "duplicate parameter names: a"),
        ({"steps": [step("s1")], "parameters": ["a-b"]}, "parameter name 'a-b' is invalid"),
        ({"steps": [{"id": "s 1", "description": "", "tool": "t", "output": ""}]}, "'s 1'"),
        ({"steps": [{"id": "s.1", "description": "", "tool": "t", "output": ""}]}, "'s.1'"),
        ({"steps": [{"id": "s1", "description": "", "tool": " ", "output": ""}]}, "tool name"),
        (
            {"steps": [{"id": "s1", "description": "", "tool": "t"}]},
            r"steps\.0: output: Field required",
        ),
        ({"steps": [step("s1")], "extra": 1}, "extra"),
    ],
)
def test_invalid_plans_raise_plan_validation_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanValidationError, match=message):
        Plan(**kwargs)
    with pytest.raises(PlanValidationError, match=message):
        Plan.model_validate(kwargs)


def test_nested_references_are_validated() -> None:
    with pytest.raises(PlanValidationError, match=r"inputs\.opts\.cities\[1\]"):
        Plan(steps=[step("s1", opts={"cities": ["x", "{param:nope}"]})])


def test_transitive_step_references_are_allowed() -> None:
    plan = Plan(
        steps=[
            step("s1"),
            step("s2", deps=["s1"]),
            step("s3", deps=["s2"], x="{step:s1.a} and {step:s2}"),
        ]
    )
    assert [s.id for s in plan.ordered_steps()] == ["s1", "s2", "s3"]


def test_dependencies_are_deduplicated_and_the_order_is_topological() -> None:
    plan = Plan(
        steps=[step("c", deps=["a", "b", "a"]), step("b", deps=["a"]), step("a"), step("d")]
    )
    assert plan.step("c").depends_on == ["a", "b"]
    assert [s.id for s in plan.ordered_steps()] == ["a", "d", "b", "c"]
    with pytest.raises(PlanValidationError, match="no step 'z'"):
        plan.step("z")


def test_plans_are_frozen() -> None:
    plan = train_plan()
    with pytest.raises(Exception, match="frozen"):
        plan.intent = "x"  # type: ignore[misc]


# -- abstract / fill -------------------------------------------------------------------
def test_abstract_replaces_values_longest_first_and_keeps_references() -> None:
    slots = {**SLOTS, "endLoc_poi": "北京南站", "code": "s1"}  # "s1" must not touch {step:s1}
    template = train_plan().abstract(slots)
    inputs = {s.id: s.inputs for s in template.steps}
    assert inputs["s1"] == {
        "origin": "{param:startLoc_city}",
        "destination": "{param:endLoc_poi}",
        "date": "{param:startDate_date}",
    }
    assert inputs["s3"]["train"] == "{step:s1.0.number}"
    assert inputs["s3"]["note"] == "{param:startLoc_city} -> {param:endLoc_city}, {step:s2}"
    assert inputs["s3"]["extra"] == {"seats": [1, "{param:startLoc_city}"], "flag": True}
    assert template.parameters == ["startLoc_city", "endLoc_city", "startDate_date", "endLoc_poi"]
    assert template.parameter_names() == [
        "startLoc_city",
        "endLoc_poi",
        "startDate_date",
        "endLoc_city",
    ]


def test_abstract_equal_values_first_slot_wins_and_empty_values_are_skipped() -> None:
    plan = Plan(steps=[step("s1", a="北京", b="x")])
    template = plan.abstract({"empty": "", "endLoc_city": "北京", "location_city": "北京"})
    assert template.steps[0].inputs == {"a": "{param:endLoc_city}", "b": "x"}
    assert template.parameters == ["endLoc_city"]
    assert plan.abstract({}) == plan


def test_abstract_keeps_declared_parameters() -> None:
    plan = Plan(parameters=["dishName"], steps=[step("s1", a="{param:dishName}", b="上海")])
    template = plan.abstract({"city": "上海"})
    assert template.parameters == ["dishName", "city"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"city": "{step:s1}"}, "contains reference syntax"),
        ({"city": 3}, "must be a string"),
        ({"bad name": "x"}, "parameter name 'bad name' is invalid"),
    ],
)
def test_bad_parameter_values_are_rejected(values: dict[str, Any], message: str) -> None:
    plan = Plan(parameters=["city"], steps=[step("s1", a="{param:city}")])
    with pytest.raises(PlanValidationError, match=message):
        plan.abstract(values)
    with pytest.raises(PlanValidationError, match=message):
        plan.fill(values)


def test_fill_substitutes_and_ignores_extra_values() -> None:
    template = train_plan().abstract(SLOTS)
    filled = template.fill({**SLOTS, "startLoc_city": "长沙", "endLoc_city": "上海", "x": "y"})
    assert filled.parameters == [] and filled.parameter_names() == []
    assert filled.steps[0].inputs == {"origin": "长沙", "destination": "上海南站", "date": "后天"}
    assert filled.steps[2].inputs["note"] == "长沙 -> 上海, {step:s2}"
    assert "{param:" not in filled.to_json()


def test_fill_lists_every_missing_parameter() -> None:
    template = train_plan().abstract(SLOTS)
    with pytest.raises(MissingParameterError) as info:
        template.fill({"endLoc_city": "上海"})
    assert info.value.missing == ("startLoc_city", "startDate_date")
    assert "startLoc_city, startDate_date" in str(info.value)
    assert isinstance(info.value, PlanValidationError)


def test_fill_drop_mode_drops_whole_value_inputs_only() -> None:
    template = Plan(
        parameters=["a", "b"],
        steps=[step("s1", x="{param:a}", y="{param:b}", z="fixed")],
    )
    assert template.fill({"b": "B"}, missing="drop").steps[0].inputs == {"y": "B", "z": "fixed"}
    inside = Plan(parameters=["a"], steps=[step("s1", x="to {param:a}")])
    with pytest.raises(MissingParameterError) as info:
        inside.fill({}, missing="drop")
    assert info.value.missing == ("a",)


def test_filled_inputs() -> None:
    template = Plan(parameters=["dishName"], steps=[step("s1", "recipe", dish="{param:dishName}")])
    assert template.filled_inputs({"dishName": "宫保鸡丁"}) == {"s1": {"dish": "宫保鸡丁"}}


def test_filled_value_cannot_forge_a_reference() -> None:
    template = Plan(parameters=["a"], steps=[step("s1", x="{param{param:a}")])
    with pytest.raises(PlanValidationError, match="names no parameter"):
        template.fill({"a": ":zz}"})


# -- list values (multi-valued slots) --------------------------------------------------
TEAMS = ["湖人", "勇士"]


def match_template() -> Plan:
    return Plan(
        parameters=["name", "date"],
        steps=[
            step("s1", "match_scores", teams="{param:name}", date="{param:date}"),
            step(
                "s2",
                "answer",
                ["s1"],
                text="{param:name} 的比分: {step:s1}",
                extra={"all": ["{param:name}", "x"], "one": "{param:date}"},
            ),
        ],
    )


def test_fill_with_a_list_whole_references_become_the_list() -> None:
    filled = match_template().fill({"name": TEAMS, "date": "今晚"})
    s1, s2 = filled.steps
    assert s1.inputs == {"teams": ["湖人", "勇士"], "date": "今晚"}
    # inside a longer string the values are joined with ", "
    assert LIST_SEPARATOR == ", "
    assert s2.inputs["text"] == "湖人, 勇士 的比分: {step:s1}"
    # a nested string that is exactly the reference becomes the list too
    assert s2.inputs["extra"] == {"all": [["湖人", "勇士"], "x"], "one": "今晚"}
    assert json.loads(filled.to_json())["steps"][0]["inputs"]["teams"] == ["湖人", "勇士"]
    # the filled list is a copy, and a tuple is read as a list
    values: dict[str, Any] = {"name": TEAMS, "date": "今晚"}
    filled.steps[0].inputs["teams"].append("x")
    assert TEAMS == ["湖人", "勇士"]
    assert match_template().fill({**values, "name": ("湖人", "勇士")}) == match_template().fill(
        values
    )


def test_filled_inputs_with_a_list() -> None:
    template = Plan(parameters=["name"], steps=[step("s1", "scores", teams="{param:name}")])
    assert template.filled_inputs({"name": TEAMS}) == {"s1": {"teams": ["湖人", "勇士"]}}
    assert template.filled_inputs({"name": ["湖人"]}) == {"s1": {"teams": ["湖人"]}}
    assert template.filled_inputs({"name": "湖人"}) == {"s1": {"teams": "湖人"}}


def test_fill_drop_mode_keeps_list_values() -> None:
    template = Plan(parameters=["a", "b"], steps=[step("s1", x="{param:a}", y="{param:b}")])
    filled = template.fill({"b": ["B1", "B2"]}, missing="drop")
    assert filled.steps[0].inputs == {"y": ["B1", "B2"]}


def test_abstract_with_a_list_replaces_the_list_and_its_joined_values() -> None:
    concrete = Plan(
        steps=[
            step("s1", "match_scores", teams=["湖人", "勇士"], date="今晚"),
            step(
                "s2",
                "answer",
                ["s1"],
                text="湖人, 勇士 的比分",
                home="湖人",  # one value of the list alone is not the parameter
                extra={"all": [["湖人", "勇士"], "x"], "reversed": ["勇士", "湖人"]},
            ),
        ]
    )
    template = concrete.abstract({"name": TEAMS, "date": "今晚"})
    s1, s2 = template.steps
    assert s1.inputs == {"teams": "{param:name}", "date": "{param:date}"}
    assert s2.inputs["text"] == "{param:name} 的比分"
    assert s2.inputs["home"] == "湖人"
    assert s2.inputs["extra"] == {"all": ["{param:name}", "x"], "reversed": ["勇士", "湖人"]}
    assert template.parameters == ["name", "date"]
    # filling the template with the same values gives the concrete plan back
    assert template.fill({"name": TEAMS, "date": "今晚"}).steps == concrete.steps


def test_abstract_skips_a_list_holding_an_empty_value() -> None:
    plan = Plan(steps=[step("s1", a=["湖人", ""], b="湖人, x")])
    assert plan.abstract({"name": ["湖人", ""]}) == plan
    assert plan.abstract({"name": ["", ""]}) == plan


def test_abstract_then_fill_round_trips_a_list_template() -> None:
    values: dict[str, Any] = {"name": ["快船", "掘金"], "date": "明天"}
    filled = match_template().fill(values)
    assert filled.abstract(values).steps == match_template().steps


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "must not be empty"),
        (["湖人", 3], "string or a list of strings, got int"),
        (["湖人", "{param:x}"], "contains reference syntax"),
        ({"a": "b"}, "string or a list of strings, got dict"),
    ],
)
def test_bad_list_values_are_rejected(value: Any, message: str) -> None:
    with pytest.raises(PlanValidationError, match=message):
        match_template().fill({"name": value, "date": "今晚"})
    with pytest.raises(PlanValidationError, match=message):
        match_template().abstract({"name": value})


# -- signature -------------------------------------------------------------------------
def test_signature_ignores_values_ids_and_order() -> None:
    plan = train_plan()
    renamed = Plan(
        steps=[
            step("w", "weather", city="上海"),
            step("b", "book", ["w", "q"], train="{step:q}"),
            step("q", "search_trains", origin="长沙"),
        ]
    )
    assert plan.signature() == renamed.signature()
    assert plan.signature() == plan.abstract(SLOTS).signature()
    assert plan.signature().startswith("book+search_trains+weather#")


def test_signature_sees_tools_and_structure() -> None:
    chain = Plan(steps=[step("a", "x"), step("b", "y", ["a"])])
    parallel = Plan(steps=[step("a", "x"), step("b", "y")])
    reverse = Plan(steps=[step("a", "y"), step("b", "x", ["a"])])
    other_tool = Plan(steps=[step("a", "x"), step("b", "z", ["a"])])
    sigs = {p.signature() for p in (chain, parallel, reverse, other_tool)}
    assert len(sigs) == 4
    ts = [step("t1", "t"), step("t2", "t")]
    shared = Plan(steps=[*ts, step("u1", "u", ["t1"]), step("u2", "u", ["t1"])])
    separate = Plan(steps=[*ts, step("u1", "u", ["t1"]), step("u2", "u", ["t2"])])
    assert shared.signature() != separate.signature()


# -- serialisation and schema ----------------------------------------------------------
def test_json_round_trip_keeps_chinese_text() -> None:
    template = train_plan().abstract(SLOTS).model_copy(update={"intent": "train.QUERY"})
    text = template.to_json()
    assert "北京南站" not in text and "合肥" not in text  # abstracted
    assert "\\u" not in text
    assert Plan.from_json(text) == template
    assert Plan.from_json(text.encode()) == template
    assert json.loads(text)["intent"] == "train.QUERY"


@pytest.mark.parametrize("text", ["{", "[]", '{"steps": 1}', '{"steps": []}'])
def test_from_json_rejects_bad_documents(text: str) -> None:
    with pytest.raises(PlanValidationError):
        Plan.from_json(text)


def test_from_json_rejects_non_text() -> None:
    with pytest.raises(PlanValidationError, match="must be text"):
        Plan.from_json(3)  # type: ignore[arg-type]


def test_plan_is_a_structured_output_schema() -> None:
    spec = convert_to_openai_tool(Plan)["function"]
    assert spec["name"] == "Plan"
    assert "```" not in spec["description"] and "parallel" in spec["description"]
    step_schema = json.dumps(spec["parameters"])
    assert "{param:NAME}" in step_schema and "{step:ID}" in step_schema
    data = {
        "parameters": [],
        "steps": [{"id": "s1", "description": "d", "tool": "t", "inputs": {}, "output": "o"}],
    }
    model = ScriptedChatModel(script=[ModelTurn.calls(("Plan", data))], latency=LatencyModel.zero())
    plan = model.with_structured_output(Plan).invoke("plan it")
    assert isinstance(plan, Plan) and plan.steps[0].id == "s1"


# -- properties ------------------------------------------------------------------------
_TEXT = st.text(alphabet="北京合肥上海ab{}:. 1", min_size=0, max_size=6)
_VALUE = st.text(alphabet="北京合肥上海南站ab:}1s0.", min_size=1, max_size=4)
_SLOT = st.sampled_from(["startLoc_city", "endLoc_city", "startDate_date", "dishName", "Dest"])


@st.composite
def concrete_plans(draw: st.DrawFn) -> tuple[Plan, dict[str, str]]:
    values = draw(st.dictionaries(_SLOT, _VALUE, min_size=0, max_size=4))
    n = draw(st.integers(1, 4))
    steps = []
    for i in range(n):
        deps = draw(st.lists(st.sampled_from([f"s{j}" for j in range(i)]), max_size=2)) if i else []
        refs = [step_reference(d) for d in deps] + [step_reference(d, "a", "0") for d in deps]
        pieces = st.one_of(
            _TEXT, st.sampled_from([*values.values(), *refs, "{param", "{step", "{}", "北京"])
        )
        strings = st.lists(pieces, min_size=1, max_size=4).map("".join)
        leaf = st.one_of(strings, st.integers(-3, 3), st.booleans(), st.none())
        value = st.recursive(
            leaf, lambda kids: st.lists(kids, max_size=2) | st.dictionaries(_TEXT, kids, max_size=2)
        )
        inputs = draw(st.dictionaries(st.sampled_from(["a", "b", "c"]), value, max_size=3))
        steps.append({"id": f"s{i}", "description": "", "tool": f"t{i % 2}", "output": "",
                      "inputs": inputs, "depends_on": deps})  # fmt: skip
    try:
        plan = Plan.model_validate({"steps": steps})
    except PlanValidationError:
        assume(False)
        raise
    return plan, values


@settings(max_examples=100, deadline=None)
@given(concrete_plans())
def test_abstract_then_fill_gives_back_the_concrete_plan(case: tuple[Plan, dict[str, str]]) -> None:
    plan, values = case
    template = plan.abstract(values)
    assert set(template.parameter_names()) <= set(values)
    filled = template.fill(values)
    assert filled == plan
    assert filled.parameter_names() == []
    assert template.signature() == plan.signature()
    assert Plan.from_json(template.to_json()) == template
