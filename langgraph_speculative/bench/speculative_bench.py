"""``langgraph-speculative bench speculative``: acting on partial input vs waiting for it.

Protocol: ``BENCHMARKS.md`` section 2 (shared). The user's request is streamed as partial
transcripts (English word by word at ``--wpm``, Chinese character by character at
``--cps``), then a final update. Modes, side by side on the same tasks and tools:

- ``wait_then_act``: nothing happens until the final update; then stock ``create_agent``
  with the turn's calls in parallel (``sync_parallel``);
- ``speculative``: :func:`~langgraph_speculative.nodes.speculative.create_speculative_agent`
  on an interruptible (realtime) model that hears every update; the simulated model
  (:class:`~langgraph_speculative.integrations.sim.scripted_listener.ListeningResponder`)
  calls tools once their values were said, sometimes prematurely (``--premature``) with a
  value still being spoken, then revises; unsafe tools (the protocol's name rule) wait for
  the commit point.

Metric: response latency, from the final update to the end of the final answer.

Example:
    ```python
    import asyncio
    from langgraph_speculative.bench.speculative_bench import run_speculative_benchmark
    from langgraph_speculative.integrations import LatencyModel, PlannedCall, ScriptedTask

    fn = {"name": "get_weather", "parameters": {"type": "dict",
          "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    task = ScriptedTask("w", "Weather in Paris please", (fn,),
                        (PlannedCall("0", "get_weather", {"city": "Paris"}),))
    result = asyncio.run(run_speculative_benchmark(
        [task], LatencyModel(ttft_ms=5, tpot_ms=0.1, tool_lo_ms=1, tool_hi_ms=2),
        wpm=6000, progress_bar=False))
    assert result.document()["final_calls_correct"] == 1.0
    ```
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage

from langgraph_speculative.bench.report import format_table, progress, summarize, write_json
from langgraph_speculative.core.ledger import canonical_json
from langgraph_speculative.integrations.sim.bfcl import add_strict_argument, load_bfcl
from langgraph_speculative.integrations.sim.latency import LatencyModel
from langgraph_speculative.integrations.sim.scripted_listener import ListeningResponder
from langgraph_speculative.integrations.sim.scripted_model import ScriptedChatModel
from langgraph_speculative.integrations.sim.scripted_tasks import ScriptedTask, TaskResponder
from langgraph_speculative.integrations.sim.speech import speech_updates

__all__ = ["MODES", "SpecResult", "add_arguments", "run", "run_speculative_benchmark"]

MODES: tuple[str, ...] = ("wait_then_act", "speculative")
"""The compared modes."""


@dataclass(slots=True)
class _Outcome:
    ms: float
    error: str | None = None
    stats: dict[str, int] = field(default_factory=dict)
    leaked: int = 0
    unsafe_before_commit: int = 0
    correct: bool = False


@dataclass(slots=True)
class SpecResult:
    """Everything one ``bench speculative`` run measured.

    Attributes:
        tasks: The tasks.
        runs: ``(task id, mode)`` to its outcome.
        settings: The run's settings (latency, speaking rates, premature rate).
    """

    tasks: list[ScriptedTask]
    runs: dict[tuple[str, str], _Outcome]
    settings: dict[str, Any]

    def document(self) -> dict[str, Any]:
        """The JSON document of ``BENCHMARKS.md`` section 2 (plus extra keys).

        Returns:
            ``tasks``, ``modes``, ``speedup``, ``speculation``, ``unsafe_before_commit``,
            ``final_calls_correct``, ``aborted_results_leaked`` and, besides,
            ``benchmark``, ``tasks_completed``, ``settings`` and ``failures``.
        """
        ok = [t for t in self.tasks if all(self.runs[(t.id, m)].error is None for m in MODES)]
        modes = {m: summarize([self.runs[(t.id, m)].ms for t in ok]) for m in MODES} if ok else {}
        ratios = [
            self.runs[(t.id, "wait_then_act")].ms / max(self.runs[(t.id, "speculative")].ms, 1e-6)
            for t in ok
        ]
        spec_runs = [self.runs[(t.id, "speculative")] for t in self.tasks]
        totals = Counter[str]()
        for r in spec_runs:
            totals.update(r.stats)
        return {
            "benchmark": "speculative",
            "tasks": len(self.tasks),
            "tasks_completed": len(ok),
            "settings": self.settings,
            "modes": modes,
            "speedup": {"speculative_vs_wait": sum(ratios) / len(ratios) if ratios else None},
            "speculation": {
                k: totals[k] for k in ("launched", "committed", "aborted", "revised", "withdrawn")
            },
            "unsafe_before_commit": sum(r.unsafe_before_commit for r in spec_runs),
            "final_calls_correct": (
                sum(1 for r in spec_runs if r.correct) / len(spec_runs) if spec_runs else None
            ),
            "aborted_results_leaked": sum(r.leaked for r in spec_runs),
            "failures": [
                {"task": t.id, "mode": m, "error": self.runs[(t.id, m)].error}
                for t in self.tasks
                for m in MODES
                if self.runs[(t.id, m)].error is not None
            ],
        }

    def table(self) -> str:
        """A readable table of the document.

        Returns:
            The table and the speculation summary, as text.
        """
        doc = self.document()
        rows = []
        for m in MODES:
            stats = doc["modes"].get(m)
            rows.append(
                [
                    m,
                    f"{stats['mean_ms']:.0f}" if stats else "-",
                    f"{stats['p50_ms']:.0f}" if stats else "-",
                    f"{stats['p90_ms']:.0f}" if stats else "-",
                ]
            )
        lines = [format_table(["mode", "mean ms", "p50 ms", "p90 ms"], rows)]
        sp = doc["speedup"]["speculative_vs_wait"]
        if sp is not None:
            lines.append(f"speculative vs wait_then_act: {sp:.2f}x (mean of per-task ratios)")
        lines.append(
            "speculation: "
            + ", ".join(f"{k} {v}" for k, v in doc["speculation"].items())
            + f"; unsafe before commit {doc['unsafe_before_commit']}"
            + f"; aborted results leaked {doc['aborted_results_leaked']}"
            + f"; final calls correct {doc['final_calls_correct']:.3f}"
        )
        if doc["failures"]:
            lines.append(f"FAILED runs: {len(doc['failures'])} (see the JSON 'failures')")
        return "\n".join(lines)


def _expected(task: ScriptedTask) -> Counter[tuple[str, str]]:
    return Counter((c.name, canonical_json(dict(c.args))) for c in task.calls)


async def _wait_then_act(task: ScriptedTask, latency: LatencyModel, agent: Any) -> _Outcome:
    start = time.perf_counter()
    try:
        out = await agent.ainvoke({"messages": [HumanMessage(task.question)]})
        final = out["messages"][-1]
        error = None
        if not isinstance(final, AIMessage) or final.content != task.final_answer():
            error = f"the run did not end with the final answer: {final!r:.200}"
    except Exception as exc:  # a failed run is reported, not fatal
        error = f"{type(exc).__name__}: {exc}"
    return _Outcome(ms=(time.perf_counter() - start) * 1e3, error=error)


async def _speculative(
    task: ScriptedTask,
    latency: LatencyModel,
    *,
    wpm: float,
    cps: float,
    premature: float,
    seed: int,
) -> _Outcome:
    from langgraph_speculative.integrations.sim.tools import make_simulated_tools
    from langgraph_speculative.nodes.speculative import SpeculativeRun, create_speculative_agent

    tools = make_simulated_tools(task.functions, latency=latency)
    model = ScriptedChatModel(
        script=ListeningResponder(task, premature=premature, seed=seed),
        latency=latency,
        backend="interruptible",
    )
    graph = create_speculative_agent().compile()
    updates = speech_updates(task.question, wpm=wpm, cps=cps)
    final_at: list[float] = []
    async with SpeculativeRun(model, tools) as run:

        async def speak() -> None:
            start = time.perf_counter()
            try:
                for update in updates:
                    delay = start + update.at_s - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if update.final:
                        final_at.append(time.perf_counter())
                    run.input.push(update.text, final=update.final)
            except Exception:
                run.input.close()  # the run fails ("closed before the final input")
                raise

        speaker = asyncio.create_task(speak())
        error = None
        try:
            state: dict[str, Any] = {"messages": []}
            out = await graph.ainvoke(state, context=run)  # type: ignore[call-overload]
            end = time.perf_counter()
            final = out["messages"][-1]
            if not isinstance(final, AIMessage) or final.content != task.final_answer():
                error = f"the run did not end with the final answer: {final!r:.200}"
        except Exception as exc:  # a failed run is reported, not fatal
            end = time.perf_counter()
            error = f"{type(exc).__name__}: {exc}"
        finally:
            speaker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await speaker
        committed = Counter(
            (run.ledger.get(rid).tool, canonical_json(run.ledger.get(rid).args))
            for rid in run.speculation.final_records().values()
        )
        return _Outcome(
            ms=(end - final_at[0]) * 1e3 if final_at else float("nan"),
            error=error,
            stats=dict(run.stats),
            leaked=run.leaked_results(),
            unsafe_before_commit=run.unsafe_before_commit(),
            correct=committed == _expected(task),
        )


async def run_speculative_benchmark(
    tasks: Sequence[ScriptedTask],
    latency: LatencyModel,
    *,
    wpm: float = 150.0,
    cps: float = 4.0,
    premature: float = 0.3,
    concurrency: int = 32,
    seed: int = 0,
    progress_bar: bool = True,
) -> SpecResult:
    """Run every task in both modes, interleaved, at most ``concurrency`` at once.

    Args:
        tasks: The tasks.
        latency: The latency model of the simulated model and tools.
        wpm: English speaking rate (words per minute).
        cps: Chinese speaking rate (characters per second).
        premature: Probability that the simulated model calls a tool on a value still
            being spoken (then revises it).
        concurrency: Most task runs at once.
        seed: Seed of the job order and the premature draws.
        progress_bar: Whether to show a progress bar.

    Returns:
        Every run's outcome.

    Raises:
        ValueError: On no tasks, ``concurrency`` < 1, or a bad rate.
    """
    from langchain.agents import create_agent

    from langgraph_speculative.integrations.sim.tools import make_simulated_tools

    if not tasks:
        raise ValueError("no tasks to run")
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if not 0.0 <= premature <= 1.0:
        raise ValueError(f"premature must be in [0, 1], got {premature}")
    jobs = [(t, m) for t in tasks for m in MODES]
    random.Random(seed).shuffle(jobs)
    agents = {
        t.id: create_agent(
            ScriptedChatModel(script=TaskResponder(t, policy="parallel"), latency=latency),
            make_simulated_tools(t.functions, latency=latency),
        )
        for t in tasks
    }
    runs: dict[tuple[str, str], _Outcome] = {}
    slots = asyncio.Semaphore(concurrency)
    with progress(len(jobs), "bench speculative", enabled=progress_bar) as bar:

        async def one(task: ScriptedTask, mode: str) -> None:
            async with slots:
                if mode == "wait_then_act":
                    runs[(task.id, mode)] = await _wait_then_act(task, latency, agents[task.id])
                else:
                    runs[(task.id, mode)] = await _speculative(
                        task, latency, wpm=wpm, cps=cps, premature=premature, seed=seed
                    )
            bar.update(1)

        await asyncio.gather(*(one(t, m) for t, m in jobs))
    settings = {
        "ttft_ms": latency.ttft_ms,
        "tpot_ms": latency.tpot_ms,
        "tool_ms": [latency.tool_lo_ms, latency.tool_hi_ms],
        "seed": seed,
        "wpm": wpm,
        "cps": cps,
        "premature": premature,
        "backend": "interruptible",
    }
    return SpecResult(tasks=list(tasks), runs=runs, settings=settings)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench speculative`` flags to ``parser``.

    Args:
        parser: The sub-command's parser (the shared latency flags come from the CLI).
    """
    parser.add_argument("--data", required=True, type=Path, help="BFCL question file")
    parser.add_argument("--answers", required=True, type=Path, help="BFCL ground-truth file")
    parser.add_argument("--limit", type=int, default=None, help="first N tasks after a shuffle")
    parser.add_argument("--wpm", type=float, default=150.0, help="English words per minute")
    parser.add_argument("--cps", type=float, default=4.0, help="Chinese characters per second")
    parser.add_argument("--premature", type=float, default=0.3, help="premature-call rate")
    parser.add_argument("--answer-tokens", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32, help="task runs at once")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_strict_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``bench speculative`` from parsed flags.

    Args:
        args: The parsed flags.

    Returns:
        The exit code: 0 when every run succeeded, no unsafe call ran early, no aborted
        result leaked and every final plan was correct; 1 otherwise.
    """
    from langgraph_speculative.integrations.sim.latency import latency_from_args

    latency = latency_from_args(args)
    tasks = load_bfcl(
        args.data,
        args.answers,
        limit=args.limit,
        seed=args.seed,
        answer_tokens=args.answer_tokens,
        strict=args.strict,
    ).require_tasks()
    result = asyncio.run(
        run_speculative_benchmark(
            tasks,
            latency,
            wpm=args.wpm,
            cps=args.cps,
            premature=args.premature,
            concurrency=args.concurrency,
            seed=args.seed,
            progress_bar=not args.no_progress,
        )
    )
    print(f"bench speculative: {len(tasks)} tasks from {args.data.name}, profile {args.profile}")
    print(result.table())
    print(tasks.skip_summary())
    doc = {**result.document(), "skipped": [s.to_json() for s in tasks.skipped]}
    if args.json is not None:
        write_json(args.json, doc)
        print(f"wrote {args.json}")
    bad = doc["unsafe_before_commit"] or doc["aborted_results_leaked"]
    return 1 if doc["failures"] or bad or doc["final_calls_correct"] != 1.0 else 0
