"""``bench plan-cache``: systems side by side, BENCHMARKS.md section 3 keys, scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langgraph_speculative.bench.plan_cache import (
    SYSTEMS,
    canonical_plans,
    run_plan_cache_benchmark,
)
from langgraph_speculative.cache import LabelledRequest
from langgraph_speculative.cli import main

METRICS = ("precision", "recall", "f1", "accuracy", "effective_reuse", "latency_reduction")


def _req(text: str, domain: str, intent: str, **slots: str) -> LabelledRequest:
    return LabelledRequest(text, domain, intent, slots)


PAIRS = [("合肥", "北京"), ("长沙", "上海"), ("广州", "深圳"), ("南京", "杭州"), ("成都", "西安")]
DISHES = ["糖醋排骨", "红烧肉", "宫保鸡丁", "麻婆豆腐", "鱼香肉丝"]
TRAIN = [
    _req(f"{a}到{b}的火车票", "train", "QUERY", startLoc_city=a, endLoc_city=b) for a, b in PAIRS
]
TRAIN += [_req(f"{d}怎么做", "cookbook", "QUERY", dishName=d) for d in DISHES]
STREAM = [
    _req(f"{b}到{a}的火车票", "train", "QUERY", startLoc_city=b, endLoc_city=a) for a, b in PAIRS
] + [_req(f"{d}怎么做", "cookbook", "QUERY", dishName=d) for d in reversed(DISHES)]


def test_canonical_plans_take_every_slot_of_the_class() -> None:
    plans = canonical_plans(TRAIN)
    assert set(plans) == {"train.QUERY", "cookbook.QUERY"}
    assert plans["train.QUERY"].parameters == ["endLoc_city", "startLoc_city"]


def test_document_has_the_required_keys_and_sane_numbers() -> None:
    doc = run_plan_cache_benchmark(TRAIN, STREAM, seeds=2, progress_bar=False)
    assert doc["requests"] == len(STREAM)
    assert set(doc["systems"]) == set(SYSTEMS)
    for system in SYSTEMS:
        for metric in METRICS:
            assert -0.01 <= doc["systems"][system][metric] <= 1.0, (system, metric)
    assert set(doc["overhead_ms"]) == {"p50", "p95"}
    no_cache = doc["systems"]["no_cache"]
    assert no_cache["recall"] == 0.0 and no_cache["latency_reduction"] == 0.0
    # 10 requests of 2 classes: a first of each class is planned, the rest reusable
    assert no_cache["accuracy"] == pytest.approx(2 / 10)
    ours = doc["systems"]["agentreuse"]
    assert ours["precision"] == 1.0 and ours["recall"] == 1.0
    assert ours["effective_reuse"] == pytest.approx(8 / 10)
    assert ours["latency_reduction"] > 0.75


def test_a_held_out_domain_is_reported_as_unseen() -> None:
    doc = run_plan_cache_benchmark(
        [r for r in TRAIN if r.domain == "train"] + [_req("你好", "chat", "HELLO")],
        STREAM,
        systems=["no_cache", "agentreuse"],
        seeds=1,
        progress_bar=False,
    )
    assert doc["settings"]["unseen_domains"] == ["cookbook"]
    assert "unseen" in doc["systems"]["agentreuse"]
    assert doc["systems"]["agentreuse"]["unseen"]["precision"] in (0.0, 1.0)


def test_the_classifier_may_read_a_sentence_embedder() -> None:
    from langgraph_speculative.cache import NgramEmbeddings

    emb = NgramEmbeddings()
    emb.fit([r.text for r in TRAIN])
    doc = run_plan_cache_benchmark(
        TRAIN,
        STREAM,
        systems=["agentreuse"],
        seeds=1,
        classifier_embeddings=emb,
        progress_bar=False,
    )
    assert doc["settings"]["classifier_features"] == "both"
    assert doc["systems"]["agentreuse"]["precision"] == 1.0


def test_unknown_system_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown system"):
        run_plan_cache_benchmark(TRAIN, STREAM, systems=["magic"], progress_bar=False)


@pytest.mark.shared_data
def test_cli_on_smp2019(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.json"
    code = main(
        [
            "bench", "plan-cache",
            "--train", str(shared_data / "smp2019" / "dev.json"),
            "--test-fraction", "0.5",
            "--seeds", "1",
            "--limit", "300",
            "--hold-out-domains", "poetry",
            "--no-progress",
            "--json", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["requests"] == 300
    for system in SYSTEMS:
        assert set(METRICS) <= set(doc["systems"][system])
    ours, gpt = doc["systems"]["agentreuse"], doc["systems"]["gptcache_style"]
    assert ours["precision"] >= 0.95
    assert ours["f1"] > gpt["f1"]
    assert doc["overhead_ms"]["p50"] > 0
    assert "agentreuse" in capsys.readouterr().out
