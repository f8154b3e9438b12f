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
  :func:`async_tools_condition` (a stock ``ToolNode`` then only runs calls that have no
  ``ToolMessage``);
- :class:`AsyncToolCallingMiddleware`: for ``langchain.agents.create_agent`` users.

Back-ends: ``interruptible`` models (offering ``open_session``, see
:mod:`langgraph_speculative.integrations.sessions`) get results injected mid-generation;
``stateless`` chat-completions models get them in the next request, batched by
:class:`~langgraph_speculative.interrupts.BatchingPolicy`, with pending-result
placeholders for calls still running.

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

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.callbacks import AsyncCallbackManager, AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    BaseMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, LLMResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langchain_core.tools import tool as as_tool
from langgraph.graph import END, START, MessagesState, StateGraph
from pydantic import ConfigDict

from langgraph_speculative.cml import cml_system_prompt, to_cml_transcript
from langgraph_speculative.errors import SpeculativeError
from langgraph_speculative.executor import Completion, ErrorHandler, ToolExecutor
from langgraph_speculative.interrupts import (
    BatchingPolicy,
    InterruptManager,
    LatencyEstimator,
    pending_placeholder,
)
from langgraph_speculative.ledger import CallLedger
from langgraph_speculative.token_monitor import (
    CallComplete,
    CallMalformed,
    MonitorEvent,
    TextDelta,
    TokenMonitor,
    Trap,
)

__all__ = [
    "AsyncToolCallingMiddleware",
    "AsyncToolCallingNode",
    "async_tools_condition",
    "create_async_agent",
]

BackendChoice = Literal["auto", "stateless", "interruptible"]


def _as_tools(tools: Sequence[BaseTool | Callable[..., Any]]) -> list[BaseTool]:
    return [t if isinstance(t, BaseTool) else as_tool(t) for t in tools]


@dataclass(slots=True)
class _Segment:
    """What the model wrote between two deliveries of results."""

    text: str = ""
    calls: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    trap: bool = False


class _Run:
    """One node invocation: the model, the executor, the monitor and the transcript."""

    def __init__(
        self,
        node: AsyncToolCallingNode,
        history: Sequence[BaseMessage],
        executor: ToolExecutor,
        config: RunnableConfig | None,
        *,
        only_known_tools: bool = False,
    ) -> None:
        self.node = node
        self.history = list(history)
        self.executor = executor
        self.config = config
        self.segments: list[_Segment] = []
        self.calls: dict[str, dict[str, Any]] = {}  # call id -> ToolCall / invalid call
        self.results: dict[str, ToolMessage] = {}
        self.model_requests = 0
        self.prefix = f"call_{uuid.uuid4().hex[:8]}"
        self.only_known_tools = only_known_tools

    # -- dispatch ------------------------------------------------------------------
    def handle(self, events: Sequence[MonitorEvent], seg: _Segment) -> None:
        for event in events:
            if isinstance(event, CallComplete):
                call = event.call
                if self.only_known_tools and call["name"] not in self.executor.tools_by_name:
                    continue  # left to the graph's own tool node
                self.calls[call["id"] or ""] = dict(call)
                seg.calls.append(call["id"] or "")
                self.executor.submit(call, config=self.node.tool_config(self.config))
            elif isinstance(event, CallMalformed):
                call_id = event.id or f"{self.prefix}_bad{event.index}"
                self.calls[call_id] = {
                    "name": event.name,
                    "args": event.raw,
                    "id": call_id,
                    "error": event.error,
                    "type": "invalid_tool_call",
                }
                seg.invalid.append(call_id)
                self.executor.reject(call_id, event.name, f"malformed tool call: {event.error}")
            elif isinstance(event, TextDelta):
                seg.text += event.text
            elif isinstance(event, Trap):
                seg.trap = True

    def absorb(self, completions: Sequence[Completion]) -> list[ToolMessage]:
        out: list[ToolMessage] = []
        for done in completions:
            if done.error is not None:
                raise done.error
            assert done.message is not None
            self.results[done.call_id] = done.message
            self.node.estimator.observe_tool(done.record)
            out.append(done.message)
        return out

    def outstanding(self) -> list[Any]:
        return [
            r
            for r in self.executor.ledger
            if r.id in self.calls and not r.state.terminal and r.id not in self.results
        ]

    # -- transcript ----------------------------------------------------------------
    def segment_message(self, seg: _Segment) -> AIMessage:
        return AIMessage(
            content=seg.text,
            tool_calls=[self.calls[c] for c in seg.calls],
            invalid_tool_calls=[self.calls[c] for c in seg.invalid],
        )

    def transcript(self, *, for_model: bool) -> list[BaseMessage]:
        """Messages of this run: each segment followed by the answers to its calls.

        For the model, calls still running are answered by pending placeholders and trap
        segments are kept; for the graph state, traps and empty segments are dropped.
        """
        out: list[BaseMessage] = []
        for seg in self.segments:
            if not for_model and not (seg.text.strip() or seg.calls or seg.invalid):
                continue
            ai = self.segment_message(seg)
            if for_model and seg.trap and not (seg.calls or seg.invalid):
                ai = AIMessage(content=seg.text + self.node.trap_text)
            out.append(ai)
            for cid in (*seg.calls, *seg.invalid):
                msg = self.results.get(cid)
                if msg is None:
                    if not for_model:
                        continue
                    msg = pending_placeholder(cid, str(self.calls[cid].get("name") or ""))
                out.append(msg)
        return out

    def prompt(self) -> list[BaseMessage]:
        messages = [*self.history, *self.transcript(for_model=True)]
        if self.node.cml:
            messages = to_cml_transcript(messages)
        system = self.node.system_message()
        return [system, *messages] if system is not None else messages

    # -- the two back-ends ---------------------------------------------------------
    async def stream_turn(self) -> _Segment:
        self.model_requests += 1
        if self.model_requests > self.node.max_model_requests:
            raise SpeculativeError(
                f"the model made {self.node.max_model_requests} requests without a final "
                "answer; raise max_model_requests if this is expected"
            )
        prompt = self.prompt()
        seg = _Segment()
        self.segments.append(seg)
        monitor = self.node.monitor(self.prefix + f"r{self.model_requests}")
        started = time.perf_counter()
        first = True
        async for chunk in self.node.bound_model.astream(prompt, self.config):
            if first:
                self.node.estimator.observe_ttft((time.perf_counter() - started) * 1e3)
                first = False
            if isinstance(chunk, AIMessageChunk):
                self.handle(monitor.feed(chunk), seg)
        self.handle(monitor.finish(), seg)
        return seg

    async def run_stateless(self, until: Literal["answer", "turn"]) -> None:
        policy = self.node.policy()
        while True:
            seg = await self.stream_turn()
            if until == "turn":
                self.absorb([await self._completion_of(c) for c in (*seg.calls, *seg.invalid)])
                return
            waited = False
            arrived = len(self.absorb(self.executor.ready()))
            while True:
                outstanding = self.outstanding()
                if policy.request_now(outstanding, arrived=arrived):
                    break
                self.absorb([await self.executor.next_completion()])
                arrived += 1
                waited = True
            final = not (seg.calls or seg.invalid or seg.trap) and not self.outstanding()
            if final:
                return
            if seg.trap and not (seg.calls or seg.invalid) and not (arrived or waited):
                raise SpeculativeError(
                    "the model trapped (waits for a result) but no call is outstanding"
                )

    async def _completion_of(self, call_id: str) -> Completion:
        record = self.executor.ledger.get(call_id)
        try:
            return Completion(record, await self.executor.wait(call_id))
        except Exception as exc:  # an unhandled tool error: absorb() re-raises it
            return Completion(record, None, exc)

    async def run_interruptible(self) -> None:
        self.model_requests += 1
        model = self.node.model
        open_session = getattr(model, "open_session", None)
        if not callable(open_session):
            raise SpeculativeError(f"{type(model).__name__} cannot open interruptible sessions")
        prompt = self.prompt()
        session = open_session(prompt, tools=self.node.tools)
        monitor = self.node.monitor(self.prefix)
        manager = InterruptManager()
        seg = _Segment()
        self.segments.append(seg)

        def deliver() -> None:
            nonlocal seg
            ready = manager.release(in_critical_section=monitor.in_call)
            if ready:
                session.inject(self.absorb(ready))
                seg = _Segment()
                self.segments.append(seg)

        async def pump() -> None:
            while True:
                manager.add([await self.executor.next_completion()])
                manager.add(self.executor.ready())
                deliver()

        callbacks = AsyncCallbackManager.configure(
            inheritable_callbacks=(self.config or {}).get("callbacks")
        )
        (tracer,) = await callbacks.on_chat_model_start(
            {"name": type(model).__name__}, [prompt], invocation_params={"session": True}
        )
        pumping = asyncio.create_task(pump())
        try:
            async for chunk in session:
                if isinstance(chunk.content, str):
                    await tracer.on_llm_new_token(
                        chunk.content, chunk=ChatGenerationChunk(message=chunk)
                    )
                self.handle(monitor.feed(chunk), seg)
                if pumping.done():
                    pumping.result()  # surface an unhandled tool error
                deliver()
            self.handle(monitor.finish(), seg)
        except BaseException as exc:
            await tracer.on_llm_error(exc)
            raise
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumping
        final = AIMessage(content=monitor.text, tool_calls=monitor.calls)
        await tracer.on_llm_end(LLMResult(generations=[[ChatGeneration(message=final)]]))
        manager.add(self.executor.ready())
        self.absorb(manager.release(in_critical_section=False))
        if self.outstanding():
            raise SpeculativeError("the model answered while calls were still running")


class AsyncToolCallingNode:
    """A LangGraph node that runs a tool-calling model with asynchronous function calling.

    Add it with ``builder.add_node("agent", AsyncToolCallingNode(model, tools))``. It reads
    and appends to the ``messages`` channel (``add_messages``); tool results carry
    deterministic ids (``tool-result-<call id>``), so re-sent results replace.

    Args:
        model: A chat model with native tool calling (``bind_tools``), or a CML model
            (``cml=True``). Interruptible models offer ``open_session``.
        tools: The tools.
        until: ``answer``: loop model and tools inside the node until the final answer
            (interrupts, traps). ``turn``: one model turn, calls started mid-stream, return
            the ``AIMessage`` and the ``ToolMessage`` of every call (for existing graphs).
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
        margin: See :class:`~langgraph_speculative.interrupts.BatchingPolicy`.
        max_model_requests: Most model requests in one node run.
        messages_key: The state key of the messages.

    Raises:
        ValueError: On an unknown ``until`` or ``backend``.
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
    ) -> None:
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
        self.bound_model: Runnable[LanguageModelInput, BaseMessage] = (
            model if cml else model.bind_tools(self.tools)
        )
        self.param_order = {
            t.name: list(t.tool_call_schema.model_json_schema().get("properties", {}))
            for t in self.tools
            if hasattr(t.tool_call_schema, "model_json_schema")
        }
        self.__name__ = "async_tool_calling"  # LangGraph names nodes after callables

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
        self, messages: Sequence[BaseMessage], config: RunnableConfig | None = None
    ) -> list[BaseMessage]:
        """Run on a conversation; return the new messages (outside a graph too).

        Raises:
            SpeculativeError: If the model loops without answering, or traps with nothing
                outstanding.
        """
        async with ToolExecutor(
            self.tools,
            ledger=CallLedger(),
            max_concurrency=self.max_concurrency,
            timeout=self.timeout,
            handle_tool_errors=self.handle_tool_errors,
        ) as executor:
            run = _Run(self, messages, executor, config)
            if self.until == "answer" and self.backend == "interruptible":
                await run.run_interruptible()
            else:
                await run.run_stateless(self.until)
            return run.transcript(for_model=False)

    async def __call__(self, state: Any, config: RunnableConfig) -> dict[str, list[BaseMessage]]:
        """The node: read the state's messages, return the new ones."""
        messages = state[self.messages_key]
        return {self.messages_key: await self.arun(messages, config)}


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
) -> Literal["tools", "model", "__end__"]:
    """Route after an :class:`AsyncToolCallingNode` with ``until="turn"``.

    Returns ``"tools"`` when the last model turn has calls without a ``ToolMessage`` (a
    stock ``ToolNode`` runs just those), ``"model"`` when every call was answered (back to
    the model), and ``END`` when the model answered without calls.
    """
    messages = state if isinstance(state, Sequence) else state[messages_key]
    answered: set[str] = set()
    for msg in reversed(messages):
        if isinstance(msg, ToolMessage):
            answered.add(msg.tool_call_id)
        elif isinstance(msg, AIMessage):
            ids = [c["id"] for c in msg.tool_calls] + [
                c["id"] for c in msg.invalid_tool_calls if c.get("id")
            ]
            if not ids:
                return "__end__"
            return "model" if all(i in answered for i in ids) else "tools"
    return "__end__"


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
        raise SpeculativeError("AsyncToolCallingMiddleware needs an async agent (ainvoke)")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        run: _Run = self.run
        seg = _Segment()
        run.segments.append(seg)
        monitor = run.node.monitor(run.prefix)
        merged: AIMessageChunk | None = None
        async for chunk in self.inner.astream(messages):
            if isinstance(chunk, AIMessageChunk):
                merged = chunk if merged is None else merged + chunk
                run.handle(monitor.feed(chunk), seg)
        run.handle(monitor.finish(), seg)
        message = run.segment_message(seg)
        if merged is not None:
            message.response_metadata = dict(merged.response_metadata)
            message.usage_metadata = merged.usage_metadata
            message.id = merged.id
        return ChatResult(generations=[ChatGeneration(message=message)])


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
    ) -> None:
        super().__init__()
        self._tools = list(tools) if tools is not None else None
        self._max_concurrency = max_concurrency
        self._timeout = timeout

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        """Stream the model call with early dispatch; answer every call it started."""
        tools = self._tools or [t for t in request.tools if isinstance(t, BaseTool)]
        node = AsyncToolCallingNode(
            request.model,
            tools,
            until="turn",
            backend="stateless",
            max_concurrency=self._max_concurrency,
            timeout=self._timeout,
            handle_tool_errors=True,
        )
        async with ToolExecutor(
            tools,
            max_concurrency=self._max_concurrency,
            timeout=self._timeout,
            handle_tool_errors=True,
        ) as executor:
            run = _Run(node, request.messages, executor, None, only_known_tools=True)
            wrapped = _DispatchingChatModel(inner=request.model, run=run)
            response = await handler(request.override(model=wrapped))
            started = [c for seg in run.segments for c in (*seg.calls, *seg.invalid)]
            run.absorb([await run._completion_of(c) for c in started])
        answers: list[AnyMessage] = [run.results[c] for c in started if c in run.results]
        return ModelResponse(
            result=[*response.result, *answers],
            structured_response=response.structured_response,
        )
