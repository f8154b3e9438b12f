"""Parameter extraction and stripping: find a request's key values, replace them by slots.

AgentReuse (arXiv 2512.21309) reuses a plan for "the same task with other parameters".
Before a request is embedded, its parameters (the cities, dates, names, numbers...) are
recognised and replaced by typed placeholders, so "帮我订后天从合肥到北京的火车票" and
"明天长沙到上海的火车票" both read "...<startDate_date>...<startLoc_city>到<endLoc_city>的火车票".

How :class:`ParameterExtractor` finds them:

* **Detectors** mark candidate spans: gazetteers (city, province, station, dish lists;
  longest match wins; :mod:`~langgraph_speculative.cache.parameters.gazetteers`), dates
  and times (JioNLP's rule-based extractor, plus English rules: "tomorrow", "May 5",
  "5pm"), numbers (Arabic and Chinese numerals), jieba part-of-speech tags (``ns``
  places, ``nr`` person names; a private tokenizer with the gazetteers added),
  capitalised English names (:mod:`~langgraph_speculative.cache.parameters.detectors`),
  and the slot values learned in :meth:`~ParameterExtractor.fit`.
* A **learned sequence tagger** decides which characters fill which slot (BIO tags, an
  averaged structured perceptron with Viterbi decoding). Its features are the
  characters around each position, the detectors' marks and, when the intent is known,
  the intent (conjoined with the context), so context decides the slot: in "从X到Y",
  X is ``startLoc_city`` and Y ``endLoc_city``. With an intent, only slots seen with
  that intent can be predicted. The learned-value marks of the training requests are
  computed from the *other* folds (jackknifing), so the tagger learns how far to trust a
  known value, not to copy it. Features and decoding:
  :mod:`~langgraph_speculative.cache.parameters.tagger`.
* **Fallback**: detector spans the tagger left alone (a date, a number, a gazetteer
  place, an English name) are still returned, under a generic slot (``datetime``,
  ``number``, the gazetteer's name, ``place``, ``name``) or the slot a learned value had.
  So an unfitted intent or an English request still gets its parameters stripped.

Values are normalised by
:func:`~langgraph_speculative.cache.parameters.normalise.normalise_value` (full-width to
half-width, Chinese numerals to digits, lower case, "5 pm" to "5pm"), which is also how
benchmarks compare an extracted value with a gold one.

Example:
    ```python
    from langgraph_speculative.cache.parameters.extractor import ParameterExtractor
    from langgraph_speculative.cache.training_data import LabelledRequest

    rows = [("明天从合肥到北京的火车票", "明天", "合肥", "北京"),
            ("帮我查后天长沙到上海的火车", "后天", "长沙", "上海"),
            ("我要订今天从广州去深圳的高铁票", "今天", "广州", "深圳"),
            ("南京到杭州明天的火车", "明天", "南京", "杭州"),
            ("查一下后天从武汉到成都的火车票", "后天", "武汉", "成都"),
            ("西安到重庆的动车今天还有吗", "今天", "西安", "重庆")]
    examples = [
        LabelledRequest(text, "train", "QUERY",
                        {"startDate_date": d, "startLoc_city": a, "endLoc_city": b})
        for text, d, a, b in rows
    ]
    extractor = ParameterExtractor(gazetteers={"city": ["合肥市", "北京市", "苏州市", "天津市"]})
    extractor.fit(examples)
    params, stripped = extractor.extract_and_strip("帮我订后天从苏州到天津的火车票", "train.QUERY")
    assert {p.slot: p.value for p in params} == {
        "startDate_date": "后天", "startLoc_city": "苏州", "endLoc_city": "天津"}
    assert stripped == "帮我订<startDate_date>从<startLoc_city>到<endLoc_city>的火车票"
    assert extractor.extract_and_strip("明天长沙到上海的火车票")[1] == (
        "<startDate_date><startLoc_city>到<endLoc_city>的火车票")
    ```
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np

from langgraph_speculative.cache._model_files import read_model_dir, write_model_dir
from langgraph_speculative.cache.parameters.detectors import (
    PosTagger,
    Span,
    bies,
    capitalised_spans,
    number_spans,
    time_spans,
)
from langgraph_speculative.cache.parameters.gazetteers import (
    Matcher,
    gazetteer_entries,
    gazetteer_kind,
    gazetteer_matcher,
    load_gazetteers,
)
from langgraph_speculative.cache.parameters.normalise import fold, normalise_value
from langgraph_speculative.cache.parameters.tagger import (
    Context,
    decode,
    position_features,
    spans_of,
    transition_mask,
)
from langgraph_speculative.cache.training_data import (
    LabelledRequest,
    SlotValue,
    check_request,
    slot_values,
)
from langgraph_speculative.errors import (
    CacheCorruptError,
    NotFittedError,
    RequestError,
)

__all__ = [
    "KINDS",
    "Parameter",
    "ParameterExtractor",
    "load_gazetteers",
    "normalise_value",
]

KINDS = ("place", "time", "number", "name", "value")
"""The kinds of parameter: where, when, how many, who (or what is named), anything else."""

_FORMAT = "langgraph_speculative.parameter_extractor"
_FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------
# The parameter
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One parameter found in a request.

    Attributes:
        slot: The slot it fills (``"startLoc_city"``, ``"datetime_date"``; generic
            ``"datetime"``, ``"number"``, ``"place"``, ``"name"`` or a gazetteer's name
            when no learned slot claimed it).
        kind: ``"place"``, ``"time"``, ``"number"``, ``"name"`` or ``"value"``.
        text: The parameter as written in the request (``text[start:end]``).
        value: The normalised value (:func:`normalise_value` of ``text``).
        start: Offset of its first character in the request.
        end: Offset just past its last character.

    Example:
        ```python
        from langgraph_speculative.cache.parameters.extractor import Parameter

        p = Parameter("episode", "number", "第十五集", "第15集", 2, 6)
        assert p.placeholder == "<episode>"
        ```
    """

    slot: str
    kind: str
    text: str
    value: str
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Parameter.kind must be one of {KINDS}, got {self.kind!r}")
        if not self.slot:
            raise ValueError("Parameter.slot must not be empty")
        if not (0 <= self.start < self.end) or self.end - self.start != len(self.text):
            raise ValueError(
                f"Parameter offsets [{self.start}, {self.end}) do not fit text {self.text!r}"
            )

    @property
    def placeholder(self) -> str:
        """The typed placeholder that replaces it in a stripped request: ``<slot>``."""
        return f"<{self.slot}>"


# --------------------------------------------------------------------------------------
# The extractor
# --------------------------------------------------------------------------------------


class ParameterExtractor:
    """Recognise a request's parameters (slot filling) and strip them to placeholders.

    Train it with :meth:`fit` on labelled requests (their ``slots`` are the gold
    parameters), then call :meth:`extract`, :meth:`strip` or :meth:`extract_and_strip`.
    Passing the request's intent label (``"train.QUERY"``) restricts the slots to those
    seen with that intent and sharpens the tagger; without it (``None``, or an intent the
    extractor never saw) all slots are possible.

    Args:
        gazetteers: Named lists of known values: ``{name: path or iterable of entries}``
            (see :func:`load_gazetteers`). Names with ``city``, ``province``,
            ``station``, ``country``, ``place``, ``location``, ``area`` or ``poi`` are
            places (and also match without an administrative suffix: 北京市 -> 北京).
        fallback: Also return detector spans the tagger did not claim (dates, numbers,
            gazetteer entries, English names), under generic slots.
        epochs: Training passes of the tagger.
        min_feature_count: Tagger features seen fewer times in training are dropped.
        seed: Seed of the training order and the jackknife folds.
        max_chars: Longest request accepted.

    Example:
        ```python
        from langgraph_speculative.cache.parameters.extractor import ParameterExtractor

        extractor = ParameterExtractor().fit([])  # no examples: detectors only
        params = extractor.extract("Book a table for 4 at Luigi's tomorrow at 7pm")
        assert [(p.slot, p.value) for p in params] == [
            ("number", "4"), ("place", "luigi's"), ("datetime", "tomorrow"), ("datetime", "7pm")]
        assert extractor.strip("Call Anna Smith", extractor.extract("Call Anna Smith")) == (
            "Call <name>")
        ```
    """

    def __init__(
        self,
        *,
        gazetteers: Mapping[str, str | Path | Iterable[str]] | None = None,
        fallback: bool = True,
        epochs: int = 8,
        min_feature_count: int = 2,
        seed: int = 0,
        max_chars: int = 2000,
    ) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}")
        if max_chars < 1:
            raise ValueError(f"max_chars must be at least 1, got {max_chars}")
        self.fallback = fallback
        self.epochs = epochs
        self.min_feature_count = min_feature_count
        self.seed = seed
        self.max_chars = max_chars
        self._gazetteers = gazetteer_entries(gazetteers)
        self._build_gazetteer_matcher()
        self._pos_tagger = PosTagger(
            self._gazetteer_matcher,
            [name for name in self._gazetteers if self._gazetteer_kinds[name] == "place"],
        )
        self._fitted = False
        self._reset_model()

    # -- state ------------------------------------------------------------------------
    def _reset_model(self) -> None:
        self._value_slots: dict[str, dict[str, dict[str, int]]] = {}  # value -> label -> slot
        self._value_matcher = Matcher({})
        self._slot_kinds: dict[str, str] = {}
        self._label_slots: dict[str, list[str]] = {}
        self._multi_slots: dict[str, list[str]] = {}  # label -> slots seen with a list
        self._latin_share = 0.0
        self._tags: list[str] = ["O"]
        self._features: dict[str, int] = {}
        self._weights = np.zeros((1, 1), dtype=np.float32)
        self._trans = np.zeros((1, 1), dtype=np.float32)
        self._start = np.zeros(1, dtype=np.float32)
        self._mask_cache: tuple[np.ndarray, np.ndarray] = transition_mask(self._tags)

    def _build_gazetteer_matcher(self) -> None:
        self._gazetteer_kinds = {name: gazetteer_kind(name) for name in self._gazetteers}
        self._gazetteer_matcher = gazetteer_matcher(self._gazetteers, self._gazetteer_kinds)

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` or :meth:`load` has run."""
        return self._fitted

    @property
    def gazetteer_names(self) -> tuple[str, ...]:
        """The names of the gazetteers, sorted."""
        return tuple(sorted(self._gazetteers))

    @property
    def slots(self) -> tuple[str, ...]:
        """The slots the tagger learned, sorted."""
        return tuple(sorted(self._slot_kinds))

    @property
    def labels(self) -> tuple[str, ...]:
        """The intent labels seen in training, sorted."""
        return tuple(sorted(self._label_slots))

    def multi_valued(self, slot: str, label: str | None = None) -> bool:
        """Whether a slot takes several values (it was given a list in training).

        A slot is multi-valued for an intent when a training request of that intent gave
        it a list of values (``{"name": ["湖人", "勇士"]}``); the plan cache then fills a
        plan with all of a request's values of the slot, not only the first.

        Args:
            slot: A slot name.
            label: The intent label (``"domain.INTENT"``). ``None``, or a label never
                seen in training: whether the slot is multi-valued for any intent.

        Returns:
            ``True`` if the slot was seen with a list of values (for ``label``).
        """
        if label is not None and label in self._label_slots:
            return slot in self._multi_slots.get(label, ())
        return any(slot in slots for slots in self._multi_slots.values())

    def slot_kind(self, slot: str) -> str:
        """The kind of a slot (learned for trained slots; by name for generic ones).

        Args:
            slot: A slot name.

        Returns:
            One of :data:`KINDS`.
        """
        if slot in self._slot_kinds:
            return self._slot_kinds[slot]
        return {"datetime": "time", "number": "number", "place": "place", "name": "name"}.get(
            slot, self._gazetteer_kinds.get(slot, "value")
        )

    # -- detectors --------------------------------------------------------------------
    def _context(self, text: str, value_matcher: Matcher | None = None) -> Context:
        folded = fold(text)
        n = len(text)
        spans: list[Span] = []
        for s, e, names in self._gazetteer_matcher.find(folded):
            for name in names:
                spans.append(Span(s, e, "gaz", name, self._gazetteer_kinds[name]))
        matcher = self._value_matcher if value_matcher is None else value_matcher
        for s, e, slots in matcher.find(folded):
            for slot in slots:
                spans.append(Span(s, e, "val", slot, self._slot_kinds.get(slot, "value")))
        spans += time_spans(text, folded)
        spans += number_spans(text, folded)
        spans += capitalised_spans(text)
        pos, pos_spans = self._pos_tagger.marks(folded)
        spans += pos_spans
        marks: list[list[str]] = [[] for _ in range(n)]
        for sp in spans:
            if sp.source == "pos":
                continue
            name = f"{sp.source}:{sp.tag}"
            for k in range(sp.start, sp.end):
                marks[k].append(f"{name}:{bies(k, sp.start, sp.end)}")
        return Context(text, folded, spans, marks, pos)

    # -- features ---------------------------------------------------------------------
    def _index(self, feats: list[tuple[list[str], list[str]]], with_label: bool) -> list[list[int]]:
        index = self._features
        out: list[list[int]] = []
        for base, conj in feats:
            ids = [index[f] for f in base if f in index]
            if with_label:
                ids.extend(index[f] for f in conj if f in index)
            out.append(ids)
        return out

    # -- decoding ---------------------------------------------------------------------
    def _allowed(self, label: str | None) -> np.ndarray:
        if label is None or label not in self._label_slots:
            return np.arange(len(self._tags))
        slots = set(self._label_slots[label])
        return np.array(
            [j for j, tag in enumerate(self._tags) if tag == "O" or tag[2:] in slots],
            dtype=np.int64,
        )

    # -- training ---------------------------------------------------------------------
    @staticmethod
    def _gold_spans(
        text: str, slots: Mapping[str, SlotValue | Sequence[str]]
    ) -> list[tuple[int, int, str]]:
        """The gold ``(start, end, slot)`` spans of a request, in text order.

        Every value is located (each value of a multi-valued slot is a span of its own),
        longer values first, each at its first occurrence not overlapping a span already
        placed; a value that is not in the text is left out.
        """
        folded = fold(text)
        taken = [False] * len(text)
        spans: list[tuple[int, int, str]] = []
        pairs = [(slot, v) for slot, value in slots.items() for v in slot_values(value)]
        for slot, value in sorted(pairs, key=lambda kv: (-len(kv[1]), kv[0])):
            needle = fold(value)
            start = folded.find(needle)
            while start >= 0 and any(taken[start : start + len(needle)]):
                start = folded.find(needle, start + 1)
            if start < 0 or not needle:
                continue
            for k in range(start, start + len(needle)):
                taken[k] = True
            spans.append((start, start + len(needle), slot))
        return sorted(spans)

    def fit(self, examples: Iterable[LabelledRequest]) -> Self:
        """Learn slot values, slot kinds and the tagger from labelled requests.

        A slot value that is not a substring of its request is skipped (it cannot be
        located), and so are requests longer than ``max_chars``. With no examples at
        all, only the detectors work (fallback slots, plus jieba's places and names).
        A multi-valued slot (a list of values, ``{"name": ["湖人", "勇士"]}``) gives one
        gold span per value, so the tagger learns to find several spans of one slot;
        the slots seen with a list are remembered per intent (:meth:`multi_valued`).

        Args:
            examples: Labelled requests; their ``slots`` are the gold parameters.

        Returns:
            The extractor itself.

        Raises:
            TypeError: If an example is not a :class:`LabelledRequest`.
        """
        data = list(examples)
        for k, ex in enumerate(data):
            if not isinstance(ex, LabelledRequest):
                raise TypeError(f"example {k} is a {type(ex).__name__}, not a LabelledRequest")
        data = [ex for ex in data if 0 < len(ex.text) <= self.max_chars]
        self._reset_model()
        gold = [self._gold_spans(ex.text, ex.slots) for ex in data]
        if data:
            self._latin_share = sum(_mostly_latin(ex.text) for ex in data) / len(data)

        # Learned values: value -> label -> slot -> count (two or more characters).
        value_slots: dict[str, dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )
        for ex, spans in zip(data, gold, strict=True):
            for s, e, slot in spans:
                if e - s >= 2:
                    value_slots[fold(ex.text[s:e])][ex.label][slot] += 1
        self._value_slots = {
            v: {lab: dict(slots) for lab, slots in by_label.items()}
            for v, by_label in value_slots.items()
        }
        self._label_slots = {}
        for ex, spans in zip(data, gold, strict=True):
            known = self._label_slots.setdefault(ex.label, [])
            for _, _, slot in spans:
                if slot not in known:
                    known.append(slot)
        for label in self._label_slots:
            self._label_slots[label].sort()
        multi: dict[str, set[str]] = defaultdict(set)
        for ex in data:
            for slot, value in ex.slots.items():
                if not isinstance(value, str):
                    multi[ex.label].add(slot)
        self._multi_slots = {label: sorted(slots) for label, slots in multi.items()}

        # Jackknifed value marks: each request sees only values learned from other folds.
        folds = 5 if len(data) >= 10 else 1
        rng = random.Random(self.seed)
        fold_of = [k % folds for k in range(len(data))]
        rng.shuffle(fold_of)
        fold_matchers: list[Matcher] = []
        for f in range(folds):
            counts: dict[str, Counter[str]] = defaultdict(Counter)
            for k, (ex, spans) in enumerate(zip(data, gold, strict=True)):
                if folds > 1 and fold_of[k] == f:
                    continue
                for s, e, slot in spans:
                    if e - s >= 2:
                        counts[fold(ex.text[s:e])][slot] += 1
            fold_matchers.append(Matcher({v: _top_slots(c) for v, c in counts.items()}))
        contexts = [self._context(ex.text, fold_matchers[fold_of[k]]) for k, ex in enumerate(data)]

        self._slot_kinds = _learn_kinds(contexts, gold)
        self._value_matcher = Matcher(
            {
                v: _top_slots(Counter({s: c for lab in by.values() for s, c in lab.items()}))
                for v, by in self._value_slots.items()
            }
        )
        slots = sorted(self._slot_kinds)
        self._tags = ["O"] + [f"{p}-{slot}" for slot in slots for p in ("B", "I")]
        if data and slots:
            self._train(data, gold, contexts)
        self._fitted = True
        return self

    def _train(
        self,
        data: list[LabelledRequest],
        gold: list[list[tuple[int, int, str]]],
        contexts: list[Context],
    ) -> None:
        tag_index = {t: k for k, t in enumerate(self._tags)}
        feats = [position_features(ctx, ex.label) for ctx, ex in zip(contexts, data, strict=True)]
        counts: Counter[str] = Counter()
        for sent in feats:
            for base, conj in sent:
                counts.update(base)
                counts.update(conj)
        names = sorted(f for f, c in counts.items() if c >= self.min_feature_count)
        self._features = {f: k for k, f in enumerate(names)}
        golds: list[list[int]] = []
        for ex, spans in zip(data, gold, strict=True):
            tags = [0] * len(ex.text)
            for s, e, slot in spans:
                tags[s] = tag_index[f"B-{slot}"]
                for k in range(s + 1, e):
                    tags[k] = tag_index[f"I-{slot}"]
            golds.append(tags)
        # Each request is seen twice: with its intent (features conjoined with it, slots
        # restricted to the intent's) and without (as when the intent is unknown).
        instances: list[tuple[list[list[int]], list[int], np.ndarray]] = []
        full = np.arange(len(self._tags))
        for sent, ex, tags in zip(feats, data, golds, strict=True):
            instances.append((self._index(sent, True), tags, self._allowed(ex.label)))
            instances.append((self._index(sent, False), tags, full))
        t = len(self._tags)
        weights = np.zeros((len(names), t), dtype=np.float64)
        w_acc = np.zeros_like(weights)
        trans = np.zeros((t, t), dtype=np.float64)
        t_acc = np.zeros_like(trans)
        start = np.zeros(t, dtype=np.float64)
        s_acc = np.zeros_like(start)
        mask = transition_mask(self._tags)
        rng = random.Random(self.seed)
        order = list(range(len(instances)))
        step = 1
        for _ in range(self.epochs):
            rng.shuffle(order)
            for k in order:
                ids, tags, allowed = instances[k]
                pred = decode(ids, allowed, weights, trans, start, mask)
                if pred != tags:
                    for i, (g, p) in enumerate(zip(tags, pred, strict=True)):
                        if g != p and ids[i]:
                            rows = np.asarray(ids[i], dtype=np.int64)
                            np.add.at(weights, (rows, np.full_like(rows, g)), 1.0)
                            np.add.at(weights, (rows, np.full_like(rows, p)), -1.0)
                            np.add.at(w_acc, (rows, np.full_like(rows, g)), step)
                            np.add.at(w_acc, (rows, np.full_like(rows, p)), -step)
                    if tags[0] != pred[0]:
                        start[tags[0]] += 1.0
                        start[pred[0]] -= 1.0
                        s_acc[tags[0]] += step
                        s_acc[pred[0]] -= step
                    for i in range(1, len(tags)):
                        if (tags[i - 1], tags[i]) != (pred[i - 1], pred[i]):
                            trans[tags[i - 1], tags[i]] += 1.0
                            trans[pred[i - 1], pred[i]] -= 1.0
                            t_acc[tags[i - 1], tags[i]] += step
                            t_acc[pred[i - 1], pred[i]] -= step
                step += 1
        averaged = weights - w_acc / step
        keep = np.flatnonzero(np.abs(averaged).max(axis=1) > 1e-6)
        self._features = {names[k]: n for n, k in enumerate(keep.tolist())}
        self._weights = averaged[keep].astype(np.float32)
        self._trans = (trans - t_acc / step).astype(np.float32)
        self._start = (start - s_acc / step).astype(np.float32)

    # -- inference --------------------------------------------------------------------
    def _check_text(self, text: object) -> str:
        return check_request(text, self.max_chars)

    def extract(self, text: str, label: str | None = None) -> list[Parameter]:
        """Find the parameters of a request.

        Args:
            text: The request.
            label: Its intent label (``"domain.INTENT"``) if known; restricts the slots
                to those seen with it. ``None`` (or a label never seen): any slot.

        Returns:
            Non-overlapping parameters, in text order. Several may share a slot: each
            value of a multi-valued slot (both teams of "湖人对勇士的比赛") is a
            parameter of its own.

        Raises:
            NotFittedError: Before :meth:`fit` or :meth:`load`.
            RequestError: If ``text`` is not a string, is blank, or is longer than
                ``max_chars``.
        """
        if not self._fitted:
            raise NotFittedError("ParameterExtractor.extract before fit() or load()")
        text = self._check_text(text)
        if label is not None and not isinstance(label, str):
            raise RequestError(f"label must be a string or None, got {type(label).__name__}")
        use_label = label if label in self._label_slots else None
        ctx = self._context(text)
        found: list[tuple[int, int, str]] = []
        # The tagger reads only the script it was trained on: an English request given to
        # a model trained on Chinese gets the detectors alone.
        tagged = bool(self._features) and (self._latin_share >= 0.01 or not _mostly_latin(text))
        if tagged:
            feats = position_features(ctx, use_label)
            ids = self._index(feats, use_label is not None)
            if self._mask_cache[0].shape[0] != len(self._tags):
                self._mask_cache = transition_mask(self._tags)
            mask = self._mask_cache
            path = decode(
                ids, self._allowed(use_label), self._weights, self._trans, self._start, mask
            )
            found = spans_of(path, self._tags, text)
        params = [
            Parameter(slot, self.slot_kind(slot), text[s:e], normalise_value(text[s:e]), s, e)
            for s, e, slot in found
        ]
        if self.fallback:
            params.extend(self._fallback(ctx, params, use_label, with_pos=not tagged))
        params.sort(key=lambda p: p.start)
        return params

    _FALLBACK_ORDER = {"time": 0, "gaz": 1, "num": 2, "cap": 3, "pos": 4}

    def _fallback(
        self, ctx: Context, taken_params: list[Parameter], label: str | None, *, with_pos: bool
    ) -> list[Parameter]:
        """Detector spans that no parameter covers.

        jieba's places and names count only when the tagger (which reads them as
        features) did not run.
        """
        taken = [False] * len(ctx.text)
        for p in taken_params:
            for k in range(p.start, p.end):
                taken[k] = True
        candidates = [
            sp
            for sp in ctx.spans
            if sp.source in self._FALLBACK_ORDER and (with_pos or sp.source != "pos")
        ]
        candidates.sort(key=lambda sp: (self._FALLBACK_ORDER[sp.source], sp.start - sp.end))
        out: list[Parameter] = []
        for sp in candidates:
            if any(taken[sp.start : sp.end]):
                continue
            if sp.source == "gaz" and not self._on_word_boundaries(ctx, sp):
                continue
            slot = self._fallback_slot(sp, ctx.folded[sp.start : sp.end], label)
            raw = ctx.text[sp.start : sp.end]
            out.append(
                Parameter(slot, self.slot_kind(slot), raw, normalise_value(raw), sp.start, sp.end)
            )
            for k in range(sp.start, sp.end):
                taken[k] = True
        return out

    @staticmethod
    def _on_word_boundaries(ctx: Context, sp: Span) -> bool:
        """Whether a span starts and ends where jieba's words do (京东商城 holds no 商城).

        True when the text could not be segmented.
        """
        first, last = ctx.pos[sp.start][0], ctx.pos[sp.end - 1][0]
        if not first or not last:
            return True
        return first[-1] in "BS" and last[-1] in "ES"

    def _fallback_slot(self, sp: Span, folded: str, label: str | None) -> str:
        if sp.source == "time":
            return "datetime"
        if sp.source == "num":
            return "number"
        if sp.source in ("cap", "pos"):
            return sp.kind
        if sp.source == "gaz":
            return sp.tag
        by_label = self._value_slots.get(folded, {})
        counts: Counter[str] = Counter()
        if label is not None and label in by_label:
            counts.update(by_label[label])
        else:
            for slots in by_label.values():
                counts.update(slots)
        return counts.most_common(1)[0][0] if counts else sp.tag

    def strip(self, text: str, params: Sequence[Parameter]) -> str:
        """Replace each parameter of ``text`` by its placeholder ``<slot>``.

        Parameters that share a slot (the values of a multi-valued slot) each get the
        same placeholder: "湖人对勇士的比赛" reads "<name>对<name>的比赛".

        Args:
            text: The request the parameters were extracted from.
            params: Its parameters (any order; they must not overlap).

        Returns:
            The stripped request.

        Raises:
            RequestError: If a parameter does not lie in ``text`` as recorded (offsets
                out of range or another text there), or two parameters overlap.
        """
        if not isinstance(text, str):
            raise RequestError(f"the request must be a string, got {type(text).__name__}")
        pieces: list[str] = []
        last = 0
        for p in sorted(params, key=lambda q: q.start):
            if p.end > len(text) or text[p.start : p.end] != p.text:
                raise RequestError(
                    f"parameter {p.slot}={p.text!r} at [{p.start}, {p.end}) is not in the request"
                )
            if p.start < last:
                raise RequestError(f"parameter {p.slot}={p.text!r} overlaps the one before it")
            pieces.append(text[last : p.start])
            pieces.append(p.placeholder)
            last = p.end
        pieces.append(text[last:])
        return "".join(pieces)

    def extract_and_strip(self, text: str, label: str | None = None) -> tuple[list[Parameter], str]:
        """Extract the parameters of a request and strip them.

        Args:
            text: The request.
            label: Its intent label if known (see :meth:`extract`).

        Returns:
            ``(parameters, stripped request)``.

        Raises:
            NotFittedError: Before :meth:`fit` or :meth:`load`.
            RequestError: If ``text`` is not a usable request.
        """
        params = self.extract(text, label)
        return params, self.strip(text, params)

    # -- persistence ------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Save the fitted extractor to a directory (``meta.json`` + ``arrays.npz``).

        Args:
            path: The directory (created if needed).

        Raises:
            NotFittedError: Before :meth:`fit` or :meth:`load`.
        """
        if not self._fitted:
            raise NotFittedError("ParameterExtractor.save before fit() or load()")
        names = sorted(self._features, key=self._features.__getitem__)
        rows, cols = np.nonzero(self._weights)
        meta = {
            "settings": {
                "fallback": self.fallback,
                "epochs": self.epochs,
                "min_feature_count": self.min_feature_count,
                "seed": self.seed,
                "max_chars": self.max_chars,
            },
            "latin_share": self._latin_share,
            "gazetteers": self._gazetteers,
            "value_slots": self._value_slots,
            "slot_kinds": self._slot_kinds,
            "label_slots": self._label_slots,
            "multi_slots": self._multi_slots,
            "tags": self._tags,
            "features": names,
        }
        write_model_dir(
            path,
            fmt=_FORMAT,
            version=_FORMAT_VERSION,
            meta=meta,
            arrays={
                "rows": rows.astype(np.int32),
                "cols": cols.astype(np.int32),
                "values": self._weights[rows, cols].astype(np.float32),
                "trans": self._trans,
                "start": self._start,
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> ParameterExtractor:
        """Load an extractor saved by :meth:`save`.

        Args:
            path: The directory.

        Returns:
            The fitted extractor.

        Raises:
            CacheCorruptError: If the files are missing, damaged or of another format.
        """
        meta, arrays = read_model_dir(
            path,
            fmt=_FORMAT,
            version=_FORMAT_VERSION,
            required=("rows", "cols", "values", "trans", "start"),
        )
        try:
            settings = meta["settings"]
            extractor = cls(
                gazetteers={k: list(v) for k, v in meta["gazetteers"].items()},
                fallback=bool(settings["fallback"]),
                epochs=int(settings["epochs"]),
                min_feature_count=int(settings["min_feature_count"]),
                seed=int(settings["seed"]),
                max_chars=int(settings["max_chars"]),
            )
            extractor._value_slots = {
                str(v): {
                    str(lab): {str(s): int(c) for s, c in slots.items()}
                    for lab, slots in by.items()
                }
                for v, by in meta["value_slots"].items()
            }
            extractor._slot_kinds = {str(k): str(v) for k, v in meta["slot_kinds"].items()}
            extractor._label_slots = {
                str(k): [str(s) for s in v] for k, v in meta["label_slots"].items()
            }
            extractor._multi_slots = {  # absent from files saved before multi-valued slots
                str(k): [str(s) for s in v] for k, v in meta.get("multi_slots", {}).items()
            }
            extractor._tags = [str(t) for t in meta["tags"]]
            extractor._latin_share = float(meta["latin_share"])
            names = [str(f) for f in meta["features"]]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CacheCorruptError(f"{path}: malformed extractor metadata: {exc!r}") from exc
        t = len(extractor._tags)
        rows, cols, values = arrays["rows"], arrays["cols"], arrays["values"]
        if (
            arrays["trans"].shape != (t, t)
            or arrays["start"].shape != (t,)
            or not (rows.shape == cols.shape == values.shape)
            or (
                rows.size
                and (rows.max() >= len(names) or cols.max() >= t or min(rows.min(), cols.min()) < 0)
            )
            or any(k not in KINDS for k in extractor._slot_kinds.values())
        ):
            raise CacheCorruptError(f"{path}: extractor arrays do not match its metadata")
        weights = np.zeros((len(names), t), dtype=np.float32)
        weights[rows, cols] = values
        extractor._weights = weights
        extractor._trans = arrays["trans"].astype(np.float32)
        extractor._start = arrays["start"].astype(np.float32)
        extractor._features = {f: k for k, f in enumerate(names)}
        extractor._value_matcher = Matcher(
            {
                v: _top_slots(Counter({s: c for lab in by.values() for s, c in lab.items()}))
                for v, by in extractor._value_slots.items()
            }
        )
        extractor._fitted = True
        return extractor


def _mostly_latin(text: str) -> bool:
    """Whether at least half of the letters and digits of ``text`` are ASCII."""
    chars = [ch for ch in text if ch.isalnum()]
    return bool(chars) and 2 * sum(ch.isascii() for ch in chars) >= len(chars)


def _top_slots(counts: Counter[str]) -> list[str]:
    """The slots a value was seen with, most frequent first (at most three)."""
    return [slot for slot, _ in counts.most_common(3)]


def _learn_kinds(contexts: list[Context], gold: list[list[tuple[int, int, str]]]) -> dict[str, str]:
    """Each slot's kind: the detector kind that covers most of its gold values.

    A detector agrees with a gold span when one of its spans overlaps at least half of
    it; a kind needs the agreement of half the slot's spans, else the slot is ``value``.
    """
    agree: dict[str, Counter[str]] = defaultdict(Counter)
    total: Counter[str] = Counter()
    for ctx, spans in zip(contexts, gold, strict=True):
        for s, e, slot in spans:
            total[slot] += 1
            kinds: set[str] = set()
            for sp in ctx.spans:
                if sp.source == "val":
                    continue
                overlap = min(e, sp.end) - max(s, sp.start)
                if overlap * 2 >= e - s:
                    kinds.add(sp.kind)
            agree[slot].update(kinds)
    out: dict[str, str] = {}
    for slot, n in total.items():
        kind = "value"
        for candidate in ("time", "number", "place", "name"):
            if agree[slot][candidate] * 2 >= n:
                kind = candidate
                break
        out[slot] = kind
    return out
