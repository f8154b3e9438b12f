import json
from pathlib import Path

import pytest
from helpers import write_mixed_bfcl

from langgraph_speculative.bench.demo import demo_tasks
from langgraph_speculative.cli import main


def test_demo_tasks_are_valid() -> None:
    tasks = demo_tasks()
    assert len(tasks) == 7
    assert any(c.name == "book_table" for t in tasks for c in t.calls)  # an unsafe tool
    assert all(len(t.calls) >= 2 for t in tasks)


def test_demo_runs_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "demo",
            "--wpm",
            "6000",
            "--ttft-ms",
            "5",
            "--tpot-ms",
            "0.2",
            "--tool-ms",
            "2:10",
            "--no-progress",
            "--plot",
            str(tmp_path / "t.png"),
            "--json",
            str(tmp_path / "d.json"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "sync_parallel" in out
    assert (tmp_path / "t.png").stat().st_size > 1000
    doc = json.loads((tmp_path / "d.json").read_text())
    assert doc["async"]["calls"]["lost"] == 0 and doc["async"]["calls"]["duplicated"] == 0
    spoken = doc["speculative"]
    assert spoken["final_calls_correct"] == 1.0
    assert spoken["unsafe_before_commit"] == 0 and spoken["aborted_results_leaked"] == 0
    reuse = doc["plan_reuse"]  # two requests of each of five intents, none trained on
    assert reuse["wrong_plans"] == 0 and reuse["reused"] == 5 and reuse["planner_calls"] == 5


def test_bad_flag_values_give_clear_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--tool-ms", "fast", "--no-progress"]) == 2
    assert "tool latency must be LO:HI" in capsys.readouterr().err
    assert main(["demo", "--ttft-ms", "-1", "--no-progress"]) == 2
    assert "ttft_ms" in capsys.readouterr().err
    assert main(["demo", "--plot", "x.png", "--plot-task", "nope", "--no-progress"]) == 2


def test_bench_async_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "bench",
            "async",
            "--data",
            str(tmp_path / "no.json"),
            "--answers",
            str(tmp_path / "no.json"),
        ]
    )
    assert code == 2
    assert "no.json" in capsys.readouterr().err


@pytest.mark.shared_data
def test_bench_async_on_bfcl(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    code = main(
        [
            "bench",
            "async",
            "--data",
            str(shared_data / "bfcl/BFCL_v4_parallel.json"),
            "--answers",
            str(shared_data / "bfcl/possible_answer/BFCL_v4_parallel.json"),
            "--limit",
            "6",
            "--ttft-ms",
            "3",
            "--tpot-ms",
            "0.1",
            "--tool-ms",
            "1:5",
            "--via-http",
            "--no-progress",
            "--json",
            str(out),
        ]
    )
    doc = json.loads(out.read_text())
    assert code == 0, doc
    assert doc["tasks"] == 6
    assert doc["calls"]["lost"] == 0 and doc["calls"]["duplicated"] == 0
    assert doc["via_http"]["calls_identical"] is True


FAST = ["--ttft-ms", "3", "--tpot-ms", "0.1", "--tool-ms", "1:5", "--no-progress"]
BAD_IDS = {"bad_ints", "bad_enum", "bad_json", "bad_noanswer", "bad_unknown"}


@pytest.mark.parametrize("bench", ["async", "speculative"])
def test_benchmarks_skip_unplayable_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bench: str
) -> None:
    data, answers = write_mixed_bfcl(tmp_path)
    out = tmp_path / "b.json"
    flags = ["--data", str(data), "--answers", str(answers), *FAST, "--json", str(out)]
    extra = ["--overhead-tasks", "1"] if bench == "async" else ["--wpm", "6000"]
    code = main(["bench", bench, *flags, *extra])
    printed = capsys.readouterr()
    assert code == 0, printed
    doc = json.loads(out.read_text())
    assert doc["tasks"] == 2
    assert {s["id"] for s in doc["skipped"]} == BAD_IDS
    assert all(s["reason"] and s["kind"] in ("invalid", "malformed") for s in doc["skipped"])
    assert "skipped 5 record(s)" in printed.out
    assert "Traceback" not in printed.err
    # --strict: the old fail-fast behaviour, a clear error naming the record, exit code 2
    assert main(["bench", bench, *flags, *extra, "--strict"]) == 2
    err = capsys.readouterr().err
    assert "bad_" in err and "Traceback" not in err


def test_a_file_with_nothing_playable_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, answers = write_mixed_bfcl(tmp_path)
    lines = data.read_text(encoding="utf-8").splitlines()
    data.write_text("\n".join(line for line in lines if "good_" not in line), encoding="utf-8")
    code = main(["bench", "async", "--data", str(data), "--answers", str(answers), *FAST])
    assert code == 2
    assert "no playable task" in capsys.readouterr().err


def test_serve_sim_skips_unplayable_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from langgraph_speculative.cli import build_parser
    from langgraph_speculative.integrations.sim.server import build_server

    data, answers = write_mixed_bfcl(tmp_path)
    args = build_parser().parse_args(
        ["serve-sim", "--data", str(data), "--answers", str(answers), "--port", "0"]
    )
    server = build_server(args)
    assert [t.id for t in server.tasks] == ["good_0", "good_1"]
    assert "skipped 5 record(s)" in capsys.readouterr().out
