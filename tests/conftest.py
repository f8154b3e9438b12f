"""Shared fixtures of the test suite.

pytest's configuration (``asyncio_mode = "auto"``, the ``shared_data`` marker) lives in
``pyproject.toml``; nothing here re-registers it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the directory holding ``pyproject.toml``)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ``../shared/data`` directory beside the repository; skips the test when absent.

    The data there (BFCL, SMP2019) is read at run time and never copied into the project.
    """
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip tests marked ``@pytest.mark.shared_data`` when ``../shared/data`` is absent."""
    if item.get_closest_marker("shared_data") is not None and not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A real PostgreSQL with pgvector (``pgserver``, Unix socket only) for the session.

    Skips when the ``postgres`` extra is not installed; the server stops after the session.
    """
    pytest.importorskip("pgserver")
    pytest.importorskip("psycopg")
    from langgraph_speculative.integrations.embedded_postgres import embedded_postgres

    with embedded_postgres() as dsn:
        yield dsn
