"""Shared fixtures of the test suite.

pytest's configuration (``asyncio_mode = "auto"``, the ``shared_data`` marker) lives in
``pyproject.toml``; nothing here re-registers it.
"""

from __future__ import annotations

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
