"""The same behavioural tests for every vector back-end (faiss flat, faiss HNSW, pgvector)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from langgraph_speculative.cache.vectors.backends import open_vector_index
from langgraph_speculative.cache.vectors.faiss_index import FaissIndex
from langgraph_speculative.cache.vectors.vector_index import VectorHit, VectorIndex
from langgraph_speculative.errors import EmbeddingDimensionError, PlanCacheError, RequestError

BACKENDS = ["faiss", "faiss-hnsw", "pgvector"]
Factory = Callable[..., VectorIndex]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_index(backend: str, request: pytest.FixtureRequest) -> Iterator[Factory]:
    made: list[VectorIndex] = []
    options: dict[str, Any] = {}
    if backend == "pgvector":
        options["dsn"] = request.getfixturevalue("postgres_dsn")

    def factory(dim: int = 4, **extra: Any) -> VectorIndex:
        opts = {**options, **extra}
        if backend == "pgvector":
            opts.setdefault("table", f"t_{uuid.uuid4().hex[:12]}")
        index = open_vector_index(backend, dim=dim, **opts)
        made.append(index)
        return index

    yield factory
    for index in made:
        if hasattr(index, "drop") and not index.closed:
            index.drop()
        index.close()


def unit(*xs: float) -> list[float]:
    return list(xs)


def keys(hits: list[VectorHit]) -> list[str]:
    return [h.key for h in hits]


# -- basics ---------------------------------------------------------------------------------
def test_add_and_search(make_index: Factory) -> None:
    index = make_index()
    index.add("p", "x", unit(1, 0, 0, 0), {"plan": "x", "steps": [1, 2]})
    index.add("p", "y", unit(0, 1, 0, 0), {"plan": "y"})
    index.add("p", "xy", unit(1, 1, 0, 0))
    hits = index.search(unit(1, 0.1, 0, 0), partition="p", k=3)
    assert keys(hits) == ["x", "xy", "y"]
    assert hits[0].payload == {"plan": "x", "steps": [1, 2]}
    assert hits[0].partition == "p"
    assert hits[2].payload == {"plan": "y"}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert index.search(unit(0, 1, 0, 0), partition="p", k=1)[0].key == "y"
    assert keys(index.search(unit(1, 0.1, 0, 0), partition="p", k=10)) == ["x", "xy", "y"]
    assert index.search(unit(1, 0, 0, 0), partition="unknown", k=3) == []


def test_scores_are_cosines(make_index: Factory) -> None:
    index = make_index()
    index.add("p", "a", unit(3, 4, 0, 0))  # not unit length: the index normalises it
    hit = index.search(unit(30, 40, 0, 0), partition="p")[0]
    assert hit.score == pytest.approx(1.0, abs=1e-5)
    hit = index.search(unit(4, -3, 0, 0), partition="p")[0]
    assert hit.score == pytest.approx(0.0, abs=1e-5)
    hit = index.search(unit(-3, -4, 0, 0), partition="p")[0]
    assert hit.score == pytest.approx(-1.0, abs=1e-5)


def test_numpy_vectors_accepted(make_index: Factory) -> None:
    index = make_index()
    index.add("p", "a", np.array([0, 0, 1, 0], dtype=np.float64))
    index.add("p", "b", np.array([0, 0, 0, 1], dtype=np.float32))
    assert index.search(np.array([0, 0, 0, 2], dtype=np.float32), partition="p")[0].key == "b"


def test_replace_key(make_index: Factory) -> None:
    index = make_index()
    index.add("p", "k", unit(1, 0, 0, 0), {"v": 1})
    index.add("p", "other", unit(0, 0, 1, 0), {"v": 0})
    index.add("p", "k", unit(0, 1, 0, 0), {"v": 2})
    assert index.count("p") == 2
    hits = index.search(unit(0, 1, 0, 0), partition="p", k=5)
    assert keys(hits) == ["k", "other"]
    assert hits[0].payload == {"v": 2} and hits[0].score == pytest.approx(1.0, abs=1e-5)
    # the old vector is gone: searching near it does not find a second "k"
    assert keys(index.search(unit(1, 0, 0, 0), partition="p", k=5)).count("k") == 1


def test_same_key_in_two_partitions_is_two_entries(make_index: Factory) -> None:
    index = make_index()
    index.add("a", "k", unit(1, 0, 0, 0), {"in": "a"})
    index.add("b", "k", unit(1, 0, 0, 0), {"in": "b"})
    assert index.count() == 2
    assert index.search(unit(1, 0, 0, 0), partition="b")[0].payload == {"in": "b"}
    assert index.remove("a", "k")
    assert index.search(unit(1, 0, 0, 0), partition="b")[0].payload == {"in": "b"}


def test_remove(make_index: Factory) -> None:
    index = make_index()
    index.add("p", "a", unit(1, 0, 0, 0))
    index.add("p", "b", unit(0, 1, 0, 0))
    assert index.remove("p", "a") is True
    assert index.remove("p", "a") is False
    assert index.remove("nope", "a") is False
    assert keys(index.search(unit(1, 0, 0, 0), partition="p", k=5)) == ["b"]
    assert index.remove("p", "b")
    assert index.partitions() == [] and index.count() == 0
    assert index.search(unit(1, 0, 0, 0), partition="p", k=5) == []
    index.add("p", "a", unit(0, 0, 0, 1), {"again": True})
    assert index.search(unit(0, 0, 0, 1), partition="p")[0].payload == {"again": True}


def test_partitions_count_and_search_all(make_index: Factory) -> None:
    index = make_index()
    index.add("train.QUERY", "t1", unit(1, 0, 0, 0))
    index.add("train.QUERY", "t2", unit(0.9, 0.1, 0, 0))
    index.add("cookbook.QUERY", "c1", unit(0.95, 0, 0.05, 0))
    index.add("weather.QUERY", "w1", unit(0, 0, 0, 1))
    assert index.partitions() == ["cookbook.QUERY", "train.QUERY", "weather.QUERY"]
    assert index.count() == 4 and index.count("train.QUERY") == 2 and index.count("x") == 0
    every = index.search(unit(1, 0, 0, 0), partition=None, k=3)
    assert keys(every) == ["t1", "c1", "t2"]
    assert [h.partition for h in every] == ["train.QUERY", "cookbook.QUERY", "train.QUERY"]
    gated = index.search(unit(1, 0, 0, 0), partition="cookbook.QUERY", k=3)
    assert keys(gated) == ["c1"]


def test_payload_is_copied(make_index: Factory) -> None:
    index = make_index()
    payload: dict[str, Any] = {"steps": [{"tool": "search"}]}
    index.add("p", "a", unit(1, 0, 0, 0), payload)
    payload["steps"].append({"tool": "evil"})
    hit = index.search(unit(1, 0, 0, 0), partition="p")[0]
    assert hit.payload == {"steps": [{"tool": "search"}]}
    hit.payload["steps"].clear()
    assert index.search(unit(1, 0, 0, 0), partition="p")[0].payload == {
        "steps": [{"tool": "search"}]
    }
    assert isinstance(hash(hit), int)  # frozen and hashable despite the dict payload


def test_add_many_and_unicode(make_index: Factory) -> None:
    index = make_index(dim=3)
    n = index.add_many(
        "火车票",
        [("键一", [1, 0, 0], {"城市": "北京"}), ("键二", [0, 1, 0], None), ("键一", [0, 0, 1], {})],
    )
    assert n == 2  # the duplicate key: the later entry wins
    assert index.count("火车票") == 2
    assert index.search([0, 0, 1], partition="火车票")[0].key == "键一"
    assert index.search([1, 0, 0], partition="火车票", k=2)[0].payload in ({}, {"城市": "北京"})


def test_matches_brute_force(make_index: Factory, backend: str) -> None:
    rng = np.random.default_rng(7)
    dim, n = 16, 200
    index = make_index(dim=dim)
    vectors = rng.normal(size=(n, dim))
    index.add_many("p", [(f"k{i}", v, {"i": i}) for i, v in enumerate(vectors)])
    normed = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    agree = 0
    for q in rng.normal(size=(20, dim)):
        expected = [f"k{i}" for i in np.argsort(-(normed @ (q / np.linalg.norm(q))))[:5]]
        got = keys(index.search(q, partition="p", k=5))
        if backend == "faiss-hnsw":  # approximate
            agree += len(set(got) & set(expected))
        else:
            assert got == expected
    if backend == "faiss-hnsw":
        assert agree >= 0.9 * 20 * 5


# -- validation ------------------------------------------------------------------------------
def test_dimension_errors(make_index: Factory) -> None:
    index = make_index(dim=4)
    with pytest.raises(EmbeddingDimensionError, match="3 components"):
        index.add("p", "a", [1, 0, 0])
    with pytest.raises(EmbeddingDimensionError):
        index.search([1, 0, 0, 0, 0], partition="p")
    with pytest.raises(EmbeddingDimensionError, match="1-D"):
        index.add("p", "a", [[1, 0, 0, 0]])
    with pytest.raises(EmbeddingDimensionError):
        index.add_many("p", [("ok", [1, 0, 0, 0], None), ("bad", [1, 0], None)])
    assert index.count() == 0  # nothing stored, not even the valid entry of the batch


@pytest.mark.parametrize(
    ("partition", "key", "vector", "payload"),
    [
        ("p", "k", [1, float("nan"), 0, 0], None),
        ("p", "k", [1, float("inf"), 0, 0], None),
        ("p", "k", [0, 0, 0, 0], None),
        ("p", "k", ["a", "b", "c", "d"], None),
        ("", "k", [1, 0, 0, 0], None),
        ("p", "", [1, 0, 0, 0], None),
        (3, "k", [1, 0, 0, 0], None),
        ("p", None, [1, 0, 0, 0], None),
        ("p\x00", "k", [1, 0, 0, 0], None),
        ("p", "k" * 600, [1, 0, 0, 0], None),
        ("p", "k", [1, 0, 0, 0], ["not", "a", "dict"]),
        ("p", "k", [1, 0, 0, 0], {"x": {1, 2}}),
        ("p", "k", [1, 0, 0, 0], {"x": float("nan")}),
        ("p", "k", [1, 0, 0, 0], {"x": "nul\x00"}),
    ],
    ids=[
        "nan",
        "inf",
        "zero",
        "strings",
        "empty-partition",
        "empty-key",
        "int-partition",
        "none-key",
        "nul-partition",
        "long-key",
        "list-payload",
        "set-in-payload",
        "nan-in-payload",
        "nul-in-payload",
    ],
)
def test_invalid_input_is_refused_and_not_stored(
    make_index: Factory, partition: Any, key: Any, vector: Any, payload: Any
) -> None:
    index = make_index(dim=4)
    with pytest.raises(RequestError):
        index.add(partition, key, vector, payload)
    assert index.count() == 0
    assert isinstance(RequestError("x"), ValueError)


def test_invalid_search(make_index: Factory) -> None:
    index = make_index(dim=4)
    index.add("p", "k", [1, 0, 0, 0])
    for k in (0, -1, 1.5, True):
        with pytest.raises(RequestError, match="k must be"):
            index.search([1, 0, 0, 0], partition="p", k=k)
    with pytest.raises(RequestError):
        index.search([float("nan"), 0, 0, 0], partition="p")
    with pytest.raises(RequestError):
        index.search([1, 0, 0, 0], partition="")
    with pytest.raises(RequestError):
        index.remove("", "k")


def test_closed_index_refuses_work(make_index: Factory) -> None:
    index = make_index()
    index.add("p", "k", [1, 0, 0, 0])
    index.close()
    index.close()  # idempotent
    assert index.closed
    with pytest.raises(PlanCacheError, match="closed"):
        index.search([1, 0, 0, 0], partition="p")
    with pytest.raises(PlanCacheError):
        index.add("p", "k2", [1, 0, 0, 0])


def test_context_manager_closes(make_index: Factory) -> None:
    with make_index() as index:
        index.add("p", "k", [1, 0, 0, 0])
    assert index.closed


# -- concurrency ----------------------------------------------------------------------------
async def test_concurrent_tasks(make_index: Factory) -> None:
    dim = 8
    index = make_index(dim=dim)
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(120, dim))
    parts = ["a", "b", "c"]

    async def writer(i: int) -> None:
        await index.aadd(parts[i % 3], f"k{i}", vectors[i], {"i": i})

    async def reader(i: int) -> list[VectorHit]:
        return await index.asearch(vectors[i], partition=None, k=3)

    results = await asyncio.gather(
        *(writer(i) for i in range(120)), *(reader(i) for i in range(120))
    )
    for hits in results[120:]:
        assert isinstance(hits, list) and len(hits) <= 3
        for hit in hits:  # whatever a search saw was a complete, consistent entry
            assert hit.payload == {"i": int(hit.key[1:])}
            assert hit.partition == parts[int(hit.key[1:]) % 3]
    assert index.count() == 120 and index.partitions() == parts
    checks = await asyncio.gather(
        *(index.asearch(vectors[i], partition=parts[i % 3], k=1) for i in range(120))
    )
    assert [hits[0].key for hits in checks] == [f"k{i}" for i in range(120)]
    removed = await asyncio.gather(
        *(index.aremove(parts[i % 3], f"k{i}") for i in range(0, 120, 2))
    )
    assert all(removed) and index.count() == 60


def test_concurrent_threads(make_index: Factory) -> None:
    dim = 8
    index = make_index(dim=dim)
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(80, dim))

    def work(i: int) -> None:
        index.add("p", f"k{i}", vectors[i], {"i": i})
        index.add("p", f"k{i}", vectors[i], {"i": i, "again": True})  # replace concurrently
        hits = index.search(vectors[i], partition="p", k=1)
        assert hits and hits[0].key == f"k{i}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(80)))
    assert index.count("p") == 80
    hit = index.search(vectors[11], partition="p")[0]
    assert hit.payload == {"i": 11, "again": True}


# -- the factory ----------------------------------------------------------------------------
def test_open_vector_index_factory(tmp_path: Any) -> None:
    flat = open_vector_index("faiss", dim=3)
    assert isinstance(flat, FaissIndex) and not flat.hnsw and flat.dim == 3
    assert isinstance(open_vector_index("FAISS-HNSW", dim=3), FaissIndex)
    assert open_vector_index("faiss-hnsw", dim=3).hnsw  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unknown vector back-end 'annoy'"):
        open_vector_index("annoy", dim=3)
    with pytest.raises(ValueError, match="dsn"):
        open_vector_index("pgvector", dim=3)
    with pytest.raises(ValueError, match="dim"):
        open_vector_index("faiss", dim=0)
    # a directory: loaded when it holds a saved index, else the default save target
    saved = open_vector_index("faiss", dim=3, directory=tmp_path / "c")
    saved.add("p", "k", [1, 0, 0])
    saved.save()  # type: ignore[attr-defined]
    again = open_vector_index("faiss", dim=3, directory=tmp_path / "c")
    assert again.count() == 1
    with pytest.raises(EmbeddingDimensionError):
        open_vector_index("faiss", dim=4, directory=tmp_path / "c")
