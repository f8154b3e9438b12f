"""Asynchronous function calling (AsyncLM): the run loop, the token monitor, CML, interrupts.

- :mod:`~langgraph_speculative.async_calling.run`: :class:`AsyncRun`, the run loop
  (model stream -> token monitor -> executor -> interrupts), with its two back-ends;
- :mod:`~langgraph_speculative.async_calling.token_monitor`: :class:`TokenMonitor`, which
  finds complete calls (and traps) in the model's stream;
- :mod:`~langgraph_speculative.async_calling.interrupts`: when results are delivered
  (:class:`InterruptManager`, :class:`BatchingPolicy`, :class:`LatencyEstimator`);
- :mod:`~langgraph_speculative.async_calling.cml`: the CML text format for models without
  native tool calling.

The LangGraph surfaces built on them (``create_async_agent``, ``AsyncToolCallingNode``,
``AsyncToolCallingMiddleware``) are in :mod:`langgraph_speculative.nodes.async_calling`.
"""

from __future__ import annotations

from langgraph_speculative.async_calling.cml import cml_system_prompt, to_cml_transcript
from langgraph_speculative.async_calling.interrupts import (
    BatchingPolicy,
    InterruptManager,
    LatencyEstimator,
    is_pending_placeholder,
    pending_placeholder,
)
from langgraph_speculative.async_calling.run import AsyncRun, RunSettings, Segment
from langgraph_speculative.async_calling.token_monitor import (
    CallComplete,
    CallMalformed,
    CallStarted,
    MonitorEvent,
    TextDelta,
    TokenMonitor,
    Trap,
)

__all__ = [
    "AsyncRun",
    "BatchingPolicy",
    "CallComplete",
    "CallMalformed",
    "CallStarted",
    "InterruptManager",
    "LatencyEstimator",
    "MonitorEvent",
    "RunSettings",
    "Segment",
    "TextDelta",
    "TokenMonitor",
    "Trap",
    "cml_system_prompt",
    "is_pending_placeholder",
    "pending_placeholder",
    "to_cml_transcript",
]
