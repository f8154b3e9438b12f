import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from langgraph_speculative.bench.cache_scale_bench import (
    parse_backends,
    parse_entries,
    run_cache_scale_benchmark,
    table,
)
from langgraph_speculative.cli import main


def _check_row(row: dict[str, Any]) -> None:
    assert set(row["lookup_ms"]) == {"p50", "p95"}
    assert 0 < row["lookup_ms"]["p50"] <= row["lookup_ms"]["p95"]
    assert row["insert_ms"]["p50"] > 0
    assert 0.0 <= row["recall_at_1"] <= 1.0
    assert row["rss_mb"] > 0
    for key in ("rss_delta_mb", "load_s"):
        assert key in row


def test_faiss_backends_keys_and_recall() -> None:
    doc = run_cache_scale_benchmark(
        [1000, 2000],
        ["faiss-flat", "faiss-hnsw"],
        dim=32,
        partitions=8,
        queries=200,
        inserts=20,
        progress_bar=False,
    )
    assert doc["benchmark"] == "cache-scale"
    assert (doc["dim"], doc["partitions"], doc["queries"]) == (32, 8, 200)
    assert set(doc["results"]) == {"faiss-flat", "faiss-hnsw"}
    for backend in ("faiss-flat", "faiss-hnsw"):
        assert set(doc["results"][backend]) == {"1000", "2000"}
        for row in doc["results"][backend].values():
            _check_row(row)
    for row in doc["results"]["faiss-flat"].values():
        assert row["recall_at_1"] == 1.0  # exact search agrees with numpy
    for row in doc["results"]["faiss-hnsw"].values():
        assert 0.5 <= row["recall_at_1"] <= 1.0
    text = table(doc)
    assert "faiss-hnsw" in text and "recall@1" in text


def test_hnsw_recall_drops_with_a_tiny_beam() -> None:
    doc = run_cache_scale_benchmark(
        [3000],
        ["faiss-hnsw"],
        dim=64,
        partitions=1,
        queries=200,
        inserts=1,
        noise=1.5,
        ef_search=1,
        progress_bar=False,
    )
    assert doc["results"]["faiss-hnsw"]["3000"]["recall_at_1"] < 1.0


def test_same_seed_same_recall() -> None:
    def recall(seed: int) -> float:
        doc = run_cache_scale_benchmark(
            [500], ["faiss-hnsw"], dim=16, partitions=2, queries=100, seed=seed,
            inserts=1, noise=1.0, ef_search=2, progress_bar=False,
        )  # fmt: skip
        value: float = doc["results"]["faiss-hnsw"]["500"]["recall_at_1"]
        return value

    assert recall(3) == recall(3)


def test_parse_entries_and_backends() -> None:
    assert parse_entries("1e4, 1e5,250") == [10_000, 100_000, 250]
    assert parse_backends("faiss,faiss-hnsw,pgvector") == ["faiss-flat", "faiss-hnsw", "pgvector"]
    for bad in ("0", "1.5", "-3", "abc", "", "1e4,,x"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_entries(bad)
    for bad in ("annoy", "", "faiss,milvus"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_backends(bad)


def test_bad_values_of_the_function() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        run_cache_scale_benchmark([10], ["annoy"], progress_bar=False)
    with pytest.raises(ValueError, match="entries"):
        run_cache_scale_benchmark([0], ["faiss-flat"], progress_bar=False)
    with pytest.raises(ValueError, match="dim"):
        run_cache_scale_benchmark([10], ["faiss-flat"], dim=0, progress_bar=False)


def test_cli_cache_scale_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "scale.json"
    code = main(
        [
            "bench",
            "cache-scale",
            "--entries",
            "1e3",
            "--backend",
            "faiss-flat,faiss-hnsw",
            "--dim",
            "32",
            "--queries",
            "50",
            "--inserts",
            "5",
            "--no-progress",
            "--json",
            str(out_file),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "lookup p95 ms" in out and "faiss-flat" in out
    doc = json.loads(out_file.read_text())
    assert doc["results"]["faiss-flat"]["1000"]["recall_at_1"] == 1.0
    _check_row(doc["results"]["faiss-hnsw"]["1000"])


@pytest.mark.parametrize(
    "argv",
    [
        ["--backend", "annoy"],
        ["--entries", "0"],
        ["--entries", "1e4,x"],
        ["--dim", "0"],
        ["--queries", "0"],
    ],
)
def test_cli_cache_scale_bad_input(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "cache-scale", *argv])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_pgvector_end_to_end(postgres_dsn: str) -> None:
    import psycopg

    doc = run_cache_scale_benchmark(
        [300],
        ["pgvector"],
        dim=16,
        partitions=4,
        queries=40,
        inserts=5,
        dsn=postgres_dsn,
        progress_bar=False,
    )
    row = doc["results"]["pgvector"]["300"]
    _check_row(row)
    assert row["recall_at_1"] == 1.0  # the back-end searches exactly by default
    assert row["server_mb"] > 0
    with psycopg.connect(postgres_dsn) as conn:
        left = conn.execute("SELECT to_regclass('lgs_bench_cache_scale')").fetchone()
    assert left is not None and left[0] is None  # the table was dropped
