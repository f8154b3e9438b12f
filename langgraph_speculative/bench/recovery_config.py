"""The settings of one ``bench recovery`` run (:class:`RecoveryConfig`).

The benchmark itself is :mod:`langgraph_speculative.bench.recovery_bench`; its report,
:mod:`langgraph_speculative.bench.recovery_report`.

Example:
    ```python
    from langgraph_speculative.bench.recovery_config import RecoveryConfig

    config = RecoveryConfig(trials=3, checkpointer="sqlite", kill_window=(0.8, 1.0))
    assert config.systems == ("stock", "interrupt_aware")
    try:
        RecoveryConfig(trials=0)
    except ValueError as exc:
        print(exc)  # trials must be >= 1, got 0
    ```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langgraph_speculative.bench import recovery_trial as child
from langgraph_speculative.integrations.sim.latency import LatencyModel

__all__ = ["SYSTEMS", "RecoveryConfig"]

SYSTEMS = child.SYSTEMS
"""The compared systems: ``stock`` (the plain saver) and ``interrupt_aware``."""


@dataclass(frozen=True, slots=True)
class RecoveryConfig:
    """Settings of one ``bench recovery`` run.

    Attributes:
        trials: Number of trials (tasks); each runs once per system.
        systems: Systems to compare (see :data:`SYSTEMS`).
        checkpointer: ``sqlite`` (one database file per trial and system) or ``postgres``.
        dsn: PostgreSQL connection string; ``None`` starts an embedded server.
        seed: Seed of the tasks and of the kill moments.
        latency: The latency model of the simulated model and tools.
        durability: LangGraph durability mode of every run (``sync``, ``async``, ``exit``).
        call_ids: ``stable``: the simulated model writes the same call ids after a restart;
            ``fresh``: new ids each attempt, as a real model regenerating its answer does.
        max_kills: Kills per trial: each attempt is killed at a new seeded moment until
            this many kills happened; the next attempt runs to the end.
        kill_window: The kill moment is ``T * (lo + u * (hi - lo))``: ``(0, 1)`` (the
            default) is uniform over the normal run time; ``(0.8, 1)`` kills late.
        concurrency: Children running at once (trials run in parallel).
        attempt_timeout_s: An attempt still running after this long is killed and the
            trial counted as not completed.
        workdir: Where databases, journals and outcomes go (kept); a temporary directory
            (deleted) when ``None``.
        outcome_policy: What the wrapper does with a keyless, non-idempotent call that was
            running at a kill (its ``on_outcome_unknown``): ``reconcile`` (the default:
            ask the provider whether the effect happened; deliver its response if so,
            run the call if not), ``report`` an "outcome unknown" error result (the
            wrapper's own default), ``raise``, or ``rerun`` it.
        wrapper_options: More keyword options of ``InterruptAwareCheckpointer``.
        overhead_runs: After the trials, the first this many tasks run again, uncrashed,
            one at a time (no trial runs beside them), plain and wrapped interleaved, as
            the async agent and as LangGraph's usual tool loop (a model node, then a
            ``ToolNode``: each a superstep LangGraph checkpoints), timed, for
            ``overhead.sequential``. ``0``: not measured.
        overhead_repeats: Runs of each overhead task per graph and system; a task's
            storage time is the minimum over them (noise only adds time).
        progress_bar: Show a progress bar on stderr.

    Raises:
        ValueError: On a bad value (the message names it).
    """

    trials: int = 50
    systems: tuple[str, ...] = SYSTEMS
    checkpointer: Literal["sqlite", "postgres"] = "sqlite"
    dsn: str | None = None
    seed: int = 0
    latency: LatencyModel = field(default_factory=LatencyModel)
    durability: child.Durability = "sync"
    call_ids: child.CallIds = "stable"
    max_kills: int = 1
    kill_window: tuple[float, float] = (0.0, 1.0)
    concurrency: int = 2
    attempt_timeout_s: float = 120.0
    workdir: str | Path | None = None
    outcome_policy: child.OutcomePolicy = "reconcile"
    wrapper_options: Mapping[str, Any] = field(default_factory=dict)
    overhead_runs: int = 20
    overhead_repeats: int = 3
    progress_bar: bool = True

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")
        unknown = [s for s in self.systems if s not in SYSTEMS]
        if unknown or not self.systems or len(set(self.systems)) != len(self.systems):
            raise ValueError(
                f"systems must be distinct names from {list(SYSTEMS)}, got {list(self.systems)}"
            )
        if self.checkpointer not in ("sqlite", "postgres"):
            raise ValueError(f"checkpointer must be sqlite or postgres, got {self.checkpointer!r}")
        if self.dsn is not None and self.checkpointer != "postgres":
            raise ValueError("a DSN is only used with checkpointer='postgres'")
        if self.durability not in ("sync", "async", "exit"):
            raise ValueError(f"durability must be sync, async or exit, got {self.durability!r}")
        if self.call_ids not in ("stable", "fresh"):
            raise ValueError(f"call_ids must be stable or fresh, got {self.call_ids!r}")
        if self.outcome_policy not in ("reconcile", "report", "raise", "rerun"):
            raise ValueError(
                "outcome_policy must be reconcile, report, raise or rerun, "
                f"got {self.outcome_policy!r}"
            )
        if self.max_kills < 1:
            raise ValueError(f"max_kills must be >= 1, got {self.max_kills}")
        if self.overhead_runs < 0:
            raise ValueError(f"overhead_runs must be >= 0, got {self.overhead_runs}")
        if self.overhead_repeats < 1:
            raise ValueError(f"overhead_repeats must be >= 1, got {self.overhead_repeats}")
        lo, hi = self.kill_window
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"kill_window must satisfy 0 <= lo <= hi <= 1, got {self.kill_window}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if not self.attempt_timeout_s > 0:
            raise ValueError(f"attempt_timeout_s must be > 0, got {self.attempt_timeout_s}")
