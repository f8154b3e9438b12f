"""The parameter extractor's sequence tagger: per-character features and Viterbi decoding.

The tagger gives each character of a request a BIO tag (``O``, ``B-slot``, ``I-slot``)
with an averaged structured perceptron. This module holds what does not depend on the
learned weights' owner:

* :class:`Context`: a request with its detector spans, per-position detector marks and
  jieba POS marks;
* :func:`position_features`: the features of each position (characters around it, the
  character types, the POS flag and word, the detector marks; and, when the intent is
  known, some of them conjoined with it);
* :func:`transition_mask`, :func:`emission`, :func:`viterbi` and :func:`decode`: the
  best tag path under the weights, where ``I-slot`` only follows ``B-slot`` or
  ``I-slot``;
* :func:`spans_of`: the ``(start, end, slot)`` spans of a tag path.

The training loop and the feature index live with
:class:`~langgraph_speculative.cache.parameters.extractor.ParameterExtractor`.

Example:
    ```python
    import numpy as np

    from langgraph_speculative.cache.parameters.tagger import decode, spans_of, transition_mask

    tags = ["O", "B-city", "I-city"]
    weights = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]])  # feature k -> tag k
    ids = [[0], [1], [2], [0]]  # positions' feature ids
    path = decode(ids, np.arange(3), weights, np.zeros((3, 3)), np.zeros(3), transition_mask(tags))
    assert path == [0, 1, 2, 0] and spans_of(path, tags, "去北京吧") == [(1, 3, "city")]
    ```
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np

from langgraph_speculative.cache.parameters.detectors import Span
from langgraph_speculative.cache.parameters.normalise import CN_NUMERAL_CHARS

__all__ = [
    "Context",
    "decode",
    "emission",
    "position_features",
    "spans_of",
    "transition_mask",
    "viterbi",
]

_NEG = -1e9


@dataclass
class Context:
    """A request as the tagger reads it.

    Attributes:
        text: The request.
        folded: Its folded form (same length).
        spans: Every detector span (they may overlap across detectors).
        marks: Per position, the detector features (``"source:tag:BIES"``) of the spans
            other than jieba's that cover it.
        pos: Per position, ``("flag:BIES", word)`` from jieba.
    """

    text: str
    folded: str
    spans: list[Span]
    marks: list[list[str]]
    pos: list[tuple[str, str]]


def _char_type(ch: str) -> str:
    if "\u4e00" <= ch <= "\u9fff":
        return "N" if ch in CN_NUMERAL_CHARS else "H"
    if ch.isdigit():
        return "D"
    if ch.isalpha():
        return "U" if ch.isupper() else "L"
    if ch.isspace():
        return "S"
    return "P"


def position_features(ctx: Context, label: str | None) -> list[tuple[list[str], list[str]]]:
    """Per position: (features without the intent, features conjoined with it).

    Args:
        ctx: The request's context.
        label: Its intent label, or ``None`` (then the conjoined lists are empty).

    Returns:
        One ``(base, conjoined)`` pair of feature-name lists per character.
    """
    s = ctx.folded
    n = len(s)
    pad = "\x02\x02" + s + "\x03\x03"
    types = "".join(_char_type(ch) for ch in ctx.text)
    tpad = "^" + types + "$"
    out: list[tuple[list[str], list[str]]] = []
    for i in range(n):
        j = i + 2
        c0, cm1, cm2, cp1, cp2 = pad[j], pad[j - 1], pad[j - 2], pad[j + 1], pad[j + 2]
        flag, word = ctx.pos[i]
        base = [
            "b",
            "c0=" + c0,
            "c-1=" + cm1,
            "c-2=" + cm2,
            "c+1=" + cp1,
            "c+2=" + cp2,
            "b-1=" + cm1 + c0,
            "b+1=" + c0 + cp1,
            "b-2=" + cm2 + cm1,
            "b+2=" + cp1 + cp2,
            "t=" + cm1 + c0 + cp1,
            "ty=" + tpad[i : i + 3],
            "p=" + flag,
        ]
        if word:
            base.append("w=" + word)
        base.extend(ctx.marks[i])
        conj: list[str] = []
        if label is not None:
            lab = "L=" + label + "|"
            conj = [
                lab,
                lab + "c0=" + c0,
                lab + "c-1=" + cm1,
                lab + "c+1=" + cp1,
                lab + "p=" + flag,
            ]
            conj.extend(lab + m for m in ctx.marks[i])
        out.append((base, conj))
    return out


def transition_mask(tags: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The hard constraints of a tag set: ``I-slot`` only after ``B-slot`` or ``I-slot``.

    Args:
        tags: The tag names (``"O"``, ``"B-slot"``, ``"I-slot"``...).

    Returns:
        ``(transitions, start)``: additive masks, 0 where allowed and -1e9 where not.
    """
    t = len(tags)
    trans = np.zeros((t, t), dtype=np.float64)
    start = np.zeros(t, dtype=np.float64)
    for j, tag in enumerate(tags):
        if tag.startswith("I-"):
            start[j] = _NEG
            slot = tag[2:]
            for i, prev in enumerate(tags):
                if prev[2:] != slot or prev == "O":
                    trans[i, j] = _NEG
    return trans, start


def emission(ids: list[list[int]], weights: np.ndarray) -> np.ndarray:
    """Per position and tag, the sum of the weights of the position's features.

    Args:
        ids: Per position, the indexes of its features.
        weights: ``(features, tags)`` weights.

    Returns:
        ``(len(ids), tags)`` scores (float64).
    """
    lengths = [len(x) for x in ids]
    flat = np.fromiter((f for x in ids for f in x), dtype=np.int64, count=sum(lengths))
    if flat.size == 0:
        return np.zeros((len(ids), weights.shape[1]), dtype=np.float64)
    rows = weights[flat].astype(np.float64, copy=False)
    offsets = np.zeros(len(ids), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    summed = np.add.reduceat(rows, np.minimum(offsets, flat.size - 1), axis=0)
    summed[np.array(lengths) == 0] = 0.0
    return summed


def viterbi(emission: np.ndarray, trans: np.ndarray, start: np.ndarray) -> list[int]:
    """The best path through per-position tag scores.

    Args:
        emission: ``(n, tags)`` scores of each tag at each position.
        trans: ``(tags, tags)`` scores of each transition.
        start: ``(tags,)`` scores of each tag at the first position.

    Returns:
        The tag index at each position.
    """
    n = emission.shape[0]
    score = start + emission[0]
    back = np.zeros((n, emission.shape[1]), dtype=np.int64)
    for i in range(1, n):
        cand = score[:, None] + trans
        best = cand.argmax(axis=0)
        back[i] = best
        score = cand[best, np.arange(cand.shape[1])] + emission[i]
    path = [int(score.argmax())]
    for i in range(n - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    path.reverse()
    return path


def decode(
    ids: list[list[int]],
    allowed: np.ndarray,
    weights: np.ndarray,
    trans: np.ndarray,
    start: np.ndarray,
    mask: tuple[np.ndarray, np.ndarray],
) -> list[int]:
    """The best tag path of a request among the allowed tags.

    Args:
        ids: Per position, the indexes of its features.
        allowed: The indexes of the tags that may be predicted.
        weights: ``(features, tags)`` weights.
        trans: ``(tags, tags)`` transition weights.
        start: ``(tags,)`` start weights.
        mask: :func:`transition_mask` of the tag set.

    Returns:
        The tag index (into the full tag set) at each position.
    """
    scores = emission(ids, weights)[:, allowed]
    sub_trans = (trans + mask[0])[np.ix_(allowed, allowed)]
    sub_start = (start + mask[1])[allowed]
    path = viterbi(scores, sub_trans, sub_start)
    return [int(allowed[k]) for k in path]


def spans_of(path: list[int], tags: list[str], text: str) -> list[tuple[int, int, str]]:
    """The slot spans of a tag path, trimmed of spaces and punctuation.

    An ``I-slot`` that does not continue a span of its slot starts one. A span that
    would cut a run of ASCII letters and digits is dropped.

    Args:
        path: The tag index at each position.
        tags: The tag names.
        text: The request.

    Returns:
        ``(start, end, slot)`` per span, in text order.
    """
    spans: list[tuple[int, int, str]] = []
    cur: list[Any] | None = None
    for i, k in enumerate(path):
        tag = tags[k]
        if tag.startswith("B-") or (tag.startswith("I-") and (cur is None or cur[2] != tag[2:])):
            if cur is not None:
                spans.append((cur[0], cur[1], cur[2]))
            cur = [i, i + 1, tag[2:]]
        elif tag.startswith("I-") and cur is not None:
            cur[1] = i + 1
        else:
            if cur is not None:
                spans.append((cur[0], cur[1], cur[2]))
            cur = None
    if cur is not None:
        spans.append((cur[0], cur[1], cur[2]))
    out: list[tuple[int, int, str]] = []
    for s, e, slot in spans:
        while s < e and (text[s].isspace() or unicodedata.category(text[s]).startswith("P")):
            s += 1
        while e > s and (
            text[e - 1].isspace() or unicodedata.category(text[e - 1]).startswith("P")
        ):
            e -= 1
        if e > s and not _splits_word(text, s) and not _splits_word(text, e):
            out.append((s, e, slot))
    return out


def _splits_word(text: str, k: int) -> bool:
    """Whether offset ``k`` falls inside a run of ASCII letters and digits."""
    return 0 < k < len(text) and all(ch.isascii() and ch.isalnum() for ch in (text[k - 1], text[k]))
