"""Tests of the clock-based interaction format: rendering, parsing, the prompt, messages."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from langgraph_speculative.core.ledger import InputRecord
from langgraph_speculative.core.safety import label_tool
from langgraph_speculative.errors import InteractionFormatError, StreamFormatError
from langgraph_speculative.speculative.interaction_format import (
    ACTION_KEYWORDS,
    Action,
    Answer,
    Call,
    Confirm,
    EnvironmentEvent,
    Item,
    ModelAction,
    Pause,
    Remove,
    Revise,
    ToolResult,
    UserInput,
    escape_text,
    event_from_input,
    interaction_system_prompt,
    parse_actions,
    parse_events,
    render,
    render_actions,
    render_transcript,
    to_messages,
    unescape_text,
)

T0 = 1_700_000_000.0

# -- rendering -----------------------------------------------------------------------------


def test_the_example_of_the_issue_renders_exactly() -> None:
    items: list[Item] = [
        UserInput("Play songs from Taylor", final=False, at=T0 + 1.2),
        ModelAction(Call("c1", "spotify.play", {"artist": "Taylor"}), at=T0 + 2.05),
        ToolResult("c1", "playing", at=T0 + 2.31),
        UserInput("Play songs from Taylor Swift", final=True, at=T0 + 3.4),
        ModelAction(Confirm(("c1", "c2")), at=T0 + 3.52),
    ]
    assert render_transcript(items, t0=T0).split("\n") == [
        "[t=1.20s] USER partial: Play songs from Taylor",
        '[t=2.05s] MODEL CALL c1 {"name": "spotify.play", "arguments": {"artist": "Taylor"}}',
        "[t=2.31s] RESULT c1: playing",
        "[t=3.40s] USER final: Play songs from Taylor Swift",
        "[t=3.52s] MODEL CONFIRM c1 c2",
    ]


@pytest.mark.parametrize(
    ("item", "line"),
    [
        (EnvironmentEvent("Meeting moved", at=T0 + 2.5, source="calendar"),
         "[t=2.50s] EVENT calendar: Meeting moved"),
        (EnvironmentEvent("Door bell", at=T0 + 2.5), "[t=2.50s] EVENT: Door bell"),
        (ToolResult("c4", "timeout", at=T0 + 9, status="error"),
         "[t=9.00s] RESULT c4 (error): timeout"),
        (ToolResult("c5", "c1 removed", at=T0, status="cancelled"),
         "[t=0.00s] RESULT c5 (cancelled): c1 removed"),
        (UserInput("early", final=False, at=T0 - 5), "[t=0.00s] USER partial: early"),
        (UserInput("x", final=False, at=T0 + 123.456), "[t=123.46s] USER partial: x"),
        (Revise("c1", "t", {"a": 1}, depends_on=("c0",)),
         'REVISE c1 {"name": "t", "arguments": {"a": 1}, "depends_on": ["c0"]}'),
        (Remove("c1"), "REMOVE c1"),
        (Pause(), "PAUSE"),
        (Confirm(), "CONFIRM"),
        (Answer("Done."), "ANSWER Done."),
        (ModelAction(Pause(), at=T0 + 1), "[t=1.00s] MODEL PAUSE"),
        (InputRecord(1, "hi", final=True, at=T0 + 1), "[t=1.00s] USER final: hi"),
        (InputRecord(2, "ping", at=T0 + 2, kind="event", source="net"),
         "[t=2.00s] EVENT net: ping"),
        (EnvironmentEvent("x", at=T0, source="a:b"), "[t=0.00s] EVENT a\\u003ab: x"),
    ],
)  # fmt: skip
def test_render_lines(item: Item, line: str) -> None:
    assert render(item, t0=T0) == line


def test_unicode_and_chinese_text_stay_readable() -> None:
    line = render(UserInput("帮我订一张明天去北京的机票", final=False, at=T0 + 0.5), t0=T0)
    assert line == "[t=0.50s] USER partial: 帮我订一张明天去北京的机票"
    call = Call("c1", "book_flight", {"to": "北京", "note": "café ☕"})
    assert render(call, t0=T0) == (
        'CALL c1 {"name": "book_flight", "arguments": {"to": "北京", "note": "café ☕"}}'
    )
    assert parse_actions(render(call, t0=T0)) == [call]


def test_newlines_in_user_text_are_escaped_so_one_event_is_one_line() -> None:
    text = 'first line\nsecond "line"\r\nback\\slash\u2028sep\x85nel\ttab'
    line = render(UserInput(text, final=True, at=T0), t0=T0)
    assert line.splitlines() == [line]
    assert line == (
        "[t=0.00s] USER final: "
        'first line\\nsecond "line"\\r\\nback\\\\slash\\u2028sep\\u0085nel\ttab'
    )
    assert unescape_text(line.removeprefix("[t=0.00s] USER final: ")) == text


def test_json_bodies_with_quotes_and_newlines_in_strings_are_one_line() -> None:
    call = Call("c1", "send", {"text": 'He said "hi"\nthen left\u2028\x85', "n": [1, {"k": "\\"}]})
    line = render(call, t0=T0)
    assert line.splitlines() == [line]
    assert "\\u2028" in line and "\\u0085" in line and '\\"hi\\"' in line and "\\n" in line
    assert parse_actions(line) == [call]


def test_transcript_has_one_line_per_item() -> None:
    items: list[Item] = [
        UserInput("a\nb", final=False, at=T0 + 1),
        EnvironmentEvent("x\ny", at=T0 + 2, source="s\nrc"),
        ToolResult("c1", "multi\nline\nresult", at=T0 + 3),
        ModelAction(Answer("two\nlines"), at=T0 + 4),
    ]
    assert len(render_transcript(items, t0=T0).splitlines()) == len(items)
    assert render_transcript([], t0=T0) == ""


def test_escape_round_trip_examples() -> None:
    for text in ["", "plain", "a\\nb", "\\", "\n", "\\\\n", "C:\\path", "\u2029", "x\\u0041"]:
        assert unescape_text(escape_text(text)) == text
        assert len(escape_text(text).splitlines()) <= 1
    assert unescape_text("C:\\path and \\q") == "C:\\path and \\q"  # unknown escapes kept
    assert unescape_text("a\\tb\\u0041\\uZZ") == "a\tbA\\uZZ"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_escape_round_trip_property(text: str) -> None:
    escaped = escape_text(text)
    assert unescape_text(escaped) == text
    assert len(escaped.splitlines()) <= 1 and "\n" not in escaped and "\r" not in escaped


def test_event_from_input() -> None:
    assert event_from_input(InputRecord(1, "hi", at=5.0)) == UserInput("hi", False, 5.0)
    assert event_from_input(InputRecord(2, "bye", final=True, at=6.0)) == UserInput(
        "bye", True, 6.0
    )
    assert event_from_input(
        InputRecord(3, "ring", at=7.0, kind="event", source="phone")
    ) == EnvironmentEvent("ring", 7.0, "phone")


def test_tool_result_from_message() -> None:
    ok = ToolMessage(content="sunny", tool_call_id="c1")
    bad = ToolMessage(content="boom", tool_call_id="c2", status="error")
    assert ToolResult.from_message(ok, at=T0) == ToolResult("c1", "sunny", T0)
    assert ToolResult.from_message(bad, at=T0).status == "error"


def test_render_refuses_non_items() -> None:
    with pytest.raises(InteractionFormatError):
        render("CALL c1 {}", t0=T0)  # type: ignore[arg-type]


# -- parsing -------------------------------------------------------------------------------


def test_parse_every_action() -> None:
    text = "\n".join(
        [
            'CALL c1 {"name": "spotify.search", "arguments": {"artist": "Taylor"}}',
            "",
            'REVISE c1 {"name": "spotify.search", "arguments": {"artist": "Taylor Swift"}}',
            '  CALL c2 {"name": "play", "arguments": {}, "depends_on": ["c1"]}  ',
            "REMOVE c3",
            "PAUSE",
            "CONFIRM c1 c2",
            "CONFIRM",
            "ANSWER Playing Taylor Swift.",
        ]
    )
    assert parse_actions(text) == [
        Call("c1", "spotify.search", {"artist": "Taylor"}),
        Revise("c1", "spotify.search", {"artist": "Taylor Swift"}),
        Call("c2", "play", {}, depends_on=("c1",)),
        Remove("c3"),
        Pause(),
        Confirm(("c1", "c2")),
        Confirm(()),
        Answer("Playing Taylor Swift."),
    ]
    assert parse_actions("") == [] and parse_actions("\n  \n") == []


def test_parse_tolerates_echoed_clock_and_model_prefix_and_crlf() -> None:
    text = (
        '[t=2.05s] MODEL CALL c1 {"name": "t", "arguments": {}}\r\n'
        "MODEL PAUSE\r\n[t=3.00s] CONFIRM c1\r\n"
    )
    assert parse_actions(text) == [Call("c1", "t", {}), Pause(), Confirm(("c1",))]


def test_answer_runs_to_the_end_of_the_output() -> None:
    text = "CONFIRM c1\nANSWER Here you are:\n\n- item one\n- item \\u2028two\n\n  \n"
    assert parse_actions(text) == [
        Confirm(("c1",)),
        Answer("Here you are:\n\n- item one\n- item \u2028two"),
    ]
    assert parse_actions("ANSWER  two leading spaces kept ") == [
        Answer(" two leading spaces kept ")
    ]
    assert parse_actions("ANSWER line\\nbreak") == [Answer("line\nbreak")]
    assert parse_actions("PAUSE\nANSWER\nOn the next line.\nPAUSE") == [
        Pause(),
        Answer("On the next line.\nPAUSE"),
    ]
    with pytest.raises(InteractionFormatError, match="non-blank"):
        parse_actions("ANSWER\n\n   \n")


BAD_LINES = [
    ("Sure, let me check.", "not an action"),
    ("call c1 {}", "not an action"),
    ("[t=1.00s] USER partial: hi", "not an action"),
    ("RESULT c1: done", "not an action"),
    ("CALL", "needs an id"),
    ('CALL {"name": "t", "arguments": {}}', "needs an id"),
    ("CALL c1", "no JSON body"),
    ("CALL c1 {not json}", "not valid JSON"),
    ('CALL c1 {"name": "t", "arguments": {}} trailing', "not valid JSON"),
    ('CALL c1 ["t", {}]', "JSON object"),
    ('CALL c1 {"arguments": {}}', '"name"'),
    ('CALL c1 {"name": "", "arguments": {}}', '"name"'),
    ('CALL c1 {"name": 5, "arguments": {}}', '"name"'),
    ('CALL c1 {"name": "t"}', '"arguments"'),
    ('CALL c1 {"name": "t", "arguments": [1]}', '"arguments"'),
    ('CALL c1 {"name": "t", "arguments": "{}"}', '"arguments"'),
    ('CALL c1 {"name": "t", "arguments": {}, "id": "c1"}', "unknown keys"),
    ('CALL c1 {"name": "t", "arguments": {}, "depends_on": "c0"}', "depends_on"),
    ('CALL c1 {"name": "t", "arguments": {}, "depends_on": [1]}', "depends_on"),
    ('CALL c1 {"name": "t", "arguments": {}, "depends_on": ["a", "a"]}', "twice"),
    ('REVISE {"name": "t", "arguments": {}}', "needs an id"),
    ("REVISE c1 {}", '"name"'),
    ("REMOVE", "exactly one id"),
    ("REMOVE c1 c2", "exactly one id"),
    ("REMOVE {c1", "must not start"),
    ("PAUSE now", "PAUSE takes nothing"),
    ("CONFIRM c1 c1", "twice"),
    ("ANSWER", "non-blank"),
    ("ANSWER    ", "non-blank"),
    ("ANSWER \\n", "non-blank"),
    ("ANSWER\\n", "not an action"),
]


@pytest.mark.parametrize(("line", "match"), BAD_LINES)
def test_bad_lines_raise_naming_the_line(line: str, match: str) -> None:
    after = "" if line.startswith("ANSWER") else "\nPAUSE"  # ANSWER takes what follows
    text = f"PAUSE\n\n{line}{after}"
    with pytest.raises(InteractionFormatError, match=match) as info:
        parse_actions(text)
    assert info.value.lineno == 3
    assert info.value.line == line
    assert repr(line) in str(info.value) and "line 3" in str(info.value)
    assert isinstance(info.value, StreamFormatError)


def test_parse_refuses_non_text() -> None:
    with pytest.raises(InteractionFormatError, match="must be a str"):
        parse_actions(None)  # type: ignore[arg-type]


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    body = '{"name": "t", "arguments": {"a": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    with pytest.raises(InteractionFormatError):
        parse_actions(f"CALL c1 {body}")


@pytest.mark.parametrize(
    "make",
    [
        lambda: Call("", "t"),
        lambda: Call("c 1", "t"),
        lambda: Call("c\n1", "t"),
        lambda: Call("{c1", "t"),
        lambda: Call(5, "t"),  # type: ignore[arg-type]
        lambda: Call("c1", ""),
        lambda: Call("c1", "  "),
        lambda: Call("c1", "t", [1]),  # type: ignore[arg-type]
        lambda: Call("c1", "t", {1: "x"}),  # type: ignore[dict-item]
        lambda: Call("c1", "t", {"x": float("nan")}),
        lambda: Call("c1", "t", {"x": {1, 2}}),
        lambda: Call("c1", "t", depends_on="c0"),  # type: ignore[arg-type]
        lambda: Revise("c1", "t", {}, depends_on=("c0", "c0")),
        lambda: Remove(""),
        lambda: Remove("c1:"),
        lambda: Confirm(("a", "a")),
        lambda: Confirm("a"),  # type: ignore[arg-type]
        lambda: Confirm(("a b",)),
        lambda: Answer(""),
        lambda: Answer(" \n "),
        lambda: Answer(5),  # type: ignore[arg-type]
        lambda: UserInput("x", final=1, at=T0),  # type: ignore[arg-type]
        lambda: UserInput("x", final=False, at=float("nan")),
        lambda: UserInput(None, final=False, at=T0),  # type: ignore[arg-type]
        lambda: EnvironmentEvent("x", at="now"),  # type: ignore[arg-type]
        lambda: EnvironmentEvent("x", at=T0, source=3),  # type: ignore[arg-type]
        lambda: ToolResult("c1", 5, at=T0),  # type: ignore[arg-type]
        lambda: ToolResult("c1", "x", at=T0, status="ok"),  # type: ignore[arg-type]
        lambda: ToolResult("", "x", at=T0),
        lambda: ModelAction("PAUSE", at=T0),  # type: ignore[arg-type]
        lambda: ModelAction(Pause(), at=True),
    ],
)
def test_constructors_validate(make: Any) -> None:
    with pytest.raises(InteractionFormatError):
        make()


def test_arguments_are_stored_as_their_json_round_trip() -> None:
    args: dict[str, Any] = {"pair": (1, 2), "nested": {"k": [1]}}
    call = Call("c1", "t", args)
    assert call.arguments == {"pair": [1, 2], "nested": {"k": [1]}}
    args["nested"]["k"].append(2)
    assert call.arguments["nested"]["k"] == [1]  # a copy
    assert hash(call) == hash(Call("c1", "t", {"other": 1}))  # hashable despite the dict
    assert Confirm(["a", "b"]).ids == ("a", "b")  # type: ignore[arg-type]


# -- round trips (hypothesis) --------------------------------------------------------------

_ids = st.text(min_size=1, max_size=8).filter(
    lambda s: not any(c.isspace() for c in s) and not s.startswith("{") and not s.endswith(":")
)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
_args = st.dictionaries(st.text(), _json, max_size=4)
_names = st.text(min_size=1).filter(lambda s: bool(s.strip()))
_dep_ids = st.lists(_ids, max_size=3, unique=True).map(tuple)
actions: st.SearchStrategy[Action] = st.one_of(
    st.builds(Call, _ids, _names, _args, _dep_ids),
    st.builds(Revise, _ids, _names, _args, _dep_ids),
    st.builds(Remove, _ids),
    st.just(Pause()),
    st.builds(Confirm, st.lists(_ids, max_size=4, unique=True).map(tuple)),
    st.builds(Answer, st.text(min_size=1).filter(lambda s: bool(s.strip()))),
)


@settings(max_examples=400, deadline=None)
@given(action=actions, at=st.floats(0, 1e4))
def test_parse_of_render_is_the_action(action: Action, at: float) -> None:
    line = render(action, t0=T0)
    assert len(line.splitlines()) == 1
    assert parse_actions(line) == [action]
    echoed = render(ModelAction(action, at=T0 + at), t0=T0)  # tolerated as model output
    assert parse_actions(echoed) == [action]


@settings(max_examples=200, deadline=None)
@given(st.lists(actions, max_size=6))
def test_parse_of_a_rendered_sequence(seq: list[Action]) -> None:
    # ANSWER ends the output, so only the last action may be one
    answers = [a for a in seq if isinstance(a, Answer)]
    seq = [a for a in seq if not isinstance(a, Answer)] + answers[:1]
    assert parse_actions(render_actions(seq)) == seq
    assert parse_actions(render_actions([ModelAction(a, at=T0) for a in seq])) == seq


@settings(max_examples=200, deadline=None)
@given(text=st.text(), final=st.booleans(), at=st.floats(0, 1e4))
def test_any_event_text_is_one_line(text: str, final: bool, at: float) -> None:
    for item in (
        UserInput(text, final, T0 + at),
        EnvironmentEvent(text, T0 + at, source=text or None),
        ToolResult("c1", text, T0 + at),
    ):
        line = render(item, t0=T0)
        assert len(line.splitlines()) == 1
        assert line.startswith(f"[t={at:.2f}s] ")


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_parse_never_crashes_on_arbitrary_text(text: str) -> None:
    with contextlib.suppress(InteractionFormatError):
        parse_actions(text)
    with contextlib.suppress(InteractionFormatError):
        parse_events(text)


# -- the prompt ----------------------------------------------------------------------------


@tool
def spotify_search(artist: str) -> str:
    """Find songs of an artist."""
    return "songs"


@tool
def send_message(to: str, text: str) -> str:
    """Send a text message."""
    return "sent"


label_tool(spotify_search, safe=True)
label_tool(send_message, safe=False)


def test_prompt_mentions_every_tool_the_unsafe_rule_and_every_action() -> None:
    dict_tools: list[dict[str, Any]] = [
        {
            "name": "book_table",
            "description": "Book a restaurant table.",
            "parameters": {"type": "object", "properties": {"people": {"type": "integer"}}},
            "expected_ms": 1200,
        },
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "Weather.", "parameters": {}},
            "safe": True,
        },
        {"name": "lookup", "description": "Look up.", "parameters": {},
         "metadata": {"speculative_safe": True, "expected_ms": 50}},
    ]  # fmt: skip
    prompt = interaction_system_prompt(
        [spotify_search, send_message, *dict_tools], expected_ms={"spotify_search": 300}
    )
    lines = prompt.splitlines()

    def tool_line(name: str) -> str:
        return next(ln for ln in lines if ln.startswith(f"- {name} "))

    assert "safe (read-only)" in tool_line("spotify_search")
    assert "about 300 ms" in tool_line("spotify_search")
    assert "Find songs of an artist." in tool_line("spotify_search")
    assert "UNSAFE" in tool_line("send_message") and "unknown" in tool_line("send_message")
    assert "UNSAFE" in tool_line("book_table") and "about 1200 ms" in tool_line("book_table")
    assert "safe (read-only)" in tool_line("get_weather")
    assert "safe (read-only)" in tool_line("lookup") and "about 50 ms" in tool_line("lookup")
    assert '"people": {"type": "integer"}' in prompt
    for keyword in ACTION_KEYWORDS:
        assert f"\n{keyword}" in prompt, keyword
    for event in ("USER partial:", "USER final:", "EVENT", "RESULT", "MODEL"):
        assert event in prompt
    low = prompt.lower()
    assert "unsafe" in low and "only after the final input, once you confirm" in low
    assert "partial input" in low and "pause when you are unsure" in low
    assert "same id" in low and "remove calls that no longer fit" in low


def test_the_prompt_example_is_rendered_by_this_module_and_parses() -> None:
    prompt = interaction_system_prompt([])
    model_lines = [ln for ln in prompt.splitlines() if "] MODEL " in ln and "<act" not in ln]
    actions = [a for ln in model_lines for a in parse_actions(ln)]
    kinds = {type(a) for a in actions}
    assert kinds == {Call, Revise, Remove, Pause, Confirm, Answer}
    assert "(none)" in prompt


def test_the_prompt_lives_in_interaction_prompt_and_is_importable_from_here() -> None:
    from langgraph_speculative.speculative import interaction_format, interaction_prompt

    assert interaction_system_prompt is interaction_prompt.interaction_system_prompt
    assert interaction_system_prompt.__module__ == interaction_prompt.__name__
    assert "interaction_system_prompt" in interaction_prompt.__all__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        interaction_format.nope  # noqa: B018


# -- messages ------------------------------------------------------------------------------


def test_to_messages_alternates_events_and_actions() -> None:
    items: list[Item] = [
        InputRecord(1, "Play songs from Taylor", at=T0 + 1.2),
        ModelAction(Call("c1", "spotify.play", {"artist": "Taylor"}), at=T0 + 2.05),
        ModelAction(Pause(), at=T0 + 2.06),
        ToolResult("c1", "playing", at=T0 + 2.31),
        UserInput("Play songs from Taylor Swift", final=True, at=T0 + 3.4),
        Confirm(("c1",)),
        Answer("Playing.\nEnjoy!"),
    ]
    messages = to_messages(items, t0=T0)
    assert [type(m) for m in messages] == [HumanMessage, AIMessage, HumanMessage, AIMessage]
    assert messages[0].content == "[t=1.20s] USER partial: Play songs from Taylor"
    assert messages[1].content == (
        'CALL c1 {"name": "spotify.play", "arguments": {"artist": "Taylor"}}\nPAUSE'
    )
    assert messages[2].content == (
        "[t=2.31s] RESULT c1: playing\n[t=3.40s] USER final: Play songs from Taylor Swift"
    )
    assert messages[3].content == "CONFIRM c1\nANSWER Playing.\\nEnjoy!"
    # the model turns parse back to the actions
    assert parse_actions(messages[3].text) == [Confirm(("c1",)), Answer("Playing.\nEnjoy!")]
    # and every event line of the messages is the rendered transcript's line
    transcript = render_transcript(items, t0=T0).splitlines()
    human_lines = [ln for m in messages if isinstance(m, HumanMessage) for ln in m.text.split("\n")]
    assert human_lines == [ln for ln in transcript if "MODEL" not in ln and "] " in ln]
    assert to_messages([], t0=T0) == []


def test_json_round_trip_of_a_transcript_through_messages() -> None:
    call = Call("c1", "search", {"q": 'say "hi"\n你好'})
    messages = to_messages([UserInput("hi", final=False, at=T0), call], t0=T0)
    assert parse_actions(messages[-1].text) == [call]
    body = messages[-1].text.split(" ", 2)[2]
    assert json.loads(body)["arguments"]["q"] == 'say "hi"\n你好'


# -- reading transcripts back ----------------------------------------------------------------

_times = st.integers(0, 10**6).map(lambda cs: T0 + cs / 100)  # whole centiseconds
_statuses = st.sampled_from(["success", "error", "cancelled"])
events: st.SearchStrategy[Any] = st.one_of(
    st.builds(UserInput, st.text(), st.booleans(), _times),
    st.builds(EnvironmentEvent, st.text(), _times, st.none() | st.text()),
    st.builds(ToolResult, _ids, st.text(), _times, _statuses),
    st.builds(ModelAction, actions, _times),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(events, max_size=6))
def test_parse_events_of_a_rendered_transcript(items: list[Any]) -> None:
    text = render_transcript(items, t0=T0)
    back = parse_events(text, t0=T0)
    assert render_transcript(back, t0=T0) == text
    assert len(back) == len(items)
    for orig, new in zip(items, back, strict=True):
        assert type(orig) is type(new)
        assert abs(orig.at - new.at) < 0.006
        if isinstance(orig, ModelAction):
            assert new.action == orig.action
        else:
            for name in ("text", "final", "source", "call_id", "content", "status"):
                assert getattr(new, name, None) == getattr(orig, name, None)


def test_parse_events_examples() -> None:
    text = (
        "[t=1.20s] USER partial: Play songs from Taylor\n"
        '[t=2.05s] MODEL CALL c1 {"name": "spotify.play", "arguments": {"artist": "Taylor"}}\n'
        "\n"
        "[t=2.31s] RESULT a:b (error): boom\r\n"
        "[t=2.50s] EVENT: no source\n"
        "[t=2.60s] EVENT cal\\u003aendar: x: y\n"
        "[t=3.40s] USER final: Play songs from Taylor Swift\\nplease\n"
        "[t=3.52s] MODEL CONFIRM c1 c2\n"
        "[t=4.00s] MODEL ANSWER one line only\n"
        "[t=5.00s] RESULT c9:"
    )
    assert parse_events(text, t0=100.0) == [
        UserInput("Play songs from Taylor", False, 101.2),
        ModelAction(Call("c1", "spotify.play", {"artist": "Taylor"}), 102.05),
        ToolResult("a:b", "boom", 102.31, "error"),
        EnvironmentEvent("no source", 102.5),
        EnvironmentEvent("x: y", 102.6, "cal:endar"),
        UserInput("Play songs from Taylor Swift\nplease", True, 103.4),
        ModelAction(Confirm(("c1", "c2")), 103.52),
        ModelAction(Answer("one line only"), 104.0),
        ToolResult("c9", "", 105.0),
    ]


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("USER partial: no clock", "not an event"),
        ("[t=-1.00s] USER partial: x", "not an event"),
        ("[t=1.00s] USER maybe: x", "partial"),
        ("[t=1.00s] USER partial x", "partial"),
        ("[t=1.00s] EVENT x", "EVENT"),
        ("[t=1.00s] RESULT : x", "RESULT"),
        ("[t=1.00s] RESULT c1 (weird): x", "RESULT"),
        ("[t=1.00s] RESULT {c1: x", "must not start"),
        ("[t=1.00s] MODEL", "not an action"),
        ("[t=1.00s] MODEL HELLO", "not an action"),
        ("[t=1.00s] MODEL ANSWER", "non-blank"),
        ("[t=1.00s] MODEL CALL c1 {}", '"name"'),
        ("[t=1.00s] ASSISTANT hi", "not an event"),
    ],
)
def test_parse_events_bad_lines(line: str, match: str) -> None:
    with pytest.raises(InteractionFormatError, match=match) as info:
        parse_events(f"[t=0.50s] USER partial: ok\n{line}")
    assert info.value.lineno == 2 and info.value.line == line
    with pytest.raises(InteractionFormatError, match="must be a str"):
        parse_events(b"x")  # type: ignore[arg-type]


def test_to_messages_human_turns_parse_back_as_events() -> None:
    items: list[Item] = [
        UserInput("天气\n怎么样", final=False, at=T0 + 0.25),
        Call("c1", "weather", {"city": "北京"}),
        ToolResult("c1", "晴", at=T0 + 1.5),
        EnvironmentEvent("alarm", at=T0 + 1.75, source="clock"),
    ]
    human = [m for m in to_messages(items, t0=T0) if isinstance(m, HumanMessage)]
    assert [e for m in human for e in parse_events(m.text, t0=T0)] == [
        items[0],
        items[2],
        items[3],
    ]
