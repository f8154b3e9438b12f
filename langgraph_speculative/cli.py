"""The ``langgraph-speculative`` command line: ``demo``, ``bench ...`` and ``serve-sim``.

Each sub-command lives in the module that does its job; this module only parses arguments
and hands them over.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from langgraph_speculative.errors import SpeculativeError

__all__ = ["add_latency_arguments", "build_parser", "latency_from_args", "main"]


def add_latency_arguments(parser: argparse.ArgumentParser, *, estimates: bool = True) -> None:
    """Add the shared latency-model flags of ``BENCHMARKS.md`` to ``parser``.

    Args:
        parser: The sub-command's parser.
        estimates: Also add ``--estimate-noise`` (for commands whose simulated model
            orders calls by their estimated duration).
    """
    group = parser.add_argument_group("latency model")
    group.add_argument("--profile", choices=["cloud", "local"], default="cloud")
    group.add_argument("--ttft-ms", type=float, default=None, help="time to first token")
    group.add_argument("--tpot-ms", type=float, default=None, help="time per output token")
    group.add_argument(
        "--prefill-ms-per-1k", type=float, default=0.0, help="prefill per 1k uncached tokens"
    )
    group.add_argument("--tool-ms", default="30:500", help="tool latency LO:HI in ms")
    group.add_argument("--seed", type=int, default=0)
    if not estimates:
        return
    group.add_argument(
        "--estimate-noise",
        type=_noise,
        default=0.5,
        help="how well the simulated model knows each call's duration: log-normal sigma of "
        "its estimates (0: exact; 'none': no per-call knowledge, task order)",
    )


def _noise(text: str) -> float | None:
    if text.lower() == "none":
        return None
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"estimate noise must be >= 0 or 'none', got {text}")
    return value


def latency_from_args(args: argparse.Namespace) -> object:
    """Build the :class:`~.integrations.latency.LatencyModel` the flags describe."""
    from langgraph_speculative.integrations.latency import LatencyModel

    lo, hi = LatencyModel.parse_tool_range(args.tool_ms)
    overrides: dict[str, float | int] = {
        "prefill_ms_per_1k": args.prefill_ms_per_1k,
        "tool_lo_ms": lo,
        "tool_hi_ms": hi,
        "seed": args.seed,
    }
    if args.ttft_ms is not None:
        overrides["ttft_ms"] = args.ttft_ms
    if args.tpot_ms is not None:
        overrides["tpot_ms"] = args.tpot_ms
    return LatencyModel.profile(args.profile, **overrides)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of every sub-command."""
    from langgraph_speculative import demo
    from langgraph_speculative.bench import (
        async_calling,
        cache_scale,
        plan_cache,
        recovery,
        speculative,
    )
    from langgraph_speculative.integrations import sim_server

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
    async_calling.add_arguments(p_async)
    p_async.set_defaults(run=async_calling.run)
    p_spec = bench_sub.add_parser("speculative", help="speculative interaction (partial input)")
    add_latency_arguments(p_spec, estimates=False)
    speculative.add_arguments(p_spec)
    p_spec.set_defaults(run=speculative.run)
    p_plan = bench_sub.add_parser("plan-cache", help="plan reuse (AgentReuse): cache systems")
    plan_cache.add_arguments(p_plan)
    p_plan.set_defaults(run=plan_cache.run)
    p_rec = bench_sub.add_parser("recovery", help="crash and resume (interrupt-aware checkpointer)")
    add_latency_arguments(p_rec, estimates=False)
    recovery.add_arguments(p_rec)
    p_rec.set_defaults(run=recovery.run)
    p_scale = bench_sub.add_parser(
        "cache-scale", help="plan-cache lookup at scale (vector indexes)"
    )
    cache_scale.add_arguments(p_scale)
    p_scale.set_defaults(run=cache_scale.run)

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
