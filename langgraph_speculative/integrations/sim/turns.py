"""What a scripted model says, and how it streams it: turns and timed stream pieces.

A :class:`ModelTurn` is one answer of a scripted model (text, tool calls, or a trap);
:func:`plan_stream` cuts it into :class:`StreamPiece` objects (text fragments, then each
call's id and name and its argument fragments), each with the tokens it costs;
:func:`piece_chunk` turns a piece into the OpenAI-style ``AIMessageChunk`` LangChain
streams. The scripted chat model (:mod:`.scripted_model`) and its interruptible session
(:mod:`.sessions`) both stream through these.

Example:
    ```python
    from langgraph_speculative.integrations.sim.turns import ModelTurn, piece_chunk, plan_stream

    turn = ModelTurn.calls(("get_weather", {"city": "Paris"}))
    chunks = [piece_chunk(p) for p in plan_stream(turn)]
    assert chunks[0].tool_call_chunks[0]["name"] == "get_weather"
    ```
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessage, ToolCall

from langgraph_speculative.integrations.sim.latency import count_tokens

__all__ = ["ModelTurn", "Responder", "StreamPiece", "finish_reason", "piece_chunk", "plan_stream"]


@dataclass(frozen=True, slots=True)
class ModelTurn:
    """One model response: text and/or tool calls.

    Attributes:
        text: The text content (may be empty).
        tool_calls: The tool calls, each with ``name``, ``args`` and ``id``.
        waits: In an interruptible session, the model waits for injected input after this
            turn (a trap or a pause) instead of ending or going on.
        more: In an interruptible session, the model goes on writing after this turn
            even though it made no native tool call (a text-format action).
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = field(default_factory=tuple)
    waits: bool = False
    more: bool = False

    @classmethod
    def calls(cls, *calls: tuple[str, dict[str, Any]], text: str = "") -> ModelTurn:
        """Build a turn of tool calls from ``(name, args)`` pairs, with fresh ids."""
        return cls(
            text=text,
            tool_calls=tuple(
                ToolCall(name=n, args=a, id=f"call_{uuid.uuid4().hex[:12]}", type="tool_call")
                for n, a in calls
            ),
        )

    @property
    def output_tokens(self) -> int:
        """Tokens this turn costs to decode under the latency model."""
        return plan_stream(self)[-1].tokens if (self.text or self.tool_calls) else 0


Responder = Callable[[Sequence[BaseMessage]], ModelTurn]
"""A function from the conversation so far to the model's next turn."""


@dataclass(frozen=True, slots=True)
class StreamPiece:
    """One streamed chunk of a turn and the output-token count at which it is ready.

    Exactly one of ``text`` or ``tool_index`` is set. For a tool call, the first piece
    carries ``tool_id`` and ``tool_name`` (and empty ``args``); the next carry argument
    fragments only, as OpenAI streams them.
    """

    tokens: int
    text: str | None = None
    tool_index: int | None = None
    tool_id: str | None = None
    tool_name: str | None = None
    args: str = ""


def _fragments(text: str, size: int = 4) -> Iterator[str]:
    """Split ``text`` into pieces of about ``size`` UTF-8 bytes (one token each)."""
    piece: list[str] = []
    n = 0
    for ch in text:
        piece.append(ch)
        n += len(ch.encode("utf-8"))
        if n >= size:
            yield "".join(piece)
            piece, n = [], 0
    if piece:
        yield "".join(piece)


def plan_stream(turn: ModelTurn) -> list[StreamPiece]:
    """Split a turn into stream pieces, each tagged with its cumulative token count.

    The same plan drives the in-process model and the HTTP server, so both stream the
    same chunks at the same times. A tool call costs the tokens of
    ``{"name": NAME, "arguments": ARGS}``: the header with the first piece, then one token
    per four bytes of arguments.
    """
    pieces: list[StreamPiece] = []
    used = 0
    for frag in _fragments(turn.text):
        used += count_tokens(frag)
        pieces.append(StreamPiece(tokens=used, text=frag))
    for index, call in enumerate(turn.tool_calls):
        args_text = json.dumps(call["args"], ensure_ascii=False)
        used += count_tokens(json.dumps({"name": call["name"], "arguments": ""})) - 1
        pieces.append(
            StreamPiece(tokens=used, tool_index=index, tool_id=call["id"], tool_name=call["name"])
        )
        for frag in _fragments(args_text):
            used += count_tokens(frag)
            pieces.append(StreamPiece(tokens=used, tool_index=index, args=frag))
    return pieces


def finish_reason(turn: ModelTurn) -> str:
    """The OpenAI ``finish_reason`` of ``turn``: ``tool_calls`` if it calls tools, else ``stop``."""
    return "tool_calls" if turn.tool_calls else "stop"


def piece_chunk(piece: StreamPiece, index_offset: int = 0) -> AIMessageChunk:
    """The ``AIMessageChunk`` of one piece; tool indices shifted by ``index_offset``."""
    if piece.tool_index is None:
        return AIMessageChunk(content=piece.text or "")
    return AIMessageChunk(
        content="",
        tool_call_chunks=[
            {
                "name": piece.tool_name,
                "args": piece.args,
                "id": piece.tool_id,
                "index": piece.tool_index + index_offset,
                "type": "tool_call_chunk",
            }
        ],
    )
