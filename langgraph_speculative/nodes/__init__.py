"""Drop-in LangGraph nodes and graph factories.

- Asynchronous function calling (AsyncLM): :func:`create_async_agent`,
  :class:`AsyncToolCallingNode`, :func:`async_tools_condition`,
  :class:`AsyncToolCallingMiddleware`.
- Speculative interaction: :func:`create_speculative_agent`, :class:`SpeculativeRun`,
  :func:`route_commit`.
- Plan reuse (AgentReuse): :func:`create_plan_reuse_graph`, :class:`PlanCacheNode`,
  :class:`PlannerNode`, :class:`PlanExecutionNode` (imported on first use: they load the
  plan cache's models).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from langgraph_speculative.nodes.async_calling import (
    AsyncToolCallingMiddleware,
    AsyncToolCallingNode,
    async_tools_condition,
    create_async_agent,
)
from langgraph_speculative.nodes.speculative import (
    SpeculativeRun,
    SpeculativeState,
    create_speculative_agent,
    route_commit,
)

if TYPE_CHECKING:
    from langgraph_speculative.nodes.plan_reuse import (
        PlanCacheNode,
        PlanExecutionNode,
        PlannerNode,
        PlanReuseState,
        create_plan_reuse_graph,
    )

_LAZY = {
    "PlanCacheNode",
    "PlanExecutionNode",
    "PlanReuseState",
    "PlannerNode",
    "create_plan_reuse_graph",
}

__all__ = [
    "AsyncToolCallingMiddleware",
    "AsyncToolCallingNode",
    "PlanCacheNode",
    "PlanExecutionNode",
    "PlanReuseState",
    "PlannerNode",
    "SpeculativeRun",
    "SpeculativeState",
    "async_tools_condition",
    "create_async_agent",
    "create_plan_reuse_graph",
    "create_speculative_agent",
    "route_commit",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.plan_reuse"), name)
    globals()[name] = value
    return value
