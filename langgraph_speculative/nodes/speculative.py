"""Speculative interaction: act while the user is still talking, commit or abort at the end.

The agent does not wait for the user's final words. Partial input arrives on an
:class:`~langgraph_speculative.speculative.input_stream.InputStream`; the model, prompted in the
clock-based interaction format (:mod:`langgraph_speculative.speculative.interaction_format`), calls
tools on what it has heard so far, revises and removes calls as the transcript changes,
and confirms its plan once the input is final. Safe tools run speculatively; unsafe ones
are held by the executor until the commit point.

This module is the graph side; the runtime, :class:`SpeculativeRun` (re-exported here), lives
in :mod:`langgraph_speculative.speculative.run`, which also tells what the model sees, how a
run fails and how a crashed run resumes.

The graph (:func:`create_speculative_agent`)::

    START -> listen -> (commit | abort) -> respond -> END

- ``listen`` feeds input updates and speculative results to the model until it confirms
  its plan after the final update;
- the router (:func:`route_commit`) takes the **commit** edge when every live speculative
  call is confirmed by the plan, the **abort** edge when the commit point must abort one
  (versions the model revised or withdrew itself were settled by the model and do not
  count); both settle the calls
  (:meth:`~langgraph_speculative.speculative.manager.SpeculationManager.commit`): confirmed results
  are adopted, everything else is cancelled and its results dropped;
- ``respond`` delivers the final plan's results and returns the model's answer.

What lives across the nodes (the input stream, the executor and its running calls, the
model session) is a :class:`SpeculativeRun`, passed as LangGraph's runtime ``context``
(which is not checkpointed): open it with ``async with`` around the run, so no call
outlives it. The nodes are async only: run the graph with ``ainvoke`` or ``astream``
(``invoke`` and ``stream`` raise :class:`~langgraph_speculative.errors.AsyncOnlyError`).

Crash and resume: compile the graph with an
:class:`~langgraph_speculative.durability.checkpointer.InterruptAwareCheckpointer` and the run
keeps a write-ahead journal (on the ``listen`` task; the state's ``run`` key points later
nodes to it); after a crash, resume the thread with a new run
(:meth:`SpeculativeRun.resume`, then ``graph.ainvoke(None, config, context=run)``).

Example:
    ```python
    import asyncio
    from langchain_core.tools import tool
    from langgraph_speculative import label_tool
    from langgraph_speculative.integrations import LatencyModel, ScriptedChatModel
    from langgraph_speculative.integrations import PlannedCall, ScriptedTask
    from langgraph_speculative.integrations.sim.scripted_listener import ListeningResponder
    from langgraph_speculative.nodes.speculative import SpeculativeRun, create_speculative_agent

    @tool
    async def get_weather(city: str) -> str:
        '''Current weather of a city.'''
        return f"sunny in {city}"

    label_tool(get_weather, safe=True)
    fn = {"name": "get_weather", "parameters": {"type": "dict", "properties": {}}}
    task = ScriptedTask("w", "Weather in Paris please", (fn,),
                        (PlannedCall("0", "get_weather", {"city": "Paris"}),))
    model = ScriptedChatModel(script=ListeningResponder(task), latency=LatencyModel.zero(),
                              backend="interruptible")
    graph = create_speculative_agent().compile()

    async def main() -> str:
        async with SpeculativeRun(model, [get_weather]) as run:
            async def user() -> None:
                for partial in ["Weather", "Weather in", "Weather in Paris"]:
                    run.input.push(partial)
                    await asyncio.sleep(0.01)
                run.input.push("Weather in Paris please", final=True)
            talking = asyncio.create_task(user())
            out = await graph.ainvoke({"messages": []}, context=run)
            await talking
        return out["messages"][-1].content

    print(asyncio.run(main()))
    ```
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.config import get_config
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.runtime import Runtime, get_runtime

from langgraph_speculative.errors import AsyncOnlyError, SpeculativeError
from langgraph_speculative.speculative.manager import CommitOutcome
from langgraph_speculative.speculative.run import SpeculativeRun

__all__ = [
    "SpeculativeRun",
    "SpeculativeState",
    "create_speculative_agent",
    "route_commit",
]


class SpeculativeState(MessagesState):
    """Graph state of a speculative agent.

    Attributes:
        final_plan: The calls the model confirmed after the final input.
        commit: What the commit point decided (``adopted``, ``started``, ``aborted``,
            ``discarded``; see :class:`~langgraph_speculative.speculative.manager.CommitOutcome`).
        run: The interaction's id and, with the interrupt-aware checkpointer, where its
            journal is stored (``thread_id``, ``checkpoint_ns``, ``checkpoint_id``,
            ``task_id``), so a run resumed after ``listen`` finds it.
    """

    final_plan: list[dict[str, Any]]
    commit: dict[str, Any]
    run: dict[str, Any]


_NodeFunction = Callable[[SpeculativeState, Runtime[Any]], Awaitable[dict[str, Any]]]


class _AsyncOnlyNode(Runnable[SpeculativeState, dict[str, Any]]):
    """A graph node that runs only asynchronously; run synchronously, it says so.

    LangGraph turns an async function node into a runnable without a synchronous form,
    whose ``invoke`` raises a bare ``TypeError`` ("No synchronous function provided ...,
    initialize with a synchronous function"), advice a user of this graph cannot follow.
    This node raises :class:`~langgraph_speculative.errors.AsyncOnlyError` (a
    ``TypeError`` too) naming ``ainvoke`` / ``astream``; run asynchronously, it calls its
    function with the state and the runtime, as LangGraph calls a function node.

    Args:
        name: The node's name.
        function: The node's async function.
    """

    def __init__(self, name: str, function: _NodeFunction) -> None:
        self.name = name
        self.function = function

    def invoke(
        self, input: SpeculativeState, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Refuse: the node is async only.

        Raises:
            AsyncOnlyError: Always.
        """
        raise AsyncOnlyError(f"the speculative agent's node {self.name!r}")

    async def ainvoke(
        self, input: SpeculativeState, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Run the node's function on the state, with the graph run's runtime."""
        return await self.function(input, get_runtime())


def _run_of(runtime: Runtime[Any]) -> SpeculativeRun:
    run = runtime.context
    if not isinstance(run, SpeculativeRun):
        raise SpeculativeError(
            "a speculative agent needs its SpeculativeRun as the runtime context: "
            "graph.ainvoke(state, context=run)"
        )
    return run


def _plan_of(state: SpeculativeState) -> list[ToolCall]:
    return [
        ToolCall(name=c["name"], args=dict(c.get("args") or {}), id=c["id"], type="tool_call")
        for c in state["final_plan"]
    ]


async def _listen(state: SpeculativeState, runtime: Runtime[Any]) -> dict[str, Any]:
    run = _run_of(runtime)
    config = get_config()
    await run.attach(config, state, "listen")
    plan = await run.listen(state["messages"])
    await run.flush()
    final = run.input.latest
    said: list[AnyMessage] = []
    if final is not None:
        said.append(HumanMessage(final.text, id=run.message_id("input", str(final.seq))))
    return {"messages": said, "final_plan": [dict(c) for c in plan], "run": run.pointer()}


def route_commit(state: SpeculativeState, runtime: Runtime[Any]) -> Literal["commit", "abort"]:
    """The commit edge when every live speculative call is confirmed, the abort edge otherwise.

    See :meth:`SpeculativeRun.would_abort`: a call the model revised or withdrew before
    the commit point does not make the plan take the abort edge.
    """
    return "abort" if _run_of(runtime).would_abort(_plan_of(state)) else "commit"


async def _settle(state: SpeculativeState, runtime: Runtime[Any]) -> dict[str, Any]:
    run = _run_of(runtime)
    config = get_config()
    plan = _plan_of(state)
    await run.attach(config, state, "commit")
    run.rebuild(state["messages"], plan)
    outcome = run.settle(plan)
    await run.flush()
    messages: list[AnyMessage] = []
    if plan:
        messages.append(AIMessage(content="", tool_calls=plan, id=run.message_id("plan")))
    return {"messages": messages, "commit": _outcome_dict(outcome)}


def _outcome_dict(outcome: CommitOutcome) -> dict[str, Any]:
    return {
        "adopted": dict(outcome.adopted),
        "started": list(outcome.started),
        "aborted": list(outcome.aborted),
        "discarded": list(outcome.discarded),
    }


async def _respond(state: SpeculativeState, runtime: Runtime[Any]) -> dict[str, Any]:
    run = _run_of(runtime)
    config = get_config()
    plan = _plan_of(state)
    await run.attach(config, state, "respond")
    run.rebuild(state["messages"], plan)
    if run.outcome is None:  # the journal lost the commit point: settle it again
        run.settle(plan)
    if run.resumed and "commit" in state and run.outcome is not None:
        settled = _outcome_dict(run.outcome)
        if settled != state["commit"]:
            raise SpeculativeError(
                f"the resumed commit point {settled} differs from the one the graph state "
                f"recorded {state['commit']}: refusing to act on another decision"
            )
    results, answer = await run.respond(plan)
    await run.flush()

    def as_state(message: ToolMessage) -> ToolMessage:
        return message.model_copy(update={"id": run.message_id("result", message.tool_call_id)})

    messages: list[AnyMessage] = [as_state(m) for m in results[: len(plan)]]
    if run.extra_calls:
        messages.append(
            AIMessage(content="", tool_calls=list(run.extra_calls), id=run.message_id("calls"))
        )
        messages += [as_state(m) for m in results[len(plan) :]]
    messages.append(AIMessage(answer, id=run.message_id("answer")))
    return {"messages": messages}


def create_speculative_agent(
    model: BaseChatModel | None = None,
    tools: Sequence[BaseTool | Callable[..., Any]] | None = None,
) -> StateGraph[SpeculativeState]:
    """Build the speculative agent graph (uncompiled).

    ``START -> listen -> (commit | abort) -> respond -> END`` on :class:`SpeculativeState`.
    Run it with a :class:`SpeculativeRun` as the context: ``graph.ainvoke({"messages":
    []}, context=run)``. The graph takes nothing: the run carries the live model and tools,
    so one compiled graph serves any number of runs (each with its own model and tools).
    The nodes are async only: ``invoke`` and ``stream`` raise
    :class:`~langgraph_speculative.errors.AsyncOnlyError`; use ``ainvoke`` or ``astream``.

    The state ends with ``HumanMessage(final input)``, ``AIMessage(tool_calls=plan)`` (when
    the plan has calls), one ``ToolMessage`` per plan call, then (for calls made after the
    commit point) another ``AIMessage`` with those calls and their results, and the
    ``AIMessage`` of the answer: a valid OpenAI chat history. Message ids are derived from
    the run's id (:meth:`SpeculativeRun.message_id`).

    Args:
        model: Deprecated and ignored (the run carries the model): passing it warns with
            a :class:`DeprecationWarning`; the parameter goes away in 0.3.
        tools: Deprecated and ignored (the run carries the tools), as ``model``.

    Returns:
        The uncompiled graph.
    """
    if model is not None or tools is not None:
        warnings.warn(
            "create_speculative_agent() takes no model or tools any more: they travel in "
            "the SpeculativeRun (the runtime context) and were always ignored here; call "
            "create_speculative_agent() (the parameters go away in 0.3)",
            DeprecationWarning,
            stacklevel=2,
        )
    builder = StateGraph(SpeculativeState)
    builder.add_node("listen", _AsyncOnlyNode("listen", _listen))
    builder.add_node("commit", _AsyncOnlyNode("commit", _settle))
    builder.add_node("abort", _AsyncOnlyNode("abort", _settle))
    builder.add_node("respond", _AsyncOnlyNode("respond", _respond))
    builder.add_edge(START, "listen")
    builder.add_conditional_edges("listen", route_commit, ["commit", "abort"])
    builder.add_edge("commit", "respond")
    builder.add_edge("abort", "respond")
    builder.add_edge("respond", END)
    return builder
