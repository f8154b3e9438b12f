"""ListeningResponder: the simulated model of bench speculative."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langgraph_speculative.integrations import PlannedCall, ScriptedTask
from langgraph_speculative.integrations.sim.scripted_listener import (
    ListenerView,
    ListeningResponder,
)
from langgraph_speculative.integrations.sim.speech import speech_updates
from langgraph_speculative.speculative.interaction_format import (
    Action,
    Answer,
    Call,
    Confirm,
    ModelAction,
    Pause,
    Remove,
    Revise,
    ToolResult,
    UserInput,
    parse_actions,
    to_messages,
)

FN = {"name": "play", "parameters": {"type": "dict", "properties": {}}}
FN2 = {"name": "weather", "parameters": {"type": "dict", "properties": {}}}


def task(
    question: str = "Play Taylor Swift for 20 minutes and weather in Paris",
    calls: tuple[PlannedCall, ...] | None = None,
) -> ScriptedTask:
    if calls is None:
        calls = (
            PlannedCall("0", "play", {"artist": "Taylor Swift", "minutes": 20}),
            PlannedCall("1", "weather", {"city": "Paris"}),
        )
    return ScriptedTask("t", question, (FN, FN2), calls)


def apply(view: ListenerView, actions: list[Action]) -> None:
    for a in actions:
        if isinstance(a, Call | Revise):
            view.calls[a.id] = (a.name, dict(a.arguments))
        elif isinstance(a, Remove):
            view.calls.pop(a.id, None)
        elif isinstance(a, Confirm):
            view.confirmed = True


def test_known_calls_are_made_as_soon_as_their_values_were_said() -> None:
    listener = ListeningResponder(task(), premature=0.0)
    assert listener.step(ListenerView("Play Taylor Swift for", False)) == [Pause()]
    view = ListenerView("Play Taylor Swift for 20 minutes", False)
    assert listener.step(view) == [Call("c0", "play", {"artist": "Taylor Swift", "minutes": 20})]
    apply(view, listener.step(view))
    assert listener.step(view) == [Pause()]  # nothing new
    view.transcript += " and weather in Paris"
    assert listener.step(view) == [Call("c1", "weather", {"city": "Paris"})]


def test_premature_call_then_revise() -> None:
    t = task("Play songs by Taylor Swift", (PlannedCall("0", "play", {"artist": "Taylor Swift"}),))
    listener = ListeningResponder(t, premature=1.0)
    view = ListenerView("Play songs by Taylor", False)
    early = listener.step(view)
    assert early == [Call("c0", "play", {"artist": "Taylor"})]
    apply(view, early)
    view.transcript = "Play songs by Taylor Swift"
    assert listener.step(view) == [Revise("c0", "play", {"artist": "Taylor Swift"})]
    # with premature=0 the model waits
    assert ListeningResponder(t, premature=0.0).step(ListenerView("Play songs by Taylor")) == [
        Pause()
    ]


def test_final_input_revises_calls_removes_strays_and_confirms() -> None:
    listener = ListeningResponder(task(), premature=0.0)
    view = ListenerView(
        "Play Taylor Swift for 20 minutes and weather in Paris",
        True,
        calls={"c0": ("play", {"artist": "Taylor", "minutes": 20}), "c7": ("play", {})},
    )
    assert listener.step(view) == [
        Revise("c0", "play", {"artist": "Taylor Swift", "minutes": 20}),
        Call("c1", "weather", {"city": "Paris"}),
        Remove("c7"),
        Confirm(("c0", "c1")),
    ]


def test_answer_once_every_result_is_in() -> None:
    t = task()
    listener = ListeningResponder(t, premature=0.0)
    made = {c: (p.name, dict(p.args)) for c, p in zip(("c0", "c1"), t.calls, strict=True)}
    view = ListenerView("x", True, calls=made, confirmed=True, results={"c0"})
    assert listener.step(view) == [Pause()]
    view.results.add("c1")
    assert listener.step(view) == [Answer(t.final_answer())]


def test_a_dependent_call_waits_for_the_result_it_needs() -> None:
    t = task(
        "Find flights to Paris then book the cheapest",
        (
            PlannedCall("0", "weather", {"city": "Paris"}),
            PlannedCall("1", "play", {"artist": "x", "minutes": 1}, depends_on=("0",)),
        ),
    )
    listener = ListeningResponder(t, premature=0.0)
    view = ListenerView(t.question, True)
    # on the final input: only the independent call; it is confirmed
    assert listener.step(view) == [Call("c0", "weather", {"city": "Paris"}), Confirm(("c0",))]
    view.calls["c0"] = ("weather", {"city": "Paris"})
    view.confirmed = True
    assert listener.step(view) == [Pause()]  # waits for c0's result
    view.results.add("c0")
    assert listener.step(view) == [
        Call("c1", "play", {"artist": "x", "minutes": 1}, depends_on=("c0",))
    ]


def test_a_call_with_nothing_to_say_waits_for_the_final_input() -> None:
    t = task("What time is it", (PlannedCall("0", "weather", {}),))
    listener = ListeningResponder(t, premature=1.0)
    assert listener.step(ListenerView("What time is it", False)) == [Pause()]
    assert listener.step(ListenerView("What time is it", True)) == [
        Call("c0", "weather", {}),
        Confirm(("c0",)),
    ]


def test_premature_rate_is_checked() -> None:
    with pytest.raises(ValueError, match="premature"):
        ListeningResponder(task(), premature=1.5)


def test_view_reads_the_transcript_and_skips_other_messages() -> None:
    t0 = 100.0
    listener = ListeningResponder(task(), premature=0.0)
    items = [
        UserInput("Play Taylor", False, t0 + 1),
        ModelAction(Call("c0", "play", {"artist": "Taylor"}), t0 + 1.1),
        ToolResult("c0", "ok", t0 + 1.2),
        UserInput("Play Taylor Swift", False, t0 + 1.3),
        ModelAction(Revise("c0", "play", {"artist": "Taylor Swift"}), t0 + 1.4),
        ModelAction(Call("c1", "weather", {"city": "Paris"}), t0 + 1.5),
        ToolResult("c1", "sunny", t0 + 1.6),
        UserInput("Play Taylor Swift and weather in Paris", True, t0 + 2),
        ModelAction(Confirm(("c0", "c1")), t0 + 2.1),
    ]
    history = [HumanMessage("Hello there"), AIMessage("Hi! How can I help?"), AIMessage("")]
    messages = [SystemMessage("sys"), *history, *to_messages(items, t0=t0)]
    view = listener.view(messages)
    assert view.transcript == "Play Taylor Swift and weather in Paris" and view.final
    assert view.calls == {
        "c0": ("play", {"artist": "Taylor Swift"}),
        "c1": ("weather", {"city": "Paris"}),
    }
    assert view.confirmed
    assert view.results == {"c1"}  # c0's result answered the old version


def test_cancelled_results_and_removed_calls_do_not_count() -> None:
    t0 = 0.0
    listener = ListeningResponder(task(), premature=0.0)
    items = [
        UserInput("x", False, 1),
        ModelAction(Call("c0", "play", {}), 1.1),
        ModelAction(Call("c1", "weather", {}), 1.2),
        ToolResult("c0", "ok", 1.3),
        ToolResult("c1", "ok", 1.3),
        ModelAction(Revise("c1", "weather", {}), 1.35),  # the same call: result still valid
        ToolResult("c0", "cancelled", 1.4, "cancelled"),
    ]
    assert listener.view(to_messages(items, t0=t0)).results == {"c1"}
    items.append(ModelAction(Remove("c1"), 1.5))
    assert listener.view(to_messages(items, t0=t0)).results == set()


def test_turns_wait_on_pause_and_go_on_after_actions() -> None:
    t = task()
    listener = ListeningResponder(t, premature=0.0)
    pause = listener([HumanMessage("[t=0.10s] USER partial: Play")])
    assert pause.waits and not pause.more and parse_actions(pause.text) == [Pause()]
    call = listener([HumanMessage("[t=0.10s] USER partial: weather in Paris")])
    assert call.more and not call.waits
    assert parse_actions(call.text) == [Call("c1", "weather", {"city": "Paris"})]
    assert listener.next_action == listener.__call__


# -- the final step always confirms the task's calls ----------------------------------------

TASKS = [
    task(),
    task(
        "帮我订一张去北京的票然后查一下北京天气",
        (
            PlannedCall("0", "play", {"city": "北京", "count": 1, "fast": True}),
            PlannedCall("1", "weather", {"city": "北京"}),
        ),
    ),
    task(
        "Book 3 tickets from New York City to San Francisco",
        (
            PlannedCall("0", "play", {"from": "New York City", "to": "San Francisco", "n": 3}),
            PlannedCall("1", "weather", {}),
        ),
    ),
]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(TASKS),
    st.data(),
    st.floats(min_value=0.0, max_value=1.0),
    st.integers(min_value=0, max_value=5),
)
def test_final_step_confirms_exactly_the_tasks_calls(
    t: ScriptedTask, data: Any, premature: float, seed: int
) -> None:
    prefixes = [u.text for u in speech_updates(t.question)[:-1]]
    seen = data.draw(st.lists(st.sampled_from(prefixes), max_size=8))
    listener = ListeningResponder(t, premature=premature, seed=seed)
    view = ListenerView()
    for text in seen:  # any partial transcripts, in any order (ASR rewrites)
        view.transcript = text
        apply(view, listener.step(view))
    view.transcript, view.final = t.question, True
    actions = listener.step(view)
    assert isinstance(actions[-1], Confirm)
    assert actions[-1].ids == tuple(f"c{i}" for i in range(len(t.calls)))
    apply(view, actions)
    assert view.calls == {f"c{i}": (c.name, dict(c.args)) for i, c in enumerate(t.calls)}
    # and once confirmed, the model pauses until the results are in, then answers
    assert listener.step(view) == [Pause()]
    view.results = {f"c{i}" for i in range(len(t.calls))}
    assert listener.step(view) == [Answer(t.final_answer())]
