"""A user speaking, and what a listening model can know from it so far.

This module simulates the input side of ``bench speculative`` (``BENCHMARKS.md`` section 2):

- :func:`speech_updates` streams a request as partial transcripts: English word by word at
  ``wpm`` words per minute, Chinese character by character at ``cps`` characters per
  second, then a final update;
- :func:`call_knowledge` says what a model can know of a ground-truth call from a partial
  transcript: the call is *known* once every argument value a user must say appears in
  it (case-insensitive; numbers as digits or as English words); a call is *premature* when
  its only missing value is a string whose beginning the transcript ends with (``"Taylor"``
  of ``"Taylor Swift"``): a model that jumps the gun calls it with the cut value and must
  revise it later.

Example:
    ```python
    from langgraph_speculative.integrations.simulated_speech import call_knowledge, speech_updates

    updates = speech_updates("Play Taylor Swift for 20 minutes", wpm=150)
    assert updates[-1].final and updates[-1].text == "Play Taylor Swift for 20 minutes"
    args = {"artist": "Taylor Swift", "duration": 20}
    assert not call_knowledge(args, "Play Taylor").known  # nothing said of the duration yet
    assert call_knowledge(args, "Play Taylor Swift for 20").known
    cut = call_knowledge({"artist": "Taylor Swift"}, "Play Taylor")
    assert cut.premature == {"artist": "Taylor"}
    ```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Knowledge", "SpeechUpdate", "call_knowledge", "is_cjk_text", "speech_updates"]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NUMBER_WORDS = {
    0: "zero", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven",
    8: "eight", 9: "nine", 10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen",
    14: "fourteen", 15: "fifteen", 16: "sixteen", 17: "seventeen", 18: "eighteen",
    19: "nineteen", 20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty",
    70: "seventy", 80: "eighty", 90: "ninety", 100: "hundred",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SpeechUpdate:
    """One transcript update.

    Attributes:
        at_s: Seconds after the user started speaking.
        text: The whole transcript so far.
        final: Whether the user has finished.
    """

    at_s: float
    text: str
    final: bool


def is_cjk_text(text: str) -> bool:
    """Whether ``text`` is mostly Chinese (streamed character by character)."""
    letters = [c for c in text if not c.isspace()]
    return bool(letters) and sum(1 for c in letters if _CJK.match(c)) / len(letters) > 0.3


def speech_updates(text: str, *, wpm: float = 150.0, cps: float = 4.0) -> list[SpeechUpdate]:
    """Stream ``text`` as partial transcripts, then a final update.

    English is streamed word by word at ``wpm``, Chinese character by character at ``cps``.
    The final update comes one unit after the last partial one.

    Raises:
        ValueError: On empty text or a non-positive rate.
    """
    if not text.strip():
        raise ValueError("cannot stream an empty request")
    if wpm <= 0 or cps <= 0:
        raise ValueError(f"speaking rates must be > 0 (wpm={wpm}, cps={cps})")
    if is_cjk_text(text):
        step = 1.0 / cps
        units = [text[: i + 1] for i in range(len(text)) if not text[i].isspace()]
    else:
        step = 60.0 / wpm
        ends = [m.end() for m in re.finditer(r"\S+", text)]
        units = [text[:e] for e in ends]
    out = [SpeechUpdate(round((i + 1) * step, 6), u, False) for i, u in enumerate(units)]
    out.append(SpeechUpdate(round((len(units) + 1) * step, 6), text, True))
    return out


@dataclass(frozen=True, slots=True)
class Knowledge:
    """What a model can know of one call from a partial transcript.

    Attributes:
        known: Every value the user must say has been said.
        premature: Arguments with one string value cut at the transcript's end (``None``
            if the transcript does not end inside the only missing value).
    """

    known: bool
    premature: dict[str, Any] | None = None


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _number_forms(value: float) -> list[str]:
    forms = [repr(value), str(value)]
    if float(value).is_integer():
        n = int(value)
        forms += [str(n), f"{n:,}"]
        if n in _NUMBER_WORDS:
            forms.append(_NUMBER_WORDS[n])
    return forms


def _appears(value: Any, said: str) -> bool:
    if isinstance(value, bool) or value is None:
        return True  # flags and defaults are inferred, not said
    if isinstance(value, int | float):
        return any(
            re.search(rf"(?<![\w.]){re.escape(f)}(?![\w])", said) for f in _number_forms(value)
        )
    if isinstance(value, str):
        return _norm(value) in said if value.strip() else True
    if isinstance(value, list | tuple):
        return all(_appears(v, said) for v in value)
    if isinstance(value, Mapping):
        return all(_appears(v, said) for v in value.values())
    return True


def _cut(value: str, said: str) -> str | None:
    """The beginning of ``value`` the transcript ends with (a proper prefix), if any."""
    target = _norm(value)
    if is_cjk_text(value):
        for k in range(len(target) - 1, 0, -1):
            if said.endswith(target[:k]):
                return value.strip()[:k]
        return None
    words = value.split()
    lowered = target.split()
    for k in range(len(words) - 1, 0, -1):
        if said.endswith(" ".join(lowered[:k])) and (
            len(said) == len(" ".join(lowered[:k])) or said[-len(" ".join(lowered[:k])) - 1] == " "
        ):
            return " ".join(words[:k])
    return None


def call_knowledge(args: Mapping[str, Any], transcript: str) -> Knowledge:
    """What a model can know of a call with ``args`` from ``transcript`` (see module docs).

    A call with no value a user must say is known only once the transcript is final (the
    caller decides that); here it is reported known when any text was said.
    """
    said = _norm(transcript)
    if not said:
        return Knowledge(False)
    missing = [k for k, v in args.items() if not _appears(v, said)]
    if not missing:
        return Knowledge(True)
    if len(missing) == 1 and isinstance(args[missing[0]], str):
        cut = _cut(args[missing[0]], said)
        if cut is not None:
            return Knowledge(False, {**args, missing[0]: cut})
    return Knowledge(False)
