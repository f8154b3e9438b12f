"""Asynchronous I/O: the user's input arrives while the agent works.

In a speculative interaction the agent does not wait for the user to finish. A voice
front-end (ASR) produces *partial transcripts* that grow, and sometimes rewrite earlier
words, while the user speaks; the environment produces *events* (a calendar change, a
notification). An :class:`InputStream` carries both to the agent: the app pushes, the
agent reads, and reading never blocks the agent longer than it asks to wait.

* Every update is an :class:`InputUpdate` numbered ``seq`` = 1, 2, ... in arrival order
  (user updates and events share the numbering). A user update holds the **whole
  transcript so far**, not a delta; the last user update is ``final``.
* The app calls :meth:`InputStream.push` on each partial transcript and
  ``push(text, final=True)`` at the end of the utterance; :meth:`InputStream.push_event`
  for environment events. From another thread (an ASR callback thread), use
  :meth:`InputStream.push_threadsafe` / :meth:`InputStream.push_event_threadsafe`: they
  hand the update to the event loop the stream is bound to (the loop it was created in or
  first used from) and return a :class:`concurrent.futures.Future`.
* The agent reads without blocking (:attr:`InputStream.latest`,
  :attr:`InputStream.final`, :meth:`InputStream.updates`) or waits for what comes next
  (``await stream.next(after_seq)``, ``await stream.wait_final()``, ``async for update in
  stream``, which stops after the final user update).
* Bad input raises :class:`~langgraph_speculative.errors.InputUpdateError`: text that is
  not a ``str``; empty or whitespace-only text (for partial and final updates alike: ASR
  front-ends send non-empty partials, so an empty one is a bug, not silence); text longer
  than ``max_chars``; a user update after the final one (environment events may still
  arrive after it). After :meth:`InputStream.close`, pushes raise and waiting readers
  get :class:`~langgraph_speculative.errors.InputClosedError`.
* With ``ledger=``, every update is also recorded in the
  :class:`~langgraph_speculative.core.ledger.CallLedger` (:meth:`~langgraph_speculative.core.ledger.
  CallLedger.record_input`), so a checkpoint keeps what the agent had heard. If the ledger
  already holds inputs (a resumed run, or an earlier turn), numbering continues after them.
* A run resumed after a crash gets back what it had heard with :meth:`InputStream.restore`
  (the speculative agent does it from its journal): the journaled updates come first,
  with their own ``seq``, and the app pushes further updates after them.

Wiring a voice app:
    On each ASR partial, ``stream.push(partial)`` (or ``push_threadsafe`` from the ASR's
    thread); at the end of the utterance, ``stream.push(text, final=True)``. The stream
    reaches the graph through LangGraph's runtime **context**, which is not checkpointed
    and may therefore carry a live object: ``graph.ainvoke(state, context={"input":
    stream})``; a node declares a ``runtime: Runtime[...]`` parameter and reads
    ``runtime.context["input"]``. Keep transcripts in the context, not in the graph state:
    the state is checkpointed at every step, the stream is not (the ledger records the
    updates instead).

Example:
    ```python
    import asyncio
    import threading
    import time
    from typing import Any, TypedDict

    from langgraph.graph import START, StateGraph
    from langgraph.runtime import Runtime

    from langgraph_speculative import CallLedger
    from langgraph_speculative.speculative.input_stream import InputStream


    class State(TypedDict):
        heard: list[str]


    class Context(TypedDict):
        input: InputStream


    async def listen(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        heard = []
        async for update in runtime.context["input"]:  # stops after the final update
            heard.append(("final: " if update.final else "partial: ") + update.text)
        return {"heard": heard}


    graph = (
        StateGraph(State, context_schema=Context)
        .add_node(listen)
        .add_edge(START, "listen")
        .compile()
    )


    def fake_asr(stream: InputStream) -> None:  # an ASR callback thread
        for partial in ["Play", "Play songs", "Play songs from Taylor"]:
            stream.push_threadsafe(partial).result()
            time.sleep(0.01)
        stream.push_threadsafe("Play songs from Taylor Swift", final=True).result()


    async def main() -> None:
        ledger = CallLedger()
        stream = InputStream(ledger=ledger)  # bound to this event loop
        asr = threading.Thread(target=fake_asr, args=(stream,))
        asr.start()
        result = await graph.ainvoke({"heard": []}, context={"input": stream})
        asr.join()
        print(result["heard"][-1])  # final: Play songs from Taylor Swift
        assert [u.seq for u in ledger.inputs] == [1, 2, 3, 4]


    asyncio.run(main())
    ```
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

from langgraph_speculative.core.ledger import CallLedger, InputKind, InputRecord
from langgraph_speculative.errors import InputClosedError, InputUpdateError, SpeculativeError

__all__ = ["DEFAULT_MAX_CHARS", "InputStream", "InputUpdate"]

DEFAULT_MAX_CHARS = 100_000
"""The default longest text of one update, in characters."""

InputUpdate = InputRecord
"""One update of the input stream: the ledger's :class:`~langgraph_speculative.core.ledger.
InputRecord` (fields ``seq``, ``text``, ``final``, ``at``, ``kind``, ``source``). One class
serves the stream and the ledger, so an update is recorded as it is."""

_T = TypeVar("_T")


class InputStream:
    """A stream of partial user input and environment events, pushed by the app.

    The stream is bound to one asyncio event loop: the loop running when it is created,
    or else the first loop that reads from it or pushes to it. :meth:`push`,
    :meth:`push_event` and the readers run on that loop's thread (or before any loop is
    bound); other threads use :meth:`push_threadsafe` / :meth:`push_event_threadsafe`.
    :meth:`close` may be called from any thread.

    Args:
        ledger: If given, every update is also recorded there
            (:meth:`~langgraph_speculative.core.ledger.CallLedger.record_input`); numbering
            continues after the inputs the ledger already holds.
        max_chars: The longest text of one update, in characters.

    Raises:
        SpeculativeError: If ``max_chars`` is not a positive integer.
    """

    __slots__ = (
        "_closed",
        "_final",
        "_latest",
        "_ledger",
        "_lock",
        "_loop",
        "_loop_thread",
        "_max_chars",
        "_seq",
        "_updates",
        "_waiters",
    )

    def __init__(
        self, *, ledger: CallLedger | None = None, max_chars: int = DEFAULT_MAX_CHARS
    ) -> None:
        if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
            raise SpeculativeError(f"max_chars must be a positive integer, got {max_chars!r}")
        self._ledger = ledger
        self._max_chars = max_chars
        self._lock = threading.RLock()
        self._updates: list[InputUpdate] = []
        self._latest: InputUpdate | None = None
        self._final: InputUpdate | None = None
        self._closed = False
        self._seq = ledger.inputs[-1].seq if ledger is not None and ledger.inputs else 0
        self._waiters: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._bind()

    # -- reading without waiting -------------------------------------------------------
    @property
    def latest(self) -> InputUpdate | None:
        """The latest user update (events excluded), or ``None`` before the first one."""
        return self._latest

    @property
    def final(self) -> bool:
        """Whether the user's final update has arrived."""
        return self._final is not None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has taken effect."""
        return self._closed

    @property
    def last_seq(self) -> int:
        """The ``seq`` of the latest update of any kind (0 before the first one)."""
        return self._seq

    @property
    def max_chars(self) -> int:
        """The longest text of one update, in characters."""
        return self._max_chars

    @property
    def ledger(self) -> CallLedger | None:
        """The ledger that records the updates, if any."""
        return self._ledger

    def updates(self) -> list[InputUpdate]:
        """Return every update so far (user updates and events), in ``seq`` order."""
        with self._lock:
            return list(self._updates)

    # -- pushing -----------------------------------------------------------------------
    def push(self, text: str, *, final: bool = False) -> InputUpdate:
        """Push a user update: the whole transcript so far.

        Call it from the event loop's thread (or before the stream is bound to a loop);
        from another thread use :meth:`push_threadsafe`.

        Args:
            text: The whole transcript so far (not a delta); non-empty.
            final: Whether the user has finished (the end of the utterance).

        Returns:
            The update, with its ``seq`` and arrival time.

        Raises:
            InputUpdateError: On non-str, empty, whitespace-only or too long text, a
                non-bool ``final``, an update after the final one, or a call from a thread
                other than the event loop's.
            InputClosedError: If the stream is closed.
            SpeculativeError: If the ledger refuses the record.
        """
        return self._push(text, final=final, kind="user", source=None)

    def push_event(self, text: str, *, source: str) -> InputUpdate:
        """Push an environment event (for example a calendar change).

        Events may arrive before or after the user's final update.

        Args:
            text: The event, as the model should read it; non-empty.
            source: Where the event comes from (for example ``"calendar"``); non-empty.

        Returns:
            The update (``kind == "event"``).

        Raises:
            InputUpdateError: On bad text or source, or a call from a thread other than
                the event loop's.
            InputClosedError: If the stream is closed.
            SpeculativeError: If the ledger refuses the record.
        """
        if not isinstance(source, str) or not source.strip():
            raise InputUpdateError(f"an event needs a non-empty str source, got {source!r}")
        return self._push(text, final=False, kind="event", source=source)

    def push_threadsafe(
        self, text: str, *, final: bool = False
    ) -> concurrent.futures.Future[InputUpdate]:
        """Push a user update from any thread (for example an ASR callback).

        The update is handed to the stream's event loop; the returned future holds the
        update, or the error :meth:`push` would have raised. Do not wait on the future
        from the event loop's own thread (that would block the loop); there, call
        :meth:`push`. Before the stream is bound to a loop, the update is pushed at once.

        Args:
            text: The whole transcript so far; non-empty.
            final: Whether the user has finished.

        Returns:
            A future of the update.
        """
        return self._threadsafe(lambda: self._push(text, final=final, kind="user", source=None))

    def push_event_threadsafe(
        self, text: str, *, source: str
    ) -> concurrent.futures.Future[InputUpdate]:
        """Push an environment event from any thread; see :meth:`push_threadsafe`.

        Args:
            text: The event text; non-empty.
            source: Where the event comes from; non-empty.

        Returns:
            A future of the update.
        """
        return self._threadsafe(lambda: self.push_event(text, source=source))

    def close(self) -> None:
        """Close the stream: no more updates; waiting readers get ``InputClosedError``.

        Callable from any thread (from another thread it takes effect on the event loop,
        in order with pushes handed over before it). Closing twice is harmless. Updates
        already received stay readable.
        """
        with self._lock:
            loop = self._handover_loop()
            if loop is not None:
                try:
                    loop.call_soon_threadsafe(self.close)
                    return
                except RuntimeError:  # the loop closed in between: close here
                    pass
            if self._closed:
                return
            self._closed = True
            waiters = self._take_waiters()
        _wake(waiters)

    def restore(self, updates: Sequence[InputUpdate]) -> int:
        """Put back updates a crashed run had received (from its journal), before new ones.

        The updates keep their ``seq``; numbering continues after them. Restoring into a
        stream that already holds exactly these updates (as its first ones) changes
        nothing, so restoring twice is harmless. Readers waiting for an update are woken.

        Args:
            updates: The updates, in ``seq`` order (for example from a journal).

        Returns:
            How many updates were added.

        Raises:
            InputUpdateError: If ``seq`` does not increase, a user update follows the final
                one, or the stream already holds other updates (push further updates only
                after restoring), or an update is not an :class:`InputUpdate`.
            InputClosedError: If the stream is closed.
        """
        self._bind()
        with self._lock:
            if self._closed:
                raise InputClosedError("the input stream is closed: cannot restore updates")
            restored = list(updates)
            for update in restored:
                if not isinstance(update, InputRecord):
                    raise InputUpdateError(
                        f"restore() takes InputUpdate records, got {type(update).__name__}"
                    )
            held = self._updates
            if held:
                if held[: len(restored)] == restored:
                    return 0  # restored before
                raise InputUpdateError(
                    f"cannot restore {len(restored)} journaled updates into a stream that "
                    f"already holds {len(held)} other updates: restore before pushing"
                )
            final: InputUpdate | None = None
            previous = 0
            for update in restored:
                if update.seq <= previous:
                    raise InputUpdateError(
                        f"restored updates must have increasing seq: {update.seq} after {previous}"
                    )
                if update.kind == "user" and final is not None:
                    raise InputUpdateError(
                        f"restored user update {update.seq} follows the final one ({final.seq})"
                    )
                if update.kind == "user" and update.final:
                    final = update
                previous = update.seq
            if self._ledger is not None:
                known = {u.seq: u for u in self._ledger.inputs}
                for update in restored:
                    if update.seq not in known:
                        self._ledger.record_input(update)
            if not restored:
                return 0
            self._updates = restored
            self._seq = max(self._seq, restored[-1].seq)
            users = [u for u in restored if u.kind == "user"]
            self._latest = users[-1] if users else None
            self._final = final
            waiters = self._take_waiters()
        _wake(waiters)
        return len(restored)

    # -- waiting -----------------------------------------------------------------------
    async def next(self, after_seq: int = 0, timeout: float | None = None) -> InputUpdate:
        """Return the first update (of any kind) with ``seq > after_seq``; wait for it.

        Args:
            after_seq: The ``seq`` of the last update the caller has seen (0: none).
            timeout: Seconds to wait at most (``None``: no limit; 0: do not wait).

        Returns:
            The update.

        Raises:
            TimeoutError: If no such update arrived within ``timeout``.
            InputClosedError: If the stream is closed and holds no such update.
            SpeculativeError: On a negative or non-integer ``after_seq`` or a bad
                ``timeout``.
        """
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise SpeculativeError(f"after_seq must be an integer >= 0, got {after_seq!r}")

        def found() -> InputUpdate | None:
            i = bisect.bisect_right(self._updates, after_seq, key=lambda u: u.seq)
            return self._updates[i] if i < len(self._updates) else None

        return await self._wait_for(found, timeout, f"no input update after seq {after_seq}")

    async def wait_final(self, timeout: float | None = None) -> InputUpdate:
        """Wait for the user's final update and return it.

        Args:
            timeout: Seconds to wait at most (``None``: no limit; 0: do not wait).

        Returns:
            The final user update.

        Raises:
            TimeoutError: If it did not arrive within ``timeout``.
            InputClosedError: If the stream closed without a final update.
            SpeculativeError: On a bad ``timeout``.
        """
        return await self._wait_for(lambda: self._final, timeout, "no final input update")

    def follow(self, after_seq: int = 0) -> AsyncIterator[InputUpdate]:
        """Iterate over the updates with ``seq > after_seq``, waiting for new ones.

        The iteration stops after the user's final update (events that come after it are
        not yielded; if the final update is at or before ``after_seq``, nothing is) or
        when the stream is closed.

        Args:
            after_seq: The ``seq`` of the last update the caller has seen (0: from the
                start).

        Returns:
            An async iterator of updates.
        """
        return self._follow(after_seq)

    def __aiter__(self) -> AsyncIterator[InputUpdate]:
        """Iterate over every update from the first; same as :meth:`follow`."""
        return self._follow(0)

    # -- internals ---------------------------------------------------------------------
    async def _follow(self, after_seq: int) -> AsyncIterator[InputUpdate]:
        seq = after_seq
        while True:
            final = self._final
            if final is not None and final.seq <= seq:  # the utterance is over
                return
            try:
                update = await self.next(seq)
            except InputClosedError:
                return
            yield update
            if update.kind == "user" and update.final:
                return
            seq = update.seq

    async def _wait_for(
        self, probe: Callable[[], _T | None], timeout: float | None, what: str
    ) -> _T:
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not timeout >= 0
            or math.isinf(timeout)
        ):
            raise SpeculativeError(f"timeout must be None or a finite number >= 0, got {timeout!r}")
        try:
            async with asyncio.timeout(timeout):
                while True:
                    with self._lock:
                        self._bind(reader=True)
                        hit = probe()
                        if hit is not None:
                            return hit
                        if self._closed:
                            raise InputClosedError(f"the input stream is closed: {what}")
                        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                        self._waiters.append(waiter)
                    try:
                        await waiter
                    finally:
                        with self._lock:
                            if waiter in self._waiters:
                                self._waiters.remove(waiter)
        except TimeoutError:
            raise TimeoutError(f"{what} within {timeout:g} s") from None

    def _bind(self, *, reader: bool = False) -> None:
        """Bind to the running loop if not bound yet (or bound to a closed loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if reader:  # pragma: no cover - readers are coroutines
                raise
            return
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                self._loop = loop
                self._loop_thread = threading.get_ident()
                self._waiters = []  # futures of a closed loop can never be woken
            elif reader and loop is not self._loop:
                raise SpeculativeError(
                    "the input stream is bound to another event loop; create one stream per loop"
                )

    def _handover_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop to hand work to when called off its thread, else ``None`` (call held lock)."""
        loop = self._loop
        if loop is None or loop.is_closed() or threading.get_ident() == self._loop_thread:
            return None
        return loop

    def _threadsafe(
        self, push: Callable[[], InputUpdate]
    ) -> concurrent.futures.Future[InputUpdate]:
        future: concurrent.futures.Future[InputUpdate] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(push())
            except BaseException as exc:  # handed to the caller through the future
                future.set_exception(exc)

        with self._lock:
            loop = self._handover_loop()
            if loop is not None:
                try:
                    loop.call_soon_threadsafe(run)
                    return future
                except RuntimeError:  # the loop closed in between: push here
                    pass
            run()  # no live loop, or already on its thread (the lock keeps binders out)
        return future

    def _push(self, text: str, *, final: bool, kind: InputKind, source: str | None) -> InputUpdate:
        self._bind()
        with self._lock:
            loop = self._handover_loop()
            if loop is not None and loop.is_running():
                raise InputUpdateError(
                    "push() called from a thread other than the event loop's; "
                    "use push_threadsafe() there"
                )
            if self._closed:
                raise InputClosedError("the input stream is closed: no more updates")
            self._check(text, final=final, kind=kind)
            update = InputUpdate(
                seq=self._seq + 1, text=text, final=final, at=time.time(), kind=kind, source=source
            )
            if self._ledger is not None:
                self._ledger.record_input(update)
            self._seq = update.seq
            self._updates.append(update)
            if kind == "user":
                self._latest = update
                if final:
                    self._final = update
            waiters = self._take_waiters()
        _wake(waiters)
        return update

    def _check(self, text: object, *, final: object, kind: InputKind) -> None:
        what = "user update" if kind == "user" else "event"
        if not isinstance(text, str):
            raise InputUpdateError(f"{what} text must be a str, got {type(text).__name__}")
        if not isinstance(final, bool):
            raise InputUpdateError(f"final must be a bool, got {final!r}")
        if not text.strip():
            raise InputUpdateError(f"empty {what}: text must hold more than whitespace")
        if len(text) > self._max_chars:
            raise InputUpdateError(
                f"{what} of {len(text)} characters is over the limit of {self._max_chars}"
            )
        if kind == "user" and self._final is not None:
            raise InputUpdateError(
                f"user update after the final one (seq {self._final.seq}): "
                "the utterance is over; start a new stream for the next one"
            )

    def _take_waiters(self) -> list[asyncio.Future[None]]:
        waiters, self._waiters = self._waiters, []
        return waiters

    def __repr__(self) -> str:
        state = "closed" if self._closed else "final" if self._final is not None else "open"
        return f"<InputStream {state} updates={len(self._updates)} last_seq={self._seq}>"


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done() and not waiter.get_loop().is_closed():
            waiter.set_result(None)
