"""The AsyncLM run loop: model stream -> token monitor -> executor -> interrupts.

One :class:`AsyncRun` is one run of asynchronous function calling over a conversation:
it streams the model, feeds every chunk to a
:class:`~langgraph_speculative.async_calling.token_monitor.TokenMonitor`, submits each
call to the :class:`~langgraph_speculative.core.executor.ToolExecutor` the moment its
arguments are complete, and delivers the results back to the model: in the next request
for ``stateless`` models (batched by
:class:`~langgraph_speculative.async_calling.interrupts.BatchingPolicy`, with
pending-result placeholders for calls still running), injected at safe points by the
:class:`~langgraph_speculative.async_calling.interrupts.InterruptManager` for
``interruptible`` sessions. Every wait is bounded (``wait_timeout``); a model that waits
for nothing fails at once (:class:`~langgraph_speculative.errors.StalledError`).

The run takes its settings (model, tools, monitor, policy, prompts, limits) from its
owner, a :class:`RunSettings`: the
:class:`~langgraph_speculative.nodes.async_calling.AsyncToolCallingNode` and the
:class:`~langgraph_speculative.nodes.async_calling.AsyncToolCallingMiddleware` each drive
one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import get_async_callback_manager_for_config
from langchain_core.tools import BaseTool

from langgraph_speculative.async_calling.cml import to_cml_transcript
from langgraph_speculative.async_calling.interrupts import (
    BatchingPolicy,
    InterruptManager,
    LatencyEstimator,
    pending_placeholder,
)
from langgraph_speculative.async_calling.token_monitor import (
    CallComplete,
    CallMalformed,
    MonitorEvent,
    TextDelta,
    TokenMonitor,
    Trap,
)
from langgraph_speculative.core.executor import Completion, ToolExecutor
from langgraph_speculative.core.ledger import CallRecord
from langgraph_speculative.core.safety import is_idempotent_tool
from langgraph_speculative.durability.resume import TurnRecord
from langgraph_speculative.errors import (
    RequestLimitError,
    SpeculativeError,
    StalledError,
    WaitTimeoutError,
)

__all__ = ["AsyncRun", "RunSettings", "Segment"]

_T = TypeVar("_T")

_STALL_POLL_S = 0.02
"""How often a session run looks whether the session waits silently (``waiting``)."""


async def _bounded(
    chunks: AsyncIterable[_T], timeout: float, awaited: str, detail: Callable[[], str]
) -> AsyncGenerator[_T, None]:
    """Iterate over ``chunks``, failing when the next one takes longer than ``timeout``.

    The wait runs in the caller's task (no task is created per chunk); the iterator is
    closed when the iteration ends, however it ends.

    Raises:
        WaitTimeoutError: If a chunk did not come within ``timeout`` seconds.
    """
    iterator = aiter(chunks)
    try:
        while True:
            timer = asyncio.timeout(timeout)
            try:
                async with timer:
                    chunk = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if not timer.expired():
                    raise
                raise WaitTimeoutError(awaited, timeout, detail=detail()) from None
            yield chunk
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


class RunSettings(Protocol):
    """What an :class:`AsyncRun` reads from its owner (an ``AsyncToolCallingNode``).

    The owner holds the model, the tools, the limits, and the latency estimates shared
    across runs; the run holds the state of one conversation.
    """

    @property
    def model(self) -> BaseChatModel:
        """The chat model (interruptible models offer ``open_session``)."""
        ...

    @property
    def tools(self) -> list[BaseTool]:
        """The tools the model is shown."""
        ...

    @property
    def bound_model(self) -> Runnable[LanguageModelInput, BaseMessage]:
        """The model the stateless back-end streams (tools bound, or as is for CML)."""
        ...

    @property
    def cml(self) -> bool:
        """Whether the model writes CML text instead of native tool calls."""
        ...

    @property
    def estimator(self) -> LatencyEstimator:
        """Latency estimates (tool durations, time to first token), learned online."""
        ...

    @property
    def wait_timeout(self) -> float:
        """The most seconds one wait may last."""
        ...

    @property
    def max_model_requests(self) -> int:
        """Most model requests in one run."""
        ...

    @property
    def trap_text(self) -> str:
        """The text a trapped segment shows the model (``[TRAP][END]``)."""
        ...

    def tool_config(self, config: RunnableConfig | None) -> RunnableConfig | None:
        """The config tools run with, from the run's config."""
        ...

    def monitor(self, id_prefix: str) -> TokenMonitor:
        """A fresh token monitor for one model stream."""
        ...

    def policy(self) -> BatchingPolicy:
        """The stateless delivery policy."""
        ...

    def system_message(self) -> SystemMessage | None:
        """The system message put before the conversation, if any."""
        ...


@dataclass(slots=True)
class Segment:
    """What the model wrote between two deliveries of results.

    Attributes:
        text: The text written.
        calls: The ids of the calls written (complete, valid ones).
        invalid: The ids of the malformed calls written.
        trap: Whether the model trapped (wrote ``[TRAP][END]`` to wait for a result).
    """

    text: str = ""
    calls: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    trap: bool = False


class AsyncRun:
    """One run of asynchronous function calling: model, executor, monitor, transcript.

    A node invocation creates one (inside an open
    :class:`~langgraph_speculative.core.executor.ToolExecutor`) and runs
    :meth:`run_stateless` or :meth:`run_interruptible`; the agent middleware instead
    feeds it the model calls the agent makes (:meth:`relay`). Afterwards
    :meth:`transcript` gives the new messages, :attr:`results` the answers by call id.

    Call ids stay unique over the conversation: an id the model reuses gets a
    ``_dup<n>`` suffix; ids the run makes up start with :attr:`prefix`, derived from the
    journal's task id when there is a journal (so a resumed run makes the same ids).

    Args:
        node: The owner's settings (an ``AsyncToolCallingNode``).
        history: The conversation so far.
        executor: The open executor calls are submitted to; its journal, if any, is
            the run's journal.
        config: The run's config (callbacks, tags, metadata reach the model and tools).
        only_known_tools: Leave calls to tools the executor does not have to the
            graph's own tool node (``until="turn"``, the middleware).
    """

    def __init__(
        self,
        node: RunSettings,
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
        self.tool_config = node.tool_config(config)
        self.segments: list[Segment] = []
        self.calls: dict[str, dict[str, Any]] = {}  # call id -> ToolCall / invalid call
        self.results: dict[str, ToolMessage] = {}
        self.pending: dict[str, None] = {}  # started calls whose result is not absorbed
        self.left: set[str] = set()  # calls left to the graph's own tool node
        self.model_requests = 0
        self.journal = executor.journal
        self.replayed_turns = 0
        if self.journal is not None:  # the same ids when the task runs again after a crash
            digest = hashlib.sha256(self.journal.task_id.encode()).hexdigest()
            self.prefix = f"call_{digest[:8]}"
        else:
            self.prefix = f"call_{uuid.uuid4().hex[:8]}"
        self.only_known_tools = only_known_tools
        self._taken: set[str] | None = None  # call ids of the history (computed lazily)

    # -- dispatch ------------------------------------------------------------------
    def _fresh_id(self, call_id: str, tool: str | None = None, args: Any = None) -> str:
        """``call_id``, or a new id if the model reused one (ids must stay unique).

        On a resumed run, an id the journal holds for another call (a model asked again
        answered differently under the same id) counts as used too.
        """
        if self._taken is None:
            self._taken = {
                c["id"] or ""
                for m in self.history
                if isinstance(m, AIMessage)
                for c in (*m.tool_calls, *m.invalid_tool_calls)
            }
        state = self.journal.state if self.journal is not None else None
        if (
            call_id
            and call_id not in self.calls
            and call_id not in self._taken
            and call_id not in self.executor.ledger
            and not (
                state is not None
                and isinstance(args, Mapping)
                and state.conflicts(call_id, tool or "", args)
            )
        ):
            return call_id
        n = 1
        while True:
            candidate = f"{call_id or self.prefix}_dup{n}"
            if (
                candidate not in self.calls
                and candidate not in self._taken
                and candidate not in self.executor.ledger
                and not (
                    state is not None
                    and isinstance(args, Mapping)
                    and state.conflicts(candidate, tool or "", args)
                )
            ):
                return candidate
            n += 1

    def dispatch(self, call_id: str, name: str, args: dict[str, Any], seg: Segment) -> None:
        """Start one complete call (or leave it to the graph's tool node)."""
        call = tool_call(name=name, args=args, id=call_id)
        self.calls[call_id] = dict(call)
        seg.calls.append(call_id)
        if self.only_known_tools and name not in self.executor.tools_by_name:
            self.left.add(call_id)  # for the graph's own tool node
            return
        self.pending[call_id] = None
        self.executor.submit(call, config=self.tool_config)

    def dispatch_invalid(
        self, call_id: str, name: str | None, raw: Any, error: str | None, seg: Segment
    ) -> None:
        """Answer one malformed call with an error result."""
        self.calls[call_id] = {
            "name": name,
            "args": raw,
            "id": call_id,
            "error": error,
            "type": "invalid_tool_call",
        }
        seg.invalid.append(call_id)
        self.pending[call_id] = None
        self.executor.reject(call_id, name, f"malformed tool call: {error}")

    def handle(self, events: Sequence[MonitorEvent], seg: Segment) -> None:
        """Act on the token monitor's events: start calls, answer malformed ones, keep text.

        Args:
            events: The events of one chunk (or of the stream's end).
            seg: The segment the events belong to.
        """
        for event in events:
            if isinstance(event, CallComplete):
                call_id = self._fresh_id(
                    event.call["id"] or "", event.call["name"], event.call["args"]
                )
                self.dispatch(call_id, event.call["name"], event.call["args"], seg)
            elif isinstance(event, CallMalformed):
                call_id = self._fresh_id(event.id or f"{self.prefix}_bad{event.index}")
                self.dispatch_invalid(call_id, event.name, event.raw, event.error, seg)
            elif isinstance(event, TextDelta):
                seg.text += event.text
            elif isinstance(event, Trap):
                seg.trap = True

    def absorb(self, completions: Sequence[Completion]) -> list[ToolMessage]:
        """Record finished calls; re-raise the first unhandled tool error after recording all."""
        out: list[ToolMessage] = []
        error: BaseException | None = None
        for done in completions:
            self.pending.pop(done.call_id, None)
            if done.error is not None:
                error = error or done.error
                continue
            assert done.message is not None
            self.results[done.call_id] = done.message
            self.node.estimator.observe_tool(done.record)
            out.append(done.message)
        if error is not None:
            raise error
        return out

    def drain(self) -> int:
        """Absorb the completions already queued; return how many there were."""
        return len(self.absorb(self.executor.ready()))

    async def next_completion(self) -> Completion:
        """The next finished call, waiting at most the node's ``wait_timeout``."""
        return await self.executor.next_completion(self.node.wait_timeout)

    async def wait_all(self) -> None:
        """Wait until every started call has finished."""
        while self.pending:
            self.absorb([await self.next_completion()])
            self.drain()

    def outstanding(self) -> list[CallRecord]:
        """Ledger records of the started calls whose result has not arrived."""
        get = self.executor.ledger.get
        return [get(call_id) for call_id in self.pending]

    def count_request(self) -> None:
        """Count one more model request.

        Raises:
            RequestLimitError: If that is more than the owner's ``max_model_requests``.
        """
        self.model_requests += 1
        limit = self.node.max_model_requests
        if self.model_requests > limit:
            raise RequestLimitError(
                f"the model made {limit} requests without a final "
                "answer; raise max_model_requests if this is expected",
                limit=limit,
            )

    def describe(self) -> str:
        """What the run waits on, for error messages."""
        return f"model request {self.model_requests}; {self.executor.describe_unfinished()}"

    # -- transcript ----------------------------------------------------------------
    def segment_message(self, seg: Segment, message_id: str | None = None) -> AIMessage:
        """The ``AIMessage`` of one segment: its text and its calls (valid and malformed)."""
        return AIMessage(
            content=seg.text,
            tool_calls=[self.calls[c] for c in seg.calls],
            invalid_tool_calls=[self.calls[c] for c in seg.invalid],
            id=message_id,
        )

    def transcript(self, *, for_model: bool) -> list[BaseMessage]:
        """Messages of this run: each segment followed by the answers to its calls.

        For the model, calls still running are answered by pending placeholders and trap
        segments are kept; for the graph state, traps are dropped, and calls left to the
        graph's tool node get no answer. Empty segments are always dropped.

        Message ids are deterministic: a segment with calls is ``ai-<first call id>``, a
        text segment after calls ``ai-after-<last call id>-<n>``, results
        ``tool-result-<call id>``; so the same output re-applied with ``add_messages``
        replaces instead of duplicating.
        """
        out: list[BaseMessage] = []
        last_call: str | None = None
        after = 0
        for seg in self.segments:
            if not (seg.text.strip() or seg.calls or seg.invalid or (for_model and seg.trap)):
                continue  # nothing said (an interruptible segment the model left empty)
            ids = (*seg.calls, *seg.invalid)
            if ids:
                message_id: str | None = f"ai-{ids[0]}"
                last_call, after = ids[-1], 0
            elif last_call is not None:
                after += 1
                message_id = f"ai-after-{last_call}-{after}"
            else:
                message_id = None
            ai = self.segment_message(seg, message_id)
            if for_model and seg.trap and not ids:
                ai = AIMessage(content=seg.text + self.node.trap_text)
            out.append(ai)
            for cid in ids:
                if cid in self.left:
                    continue
                msg = self.results.get(cid)
                if msg is None:
                    if not for_model:
                        continue
                    msg = pending_placeholder(cid, str(self.calls[cid].get("name") or ""))
                out.append(msg)
        return out

    def prompt(self) -> list[BaseMessage]:
        """What the model is asked with: system message, history, this run's transcript."""
        messages = [*self.history, *self.transcript(for_model=True)]
        if self.node.cml:
            messages = to_cml_transcript(messages)
        system = self.node.system_message()
        return [system, *messages] if system is not None else messages

    # -- a model call the agent makes (the middleware) ------------------------------
    async def relay(self, chunks: AsyncIterable[Any]) -> AIMessage:
        """Stream one model call someone else makes, starting its calls as they complete.

        Args:
            chunks: The model's stream (``astream``), not yet iterated; whole messages
                (from a model that does not stream) count as one chunk.

        Returns:
            The call's ``AIMessage`` (this run's call ids, the stream's metadata and id).

        Raises:
            WaitTimeoutError: If the next chunk takes longer than ``wait_timeout``.
        """
        seg = Segment()
        self.segments.append(seg)
        monitor = self.node.monitor(f"{self.prefix}m{len(self.segments)}")
        merged: AIMessageChunk | None = None
        bounded = _bounded(
            chunks, self.node.wait_timeout, "the model's next stream chunk", self.describe
        )
        async with contextlib.aclosing(bounded):
            async for chunk in bounded:
                if isinstance(chunk, AIMessage):  # a chunk, or a whole message if not streaming
                    part = chunk if isinstance(chunk, AIMessageChunk) else _as_chunk(chunk)
                    merged = part if merged is None else merged + part
                    self.handle(monitor.feed(chunk), seg)
        self.handle(monitor.finish(), seg)
        message = self.segment_message(seg)
        if merged is not None:
            message.response_metadata = dict(merged.response_metadata)
            message.usage_metadata = merged.usage_metadata
            message.id = merged.id
        return message

    # -- the stateless back-end ----------------------------------------------------
    def saved_turn(self, index: int) -> TurnRecord | None:
        """The journaled turn ``index`` of a crashed run of this task, if there is one."""
        state = self.journal.state if self.journal is not None else None
        return state.turns.get(index) if state is not None else None

    def replay(self, turn: TurnRecord) -> Segment:
        """Play a journaled model turn again instead of asking the model."""
        seg = Segment(text=turn.text, trap=turn.trap)
        self.segments.append(seg)
        for call in turn.calls:
            self.dispatch(call["id"], call["name"], dict(call["args"]), seg)
        for bad in turn.invalid:
            self.dispatch_invalid(bad["id"], bad["name"], bad["args"], bad["error"], seg)
        self.replayed_turns += 1
        return seg

    async def record_turn(self, seg: Segment, seen: Sequence[str]) -> None:
        """Make a completed turn durable before anything acts on it further."""
        if self.journal is None:
            return
        turn = TurnRecord(
            index=self.model_requests,
            text=seg.text,
            calls=tuple(self.calls[c] for c in seg.calls),
            invalid=tuple(self.calls[c] for c in seg.invalid),
            trap=seg.trap,
            seen=tuple(seen),
        )
        # a turn whose every call may simply run again needs no write of its own (it goes
        # with the next durable record); otherwise a resumed run must replay it exactly
        tools = self.executor.tools_by_name
        durable = bool(turn.invalid) or not all(
            c["name"] in tools and is_idempotent_tool(tools[c["name"]]) for c in turn.calls
        )
        await self.journal.turn(turn, durable=durable)

    async def stream_turn(self) -> Segment:
        """One stateless model request: stream it, starting calls as they complete.

        A turn a crashed run of the task journaled is replayed instead of asked again.

        Returns:
            The turn's segment.
        """
        self.count_request()
        saved = self.saved_turn(self.model_requests)
        if saved is not None:
            return self.replay(saved)
        if self.journal is not None:  # what the model is about to see is durable first
            await self.journal.flush()
        seen = list(self.results)  # the results this request shows the model
        prompt = self.prompt()
        seg = Segment()
        self.segments.append(seg)
        monitor = self.node.monitor(f"{self.prefix}r{self.model_requests}")
        started = time.perf_counter()
        first = True
        chunks = _bounded(
            self.node.bound_model.astream(prompt, self.config),
            self.node.wait_timeout,
            "the model's next stream chunk",
            self.describe,
        )
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                if first:
                    self.node.estimator.observe_ttft((time.perf_counter() - started) * 1e3)
                    first = False
                if isinstance(chunk, AIMessage):  # a chunk, or a whole message if not streaming
                    self.handle(monitor.feed(chunk), seg)
        self.handle(monitor.finish(), seg)
        await self.record_turn(seg, seen)
        return seg

    async def run_stateless(self, until: Literal["answer", "turn"]) -> None:
        """The stateless back-end: model requests, results delivered in the next one.

        Args:
            until: ``answer``: ask again until the model answers with every result in
                view. ``turn``: one model turn, then wait for the calls it started.

        Raises:
            StalledError: If the model traps with nothing outstanding.
        """
        policy = self.node.policy()
        while True:
            seg = await self.stream_turn()
            if until == "turn":
                await self.wait_all()
                return
            # results the model has not seen: those that arrived while it streamed
            arrived = self.drain()
            if self.saved_turn(self.model_requests + 1) is not None:
                continue  # resuming: the next turn is journaled, whatever arrived
            while self.pending and not policy.request_now(self.outstanding(), arrived=arrived):
                self.absorb([await self.next_completion()])
                arrived += 1 + self.drain()
            if seg.calls or seg.invalid:
                continue
            if seg.trap:
                if not arrived and not self.pending:
                    raise StalledError(
                        "the model trapped (wrote [TRAP][END] to wait for a result) but no "
                        "call is outstanding and no new result arrived: nothing would wake it"
                    )
                continue
            if not arrived and not self.pending:
                return  # the answer, written with every result in view
            # the model answered while results were missing: let it answer with them

    # -- the interruptible back-end ------------------------------------------------
    async def run_interruptible(self) -> None:
        """The interruptible back-end: sessions, results injected at safe points.

        Raises:
            SpeculativeError: If the model cannot open sessions.
            StalledError: If the session waits with nothing outstanding.
        """
        model = self.node.model
        open_session = getattr(model, "open_session", None)
        if not callable(open_session):
            raise SpeculativeError(f"{type(model).__name__} cannot open interruptible sessions")
        manager = InterruptManager()
        while True:
            self.count_request()
            prompt = self.prompt()
            session = open_session(prompt, tools=self.node.tools)
            await self._session(session, prompt, manager)
            manager.add(self.executor.ready())
            late = self.absorb(manager.release(in_critical_section=False))
            if not late and not self.pending:
                return
            # the model answered while results were missing (or arrived too late to be
            # injected): wait for them all, then let it answer in a new session
            await self.wait_all()

    async def _session(
        self, session: Any, prompt: list[BaseMessage], manager: InterruptManager
    ) -> None:
        """Stream one interruptible session; deliver results at safe points meanwhile."""
        monitor = self.node.monitor(f"{self.prefix}s{self.model_requests}")
        segments = self.segments
        segments.append(Segment())
        quiet = True  # no delivery since the model last started a call
        injected = 0  # messages injected into this session

        def deliver() -> None:
            nonlocal quiet, injected
            ready = manager.release(in_critical_section=monitor.in_call)
            if ready:
                messages = self.absorb(ready)
                if messages:
                    session.inject(messages)
                    injected += len(messages)
                    quiet = False
                    segments.append(Segment())

        def stalled() -> bool:
            """The session waits, has read every result, and no result is coming."""
            absorbed = getattr(session, "absorbed", None)
            return (
                getattr(session, "waiting", None) is True
                and isinstance(absorbed, int)
                and absorbed >= injected
                and not self.pending
                and not manager
            )

        async def watch() -> None:
            while not stalled():
                await asyncio.sleep(_STALL_POLL_S)
            raise StalledError(
                "the model session waits for a result (trapped) but no call is "
                "outstanding and every result was delivered: nothing would wake it"
            )

        async def pump() -> None:
            while True:  # bounded: the stream's chunks are (a trap waits for a result)
                manager.add([await self.executor.next_completion()])
                manager.add(self.executor.ready())
                deliver()

        stream = session.__aiter__()

        async def consume() -> None:
            nonlocal quiet
            chunks = _bounded(
                stream, self.node.wait_timeout, "the model session's next chunk", self.describe
            )
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    events = monitor.feed(chunk)  # before any await: the pump must see in_call
                    if events:
                        self.handle(events, segments[-1])
                        for event in events:
                            if isinstance(event, CallComplete | CallMalformed):
                                quiet = True
                            elif (
                                isinstance(event, Trap) and quiet and not (self.pending or manager)
                            ):
                                raise StalledError(
                                    "the model trapped (wrote [TRAP][END] to wait for a result) "
                                    "but no call is outstanding: nothing would wake it"
                                )
                    deliver()
                    if isinstance(chunk.content, str):
                        await tracer.on_llm_new_token(
                            chunk.content, chunk=ChatGenerationChunk(message=chunk)
                        )
            self.handle(monitor.finish(), segments[-1])

        callbacks = get_async_callback_manager_for_config(self.config or {})
        (tracer,) = await callbacks.on_chat_model_start(
            {"name": type(self.node.model).__name__}, [prompt], invocation_params={"session": True}
        )
        pumping = asyncio.create_task(pump())
        streaming = asyncio.create_task(consume())
        tasks = [streaming, pumping]
        if hasattr(session, "waiting"):  # else only wait_timeout bounds a silent wait
            tasks.append(asyncio.create_task(watch()))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if pumping.done():
                pumping.result()  # an unhandled tool error: it ends the run
            if not streaming.done():
                tasks[-1].result()  # the watcher: stalled, nothing can wake the session
            streaming.result()
        except BaseException as exc:
            await tracer.on_llm_error(exc)
            raise
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        final = AIMessage(content=monitor.text, tool_calls=monitor.calls)
        await tracer.on_llm_end(LLMResult(generations=[[ChatGeneration(message=final)]]))


def _as_chunk(message: AIMessage) -> AIMessageChunk:
    """A whole ``AIMessage`` (from a model that does not stream) as one chunk."""
    return AIMessageChunk(
        content=message.content,
        tool_call_chunks=[
            {
                "name": c["name"],
                "args": json.dumps(c["args"]),
                "id": c["id"],
                "index": i,
                "type": "tool_call_chunk",
            }
            for i, c in enumerate(message.tool_calls)
        ],
        response_metadata=message.response_metadata,
        usage_metadata=message.usage_metadata,
        id=message.id,
    )
