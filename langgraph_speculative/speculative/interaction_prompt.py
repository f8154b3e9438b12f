"""The system prompt that teaches a model the clock-based interaction format.

:func:`interaction_system_prompt` explains the events and actions of
:mod:`langgraph_speculative.speculative.interaction_format`, states the rules of acting on
partial input, lists the tools with their safe/unsafe label, and shows a worked example
rendered by that module (so the prompt and the format cannot drift apart). It is also
importable from :mod:`~langgraph_speculative.speculative.interaction_format`, where it was
defined before.

Example:
    ```python
    from langchain_core.tools import tool
    from langgraph_speculative import label_tool
    from langgraph_speculative.speculative.interaction_prompt import interaction_system_prompt

    @tool
    def search_songs(artist: str) -> list[str]:
        '''Songs of an artist.'''
        return []

    prompt = interaction_system_prompt([label_tool(search_songs, safe=True)])
    assert "- search_songs [safe (read-only); expected duration: unknown]" in prompt
    ```
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from langgraph_speculative.core.safety import SAFE_METADATA_KEY, is_safe_tool
from langgraph_speculative.speculative.interaction_format import (
    Answer,
    Call,
    Confirm,
    Item,
    ModelAction,
    Pause,
    Remove,
    Revise,
    ToolResult,
    UserInput,
    render_transcript,
)

__all__ = ["interaction_system_prompt"]


_PROMPT_HEAD = """\
You are an assistant that acts while the user is still speaking. You do not wait for the \
user to finish: you see the conversation as a live transcript of events, one per line, \
each stamped with the clock since the interaction started, and you act as soon as it \
makes sense.

Events (written by the system, never by you):
[t=1.20s] USER partial: <text>     The user is still speaking. <text> is the whole \
transcript so far and may still change: later updates can rewrite earlier words.
[t=3.40s] USER final: <text>       The user has finished. This is the request.
[t=2.50s] EVENT <source>: <text>   Something happened in the environment.
[t=2.31s] RESULT <id>: <result>    The result of your call <id>, as soon as it finishes. \
"RESULT <id> (error): ..." means it failed; "RESULT <id> (cancelled): ..." means the \
system cancelled it.
[t=2.05s] MODEL <action>           An action you took earlier, echoed back.
In events, a line break inside text is written \\n and a backslash \\\\.

Your reply is one or more actions, one per line, and nothing else (no clock, no MODEL, no \
other text):
CALL <id> {"name": "<tool>", "arguments": {<JSON object>}}
    Call a tool. <id> is a new short id without spaces (c1, c2, ...), unique in the \
interaction. If the call uses the result of other calls, add "depends_on": ["<id>", ...] \
to the JSON.
REVISE <id> {"name": "<tool>", "arguments": {<JSON object>}}
    Replace your earlier call <id> with this one (the input changed).
REMOVE <id>
    Withdraw your call <id>: it no longer fits. Calls that depend on it are cancelled too.
PAUSE
    Nothing to do until more input or a result arrives.
CONFIRM <id> <id> ...
    Only after USER final: the calls you made earlier that still stand. This is the \
commit point: the listed calls are kept; your earlier calls you do not list are \
withdrawn. Write CONFIRM alone if none stands.
ANSWER <text>
    The final answer to the user, on one line (write a line break as \\n). It ends the \
interaction.

Rules:
1. Act on partial input when the values a call needs are clearly present in the \
transcript. A value that may still grow (the user said "Taylor"; the name may become \
"Taylor Swift") is not clear yet: a safe call on it is cheap (REVISE it if the value \
grows), but do not prepare an unsafe call on it.
2. Safe tools only read: a CALL to a safe tool runs at once, even on partial input. Unsafe \
tools change the world (they send, book, pay, play, delete): an unsafe call made before \
USER final is only prepared; it is executed only after the final input, once you CONFIRM \
it. Calls you make after USER final run at once and need no CONFIRM.
3. When the transcript changes a call you made, REVISE it under the same id; never reuse \
an id for a different call.
4. REMOVE calls that no longer fit what the user says.
5. PAUSE when you are unsure what the user wants; more input is coming.
6. A call that needs another call's result comes only after that RESULT arrived; list \
that call in "depends_on".
7. After USER final: first REVISE or REMOVE what the final text changes, then CONFIRM the \
calls that stand, then CALL whatever is still missing.
8. ANSWER once the results you need are in. Never invent a result, and never write USER, \
EVENT or RESULT lines.
"""

_EXAMPLE_T0 = 0.0
_EXAMPLE_TOOLS = (
    "Example (example tools: search_songs is safe; play and set_alarm are unsafe). The "
    "transcript, with your actions echoed as MODEL lines:"
)


def _example_transcript() -> str:
    search = {"artist": "Taylor"}
    songs = ["Anti-Hero", "Shake It Off"]
    items: list[Item] = [
        UserInput("Play", final=False, at=0.6),
        ModelAction(Pause(), at=0.7),
        UserInput("Play songs from Taylor", final=False, at=1.2),
        ModelAction(Call("c1", "search_songs", search), at=1.3),
        UserInput("Play songs from Taylor Swift", final=False, at=1.8),
        ModelAction(Revise("c1", "search_songs", {"artist": "Taylor Swift"}), at=1.9),
        ToolResult("c1", json.dumps(songs), at=2.1),
        ModelAction(Call("c2", "play", {"songs": songs}, depends_on=("c1",)), at=2.2),
        UserInput("Play songs from Taylor Swift and set an alarm for 7", final=False, at=2.6),
        ModelAction(Call("c3", "set_alarm", {"time": "07:00"}), at=2.7),
        UserInput(
            "Play songs from Taylor Swift and set an alarm for 7, no, forget the alarm",
            final=True,
            at=3.4,
        ),
        ModelAction(Remove("c3"), at=3.5),
        ModelAction(Confirm(("c1", "c2")), at=3.52),
        ToolResult("c2", "playing 2 songs", at=3.9),
        ModelAction(Answer("Playing Anti-Hero and Shake It Off by Taylor Swift."), at=4.0),
    ]
    return render_transcript(items, t0=_EXAMPLE_T0)


def _tool_flag(tool: BaseTool | Mapping[str, Any], key: str) -> Any:
    if isinstance(tool, BaseTool):
        return (tool.metadata or {}).get(key)
    if key in tool:
        return tool[key]
    meta = tool.get("metadata")
    return meta.get(key) if isinstance(meta, Mapping) else None


def interaction_system_prompt(
    tools: Sequence[BaseTool | Mapping[str, Any]],
    *,
    expected_ms: Mapping[str, float] | None = None,
) -> str:
    """Build the system prompt that teaches a model the interaction format.

    It explains the events and actions, states the rules (act on partial input when the
    needed values are clearly present; unsafe tools run only after ``CONFIRM`` following
    the final input; revise a call by re-issuing its id; remove calls that no longer fit;
    ``PAUSE`` when unsure; after the final update ``CONFIRM`` the calls that stand and
    issue the missing ones; ``ANSWER`` once results are in), lists the tools with their
    safe/unsafe label, expected duration and JSON schema, and shows a worked example
    rendered by this module.

    Args:
        tools: LangChain tools (labelled with
            :func:`~langgraph_speculative.core.safety.label_tool`) or dicts (OpenAI tool
            format, or ``name`` / ``description`` / ``parameters``) that may carry
            ``safe`` and ``expected_ms`` keys or ``metadata`` entries. Unlabelled tools
            are unsafe.
        expected_ms: Expected duration of each tool by name, in milliseconds; overrides
            a tool's own ``expected_ms``.

    Returns:
        The system prompt text.
    """
    lines = [_PROMPT_HEAD, "Your tools:"]
    for tool in tools:
        if isinstance(tool, BaseTool):
            safe = is_safe_tool(tool)
            function = convert_to_openai_tool(tool)["function"]
        else:
            flag = _tool_flag(tool, "safe")
            safe = (flag if flag is not None else _tool_flag(tool, SAFE_METADATA_KEY)) is True
            spec = {k: v for k, v in tool.items() if k not in ("metadata", "expected_ms", "safe")}
            function = convert_to_openai_tool(spec)["function"]
        name = str(function["name"])
        ms: Any = expected_ms.get(name) if expected_ms is not None else None
        if ms is None:
            ms = _tool_flag(tool, "expected_ms")
        duration = "unknown" if ms is None else f"about {float(ms):.0f} ms"
        label = "safe (read-only)" if safe else "UNSAFE (runs only after CONFIRM)"
        description = " ".join(str(function.get("description") or "").split())
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        lines.append(f"- {name} [{label}; expected duration: {duration}]: {description}".rstrip())
        lines.append(f"  arguments (JSON schema): {json.dumps(schema, ensure_ascii=False)}")
    if not tools:
        lines.append("(none)")
    lines += ["", _EXAMPLE_TOOLS, _example_transcript(), ""]
    return "\n".join(lines)
