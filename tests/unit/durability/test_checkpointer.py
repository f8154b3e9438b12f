"""The interrupt-aware checkpointer: delegation, journals, corrupt records, leases."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO_ROOT
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_speculative.core.executor import ToolExecutor
from langgraph_speculative.core.ledger import CallRecord, CallState
from langgraph_speculative.core.safety import label_tool
from langgraph_speculative.durability.checkpointer import InterruptAwareCheckpointer, journal_for
from langgraph_speculative.durability.journal import (
    JOURNAL_CHANNEL,
    JOURNAL_TASK_PREFIX,
    LEASE_CHANNEL,
    LEASE_METADATA_KEY,
    LEASE_TASK_PREFIX,
    CheckpointView,
    Lease,
    RunJournal,
)
from langgraph_speculative.durability.resume import TurnRecord
from langgraph_speculative.errors import (
    CheckpointerError,
    ConcurrentResumeError,
    JournalCorruptError,
    SpeculativeError,
)
from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel
from langgraph_speculative.nodes import create_async_agent

ZERO = LatencyModel.zero()


def parent(saver: Any, thread: str = "t") -> str:
    stored = saver.put(
        {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}, empty_checkpoint(), {}, {}
    )
    return str(stored["configurable"]["checkpoint_id"])


def journal(saver: Any, checkpoint_id: str, task: str = "k", **kw: Any) -> RunJournal:
    return RunJournal(
        saver, thread_id="t", checkpoint_ns="", checkpoint_id=checkpoint_id, task_id=task, **kw
    )


def config_of(checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": "t", "checkpoint_ns": "", "checkpoint_id": checkpoint_id}}


@tool
async def get_weather(city: str) -> str:
    """Current weather of a city."""
    return f"sunny in {city}"


def weather_agent(saver: Any) -> Any:
    model = ScriptedChatModel(
        script=[ModelTurn.calls(("get_weather", {"city": "Paris"})), ModelTurn(text="Sunny.")],
        latency=ZERO,
    )
    return create_async_agent(model, [get_weather]).compile(checkpointer=saver)


# -- delegation ------------------------------------------------------------------------------
async def test_a_normal_run_through_the_wrapper_leaves_a_journal() -> None:
    inner = InMemorySaver()
    graph = weather_agent(InterruptAwareCheckpointer(inner))
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    out = await graph.ainvoke({"messages": [HumanMessage("Weather?")]}, config)
    assert out["messages"][-1].content == "Sunny."
    # the journal rides as pending writes of the step's parent checkpoint
    writes = [
        w
        for tup in inner.list(config)
        for w in (tup.pending_writes or ())
        if w[0].startswith((JOURNAL_TASK_PREFIX, LEASE_TASK_PREFIX))
    ]
    kinds = [w[2]["type"] for w in writes if w[1] == JOURNAL_CHANNEL]
    # the call's turn and result were written before the model's next request; the answer
    # turn goes with the release that ends a run which wrote records
    assert kinds == ["call_started", "turn", "call_finished", "turn", "release"]
    # the run stored the checkpoint itself: its creator lease rides in the metadata (not
    # shown to LangGraph), no claim is written
    assert sum(1 for w in writes if w[1] == LEASE_CHANNEL) == 0
    raw = [tup.metadata.get(LEASE_METADATA_KEY) for tup in inner.list(config)]
    assert all(r is not None and r["epoch"] == 0 for r in raw)
    wrapped = InterruptAwareCheckpointer(inner)
    assert all(LEASE_METADATA_KEY not in t.metadata for t in wrapped.list(config))
    # the state is exactly what the plain saver gives
    plain = weather_agent(InMemorySaver())
    expected = await plain.ainvoke({"messages": [HumanMessage("Weather?")]}, config)
    assert [type(m) for m in out["messages"]] == [type(m) for m in expected["messages"]]


async def test_a_turn_node_with_idempotent_tools_journals_nothing() -> None:
    from langgraph.graph import END, START, MessagesState, StateGraph

    from langgraph_speculative.nodes import AsyncToolCallingNode

    @tool
    async def temperature(city: str) -> str:
        """Current temperature of a city."""
        return f"12 C in {city}"

    label_tool(temperature, safe=True)
    script = [
        ModelTurn.calls(("temperature", {"city": "Oslo"}), ("temperature", {"city": "Rome"})),
        ModelTurn.calls(("temperature", {"city": "Lima"})),
        ModelTurn(text="Mild everywhere."),
    ]
    node = AsyncToolCallingNode(
        ScriptedChatModel(script=script, latency=ZERO), [temperature], until="turn"
    )
    builder = StateGraph(MessagesState)
    builder.add_node("model", node)
    builder.add_edge(START, "model")
    builder.add_conditional_edges(
        "model", lambda s: "model" if isinstance(s["messages"][-1], ToolMessage) else END
    )
    inner = InMemorySaver()
    graph = builder.compile(checkpointer=InterruptAwareCheckpointer(inner))
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    out = await graph.ainvoke({"messages": [HumanMessage("Temperatures?")]}, config)
    assert out["messages"][-1].content == "Mild everywhere."
    assert sum(isinstance(m, ToolMessage) for m in out["messages"]) == 3
    # each turn's results leave the node as its output, which LangGraph saves: the journal
    # has nothing to add, so the wrapper writes no storage call of its own
    journaled = [
        w
        for tup in inner.list(config)
        for w in (tup.pending_writes or ())
        if w[0].startswith((JOURNAL_TASK_PREFIX, LEASE_TASK_PREFIX))
    ]
    assert journaled == []


async def test_sync_only_sqlite_saver_serves_an_async_graph(tmp_path: Path) -> None:
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(str(tmp_path / "c.db"), check_same_thread=False)
    try:
        inner = SqliteSaver(conn)
        saver = InterruptAwareCheckpointer(inner)
        saver.setup()  # the wrapped saver's own API stays reachable
        graph = weather_agent(saver)
        config: RunnableConfig = {"configurable": {"thread_id": "t"}}
        out = await graph.ainvoke({"messages": [HumanMessage("Weather?")]}, config)
        assert out["messages"][-1].content == "Sunny."
        assert inner.get_tuple(config) is not None
        assert [c async for c in saver.alist(config)]
    finally:
        conn.close()


def test_with_allowlist_keeps_the_wrapper() -> None:
    saver = InterruptAwareCheckpointer(InMemorySaver(), lease_ttl=7.0)
    clone = saver.with_allowlist([("my_module", "MyType")])
    assert isinstance(clone, InterruptAwareCheckpointer)
    assert clone.lease_ttl == 7.0


def test_journal_for_is_none_without_the_wrapper() -> None:
    assert journal_for(None) is None
    assert journal_for({"configurable": {"__pregel_checkpointer": InMemorySaver()}}) is None
    saver = InterruptAwareCheckpointer(InMemorySaver())
    conf = {
        "__pregel_checkpointer": saver,
        "__pregel_task_id": "task",
        "thread_id": "t",
        "checkpoint_ns": "agent:task",
        "checkpoint_map": {"": "ck"},
    }
    found = journal_for({"configurable": conf})
    assert found is not None and (found.checkpoint_id, found.task_id) == ("ck", "task")
    assert journal_for({"configurable": {**conf, "__pregel_durability": "exit"}}) is None


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(CheckpointerError, match="lease_ttl"):
        InterruptAwareCheckpointer(InMemorySaver(), lease_ttl=0)
    with pytest.raises(SpeculativeError, match="task_id"):
        RunJournal(InMemorySaver(), thread_id="t", checkpoint_ns="", checkpoint_id="c", task_id="")


async def test_executor_refuses_an_unopened_journal() -> None:
    saver = InMemorySaver()
    with pytest.raises(SpeculativeError, match="open the run journal"):
        ToolExecutor([get_weather], journal=journal(saver, parent(saver)))


async def test_a_missing_parent_checkpoint_is_a_clear_error() -> None:
    j = journal(InMemorySaver(), "no-such-checkpoint", parent_wait=0.0)
    with pytest.raises(CheckpointerError, match="not in the store"):
        await j.open()


# -- corrupt and foreign records --------------------------------------------------------------
@pytest.mark.parametrize(
    ("task", "channel", "value", "match"),
    [
        (f"{JOURNAL_TASK_PREFIX}k:0000000001", JOURNAL_CHANNEL, b"\x00garbage", "record 1"),
        (f"{JOURNAL_TASK_PREFIX}k:0000000001", JOURNAL_CHANNEL, {"lgs": 99}, "record 1"),
        (
            f"{JOURNAL_TASK_PREFIX}k:0000000002",
            JOURNAL_CHANNEL,
            {"lgs": 1, "seq": 1, "type": "turn", "owner": "o", "at": 1.0, "data": {}},
            "seq 1 is stored as 2",
        ),
        (
            f"{JOURNAL_TASK_PREFIX}k:0000000001",
            JOURNAL_CHANNEL,
            {"lgs": 1, "seq": 1, "type": "format_disk", "owner": "o", "at": 1.0, "data": {}},
            "unknown record type",
        ),
        (
            f"{JOURNAL_TASK_PREFIX}k:0000000001",
            JOURNAL_CHANNEL,
            {
                "lgs": 1,
                "seq": 1,
                "type": "call_finished",
                "owner": "o",
                "at": 1.0,
                "data": {"id": "ghost", "state": "done", "result": None, "error": None},
            },
            "never started",
        ),
        (f"{JOURNAL_TASK_PREFIX}k:xyz", JOURNAL_CHANNEL, {}, "numeric index"),
        ("someone-else", JOURNAL_CHANNEL, {"hello": 1}, "foreign write"),
        (f"{LEASE_TASK_PREFIX}k:000001", LEASE_CHANNEL, {"owner": "x"}, "lease 1"),
    ],
)
async def test_damaged_or_foreign_records_are_named(
    task: str, channel: str, value: Any, match: str
) -> None:
    saver = InMemorySaver()
    ck = parent(saver)
    saver.put_writes(config_of(ck), [(channel, value)], task)
    with pytest.raises(JournalCorruptError, match=match) as info:
        await journal(saver, ck).open()
    assert "thread 't'" in str(info.value) and "task 'k'" in str(info.value)


async def test_other_tasks_journals_are_left_alone() -> None:
    saver = InMemorySaver()
    ck = parent(saver)
    other = journal(saver, ck, task="other")
    await other.open()
    await other.call_started(CallRecord("c1", "t", {}))
    await other.close()
    state = await journal(saver, ck).open()
    assert not state.resuming and state.calls == {}


async def test_a_damaged_record_of_a_real_run_is_named() -> None:
    inner = InMemorySaver()
    graph = weather_agent(InterruptAwareCheckpointer(inner))
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    await graph.ainvoke({"messages": [HumanMessage("Weather?")]}, config)
    # damage the second record of the agent step's journal, then open that journal
    history = [t for t in inner.list(config)]
    step = next(
        t
        for t in history
        if any(w[0].startswith(JOURNAL_TASK_PREFIX) for w in (t.pending_writes or ()))
    )
    task = next(w[0] for w in step.pending_writes or () if w[0].startswith(JOURNAL_TASK_PREFIX))
    victim = task.rsplit(":", 1)[0] + ":0000000002"
    key = (  # InMemorySaver's storage: rewrite the record in place
        "t",
        "",
        step.config["configurable"]["checkpoint_id"],
    )
    writes = inner.writes[key]
    for inner_key, (tid, channel, _value, path) in list(writes.items()):
        if tid == victim:
            writes[inner_key] = (tid, channel, inner.serde.dumps_typed({"bad": True}), path)
    assert any(tid == victim for tid, *_ in writes.values())
    journaled = journal(
        inner, step.config["configurable"]["checkpoint_id"], task=task.split(":")[1]
    )
    with pytest.raises(JournalCorruptError, match="journal record 2"):
        await journaled.open()


# -- leases ----------------------------------------------------------------------------------
async def test_a_live_run_holds_the_task_until_it_ends() -> None:
    saver = InMemorySaver()
    ck = parent(saver)
    first = journal(saver, ck)
    await first.open()
    with pytest.raises(ConcurrentResumeError, match="another run holds it"):
        await journal(saver, ck).open()
    await first.close()
    second = journal(saver, ck)
    await second.open()
    assert second.lease is not None and second.lease.epoch == 2
    await second.close()


async def test_a_crashed_runs_lease_is_stale() -> None:
    saver = InMemorySaver()
    ck = parent(saver)
    crashed = journal(saver, ck)
    await crashed.open()
    crashed.detach()  # the run is gone without releasing
    again = journal(saver, ck)
    await again.open()
    assert again.lease is not None and again.lease.epoch == 2


def _plant_lease(saver: Any, ck: str, **fields: Any) -> None:
    lease = Lease(1, "someone", socket.gethostname(), os.getpid(), time.time(), 60.0)
    value = {**lease.to_dict(), **fields}
    saver.put_writes(config_of(ck), [(LEASE_CHANNEL, value)], f"{LEASE_TASK_PREFIX}k:000001")


async def test_leases_of_dead_processes_and_expired_hosts_are_stale() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cases = [
        ({"pid": dead.pid}, False),  # this host, the process is gone
        ({"pid": os.getppid()}, True),  # this host, a live process
        ({"host": "elsewhere", "at": time.time() - 120.0}, False),  # expired
        ({"host": "elsewhere"}, True),  # another host, within its ttl
    ]
    for fields, alive in cases:
        saver = InMemorySaver()
        ck = parent(saver)
        _plant_lease(saver, ck, **fields)
        j = journal(saver, ck)
        if alive:
            with pytest.raises(ConcurrentResumeError, match="someone"):
                await j.open()
        else:
            await j.open()
            assert j.lease is not None and j.lease.epoch == 2
            await j.close()


async def test_two_resumes_at_once_one_wins(tmp_path: Path) -> None:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with (
        AsyncSqliteSaver.from_conn_string(str(tmp_path / "c.db")) as a,
        AsyncSqliteSaver.from_conn_string(str(tmp_path / "c.db")) as b,
    ):
        await a.setup()
        await b.setup()
        stored = await a.aput(
            {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}, empty_checkpoint(), {}, {}
        )
        ck = stored["configurable"]["checkpoint_id"]
        outcomes = await asyncio.gather(
            journal(a, ck).open(), journal(b, ck).open(), return_exceptions=True
        )
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], ConcurrentResumeError)


async def test_two_resumes_at_once_on_postgres(postgres_dsn: str) -> None:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with (
        AsyncPostgresSaver.from_conn_string(postgres_dsn) as a,
        AsyncPostgresSaver.from_conn_string(postgres_dsn) as b,
    ):
        await a.setup()
        thread = f"lease-{time.time_ns()}"
        stored = await a.aput(
            {"configurable": {"thread_id": thread, "checkpoint_ns": ""}},
            empty_checkpoint(),
            {},
            {},
        )
        ck = stored["configurable"]["checkpoint_id"]

        def pg_journal(saver: Any) -> RunJournal:
            return RunJournal(
                saver, thread_id=thread, checkpoint_ns="", checkpoint_id=ck, task_id="k"
            )

        outcomes = await asyncio.gather(
            pg_journal(a).open(), pg_journal(b).open(), return_exceptions=True
        )
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], ConcurrentResumeError)


_HOLDER = """
import asyncio, sys
from pathlib import Path
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph_speculative.durability.checkpointer import InterruptAwareCheckpointer
from langgraph_speculative.errors import ConcurrentResumeError
from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel
from langgraph_speculative.nodes import create_async_agent
from langgraph_speculative.core.safety import label_tool

db, flag, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

@tool
async def slow(x: int) -> str:
    '''Slow.'''
    if mode == "hold":
        flag.write_text("running")
        await asyncio.sleep(60)
    return "ok"

script = [ModelTurn(tool_calls=({"name": "slow", "args": {"x": 1}, "id": "s1",
                                 "type": "tool_call"},)), ModelTurn(text="done")]

async def main():
    async with AsyncSqliteSaver.from_conn_string(str(db)) as inner:
        graph = create_async_agent(
            ScriptedChatModel(script=script, latency=LatencyModel.zero()), [slow]
        ).compile(checkpointer=InterruptAwareCheckpointer(inner))
        config = {"configurable": {"thread_id": "shared"}}
        if mode == "hold":
            await graph.ainvoke({"messages": [HumanMessage("go")]}, config)
        else:
            try:
                out = await graph.ainvoke(None, config)
                print("RESUMED", out["messages"][-1].content)
            except ConcurrentResumeError as exc:
                print("REFUSED", exc)

asyncio.run(main())
"""


def test_two_processes_on_one_thread_one_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "holder.py"
    script.write_text(_HOLDER)
    db, flag = tmp_path / "c.db", tmp_path / "flag"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    holder = subprocess.Popen([sys.executable, str(script), str(db), str(flag), "hold"], env=env)
    try:
        start = time.monotonic()
        while not flag.exists():
            assert holder.poll() is None, "the holder ended early"
            assert time.monotonic() - start < 60, "the holder never started its tool"
            time.sleep(0.02)
        second = subprocess.run(
            [sys.executable, str(script), str(db), str(flag), "resume"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "REFUSED" in second.stdout, second.stdout + second.stderr
        assert "another run holds it" in second.stdout
        assert f"pid {holder.pid}" in second.stdout
    finally:
        holder.kill()
        holder.wait(timeout=30)
    third = subprocess.run(
        [sys.executable, str(script), str(db), str(flag), "resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "RESUMED done" in third.stdout, third.stdout + third.stderr


# -- write failures --------------------------------------------------------------------------
class _FailingSaver(InMemorySaver):
    """Stores records until ``fail_on`` (a record type) comes, then raises."""

    fail_on = "call_finished"

    def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        for _, value in writes:
            if isinstance(value, dict) and value.get("type") == self.fail_on:
                raise OSError("disk full")
        super().put_writes(config, writes, task_id, task_path)

    async def aput_writes(
        self, config: Any, writes: Any, task_id: str, task_path: str = ""
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)


async def test_a_result_that_cannot_be_stored_is_not_delivered() -> None:
    graph = weather_agent(InterruptAwareCheckpointer(_FailingSaver()))
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    with pytest.raises(OSError, match="disk full"):
        await graph.ainvoke({"messages": [HumanMessage("Weather?")]}, config)
    state = await graph.aget_state(config)
    assert not any(isinstance(m, ToolMessage) for m in state.values.get("messages", []))


async def test_journal_round_trip_of_every_record_type() -> None:
    from langchain_core.messages import ToolMessage as TM

    from langgraph_speculative.core.ledger import InputRecord, Speculation
    from langgraph_speculative.durability.resume import TurnRecord

    saver = InMemorySaver()
    ck = parent(saver)
    j = journal(saver, ck)
    await j.open()
    await j.call_started(CallRecord("c1", "get_weather", {"city": "Rome"}, safe=True))
    await j.call_finished("c1", CallState.DONE, TM("sunny", tool_call_id="c1"))
    await j.turn(TurnRecord(1, "hi", ({"name": "get_weather", "args": {}, "id": "c1"},)))
    j.post_speculation("c1", Speculation.COMMITTED)
    j.post_input(InputRecord(1, "weather in", final=False))
    j.post_delivered(["c1"])
    await j.flush()
    j.detach()
    state = await journal(saver, ck).open()
    assert state.completed()["c1"].content == "sunny"
    assert state.turns[1].text == "hi" and state.delivered == {"c1"}
    assert state.speculation == {"c1": Speculation.COMMITTED}
    assert [u.text for u in state.inputs] == ["weather in"]
    assert state.undelivered() == [] and state.records == 6


# -- the cost of a journal: batches, remembered checkpoints ----------------------------------
class _CountingSaver(InMemorySaver):
    """Counts the saver calls (reads and writes) and the writes of each call."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.batches: list[int] = []

    async def aget_tuple(self, config: RunnableConfig) -> Any:
        self.reads += 1
        return await super().aget_tuple(config)

    async def aput_writes(
        self, config: Any, writes: Any, task_id: str, task_path: str = ""
    ) -> None:
        self.batches.append(len(writes))
        await super().aput_writes(config, writes, task_id, task_path)


async def test_queued_records_go_in_one_saver_call_and_read_back() -> None:
    saver = _CountingSaver()
    ck = parent(saver)
    first = journal(saver, ck)
    await first.open()
    assert saver.batches == [1]  # the lease claim
    first.defer("speculation", {"id": "c1", "speculation": "committed"})
    await first.call_started(CallRecord("c1", "get_weather", {"city": "Oslo"}), durable=False)
    assert saver.batches == [1]  # deferred: nothing written yet
    message = ToolMessage("sunny", tool_call_id="c1", name="get_weather")
    await first.call_finished("c1", CallState.DONE, message)
    assert saver.batches == [1, 3]  # one call for the three records
    first.detach()
    records, _ = await journal(saver, ck).read()
    assert [(r.seq, r.type) for r in records] == [
        (1, "speculation"),
        (2, "call_started"),
        (3, "call_finished"),
    ]
    again = journal(saver, ck)
    state = await again.open()
    assert state.calls["c1"].result is not None and state.records == 3
    await again.close()


async def test_a_batch_with_a_missing_record_is_named() -> None:
    saver = InMemorySaver()
    ck = parent(saver)
    record = {"lgs": 1, "type": "turn", "owner": "o", "at": 1.0, "data": {}}
    writes = [(JOURNAL_CHANNEL, {**record, "seq": 1}), (JOURNAL_CHANNEL, {**record, "seq": 3})]
    saver.put_writes(config_of(ck), writes, f"{JOURNAL_TASK_PREFIX}k:0000000001")
    with pytest.raises(JournalCorruptError, match=r"record 1: .*a batch of 2 from seq 1"):
        await journal(saver, ck).open()


async def test_a_checkpoint_the_wrapper_just_stored_needs_no_claim_and_no_read() -> None:
    inner = _CountingSaver()
    saver = InterruptAwareCheckpointer(inner)
    ck = parent(saver)
    j = journal(saver, ck)
    await j.open()  # its creator lease rides in the checkpoint's metadata
    assert inner.reads == 0 and inner.batches == []
    assert j.lease is not None and j.lease.epoch == 0 and j.owner == saver.owner
    await j.turn(TurnRecord(1, text="hi"))
    await j.close()
    assert inner.reads == 0 and inner.batches == [1, 1]  # the turn, the release
    # the same task again (a retried node): a fresh read, a claim and its read-back
    after = journal(saver, ck)
    state = await after.open()
    assert inner.reads == 2 and after.lease is not None and after.lease.epoch == 1
    assert state.turns[1].text == "hi" and [r.type for r in after.records] == ["turn", "release"]
    await after.close()
    inner.reads = 0
    plain = journal(inner, ck)  # without the wrapper: a read before the claim
    await plain.open()
    assert inner.reads == 2 and plain.lease is not None and plain.lease.epoch == 2
    await plain.close()


async def test_a_live_creator_keeps_a_task_it_has_not_started_for_the_claim_window() -> None:
    inner = InMemorySaver()
    saver = InterruptAwareCheckpointer(inner, claim_window=0.2)
    ck = parent(saver)  # stored by "this process": its tasks are its own
    other = journal(inner, ck, claim_window=0.2)  # another run that loaded it
    with pytest.raises(ConcurrentResumeError, match=f"another run holds it.*{saver.owner}"):
        await other.open()
    await asyncio.sleep(0.25)  # the creator never started the task (its run ended)
    taker = journal(inner, ck, claim_window=0.2)
    await taker.open()
    assert taker.lease is not None and taker.lease.epoch == 1
    late = journal(saver, ck, claim_window=0.2)  # the creator, too late: it must read
    with pytest.raises(ConcurrentResumeError, match="another run holds it"):
        await late.open()
    await taker.close()


async def test_a_late_creator_reads_back_once_and_sees_a_takeover() -> None:
    inner = _CountingSaver()
    saver = InterruptAwareCheckpointer(inner, claim_window=0.2)
    ck = parent(saver)
    creator = journal(saver, ck, claim_window=0.2)
    await creator.open()
    _plant_lease(inner, ck)  # someone took the task over (epoch 1) meanwhile
    time.sleep(0.15)  # a blocked loop: its first record (even the heartbeat) comes late
    with pytest.raises(ConcurrentResumeError, match=r"took it over.*someone"):
        await creator.turn(TurnRecord(1, text="hi"))
    assert inner.reads == 1
    creator.detach()
    # in time, the creator writes without reading
    ck = parent(saver)
    quick = journal(saver, ck, claim_window=60.0)
    await quick.open()
    await quick.turn(TurnRecord(1, text="hi"))
    await quick.close()
    assert inner.reads == 1


async def test_a_premature_claim_is_voided_when_the_creator_shows_up() -> None:
    inner = InMemorySaver()
    # a checkpoint another host stored a second ago (its creator lease in the metadata)
    far = Lease(0, "far", "elsewhere", 4242, time.time() - 1.0, 60.0)
    stored = inner.put(
        {"configurable": {"thread_id": "t", "checkpoint_ns": ""}},
        empty_checkpoint(),
        {LEASE_METADATA_KEY: far.to_dict()},  # type: ignore[typeddict-unknown-key]
        {},
    )
    ck = stored["configurable"]["checkpoint_id"]
    # its first record, written just after a taker looked
    record = {"lgs": 1, "seq": 1, "type": "start", "owner": "far", "at": time.time(), "data": {}}
    inner.put_writes(
        config_of(ck), [(JOURNAL_CHANNEL, record)], f"{JOURNAL_TASK_PREFIX}k:0000000001"
    )
    taker = journal(inner, ck, claim_window=0.2)
    looked = CheckpointView([], far.to_dict(), time.time())  # saw no record: claims
    with pytest.raises(ConcurrentResumeError, match=r"another run holds it.*far"):
        await taker._open(looked)
    writes = inner.get_tuple(config_of(ck)).pending_writes or []
    assert sorted(w[0] for w in writes if w[1] == LEASE_CHANNEL) == [
        f"{LEASE_TASK_PREFIX}k:000001",
        f"{LEASE_TASK_PREFIX}k:000001v",
    ]
    # the voided claim holds nothing; the creator does, until its ttl
    records, leases = await journal(inner, ck).read()
    assert [x.owner for x in leases] == ["far"] and records[0].type == "start"
    with pytest.raises(ConcurrentResumeError, match="far"):
        await journal(inner, ck).open()


async def test_a_safe_result_that_cannot_be_stored_is_not_delivered() -> None:
    @tool
    async def forecast(city: str) -> str:
        """Forecast of a city."""
        return f"sunny in {city}"

    label_tool(forecast, safe=True)  # its result is written without being waited for
    model = ScriptedChatModel(
        script=[ModelTurn.calls(("forecast", {"city": "Paris"})), ModelTurn(text="Sunny.")],
        latency=ZERO,
    )
    graph = create_async_agent(model, [forecast]).compile(
        checkpointer=InterruptAwareCheckpointer(_FailingSaver())
    )
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    with pytest.raises(OSError, match="disk full"):
        await graph.ainvoke({"messages": [HumanMessage("Weather?")]}, config)
    state = await graph.aget_state(config)
    assert not any(isinstance(m, ToolMessage) for m in state.values.get("messages", []))


# -- small API: records kept after open, attach_journal, TurnRecord.meta ----------------------
async def test_turn_meta_round_trips_and_executor_attaches_a_journal() -> None:
    saver = InMemorySaver()
    ck = parent(saver)
    first = journal(saver, ck)
    await first.open()
    await first.turn(TurnRecord(1, text="hi", meta={"speculated": ["c1"], "n": 2}))
    await first.turn(TurnRecord(2, text="bye"))
    first.detach()
    again = journal(saver, ck)
    state = await again.open()
    assert state.turns[1].meta == {"speculated": ["c1"], "n": 2} and state.turns[2].meta == {}
    assert "meta" not in TurnRecord(2).to_dict()  # the stored form is unchanged without it
    assert [(r.seq, r.type) for r in again.records] == [(1, "turn"), (2, "turn")]
    with pytest.raises(SpeculativeError, match="meta must be a mapping"):
        TurnRecord.from_dict({"index": 1, "meta": ["x"]})
    executor = ToolExecutor([get_weather])
    with pytest.raises(SpeculativeError, match="open the run journal"):
        executor.attach_journal(journal(saver, ck))
    executor.attach_journal(again)
    assert executor.journal is again
    executor.submit({"name": "get_weather", "args": {"city": "Oslo"}, "id": "c9"})
    message = await executor.wait("c9")
    assert message.content == "sunny in Oslo"
    await again.flush()
    records, _ = await journal(saver, ck).read()
    assert [r.type for r in records][-2:] == ["call_started", "call_finished"]
    executor.attach_journal(None)
    assert executor.journal is None
    await executor.aclose()
    await again.close()
