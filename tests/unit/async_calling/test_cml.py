"""The CML text format: rendering, parsing call bodies, the system prompt, transcripts."""

from __future__ import annotations

import keyword
from typing import Any

import pytest
from helpers import TOOL_NAMES, json_strategies
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.tools import tool

from langgraph_speculative.async_calling.cml import (
    CALL,
    END,
    HEAD,
    INTR,
    MARKERS,
    TRAP,
    TRAP_BLOCK,
    cml_system_prompt,
    parse_call_body,
    render_call,
    render_interrupt,
    to_cml_transcript,
)
from langgraph_speculative.errors import CMLSyntaxError, StreamFormatError

# -- strategies ------------------------------------------------------------------------------

TRICKY = ["[END]", "[CALL]", "[INTR] x [HEAD] y [END]", '{"a": 1}', '"', "\\", "\\u005b", "}"]
strings = st.text(max_size=12) | st.sampled_from(TRICKY) | st.sampled_from(["巴黎", "天气预报"])
scalars, json_values, args_dicts = json_strategies(strings, int_bound=10**12)
names = TOOL_NAMES
identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: not keyword.iskeyword(s) and s not in ("true", "false", "null")
)
py_names = names.filter(lambda n: not any(keyword.iskeyword(part) for part in n.split(".")))


def test_constants() -> None:
    assert (CALL, HEAD, END, INTR, TRAP) == ("[CALL]", "[HEAD]", "[END]", "[INTR]", "[TRAP]")
    assert TRAP_BLOCK == "[TRAP][END]"
    assert set(MARKERS) == {CALL, HEAD, END, INTR, TRAP}


def test_render_call_and_interrupt() -> None:
    call = tool_call(name="get_weather", args={"city": "巴黎"}, id="c1")
    assert render_call(call) == (
        '[CALL] c1 [HEAD] {"name": "get_weather", "arguments": {"city": "巴黎"}} [END]'
    )
    assert render_interrupt("c1", "sunny") == "[INTR] c1 [HEAD] sunny [END]"


def test_render_escapes_markers_inside_strings() -> None:
    call = tool_call(name="echo", args={"text": "a [END] b [CALL] [HEAD]"}, id="c1")
    text = render_call(call)
    assert text.count(END) == 1 and text.endswith(END)
    assert CALL not in text[len(CALL) :] and text.count(HEAD) == 1
    body = text.split(HEAD, 1)[1].rsplit(END, 1)[0]
    assert parse_call_body(body) == ("echo", {"text": "a [END] b [CALL] [HEAD]"})


def _body(rendered: str) -> str:
    assert rendered.startswith(CALL) and rendered.endswith(END)
    return rendered.split(HEAD, 1)[1][: -len(END)]


@settings(max_examples=300, deadline=None)
@given(name=names, args=args_dicts)
def test_render_parse_round_trip(name: str, args: dict[str, Any]) -> None:
    rendered = render_call(tool_call(name=name, args=args, id="x1"))
    assert rendered.count(END) == 1
    assert parse_call_body(_body(rendered)) == (name, args)


@settings(max_examples=300, deadline=None)
@given(
    name=py_names,
    args=st.dictionaries(
        identifiers,
        st.recursive(
            scalars,
            lambda kids: st.lists(kids, max_size=3) | st.dictionaries(strings, kids, max_size=3),
            max_leaves=6,
        ),
        max_size=4,
    ),
)
def test_python_call_round_trip(name: str, args: dict[str, Any]) -> None:
    body = f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"
    assert parse_call_body(body) == (name, args)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"name": "f", "arguments": {"a": 1}}', ("f", {"a": 1})),
        ('{"name": "f", "args": {"a": 1}}', ("f", {"a": 1})),
        ('{"name": "f", "parameters": {"a": [1, 2]}}', ("f", {"a": [1, 2]})),
        ('{"name": "f", "arguments": "{\\"a\\": 1}"}', ("f", {"a": 1})),
        ('{"name": "f", "arguments": ""}', ("f", {})),
        ('{"name": "f"}', ("f", {})),
        ('{"name": "f", "arguments": null}', ("f", {})),
        ("{'name': 'f', 'arguments': {'a': True}}", ("f", {"a": True})),
        ('  \n{"name": "f", "arguments": {}}  ', ("f", {})),
        ('get_weather(city="Paris", days=3)', ("get_weather", {"city": "Paris", "days": 3})),
        ("math.factorial(n=5)", ("math.factorial", {"n": 5})),
        ("a.b.c()", ("a.b.c", {})),
        ("f(x=true, y=false, z=null)", ("f", {"x": True, "y": False, "z": None})),
        ("f(x=True, y=False, z=None)", ("f", {"x": True, "y": False, "z": None})),
        ("f(x=-1.5, y=+2, z=[1, (2, 3)], w={'k': {'n': []}})", None),
        ('f(s="天气 \\"q\\" {}")', ("f", {"s": '天气 "q" {}'})),
    ],
)
def test_parse_call_body_forms(body: str, expected: tuple[str, dict[str, Any]] | None) -> None:
    if expected is None:
        expected = ("f", {"x": -1.5, "y": 2, "z": [1, [2, 3]], "w": {"k": {"n": []}}})
    assert parse_call_body(body) == expected


def test_positional_arguments_need_param_order() -> None:
    with pytest.raises(CMLSyntaxError, match="parameter order"):
        parse_call_body("math.factorial(5)")
    order = {"math.factorial": ["n"], "get_weather": ["city", "days"]}
    assert parse_call_body("math.factorial(5)", order) == ("math.factorial", {"n": 5})
    assert parse_call_body('get_weather("Paris", days=2)', order) == (
        "get_weather",
        {"city": "Paris", "days": 2},
    )
    with pytest.raises(CMLSyntaxError, match="at most 1"):
        parse_call_body("math.factorial(5, 6)", order)
    with pytest.raises(CMLSyntaxError, match="given twice"):
        parse_call_body('get_weather("Paris", city="Rome")', order)
    with pytest.raises(CMLSyntaxError, match="parameter order"):
        parse_call_body("other(1)", order)


@pytest.mark.parametrize(
    "body",
    [
        "f(x=__import__('os'))",
        "f(x=__import__('os').system('echo hi'))",
        "f(x=os.environ)",
        "f(x=y)",
        "f(x=1+2)",
        "f(x=[i for i in range(3)])",
        "f(x=lambda: 1)",
        "f(x={1, 2})",
        "f(x=b'bytes')",
        "f(x=1j)",
        "f(x=...)",
        "f(*args)",
        "f(**kw)",
        "f(x=[*a])",
        "f(x={**a})",
        "f(x={1: 2})",
        "f(x=-'a')",
        "(lambda: 1)()",
        "f()()",
        "f",
        "f(x=1",
        "import os",
        "",
        "   ",
        '{"name": "f", "arguments": {"a": 1}',
        '{"arguments": {}}',
        '{"name": "", "arguments": {}}',
        '{"name": 3, "arguments": {}}',
        '{"name": "f", "arguments": [1, 2]}',
        '{"name": "f", "arguments": "[1]"}',
        '{"name": "f", "arguments": "{bad"}',
        "[1, 2]",
    ],
)
def test_parse_call_body_rejects(body: str) -> None:
    with pytest.raises(CMLSyntaxError) as info:
        parse_call_body(body)
    assert isinstance(info.value, StreamFormatError)
    assert info.value.body == body
    assert str(info.value)


@tool
def get_weather(city: str, days: int = 1) -> str:
    """Get the weather forecast for a city."""
    return "sunny"


@tool
def search(query: str) -> str:
    """Search the web."""
    return "results"


search.metadata = {"expected_ms": 2500}


def test_system_prompt_lists_tools_and_durations() -> None:
    raw = {
        "type": "function",
        "function": {
            "name": "book_hotel",
            "description": "Book a hotel.",
            "parameters": {"type": "object", "properties": {"hotel": {"type": "string"}}},
        },
    }
    plain = {
        "name": "translate",
        "description": "Translate text.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
        "metadata": {"expected_ms": 75},
    }
    prompt = cml_system_prompt(
        [get_weather, search, raw, plain], expected_ms={"get_weather": 1200, "book_hotel": 900.4}
    )
    for name in ("get_weather", "search", "book_hotel", "translate"):
        assert f"- {name} (" in prompt
    assert "about 1200 ms" in prompt
    assert "about 2500 ms" in prompt
    assert "about 900 ms" in prompt
    assert "about 75 ms" in prompt
    assert '"city": {"type": "string"}' in prompt and '"required": ["city"]' in prompt
    assert '"hotel": {"type": "string"}' in prompt
    for phrase in (TRAP_BLOCK, "[INTR]", "Never write [INTR]", "longest expected duration first"):
        assert phrase in prompt
    assert prompt.count("Example") >= 2
    # the examples are valid CML
    for line in prompt.splitlines():
        if "[CALL]" in line and "<id>" not in line:
            block = line[line.index(CALL) :]
            parse_call_body(_body(block.strip()))


def test_system_prompt_unknown_duration_and_override() -> None:
    prompt = cml_system_prompt([get_weather, search], expected_ms={"search": 10})
    assert "get_weather (expected duration: unknown)" in prompt
    assert "search (expected duration: about 10 ms)" in prompt


def test_to_cml_transcript() -> None:
    c1 = tool_call(name="get_weather", args={"city": "Paris"}, id="c1")
    c2 = tool_call(name="search", args={"query": "q"}, id="c2")
    messages = [
        SystemMessage(content="sys"),
        HumanMessage(content="hi"),
        AIMessage(content="Checking.", tool_calls=[c1, c2]),
        ToolMessage(content="sunny", tool_call_id="c1"),
        ToolMessage(content=[{"type": "text", "text": "results"}], tool_call_id="c2"),
        AIMessage(content="", tool_calls=[tool_call(name="search", args={}, id="c3")]),
        ToolMessage(content="none", tool_call_id="c3", status="error"),
        AIMessage(content="Done."),
    ]
    out = to_cml_transcript(messages)
    assert [type(m).__name__ for m in out] == [
        "SystemMessage",
        "HumanMessage",
        "AIMessage",
        "HumanMessage",
        "AIMessage",
        "HumanMessage",
        "AIMessage",
    ]
    assert out[2].content == "Checking.\n" + render_call(c1) + "\n" + render_call(c2)
    assert isinstance(out[2], AIMessage) and not out[2].tool_calls
    assert out[3].content == "[INTR] c1 [HEAD] sunny [END]\n[INTR] c2 [HEAD] results [END]"
    assert out[4].content == '[CALL] c3 [HEAD] {"name": "search", "arguments": {}} [END]'
    assert out[5].content == "[INTR] c3 [HEAD] none [END]"
    assert out[6] is messages[-1]
    assert not any(isinstance(m, ToolMessage) for m in out)
    # idempotent
    again = to_cml_transcript(out)
    assert [m.content for m in again] == [m.content for m in out]
    assert all(a is b for a, b in zip(again, out, strict=True))
    # input untouched
    assert messages[2].tool_calls == [c1, c2]


def test_to_cml_transcript_invalid_tool_calls() -> None:
    msg = AIMessage(
        content="",
        invalid_tool_calls=[
            {"name": "f", "args": '{"a": ', "id": "bad", "error": None, "type": "invalid_tool_call"}
        ],
    )
    (out,) = to_cml_transcript([msg])
    assert isinstance(out, AIMessage) and not out.invalid_tool_calls
    assert isinstance(out.content, str) and out.content.startswith("[CALL] bad [HEAD] ")
    with pytest.raises(CMLSyntaxError):
        parse_call_body(_body(out.content))
