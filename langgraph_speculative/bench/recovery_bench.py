"""``langgraph-speculative bench recovery``: crash and resume (``BENCHMARKS.md`` section 4).

Each trial is one task: an agent (:func:`~langgraph_speculative.nodes.create_async_agent`
on the simulated model) making several concurrent calls: read-only tools, payment-like
tools that pass an idempotency key to a provider applying each key at most once, and
unsafe tools that cannot take a key; a confirmation e-mail depends on the payment, the
payment on an invoice lookup. Every tool execution is journaled durably (see
:mod:`langgraph_speculative.bench.recovery_trial`).

Per trial and system, in child processes forked from this (fully imported) process:

1. an uncrashed run on its own thread measures the normal run time ``T`` (and the time
   spent in checkpointer calls, for ``overhead``);
2. the task starts on a fresh thread and is SIGKILLed at a seeded moment ``u * T``
   (``u`` uniform in [0, 1), the same ``u`` for every system);
3. a new child resumes the thread from the checkpointer (``ainvoke(None, config)``; a
   fresh start if no checkpoint was written yet) and runs to the end; with
   ``max_kills > 1`` resumed runs are killed again first.

Systems, side by side on the same tasks and kill moments: ``stock`` (LangGraph's own
SQLite or PostgreSQL saver) and ``interrupt_aware`` (that saver wrapped in
``InterruptAwareCheckpointer``, imported lazily).

Measured per system: ``completed`` (the final answer reached); ``lost_results`` (a call
of the task with no ``ToolMessage`` at the end, or a result a tool returned before a kill
that the final messages replaced by another); ``duplicate_side_effects`` (calls whose
side effect was applied more than once); ``duplicate_tool_messages`` (``tool_call_id``
values answered more than once in the final state); ``resumed_calls`` (results from
before a kill reused, the tool not run again); ``outcome_unknown`` (keyless unsafe calls
running at a kill that the wrapper answered "outcome unknown" instead of re-running) and
``missing_side_effects`` (unsafe calls whose effect never happened); ``kills``; time per
trial. ``overhead.wrapper_pct``: extra time in checkpointer storage calls with the
wrapper, in percent of the plain saver's, on the uncrashed runs; ``overhead.sequential``:
the same measured quietly after the trials, one run at a time, for the async agent and
for LangGraph's usual tool loop (see :meth:`RecoveryResult.overhead`).

Run it as ``langgraph-speculative bench recovery`` or
``python -m langgraph_speculative.bench.recovery_bench --trials 30 --checkpointer sqlite``.

Example:
    ```python
    import tempfile
    from langgraph_speculative.bench.recovery_bench import RecoveryConfig, run_recovery_benchmark
    from langgraph_speculative.integrations import LatencyModel

    with tempfile.TemporaryDirectory() as tmp:
        config = RecoveryConfig(
            trials=1,
            workdir=tmp,
            latency=LatencyModel(ttft_ms=20, tpot_ms=0.5, tool_lo_ms=20, tool_hi_ms=60),
            kill_window=(0.5, 0.9),
            overhead_runs=1,
            progress_bar=False,
        )
        doc = run_recovery_benchmark(config).document()
    aware = doc["systems"]["interrupt_aware"]
    quiet = doc["overhead"]["sequential"]["standard_graph"]  # nothing to journal there
    assert quiet["wrapped_calls_per_run"] == quiet["plain_calls_per_run"]
    assert doc["default_system"] == "interrupt_aware" and aware["kills"] <= 1
    assert aware["completed"] == 1 and aware["duplicate_side_effects"] == 0
    assert aware["lost_results"] == 0 and aware["duplicate_tool_messages"] == 0
    ```
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import select
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langgraph_speculative.bench import recovery_trial as child
from langgraph_speculative.bench.recovery_config import SYSTEMS, RecoveryConfig
from langgraph_speculative.bench.recovery_report import (
    METRICS,
    RecoveryResult,
    TrialResult,
    analyze_trial,
)
from langgraph_speculative.bench.report import progress, write_json
from langgraph_speculative.errors import SpeculativeError
from langgraph_speculative.integrations.embedded_postgres import postgres_or_embedded
from langgraph_speculative.integrations.sim.scripted_model import ScriptedChatModel
from langgraph_speculative.integrations.sim.scripted_tasks import PlannedCall, ScriptedTask

__all__ = [
    "METRICS",
    "SYSTEMS",
    "RecoveryConfig",
    "RecoveryResult",
    "TrialResult",
    "add_arguments",
    "analyze_trial",
    "make_task",
    "run",
    "run_recovery_benchmark",
]


# -- tasks -----------------------------------------------------------------------------------
def make_task(trial: int, seed: int = 0) -> ScriptedTask:
    """The seeded task of one trial: 4 to 7 calls, some concurrent, some dependent.

    Always: a balance check and an invoice lookup (read-only), the invoice's payment
    (keyed, after the lookup), a receipt e-mail (keyless, after the payment). Sometimes:
    an exchange rate (read-only), a transfer (keyed, after the balance check), a support
    ticket (keyless).

    Args:
        trial: The trial number.
        seed: The run's seed.

    Returns:
        The task (its id is ``t<trial>``).
    """
    rng = random.Random(f"recovery:{seed}:{trial}")
    account = f"ACC-{rng.randrange(10**6):06d}"
    invoice = f"INV-{rng.randrange(10**5):05d}"
    calls = [
        PlannedCall("balance", "get_balance", {"account": account}),
        PlannedCall("invoice", "lookup_invoice", {"invoice": invoice}),
        PlannedCall(
            "pay",
            "pay_invoice",
            {"invoice": invoice, "amount_cents": rng.randrange(500, 500_000)},
            ("invoice",),
        ),
    ]
    if rng.random() < 0.5:
        currency = rng.choice(["EUR", "GBP", "JPY", "CHF", "CNY"])
        calls.append(PlannedCall("rate", "get_exchange_rate", {"currency": currency}))
    if rng.random() < 0.6:
        args = {
            "to_account": f"ACC-{rng.randrange(10**6):06d}",
            "amount_cents": rng.randrange(10**5),
        }
        calls.append(PlannedCall("transfer", "transfer_funds", args, ("balance",)))
    calls.append(
        PlannedCall(
            "email",
            "send_email",
            {"to": "billing@example.com", "subject": f"Receipt {invoice}"},
            ("pay",),
        )
    )
    if rng.random() < 0.6:
        calls.append(PlannedCall("ticket", "create_ticket", {"title": f"Check {invoice}"}))
    names = list(dict.fromkeys(c.name for c in calls))
    return ScriptedTask(
        id=f"t{trial}",
        question=f"Pay invoice {invoice} from account {account} and send me the receipt.",
        functions=child.tool_functions(names),
        calls=tuple(calls),
        answer_tokens=20,
    )


# -- the scheduler ---------------------------------------------------------------------------
@dataclass(slots=True)
class _AttemptLog:
    attempt: int
    ms: float
    exit: str  # "ok", "error", "killed", "timeout", "crashed"
    kill_at_ms: float | None = None
    outcome: dict[str, Any] | None = None


@dataclass(slots=True)
class _Job:
    trial: int
    system: str
    task: ScriptedTask
    fractions: list[float]
    directory: Path
    store: child.StoreSpec
    thread: str
    config: RecoveryConfig
    phase: Literal["uncrashed", "run", "done"] = "uncrashed"
    uncrashed: _AttemptLog | None = None
    attempts: list[_AttemptLog] = field(default_factory=list)
    kills: int = 0
    first_start: float = 0.0
    end: float = 0.0
    error: str | None = None
    # the live child
    pid: int = 0
    pidfd: int | None = None
    spawned: float = 0.0
    deadline: float = 0.0
    kill_planned: bool = False
    status: int = 0

    def spec(self) -> child.Attempt:
        cfg = self.config
        timed = self.phase == "uncrashed"  # the run that is never killed
        n = len(self.attempts)
        name = self.phase if timed else f"attempt{n}"
        return child.Attempt(
            trial=self.trial,
            system=self.system,
            attempt=0 if timed else n,
            task=self.task,
            thread_id=f"{self.thread}-{name[0] if timed else 'r'}",
            store=self.store,
            journal=self.directory / (f"{name}.jsonl" if timed else "journal.jsonl"),
            outcome=self.directory / f"{name}.json",
            log=self.directory / f"{name}.log",
            latency=cfg.latency,
            durability=cfg.durability,
            call_ids=cfg.call_ids,
            timing=timed,
            outcome_policy=cfg.outcome_policy,
            wrapper_options=cfg.wrapper_options,
        )


def _read_outcome(path: Path) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class _Scheduler:
    """Runs the jobs' children, at most ``concurrency`` at once; kills them on time."""

    def __init__(self, jobs: Sequence[_Job], concurrency: int, bar: Any) -> None:
        self.queue = deque(jobs)
        self.live: dict[int, _Job] = {}
        self.concurrency = concurrency
        self.bar = bar
        self.has_pidfd = hasattr(os, "pidfd_open")

    def spawn(self, job: _Job) -> None:
        spec = job.spec()
        spec.outcome.unlink(missing_ok=True)
        now = time.monotonic()
        job.pid = child.fork_attempt(spec)
        job.spawned = now
        job.pidfd = os.pidfd_open(job.pid) if self.has_pidfd else None
        timeout = job.config.attempt_timeout_s
        if job.phase == "run" and job.kills < job.config.max_kills:
            assert job.uncrashed is not None
            fraction = job.fractions[job.kills]
            job.deadline = now + fraction * job.uncrashed.ms / 1e3
            job.kill_planned = True
        else:
            job.deadline = now + timeout
            job.kill_planned = False
        if job.phase == "run" and not job.attempts:
            job.first_start = now
        self.live[job.pid] = job

    def run(self) -> None:
        try:
            self._loop()
        finally:  # an error or Ctrl-C here: leave no child behind
            for job in self.live.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(job.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(job.pid, 0)
                if job.pidfd is not None:
                    os.close(job.pidfd)
            self.live.clear()

    def _loop(self) -> None:
        while self.queue or self.live:
            while self.queue and len(self.live) < self.concurrency:
                self.spawn(self.queue.popleft())
            now = time.monotonic()
            wait = max(0.0, min(j.deadline for j in self.live.values()) - now)
            for pid in self._exited(wait):
                job = self.live.pop(pid)
                code = os.waitstatus_to_exitcode(job.status)
                self._finished(job, "ok" if code == 0 else ("error" if code > 0 else "crashed"))
            now = time.monotonic()
            for job in [j for j in self.live.values() if j.deadline <= now]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(job.pid, signal.SIGKILL)
                _, status = os.waitpid(job.pid, 0)
                del self.live[job.pid]
                killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
                if not killed:  # it ended on its own just before the kill
                    self._finished(job, "ok" if os.waitstatus_to_exitcode(status) == 0 else "error")
                else:
                    self._finished(job, "killed" if job.kill_planned else "timeout")

    def _exited(self, wait: float) -> list[int]:
        """Pids of live children that exited within ``wait`` seconds (reaped)."""
        if self.has_pidfd:
            fds = {j.pidfd: pid for pid, j in self.live.items() if j.pidfd is not None}
            ready, _, _ = select.select(list(fds), [], [], wait)
            candidates = [fds[fd] for fd in ready]
        else:
            time.sleep(min(wait, 0.002))
            candidates = list(self.live)
        out = []
        for pid in candidates:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                self.live[pid].status = status
                out.append(pid)
        return out

    def _finished(self, job: _Job, exit_text: str) -> None:
        if job.pidfd is not None:
            os.close(job.pidfd)
            job.pidfd = None
        now = time.monotonic()
        spec = job.spec()
        log = _AttemptLog(
            attempt=spec.attempt,
            ms=(now - job.spawned) * 1e3,
            exit=exit_text,
            kill_at_ms=(job.deadline - job.spawned) * 1e3 if job.kill_planned else None,
            outcome=None if exit_text == "killed" else _read_outcome(spec.outcome),
        )
        if job.phase == "uncrashed":  # the timed run, never killed
            job.uncrashed = log
            if exit_text != "ok":
                job.error = f"the uncrashed run ended with {exit_text}: {_why(log)}"
                job.phase = "done"
            else:
                job.phase = "run"
        else:
            job.attempts.append(log)
            if exit_text == "killed":
                job.kills += 1
            else:
                job.phase = "done"
                if exit_text != "ok":
                    job.error = f"attempt {log.attempt} ended with {exit_text}: {_why(log)}"
        if job.phase == "done":
            job.end = now
            self.bar.update(1)
        else:
            self.spawn(job)


def _why(log: _AttemptLog) -> str:
    if log.outcome is None:
        return "no outcome written"
    return f"{log.outcome.get('error_type', '')}: {log.outcome.get('error', '')}"[:300]


# -- the benchmark ---------------------------------------------------------------------------
def _wait_child(pid: int, what: str) -> None:
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SpeculativeError(f"{what} failed in its child process (exit code {code})")


def _preload(config: RecoveryConfig) -> None:
    """Import (in this process) everything a child needs, so each fork starts warm."""
    if "interrupt_aware" in config.systems:
        child.interrupt_aware_class()  # fail now, with a clear message, if it is missing
    import langgraph_speculative.nodes.async_calling as nodes

    if config.checkpointer == "sqlite":
        import langgraph.checkpoint.sqlite.aio
    else:
        import langgraph.checkpoint.postgres.aio  # noqa: F401
    task = make_task(0, config.seed)
    with tempfile.TemporaryDirectory() as tmp:
        journal = child.Journal(Path(tmp) / "warm.jsonl")
        tools = child.build_tools(
            task, trial=0, system="stock", attempt=0, journal=journal, latency=config.latency
        )
    model = ScriptedChatModel(
        script=child.AttemptResponder(task, 0, config.call_ids), latency=config.latency
    )
    nodes.create_async_agent(model, tools).compile()


def run_recovery_benchmark(config: RecoveryConfig) -> RecoveryResult:
    """Run the crash-and-resume benchmark (see the module docs).

    Call it from synchronous code: it forks, so this process must not be running an event
    loop (the children run their own).

    Raises:
        SpeculativeError: If called with a running event loop, or the store setup fails.
        CheckpointerError: If ``interrupt_aware`` is asked for and the wrapper is missing.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise SpeculativeError(
            "run_recovery_benchmark forks child processes: call it from synchronous code, "
            "not from a running event loop"
        )
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread in a process that forks
    _preload(config)
    started = time.perf_counter()
    owned = config.workdir is None
    root = Path(tempfile.mkdtemp(prefix="lgs-recovery-") if owned else str(config.workdir))
    run_id = uuid.uuid4().hex[:8]
    base = root / f"run-{run_id}"
    base.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.ExitStack() as stack:
            dsn = (
                stack.enter_context(postgres_or_embedded(config.dsn))
                if config.checkpointer == "postgres"
                else None
            )
            if dsn is not None:
                store_dsn = child.StoreSpec("postgres", dsn)
                _wait_child(
                    child.fork_attempt(job=lambda: asyncio.run(child.setup_store(store_dsn))),
                    "setting up the PostgreSQL checkpointer",
                )
            jobs = _jobs(config, base, run_id, dsn)
            with progress(len(jobs), "bench recovery", enabled=config.progress_bar) as bar:
                _Scheduler(jobs, config.concurrency, bar).run()
            try:
                sequential, sequential_error = _measure_overhead(config, base, run_id, dsn), None
            except SpeculativeError as exc:  # the trials' results still stand
                sequential, sequential_error = None, str(exc)
        results = {s: [_result(j) for j in jobs if j.system == s] for s in config.systems}
        store = "postgres" if dsn is not None else f"sqlite files under {base}"
        return RecoveryResult(
            config,
            results,
            store,
            time.perf_counter() - started,
            sequential=sequential,
            sequential_error=sequential_error,
        )
    finally:
        if owned:
            shutil.rmtree(root, ignore_errors=True)


def _store(directory: Path, dsn: str | None) -> child.StoreSpec:
    """The run's PostgreSQL server, or a SQLite file of its own in ``directory``."""
    if dsn is not None:
        return child.StoreSpec("postgres", dsn)
    return child.StoreSpec("sqlite", str(directory / "checkpoints.sqlite"))


def _measure_overhead(
    config: RecoveryConfig, base: Path, run_id: str, dsn: str | None
) -> dict[str, dict[str, list[list[float]]]] | None:
    """The quiet overhead runs (:attr:`RecoveryConfig.overhead_runs`), in one child."""
    if not config.overhead_runs or not set(child.SYSTEMS) <= set(config.systems):
        return None
    import json

    directory = base / "overhead"
    directory.mkdir(parents=True, exist_ok=True)
    template = child.Attempt(
        trial=0,
        system="stock",
        attempt=0,
        task=make_task(0, config.seed),
        thread_id=f"recovery-{run_id}",
        store=_store(directory, dsn),
        journal=directory / "journal.jsonl",
        outcome=directory / "outcome.json",
        log=directory / "overhead.log",
        latency=config.latency,
        durability=config.durability,
        call_ids=config.call_ids,
        outcome_policy=config.outcome_policy,
        wrapper_options=config.wrapper_options,
    )
    tasks = [make_task(trial, config.seed) for trial in range(config.overhead_runs)]
    path = directory / "overhead.json"

    def job() -> None:
        rows = asyncio.run(
            child.measure_overhead(tasks, template, directory, config.overhead_repeats)
        )
        path.write_text(json.dumps(rows), encoding="utf-8")

    with progress(1, "bench recovery: overhead", enabled=config.progress_bar) as bar:
        _wait_child(child.fork_attempt(job=job), "measuring the overhead")
        bar.update(1)
    rows: dict[str, dict[str, list[list[float]]]] = json.loads(path.read_text(encoding="utf-8"))
    return rows


def _jobs(config: RecoveryConfig, base: Path, run_id: str, dsn: str | None) -> list[_Job]:
    jobs: list[_Job] = []
    for trial in range(config.trials):
        task = make_task(trial, config.seed)
        rng = random.Random(f"recovery-kills:{config.seed}:{trial}")
        lo, hi = config.kill_window
        fractions = [lo + rng.random() * (hi - lo) for _ in range(config.max_kills)]
        systems = list(config.systems)
        rng.shuffle(systems)  # neither system always starts first
        for system in systems:
            directory = base / f"{system}-t{trial:04d}"
            directory.mkdir(parents=True, exist_ok=True)
            jobs.append(
                _Job(
                    trial=trial,
                    system=system,
                    task=task,
                    fractions=fractions,
                    directory=directory,
                    store=_store(directory, dsn),
                    thread=f"recovery-{run_id}-{system}-t{trial}",
                    config=config,
                )
            )
    return jobs


def _storage(outcome: Mapping[str, Any] | None) -> tuple[float | None, dict[str, int]]:
    """(ms, calls per method) a timed run spent in the plain saver, from its outcome."""
    if outcome is None or "checkpoint_s" not in outcome:
        return None, {}
    calls = {str(k): int(v) for k, v in dict(outcome.get("checkpoint_calls", {})).items()}
    return float(outcome["checkpoint_s"]) * 1e3, calls


def _result(job: _Job) -> TrialResult:
    result = TrialResult(job.trial, job.system, job.task, error=job.error, directory=job.directory)
    if job.uncrashed is not None:
        result.uncrashed_ms = job.uncrashed.ms
        out = job.uncrashed.outcome
        if out is not None:
            records = child.Journal(job.directory / "uncrashed.jsonl").records()
            result.uncrashed = analyze_trial(job.task, records, out, 0)
            result.checkpoint_ms, result.checkpoint_calls = _storage(out)
    result.attempts = [a.exit for a in job.attempts]
    if job.attempts:
        final = job.attempts[-1]
        records = child.Journal(job.directory / "journal.jsonl").records()
        result.counts = analyze_trial(job.task, records, final.outcome, final.attempt)
        result.trial_ms = (job.end - job.first_start) * 1e3
    else:
        result.counts = {"completed": 0, "calls": len(job.task.calls)}
    result.counts["kills"] = job.kills
    return result


# -- command line ----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench recovery`` flags to ``parser``.

    The latency flags, ``--seed`` among them, come from
    :func:`langgraph_speculative.integrations.sim.latency.add_latency_arguments`.
    """
    parser.add_argument("--trials", type=int, default=50, help="trials (tasks) per system")
    parser.add_argument("--checkpointer", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--dsn", default=None, help="PostgreSQL connection string (default: an embedded server)"
    )
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help="comma-separated systems to compare"
    )
    parser.add_argument("--durability", choices=["sync", "async", "exit"], default="sync")
    parser.add_argument(
        "--call-ids",
        choices=["stable", "fresh"],
        default="stable",
        help="fresh: the model writes new call ids after a restart, as a real model does",
    )
    parser.add_argument("--max-kills", type=int, default=1, help="kills per trial")
    parser.add_argument(
        "--kill-window",
        type=_window,
        default=(0.0, 1.0),
        help="LO:HI: kill at T*(LO + u*(HI-LO)), T the uncrashed run time (default 0:1)",
    )
    parser.add_argument("--concurrency", type=int, default=2, help="trials running at once")
    parser.add_argument("--attempt-timeout", type=float, default=120.0, help="seconds")
    parser.add_argument(
        "--on-outcome-unknown",
        choices=["reconcile", "report", "raise", "rerun"],
        default="reconcile",
        help="what the wrapper does with a keyless unsafe call running at a kill",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep databases and journals here"
    )
    parser.add_argument(
        "--overhead-runs",
        type=int,
        default=20,
        help="tasks run again after the trials, one at a time, plain and wrapped, as the "
        "async agent and as LangGraph's usual model + ToolNode loop, for overhead.sequential "
        "(0: none)",
    )
    parser.add_argument(
        "--overhead-repeats",
        type=int,
        default=3,
        help="runs of each overhead task per graph and system; the minimum counts",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _window(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"kill window must be LO:HI, got {text!r}") from None
    return lo, hi


def run(args: argparse.Namespace) -> int:
    """Run ``bench recovery`` from parsed flags.

    Returns:
        0 when the default system completed every trial with zero lost results,
        duplicate side effects and duplicate tool messages; 1 otherwise.
    """
    from langgraph_speculative.integrations.sim.latency import latency_from_args

    latency = latency_from_args(args)
    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    config = RecoveryConfig(
        trials=args.trials,
        systems=systems,
        checkpointer=args.checkpointer,
        dsn=args.dsn,
        seed=args.seed,
        latency=latency,
        durability=args.durability,
        call_ids=args.call_ids,
        max_kills=args.max_kills,
        kill_window=args.kill_window,
        concurrency=args.concurrency,
        attempt_timeout_s=args.attempt_timeout,
        workdir=args.workdir,
        outcome_policy=args.on_outcome_unknown,
        overhead_runs=args.overhead_runs,
        overhead_repeats=args.overhead_repeats,
        progress_bar=not args.no_progress,
    )
    result = run_recovery_benchmark(config)
    doc = result.document()
    print(
        f"bench recovery: {config.trials} trials on {config.checkpointer}, durability "
        f"{config.durability}, {config.call_ids} call ids, profile {args.profile}"
    )
    print(result.table())
    if args.json is not None:
        write_json(args.json, doc)
        print(f"wrote {args.json}")
    clean = doc["completed"] == doc["trials"] and not any(
        doc[k] for k in ("lost_results", "duplicate_side_effects", "duplicate_tool_messages")
    )
    return 0 if clean else 1


if __name__ == "__main__":  # pragma: no cover
    from langgraph_speculative.integrations.sim.latency import add_latency_arguments

    _parser = argparse.ArgumentParser(
        prog="python -m langgraph_speculative.bench.recovery_bench",
        description="Crash-and-resume benchmark (BENCHMARKS.md section 4).",
    )
    add_latency_arguments(_parser, estimates=False)
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
