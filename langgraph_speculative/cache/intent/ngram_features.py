"""Character n-gram TF-IDF features of the intent classifier.

:func:`ngrams` cuts a (normalised) request into character n-grams framed by start and
end marks; :class:`NgramFeatures` learns their vocabulary and IDF (scikit-learn's smooth
IDF) and turns a request's n-grams into an L2-normalised sparse row of sublinear TF times
IDF, looked up with NumPy.

Example:
    ```python
    from langgraph_speculative.cache.intent.ngram_features import NgramFeatures, ngrams

    docs = [ngrams(t, (1, 2)) for t in ["北京天气", "上海天气", "红烧肉"]]
    features = NgramFeatures((1, 2))
    features.fit(docs)
    idx, vals = features.row(ngrams("天气", (1, 2)))
    assert len(idx) == len(vals) > 0 and abs(float(vals @ vals) - 1.0) < 1e-9
    assert features.matrix(docs).shape == (3, len(features.vocabulary))
    ```
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["NgramFeatures", "ngrams"]


def ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """Character n-grams of ``text`` framed by start and end marks.

    Args:
        text: The (normalised) request.
        ngram_range: ``(lo, hi)``: the n-gram sizes, both included.

    Returns:
        The n-grams, shortest sizes first, each size in text order.
    """
    s = "\x02" + text + "\x03"
    lo, hi = ngram_range
    out: list[str] = []
    for n in range(lo, hi + 1):
        out.extend(s[i : i + n] for i in range(len(s) - n + 1))
    return out


class NgramFeatures:
    """Character n-grams of a request (with start and end marks), TF-IDF weighted.

    Args:
        ngram_range: The n-gram sizes the vocabulary is for.

    Attributes:
        ngram_range: As given.
        vocabulary: ``{n-gram: column}`` (sorted n-grams; empty before :meth:`fit`).
        idf: The smooth IDF of each column.
    """

    def __init__(self, ngram_range: tuple[int, int]) -> None:
        self.ngram_range = ngram_range
        self.vocabulary: dict[str, int] = {}
        self.idf = np.zeros(0, dtype=np.float64)

    def fit(self, docs: Sequence[Sequence[str]]) -> None:
        """Learn the vocabulary and IDF of the n-grams of some requests.

        Args:
            docs: Each request's n-grams.
        """
        df: Counter[str] = Counter()
        for grams in docs:
            df.update(set(grams))
        names = sorted(df)
        self.vocabulary = {g: k for k, g in enumerate(names)}
        n = len(docs)
        counts = np.array([df[g] for g in names], dtype=np.float64)
        self.idf = np.log((1 + n) / (1 + counts)) + 1.0  # scikit-learn's smooth idf

    def row(self, grams: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """One request's sparse row: sublinear TF times IDF, L2-normalised.

        Args:
            grams: The request's n-grams (those outside the vocabulary are ignored).

        Returns:
            ``(columns, values)``; both empty when no n-gram is in the vocabulary.
        """
        counts = Counter(g for g in grams if g in self.vocabulary)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        idx = np.fromiter((self.vocabulary[g] for g in counts), dtype=np.int64, count=len(counts))
        tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        vals = tf * self.idf[idx]
        vals /= np.linalg.norm(vals)
        return idx, vals

    def matrix(self, docs: Sequence[Sequence[str]]) -> Any:
        """The rows of many requests as a SciPy CSR matrix.

        Args:
            docs: Each request's n-grams.

        Returns:
            A ``scipy.sparse.csr_matrix`` of shape ``(len(docs), len(vocabulary))``.
        """
        from scipy.sparse import csr_matrix  # type: ignore[import-untyped]

        indptr = [0]
        indices: list[np.ndarray] = []
        data: list[np.ndarray] = []
        for grams in docs:
            idx, vals = self.row(grams)
            indices.append(idx)
            data.append(vals)
            indptr.append(indptr[-1] + len(idx))
        return csr_matrix(
            (
                np.concatenate(data) if data else np.zeros(0),
                np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
                np.array(indptr),
            ),
            shape=(len(docs), len(self.vocabulary)),
        )
