"""Span detectors of the parameter extractor: dates and times, numbers, names, jieba POS.

Each detector marks candidate parameter spans of a request as :class:`Span` objects; the
extractor's tagger reads them as features and returns those it left alone as fallback
parameters:

* :func:`time_spans`: English rules ("tomorrow", "May 5", "5pm") and, for Chinese text,
  JioNLP's rule-based time extractor (imported on first use);
* :func:`number_spans`: Arabic, Chinese and English numerals;
* :func:`capitalised_spans`: capitalised English names (a place after "from", "to"...);
* :class:`PosTagger`: jieba part-of-speech tags (``ns`` places, ``nr`` person names),
  with a private tokenizer that knows the gazetteers' places.

Gazetteer and learned-value spans come from a
:class:`~langgraph_speculative.cache.parameters.gazetteers.Matcher`.

Example:
    ```python
    from langgraph_speculative.cache.parameters.detectors import capitalised_spans, number_spans

    text = "Book 2 seats to Paris"
    assert [(s.start, s.end) for s in number_spans(text, text.lower())] == [(5, 6)]
    assert [(text[s.start : s.end], s.kind) for s in capitalised_spans(text)] == [
        ("Paris", "place")]
    ```
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph_speculative.cache.parameters.gazetteers import Matcher
from langgraph_speculative.cache.parameters.normalise import EN_NUMBER_RE, cn_numeral_spans

__all__ = [
    "PosTagger",
    "Span",
    "bies",
    "capitalised_spans",
    "non_overlapping",
    "number_spans",
    "time_spans",
]

_log = logging.getLogger(__name__)

_EN_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_EN_DAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_EN_TIME_RE = re.compile(
    "|".join(
        [
            r"\b(?:the\s+)?day\s+after\s+tomorrow\b",
            r"\b(?:tomorrow|today|tonight|yesterday)(?:\s+(?:morning|afternoon|evening|night))?\b",
            rf"\b(?:next|this|last)\s+(?:week(?:end)?|month|year|{_EN_DAY})\b",
            rf"\b{_EN_DAY}\b",
            rf"\b{_EN_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b",
            rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_EN_MONTH}\b(?:,?\s+\d{{4}})?",
            r"\b\d{4}-\d{1,2}-\d{1,2}\b",
            r"\b\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)",
            r"\b\d{1,2}:\d{2}\b",
            r"\b\d+\s+(?:minutes?|hours?|days?|weeks?|months?)\s+(?:from\s+now|later|ago)\b",
            r"\b(?:in\s+)\d+\s+(?:minutes?|hours?|days?|weeks?)\b",
        ]
    ),
    re.IGNORECASE,
)
_ARABIC_RE = re.compile(r"\d+(?:[.,:]\d+)*")
_CAP_RE = re.compile(r"[A-Z][a-zA-Z'\-]*(?:\s+(?:[A-Z][a-zA-Z'\-]*))*")
_EN_STOP = frozenset(
    [
        "i",
        "the",
        "a",
        "an",
        "please",
        "book",
        "play",
        "show",
        "find",
        "call",
        "send",
        "open",
        "what",
        "how",
        "when",
        "where",
        "who",
        "which",
        "tell",
        "get",
        "give",
        "search",
        "look",
        "set",
        "turn",
        "can",
        "could",
        "would",
        "will",
        "is",
        "are",
        "do",
        "does",
        "let",
        "navigate",
        "take",
        "translate",
        "check",
        "buy",
        "order",
        "reserve",
        "text",
        "message",
        "email",
        "dial",
        "remind",
        "my",
        "hey",
        "hi",
        "hello",
        "go",
        "add",
        "create",
        "start",
        "launch",
        "listen",
        "and",
        "or",
        "from",
        "to",
        "in",
        "at",
        "on",
        "for",
        "with",
        "me",
        "is",
        "it",
        "this",
        "that",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "today",
        "tomorrow",
        "tonight",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "next",
        "last",
    ]
)
_POS_KINDS = {"ns": "place", "nsf": "place", "nr": "name", "nrfg": "name", "nrt": "name"}
_PLACE_PREP = frozenset({"from", "to", "in", "at", "near", "towards", "into", "via"})
_TIME_HINT = re.compile(
    "[0-9零\u3007一二两三四五六七八九十天日号月年点分周星期礼拜早晚午夜今明后前昨现最刚凌晨宵时节]"
)


@dataclass(frozen=True)
class Span:
    """A candidate parameter span marked by a detector.

    Attributes:
        start: Offset of its first character.
        end: Offset just past its last character.
        source: The detector: ``"gaz"`` (gazetteer), ``"val"`` (learned value),
            ``"time"``, ``"num"``, ``"cap"`` (capitalised name) or ``"pos"`` (jieba).
        tag: What the detector says: the gazetteer's name, the slot, the POS flag, the
            rule set (``"en"``, ``"zh"``, ``"arabic"``)...
        kind: The parameter kind (``"place"``, ``"time"``, ``"number"``, ``"name"`` or
            ``"value"``).
    """

    start: int
    end: int
    source: str
    tag: str
    kind: str


_JIONLP: Any = None
_JIONLP_LOCK = threading.Lock()


def _jionlp() -> Any:
    global _JIONLP
    if _JIONLP is None:
        with _JIONLP_LOCK:
            if _JIONLP is None:
                with contextlib.redirect_stdout(io.StringIO()):
                    import jionlp

                _JIONLP = jionlp
    return _JIONLP


def time_spans(text: str, folded: str) -> list[Span]:
    """Dates and times: English rules on ``text``, JioNLP on Chinese ``folded`` text.

    Args:
        text: The request.
        folded: Its folded form (:func:`~langgraph_speculative.cache.parameters.normalise.fold`).

    Returns:
        Non-overlapping ``time`` spans (longest kept), in text order.
    """
    spans: list[Span] = []
    for m in _EN_TIME_RE.finditer(text):
        spans.append(Span(m.start(), m.end(), "time", "en", "time"))
    if _TIME_HINT.search(folded) and re.search("[\u4e00-\u9fff]", folded):
        try:
            found = _jionlp().ner.extract_time(folded, time_base=time.time(), with_parsing=False)
        except Exception:  # pragma: no cover - JioNLP failing on odd input is not fatal
            _log.debug("jionlp.extract_time failed on %r", folded, exc_info=True)
            found = []
        for item in found:
            s, e = item["offset"]
            if 0 <= s < e <= len(text):
                spans.append(Span(int(s), int(e), "time", "zh", "time"))
    return non_overlapping(spans)


def number_spans(text: str, folded: str) -> list[Span]:
    """Numbers: Arabic numerals, Chinese numerals that read as numbers, English words.

    Args:
        text: The request.
        folded: Its folded form.

    Returns:
        Non-overlapping ``num`` spans (longest kept), in text order.
    """
    spans = [
        Span(m.start(), m.end(), "num", "arabic", "number") for m in _ARABIC_RE.finditer(folded)
    ]
    spans += [Span(s, e, "num", "zh", "number") for s, e, _ in cn_numeral_spans(folded)]
    spans += [Span(m.start(), m.end(), "num", "en", "number") for m in EN_NUMBER_RE.finditer(text)]
    return non_overlapping(spans)


def capitalised_spans(text: str) -> list[Span]:
    """Capitalised English words, trimmed of stop words: names, or places after a preposition.

    Args:
        text: The request (not folded: the capitals matter).

    Returns:
        ``cap`` spans of kind ``"place"`` (after "from", "to", "in"...) or ``"name"``.
    """
    spans: list[Span] = []
    for m in _CAP_RE.finditer(text):
        if m.start() > 0 and text[m.start() - 1].isalnum():
            continue
        words = [
            (w.start() + m.start(), w.end() + m.start()) for w in re.finditer(r"\S+", m.group())
        ]
        while words and text[words[0][0] : words[0][1]].lower() in _EN_STOP:
            words.pop(0)
        while words and text[words[-1][0] : words[-1][1]].lower() in _EN_STOP:
            words.pop()
        if not words:
            continue
        s, e = words[0][0], words[-1][1]
        before = text[:s].rstrip().rsplit(None, 1)
        prev = before[-1].lower() if before else ""
        kind = "place" if prev in _PLACE_PREP else "name"
        spans.append(Span(s, e, "cap", kind, kind))
    return spans


def non_overlapping(spans: Iterable[Span]) -> list[Span]:
    """Keep the longest spans first, drop any that overlaps a kept one; text order.

    Args:
        spans: Spans that may overlap.

    Returns:
        The kept spans, sorted by start.
    """
    kept: list[Span] = []
    taken: set[int] = set()
    for sp in sorted(spans, key=lambda s: (-(s.end - s.start), s.start)):
        if any(i in taken for i in range(sp.start, sp.end)):
            continue
        kept.append(sp)
        taken.update(range(sp.start, sp.end))
    return sorted(kept, key=lambda s: s.start)


def bies(i: int, start: int, end: int) -> str:
    """The BIES position of offset ``i`` in the span ``[start, end)``.

    Args:
        i: An offset inside the span.
        start: The span's start.
        end: The span's end.

    Returns:
        ``"S"`` (single), ``"B"`` (begin), ``"I"`` (inside) or ``"E"`` (end).
    """
    if end - start == 1:
        return "S"
    if i == start:
        return "B"
    return "E" if i == end - 1 else "I"


class PosTagger:
    """jieba part-of-speech tagging with a private tokenizer that knows the gazetteers' places.

    The tokenizer is built on first use, with every entry (two characters or more) of the
    place gazetteers added as an ``ns`` word.

    Args:
        matcher: The gazetteers' matcher (its tags are gazetteer names).
        place_names: The place gazetteers, in the order their entries are added.
    """

    def __init__(self, matcher: Matcher, place_names: Sequence[str]) -> None:
        self._matcher = matcher
        self._place_names = tuple(place_names)
        self._lock = threading.Lock()
        self._pos_tokenizer: Any = None

    def tokenizer(self) -> Any:
        """The jieba POS tokenizer, built on first use (thread-safe).

        Returns:
            A ``jieba.posseg.POSTokenizer`` over a private ``jieba.Tokenizer`` that holds
            the place gazetteers' entries as ``ns`` words.
        """
        if self._pos_tokenizer is None:
            with self._lock:
                if self._pos_tokenizer is None:
                    import jieba
                    import jieba.posseg

                    logger = logging.getLogger("jieba")
                    level = logger.level
                    logger.setLevel(logging.WARNING)
                    try:
                        tokenizer = jieba.Tokenizer()
                        tokenizer.initialize()
                        pos = jieba.posseg.POSTokenizer(tokenizer)
                    finally:
                        logger.setLevel(level)
                    for name in self._place_names:
                        for entry in self._matcher.entries:
                            if name in self._matcher.entries[entry] and len(entry) > 1:
                                tokenizer.add_word(entry, tag="ns")
                    self._pos_tokenizer = pos
        return self._pos_tokenizer

    def marks(self, folded: str) -> tuple[list[tuple[str, str]], list[Span]]:
        """Tag folded text: a POS mark per position, and the places and names found.

        Args:
            folded: The folded request.

        Returns:
            ``(marks, spans)``: per position ``("flag:BIES", word)`` (the word only for
            words longer than one character; ``("", "")`` everywhere when jieba fails
            or its words do not tile the text), and ``pos`` spans of jieba's places
            (``ns``, ``nsf``) and person names (``nr``, ``nrfg``, ``nrt``), adjacent
            ones of a kind merged.
        """
        n = len(folded)
        pos: list[tuple[str, str]] = [("", "")] * n
        spans: list[Span] = []
        try:
            pairs = list(self.tokenizer().cut(folded))
        except Exception:  # pragma: no cover - jieba failing on odd input is not fatal
            return pos, spans
        i = 0
        for pair in pairs:
            word, flag = pair.word, pair.flag
            j = i + len(word)
            if j > n or folded[i:j] != word:
                return [("", "")] * n, []
            for k in range(i, j):
                pos[k] = (f"{flag}:{bies(k, i, j)}", word if j - i > 1 else "")
            kind = _POS_KINDS
            if flag in kind:
                if spans and spans[-1].end == i and spans[-1].kind == kind[flag]:
                    spans[-1] = Span(spans[-1].start, j, "pos", flag, kind[flag])  # 常胜|宾
                else:
                    spans.append(Span(i, j, "pos", flag, kind[flag]))
            i = j
        return pos, spans
