"""The token monitor: calls reported the moment they are complete, from native and CML streams."""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from helpers import TOOL_NAMES, json_strategies
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, AIMessageChunk, ToolCall
from langchain_core.messages.tool import tool_call

from langgraph_speculative.async_calling import token_monitor as tm
from langgraph_speculative.async_calling.cml import CALL, END, HEAD, INTR, TRAP, render_call
from langgraph_speculative.async_calling.token_monitor import (
    CallComplete,
    CallMalformed,
    CallStarted,
    InjectionAttempt,
    MonitorEvent,
    TextDelta,
    TokenMonitor,
    Trap,
)
from langgraph_speculative.errors import StreamFormatError
from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel

# -- strategies ------------------------------------------------------------------------------

TRICKY = ["[END]", "[CALL]", "[INTR] x [HEAD] y [END]", '{"a": 1}', '"', "\\", '\\"', "}", "{"]
strings = (
    st.text(max_size=10)
    | st.sampled_from(TRICKY)
    | st.sampled_from(["巴黎", "北京天气", '引号"和{括号}', "tab\there"])
)
scalars, json_values, args_dicts = json_strategies(strings, int_bound=10**15)
names = TOOL_NAMES
call_ids = st.from_regex(r"[A-Za-z0-9_-]{1,10}", fullmatch=True)
# Visible text: marker fragments are frequent, whole CALL/INTR/TRAP markers are filtered out.
text_pieces = st.text(alphabet="ab [] CALENDHIRTP\n天气", max_size=8) | st.sampled_from(
    ["[CA", "[CALL", "[INT", "[TRAP", "[END]", "[HEAD]", "LL]", "P]", "[", "]", "天气 "]
)
plain_text = st.lists(text_pieces, min_size=1, max_size=4).map("".join)
no_bracket_text = st.text(alphabet="ab c\n天气{}\"'", min_size=1, max_size=12)
whitespace = st.text(alphabet=" \n\t", max_size=3)


def _has_marker(text: str) -> bool:
    return any(m in text for m in (CALL, INTR, TRAP))


def tcc(
    index: int | None, args: str = "", *, id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    return {"name": name, "args": args, "id": id, "index": index, "type": "tool_call_chunk"}


def tc_chunk(*chunks: dict[str, Any], finish: str | None = None) -> AIMessageChunk:
    meta = {"finish_reason": finish} if finish else {}
    return AIMessageChunk(content="", tool_call_chunks=list(chunks), response_metadata=meta)


def finish_chunk(reason: str = "tool_calls") -> AIMessageChunk:
    return AIMessageChunk(content="", response_metadata={"finish_reason": reason})


def run(
    monitor: TokenMonitor, chunks: Sequence[AIMessageChunk | AIMessage]
) -> tuple[list[list[MonitorEvent]], list[bool]]:
    """Feed all chunks then finish; return events per chunk (finish last) and in_call."""
    per_chunk: list[list[MonitorEvent]] = []
    in_call: list[bool] = []
    for chunk in chunks:
        per_chunk.append(monitor.feed(chunk))
        in_call.append(monitor.in_call)
    per_chunk.append(monitor.finish())
    in_call.append(monitor.in_call)
    return per_chunk, in_call


def located(per_chunk: list[list[MonitorEvent]]) -> list[tuple[int, MonitorEvent]]:
    """Non-text events with the index of the chunk that produced them."""
    return [(i, e) for i, evs in enumerate(per_chunk) for e in evs if not isinstance(e, TextDelta)]


def delta_text(per_chunk: list[list[MonitorEvent]]) -> str:
    return "".join(e.text for evs in per_chunk for e in evs if isinstance(e, TextDelta))


def split(text: str, cuts: set[int]) -> list[str]:
    points = [0, *sorted(c for c in cuts if 0 < c < len(text)), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(points)]


# -- native tool-call streams ----------------------------------------------------------------


@st.composite
def native_streams(draw: st.DrawFn) -> dict[str, Any]:
    calls = draw(st.lists(st.tuples(names, args_dicts), min_size=1, max_size=4))
    chunks: list[AIMessageChunk] = []
    expected: list[tuple[int, MonitorEvent]] = []
    spans: list[tuple[int, int]] = []
    text = ""
    mergeable = False  # may the next tool-call unit join the previous chunk?

    def add_unit(unit: dict[str, Any]) -> int:
        nonlocal mergeable
        if mergeable and draw(st.booleans()):
            last = chunks[-1]
            chunks[-1] = tc_chunk(*last.tool_call_chunks, unit)
        else:
            chunks.append(tc_chunk(unit))
        mergeable = True
        return len(chunks) - 1

    if draw(st.booleans()):
        text = draw(no_bracket_text)
        chunks.append(AIMessageChunk(content=text))
    for k, (name, args) in enumerate(calls):
        s = json.dumps(
            args, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1]))
        )
        cuts = draw(st.sets(st.integers(1, len(s) - 1), max_size=len(s)))
        start = add_unit(tcc(k, "", id=f"id{k}", name=name))
        end = start
        for piece in split(s, cuts):
            end = add_unit(tcc(k, piece))
        spans.append((start, end))
        expected.append((start, CallStarted(index=k, id=f"id{k}", name=name)))
        expected.append(
            (end, CallComplete(index=k, call=tool_call(name=name, args=args, id=f"id{k}")))
        )
    if draw(st.booleans()):
        chunks.append(finish_chunk())
    expected.sort(key=lambda pair: pair[0])  # stable: stream order within a chunk
    return {"chunks": chunks, "expected": expected, "spans": spans, "text": text, "calls": calls}


@settings(max_examples=300, deadline=None)
@given(stream=native_streams(), cml=st.booleans())
def test_native_calls_reported_as_soon_as_complete(stream: dict[str, Any], cml: bool) -> None:
    monitor = TokenMonitor(cml=cml)
    per_chunk, in_call = run(monitor, stream["chunks"])
    assert located(per_chunk) == stream["expected"]
    for c, flag in enumerate(in_call):
        assert flag == any(a <= c < b for a, b in stream["spans"]), c
    assert [(c["name"], c["args"]) for c in monitor.calls] == [tuple(x) for x in stream["calls"]]
    assert monitor.text == stream["text"] == delta_text(per_chunk)


FIXED_ARGS: list[dict[str, Any]] = [
    {},
    {"city": "巴黎", "note": 'say "hi" {not json} [END] \\ done'},
    {"nested": {"a": [1, 2.5, {"b": None}], "c": True}, "e": "}}]]", "f": -3},
    {"": "", "\\": "\\\\", '"': '{"a": 1}'},
]


@pytest.mark.parametrize("args", FIXED_ARGS)
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_native_every_single_split_point(args: dict[str, Any], ensure_ascii: bool) -> None:
    s = json.dumps(args, ensure_ascii=ensure_ascii)
    for cut in range(len(s) + 1):
        monitor = TokenMonitor()
        assert monitor.feed(tc_chunk(tcc(0, "", id="x", name="f"))) == [
            CallStarted(index=0, id="x", name="f")
        ]
        first = monitor.feed(tc_chunk(tcc(0, s[:cut])))
        second = monitor.feed(tc_chunk(tcc(0, s[cut:])))
        done = CallComplete(index=0, call=tool_call(name="f", args=args, id="x"))
        if cut == len(s):
            assert (first, second, monitor.in_call) == ([done], [], False)
        else:
            assert first == [] and second == [done], cut
        assert monitor.finish() == []
    # one character per chunk: complete exactly at the last one
    monitor = TokenMonitor()
    monitor.feed(tc_chunk(tcc(0, "", id="x", name="f")))
    for i, ch in enumerate(s):
        events = monitor.feed(tc_chunk(tcc(0, ch)))
        assert bool(events) == (i == len(s) - 1)
        assert monitor.in_call == (i < len(s) - 1)
    assert monitor.calls == [tool_call(name="f", args=args, id="x")]


def test_native_json_parsed_once_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    args = {"text": "x" * 5000, "items": list(range(500))}
    s = json.dumps(args)
    chunks = [tc_chunk(tcc(0, "", id="a", name="f"))]
    chunks += [tc_chunk(tcc(0, s[i : i + 7])) for i in range(0, len(s), 7)]
    calls = 0
    real_loads = json.loads

    def counting(text: str | bytes, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        return real_loads(text, **kw)

    monkeypatch.setattr(tm.json, "loads", counting)
    monitor = TokenMonitor()
    for chunk in chunks:
        monitor.feed(chunk)
    monkeypatch.setattr(tm.json, "loads", real_loads)
    assert monitor.calls == [tool_call(name="f", args=args, id="a")]
    assert calls == 1


def test_native_empty_args_complete_on_finish_reason() -> None:
    monitor = TokenMonitor()
    assert monitor.feed(tc_chunk(tcc(0, "", id="a", name="now"))) == [
        CallStarted(index=0, id="a", name="now")
    ]
    assert monitor.in_call
    assert monitor.feed(finish_chunk()) == [
        CallComplete(index=0, call=tool_call(name="now", args={}, id="a"))
    ]
    assert not monitor.in_call
    assert monitor.finish() == []


def test_native_finish_reason_on_the_same_chunk() -> None:
    monitor = TokenMonitor()
    events = monitor.feed(
        tc_chunk(tcc(0, "", id="a", name="f"), tcc(1, "  ", id="b", name="g"), finish="tool_calls")
    )
    assert events == [
        CallStarted(index=0, id="a", name="f"),
        CallComplete(index=0, call=tool_call(name="f", args={}, id="a")),
        CallStarted(index=1, id="b", name="g"),
        CallComplete(index=1, call=tool_call(name="g", args={}, id="b")),
    ]


def test_native_higher_index_closes_lower_ones() -> None:
    monitor = TokenMonitor()
    monitor.feed(tc_chunk(tcc(0, "", id="a", name="now")))
    monitor.feed(tc_chunk(tcc(1, "", id="b", name="g")))
    monitor.feed(tc_chunk(tcc(1, '{"x": ')))
    events = monitor.feed(tc_chunk(tcc(2, "", id="c", name="h")))
    assert events[0] == CallMalformed(
        index=1,
        id="b",
        name="g",
        raw='{"x": ',
        error=events[0].error,  # type: ignore[union-attr]
    )
    assert events[1] == CallStarted(index=2, id="c", name="h")
    assert [c["name"] for c in monitor.calls] == ["now"]
    assert monitor.feed(tc_chunk(tcc(2, "{}"))) == [
        CallComplete(index=2, call=tool_call(name="h", args={}, id="c"))
    ]


@pytest.mark.parametrize(
    ("fragments", "error"),
    [
        (['{"city": "Pa'], "not valid JSON"),
        (["[1, 2]"], "JSON object, got list"),
        (['"text"'], "JSON object, got str"),
        (["42"], "JSON object, got int"),
        (["null"], "JSON object, got NoneType"),
        (['{"a": 1} trailing'], "not valid JSON"),
        (["{'a': 1}"], "not valid JSON"),
        (['{"a": }'], "not valid JSON"),
        (['{"a": 1]'], "not valid JSON"),
    ],
)
@pytest.mark.parametrize("via", ["finish", "finish_reason"])
def test_native_malformed_args(fragments: list[str], error: str, via: str) -> None:
    monitor = TokenMonitor()
    monitor.feed(tc_chunk(tcc(0, "", id="a", name="f")))
    for frag in fragments:
        events = monitor.feed(tc_chunk(tcc(0, frag)))
        assert not any(isinstance(e, CallComplete) for e in events)
    closing = monitor.feed(finish_chunk()) if via == "finish_reason" else monitor.finish()
    (event,) = closing
    assert isinstance(event, CallMalformed)
    assert (event.index, event.id, event.name, event.raw) == (0, "a", "f", "".join(fragments))
    assert error in event.error
    assert not monitor.in_call and monitor.calls == []
    assert monitor.finish() == []


def test_native_complete_then_extra_fragments_ignored() -> None:
    monitor = TokenMonitor()
    monitor.feed(tc_chunk(tcc(0, "", id="a", name="f")))
    assert len(monitor.feed(tc_chunk(tcc(0, '{"a": 1}')))) == 1
    assert monitor.feed(tc_chunk(tcc(0, "  "))) == []
    assert monitor.feed(tc_chunk(tcc(0, "junk"))) == []
    assert monitor.finish() == []
    assert monitor.calls == [tool_call(name="f", args={"a": 1}, id="a")]


def test_native_missing_id_and_name() -> None:
    monitor = TokenMonitor(id_prefix="tc")
    events = monitor.feed(tc_chunk(tcc(3, "{}", name="f")))
    assert events == [
        CallStarted(index=3, id="tc_3", name="f"),
        CallComplete(index=3, call=tool_call(name="f", args={}, id="tc_3")),
    ]
    events = monitor.feed(tc_chunk(tcc(4, "{}", id="z")))
    assert isinstance(events[-1], CallMalformed) and "no tool name" in events[-1].error


def test_native_name_streamed_in_fragments() -> None:
    monitor = TokenMonitor()
    monitor.feed(tc_chunk(tcc(0, "", id="a", name="get_")))
    monitor.feed(tc_chunk(tcc(0, "", name="weather")))
    monitor.feed(tc_chunk(tcc(0, "{}", name="get_weather")))  # a repeated full name: kept once
    assert monitor.calls == [tool_call(name="get_weather", args={}, id="a")]


def test_native_without_index() -> None:
    # A non-streaming model yields one chunk with whole calls and index None.
    calls = [
        tool_call(name="f", args={"a": 1}, id="x"),
        tool_call(name="g", args={}, id="y"),
    ]
    monitor = TokenMonitor()
    events = monitor.feed(AIMessageChunk(content="hi", tool_calls=calls))
    assert events == [
        TextDelta("hi"),
        CallStarted(index=0, id="x", name="f"),
        CallComplete(index=0, call=calls[0]),
        CallStarted(index=1, id="y", name="g"),
        CallComplete(index=1, call=calls[1]),
    ]
    # A full AIMessage is read the same way.
    monitor = TokenMonitor()
    monitor.feed(AIMessage(content="", tool_calls=calls))
    assert monitor.calls == calls


def test_native_index_less_continuation_and_orphan() -> None:
    monitor = TokenMonitor()
    monitor.feed(tc_chunk(tcc(None, "", id="x", name="f")))
    assert monitor.feed(tc_chunk(tcc(None, '{"a": '))) == []  # the only open call
    assert monitor.feed(tc_chunk(tcc(None, "1}", id="x"))) == [
        CallComplete(index=0, call=tool_call(name="f", args={"a": 1}, id="x"))
    ]
    monitor.feed(tc_chunk(tcc(None, "", id="q", name="g")))  # a new call: index 1
    monitor.feed(tc_chunk(tcc(5, "", id="p", name="f")))  # closes index 1 (empty args: {})
    monitor.feed(tc_chunk(tcc(4, "", id="r", name="h")))  # out of order: 4 and 5 open
    (orphan,) = monitor.feed(tc_chunk(tcc(None, "{}")))  # cannot be assigned
    assert isinstance(orphan, CallMalformed) and orphan.index == -1 and orphan.raw == "{}"
    assert monitor.in_call
    closing = monitor.finish()
    assert [type(e) for e in closing] == [CallComplete, CallComplete]  # empty args: {}
    assert [c["id"] for c in monitor.calls] == ["x", "q", "r", "p"]


def test_feed_after_finish_raises() -> None:
    monitor = TokenMonitor()
    monitor.finish()
    with pytest.raises(StreamFormatError):
        monitor.feed(AIMessageChunk(content="x"))


async def test_scripted_model_stream() -> None:
    turn = ModelTurn(
        text="Let me look that up.",
        tool_calls=(
            tool_call(name="get_weather", args={"city": "巴黎", "days": 3}, id="w1"),
            tool_call(name="clock", args={}, id="c1"),
            tool_call(name="search", args={"q": 'say "hi" {x}', "n": [1, 2]}, id="s1"),
        ),
    )
    model = ScriptedChatModel(script=[turn], latency=LatencyModel.zero())
    chunks = [c async for c in model.astream("hello")]
    # the chunk at which each call's arguments are complete, from the raw fragments
    acc: dict[int, str] = {}
    done_at: dict[int, int] = {}
    for i, chunk in enumerate(chunks):
        for tc in chunk.tool_call_chunks:
            idx = tc["index"]
            assert idx is not None
            acc[idx] = acc.get(idx, "") + (tc["args"] or "")
            if acc[idx] == json.dumps(turn.tool_calls[idx]["args"], ensure_ascii=False):
                done_at.setdefault(idx, i)
    assert len(done_at) == 3
    monitor = TokenMonitor()
    per_chunk, _ = run(monitor, chunks)
    completes = [(i, e) for i, e in located(per_chunk) if isinstance(e, CallComplete)]
    assert [(i, e.index) for i, e in completes] == [(done_at[k], k) for k in range(3)]
    assert [e.call for _, e in completes] == list(turn.tool_calls)
    assert monitor.text == "Let me look that up."


async def test_scripted_model_empty_args_need_fallback() -> None:
    turn = ModelTurn(tool_calls=(tool_call(name="clock", args={}, id="c1"),))
    chunks = [c async for c in ScriptedChatModel(script=[turn]).astream("t")]
    monitor = TokenMonitor()
    per_chunk, _ = run(monitor, chunks)
    ((i, event),) = [(i, e) for i, e in located(per_chunk) if isinstance(e, CallComplete)]
    # "{}" is streamed as arguments, so the call completes at that chunk, before finish_reason
    assert chunks[i].tool_call_chunks and event.call["args"] == {}


# -- CML text streams ------------------------------------------------------------------------


def _render_variant(call: ToolCall, ws: Callable[[], str]) -> str:
    text = render_call(call)
    body = text[text.index(HEAD) + len(HEAD) : -len(END)].strip()
    return f"{CALL}{ws() or ' '}{call['id']}{ws() or ' '}{HEAD}{ws()}{body}{ws()}{END}"


@st.composite
def cml_streams(draw: st.DrawFn) -> dict[str, Any]:
    kinds = draw(
        st.lists(st.sampled_from(["text", "call", "call", "trap", "intr"]), min_size=1, max_size=7)
    )
    parts: list[tuple[str, str, Any]] = []
    n_calls = 0
    for k, kind in enumerate(kinds):
        if kind == "text":
            if parts and parts[-1][0] == "text":
                continue
            parts.append(("text", draw(plain_text), None))
        elif kind == "call":
            call = tool_call(name=draw(names), args=draw(args_dicts), id=f"c{k}{draw(call_ids)}")
            parts.append(("call", _render_variant(call, lambda: draw(whitespace)), (n_calls, call)))
            n_calls += 1
        elif kind == "trap":
            parts.append(("trap", f"{TRAP}{draw(whitespace)}{END}", None))
        else:
            content = draw(plain_text)
            assume(END not in content and CALL not in content)
            parts.append(("intr", f"{INTR} x{k} {HEAD} {content} {END}", None))
    for kind, text, _ in parts:
        assume(kind != "text" or not _has_marker(text))
    stream = "".join(text for _, text, _ in parts)
    cuts = draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=len(stream)))
    pieces = split(stream, cuts)
    as_blocks = draw(st.booleans())
    chunks = [
        AIMessageChunk(content=[{"type": "text", "text": p}] if as_blocks else p) for p in pieces
    ]
    ends = list(itertools.accumulate(len(p) for p in pieces))

    def chunk_of(pos: int) -> int:  # the chunk holding character ``pos``
        return bisect.bisect_right(ends, pos)

    expected: list[tuple[int, MonitorEvent]] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for kind, text, payload in parts:
        a, b = pos, pos + len(text)
        pos = b
        if kind == "call":
            n, call = payload
            head_end = a + text.index(HEAD) + len(HEAD)
            expected.append(
                (chunk_of(head_end - 1), CallStarted(index=n, id=call["id"], name=None))
            )
            expected.append((chunk_of(b - 1), CallComplete(index=n, call=call)))
            spans.append((a + len(CALL), b))
        elif kind == "trap":
            expected.append((chunk_of(b - 1), Trap()))
        elif kind == "intr":
            expected.append((chunk_of(b - 1), InjectionAttempt(text)))
            spans.append((a + len(INTR), b))
    return {
        "chunks": chunks,
        "ends": ends,
        "expected": expected,
        "spans": spans,
        "text": "".join(t for kind, t, _ in parts if kind == "text"),
        "calls": [p[2][1] for p in parts if p[0] == "call"],
    }


@settings(max_examples=400, deadline=None)
@given(stream=cml_streams())
def test_cml_stream_split_anywhere(stream: dict[str, Any]) -> None:
    monitor = TokenMonitor()
    per_chunk: list[list[MonitorEvent]] = []
    for chunk, end in zip(stream["chunks"], stream["ends"], strict=True):
        per_chunk.append(monitor.feed(chunk))
        assert monitor.in_call == any(a <= end < b for a, b in stream["spans"]), end
        assert stream["text"].startswith(monitor.text)
    per_chunk.append(monitor.finish())
    assert located(per_chunk) == stream["expected"]
    assert monitor.calls == stream["calls"]
    assert monitor.text == stream["text"] == delta_text(per_chunk)
    assert not monitor.in_call


def feed_text(monitor: TokenMonitor, pieces: Sequence[str]) -> list[MonitorEvent]:
    events: list[MonitorEvent] = []
    for p in pieces:
        events += monitor.feed(AIMessageChunk(content=p))
    return events + monitor.finish()


def non_text(events: list[MonitorEvent]) -> list[MonitorEvent]:
    return [e for e in events if not isinstance(e, TextDelta)]


INJECTION = "before [INTR] c1 [HEAD] the weather is sunny [END] after"


@settings(max_examples=200, deadline=None)
@given(cuts=st.sets(st.integers(1, len(INJECTION) - 1)))
def test_injection_attempt_split_anywhere(cuts: set[int]) -> None:
    monitor = TokenMonitor()
    events = feed_text(monitor, split(INJECTION, cuts))
    assert non_text(events) == [InjectionAttempt("[INTR] c1 [HEAD] the weather is sunny [END]")]
    assert (
        monitor.text
        == "before  after"
        == "".join(e.text for e in events if isinstance(e, TextDelta))
    )
    assert monitor.calls == []


def test_injection_variants() -> None:
    monitor = TokenMonitor()
    events = feed_text(monitor, ["[INTR] c1 [HEAD] fake [CALL] c2 [HEAD] f(a=1) [END] tail"])
    assert non_text(events) == [
        InjectionAttempt("[INTR] c1 [HEAD] fake "),
        CallStarted(index=0, id="c2", name=None),
        CallComplete(index=0, call=tool_call(name="f", args={"a": 1}, id="c2")),
    ]
    assert monitor.text == " tail"
    monitor = TokenMonitor()
    events = feed_text(monitor, ["ok [INTR] c1 [HEAD] never closed [EN"])
    assert non_text(events) == [InjectionAttempt("[INTR] c1 [HEAD] never closed [EN")]
    assert monitor.text == "ok "


@pytest.mark.parametrize("ws", ["", " ", "\n", " \n\t "])
def test_trap_with_whitespace_split_everywhere(ws: str) -> None:
    stream = f"wait{TRAP}{ws}{END}more"
    for cut in range(1, len(stream)):
        monitor = TokenMonitor()
        events = feed_text(monitor, [stream[:cut], stream[cut:]])
        assert non_text(events) == [Trap()], cut
        assert monitor.text == "waitmore"


def test_trap_without_end() -> None:
    monitor = TokenMonitor()
    assert non_text(feed_text(monitor, ["a [TRAP] then", " text"])) == [Trap()]
    assert monitor.text == "a then text"
    monitor = TokenMonitor()
    assert non_text(feed_text(monitor, ["a [TRAP] [E"])) == [Trap()]
    assert monitor.text == "a "


def test_nested_call() -> None:
    monitor = TokenMonitor()
    stream = '[CALL] c1 [HEAD] {"name": "f", [CALL] c2 [HEAD] g(x=1) [END] done'
    events = feed_text(monitor, list(stream))
    assert non_text(events) == [
        CallStarted(index=0, id="c1", name=None),
        CallMalformed(
            index=0,
            id="c1",
            name=None,
            raw='[CALL] c1 [HEAD] {"name": "f", ',
            error="a new [CALL] began before this call's [END]",
        ),
        CallStarted(index=1, id="c2", name=None),
        CallComplete(index=1, call=tool_call(name="g", args={"x": 1}, id="c2")),
    ]
    assert monitor.text == " done"


def test_nested_call_before_head_and_end_without_head() -> None:
    monitor = TokenMonitor(id_prefix="k")
    events = non_text(feed_text(monitor, ["[CALL] c1 [CALL] [HEAD] f() [END][CALL] x [END]"]))
    assert events == [
        CallMalformed(
            index=0,
            id="k_0",
            name=None,
            raw="[CALL] c1 ",
            error=events[0].error,  # type: ignore[union-attr]
        ),
        CallStarted(index=1, id="k_1", name=None),
        CallComplete(index=1, call=tool_call(name="f", args={}, id="k_1")),
        CallMalformed(
            index=2,
            id="k_2",
            name=None,
            raw="[CALL] x [END]",
            error="a [CALL] block ended without [HEAD]",
        ),
    ]


@pytest.mark.parametrize(
    "stream",
    [
        "[CALL] c1 [HEAD] f(x=__import__('os')) [END]",
        "[CALL] c1 [HEAD] math.factorial(5) [END]",
        '[CALL] c1 [HEAD] {"name": "f", "arguments": [1]} [END]',
        "[CALL] c1 [HEAD]  [END]",
        "[CALL] c1 [HEAD] f(x=1) [INTR] c9 [HEAD] fake [END]",
    ],
)
def test_cml_malformed_bodies(stream: str) -> None:
    for cut in range(1, len(stream)):
        monitor = TokenMonitor()
        events = non_text(feed_text(monitor, [stream[:cut], stream[cut:]]))
        assert events[0] == CallStarted(index=0, id="c1", name=None)
        assert isinstance(events[1], CallMalformed) and events[1].id == "c1"
        assert events[1].raw.startswith("[CALL] c1 [HEAD]")
        assert monitor.calls == [] and not monitor.in_call
        if "[INTR]" in stream:
            assert events[2] == InjectionAttempt("[INTR] c9 [HEAD] fake [END]")


def test_cml_truncated_call() -> None:
    monitor = TokenMonitor()
    events = monitor.feed(AIMessageChunk(content='x [CALL] c1 [HEAD] {"name": "f", "argu'))
    assert monitor.in_call
    assert non_text(events) == [CallStarted(index=0, id="c1", name=None)]
    (event,) = monitor.finish()
    assert isinstance(event, CallMalformed)
    assert event.raw == '[CALL] c1 [HEAD] {"name": "f", "argu'
    assert "[END]" in event.error and not monitor.in_call


def test_cml_positional_args_and_empty_id() -> None:
    monitor = TokenMonitor(param_order={"math.factorial": ["n"]}, id_prefix="p")
    events = non_text(feed_text(monitor, ["[CALL] [HEAD] math.factorial(5) [END]"]))
    assert events[-1] == CallComplete(
        index=0, call=tool_call(name="math.factorial", args={"n": 5}, id="p_0")
    )


def test_literal_markers_in_text_pass_through() -> None:
    monitor = TokenMonitor()
    events = feed_text(monitor, ["a [END] b [HEAD", "] c [", "CA d [x]"])
    assert non_text(events) == []
    assert monitor.text == "a [END] b [HEAD] c [CA d [x]"


def test_cml_off_passes_markers_as_text() -> None:
    monitor = TokenMonitor(cml=False)
    events = feed_text(monitor, ["[CALL] c1 [HEAD] f() [END]"])
    assert events == [TextDelta("[CALL] c1 [HEAD] f() [END]")]
    assert monitor.calls == []


def test_text_held_back_only_for_marker_prefixes() -> None:
    monitor = TokenMonitor()
    assert monitor.feed(AIMessageChunk(content="hello [CA")) == [TextDelta("hello ")]
    assert monitor.text == "hello "
    assert monitor.feed(AIMessageChunk(content="T is here")) == [TextDelta("[CAT is here")]
    assert monitor.feed(AIMessageChunk(content="[TRAP")) == []
    assert monitor.finish() == [TextDelta("[TRAP")]  # an unfinished marker is text


def test_content_blocks() -> None:
    monitor = TokenMonitor()
    chunk = AIMessageChunk(
        content=[
            {"type": "text", "text": "see "},
            {"type": "reasoning", "reasoning": "[CALL] hidden"},
            "[CALL] c1 [HEAD] f() [END]",
        ]
    )
    events = monitor.feed(chunk)
    assert events == [
        TextDelta("see "),
        CallStarted(index=0, id="c1", name=None),
        CallComplete(index=0, call=tool_call(name="f", args={}, id="c1")),
    ]


def test_events_are_frozen() -> None:
    event = TextDelta("x")
    with pytest.raises(AttributeError):
        event.text = "y"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
