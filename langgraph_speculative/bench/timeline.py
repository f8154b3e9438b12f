"""Record and draw what overlaps in time: model requests and tool runs.

:class:`TimelineRecorder` is a LangChain callback handler: pass it in a run's
``callbacks`` and it records every chat-model request (start, first token, end) and every
tool run (start, end). :func:`plot_timelines` draws one panel per run, so a reader sees
where tools run while the model streams and where everything waits.

Example:
    ```python
    import asyncio
    from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel
    from langgraph_speculative.bench.timeline import TimelineRecorder

    model = ScriptedChatModel(script=[ModelTurn(text="hello")], latency=LatencyModel.zero())
    rec = TimelineRecorder()
    asyncio.run(model.ainvoke("hi", config={"callbacks": [rec]}))
    assert [s.kind for s in rec.spans()] == ["model"]
    ```
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk, LLMResult

__all__ = ["Span", "TimelineRecorder", "plot_timelines"]


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time spent by the model or a tool.

    Attributes:
        kind: ``"model"`` or ``"tool"``.
        label: Model name or tool name (with the call id when known).
        start: Start, seconds on the ``time.perf_counter`` clock.
        end: End, same clock.
        first_token: For model spans, when the first chunk arrived (``None`` if unknown).
    """

    kind: str
    label: str
    start: float
    end: float
    first_token: float | None = None


class TimelineRecorder(BaseCallbackHandler):
    """Callback handler that records model and tool spans of a run."""

    run_inline = True  # record on the event loop, in order, without a thread hop

    def __init__(self) -> None:
        self._open: dict[UUID, tuple[str, str, float]] = {}
        self._first: dict[UUID, float] = {}
        self._spans: list[Span] = []

    def spans(self) -> list[Span]:
        """Return the finished spans, by start time."""
        return sorted(self._spans, key=lambda s: s.start)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        """Open a model span."""
        name = (serialized or {}).get("name") or "model"
        self._open[run_id] = ("model", str(name), time.perf_counter())

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Note the first chunk of a model span."""
        self._first.setdefault(run_id, time.perf_counter())

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Close a model span."""
        self._close(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Close a model span that failed."""
        self._close(run_id)

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Open a tool span."""
        name = (serialized or {}).get("name") or "tool"
        self._open[run_id] = ("tool", str(name), time.perf_counter())

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Close a tool span."""
        self._close(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Close a tool span that failed."""
        self._close(run_id)

    def _close(self, run_id: UUID) -> None:
        opened = self._open.pop(run_id, None)
        if opened is None:
            return
        kind, label, start = opened
        first = self._first.pop(run_id, None)
        self._spans.append(Span(kind, label, start, time.perf_counter(), first))


def plot_timelines(
    runs: Mapping[str, Sequence[Span]], path: str | Path, *, title: str | None = None
) -> Path:
    """Draw one timeline panel per run and save the figure as an image.

    Each panel has a ``model`` lane (waiting for the first token drawn light, streaming
    dark) and one lane per tool call. Times are relative to each run's first span.

    Args:
        runs: Panel title (for example ``"task 3 / sync"``) to the run's spans.
        path: Where to save the image (format from the suffix, e.g. ``.png``).
        title: Figure title.

    Returns:
        The path written.

    Raises:
        ValueError: If ``runs`` is empty.
    """
    if not runs:
        raise ValueError("nothing to plot: no runs were recorded")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(runs)
    lanes_per_run = [1 + sum(1 for s in spans if s.kind == "tool") for spans in runs.values()]
    height = sum(0.3 * k + 0.8 for k in lanes_per_run)
    fig, axes = plt.subplots(n, 1, figsize=(10, max(2.5, height)), squeeze=False, sharex=True)
    for ax, (name, spans) in zip(axes[:, 0], runs.items(), strict=True):
        _draw_run(ax, name, list(spans))
    axes[-1, 0].set_xlabel("milliseconds since the request")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _draw_run(ax: Any, name: str, spans: list[Span]) -> None:
    if not spans:
        ax.set_title(f"{name} (no spans)", loc="left", fontsize=9)
        return
    t0 = min(s.start for s in spans)
    tools = sorted((s for s in spans if s.kind == "tool"), key=lambda s: s.start)
    labels = ["model", *[f"{s.label} #{i + 1}" for i, s in enumerate(tools)]]
    for s in spans:
        if s.kind != "model":
            continue
        first = s.first_token if s.first_token is not None else s.start
        ax.barh(0, (first - s.start) * 1e3, left=(s.start - t0) * 1e3, color="#b9d3ee", height=0.6)
        ax.barh(0, (s.end - first) * 1e3, left=(first - t0) * 1e3, color="#1f5fa8", height=0.6)
    for lane, s in enumerate(tools, start=1):
        ax.barh(
            lane, (s.end - s.start) * 1e3, left=(s.start - t0) * 1e3, color="#e07b39", height=0.6
        )
    end_ms = (max(s.end for s in spans) - t0) * 1e3
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_title(f"{name}: {end_ms:.0f} ms", loc="left", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
