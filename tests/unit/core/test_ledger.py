"""Tests of the call ledger: state machines, creation rules, dependents, snapshots, events."""

from __future__ import annotations

import itertools
import json
import logging
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, ToolMessage, message_to_dict

from langgraph_speculative.core.ledger import (
    CallLedger,
    CallRecord,
    CallState,
    InputRecord,
    LedgerEvent,
    Speculation,
    canonical_json,
)
from langgraph_speculative.errors import IllegalTransitionError, SpeculativeError, UnknownCallError

S = CallState
LEGAL: set[tuple[CallState, CallState]] = {
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.FAILED),
    (S.PENDING, S.CANCELLED),
    (S.RUNNING, S.DONE),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
}
ALL_PAIRS = list(itertools.product(CallState, CallState))
SPEC_LEGAL = {
    (Speculation.SPECULATIVE, Speculation.COMMITTED),
    (Speculation.SPECULATIVE, Speculation.ABORTED),
}
SPEC_PAIRS = list(itertools.product(Speculation, Speculation))


def ledger_with(state: CallState, call_id: str = "c") -> CallLedger:
    """A ledger holding one record in ``state``, reached by legal moves."""
    ledger = CallLedger()
    ledger.create(call_id, "tool", {})
    path = {
        S.PENDING: [],
        S.RUNNING: [S.RUNNING],
        S.DONE: [S.RUNNING, S.DONE],
        S.FAILED: [S.FAILED],
        S.CANCELLED: [S.CANCELLED],
    }[state]
    for step in path:
        ledger.transition(call_id, step)
    assert ledger.get(call_id).state is state
    return ledger


def ledger_with_spec(spec: Speculation) -> CallLedger:
    ledger = CallLedger()
    ledger.create("c", "tool", {}, speculative=spec is not Speculation.NONE)
    if spec in (Speculation.COMMITTED, Speculation.ABORTED):
        ledger.set_speculation("c", spec)
    assert ledger.get("c").speculation is spec
    return ledger


# -- execution state machine -------------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), sorted(LEGAL))
def test_legal_transitions(src: CallState, dst: CallState) -> None:
    ledger = ledger_with(src)
    rec = ledger.transition("c", dst)
    assert rec.state is dst
    assert rec is ledger.get("c")


@pytest.mark.parametrize(("src", "dst"), [p for p in ALL_PAIRS if p not in LEGAL])
def test_illegal_transitions_raise(src: CallState, dst: CallState) -> None:
    ledger = ledger_with(src)
    before = ledger.get("c").to_dict()
    with pytest.raises(IllegalTransitionError) as info:
        ledger.transition(
            "c", dst, result=ToolMessage("x", tool_call_id="c"), error="should not be kept"
        )
    assert info.value.call_id == "c"
    assert info.value.current == src.value
    assert info.value.requested == dst.value
    assert isinstance(info.value, SpeculativeError)
    assert ledger.get("c").to_dict() == before  # nothing changed


def test_terminal_property() -> None:
    assert {s for s in CallState if s.terminal} == {S.DONE, S.FAILED, S.CANCELLED}


@settings(max_examples=200, deadline=None)
@given(
    start=st.sampled_from(list(CallState)),
    moves=st.lists(st.sampled_from(list(CallState)), max_size=12),
)
def test_random_transition_sequences_stay_in_the_graph(
    start: CallState, moves: list[CallState]
) -> None:
    ledger = ledger_with(start)
    rec = ledger.get("c")
    for move in moves:
        before = rec.state
        if (before, move) in LEGAL:
            ledger.transition("c", move)
            assert rec.state is move
        else:
            with pytest.raises(IllegalTransitionError):
                ledger.transition("c", move)
            assert rec.state is before
        if before.terminal:
            assert rec.state is before  # terminal states never change


def test_transition_of_unknown_call() -> None:
    with pytest.raises(UnknownCallError) as info:
        CallLedger().transition("nope", S.RUNNING)
    assert info.value.call_id == "nope"
    assert isinstance(info.value, KeyError)
    assert "nope" in str(info.value)


def test_transition_sets_timestamps_attempts_result_and_error() -> None:
    ledger = CallLedger()
    t0 = time.time()
    rec = ledger.create("c", "tool", {"a": 1})
    assert t0 <= rec.created_at <= time.time()
    assert rec.started_at is None and rec.finished_at is None and rec.attempts == 0
    ledger.transition("c", S.RUNNING)
    assert rec.attempts == 1
    assert rec.started_at is not None and rec.started_at >= rec.created_at
    assert rec.finished_at is None
    msg = ToolMessage("ok", tool_call_id="c")
    ledger.transition("c", S.DONE, result=msg)
    assert rec.result is msg
    assert rec.finished_at is not None and rec.finished_at >= rec.started_at
    assert rec.error is None

    ledger.create("d", "tool", {})
    failed = ledger.transition("d", S.FAILED, error="boom")
    assert failed.error == "boom" and failed.attempts == 0 and failed.started_at is None
    assert failed.finished_at is not None


# -- speculation state machine -----------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), SPEC_PAIRS)
def test_speculation_transitions(src: Speculation, dst: Speculation) -> None:
    ledger = ledger_with_spec(src)
    if (src, dst) in SPEC_LEGAL:
        assert ledger.set_speculation("c", dst).speculation is dst
    else:
        with pytest.raises(IllegalTransitionError) as info:
            ledger.set_speculation("c", dst)
        assert (info.value.current, info.value.requested) == (src.value, dst.value)
        assert ledger.get("c").speculation is src


def test_set_speculation_unknown_call() -> None:
    with pytest.raises(UnknownCallError):
        CallLedger().set_speculation("x", Speculation.COMMITTED)


@pytest.mark.parametrize(
    ("safe", "spec", "may_run"),
    [
        (True, Speculation.NONE, True),
        (False, Speculation.NONE, True),
        (True, Speculation.SPECULATIVE, True),
        (False, Speculation.SPECULATIVE, False),
        (True, Speculation.COMMITTED, True),
        (False, Speculation.COMMITTED, True),
        (True, Speculation.ABORTED, False),
        (False, Speculation.ABORTED, False),
    ],
)
def test_may_run(safe: bool, spec: Speculation, may_run: bool) -> None:
    rec = CallRecord(id="c", tool="t", args={}, safe=safe, speculation=spec)
    assert rec.may_run is may_run


# -- create ------------------------------------------------------------------------------


def test_create_defaults() -> None:
    ledger = CallLedger()
    rec = ledger.create("c1", "get", {"q": "x"}, safe=True, speculative=True)
    assert rec.state is S.PENDING
    assert rec.speculation is Speculation.SPECULATIVE
    assert rec.safe is True
    assert rec.args == {"q": "x"}
    assert len(rec.idempotency_key) == 32
    assert "c1" in ledger and "zz" not in ledger and len(ledger) == 1
    assert list(ledger) == [rec]
    plain = ledger.create("c2", "get", {"q": "x"})
    assert plain.speculation is Speculation.NONE and plain.safe is False


def test_create_copies_args() -> None:
    args = {"a": 1}
    rec = CallLedger().create("c", "t", args)
    args["a"] = 2
    assert rec.args == {"a": 1}


def test_idempotency_key_is_deterministic_and_overridable() -> None:
    a = CallLedger().create("c", "t", {"x": 1, "y": [1, 2]})
    b = CallLedger().create("c", "t", {"y": [1, 2], "x": 1})
    c = CallLedger().create("c", "t", {"x": 2, "y": [1, 2]})
    d = CallLedger().create("c", "t", {"x": 1}, idempotency_key="mine")
    assert a.idempotency_key == b.idempotency_key != c.idempotency_key
    assert d.idempotency_key == "mine"


def test_create_with_non_json_args_still_gets_a_key() -> None:
    rec = CallLedger().create("c", "t", {"s": {1, 2}, "o": object()})
    assert len(rec.idempotency_key) == 32


@pytest.mark.parametrize("bad_id", ["", None])
def test_create_empty_id(bad_id: Any) -> None:
    with pytest.raises(SpeculativeError, match="non-empty"):
        CallLedger().create(bad_id, "t", {})


def test_create_duplicate_id() -> None:
    ledger = CallLedger()
    ledger.create("c", "t", {})
    with pytest.raises(SpeculativeError, match="already"):
        ledger.create("c", "t", {})
    assert len(ledger) == 1


@pytest.mark.parametrize("bad_args", [[1, 2], "a=1", 3, None])
def test_create_non_mapping_args(bad_args: Any) -> None:
    ledger = CallLedger()
    with pytest.raises(SpeculativeError, match="mapping"):
        ledger.create("c", "t", bad_args)
    assert len(ledger) == 0


def test_create_unknown_dependency() -> None:
    ledger = CallLedger()
    ledger.create("a", "t", {})
    with pytest.raises(UnknownCallError) as info:
        ledger.create("b", "t", {}, depends_on=["a", "ghost"])
    assert info.value.call_id == "ghost"
    assert "b" not in ledger


def test_create_depends_on_a_string_is_refused() -> None:
    ledger = CallLedger()
    ledger.create("a", "t", {})
    with pytest.raises(SpeculativeError, match="not a string"):
        ledger.create("b", "t", {}, depends_on="a")


def test_get_unknown() -> None:
    with pytest.raises(UnknownCallError):
        CallLedger().get("x")


def test_in_state_keeps_creation_order() -> None:
    ledger = CallLedger()
    for i in range(5):
        ledger.create(f"c{i}", "t", {})
    ledger.transition("c3", S.RUNNING)
    ledger.transition("c1", S.CANCELLED)
    assert [r.id for r in ledger.in_state(S.PENDING)] == ["c0", "c2", "c4"]
    assert [r.id for r in ledger.in_state(S.RUNNING, S.CANCELLED)] == ["c1", "c3"]
    assert ledger.in_state() == []


# -- dependents --------------------------------------------------------------------------


def test_dependents_transitive() -> None:
    ledger = CallLedger()
    ledger.create("a", "t", {})
    ledger.create("b", "t", {}, depends_on=["a"])
    ledger.create("x", "t", {})
    ledger.create("c", "t", {}, depends_on=["b", "x"])
    ledger.create("d", "t", {}, depends_on=["a", "c"])
    ledger.create("e", "t", {}, depends_on=["x"])
    assert [r.id for r in ledger.dependents("a")] == ["b", "c", "d"]
    assert [r.id for r in ledger.dependents("b")] == ["c", "d"]
    assert [r.id for r in ledger.dependents("x")] == ["c", "d", "e"]
    assert ledger.dependents("d") == []
    assert ledger.dependents("not-there") == []


def test_dependents_of_a_cyclic_snapshot_terminate() -> None:
    recs = [
        CallRecord(id="a", tool="t", args={}, depends_on=("b",)),
        CallRecord(id="b", tool="t", args={}, depends_on=("a",)),
    ]
    ledger = CallLedger(recs)
    assert [r.id for r in ledger.dependents("a")] == ["b"]


def test_dependents_long_chain() -> None:
    ledger = CallLedger()
    ledger.create("c0", "t", {})
    for i in range(1, 3000):
        ledger.create(f"c{i}", "t", {}, depends_on=[f"c{i - 1}"])
    assert len(ledger.dependents("c0")) == 2999


# -- snapshots ---------------------------------------------------------------------------


def busy_ledger() -> CallLedger:
    ledger = CallLedger()
    ledger.create("a", "search", {"q": "paris", "n": [1, 2]}, safe=True)
    ledger.transition("a", S.RUNNING)
    result = ToolMessage(
        content="sunny", tool_call_id="a", name="search", id="tool-result-a", status="success"
    )
    ledger.transition("a", S.DONE, result=result)
    ledger.create("b", "book", {"x": "é"}, speculative=True, depends_on=["a"])
    ledger.set_speculation("b", Speculation.COMMITTED)
    ledger.create("c", "book", {}, speculative=True, idempotency_key="k")
    ledger.transition("c", S.FAILED, error="nope")
    ledger.record_input(InputRecord(1, "Book a", at=100.0))
    ledger.record_input(InputRecord(2, "meeting moved", at=100.5, kind="event", source="cal"))
    ledger.record_input(InputRecord(3, "Book a table, 两人", final=True, at=101.25))
    return ledger


def test_snapshot_round_trip_through_json() -> None:
    ledger = busy_ledger()
    snap = ledger.snapshot()
    assert set(snap) == {"calls", "inputs"}
    restored = CallLedger.from_snapshot(json.loads(json.dumps(snap)))
    assert restored.snapshot() == snap
    assert [r.id for r in restored] == ["a", "b", "c"]
    assert restored.inputs == ledger.inputs
    assert [(i.seq, i.kind, i.final) for i in restored.inputs] == [
        (1, "user", False),
        (2, "event", False),
        (3, "user", True),
    ]
    assert restored.inputs[1].source == "cal"
    a = restored.get("a")
    assert isinstance(a.result, ToolMessage)
    assert a.result.content == "sunny"
    assert a.result.tool_call_id == "a"
    assert a.result.id == "tool-result-a"
    assert a.result.name == "search"
    assert a.state is S.DONE and a.safe is True and a.attempts == 1
    b = restored.get("b")
    assert b.speculation is Speculation.COMMITTED and b.depends_on == ("a",)
    c = restored.get("c")
    assert c.error == "nope" and c.idempotency_key == "k" and c.state is S.FAILED
    for orig, new in zip(ledger, restored, strict=True):
        assert orig == new


def test_snapshot_is_independent_of_the_ledger() -> None:
    ledger = busy_ledger()
    snap = ledger.snapshot()
    snap["calls"][0]["args"]["q"] = "changed"
    snap["inputs"][0]["text"] = "changed"
    assert ledger.inputs[0].text == "Book a"
    assert ledger.get("a").args["q"] == "paris"
    restored = CallLedger.from_snapshot(ledger.snapshot())
    restored.get("a").args["q"] = "changed"
    assert ledger.get("a").args["q"] == "paris"


def test_from_snapshot_of_a_restored_ledger_keeps_working() -> None:
    restored = CallLedger.from_snapshot(busy_ledger().snapshot())
    restored.transition("b", S.RUNNING)
    assert restored.get("b").attempts == 1
    restored.create("d", "t", {}, depends_on=["b"])
    assert [r.id for r in restored.dependents("a")] == ["b", "d"]
    restored.record_input(InputRecord(4, "later event", at=102.0, kind="event"))
    with pytest.raises(SpeculativeError, match="seq must increase"):
        restored.record_input(InputRecord(4, "again", at=103.0))


def test_from_snapshot_accepts_the_old_list_form_and_a_dict_without_inputs() -> None:
    snap = busy_ledger().snapshot()
    for data in (snap["calls"], {"calls": snap["calls"]}):
        restored = CallLedger.from_snapshot(json.loads(json.dumps(data)))
        assert [r.id for r in restored] == ["a", "b", "c"]
        assert restored.inputs == ()
        assert restored.snapshot() == {"calls": snap["calls"], "inputs": []}
    assert CallLedger.from_snapshot([]).snapshot() == {"calls": [], "inputs": []}


# -- input records -----------------------------------------------------------------------


def test_record_input_in_order_and_from_a_mapping() -> None:
    ledger = CallLedger()
    assert ledger.inputs == ()
    first = ledger.record_input(InputRecord(1, "Play", at=1.0))
    second = ledger.record_input({"seq": 5, "text": "Play songs", "at": 2, "final": True})
    assert ledger.inputs == (first, second)
    assert second == InputRecord(5, "Play songs", final=True, at=2.0, kind="user")
    assert isinstance(second.at, float)
    for seq in (5, 4):
        with pytest.raises(SpeculativeError, match="seq must increase"):
            ledger.record_input(InputRecord(seq, "x", at=3.0))
    assert len(ledger.inputs) == 2
    assert len(ledger) == 0  # inputs are not calls


def test_record_input_does_not_notify_call_listeners() -> None:
    ledger = CallLedger()
    seen: list[LedgerEvent] = []
    ledger.subscribe(seen.append)
    ledger.record_input(InputRecord(1, "hi", at=1.0))
    assert seen == []


def test_ledger_constructor_checks_input_order() -> None:
    a, b = InputRecord(1, "a", at=1.0), InputRecord(2, "ab", at=2.0)
    assert CallLedger(inputs=[a, b]).inputs == (a, b)
    with pytest.raises(SpeculativeError):
        CallLedger(inputs=[b, a])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seq": 0, "text": "x", "at": 1.0},
        {"seq": True, "text": "x", "at": 1.0},
        {"seq": 1.0, "text": "x", "at": 1.0},
        {"seq": 1, "text": 5, "at": 1.0},
        {"seq": 1, "text": "x", "at": "now"},
        {"seq": 1, "text": "x", "at": float("nan")},
        {"seq": 1, "text": "x", "at": float("inf")},
        {"seq": 1, "text": "x", "at": True},
        {"seq": 1, "text": "x", "at": 1.0, "final": 1},
        {"seq": 1, "text": "x", "at": 1.0, "kind": "robot"},
        {"seq": 1, "text": "x", "at": 1.0, "source": 3},
        {"seq": 1, "text": "x", "at": 1.0, "kind": "event", "final": True},
    ],
)
def test_input_record_validates_its_fields(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SpeculativeError):
        InputRecord(**kwargs)
    with pytest.raises(SpeculativeError):
        InputRecord.from_dict(kwargs)


def test_input_record_round_trip_and_strict_from_dict() -> None:
    rec = InputRecord(3, '天气 "x"\n', at=5.5, kind="event", source="asr")
    assert InputRecord.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec
    assert InputRecord.from_dict({"seq": 1, "text": "x", "at": 0}) == InputRecord(1, "x", at=0.0)
    for bad in (None, [1], "x", {"seq": 1, "text": "x"}, {**rec.to_dict(), "extra": 1}):
        with pytest.raises(SpeculativeError):
            InputRecord.from_dict(bad)


def good_record() -> dict[str, Any]:
    return busy_ledger().snapshot()["calls"][0]


def good_input() -> dict[str, Any]:
    return busy_ledger().snapshot()["inputs"][0]


def _input_with(**changes: Any) -> dict[str, Any]:
    return {"calls": [], "inputs": [{**good_input(), **changes}]}


def _with(**changes: Any) -> dict[str, Any]:
    data = good_record()
    data.update(changes)
    return data


def _without(key: str) -> dict[str, Any]:
    data = good_record()
    del data[key]
    return data


GARBAGE: list[Any] = [
    None,
    3,
    "records",
    b"x",
    {"id": "a"},
    [None],
    [3],
    ["abc"],
    [[1, 2]],
    [{}],
    [_without("id")],
    [_without("tool")],
    [_without("args")],
    [_without("state")],
    [_with(id="")],
    [_with(id=5)],
    [_with(tool=None)],
    [_with(args=[1])],
    [_with(args="x")],
    [_with(state="exploded")],
    [_with(state=None)],
    [_with(speculation="maybe")],
    [_with(safe="false")],
    [_with(depends_on="a")],
    [_with(depends_on=[1])],
    [_with(depends_on=5)],
    [_with(created_at="yesterday")],
    [_with(started_at="now")],
    [_with(finished_at=[1])],
    [_with(attempts="1")],
    [_with(attempts=-1)],
    [_with(error=5)],
    [_with(idempotency_key=None)],
    [_with(result="x")],
    [_with(result=5)],
    [_with(result={"type": "tool"})],
    [_with(result={"type": "tool", "data": {}})],
    [_with(result={"type": "nonsense", "data": {"content": "x"}})],
    [_with(result=message_to_dict(AIMessage("not a tool message")))],
    [good_record(), good_record()],  # duplicate ids
    # the dict form
    {},
    {"inputs": []},
    {"calls": [], "inputs": [], "extra": 1},
    {"calls": None},
    {"calls": "abc"},
    {"calls": {"id": "a"}},
    {"calls": [None]},
    {"calls": [good_record(), good_record()]},
    {"calls": [], "inputs": None},
    {"calls": [], "inputs": "x"},
    {"calls": [], "inputs": {"seq": 1}},
    {"calls": [], "inputs": [None]},
    {"calls": [], "inputs": [3]},
    {"calls": [], "inputs": [{}]},
    {"calls": [], "inputs": [good_input(), good_input()]},  # seq does not increase
    _input_with(seq=0),
    _input_with(seq="1"),
    _input_with(seq=None),
    _input_with(text=None),
    _input_with(final="no"),
    _input_with(at="soon"),
    _input_with(at=None),
    _input_with(kind="robot"),
    _input_with(kind=None),
    _input_with(source=5),
    _input_with(extra=1),
    _input_with(kind="event", final=True),
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_from_snapshot_garbage(garbage: Any) -> None:
    with pytest.raises(SpeculativeError):
        CallLedger.from_snapshot(garbage)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(data=json_values)
def test_from_snapshot_arbitrary_json_raises_only_speculative_error(data: Any) -> None:
    try:
        ledger = CallLedger.from_snapshot(data)
    except SpeculativeError:
        return
    assert ledger.snapshot() == CallLedger.from_snapshot(ledger.snapshot()).snapshot()


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(sorted(good_record())),
    value=json_values,
)
def test_from_dict_with_one_field_replaced(key: str, value: Any) -> None:
    data = good_record()
    data[key] = value
    try:
        rec = CallRecord.from_dict(data)
    except SpeculativeError:
        return
    assert CallRecord.from_dict(rec.to_dict()) == rec


# -- listeners ---------------------------------------------------------------------------


def test_listeners_get_events_and_unsubscribe() -> None:
    ledger = CallLedger()
    seen: list[tuple[str, str, CallState, Speculation]] = []
    other: list[LedgerEvent] = []

    def listener(ev: LedgerEvent) -> None:
        seen.append((ev.kind, ev.record.id, ev.record.state, ev.record.speculation))

    unsubscribe = ledger.subscribe(listener)
    ledger.subscribe(other.append)
    ledger.create("a", "t", {}, speculative=True)
    ledger.transition("a", S.RUNNING)
    ledger.set_speculation("a", Speculation.COMMITTED)
    with pytest.raises(IllegalTransitionError):
        ledger.transition("a", S.PENDING)  # refused moves emit nothing
    ledger.transition("a", S.DONE)
    assert seen == [
        ("created", "a", S.PENDING, Speculation.SPECULATIVE),
        ("state", "a", S.RUNNING, Speculation.SPECULATIVE),
        ("speculation", "a", S.RUNNING, Speculation.COMMITTED),
        ("state", "a", S.DONE, Speculation.COMMITTED),
    ]
    assert all(ev.record is ledger.get("a") for ev in other)
    unsubscribe()
    unsubscribe()  # twice is harmless
    ledger.create("b", "t", {})
    assert len(seen) == 4
    assert len(other) == 5


def test_a_failing_listener_does_not_break_the_ledger(caplog: pytest.LogCaptureFixture) -> None:
    ledger = CallLedger()
    seen: list[str] = []

    def bad(ev: LedgerEvent) -> None:
        raise RuntimeError("listener bug")

    ledger.subscribe(bad)
    ledger.subscribe(lambda ev: seen.append(ev.kind))
    with caplog.at_level(logging.ERROR, logger="langgraph_speculative.core.ledger"):
        ledger.create("a", "t", {})
        ledger.transition("a", S.RUNNING)
    assert seen == ["created", "state"]
    assert ledger.get("a").state is S.RUNNING
    assert "listener bug" in caplog.text


def test_a_listener_may_unsubscribe_itself_during_an_event() -> None:
    ledger = CallLedger()
    calls: list[str] = []

    def once(ev: LedgerEvent) -> None:
        calls.append(ev.kind)
        unsubscribe()

    unsubscribe = ledger.subscribe(once)
    ledger.create("a", "t", {})
    ledger.create("b", "t", {})
    assert calls == ["created"]


# -- canonical_json ----------------------------------------------------------------------


def test_canonical_json() -> None:
    assert (
        canonical_json({"b": 1, "a": [1, {"d": 2, "c": "é"}]}) == '{"a":[1,{"c":"é","d":2}],"b":1}'
    )


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(sorted(good_input())), value=json_values)
def test_input_from_dict_with_one_field_replaced(key: str, value: Any) -> None:
    data = good_input()
    data[key] = value
    try:
        ledger = CallLedger.from_snapshot({"calls": [], "inputs": [data]})
    except SpeculativeError:
        return
    (rec,) = ledger.inputs
    assert InputRecord.from_dict(rec.to_dict()) == rec
