"""Summaries, tables, progress bars and JSON output shared by the benchmarks.

Example:
    ```python
    from langgraph_speculative.bench.report import format_table, summarize

    stats = summarize([100.0, 200.0, 300.0])
    assert stats["p50_ms"] == 200.0
    print(format_table(["mode", "mean ms"], [["sync", f"{stats['mean_ms']:.0f}"]]))
    ```
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

__all__ = ["format_table", "percentile", "progress", "summarize", "write_json"]


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) of ``values`` by linear interpolation.

    Raises:
        ValueError: If ``values`` is empty or ``q`` is outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(values_ms: Sequence[float]) -> dict[str, float]:
    """Return ``{"mean_ms", "p50_ms", "p90_ms"}`` of a list of milliseconds."""
    return {
        "mean_ms": sum(values_ms) / len(values_ms),
        "p50_ms": percentile(values_ms, 50),
        "p90_ms": percentile(values_ms, 90),
    }


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Format rows as a plain-text table with right-aligned columns (the first left)."""
    cells = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i]) for i in range(len(row))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def progress(total: int, desc: str, *, enabled: bool = True) -> tqdm[Any]:
    """Return a progress bar on stderr (silent when ``enabled`` is false)."""
    return tqdm(
        total=total, desc=desc, unit="task", file=sys.stderr, disable=not enabled, leave=False
    )


def write_json(path: str | Path, document: dict[str, Any]) -> None:
    """Write ``document`` as JSON to ``path`` atomically (temp file, then rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
