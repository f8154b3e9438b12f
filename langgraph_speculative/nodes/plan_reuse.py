"""Plan reuse (AgentReuse): answer a known kind of request without asking the planner.

The graph (:func:`create_plan_reuse_graph`)::

    START -> lookup -(hit)-> execute_plan -> [respond] -> END
                    -(miss)-> plan -> execute_plan

- ``lookup`` (:class:`PlanCacheNode`) classifies the last user message, strips its
  parameters, searches the cache within its intent and routes with ``Command``: to
  ``execute_plan`` with the cached plan filled with the new parameters, or to ``plan``;
- ``plan`` (:class:`PlannerNode`) asks the planner (an :class:`LLMPlanner`, structured
  output) and stores its plan in the cache as a template;
- ``execute_plan`` (:class:`PlanExecutionNode`) runs the plan as a DAG on the shared
  :class:`~langgraph_speculative.core.executor.ToolExecutor`: independent steps in parallel.
  Its messages (one ``AIMessage`` with the plan's tool calls, one ``ToolMessage`` per
  step) carry deterministic ids, so a re-run replaces rather than duplicates them;
- ``respond`` (only when a ``model`` is given) answers from the results.

The nodes are async only: run the graph with ``ainvoke`` / ``astream``; a sync
``invoke`` / ``stream`` raises :class:`~langgraph_speculative.errors.AsyncOnlyError`.

The state keeps what was decided, in plain JSON: ``plan`` (the filled plan),
``plan_source`` (``"cache"`` or ``"planner"``) and ``plan_lookup`` (intent, confidence,
parameters, stripped text, score or miss reason).

Example:
    ```python
    import asyncio
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import tool
    from langgraph_speculative.cache import PlanCache, TemplatePlanner
    from langgraph_speculative.cache.plans.plan import Plan, PlanStep
    from langgraph_speculative.cache.training_data import LabelledRequest
    from langgraph_speculative.nodes.plan_reuse import create_plan_reuse_graph

    @tool
    def search_trains(origin: str, destination: str) -> str:
        '''Trains between two cities.'''
        return f"G1 {origin}->{destination} 08:00"

    pairs = [("合肥", "北京"), ("长沙", "上海"), ("广州", "深圳"), ("南京", "杭州")]
    examples = [LabelledRequest(f"{a}到{b}的火车票", "train", "QUERY",
                                {"startLoc_city": a, "endLoc_city": b}) for a, b in pairs]
    examples += [LabelledRequest(f"{d}怎么做", "cookbook", "QUERY", {"dishName": d})
                 for d in ["糖醋排骨", "红烧肉", "宫保鸡丁", "麻婆豆腐"]]
    cache = PlanCache.from_examples(examples)
    template = Plan(parameters=["startLoc_city", "endLoc_city"], steps=[PlanStep(
        id="s1", description="search trains", tool="search_trains", output="trains",
        inputs={"origin": "{param:startLoc_city}", "destination": "{param:endLoc_city}"})])
    planner = TemplatePlanner({"train.QUERY": template})
    graph = create_plan_reuse_graph(cache, planner, [search_trains]).compile()

    async def ask(text: str) -> dict:
        return await graph.ainvoke({"messages": [HumanMessage(text)]})

    first = asyncio.run(ask("合肥到北京的火车票"))
    again = asyncio.run(ask("成都到重庆的火车票"))
    assert (first["plan_source"], again["plan_source"]) == ("planner", "cache")
    assert again["messages"][-1].content == "G1 成都->重庆 08:00"
    ```
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from typing import (
    Any,
    Generic,
    Literal,
    NoReturn,
    NotRequired,
    Protocol,
    TypeVar,
    runtime_checkable,
)

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.config import get_config
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command

from langgraph_speculative.cache.plan_cache import CacheLookup, PlanCache
from langgraph_speculative.cache.plans.plan import ParameterValue, Plan
from langgraph_speculative.cache.plans.runner import run_plan
from langgraph_speculative.core.executor import ErrorHandler, ToolExecutor
from langgraph_speculative.durability.checkpointer import journal_for
from langgraph_speculative.durability.journal import journal_session
from langgraph_speculative.errors import AsyncOnlyError, RequestError

__all__ = [
    "PlanCacheNode",
    "PlanExecutionNode",
    "PlanReuseState",
    "Planner",
    "PlannerNode",
    "create_plan_reuse_graph",
]


class PlanReuseState(MessagesState):
    """State of the plan-reuse graph: ``messages`` plus what the cache decided."""

    plan: NotRequired[dict[str, Any] | None]
    plan_source: NotRequired[Literal["cache", "planner"] | None]
    plan_lookup: NotRequired[dict[str, Any] | None]


@runtime_checkable
class Planner(Protocol):
    """Anything that plans a request: :class:`LLMPlanner`, :class:`TemplatePlanner`, ..."""

    async def aplan(
        self, request: str, parameters: Mapping[str, ParameterValue], *, label: str | None = None
    ) -> Plan:
        """Plan ``request`` whose recognised ``parameters`` are given (slot -> value)."""
        ...


_Update = TypeVar("_Update")


class _AsyncNode(Runnable[PlanReuseState, _Update], Generic[_Update]):
    """A plan-reuse node: it runs only asynchronously (``__call__`` is a coroutine)."""

    @abc.abstractmethod
    async def __call__(self, state: PlanReuseState) -> _Update:
        """The node: read the state, return its update."""

    async def ainvoke(
        self, input: PlanReuseState, config: RunnableConfig | None = None, **kwargs: Any
    ) -> _Update:
        """Run the node on a state, as a graph does (see :meth:`__call__`).

        Args:
            input: The graph state.
            config: Ignored: the node reads the graph run's config itself.
            **kwargs: Ignored.

        Returns:
            The node's update (a ``Command`` for :class:`PlanCacheNode`).
        """
        return await self(input)

    def invoke(
        self, input: PlanReuseState, config: RunnableConfig | None = None, **kwargs: Any
    ) -> NoReturn:
        """Refuse to run synchronously: the node is async only.

        Args:
            input: The graph state.
            config: The run's config.
            **kwargs: Ignored.

        Raises:
            AsyncOnlyError: Always; run the graph with ``ainvoke`` / ``astream``.
        """
        raise AsyncOnlyError(type(self).__name__)


def _turn(messages: Sequence[AnyMessage]) -> tuple[int, HumanMessage]:
    """The last user message and its index: the turn being answered."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, HumanMessage):
            return index, message
    raise RequestError("the state holds no user (human) message to look up")


def _request(messages: Sequence[AnyMessage]) -> str:
    return str(_turn(messages)[1].text)


def _summary(lookup: CacheLookup) -> dict[str, Any]:
    return {
        "intent": None if lookup.intent is None else lookup.intent.label,
        "confidence": None if lookup.intent is None else round(lookup.intent.confidence, 4),
        "parameters": lookup.values,
        "stripped": lookup.stripped,
        "partition": lookup.partition,
        "threshold": lookup.threshold,
        "score": None if lookup.hit is None else round(lookup.hit.score, 4),
        "miss_reason": lookup.miss_reason,
        "overhead_ms": round(lookup.overhead_ms, 3),
    }


class PlanCacheNode(_AsyncNode[Command[str]]):
    """Looks the last user message up in the plan cache and routes with ``Command``.

    Async only: a sync ``invoke`` raises :class:`~langgraph_speculative.errors.AsyncOnlyError`.

    Args:
        cache: The plan cache.
        on_hit: Node to go to with the filled cached plan.
        on_miss: Node to go to when the planner must plan.
    """

    def __init__(
        self, cache: PlanCache, *, on_hit: str = "execute_plan", on_miss: str = "plan"
    ) -> None:
        self.cache = cache
        self.on_hit = on_hit
        self.on_miss = on_miss

    async def __call__(self, state: PlanReuseState) -> Command[str]:
        """Look up, then go to ``on_hit`` or ``on_miss``."""
        lookup = await self.cache.alookup(_request(state["messages"]))
        if lookup.hit is not None:
            update = {
                "plan": lookup.hit.plan.model_dump(mode="json"),
                "plan_source": "cache",
                "plan_lookup": _summary(lookup),
            }
            return Command(goto=self.on_hit, update=update)
        miss: dict[str, Any] = {"plan": None, "plan_source": None, "plan_lookup": _summary(lookup)}
        return Command(goto=self.on_miss, update=miss)


class PlannerNode(_AsyncNode[dict[str, Any]]):
    """Asks the planner for a plan, stores it in the cache, and hands it on to run.

    Async only: a sync ``invoke`` raises :class:`~langgraph_speculative.errors.AsyncOnlyError`.

    A request of unknown intent with intent induction off is planned and run, but its
    plan is not stored (there is no intent to file it under).

    Args:
        cache: The plan cache the plan is stored in.
        planner: The planner (:class:`LLMPlanner` or any :class:`Planner`).
    """

    def __init__(self, cache: PlanCache, planner: Planner) -> None:
        self.cache = cache
        self.planner = planner

    async def __call__(self, state: PlanReuseState) -> dict[str, Any]:
        """Plan, store, and put the filled plan in the state."""
        request = _request(state["messages"])
        lookup = await self.cache.alookup(request)
        if lookup.hit is not None:  # another run stored a matching plan meanwhile
            return {
                "plan": lookup.hit.plan.model_dump(mode="json"),
                "plan_source": "cache",
                "plan_lookup": _summary(lookup),
            }
        label = None if lookup.intent is None else lookup.intent.label
        plan = await self.planner.aplan(request, lookup.values, label=label)
        template = plan.abstract(lookup.values)
        with contextlib.suppress(RequestError):  # unknown intent, no induction: keep nothing
            await self.cache.astore(lookup, template)
        filled = template.fill(lookup.values)
        return {
            "plan": filled.model_dump(mode="json"),
            "plan_source": "planner",
            "plan_lookup": _summary(lookup),
        }


class PlanExecutionNode(_AsyncNode[dict[str, Any]]):
    """Runs the state's plan as a DAG on a :class:`ToolExecutor` (steps in parallel).

    Async only: a sync ``invoke`` raises :class:`~langgraph_speculative.errors.AsyncOnlyError`.

    Call ids are deterministic (``plan-<digest>:<step id>``, the digest taken from the
    user message being answered, its position, and the plan), so a run resumed after a
    crash re-creates the same calls, a re-sent message replaces its results, and the same
    request asked again later in the conversation gets calls of its own.
    Compiled with an
    :class:`~langgraph_speculative.durability.checkpointer.InterruptAwareCheckpointer`, the node
    journals its steps: after a crash, finished steps are not run again (their results
    are delivered once) and a step that was running re-runs only when that is safe.

    Args:
        tools: The tools the plans may name.
        max_concurrency: Most steps running at once.
        timeout: Per-step timeout in seconds.
        handle_tool_errors: As ``ToolNode``'s (see :class:`ToolExecutor`).
    """

    def __init__(
        self,
        tools: Sequence[BaseTool],
        *,
        max_concurrency: int = 16,
        timeout: float | None = None,
        handle_tool_errors: ErrorHandler | None = None,
    ) -> None:
        self.tools = list(tools)
        self.options: dict[str, Any] = {"max_concurrency": max_concurrency, "timeout": timeout}
        if handle_tool_errors is not None:
            self.options["handle_tool_errors"] = handle_tool_errors

    async def __call__(self, state: PlanReuseState) -> dict[str, Any]:
        """Run the plan; return its messages."""
        raw = state.get("plan")
        if raw is None:
            raise RequestError("execute_plan was reached without a plan in the state")
        plan = Plan.model_validate(raw)
        index, human = _turn(state["messages"])
        turn = f"{human.id or human.text}\0{index}\0{plan.to_json()}"
        digest = hashlib.sha256(turn.encode("utf-8")).hexdigest()[:12]
        try:
            config = get_config()
        except RuntimeError:  # called outside a graph run: nothing to journal
            config = None
        async with (
            journal_session(journal_for(config)) as journal,
            ToolExecutor(self.tools, journal=journal, **self.options) as executor,
        ):
            run = await run_plan(plan, executor, call_id_prefix=f"plan-{digest}")
        return {"messages": run.messages()}


def create_plan_reuse_graph(
    cache: PlanCache,
    planner: Planner,
    tools: Sequence[BaseTool],
    *,
    model: BaseChatModel | None = None,
    system_prompt: str | None = None,
    **execution_options: Any,
) -> StateGraph[PlanReuseState]:
    """Build the plan-reuse graph (uncompiled).

    Args:
        cache: The plan cache (see :meth:`PlanCache.from_examples`).
        planner: Plans the requests the cache misses.
        tools: The tools plans may call.
        model: When given, a ``respond`` node asks it for the final answer from the
            plan's results; otherwise the graph ends after the plan ran (the last
            message is the last step's result).
        system_prompt: System prompt of the ``respond`` node.
        **execution_options: :class:`PlanExecutionNode` options.

    Returns:
        The uncompiled graph; call ``.compile(checkpointer=...)``.
    """
    builder = StateGraph(PlanReuseState)
    builder.add_node(
        "lookup", PlanCacheNode(cache), destinations=("execute_plan", "plan")
    )  # fmt: skip
    builder.add_node("plan", PlannerNode(cache, planner))
    builder.add_node("execute_plan", PlanExecutionNode(tools, **execution_options))
    builder.add_edge(START, "lookup")
    builder.add_edge("plan", "execute_plan")
    if model is None:
        builder.add_edge("execute_plan", END)
        return builder

    async def respond(state: PlanReuseState) -> dict[str, Any]:
        messages: list[AnyMessage] = list(state["messages"])
        if system_prompt:
            messages = [SystemMessage(system_prompt), *messages]
        return {"messages": [await model.ainvoke(messages)]}

    builder.add_node("respond", respond)
    builder.add_edge("execute_plan", "respond")
    builder.add_edge("respond", END)
    return builder
