"""Tests of the tool executor: concurrency, timeouts, cancellation, dependencies, speculation,
ToolNode-compatible error handling, and shutdown.

Concurrency is observed with events and counters, never with wall-clock upper bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool
from langgraph.errors import GraphInterrupt, _mark_invalid_resume
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolInvocationError
from pydantic import BaseModel, ValidationError

from langgraph_speculative import CallLedger, ToolExecutor, label_tool
from langgraph_speculative.core.executor import (
    DEFAULT_WAIT_TIMEOUT_S,
    Completion,
    check_wait_timeout,
    result_message_id,
)
from langgraph_speculative.core.ledger import CallState, Speculation
from langgraph_speculative.errors import SpeculativeError, UnknownCallError, WaitTimeoutError

# -- helpers -----------------------------------------------------------------------------


def tc(name: str, call_id: str, **args: Any) -> ToolCall:
    return ToolCall(name=name, args=args, id=call_id, type="tool_call")


async def until(cond: Callable[[], bool]) -> None:
    """Wait until ``cond()`` holds (the 5 s limit only guards against a hang)."""
    async with asyncio.timeout(5):
        while not cond():
            await asyncio.sleep(0.001)


async def settle(rounds: int = 30) -> None:
    """Give every ready task plenty of chances to run."""
    for _ in range(rounds):
        await asyncio.sleep(0)
    await asyncio.sleep(0.005)


class Probe:
    """Tools whose progress a test controls and observes."""

    def __init__(self) -> None:
        self.running = 0
        self.max_running = 0
        self.started: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.release: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.release_all = asyncio.Event()
        self.cancelled: list[str] = []
        self.finished: list[str] = []
        self.start_order: list[str] = []

    def ran(self, key: str) -> bool:
        return self.started[key].is_set()

    def free(self, key: str) -> None:
        self.release[key].set()

    def tool(self, name: str = "work", *, safe: bool | None = True) -> BaseTool:
        probe = self

        async def work(key: str, hold: bool = True) -> str:
            """Do some work, held until the test releases it."""
            probe.running += 1
            probe.max_running = max(probe.max_running, probe.running)
            probe.start_order.append(key)
            probe.started[key].set()
            try:
                if hold:
                    release = asyncio.ensure_future(probe.release[key].wait())
                    every = asyncio.ensure_future(probe.release_all.wait())
                    try:
                        await asyncio.wait({release, every}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        release.cancel()
                        every.cancel()
                probe.finished.append(key)
                return f"{name}:{key}"
            except asyncio.CancelledError:
                probe.cancelled.append(key)
                raise
            finally:
                probe.running -= 1

        t = tool(name, description="Do some work, held until the test releases it.")(work)
        if safe is not None:
            label_tool(t, safe=safe)
        return t


async def toolnode_run(tools: list[BaseTool], call: ToolCall, **kwargs: Any) -> ToolMessage:
    """What LangGraph's own ``ToolNode`` makes of ``call`` (it raises what ToolNode raises)."""
    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode(tools, **kwargs))
    graph.add_edge(START, "tools")
    out = await graph.compile().ainvoke(
        {"messages": [HumanMessage("hi"), AIMessage(content="", tool_calls=[call])]}
    )
    msg = out["messages"][-1]
    assert isinstance(msg, ToolMessage)
    return msg


async def executor_run(tools: list[BaseTool], call: ToolCall, **kwargs: Any) -> ToolMessage:
    async with ToolExecutor(tools, **kwargs) as ex:
        ex.submit(call)
        return await ex.wait(call["id"])


@tool
async def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def mul(a: int, b: int) -> int:
    """Multiply two integers (a sync-only tool)."""
    return a * b


@tool
async def explode(why: str) -> str:
    """Raise a ValueError."""
    raise ValueError(f"bad input: {why}")


@tool
def returns(kind: str) -> Any:
    """Return a non-string value."""
    return {
        "dict": {"city": "Zürich", "temp": 3},
        "int": 42,
        "float": 1.5,
        "none": None,
        "list_str": ["a", "b"],
        "list_int": [1, 2],
        "blocks": [{"type": "text", "text": "hello"}],
        "list_dict": [{"a": 1}],
        "tuple": (1, "x"),
        "bool": True,
        "str": "plain",
        "set": {1},
    }[kind]


# -- construction ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1])
def test_max_concurrency_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        ToolExecutor([add], max_concurrency=bad)


@pytest.mark.parametrize("bad", [0, -0.5])
def test_timeout_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        ToolExecutor([add], timeout=bad)


def test_duplicate_tool_names() -> None:
    probe = Probe()
    with pytest.raises(ValueError, match="work"):
        ToolExecutor([probe.tool("work"), probe.tool("work")])


def test_valid_construction() -> None:
    ledger = CallLedger()
    ex = ToolExecutor([add, mul], ledger=ledger, max_concurrency=1, timeout=0.1)
    assert ex.ledger is ledger
    assert set(ex.tools_by_name) == {"add", "mul"}
    assert ex.in_flight == 0


# -- concurrency -------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3])
async def test_concurrency_limit_is_honoured_and_reached(limit: int) -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()], max_concurrency=limit) as ex:
        for i in range(8):
            ex.submit(tc("work", f"c{i}", key=f"c{i}"))
        await until(lambda: probe.running == limit)
        await settle()
        assert probe.running == limit  # no more than the limit started
        assert [r.state for r in ex.ledger].count(CallState.RUNNING) == limit
        for i in range(8):
            probe.free(f"c{i}")
            await ex.wait(f"c{i}")
        assert probe.max_running == limit
        assert all(r.state is CallState.DONE for r in ex.ledger)
        assert sorted(probe.finished) == sorted(f"c{i}" for i in range(8))


async def test_a_call_starts_as_soon_as_it_is_submitted() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()]) as ex:
        ex.submit(tc("work", "a", key="a"))
        await until(lambda: probe.ran("a"))
        ex.submit(tc("work", "b", key="b"))
        await until(lambda: probe.ran("b"))
        assert probe.running == 2  # b runs while a is still running
        assert ex.ledger.get("a").state is CallState.RUNNING
        probe.release_all.set()
        assert (await ex.wait("a")).content == "work:a"
        assert (await ex.wait("b")).content == "work:b"


async def test_completions_arrive_in_finishing_order() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()]) as ex:
        for key in "abcd":
            ex.submit(tc("work", key, key=key))
        await until(lambda: probe.running == 4)
        order = []
        for key in "cadb":
            probe.free(key)
            done = await ex.next_completion()
            order.append(done.call_id)
            assert done.record.state is CallState.DONE
            assert done.message is not None and done.message.content == f"work:{key}"
        assert order == list("cadb")


async def test_completions_queue_in_finishing_order_without_a_consumer() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()]) as ex:
        for key in "abc":
            ex.submit(tc("work", key, key=key))
        await until(lambda: probe.running == 3)
        for key in "bca":
            probe.free(key)
            await until(lambda k=key: ex.ledger.get(k).state is CallState.DONE)  # type: ignore[misc]
        assert [c.call_id for c in ex.ready()] == list("bca")


# -- timeouts ----------------------------------------------------------------------------


async def test_timeout_fails_the_call_with_an_error_message_and_stops_it() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()], timeout=0.03) as ex:
        rec = ex.submit(tc("work", "slow", key="slow"))
        ex.submit(tc("work", "quick", key="quick", hold=False))
        done = await ex.next_completion()
        assert done.call_id == "quick"
        done = await ex.next_completion()
        assert done.call_id == "slow"
        assert rec.state is CallState.FAILED
        assert done.error is None
        assert done.message is not None
        assert done.message.status == "error"
        assert "timed out after 0.03 s" in str(done.message.content)
        assert "ToolTimeoutError" in str(done.message.content)
        assert done.message.tool_call_id == "slow"
        assert rec.result is done.message
        assert rec.error is not None and "timed out" in rec.error
        assert await ex.wait("slow") is done.message  # a handled error: wait returns it
        assert probe.cancelled == ["slow"]  # the tool was really stopped
        assert probe.running == 0


async def test_a_tool_raising_timeout_error_itself_is_not_an_executor_timeout() -> None:
    @tool
    async def flaky() -> str:
        """Raise TimeoutError on its own."""
        raise TimeoutError("upstream")

    async with ToolExecutor([flaky], timeout=5, handle_tool_errors=True) as ex:
        ex.submit(tc("flaky", "f"))
        msg = await ex.wait("f")
    assert msg.content == "Error: TimeoutError('upstream')\n Please fix your mistakes."


# -- cancellation ------------------------------------------------------------------------


async def test_cancel_a_running_call() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()]) as ex:
        rec = ex.submit(tc("work", "a", key="a"))
        await until(lambda: probe.ran("a"))
        ex.cancel("a", "the user changed their mind")
        assert rec.state is CallState.CANCELLED
        done = await ex.next_completion()
        assert done.call_id == "a"
        assert done.message is not None
        assert done.message.status == "error"
        assert str(done.message.content).startswith("Cancelled")
        assert "the user changed their mind" in str(done.message.content)
        assert rec.error == "the user changed their mind"
        await until(lambda: probe.cancelled == ["a"])  # the tool got CancelledError
        assert (await ex.wait("a")).status == "error"
        assert ex.in_flight == 0
        await settle()
        assert ex.ready() == []  # exactly one completion


async def test_cancel_a_call_queued_on_the_concurrency_limit() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()], max_concurrency=1) as ex:
        ex.submit(tc("work", "a", key="a"))
        queued = ex.submit(tc("work", "b", key="b"))
        await until(lambda: probe.ran("a"))
        ex.cancel("b")
        assert queued.state is CallState.CANCELLED
        probe.free("a")
        await ex.wait("a")
        await settle()
        assert not probe.ran("b")
        assert queued.attempts == 0
        assert [c.call_id for c in ex.ready()] == ["b", "a"]


async def test_cancel_before_the_task_ever_ran_leaves_nothing_behind() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()]) as ex:
        rec = ex.submit(tc("work", "a", key="a", hold=False))
        ex.cancel("a")  # in the same tick: the task has not started
        await settle()
        assert rec.state is CallState.CANCELLED
        assert not probe.ran("a")
        assert ex._tasks == {}


async def test_cancel_after_completion_changes_nothing() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()]) as ex:
        rec = ex.submit(tc("work", "a", key="a", hold=False))
        await ex.wait("a")
        ex.cancel("a")
        assert rec.state is CallState.DONE
        assert rec.result is not None and rec.result.status == "success"
        assert len(ex.ready()) == 1


async def test_a_tool_swallowing_cancellation_stays_cancelled() -> None:
    started = asyncio.Event()

    @tool
    async def stubborn() -> str:
        """Ignore cancellation."""
        started.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        return "finished anyway"

    async with ToolExecutor([stubborn]) as ex:
        rec = ex.submit(tc("stubborn", "s"))
        await started.wait()
        ex.cancel("s")
        await settle()
        assert rec.state is CallState.CANCELLED
        assert rec.result is not None and str(rec.result.content).startswith("Cancelled")
        assert [c.call_id for c in ex.ready()] == ["s"]


async def test_cancel_cascades_down_a_chain() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()]) as ex:
        a = ex.submit(tc("work", "a", key="a"))
        b = ex.submit(tc("work", "b", key="b"), depends_on=["a"])
        c = ex.submit(tc("work", "c", key="c"), depends_on=["b"])
        side = ex.submit(tc("work", "side", key="side", hold=False))
        await until(lambda: probe.ran("a"))
        ex.cancel("a")
        assert (a.state, b.state, c.state) == (CallState.CANCELLED,) * 3
        await ex.wait("side")
        assert side.state is CallState.DONE
        for rec in (b, c):
            assert rec.result is not None and rec.result.status == "error"
            assert "dependency" in str(rec.result.content)
        await settle()
        assert not probe.ran("b") and not probe.ran("c")
        assert ex.in_flight == 0


async def test_cancel_a_pending_dependent_only() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()]) as ex:
        a = ex.submit(tc("work", "a", key="a"))
        b = ex.submit(tc("work", "b", key="b"), depends_on=["a"])
        c = ex.submit(tc("work", "c", key="c", hold=False), depends_on=["b"])
        ex.cancel("b")
        assert (b.state, c.state) == (CallState.CANCELLED, CallState.CANCELLED)
        probe.free("a")
        await ex.wait("a")
        assert a.state is CallState.DONE


async def test_cancel_cascade_down_a_long_chain_does_not_recurse() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()]) as ex:
        ex.submit(tc("work", "c0", key="c0"))
        for i in range(1, 1500):
            ex.submit(tc("work", f"c{i}", key=f"c{i}"), depends_on=[f"c{i - 1}"])
        await until(lambda: probe.ran("c0"))
        ex.cancel("c0")
        assert all(r.state is CallState.CANCELLED for r in ex.ledger)
        assert ex.in_flight == 0


async def test_cancel_unknown_call() -> None:
    async with ToolExecutor([add]) as ex:
        with pytest.raises(UnknownCallError):
            ex.cancel("ghost")


# -- dependencies ------------------------------------------------------------------------


async def test_a_dependent_starts_only_after_its_dependency_is_done() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()]) as ex:
        a = ex.submit(tc("work", "a", key="a"))
        b = ex.submit(tc("work", "b", key="b", hold=False), depends_on=["a"])
        await until(lambda: probe.ran("a"))
        await settle()
        assert not probe.ran("b") and b.state is CallState.PENDING
        probe.free("a")
        await ex.wait("b")
        assert probe.start_order == ["a", "b"]
        assert a.finished_at is not None and b.started_at is not None
        assert b.started_at >= a.finished_at


async def test_a_dependent_waits_for_all_its_dependencies() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()]) as ex:
        ex.submit(tc("work", "a", key="a"))
        ex.submit(tc("work", "b", key="b"))
        c = ex.submit(tc("work", "c", key="c", hold=False), depends_on=["a", "b"])
        probe.free("a")
        await ex.wait("a")
        await settle()
        assert c.state is CallState.PENDING
        probe.free("b")
        await ex.wait("c")
        assert c.state is CallState.DONE


async def test_a_dependency_done_before_submission_starts_the_dependent_at_once() -> None:
    async with ToolExecutor([add]) as ex:
        ex.submit(tc("add", "a", a=1, b=2))
        await ex.wait("a")
        ex.submit(tc("add", "b", a=3, b=4), depends_on=["a"])
        assert (await ex.wait("b")).content == "7"


@pytest.mark.parametrize("handled", [True, False])
async def test_a_dependent_of_a_failed_call_is_cancelled(handled: bool) -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool(), explode], handle_tool_errors=handled) as ex:
        bad = ex.submit(tc("explode", "a", why="x"))
        b = ex.submit(tc("work", "b", key="b", hold=False), depends_on=["a"])
        c = ex.submit(tc("work", "c", key="c", hold=False), depends_on=["b"])
        if handled:
            await ex.wait("a")
        else:
            with pytest.raises(ValueError):
                await ex.wait("a")
        assert bad.state is CallState.FAILED
        assert (b.state, c.state) == (CallState.CANCELLED, CallState.CANCELLED)
        assert b.result is not None and "'a' did not succeed" in str(b.result.content)
        assert not probe.ran("b")


async def test_a_dependent_of_an_unknown_tool_call_is_cancelled() -> None:
    async with ToolExecutor([add]) as ex:
        ex.submit(tc("nope", "a"))
        b = ex.submit(tc("add", "b", a=1, b=1), depends_on=["a"])
        assert b.state is CallState.CANCELLED


async def test_a_long_dependency_chain_runs_in_order() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()], max_concurrency=4) as ex:
        ex.submit(tc("work", "c0", key="c0", hold=False))
        for i in range(1, 400):
            ex.submit(tc("work", f"c{i}", key=f"c{i}", hold=False), depends_on=[f"c{i - 1}"])
        await ex.wait("c399")
        assert probe.start_order == [f"c{i}" for i in range(400)]
        assert probe.max_running == 1


async def test_submit_with_an_unknown_dependency() -> None:
    async with ToolExecutor([add]) as ex:
        with pytest.raises(UnknownCallError):
            ex.submit(tc("add", "b", a=1, b=1), depends_on=["ghost"])
        assert "b" not in ex.ledger
        assert ex.in_flight == 0


# -- ToolNode parity ---------------------------------------------------------------------


async def test_unknown_tool_matches_toolnode() -> None:
    call = tc("teleport", "t1", where="mars")
    expected = await toolnode_run([add, mul], call)
    async with ToolExecutor([add, mul]) as ex:
        rec = ex.submit(call)
        assert rec.state is CallState.FAILED  # at once
        msg = await ex.wait("t1")
    assert msg.content == expected.content
    assert msg.content == "Error: teleport is not a valid tool, try one of [add, mul]."
    assert msg.status == expected.status == "error"
    assert msg.name == expected.name and msg.tool_call_id == expected.tool_call_id
    assert rec.result is msg and rec.error == msg.content


@pytest.mark.parametrize(
    "args",
    [
        {"a": "x"},  # wrong type, and b missing
        {"a": 1},  # b missing
        {"a": 1, "b": [2]},
        {},
    ],
)
async def test_invalid_args_match_toolnode(args: dict[str, Any]) -> None:
    call = tc("add", "v1", **args)
    expected = await toolnode_run([add], call)
    async with ToolExecutor([add]) as ex:
        rec = ex.submit(call)
        msg = await ex.wait("v1")
    assert msg.content == expected.content
    assert "Error invoking tool 'add'" in str(msg.content)
    assert msg.status == expected.status == "error"
    assert rec.state is CallState.FAILED


async def test_invalid_args_with_errors_unhandled_raise_like_toolnode() -> None:
    call = tc("add", "v1", a="x", b=1)
    with pytest.raises(ToolInvocationError) as expected:
        await toolnode_run([add], call, handle_tool_errors=False)
    async with ToolExecutor([add], handle_tool_errors=False) as ex:
        rec = ex.submit(call)
        with pytest.raises(ToolInvocationError) as got:
            await ex.wait("v1")
    assert got.value.message == expected.value.message
    assert rec.state is CallState.FAILED


def value_error_handler(e: ValueError) -> str:
    return f"value handler saw {e}"


def type_error_handler(e: TypeError) -> str:
    return f"type handler saw {e}"


def union_handler(e: TypeError | ValueError) -> str:
    return f"union handler saw {e}"


# ToolNode reads a union from the raw annotation, which this module's future import turns
# into a string; give it the evaluated one so both sides see the same handler.
union_handler.__annotations__ = {"e": TypeError | ValueError, "return": str}


def reraising_handler(e: Exception) -> str:
    if isinstance(e, KeyError):
        return "key"
    raise e


class MethodHandler:
    def handle(self, e: ValueError) -> str:
        return f"method saw {e}"


HANDLERS: dict[str, Any] = {
    "true": True,
    "false": False,
    "string": "Something went wrong, try again.",
    "callable_value_error": value_error_handler,
    "callable_type_error": type_error_handler,
    "callable_union": union_handler,
    "callable_unannotated": lambda e: f"lambda saw {e!r}",
    "callable_reraising": reraising_handler,
    "bound_method": MethodHandler().handle,
    "type_value_error": ValueError,
    "type_type_error": TypeError,
    "tuple_matching": (TypeError, ValueError),
    "tuple_not_matching": (TypeError, KeyError),
}


@pytest.mark.parametrize("handler", list(HANDLERS))
async def test_handle_tool_errors_matches_toolnode(handler: str) -> None:
    flag = HANDLERS[handler]
    call = tc("explode", "e1", why="nope")
    expected: ToolMessage | BaseException
    try:
        expected = await toolnode_run([explode], call, handle_tool_errors=flag)
    except Exception as exc:
        expected = exc
    async with ToolExecutor([explode], handle_tool_errors=flag) as ex:
        rec = ex.submit(call)
        try:
            got: ToolMessage | BaseException = await ex.wait("e1")
        except Exception as exc:
            got = exc
        done = ex.ready()[0]
    assert rec.state is CallState.FAILED
    if isinstance(expected, ToolMessage):
        assert isinstance(got, ToolMessage)
        assert got.content == expected.content
        assert got.status == expected.status == "error"
        assert done.error is None and done.message is got
    else:
        assert isinstance(got, type(expected))
        assert str(got) == str(expected)
        assert done.error is got and done.message is None
        assert rec.result is None
        assert rec.error == repr(got)


async def test_default_handler_lets_tool_errors_propagate_like_toolnode() -> None:
    call = tc("explode", "e1", why="nope")
    with pytest.raises(ValueError, match="bad input: nope"):
        await toolnode_run([explode], call)
    async with ToolExecutor([explode]) as ex:
        rec = ex.submit(call)
        with pytest.raises(ValueError, match="bad input: nope") as info:
            await ex.wait("e1")
        with pytest.raises(ValueError) as again:  # every waiter sees it
            await ex.wait("e1")
        assert again.value is info.value
        done = ex.ready()[0]
    assert done.error is info.value and done.message is None
    assert rec.state is CallState.FAILED
    assert rec.error == "ValueError('bad input: nope')"


def test_a_handler_annotated_with_a_non_exception_type_is_refused() -> None:
    def handler(e: int) -> str:
        return "x"

    with pytest.raises(ValueError, match="exception types"):
        ToolExecutor([explode], handle_tool_errors=handler)


async def test_interrupts_are_never_handled() -> None:
    @tool
    async def asks() -> str:
        """Interrupt."""
        raise GraphInterrupt(())

    async with ToolExecutor([asks], handle_tool_errors=True) as ex:
        rec = ex.submit(tc("asks", "i"))
        with pytest.raises(GraphInterrupt):
            await ex.wait("i")
    assert rec.state is CallState.FAILED


@pytest.mark.parametrize(
    "kind",
    [
        "dict",
        "int",
        "float",
        "none",
        "list_str",
        "list_int",
        "blocks",
        "list_dict",
        "tuple",
        "bool",
        "str",
        "set",
    ],
)
async def test_non_string_results_are_serialised_like_toolnode(kind: str) -> None:
    call = tc("returns", f"r-{kind}", kind=kind)
    expected = await toolnode_run([returns], call)
    got = await executor_run([returns], call)
    assert got.content == expected.content
    assert got.status == expected.status == "success"
    assert got.name == "returns"


async def test_sync_only_tools_run() -> None:
    call = tc("mul", "m", a=6, b=7)
    expected = await toolnode_run([mul], call)
    async with ToolExecutor([mul, add]) as ex:
        ex.submit(call)
        ex.submit(tc("add", "a", a=1, b=1))
        assert (await ex.wait("m")).content == expected.content == "42"
        assert (await ex.wait("a")).content == "2"
    assert ex.ledger.get("m").state is CallState.DONE


async def test_a_tool_returning_a_toolmessage_keeps_its_artifact() -> None:
    @tool(response_format="content_and_artifact")
    async def rich(q: str) -> tuple[dict[str, int], dict[str, str]]:
        """Content and artifact."""
        return {"n": 1}, {"raw": q}

    call = tc("rich", "r", q="z")
    expected = await toolnode_run([rich], call)
    got = await executor_run([rich], call)
    assert got.content == expected.content
    assert got.artifact == expected.artifact == {"raw": "z"}


# -- result message ids ------------------------------------------------------------------


async def test_result_message_ids_are_deterministic() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool(), explode], handle_tool_errors=True) as ex:
        ex.submit(tc("work", "ok", key="ok", hold=False))
        ex.submit(tc("explode", "bad", why="x"))
        ex.submit(tc("nope", "unknown"))
        ex.submit(tc("work", "gone", key="gone"))
        ex.cancel("gone")
        for call_id in ("ok", "bad", "unknown", "gone"):
            msg = await ex.wait(call_id)
            assert msg.id == result_message_id(call_id)
            assert msg.tool_call_id == call_id
    assert result_message_id("x") == result_message_id("x") != result_message_id("y")


async def test_the_same_result_twice_is_one_message_under_add_messages() -> None:
    call = tc("add", "c1", a=1, b=2)
    first = await executor_run([add], call)
    second = await executor_run([add], call)  # e.g. re-sent after a crash
    assert first.id == second.id
    history = add_messages([AIMessage("", tool_calls=[call], id="ai-1")], [first])
    history = add_messages(history, [second])
    history = add_messages(history, [first])
    tool_messages = [m for m in history if isinstance(m, ToolMessage)]
    assert len(tool_messages) == 1 and tool_messages[0].content == "3"


# -- speculation and safety --------------------------------------------------------------


async def test_a_speculative_unsafe_call_is_held_until_commit() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool("book", safe=False)]) as ex:
        rec = ex.submit(tc("book", "b", key="b", hold=False), speculative=True)
        await settle()
        assert not probe.ran("b")
        assert rec.state is CallState.PENDING and rec.speculation is Speculation.SPECULATIVE
        assert ex.in_flight == 1
        ex.commit("b")
        assert rec.speculation is Speculation.COMMITTED
        assert (await ex.wait("b")).content == "book:b"
        assert rec.state is CallState.DONE


async def test_unlabelled_tools_are_held_too() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool("send", safe=None)]) as ex:
        rec = ex.submit(tc("send", "s", key="s", hold=False), speculative=True)
        await settle()
        assert not probe.ran("s") and rec.safe is False
        ex.commit("s")
        await ex.wait("s")


async def test_a_speculative_safe_call_runs_at_once() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool("search", safe=True)]) as ex:
        rec = ex.submit(tc("search", "s", key="s"), speculative=True)
        await until(lambda: probe.ran("s"))
        assert rec.state is CallState.RUNNING and rec.safe is True
        probe.free("s")
        await ex.wait("s")
        ex.commit("s")
        assert rec.state is CallState.DONE and rec.speculation is Speculation.COMMITTED


async def test_a_non_speculative_unsafe_call_runs_at_once() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool("book", safe=False)]) as ex:
        ex.submit(tc("book", "b", key="b", hold=False))
        await ex.wait("b")
        assert probe.ran("b")


async def test_commit_of_a_non_speculative_call_is_illegal() -> None:
    async with ToolExecutor([add]) as ex:
        ex.submit(tc("add", "a", a=1, b=1))
        with pytest.raises(SpeculativeError):
            ex.commit("a")


async def test_abort_cancels_a_running_call_and_its_dependents() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool("search", safe=True)]) as ex:
        rec = ex.submit(tc("search", "s", key="s"), speculative=True)
        dep = ex.submit(tc("search", "d", key="d", hold=False), depends_on=["s"])
        await until(lambda: probe.ran("s"))
        ex.abort("s")
        assert rec.speculation is Speculation.ABORTED
        assert rec.state is CallState.CANCELLED and dep.state is CallState.CANCELLED
        assert "aborted" in (rec.error or "")
        await until(lambda: probe.cancelled == ["s"])
        assert not probe.ran("d")
        with pytest.raises(SpeculativeError):
            ex.commit("s")  # an aborted call cannot be committed


async def test_abort_of_a_held_call_never_runs_it() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool("book", safe=False)]) as ex:
        rec = ex.submit(tc("book", "b", key="b", hold=False), speculative=True)
        ex.abort("b")
        await settle()
        assert rec.state is CallState.CANCELLED and not probe.ran("b")
        assert ex.in_flight == 0


async def test_abort_after_completion_keeps_the_result() -> None:
    async with ToolExecutor([label_tool(add.model_copy(), safe=True)]) as ex:
        rec = ex.submit(tc("add", "a", a=1, b=1), speculative=True)
        await ex.wait("a")
        ex.abort("a")
        assert rec.state is CallState.DONE and rec.speculation is Speculation.ABORTED


async def test_a_held_dependent_of_a_cancelled_call_is_cancelled_at_once() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool("search"), probe.tool("book", safe=False)]) as ex:
        ex.submit(tc("search", "s", key="s"))
        held = ex.submit(tc("book", "b", key="b", hold=False), depends_on=["s"], speculative=True)
        await until(lambda: probe.ran("s"))
        ex.cancel("s")
        assert held.state is CallState.CANCELLED
        assert ex.in_flight == 0
        seen = [c.call_id async for c in ex.completions()]  # must not hang on the held call
        assert sorted(seen) == ["b", "s"]


async def test_the_executor_enforces_safety_even_if_the_record_is_flipped() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool("work")], max_concurrency=1) as ex:
        ex.submit(tc("work", "blocker", key="blocker"))
        rec = ex.submit(tc("work", "x", key="x", hold=False), speculative=True)
        await until(lambda: probe.ran("blocker"))
        assert "x" in ex._tasks  # queued on the concurrency limit
        rec.safe = False  # e.g. a node relabels the call while it waits for a slot
        probe.free("blocker")
        await ex.wait("blocker")
        await settle()
        assert not probe.ran("x")
        assert rec.state is CallState.PENDING
        ex.commit("x")
        assert (await ex.wait("x")).content == "work:x"


async def test_a_call_aborted_through_the_ledger_while_queued_never_runs() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool("work")], max_concurrency=1) as ex:
        ex.submit(tc("work", "blocker", key="blocker"))
        rec = ex.submit(tc("work", "x", key="x", hold=False), speculative=True)
        await until(lambda: probe.ran("blocker"))
        ex.ledger.set_speculation("x", Speculation.ABORTED)  # not through the executor
        probe.free("blocker")
        msg = await ex.wait("x")
        assert rec.state is CallState.CANCELLED and not probe.ran("x")
        assert msg.status == "error"


async def test_a_call_finished_through_the_ledger_while_queued_never_runs() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool("work")], max_concurrency=1) as ex:
        ex.submit(tc("work", "blocker", key="blocker"))
        rec = ex.submit(tc("work", "x", key="x", hold=False))
        await until(lambda: probe.ran("blocker"))
        ex.ledger.transition("x", CallState.CANCELLED, error="elsewhere")
        probe.free("blocker")
        await ex.wait("blocker")
        await settle()
        assert not probe.ran("x") and rec.state is CallState.CANCELLED


# -- errors ------------------------------------------------------------------------------


async def test_an_unhandled_error_fails_the_call_and_cancels_dependents() -> None:
    probe = Probe()
    async with ToolExecutor([explode, probe.tool()]) as ex:
        rec = ex.submit(tc("explode", "e", why="w"))
        dep = ex.submit(tc("work", "d", key="d", hold=False), depends_on=["e"])
        with pytest.raises(ValueError, match="bad input: w"):
            await ex.wait("e")
        assert rec.state is CallState.FAILED and rec.result is None
        assert dep.state is CallState.CANCELLED


async def test_a_handler_that_raises_fails_the_call_instead_of_hanging() -> None:
    def handler(e: Exception) -> str:
        raise RuntimeError("handler broke") from e

    async with ToolExecutor([explode], handle_tool_errors=handler) as ex:
        rec = ex.submit(tc("explode", "e", why="w"))
        async with asyncio.timeout(5):
            with pytest.raises(RuntimeError, match="handler broke"):
                await ex.wait("e")
        assert rec.state is CallState.FAILED
        assert ex.in_flight == 0


async def test_a_tool_returning_a_command_is_refused() -> None:
    from langgraph.types import Command

    @tool
    async def jump() -> Any:
        """Return a Command."""
        return Command(goto="x")

    async with ToolExecutor([jump], handle_tool_errors=True) as ex:
        ex.submit(tc("jump", "j"))
        msg = await ex.wait("j")
    assert msg.status == "error" and "Command" in str(msg.content)


async def test_a_base_exception_is_recorded_then_propagated() -> None:
    class Stop(BaseException):
        pass

    @tool
    async def halt() -> str:
        """Raise a BaseException."""
        raise Stop

    async with ToolExecutor([halt]) as ex:
        rec = ex.submit(tc("halt", "h"))
        task = ex._tasks["h"]
        with pytest.raises(Stop):
            await ex.wait("h")
        assert rec.state is CallState.FAILED
        with pytest.raises(Stop):
            await task


# -- submission errors -------------------------------------------------------------------


async def test_submit_errors() -> None:
    async with ToolExecutor([add]) as ex:
        ex.submit(tc("add", "a", a=1, b=1))
        with pytest.raises(SpeculativeError, match="already"):
            ex.submit(tc("add", "a", a=1, b=1))
        with pytest.raises(SpeculativeError, match="no tool name"):
            ex.submit({"name": "", "args": {}, "id": "n", "type": "tool_call"})
        with pytest.raises(SpeculativeError, match="non-empty"):
            ex.submit({"name": "add", "args": {}, "id": None, "type": "tool_call"})
        with pytest.raises(SpeculativeError, match="mapping"):
            ex.submit({"name": "add", "args": [1], "id": "m", "type": "tool_call"})  # type: ignore[typeddict-item]
        assert ex.in_flight == 1
        await ex.wait("a")


# -- waiting -----------------------------------------------------------------------------


async def test_wait_on_an_unknown_id() -> None:
    async with ToolExecutor([add]) as ex:
        with pytest.raises(UnknownCallError):
            await ex.wait("ghost")


async def test_wait_on_a_ledger_call_not_submitted_here() -> None:
    ledger = CallLedger()
    ledger.create("x", "add", {})
    async with ToolExecutor([add], ledger=ledger) as ex:
        with pytest.raises(SpeculativeError, match="not submitted"):
            await ex.wait("x")


async def test_cancelling_a_waiter_does_not_cancel_the_call() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()]) as ex:
        rec = ex.submit(tc("work", "a", key="a"))
        waiter = asyncio.ensure_future(ex.wait("a"))
        await until(lambda: probe.ran("a"))
        waiter.cancel()
        await settle()
        assert rec.state is CallState.RUNNING
        probe.free("a")
        assert (await ex.wait("a")).content == "work:a"


async def test_ready_drains_without_waiting() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()]) as ex:
        assert ex.ready() == []
        ex.submit(tc("work", "a", key="a", hold=False))
        ex.submit(tc("work", "b", key="b", hold=False))
        ex.submit(tc("work", "c", key="c"))
        await ex.wait("a")
        await ex.wait("b")
        got = ex.ready()
        assert sorted(c.call_id for c in got) == ["a", "b"]
        assert all(isinstance(c, Completion) for c in got)
        assert ex.ready() == []
        assert ex.in_flight == 1
        probe.free("c")


async def test_completions_iterates_until_none_in_flight() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()], max_concurrency=2) as ex:
        for i in range(6):
            ex.submit(tc("work", f"c{i}", key=f"c{i}", hold=False))
        ex.submit(tc("nope", "bad"))
        seen = [c.call_id async for c in ex.completions()]
        assert sorted(seen) == sorted([f"c{i}" for i in range(6)] + ["bad"])
        assert ex.in_flight == 0
        assert [c async for c in ex.completions()] == []


async def test_next_completion_timeout() -> None:
    async with ToolExecutor([add]) as ex:
        with pytest.raises(TimeoutError):
            await ex.next_completion(timeout=0.01)
        ex.submit(tc("add", "a", a=1, b=1))
        assert (await ex.next_completion(timeout=5)).call_id == "a"


# -- config ------------------------------------------------------------------------------


async def test_configs_reach_the_tool() -> None:
    seen: dict[str, Any] = {}

    @tool
    async def who(tag: str, config: RunnableConfig) -> str:
        """Report the config."""
        seen[tag] = config.get("metadata", {}).get("who")
        return tag

    async with ToolExecutor([who], config={"metadata": {"who": "executor"}}) as ex:
        ex.submit(tc("who", "1", tag="default"))
        ex.submit(tc("who", "2", tag="override"), config={"metadata": {"who": "call"}})
        await ex.wait("1")
        await ex.wait("2")
    assert seen == {"default": "executor", "override": "call"}


# -- shared ledger -----------------------------------------------------------------------


async def test_the_shared_ledger_records_every_call() -> None:
    ledger = CallLedger()
    events: list[tuple[str, str, str]] = []
    ledger.subscribe(lambda ev: events.append((ev.kind, ev.record.id, ev.record.state.value)))
    async with ToolExecutor([add], ledger=ledger) as ex:
        ex.submit(tc("add", "a", a=1, b=1))
        await ex.wait("a")
    assert events == [
        ("created", "a", "pending"),
        ("state", "a", "running"),
        ("state", "a", "done"),
    ]
    rec = ledger.get("a")
    assert rec.attempts == 1 and rec.result is not None and rec.result.content == "2"


# -- shutdown ----------------------------------------------------------------------------


def other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def test_aclose_cancels_everything_and_leaves_no_tasks() -> None:
    probe = Probe()
    before = other_tasks()
    ex = ToolExecutor([probe.tool("work"), probe.tool("book", safe=False)], max_concurrency=2)
    running = [ex.submit(tc("work", f"r{i}", key=f"r{i}")) for i in range(2)]
    queued = ex.submit(tc("work", "q", key="q"))
    held = ex.submit(tc("book", "h", key="h"), speculative=True)
    dependent = ex.submit(tc("work", "d", key="d"), depends_on=["r0"])
    await until(lambda: probe.running == 2)
    await ex.aclose()
    for rec in [*running, queued, held, dependent]:
        assert rec.state is CallState.CANCELLED, rec.id
    assert sorted(probe.cancelled) == ["r0", "r1"]
    assert not probe.ran("q") and not probe.ran("h") and not probe.ran("d")
    assert other_tasks() == before
    assert ex.in_flight == 0
    assert ex._tasks == {}
    closed = [c for c in ex.ready() if c.call_id == "q"]
    assert closed and "closed" in str(closed[0].message and closed[0].message.content)
    with pytest.raises(SpeculativeError, match="closed"):
        ex.submit(tc("work", "late", key="late"))
    await ex.aclose()  # twice is fine


async def test_commit_after_close_starts_nothing() -> None:
    probe = Probe()
    ex = ToolExecutor([probe.tool("book", safe=False)])
    rec = ex.submit(tc("book", "h", key="h", hold=False), speculative=True)
    await ex.aclose()
    ex.commit("h")  # the ledger accepts it, but a closed executor starts nothing
    await settle()
    assert rec.state is CallState.CANCELLED and not probe.ran("h")
    assert not other_tasks()


async def test_async_with_closes_on_exit_even_on_error() -> None:
    probe = Probe()
    with pytest.raises(RuntimeError):
        async with ToolExecutor([probe.tool()]) as ex:
            rec = ex.submit(tc("work", "a", key="a"))
            await until(lambda: probe.ran("a"))
            raise RuntimeError("node failed")
    assert rec.state is CallState.CANCELLED
    assert probe.cancelled == ["a"]
    assert not other_tasks()


async def test_aclose_with_sync_tool_running() -> None:
    import threading

    gate = threading.Event()

    @tool
    def blocking() -> str:
        """Block a worker thread briefly."""
        gate.wait(0.05)
        return "x"

    ex = ToolExecutor([blocking])
    rec = ex.submit(tc("blocking", "b"))
    await until(lambda: rec.state is CallState.RUNNING)
    await ex.aclose()
    gate.set()
    assert rec.state is CallState.CANCELLED
    assert ex._tasks == {}


# -- many calls --------------------------------------------------------------------------


async def test_many_zero_latency_calls() -> None:
    async with ToolExecutor([add], max_concurrency=8) as ex:
        for i in range(500):
            ex.submit(tc("add", f"c{i}", a=i, b=1))
        results = await asyncio.gather(*(ex.wait(f"c{i}") for i in range(500)))
        assert [m.content for m in results] == [str(i + 1) for i in range(500)]
        assert ex.in_flight == 0
        assert len(ex.ready()) == 500


async def test_tools_receive_their_idempotency_key() -> None:
    from langgraph_speculative.core.executor import idempotency_key_of

    seen: list[str | None] = []

    @tool
    async def pay(amount: int, config: RunnableConfig) -> str:
        """Pay."""
        seen.append(idempotency_key_of(config))
        return "paid"

    async with ToolExecutor([pay]) as ex:
        rec = ex.submit(
            {"name": "pay", "args": {"amount": 3}, "id": "p1", "type": "tool_call"},
            idempotency_key="order-42",
            config={"metadata": {"user": "u1"}},
        )
        await ex.wait("p1")
    assert seen == ["order-42"] and rec.idempotency_key == "order-42"
    assert idempotency_key_of(None) is None


# -- ToolNode parity: resume errors, handler content ----------------------------------------


class _ResumeSchema(BaseModel):
    answer: str


@tool
async def bad_resume(why: str) -> str:
    """Raise what ``interrupt()`` raises for a resume value of the wrong shape."""
    try:
        _ResumeSchema.model_validate({})
    except ValidationError as exc:
        _mark_invalid_resume(exc)
        raise
    return why  # pragma: no cover


@pytest.mark.parametrize("flag", [True, "message", ValidationError, (ValidationError,)])
async def test_invalid_resume_values_are_never_handled_like_toolnode(flag: Any) -> None:
    call = tc("bad_resume", "r1", why="x")
    with pytest.raises(ValidationError) as expected:
        await toolnode_run([bad_resume], call, handle_tool_errors=flag)
    async with ToolExecutor([bad_resume], handle_tool_errors=flag) as ex:
        rec = ex.submit(call)
        with pytest.raises(ValidationError) as got:
            await ex.wait("r1")
    assert type(got.value) is type(expected.value) and str(got.value) == str(expected.value)
    assert rec.state is CallState.FAILED and rec.result is None


def list_content_handler(e: Exception) -> Any:
    return ["first", {"type": "text", "text": f"saw {type(e).__name__}"}]


@pytest.mark.parametrize("handler", [list_content_handler, lambda e: 42])
async def test_a_handlers_content_is_kept_as_toolnode_keeps_it(handler: Any) -> None:
    call = tc("explode", "e1", why="nope")
    expected = await toolnode_run([explode], call, handle_tool_errors=handler)
    async with ToolExecutor([explode], handle_tool_errors=handler) as ex:
        ex.submit(call)
        got = await ex.wait("e1")
    assert got.content == expected.content and got.status == expected.status == "error"


# -- bounded waits ------------------------------------------------------------------------


async def test_wait_with_a_timeout_raises_a_wait_timeout_error_naming_the_call() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool()]) as ex:
        ex.submit(tc("work", "w1", key="k"))
        await until(lambda: probe.ran("k"))
        with pytest.raises(WaitTimeoutError) as info:
            await ex.wait("w1", timeout=0.05)
        assert isinstance(info.value, TimeoutError) and info.value.timeout == 0.05
        assert str(info.value).startswith("waited 0.05 s for the result of call 'w1' (work)")
        assert "the call is running" in str(info.value)
        assert ex.ledger.get("w1").state is CallState.RUNNING  # the call goes on
        probe.free("k")
        assert (await ex.wait("w1", timeout=5)).content == "work:k"


async def test_next_completion_timeout_names_the_unfinished_calls() -> None:
    probe = Probe()
    async with ToolExecutor([probe.tool(), probe.tool("book", safe=False)]) as ex:
        ex.submit(tc("work", "w1", key="k"))
        ex.submit(tc("book", "b1", key="b"), speculative=True)  # held until commit
        ex.submit(tc("work", "w2", key="k2"), depends_on=["w1"])
        await until(lambda: probe.ran("k"))
        with pytest.raises(WaitTimeoutError, match="the next tool call to finish") as info:
            await ex.next_completion(timeout=0.05)
        text = str(info.value)
        assert "w1 (work, running)" in text
        assert "b1 (book, held until the commit point)" in text
        assert "w2 (work, pending on w1)" in text
        assert ex.describe_unfinished() in text
    assert ex.describe_unfinished() == "no call is unfinished"


@pytest.mark.parametrize("bad", [None, 0, -1, float("inf"), float("nan"), True, "3"])
def test_check_wait_timeout_refuses_unbounded_or_bad_values(bad: Any) -> None:
    with pytest.raises(ValueError, match="wait_timeout"):
        check_wait_timeout(bad)


def test_check_wait_timeout_takes_positive_numbers() -> None:
    assert check_wait_timeout(2) == 2.0 and check_wait_timeout(0.01) == 0.01
    assert DEFAULT_WAIT_TIMEOUT_S == 300.0
