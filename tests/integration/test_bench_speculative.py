"""bench speculative: wait_then_act vs speculative on streamed requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from langgraph_speculative.bench.speculative_bench import MODES, run_speculative_benchmark
from langgraph_speculative.cli import main
from langgraph_speculative.integrations import LatencyModel, PlannedCall, ScriptedTask


def fn(name: str, **props: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} tool",
        "parameters": {
            "type": "dict",
            "properties": {k: {"type": t} for k, t in props.items()},
            "required": list(props),
        },
    }


TASKS = [
    ScriptedTask(
        "weather",
        "What is the weather like in Paris and in Rome today",
        (fn("get_weather", city="string"),),
        (
            PlannedCall("0", "get_weather", {"city": "Paris"}),
            PlannedCall("1", "get_weather", {"city": "Rome"}),
        ),
    ),
    ScriptedTask(
        "booking",  # book_ticket is unsafe by the name rule: it waits for the commit point
        "Please book 2 tickets to New York City for tomorrow morning",
        (fn("book_ticket", to="string", seats="integer"),),
        (PlannedCall("0", "book_ticket", {"to": "New York City", "seats": 2}),),
    ),
    ScriptedTask(
        "chinese",
        "请帮我查一下北京明天的天气怎么样",
        (fn("query_weather", city="string", day="string"),),
        (PlannedCall("0", "query_weather", {"city": "北京", "day": "明天"}),),
    ),
]

FAST = LatencyModel(ttft_ms=2, tpot_ms=0.1, tool_lo_ms=1, tool_hi_ms=3)


def check_document(doc: dict[str, Any], tasks: int) -> None:
    assert doc["tasks"] == tasks
    for mode in ("wait_then_act", "speculative"):
        assert set(doc["modes"][mode]) >= {"mean_ms", "p50_ms", "p90_ms"}
        assert doc["modes"][mode]["mean_ms"] > 0
    assert doc["speedup"]["speculative_vs_wait"] > 0
    assert set(doc["speculation"]) >= {"launched", "committed", "aborted", "revised"}
    assert doc["unsafe_before_commit"] == 0
    assert doc["final_calls_correct"] == 1.0
    assert doc["aborted_results_leaked"] == 0


@pytest.mark.parametrize("premature", [0.0, 1.0])
async def test_runs_own_tasks_in_both_modes(premature: float) -> None:
    result = await run_speculative_benchmark(
        TASKS, FAST, wpm=3000, cps=100, premature=premature, progress_bar=False
    )
    doc = result.document()
    assert doc["failures"] == [], doc["failures"]
    check_document(doc, 3)
    assert doc["tasks_completed"] == 3
    assert set(result.runs) == {(t.id, m) for t in TASKS for m in MODES}
    spec = doc["speculation"]
    assert spec["committed"] == 4  # every final call reused a speculative record
    if premature:
        assert spec["revised"] >= 1 and spec["aborted"] >= 1
        assert spec["launched"] > 4
    else:
        assert spec["revised"] == 0 and spec["aborted"] == 0
    json.dumps(doc)  # a JSON document
    table = result.table()
    assert "wait_then_act" in table and "speculative vs wait_then_act" in table
    assert "unsafe before commit 0" in table


async def test_settings_are_reported() -> None:
    result = await run_speculative_benchmark(
        TASKS[:1], FAST, wpm=4000, cps=90, premature=0.2, seed=3, progress_bar=False
    )
    settings = result.document()["settings"]
    assert settings["wpm"] == 4000 and settings["cps"] == 90
    assert settings["premature"] == 0.2 and settings["seed"] == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tasks": []}, "no tasks"),
        ({"concurrency": 0}, "concurrency"),
        ({"premature": 1.5}, "premature"),
    ],
)
async def test_bad_settings_are_refused(kwargs: dict[str, Any], match: str) -> None:
    tasks = kwargs.pop("tasks", TASKS)
    with pytest.raises(ValueError, match=match):
        await run_speculative_benchmark(tasks, FAST, progress_bar=False, **kwargs)


@pytest.mark.shared_data
def test_cli_on_bfcl_live_parallel(shared_data: Path, tmp_path: Path) -> None:
    bfcl = shared_data / "bfcl"
    out = tmp_path / "spec.json"
    code = main(
        [
            "bench",
            "speculative",
            "--data",
            str(bfcl / "BFCL_v4_live_parallel.json"),
            "--answers",
            str(bfcl / "possible_answer" / "BFCL_v4_live_parallel.json"),
            "--limit",
            "4",
            "--wpm",
            "3000",
            "--cps",
            "80",
            "--ttft-ms",
            "5",
            "--tpot-ms",
            "0.1",
            "--tool-ms",
            "1:5",
            "--no-progress",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    doc = json.loads(out.read_text())
    check_document(doc, 4)
    assert doc["failures"] == []
