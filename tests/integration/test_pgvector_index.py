"""PgVectorIndex specifics, on a real PostgreSQL with pgvector (the ``postgres_dsn`` fixture)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psycopg
import pytest

from langgraph_speculative.cache.vectors.pgvector_index import PgVectorIndex
from langgraph_speculative.errors import (
    CacheCorruptError,
    EmbeddingDimensionError,
    PlanCacheError,
)


@pytest.fixture
def table(postgres_dsn: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def test_creates_table_and_hnsw_index(postgres_dsn: str, table: str) -> None:
    with PgVectorIndex(postgres_dsn, dim=5, table=table) as index:
        assert index.table == table and index.exact
    with psycopg.connect(postgres_dsn) as conn:
        indexdef = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
            (table, "%hnsw%"),
        ).fetchone()
        column = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attname = 'embedding'",
            (table,),
        ).fetchone()
    assert indexdef is not None and "vector_ip_ops" in indexdef[0]
    assert column == ("vector(5)",)


def test_existing_table_of_other_dimension(postgres_dsn: str, table: str) -> None:
    PgVectorIndex(postgres_dsn, dim=3, table=table).close()
    with pytest.raises(EmbeddingDimensionError, match=rf"{table}.*dimension 3"):
        PgVectorIndex(postgres_dsn, dim=4, table=table)
    again = PgVectorIndex(postgres_dsn, dim=3, table=table)  # the same dimension reopens
    again.close()


def test_foreign_table_is_refused(postgres_dsn: str, table: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int primary key, note text)")
    with pytest.raises(CacheCorruptError, match="not a plan-vector table"):
        PgVectorIndex(postgres_dsn, dim=3, table=table)


@pytest.mark.parametrize("bad", ["", "1abc", "a.b.c", "x; DROP TABLE y", "a-b", "x" * 70])
def test_invalid_table_name(postgres_dsn: str, bad: str) -> None:
    with pytest.raises(ValueError, match="table"):
        PgVectorIndex(postgres_dsn, dim=3, table=bad)


def test_schema_qualified_table(postgres_dsn: str, table: str) -> None:
    with PgVectorIndex(postgres_dsn, dim=2, table=f"public.{table}") as index:
        index.add("p", "k", [1.0, 0.0])
    with PgVectorIndex(postgres_dsn, dim=2, table=table) as same:
        assert same.count() == 1


def test_instances_share_the_table(postgres_dsn: str, table: str) -> None:
    with (
        PgVectorIndex(postgres_dsn, dim=2, table=table) as a,
        PgVectorIndex(postgres_dsn, dim=2, table=table) as b,
    ):
        a.add("p", "k", [1.0, 0.0], {"by": "a"})
        assert b.search([1.0, 0.0], partition="p")[0].payload == {"by": "a"}
        b.add("p", "k", [0.0, 1.0], {"by": "b"})
        assert a.search([0.0, 1.0], partition="p")[0].payload == {"by": "b"}
        assert a.count() == 1


def test_concurrent_creation(postgres_dsn: str, table: str) -> None:
    def open_one(_: int) -> int:
        with PgVectorIndex(postgres_dsn, dim=3, table=table) as index:
            return index.dim

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(open_one, range(4))) == [3, 3, 3, 3]


def test_small_partition_of_a_big_table_is_exact(postgres_dsn: str, table: str) -> None:
    rng = np.random.default_rng(11)
    dim = 16
    with PgVectorIndex(postgres_dsn, dim=dim, table=table) as index:
        big = rng.normal(size=(1500, dim))
        index.add_many("big", [(f"b{i}", v, None) for i, v in enumerate(big)])
        small = rng.normal(size=(5, dim))
        index.add_many("small", [(f"s{i}", v, {"i": i}) for i, v in enumerate(small)])
        normed = small / np.linalg.norm(small, axis=1, keepdims=True)
        for q in rng.normal(size=(10, dim)):
            hits = index.search(q, partition="small", k=5)
            expected = [f"s{i}" for i in np.argsort(-(normed @ (q / np.linalg.norm(q))))]
            assert [h.key for h in hits] == expected
        with PgVectorIndex(postgres_dsn, dim=dim, table=table, exact=False) as approx:
            assert not approx.exact
            q = big[42]
            assert approx.search(q, partition="big", k=1)[0].key == "b42"
            assert approx.search(q, partition=None, k=1)[0].key == "b42"


def test_drop(postgres_dsn: str, table: str) -> None:
    index = PgVectorIndex(postgres_dsn, dim=2, table=table)
    index.add("p", "k", [1.0, 1.0])
    index.drop()
    assert index.closed
    with PgVectorIndex(postgres_dsn, dim=7, table=table) as other:  # gone: any dim now
        assert other.count() == 0


def test_unreachable_server() -> None:
    with pytest.raises(PlanCacheError, match="cannot open pgvector table"):
        PgVectorIndex(
            "postgresql://postgres@/postgres?host=/nonexistent-socket-dir",
            dim=2,
            table="t",
            timeout=2,
        )


def test_invalid_options(postgres_dsn: str) -> None:
    for kwargs in ({"pool_size": 0}, {"ef_search": 0}, {"timeout": 0}):
        with pytest.raises(ValueError):
            PgVectorIndex(postgres_dsn, dim=2, table="unused_t", **kwargs)  # type: ignore[arg-type]
