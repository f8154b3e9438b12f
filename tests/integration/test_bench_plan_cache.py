"""``bench plan-cache``: systems side by side, BENCHMARKS.md section 3 keys, scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langgraph_speculative.bench.plan_cache_bench import (
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


# -- list-valued slots and malformed records ------------------------------------------

MATCHES = [
    ("湖人", "勇士", "{a}对{b}的比赛"),
    ("火箭", "马刺", "{a}对{b}的比赛"),
    ("热火", "公牛", "{a}对阵{b}的比分"),
    ("快船", "掘金", "{a}和{b}的比赛"),
    ("湖人", "火箭", "{a}对{b}的比分"),
    ("勇士", "热火", "{a}和{b}的比分"),
    ("马刺", "快船", "{a}对阵{b}的比赛"),
    ("公牛", "掘金", "{a}对{b}的比分"),
]
NEW_MATCHES = [
    ("马刺", "掘金", "{a}对{b}的比赛"),
    ("勇士", "公牛", "{a}和{b}的比分"),
    ("快船", "湖人", "{a}对{b}的比赛"),
    ("热火", "火箭", "{a}对阵{b}的比分"),
]


def _match(a: str, b: str, pattern: str) -> LabelledRequest:
    return LabelledRequest(pattern.format(a=a, b=b), "sports", "MATCH", {"name": [a, b]})


def test_gold_inputs_of_a_list_slot_compare_as_lists() -> None:
    from langgraph_speculative.bench.plan_cache_bench import _gold_inputs, _normalised

    plan = canonical_plans([_match(*MATCHES[0])])["sports.MATCH"]
    assert plan.steps[0].inputs == {"name": "{param:name}"}
    gold = _gold_inputs(plan, {"name": ("湖人", "勇士")})
    assert gold["lookup"] == {"name": ["湖人", "勇士"]}
    assert _normalised({"lookup": {"name": ["湖人", "勇士"]}})["lookup"] == gold["lookup"]
    assert _normalised({"lookup": {"name": ["勇士", "湖人"]}})["lookup"] != gold["lookup"]
    assert _normalised({"lookup": {"name": "湖人"}})["lookup"] != gold["lookup"]  # first only
    wide = ["\uff23\uff23\uff34\uff36\uff15", "第十五集"]  # full-width CCTV5
    assert _normalised({"lookup": {"name": wide}})["lookup"] == {"name": ["cctv5", "第15集"]}
    # a list of one value counts as that value (the cache fills one value as a string)
    one = _gold_inputs(plan, {"name": ("湖人",)})
    assert one["lookup"] == {"name": "湖人"} == _normalised({"lookup": {"name": "湖人"}})["lookup"]


def test_list_slots_are_reused_effectively() -> None:
    train = TRAIN + [_match(*m) for m in MATCHES]
    stream = STREAM + [_match(*m) for m in NEW_MATCHES]
    doc = run_plan_cache_benchmark(
        train, stream, systems=["no_cache", "agentreuse"], seeds=2, progress_bar=False
    )
    ours = doc["systems"]["agentreuse"]
    assert ours["precision"] == 1.0 and ours["recall"] == 1.0
    # 14 requests of 3 classes: all 11 reusable ones reused with every value right,
    # both teams of each match included
    assert ours["effective_reuse"] == pytest.approx(11 / 14)


def _mixed_files(tmp_path: Path) -> tuple[Path, Path]:
    def record(r: LabelledRequest) -> dict[str, object]:
        slots = {k: list(v) if isinstance(v, tuple) else v for k, v in r.slots.items()}
        return {"text": r.text, "domain": r.domain, "intent": r.intent, "slots": slots}

    train: list[object] = [record(r) for r in TRAIN]
    train += [record(_match(*m)) for m in MATCHES]
    train.insert(3, {"domain": "train", "intent": "QUERY"})  # no text
    train.insert(6, "not an object")
    train.append({"text": "红烧肉怎么做", "domain": "cookbook", "intent": "QUERY",
                  "slots": {"dishName": "回锅肉"}})  # fmt: skip  # not in the text
    train.append({"text": "湖人对勇士", "domain": "sports", "intent": "MATCH",
                  "slots": {"name": ["湖人", ""]}})  # fmt: skip  # an empty value
    train.append({"text": "湖人对勇士", "domain": "sports", "intent": "MATCH",
                  "slots": "湖人"})  # fmt: skip  # slots not an object
    train_path = tmp_path / "train.json"
    train_path.write_text(json.dumps(train, ensure_ascii=False), encoding="utf-8")
    lines = [json.dumps(record(r), ensure_ascii=False) for r in STREAM]
    lines += [json.dumps(record(_match(*m)), ensure_ascii=False) for m in NEW_MATCHES]
    lines.insert(2, "{this is not json")
    lines.insert(5, json.dumps({"text": "讲个笑话", "domain": "joke"}, ensure_ascii=False))
    stream_path = tmp_path / "stream.jsonl"
    stream_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return train_path, stream_path


def test_cli_skips_and_reports_malformed_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train_path, stream_path = _mixed_files(tmp_path)
    out = tmp_path / "plan.json"
    code = main(
        [
            "bench", "plan-cache",
            "--train", str(train_path),
            "--stream", str(stream_path),
            "--systems", "no_cache,agentreuse",
            "--seeds", "1",
            "--no-progress",
            "--json", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["requests"] == len(STREAM) + len(NEW_MATCHES)
    assert doc["train_requests"] == len(TRAIN) + len(MATCHES)
    skipped = doc["skipped"]
    assert [(s["file"], s["id"]) for s in skipped] == [
        (train_path.name, "3"),
        (train_path.name, "6"),
        (train_path.name, str(len(TRAIN) + len(MATCHES) + 2)),
        (train_path.name, str(len(TRAIN) + len(MATCHES) + 3)),
        (train_path.name, str(len(TRAIN) + len(MATCHES) + 4)),
        (stream_path.name, "2"),
        (stream_path.name, "5"),
    ]
    reasons = [s["reason"] for s in skipped]
    assert "'text'" in reasons[0] and "JSON object" in reasons[1]
    assert "not a substring" in reasons[2] and "non-empty" in reasons[3]
    assert "'slots'" in reasons[4]
    assert "not valid JSON" in reasons[5] and "'intent'" in reasons[6]
    assert skipped[5]["line"] == 3
    assert doc["systems"]["agentreuse"]["effective_reuse"] > 0
    printed = capsys.readouterr().out
    assert "skipped 7 malformed record(s)" in printed and "agentreuse" in printed


def test_cli_strict_fails_on_the_first_malformed_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from langgraph_speculative.cli import build_parser
    from langgraph_speculative.errors import DataFormatError

    train_path, stream_path = _mixed_files(tmp_path)
    argv = ["bench", "plan-cache", "--train", str(train_path), "--stream", str(stream_path),
            "--seeds", "1", "--no-progress", "--strict"]  # fmt: skip
    args = build_parser().parse_args(argv)
    with pytest.raises(DataFormatError, match="'text'") as info:
        args.run(args)
    assert info.value.record_id == "3"
    assert main(argv) == 2
    assert "record '3'" in capsys.readouterr().err
