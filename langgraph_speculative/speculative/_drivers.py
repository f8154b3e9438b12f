"""The model drivers of a speculative run: show the model events, read its actions.

A :class:`~langgraph_speculative.speculative.run.SpeculativeRun` talks to its model through
one driver, which :func:`make_driver` picks:

- :class:`SessionDriver` for an interruptible model (one offering ``open_session``): one
  session, every event injected as it happens, the actions read line by line;
- :class:`RequestDriver` for a stateless model: a new request holding the whole
  transcript whenever there is something new to show.

A driver sees its run through :class:`DriverHost`. This module is internal to the
``speculative`` wing.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, SystemMessage
from langchain_core.tools import BaseTool

from langgraph_speculative.errors import SpeculativeError, StalledError
from langgraph_speculative.speculative.interaction_format import (
    Action,
    Answer,
    Item,
    Pause,
    parse_actions,
    to_messages,
)

__all__ = ["Driver", "DriverHost", "RequestDriver", "SessionDriver", "make_driver"]


class DriverHost(Protocol):
    """What a driver reads of its run.

    A :class:`~langgraph_speculative.speculative.run.SpeculativeRun` is one.
    """

    @property
    def model(self) -> BaseChatModel:
        """The chat model (interruptible ones offer ``open_session``)."""

    @property
    def tools(self) -> list[BaseTool]:
        """The run's tools."""

    @property
    def items(self) -> list[Item]:
        """The interaction transcript so far."""

    @property
    def t0(self) -> float:
        """When the interaction started (``time.time()``), the origin of its clock."""

    @property
    def final_heard(self) -> bool:
        """Whether the run has heard the user's final input."""

    @property
    def events_shown(self) -> int:
        """How many events the run has shown the model."""

    def system_message(self) -> SystemMessage:
        """The model's system message."""

    def nothing_coming(self) -> bool:
        """Whether no input, result or cancellation can reach the model any more."""

    def stuck_reason(self) -> str:
        """Why a model waiting now would wait forever (for a ``StalledError``)."""


_ANSWER_RE = re.compile(r"^\s*(?:\[t=[^\]\n]*\]\s*)?(?:MODEL\s+)?ANSWER(?:\s|$)")
"""An ``ANSWER`` line (it runs to the end of the output)."""


class Driver(abc.ABC):
    """Talks to the model: shows it events, reads its actions.

    Attributes:
        heard_final: Whether the model had been shown the final input when it began the
            actions :meth:`actions` returned last.
        woken: Set when something changed that may end a wait (see :meth:`wake`).
        progress_at: When the driver last made progress (``loop.time()``: a chunk read,
            a request sent, a wait begun).
        awaiting: What the driver is waiting for now, for error messages.
    """

    heard_final = False
    awaiting = "the model's next action"

    def __init__(self) -> None:
        self.woken = asyncio.Event()
        self.progress_at = asyncio.get_running_loop().time()

    def touch(self, awaiting: str | None = None) -> None:
        """Record progress (and what is awaited from now on)."""
        self.progress_at = asyncio.get_running_loop().time()
        if awaiting is not None:
            self.awaiting = awaiting

    @abc.abstractmethod
    def show(self, items: Sequence[Item]) -> None:
        """Show the model new events."""

    def wake(self) -> None:
        """Something changed in the run (a result was handled, the input ended)."""
        self.woken.set()

    def stalled(self) -> bool:
        """Whether the model is proven to wait for something that cannot arrive."""
        return False

    def polls(self) -> bool:
        """Whether :meth:`stalled` can turn true without a :meth:`wake` (it is polled)."""
        return False

    @abc.abstractmethod
    async def actions(self) -> list[Action]:
        """The model's next actions."""

    async def aclose(self) -> None:  # noqa: B027 - only drivers holding a session override it
        """Release the model session, if any."""


class SessionDriver(Driver):
    """An interruptible model: one session, events injected as they happen.

    Args:
        run: The run.
        history: The messages the session opens with, after the system message.
    """

    awaiting = "the model session's next chunk"

    def __init__(self, run: DriverHost, history: Sequence[BaseMessage]) -> None:
        super().__init__()
        self.run = run
        open_session = run.model.open_session  # type: ignore[attr-defined]
        self.session = open_session([run.system_message(), *history], tools=run.tools)
        self._chunks: AsyncIterator[AIMessageChunk] = aiter(self.session)
        self._buffer = ""
        # per line begun in the buffer: final shown then? and what the session had read
        self._line_flags: list[tuple[bool, int | None]] = []
        self._ended = False
        self._injected = 0  # messages injected into the session so far
        # messages injected when the final input was among them (0: in the opening context)
        self._final_injected: int | None = 0 if run.final_heard else None
        # the last line read was PAUSE: how many injected messages the model had read when
        # it began it (None: not a pause, or the session does not say)
        self._paused_after: int | None = None
        self._line_absorbed: int | None = None

    def show(self, items: Sequence[Item]) -> None:
        """Inject new events into the session."""
        messages = to_messages(items, t0=self.run.t0)
        self.session.inject(messages)
        self._injected += len(messages)
        if self._final_injected is None and self.run.final_heard:
            self._final_injected = self._injected
        self.wake()

    def _absorbed(self) -> int | None:
        absorbed = getattr(self.session, "absorbed", None)
        return absorbed if isinstance(absorbed, int) and not isinstance(absorbed, bool) else None

    def stalled(self) -> bool:
        """Whether the model waits for an injection that can never come.

        It waits (it wrote ``PAUSE``, or the session says it is ``waiting``), it has read
        everything injected, and nothing more can be injected.
        """
        if self._ended or self._buffer.strip() or not self.run.nothing_coming():
            return False
        absorbed = self._absorbed()
        if absorbed is None or absorbed < self._injected:
            return False  # it has not read everything yet (or cannot tell us)
        if getattr(self.session, "waiting", None) is True:
            return True
        return self._paused_after is not None and self._paused_after >= self._injected

    def polls(self) -> bool:
        """Whether the session reports ``waiting`` and ``absorbed`` (a silent wait is polled)."""
        return hasattr(self.session, "waiting") and self._absorbed() is not None

    def _final_read(self) -> bool:
        """Whether the model had read the final input when it began the chunk just read.

        A session that reports ``absorbed`` (injected messages read) tells exactly; for
        another, the final input counts as read once it was injected, so a line the model
        began just before reading it may be taken for one begun after.
        """
        if self._final_injected is None:
            return False
        absorbed = getattr(self.session, "absorbed", None)
        if isinstance(absorbed, int):
            return absorbed >= self._final_injected
        return True

    async def _more(self) -> bool:
        """Read one more chunk into the buffer; ``False`` when the session has ended."""
        if self._ended:
            return False
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self._ended = True
            return False
        self.touch()
        if isinstance(chunk.content, str) and chunk.content:
            self._paused_after = None  # it writes again
            self._feed(chunk.content)
        return True

    def _feed(self, text: str) -> None:
        flag = (self._final_read(), self._absorbed())
        if not self._buffer or self._buffer.endswith("\n"):
            self._line_flags.append(flag)  # the chunk begins a line
        index = text.find("\n")
        while -1 < index < len(text) - 1:  # a line break inside the chunk begins another
            self._line_flags.append(flag)
            index = text.find("\n", index + 1)
        self._buffer += text

    def _take_line(self) -> str:
        line, _, self._buffer = self._buffer.partition("\n")
        if self._line_flags:
            self.heard_final, self._line_absorbed = self._line_flags.pop(0)
        else:
            self.heard_final, self._line_absorbed = self.run.final_heard, None
        return line

    async def actions(self) -> list[Action]:
        """The actions of the next line the model writes (an answer: to the end).

        Raises:
            SpeculativeError: If the session ends without an answer.
            InteractionFormatError: If the line is not an action.
        """
        while "\n" not in self._buffer:
            if not await self._more():
                if self._buffer.strip():
                    return parse_actions(self._take_line())
                raise SpeculativeError("the model session ended without an answer")
        line = self._take_line()
        if _ANSWER_RE.match(line):  # an answer runs to the end of the output
            while await self._more():
                pass
            text, self._buffer = line + "\n" + self._buffer, ""
            self._line_flags.clear()
            return parse_actions(text)
        actions = parse_actions(line) if line.strip() else []
        if actions and all(isinstance(a, Pause) for a in actions) and not self._buffer:
            self._paused_after = self._line_absorbed  # it waits for the next event
        return actions

    async def aclose(self) -> None:
        """Close the session's stream of chunks."""
        closer = getattr(self._chunks, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


class RequestDriver(Driver):
    """A stateless model: a new request whenever there is something new to show.

    The request holds the whole transcript (:func:`to_messages` of the run's items: events
    as human messages, the model's own earlier actions as AI messages). After a reply
    with an action other than ``PAUSE`` the model is asked again at once; after a pause,
    when a new event arrives. A pause after the final input with nothing left to arrive
    is an error, not a hang.

    Args:
        run: The run.
        history: Earlier messages, sent after the system message in every request.

    Attributes:
        events_seen: How many events the run had shown when the model was last asked.
        ask_again: Whether the model is asked again without waiting for a new event (its
            last reply did not ``PAUSE``).
    """

    def __init__(self, run: DriverHost, history: Sequence[BaseMessage]) -> None:
        super().__init__()
        self.run = run
        self.history = list(history)
        self.system = run.system_message()
        self._wake = asyncio.Event()
        self.events_seen = 0
        self.ask_again = False

    def show(self, items: Sequence[Item]) -> None:
        """Note new events: they go in the next request."""
        self.wake()

    def wake(self) -> None:
        """Something changed in the run: end a wait for the next request."""
        self._wake.set()
        super().wake()

    async def actions(self) -> list[Action]:
        """Ask the model (once there is something new to show) and read its actions.

        Raises:
            StalledError: If the model paused and nothing more can arrive.
            InteractionFormatError: If a line of the reply is not an action.
        """
        run = self.run
        self.touch("a new input update or tool result to show the model")
        while not (self.ask_again or run.events_shown > self.events_seen):
            if run.nothing_coming():
                raise StalledError(run.stuck_reason())
            self._wake.clear()
            await self._wake.wait()
        self.ask_again = False
        self.events_seen = run.events_shown
        self.heard_final = run.final_heard
        prompt = [self.system, *self.history, *to_messages(run.items, t0=run.t0)]
        text = ""
        self.touch("the model's next stream chunk")
        async for chunk in run.model.astream(prompt):
            self.touch()
            if isinstance(chunk.content, str):
                text += chunk.content
        actions = parse_actions(text) if text.strip() else []
        self.ask_again = any(not isinstance(a, Pause | Answer) for a in actions)
        return actions


def make_driver(
    run: DriverHost, history: Sequence[BaseMessage], transcript: Sequence[BaseMessage] = ()
) -> Driver:
    """The model's driver: a session for an interruptible model, else requests.

    Args:
        run: The run.
        history: Earlier messages of the conversation.
        transcript: A replayed transcript (of a resumed run) a new session also reads.

    Returns:
        A :class:`SessionDriver` when the model offers ``open_session`` (and its
        ``backend``, if any, is ``interruptible``), else a :class:`RequestDriver`.
    """
    if (
        callable(getattr(run.model, "open_session", None))
        and getattr(run.model, "backend", "interruptible") == "interruptible"
    ):
        return SessionDriver(run, [*history, *transcript])
    return RequestDriver(run, history)
