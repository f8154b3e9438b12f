"""Online intent induction: when a request of unknown intent may reuse an induced plan."""

from __future__ import annotations

import pytest

from langgraph_speculative.cache import Plan, PlanStep
from langgraph_speculative.cache.intent.induction import INDUCED_PARTITION, IntentInducer
from langgraph_speculative.cache.vectors.vector_index import VectorHit


def _hit(key: str, score: float, induced: str) -> VectorHit:
    return VectorHit(
        key=key, score=score, partition=INDUCED_PARTITION, payload={"induced": induced}
    )


def _plan(tool: str, value: str) -> Plan:
    return Plan(
        steps=[PlanStep(id="s1", description="d", tool=tool, inputs={"x": value}, output="o")]
    )


def test_best_hit_above_threshold_is_chosen_when_shapes_agree() -> None:
    inducer = IntentInducer(threshold=0.8, k=3)
    assert inducer.choose([_hit("a", 0.95, "x"), _hit("b", 0.82, "x")]).key == "a"


def test_nothing_above_the_threshold_is_no_hit() -> None:
    assert IntentInducer(threshold=0.8).choose([_hit("a", 0.79, "x")]) is None
    assert IntentInducer().choose([]) is None


def test_disagreeing_shapes_are_not_guessed_at() -> None:
    hits = [_hit("a", 0.95, "x"), _hit("b", 0.9, "y")]
    assert IntentInducer(threshold=0.8).choose(hits) is None
    assert IntentInducer(threshold=0.8, k=1).choose(hits).key == "a"  # only the nearest votes
    below = [_hit("a", 0.95, "x"), _hit("b", 0.5, "y")]
    assert IntentInducer(threshold=0.8).choose(below).key == "a"  # a far entry does not vote


def test_label_depends_on_the_plan_shape_not_its_values() -> None:
    assert IntentInducer.label(_plan("t", "a")) == IntentInducer.label(_plan("t", "b"))
    assert IntentInducer.label(_plan("t", "a")) != IntentInducer.label(_plan("u", "a"))
    assert IntentInducer.label(_plan("t", "a")).startswith("induced:")


@pytest.mark.parametrize(
    ("stripped", "usable"),
    [("<dishName>怎么做", True), ("<name>", False), ("<name>。", False), ("播放<song>", True)],
)
def test_requests_that_are_all_placeholders_do_not_take_part(stripped: str, usable: bool) -> None:
    assert IntentInducer().usable(stripped) is usable


@pytest.mark.parametrize("kwargs", [{"threshold": 0.0}, {"threshold": 1.5}, {"k": 0}])
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        IntentInducer(**kwargs)  # type: ignore[arg-type]


def test_a_learned_intent_reuses_its_nearest_entry_above_the_learned_threshold() -> None:
    inducer = IntentInducer(learned_threshold=0.3, learned_k=3)
    hits = [_hit("a", 0.9, "y"), _hit("b", 0.5, "x"), _hit("c", 0.4, "x")]
    chosen = inducer.choose_learned(hits, "x")
    assert chosen is not None and chosen.key == "b"  # other shapes are skipped
    assert inducer.choose_learned(hits, "z") is None
    assert IntentInducer(learned_threshold=0.6).choose_learned(hits, "x") is None
    assert IntentInducer(learned_k=1).choose_learned(hits, "x") is None  # beyond learned_k


def test_settings_round_trip() -> None:
    inducer = IntentInducer(threshold=0.7, learn=False, learned_confidence=0.9)
    assert IntentInducer(**inducer.settings()) == inducer  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"learned_confidence": 1.5},
        {"learned_threshold": 0.0},
        {"learned_k": 0},
        {"learned_min_examples": 0},
        {"learned_C": 0.0},
    ],
)
def test_bad_learning_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        IntentInducer(**kwargs)  # type: ignore[arg-type]
