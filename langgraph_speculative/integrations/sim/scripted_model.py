"""A scripted, streaming chat model for tests, the demo and the benchmarks.

:class:`ScriptedChatModel` is a LangChain ``BaseChatModel`` that plays a script: either a
fixed list of :class:`ModelTurn` objects (turn *k* answers the request that follows *k*
earlier AI messages) or a *responder*, a function from the conversation so far to the next
turn. It streams text and OpenAI-style ``tool_call_chunks`` (first chunk: id and name;
then argument fragments) paced by a :class:`~.latency.LatencyModel`: time to first token,
then time per output token. ``bind_tools`` works and checks that the script only names
bound tools.

What it simulates, and what not: the latency model and the chunk shapes of an OpenAI
chat-completions stream. It does not simulate a model's choices: the script makes them.

Example:
    ```python
    import asyncio
    from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel

    model = ScriptedChatModel(
        script=[
            ModelTurn.calls(("get_weather", {"city": "Paris"})),
            ModelTurn(text="It is sunny in Paris."),
        ],
        latency=LatencyModel.zero(),
    )

    async def main() -> None:
        async for chunk in model.astream("Weather in Paris?"):
            print(chunk.tool_call_chunks or chunk.content)

    asyncio.run(main())
    ```
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    message_to_dict,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from langgraph_speculative.errors import ScriptError
from langgraph_speculative.integrations.sim.latency import Backend, LatencyModel, count_tokens
from langgraph_speculative.integrations.sim.sessions import SimulatedSession
from langgraph_speculative.integrations.sim.turns import (
    ModelTurn,
    Responder,
    StreamPiece,
    finish_reason,
    piece_chunk,
    plan_stream,
)

__all__ = [
    "ModelTurn",
    "Responder",
    "ScriptedChatModel",
    "StreamPiece",
    "finish_reason",
    "plan_stream",
]


class ScriptedChatModel(BaseChatModel):
    """A chat model that streams a script on a latency model (see module docs).

    Attributes:
        script: Fixed turns, or a responder called with the conversation.
        latency: Latency model (``LatencyModel.zero()`` for instant tests).
        model_name: Name reported in response metadata.
        bound_tools: Names of the tools bound with ``bind_tools`` (``None``: unchecked).
        backend: ``stateless`` (chat completions: one request, one stream) or
            ``interruptible`` (also offers :meth:`open_session`, a decoding session that
            accepts injected results mid-generation).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: Sequence[ModelTurn] | Responder
    latency: LatencyModel = Field(default_factory=LatencyModel.zero)
    model_name: str = "scripted"
    bound_tools: frozenset[str] | None = None
    backend: Backend = "stateless"
    _prefix_cache: set[str] = PrivateAttr(default_factory=set)

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Return a copy of this model that knows the tools' names (no schema is sent).

        Args:
            tools: Tools in any form LangChain accepts.
            tool_choice: Accepted for compatibility; the script decides.
            **kwargs: Ignored.
        """
        names = frozenset(convert_to_openai_tool(t)["function"]["name"] for t in tools)
        return self.model_copy(update={"bound_tools": names})

    # -- the script ------------------------------------------------------------------
    def next_turn(self, messages: Sequence[BaseMessage]) -> ModelTurn:
        """Return the turn the script gives for ``messages``.

        Raises:
            ScriptError: If a fixed script is exhausted, or the turn names a tool that was
                not bound.
        """
        if callable(self.script):
            turn = self.script(messages)
        else:
            k = sum(1 for m in messages if isinstance(m, AIMessage))
            if k >= len(self.script):
                raise ScriptError(
                    f"the script has {len(self.script)} turns; turn {k + 1} was requested"
                )
            turn = self.script[k]
        if self.bound_tools is not None:
            for call in turn.tool_calls:
                if call["name"] not in self.bound_tools:
                    raise ScriptError(
                        f"the script calls tool {call['name']!r}, which is not bound "
                        f"(bound: {sorted(self.bound_tools)})"
                    )
        return turn

    def prompt_ms(self, messages: Sequence[BaseMessage]) -> float:
        """Time before the first token: TTFT plus prefill of the uncached prompt suffix."""
        if self.latency.prefill_ms_per_1k <= 0:
            return self.latency.ttft_ms
        uncached = 0
        digest = hashlib.sha256()
        for m in messages:
            digest.update(json.dumps(message_to_dict(m), sort_keys=True, default=str).encode())
            key = digest.hexdigest()
            if key not in self._prefix_cache:
                self._prefix_cache.add(key)
                uncached += count_tokens(str(m.content))
        return self.latency.ttft_ms + self.latency.prefill_ms(uncached)

    def open_session(
        self, messages: Sequence[BaseMessage], *, tools: Sequence[BaseTool] = ()
    ) -> SimulatedSession:
        """Open an interruptible decoding session on ``messages``.

        Args:
            messages: The conversation so far.
            tools: Tools the session may call (their names are checked like ``bind_tools``).

        Raises:
            ScriptError: If this model's ``backend`` is ``stateless``.
        """
        if self.backend != "interruptible":
            raise ScriptError(
                "this scripted model is stateless; create it with backend='interruptible' "
                "to open sessions"
            )
        model = self
        if tools:
            model = self.model_copy(update={"bound_tools": frozenset(t.name for t in tools)})
        return SimulatedSession(model, messages)

    # -- streaming -------------------------------------------------------------------
    def _chunks(self, turn: ModelTurn) -> Iterator[tuple[float, AIMessageChunk]]:
        tpot = self.latency.tpot_ms
        pieces = plan_stream(turn)
        for piece in pieces:
            yield piece.tokens * tpot, piece_chunk(piece)
        # As ChatOpenAI streams an OpenAI response with ``include_usage``: a chunk with the
        # finish reason, then a separate chunk with the usage (the wire's ``choices: []``).
        tokens = pieces[-1].tokens if pieces else 0
        yield (
            tokens * tpot,
            AIMessageChunk(
                content="",
                response_metadata={
                    "finish_reason": finish_reason(turn),
                    "model_name": self.model_name,
                },
            ),
        )
        yield (
            tokens * tpot,
            AIMessageChunk(
                content="",
                usage_metadata={"input_tokens": 0, "output_tokens": tokens, "total_tokens": tokens},
            ),
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        turn = self.next_turn(messages)
        loop = asyncio.get_running_loop()
        start = loop.time() + self.prompt_ms(messages) / 1000.0
        for at_ms, chunk in self._chunks(turn):
            delay = start + at_ms / 1000.0 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            gen = ChatGenerationChunk(message=chunk)
            if run_manager is not None and isinstance(chunk.content, str):
                await run_manager.on_llm_new_token(chunk.content, chunk=gen)
            yield gen

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        turn = self.next_turn(messages)
        start = time.monotonic() + self.prompt_ms(messages) / 1000.0
        for at_ms, chunk in self._chunks(turn):
            delay = start + at_ms / 1000.0 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            gen = ChatGenerationChunk(message=chunk)
            if run_manager is not None and isinstance(chunk.content, str):
                run_manager.on_llm_new_token(chunk.content, chunk=gen)
            yield gen

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        merged: ChatGenerationChunk | None = None
        async for gen in self._astream(messages, stop, run_manager, **kwargs):
            merged = gen if merged is None else merged + gen
        return _as_result(merged)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        merged: ChatGenerationChunk | None = None
        for gen in self._stream(messages, stop, run_manager, **kwargs):
            merged = gen if merged is None else merged + gen
        return _as_result(merged)


def _as_result(merged: ChatGenerationChunk | None) -> ChatResult:
    if merged is None:  # pragma: no cover - _chunks always yields the finish chunk
        raise ScriptError("the scripted model produced no output")
    chunk = merged.message
    assert isinstance(chunk, AIMessageChunk)
    message = AIMessage(
        content=chunk.content,
        tool_calls=chunk.tool_calls,
        invalid_tool_calls=chunk.invalid_tool_calls,
        response_metadata=chunk.response_metadata,
        usage_metadata=chunk.usage_metadata,
        id=chunk.id,
    )
    return ChatResult(generations=[ChatGeneration(message=message)])
