"""LangGraph's checkpoint conformance suite, run on the wrapper over each saver it wraps.

Each test runs every capability the wrapped saver has, through
:class:`InterruptAwareCheckpointer`, and also checks that the wrapper reports exactly the
wrapped saver's capabilities.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import _CAPABILITY_METHOD_MAP
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_speculative.durability.checkpointer import InterruptAwareCheckpointer

Factory = Callable[[], AsyncGenerator[BaseCheckpointSaver[Any], None]]


def _capabilities(saver: BaseCheckpointSaver[Any]) -> set[str]:
    """Capabilities a saver has in sync or async form."""
    found = set()
    for cap, method in _CAPABILITY_METHOD_MAP.items():
        for name in (method, method[1:]):
            if getattr(type(saver), name) is not getattr(BaseCheckpointSaver, name):
                found.add(cap.value)
    return found


async def _check(name: str, factory: Factory) -> None:
    inner_caps: list[frozenset[Any]] = []

    async def wrapped() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
        gen = factory()
        inner = await gen.__anext__()
        inner_caps.append(_capabilities(inner))
        try:
            yield InterruptAwareCheckpointer(inner)
        finally:
            with contextlib.suppress(StopAsyncIteration):
                await gen.__anext__()

    registered = checkpointer_test(name=f"InterruptAware({name})")(wrapped)
    report = await validate(registered)
    failures = {
        cap: result.failures for cap, result in report.results.items() if result.passed is False
    }
    assert not failures, f"{name}: {failures}"
    ran = {cap for cap, result in report.results.items() if result.passed}
    assert ran >= {"put", "put_writes", "get_tuple", "list", "delete_thread"}
    # the wrapper advertises what the wrapped saver has (sync or async), no more, no less
    assert inner_caps[0] == ran


async def test_conformance_in_memory() -> None:
    async def factory() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
        yield InMemorySaver()

    await _check("InMemorySaver", factory)


async def test_conformance_async_sqlite(tmp_path: Path) -> None:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    counter = [0]

    async def factory() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
        counter[0] += 1
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / f"a{counter[0]}.db")) as s:
            yield s

    await _check("AsyncSqliteSaver", factory)


async def test_conformance_sync_sqlite_through_threads(tmp_path: Path) -> None:
    """SqliteSaver has no async methods: the wrapper runs its sync ones in a thread."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    counter = [0]

    async def factory() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
        counter[0] += 1
        conn = sqlite3.connect(str(tmp_path / f"s{counter[0]}.db"), check_same_thread=False)
        try:
            yield SqliteSaver(conn)
        finally:
            conn.close()

    await _check("SqliteSaver", factory)


async def test_conformance_async_postgres(postgres_dsn: str) -> None:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async def factory() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
        async with AsyncPostgresSaver.from_conn_string(postgres_dsn) as s:
            await s.setup()
            yield s

    await _check("AsyncPostgresSaver", factory)


async def test_conformance_sync_postgres(postgres_dsn: str) -> None:
    from langgraph.checkpoint.postgres import PostgresSaver

    async def factory() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
        with PostgresSaver.from_conn_string(postgres_dsn) as s:
            s.setup()
            yield s

    await _check("PostgresSaver", factory)


def test_wrapper_refuses_what_it_cannot_wrap() -> None:
    from langgraph_speculative.errors import CheckpointerError

    with pytest.raises(CheckpointerError, match="BaseCheckpointSaver"):
        InterruptAwareCheckpointer(object())  # type: ignore[arg-type]
    with pytest.raises(CheckpointerError, match="already"):
        InterruptAwareCheckpointer(InterruptAwareCheckpointer(InMemorySaver()))
