"""Per-intent similarity thresholds, calibrated on the user's labelled requests.

AgentReuse uses one global cosine threshold (0.75, for its embedder). One threshold
serves some intents badly: requests of a cookbook intent ("<dishName>怎么做", "教我做<dishName>")
read less alike than train-ticket requests, yet both deserve reuse. Here each intent gets
the lowest threshold that keeps reuse *precise* on the training data:

* **positives** of intent *c*: each training request whose *out-of-fold* top intent
  (from the classifier's own cross-validation, confident enough for the cache to search
  it) is rightly *c*, paired with every other request of *c* (the cache usually holds one
  or a few entries of an intent, so each single entry counts, not the nearest of many);
* **negatives** of *c*: each training request routed to *c* out of fold but of another
  intent, paired with every request of *c*: a reuse that would serve a wrong plan.

A loaded classifier keeps no out-of-fold predictions; then the positives are each
request of *c* and its nearest other request of *c*, and the negatives each request of
another intent that the classifier ranks *c* first or second and its nearest request of *c*.

The threshold is the smallest grid value at which the estimated precision
``pos>=t / (pos>=t + neg>=t)`` reaches ``target_precision``, then clamped into
``[floor, ceiling]``. Intents with fewer than ``min_examples`` requests get the threshold
calibrated the same way on all intents pooled.

Example:
    ```python
    from langgraph_speculative.cache.thresholds import choose_threshold

    positives = [0.9, 0.8, 0.7, 0.6, 0.5]
    negatives = [0.55, 0.3]
    t = choose_threshold(positives, negatives, target_precision=0.99, floor=0.2, ceiling=0.95)
    assert 0.55 < t <= 0.6  # the lowest cut that keeps every negative out
    ```
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from langgraph_speculative.cache.training_data import LabelledRequest
from langgraph_speculative.errors import RequestError

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from langgraph_speculative.cache.intent.classifier import IntentClassifier
    from langgraph_speculative.cache.parameters.extractor import ParameterExtractor

__all__ = ["CacheParts", "calibrate_thresholds", "choose_threshold"]

_GRID = np.round(np.arange(0.05, 1.0001, 0.01), 2)


class CacheParts(Protocol):
    """What :func:`calibrate_thresholds` reads of a plan cache.

    A :class:`~langgraph_speculative.cache.plan_cache.PlanCache` has all of it; the
    protocol keeps this module from importing the cache that calls it.
    """

    @property
    def classifier(self) -> IntentClassifier | None:
        """The fitted intent classifier (``None``: no intent gating, no thresholds)."""

    @property
    def extractor(self) -> ParameterExtractor | None:
        """The fitted parameter extractor, if any."""

    @property
    def embeddings(self) -> Embeddings:
        """The embedder of (stripped) requests."""

    @property
    def strip_parameters(self) -> bool:
        """Whether requests are embedded with their parameters stripped."""

    @property
    def min_confidence(self) -> float | None:
        """The least classifier confidence at which the cache searches an intent."""


def choose_threshold(
    positives: Sequence[float],
    negatives: Sequence[float],
    *,
    target_precision: float = 0.99,
    floor: float = 0.3,
    ceiling: float = 0.95,
) -> float:
    """The lowest threshold whose estimated precision reaches ``target_precision``.

    Args:
        positives: Similarities of pairs that should be reused.
        negatives: Similarities of pairs that must not be reused.
        target_precision: The precision to keep.
        floor: The least threshold returned.
        ceiling: The greatest threshold returned (also the answer when no grid value
            reaches the target).

    Returns:
        The threshold, in ``[floor, ceiling]``.
    """
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    for t in _GRID:
        if t < floor:
            continue
        tp = int(np.sum(pos >= t))
        fp = int(np.sum(neg >= t))
        if tp + fp == 0 or tp / (tp + fp) >= target_precision:
            return float(min(max(t, floor), ceiling))
    return float(ceiling)


def calibrate_thresholds(
    cache: CacheParts,
    examples: Sequence[LabelledRequest],
    *,
    target_precision: float = 0.99,
    min_examples: int = 5,
    floor: float = 0.3,
    ceiling: float = 0.95,
) -> dict[str, float]:
    """Calibrate a similarity threshold per intent label on labelled requests.

    Args:
        cache: The cache whose classifier, extractor and embedder are used (fitted): a
            :class:`~langgraph_speculative.cache.plan_cache.PlanCache`.
        examples: Labelled requests (the training data).
        target_precision: Estimated precision each intent's threshold keeps.
        min_examples: Intents with fewer requests get the pooled threshold.
        floor: The least threshold given.
        ceiling: The greatest threshold given.

    Returns:
        ``{intent label: threshold}`` for every label in ``examples``, plus the pooled
        threshold under ``"*"``.
    """
    if not examples:
        raise RequestError("calibrating thresholds needs at least one labelled request")
    if cache.classifier is None:
        return {}
    texts = [e.text for e in examples]
    labels = [e.label for e in examples]
    stripped = texts
    if cache.strip_parameters and cache.extractor is not None:
        stripped = [cache.extractor.extract_and_strip(t)[1] for t in texts]
    raw = np.asarray(cache.embeddings.embed_documents(stripped), dtype=np.float64)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    vectors = raw / np.where(norms > 0, norms, 1.0)
    members: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        members[label].append(i)
    positives: dict[str, list[float]] = defaultdict(list)
    negatives: dict[str, list[float]] = defaultdict(list)
    oof = cache.classifier.out_of_fold_predictions()
    if len(oof) == len(examples):
        # Out-of-fold routing: the requests the cache would search partition c for (top
        # intent c, confident enough), each against every single entry of c (the cache
        # usually holds one or a few per intent, not the nearest of many).
        least = cache.min_confidence
        if least is None:
            least = cache.classifier.min_confidence
        for i, pred in enumerate(oof):
            if pred is None or pred[1] < least or pred[0] not in members:
                continue
            idx = [j for j in members[pred[0]] if j != i]
            if not idx:
                continue
            sims = (vectors[idx] @ vectors[i]).tolist()
            (positives if pred[0] == labels[i] else negatives)[pred[0]].extend(sims)
    else:  # no cross-validated predictions (a loaded classifier): the top-2 proxy
        top2 = [[lbl for lbl, _ in cache.classifier.predict(t).top[:2]] for t in texts]
        for label, idx in members.items():
            own = vectors[idx]
            sims = own @ own.T
            np.fill_diagonal(sims, -1.0)
            if len(idx) > 1:
                for row, i in enumerate(idx):
                    if top2[i][:1] == [label]:
                        positives[label].append(float(sims[row].max()))
            outsiders = [i for i in range(len(texts)) if labels[i] != label and label in top2[i]]
            if outsiders:
                cross = vectors[outsiders] @ own.T
                negatives[label].extend(float(v) for v in cross.max(axis=1))

    def pick(pos: Sequence[float], neg: Sequence[float]) -> float:
        return choose_threshold(
            pos, neg, target_precision=target_precision, floor=floor, ceiling=ceiling
        )

    pooled = pick(
        [v for vs in positives.values() for v in vs], [v for vs in negatives.values() for v in vs]
    )
    thresholds = {"*": pooled}
    for label, idx in members.items():
        if len(idx) >= min_examples:
            thresholds[label] = pick(positives[label], negatives[label])
        else:
            thresholds[label] = pooled
    return thresholds
