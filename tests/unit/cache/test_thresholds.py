"""Per-intent similarity thresholds calibrated on training data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langgraph_speculative.cache import LabelledRequest, PlanCache
from langgraph_speculative.cache.thresholds import calibrate_thresholds, choose_threshold
from langgraph_speculative.errors import RequestError

scores = st.lists(st.floats(min_value=-1.0, max_value=1.0), max_size=30)


def test_lowest_cut_that_keeps_negatives_out() -> None:
    t = choose_threshold([0.9, 0.8, 0.7, 0.6], [0.65], target_precision=1.0, floor=0.1)
    assert 0.65 < t <= 0.7


def test_no_negatives_gives_the_floor() -> None:
    assert choose_threshold([0.9, 0.2], [], floor=0.25, ceiling=0.95) == 0.25


def test_unreachable_precision_gives_the_ceiling() -> None:
    assert choose_threshold([0.5], [0.99, 0.98], target_precision=0.99, ceiling=0.9) == 0.9


@given(scores, scores)
def test_threshold_stays_in_bounds(pos: list[float], neg: list[float]) -> None:
    t = choose_threshold(pos, neg, floor=0.2, ceiling=0.9)
    assert 0.2 <= t <= 0.9


def test_calibrated_thresholds_cover_every_intent_and_the_pool() -> None:
    pairs = [
        ("合肥", "北京"),
        ("长沙", "上海"),
        ("广州", "深圳"),
        ("南京", "杭州"),
        ("成都", "西安"),
    ]
    examples = [
        LabelledRequest(
            f"{a}到{b}的火车票", "train", "QUERY", {"startLoc_city": a, "endLoc_city": b}
        )
        for a, b in pairs
    ] + [
        LabelledRequest(f"{d}怎么做", "cookbook", "QUERY", {"dishName": d})
        for d in ["糖醋排骨", "红烧肉", "宫保鸡丁", "麻婆豆腐", "鱼香肉丝"]
    ]
    cache = PlanCache.from_examples(examples, calibrate=False)
    thresholds = calibrate_thresholds(cache, examples, floor=0.1, ceiling=0.9)
    assert set(thresholds) == {"*", "train.QUERY", "cookbook.QUERY"}
    assert all(0.1 <= t <= 0.9 for t in thresholds.values())
    with pytest.raises(RequestError, match="at least one"):
        calibrate_thresholds(cache, [], floor=0.1)
