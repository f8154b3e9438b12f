"""The ``langgraph-speculative`` command line: ``demo``, ``bench ...`` and ``serve-sim``.

Each sub-command lives in the module that does its job; this module only parses arguments
and hands them over.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from langgraph_speculative.errors import SpeculativeError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of every sub-command."""
    from langgraph_speculative.bench import (
        async_bench,
        cache_scale_bench,
        demo,
        plan_cache_bench,
        recovery_bench,
        speculative_bench,
    )
    from langgraph_speculative.integrations.sim import server as sim_server
    from langgraph_speculative.integrations.sim.latency import add_latency_arguments

    parser = argparse.ArgumentParser(
        prog="langgraph-speculative",
        description="Make LangGraph tool-calling agents answer sooner.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p_demo = sub.add_parser("demo", help="run the built-in demo on the simulated model")
    add_latency_arguments(p_demo)
    demo.add_arguments(p_demo)
    p_demo.set_defaults(run=demo.run)

    p_bench = sub.add_parser("bench", help="run a benchmark (see BENCHMARKS.md)")
    bench_sub = p_bench.add_subparsers(dest="bench", required=True)
    p_async = bench_sub.add_parser("async", help="asynchronous function calling (AsyncLM)")
    add_latency_arguments(p_async)
    async_bench.add_arguments(p_async)
    p_async.set_defaults(run=async_bench.run)
    p_spec = bench_sub.add_parser("speculative", help="speculative interaction (partial input)")
    add_latency_arguments(p_spec, estimates=False)
    speculative_bench.add_arguments(p_spec)
    p_spec.set_defaults(run=speculative_bench.run)
    p_plan = bench_sub.add_parser("plan-cache", help="plan reuse (AgentReuse): cache systems")
    plan_cache_bench.add_arguments(p_plan)
    p_plan.set_defaults(run=plan_cache_bench.run)
    p_rec = bench_sub.add_parser("recovery", help="crash and resume (interrupt-aware checkpointer)")
    add_latency_arguments(p_rec, estimates=False)
    recovery_bench.add_arguments(p_rec)
    p_rec.set_defaults(run=recovery_bench.run)
    p_scale = bench_sub.add_parser(
        "cache-scale", help="plan-cache lookup at scale (vector indexes)"
    )
    cache_scale_bench.add_arguments(p_scale)
    p_scale.set_defaults(run=cache_scale_bench.run)

    p_serve = sub.add_parser("serve-sim", help="serve the simulated model over HTTP (OpenAI API)")
    add_latency_arguments(p_serve)
    sim_server.add_arguments(p_serve)
    p_serve.set_defaults(run=sim_server.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except (SpeculativeError, ValueError, OSError) as exc:
        print(f"langgraph-speculative: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
