"""A user speaking, and what a listening model can know from it so far.

This module simulates the input side of ``bench speculative`` (``BENCHMARKS.md`` section 2):

- :func:`speech_updates` streams a request as partial transcripts: English word by word at
  ``wpm`` words per minute, Chinese character by character at ``cps`` characters per
  second, then a final update;
- :func:`call_knowledge` says what a model can know of a ground-truth call from a partial
  transcript: the call is *known* once every argument value a user must say appears in
  it (case-insensitive; whole words for Latin text, any position for Chinese; numbers as
  digits, with thousands separators, or as English words; flags and ``None`` are inferred,
  not said); a call is *premature* when its only missing value is a string whose beginning
  the transcript ends with (``"Taylor"`` of ``"Taylor Swift"``, cut on a word boundary;
  Chinese is cut by characters): a model that jumps the gun calls it with the cut value
  and must revise it later. A call with no value to say is never known from a partial
  transcript (only the final input tells that the user wants it).

Example:
    ```python
    from langgraph_speculative.integrations.sim.speech import call_knowledge, speech_updates

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

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Knowledge", "SpeechUpdate", "call_knowledge", "is_cjk_text", "speech_updates"]

_CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK = re.compile(f"[{_CJK_RANGES}]")
# a letter or digit of a space-separated script (not CJK, not "_"): what a word is made of
_WORD_CHAR = f"[^\\W_{_CJK_RANGES}]"
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
    """Tell whether ``text`` is mostly Chinese (streamed character by character).

    Args:
        text: Any text.

    Returns:
        ``True`` when more than 30% of its non-space characters are CJK ideographs.
    """
    letters = [c for c in text if not c.isspace()]
    return bool(letters) and sum(1 for c in letters if _CJK.match(c)) / len(letters) > 0.3


def speech_updates(text: str, *, wpm: float = 150.0, cps: float = 4.0) -> list[SpeechUpdate]:
    """Stream ``text`` as partial transcripts, then a final update.

    English is streamed word by word at ``wpm``, Chinese character by character at ``cps``.
    The final update comes one unit after the last partial one.

    Args:
        text: The whole request.
        wpm: English words per minute.
        cps: Chinese characters per second.

    Returns:
        The updates, in time order; the last one is final and holds ``text``.

    Raises:
        ValueError: On empty text or a rate that is not a finite number > 0.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("cannot stream an empty request")
    for name, rate in (("wpm", wpm), ("cps", cps)):
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
            raise ValueError(f"{name} must be a number > 0, got {rate!r}")
        if not math.isfinite(rate):
            raise ValueError(f"{name} must be finite, got {rate!r}")
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


def _bounded(text: str) -> str:
    """A pattern finding ``text`` as whole words (Latin ends must not continue a word)."""
    head = f"(?<!{_WORD_CHAR})" if re.match(_WORD_CHAR, text[:1]) else ""
    tail = f"(?!{_WORD_CHAR})" if re.match(_WORD_CHAR, text[-1:]) else ""
    return head + re.escape(text) + tail


def _sayable(value: Any) -> bool:
    """Whether a user has to say ``value`` (flags, ``None`` and empty text are inferred)."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple):
        return any(_sayable(v) for v in value)
    if isinstance(value, Mapping):
        return any(_sayable(v) for v in value.values())
    return isinstance(value, int | float)


def _appears(value: Any, said: str) -> bool:
    if isinstance(value, bool) or value is None:
        return True  # flags and defaults are inferred, not said
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return False
        return any(
            re.search(f"(?<![.]){_bounded(f)}(?![.]?[0-9])", said) for f in _number_forms(value)
        )
    if isinstance(value, str):
        return re.search(_bounded(_norm(value)), said) is not None if value.strip() else True
    if isinstance(value, list | tuple):
        return all(_appears(v, said) for v in value)
    if isinstance(value, Mapping):
        return all(_appears(v, said) for v in value.values())
    return True


def _cut(value: str, said: str) -> str | None:
    """The beginning of ``value`` the transcript ends with (a proper prefix), if any."""
    target = _norm(value)
    if is_cjk_text(value):
        spoken = " ".join(value.split())  # as normalised, case kept
        for k in range(len(target) - 1, 0, -1):
            if said.endswith(target[:k]):
                return spoken[:k]
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

    A call with no value a user must say (no arguments, or only flags) is known only once
    the transcript is final, which the caller decides: here it is never known.

    Args:
        args: The ground-truth arguments of the call.
        transcript: The transcript so far.

    Returns:
        Whether the call is known, and its premature arguments if it can be cut.
    """
    said = _norm(transcript)
    if not said or not any(_sayable(v) for v in args.values()):
        return Knowledge(False)
    missing = [k for k, v in args.items() if not _appears(v, said)]
    if not missing:
        return Knowledge(True)
    if len(missing) == 1 and isinstance(args[missing[0]], str):
        cut = _cut(args[missing[0]], said)
        if cut is not None:
            return Knowledge(False, {**args, missing[0]: cut})
    return Knowledge(False)
