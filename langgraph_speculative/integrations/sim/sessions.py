"""Interruptible decoding sessions: the ``interruptible`` back-end.

A session is one long generation that accepts injected messages (tool results) while it
runs; they are read at the next token boundary and cost prefill only, not a new time to
first token. Local decoders and realtime APIs work this way. Any model offering
``open_session(messages, tools=...)`` that returns an :class:`InterruptibleSession` can
drive the asynchronous nodes in this mode.

:class:`SimulatedSession` is the simulated one: it plays a :class:`ScriptedChatModel`'s
script step by step (one call, a trap, or the answer; see
``TaskResponder.next_action``), paces chunks on the latency model, and, while trapped,
waits for the next injection.

Example:
    ```python
    import asyncio
    from langchain_core.messages import HumanMessage
    from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel

    model = ScriptedChatModel(
        script=[ModelTurn(text="hi there")], latency=LatencyModel.zero(), backend="interruptible"
    )

    async def main() -> str:
        session = model.open_session([HumanMessage("hi")])
        text = ""
        async for chunk in session:
            text += chunk.text
        return text

    assert asyncio.run(main()) == "hi there"
    ```
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.tools import BaseTool

from langgraph_speculative.async_calling.cml import TRAP_BLOCK
from langgraph_speculative.errors import ScriptError
from langgraph_speculative.integrations.sim.latency import count_tokens
from langgraph_speculative.integrations.sim.turns import (
    ModelTurn,
    finish_reason,
    piece_chunk,
    plan_stream,
)

if TYPE_CHECKING:
    from langgraph_speculative.integrations.sim.scripted_model import ScriptedChatModel

__all__ = ["InterruptibleChatModel", "InterruptibleSession", "SimulatedSession"]


@runtime_checkable
class InterruptibleSession(Protocol):
    """A running generation that accepts injected messages."""

    def inject(self, messages: Sequence[BaseMessage]) -> None:
        """Hand messages (tool results) to the generation; read at the next token boundary."""

    def __aiter__(self) -> AsyncIterator[AIMessageChunk]:
        """Stream the generation's chunks until it ends.

        A session may also offer an ``absorbed`` attribute: how many injected messages the
        generation had read when it began the chunk last streamed. The speculative agent
        uses it to tell an action the model began before it read the user's final input
        from one it began after; without it, an action read after the final input was
        injected counts as begun after it.

        And a ``waiting`` attribute: ``True`` while the generation is blocked until the
        next injection (trapped or paused, with nothing unread). With it (and
        ``absorbed``), the nodes tell a model waiting for something that can never come
        (raised at once as :class:`~langgraph_speculative.errors.StalledError`) from a
        slow one; without it, only their ``wait_timeout`` bounds such a wait.
        """


@runtime_checkable
class InterruptibleChatModel(Protocol):
    """A chat model that can open an :class:`InterruptibleSession`."""

    def open_session(
        self, messages: Sequence[BaseMessage], *, tools: Sequence[BaseTool] = ()
    ) -> InterruptibleSession:
        """Start a generation on ``messages`` with ``tools`` available."""


def _is_trap(turn: ModelTurn) -> bool:
    """Whether the model waits for injected input after ``turn`` (a trap or a pause)."""
    return turn.waits or (turn.text == TRAP_BLOCK and not turn.tool_calls)


class SimulatedSession:
    """An interruptible session over a scripted model (see module docs).

    The session takes one *step* at a time: the script's ``next_action`` (a
    :class:`~langgraph_speculative.integrations.sim.scripted_tasks.TaskResponder`), or else the
    model's ``next_turn`` (a fixed list, or a responder). Injected messages are read at the
    next step boundary. After a trap, the session waits for an injection; a step that
    traps again is not streamed (the model stays trapped, silently) and waits for the next
    one. With a fixed list, such a silent trap turn is used up all the same (recorded in
    :attr:`context`), so each trap turn of the list waits for one injection.

    Args:
        model: The scripted model (its script, latency and bound tools).
        messages: The conversation so far.
    """

    def __init__(self, model: ScriptedChatModel, messages: Sequence[BaseMessage]) -> None:
        self._model = model
        self._context: list[BaseMessage] = list(messages)
        self._inbox: list[BaseMessage] = []
        self._wake = asyncio.Event()
        self._started = False
        self._fixed = not callable(model.script)
        self.injections = 0
        """How many messages were injected."""
        self.absorbed = 0
        """How many injected messages the step that produced the last chunk had read."""
        self.waiting = False
        """Whether the generation is blocked until the next injection (nothing unread)."""

    @property
    def context(self) -> list[BaseMessage]:
        """What the generation has seen and written so far."""
        return list(self._context)

    def inject(self, messages: Sequence[BaseMessage]) -> None:
        """Queue messages for the next step boundary (after the call being written).

        Also before the stream starts: the first step sees them. Wakes a trapped session.
        """
        if messages:
            self._inbox.extend(messages)
            self.injections += len(messages)
            self._wake.set()

    def __aiter__(self) -> AsyncIterator[AIMessageChunk]:
        if self._started:
            raise ScriptError("a session streams once")
        self._started = True
        return self._stream()

    def _step(self) -> ModelTurn:
        script = self._model.script
        step = getattr(script, "next_action", None)
        turn: ModelTurn = (
            step(self._context) if callable(step) else self._model.next_turn(self._context)
        )
        if callable(step) and self._model.bound_tools is not None:
            for call in turn.tool_calls:
                if call["name"] not in self._model.bound_tools:
                    raise ScriptError(f"the script calls tool {call['name']!r}, which is not bound")
        return turn

    def _absorb(self, at: float) -> float:
        """Move the inbox into the context; return when the next token can start."""
        if not self._inbox:
            return at
        tokens = sum(count_tokens(str(m.content)) for m in self._inbox)
        self.absorbed += len(self._inbox)
        self._context.extend(self._inbox)
        self._inbox.clear()
        self._wake.clear()
        now = asyncio.get_running_loop().time()
        return max(at, now) + self._model.latency.prefill_ms(tokens) / 1e3

    async def _wait_for_injection(self) -> None:
        """Block until the next injection (the model is trapped or paused)."""
        self.waiting = not self._inbox
        try:
            await self._wake.wait()
        finally:
            self.waiting = False

    async def _stream(self) -> AsyncIterator[AIMessageChunk]:
        loop = asyncio.get_running_loop()
        tpot = self._model.latency.tpot_ms / 1e3
        at = loop.time() + self._model.prompt_ms(self._context) / 1e3
        index = 0
        produced = 0
        trapped = False
        while True:
            at = self._absorb(at)
            turn = self._step()
            if trapped and _is_trap(turn):  # still nothing to do: stay trapped, silently
                if self._fixed:  # a fixed script's trap turn is used up all the same
                    self._context.append(AIMessage(content=turn.text))
                await self._wait_for_injection()
                at = max(at, loop.time())
                continue
            trapped = _is_trap(turn)
            pieces = plan_stream(turn)
            for piece in pieces:
                delay = at + piece.tokens * tpot - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                yield piece_chunk(piece, index_offset=index)
            tokens = pieces[-1].tokens if pieces else 0
            at += tokens * tpot
            produced += tokens
            index += len(turn.tool_calls)
            self._context.append(AIMessage(content=turn.text, tool_calls=list(turn.tool_calls)))
            if trapped:
                if not self._inbox:
                    await self._wait_for_injection()
                at = max(at, loop.time())
                continue
            if not turn.tool_calls and not turn.more:
                break
        yield AIMessageChunk(
            content="",
            response_metadata={
                "finish_reason": finish_reason(turn),
                "model_name": self._model.model_name,
            },
            usage_metadata={
                "input_tokens": 0,
                "output_tokens": produced,
                "total_tokens": produced,
            },
        )
