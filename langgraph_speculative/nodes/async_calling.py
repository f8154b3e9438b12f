"""Asynchronous function calling (AsyncLM) as drop-in LangGraph nodes.

The model does not stop and wait for each tool. A token monitor watches the model's stream
and hands each call to the executor the moment its arguments are complete; results come
back as interrupts, delivered at the next safe point; a trap waits only when the model has
nothing else to write. Three surfaces, one ledger and executor underneath:

- :func:`create_async_agent`: an uncompiled ``StateGraph`` for new apps (like
  ``create_agent``): one node runs the whole model/tool loop with interrupts;
- :class:`AsyncToolCallingNode`: the node itself. With ``until="turn"`` it is a model node
  for an existing graph: it streams one model turn, starts calls mid-stream, and returns
  the ``AIMessage`` plus the ``ToolMessage`` of every call it started; route it with
  :func:`async_tools_condition` (a stock ``ToolNode`` then only runs the calls the node
  left to it, those without a ``ToolMessage``);
- :class:`AsyncToolCallingMiddleware`: for ``langchain.agents.create_agent`` users.

Back-ends: ``interruptible`` models (offering ``open_session``, see
:mod:`langgraph_speculative.integrations.sim.sessions`) get results injected mid-generation;
``stateless`` chat-completions models get them in the next request, batched by
:class:`~langgraph_speculative.async_calling.interrupts.BatchingPolicy`, with pending-result
placeholders for calls still running. The run loop itself is
:class:`~langgraph_speculative.async_calling.run.AsyncRun`; the node and the middleware
each drive one per invocation (per model call for the middleware).

The node is async only: run the graph with ``ainvoke`` / ``astream`` (a sync ``invoke``
raises :class:`~langgraph_speculative.errors.AsyncOnlyError`).

Example:
    ```python
    import asyncio
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import tool
    from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel
    from langgraph_speculative.nodes import create_async_agent

    @tool
    async def get_weather(city: str) -> str:
        '''Current weather of a city.'''
        return f"sunny in {city}"

    model = ScriptedChatModel(
        script=[ModelTurn.calls(("get_weather", {"city": "Paris"})), ModelTurn(text="Sunny.")],
        latency=LatencyModel.zero(),
    )
    agent = create_async_agent(model, [get_weather]).compile()
    out = asyncio.run(agent.ainvoke({"messages": [HumanMessage("Weather in Paris?")]}))
    assert out["messages"][-1].content == "Sunny."
    ```
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, NoReturn

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langchain_core.tools import BaseTool
from langchain_core.tools import tool as as_tool
from langgraph.config import get_config
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Send
from pydantic import ConfigDict

from langgraph_speculative.async_calling.cml import cml_system_prompt
from langgraph_speculative.async_calling.interrupts import BatchingPolicy, LatencyEstimator
from langgraph_speculative.async_calling.run import AsyncRun
from langgraph_speculative.async_calling.token_monitor import TokenMonitor
from langgraph_speculative.core.executor import (
    DEFAULT_WAIT_TIMEOUT_S,
    ErrorHandler,
    ToolExecutor,
    check_wait_timeout,
)
from langgraph_speculative.core.ledger import CallLedger
from langgraph_speculative.durability.checkpointer import journal_for
from langgraph_speculative.durability.journal import RunJournal, journal_session
from langgraph_speculative.errors import AsyncOnlyError

_log = logging.getLogger(__name__)

__all__ = [
    "AsyncToolCallingMiddleware",
    "AsyncToolCallingNode",
    "async_tools_condition",
    "create_async_agent",
]

BackendChoice = Literal["auto", "stateless", "interruptible"]


def _as_tools(tools: Sequence[BaseTool | Callable[..., Any]]) -> list[BaseTool]:
    return [t if isinstance(t, BaseTool) else as_tool(t) for t in tools]


def _needs_graph_injection(tool: BaseTool) -> bool:
    """Whether ``tool`` takes graph state, the store or the runtime (only ``ToolNode`` injects)."""
    try:
        from langgraph.prebuilt.tool_node import _get_all_injected_args

        injected = _get_all_injected_args(tool)
    except Exception:  # a private helper: if it moves, assume nothing is injected
        return False
    return bool(injected.state or injected.store or injected.runtime)


class AsyncToolCallingNode(Runnable[Any, dict[str, list[BaseMessage]]]):
    """A LangGraph node that runs a tool-calling model with asynchronous function calling.

    Add it with ``builder.add_node("agent", AsyncToolCallingNode(model, tools))``. It reads
    and appends to the ``messages`` channel (``add_messages``). Message ids are
    deterministic (tool results ``tool-result-<call id>``, model turns with calls
    ``ai-<first call id>``), so output re-applied to the state replaces instead of
    duplicating. Every call started in the node finishes (or is cancelled) before the node
    returns. If the model answers while calls are still running (or their results came
    too late for it to see), the node waits for them and asks the model again, so the
    final answer sees every result.

    With ``until="turn"``, calls to tools the node was not given, and to tools that take
    graph state, the store or the runtime (only ``ToolNode`` injects those), are left
    without a ``ToolMessage`` for the graph's tool node; see :func:`async_tools_condition`.
    With ``until="answer"`` they are answered with an error message.

    The node is async only: run the graph with ``ainvoke`` / ``astream``; a sync
    ``invoke`` / ``stream`` raises :class:`~langgraph_speculative.errors.AsyncOnlyError`.
    Outside a graph, call :meth:`arun` (or ``await node.ainvoke(state)``).

    Args:
        model: A chat model with native tool calling (``bind_tools``), or a CML model
            (``cml=True``). Interruptible models offer ``open_session``.
        tools: The tools.
        until: ``answer``: loop model and tools inside the node until the final answer
            (interrupts, traps). ``turn``: one model turn, calls started mid-stream, return
            the ``AIMessage`` and the ``ToolMessage`` of every call it ran (for existing
            graphs).
        backend: ``auto`` picks ``interruptible`` when the model offers sessions (and, for
            the scripted model, was created with ``backend="interruptible"``).
        cml: The model writes CML text instead of native tool calls; the node adds the CML
            prompt and renders results as ``[INTR]`` blocks.
        system_prompt: A system prompt put before the conversation.
        max_concurrency: Most tool calls running at once.
        timeout: Per-call timeout in seconds.
        handle_tool_errors: As ``ToolNode``'s; the default turns every tool error into an
            error ``ToolMessage`` so the model can react while other calls run.
        estimator: Latency estimates (tool durations, time to first token) shared across
            runs; learned online.
        margin: See :class:`~langgraph_speculative.async_calling.interrupts.BatchingPolicy`.
        max_model_requests: Most model requests in one node run; one more fails the run
            with :class:`~langgraph_speculative.errors.RequestLimitError`.
        messages_key: The state key of the messages.
        wait_timeout: The most seconds one wait may last (the model's next stream or
            session chunk, including a trapped session's wait for a result; the next
            result while the node waits for calls) before it fails with
            :class:`~langgraph_speculative.errors.WaitTimeoutError`; a finite number > 0.
            A session that reports ``waiting`` and waits with nothing outstanding fails
            at once (:class:`~langgraph_speculative.errors.StalledError`).

    Raises:
        ValueError: On an unknown ``until`` or ``backend``, or a ``wait_timeout`` that is
            not a finite number > 0.
    """

    def __init__(
        self,
        model: BaseChatModel,
        tools: Sequence[BaseTool | Callable[..., Any]],
        *,
        until: Literal["answer", "turn"] = "answer",
        backend: BackendChoice = "auto",
        cml: bool = False,
        system_prompt: str | None = None,
        max_concurrency: int = 16,
        timeout: float | None = None,
        handle_tool_errors: ErrorHandler = True,
        estimator: LatencyEstimator | None = None,
        margin: float = 1.0,
        max_model_requests: int = 50,
        messages_key: str = "messages",
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT_S,
    ) -> None:
        self.wait_timeout = check_wait_timeout(wait_timeout)
        if until not in ("answer", "turn"):
            raise ValueError(f"until must be 'answer' or 'turn', got {until!r}")
        if backend not in ("auto", "stateless", "interruptible"):
            raise ValueError(f"unknown backend {backend!r}")
        self.model = model
        self.tools = _as_tools(tools)
        self.until = until
        self.cml = cml
        self.system_prompt = system_prompt
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.handle_tool_errors = handle_tool_errors
        self.estimator = estimator or LatencyEstimator.for_tools(self.tools)
        self.margin = margin
        self.max_model_requests = max_model_requests
        self.messages_key = messages_key
        self.trap_text = "[TRAP][END]"
        self.backend: Literal["stateless", "interruptible"] = (
            _detect_backend(model) if backend == "auto" else backend
        )
        self.param_order = {
            t.name: list(t.tool_call_schema.model_json_schema().get("properties", {}))
            for t in self.tools
            if hasattr(t.tool_call_schema, "model_json_schema")
        }
        self.early_tools = [t for t in self.tools if not _needs_graph_injection(t)]
        """The tools ``until="turn"`` runs itself (not those needing ``ToolNode``'s injection)."""
        self.__name__ = "async_tool_calling"  # LangGraph names nodes after callables
        self.name = self.__name__  # ... and runnables after their name
        self.resume_stats: dict[str, int] = dict.fromkeys(
            (
                "resumed_calls",
                "rerun_calls",
                "unknown_outcomes",
                "replayed_turns",
                "orphaned_calls",
            ),
            0,
        )
        """Totals over this node's runs: results reused after a crash, calls run again,
        calls answered "outcome unknown", model turns replayed from the journal, calls a
        crashed run started that the resumed model did not make again."""
        if not cml and (self.backend == "stateless" or until == "turn"):
            _ = self.bound_model  # bind once, when the node is built, not on its first run

    @functools.cached_property
    def bound_model(self) -> Runnable[LanguageModelInput, BaseMessage]:
        """The model the stateless back-end streams: with the tools bound (as is for CML).

        A tool's expected duration (``metadata["expected_ms"]``) is added to the
        description the model sees, so it can write the longest call first (AsyncLM's
        scheduling); the tools that run are unchanged.
        """
        if self.cml:
            return self.model
        return self.model.bind_tools([_with_duration(t) for t in self.tools])

    def monitor(self, id_prefix: str) -> TokenMonitor:
        """A fresh token monitor for one model stream."""
        return TokenMonitor(cml=True, id_prefix=id_prefix, param_order=self.param_order)

    def policy(self) -> BatchingPolicy:
        """The stateless delivery policy."""
        return BatchingPolicy(self.estimator, margin=self.margin)

    def system_message(self) -> SystemMessage | None:
        """The system message: the user's prompt, plus the CML instructions for CML models."""
        parts = [self.system_prompt] if self.system_prompt else []
        if self.cml:
            parts.append(cml_system_prompt(self.tools, expected_ms=self.estimator.expected_ms()))
        return SystemMessage("\n\n".join(parts)) if parts else None

    def tool_config(self, config: RunnableConfig | None) -> RunnableConfig | None:
        """The config tools run with (the node's callbacks, so tracing sees them)."""
        if config is None:
            return None
        kept: RunnableConfig = {}
        for key in ("callbacks", "tags", "metadata"):
            if key in config:
                kept[key] = config[key]
        return kept

    async def arun(
        self,
        messages: Sequence[BaseMessage],
        config: RunnableConfig | None = None,
        *,
        ledger: CallLedger | None = None,
        journal: RunJournal | None = None,
    ) -> list[BaseMessage]:
        """Run on a conversation; return the new messages (outside a graph too).

        Args:
            messages: The conversation so far.
            config: The run's config (callbacks, tags, metadata reach the model and tools).
            ledger: The ledger to record this run's calls in (a fresh one by default);
                pass one to inspect the calls afterwards or to share it with other nodes.
            journal: A (not yet opened) run journal: the run records its calls, results
                and model turns write-ahead, and resumes what a crashed run of the same
                task recorded (completed turns are replayed, completed calls reused).
                In a graph compiled with
                :class:`~langgraph_speculative.durability.checkpointer.InterruptAwareCheckpointer`
                the node finds it itself.

        Returns:
            The new messages: model turns, each followed by the results of its calls.

        Raises:
            RequestLimitError: If the model makes more than ``max_model_requests``
                requests without answering.
            StalledError: If the model traps (waits for a result) with nothing
                outstanding.
            WaitTimeoutError: If a wait lasts longer than ``wait_timeout``.
            Exception: A tool's exception that ``handle_tool_errors`` does not handle.
            CheckpointerError: A damaged journal, or another live run holding the task.
        """
        turn = self.until == "turn"
        tools = self.early_tools if turn else self.tools
        async with (
            journal_session(journal) as opened,
            ToolExecutor(
                tools,
                ledger=ledger if ledger is not None else CallLedger(),
                max_concurrency=self.max_concurrency,
                timeout=self.timeout,
                handle_tool_errors=self.handle_tool_errors,
                journal=opened,
                # the stateless loop delivers results only in its next model request
                # (flushed first) or as the node's return value (flushed on close)
                defer_results=turn or self.backend != "interruptible",
            ) as executor,
        ):
            run = AsyncRun(self, messages, executor, config, only_known_tools=turn)
            try:
                if not turn and self.backend == "interruptible":
                    await run.run_interruptible()
                else:
                    await run.run_stateless(self.until)
                self._report_orphans(opened)
                return run.transcript(for_model=False)
            finally:
                stats = self.resume_stats
                stats["resumed_calls"] += executor.resumed_calls
                stats["rerun_calls"] += executor.rerun_calls
                stats["unknown_outcomes"] += executor.unknown_outcomes
                stats["replayed_turns"] += run.replayed_turns

    def _report_orphans(self, journal: RunJournal | None) -> None:
        """Warn about calls a crashed run started that the resumed model did not make again.

        Their results never reach the model; an unsafe one may have had its effect.
        """
        state = journal.state if journal is not None else None
        if state is None:
            return
        for orphan in state.orphans():
            rec = orphan.record
            self.resume_stats["orphaned_calls"] += 1
            _log.warning(
                "%s: call %r (%s %s, %s) was started before a crash but the resumed model "
                "did not make it again: an orphan call; its result is not delivered%s",
                journal.where if journal is not None else "",
                rec.id,
                rec.tool,
                rec.args,
                orphan.state.value,
                "" if rec.safe else " (an unsafe tool: its effect may have happened)",
            )

    async def __call__(self, state: Any, config: RunnableConfig) -> dict[str, list[BaseMessage]]:
        """The node: read the state's messages, return the new ones."""
        messages = state[self.messages_key]
        out = await self.arun(messages, config, journal=journal_for(config))
        return {self.messages_key: out}

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, list[BaseMessage]]:
        """Run the node on a state, as a graph does (see :meth:`__call__`).

        Args:
            input: The graph state (a mapping with the messages).
            config: The run's config.
            **kwargs: Ignored.

        Returns:
            The state update: the new messages under ``messages_key``.
        """
        return await self(input, ensure_config(config))

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> NoReturn:
        """Refuse to run synchronously: the node is async only.

        Args:
            input: The graph state.
            config: The run's config.
            **kwargs: Ignored.

        Raises:
            AsyncOnlyError: Always; run the graph with ``ainvoke`` / ``astream``.
        """
        raise AsyncOnlyError(type(self).__name__)


def _with_duration(tool: BaseTool) -> BaseTool:
    """A copy of ``tool`` whose description states its expected duration, if known."""
    expected = (tool.metadata or {}).get("expected_ms")
    if not isinstance(expected, int | float) or isinstance(expected, bool) or expected < 0:
        return tool
    note = f" (Expected duration: about {expected:.0f} ms.)"
    return tool.model_copy(update={"description": (tool.description or "").rstrip() + note})


def _detect_backend(model: BaseChatModel) -> Literal["stateless", "interruptible"]:
    if callable(getattr(model, "open_session", None)):
        return (
            "interruptible"
            if getattr(model, "backend", "interruptible") == "interruptible"
            else "stateless"
        )
    return "stateless"


def async_tools_condition(
    state: Mapping[str, Any] | Sequence[BaseMessage],
    messages_key: str = "messages",
    *,
    tools_node: str = "tools",
    model_node: str = "model",
) -> str | list[Send]:
    """Route after an :class:`AsyncToolCallingNode` with ``until="turn"``.

    Use it as ``builder.add_conditional_edges("model", async_tools_condition)`` with a
    stock ``ToolNode`` named ``"tools"`` and an edge ``"tools" -> "model"``.

    Args:
        state: The graph state (or its list of messages).
        messages_key: The state key of the messages.
        tools_node: The name of the graph's tool node.
        model_node: The name of the model node.

    Returns:
        When the last model turn has calls without a ``ToolMessage``: one ``Send`` to
        ``tools_node`` per such call, so a stock ``ToolNode`` runs just those (as
        ``create_agent`` routes); for a list-of-messages state, ``tools_node`` (the tool
        node then runs every call of the turn). ``model_node`` when every call was
        answered (the node answers malformed calls itself), and ``END`` when the model
        answered without calls.
    """
    by_list = isinstance(state, Sequence)
    messages = state if isinstance(state, Sequence) else state[messages_key]
    answered: set[str] = set()
    for msg in reversed(messages):
        if isinstance(msg, ToolMessage):
            answered.add(msg.tool_call_id)
        elif isinstance(msg, AIMessage):
            invalid = [c["id"] for c in msg.invalid_tool_calls if c.get("id")]
            if not (msg.tool_calls or invalid):
                return END
            waiting = [c for c in msg.tool_calls if c["id"] not in answered]
            if not waiting:
                return model_node
            return tools_node if by_list else [Send(tools_node, [call]) for call in waiting]
    return END


def create_async_agent(
    model: BaseChatModel,
    tools: Sequence[BaseTool | Callable[..., Any]],
    *,
    system_prompt: str | None = None,
    name: str = "agent",
    **node_options: Any,
) -> StateGraph[MessagesState]:
    """Build an agent graph with asynchronous function calling (uncompiled).

    Like ``create_agent``: ``START -> agent -> END`` on ``MessagesState``; the agent node
    (:class:`AsyncToolCallingNode` with ``until="answer"``) loops model and tools with
    interrupts until the final answer.

    Args:
        model: The chat model.
        tools: The tools.
        system_prompt: A system prompt.
        name: The node's name.
        **node_options: More :class:`AsyncToolCallingNode` options.

    Returns:
        The uncompiled graph; call ``.compile(checkpointer=...)``.
    """
    node = AsyncToolCallingNode(model, tools, system_prompt=system_prompt, **node_options)
    builder = StateGraph(MessagesState)
    builder.add_node(name, node)
    builder.add_edge(START, name)
    builder.add_edge(name, END)
    return builder


class _DispatchingChatModel(BaseChatModel):
    """Wraps a model so that its calls start the moment they are complete in the stream."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: Any
    run: Any

    @property
    def _llm_type(self) -> str:
        return "async-dispatching"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> _DispatchingChatModel:
        return self.model_copy(update={"inner": self.inner.bind_tools(tools, **kwargs)})

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        raise AsyncOnlyError("AsyncToolCallingMiddleware")

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Stream the wrapped model with early dispatch; only the wrapped model is traced."""
        messages = self._convert_input(input).to_messages()
        return await self._dispatch(messages, config, stop, kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = await self._dispatch(messages, None, stop, kwargs)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _dispatch(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig | None,
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> AIMessage:
        run: AsyncRun = self.run
        if stop is not None:
            kwargs = {**kwargs, "stop": stop}
        return await run.relay(self.inner.astream(messages, config, **kwargs))


class AsyncToolCallingMiddleware(AgentMiddleware):
    """``create_agent`` middleware: tools start while the model is still streaming.

    The model call streams; each call is started the moment its arguments are complete;
    the middleware returns the ``AIMessage`` together with the ``ToolMessage`` of every call
    it started, so ``create_agent``'s tool node has nothing left to run and the agent goes
    straight back to the model. Calls to tools the middleware was not given are left to
    the tool node.

    Args:
        tools: The tools to run early (by default the request's ``BaseTool`` objects).
        max_concurrency: Most calls at once.
        timeout: Per-call timeout in seconds.
        wait_timeout: The most seconds one wait (the model's next chunk, the next result
            of a started call) may last; see :class:`AsyncToolCallingNode`.

    Example:
        ```python
        # skip-test
        from langchain.agents import create_agent
        agent = create_agent(model, tools, middleware=[AsyncToolCallingMiddleware()])
        ```
    """

    def __init__(
        self,
        tools: Sequence[BaseTool] | None = None,
        *,
        max_concurrency: int = 16,
        timeout: float | None = None,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT_S,
    ) -> None:
        super().__init__()
        self._tools = list(tools) if tools is not None else None
        self._max_concurrency = max_concurrency
        self._timeout = timeout
        self._wait_timeout = check_wait_timeout(wait_timeout)
        self._node: tuple[tuple[int, ...], AsyncToolCallingNode] | None = None

    def _node_for(self, model: BaseChatModel, tools: list[BaseTool]) -> AsyncToolCallingNode:
        """The (cached) node for ``model`` and the given tools.

        It holds the monitor settings, the latency estimates and, in ``early_tools``, the
        tools this middleware runs itself.
        """
        key = (id(model), *map(id, tools))
        if self._node is None or self._node[0] != key:
            node = AsyncToolCallingNode(
                model,
                tools,
                until="turn",
                backend="stateless",
                max_concurrency=self._max_concurrency,
                timeout=self._timeout,
                wait_timeout=self._wait_timeout,
            )
            self._node = (key, node)  # the node holds model and tools: their ids stay valid
        return self._node[1]

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        """Stream the model call with early dispatch; answer every call it started.

        Tools that take graph state, the store or the runtime are left to the tool node
        (only it can inject them), as are calls to tools the middleware does not have.
        Started calls finish before the model node does: the executor lives only for one
        model call, so no tool outlives its node.
        """
        given = (
            self._tools
            if self._tools is not None
            else [t for t in request.tools if isinstance(t, BaseTool)]
        )
        if not isinstance(request.model, BaseChatModel):  # pragma: no cover - defensive
            return await handler(request)
        node = self._node_for(request.model, given)
        tools = node.early_tools
        try:
            config: RunnableConfig | None = get_config()
        except RuntimeError:  # outside a graph run
            config = None
        async with (
            journal_session(journal_for(config)) as journal,
            ToolExecutor(
                tools,
                max_concurrency=self._max_concurrency,
                timeout=self._timeout,
                handle_tool_errors=True,
                journal=journal,
            ) as executor,
        ):
            run = AsyncRun(node, request.messages, executor, config, only_known_tools=True)
            wrapped = _DispatchingChatModel(inner=request.model, run=run)
            response = await handler(request.override(model=wrapped))
            await run.wait_all()
        # answer the calls of the returned AIMessage (not those of a retried attempt)
        ids = [
            c["id"]
            for m in response.result
            if isinstance(m, AIMessage)
            for c in (*m.tool_calls, *m.invalid_tool_calls)
        ]
        answers: list[AnyMessage] = [
            run.results[c] for c in ids if c is not None and c in run.results
        ]
        return ModelResponse(
            result=[*response.result, *answers],
            structured_response=response.structured_response,
        )
