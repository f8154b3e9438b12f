"""``langgraph-speculative demo``: the main job, on the embedded defaults.

Runs the project's own small task set (BFCL format, shipped in the package) on the
simulated model, with no network and no download:

1. asynchronous function calling: every ``bench async`` mode side by side, a table and,
   with ``--plot``, a timeline picture per mode showing where tools run while the model
   streams and where the agent waits;
2. speculative interaction: each request spoken word by word (150 words per minute), the
   agent acting on partial input versus waiting for the final words (``bench
   speculative``), with unsafe tools (``book_table``) held until the commit point;
3. plan reuse: a plan cache trained on the project's small set of labelled Chinese
   requests (``data/plan_reuse_zh.json``) answers new requests; each line shows the
   intent, the stripped request, and whether the planner was asked or a plan reused.

Example:
    ```python
    from langgraph_speculative.bench.demo import demo_tasks

    tasks = demo_tasks()
    assert len(tasks) >= 5
    ```
"""

from __future__ import annotations

import argparse
import asyncio
from importlib import resources
from pathlib import Path

from langgraph_speculative.bench.async_bench import MODES, run_benchmark
from langgraph_speculative.bench.report import write_json
from langgraph_speculative.bench.timeline import plot_timelines
from langgraph_speculative.integrations.sim.scripted_tasks import ScriptedTask

__all__ = ["PLAN_REUSE_REQUESTS", "add_arguments", "demo_tasks", "run", "run_plan_reuse_demo"]

PLAN_REUSE_REQUESTS = (
    ("帮我查一下明天从上海到南京的火车票", "train.QUERY"),
    ("帮我查一下后天从西安到成都的火车票", "train.QUERY"),
    ("查一下杭州周末的天气", "weather.QUERY"),
    ("查一下深圳明天的天气", "weather.QUERY"),
    ("水煮鱼怎么做", "cookbook.QUERY"),
    ("酸辣土豆丝怎么做", "cookbook.QUERY"),
    ("给爸爸打电话", "telephone.DIAL"),
    ("给小王打电话", "telephone.DIAL"),
    ("播放周杰伦的七里香", "music.PLAY"),
    ("播放邓紫棋的泡沫", "music.PLAY"),
)
"""Requests the demo's plan cache sees (none is in its training set), with their class."""


def demo_tasks(answer_tokens: int = 20) -> list[ScriptedTask]:
    """Load the built-in demo tasks (the project's own, in the BFCL format)."""
    from langgraph_speculative.integrations.sim.bfcl import load_bfcl

    data = resources.files("langgraph_speculative") / "data"
    with (
        resources.as_file(data / "demo_questions.json") as q,
        resources.as_file(data / "demo_answers.json") as a,
    ):
        return list(load_bfcl(Path(q), Path(a), answer_tokens=answer_tokens, strict=True))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` flags to ``parser``."""
    parser.add_argument("--plot", type=Path, default=None, help="write a timeline picture")
    parser.add_argument("--plot-task", default="demo_trip", help="task shown in the picture")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--wpm", type=float, default=150.0, help="speaking rate (part 2)")
    parser.add_argument(
        "--skip-speculative", action="store_true", help="skip part 2 (speculative interaction)"
    )
    parser.add_argument("--skip-plan-reuse", action="store_true", help="skip part 3 (plan reuse)")


def run(args: argparse.Namespace) -> int:
    """Run the demo from parsed flags; return the exit code."""
    from langgraph_speculative.integrations.sim.latency import latency_from_args

    latency = latency_from_args(args)
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
    document: dict[str, object] = {"async": result.document()}
    failed = bool(result.failures())
    if not args.skip_speculative:
        from langgraph_speculative.bench.speculative_bench import run_speculative_benchmark

        spoken = asyncio.run(
            run_speculative_benchmark(
                tasks, latency, wpm=args.wpm, seed=args.seed, progress_bar=not args.no_progress
            )
        )
        print(
            f"\nspeculative interaction: the same requests spoken at {args.wpm:g} words per "
            "minute; latency from the user's last word to the answer"
        )
        print(spoken.table())
        document["speculative"] = spoken.document()
        failed = failed or bool(spoken.document()["failures"])
    if not args.skip_plan_reuse:
        document["plan_reuse"] = run_plan_reuse_demo()
    if args.json is not None:
        write_json(args.json, document)
        print(f"wrote {args.json}")
    if args.plot is not None:
        runs = {
            f"{args.plot_task} / {mode}": result.runs[(args.plot_task, mode)].spans
            for mode in result.modes
        }
        out = plot_timelines(runs, args.plot, title="model streaming (blue) vs tool runs (orange)")
        print(f"wrote {out}")
    return 1 if failed else 0


def run_plan_reuse_demo(planner_ms: float = 31800.0) -> dict[str, object]:
    """Part 3: the plan cache on :data:`PLAN_REUSE_REQUESTS`; print a table, return a summary.

    Args:
        planner_ms: Planning time accounted per planner call (AgentReuse's GPT-4 figure).

    Returns:
        ``{"requests", "planner_calls", "reused", "wrong_plans", "saved_ms",
        "overhead_ms_p50"}``.
    """
    from langgraph_speculative.bench.plan_cache_bench import canonical_plans
    from langgraph_speculative.bench.report import format_table, percentile
    from langgraph_speculative.cache.plan_cache import PlanCache
    from langgraph_speculative.cache.plans.planner import TemplatePlanner
    from langgraph_speculative.cache.training_data import load_labelled

    data = resources.files("langgraph_speculative") / "data"
    with resources.as_file(data / "plan_reuse_zh.json") as path:
        examples = load_labelled(path)
    cache = PlanCache.from_examples(examples)
    planner = TemplatePlanner(canonical_plans(examples), planner_ms=planner_ms)
    rows, overheads, wrong = [], [], 0
    entry_class: dict[str, str] = {}
    for text, label in PLAN_REUSE_REQUESTS:
        lookup = cache.lookup(text)
        overheads.append(lookup.overhead_ms)
        if lookup.hit is not None:
            source = f"cache ({lookup.hit.score:.2f})"
            wrong += int(entry_class[lookup.hit.key] != label)
        else:
            source = "planner"
            key = cache.store(lookup, planner.plan(text, lookup.values, label=label))
            entry_class[key] = label
        intent = (
            "unknown"
            if lookup.intent is None or lookup.intent.label is None
            else (lookup.intent.label)
        )
        rows.append([text, intent, lookup.stripped, source, f"{lookup.overhead_ms:.2f}"])
    reused = len(PLAN_REUSE_REQUESTS) - planner.calls
    print(
        f"\nplan reuse: a plan cache trained on {len(examples)} labelled requests; "
        f"{len(PLAN_REUSE_REQUESTS)} new requests"
    )
    print(format_table(["request", "intent", "stripped", "plan from", "lookup ms"], rows))
    print(
        f"planner asked {planner.calls} times, plans reused {reused} times ({wrong} of another "
        f"class), saving {reused * planner_ms / 1000:.1f} s of planning at "
        f"{planner_ms / 1000:g} s each; 'unknown' intents reuse induced plans"
    )
    return {
        "requests": len(PLAN_REUSE_REQUESTS),
        "planner_calls": planner.calls,
        "reused": reused,
        "wrong_plans": wrong,
        "saved_ms": reused * planner_ms,
        "overhead_ms_p50": percentile(overheads, 50),
    }
