from pathlib import Path

import pytest
from langchain_core.tools import tool

from langgraph_speculative.bench.timeline import Span, TimelineRecorder, plot_timelines
from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel


async def test_recorder_sees_model_and_tool_spans() -> None:
    @tool
    async def ping(x: int) -> int:
        """Echo."""
        return x

    rec = TimelineRecorder()
    model = ScriptedChatModel(
        script=[ModelTurn(text="hello world")], latency=LatencyModel(ttft_ms=5, tpot_ms=1)
    )
    await model.ainvoke("hi", config={"callbacks": [rec]})
    await ping.ainvoke({"x": 1}, config={"callbacks": [rec]})
    spans = rec.spans()
    assert [s.kind for s in spans] == ["model", "tool"]
    model_span = spans[0]
    assert model_span.first_token is not None
    assert model_span.start <= model_span.first_token <= model_span.end
    assert spans[1].label == "ping"


def test_plot_writes_a_png(tmp_path: Path) -> None:
    spans = [
        Span("model", "m", 0.0, 0.3, 0.2),
        Span("tool", "t", 0.3, 0.5),
        Span("model", "m", 0.5, 0.7, 0.6),
    ]
    out = plot_timelines({"task / sync": spans, "task / other": []}, tmp_path / "t.png", title="x")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_needs_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_timelines({}, tmp_path / "t.png")
