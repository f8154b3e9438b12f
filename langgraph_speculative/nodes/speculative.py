"""Speculative interaction: act while the user is still talking, commit or abort at the end.

The agent does not wait for the user's final words. Partial input arrives on an
:class:`~langgraph_speculative.input_stream.InputStream`; the model, prompted in the
clock-based interaction format (:mod:`langgraph_speculative.interaction_format`), calls
tools on what it has heard so far, revises and removes calls as the transcript changes,
and confirms its plan once the input is final. Safe tools run speculatively; unsafe ones
are held by the executor until the commit point.

The graph (:func:`create_speculative_agent`)::

    START -> listen -> (commit | abort) -> respond -> END

- ``listen`` feeds input updates and speculative results to the model until it confirms
  its plan after the final update;
- the router takes the **commit** edge when every speculative call was confirmed, the
  **abort** edge otherwise; both settle the calls
  (:meth:`~langgraph_speculative.speculation.SpeculationManager.commit`): confirmed results
  are adopted, everything else is cancelled and its results dropped;
- ``respond`` delivers the final plan's results and returns the model's answer.

What lives across the nodes (the input stream, the executor and its running calls, the
model session) is a :class:`SpeculativeRun`, passed as LangGraph's runtime ``context``
(which is not checkpointed): open it with ``async with`` around the run, so no call
outlives it.

Example:
    ```python
    import asyncio
    from langchain_core.tools import tool
    from langgraph_speculative import label_tool
    from langgraph_speculative.integrations import LatencyModel, ScriptedChatModel
    from langgraph_speculative.integrations import PlannedCall, ScriptedTask
    from langgraph_speculative.integrations.scripted_listener import ListeningResponder
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
    graph = create_speculative_agent(model, [get_weather]).compile()

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

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.tools import BaseTool
from langchain_core.tools import tool as as_tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.runtime import Runtime

from langgraph_speculative.errors import SpeculativeError
from langgraph_speculative.executor import Completion, ErrorHandler, ToolExecutor
from langgraph_speculative.input_stream import InputStream
from langgraph_speculative.interaction_format import (
    Action,
    Answer,
    Call,
    Confirm,
    Item,
    ModelAction,
    Remove,
    Revise,
    ToolResult,
    event_from_input,
    interaction_system_prompt,
    parse_actions,
    to_messages,
)
from langgraph_speculative.ledger import CallLedger, Speculation, canonical_json
from langgraph_speculative.speculation import CommitOutcome, SpeculationManager

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
        commit: What the commit point decided (adopted, started, aborted).
    """

    final_plan: list[dict[str, Any]]
    commit: dict[str, Any]


class SpeculativeRun:
    """The live part of one speculative interaction (see module docs).

    Args:
        model: A chat model prompted with the interaction format. Models offering
            ``open_session`` (interruptible: realtime APIs, local decoders) hear every
            update as it arrives; others get a new request per batch of updates.
        tools: The tools, labelled safe/unsafe (:func:`~langgraph_speculative.label_tool`;
            unlabelled tools are unsafe).
        input: The input stream the app pushes to (a new one by default).
        system_prompt: Extra instructions before the format's own.
        max_concurrency: Most tool calls at once.
        timeout: Per-call timeout in seconds.
        handle_tool_errors: As ``ToolNode``'s; by default errors become error results.

    Attributes:
        stats: ``launched``/``revised``/``withdrawn``/``committed``/``aborted`` (from the
            speculation manager) plus ``results_shown`` (results shown to the model).
        items: The interaction transcript (events and the model's actions), for logs and
            training data.
    """

    def __init__(
        self,
        model: BaseChatModel,
        tools: Sequence[BaseTool | Callable[..., Any]],
        *,
        input: InputStream | None = None,
        system_prompt: str | None = None,
        max_concurrency: int = 16,
        timeout: float | None = None,
        handle_tool_errors: ErrorHandler = True,
    ) -> None:
        self.model = model
        self.tools = [t if isinstance(t, BaseTool) else as_tool(t) for t in tools]
        self.ledger = CallLedger()
        self.input = input if input is not None else InputStream(ledger=self.ledger)
        self.executor = ToolExecutor(
            self.tools,
            ledger=self.ledger,
            max_concurrency=max_concurrency,
            timeout=timeout,
            handle_tool_errors=handle_tool_errors,
        )
        self.speculation = SpeculationManager(self.executor)
        self.system_prompt = system_prompt
        self.items: list[Item] = []
        self.t0 = time.time()
        self.commit_at: float | None = None
        self.final_at: float | None = None
        self.answer_at: float | None = None
        self.outcome: CommitOutcome | None = None
        self._counts: Counter[str] = Counter()
        self._driver: _Driver | None = None
        self._final_seen = False
        self._tasks: list[asyncio.Task[None]] = []
        self._held: list[Completion] = []
        self._after_final: list[str] = []

    @property
    def stats(self) -> dict[str, int]:
        """Counters of the interaction (see class docs)."""
        return {**self.speculation.stats, **self._counts}

    async def __aenter__(self) -> SpeculativeRun:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the model session and cancel every call still running."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._driver is not None:
            await self._driver.aclose()
        await self.executor.aclose()

    # -- what the model sees ----------------------------------------------------------
    def system_message(self) -> SystemMessage:
        """The interaction-format prompt (plus the app's instructions)."""
        text = interaction_system_prompt(self.tools)
        if self.system_prompt:
            text = self.system_prompt + "\n\n" + text
        return SystemMessage(text)

    def _show(self, items: Sequence[Item]) -> None:
        self.items.extend(items)
        assert self._driver is not None
        self._driver.show(items)

    def _show_result(self, done: Completion, call_id: str) -> None:
        """Show a result to the model (callers decide whether it may see it)."""
        if done.message is None:
            return
        self._counts["results_shown"] += 1
        content = done.message.content
        status: Literal["success", "error", "cancelled"] = (
            "cancelled"
            if done.record.state.value == "cancelled"
            else "error"
            if done.message.status == "error"
            else "success"
        )
        text = content if isinstance(content, str) else str(content)
        self._show([ToolResult(call_id, text, time.time(), status)])

    def leaked_results(self) -> int:
        """Results shown to the model after the final input for calls outside the final plan.

        Those would be results of aborted calls: an independent check of the transcript
        (it must be 0).
        """
        final_at = self.final_at
        plan = set(self.speculation.final_records())
        return sum(
            1
            for item in self.items
            if isinstance(item, ToolResult)
            and final_at is not None
            and item.at >= final_at
            and item.call_id not in plan
        )

    def unsafe_before_commit(self) -> int:
        """Unsafe calls that started before the commit point (from the ledger); must be 0."""
        if self.commit_at is None:
            return sum(1 for r in self.ledger if not r.safe and r.started_at is not None)
        return sum(
            1
            for r in self.ledger
            if not r.safe and r.started_at is not None and r.started_at < self.commit_at
        )

    # -- listen -----------------------------------------------------------------------
    async def listen(self, history: Sequence[BaseMessage]) -> list[ToolCall]:
        """Feed input and speculative results to the model until it confirms its plan.

        Returns:
            The final plan (the confirmed calls with their latest arguments).

        Raises:
            SpeculativeError: If the model breaks the protocol (confirms before the final
                input, answers before confirming) or the input stream closes early.
        """
        self._driver = _make_driver(self, history)
        self._tasks.append(asyncio.create_task(self._pump_input()))
        self._tasks.append(asyncio.create_task(self._pump_results()))
        while True:
            for action in await self._driver.actions():
                plan = self._apply(action)
                if plan is not None:
                    return plan

    async def _pump_input(self) -> None:
        async for update in self.input.follow():
            if update.final:
                self._final_seen = True
                self.final_at = update.at
            self._show([event_from_input(update)])

    def _logical_of(self, record_id: str) -> str | None:
        for cid, rec in self.speculation.live().items():
            if rec.id == record_id:
                return cid
        return None

    def _apply(self, action: Action) -> list[ToolCall] | None:
        self.items.append(ModelAction(action, time.time()))
        if isinstance(action, Call | Revise):
            if self._final_seen and action.id not in self._after_final:
                self._after_final.append(action.id)
            self.speculation.propose(
                ToolCall(
                    name=action.name, args=dict(action.arguments), id=action.id, type="tool_call"
                ),
                depends_on=action.depends_on,
            )
        elif isinstance(action, Remove):
            self.speculation.withdraw(action.id)
        elif isinstance(action, Confirm):
            if not self._final_seen:
                raise SpeculativeError("the model confirmed its plan before the final input")
            plan = []
            # the plan: the confirmed calls, plus calls made after the final input
            for cid in dict.fromkeys([*action.ids, *self._after_final]):
                rec = self.speculation.record_of(cid)
                if rec is None:
                    raise SpeculativeError(f"the model confirmed unknown call {cid!r}")
                plan.append(ToolCall(name=rec.tool, args=dict(rec.args), id=cid, type="tool_call"))
            return plan
        elif isinstance(action, Answer):
            raise SpeculativeError("the model answered before confirming its plan")
        return None

    def would_abort(self, plan: Sequence[ToolCall]) -> bool:
        """Whether settling ``plan`` aborts any speculative call (the abort edge)."""
        wanted = Counter((c["name"], canonical_json(c["args"])) for c in plan)
        for rec in self.ledger:
            if rec.speculation is Speculation.SPECULATIVE:
                key = (rec.tool, canonical_json(rec.args))
                if wanted[key] > 0:
                    wanted[key] -= 1
                else:
                    return True
        return False

    # -- commit point -------------------------------------------------------------------
    def settle(self, plan: Sequence[ToolCall]) -> CommitOutcome:
        """Commit the plan: adopt confirmed results, start the rest, abort everything else."""
        self.commit_at = time.time()
        self.outcome = self.speculation.commit(plan)
        for done in self._held:
            self._deliver_final(done)
        self._held.clear()
        return self.outcome

    def _deliver_final(self, done: Completion) -> None:
        """After the commit point, only the final plan's results reach the model."""
        for cid, rid in self.speculation.final_records().items():
            if rid == done.call_id:
                self._show_result(done, cid)
                return
        # anything else is an aborted call's (late) result: dropped

    async def _pump_results(self) -> None:
        while True:
            done = await self.executor.next_completion()
            if self.commit_at is not None:
                self._deliver_final(done)
            elif self._final_seen:
                self._held.append(done)  # until the commit point decides
            else:
                logical = self._logical_of(done.call_id)
                if logical is not None and done.record.speculation is not Speculation.ABORTED:
                    self._show_result(done, logical)

    # -- respond ------------------------------------------------------------------------
    async def respond(self, plan: Sequence[ToolCall]) -> tuple[list[ToolMessage], str]:
        """Deliver the plan's results and wait for the model's answer.

        Returns:
            The plan's results and the answer text.
        """
        assert self._driver is not None
        ids = [c["id"] or "" for c in plan]
        while True:
            for action in await self._driver.actions():
                self.items.append(ModelAction(action, time.time()))
                if isinstance(action, Call):  # after the commit point: runs at once
                    self.speculation.add_final(
                        ToolCall(name=action.name, args=dict(action.arguments), id=action.id)
                    )
                    ids.append(action.id)
                elif isinstance(action, Revise | Remove | Confirm):
                    raise SpeculativeError(
                        f"the model wrote {type(action).__name__.upper()} after the commit point"
                    )
                elif isinstance(action, Answer):
                    self.answer_at = time.time()
                    results = [await self.speculation.result(cid) for cid in ids]
                    return results, action.text


class _Driver:
    """Talks to the model: shows it events, reads its actions."""

    def show(self, items: Sequence[Item]) -> None:
        raise NotImplementedError

    async def actions(self) -> list[Action]:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class _SessionDriver(_Driver):
    """An interruptible model: one session, events injected as they happen."""

    def __init__(self, run: SpeculativeRun, history: Sequence[BaseMessage]) -> None:
        self.run = run
        open_session = run.model.open_session  # type: ignore[attr-defined]
        self.session = open_session([run.system_message(), *history], tools=run.tools)
        self._chunks: AsyncIterator[AIMessageChunk] = aiter(self.session)
        self._buffer = ""

    def show(self, items: Sequence[Item]) -> None:
        self.session.inject(to_messages(items, t0=self.run.t0))

    async def actions(self) -> list[Action]:
        while "\n" not in self._buffer:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                if self._buffer.strip():
                    line, self._buffer = self._buffer, ""
                    return parse_actions(line)
                raise SpeculativeError("the model session ended without an answer") from None
            if isinstance(chunk.content, str):
                self._buffer += chunk.content
        line, _, self._buffer = self._buffer.partition("\n")
        return parse_actions(line) if line.strip() else []

    async def aclose(self) -> None:
        closer = getattr(self._chunks, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


class _RequestDriver(_Driver):
    """A stateless model: a new request whenever there is something new to show."""

    def __init__(self, run: SpeculativeRun, history: Sequence[BaseMessage]) -> None:
        self.run = run
        self.history = list(history)
        self._news = asyncio.Event()
        self._news.set()

    def show(self, items: Sequence[Item]) -> None:
        self._news.set()

    async def actions(self) -> list[Action]:
        await self._news.wait()
        self._news.clear()
        prompt = [
            self.run.system_message(),
            *self.history,
            *to_messages(self.run.items, t0=self.run.t0),
        ]
        text = ""
        async for chunk in self.run.model.astream(prompt):
            if isinstance(chunk.content, str):
                text += chunk.content
        return parse_actions(text) if text.strip() else []


def _make_driver(run: SpeculativeRun, history: Sequence[BaseMessage]) -> _Driver:
    if (
        callable(getattr(run.model, "open_session", None))
        and getattr(run.model, "backend", "interruptible") == "interruptible"
    ):
        return _SessionDriver(run, history)
    return _RequestDriver(run, history)


def _run_of(runtime: Runtime[Any]) -> SpeculativeRun:
    run = runtime.context
    if not isinstance(run, SpeculativeRun):
        raise SpeculativeError(
            "a speculative agent needs its SpeculativeRun as the runtime context: "
            "graph.ainvoke(state, context=run)"
        )
    return run


async def _listen(state: SpeculativeState, runtime: Runtime[Any]) -> dict[str, Any]:
    run = _run_of(runtime)
    plan = await run.listen(state["messages"])
    final = run.input.latest
    said: list[AnyMessage] = []
    if final is not None:
        said.append(HumanMessage(final.text, id=f"input-{final.seq}"))
    return {"messages": said, "final_plan": [dict(c) for c in plan]}


def route_commit(state: SpeculativeState, runtime: Runtime[Any]) -> Literal["commit", "abort"]:
    """The commit edge when every speculative call is confirmed, the abort edge otherwise."""
    plan = [ToolCall(**c) for c in state["final_plan"]]  # type: ignore[typeddict-item]
    return "abort" if _run_of(runtime).would_abort(plan) else "commit"


async def _settle(state: SpeculativeState, runtime: Runtime[Any]) -> dict[str, Any]:
    run = _run_of(runtime)
    plan = [ToolCall(**c) for c in state["final_plan"]]  # type: ignore[typeddict-item]
    outcome = run.settle(plan)
    message = AIMessage(content="", tool_calls=plan)
    return {
        "messages": [message],
        "commit": {
            "adopted": dict(outcome.adopted),
            "started": list(outcome.started),
            "aborted": list(outcome.aborted),
        },
    }


async def _respond(state: SpeculativeState, runtime: Runtime[Any]) -> dict[str, Any]:
    run = _run_of(runtime)
    plan = [ToolCall(**c) for c in state["final_plan"]]  # type: ignore[typeddict-item]
    results, answer = await run.respond(plan)
    return {"messages": [*results, AIMessage(answer)]}


def create_speculative_agent(
    model: BaseChatModel, tools: Sequence[BaseTool | Callable[..., Any]]
) -> StateGraph[SpeculativeState]:
    """Build the speculative agent graph (uncompiled).

    ``START -> listen -> (commit | abort) -> respond -> END`` on :class:`SpeculativeState`.
    Run it with a :class:`SpeculativeRun` as the context: ``graph.ainvoke({"messages":
    []}, context=run)``. ``model`` and ``tools`` document the graph; the run carries the
    live ones.

    Args:
        model: The chat model (for the graph's documentation and checks).
        tools: The tools.

    Returns:
        The uncompiled graph.
    """
    del model, tools  # the live model and tools travel in the run (runtime context)
    builder = StateGraph(SpeculativeState)
    builder.add_node("listen", _listen)
    builder.add_node("commit", _settle)
    builder.add_node("abort", _settle)
    builder.add_node("respond", _respond)
    builder.add_edge(START, "listen")
    builder.add_conditional_edges("listen", route_commit, ["commit", "abort"])
    builder.add_edge("commit", "respond")
    builder.add_edge("abort", "respond")
    builder.add_edge("respond", END)
    return builder
