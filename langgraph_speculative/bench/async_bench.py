"""``langgraph-speculative bench async``: asynchronous function calling vs stock LangGraph.

Protocol: ``BENCHMARKS.md`` section 1 (shared). Every BFCL record becomes a scripted task;
the simulated model emits exactly the ground-truth calls, then a short final answer. The
modes run side by side in one process on the same tasks, tools and latency model, with the
(task, mode) runs interleaved in a seeded order so every mode sees the same load:

- ``sync``: one call per model turn (ReAct), stock ``create_agent``.
- ``sync_parallel``: every ready call in one turn, stock ``create_agent`` whose
  ``ToolNode`` runs them in parallel: what an existing LangGraph app does today.
- ``async_stateless``: this project's :func:`~langgraph_speculative.nodes.create_async_agent`
  on a chat-completions back-end: calls start the moment they are complete in the stream;
  results reach the model in the next request, batched.
- ``async_interruptible``: the same node on an interruptible back-end: results are
  injected into the running generation; a trap waits only when nothing is ready.

With ``--via-http`` each mode also runs through the real ``ChatOpenAI`` client against the
simulated OpenAI-compatible server (modes ``sync@http``, ``sync_parallel@http``), and the
report says whether those runs executed exactly the same calls.

Example:
    ```python
    import asyncio
    from langgraph_speculative.bench.async_bench import run_benchmark
    from langgraph_speculative.integrations import LatencyModel, PlannedCall, ScriptedTask

    fn = {"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "integer"}}}}
    task = ScriptedTask("t", "f twice", (fn,), (PlannedCall("0", "f", {"x": 1}),
                                               PlannedCall("1", "f", {"x": 2})))
    result = asyncio.run(run_benchmark([task], LatencyModel.zero(), progress_bar=False))
    assert result.document()["calls"]["lost"] == 0
    ```
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from pydantic import ValidationError

from langgraph_speculative.bench.report import (
    format_table,
    percentile,
    progress,
    summarize,
    write_json,
)
from langgraph_speculative.bench.timeline import Span, TimelineRecorder
from langgraph_speculative.core.ledger import canonical_json
from langgraph_speculative.errors import SpeculativeError
from langgraph_speculative.integrations.sim.bfcl import add_strict_argument, load_bfcl
from langgraph_speculative.integrations.sim.latency import Backend, LatencyModel
from langgraph_speculative.integrations.sim.scripted_model import ModelTurn, ScriptedChatModel
from langgraph_speculative.integrations.sim.scripted_tasks import (
    Policy,
    ScriptedTask,
    TaskResponder,
)

__all__ = [
    "BASELINE_MODES",
    "MODES",
    "BenchResult",
    "Endpoint",
    "Overhead",
    "TaskRun",
    "add_arguments",
    "ideal_ms",
    "measure_overhead",
    "run",
    "run_benchmark",
]

BASELINE_MODES: tuple[str, ...] = ("sync", "sync_parallel")
"""The modes built from stock LangGraph."""

MODES: tuple[str, ...] = (*BASELINE_MODES, "async_stateless", "async_interruptible")
"""Every mode, in report order."""

_POLICY: dict[str, Policy] = {
    "sync": "sequential",
    "sync_parallel": "parallel",
    "async_stateless": "async",
    "async_interruptible": "async",
}
_HTTP_MODES = ("sync", "sync_parallel", "async_stateless")  # an HTTP API is stateless
_HTTP = "@http"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A real OpenAI-compatible model endpoint to benchmark instead of the simulation.

    Attributes:
        base_url: The endpoint's base URL (for example ``http://127.0.0.1:8000/v1``).
        model: The model name.
        api_key: The API key (``"none"`` for servers that want none).
    """

    base_url: str
    model: str
    api_key: str = "none"


@dataclass(slots=True)
class TaskRun:
    """One task run in one mode.

    Attributes:
        task_id: The task.
        mode: The mode (``sync``, ``sync_parallel``, ``sync@http``, ...).
        ms: Wall-clock time from the request to the final answer.
        calls: Executed calls as ``(tool_call_id, tool, canonical args)``, in start order.
        spans: Model and tool spans (see :mod:`langgraph_speculative.bench.timeline`).
        model_requests: Number of model requests made.
        error: The error text if the run failed.
    """

    task_id: str
    mode: str
    ms: float
    calls: list[tuple[str | None, str, str]] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    model_requests: int = 0
    error: str | None = None


def ideal_ms(task: ScriptedTask, latency: LatencyModel) -> float:
    """Lower bound of a task's latency under the latency model.

    One decoding stream (time to first token once), calls emitted longest-first among the
    ready ones, each call started the moment its arguments are written, a call that needs a
    result emitted only once that result is in (the stream waits otherwise, at no extra
    first-token cost), and the final answer written once every result is in.
    """
    tpot = latency.tpot_ms
    t = latency.ttft_ms
    done_at: dict[str, float] = {}
    remaining = list(task.calls)
    while remaining:
        ready = [
            c for c in remaining if all(done_at.get(d, float("inf")) <= t for d in c.depends_on)
        ]
        if not ready:
            t = min(f for f in done_at.values() if f > t)
            continue
        call = max(ready, key=lambda c: latency.tool_ms(c.name, c.args))
        t += ModelTurn(tool_calls=(task.tool_call(call),)).output_tokens * tpot
        done_at[call.id] = t + latency.tool_ms(call.name, call.args)
        remaining.remove(call)
    if done_at:
        t = max(t, *done_at.values())
    return t + ModelTurn(text=task.final_answer()).output_tokens * tpot


@dataclass(slots=True)
class BenchResult:
    """Everything one ``bench async`` run measured.

    Attributes:
        tasks: The tasks.
        modes: The modes, in report order.
        runs: ``(task id, mode)`` to the run.
        latency: The latency model.
        ideal: Task id to :func:`ideal_ms`.
        overhead: The framework cost at zero latency (:func:`measure_overhead`), if timed.
        estimate_noise: How well the simulated model knew each call's duration.
        endpoint: The real endpoint benchmarked, if any.
    """

    tasks: list[ScriptedTask]
    modes: list[str]
    runs: dict[tuple[str, str], TaskRun]
    latency: LatencyModel
    ideal: dict[str, float]
    overhead: Overhead | None = None
    estimate_noise: float | None = 0.5
    endpoint: Endpoint | None = None

    def failures(self) -> list[TaskRun]:
        """Runs that ended in an error."""
        return [r for r in self.runs.values() if r.error is not None]

    def call_counts(self, mode: str | None = None) -> dict[str, int]:
        """Expected, executed, duplicated and lost calls (over all modes by default).

        Calls are matched by (tool, canonical arguments), so runs of a real model (whose
        call ids are its own) are counted the same way: an executed call beyond the
        expected count of its key is *duplicated* (or unexpected), an expected call never
        executed is *lost*.
        """
        counts = Counter[str]()
        for task in self.tasks:
            expected = Counter((c.name, canonical_json(dict(c.args))) for c in task.calls)
            for m in self.modes if mode is None else [mode]:
                run = self.runs[(task.id, m)]
                seen = Counter((tool, args) for _, tool, args in run.calls)
                counts["expected"] += sum(expected.values())
                counts["executed"] += len(run.calls)
                counts["duplicated"] += sum((seen - expected).values())
                counts["lost"] += sum((expected - seen).values())
        return {k: counts[k] for k in ("expected", "executed", "duplicated", "lost")}

    def http_mismatches(self) -> list[str]:
        """Tasks whose ``@http`` run executed other calls than the in-process run."""
        out: list[str] = []
        for mode in self.modes:
            if not mode.endswith(_HTTP):
                continue
            base = mode.removesuffix(_HTTP)
            for task in self.tasks:
                a = sorted(self.runs[(task.id, base)].calls, key=str)
                b = sorted(self.runs[(task.id, mode)].calls, key=str)
                if a != b:
                    out.append(f"{task.id} ({mode})")
        return out

    def document(self) -> dict[str, Any]:
        """The JSON document of ``BENCHMARKS.md`` section 1 (plus extra keys)."""
        ok = [t for t in self.tasks if all(self.runs[(t.id, m)].error is None for m in self.modes)]
        modes = (
            {m: summarize([self.runs[(t.id, m)].ms for t in ok]) for m in self.modes} if ok else {}
        )
        speedup: dict[str, float] = {}
        for ref in ("sync", "sync_parallel"):
            if ref not in self.modes or not ok:
                continue
            for m in self.modes:
                if m == ref or (ref == "sync_parallel" and m == "sync"):
                    continue
                ratios = [self.runs[(t.id, ref)].ms / self.runs[(t.id, m)].ms for t in ok]
                speedup[f"{m}_vs_{ref}"] = sum(ratios) / len(ratios)
        doc: dict[str, Any] = {
            "benchmark": "async",
            "model": (
                {"base_url": self.endpoint.base_url, "model": self.endpoint.model}
                if self.endpoint is not None
                else "simulated"
            ),
            "tasks": len(self.tasks),
            "tasks_completed": len(ok),
            "latency": {
                "ttft_ms": self.latency.ttft_ms,
                "tpot_ms": self.latency.tpot_ms,
                "prefill_ms_per_1k": self.latency.prefill_ms_per_1k,
                "tool_ms": [self.latency.tool_lo_ms, self.latency.tool_hi_ms],
                "seed": self.latency.seed,
                "estimate_noise": self.estimate_noise,
            },
            "modes": modes,
            "speedup": speedup,
            "ideal_ms": sum(self.ideal[t.id] for t in ok) / len(ok) if ok else None,
            "efficiency": (
                sum(self.ideal[t.id] / self.runs[(t.id, "async_interruptible")].ms for t in ok)
                / len(ok)
                if ok and "async_interruptible" in self.modes
                else None
            ),
            "overhead_us_per_call": self.overhead.per_call_us() if self.overhead else None,
            "us_per_call_at_zero_latency": dict(self.overhead.us_per_call) if self.overhead else {},
            "overhead": self.overhead.document() if self.overhead else None,
            "calls": self.call_counts(),
            "calls_by_mode": {m: self.call_counts(m) for m in self.modes},
            "model_requests": {
                m: sum(self.runs[(t.id, m)].model_requests for t in self.tasks) for m in self.modes
            },
            "failures": [
                {"task": r.task_id, "mode": r.mode, "error": r.error} for r in self.failures()
            ],
        }
        if any(m.endswith(_HTTP) for m in self.modes):
            mismatches = self.http_mismatches()
            doc["via_http"] = {"calls_identical": not mismatches, "mismatches": mismatches}
        return doc

    def table(self) -> str:
        """A readable table of the document."""
        doc = self.document()
        rows = []
        for m in self.modes:
            stats = doc["modes"].get(m)
            counts = doc["calls_by_mode"][m]
            rows.append(
                [
                    m,
                    f"{stats['mean_ms']:.0f}" if stats else "-",
                    f"{stats['p50_ms']:.0f}" if stats else "-",
                    f"{stats['p90_ms']:.0f}" if stats else "-",
                    _ratio(doc["speedup"], m, "sync"),
                    _ratio(doc["speedup"], m, "sync_parallel"),
                    str(doc["model_requests"][m]),
                    f"{counts['executed']}/{counts['expected']}",
                    str(counts["duplicated"]),
                    str(counts["lost"]),
                ]
            )
        head = [
            "mode",
            "mean ms",
            "p50 ms",
            "p90 ms",
            "vs sync",
            "vs sync_par",
            "requests",
            "calls",
            "dup",
            "lost",
        ]
        lines = [format_table(head, rows)]
        if doc["ideal_ms"] is not None:
            lines.append(f"ideal (critical path) mean: {doc['ideal_ms']:.0f} ms")
        if doc["efficiency"] is not None:
            lines.append(f"efficiency (ideal / async_interruptible): {doc['efficiency']:.3f}")
        if self.overhead is not None:
            parts = ", ".join(f"{m} {v:.0f}" for m, v in self.overhead.us_per_call.items())
            lines.append(f"CPU µs per call at zero latency (median): {parts}")
            spread = "; ".join(
                f"{m} {v['p50']:.0f} (p10 {v['p10']:.0f}, p90 {v['p90']:.0f})"
                for m, v in self.overhead.paired.items()
            )
            lines.append(
                f"framework overhead per call, mode minus bare, paired over "
                f"{self.overhead.tasks} tasks x {self.overhead.rounds} rounds: {spread}"
            )
        if "via_http" in doc:
            same = doc["via_http"]["calls_identical"]
            lines.append(f"via HTTP (real ChatOpenAI): calls identical to in-process: {same}")
        if doc["failures"]:
            lines.append(f"FAILED runs: {len(doc['failures'])} (see the JSON 'failures')")
        return "\n".join(lines)


def _ratio(speedup: Mapping[str, float], mode: str, ref: str) -> str:
    if mode == ref:
        return "1.00x"
    value = speedup.get(f"{mode}_vs_{ref}")
    return f"{value:.2f}x" if value is not None else "-"


def _make_model(
    task: ScriptedTask,
    mode: str,
    latency: LatencyModel,
    base_url: str | None,
    estimate_noise: float | None,
    endpoint: Endpoint | None = None,
) -> BaseChatModel:
    policy = _POLICY[mode.removesuffix(_HTTP)]
    if endpoint is not None:
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.api_key,  # type: ignore[arg-type]
            model=endpoint.model,
            streaming=True,
            max_retries=2,
            timeout=300,
            # one call per turn is the sync baseline's definition
            model_kwargs={"parallel_tool_calls": False} if mode == "sync" else {},
        )
    if mode.endswith(_HTTP):
        if base_url is None:
            raise SpeculativeError(f"mode {mode!r} needs the simulated server")
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            base_url=base_url,
            api_key="sim",  # type: ignore[arg-type]
            model=f"{policy}/{task.id}",
            streaming=True,
            max_retries=0,
            timeout=120,
        )
    backend: Backend = "interruptible" if mode == "async_interruptible" else "stateless"
    responder = TaskResponder.on_latency(
        task, latency, policy=policy, estimate_noise=estimate_noise
    )
    return ScriptedChatModel(script=responder, latency=latency, backend=backend)


@dataclass(slots=True)
class _Prepared:
    task: ScriptedTask
    mode: str
    agent: Any
    journal: Any
    scripted: bool = True


def _prepare(
    task: ScriptedTask,
    mode: str,
    latency: LatencyModel,
    base_url: str | None,
    estimate_noise: float | None = 0.5,
    endpoint: Endpoint | None = None,
) -> _Prepared:
    """Build a run's tools and agent (not timed)."""
    from langchain.agents import create_agent

    from langgraph_speculative.integrations.sim.tools import ToolJournal, make_simulated_tools
    from langgraph_speculative.nodes import create_async_agent

    journal = ToolJournal()
    tools = make_simulated_tools(task.functions, latency=latency, journal=journal)
    model = _make_model(task, mode, latency, base_url, estimate_noise, endpoint)
    if mode.startswith("async"):
        agent: Any = create_async_agent(model, tools).compile()
    else:
        agent = create_agent(model, tools)
    return _Prepared(task, mode, agent, journal, scripted=endpoint is None)


async def _run_one(prepared: _Prepared) -> TaskRun:
    task, mode, agent, journal = prepared.task, prepared.mode, prepared.agent, prepared.journal
    recorder = TimelineRecorder()
    config: RunnableConfig = {"callbacks": [recorder], "recursion_limit": 4 * len(task.calls) + 10}
    start = time.perf_counter()
    error: str | None = None
    try:
        out = await agent.ainvoke({"messages": [HumanMessage(task.question)]}, config=config)
        final = out["messages"][-1]
        answered = isinstance(final, AIMessage) and not final.tool_calls
        if not answered or (prepared.scripted and final.content != task.final_answer()):
            error = f"the run did not end with the final answer (last message: {final!r:.200})"
    except Exception as exc:  # a failed run is reported, not fatal to the benchmark
        error = f"{type(exc).__name__}: {exc}"
    ms = (time.perf_counter() - start) * 1e3
    spans = recorder.spans()
    return TaskRun(
        task_id=task.id,
        mode=mode,
        ms=ms,
        calls=[(e.call_id, e.tool, canonical_json(e.args)) for e in journal.entries],
        spans=spans,
        model_requests=sum(1 for s in spans if s.kind == "model"),
        error=error,
    )


async def run_benchmark(
    tasks: Sequence[ScriptedTask],
    latency: LatencyModel,
    *,
    modes: Sequence[str] = MODES,
    via_http: bool = False,
    concurrency: int = 16,
    seed: int = 0,
    progress_bar: bool = True,
    overhead_tasks: int = 0,
    overhead_rounds: int = 3,
    estimate_noise: float | None = 0.5,
    endpoint: Endpoint | None = None,
) -> BenchResult:
    """Run every task in every mode, interleaved, at most ``concurrency`` at once.

    Args:
        tasks: The scripted tasks.
        latency: The latency model.
        modes: Modes to run (see :data:`MODES`).
        via_http: Also run each stateless mode through ``ChatOpenAI`` and the simulated
            server (modes ``<mode>@http``).
        concurrency: Most task runs at once.
        seed: Seed of the interleaving order.
        progress_bar: Show a progress bar on stderr.
        overhead_tasks: Also measure framework overhead on this many tasks (0: skip).
        overhead_rounds: Passes over those tasks (see :func:`measure_overhead`).
        estimate_noise: How well the simulated model knows each call's duration (see
            ``TaskResponder.on_latency``); the same in every mode.
        endpoint: Benchmark a real OpenAI-compatible model instead of the simulated one
            (the tools stay simulated); only the stateless modes apply.

    Raises:
        ValueError: On an unknown mode, no tasks, or ``concurrency`` < 1.
    """
    unknown = [m for m in modes if m not in _POLICY]
    if unknown:
        raise ValueError(f"unknown mode(s) {unknown}; available: {sorted(_POLICY)}")
    if not tasks:
        raise ValueError("no tasks to run")
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if endpoint is not None and (via_http or "async_interruptible" in modes):
        raise ValueError(
            "a real endpoint is a stateless chat-completions API: run the modes "
            f"{list(_HTTP_MODES)} without --via-http"
        )
    all_modes = list(modes) + ([m + _HTTP for m in modes if m in _HTTP_MODES] if via_http else [])
    jobs = [(t, m) for t in tasks for m in all_modes]
    random.Random(seed).shuffle(jobs)
    runs: dict[tuple[str, str], TaskRun] = {}
    slots = asyncio.Semaphore(concurrency)
    with (
        _maybe_server(tasks, latency, via_http, estimate_noise) as base_url,
        progress(len(jobs), "bench async", enabled=progress_bar) as bar,
    ):
        # build every agent first: building is CPU work that would stall timed runs
        prepared = [_prepare(t, m, latency, base_url, estimate_noise, endpoint) for t, m in jobs]

        async def one(item: _Prepared) -> None:
            async with slots:
                runs[(item.task.id, item.mode)] = await _run_one(item)
            bar.update(1)

        await asyncio.gather(*(one(item) for item in prepared))
    overhead = (
        await measure_overhead(tasks, modes, limit=overhead_tasks, rounds=overhead_rounds)
        if overhead_tasks and endpoint is None and tasks
        else None
    )
    return BenchResult(
        tasks=list(tasks),
        modes=all_modes,
        runs=runs,
        latency=latency,
        ideal={t.id: ideal_ms(t, latency) for t in tasks},
        overhead=overhead,
        estimate_noise=estimate_noise,
        endpoint=endpoint,
    )


def _bare_setup(task: ScriptedTask, zero: LatencyModel) -> tuple[Any, dict[str, Any]]:
    """The model and tools of a bare run (built outside the timed region)."""
    from langgraph_speculative.integrations.sim.tools import make_simulated_tools

    tools = {t.name: t for t in make_simulated_tools(task.functions, latency=zero)}
    model = ScriptedChatModel(script=TaskResponder(task, policy="parallel"), latency=zero)
    return model, tools


async def _bare_run(task: ScriptedTask, model: Any, tools: dict[str, Any]) -> None:
    """What any agent must pay: stream the model's turns and invoke each tool, nothing else.

    A call whose arguments fail the tool's schema is answered with an error
    ``ToolMessage``, as LangGraph's ``ToolNode`` answers it.
    """
    messages: list[Any] = [HumanMessage(task.question)]
    while True:
        async for _ in model.astream(messages):
            pass
        turn = model.next_turn(messages)
        messages.append(AIMessage(content=turn.text, tool_calls=list(turn.tool_calls)))
        if not turn.tool_calls:
            return
        for call in turn.tool_calls:
            try:
                messages.append(await tools[call["name"]].ainvoke(call))
            except ValidationError as exc:
                messages.append(
                    ToolMessage(f"Error: {exc!r}", tool_call_id=call["id"], status="error")
                )


@dataclass(frozen=True, slots=True)
class Overhead:
    """Framework cost per tool call at zero model and tool latency (:func:`measure_overhead`).

    Attributes:
        us_per_call: Median over (task, round) of the CPU time per call, in µs, of each
            mode and of the ``bare`` run.
        paired: Per mode: the 10th, 50th and 90th percentile (``p10``, ``p50``, ``p90``)
            over (task, round) of the mode's CPU time per call minus the bare run's of
            the same task in the same round.
        rounds: How many times each task ran in each mode.
        tasks: How many tasks were timed.
    """

    us_per_call: dict[str, float]
    paired: dict[str, dict[str, float]]
    rounds: int
    tasks: int

    METHOD = (
        "CPU time of this process (time.process_time) per tool call at zero model and tool "
        "latency; every task runs bare and in every mode back to back (order rotated), "
        "repeated for each round; a mode's overhead is the median over (task, round) of "
        "its time minus the bare run's of the same task and round"
    )

    def per_call_us(self) -> float | None:
        """The asynchronous modes' overhead per call (the larger median), in µs."""
        medians = [v["p50"] for m, v in self.paired.items() if m.startswith("async")]
        return max(medians) if medians else None

    def document(self) -> dict[str, Any]:
        """The ``overhead`` block of the JSON report."""
        return {
            "method": self.METHOD,
            "clock": "process_time",
            "rounds": self.rounds,
            "tasks": self.tasks,
            "pairs": self.rounds * self.tasks,
            "us_per_call": dict(self.us_per_call),
            "overhead_us_per_call": {m: dict(v) for m, v in self.paired.items()},
        }


async def measure_overhead(
    tasks: Sequence[ScriptedTask],
    modes: Sequence[str],
    *,
    limit: int = 50,
    rounds: int = 3,
) -> Overhead:
    """Time per call of each mode with zero model and tool latency, against a bare run.

    The first ``limit`` tasks run one at a time (no concurrency noise). The ``bare`` run is
    the floor no agent avoids: streaming the simulated model's chunks (LangChain message
    objects) and one ``tool.ainvoke`` per call. Each task runs bare and in every mode back
    to back (the order rotates from task to task), and the whole pass repeats ``rounds``
    times. The clock is the process's CPU time, which another process on a loaded machine
    does not advance; a mode's overhead is the median over (task, round) of its time minus
    the bare run's of the same task and round, so a framework cost is never the difference
    of two separately noisy totals.

    Args:
        tasks: The tasks.
        modes: The modes to time.
        limit: How many tasks to time (the first ones).
        rounds: Passes over those tasks.

    Returns:
        The measurement.

    Raises:
        ValueError: If ``limit`` or ``rounds`` < 1, or there is no task.
    """
    if limit < 1 or rounds < 1:
        raise ValueError(f"limit and rounds must be >= 1, got {limit} and {rounds}")
    chosen = list(tasks)[:limit]
    if not chosen:
        raise ValueError("measure_overhead needs at least one task")
    zero = LatencyModel.zero()
    await _bare_run(chosen[0], *_bare_setup(chosen[0], zero))  # warm up imports and caches
    for mode in modes:
        await _run_one(_prepare(chosen[0], mode, zero, None))
    names = ["bare", *modes]
    samples: dict[str, list[float]] = {m: [] for m in names}
    paired: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(rounds):
        for i, task in enumerate(chosen):
            calls = max(len(task.calls), 1)
            order = names[i % len(names) :] + names[: i % len(names)]
            took: dict[str, float] = {}
            for mode in order:  # build outside the timed region
                if mode == "bare":
                    model, tools = _bare_setup(task, zero)
                    start = time.process_time()
                    await _bare_run(task, model, tools)
                else:
                    item = _prepare(task, mode, zero, None)
                    start = time.process_time()
                    await _run_one(item)
                took[mode] = (time.process_time() - start) * 1e6 / calls
            for mode in names:
                samples[mode].append(took[mode])
            for mode in modes:
                paired[mode].append(took[mode] - took["bare"])
    return Overhead(
        us_per_call={m: percentile(v, 50) for m, v in samples.items()},
        paired={m: {f"p{q}": percentile(v, q) for q in (10, 50, 90)} for m, v in paired.items()},
        rounds=rounds,
        tasks=len(chosen),
    )


@contextlib.contextmanager
def _maybe_server(
    tasks: Sequence[ScriptedTask],
    latency: LatencyModel,
    enabled: bool,
    estimate_noise: float | None,
) -> Iterator[str | None]:
    if not enabled:
        yield None
        return
    from langgraph_speculative.integrations.sim.server import SimServer

    with SimServer(tasks=tasks, latency=latency, estimate_noise=estimate_noise) as server:
        yield server.base_url


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench async`` flags to ``parser``."""
    parser.add_argument("--data", required=True, type=Path, help="BFCL question file")
    parser.add_argument("--answers", required=True, type=Path, help="BFCL ground-truth file")
    parser.add_argument("--merge", type=int, default=1, help="multi_turn_base records per task")
    parser.add_argument("--limit", type=int, default=None, help="first N tasks after a shuffle")
    parser.add_argument("--answer-tokens", type=int, default=20)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated modes to run")
    parser.add_argument(
        "--overhead-tasks",
        type=int,
        default=50,
        help="tasks re-run with zero latency to measure framework overhead (0: skip)",
    )
    parser.add_argument(
        "--overhead-rounds",
        type=int,
        default=3,
        help="passes over the overhead tasks; the overhead is the median of paired runs",
    )
    parser.add_argument("--via-http", action="store_true", help="also run via real ChatOpenAI")
    parser.add_argument(
        "--base-url", default=None, help="a real OpenAI-compatible endpoint (tools stay simulated)"
    )
    parser.add_argument("--model", default=None, help="the model name at --base-url")
    parser.add_argument(
        "--api-key", default=None, help="API key for --base-url (default: $OPENAI_API_KEY)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="task runs at once")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_strict_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``bench async`` from parsed flags; return the exit code."""
    from langgraph_speculative.integrations.sim.latency import latency_from_args

    latency = latency_from_args(args)
    tasks = load_bfcl(
        args.data,
        args.answers,
        merge=args.merge,
        limit=args.limit,
        seed=args.seed,
        answer_tokens=args.answer_tokens,
        strict=args.strict,
    ).require_tasks()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    endpoint = None
    if args.base_url is not None or args.model is not None:
        if not (args.base_url and args.model):
            raise ValueError("--base-url and --model go together")
        import os

        key = args.api_key or os.environ.get("OPENAI_API_KEY") or "none"
        endpoint = Endpoint(args.base_url, args.model, key)
        if args.modes == ",".join(MODES):  # the default: keep the modes an endpoint allows
            modes = [m for m in modes if m in _HTTP_MODES]
    result = asyncio.run(
        run_benchmark(
            tasks,
            latency,
            modes=modes,
            via_http=args.via_http,
            concurrency=args.concurrency,
            seed=args.seed,
            progress_bar=not args.no_progress,
            overhead_tasks=args.overhead_tasks,
            overhead_rounds=args.overhead_rounds,
            estimate_noise=args.estimate_noise,
            endpoint=endpoint,
        )
    )
    print(f"bench async: {len(tasks)} tasks from {args.data.name}, profile {args.profile}")
    print(result.table())
    print(tasks.skip_summary())
    doc = {**result.document(), "skipped": [s.to_json() for s in tasks.skipped]}
    if args.json is not None:
        write_json(args.json, doc)
        print(f"wrote {args.json}")
    return 1 if doc["failures"] or doc["calls"]["lost"] or doc["calls"]["duplicated"] else 0
