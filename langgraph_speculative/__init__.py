"""langgraph-speculative: make LangGraph tool-calling agents answer sooner.

What a user needs to start is exported here; everything else lives one level down, in
the wing of its capability:

* asynchronous function calling (AsyncLM): :func:`create_async_agent`,
  :class:`AsyncToolCallingNode` with :func:`async_tools_condition`, and the agent
  middleware :class:`AsyncToolCallingMiddleware`
  (:mod:`langgraph_speculative.async_calling`, :mod:`langgraph_speculative.nodes`);
* speculative interaction: :func:`create_speculative_agent`, :class:`SpeculativeRun`,
  :class:`InputStream`, :func:`route_commit` (:mod:`langgraph_speculative.speculative`);
* plan reuse (AgentReuse): :class:`PlanCache`, :func:`create_plan_reuse_graph`
  (:mod:`langgraph_speculative.cache`);
* crash safety: :class:`InterruptAwareCheckpointer`
  (:mod:`langgraph_speculative.durability`);
* the shared core: :class:`CallLedger`, :class:`ToolExecutor`, :func:`label_tool`
  (:mod:`langgraph_speculative.core`).

Errors are in :mod:`langgraph_speculative.errors`. Names are imported on first use, so
``import langgraph_speculative`` stays cheap (the plan cache loads its models only when
asked for).

Example:
    ```python
    from langchain_core.tools import tool

    from langgraph_speculative import create_async_agent
    from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel


    @tool
    def get_weather(city: str) -> str:
        \"\"\"The weather in a city.\"\"\"
        return f"sunny in {city}"


    model = ScriptedChatModel(
        script=[ModelTurn.calls(("get_weather", {"city": "Paris"})), ModelTurn(text="Sunny.")],
        latency=LatencyModel.zero(),
    )
    agent = create_async_agent(model, [get_weather]).compile()
    ```
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from langgraph_speculative import _moved

if TYPE_CHECKING:
    from langgraph_speculative.cache.plan_cache import PlanCache
    from langgraph_speculative.core.executor import ToolExecutor
    from langgraph_speculative.core.ledger import CallLedger
    from langgraph_speculative.core.safety import label_tool
    from langgraph_speculative.durability.checkpointer import InterruptAwareCheckpointer
    from langgraph_speculative.nodes.async_calling import (
        AsyncToolCallingMiddleware,
        AsyncToolCallingNode,
        async_tools_condition,
        create_async_agent,
    )
    from langgraph_speculative.nodes.plan_reuse import create_plan_reuse_graph
    from langgraph_speculative.nodes.speculative import (
        SpeculativeRun,
        create_speculative_agent,
        route_commit,
    )
    from langgraph_speculative.speculative.input_stream import InputStream

__version__ = "0.2.0"

_moved.install()

_EXPORTS: dict[str, str] = {
    "create_async_agent": "langgraph_speculative.nodes.async_calling",
    "AsyncToolCallingNode": "langgraph_speculative.nodes.async_calling",
    "async_tools_condition": "langgraph_speculative.nodes.async_calling",
    "AsyncToolCallingMiddleware": "langgraph_speculative.nodes.async_calling",
    "create_speculative_agent": "langgraph_speculative.nodes.speculative",
    "SpeculativeRun": "langgraph_speculative.nodes.speculative",
    "route_commit": "langgraph_speculative.nodes.speculative",
    "InputStream": "langgraph_speculative.speculative.input_stream",
    "PlanCache": "langgraph_speculative.cache.plan_cache",
    "create_plan_reuse_graph": "langgraph_speculative.nodes.plan_reuse",
    "InterruptAwareCheckpointer": "langgraph_speculative.durability.checkpointer",
    "CallLedger": "langgraph_speculative.core.ledger",
    "ToolExecutor": "langgraph_speculative.core.executor",
    "label_tool": "langgraph_speculative.core.safety",
}
"""The public names and the module that defines each."""

_DEPRECATED: dict[str, str] = {
    "CallRecord": "langgraph_speculative.core.ledger",
    "CallState": "langgraph_speculative.core.ledger",
    "Speculation": "langgraph_speculative.core.ledger",
    "Completion": "langgraph_speculative.core.executor",
    "idempotency_key_of": "langgraph_speculative.core.executor",
    "result_message_id": "langgraph_speculative.core.executor",
    "is_idempotent_tool": "langgraph_speculative.core.safety",
    "is_safe_tool": "langgraph_speculative.core.safety",
    "takes_idempotency_key": "langgraph_speculative.core.safety",
    "RunJournal": "langgraph_speculative.durability.journal",
    "journal_for": "langgraph_speculative.durability.checkpointer",
    "Resolution": "langgraph_speculative.durability.resume",
    "ResumeState": "langgraph_speculative.durability.resume",
    **{
        name: "langgraph_speculative.errors"
        for name in (
            "CheckpointerError",
            "ConcurrentResumeError",
            "DataFormatError",
            "IllegalTransitionError",
            "JournalCorruptError",
            "OutcomeUnknownError",
            "PlanCacheError",
            "RequestLimitError",
            "ScriptError",
            "SpeculativeError",
            "StalledError",
            "StreamFormatError",
            "ToolTimeoutError",
            "UnknownCallError",
            "UnsafeBeforeCommitError",
            "WaitTimeoutError",
        )
    },
}
"""Names the top level exported in 0.1, importable from it (with a warning) until 0.3."""

__all__ = [
    "AsyncToolCallingMiddleware",
    "AsyncToolCallingNode",
    "CallLedger",
    "InputStream",
    "InterruptAwareCheckpointer",
    "PlanCache",
    "SpeculativeRun",
    "ToolExecutor",
    "__version__",
    "async_tools_condition",
    "create_async_agent",
    "create_plan_reuse_graph",
    "create_speculative_agent",
    "label_tool",
    "route_commit",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        module = _DEPRECATED.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        warnings.warn(
            f"langgraph_speculative.{name} moved: import it from {module} "
            "(the top-level name goes away in 0.3)",
            DeprecationWarning,
            stacklevel=2,
        )
    value = getattr(importlib.import_module(module), name)
    if name in _EXPORTS:
        globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
