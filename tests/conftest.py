"""Shared fixtures of the test suite.

pytest's configuration (``asyncio_mode = "auto"``, the ``shared_data`` and ``stress``
markers) lives in ``pyproject.toml``; nothing here re-registers it.

Stress mode: tests marked ``@pytest.mark.stress`` (``tests/integration/test_stress.py``) repeat the
agents' tests many times to find hangs and races. They are skipped unless a number of
repetitions is given, with ``--stress N`` or the environment variable ``LGS_STRESS=N``
(the option wins), so the README's ``python -m pytest -q`` runs exactly what it ran before
(plus one skipped stress test). See ``.ci/stress`` for a run under CPU load.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
STRESS_ENV = "LGS_STRESS"
STRESS_DEFAULT = 50  # repetitions of `--stress` given without a number
STRESS_REPORT = pytest.StashKey[list[str]]()


def _repetitions(value: str) -> int:
    text = value.strip()
    if not text:
        return 0
    try:
        count = int(text)
    except ValueError:
        raise pytest.UsageError(f"--stress / {STRESS_ENV} takes a number, got {value!r}") from None
    if count < 0:
        raise pytest.UsageError(f"--stress / {STRESS_ENV} must be >= 0, got {count}")
    return count


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--stress N``: run the tests marked ``stress`` with N repetitions each."""
    parser.addoption(
        "--stress",
        action="store",
        nargs="?",
        const=str(STRESS_DEFAULT),
        default=None,
        metavar="N",
        help=(
            f"run the stress tests (marked 'stress'), N repetitions each (default "
            f"{STRESS_DEFAULT} when given without N; env {STRESS_ENV}=N); skipped otherwise"
        ),
    )


def stress_repetitions(config: pytest.Config) -> int:
    """Repetitions of stress mode: ``--stress N``, else ``$LGS_STRESS``, else 0 (off)."""
    option = config.getoption("stress")
    return _repetitions(option if option is not None else os.environ.get(STRESS_ENV, ""))


def pytest_configure(config: pytest.Config) -> None:
    config.stash[STRESS_REPORT] = []
    stress_repetitions(config)  # a bad value is a usage error at once


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the stress report (one line per scenario) after a stress run."""
    lines = terminalreporter.config.stash.get(STRESS_REPORT, [])
    if lines:
        terminalreporter.section("stress report")
        for line in lines:
            terminalreporter.write_line(line)


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
    """Skip tests marked ``shared_data`` without ``../shared/data``, ``stress`` when off."""
    if item.get_closest_marker("shared_data") is not None and not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    if item.get_closest_marker("stress") is not None and not stress_repetitions(item.config):
        pytest.skip(f"stress mode is off: run with --stress N or {STRESS_ENV}=N")


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
