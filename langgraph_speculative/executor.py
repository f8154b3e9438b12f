"""The executor: runs the ledger's tool calls concurrently on asyncio.

One :class:`ToolExecutor` serves every node of a run. It starts a call as soon as the call
is submitted and its dependencies are done, runs at most ``max_concurrency`` calls at
once, applies a per-call timeout, cancels on request, and turns tool errors into error
``ToolMessage``\\ s under the same ``handle_tool_errors`` contract as LangGraph's
``ToolNode``. Every finished call is reported as a :class:`Completion` on an asyncio queue
(the interrupt queue), in the order the calls finish.

Its tasks live only while the executor is open: use it as an ``async with`` block inside
one node, so no call outlives the node that started it.

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
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Union, get_args, get_origin, get_type_hints

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.prebuilt.tool_node import (
    INVALID_TOOL_NAME_ERROR_TEMPLATE,
    TOOL_CALL_ERROR_TEMPLATE,
    ToolInvocationError,
    msg_content_output,
)
from pydantic import ValidationError

from langgraph_speculative.errors import (
    SpeculativeError,
    ToolTimeoutError,
    UnsafeBeforeCommitError,
)
from langgraph_speculative.ledger import CallLedger, CallRecord, CallState, Speculation
from langgraph_speculative.safety import is_safe_tool

__all__ = ["Completion", "ErrorHandler", "ToolExecutor", "result_message_id"]

ErrorHandler = (
    bool | str | Callable[..., str] | type[Exception] | tuple[type[Exception], ...]
)
"""What to do with a tool's exception; the same contract as ``ToolNode.handle_tool_errors``:
``True`` turns every exception into an error ``ToolMessage``; a string is the message; a
callable maps the exception to the message (only for the exception types its first
parameter is annotated with); an exception type or tuple of them limits which are handled;
``False`` handles none. Unhandled exceptions fail the call and are re-raised by
:meth:`ToolExecutor.wait`."""


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

    Raises:
        ValueError: If ``max_concurrency`` < 1, ``timeout`` <= 0, or two tools share a name.
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
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------
    async def __aenter__(self) -> ToolExecutor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel every call still pending or running and wait until none is left."""
        self._closed = True
        for rec in self.ledger.in_state(CallState.PENDING):
            if rec.id in self._futures:
                self._finish_cancelled(rec, "the executor was closed")
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        """Number of calls submitted and not finished."""
        return sum(1 for f in self._futures.values() if not f.done())

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
        record = self.ledger.create(
            call_id,
            name,
            call.get("args", {}),
            safe=is_safe_tool(tool) if tool is not None else False,
            speculative=speculative,
            idempotency_key=idempotency_key,
            depends_on=depends_on,
        )
        self._futures[call_id] = asyncio.get_running_loop().create_future()
        self._configs[call_id] = config
        if tool is None:
            content = INVALID_TOOL_NAME_ERROR_TEMPLATE.format(
                requested_tool=name, available_tools=", ".join(self.tools_by_name)
            )
            self._finish(record, CallState.FAILED, self._error_message(record, content))
        else:
            self._maybe_start(record)
        return record

    def commit(self, call_id: str) -> CallRecord:
        """Commit a speculative call; a held unsafe call starts now."""
        record = self.ledger.set_speculation(call_id, Speculation.COMMITTED)
        self._maybe_start(record)
        return record

    def abort(self, call_id: str) -> CallRecord:
        """Abort a speculative call: cancel it (and its dependents) if not finished."""
        record = self.ledger.set_speculation(call_id, Speculation.ABORTED)
        self.cancel(call_id, "the speculative call was aborted")
        return record

    def cancel(self, call_id: str, reason: str = "cancelled") -> None:
        """Cancel a pending or running call and, in cascade, every call depending on it.

        Finished calls are left as they are.
        """
        record = self.ledger.get(call_id)
        task = self._tasks.get(call_id)
        if task is not None:
            self._finish_cancelled(record, reason)
            task.cancel()
        elif record.state is CallState.PENDING:
            self._finish_cancelled(record, reason)

    # -- waiting ---------------------------------------------------------------------
    async def wait(self, call_id: str) -> ToolMessage:
        """Wait for ``call_id`` to finish and return its ``ToolMessage``.

        Raises:
            UnknownCallError: If the call was never submitted here.
            Exception: The tool's exception, if it was not handled.
        """
        future = self._futures.get(call_id)
        if future is None:
            self.ledger.get(call_id)  # raises UnknownCallError
            raise SpeculativeError(f"call {call_id!r} was not submitted to this executor")
        done = await asyncio.shield(future)
        if done.error is not None:
            raise done.error
        assert done.message is not None
        return done.message

    async def next_completion(self, timeout: float | None = None) -> Completion:
        """Wait for the next finished call (in finishing order).

        Raises:
            TimeoutError: If nothing finished within ``timeout`` seconds.
        """
        if timeout is None:
            return await self._queue.get()
        async with asyncio.timeout(timeout):
            return await self._queue.get()

    def ready(self) -> list[Completion]:
        """Return every completion already queued, without waiting."""
        out: list[Completion] = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    async def completions(self) -> AsyncIterator[Completion]:
        """Yield completions as calls finish, until none is in flight."""
        while self.in_flight or not self._queue.empty():
            yield await self._queue.get()

    # -- internals -------------------------------------------------------------------
    def _maybe_start(self, record: CallRecord) -> None:
        if record.state is not CallState.PENDING or not record.may_run:
            return
        for dep_id in record.depends_on:
            dep = self.ledger.get(dep_id)
            if dep.state in (CallState.FAILED, CallState.CANCELLED):
                self._finish_cancelled(record, f"its dependency {dep_id!r} did not succeed")
                return
            if dep.state is not CallState.DONE:
                return  # started when the dependency finishes
        self._tasks[record.id] = asyncio.create_task(self._run(record), name=f"tool:{record.id}")

    async def _run(self, record: CallRecord) -> None:
        tool = self.tools_by_name[record.tool]
        try:
            async with self._slots:
                if not record.may_run:  # safety rule enforced here, not only in nodes
                    raise UnsafeBeforeCommitError(
                        f"call {record.id!r} to unsafe tool {record.tool!r} is not committed"
                    )
                self.ledger.transition(record.id, CallState.RUNNING)
                message = await self._invoke(tool, record)
            self._finish(record, CallState.DONE, message)
        except asyncio.CancelledError:
            if not record.state.terminal:
                self._finish_cancelled(record, "cancelled")
            raise
        except ToolTimeoutError as exc:
            content = TOOL_CALL_ERROR_TEMPLATE.format(error=repr(exc))
            self._finish(record, CallState.FAILED, self._error_message(record, content))
        except Exception as exc:  # tool errors: handled per the ToolNode contract
            if self._handler is not False and isinstance(exc, self._handled):
                content = _error_content(exc, self._handler)
                self._finish(record, CallState.FAILED, self._error_message(record, content))
            else:
                self._finish(record, CallState.FAILED, None, exc)
        finally:
            self._tasks.pop(record.id, None)

    async def _invoke(self, tool: BaseTool, record: CallRecord) -> ToolMessage:
        call = ToolCall(name=record.tool, args=record.args, id=record.id, type="tool_call")
        config = self._configs.get(record.id) or self.config
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
            raise ToolInvocationError(record.tool, exc, record.args) from exc
        if isinstance(out, ToolMessage):
            message = out
        elif hasattr(out, "goto") and hasattr(out, "update"):
            raise SpeculativeError(
                f"tool {record.tool!r} returned a Command; the executor only runs tools "
                "that return content"
            )
        else:
            message = ToolMessage(
                content=msg_content_output(out), tool_call_id=record.id, name=record.tool
            )
        message.id = result_message_id(record.id)
        message.name = message.name or record.tool
        return message

    def _error_message(self, record: CallRecord, content: str) -> ToolMessage:
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
        done = Completion(record, message, error)
        future = self._futures.get(record.id)
        if future is not None and not future.done():
            future.set_result(done)
        self._queue.put_nowait(done)
        self._release_dependents(record)

    def _release_dependents(self, finished: CallRecord) -> None:
        for rec in self.ledger.in_state(CallState.PENDING):
            if finished.id in rec.depends_on and rec.id in self._futures:
                self._maybe_start(rec)


def _handled_types(flag: ErrorHandler) -> tuple[type[BaseException], ...]:
    if isinstance(flag, type) and issubclass(flag, Exception):
        return (flag,)
    if isinstance(flag, tuple):
        return flag
    if callable(flag) and not isinstance(flag, type):
        return _annotated_exception_types(flag)
    return (Exception,)


def _annotated_exception_types(handler: Callable[..., str]) -> tuple[type[BaseException], ...]:
    """The exception types a handler's first parameter is annotated with (``Exception``
    when it has no annotation), as ``ToolNode`` infers them."""
    params = list(inspect.signature(handler).parameters.values())
    if not params:
        return (Exception,)
    first = params[1] if params[0].name in ("self", "cls") and len(params) == 2 else params[0]
    hints = get_type_hints(handler)
    hint = hints.get(first.name)
    if hint is None:
        return (Exception,)
    members = get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)
    if not all(isinstance(m, type) and issubclass(m, BaseException) for m in members):
        raise ValueError(
            "an error handler's first parameter must be annotated with exception types, "
            f"got {hint!r}"
        )
    return tuple(members)


def _error_content(exc: Exception, flag: ErrorHandler) -> str:
    if isinstance(flag, bool | tuple) or (isinstance(flag, type) and issubclass(flag, Exception)):
        return TOOL_CALL_ERROR_TEMPLATE.format(error=repr(exc))
    if isinstance(flag, str):
        return flag
    if callable(flag):
        return str(flag(exc))
    raise ValueError(f"unsupported handle_tool_errors value: {flag!r}")

