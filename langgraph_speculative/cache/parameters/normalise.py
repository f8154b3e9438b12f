r"""Normalising parameter text: values that compare equal, and offset-keeping folding.

:func:`normalise_value` is how an extracted value and a gold one are compared (and what
:attr:`~langgraph_speculative.cache.parameters.extractor.Parameter.value` holds):
full-width to half-width, Chinese and English numerals to digits, lower case, "5 pm" to
"5pm". :func:`fold` is the length-preserving variant the detectors and the tagger match
on, so an offset in the folded text is an offset in the request.

Example:
    ```python
    from langgraph_speculative.cache.parameters.normalise import fold, normalise_value

    assert normalise_value("第十五集") == "第15集"
    assert fold("\uff23\uff23\uff34\uff36\uff15 News") == "cctv5 news"  # same length, same offsets
    ```
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "CN_NUMERAL_CHARS",
    "EN_NUMBER_RE",
    "cn_numeral_spans",
    "fold",
    "normalise_value",
]

_CN_DIGITS = {
    "零": 0,
    "\u3007": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000}
CN_NUMERAL_CHARS = frozenset(_CN_DIGITS) | frozenset(_CN_UNITS) | frozenset(_CN_BIG)
"""The characters of Chinese numerals: digits (零 to 九, 两), units (十, 百, 千), 万 and 亿."""
_CN_NUM_RUN = re.compile("[零\u3007一二两三四五六七八九十百千万亿]+")
_CN_NUM_UNIT_AFTER = set("集期号点时分秒月日年岁路层章回楼度元块")
_EN_NUMBERS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
}
EN_NUMBER_RE = re.compile(r"\b(" + "|".join(_EN_NUMBERS) + r")\b", re.IGNORECASE)
"""English number words (``one`` to ``twenty``, the tens, ``hundred``), any case."""
_AMPM_RE = re.compile(r"(\d)\s*(?::00)?\s*([ap])\.?\s*m\b\.?", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def _cn_number(run: str) -> int | None:
    """The value of a Chinese numeral, or ``None`` if ``run`` is not a well-formed one."""
    if all(ch in _CN_DIGITS for ch in run):
        if len(run) == 1:
            return _CN_DIGITS[run]
        return int("".join(str(_CN_DIGITS[ch]) for ch in run))  # 二零一九 -> 2019
    total = section = number = 0
    for ch in run:
        if ch in _CN_DIGITS:
            number = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            if number == 0 and ch == "十":
                number = 1
            section += number * _CN_UNITS[ch]
            number = 0
        else:
            section = (section + number) * _CN_BIG[ch]
            total += section
            section = number = 0
    return total + section + number


def cn_numeral_spans(text: str) -> list[tuple[int, int, int]]:
    """``(start, end, value)`` of the Chinese numerals of ``text`` that read as numbers.

    A run of numeral characters counts when it starts with a digit (or 十) and is two or
    more characters long, follows 第, or precedes a unit (集, 期, 号, 点, 月, 年...); so
    一起 and 一下 stay words while 第九集, 六十九, 三点 become numbers.

    Args:
        text: The text to scan (already NFKC-normalised or folded).

    Returns:
        ``(start, end, value)`` per numeral, in text order.
    """
    out: list[tuple[int, int, int]] = []
    for m in _CN_NUM_RUN.finditer(text):
        run, s, e = m.group(), m.start(), m.end()
        if run[0] not in _CN_DIGITS and run[0] != "十":
            continue
        after = text[e] if e < len(text) else ""
        before = text[s - 1] if s > 0 else ""
        if len(run) < 2 and before != "第" and after not in _CN_NUM_UNIT_AFTER:
            continue
        value = _cn_number(run)
        if value is not None:
            out.append((s, e, value))
    return out


def _strip_edges(text: str) -> str:
    start, end = 0, len(text)
    while start < end and (
        text[start].isspace() or unicodedata.category(text[start]).startswith("P")
    ):
        start += 1
    while end > start and (
        text[end - 1].isspace() or unicodedata.category(text[end - 1]).startswith("P")
    ):
        end -= 1
    return text[start:end]


def normalise_value(text: str) -> str:
    r"""Normalise a parameter value so equal values compare equal.

    Full-width characters become half-width (NFKC), letters lower case, whitespace is
    collapsed and trimmed with surrounding punctuation, Chinese numerals that read as
    numbers become digits (第九集 -> 第9集, 六十九 -> 69, 二零一九年 -> 2019年, 三点 -> 3点),
    English number words become digits ("five" -> "5") and clock times lose their
    spaces ("5 PM", "5:00 p.m." -> "5pm"). Idempotent.

    Args:
        text: A value as written (an extracted parameter or a gold slot value).

    Returns:
        The normalised value.

    Example:
        ```python
        from langgraph_speculative.cache.parameters.normalise import normalise_value

        assert normalise_value("第十五集") == normalise_value("第15集") == "第15集"
        assert normalise_value("\uff23\uff23\uff34\uff36\uff15 ") == "cctv5"  # full-width
        assert normalise_value("Five PM") == "5pm"
        ```
    """
    out = unicodedata.normalize("NFKC", text).lower()
    spans = cn_numeral_spans(out)
    if spans:
        pieces: list[str] = []
        last = 0
        for s, e, value in spans:
            pieces.append(out[last:s])
            pieces.append(str(value))
            last = e
        pieces.append(out[last:])
        out = "".join(pieces)
    out = EN_NUMBER_RE.sub(lambda m: str(_EN_NUMBERS[m.group(1).lower()]), out)
    out = _AMPM_RE.sub(lambda m: f"{m.group(1)}{m.group(2).lower()}m", out)
    out = _SPACES.sub(" ", out)
    return _strip_edges(out)


# --------------------------------------------------------------------------------------
# Length-preserving folding
# --------------------------------------------------------------------------------------

_FOLD = {cp: chr(cp - 0xFEE0).lower() for cp in range(0xFF01, 0xFF5F)}
_FOLD.update({0x3000: " "})
_FOLD.update({cp: chr(cp + 32) for cp in range(ord("A"), ord("Z") + 1)})


def fold(text: str) -> str:
    """Full-width ASCII to half-width and ASCII letters to lower case; keeps every offset.

    Args:
        text: Any text.

    Returns:
        The folded text, exactly as long as ``text`` (character ``k`` folds character
        ``k``).
    """
    return text.translate(_FOLD)
