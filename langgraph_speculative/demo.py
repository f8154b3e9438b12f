"""``langgraph-speculative demo``: the main job, on the embedded defaults.

Runs the project's own small task set (BFCL format, shipped in the package) on the
simulated model, with no network and no download, in every available mode side by side;
prints the table and, with ``--plot``, draws a timeline picture per mode so you can see
where tools run while the model streams and where the agent waits.

Example:
    ```python
    from langgraph_speculative.demo import demo_tasks

    tasks = demo_tasks()
    assert len(tasks) >= 5
    ```
"""

from __future__ import annotations

import argparse
import asyncio
from importlib import resources
from pathlib import Path

from langgraph_speculative.bench.async_calling import MODES, run_benchmark
from langgraph_speculative.bench.report import write_json
from langgraph_speculative.integrations.latency import LatencyModel
from langgraph_speculative.integrations.scripted_tasks import ScriptedTask
from langgraph_speculative.timeline import plot_timelines

__all__ = ["add_arguments", "demo_tasks", "run"]


def demo_tasks(answer_tokens: int = 20) -> list[ScriptedTask]:
    """Load the built-in demo tasks (the project's own, in the BFCL format)."""
    from langgraph_speculative.integrations.bfcl import load_bfcl

    data = resources.files("langgraph_speculative") / "data"
    with (
        resources.as_file(data / "demo_questions.json") as q,
        resources.as_file(data / "demo_answers.json") as a,
    ):
        return load_bfcl(Path(q), Path(a), answer_tokens=answer_tokens)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` flags to ``parser``."""
    parser.add_argument("--plot", type=Path, default=None, help="write a timeline picture")
    parser.add_argument("--plot-task", default="demo_trip", help="task shown in the picture")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the demo from parsed flags; return the exit code."""
    from langgraph_speculative.cli import latency_from_args

    latency = latency_from_args(args)
    assert isinstance(latency, LatencyModel)
    tasks = demo_tasks()
    ids = [t.id for t in tasks]
    if args.plot is not None and args.plot_task not in ids:
        raise ValueError(f"unknown --plot-task {args.plot_task!r}; choose one of {ids}")
    result = asyncio.run(
        run_benchmark(
            tasks,
            latency,
            modes=MODES,
            seed=args.seed,
            progress_bar=not args.no_progress,
            estimate_noise=args.estimate_noise,
        )
    )
    print(
        f"langgraph-speculative demo: {len(tasks)} built-in tasks, simulated model "
        f"(ttft {latency.ttft_ms:g} ms, {latency.tpot_ms:g} ms/token, tools "
        f"{latency.tool_lo_ms:g}-{latency.tool_hi_ms:g} ms)"
    )
    print(result.table())
    print(
        "sync: one tool call per model turn (ReAct). sync_parallel: stock create_agent, a "
        "turn's calls run in parallel.\nasync_stateless: create_async_agent on a chat-"
        "completions back-end: calls start while the model still streams. "
        "async_interruptible: results are injected into the running generation."
    )
    if args.json is not None:
        write_json(args.json, result.document())
        print(f"wrote {args.json}")
    if args.plot is not None:
        runs = {
            f"{args.plot_task} / {mode}": result.runs[(args.plot_task, mode)].spans
            for mode in result.modes
        }
        out = plot_timelines(runs, args.plot, title="model streaming (blue) vs tool runs (orange)")
        print(f"wrote {out}")
    return 1 if result.failures() else 0
