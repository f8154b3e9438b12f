import json

import pytest

from langgraph_speculative.bench.async_bench import ideal_ms, run_benchmark
from langgraph_speculative.integrations import LatencyModel, PlannedCall, ScriptedTask

FN = {
    "name": "lookup",
    "description": "Look a key up.",
    "parameters": {"type": "dict", "properties": {"key": {"type": "string"}}, "required": ["key"]},
}


def _task(tid: str, keys: list[str], chain: bool = False) -> ScriptedTask:
    calls = tuple(
        PlannedCall(str(i), "lookup", {"key": k}, (str(i - 1),) if chain and i else ())
        for i, k in enumerate(keys)
    )
    return ScriptedTask(tid, f"look up {keys}", (FN,), calls)


def test_ideal_parallel_is_ttft_plus_decode_plus_longest_tool() -> None:
    lat = LatencyModel(ttft_ms=100, tpot_ms=1, tool_lo_ms=10, tool_hi_ms=400)
    task = _task("t", ["a", "b", "c"])
    ideal = ideal_ms(task, lat)
    # a lower bound: at least TTFT + the longest tool + the answer
    longest = max(lat.tool_ms("lookup", {"key": k}) for k in "abc")
    assert ideal >= lat.ttft_ms + longest + task.answer_tokens * lat.tpot_ms
    # and it never exceeds doing everything one after the other
    serial = lat.ttft_ms + sum(lat.tool_ms("lookup", {"key": k}) for k in "abc") + 200
    assert ideal < serial


def test_ideal_chain_adds_up_tools() -> None:
    lat = LatencyModel(ttft_ms=0, tpot_ms=0, tool_lo_ms=10, tool_hi_ms=400)
    task = _task("t", ["a", "b", "c"], chain=True)
    total = sum(lat.tool_ms("lookup", {"key": k}) for k in "abc")
    assert ideal_ms(task, lat) == pytest.approx(total)


async def test_baselines_run_every_call_once() -> None:
    tasks = [_task("p", ["a", "b", "c"]), _task("q", ["x"])]
    lat = LatencyModel(ttft_ms=2, tpot_ms=0.1, tool_lo_ms=1, tool_hi_ms=5)
    result = await run_benchmark(tasks, lat, progress_bar=False)
    doc = result.document()
    assert doc["tasks"] == 2
    assert doc["calls"] == {"expected": 16, "executed": 16, "duplicated": 0, "lost": 0}
    assert set(doc["modes"]) == {"sync", "sync_parallel", "async_stateless", "async_interruptible"}
    for stats in doc["modes"].values():
        assert set(stats) == {"mean_ms", "p50_ms", "p90_ms"}
    assert {"sync_parallel_vs_sync", "async_interruptible_vs_sync_parallel"} <= set(doc["speedup"])
    # sync makes one model request per call plus the answer; parallel one per round;
    # an interruptible session is one request per task
    assert doc["model_requests"] == {
        "sync": 4 + 2,
        "sync_parallel": 2 + 2,
        "async_stateless": 2 + 2,
        "async_interruptible": 2,
    }
    assert 0 < doc["efficiency"] <= 1.05
    assert doc["failures"] == []
    json.dumps(doc)
    assert "sync_parallel" in result.table()


async def test_via_http_executes_the_same_calls() -> None:
    tasks = [_task("p", ["a", "b"]), _task("q", ["x", "y", "z"])]
    result = await run_benchmark(tasks, LatencyModel.zero(), via_http=True, progress_bar=False)
    doc = result.document()
    assert set(doc["modes"]) == {
        "sync",
        "sync_parallel",
        "async_stateless",
        "async_interruptible",
        "sync@http",
        "sync_parallel@http",
        "async_stateless@http",
    }
    assert doc["via_http"] == {"calls_identical": True, "mismatches": []}
    assert doc["calls"]["lost"] == 0 and doc["calls"]["duplicated"] == 0


async def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        await run_benchmark([_task("p", ["a"])], LatencyModel.zero(), modes=["warp"])
    with pytest.raises(ValueError, match="no tasks"):
        await run_benchmark([], LatencyModel.zero())
    with pytest.raises(ValueError, match="concurrency"):
        await run_benchmark([_task("p", ["a"])], LatencyModel.zero(), concurrency=0)


async def test_a_failing_run_is_reported_not_fatal() -> None:
    bad = {
        "name": "lookup",
        "parameters": {
            "type": "dict",
            "properties": {"key": {"type": "integer"}},
            "required": ["key"],
        },
    }
    # the script sends a string where the schema wants an integer: an error ToolMessage
    # comes back, the model still answers, but the call is recorded as not executed
    task = ScriptedTask("bad", "q", (bad,), (PlannedCall("0", "lookup", {"key": "zzz"}),))
    result = await run_benchmark([task], LatencyModel.zero(), modes=["sync"], progress_bar=False)
    doc = result.document()
    assert doc["calls"]["lost"] == 1


async def test_overhead_is_measured_against_a_bare_run() -> None:
    tasks = [_task("p", ["a", "b", "c"]), _task("q", ["x", "y"])]
    result = await run_benchmark(
        tasks,
        LatencyModel.zero(),
        modes=["sync_parallel", "async_interruptible"],
        progress_bar=False,
        overhead_tasks=2,
    )
    doc = result.document()
    per_call = doc["us_per_call_at_zero_latency"]
    assert set(per_call) == {"bare", "sync_parallel", "async_interruptible"}
    block = doc["overhead"]
    assert block["clock"] == "process_time" and "median" in block["method"]
    assert (block["rounds"], block["tasks"], block["pairs"]) == (3, 2, 6)
    paired = block["overhead_us_per_call"]
    assert set(paired) == {"sync_parallel", "async_interruptible"}
    assert doc["overhead_us_per_call"] == paired["async_interruptible"]["p50"]
    for spread in paired.values():
        assert spread["p10"] <= spread["p50"] <= spread["p90"]
    # a framework costs CPU time: the paired median of the agent over the bare run is > 0
    assert paired["async_interruptible"]["p50"] > 0


async def test_multi_step_chains_respect_dependencies() -> None:
    task = _task("chain", ["a", "b", "c"], chain=True)
    lat = LatencyModel(ttft_ms=1, tpot_ms=0.05, tool_lo_ms=1, tool_hi_ms=3)
    result = await run_benchmark([task], lat, progress_bar=False)
    for mode in result.modes:
        run = result.runs[("chain", mode)]
        assert run.error is None, (mode, run.error)
        # a chain runs its calls in order, each after the one before finished
        assert [cid for cid, _, _ in run.calls] == [f"call_chain_{i}" for i in range(3)]


async def test_a_real_endpoint_runs_the_stateless_modes() -> None:
    from langgraph_speculative.bench.async_bench import Endpoint
    from langgraph_speculative.integrations.sim.server import SimServer

    tasks = [_task("p", ["a", "b"]), _task("q", ["x"])]
    lat = LatencyModel.zero()
    with SimServer(tasks=tasks, latency=lat) as server:  # stands in for a real endpoint
        endpoint = Endpoint(server.base_url, "parallel")  # task found by its question
        result = await run_benchmark(
            tasks,
            lat,
            modes=["sync_parallel", "async_stateless"],
            endpoint=endpoint,
            progress_bar=False,
        )
        with pytest.raises(ValueError, match="stateless"):
            await run_benchmark(tasks, lat, endpoint=endpoint, progress_bar=False)
    doc = result.document()
    assert doc["model"] == {"base_url": server.base_url, "model": "parallel"}
    assert doc["calls"]["lost"] == 0 and doc["calls"]["duplicated"] == 0
    assert doc["failures"] == []
