"""Vector back-ends of the plan cache: one interface, partitions per intent, cosine scores.

A :class:`VectorIndex` holds ``(partition, key) -> (vector, payload)`` entries. The plan
cache uses one partition per intent and searches within it; ``partition=None`` searches
every partition (the benchmark's baselines without intent gating need it). Scores are
inner products of L2-normalised vectors, i.e. cosines in ``[-1, 1]``: the index
normalises what it is given (``normalize=True``, the default), so a threshold such as
0.75 always means a cosine, whatever the embedder returns.

The base class validates every input once for all back-ends: a vector of the wrong
dimension raises :class:`~langgraph_speculative.errors.EmbeddingDimensionError`; a NaN or
infinite component, a zero vector, an empty (or non-string, or NUL-carrying) partition or
key, a payload that is not a JSON object, or ``k < 1`` raises
:class:`~langgraph_speculative.errors.RequestError`. Nothing invalid is ever stored.

Back-ends: ``"faiss"`` (in process,
:class:`~langgraph_speculative.cache.vectors.faiss_index.FaissIndex`;
``"faiss-hnsw"`` for large caches) and ``"pgvector"`` (PostgreSQL,
:class:`~langgraph_speculative.cache.vectors.pgvector_index.PgVectorIndex`). Swapping is one
argument of :func:`~langgraph_speculative.cache.vectors.backends.open_vector_index`.

Example:
    ```python
    from langgraph_speculative.cache.vectors.backends import open_vector_index

    with open_vector_index("faiss", dim=3) as index:
        index.add("train.QUERY", "a", [1.0, 0.0, 0.0], {"plan": "rail"})
        index.add("train.QUERY", "b", [0.0, 1.0, 0.0], {"plan": "other"})
        index.add("cookbook.QUERY", "c", [1.0, 0.1, 0.0], {"plan": "dish"})
        hits = index.search([2.0, 0.2, 0.0], partition="train.QUERY", k=1)
        assert hits[0].key == "a" and hits[0].payload == {"plan": "rail"}
        assert 0.99 < hits[0].score <= 1.0  # a cosine: the query was normalised
        everywhere = index.search([1.0, 0.1, 0.0], partition=None, k=2)
        assert [h.partition for h in everywhere] == ["cookbook.QUERY", "train.QUERY"]
        assert index.count() == 3 and index.partitions() == ["cookbook.QUERY", "train.QUERY"]
    ```
"""

from __future__ import annotations

import asyncio
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from langgraph_speculative.errors import EmbeddingDimensionError, PlanCacheError, RequestError

__all__ = [
    "MAX_NAME_CHARS",
    "Vector",
    "VectorHit",
    "VectorIndex",
]

MAX_NAME_CHARS = 512
"""Longest partition name or key accepted by every back-end."""

Vector = Sequence[float] | NDArray[np.floating[Any]]
"""What the indexes accept as a vector: a sequence of floats or a 1-D numpy array."""


@dataclass(frozen=True)
class VectorHit:
    """One search result.

    Attributes:
        key: The entry's key within its partition.
        score: Inner product with the query: the cosine when both are normalised.
        partition: The partition the entry lives in.
        payload: A fresh copy of the JSON payload stored with the entry.
    """

    key: str
    score: float
    partition: str
    payload: dict[str, Any] = field(default_factory=dict, hash=False)


class VectorIndex(ABC):
    """A partitioned vector index with validated inputs and cosine scores.

    Subclasses implement the underscore hooks (``_add_many``, ``_search``, ``_remove``,
    ``_partitions``, ``_count``, ``_close``); the public methods validate, normalise and
    then call them. Async twins run the sync method in a worker thread, or inline for a
    back-end whose calls take microseconds (:attr:`inline_async`).

    Example:
        ```python
        import asyncio

        from langgraph_speculative.cache.vectors.faiss_index import FaissIndex
        from langgraph_speculative.errors import EmbeddingDimensionError, RequestError

        index = FaissIndex(2)
        for bad in ([1.0, float("nan")], [0.0, 0.0]):
            try:
                index.add("p", "k", bad)
            except RequestError:
                pass
            else:
                raise AssertionError("invalid vector stored")
        try:
            index.search([1.0, 0.0, 0.0], partition="p")
        except EmbeddingDimensionError as exc:
            assert "3" in str(exc)

        async def main() -> None:
            await index.aadd("p", "k", [3.0, 4.0], {"n": 1})
            hits = await index.asearch([3.0, 4.0], partition="p")
            assert hits[0].key == "k" and abs(hits[0].score - 1.0) < 1e-6

        asyncio.run(main())
        assert index.count("p") == 1
        ```
    """

    inline_async: bool = False
    """Whether the async twins run the sync methods inline (in-memory back-ends)."""

    def __init__(self, dim: int, *, normalize: bool = True) -> None:
        """Set the dimension shared by every vector of the index.

        Args:
            dim: Vector dimension (>= 1).
            normalize: L2-normalise vectors on add and search, so scores are cosines.

        Raises:
            ValueError: ``dim`` is not a positive int.
        """
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        self._dim = dim
        self._normalize = bool(normalize)
        self._closed = False

    # -- shared validation ------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """The dimension of every vector in the index."""
        return self._dim

    @property
    def normalize(self) -> bool:
        """Whether vectors are L2-normalised on add and search."""
        return self._normalize

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise PlanCacheError(f"{type(self).__name__} is closed")

    def _vector(self, vector: Vector, what: str = "vector") -> NDArray[np.float32]:
        try:
            arr = np.asarray(vector, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise RequestError(f"{what} must be a sequence of numbers ({exc})") from exc
        if arr.ndim != 1:
            raise EmbeddingDimensionError(
                f"{what} must be 1-D with {self._dim} components, got shape {arr.shape}"
            )
        if arr.shape[0] != self._dim:
            raise EmbeddingDimensionError(
                f"{what} has {arr.shape[0]} components; the index has dimension {self._dim}"
            )
        if not np.all(np.isfinite(arr)):
            raise RequestError(f"{what} has NaN or infinite components")
        if self._normalize:
            norm = float(np.linalg.norm(arr))
            if norm == 0.0 or not math.isfinite(norm):
                raise RequestError(f"{what} is the zero vector: it has no direction to compare")
            arr = arr / norm
        return arr.astype(np.float32)

    @staticmethod
    def _name(value: object, what: str) -> str:
        if not isinstance(value, str):
            raise RequestError(f"{what} must be a str, got {type(value).__name__}")
        if not value:
            raise RequestError(f"{what} must not be empty")
        if len(value) > MAX_NAME_CHARS:
            raise RequestError(f"{what} is {len(value)} chars long; the limit is {MAX_NAME_CHARS}")
        if "\x00" in value:
            raise RequestError(f"{what} must not contain NUL characters")
        return value

    @staticmethod
    def _payload(payload: dict[str, Any] | None) -> str:
        if payload is None:
            return "{}"
        if not isinstance(payload, dict):
            raise RequestError(
                f"payload must be a dict (JSON object), got {type(payload).__name__}"
            )
        try:
            text = json.dumps(payload, ensure_ascii=False, allow_nan=False, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise RequestError(f"payload is not JSON-serialisable: {exc}") from exc
        if "\\u0000" in text:
            raise RequestError("payload must not contain NUL characters")
        return text

    # -- public API -------------------------------------------------------------------------
    def add(
        self, partition: str, key: str, vector: Vector, payload: dict[str, Any] | None = None
    ) -> None:
        """Store (or replace) one entry.

        Args:
            partition: The partition (for the plan cache: the intent).
            key: The entry's key; re-adding a key of the same partition replaces it.
            vector: The embedding, ``dim`` finite numbers, not all zero.
            payload: A JSON object stored with the entry (copied), ``{}`` when omitted.

        Raises:
            EmbeddingDimensionError: ``vector`` has another dimension than the index.
            RequestError: An invalid vector, partition, key or payload.
        """
        self._check_open()
        name = self._name(partition, "partition")
        checked_key = self._name(key, "key")
        vec = self._vector(vector)
        text = self._payload(payload)
        self._add_many(name, [checked_key], vec.reshape(1, -1), [text])

    def add_many(
        self, partition: str, entries: Iterable[tuple[str, Vector, dict[str, Any] | None]]
    ) -> int:
        """Store (or replace) many entries of one partition; all are validated first.

        Args:
            partition: The partition.
            entries: ``(key, vector, payload)`` triples; a later duplicate key wins.

        Returns:
            The number of entries given.

        Raises:
            EmbeddingDimensionError: A vector has another dimension than the index.
            RequestError: An invalid vector, partition, key or payload (nothing is stored).
        """
        self._check_open()
        name = self._name(partition, "partition")
        checked: dict[str, tuple[NDArray[np.float32], str]] = {}
        for i, (key, vector, payload) in enumerate(entries):
            checked[self._name(key, f"key of entry {i}")] = (
                self._vector(vector, f"vector of entry {i} ({key!r})"),
                self._payload(payload),
            )
        if checked:
            keys = list(checked)
            matrix = np.stack([checked[k][0] for k in keys])
            self._add_many(name, keys, matrix, [checked[k][1] for k in keys])
        return len(checked)

    def search(self, vector: Vector, *, partition: str | None, k: int = 1) -> list[VectorHit]:
        """Find the ``k`` entries with the highest score.

        Args:
            vector: The query embedding.
            partition: Search this partition only; ``None`` searches all partitions.
            k: How many hits at most (>= 1).

        Returns:
            Hits by decreasing score (ties by partition, then key); fewer than ``k`` when
            the partition holds fewer entries; empty for an unknown partition.

        Raises:
            EmbeddingDimensionError: ``vector`` has another dimension than the index.
            RequestError: An invalid vector, partition or ``k``.
        """
        self._check_open()
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise RequestError(f"k must be a positive int, got {k!r}")
        name = None if partition is None else self._name(partition, "partition")
        query = self._vector(vector, "query vector")
        hits = self._search(query, name, k)
        hits.sort(key=lambda h: (-h.score, h.partition, h.key))
        return hits[:k]

    def remove(self, partition: str, key: str) -> bool:
        """Delete one entry.

        Args:
            partition: The entry's partition.
            key: The entry's key.

        Returns:
            ``True`` if the entry existed.

        Raises:
            RequestError: An invalid partition or key.
        """
        self._check_open()
        return self._remove(self._name(partition, "partition"), self._name(key, "key"))

    def partitions(self) -> list[str]:
        """Return the names of the partitions that hold at least one entry, sorted."""
        self._check_open()
        return sorted(self._partitions())

    def count(self, partition: str | None = None) -> int:
        """Count entries.

        Args:
            partition: Count this partition only; ``None`` counts all.

        Returns:
            The number of entries (0 for an unknown partition).
        """
        self._check_open()
        name = None if partition is None else self._name(partition, "partition")
        return self._count(name)

    def close(self) -> None:
        """Release resources (connections); later calls raise ``PlanCacheError``. Idempotent."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- async twins ------------------------------------------------------------------------
    async def aadd(
        self, partition: str, key: str, vector: Vector, payload: dict[str, Any] | None = None
    ) -> None:
        """Async :meth:`add` (the sync method in a worker thread, or inline).

        Args:
            partition: The partition.
            key: The entry's key.
            vector: The embedding.
            payload: A JSON object stored with the entry.
        """
        if self.inline_async:
            self.add(partition, key, vector, payload)
        else:
            await asyncio.to_thread(self.add, partition, key, vector, payload)

    async def asearch(
        self, vector: Vector, *, partition: str | None, k: int = 1
    ) -> list[VectorHit]:
        """Async :meth:`search` (the sync method in a worker thread, or inline).

        Args:
            vector: The query embedding.
            partition: The partition, or ``None`` for all.
            k: How many hits at most.

        Returns:
            Hits by decreasing score.
        """
        if self.inline_async:
            return self.search(vector, partition=partition, k=k)
        return await asyncio.to_thread(self.search, vector, partition=partition, k=k)

    async def aremove(self, partition: str, key: str) -> bool:
        """Async :meth:`remove` (the sync method in a worker thread, or inline).

        Args:
            partition: The entry's partition.
            key: The entry's key.

        Returns:
            ``True`` if the entry existed.
        """
        if self.inline_async:
            return self.remove(partition, key)
        return await asyncio.to_thread(self.remove, partition, key)

    # -- back-end hooks ---------------------------------------------------------------------
    @abstractmethod
    def _add_many(
        self, partition: str, keys: list[str], vectors: NDArray[np.float32], payloads: list[str]
    ) -> None:
        """Upsert validated entries: distinct keys, ``(n, dim)`` vectors, JSON payload texts."""

    @abstractmethod
    def _search(self, query: NDArray[np.float32], partition: str | None, k: int) -> list[VectorHit]:
        """Return up to ``k`` best hits (any order) for a validated query."""

    @abstractmethod
    def _remove(self, partition: str, key: str) -> bool:
        """Delete one entry; ``True`` if it existed."""

    @abstractmethod
    def _partitions(self) -> list[str]:
        """Names of the non-empty partitions."""

    @abstractmethod
    def _count(self, partition: str | None) -> int:
        """Number of entries in a partition or in all."""

    def _close(self) -> None:  # noqa: B027 - optional hook: most back-ends hold nothing
        """Release back-end resources (nothing by default)."""
