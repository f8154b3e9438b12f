"""Interrupts: how tool results reach a model that did not stop to wait for them.

A finished call is an *interrupt*. The :class:`InterruptManager` queues interrupts and
releases them only at a *safe point*: never while the model is writing a call (the
critical section the token monitor tracks). How they reach the model depends on the
back-end:

- **interruptible** (a local decoder or a realtime session): injected into the running
  generation at the next token boundary, costing prefill only;
- **stateless** (chat completions): only in a new request, which pays the time to first
  token again. :class:`BatchingPolicy` decides when a new request is worth it: when every
  outstanding result is in, or when the results still running are expected to take longer
  than a model request, so that the model's thinking overlaps the wait instead of adding to
  it. A stream is never cut short: results arriving meanwhile wait for the turn's end.

In a stateless request, a call whose result has not arrived is answered by a *pending
placeholder* (a ``ToolMessage`` that says so, with the result's deterministic message id),
because chat APIs require an answer to every call; the real result later replaces it.

Example:
    ```python
    from langgraph_speculative.async_calling.interrupts import (
        is_pending_placeholder,
        pending_placeholder,
    )

    msg = pending_placeholder("call_1", "get_weather")
    assert is_pending_placeholder(msg)
    ```
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.tools import BaseTool

from langgraph_speculative.core.executor import Completion, result_message_id
from langgraph_speculative.core.ledger import CallRecord

__all__ = [
    "PENDING_CONTENT",
    "BatchingPolicy",
    "InterruptManager",
    "LatencyEstimator",
    "is_pending_placeholder",
    "pending_placeholder",
]

PENDING_CONTENT = (
    "[PENDING] This call is still running; its result will be delivered when it is ready. "
    "Do not repeat the call."
)
"""Content of a pending-result placeholder."""


def pending_placeholder(call_id: str, tool: str) -> ToolMessage:
    """A placeholder answer for a call whose result has not arrived yet.

    It carries the result's deterministic id, so the real result replaces it under
    ``add_messages``.
    """
    return ToolMessage(
        content=PENDING_CONTENT,
        tool_call_id=call_id,
        name=tool,
        id=result_message_id(call_id),
        additional_kwargs={"pending": True},
    )


def is_pending_placeholder(message: BaseMessage) -> bool:
    """Tell whether ``message`` is a pending-result placeholder.

    Recognised by content, so also after a round trip through an HTTP API.
    """
    return isinstance(message, ToolMessage) and message.content == PENDING_CONTENT


class InterruptManager:
    """Queues finished calls and releases them at safe points, in finishing order."""

    __slots__ = ("_queue",)

    def __init__(self) -> None:
        self._queue: list[Completion] = []

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, completions: Iterable[Completion]) -> None:
        """Queue finished calls."""
        self._queue.extend(completions)

    def release(self, *, in_critical_section: bool) -> list[Completion]:
        """Return and clear the queue, or nothing while the model is writing a call."""
        if in_critical_section or not self._queue:
            return []
        out, self._queue = self._queue, []
        return out


@dataclass(slots=True)
class LatencyEstimator:
    """Online estimates of tool durations and model time to first token.

    Tool estimates start from a tool's ``metadata["expected_ms"]`` (or ``default_tool_ms``)
    and follow observed durations with an exponential moving average.

    Attributes:
        ttft_ms: Current estimate of a model request's time to first token.
        default_tool_ms: Prior for tools without ``expected_ms``.
        alpha: Weight of a new observation.
    """

    ttft_ms: float = 500.0
    default_tool_ms: float = 200.0
    alpha: float = 0.3
    _tool_ms: dict[str, float] = field(default_factory=dict)

    @classmethod
    def for_tools(
        cls, tools: Sequence[BaseTool], *, ttft_ms: float = 500.0, default_tool_ms: float = 200.0
    ) -> LatencyEstimator:
        """Seed estimates from the tools' ``expected_ms`` metadata."""
        est = cls(ttft_ms=ttft_ms, default_tool_ms=default_tool_ms)
        for t in tools:
            value = (t.metadata or {}).get("expected_ms")
            if isinstance(value, int | float) and value >= 0:
                est._tool_ms[t.name] = float(value)
        return est

    def tool_ms(self, tool: str) -> float:
        """Expected duration of a call to ``tool``."""
        return self._tool_ms.get(tool, self.default_tool_ms)

    def expected_ms(self) -> Mapping[str, float]:
        """Current expected duration per tool (for a prompt that tells the model)."""
        return dict(self._tool_ms)

    def observe_tool(self, record: CallRecord) -> None:
        """Learn from a finished call's duration."""
        if record.started_at is None or record.finished_at is None:
            return
        ms = (record.finished_at - record.started_at) * 1e3
        old = self._tool_ms.get(record.tool)
        self._tool_ms[record.tool] = ms if old is None else old + self.alpha * (ms - old)

    def observe_ttft(self, ms: float) -> None:
        """Learn from an observed time to first token."""
        self.ttft_ms += self.alpha * (ms - self.ttft_ms)


@dataclass(slots=True)
class BatchingPolicy:
    """When a stateless back-end should get a new request while results are outstanding.

    Attributes:
        estimator: Latency estimates.
        margin: A new request is made early only if the outstanding results are expected to
            take ``margin`` times the time to first token or more.
    """

    estimator: LatencyEstimator
    margin: float = 1.0

    def remaining_ms(self, outstanding: Sequence[CallRecord], now: float | None = None) -> float:
        """Expected time until the last outstanding call finishes."""
        now = time.time() if now is None else now
        remaining = 0.0
        for rec in outstanding:
            start = rec.started_at if rec.started_at is not None else now
            left = self.estimator.tool_ms(rec.tool) - (now - start) * 1e3
            remaining = max(remaining, left)
        return remaining

    def request_now(
        self, outstanding: Sequence[CallRecord], *, arrived: int, now: float | None = None
    ) -> bool:
        """Decide whether to send the model a new request now.

        Args:
            outstanding: Calls dispatched whose results have not arrived.
            arrived: Results arrived since the model last saw the context.
            now: Current ``time.time()`` (for tests).
        """
        if not outstanding:
            return True
        if arrived == 0:
            return False
        return self.remaining_ms(outstanding, now) >= self.margin * self.estimator.ttft_ms
