"""Tests of the input stream: pushing, reading, waiting, threads, ledger records."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest

from langgraph_speculative.core.ledger import CallLedger, InputRecord
from langgraph_speculative.errors import InputClosedError, InputUpdateError, SpeculativeError
from langgraph_speculative.speculative.input_stream import (
    DEFAULT_MAX_CHARS,
    InputStream,
    InputUpdate,
)


def test_input_update_is_the_ledger_record() -> None:
    assert InputUpdate is InputRecord


async def test_partial_then_final() -> None:
    stream = InputStream()
    assert stream.latest is None and not stream.final and stream.last_seq == 0
    before = time.time()
    p1 = stream.push("Play")
    p2 = stream.push("Play songs from Taylor")
    f = stream.push("Play songs from Taylor Swift", final=True)
    assert [u.seq for u in (p1, p2, f)] == [1, 2, 3]
    assert not p1.final and not p2.final and f.final
    assert before <= p1.at <= p2.at <= f.at <= time.time()
    assert all(u.kind == "user" and u.source is None for u in (p1, p2, f))
    assert stream.latest is f and stream.final and stream.last_seq == 3
    assert stream.updates() == [p1, p2, f]
    assert await stream.wait_final() is f
    assert await stream.next() is p1
    assert await stream.next(1) is p2
    assert await stream.next(after_seq=2) is f


async def test_updates_returns_a_copy() -> None:
    stream = InputStream()
    stream.push("a")
    snapshot = stream.updates()
    snapshot.clear()
    assert len(stream.updates()) == 1


async def test_readers_wait_and_wake() -> None:
    stream = InputStream()
    first = asyncio.create_task(stream.next())
    final = asyncio.create_task(stream.wait_final())
    await asyncio.sleep(0.01)
    assert not first.done() and not final.done()
    u1 = stream.push("Book a")
    assert await first is u1
    await asyncio.sleep(0.01)
    assert not final.done()
    later = asyncio.create_task(stream.next(after_seq=u1.seq))
    await asyncio.sleep(0.01)
    assert not later.done()
    u2 = stream.push("Book a table", final=True)
    assert await later is u2
    assert await final is u2


async def test_many_readers_wake_on_one_push() -> None:
    stream = InputStream()
    readers = [asyncio.create_task(stream.next()) for _ in range(5)]
    await asyncio.sleep(0.01)
    update = stream.push("hello")
    assert [await r for r in readers] == [update] * 5


async def test_next_after_seq_skips_seen_updates_and_events_count() -> None:
    stream = InputStream()
    stream.push("a")
    event = stream.push_event("calendar changed", source="calendar")
    stream.push("a b")
    assert (await stream.next(1)) is event
    assert (await stream.next(2)).text == "a b"
    with pytest.raises(TimeoutError, match="after seq 3"):
        await stream.next(3, timeout=0.02)
    with pytest.raises(TimeoutError):
        await stream.next(100, timeout=0)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1", None])
async def test_next_refuses_a_bad_after_seq(bad: Any) -> None:
    with pytest.raises(SpeculativeError, match="after_seq"):
        await InputStream().next(bad)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "1", True])
async def test_bad_timeouts(bad: Any) -> None:
    stream = InputStream()
    with pytest.raises(SpeculativeError, match="timeout"):
        await stream.next(timeout=bad)
    with pytest.raises(SpeculativeError, match="timeout"):
        await stream.wait_final(timeout=bad)


async def test_timeouts() -> None:
    stream = InputStream()
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="no input update"):
        await stream.next(timeout=0.05)
    assert time.monotonic() - start >= 0.04
    stream.push("partial")
    with pytest.raises(TimeoutError, match="no final input update"):
        await stream.wait_final(timeout=0.02)
    assert (await stream.next(timeout=0)).text == "partial"  # no wait when it is there
    # a timed-out reader leaves no waiter behind, and later readers still work
    waiter = asyncio.create_task(stream.wait_final(timeout=1))
    await asyncio.sleep(0.01)
    stream.push("partial text", final=True)
    assert (await waiter).final


async def test_timeouts_leave_no_waiters_behind() -> None:
    stream = InputStream()
    for _ in range(20):
        with pytest.raises(TimeoutError):
            await stream.next(timeout=0)
    assert stream._waiters == []


async def test_push_after_final_is_refused_but_events_are_not() -> None:
    stream = InputStream()
    stream.push("done", final=True)
    with pytest.raises(InputUpdateError, match="after the final"):
        stream.push("more")
    with pytest.raises(InputUpdateError, match="after the final"):
        stream.push("more", final=True)
    event = stream.push_event("timer fired", source="timer")
    assert event.seq == 2 and event.kind == "event" and not event.final
    assert stream.latest is not None and stream.latest.seq == 1  # latest user update


@pytest.mark.parametrize(
    ("text", "final", "match"),
    [
        ("", False, "empty"),
        ("", True, "empty"),
        ("   \n\t", False, "empty"),
        ("  ", True, "empty"),
        (None, False, "must be a str"),
        (5, False, "must be a str"),
        (b"bytes", True, "must be a str"),
        (["a"], False, "must be a str"),
        ("ok", 1, "final must be a bool"),
        ("ok", None, "final must be a bool"),
        ("x" * (DEFAULT_MAX_CHARS + 1), False, "over the limit"),
    ],
)
async def test_malformed_updates(text: Any, final: Any, match: str) -> None:
    ledger = CallLedger()
    stream = InputStream(ledger=ledger)
    with pytest.raises(InputUpdateError, match=match):
        stream.push(text, final=final)
    assert stream.updates() == [] and stream.last_seq == 0 and ledger.inputs == ()
    assert stream.push("fine").seq == 1  # the stream still works


def test_max_chars() -> None:
    stream = InputStream(max_chars=5)
    assert stream.max_chars == 5
    assert stream.push("12345").text == "12345"
    with pytest.raises(InputUpdateError, match="6 characters is over the limit of 5"):
        stream.push("123456")
    with pytest.raises(InputUpdateError, match="over the limit"):
        stream.push_event("too long", source="x")
    for bad in (0, -1, 1.5, True, "5"):
        with pytest.raises(SpeculativeError, match="max_chars"):
            InputStream(max_chars=bad)


@pytest.mark.parametrize(
    ("text", "source", "match"),
    [
        ("x", "", "source"),
        ("x", "  ", "source"),
        ("x", None, "source"),
        ("x", 3, "source"),
        ("", "cal", "empty event"),
        (3, "cal", "must be a str"),
    ],
)
async def test_malformed_events(text: Any, source: Any, match: str) -> None:
    with pytest.raises(InputUpdateError, match=match):
        InputStream().push_event(text, source=source)


async def test_close_wakes_readers_and_refuses_pushes() -> None:
    stream = InputStream()
    stream.push("partial")
    waiting_next = asyncio.create_task(stream.next(1))
    waiting_final = asyncio.create_task(stream.wait_final())
    await asyncio.sleep(0.01)
    stream.close()
    assert stream.closed
    with pytest.raises(InputClosedError):
        await waiting_next
    with pytest.raises(InputClosedError, match="no final"):
        await waiting_final
    with pytest.raises(InputClosedError):
        stream.push("more")
    with pytest.raises(InputClosedError):
        stream.push_event("late", source="x")
    stream.close()  # twice is harmless
    assert (await stream.next()).text == "partial"  # what arrived stays readable
    with pytest.raises(InputClosedError):
        await stream.next(1)
    assert [u async for u in stream] == stream.updates()
    assert "closed" in repr(stream)


async def test_push_threadsafe_from_another_thread() -> None:
    ledger = CallLedger()
    stream = InputStream(ledger=ledger)
    texts = [f"word{i}" for i in range(1, 30)]
    futures: list[Any] = []

    def asr() -> None:
        for i in range(len(texts)):
            futures.append(stream.push_threadsafe(" ".join(texts[: i + 1])))
        futures.append(stream.push_event_threadsafe("phone rang", source="phone"))
        futures.append(stream.push_threadsafe(" ".join(texts), final=True))
        futures[-1].result(timeout=5)  # the loop runs the pushes; wait for them here

    thread = threading.Thread(target=asr)
    thread.start()
    seen = [u async for u in stream]
    await asyncio.to_thread(thread.join)
    assert [u.seq for u in seen] == list(range(1, len(texts) + 3))
    assert seen[-1].final and seen[-1].text == " ".join(texts)
    assert seen[-2].kind == "event" and seen[-2].source == "phone"
    assert [f.result() for f in futures] == seen
    assert list(ledger.inputs) == seen


async def test_push_threadsafe_errors_come_through_the_future() -> None:
    stream = InputStream()
    stream.push("done", final=True)
    future = await asyncio.to_thread(stream.push_threadsafe, "more")
    with pytest.raises(InputUpdateError, match="after the final"):
        await asyncio.wrap_future(future)
    bad = await asyncio.to_thread(stream.push_threadsafe, "")
    with pytest.raises(InputUpdateError, match="empty"):
        await asyncio.wrap_future(bad)


async def test_push_threadsafe_on_the_loop_thread_pushes_at_once() -> None:
    stream = InputStream()
    future = stream.push_threadsafe("now")
    assert future.done() and future.result().seq == 1


async def test_plain_push_from_another_thread_is_refused() -> None:
    stream = InputStream()  # bound to this running loop
    with pytest.raises(InputUpdateError, match="push_threadsafe"):
        await asyncio.to_thread(stream.push, "wrong thread")
    assert stream.updates() == []


async def test_close_from_another_thread_wakes_readers() -> None:
    stream = InputStream()
    reader = asyncio.create_task(stream.wait_final())
    await asyncio.sleep(0.01)
    await asyncio.to_thread(stream.close)
    with pytest.raises(InputClosedError):
        await asyncio.wait_for(reader, 2)


def test_pushes_before_any_loop_then_read_in_a_loop() -> None:
    stream = InputStream()  # no running loop: bound on first use
    thread = threading.Thread(target=lambda: stream.push_threadsafe("from a thread").result())
    thread.start()
    thread.join()
    stream.push("from a thread, then", final=True)

    async def read() -> list[str]:
        return [u.text async for u in stream]

    assert asyncio.run(read()) == ["from a thread", "from a thread, then"]
    # the first loop is closed now: a new loop may bind the stream
    assert asyncio.run(stream.wait_final()).seq == 2


async def test_reading_from_another_loop_is_refused() -> None:
    stream = InputStream()

    def other_loop() -> None:
        asyncio.run(stream.next(timeout=0))

    with pytest.raises(SpeculativeError, match="another event loop"):
        await asyncio.to_thread(other_loop)


async def test_events_interleaved_with_user_updates() -> None:
    stream = InputStream()
    stream.push("Remind me")
    stream.push_event("battery low", source="phone")
    stream.push("Remind me to call Anna")
    stream.push_event("Anna is calling", source="phone")
    stream.push("Remind me to call Anna at 5", final=True)
    kinds = [(u.seq, u.kind) for u in stream.updates()]
    assert kinds == [(1, "user"), (2, "event"), (3, "user"), (4, "event"), (5, "user")]
    assert stream.latest is not None and stream.latest.text == "Remind me to call Anna at 5"
    assert [u.kind for u in [u async for u in stream]] == [k for _, k in kinds]


async def test_async_iteration_stops_after_final_and_skips_later_events() -> None:
    stream = InputStream()

    async def app() -> None:
        for text in ["Play", "Play songs"]:
            await asyncio.sleep(0.005)
            stream.push(text)
        await asyncio.sleep(0.005)
        stream.push_event("incoming call", source="phone")
        stream.push("Play songs now", final=True)
        stream.push_event("after the end", source="phone")

    task = asyncio.create_task(app())
    seen = [u.text async for u in stream]
    await task
    assert seen == ["Play", "Play songs", "incoming call", "Play songs now"]
    assert [u.text async for u in stream.follow(after_seq=2)] == [
        "incoming call",
        "Play songs now",
    ]
    assert [u async for u in stream.follow(after_seq=4)] == []  # the final was seen
    assert [u async for u in stream.follow(after_seq=5)] == []


async def test_iteration_stops_on_close_without_final() -> None:
    stream = InputStream()

    async def app() -> None:
        stream.push("half a sentence")
        await asyncio.sleep(0.01)
        stream.close()

    task = asyncio.create_task(app())
    assert [u.text async for u in stream] == ["half a sentence"]
    await task


async def test_ledger_records_every_update_in_order() -> None:
    ledger = CallLedger()
    ledger.create("c1", "search", {"q": "x"}, safe=True)
    stream = InputStream(ledger=ledger)
    assert stream.ledger is ledger
    pushed = [
        stream.push("Book"),
        stream.push_event("new mail", source="mail"),
        stream.push('Book a table for 两人 "tonight"\nplease'),
        stream.push("Book a table for two tonight", final=True),
    ]
    assert list(ledger.inputs) == pushed == stream.updates()
    assert len(ledger) == 1  # inputs are not calls


async def test_snapshot_round_trip_with_inputs() -> None:
    ledger = CallLedger()
    stream = InputStream(ledger=ledger)
    stream.push("Wie ist das Wetter")
    stream.push_event("location: Berlin", source="gps")
    stream.push("Wie ist das Wetter in Berlin?", final=True)
    snap = json.loads(json.dumps(ledger.snapshot()))
    assert [i["seq"] for i in snap["inputs"]] == [1, 2, 3]
    restored = CallLedger.from_snapshot(snap)
    assert restored.inputs == ledger.inputs == tuple(stream.updates())
    # a stream on the restored ledger continues its numbering (a resumed run, a new turn)
    resumed = InputStream(ledger=restored)
    assert resumed.updates() == [] and resumed.last_seq == 3
    assert resumed.push("Und morgen?", final=True).seq == 4
    assert [i.seq for i in restored.inputs] == [1, 2, 3, 4]


async def test_a_ledger_refusal_leaves_the_stream_unchanged() -> None:
    ledger = CallLedger()
    stream = InputStream(ledger=ledger)
    stream.push("one")
    ledger.record_input(InputRecord(7, "recorded elsewhere", at=time.time()))
    with pytest.raises(SpeculativeError, match="seq must increase"):
        stream.push("two")
    assert stream.last_seq == 1 and len(stream.updates()) == 1


async def test_repr() -> None:
    stream = InputStream()
    assert repr(stream) == "<InputStream open updates=0 last_seq=0>"
    stream.push("x", final=True)
    assert repr(stream) == "<InputStream final updates=1 last_seq=1>"
