r"""The executor: runs the ledger's tool calls concurrently on asyncio.

One :class:`ToolExecutor` serves every node of a run. It starts a call as soon as the call
is submitted and its dependencies are done, runs at most ``max_concurrency`` calls at
once, applies a per-call timeout, cancels on request, and turns tool errors into error
``ToolMessage``\ s under the same ``handle_tool_errors`` contract as LangGraph's
``ToolNode``. Every finished call is reported as a :class:`Completion` on an asyncio queue
(the interrupt queue), in the order the calls finish.

Its tasks live only while the executor is open: use it as an ``async with`` block inside
one node, so no call outlives the node that started it.

Crash safety: given an opened :class:`~langgraph_speculative.durability.journal.RunJournal`, the
executor records each call before it runs and each result before it is reported
(write-ahead), and resumes a crashed run: a submitted call the journal saw finish yields
its saved result without running; one that was running re-runs only when its tool is
idempotent or takes an idempotency key (with the same key), and otherwise goes to the
journal's outcome-unknown hook (:mod:`langgraph_speculative.durability.resume`).

Example:
    ```python
    import asyncio
    from langchain_core.tools import tool
    from langgraph_speculative import ToolExecutor

    @tool
    async def add(a: int, b: int) -> int:
        '''Add two integers.'''
        return a + b

    async def main() -> None:
        async with ToolExecutor([add]) as ex:
            ex.submit({"name": "add", "args": {"a": 1, "b": 2}, "id": "c1", "type": "tool_call"})
            done = await ex.next_completion()
            assert done.message.content == "3"

    asyncio.run(main())
    ```
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import UnionType
from typing import TYPE_CHECKING, Any, Union, cast, get_args, get_origin, get_type_hints

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.errors import GraphBubbleUp
from langgraph.prebuilt.tool_node import (
    INVALID_TOOL_NAME_ERROR_TEMPLATE,
    TOOL_CALL_ERROR_TEMPLATE,
    ToolInvocationError,
    msg_content_output,
)
from pydantic import ValidationError

try:
    from langgraph.errors import is_invalid_resume
except ImportError:  # pragma: no cover - a langgraph that never marks resume errors

    def is_invalid_resume(error: BaseException) -> bool:
        """Whether ``error`` is a resume value that did not match an interrupt's schema."""
        return False


from langgraph_speculative.core.ledger import CallLedger, CallRecord, CallState, Speculation
from langgraph_speculative.core.safety import (
    is_idempotent_tool,
    is_safe_tool,
    takes_idempotency_key,
)
from langgraph_speculative.durability.resume import (
    JournaledCall,
    ResolutionKind,
    outcome_unknown_message,
    resolve_outcome_unknown,
)
from langgraph_speculative.errors import SpeculativeError, ToolTimeoutError, WaitTimeoutError

if TYPE_CHECKING:
    from langgraph_speculative.durability.journal import RunJournal

__all__ = ["Completion", "ErrorHandler", "ToolExecutor", "idempotency_key_of", "result_message_id"]

ErrorHandler = bool | str | Callable[..., str] | type[Exception] | tuple[type[Exception], ...]
"""What to do with a tool's exception; the same contract as ``ToolNode.handle_tool_errors``:
``True`` turns every exception into an error ``ToolMessage``; a string is the message; a
callable maps the exception to the message (only for the exception types its first
parameter is annotated with); an exception type or tuple of them limits which are handled;
``False`` handles none. Unhandled exceptions (and exceptions the handler itself raises)
fail the call and are re-raised by :meth:`ToolExecutor.wait`. As in ``ToolNode``, LangGraph
interrupts (``GraphBubbleUp``) and resume values that do not match an interrupt's schema
(``langgraph.errors.is_invalid_resume``) are never handled. A handler's return value is the
message content as ``ToolNode`` makes it (a list stays a list, anything else is ``str``-ed).
One difference: a callable whose first parameter is annotated with something that is not
an exception type is refused when the executor is built (``ToolNode`` raises at the first
error)."""


_KEY = "idempotency_key"

DEFAULT_WAIT_TIMEOUT_S = 300.0
"""The default ``wait_timeout`` of the agent nodes: the most seconds one wait (a model's
next chunk, a new event to show the model, a tool result a node needs) may last before it
fails with :class:`~langgraph_speculative.errors.WaitTimeoutError`."""


def check_wait_timeout(value: object) -> float:
    """Check a node's ``wait_timeout``: a finite number of seconds > 0 (never unbounded).

    Args:
        value: The value given.

    Returns:
        It, as a float.

    Raises:
        ValueError: If it is not a finite number > 0 (``None`` and ``inf`` included).
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not value > 0
        or math.isinf(value)
    ):
        raise ValueError(
            f"wait_timeout must be a finite number of seconds > 0 (every wait is bounded), "
            f"got {value!r}"
        )
    return float(value)


def idempotency_key_of(config: RunnableConfig | None) -> str | None:
    """The idempotency key the executor gave a tool run (``None`` outside the executor).

    A side-effecting tool declares a ``config: RunnableConfig`` parameter and passes this
    key to the service it calls, so a re-run of the same call does not repeat the effect.
    """
    value = ((config or {}).get("metadata") or {}).get(_KEY)
    return value if isinstance(value, str) else None


def result_message_id(call_id: str) -> str:
    """Return the deterministic message id of the result of tool call ``call_id``.

    Re-sending a result with this id replaces the earlier message under ``add_messages``
    instead of duplicating it.
    """
    return f"tool-result-{call_id}"


def _only_invocation_errors(e: ToolInvocationError) -> str:
    """``ToolNode``'s default: bad arguments become a message, other errors propagate."""
    return e.message


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished call, as reported on the interrupt queue.

    Attributes:
        record: The call's ledger record (in a terminal state).
        message: The ``ToolMessage`` to show the model: the result, a handled error, or a
            cancellation notice. ``None`` only when ``error`` is set.
        error: The unhandled exception, if the call failed with one.
    """

    record: CallRecord
    message: ToolMessage | None
    error: BaseException | None = None

    @property
    def call_id(self) -> str:
        """The id of the finished call."""
        return self.record.id


class ToolExecutor:
    """Runs tool calls concurrently and reports each completion as it happens.

    Args:
        tools: The tools calls may name.
        ledger: The ledger to record calls in; a new one by default. Share one ledger
            between the nodes of a run.
        max_concurrency: Most calls running at once.
        timeout: Per-call timeout in seconds (``None``: no limit). A timed-out call always
            becomes an error ``ToolMessage``.
        handle_tool_errors: See :data:`ErrorHandler`. The default matches ``ToolNode``'s:
            invalid arguments become an error message; other exceptions propagate.
        config: ``RunnableConfig`` passed to every tool (callbacks, tags, ...).
        journal: An opened run journal: calls and results are recorded write-ahead, and
            calls it saw before a crash are resumed instead of run blindly (see the
            module docs). ``None``: nothing is recorded.
        defer_results: With a journal, report a result at once instead of once it is
            durable. Its record is written at once (in one saver call with the records
            its report sets off, such as a dependent call's start), or, for an
            idempotent tool (which simply runs again after a crash), with the journal's
            next write. Only for callers that
            :meth:`~langgraph_speculative.durability.journal.RunJournal.flush` the journal before
            they deliver a result to a model, or deliver it as the node's return value
            (which LangGraph saves). Otherwise every result is durable before it is
            reported.

    Attributes:
        resumed_calls: Calls whose saved result was reused instead of running again.
        rerun_calls: Calls running at a crash that were run again (safe, idempotent,
            keyed, or re-run by the outcome-unknown hook).
        unknown_outcomes: Calls running at a crash answered as "outcome unknown".

    Raises:
        ValueError: If ``max_concurrency`` < 1, ``timeout`` <= 0, or two tools share a name.
        SpeculativeError: If ``journal`` is not opened.
    """

    def __init__(
        self,
        tools: Sequence[BaseTool],
        *,
        ledger: CallLedger | None = None,
        max_concurrency: int = 16,
        timeout: float | None = None,
        handle_tool_errors: ErrorHandler = _only_invocation_errors,
        config: RunnableConfig | None = None,
        journal: RunJournal | None = None,
        defer_results: bool = False,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.tools_by_name: dict[str, BaseTool] = {}
        for t in tools:
            if t.name in self.tools_by_name:
                raise ValueError(f"two tools are named {t.name!r}")
            self.tools_by_name[t.name] = t
        self.ledger = ledger if ledger is not None else CallLedger()
        self.timeout = timeout
        self.config = config
        self._handled = _handled_types(handle_tool_errors)
        self._handler = handle_tool_errors
        self._slots = asyncio.Semaphore(max_concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._futures: dict[str, asyncio.Future[Completion]] = {}
        self._queue: asyncio.Queue[Completion] = asyncio.Queue()
        self._configs: dict[str, RunnableConfig | None] = {}
        # dependency id -> ids of the calls submitted here that wait for it
        self._waiting_on: dict[str, list[str]] = {}
        self._finished_ids: list[str] = []  # finished calls whose dependents are not released
        self._releasing = False
        self._unfinished = 0
        self._closed = False
        self.journal: RunJournal | None = None
        self.attach_journal(journal)
        self.defer_results = defer_results
        self.resumed_calls = 0
        self.rerun_calls = 0
        self.unknown_outcomes = 0
        self._unsure: dict[str, JournaledCall] = {}  # running at a crash: decide in _run

    # -- lifecycle -------------------------------------------------------------------
    async def __aenter__(self) -> ToolExecutor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel every call still pending or running and wait until none is left."""
        self._closed = True
        for call_id, future in list(self._futures.items()):
            if not future.done():
                self._finish_cancelled(self.ledger.get(call_id), "the executor was closed")
        while self._tasks:
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in tasks:  # a task cancelled before it ever ran has no done-callback yet
                self._forget_task(task)

    @property
    def in_flight(self) -> int:
        """Number of calls submitted and not finished."""
        return self._unfinished

    def attach_journal(self, journal: RunJournal | None) -> None:
        """Journal this executor's calls and results from now on (``None`` detaches).

        The same as passing ``journal=`` to the constructor, for executors built before
        the node run opened its journal. Calls submitted before stay unjournaled; a
        detached executor stops recording (e.g. the cancellations of a closing run).

        Args:
            journal: An opened :class:`~langgraph_speculative.durability.journal.RunJournal`, or
                ``None``.

        Raises:
            SpeculativeError: If ``journal`` is not opened.

        Example:
            ```python
            import asyncio
            from langgraph.checkpoint.base import empty_checkpoint
            from langgraph.checkpoint.memory import InMemorySaver
            from langgraph_speculative.core.executor import ToolExecutor
            from langgraph_speculative.durability.journal import RunJournal

            saver = InMemorySaver()
            root = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
            ck = saver.put(root, empty_checkpoint(), {}, {})["configurable"]["checkpoint_id"]

            async def main() -> None:
                journal = RunJournal(
                    saver, thread_id="t", checkpoint_ns="", checkpoint_id=ck, task_id="k"
                )
                executor = ToolExecutor([])
                await journal.open()
                executor.attach_journal(journal)
                assert executor.journal is journal
                executor.attach_journal(None)
                await journal.close()

            asyncio.run(main())
            ```
        """
        if journal is not None and journal.state is None:
            raise SpeculativeError("open the run journal (await journal.open()) first")
        self.journal = journal

    # -- submitting ------------------------------------------------------------------
    def submit(
        self,
        call: ToolCall,
        *,
        depends_on: Sequence[str] = (),
        speculative: bool = False,
        idempotency_key: str | None = None,
        config: RunnableConfig | None = None,
    ) -> CallRecord:
        """Record a call in the ledger and start it when its dependencies are done.

        Unsafe tools called speculatively are held (pending) until :meth:`commit`.
        A call to a tool the executor does not have fails at once with ``ToolNode``'s
        "not a valid tool" error message.

        Args:
            call: The tool call (``name``, ``args``, ``id``).
            depends_on: Ids of calls (already submitted) this one needs.
            speculative: Whether the call was made on partial input.
            idempotency_key: Key of the call's side effect (derived when omitted).
            config: Per-call ``RunnableConfig`` (overrides the executor's).

        Returns:
            The call's ledger record.

        Raises:
            SpeculativeError: If the executor is closed, or the call is malformed or a
                duplicate (see :meth:`CallLedger.create`).
        """
        if self._closed:
            raise SpeculativeError("the executor is closed")
        call_id = call.get("id") or ""
        name = call.get("name")
        if not isinstance(name, str) or not name:
            raise SpeculativeError(f"call {call_id!r} has no tool name")
        tool = self.tools_by_name.get(name)
        args = call.get("args", {})
        saved: JournaledCall | None = None
        state = self.journal.state if self.journal is not None else None
        if state is not None and tool is not None and isinstance(args, Mapping):
            saved = state.claim(call_id, name, args)
            if saved is not None and idempotency_key is None:
                idempotency_key = saved.record.idempotency_key or None  # the same key
        record = self.ledger.create(
            call_id,
            name,
            args,
            safe=is_safe_tool(tool) if tool is not None else False,
            speculative=speculative,
            idempotency_key=idempotency_key,
            depends_on=depends_on,
        )
        self._futures[call_id] = asyncio.get_running_loop().create_future()
        self._unfinished += 1
        self._configs[call_id] = config
        for dep in dict.fromkeys(record.depends_on):
            self._waiting_on.setdefault(dep, []).append(call_id)
        if tool is None:
            content = INVALID_TOOL_NAME_ERROR_TEMPLATE.format(
                requested_tool=name, available_tools=", ".join(self.tools_by_name)
            )
            self._finish(record, CallState.FAILED, self._error_message(record, content))
        elif saved is not None and saved.finished:
            self._restore(record, saved)
        else:
            if saved is not None:
                self._unsure[call_id] = saved
            self._maybe_start(record)
        return record

    def _restore(self, record: CallRecord, saved: JournaledCall) -> None:
        """Finish ``record`` with the result a crashed run saved, without running it."""
        message = saved.result
        if message is not None:
            message = message.model_copy(
                update={"tool_call_id": record.id, "id": result_message_id(record.id)}
            )
        else:  # a cancellation recorded without a notice
            message = self._error_message(record, f"Cancelled: {saved.error or 'cancelled'}.")
        self.ledger.transition(record.id, CallState.RUNNING)
        self.resumed_calls += 1
        self._finish(record, saved.state, message, reason=saved.error)

    def reject(self, call_id: str, tool: str | None, reason: str) -> CallRecord:
        """Record a call that cannot run (for example its arguments could not be parsed).

        The call is entered in the ledger as failed, answered with an error ``ToolMessage``
        carrying ``reason``, and reported as a completion like any other.

        Args:
            call_id: The call's id.
            tool: The tool name, if the model wrote one.
            reason: What was wrong, shown to the model.

        Raises:
            SpeculativeError: If the executor is closed or the id is already in the ledger.
        """
        if self._closed:
            raise SpeculativeError("the executor is closed")
        record = self.ledger.create(call_id, tool or "", {})
        self._futures[call_id] = asyncio.get_running_loop().create_future()
        self._unfinished += 1
        content = TOOL_CALL_ERROR_TEMPLATE.format(error=reason)
        self._finish(record, CallState.FAILED, self._error_message(record, content))
        return record

    def commit(self, call_id: str) -> CallRecord:
        """Commit a speculative call; a held unsafe call starts now."""
        record = self.ledger.set_speculation(call_id, Speculation.COMMITTED)
        if self.journal is not None:  # durable before the held call's start record
            self.journal.post_speculation(call_id, Speculation.COMMITTED)
        self._maybe_start(record)
        return record

    def abort(self, call_id: str) -> CallRecord:
        """Abort a speculative call: cancel it (and its dependents) if not finished."""
        record = self.ledger.set_speculation(call_id, Speculation.ABORTED)
        if self.journal is not None:
            self.journal.post_speculation(call_id, Speculation.ABORTED)
        self.cancel(call_id, "the speculative call was aborted")
        return record

    def cancel(self, call_id: str, reason: str = "cancelled") -> None:
        """Cancel a pending or running call and, in cascade, every call depending on it.

        Finished calls are left as they are.

        Raises:
            UnknownCallError: If the ledger holds no such call.
        """
        record = self.ledger.get(call_id)
        if call_id not in self._futures and record.state is not CallState.PENDING:
            return  # running elsewhere (another executor): not ours to stop
        if self.journal is not None and not self._closed and not record.state.terminal:
            self.journal.post_call_finished(
                record,
                CallState.CANCELLED,
                self._error_message(record, f"Cancelled: {reason}."),
                reason,
            )
        self._finish_cancelled(record, reason)
        task = self._tasks.get(call_id)
        if task is not None:
            task.cancel()

    # -- waiting ---------------------------------------------------------------------
    async def wait(self, call_id: str, timeout: float | None = None) -> ToolMessage:
        """Wait for ``call_id`` to finish and return its ``ToolMessage``.

        Args:
            call_id: The call's id.
            timeout: Seconds to wait at most (``None``: no limit). The call goes on
                running when the wait gives up.

        Raises:
            UnknownCallError: If the call was never submitted here.
            WaitTimeoutError: If it did not finish within ``timeout`` (a ``TimeoutError``).
            Exception: The tool's exception, if it was not handled.
        """
        future = self._futures.get(call_id)
        if future is None:
            self.ledger.get(call_id)  # raises UnknownCallError
            raise SpeculativeError(f"call {call_id!r} was not submitted to this executor")
        if timeout is None:
            done = await asyncio.shield(future)
        else:
            timer = asyncio.timeout(timeout)
            try:
                async with timer:
                    done = await asyncio.shield(future)
            except TimeoutError:
                if not timer.expired():
                    raise
                rec = self.ledger.get(call_id)
                raise WaitTimeoutError(
                    f"the result of call {call_id!r} ({rec.tool})",
                    timeout,
                    detail=f"the call is {self._describe(rec)}",
                ) from None
        if done.error is not None:
            raise done.error
        assert done.message is not None
        return done.message

    async def next_completion(self, timeout: float | None = None) -> Completion:
        """Wait for the next finished call (in finishing order).

        Args:
            timeout: Seconds to wait at most (``None``: no limit).

        Raises:
            WaitTimeoutError: If nothing finished within ``timeout`` seconds (a
                ``TimeoutError``; the message names the calls still unfinished).
        """
        if timeout is None or not self._queue.empty():
            return await self._queue.get()
        timer = asyncio.timeout(timeout)
        try:
            async with timer:
                return await self._queue.get()
        except TimeoutError:
            if not timer.expired():
                raise
            raise WaitTimeoutError(
                "the next tool call to finish", timeout, detail=self.describe_unfinished()
            ) from None

    def describe_unfinished(self) -> str:
        """The calls submitted here and not finished, with their states (for error messages).

        Returns:
            For example ``"unfinished calls: c1 (get_weather, running)"``.
        """
        recs = [
            self.ledger.get(cid)
            for cid, future in self._futures.items()
            if not future.done() and cid in self.ledger
        ]
        if not recs:
            return "no call is unfinished"
        shown = ", ".join(f"{r.id} ({r.tool}, {self._describe(r)})" for r in recs[:10])
        more = f" and {len(recs) - 10} more" if len(recs) > 10 else ""
        return f"unfinished calls: {shown}{more}"

    def _describe(self, record: CallRecord) -> str:
        if record.state is CallState.PENDING and not record.may_run:
            return "held until the commit point"
        if record.state is CallState.PENDING and record.depends_on:
            return "pending on " + ", ".join(record.depends_on)
        return record.state.value.lower()

    def ready(self) -> list[Completion]:
        """Return every completion already queued, without waiting."""
        out: list[Completion] = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    async def completions(self) -> AsyncIterator[Completion]:
        """Yield completions as calls finish, until none is in flight."""
        while self._unfinished or not self._queue.empty():
            yield await self._queue.get()

    # -- internals -------------------------------------------------------------------
    def _maybe_start(self, record: CallRecord) -> None:
        if (
            self._closed
            or record.state is not CallState.PENDING
            or record.id in self._tasks
            or record.id not in self._futures
        ):
            return
        ready = True
        for dep_id in record.depends_on:
            dep = self.ledger.get(dep_id)
            if dep.state in (CallState.FAILED, CallState.CANCELLED):
                # also for a held call: it can never run, so it must not stay in flight
                self._finish_cancelled(record, f"its dependency {dep_id!r} did not succeed")
                return
            ready = ready and dep.state is CallState.DONE
        if not ready or not record.may_run:
            return  # started when its dependencies finish / when it is committed
        task = asyncio.create_task(self._run(record), name=f"tool:{record.id}")
        self._tasks[record.id] = task
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        if task.done() and not task.cancelled():
            task.exception()  # reported through the call's Completion: mark it retrieved
        call_id = task.get_name().removeprefix("tool:")
        if self._tasks.get(call_id) is task:
            del self._tasks[call_id]

    async def _run(self, record: CallRecord) -> None:
        tool = self.tools_by_name[record.tool]
        try:
            async with self._slots:
                if record.state is not CallState.PENDING:
                    return  # finished (cancelled) while it waited for a slot
                if not record.may_run:  # safety rule enforced here, not only in nodes
                    if record.speculation is Speculation.ABORTED:
                        self._finish_cancelled(record, "the speculative call was aborted")
                    # else: an unsafe speculative call stays pending until commit()
                    return
                saved = self._unsure.pop(record.id, None)
                if saved is not None and not await self._may_rerun(tool, record, saved):
                    return  # answered by the outcome-unknown hook
                if self.journal is not None:  # write-ahead: known to be running before it runs
                    alias = saved.record.id if saved and saved.record.id != record.id else None
                    # an idempotent tool simply runs again: its start travels with its result
                    await self.journal.call_started(
                        record, alias_of=alias, durable=not is_idempotent_tool(tool)
                    )
                self.ledger.transition(record.id, CallState.RUNNING)
                message = await self._invoke(tool, record)
            await self._finish_durably(record, CallState.DONE, message)
        except asyncio.CancelledError:
            self._finish_cancelled(record, "cancelled")
            raise
        except ToolTimeoutError as exc:
            content = TOOL_CALL_ERROR_TEMPLATE.format(error=repr(exc))
            message = self._error_message(record, content)
            await self._finish_durably(record, CallState.FAILED, message)
        except GraphBubbleUp as exc:  # interrupts are never handled, as in ToolNode
            self._finish(record, CallState.FAILED, None, exc)
        except Exception as exc:  # tool errors: handled per the ToolNode contract
            # as in ToolNode: a resume value that does not match an interrupt's schema is
            # never handled (the model cannot fix it; the interrupt is answered again)
            if is_invalid_resume(exc) or not self._handler or not isinstance(exc, self._handled):
                self._finish(record, CallState.FAILED, None, exc)
                return
            try:
                handled = _error_content(exc, self._handler)
            except Exception as handler_exc:  # the handler re-raised: unhandled, like ToolNode
                self._finish(record, CallState.FAILED, None, handler_exc)
            else:
                message = self._error_message(record, handled)
                await self._finish_durably(record, CallState.FAILED, message)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: record it, then go on
            self._finish(record, CallState.FAILED, None, exc)
            raise
        finally:
            # at once, not in the done-callback: a commit() racing the callback would
            # otherwise see a task and not start a held call
            task = asyncio.current_task()
            if task is not None:
                self._forget_task(task)

    async def _may_rerun(self, tool: BaseTool, record: CallRecord, saved: JournaledCall) -> bool:
        """Decide about a call that was running at a crash; ``False`` if it is answered."""
        if is_idempotent_tool(tool) or takes_idempotency_key(tool):
            self.rerun_calls += 1  # harmless again, or keyed: the service dedupes the key
            return True
        hook = self.journal.on_outcome_unknown if self.journal is not None else None
        try:
            resolution = await resolve_outcome_unknown(hook, record)
        except Exception as exc:  # the app stops the run (e.g. raise_outcome_unknown)
            self._finish(record, CallState.FAILED, None, exc)
            return False
        if resolution.kind is ResolutionKind.RERUN:
            self.rerun_calls += 1
            return True
        self.ledger.transition(record.id, CallState.RUNNING)
        if resolution.kind is ResolutionKind.DELIVER:
            message = ToolMessage(
                content=resolution.content or "",
                tool_call_id=record.id,
                name=record.tool,
                id=result_message_id(record.id),
            )
            await self._finish_durably(record, CallState.DONE, message)
        else:
            self.unknown_outcomes += 1
            text = resolution.content or outcome_unknown_message(record)
            await self._finish_durably(record, CallState.FAILED, self._error_message(record, text))
        return False

    async def _finish_durably(
        self, record: CallRecord, state: CallState, message: ToolMessage
    ) -> None:
        """Record the result in the journal (if any), then report it: write-ahead."""
        if self.journal is not None and not record.state.terminal:
            error = None if state is CallState.DONE else str(message.content)
            tool = self.tools_by_name.get(record.tool)
            if self.defer_results:
                data = self.journal.finished_data(record.id, state, message, error)
                if tool is not None and is_idempotent_tool(tool):
                    # lost in a crash, the call simply runs again: no write of its own
                    self.journal.defer("call_finished", data)
                else:
                    # written now, in one saver call with what its report sets off (a
                    # dependent call's start record); the caller flushes before delivery
                    self.journal.post("call_finished", data)
                self._finish(record, state, message)
                return
            try:
                await self.journal.call_finished(record.id, state, message, error)
            except Exception as exc:  # not durable: fail the run rather than deliver it
                self._finish(record, CallState.FAILED, None, exc)
                return
        self._finish(record, state, message)

    async def _invoke(self, tool: BaseTool, record: CallRecord) -> ToolMessage:
        call = ToolCall(name=record.tool, args=record.args, id=record.id, type="tool_call")
        base = self._configs.get(record.id) or self.config or {}
        # the tool can read its idempotency key from the config it is given
        config = RunnableConfig(
            **{**base, "metadata": {**base.get("metadata", {}), _KEY: record.idempotency_key}}
        )
        timer = asyncio.timeout(self.timeout)
        try:
            async with timer:
                out = await tool.ainvoke(call, config)
        except TimeoutError as exc:
            if timer.expired():
                raise ToolTimeoutError(
                    f"tool {record.tool!r} timed out after {self.timeout:g} s"
                ) from exc
            raise
        except ValidationError as exc:
            if is_invalid_resume(exc):
                raise  # a bad resume value of an interrupt in the tool, not a bad argument
            # the same text as ToolNode's: one "loc: msg" line per argument error
            errors = [e for e in exc.errors() if e["loc"]]
            raise ToolInvocationError(record.tool, exc, record.args, errors) from exc
        if isinstance(out, ToolMessage):
            message = out
            message.content = _content(out.content)  # normalised as ToolNode does
        elif hasattr(out, "goto") and hasattr(out, "update"):
            raise SpeculativeError(
                f"tool {record.tool!r} returned a Command; the executor only runs tools "
                "that return content"
            )
        else:
            message = ToolMessage(content=_content(out), tool_call_id=record.id, name=record.tool)
        message.id = result_message_id(record.id)
        message.name = message.name or record.tool
        return message

    def _error_message(
        self, record: CallRecord, content: str | list[str | dict[Any, Any]]
    ) -> ToolMessage:
        return ToolMessage(
            content=content,
            tool_call_id=record.id,
            name=record.tool,
            status="error",
            id=result_message_id(record.id),
        )

    def _finish_cancelled(self, record: CallRecord, reason: str) -> None:
        if record.state.terminal:
            return
        message = self._error_message(record, f"Cancelled: {reason}.")
        self._finish(record, CallState.CANCELLED, message, reason=reason)

    def _finish(
        self,
        record: CallRecord,
        state: CallState,
        message: ToolMessage | None,
        error: BaseException | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        if record.state.terminal:
            return
        text = reason if reason is not None else (repr(error) if error is not None else None)
        if text is None and state is CallState.FAILED and message is not None:
            text = str(message.content)
        self.ledger.transition(record.id, state, result=message, error=text)
        self._configs.pop(record.id, None)
        future = self._futures.get(record.id)
        if future is not None and not future.done():
            done = Completion(record, message, error)
            future.set_result(done)
            self._unfinished -= 1
            self._queue.put_nowait(done)
        self._release_dependents(record.id)

    def _release_dependents(self, finished_id: str) -> None:
        """Start (or cancel, in cascade) the calls waiting on ``finished_id``.

        Uses the dependency index, so a finish costs O(its dependents), and a worklist
        instead of recursion, so a long chain of cancellations cannot overflow the stack.
        """
        self._finished_ids.append(finished_id)
        if self._releasing:
            return  # the outer call drains the worklist
        self._releasing = True
        try:
            while self._finished_ids:
                for call_id in self._waiting_on.pop(self._finished_ids.pop(), ()):
                    self._maybe_start(self.ledger.get(call_id))
        finally:
            self._releasing = False


def _handled_types(flag: ErrorHandler) -> tuple[type[BaseException], ...]:
    if isinstance(flag, type) and issubclass(flag, Exception):
        return (flag,)
    if isinstance(flag, tuple):
        return flag
    if callable(flag) and not isinstance(flag, type):
        return _annotated_exception_types(flag)
    return (Exception,)


def _annotated_exception_types(handler: Callable[..., str]) -> tuple[type[BaseException], ...]:
    """Return the exception types a handler's first parameter is annotated with.

    ``Exception`` when it has no annotation, as ``ToolNode`` infers them.
    """
    params = list(inspect.signature(handler).parameters.values())
    if not params:
        return (Exception,)
    first = params[1] if params[0].name in ("self", "cls") and len(params) == 2 else params[0]
    hints = get_type_hints(handler)
    hint = hints.get(first.name)
    if hint is None:
        return (Exception,)
    members = get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)
    if not all(isinstance(m, type) and issubclass(m, Exception) for m in members):
        raise ValueError(
            "an error handler's first parameter must be annotated with exception types, "
            f"got {hint!r}"
        )
    return tuple(members)


def _content(output: object) -> str | list[str | dict[Any, Any]]:
    """``ToolNode``'s content normalisation (``msg_content_output``), typed for ``ToolMessage``."""
    return cast("str | list[str | dict[Any, Any]]", msg_content_output(output))


def _error_content(exc: Exception, flag: ErrorHandler) -> str | list[str | dict[Any, Any]]:
    """The error message's content, as ``ToolNode``'s ``_handle_tool_error`` makes it.

    A handler's return value is the content as it is (a list stays a list, anything else
    becomes its ``str``, as ``ToolMessage`` coerces it).
    """
    if isinstance(flag, bool | tuple) or (isinstance(flag, type) and issubclass(flag, Exception)):
        return TOOL_CALL_ERROR_TEMPLATE.format(error=repr(exc))
    if isinstance(flag, str):
        return flag
    if callable(flag):
        handler = cast("Callable[[Exception], object]", flag)
        out = handler(exc)
        return cast("list[str | dict[Any, Any]]", out) if isinstance(out, list) else str(out)
    raise ValueError(f"unsupported handle_tool_errors value: {flag!r}")
