"""``bench cache-scale``: plan-cache lookup at scale (BENCHMARKS.md section 5).

For every ``--entries`` size, seeded random unit vectors of ``--dim`` components are
spread round-robin over ``--partitions`` partitions (the plan cache's intents: entry ``i``
lives in partition ``i % partitions``). Each ``--backend`` is then, in turn and from empty:

* bulk-loaded with :meth:`~langgraph_speculative.cache.vectors.vector_index.VectorIndex.add_many`
  in batches of ``--batch`` entries per partition (``load_s``);
* measured for memory: ``rss_mb`` is this process's resident set size after the load
  (``/proc/self/statm``), ``rss_delta_mb`` its growth during the load (for ``pgvector`` the data
  lives in the server: ``server_mb`` is the table's total size on disk);
* queried ``--queries`` times: each query is a stored vector plus Gaussian noise of norm
  about ``--noise``, renormalised, searched with ``k=1`` in its vector's partition, as
  the cache does (``lookup_ms.{p50,p95}``, each call timed alone, validation included);
  ``recall_at_1`` is the share of queries whose top hit is the exact top hit, computed
  with numpy over that partition's vectors (so ``faiss-flat`` scores 1.0);
* given ``--inserts`` single
  :meth:`~langgraph_speculative.cache.vectors.vector_index.VectorIndex.add` calls of new entries
  (``insert_ms.p50``), after the queries.

Example:
    ```python
    from langgraph_speculative.bench.cache_scale_bench import run_cache_scale_benchmark

    doc = run_cache_scale_benchmark(
        [500], ["faiss-flat"], dim=16, partitions=4, queries=50, inserts=10,
        progress_bar=False,
    )
    row = doc["results"]["faiss-flat"]["500"]
    assert row["recall_at_1"] == 1.0
    assert row["lookup_ms"]["p50"] <= row["lookup_ms"]["p95"]
    ```
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from langgraph_speculative.bench.report import format_table, percentile, progress, write_json
from langgraph_speculative.cache.vectors.backends import open_vector_index
from langgraph_speculative.cache.vectors.vector_index import VectorIndex

__all__ = [
    "BACKENDS",
    "DEFAULT_DIM",
    "add_arguments",
    "parse_backends",
    "parse_entries",
    "run",
    "run_cache_scale_benchmark",
    "table",
]

BACKENDS = ("faiss-flat", "faiss-hnsw", "pgvector")
"""The back-ends the benchmark knows (``faiss`` is accepted for ``faiss-flat``)."""

DEFAULT_DIM = 256
"""The default embedder's dimension (that of
:class:`~langgraph_speculative.cache.vectors.embeddings.NgramEmbeddings`)."""

_PG_TABLE = "lgs_bench_cache_scale"
_GEN_BATCH = 16384


def parse_entries(text: str) -> list[int]:
    """Parse ``--entries``: comma-separated sizes, ``1e4`` forms allowed.

    Args:
        text: For example ``"1e4,1e5,250000"``.

    Returns:
        The sizes, in the order given.

    Raises:
        argparse.ArgumentTypeError: A size is not a whole number >= 1, or none is given.
    """
    sizes: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"entries must be numbers, got {part!r}") from None
        if not np.isfinite(value) or value != int(value) or value < 1:
            raise argparse.ArgumentTypeError(f"entries must be whole numbers >= 1, got {part!r}")
        sizes.append(int(value))
    if not sizes:
        raise argparse.ArgumentTypeError("entries: give at least one size")
    return sizes


def parse_backends(text: str) -> list[str]:
    """Parse ``--backend``: comma-separated names of :data:`BACKENDS`.

    Raises:
        argparse.ArgumentTypeError: An unknown name, or none is given.
    """
    names: list[str] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        name = "faiss-flat" if part == "faiss" else part
        if name not in BACKENDS:
            raise argparse.ArgumentTypeError(
                f"unknown backend {part!r}; known: {', '.join(BACKENDS)}"
            )
        if name not in names:
            names.append(name)
    if not names:
        raise argparse.ArgumentTypeError("backend: give at least one back-end")
    return names


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _rss_mb() -> float:
    """Resident set size of this process (Linux ``/proc``; elsewhere the peak, ``maxrss``)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, B on macOS
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _trim_heap() -> None:
    """Return freed heap memory to the OS (glibc only), so RSS growth reflects new data."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _rss_source() -> str:
    if os.path.exists("/proc/self/statm"):
        return "current resident set size of this process (/proc/self/statm)"
    return "peak resident set size of this process (resource.getrusage ru_maxrss)"


def _unit_rows(rng: np.random.Generator, n: int, dim: int) -> NDArray[np.float32]:
    rows = rng.standard_normal((n, dim), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def _make_data(size: int, dim: int, partitions: int, seed: int) -> list[NDArray[np.float32]]:
    """Per-partition float32 matrices; entry ``i`` is row ``i // partitions`` of ``i % partitions``.

    Each batch comes from its own seeded generator, so a size's vectors do not depend on
    the batching of the load.
    """
    chunks: list[list[NDArray[np.float32]]] = [[] for _ in range(partitions)]
    for start in range(0, size, _GEN_BATCH):
        stop = min(size, start + _GEN_BATCH)
        rows = _unit_rows(np.random.default_rng([seed, size, start]), stop - start, dim)
        for p in range(partitions):
            first = (p - start) % partitions  # first row of this batch that belongs to p
            chunks[p].append(rows[first::partitions])
    return [
        np.ascontiguousarray(np.concatenate(c)) if c else np.empty((0, dim), np.float32)
        for c in chunks
    ]


def _part_name(p: int) -> str:
    return f"intent{p:03d}"


@contextlib.contextmanager
def _open(backend: str, dim: int, dsn: str | None, ef_search: int | None) -> Iterator[VectorIndex]:
    options: dict[str, Any] = {}
    if backend == "pgvector":
        options = {"dsn": dsn, "table": _PG_TABLE}
        index = open_vector_index(backend, dim=dim, **options)
        if index.count():  # a leftover of an interrupted run: start from empty
            _drop(index)
            index = open_vector_index(backend, dim=dim, **options)
        try:
            yield index
        finally:
            _drop(index)
        return
    if backend == "faiss-hnsw" and ef_search is not None:
        options["ef_search"] = ef_search
    index = open_vector_index(backend, dim=dim, **options)
    try:
        yield index
    finally:
        index.close()


def _drop(index: VectorIndex) -> None:
    drop = getattr(index, "drop", None)
    if callable(drop) and not index.closed:
        drop()
    index.close()


def _require_postgres(*, need_server: bool) -> None:
    modules = ["psycopg", "pgvector"] + (["pgserver"] if need_server else [])
    missing = []
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ValueError(
            f"the pgvector back-end needs {', '.join(missing)}: install the 'postgres' extra "
            '(pip install "langgraph-speculative[postgres]")'
        )


def _server_mb(dsn: str) -> float:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_total_relation_size(%s)", (_PG_TABLE,)).fetchone()
    return 0.0 if row is None or row[0] is None else float(row[0]) / 2**20


def _measure(
    index: VectorIndex,
    data: Sequence[NDArray[np.float32]],
    *,
    size: int,
    queries: int,
    inserts: int,
    noise: float,
    batch: int,
    seed: int,
    bar_desc: str,
    progress_bar: bool,
) -> dict[str, Any]:
    dim = index.dim
    partitions = len(data)
    _trim_heap()
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    with progress(size, bar_desc, enabled=progress_bar) as bar:
        bar.unit = "entry"
        for p, matrix in enumerate(data):
            name = _part_name(p)
            for start in range(0, len(matrix), batch):
                rows = matrix[start : start + batch]
                index.add_many(
                    name,
                    ((str(p + (start + j) * partitions), rows[j], None) for j in range(len(rows))),
                )
                bar.update(len(rows))
    load_s = time.perf_counter() - t0
    rss_after = _rss_mb()

    rng = np.random.default_rng([seed, size, 1])
    targets = rng.integers(0, size, queries)
    sigma = noise / np.sqrt(dim)
    picked: list[tuple[int, int, NDArray[np.float32]]] = []
    for target in targets.tolist():
        p, row = target % partitions, target // partitions
        query = data[p][row] + rng.standard_normal(dim, dtype=np.float32) * np.float32(sigma)
        picked.append((p, row, query / np.linalg.norm(query)))
    # Timed searches only, then the exact answers: numpy's BLAS threads stay idle meanwhile.
    lookups: list[float] = []
    found: list[str | None] = []
    for p, _, query in picked:
        began = time.perf_counter()
        hits = index.search(query, partition=_part_name(p), k=1)
        lookups.append((time.perf_counter() - began) * 1000.0)
        found.append(hits[0].key if hits else None)
    agree = sum(
        key == str(p + int(np.argmax(data[p] @ query)) * partitions)
        for key, (p, _, query) in zip(found, picked, strict=True)
    )

    adds: list[float] = []
    new_rows = _unit_rows(rng, inserts, dim)
    for j in range(inserts):
        name = _part_name(int(rng.integers(0, partitions)))
        began = time.perf_counter()
        index.add(name, f"new{j}", new_rows[j])
        adds.append((time.perf_counter() - began) * 1000.0)

    return {
        "lookup_ms": {"p50": percentile(lookups, 50), "p95": percentile(lookups, 95)},
        "insert_ms": {"p50": percentile(adds, 50)} if adds else {"p50": None},
        "recall_at_1": agree / queries,
        "rss_mb": round(rss_after, 1),
        "rss_delta_mb": round(rss_after - rss_before, 1),
        "load_s": round(load_s, 3),
    }


def run_cache_scale_benchmark(
    entries: Sequence[int],
    backends: Sequence[str],
    *,
    dim: int = DEFAULT_DIM,
    partitions: int = 48,
    queries: int = 1000,
    inserts: int = 200,
    noise: float = 0.5,
    batch: int = 1000,
    seed: int = 0,
    dsn: str | None = None,
    ef_search: int | None = None,
    progress_bar: bool = True,
) -> dict[str, Any]:
    """Measure lookup, insert, recall and memory of vector back-ends at several sizes.

    Args:
        entries: Cache sizes (entries in total, over all partitions).
        backends: Names from :data:`BACKENDS`.
        dim: Vector dimension.
        partitions: Number of partitions (intents) the entries are spread over.
        queries: Timed single searches per back-end and size.
        inserts: Timed single adds per back-end and size (after the queries).
        noise: Norm (about) of the Gaussian noise added to a stored vector to make a query.
        batch: Entries per ``add_many`` call in the bulk load.
        seed: Seed of the vectors, queries and inserts.
        dsn: PostgreSQL for ``pgvector``; ``None`` starts the embedded server.
        ef_search: HNSW search beam of ``faiss-hnsw`` (``None``: the back-end's default).
        progress_bar: Show the bulk-load progress on stderr.

    Returns:
        The JSON document: ``benchmark``, ``dim``, ``partitions``, ``queries``,
        ``inserts``, ``noise``, ``seed`` and ``results[backend][str(entries)]``.

    Raises:
        ValueError: An unknown back-end or a parameter out of range.
        EmbeddedPostgresError: ``pgvector`` without ``dsn`` and no ``postgres`` extra.
    """
    names = _backend_names(backends)
    if "pgvector" in names:
        _require_postgres(need_server=dsn is None)
    for what, value in (
        ("dim", dim),
        ("partitions", partitions),
        ("queries", queries),
        ("batch", batch),
    ):
        if value < 1:
            raise ValueError(f"{what} must be >= 1, got {value}")
    if inserts < 0:
        raise ValueError(f"inserts must be >= 0, got {inserts}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if not entries or any(n < 1 for n in entries):
        raise ValueError(f"entries must be >= 1, got {list(entries)}")
    results: dict[str, dict[str, Any]] = {name: {} for name in names}
    with contextlib.ExitStack() as stack:
        pg_dsn = None
        if "pgvector" in names:
            from langgraph_speculative.integrations.embedded_postgres import postgres_or_embedded

            pg_dsn = stack.enter_context(postgres_or_embedded(dsn))
        for size in entries:
            data = _make_data(size, dim, partitions, seed)
            for name in names:
                with _open(name, dim, pg_dsn, ef_search) as index:
                    row = _measure(
                        index,
                        data,
                        size=size,
                        queries=queries,
                        inserts=inserts,
                        noise=noise,
                        batch=batch,
                        seed=seed,
                        bar_desc=f"load {name} {size}",
                        progress_bar=progress_bar,
                    )
                    if name == "pgvector" and pg_dsn is not None:
                        row["server_mb"] = round(_server_mb(pg_dsn), 1)
                results[name][str(size)] = row
                gc.collect()
            del data
            gc.collect()
    return {
        "benchmark": "cache-scale",
        "dim": dim,
        "partitions": partitions,
        "queries": queries,
        "inserts": inserts,
        "noise": noise,
        "seed": seed,
        "rss_source": _rss_source(),
        "results": results,
    }


def _backend_names(backends: Sequence[str]) -> list[str]:
    try:
        return parse_backends(",".join(backends))
    except argparse.ArgumentTypeError as exc:
        raise ValueError(str(exc)) from None


def table(doc: Mapping[str, Any]) -> str:
    """Format a :func:`run_cache_scale_benchmark` document as a plain-text table."""
    rows = []
    for backend, sizes in doc["results"].items():
        for size, m in sizes.items():
            insert = m["insert_ms"]["p50"]
            rows.append(
                [
                    backend,
                    size,
                    f"{m['lookup_ms']['p50']:.3f}",
                    f"{m['lookup_ms']['p95']:.3f}",
                    "-" if insert is None else f"{insert:.3f}",
                    f"{m['recall_at_1']:.3f}",
                    f"{m['rss_mb']:.0f}",
                    f"{m['rss_delta_mb']:+.0f}",
                    f"{m['load_s']:.1f}",
                ]
            )
    headers = [
        "backend",
        "entries",
        "lookup p50 ms",
        "lookup p95 ms",
        "insert p50 ms",
        "recall@1",
        "RSS MB",
        "RSS delta MB",
        "load s",
    ]
    return format_table(headers, rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench cache-scale`` flags to ``parser``."""
    parser.add_argument(
        "--entries",
        type=parse_entries,
        default=parse_entries("1e4,1e5,1e6"),
        help="comma-separated cache sizes, e.g. 1e4,1e5,1e6 (the default)",
    )
    parser.add_argument(
        "--backend",
        type=parse_backends,
        default=["faiss-flat", "faiss-hnsw"],
        help=f"comma-separated back-ends of {', '.join(BACKENDS)} (default faiss-flat,faiss-hnsw)",
    )
    parser.add_argument(
        "--dim",
        type=_positive,
        default=DEFAULT_DIM,
        help=f"vector dimension (default {DEFAULT_DIM}, the default embedder's)",
    )
    parser.add_argument(
        "--partitions", type=_positive, default=48, help="partitions (intents), default 48"
    )
    parser.add_argument(
        "--queries", type=_positive, default=1000, help="timed searches per size (default 1000)"
    )
    parser.add_argument(
        "--inserts", type=_positive, default=200, help="timed single adds per size (default 200)"
    )
    parser.add_argument(
        "--noise", type=float, default=0.5, help="norm of the noise added to make a query"
    )
    parser.add_argument(
        "--batch", type=_positive, default=1000, help="entries per add_many call (default 1000)"
    )
    parser.add_argument(
        "--ef-search", type=_positive, default=None, help="faiss-hnsw search beam (default 64)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of vectors and queries")
    parser.add_argument(
        "--dsn", default=None, help="PostgreSQL for pgvector (default: an embedded server)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``bench cache-scale`` from parsed flags; return the exit code (0)."""
    doc = run_cache_scale_benchmark(
        args.entries,
        args.backend,
        dim=args.dim,
        partitions=args.partitions,
        queries=args.queries,
        inserts=args.inserts,
        noise=args.noise,
        batch=args.batch,
        seed=args.seed,
        dsn=args.dsn,
        ef_search=args.ef_search,
        progress_bar=not args.no_progress,
    )
    print(
        f"bench cache-scale: dim {doc['dim']}, {doc['partitions']} partitions, "
        f"{doc['queries']} queries and {doc['inserts']} single inserts per size"
    )
    print(table(doc))
    if args.json is not None:
        write_json(args.json, doc)
        print(f"wrote {args.json}")
    return 0
