"""Tests of ``bench recovery``: tasks, journal, analysis, and crash-and-resume end to end."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from langgraph_speculative.bench import recovery_trial as child
from langgraph_speculative.bench.recovery_bench import (
    METRICS,
    RecoveryConfig,
    RecoveryResult,
    add_arguments,
    analyze_trial,
    make_task,
    run,
    run_recovery_benchmark,
)
from langgraph_speculative.core.safety import (
    is_idempotent_tool,
    is_safe_tool,
    takes_idempotency_key,
)
from langgraph_speculative.errors import CheckpointerError, SpeculativeError
from langgraph_speculative.integrations.sim.latency import LatencyModel
from langgraph_speculative.integrations.sim.scripted_model import ScriptedChatModel

FAST = LatencyModel(ttft_ms=60, tpot_ms=2, tool_lo_ms=40, tool_hi_ms=150)
HAS_WRAPPER = importlib.util.find_spec("langgraph_speculative.durability.checkpointer") is not None
SYSTEMS = ("stock", "interrupt_aware") if HAS_WRAPPER else ("stock",)
SEED = 3  # every task of trials 0-2 has a keyless ticket call that runs at once


# -- tasks and tools -------------------------------------------------------------------------
def test_make_task_is_seeded_and_mixes_every_kind_of_tool() -> None:
    assert make_task(1, 7) == make_task(1, 7)
    assert make_task(1, 7) != make_task(2, 7)
    for trial in range(20):
        task = make_task(trial, 0)
        kinds = {child.TOOL_KINDS[c.name][0] for c in task.calls}
        assert kinds == {"read", "keyed", "unkeyed"}
        assert task.call("pay").depends_on == ("invoice",)
        assert task.call("email").depends_on == ("pay",)
        assert 4 <= len(task.calls) <= 7
    assert all(any(c.name == "create_ticket" for c in make_task(t, SEED).calls) for t in range(3))


def _instant_tools(task: Any, trial: int, tmp_path: Path) -> list[Any]:
    """The task's tools (first attempt, plain saver), journaling to a file, no latency."""
    journal = child.Journal(tmp_path / "j.jsonl")
    return list(
        child.build_tools(
            task,
            trial=trial,
            system="stock",
            attempt=0,
            journal=journal,
            latency=LatencyModel.zero(),
        )
    )


def test_build_tools_labels_by_kind(tmp_path: Path) -> None:
    task = make_task(0, SEED)
    tools = _instant_tools(task, 0, tmp_path)
    by_name = {t.name: t for t in tools}
    assert is_safe_tool(by_name["get_balance"])
    assert not is_safe_tool(by_name["pay_invoice"]) and takes_idempotency_key(
        by_name["pay_invoice"]
    )
    unkeyed = by_name["send_email"]
    assert not (
        is_safe_tool(unkeyed) or is_idempotent_tool(unkeyed) or takes_idempotency_key(unkeyed)
    )


async def test_tools_journal_every_execution_with_key_and_call_id(tmp_path: Path) -> None:
    task = make_task(0, SEED)
    journal = child.Journal(tmp_path / "j.jsonl")
    tools = child.build_tools(
        task, trial=5, system="stock", attempt=2, journal=journal, latency=LatencyModel.zero()
    )
    pay = next(t for t in tools if t.name == "pay_invoice")
    call = task.tool_call(task.call("pay"))
    config: Any = {"metadata": {"idempotency_key": "key-1"}}
    first = await pay.ainvoke(call, config)
    again = await pay.ainvoke(call, config)
    assert first.content == again.content  # the provider applied key-1 once
    events = [
        (r["event"], r["key"], r["call_id"], r["trial"], r["attempt"]) for r in journal.records()
    ]
    assert [e[0] for e in events] == ["start", "effect", "done", "start", "replay", "done"]
    assert all(e[1:] == ("key-1", call["id"], 5, 2) for e in events)


async def test_standard_agent_is_the_usual_tool_loop(tmp_path: Path) -> None:
    task = make_task(1, SEED)
    tools = _instant_tools(task, 1, tmp_path)
    model = ScriptedChatModel(
        script=child.AttemptResponder(task, 0, "stable"), latency=LatencyModel.zero()
    )
    saver = InMemorySaver()
    graph = child.standard_agent(model, tools).compile(checkpointer=saver)
    config: Any = {"configurable": {"thread_id": "t"}}
    out = await graph.ainvoke({"messages": [HumanMessage(task.question)]}, config)
    assert out["messages"][-1].content == task.final_answer()
    calls = [
        str(c["id"]) for m in out["messages"] if isinstance(m, AIMessage) for c in m.tool_calls
    ]
    answered = [m.tool_call_id for m in out["messages"] if isinstance(m, ToolMessage)]
    assert sorted(calls) == sorted(answered) and len(calls) == len(task.calls)
    # model turns and tool batches are supersteps of their own, each checkpointed
    steps = [t.metadata["step"] for t in saver.list(config)]
    assert len(steps) > 2 * 2


def test_journal_skips_a_torn_line_and_keeps_appending(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = child.Journal(path)
    journal.append({"event": "start", "n": 1})
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"event": "eff')  # a writer killed mid-line
    journal.append({"event": "done", "n": 2})
    assert [r["n"] for r in journal.records()] == [1, 2]


def test_keyless_effects_always_apply(tmp_path: Path) -> None:
    journal = child.Journal(tmp_path / "j.jsonl")
    a = journal.apply_effect({"tool": "send_email"}, key=None)
    b = journal.apply_effect({"tool": "send_email"}, key=None)
    assert a != b
    assert [r["event"] for r in journal.records()] == ["effect", "effect"]


def test_attempt_responder_fresh_ids_keep_earlier_calls() -> None:
    task = make_task(0, SEED)
    first = child.AttemptResponder(task, 0, "fresh")([HumanMessage(task.question)])
    ids = [c["id"] for c in first.tool_calls]
    assert ids and all(i.endswith("_a0") for i in ids)
    history = [HumanMessage(task.question), AIMessage("", tool_calls=list(first.tool_calls))]
    history += [ToolMessage("ok", tool_call_id=i) for i in ids]
    later = child.AttemptResponder(task, 1, "fresh")(history)
    assert later.tool_calls and all(c["id"].endswith("_a1") for c in later.tool_calls)
    assert not {child.canonical_call_id(c["id"]) for c in later.tool_calls} & {
        child.canonical_call_id(i) for i in ids
    }
    stable = child.AttemptResponder(task, 1, "stable")([HumanMessage(task.question)])
    assert [c["id"] for c in stable.tool_calls] == [child.canonical_call_id(i) for i in ids]


async def test_timing_saver_delegates_and_counts() -> None:
    def node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage("hi")]}

    builder = StateGraph(MessagesState)
    builder.add_node("n", node)
    builder.add_edge(START, "n")
    builder.add_edge("n", END)
    inner = InMemorySaver()
    timed = child.TimingSaver(inner)
    graph = builder.compile(checkpointer=timed)
    config: Any = {"configurable": {"thread_id": "t"}}
    out = await graph.ainvoke({"messages": [HumanMessage("x")]}, config)
    assert out["messages"][-1].content == "hi"
    assert timed.stats.calls["aput"] >= 2 and timed.stats.seconds > 0
    assert (await inner.aget_tuple(config)) is not None  # stored in the wrapped saver


# -- analysis --------------------------------------------------------------------------------
def _outcome(task: Any, answers: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    """A finished outcome answering planned calls with (tool_call_id, content) pairs."""
    calls = []
    tools = []
    for pid, pairs in answers.items():
        planned = task.call(pid)
        for call_id, content in pairs:
            calls.append({"id": call_id, "name": planned.name, "args": dict(planned.args)})
            status = "error" if content.startswith("Outcome unknown") else "success"
            tools.append(
                {"type": "tool", "tool_call_id": call_id, "content": content, "status": status}
            )
    final = {"type": "ai", "content": task.final_answer(), "tool_calls": []}
    messages = [{"type": "ai", "content": "", "tool_calls": calls}, *tools, final]
    return {"status": "finished", "messages": messages}


def _rec(event: str, planned: str, attempt: int, result: str = "") -> dict[str, Any]:
    return {"event": event, "planned": planned, "attempt": attempt, "result": result}


def test_analyze_trial_counts_each_failure_mode() -> None:
    task = make_task(0, SEED)
    ids = {c.id: task.tool_call_id(c) for c in task.calls}
    records = [
        _rec("start", "balance", 0),
        _rec("done", "balance", 0, "B"),  # reused after the kill
        _rec("start", "ticket", 0),
        _rec("effect", "ticket", 0),
        _rec("done", "ticket", 0, "T1"),
        _rec("start", "ticket", 1),  # run again: a second ticket, another result
        _rec("effect", "ticket", 1),
        _rec("done", "ticket", 1, "T2"),
        _rec("start", "email", 0),
        _rec("effect", "email", 0),  # killed after the effect: answered unknown
        _rec("start", "pay", 1),
        _rec("effect", "pay", 1),
        _rec("done", "pay", 1, "P"),
    ]
    answers = {
        "balance": [(ids["balance"], "B")],
        "ticket": [(ids["ticket"], "T2")],
        "email": [(ids["email"], "Outcome unknown: ...")],
        "pay": [(ids["pay"], "P"), (ids["pay"], "P")],  # the same id answered twice
    }
    answers |= {c.id: [(ids[c.id], "r")] for c in task.calls if c.id not in answers}
    counts = analyze_trial(task, records, _outcome(task, answers), last_attempt=1)
    assert counts["completed"] == 1
    assert counts["lost_results"] == 1  # T1, replaced by T2
    assert counts["duplicate_side_effects"] == 1 and counts["extra_side_effects"] == 1
    assert counts["duplicate_tool_messages"] == 1
    assert counts["resumed_calls"] == 1  # balance
    assert counts["reexecuted_calls"] == 1  # ticket
    assert counts["outcome_unknown"] == 1 and counts["unknown_after_effect"] == 1
    assert counts["missing_side_effects"] == sum(
        1
        for c in task.calls
        if child.TOOL_KINDS[c.name][0] != "read" and c.id not in {"ticket", "email", "pay"}
    )


def test_analyze_trial_counts_missing_answers_and_unfinished_runs() -> None:
    task = make_task(0, SEED)
    ids = {c.id: task.tool_call_id(c) for c in task.calls}
    some = {"balance": [(ids["balance"], "B")]}
    counts = analyze_trial(task, [], _outcome(task, some), last_attempt=0)
    assert counts["lost_results"] == len(task.calls) - 1
    records = [_rec("done", "balance", 0, "B"), _rec("done", "invoice", 0, "I")]
    failed = {"status": "error", "error_type": "OutcomeUnknownError", "error": "x"}
    counts = analyze_trial(task, records, failed, last_attempt=1)
    assert counts["completed"] == 0 and counts["lost_results"] == 2
    assert counts["outcome_unknown"] == 1


# -- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"trials": 0}, "trials"),
        ({"systems": ("stock", "nope")}, "systems"),
        ({"systems": ()}, "systems"),
        ({"dsn": "postgresql://x"}, "DSN"),
        ({"durability": "never"}, "durability"),
        ({"call_ids": "odd"}, "call_ids"),
        ({"max_kills": 0}, "max_kills"),
        ({"kill_window": (0.5, 0.2)}, "kill_window"),
        ({"concurrency": 0}, "concurrency"),
        ({"outcome_policy": "ignore"}, "outcome_policy"),
        ({"overhead_runs": -1}, "overhead_runs"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        RecoveryConfig(**kwargs)


def test_missing_wrapper_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        __import__("sys").modules, "langgraph_speculative.durability.checkpointer", None
    )
    with pytest.raises(CheckpointerError, match="--systems stock"):
        child.interrupt_aware_class()
    with pytest.raises(CheckpointerError):
        run_recovery_benchmark(RecoveryConfig(trials=1, progress_bar=False))


async def test_refuses_to_fork_from_a_running_loop() -> None:
    with pytest.raises(SpeculativeError, match="event loop"):
        run_recovery_benchmark(RecoveryConfig(trials=1, systems=("stock",), progress_bar=False))


def test_an_attempt_past_its_timeout_fails_the_trial(tmp_path: Path) -> None:
    config = RecoveryConfig(
        trials=1,
        systems=("stock",),
        latency=FAST,
        attempt_timeout_s=0.05,
        workdir=tmp_path,
        progress_bar=False,
    )
    doc = run_recovery_benchmark(config).document()
    stock = doc["systems"]["stock"]
    assert stock["completed"] == 0 and stock["kills"] == 0
    assert "timeout" in stock["failures"][0]["error"]


def test_a_failed_overhead_phase_keeps_the_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise SpeculativeError("simulated failure of the overhead runs")

    monkeypatch.setattr(child, "measure_overhead", broken)  # the forked child inherits it
    config = RecoveryConfig(
        trials=1,
        latency=FAST,
        kill_window=(0.5, 0.9),
        workdir=tmp_path,
        overhead_runs=1,
        progress_bar=False,
    )
    result = run_recovery_benchmark(config)
    doc = result.document()
    assert doc["completed"] == 1
    assert doc["overhead"]["sequential"] is None
    assert "measuring the overhead" in doc["overhead"]["sequential_error"]
    assert "overhead runs failed" in result.table()


# -- end to end ------------------------------------------------------------------------------
def _killed_attempts(result: RecoveryResult, system: str) -> dict[str, int]:
    """Distinct calls that, in a killed attempt, took effect (by kind) or returned."""
    counts = {"keyed": 0, "unkeyed": 0, "returned": 0}
    for trial in result.results[system]:
        assert trial.directory is not None
        records = child.Journal(trial.directory / "journal.jsonl").records()
        killed = [r for r in records if r["attempt"] < len(trial.attempts) - 1]
        for kind in ("keyed", "unkeyed"):
            counts[kind] += len(
                {r["planned"] for r in killed if r["event"] == "effect" and r["kind"] == kind}
            )
        counts["returned"] += len({r["planned"] for r in killed if r["event"] == "done"})
    return counts


def _check_document(doc: dict[str, Any], trials: int) -> None:
    for key in ("trials", *METRICS):
        assert key in doc
        for system in SYSTEMS:
            assert key in doc["systems"][system]
    assert doc["trials"] == trials
    assert doc["default_system"] == SYSTEMS[-1]
    assert "wrapper_pct" in doc["overhead"]
    json.dumps(doc)  # serialisable


def _run_late_kills(tmp_path: Path, checkpointer: str, dsn: str | None, trials: int) -> Any:
    config = RecoveryConfig(
        trials=trials,
        systems=SYSTEMS,
        checkpointer=checkpointer,  # type: ignore[arg-type]
        dsn=dsn,
        seed=SEED,
        latency=FAST,
        kill_window=(0.6, 0.9),  # late: the first attempt has done real work
        workdir=tmp_path,
        overhead_runs=2,
        progress_bar=False,
    )
    return run_recovery_benchmark(config)


def _check_systems(result: RecoveryResult, trials: int) -> None:
    doc = result.document()
    _check_document(doc, trials)
    stock = doc["systems"]["stock"]
    for system in SYSTEMS:
        s = doc["systems"][system]
        assert s["uncrashed"] == {"completed": trials, **{k: 0 for k in METRICS[1:]}}
        assert s["kills"] == s["killed_trials"] == trials, s["failures"]
    # the plain saver re-runs the whole node: every keyless effect of the killed attempt
    # repeats; keyed ones reach the provider again under the same key (stable call ids)
    killed = _killed_attempts(result, "stock")
    assert killed["unkeyed"] > 0
    assert stock["duplicate_side_effects"] == killed["unkeyed"]
    assert stock["provider_replays"] == killed["keyed"]
    assert stock["resumed_calls"] == 0
    assert stock["reexecuted_calls"] >= killed["returned"]
    if "interrupt_aware" in doc["systems"]:
        aware = doc["systems"]["interrupt_aware"]
        assert aware["completed"] == trials, aware["failures"]
        for key in ("lost_results", "duplicate_side_effects", "duplicate_tool_messages"):
            assert aware[key] == 0, (key, aware)
        killed = _killed_attempts(result, "interrupt_aware")
        assert 0 < aware["resumed_calls"] <= killed["returned"]
        assert doc["overhead"]["runs"] == trials
        # measured one run at a time: the async agent journals (more storage calls); the
        # same tasks as LangGraph's usual tool loop have nothing to journal, so there the
        # wrapper adds no storage call
        seq = doc["overhead"]["sequential"]
        assert seq["runs"] == 2
        agent, standard = seq["async_agent"], seq["standard_graph"]
        assert agent["runs"] == standard["runs"] == 2
        assert agent["wrapped_calls_per_run"] > agent["plain_calls_per_run"] > 0
        assert standard["wrapped_calls_per_run"] == standard["plain_calls_per_run"] > 0
        assert isinstance(seq["agent_vs_standard_pct_p50"], float)


def test_sqlite_end_to_end(tmp_path: Path) -> None:
    result = _run_late_kills(tmp_path, "sqlite", None, trials=3)
    _check_systems(result, 3)
    assert result.document()["checkpointer"] == "sqlite"


def test_postgres_end_to_end(tmp_path: Path, postgres_dsn: str) -> None:
    result = _run_late_kills(tmp_path, "postgres", postgres_dsn, trials=2)
    _check_systems(result, 2)
    assert result.document()["store"] == "postgres"


def test_early_kills_resume_from_the_first_checkpoints(tmp_path: Path) -> None:
    # killed while LangGraph writes its first checkpoints: the resumed run must still
    # start the task (the input step's writes may be saved with no later checkpoint)
    config = RecoveryConfig(
        trials=3,
        systems=SYSTEMS,
        latency=FAST,
        kill_window=(0.0, 0.15),
        workdir=tmp_path,
        overhead_runs=0,
        progress_bar=False,
    )
    doc = run_recovery_benchmark(config).document()
    for system in SYSTEMS:
        s = doc["systems"][system]
        assert s["completed"] == 3, (system, s["failures"])
        assert s["duplicate_tool_messages"] == 0
    if "interrupt_aware" in doc["systems"]:
        assert doc["systems"]["interrupt_aware"]["lost_results"] == 0


def test_command_line_writes_the_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from langgraph_speculative.integrations.sim.latency import add_latency_arguments

    parser = argparse.ArgumentParser()
    add_latency_arguments(parser, estimates=False)
    add_arguments(parser)
    out = tmp_path / "recovery.json"
    args = parser.parse_args(
        [
            "--trials", "1", "--systems", "stock", "--ttft-ms", "40", "--tpot-ms", "1",
            "--tool-ms", "30:60", "--kill-window", "0.5:0.9", "--json", str(out),
            "--no-progress", "--workdir", str(tmp_path / "w"),
        ]
    )  # fmt: skip
    code = run(args)
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["trials"] == 1 and doc["kill_window"] == [0.5, 0.9]
    assert doc["systems"]["stock"]["kills"] == 1
    clean = doc["completed"] == 1 and not doc["duplicate_side_effects"] and not doc["lost_results"]
    assert code == (0 if clean else 1)
    assert "stock" in capsys.readouterr().out


def test_reconcile_policy_asks_the_provider(tmp_path: Path) -> None:
    from langgraph_speculative.core.ledger import CallLedger
    from langgraph_speculative.durability.resume import ResolutionKind

    journal = child.Journal(tmp_path / "journal.jsonl")
    journal.apply_effect({"trial": 1, "call_id": "sent", "tool": "send_email"}, None)
    hook = child.outcome_hook("reconcile", journal, 1)
    ledger = CallLedger()
    sent = ledger.create("sent", "send_email", {"to": "a"}, safe=False)
    unsent = ledger.create("unsent", "send_email", {"to": "b"}, safe=False)
    delivered = hook(sent)
    assert delivered.kind is ResolutionKind.DELIVER and "confirmation" in (delivered.content or "")
    assert hook(unsent).kind is ResolutionKind.RERUN
    other_trial = child.outcome_hook("reconcile", journal, 2)
    assert other_trial(sent).kind is ResolutionKind.RERUN
    with pytest.raises(ValueError, match="journal"):
        child.outcome_hook("reconcile")
