"""Simulated speech: pacing of partial transcripts, and what a model can know from them."""

from __future__ import annotations

import math

import pytest

from langgraph_speculative.integrations.sim.speech import (
    Knowledge,
    call_knowledge,
    is_cjk_text,
    speech_updates,
)


def test_english_is_streamed_word_by_word_at_wpm() -> None:
    updates = speech_updates("Play  Taylor Swift now", wpm=120)
    assert [u.text for u in updates] == [
        "Play",
        "Play  Taylor",
        "Play  Taylor Swift",
        "Play  Taylor Swift now",
        "Play  Taylor Swift now",
    ]
    assert [u.final for u in updates] == [False] * 4 + [True]
    assert [u.at_s for u in updates] == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5])


def test_chinese_is_streamed_character_by_character_at_cps() -> None:
    updates = speech_updates("订 北京的票", cps=4)
    assert is_cjk_text("订 北京的票")
    assert [u.text for u in updates[:-1]] == ["订", "订 北", "订 北京", "订 北京的", "订 北京的票"]
    assert updates[-1].final and updates[-1].text == "订 北京的票"
    assert [u.at_s for u in updates] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.25, 1.5])
    # the other rate does not matter
    assert [u.at_s for u in speech_updates("订北京的票", wpm=1, cps=4)][-1] == pytest.approx(1.5)


def test_single_word_and_times_increase() -> None:
    updates = speech_updates("Hello", wpm=6000)
    assert [(u.text, u.final) for u in updates] == [("Hello", False), ("Hello", True)]
    assert updates[0].at_s < updates[1].at_s


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        speech_updates(text)


@pytest.mark.parametrize(
    ("wpm", "cps"), [(0, 4), (-1, 4), (150, 0), (math.nan, 4), (150, math.inf), (True, 4)]
)
def test_bad_rates_are_refused(wpm: float, cps: float) -> None:
    with pytest.raises(ValueError, match=r"wpm|cps"):
        speech_updates("hello there", wpm=wpm, cps=cps)


def test_is_cjk_text() -> None:
    assert not is_cjk_text("Play Taylor Swift")
    assert is_cjk_text("帮我订一张去Beijing的票")
    assert not is_cjk_text("")


# -- call_knowledge ------------------------------------------------------------------------


def test_known_once_every_value_was_said() -> None:
    args = {"artist": "Taylor Swift", "duration": 20}
    assert call_knowledge(args, "Play Taylor Swift for twenty").known
    assert call_knowledge(args, "PLAY taylor swift FOR 20 minutes").known  # case-insensitive
    assert not call_knowledge(args, "Play Taylor Swift for").known
    assert not call_knowledge(args, "").known


@pytest.mark.parametrize(
    ("value", "said", "known"),
    [
        (20, "for 20 minutes", True),
        (20, "for twenty minutes", True),
        (20, "for 120 minutes", False),
        (20, "for 20.5 minutes", False),
        (20, "for 20.", True),
        (2.5, "2.5 kg", True),
        (1000, "send 1,000 dollars", True),
        (1000, "send 1000 dollars", True),
        (7, "Seven days", True),
        (3, "订3张票", True),  # digits inside Chinese text
        (3, "订13张票", False),
    ],
)
def test_numbers_as_digits_or_words(value: float, said: str, known: bool) -> None:
    assert call_knowledge({"n": value}, said).known is known


def test_strings_match_whole_words_for_latin_text() -> None:
    assert not call_knowledge({"city": "Rome"}, "Romeo and Juliet").known
    assert call_knowledge({"city": "Rome"}, "weather in rome, please").known
    assert call_knowledge({"city": "北京"}, "去北京的票").known  # any position in Chinese


def test_flags_and_defaults_are_ignored() -> None:
    args = {"city": "Paris", "metric": True, "lang": None, "note": ""}
    assert call_knowledge(args, "weather in Paris").known
    assert call_knowledge({"cities": ["Paris", "Rome"]}, "Paris and Rome").known
    assert not call_knowledge({"cities": ["Paris", "Rome"]}, "Paris and").known
    assert call_knowledge({"where": {"city": "Paris"}}, "in Paris").known


def test_a_call_with_nothing_to_say_is_never_known_early() -> None:
    assert call_knowledge({}, "what time is it") == Knowledge(False)
    assert call_knowledge({"verbose": True}, "what time is it") == Knowledge(False)


def test_premature_cut_on_a_word_boundary() -> None:
    args = {"artist": "Taylor Swift", "n": 5}
    k = call_knowledge(args, "play 5 songs by Taylor")
    assert not k.known
    assert k.premature == {"artist": "Taylor", "n": 5}
    # the transcript ends inside a word: no cut
    assert call_knowledge({"artist": "Taylor Swift"}, "play Tay").premature is None
    assert call_knowledge({"artist": "Taylor Swift"}, "play MyTaylor").premature is None
    # the case of the value is kept
    assert call_knowledge({"city": "New York City"}, "fly to new york").premature == {
        "city": "New York"
    }
    # two values missing: not premature
    assert call_knowledge({"a": "Taylor Swift", "n": 5}, "play Taylor").premature is None
    # a number cannot be cut
    assert call_knowledge({"n": 25}, "play 2").premature is None


def test_chinese_is_cut_by_characters() -> None:
    assert call_knowledge({"city": "北京市"}, "订去北").premature == {"city": "北"}
    assert call_knowledge({"city": "北京市"}, "订去北京").premature == {"city": "北京"}
    assert call_knowledge({"city": "北京市"}, "订去北京市").known
