"""``langgraph-speculative bench async``: asynchronous function calling vs stock LangGraph.

Protocol: ``BENCHMARKS.md`` section 1 (shared). Every BFCL record becomes a scripted task;
the simulated model emits exactly the ground-truth calls, then a short final answer. The
modes run side by side in one process on the same tasks, tools and latency model, with the
(task, mode) runs interleaved in a seeded order so every mode sees the same load:

- ``sync``: one call per model turn (ReAct), stock ``create_agent``.
- ``sync_parallel``: every ready call in one turn, stock ``create_agent`` whose
  ``ToolNode`` runs them in parallel: what an existing LangGraph app does today.

With ``--via-http`` each mode also runs through the real ``ChatOpenAI`` client against the
simulated OpenAI-compatible server (modes ``sync@http``, ``sync_parallel@http``), and the
report says whether those runs executed exactly the same calls.

Example:
    ```python
    import asyncio
    from langgraph_speculative.bench.async_calling import run_benchmark
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig

from langgraph_speculative.bench.report import format_table, progress, summarize, write_json
from langgraph_speculative.errors import SpeculativeError
from langgraph_speculative.integrations.latency import LatencyModel
from langgraph_speculative.integrations.scripted_model import ModelTurn, ScriptedChatModel
from langgraph_speculative.integrations.scripted_tasks import Policy, ScriptedTask, TaskResponder
from langgraph_speculative.ledger import canonical_json
from langgraph_speculative.timeline import Span, TimelineRecorder

__all__ = [
    "BASELINE_MODES",
    "BenchResult",
    "TaskRun",
    "add_arguments",
    "ideal_ms",
    "run",
    "run_benchmark",
]

BASELINE_MODES: tuple[str, ...] = ("sync", "sync_parallel")
"""The modes built from stock LangGraph."""

_POLICY: dict[str, Policy] = {"sync": "sequential", "sync_parallel": "parallel"}
_HTTP = "@http"


@dataclass(slots=True)
class TaskRun:
    """One task run in one mode.

    Attributes:
        task_id: The task.
        mode: The mode (``sync``, ``sync_parallel``, ``sync@http``, ...).
        ms: Wall-clock time from the request to the final answer.
        calls: Executed calls as ``(tool_call_id, tool, canonical args)``, in start order.
        spans: Model and tool spans (see :mod:`langgraph_speculative.timeline`).
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
    """

    tasks: list[ScriptedTask]
    modes: list[str]
    runs: dict[tuple[str, str], TaskRun]
    latency: LatencyModel
    ideal: dict[str, float]

    def failures(self) -> list[TaskRun]:
        """Runs that ended in an error."""
        return [r for r in self.runs.values() if r.error is not None]

    def call_counts(self, mode: str | None = None) -> dict[str, int]:
        """Expected, executed, duplicated and lost calls (over all modes by default)."""
        counts = Counter[str]()
        for task in self.tasks:
            expected = {task.tool_call_id(c) for c in task.calls}
            for m in self.modes if mode is None else [mode]:
                run = self.runs[(task.id, m)]
                seen = Counter(cid for cid, _, _ in run.calls)
                counts["expected"] += len(expected)
                counts["executed"] += len(run.calls)
                counts["duplicated"] += sum(n - 1 for cid, n in seen.items() if n > 1)
                counts["duplicated"] += sum(n for cid, n in seen.items() if cid not in expected)
                counts["lost"] += sum(1 for cid in expected if cid not in seen)
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
            "tasks": len(self.tasks),
            "tasks_completed": len(ok),
            "latency": {
                "ttft_ms": self.latency.ttft_ms,
                "tpot_ms": self.latency.tpot_ms,
                "prefill_ms_per_1k": self.latency.prefill_ms_per_1k,
                "tool_ms": [self.latency.tool_lo_ms, self.latency.tool_hi_ms],
                "seed": self.latency.seed,
            },
            "modes": modes,
            "speedup": speedup,
            "ideal_ms": sum(self.ideal[t.id] for t in ok) / len(ok) if ok else None,
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
                    f"{doc['speedup'][f'{m}_vs_sync']:.2f}x"
                    if f"{m}_vs_sync" in doc["speedup"]
                    else "1.00x"
                    if m == "sync"
                    else "-",
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
            "requests",
            "calls",
            "dup",
            "lost",
        ]
        lines = [format_table(head, rows)]
        if doc["ideal_ms"] is not None:
            lines.append(f"ideal (critical path) mean: {doc['ideal_ms']:.0f} ms")
        if "via_http" in doc:
            same = doc["via_http"]["calls_identical"]
            lines.append(f"via HTTP (real ChatOpenAI): calls identical to in-process: {same}")
        if doc["failures"]:
            lines.append(f"FAILED runs: {len(doc['failures'])} (see the JSON 'failures')")
        return "\n".join(lines)


def _make_model(
    task: ScriptedTask, mode: str, latency: LatencyModel, base_url: str | None
) -> BaseChatModel:
    policy = _POLICY[mode.removesuffix(_HTTP)]
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
    return ScriptedChatModel(script=TaskResponder(task, policy=policy), latency=latency)


async def _run_one(
    task: ScriptedTask, mode: str, latency: LatencyModel, base_url: str | None
) -> TaskRun:
    from langchain.agents import create_agent

    from langgraph_speculative.integrations.sim_tools import ToolJournal, make_simulated_tools

    journal = ToolJournal()
    tools = make_simulated_tools(task.functions, latency=latency, journal=journal)
    agent = create_agent(_make_model(task, mode, latency, base_url), tools)
    recorder = TimelineRecorder()
    config: RunnableConfig = {"callbacks": [recorder], "recursion_limit": 4 * len(task.calls) + 10}
    start = time.perf_counter()
    error: str | None = None
    try:
        out = await agent.ainvoke({"messages": [HumanMessage(task.question)]}, config=config)
        final = out["messages"][-1]
        if not isinstance(final, AIMessage) or final.content != task.final_answer():
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
    modes: Sequence[str] = BASELINE_MODES,
    via_http: bool = False,
    concurrency: int = 16,
    seed: int = 0,
    progress_bar: bool = True,
) -> BenchResult:
    """Run every task in every mode, interleaved, at most ``concurrency`` at once.

    Args:
        tasks: The scripted tasks.
        latency: The latency model.
        modes: Modes to run (see :data:`BASELINE_MODES`).
        via_http: Also run each mode through ``ChatOpenAI`` and the simulated server.
        concurrency: Most task runs at once.
        seed: Seed of the interleaving order.
        progress_bar: Show a progress bar on stderr.

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
    all_modes = list(modes) + ([m + _HTTP for m in modes] if via_http else [])
    jobs = [(t, m) for t in tasks for m in all_modes]
    random.Random(seed).shuffle(jobs)
    runs: dict[tuple[str, str], TaskRun] = {}
    slots = asyncio.Semaphore(concurrency)
    with (
        _maybe_server(tasks, latency, via_http) as base_url,
        progress(len(jobs), "bench async", enabled=progress_bar) as bar,
    ):

        async def one(task: ScriptedTask, mode: str) -> None:
            async with slots:
                runs[(task.id, mode)] = await _run_one(task, mode, latency, base_url)
            bar.update(1)

        await asyncio.gather(*(one(t, m) for t, m in jobs))
    return BenchResult(
        tasks=list(tasks),
        modes=all_modes,
        runs=runs,
        latency=latency,
        ideal={t.id: ideal_ms(t, latency) for t in tasks},
    )


@contextlib.contextmanager
def _maybe_server(
    tasks: Sequence[ScriptedTask], latency: LatencyModel, enabled: bool
) -> Iterator[str | None]:
    if not enabled:
        yield None
        return
    from langgraph_speculative.integrations.sim_server import SimServer

    with SimServer(tasks=tasks, latency=latency) as server:
        yield server.base_url


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench async`` flags to ``parser``."""
    parser.add_argument("--data", required=True, type=Path, help="BFCL question file")
    parser.add_argument("--answers", required=True, type=Path, help="BFCL ground-truth file")
    parser.add_argument("--merge", type=int, default=1, help="multi_turn_base records per task")
    parser.add_argument("--limit", type=int, default=None, help="first N tasks after a shuffle")
    parser.add_argument("--answer-tokens", type=int, default=20)
    parser.add_argument(
        "--modes", default=",".join(BASELINE_MODES), help="comma-separated modes to run"
    )
    parser.add_argument("--via-http", action="store_true", help="also run via real ChatOpenAI")
    parser.add_argument("--concurrency", type=int, default=16, help="task runs at once")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``bench async`` from parsed flags; return the exit code."""
    from langgraph_speculative.cli import latency_from_args
    from langgraph_speculative.integrations.bfcl import load_bfcl

    latency = latency_from_args(args)
    assert isinstance(latency, LatencyModel)
    tasks = load_bfcl(
        args.data,
        args.answers,
        merge=args.merge,
        limit=args.limit,
        seed=args.seed,
        answer_tokens=args.answer_tokens,
    )
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    result = asyncio.run(
        run_benchmark(
            tasks,
            latency,
            modes=modes,
            via_http=args.via_http,
            concurrency=args.concurrency,
            seed=args.seed,
            progress_bar=not args.no_progress,
        )
    )
    print(f"bench async: {len(tasks)} tasks from {args.data.name}, profile {args.profile}")
    print(result.table())
    if args.json is not None:
        write_json(args.json, result.document())
        print(f"wrote {args.json}")
    doc = result.document()
    return 1 if doc["failures"] or doc["calls"]["lost"] or doc["calls"]["duplicated"] else 0
