"""An embedded PostgreSQL server with pgvector, for tests, benchmarks and first steps.

:func:`embedded_postgres` starts a real PostgreSQL (with the ``vector`` extension) from the
``pgserver`` package: no system install, no network port. The server listens on a Unix
socket inside its data directory only, so nothing outside the machine can reach it, and
it is stopped when the ``with`` block ends. Install it with the ``postgres`` extra
(``pip install "langgraph-speculative[postgres]"``).

Example:
    ```python
    import psycopg

    from langgraph_speculative.integrations.embedded_postgres import embedded_postgres

    with embedded_postgres() as dsn:
        with psycopg.connect(dsn) as conn:
            version = conn.execute("select extversion from pg_extension where extname = 'vector'")
            assert version.fetchone() is not None
    ```
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph_speculative.errors import SpeculativeError

__all__ = ["EmbeddedPostgresError", "embedded_postgres", "postgres_or_embedded"]


class EmbeddedPostgresError(SpeculativeError):
    """The embedded PostgreSQL server could not be started (or ``pgserver`` is missing)."""


@contextmanager
def embedded_postgres(directory: str | Path | None = None) -> Iterator[str]:
    """Start PostgreSQL with pgvector in ``directory`` and yield its connection string.

    Args:
        directory: Data directory of the server. It is kept (and reused by the next call)
            when given; a temporary one, deleted afterwards, is used when omitted.

    Yields:
        A libpq connection string (``postgresql://postgres:@/postgres?host=...``) for
        psycopg, ``PostgresSaver.from_conn_string`` or :class:`PgVectorIndex`.

    Raises:
        EmbeddedPostgresError: ``pgserver`` is not installed or the server did not start.
    """
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise EmbeddedPostgresError(
            "the embedded PostgreSQL needs the 'postgres' extra: "
            'pip install "langgraph-speculative[postgres]"'
        ) from exc
    with tempfile.TemporaryDirectory(prefix="lgs-pg-") as tmp:
        data_dir = Path(directory) if directory is not None else Path(tmp) / "pgdata"
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            server = pgserver.get_server(  # type: ignore[attr-defined]  # not re-exported
                str(data_dir), cleanup_mode="stop"
            )
            server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
        except Exception as exc:
            raise EmbeddedPostgresError(
                f"could not start the embedded PostgreSQL in {data_dir}: {exc}"
            ) from exc
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()


@contextmanager
def postgres_or_embedded(dsn: str | None) -> Iterator[str]:
    """Yield ``dsn`` when one is given; otherwise start :func:`embedded_postgres`.

    Args:
        dsn: A PostgreSQL connection string, or ``None``.

    Yields:
        The connection string to use.

    Raises:
        EmbeddedPostgresError: As :func:`embedded_postgres` (only when ``dsn`` is ``None``).
    """
    if dsn is not None:
        yield dsn
        return
    with embedded_postgres() as started:
        yield started
