"""Drop-in LangGraph nodes and graph factories.

- Asynchronous function calling (AsyncLM): :func:`create_async_agent`,
  :class:`AsyncToolCallingNode`, :func:`async_tools_condition`,
  :class:`AsyncToolCallingMiddleware`.
- Speculative interaction: :func:`create_speculative_agent`, :class:`SpeculativeRun`,
  :func:`route_commit`.
"""

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

__all__ = [
    "AsyncToolCallingMiddleware",
    "AsyncToolCallingNode",
    "SpeculativeRun",
    "SpeculativeState",
    "async_tools_condition",
    "create_async_agent",
    "create_speculative_agent",
    "route_commit",
]
