"""PostgreSQL vector back-end on pgvector: the plan cache shared by several processes.

:class:`PgVectorIndex` keeps every entry in one table::

    partition text, key text, embedding vector(dim), payload jsonb,
    updated_at timestamptz, PRIMARY KEY (partition, key)

with an HNSW index (``vector_ip_ops``) on ``embedding``. It creates the extension, the
table and the index when missing (under an advisory lock, so several processes may start
at once) and refuses an existing table of another dimension
(:class:`~langgraph_speculative.errors.EmbeddingDimensionError`) or another shape
(:class:`~langgraph_speculative.errors.CacheCorruptError`).

``add`` is an upsert in a transaction. ``search`` orders by ``embedding <#> query``
(pgvector's negative inner product) and reports ``score = -distance``, the cosine of the
normalised vectors. With ``exact=True`` (the default) the query cannot use the HNSW
index, so results are exact: a partition is read through the primary key. With
``exact=False`` it uses HNSW (approximate; pgvector before 0.8 filters a partition
*after* the index scan, so a small partition of a big table may return fewer hits).

Connections come from a small thread-safe pool (``pool_size``); the async methods run the
sync ones in worker threads, so the index is safe from concurrent threads and tasks.

Example:
    ```python
    from langgraph_speculative.cache.vectors.pgvector_index import PgVectorIndex
    from langgraph_speculative.integrations.embedded_postgres import embedded_postgres

    with embedded_postgres() as dsn, PgVectorIndex(dsn, dim=3, table="doc_demo") as index:
        index.add("train.QUERY", "a", [1.0, 0.0, 0.0], {"plan": "rail"})
        index.add("train.QUERY", "b", [0.0, 1.0, 0.0], {"plan": "other"})
        hit = index.search([0.9, 0.1, 0.0], partition="train.QUERY")[0]
        assert hit.key == "a" and hit.payload == {"plan": "rail"} and 0.99 < hit.score <= 1
        assert index.count() == 2 and index.partitions() == ["train.QUERY"]
    ```
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from pgvector.psycopg import register_vector
from psycopg import sql

from langgraph_speculative.cache.vectors.vector_index import VectorHit, VectorIndex
from langgraph_speculative.errors import (
    CacheCorruptError,
    EmbeddingDimensionError,
    PlanCacheError,
)

__all__ = ["DEFAULT_TABLE", "HNSW_MAX_DIM", "PgVectorIndex"]

DEFAULT_TABLE = "lgs_plan_vectors"
"""Table used when none is named."""

HNSW_MAX_DIM = 2000
"""pgvector cannot build an HNSW index on ``vector`` columns wider than this."""

_TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
_EXPECTED_COLUMNS = {"partition": "text", "key": "text", "payload": "jsonb"}


class _Pool:
    """A small thread-safe pool of autocommit connections with pgvector types registered."""

    def __init__(self, dsn: str, size: int, timeout: float) -> None:
        self._dsn = dsn
        self._timeout = timeout
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[psycopg.Connection[Any]] = []
        self._closed = False

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self._dsn, autocommit=True, connect_timeout=max(1, round(self._timeout))
        )
        try:
            register_vector(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        if not self._slots.acquire(timeout=self._timeout):
            raise PlanCacheError(f"no free PostgreSQL connection within {self._timeout:g} s")
        conn: psycopg.Connection[Any] | None = None
        try:
            with self._lock:
                if self._closed:
                    raise PlanCacheError("PgVectorIndex is closed")
                conn = self._idle.pop() if self._idle else None
            if conn is None or conn.closed or conn.broken:
                try:
                    conn = self._connect()
                except psycopg.OperationalError as exc:
                    raise PlanCacheError(f"cannot connect to PostgreSQL: {exc}") from exc
            yield conn
        finally:
            if conn is not None:
                keep = not (conn.closed or conn.broken)
                with self._lock:
                    if keep and not self._closed:
                        self._idle.append(conn)
                        conn = None
                if conn is not None:
                    conn.close()
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class PgVectorIndex(VectorIndex):
    """Partitioned vector index in a PostgreSQL table (pgvector, inner product).

    Example:
        ```python
        import asyncio

        from langgraph_speculative.cache.vectors.pgvector_index import PgVectorIndex
        from langgraph_speculative.errors import EmbeddingDimensionError
        from langgraph_speculative.integrations.embedded_postgres import embedded_postgres

        async def main(index: PgVectorIndex) -> None:
            await asyncio.gather(
                *(index.aadd("p", f"k{i}", [1.0, float(i)], {"i": i}) for i in range(8))
            )
            hits = await index.asearch([0.0, 1.0], partition="p", k=2)
            assert [h.key for h in hits] == ["k7", "k6"]

        with embedded_postgres() as dsn:
            with PgVectorIndex(dsn, dim=2, table="doc_pg") as index:
                asyncio.run(main(index))
            try:
                PgVectorIndex(dsn, dim=5, table="doc_pg")
            except EmbeddingDimensionError as exc:
                assert "doc_pg" in str(exc)
            else:
                raise AssertionError("a table of another dimension was accepted")
        ```
    """

    def __init__(
        self,
        dsn: str,
        *,
        dim: int,
        table: str = DEFAULT_TABLE,
        normalize: bool = True,
        exact: bool = True,
        ef_search: int = 64,
        pool_size: int = 4,
        timeout: float = 10.0,
    ) -> None:
        """Connect, and create the extension, table and HNSW index when missing.

        Args:
            dsn: libpq connection string (for example from
                :func:`~langgraph_speculative.integrations.embedded_postgres.embedded_postgres`).
            dim: Vector dimension (the ``vector(dim)`` column).
            table: Table name, optionally ``schema.table`` (letters, digits, ``_``).
            normalize: L2-normalise vectors on add and search (scores are cosines).
            exact: Exact search (no HNSW at query time); ``False`` uses the HNSW index.
            ef_search: ``hnsw.ef_search`` for approximate search (raised to ``k``).
            pool_size: Most connections open at once.
            timeout: Seconds to connect, or to wait for a free pooled connection.

        Raises:
            ValueError: A parameter is invalid (for example the table name).
            EmbeddingDimensionError: The table exists with another dimension.
            CacheCorruptError: The table exists but is not a plan-vector table.
            PlanCacheError: PostgreSQL is unreachable or has no ``vector`` extension.
        """
        super().__init__(dim, normalize=normalize)
        if not isinstance(table, str) or not _TABLE_RE.match(table):
            raise ValueError(
                f"table must be a name or schema.name of letters, digits and _, got {table!r}"
            )
        for name, value in (("ef_search", ef_search), ("pool_size", pool_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, got {timeout!r}")
        self._table_name = table
        self._table = sql.Identifier(*table.split("."))
        self._exact = bool(exact)
        self._ef_search = ef_search
        self._dsn = dsn
        try:
            self._setup(timeout)
        except psycopg.Error as exc:
            raise PlanCacheError(f"cannot open pgvector table {table!r}: {exc}") from exc
        self._pool = _Pool(dsn, pool_size, timeout)

    @property
    def table(self) -> str:
        """The table name as given."""
        return self._table_name

    @property
    def exact(self) -> bool:
        """Whether searches are exact (``True``) or use the HNSW index."""
        return self._exact

    # -- setup -----------------------------------------------------------------------------------
    def _setup(self, timeout: float) -> None:
        with psycopg.connect(
            self._dsn, autocommit=True, connect_timeout=max(1, round(timeout))
        ) as conn:
            lock_key = int.from_bytes(
                hashlib.blake2b(self._table_name.encode(), digest_size=8).digest(),
                "big",
                signed=True,
            )
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                columns = self._columns(conn)
                if columns:
                    self._check_columns(columns)
                else:
                    conn.execute(
                        sql.SQL(
                            "CREATE TABLE {t} (partition text NOT NULL, key text NOT NULL, "
                            "embedding vector({d}) NOT NULL, payload jsonb NOT NULL, "
                            "updated_at timestamptz NOT NULL DEFAULT now(), "
                            "PRIMARY KEY (partition, key))"
                        ).format(t=self._table, d=sql.Literal(self._dim))
                    )
                if self._dim <= HNSW_MAX_DIM:
                    conn.execute(
                        sql.SQL(
                            "CREATE INDEX IF NOT EXISTS {i} ON {t} "
                            "USING hnsw (embedding vector_ip_ops)"
                        ).format(i=sql.Identifier(self._index_name()), t=self._table)
                    )

    def _index_name(self) -> str:
        base = self._table_name.split(".")[-1]
        name = f"{base}_hnsw_ip"
        if len(name) > 63:
            digest = hashlib.sha256(base.encode()).hexdigest()[:8]
            name = f"{base[:46]}_{digest}_hnsw_ip"
        return name

    def _columns(self, conn: psycopg.Connection[Any]) -> dict[str, tuple[str, int]]:
        regclass = self._table.as_string(conn)
        rows = conn.execute(
            "SELECT a.attname, t.typname, a.atttypmod FROM pg_attribute a "
            "JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
            (regclass,),
        ).fetchall()
        return {str(name): (str(typ), int(mod)) for name, typ, mod in rows}

    def _check_columns(self, columns: dict[str, tuple[str, int]]) -> None:
        for name, typ in _EXPECTED_COLUMNS.items():
            if columns.get(name, ("",))[0] != typ:
                raise CacheCorruptError(
                    f"table {self._table_name!r} exists but is not a plan-vector table "
                    f"(column {name!r} should be {typ}, found {columns.get(name)})"
                )
        embedding = columns.get("embedding")
        if embedding is None or embedding[0] != "vector":
            raise CacheCorruptError(
                f"table {self._table_name!r} exists but its 'embedding' column is not a vector"
            )
        if embedding[1] != self._dim:
            raise EmbeddingDimensionError(
                f"table {self._table_name!r} holds vectors of dimension {embedding[1]}; "
                f"this index has dimension {self._dim} (use another table or drop it)"
            )

    # -- hooks -------------------------------------------------------------------------------------
    def _add_many(
        self, partition: str, keys: list[str], vectors: NDArray[np.float32], payloads: list[str]
    ) -> None:
        query = sql.SQL(
            "INSERT INTO {t} (partition, key, embedding, payload) VALUES (%s, %s, %s, %s::jsonb) "
            "ON CONFLICT (partition, key) DO UPDATE SET embedding = EXCLUDED.embedding, "
            "payload = EXCLUDED.payload, updated_at = now()"
        ).format(t=self._table)
        rows = [(partition, key, vectors[i], payloads[i]) for i, key in enumerate(keys)]
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(query, rows)

    def _search(self, query: NDArray[np.float32], partition: str | None, k: int) -> list[VectorHit]:
        where = sql.SQL("WHERE partition = %(p)s") if partition is not None else sql.SQL("")
        if self._exact:  # an ORDER BY the HNSW index cannot serve: exact, via the primary key
            order = sql.SQL("ORDER BY score DESC, partition, key")
        else:
            order = sql.SQL("ORDER BY embedding <#> %(q)s")
        statement = sql.SQL(
            "SELECT partition, key, (embedding <#> %(q)s) * -1 AS score, payload "
            "FROM {t} {where} {order} LIMIT %(k)s"
        ).format(t=self._table, where=where, order=order)
        params = {"q": query, "p": partition, "k": k}
        with self._pool.connection() as conn:
            if self._exact:
                rows = conn.execute(statement, params).fetchall()
            else:
                with conn.transaction():
                    conn.execute(
                        sql.SQL("SET LOCAL hnsw.ef_search = {n}").format(
                            n=sql.Literal(max(self._ef_search, k))
                        )
                    )
                    rows = conn.execute(statement, params).fetchall()
        return [
            VectorHit(key=key, score=float(score), partition=part, payload=dict(payload))
            for part, key, score, payload in rows
        ]

    def _remove(self, partition: str, key: str) -> bool:
        statement = sql.SQL("DELETE FROM {t} WHERE partition = %s AND key = %s").format(
            t=self._table
        )
        with self._pool.connection() as conn:
            cur = conn.execute(statement, (partition, key))
            return cur.rowcount > 0

    def _partitions(self) -> list[str]:
        statement = sql.SQL("SELECT DISTINCT partition FROM {t}").format(t=self._table)
        with self._pool.connection() as conn:
            return [str(row[0]) for row in conn.execute(statement).fetchall()]

    def _count(self, partition: str | None) -> int:
        if partition is None:
            statement = sql.SQL("SELECT count(*) FROM {t}").format(t=self._table)
            params: tuple[str, ...] = ()
        else:
            statement = sql.SQL("SELECT count(*) FROM {t} WHERE partition = %s").format(
                t=self._table
            )
            params = (partition,)
        with self._pool.connection() as conn:
            row = conn.execute(statement, params).fetchone()
        return 0 if row is None else int(row[0])

    def _close(self) -> None:
        self._pool.close()

    # -- extras ----------------------------------------------------------------------------------
    def drop(self) -> None:
        """Drop the table (and its index), then close the index. Irreversible."""
        self._check_open()
        with self._pool.connection() as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {t}").format(t=self._table))
        self.close()
