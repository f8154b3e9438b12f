"""The live part of one speculative interaction: :class:`SpeculativeRun`.

A speculative agent (:func:`~langgraph_speculative.nodes.speculative.create_speculative_agent`)
acts while the user is still talking. What lives across its nodes (the input stream, the
executor and its running calls, the model session) is a :class:`SpeculativeRun`, passed as
LangGraph's runtime ``context`` (which is not checkpointed): open it with ``async with``
around the run, so no call outlives it. The run talks to the model through a driver (an
interruptible session, or a request per batch of updates for a stateless model).

What the model sees: every input update and environment event until the final input;
results of its live speculative calls as they finish (a call served by the result cache
gets its result under the id that asked for it; a call cancelled because one it depended
on changed gets ``RESULT <id> (cancelled)``); between the final input and the commit point
nothing (results wait); after it, every result of the plan it has not seen yet (so it
always can answer), and nothing of an aborted call. Calls the model began after it had
heard the final input join the plan without ``CONFIRM``; calls it began before are kept
only if confirmed.

Failures end the run with an error, never a hang: a line that is not an action
(:class:`~langgraph_speculative.errors.InteractionFormatError`), a protocol breach
(:class:`~langgraph_speculative.errors.SpeculativeError`), the input stream closing before
the final input, an unhandled tool error of a call the model still stands on, and a model
that waits when nothing more can arrive
(:class:`~langgraph_speculative.errors.StalledError`, raised at once: a ``PAUSE`` after
the final input or after every result is in; for an interruptible session this needs it
to report what it has read, ``absorbed``, and, to see a silent wait, ``waiting``; see
:class:`~langgraph_speculative.integrations.sim.sessions.InterruptibleSession`). Every other
wait (the model's next chunk, a new event to show it, a result ``respond`` needs) is
bounded by the run's ``wait_timeout``
(:class:`~langgraph_speculative.errors.WaitTimeoutError`, naming what was awaited).

Crash and resume. Compile the graph with an
:class:`~langgraph_speculative.durability.checkpointer.InterruptAwareCheckpointer` and the run keeps
a write-ahead journal (on the ``listen`` task; the state's ``run`` key points later nodes
to it) of the input updates it hears, the model's completed turns, the calls started and
finished, and the commit point. After a crash, resume the thread with a new run::

    async with SpeculativeRun(model, tools) as run:
        await run.resume(graph, config)  # the updates already said are back on run.input
        ...  # push what the user says next (unless run.input.final)
        out = await graph.ainvoke(None, config, context=run)

The run takes the crashed run's id, hears the journaled updates again, replays the
journaled turns instead of asking the model (a new model session is opened on the
replayed transcript), reuses every journaled result (never re-run), keeps unsafe calls
held until the commit point, settles the commit point again exactly as journaled (the
decisions stand; a resumed ``respond`` checks them against the state), and shows the model
no result twice. A call running at the crash re-runs only when safe, idempotent or keyed
(same idempotency key), else it is answered "outcome unknown"
(:mod:`langgraph_speculative.durability.resume`). Turn records are
:class:`~langgraph_speculative.durability.resume.TurnRecord` s whose ``text`` is a JSON document
(``stage``: ``listen``, ``commit`` or ``respond``; ``heard_final``; ``actions`` in the
interaction format; the run's id and clock). See the how-to "Resume a speculative
interaction after a crash" for a runnable example.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, SystemMessage, ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langchain_core.tools import tool as as_tool

from langgraph_speculative.core.executor import (
    DEFAULT_WAIT_TIMEOUT_S,
    ErrorHandler,
    ToolExecutor,
    check_wait_timeout,
    result_message_id,
)
from langgraph_speculative.core.ledger import (
    CallLedger,
    CallRecord,
    CallState,
    InputRecord,
    Speculation,
)
from langgraph_speculative.durability.checkpointer import InterruptAwareCheckpointer, journal_for
from langgraph_speculative.durability.journal import JournalRecord, RunJournal
from langgraph_speculative.durability.resume import TurnRecord
from langgraph_speculative.errors import (
    JournalCorruptError,
    SpeculativeError,
    StalledError,
    WaitTimeoutError,
)
from langgraph_speculative.speculative._drivers import Driver, RequestDriver, make_driver
from langgraph_speculative.speculative.input_stream import InputStream, InputUpdate
from langgraph_speculative.speculative.interaction_format import (
    Action,
    Answer,
    Call,
    Confirm,
    Item,
    ModelAction,
    Pause,
    Remove,
    ResultStatus,
    Revise,
    ToolResult,
    event_from_input,
    parse_actions,
    render_actions,
    to_messages,
)
from langgraph_speculative.speculative.interaction_prompt import interaction_system_prompt
from langgraph_speculative.speculative.manager import CommitOutcome, SpeculationManager

__all__ = ["SpeculativeRun"]


class SpeculativeRun:
    """The live part of one speculative interaction (see module docs).

    Args:
        model: A chat model prompted with the interaction format. Models offering
            ``open_session`` (interruptible: realtime APIs, local decoders) hear every
            update as it arrives; others get a new request per batch of updates (and
            another right away after a reply that did not ``PAUSE``).
        tools: The tools, labelled safe/unsafe (:func:`~langgraph_speculative.label_tool`;
            unlabelled tools are unsafe).
        input: The input stream the app pushes to (a new one, recorded in the run's
            ledger, by default).
        system_prompt: Extra instructions before the format's own.
        max_concurrency: Most tool calls at once.
        timeout: Per-call timeout in seconds.
        handle_tool_errors: As ``ToolNode``'s; by default errors become error results.
            An unhandled error of a call the model still stands on fails the run.
        run_id: Names this interaction in the ids of the messages it adds to the graph
            state (a fresh one by default), so several interactions can share a thread.
        wait_timeout: The most seconds one wait may last (the model's next chunk, a new
            input update or result to show the model, a result ``respond`` needs) before
            it fails with :class:`~langgraph_speculative.errors.WaitTimeoutError`; a
            finite number > 0 (no wait is unbounded). The time a user is silent counts:
            set it above the longest pause you expect.

    Raises:
        ValueError: On a ``wait_timeout`` that is not a finite number > 0.

    Attributes:
        id: The run's id (``run_id``).
        stats: ``launched``/``revised``/``withdrawn``/``committed``/``aborted``/``reused``
            (from the speculation manager) plus ``results_shown`` (results shown to the
            model).
        items: The interaction transcript (events and the model's actions), for logs and
            training data.
        extra_calls: Calls the model made after the commit point.
        final_at: When the user's final update arrived (``time.time()``).
        commit_at: When the commit point was passed.
        answer_at: When the model answered.
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
        run_id: str | None = None,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT_S,
    ) -> None:
        self.wait_timeout = check_wait_timeout(wait_timeout)
        self.model = model
        self.tools = [t if isinstance(t, BaseTool) else as_tool(t) for t in tools]
        self.id = run_id if run_id is not None else uuid.uuid4().hex[:12]
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
        self.extra_calls: list[ToolCall] = []
        self.t0 = time.time()
        self.commit_at: float | None = None
        self.final_at: float | None = None
        self.answer_at: float | None = None
        self.outcome: CommitOutcome | None = None
        self._counts: Counter[str] = Counter()
        self._driver: Driver | None = None
        self._final_seen = False
        self._final_index: int | None = None  # position of the final user input in items
        self._events = 0  # events shown to the model
        self._processed = 0  # completions handled by the result pump
        self._shown: dict[str, str] = {}  # call id -> record whose result the model saw
        self._result_records: dict[int, str] = {}  # index in items -> record shown there
        self._tasks: list[asyncio.Task[None]] = []
        self._after_final: list[str] = []
        self._leftover: list[Action] = []
        self._failure: asyncio.Future[None] | None = None
        # crash safety (see "Crash and resume" in the module docs)
        self.journal: RunJournal | None = None
        self._attached = False
        self._records: list[JournalRecord] = []  # journal of a crashed run, to replay
        self._replaying = False
        self._resumed = False
        self._turn_index = 0
        self._last_turn: tuple[dict[str, Any], int] | None = None  # (meta, events then)
        self._replayed_plan: list[ToolCall] | None = None
        self._replay_queue: list[Action] = []  # actions after the commit point, replayed
        self._replay_counts: Counter[str] = Counter()
        self._journal_started: dict[str, float] = {}  # reused results: when they started
        self._journal_commit_at: float | None = None

    @property
    def stats(self) -> dict[str, int]:
        """Counters of the interaction (see class docs); every counter is present."""
        names = ("launched", "revised", "withdrawn", "committed", "aborted", "reused")
        return {
            **dict.fromkeys(names, 0),
            **self.speculation.stats,
            **self._counts,
            "results_shown": self._counts["results_shown"],
        }

    @property
    def final_heard(self) -> bool:
        """Whether the run has heard the user's final input (and shown it to the model)."""
        return self._final_seen

    @property
    def events_shown(self) -> int:
        """How many events (input updates, results, notices) the model has been shown."""
        return self._events

    @property
    def resumed(self) -> bool:
        """Whether this run took over a crashed run from its journal."""
        return self._resumed

    async def __aenter__(self) -> SpeculativeRun:
        return self

    async def __aexit__(self, *exc: object) -> None:
        kind = exc[0] if exc else None
        crashed = isinstance(kind, type) and not issubclass(
            kind, Exception | asyncio.CancelledError
        )
        await self.aclose(crashed=crashed)

    async def aclose(self, *, crashed: bool = False) -> None:
        """Stop the pumps and the model session and cancel every call still running.

        The run's journal (if any) is closed, releasing the thread for another run; with
        ``crashed`` (the ``async with`` block ended with a ``BaseException`` that is not an
        ``Exception``, as a process going down) it is only detached, as a real crash leaves
        it, so the thread can be resumed.

        Args:
            crashed: Whether the run is going down as in a crash.
        """
        journal, self.journal = self.journal, None
        if journal is not None:
            self.executor.attach_journal(None)  # cancellations of a closing run are not decisions
            if crashed:
                journal.detach()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._failure is not None and not self._failure.done():
            self._failure.cancel()
        if self._driver is not None:
            await self._driver.aclose()
        await self.executor.aclose()
        if journal is not None and not crashed:
            await journal.close()

    # -- what the model sees ----------------------------------------------------------
    def system_message(self) -> SystemMessage:
        """The system message of the model.

        Returns:
            The interaction-format prompt for the run's tools, after the app's
            ``system_prompt`` if any.
        """
        text = interaction_system_prompt(self.tools)
        if self.system_prompt:
            text = self.system_prompt + "\n\n" + text
        return SystemMessage(text)

    def _show(self, items: Sequence[Item]) -> None:
        self.items.extend(items)
        self._events += sum(1 for i in items if not isinstance(i, ModelAction))
        if self._driver is not None:  # None while a journal is replayed: no model yet
            self._driver.show(items)

    def _reveal(self, call_id: str, record: CallRecord, error: BaseException | None = None) -> None:
        """Show a call's result to the model under ``call_id`` (callers check it may)."""
        message = record.result
        if message is None:  # an unhandled tool error: the run fails, as ToolNode would
            self._fail(
                error
                if error is not None
                else SpeculativeError(f"call {call_id!r} failed: {record.error}")
            )
            return
        status: ResultStatus = (
            "cancelled"
            if record.state is CallState.CANCELLED
            else "error"
            if message.status == "error"
            else "success"
        )
        content = message.content
        text = content if isinstance(content, str) else str(content)
        self._shown[call_id] = record.id
        self._counts["results_shown"] += 1
        self._result_records[len(self.items)] = record.id
        self._show([ToolResult(call_id, text, time.time(), status)])

    def _notify_cancelled(self) -> None:
        """Tell the model which of its calls were cancelled in cascade."""
        for cid in self.speculation.drain_cancelled():
            self._shown.pop(cid, None)
            self._show(
                [
                    ToolResult(
                        cid,
                        "Cancelled: a call it depends on was revised or withdrawn.",
                        time.time(),
                        "cancelled",
                    )
                ]
            )

    def leaked_results(self) -> int:
        """Results of calls outside the final plan shown to the model after the final input.

        An independent check of the transcript (it must be 0): every ``RESULT`` after the
        final user input must answer a call of the final plan, from the record serving it
        (never from an aborted record). Cancellation notices carry no result and do not
        count.

        Returns:
            The number of leaked results.
        """
        if self._final_index is None:
            return 0
        plan = self.speculation.final_records()
        leaked = 0
        for index in range(self._final_index + 1, len(self.items)):
            item = self.items[index]
            if not isinstance(item, ToolResult) or item.status == "cancelled":
                continue
            rid = self._result_records.get(index)
            if (
                item.call_id not in plan
                or rid is None
                or rid != plan[item.call_id]
                or self.ledger.get(rid).speculation is Speculation.ABORTED
            ):
                leaked += 1
        return leaked

    def unsafe_before_commit(self) -> int:
        """Unsafe calls that started before the commit point, from the ledger.

        On a resumed run, a call whose saved result was reused counts with the time the
        crashed run started it (from the journal), against the crashed run's commit point.

        Returns:
            Their number (0 unless the safety rule was broken).
        """
        commit_at = self._journal_commit_at or self.commit_at
        count = 0
        for r in self.ledger:
            started = self._journal_started.get(r.id, r.started_at)
            if not r.safe and started is not None and (commit_at is None or started < commit_at):
                count += 1
        return count

    # -- failure, and what is still to come -------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        if self._failure is not None and not self._failure.done():
            self._failure.set_exception(exc)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._fail(task.exception())  # type: ignore[arg-type]

    def nothing_coming(self) -> bool:
        """Whether no input, result or cancellation can reach the model any more.

        Returns:
            ``False`` while more input can come; ``True`` from the final input to the
            commit point (results are held then); after it, whether every completion was
            handled and no unfinished call may run (or depends on one that may not).
        """
        if not self._final_seen:
            return False  # more input comes (or the stream closes: the run fails)
        if self.commit_at is None:
            return True  # results are held from the final input to the commit point
        if self._processed < sum(1 for r in self.ledger if r.state.terminal):
            return False  # completions still queued
        held: set[str] = set()
        for rec in self.ledger:
            if rec.state.terminal:
                continue
            if not rec.may_run or any(d in held for d in rec.depends_on):
                held.add(rec.id)  # an unsafe call waiting for the commit point
                continue
            return False
        return True

    def _waiting_on(self) -> str:
        """What the run is waiting on, for error messages."""
        parts = [
            "final input heard" if self._final_seen else "final input not heard yet",
            "commit point passed" if self.commit_at is not None else "commit point not reached",
            self.executor.describe_unfinished(),
        ]
        return "; ".join(parts)

    async def _watch(self, driver: Driver) -> None:
        """Fail a wait for the model's next actions that cannot end or lasts too long.

        Raises :class:`StalledError` as soon as the driver proves that the model waits
        for something that cannot arrive, and :class:`WaitTimeoutError` when the driver
        made no progress (no chunk, no new request) for :attr:`wait_timeout` seconds.
        """
        loop = asyncio.get_running_loop()
        while True:
            driver.woken.clear()
            if driver.stalled():
                raise StalledError(self.stuck_reason())
            idle = loop.time() - driver.progress_at
            if idle >= self.wait_timeout:
                raise WaitTimeoutError(
                    driver.awaiting, self.wait_timeout, detail=self._waiting_on()
                )
            left = self.wait_timeout - idle
            if driver.polls() and self.nothing_coming():
                left = min(left, _STALL_POLL_S)  # a silent wait is seen only by looking
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await driver.woken.wait()

    def stuck_reason(self) -> str:
        """Why a model that waits now waits forever (the message of a :class:`StalledError`).

        Returns:
            What the model should have done instead of waiting.
        """
        if self.commit_at is None:
            return (
                "the model paused after the final input without confirming its plan "
                "(CONFIRM), and nothing else can arrive"
            )
        return "the model paused after the commit point, but every result is in: it must ANSWER"

    async def _next_actions(self) -> list[Action]:
        """The model's next actions, or the run's failure (a pump or tool error) if first."""
        if self._leftover:
            out, self._leftover = self._leftover, []
            return out
        if self._replay_queue:  # actions after the commit point a crashed run journaled
            out, self._replay_queue = self._replay_queue, []
            return out
        assert self._driver is not None and self._failure is not None
        if self._failure.done():
            self._failure.result()
        driver = self._driver
        driver.touch()
        task: asyncio.Future[list[Action]] = asyncio.ensure_future(driver.actions())
        watcher: asyncio.Future[None] = asyncio.ensure_future(self._watch(driver))
        watcher.add_done_callback(_retrieve)  # it may fail while the model's actions come
        waiting: set[asyncio.Future[Any]] = {task, watcher, self._failure}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                task.add_done_callback(_retrieve)
            watcher.cancel()
            await asyncio.wait((task, watcher))
        if task.done() and not task.cancelled():
            actions = task.result()  # or the model's error (a bad line, a failed session)
            if actions and self.journal is not None:  # a completed model turn
                self._journal_turn("respond" if self.commit_at is not None else "listen", actions)
            return actions
        if self._failure.done():
            self._failure.result()
        watcher.result()  # stalled, or waited too long: raises
        raise SpeculativeError("the model produced no actions")  # pragma: no cover

    # -- listen -----------------------------------------------------------------------
    async def listen(self, history: Sequence[BaseMessage]) -> list[ToolCall]:
        """Feed input and speculative results to the model until it confirms its plan.

        Args:
            history: Earlier messages of the conversation (put before the transcript).

        Returns:
            The final plan (the confirmed calls with their latest arguments, plus the calls
            made after the final input).

        Raises:
            SpeculativeError: If the model breaks the protocol (confirms before the final
                input, confirms an unknown call, answers before confirming), the input
                stream closes before the final input, or ``listen`` already ran.
            StalledError: If the model pauses after the final input (nothing is left to
                wait for: results are held until it confirms).
            InteractionFormatError: If the model writes a line that is not an action.
            WaitTimeoutError: If a wait lasts longer than :attr:`wait_timeout`.
        """
        if self._driver is not None:
            raise SpeculativeError("listen() already ran: a SpeculativeRun serves one interaction")
        self._start(history)
        if self._replayed_plan is not None:  # the crashed run had confirmed its plan
            return self._replayed_plan
        driver = self._driver
        assert driver is not None
        while True:
            actions = await self._next_actions()
            heard_final = driver.heard_final
            if heard_final and actions and all(isinstance(a, Pause) for a in actions):
                # results are held from the final input to CONFIRM (so an aborted call's
                # result can never reach the model): waiting for one now would never end
                raise StalledError(
                    "the model paused after the final input without CONFIRM; after the "
                    "final input it must CONFIRM the calls that stand (results are shown "
                    "after CONFIRM), then CALL what is still missing"
                )
            for index, action in enumerate(actions):
                plan = self._apply(action, heard_final=heard_final)
                if plan is not None:
                    self._leftover = actions[index + 1 :]
                    return plan

    def _start(self, history: Sequence[BaseMessage]) -> None:
        """Replay the journal of a crashed run (if any), open the model, start the pumps."""
        failure: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        failure.add_done_callback(_retrieve)
        self._failure = failure
        after = self._replay(self._records) if self._records else 0
        self._records = []
        transcript = to_messages(self.items, t0=self.t0) if self.items else []
        self._driver = make_driver(self, history, transcript)
        if isinstance(self._driver, RequestDriver) and self._last_turn is not None:
            meta, events = self._last_turn  # ask again as the crashed run would have
            seen = meta.get("events")
            self._driver.events_seen = min(seen, events) if isinstance(seen, int) else events
            actions = parse_actions(meta["actions"]) if meta["actions"].strip() else []
            self._driver.ask_again = any(not isinstance(a, Pause | Answer) for a in actions)
        for update in self.input.updates():  # what was said before the model starts
            if update.seq <= after:
                continue  # heard in the replay
            if self._final_seen:
                break
            self._hear(update)
            after = update.seq
        if not self._final_seen:
            self._spawn(self._pump_input(after))
        self._spawn(self._pump_results())

    def _hear(self, update: InputUpdate) -> None:
        if self.journal is not None and not self._replaying:
            self.journal.post_input(update)  # durable in order, before the model's next turn
        if update.kind == "user" and update.final:
            self._final_seen = True
            self._final_index = len(self.items)
            self.final_at = update.at
        self._show([event_from_input(update)])

    async def _pump_input(self, after: int) -> None:
        try:
            async for update in self.input.follow(after):
                self._hear(update)
        finally:
            if self._driver is not None:
                self._driver.wake()
        if not self._final_seen:
            raise SpeculativeError("the input stream closed before the user's final input")

    def _apply(self, action: Action, *, heard_final: bool) -> list[ToolCall] | None:
        """Apply one action before the commit point; return the plan on ``CONFIRM``.

        ``heard_final`` tells whether the model had been shown the final input when it
        began the action: only then is a call "made after the final input" (part of the
        plan without ``CONFIRM``). A call it began before is an earlier call, which
        ``CONFIRM`` keeps or withdraws.
        """
        self.items.append(ModelAction(action, time.time()))
        if isinstance(action, Call | Revise):
            if heard_final and action.id not in self._after_final:
                self._after_final.append(action.id)
            before = self.speculation.record_of(action.id)
            record = self.speculation.propose(
                ToolCall(
                    name=action.name, args=dict(action.arguments), id=action.id, type="tool_call"
                ),
                depends_on=action.depends_on,
            )
            if record is not before:
                self._shown.pop(action.id, None)
            if (
                not self._final_seen
                and self.speculation.state_of(record).terminal
                and record.speculation is Speculation.SPECULATIVE
                and self._shown.get(action.id) != record.id
            ):
                self._reveal(action.id, record)  # a cached result, under the id asking for it
            self._notify_cancelled()
        elif isinstance(action, Remove):
            self.speculation.withdraw(action.id)
            self._shown.pop(action.id, None)
            if action.id in self._after_final:
                self._after_final.remove(action.id)
            self._notify_cancelled()
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
        """Whether settling ``plan`` aborts a live speculative call (the abort edge).

        A live speculative call is the current version of a call the model made and did not
        withdraw; it is confirmed when the plan adopts its record. Versions the model
        revised itself were settled by the revision and do not count (see
        :meth:`~langgraph_speculative.speculative.manager.SpeculationManager.unconfirmed`).

        Args:
            plan: The final plan.

        Returns:
            ``True`` for the abort edge.
        """
        if self.speculation.committed:
            return self.outcome is not None and not self.outcome.all_confirmed
        return bool(self.speculation.unconfirmed(plan))

    # -- commit point -------------------------------------------------------------------
    def settle(self, plan: Sequence[ToolCall]) -> CommitOutcome:
        """Commit the plan: adopt confirmed results, start the rest, abort everything else.

        Results of the plan that finished and that the model has not seen under their
        final id (held since the final input, or cached under another id) are shown now;
        the others as they finish.

        Args:
            plan: The final plan (from :meth:`listen`).

        Returns:
            What the commit point decided.
        """
        if self.outcome is not None:  # settled while a crashed run's journal was replayed
            if [c["id"] for c in plan] != list(self.speculation.final_records())[: len(plan)]:
                raise SpeculativeError(
                    "the plan to settle differs from the one the crashed run settled"
                )
            return self.outcome
        if self.journal is not None and not self._replaying:  # durable with the decisions
            self._journal_turn("commit", [], plan=[dict(c) for c in plan])
        self.commit_at = time.time()
        self.outcome = self.speculation.commit(plan)
        for cid, rid in self.speculation.final_records().items():
            rec = self.ledger.get(rid)
            if self.speculation.state_of(rec).terminal and self._shown.get(cid) != rid:
                self._reveal(cid, rec)
        return self.outcome

    async def _pump_results(self) -> None:
        while True:
            done = await self.executor.next_completion()
            self._processed += 1
            self._route(done.record, done.error)
            assert self._driver is not None
            self._driver.wake()

    def _route(self, rec: CallRecord, error: BaseException | None) -> None:
        """Show a finished call's result to the model if it may see it now."""
        if self.commit_at is not None:
            for cid in self.speculation.final_ids(rec.id):
                if self._shown.get(cid) != rec.id:
                    self._reveal(cid, rec, error)
        elif not self._final_seen and rec.speculation is Speculation.SPECULATIVE:
            for cid in self.speculation.logical_ids(rec.id):
                if self._shown.get(cid) != rec.id:
                    self._reveal(cid, rec, error)
        # between the final input and the commit point results wait (see settle)

    # -- respond ------------------------------------------------------------------------
    async def respond(self, plan: Sequence[ToolCall]) -> tuple[list[ToolMessage], str]:
        """Deliver the plan's results and wait for the model's answer.

        Calls the model makes now run at once (:attr:`extra_calls`).

        Args:
            plan: The final plan (from :meth:`listen`).

        Returns:
            The results of the plan, then of the extra calls, and the answer text.

        Raises:
            SpeculativeError: If the model revises, removes or confirms after the commit
                point, or a call fails with an unhandled error.
            StalledError: If the model waits after every result is in.
            WaitTimeoutError: If a wait lasts longer than :attr:`wait_timeout`.
        """
        if self._driver is None:
            raise SpeculativeError("respond() comes after listen()")
        ids = [c["id"] or "" for c in plan]
        while True:
            for action in await self._next_actions():
                self.items.append(ModelAction(action, time.time()))
                if isinstance(action, Call):  # after the commit point: runs at once
                    call = ToolCall(
                        name=action.name,
                        args=dict(action.arguments),
                        id=action.id,
                        type="tool_call",
                    )
                    self.speculation.add_final(call)
                    self.extra_calls.append(call)
                    ids.append(action.id)
                elif isinstance(action, Revise | Remove | Confirm):
                    raise SpeculativeError(
                        f"the model wrote {type(action).__name__.upper()} after the commit point"
                    )
                elif isinstance(action, Answer):
                    self.answer_at = time.time()
                    results = [await self.speculation.result(cid, self.wait_timeout) for cid in ids]
                    return results, action.text

    # -- crash and resume ---------------------------------------------------------------
    @property
    def resume_stats(self) -> dict[str, int]:
        """What resuming a crashed run reused (all 0 on a run that did not resume).

        ``replayed_inputs`` (input updates restored from the journal), ``replayed_turns``
        (model turns replayed instead of asking the model), ``resumed_calls`` (results
        reused, not run again), ``rerun_calls`` (calls running at the crash run again:
        safe, idempotent or keyed), ``unknown_outcomes`` (calls answered "outcome
        unknown").
        """
        return {
            "replayed_inputs": self._replay_counts["inputs"],
            "replayed_turns": self._replay_counts["turns"],
            "resumed_calls": self.executor.resumed_calls,
            "rerun_calls": self.executor.rerun_calls,
            "unknown_outcomes": self.executor.unknown_outcomes,
        }

    async def resume(self, graph: Any, config: RunnableConfig) -> bool:
        """Prepare this run to resume a thread whose interaction crashed.

        Reads the interaction's journal (without claiming the thread), takes over the
        crashed run's id and puts the input updates it had received back on
        :attr:`input`, so the app sees them (``run.input.final``, ``run.input.latest``)
        and pushes only what comes next. Call it before pushing anything, then run
        ``graph.ainvoke(None, config, context=run)``. Calling it is optional when the app
        pushes nothing before the graph starts (the graph then restores the updates
        itself).

        Args:
            graph: The compiled speculative agent (its checkpointer an
                :class:`~langgraph_speculative.durability.checkpointer.InterruptAwareCheckpointer`).
            config: The thread's config (``{"configurable": {"thread_id": ...}}``).

        Returns:
            Whether there is an interaction to resume (``False``: the thread is finished,
            new, or not journaled; run it as usual).

        Raises:
            JournalCorruptError: If the journal is damaged.
            InputUpdateError: If updates were pushed to :attr:`input` already.
        """
        saver = getattr(graph, "checkpointer", None)
        if not isinstance(saver, InterruptAwareCheckpointer):
            return False
        snapshot = await graph.aget_state(config)
        if not snapshot.next:
            return False
        where = _journal_location(
            snapshot.values or {},
            str(((config.get("configurable") or {}).get("thread_id")) or ""),
            snapshot.config,
            {t.name: t.id for t in snapshot.tasks},
        )
        if where is None:
            return False
        journal = saver.journal(**{k: where[k] for k in _LOCATION})
        records, _ = await journal.read()
        if not records:
            return False
        self._adopt(journal, records, where.get("id"))
        return True

    async def attach(self, config: RunnableConfig, state: Mapping[str, Any], node: str) -> None:
        """Open the run's journal at its first node (and load a crashed run's records).

        The agent's nodes call it first; only the first call does anything. Without an
        interrupt-aware checkpointer (or with ``durability="exit"``) the run keeps no journal.

        Args:
            config: The node's config (LangGraph's ``get_config()``).
            state: The graph state (its ``run`` key says where a later node finds the
                journal of the ``listen`` task).
            node: The node calling (``listen``, ``commit`` or ``respond``).
        """
        if self._attached:
            return
        self._attached = True
        base = journal_for(config)
        if base is None:
            return  # no interrupt-aware checkpointer (or durability="exit"): no journal
        journal: RunJournal | None = base
        saved = state.get("run") or {}
        if node != "listen":  # the journal is the listen task's
            saver = base.saver
            if not (isinstance(saver, InterruptAwareCheckpointer) and saved.get("task_id")):
                return
            journal = saver.journal(**{k: str(saved[k]) for k in _LOCATION})
        assert journal is not None
        state_of_journal = await journal.open()
        self.journal = journal
        self.executor.attach_journal(journal)
        if state_of_journal.resuming:
            records, _ = await journal.read()
            self._adopt(journal, records, saved.get("id"))

    def _adopt(self, journal: RunJournal, records: list[JournalRecord], run_id: Any) -> None:
        """Take over a crashed run: its id, its clock, its inputs, its records to replay."""
        updates: list[InputRecord] = []
        for rec in records:
            try:
                if rec.type == "input":
                    update = InputRecord.from_dict(rec.data)
                    if not updates or update.seq > updates[-1].seq:
                        updates.append(update)
                elif rec.type == "turn":
                    meta = _turn_meta(rec)
                    run_id = run_id or meta["run"]
                    self.t0 = min(self.t0, float(meta["t0"]))
            except (SpeculativeError, KeyError, TypeError, ValueError) as exc:
                raise JournalCorruptError(
                    f"{journal.where}, journal record {rec.seq} ({rec.type}): {exc}"
                ) from exc
        if isinstance(run_id, str) and run_id:
            self.id = run_id
        if updates:
            self.t0 = min(self.t0, updates[0].at)
        self.input.restore(updates)
        self._records = list(records)
        self._resumed = True

    def _replay(self, records: Sequence[JournalRecord]) -> int:
        """Rebuild the crashed run from its journal, in record order; return the last input seq.

        Inputs are heard again, the model's journaled turns are applied again (their calls
        go to the executor, which reuses saved results and never runs an unsafe call twice
        or before the commit point), the commit point is settled again at its place, and
        results are shown where the crashed run showed them. Turns after the commit point
        are queued for :meth:`respond`.
        """
        finished_at: dict[str, int] = {}
        started_at: dict[str, float] = {}
        for rec in records:
            if rec.type == "call_finished" and isinstance(rec.data.get("id"), str):
                finished_at.setdefault(rec.data["id"], rec.seq)
            elif rec.type == "call_started" and isinstance(rec.data.get("call"), dict):
                started_at.setdefault(str(rec.data["call"].get("id")), rec.at)
        self._journal_started = {k: v for k, v in started_at.items() if k in finished_at}
        position = 0

        def finished_by(record: CallRecord) -> bool:
            at = finished_at.get(record.id)
            return at is None or at <= position

        last_input = 0
        where = self.journal.where if self.journal is not None else "journal"
        self._replaying = True
        try:
            with self.speculation.replaying(finished_by):
                for rec in records:
                    position = rec.seq
                    try:
                        if rec.type == "input":
                            update = InputRecord.from_dict(rec.data)
                            if update.seq > last_input and not self._final_seen:
                                self._hear(update)
                                self._replay_counts["inputs"] += 1
                            last_input = max(last_input, update.seq)
                        elif rec.type == "turn":
                            self._replay_turn(_turn_meta(rec), rec)
                        elif rec.type == "call_finished" and rec.data["id"] in self.ledger:
                            done = self.ledger.get(rec.data["id"])
                            if done.state.terminal:
                                self._route(done, None)
                    except (KeyError, TypeError, ValueError) as exc:
                        raise JournalCorruptError(
                            f"{where}, journal record {rec.seq} ({rec.type}): {exc}"
                        ) from exc
        finally:
            self._replaying = False
        return last_input

    def _replay_turn(self, meta: dict[str, Any], rec: JournalRecord) -> None:
        stage = meta["stage"]
        self._turn_index = max(self._turn_index, _turn_index(rec))
        self._replay_counts["turns"] += stage != "commit"
        if stage == "commit":
            self._journal_commit_at = rec.at
            plan = [_tool_call(c) for c in meta.get("plan") or ()]
            self.settle(plan)
            return
        actions = parse_actions(meta["actions"]) if meta["actions"].strip() else []
        self._last_turn = (meta, self._events)
        if stage == "respond" or self._replayed_plan is not None:
            self._replay_queue.extend(actions)
            return
        for index, action in enumerate(actions):
            confirmed = self._apply(action, heard_final=bool(meta["heard_final"]))
            if confirmed is not None:
                self._replayed_plan = confirmed
                self._leftover = actions[index + 1 :]
                return

    def _journal_turn(
        self, stage: str, actions: Sequence[Action], *, plan: list[dict[str, Any]] | None = None
    ) -> None:
        """Journal a completed model turn (or the commit point), in order with its effects."""
        assert self.journal is not None
        self._turn_index += 1
        meta: dict[str, Any] = {
            "lgs_speculative": 1,
            "run": self.id,
            "t0": self.t0,
            "stage": stage,
            "heard_final": bool(self._driver.heard_final) if self._driver is not None else False,
            "events": (
                self._driver.events_seen if isinstance(self._driver, RequestDriver) else None
            ),
            "actions": render_actions(actions) if actions else "",
        }
        if plan is not None:
            meta["plan"] = plan
        # deferred: durable with the first record of its effects (a call's start or
        # result, a commit or abort, an input) or the node's end, before any of them
        self.journal.defer("turn", TurnRecord(self._turn_index, meta=meta).to_dict())

    def rebuild(self, messages: Sequence[BaseMessage], plan: Sequence[ToolCall]) -> None:
        """In a node after ``listen``, rebuild the run a crash lost (from its journal).

        Nothing to do when this run listened itself.

        Args:
            messages: The graph state's messages (the conversation before the interaction,
                and what the crashed run added, which is left out).
            plan: The final plan the graph state holds.

        Raises:
            SpeculativeError: If there is no journal to resume from, or the journal does
                not end in ``plan``.
        """
        if self._driver is not None:
            return
        if not self._records:
            raise SpeculativeError(
                "this SpeculativeRun did not listen, and the thread holds no journal of the "
                "interaction to resume from: compile the graph with an "
                "InterruptAwareCheckpointer (durability 'sync' or 'async') to resume it"
            )
        own = (f"input-{self.id}", f"plan-{self.id}")
        history = [m for m in messages if not (m.id or "").startswith(own)]
        self._start(history)
        replayed = self._replayed_plan or []
        if [(c["id"], c["name"]) for c in replayed] != [(c["id"], c["name"]) for c in plan]:
            raise SpeculativeError(
                "the journal of the interaction does not end in the plan the graph state "
                "holds: it cannot be resumed"
            )

    def pointer(self) -> dict[str, Any]:
        """The run's id and journal location, for the graph state.

        Returns:
            ``{"id": ...}``, plus ``thread_id``, ``checkpoint_ns``, ``checkpoint_id`` and
            ``task_id`` of the journal when the run keeps one.
        """
        out: dict[str, Any] = {"id": self.id}
        if self.journal is not None:
            j = self.journal
            out.update(
                thread_id=j.thread_id,
                checkpoint_ns=j.checkpoint_ns,
                checkpoint_id=j.checkpoint_id,
                task_id=j.task_id,
            )
        return out

    async def flush(self) -> None:
        """Make everything journaled so far durable (before the node's writes are saved)."""
        if self.journal is not None:
            await self.journal.flush()

    def message_id(self, kind: str, name: str = "") -> str:
        """The deterministic id of a message this run adds to the graph state.

        Args:
            kind: ``input``, ``plan``, ``calls``, ``result`` or ``answer``.
            name: What the message is about (an input ``seq``, a call id).

        Returns:
            An id unique to this run (``tool-result-<run id>-<call id>`` for results).
        """
        if kind == "result":
            return result_message_id(f"{self.id}-{name}")
        return f"{kind}-{self.id}" + (f"-{name}" if name else "")


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as retrieved (it is reported elsewhere)."""
    if not future.cancelled():
        future.exception()


_STALL_POLL_S = 0.02
"""How often a run looks whether an interruptible session waits silently (``waiting``)."""


_LOCATION = ("thread_id", "checkpoint_ns", "checkpoint_id", "task_id")


def _journal_location(
    values: dict[str, Any],
    thread_id: str,
    checkpoint: RunnableConfig,
    tasks: dict[str, str],
) -> dict[str, Any] | None:
    """Where the journal of a thread's interrupted interaction is stored, if anywhere."""
    if "listen" in tasks:  # the crash was in listen: its task's journal, on this checkpoint
        checkpoint_id = (checkpoint.get("configurable") or {}).get("checkpoint_id")
        if not thread_id or not isinstance(checkpoint_id, str):
            return None
        return {
            "thread_id": thread_id,
            "checkpoint_ns": "",
            "checkpoint_id": checkpoint_id,
            "task_id": tasks["listen"],
        }
    saved = values.get("run") or {}
    if not all(isinstance(saved.get(k), str) for k in _LOCATION):
        return None
    return dict(saved)


def _turn_meta(rec: JournalRecord) -> dict[str, Any]:
    """The speculative agent's turn record (JSON in the turn's text), checked."""
    try:
        meta = TurnRecord.from_dict(rec.data).meta
    except ValueError as exc:
        raise SpeculativeError(f"not a speculative agent's turn: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("lgs_speculative") != 1:
        raise SpeculativeError("not a speculative agent's turn record")
    if meta.get("stage") not in ("listen", "commit", "respond"):
        raise SpeculativeError(f"unknown stage {meta.get('stage')!r}")
    if not isinstance(meta.get("actions"), str) or not isinstance(meta.get("run"), str):
        raise SpeculativeError("a turn needs its actions and run id")
    if isinstance(meta.get("t0"), bool) or not isinstance(meta.get("t0"), int | float):
        raise SpeculativeError("a turn needs the run's clock origin t0")
    return meta


def _turn_index(rec: JournalRecord) -> int:
    return TurnRecord.from_dict(rec.data).index


def _tool_call(data: Any) -> ToolCall:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise SpeculativeError(f"not a tool call: {data!r:.200}")
    return ToolCall(
        name=data["name"], args=dict(data.get("args") or {}), id=data.get("id"), type="tool_call"
    )
