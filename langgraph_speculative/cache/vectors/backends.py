"""Opening a vector index by back-end name: swapping back-ends is one argument.

:func:`open_vector_index` maps a name of :data:`BACKENDS` to its
:class:`~langgraph_speculative.cache.vectors.vector_index.VectorIndex`: ``"faiss"`` /
``"faiss-flat"`` (exact, in process), ``"faiss-hnsw"`` (approximate, for large caches),
``"pgvector"`` (PostgreSQL). Each back-end module is imported only when it is opened.

Example:
    ```python
    from langgraph_speculative.cache.vectors.backends import BACKENDS, open_vector_index

    assert "faiss-hnsw" in BACKENDS
    with open_vector_index("faiss", dim=2) as index:
        index.add("train.QUERY", "a", [1.0, 0.0], {"plan": "rail"})
        assert index.search([1.0, 0.1], partition="train.QUERY", k=1)[0].key == "a"
    ```
"""

from __future__ import annotations

from typing import Any

from langgraph_speculative.cache.vectors.vector_index import VectorIndex

__all__ = ["BACKENDS", "open_vector_index"]

BACKENDS = ("faiss", "faiss-flat", "faiss-hnsw", "pgvector")
"""Back-end names :func:`open_vector_index` knows (``faiss`` = ``faiss-flat``)."""


def open_vector_index(backend: str, *, dim: int, **options: Any) -> VectorIndex:
    """Open a vector index by back-end name: swapping back-ends is one argument.

    Args:
        backend: ``"faiss"`` (= ``"faiss-flat"``, exact), ``"faiss-hnsw"`` (approximate,
            for large caches) or ``"pgvector"``.
        dim: Vector dimension.
        **options: Passed to the back-end. ``faiss``: ``directory`` (loaded when it holds
            a saved index, else the default target of ``save``), ``normalize``, HNSW
            knobs. ``pgvector``: ``dsn`` (required), ``table``, ``exact``, ``pool_size``,
            ``normalize``.

    Returns:
        The index.

    Raises:
        ValueError: Unknown back-end or a missing required option.
        EmbeddingDimensionError: A saved index or table of another dimension.
    """
    name = backend.strip().lower() if isinstance(backend, str) else backend
    if name in ("faiss", "faiss-flat", "faiss-hnsw"):
        from langgraph_speculative.cache.vectors.faiss_index import FaissIndex

        if name == "faiss-hnsw":
            options.setdefault("hnsw", True)
        directory = options.pop("directory", None)
        if directory is not None:
            return FaissIndex.open(directory, dim=dim, **options)
        return FaissIndex(dim, **options)
    if name == "pgvector":
        from langgraph_speculative.cache.vectors.pgvector_index import PgVectorIndex

        dsn = options.pop("dsn", None)
        if not dsn:
            raise ValueError("the pgvector back-end needs dsn=... (a libpq connection string)")
        return PgVectorIndex(dsn, dim=dim, **options)
    raise ValueError(f"unknown vector back-end {backend!r}; known: {', '.join(BACKENDS)}")
