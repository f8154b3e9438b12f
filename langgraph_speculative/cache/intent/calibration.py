"""Calibration of the intent classifier: temperature scaling and the unknown threshold.

The arithmetic behind :meth:`IntentClassifier.fit
<langgraph_speculative.cache.intent.classifier.IntentClassifier.fit>` (whose module
documentation describes the cross-validation that feeds it):

* :func:`softmax` of raw scores;
* :func:`fit_temperature`: the temperature ``T`` minimising the negative log-likelihood
  of ``softmax(scores / T)`` on out-of-fold scores;
* :func:`choose_min_confidence`: the least confidence at which the estimated precision
  of accepted predictions reaches a target, on a traffic mix with a share of requests of
  unseen intents; never below :data:`MIN_THRESHOLD`.

Example:
    ```python
    import numpy as np

    from langgraph_speculative.cache.intent.calibration import choose_min_confidence, softmax

    assert np.allclose(softmax(np.array([[0.0, 0.0]])), [[0.5, 0.5]])
    known = np.array([0.95, 0.9, 0.8, 0.7])
    correct = np.array([True, True, True, False])
    threshold, report = choose_min_confidence(known, correct, np.zeros(0), 0.99, 0.0)
    assert threshold == 0.8 and report["estimated_precision"] == 1.0
    ```
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MIN_THRESHOLD", "choose_min_confidence", "fit_temperature", "softmax"]

MIN_THRESHOLD = 0.5
"""A calibrated threshold is never lower: a prediction more likely wrong than right is unknown."""


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (shifted by the maximum, so large scores do not overflow).

    Args:
        scores: Raw scores, one row per request (or a single row).

    Returns:
        Probabilities of the same shape, each row summing to 1.
    """
    shifted = scores - scores.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    out: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
    return out


def fit_temperature(scores: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising the NLL of ``softmax(scores / T)`` (golden search on log T).

    T is kept within ``[0.05, 50]``: when every out-of-fold prediction is right the NLL
    keeps falling as T shrinks, and the bound stops confidences from collapsing to 1.

    Args:
        scores: ``(n, labels)`` out-of-fold raw scores.
        targets: ``(n,)`` the index of each request's true label.

    Returns:
        The temperature; 1.0 when there are no requests.
    """
    if len(targets) == 0:
        return 1.0
    rows = np.arange(len(targets))

    def nll(log_t: float) -> float:
        z = scores / math.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        logp = z[rows, targets] - np.log(np.exp(z).sum(axis=1))
        return float(-logp.mean())

    lo, hi = math.log(0.05), math.log(50.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return math.exp((lo + hi) / 2)


def choose_min_confidence(
    known_conf: np.ndarray,
    known_correct: np.ndarray,
    unseen_conf: np.ndarray,
    target_precision: float,
    unknown_rate: float,
    fixed: float | None = None,
) -> tuple[float, dict[str, float]]:
    """The smallest threshold whose estimated precision reaches the target.

    Precision at threshold ``t`` is ``(1-u)·correct_known(t) / ((1-u)·accepted_known(t)
    + u·accepted_unseen(t))`` with ``u = unknown_rate`` (0 when there are no unseen
    confidences). Thresholds below :data:`MIN_THRESHOLD` are not considered; if none
    reaches the target, the one of highest estimated precision is chosen. With
    ``fixed``, that threshold is used and only the report is computed.

    Args:
        known_conf: Out-of-fold confidences of requests of known intents.
        known_correct: Whether each of those predictions was right.
        unseen_conf: Confidences of requests whose intent the fold model never saw.
        target_precision: The precision to reach.
        unknown_rate: Assumed share of requests of unseen intents.
        fixed: A threshold to use instead of choosing one.

    Returns:
        ``(threshold, report)``; the report holds ``min_confidence``,
        ``estimated_precision``, ``known_coverage``, ``known_accuracy_accepted``,
        ``unseen_rejected``, ``known_oof_accuracy`` and the example counts (NaN where
        a measure had no data).
    """
    if fixed is not None:
        candidates = np.array([fixed])
    else:
        candidates = np.unique(np.concatenate([known_conf, unseen_conf, [MIN_THRESHOLD]]))
        candidates = candidates[candidates >= MIN_THRESHOLD]
    n_known = max(len(known_conf), 1)
    n_unseen = max(len(unseen_conf), 1)
    u = unknown_rate if len(unseen_conf) else 0.0
    known_sorted = np.sort(known_conf)
    correct_sorted = np.sort(known_conf[known_correct])
    unseen_sorted = np.sort(unseen_conf)
    accepted_known = (len(known_sorted) - np.searchsorted(known_sorted, candidates)) / n_known
    correct_known = (len(correct_sorted) - np.searchsorted(correct_sorted, candidates)) / n_known
    accepted_unseen = (len(unseen_sorted) - np.searchsorted(unseen_sorted, candidates)) / n_unseen
    denom = (1 - u) * accepted_known + u * accepted_unseen
    precision = np.where(denom > 0, (1 - u) * correct_known / np.maximum(denom, 1e-12), 0.0)
    ok = np.flatnonzero(precision >= target_precision)
    k = int(ok[0]) if ok.size else int(np.argmax(precision))
    report = {
        "min_confidence": float(candidates[k]),
        "estimated_precision": float(precision[k]),
        "known_coverage": float(accepted_known[k]),
        "known_accuracy_accepted": float(correct_known[k] / accepted_known[k])
        if accepted_known[k] > 0
        else 0.0,
        "unseen_rejected": float(1.0 - accepted_unseen[k]) if len(unseen_conf) else float("nan"),
        "known_oof_accuracy": float(known_correct.mean()) if len(known_correct) else float("nan"),
        "known_oof_examples": float(len(known_conf)),
        "unseen_oof_examples": float(len(unseen_conf)),
    }
    return float(candidates[k]), report
