"""Pending placeholders, InterruptManager, LatencyEstimator and BatchingPolicy."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langgraph.graph.message import add_messages

from langgraph_speculative.async_calling.interrupts import (
    PENDING_CONTENT,
    BatchingPolicy,
    InterruptManager,
    LatencyEstimator,
    is_pending_placeholder,
    pending_placeholder,
)
from langgraph_speculative.core.executor import Completion, result_message_id
from langgraph_speculative.core.ledger import CallRecord, CallState


def record(
    call_id: str = "c1",
    tool_name: str = "lookup",
    *,
    started: float | None = None,
    finished: float | None = None,
) -> CallRecord:
    return CallRecord(
        id=call_id,
        tool=tool_name,
        args={},
        state=CallState.DONE if finished is not None else CallState.RUNNING,
        started_at=started,
        finished_at=finished,
    )


def completion(call_id: str) -> Completion:
    return Completion(record(call_id), ToolMessage("ok", tool_call_id=call_id))


# -- placeholders ----------------------------------------------------------------------------
def test_placeholder_carries_the_result_id_and_is_recognised() -> None:
    msg = pending_placeholder("call_1", "get_weather")
    assert msg.id == result_message_id("call_1")
    assert msg.tool_call_id == "call_1"
    assert msg.name == "get_weather"
    assert msg.content == PENDING_CONTENT
    assert is_pending_placeholder(msg)


def test_placeholder_recognised_by_content_after_a_round_trip() -> None:
    # what comes back from an HTTP API: same content, no additional_kwargs, no id
    echoed = ToolMessage(PENDING_CONTENT, tool_call_id="call_1")
    assert is_pending_placeholder(echoed)
    assert not is_pending_placeholder(ToolMessage("sunny", tool_call_id="call_1"))
    assert not is_pending_placeholder(ToolMessage(PENDING_CONTENT + " ", tool_call_id="x"))


def test_result_replaces_placeholder_under_add_messages() -> None:
    placeholder = pending_placeholder("call_1", "get_weather")
    result = ToolMessage("sunny", tool_call_id="call_1", id=result_message_id("call_1"))
    merged = add_messages([placeholder], [result])
    assert len(merged) == 1
    assert merged[0].content == "sunny"


# -- InterruptManager ------------------------------------------------------------------------
def test_manager_holds_in_critical_section_and_releases_in_order() -> None:
    manager = InterruptManager()
    assert len(manager) == 0
    assert manager.release(in_critical_section=False) == []
    manager.add([completion("a"), completion("b")])
    manager.add([completion("c")])
    assert len(manager) == 3
    assert manager.release(in_critical_section=True) == []
    assert len(manager) == 3  # held, not dropped
    released = manager.release(in_critical_section=False)
    assert [c.call_id for c in released] == ["a", "b", "c"]
    assert len(manager) == 0
    assert manager.release(in_critical_section=False) == []


# -- LatencyEstimator ------------------------------------------------------------------------
def _tool(name: str, meta: dict[str, Any] | None) -> Any:
    @tool(name)
    def t(x: str) -> str:
        """A tool."""
        return x

    t.metadata = meta
    return t


def test_estimator_seeds_from_tool_metadata() -> None:
    tools = [
        _tool("slow", {"expected_ms": 900}),
        _tool("fast", {"expected_ms": 5.5}),
        _tool("bad", {"expected_ms": -1}),
        _tool("text", {"expected_ms": "long"}),
        _tool("none", None),
    ]
    est = LatencyEstimator.for_tools(tools, ttft_ms=42, default_tool_ms=123)
    assert est.ttft_ms == 42
    assert est.tool_ms("slow") == 900
    assert est.tool_ms("fast") == 5.5
    for name in ("bad", "text", "none", "unknown"):
        assert est.tool_ms(name) == 123
    assert est.expected_ms() == {"slow": 900.0, "fast": 5.5}
    view = est.expected_ms()
    assert isinstance(view, dict)
    view["slow"] = 0  # a copy
    assert est.tool_ms("slow") == 900


def test_estimator_learns_tool_durations_with_ema() -> None:
    est = LatencyEstimator(alpha=0.5, default_tool_ms=200)
    est.observe_tool(record(started=10.0, finished=10.1))  # first observation: taken as is
    assert est.tool_ms("lookup") == pytest.approx(100)
    est.observe_tool(record(started=20.0, finished=20.3))
    assert est.tool_ms("lookup") == pytest.approx(200)  # 100 + 0.5 * (300 - 100)
    est.observe_tool(record(started=None, finished=None))  # never ran: ignored
    est.observe_tool(record(started=5.0, finished=None))
    assert est.tool_ms("lookup") == pytest.approx(200)


def test_estimator_ema_starts_from_the_prior() -> None:
    est = LatencyEstimator.for_tools([_tool("lookup", {"expected_ms": 1000})])
    est.observe_tool(record(started=0.0, finished=0.0))
    assert est.tool_ms("lookup") == pytest.approx(700)  # alpha 0.3 towards 0


def test_estimator_learns_ttft() -> None:
    est = LatencyEstimator(ttft_ms=500, alpha=0.5)
    est.observe_ttft(100)
    assert est.ttft_ms == pytest.approx(300)
    est.observe_ttft(300)
    assert est.ttft_ms == pytest.approx(300)


# -- BatchingPolicy --------------------------------------------------------------------------
def policy(ttft: float = 100, margin: float = 1.0, **tool_ms: float) -> BatchingPolicy:
    est = LatencyEstimator(ttft_ms=ttft, default_tool_ms=50)
    est._tool_ms.update(tool_ms)
    return BatchingPolicy(est, margin=margin)


def test_request_now_when_nothing_is_outstanding() -> None:
    assert policy().request_now([], arrived=0)
    assert policy().request_now([], arrived=3)


def test_no_request_without_news() -> None:
    # results still running and nothing new since the model last looked: wait
    slow = record("s", "slow", started=0.0)
    assert not policy(slow=10_000).request_now([slow], arrived=0, now=0.0)


def test_early_request_when_the_rest_takes_longer_than_a_request() -> None:
    slow = record("s", "slow", started=0.0)
    p = policy(ttft=100, slow=1000)
    assert p.request_now([slow], arrived=1, now=0.0)  # 1000 ms left >= 100 ms
    assert p.request_now([slow], arrived=1, now=0.9)  # 100 ms left >= 100 ms
    assert not p.request_now([slow], arrived=1, now=0.95)  # 50 ms left: wait for it


def test_margin_scales_the_threshold() -> None:
    slow = record("s", "slow", started=0.0)
    assert policy(ttft=100, margin=5, slow=400).request_now([slow], arrived=1, now=0.0) is False
    assert policy(ttft=100, margin=2, slow=400).request_now([slow], arrived=1, now=0.0) is True


def test_remaining_is_the_longest_outstanding_call() -> None:
    p = policy(slow=1000, fast=10)
    running = [
        record("a", "slow", started=0.0),
        record("b", "fast", started=0.0),
        record("c", "other", started=None),  # not started yet (waits for a slot): full 50 ms
    ]
    assert p.remaining_ms(running, now=0.5) == pytest.approx(500)
    assert p.remaining_ms(running, now=2.0) == pytest.approx(50)
    assert p.remaining_ms([], now=0.0) == 0.0
    overdue = [record("a", "slow", started=0.0)]
    assert p.remaining_ms(overdue, now=5.0) == 0.0  # never negative
