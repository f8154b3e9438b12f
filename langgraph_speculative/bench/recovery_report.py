"""What ``bench recovery`` measured: each trial's counts, and the run's document and table.

:func:`analyze_trial` counts one trial's failure modes from its tool journal and its
final outcome; a :class:`TrialResult` holds them for one trial of one system; a
:class:`RecoveryResult` holds every trial of a run and renders the JSON document of
``BENCHMARKS.md`` section 4 (:meth:`RecoveryResult.document`) and a readable table
(:meth:`RecoveryResult.table`). The benchmark that produces them is
:mod:`langgraph_speculative.bench.recovery_bench`.

Example:
    ```python
    from langgraph_speculative.bench.recovery_bench import make_task
    from langgraph_speculative.bench.recovery_report import analyze_trial

    task = make_task(0)
    counts = analyze_trial(task, records=[], final=None, last_attempt=0)
    assert counts["completed"] == 0 and counts["calls"] == len(task.calls)
    ```
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph_speculative.bench import recovery_trial as child
from langgraph_speculative.bench.recovery_config import RecoveryConfig
from langgraph_speculative.bench.report import format_table, percentile, summarize
from langgraph_speculative.core.ledger import canonical_json
from langgraph_speculative.integrations.sim.scripted_tasks import ScriptedTask

__all__ = ["METRICS", "RecoveryResult", "TrialResult", "analyze_trial"]

METRICS: tuple[str, ...] = (
    "completed",
    "lost_results",
    "duplicate_side_effects",
    "duplicate_tool_messages",
    "resumed_calls",
)
"""The required per-system counts of ``BENCHMARKS.md`` section 4 (besides ``trials``)."""

_UNKNOWN_PREFIX = "Outcome unknown"  # the wrapper's default error result

_EXTRA = (
    "missing_side_effects",
    "kills",
    "killed_trials",
    "extra_side_effects",
    "reexecuted_calls",
    "provider_replays",
    "outcome_unknown",
    "unknown_after_effect",
    "calls",
)


# -- analysis --------------------------------------------------------------------------------
def analyze_trial(
    task: ScriptedTask,
    records: Sequence[Mapping[str, Any]],
    final: Mapping[str, Any] | None,
    last_attempt: int,
) -> dict[str, int]:
    """Count one trial's failure modes from its journal and its final outcome.

    A call's result *existed before a kill* when its tool returned (journal ``done``
    record) in an attempt that was killed. Such a result is *lost* when the final
    messages carry a different result for the call (the tool ran again and its new result
    replaced the old one) or none at all; a call answered "outcome unknown" instead is
    counted under ``outcome_unknown`` (and ``unknown_after_effect``), not as lost: the
    checkpointer never had its result, the tool returned just before the kill.

    Args:
        task: The trial's task.
        records: The trial's journal records (every attempt).
        final: The outcome of the last attempt (``None`` if it wrote none).
        last_attempt: The number of the last attempt (earlier ones were killed).

    Returns:
        ``completed`` (0/1); ``lost_results`` (also: calls with no ``ToolMessage`` at the
        end of a finished run, and, for a run that did not finish, results that existed
        before a kill); ``duplicate_side_effects`` (calls applied more than once) and
        ``extra_side_effects`` (the extra applications); ``missing_side_effects`` (unsafe
        calls of a finished run whose effect never happened, e.g. answered "outcome
        unknown" before it took effect); ``duplicate_tool_messages`` (``tool_call_id``
        values answered more than once); ``resumed_calls`` (pre-kill results reused, the
        tool not started again); ``reexecuted_calls`` (started in more than one attempt);
        ``provider_replays`` (repeated keys the provider answered from its store);
        ``outcome_unknown`` (calls answered "outcome unknown", plus 1 if the run stopped
        with ``OutcomeUnknownError``); ``unknown_after_effect`` (of those answers, calls
        whose effect did happen); ``calls``.
    """
    finished = final is not None and final.get("status") == "finished"
    messages: list[Mapping[str, Any]] = []
    if finished and final is not None:
        messages = list(final.get("messages", []))
    planned_of = {(c.name, canonical_json(dict(c.args))): c.id for c in task.calls}
    call_planned: dict[str, str | None] = {}
    for m in messages:
        for tc in m.get("tool_calls", ()):
            call_planned[str(tc["id"])] = planned_of.get((tc["name"], canonical_json(tc["args"])))
    tool_msgs = [m for m in messages if m.get("type") == "tool"]
    per_id = Counter(str(m.get("tool_call_id")) for m in tool_msgs)
    answers: dict[str, list[str]] = defaultdict(list)  # planned call -> result contents
    unknown_answers: set[str] = set()
    for m in tool_msgs:
        planned = call_planned.get(str(m.get("tool_call_id")))
        content = str(m.get("content"))
        if planned is None:
            continue
        answers[planned].append(content)
        if m.get("status") == "error" and content.startswith(_UNKNOWN_PREFIX):
            unknown_answers.add(planned)

    effects: Counter[str] = Counter()
    starts: dict[str, set[int]] = defaultdict(set)
    done: dict[str, list[tuple[int, str]]] = defaultdict(list)
    replays = 0
    for r in records:
        planned = r.get("planned")
        if not isinstance(planned, str):
            continue
        event = r.get("event")
        if event == "effect":
            effects[planned] += 1
        elif event == "replay":
            replays += 1
        elif event == "start":
            starts[planned].add(int(r.get("attempt", 0)))
        elif event == "done":
            done[planned].append((int(r.get("attempt", 0)), str(r.get("result"))))

    lost = resumed = 0
    for call in task.calls:
        p = call.id
        if finished and not answers[p]:
            lost += 1  # a call of the task with no ToolMessage at the end
            continue
        before = [(a, res) for a, res in done[p] if a < last_attempt]
        if not before:
            continue
        first_attempt, first_result = before[0]
        if finished and first_result in answers[p]:
            if max(starts[p], default=0) <= first_attempt:
                resumed += 1  # reused, the tool not started again
        elif not finished or p not in unknown_answers:
            lost += 1  # replaced by another result, or the run never delivered it
    unknown = len(unknown_answers)
    if final is not None and final.get("error_type") == "OutcomeUnknownError":
        unknown += 1
    last = messages[-1] if messages else None
    completed = (
        finished
        and last is not None
        and last.get("type") == "ai"
        and not last.get("tool_calls")
        and last.get("content") == task.final_answer()
    )
    unsafe = [c.id for c in task.calls if child.TOOL_KINDS[c.name][0] != "read"]
    return {
        "completed": int(bool(completed)),
        "lost_results": lost,
        "duplicate_side_effects": sum(1 for n in effects.values() if n > 1),
        "extra_side_effects": sum(n - 1 for n in effects.values() if n > 1),
        "missing_side_effects": sum(1 for p in unsafe if finished and effects[p] == 0),
        "duplicate_tool_messages": sum(1 for n in per_id.values() if n > 1),
        "resumed_calls": resumed,
        "reexecuted_calls": sum(1 for a in starts.values() if len(a) > 1),
        "provider_replays": replays,
        "outcome_unknown": unknown,
        "unknown_after_effect": sum(1 for p in unknown_answers if effects[p] > 0),
        "calls": len(task.calls),
    }


# -- results ---------------------------------------------------------------------------------
@dataclass(slots=True)
class TrialResult:
    """One trial of one system.

    Attributes:
        trial: The trial number.
        system: The system.
        task: The task.
        counts: The counts of :func:`analyze_trial`, plus ``kills``.
        trial_ms: Wall time from the first start to the end of the last attempt.
        uncrashed_ms: Wall time of the uncrashed run (``T``).
        uncrashed: Counts of :func:`analyze_trial` for the uncrashed run.
        checkpoint_ms: Time spent in the plain saver's calls during the uncrashed run
            (LangGraph's checkpoints, and the wrapper's journal records if wrapped).
        checkpoint_calls: Those calls, per method.
        attempts: Each attempt's exit (``killed``, ``ok``, ``error``, ``timeout``).
        error: Why the trial failed, if it did.
        directory: The trial's files (journals ``journal.jsonl`` and ``uncrashed.jsonl``,
            outcomes, child logs); deleted after the run unless a workdir was given.
    """

    trial: int
    system: str
    task: ScriptedTask
    counts: dict[str, int] = field(default_factory=dict)
    trial_ms: float = 0.0
    uncrashed_ms: float = 0.0
    uncrashed: dict[str, int] = field(default_factory=dict)
    checkpoint_ms: float | None = None
    checkpoint_calls: dict[str, int] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)
    error: str | None = None
    directory: Path | None = None


def _paired_storage(
    plain: Sequence[tuple[float | None, float]], wrapped: Sequence[tuple[float | None, float]]
) -> dict[str, Any] | None:
    """Storage ``(ms, calls)`` per run, plain vs wrapped, over the runs timed in both."""
    pairs = [
        (p, w, pc, wc)
        for (p, pc), (w, wc) in zip(plain, wrapped, strict=True)
        if p is not None and w is not None
    ]
    if not pairs:
        return None
    plain_ms = sum(p[0] for p in pairs) / len(pairs)
    wrapped_ms = sum(p[1] for p in pairs) / len(pairs)
    paired = [100.0 * (w - p) / p for p, w, _, _ in pairs if p > 0]
    return {
        "runs": len(pairs),
        "plain_ms_per_run": plain_ms,
        "wrapped_ms_per_run": wrapped_ms,
        "wrapper_pct": 100.0 * (wrapped_ms - plain_ms) / plain_ms if plain_ms > 0 else None,
        "wrapper_pct_p50": percentile(paired, 50) if paired else None,
        "wrapper_pct_p25": percentile(paired, 25) if paired else None,
        "wrapper_pct_p75": percentile(paired, 75) if paired else None,
        "plain_calls_per_run": sum(p[2] for p in pairs) / len(pairs),
        "wrapped_calls_per_run": sum(p[3] for p in pairs) / len(pairs),
    }


@dataclass(slots=True)
class RecoveryResult:
    """Everything one ``bench recovery`` run measured.

    Attributes:
        config: The settings.
        results: Per system, its trials in trial order.
        store: Where the checkpoints went (``sqlite`` files or ``postgres``).
        wall_s: Wall time of the whole run.
        sequential: The quiet overhead runs (:attr:`RecoveryConfig.overhead_runs`):
            ``{graph: {system: [[storage ms, storage calls], ...]}}``, or ``None``.
        sequential_error: Why those runs failed, if they did.
    """

    config: RecoveryConfig
    results: dict[str, list[TrialResult]]
    store: str
    wall_s: float = 0.0
    sequential: dict[str, dict[str, list[list[float]]]] | None = None
    sequential_error: str | None = None

    @property
    def default_system(self) -> str:
        """The system whose counts go at the top level of the document."""
        systems = self.config.systems
        return "interrupt_aware" if "interrupt_aware" in systems else systems[0]

    def system_document(self, system: str) -> dict[str, Any]:
        """The counts, times and failures of one system."""
        trials = self.results[system]
        totals: Counter[str] = Counter()
        uncrashed: Counter[str] = Counter()
        for t in trials:
            totals.update(t.counts)
            uncrashed.update(t.uncrashed)
        doc: dict[str, Any] = {"trials": len(trials)}
        for key in (*METRICS, *_EXTRA):
            doc[key] = totals[key]
        doc["killed_trials"] = sum(1 for t in trials if t.counts.get("kills", 0) > 0)
        timed = [t.trial_ms for t in trials if t.error is None]
        doc["trial_ms"] = summarize(timed) if timed else None
        normal = [t.uncrashed_ms for t in trials if t.uncrashed_ms > 0]
        doc["uncrashed_ms"] = summarize(normal) if normal else None
        doc["uncrashed"] = {k: uncrashed[k] for k in METRICS}
        cp = [t.checkpoint_ms for t in trials if t.checkpoint_ms is not None]
        doc["checkpoint_ms_per_run"] = sum(cp) / len(cp) if cp else None
        calls: Counter[str] = Counter()
        for t in trials:
            calls.update(t.checkpoint_calls)
        doc["checkpoint_calls_per_run"] = {k: v / len(cp) for k, v in calls.items()} if cp else {}
        doc["failures"] = [
            {"trial": t.trial, "error": t.error, "attempts": t.attempts}
            for t in trials
            if t.error is not None
        ]
        return doc

    def overhead(self) -> dict[str, Any]:
        """The wrapper's cost on uncrashed runs.

        From the trials' uncrashed runs, paired by trial (they run beside other trials):
        ``wrapper_pct``: extra time in checkpointer storage calls with the wrapper, in
        percent of the plain saver's (ratio of the means over trials; ``wrapper_pct_p50``:
        the median of the per-trial percentages, robust to a slow fsync); ``wall_pct``: the
        same for the whole uncrashed run's wall time; storage calls per run of each.
        ``sequential``: the same storage figures from the quiet runs after the trials (see
        :attr:`RecoveryConfig.overhead_runs`), for the async agent (``async_agent``) and
        for the task as LangGraph's usual tool loop (``standard_graph``, where the wrapper
        has nothing to journal), and ``agent_vs_standard_pct`` (``_p50``): the wrapped
        async agent's storage time against the plain saver's under that usual loop.
        """
        out: dict[str, Any] = {"wrapper_pct": None, "wall_pct": None, "runs": 0}
        out["sequential"] = self._sequential_overhead()
        if self.sequential_error is not None:
            out["sequential_error"] = self.sequential_error
        if not {"stock", "interrupt_aware"} <= set(self.results):
            return out
        both = list(zip(self.results["stock"], self.results["interrupt_aware"], strict=True))
        agent = _paired_storage(
            [(s.checkpoint_ms, sum(s.checkpoint_calls.values())) for s, _ in both],
            [(w.checkpoint_ms, sum(w.checkpoint_calls.values())) for _, w in both],
        )
        if agent is None:
            return out
        out.update(agent)
        walls = [(s.uncrashed_ms, w.uncrashed_ms) for s, w in both if s.uncrashed_ms > 0]
        wall_plain = sum(p for p, _ in walls) / len(walls)
        wall_wrapped = sum(w for _, w in walls) / len(walls)
        out.update(
            wall_pct=100.0 * (wall_wrapped - wall_plain) / wall_plain if wall_plain else None,
            wall_plain_ms=wall_plain,
            wall_wrapped_ms=wall_wrapped,
        )
        return out

    def _sequential_overhead(self) -> dict[str, Any] | None:
        rows = self.sequential
        if not rows:
            return None

        def runs(graph: str, system: str) -> list[tuple[float | None, float]]:
            return [(ms, calls) for ms, calls in rows[graph][system]]

        agent = _paired_storage(runs("async", "stock"), runs("async", "interrupt_aware"))
        standard = _paired_storage(runs("standard", "stock"), runs("standard", "interrupt_aware"))
        out: dict[str, Any] = {
            "method": (
                f"each task run {self.config.overhead_repeats}x per graph and system, one run "
                "at a time, plain and wrapped interleaved; a task's storage time is the "
                "minimum over its repeats; wrapper_pct_p50 is the median over tasks of the "
                "paired percentage (p25/p75 its spread), wrapper_pct the ratio of the means"
            ),
            "repeats": self.config.overhead_repeats,
            "async_agent": agent,
            "standard_graph": standard,
        }
        versus = _paired_storage(runs("standard", "stock"), runs("async", "interrupt_aware"))
        if versus is not None:
            out["runs"] = versus["runs"]
            out["agent_vs_standard_pct"] = versus["wrapper_pct"]
            out["agent_vs_standard_pct_p50"] = versus["wrapper_pct_p50"]
        return out

    def document(self) -> dict[str, Any]:
        """The JSON document of ``BENCHMARKS.md`` section 4 (plus extra keys)."""
        cfg = self.config
        systems = {s: self.system_document(s) for s in cfg.systems}
        default = systems[self.default_system]
        doc: dict[str, Any] = {
            "benchmark": "recovery",
            "checkpointer": cfg.checkpointer,
            "store": self.store,
            "durability": cfg.durability,
            "call_ids": cfg.call_ids,
            "max_kills": cfg.max_kills,
            "outcome_policy": cfg.outcome_policy,
            "kill_window": list(cfg.kill_window),
            "seed": cfg.seed,
            "latency": {
                "ttft_ms": cfg.latency.ttft_ms,
                "tpot_ms": cfg.latency.tpot_ms,
                "tool_ms": [cfg.latency.tool_lo_ms, cfg.latency.tool_hi_ms],
                "seed": cfg.latency.seed,
            },
            "trials": cfg.trials,
            "default_system": self.default_system,
        }
        for key in (*METRICS, "kills", "outcome_unknown", "trial_ms"):
            doc[key] = default[key]
        doc["systems"] = systems
        doc["overhead"] = self.overhead()
        doc["wall_s"] = self.wall_s
        return doc

    def table(self) -> str:
        """A readable table of the document."""
        doc = self.document()
        head = [
            "system",
            "completed",
            "lost",
            "dup effects",
            "dup msgs",
            "missing",
            "resumed",
            "re-run",
            "kills",
            "unknown",
            "trial ms",
            "normal ms",
        ]
        rows = []
        for name, s in doc["systems"].items():
            rows.append(
                [
                    name,
                    f"{s['completed']}/{s['trials']}",
                    str(s["lost_results"]),
                    str(s["duplicate_side_effects"]),
                    str(s["duplicate_tool_messages"]),
                    str(s["missing_side_effects"]),
                    str(s["resumed_calls"]),
                    str(s["reexecuted_calls"]),
                    str(s["kills"]),
                    str(s["outcome_unknown"]),
                    f"{s['trial_ms']['mean_ms']:.0f}" if s["trial_ms"] else "-",
                    f"{s['uncrashed_ms']['mean_ms']:.0f}" if s["uncrashed_ms"] else "-",
                ]
            )
        lines = [format_table(head, rows)]
        ov = doc["overhead"]
        if ov["wrapper_pct"] is not None:
            lines.append(
                f"checkpointer storage time per uncrashed run: plain {ov['plain_ms_per_run']:.1f} "
                f"ms, wrapped {ov['wrapped_ms_per_run']:.1f} ms: wrapper overhead "
                f"{ov['wrapper_pct']:+.1f}% (median {ov['wrapper_pct_p50']:+.1f}%; "
                f"{ov['plain_calls_per_run']:.0f} vs {ov['wrapped_calls_per_run']:.0f} storage "
                f"calls); whole run {ov['wall_pct']:+.1f}% ({ov['runs']} runs)"
            )
        seq = ov.get("sequential")
        if seq is not None and seq["async_agent"] is not None:
            lines.append(
                f"storage time per uncrashed run, one run at a time ({seq['runs']} tasks, "
                f"min of {seq['repeats']} repeats each):"
            )
            for key, what in (
                ("async_agent", "async agent (one node)"),
                ("standard_graph", "usual model + ToolNode loop"),
            ):
                row = seq[key]
                lines.append(
                    f"  {what}: plain {row['plain_ms_per_run']:.1f} ms, wrapped "
                    f"{row['wrapped_ms_per_run']:.1f} ms: wrapper overhead median "
                    f"{row['wrapper_pct_p50']:+.1f}% (p25 {row['wrapper_pct_p25']:+.1f}%, p75 "
                    f"{row['wrapper_pct_p75']:+.1f}%; of means {row['wrapper_pct']:+.1f}%; "
                    f"{row['plain_calls_per_run']:.0f} vs {row['wrapped_calls_per_run']:.0f} "
                    "storage calls)"
                )
            lines.append(
                "  the wrapped async agent vs the usual loop on the plain saver: median "
                f"{seq['agent_vs_standard_pct_p50']:+.1f}% (of means "
                f"{seq['agent_vs_standard_pct']:+.1f}%)"
            )
        if "sequential_error" in ov:
            lines.append(f"the one-at-a-time overhead runs failed: {ov['sequential_error']}")
        for name, s in doc["systems"].items():
            if s["failures"]:
                lines.append(f"{name}: {len(s['failures'])} failed trial(s) (see the JSON)")
        return "\n".join(lines)
