"""Drop-in LangGraph nodes and graph factories.

- Asynchronous function calling (AsyncLM): :func:`create_async_agent`,
  :class:`AsyncToolCallingNode`, :func:`async_tools_condition`,
  :class:`AsyncToolCallingMiddleware`.
"""

from langgraph_speculative.nodes.async_calling import (
    AsyncToolCallingMiddleware,
    AsyncToolCallingNode,
    async_tools_condition,
    create_async_agent,
)

__all__ = [
    "AsyncToolCallingMiddleware",
    "AsyncToolCallingNode",
    "async_tools_condition",
    "create_async_agent",
]
