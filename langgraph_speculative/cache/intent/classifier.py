"""Intent classification for the plan cache, with an explicit, calibrated "unknown" outcome.

:class:`IntentClassifier` is a linear model over character n-grams (TF-IDF of 1-3
grams with sublinear term frequency; a linear SVM by default, multinomial logistic
regression as an option), trained on the user's own labelled requests: no download, CPU
only, about 0.03 ms per request (the n-grams are looked up and scored with NumPy, not
through scikit-learn's per-call machinery).

Measured on SMP2019 ``dev.json`` (seeded 50/50 split of 43 intents, five domains held out
of training): the SVM reaches 0.895 top-1 accuracy and fits (with calibration) in about
2 s; logistic regression reaches 0.884, is better calibrated (ECE 0.02 vs 0.05) but fits
in minutes. Reading requests with their parameters stripped (``text_mode="stripped"``)
scored 0.833 and raw plus stripped 0.878, so raw text is the default.

Given a sentence embedder (``embeddings=``, for example a local Hugging Face model), the
linear model also reads each request's sentence vector (``features="both"``) or only it
(``"embeddings"``): a pretrained model knows words the training requests never show.

Its confidences are **calibrated** and its **unknown threshold** is learned, both from
cross-validation inside :meth:`IntentClassifier.fit` (the arithmetic is in
:mod:`~langgraph_speculative.cache.intent.calibration`):

1. *Known intents*: stratified k-fold. Each fold's model scores requests it did not see
   but whose intents it knows. A single temperature ``T`` is fitted to these
   out-of-fold scores (minimum negative log-likelihood of ``softmax(scores / T)``), so a
   confidence of 0.9 means right about 90% of the time.
2. *Unseen intents*: folds that hold out **whole domains** (whole intents when there are
   fewer than three domains). Each fold's model, never having seen those intents, scores
   their requests: how confident the model is on a request it cannot get right.
3. *Threshold*: ``min_confidence`` is the smallest confidence at which the estimated
   precision of accepted predictions reaches ``target_precision`` (0.99), on a traffic
   mix in which a share ``unknown_rate`` (0.2) of requests has an intent outside the
   training set. Precision at threshold ``t`` is
   ``(1-u)·correct_known(t) / ((1-u)·accepted_known(t) + u·accepted_unseen(t))``, with
   rates measured on the two out-of-fold sets above. If no threshold reaches the target,
   the one of highest estimated precision is used.

A request whose best confidence is below ``min_confidence`` is predicted as unknown
(``label=None``): for the plan cache that only costs a miss, while a confident wrong
intent would search the wrong partition. Pass ``min_confidence=`` to fix it yourself.

Intents learned online next to a fitted classifier (the plan cache's induced intents) are
:class:`~langgraph_speculative.cache.intent.learned.LearnedIntents`; the n-gram features
are :mod:`~langgraph_speculative.cache.intent.ngram_features`.

Example:
    ```python
    from langgraph_speculative.cache.intent.classifier import IntentClassifier
    from langgraph_speculative.cache.training_data import LabelledRequest

    cities = ["合肥", "北京", "长沙", "上海", "广州", "深圳", "南京", "杭州"]
    examples = [LabelledRequest(f"{a}到{b}的火车票", "train", "QUERY")
                for a in cities[:4] for b in cities[4:]]
    examples += [LabelledRequest(f"{d}怎么做", "cookbook", "QUERY")
                 for d in ["红烧肉", "糖醋排骨", "宫保鸡丁", "麻婆豆腐", "鱼香肉丝", "酸菜鱼"]]
    examples += [LabelledRequest(f"播放{s}", "music", "PLAY")
                 for s in ["七里香", "稻香", "晴天", "青花瓷", "夜曲", "告白气球"]]
    clf = IntentClassifier().fit(examples)
    pred = clf.predict("成都到重庆的火车票")
    assert pred.label == "train.QUERY" and pred.confidence >= clf.min_confidence
    assert clf.predict("播放夜曲").top[0][0] == "music.PLAY"
    ```
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np

from langgraph_speculative.cache._model_files import read_model_dir, write_model_dir
from langgraph_speculative.cache.intent.calibration import (
    MIN_THRESHOLD,
    choose_min_confidence,
    fit_temperature,
    softmax,
)
from langgraph_speculative.cache.intent.ngram_features import NgramFeatures, ngrams
from langgraph_speculative.cache.parameters.extractor import ParameterExtractor
from langgraph_speculative.cache.training_data import LabelledRequest, check_request
from langgraph_speculative.cache.vectors.embeddings import PLACEHOLDER_PATTERN, embedding_dimension
from langgraph_speculative.errors import (
    CacheCorruptError,
    EmbeddingDimensionError,
    NotFittedError,
    RequestError,
)

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

__all__ = ["IntentClassifier", "IntentPrediction"]

_FORMAT = "langgraph_speculative.intent_classifier"
_FORMAT_VERSION = 1  # n-gram features only
_FORMAT_VERSION_EMBEDDINGS = 2  # with sentence-embedding features
_SPACES = re.compile(r"\s+")
_UNKNOWN_SLOT_CHAR = "\uf8ff"


@dataclass(frozen=True)
class IntentPrediction:
    """The predicted intent of one request.

    Attributes:
        label: The intent (``"domain.INTENT"``), or ``None`` for "unknown intent": the
            best confidence was below the classifier's ``min_confidence``.
        confidence: The calibrated probability of the best intent, in ``[0, 1]`` (also
            given when ``label`` is ``None``).
        top: The best intents with their probabilities, most likely first.

    Example:
        ```python
        from langgraph_speculative.cache.intent.classifier import IntentPrediction

        p = IntentPrediction(None, 0.41, (("train.QUERY", 0.41), ("flight.QUERY", 0.33)))
        assert not p.known and p.top[0][0] == "train.QUERY"
        ```
    """

    label: str | None
    confidence: float
    top: tuple[tuple[str, float], ...]

    @property
    def known(self) -> bool:
        """Whether an intent was predicted (``label`` is not ``None``)."""
        return self.label is not None


class IntentClassifier:
    """Classify a request's intent (``"domain.INTENT"``) or say it is unknown.

    Args:
        model: ``"logreg"`` (multinomial logistic regression, the default) or ``"svm"``
            (a linear SVM, one-vs-rest; its margins are calibrated the same way).
        C: Inverse regularisation strength of the model (default 0.5 for the SVM, 10 for
            logistic regression).
        ngram_range: Character n-gram sizes.
        text_mode: What the model reads: ``"raw"`` requests (default), ``"stripped"``
            requests (parameters replaced by placeholders; needs an extractor) or
            ``"both"``.
        class_weight: ``None`` or ``"balanced"`` (scikit-learn's meaning).
        min_confidence: Fixed unknown threshold; ``None`` (default) calibrates it in
            :meth:`fit` (see the module documentation).
        target_precision: Precision of accepted predictions the calibration aims at.
        unknown_rate: Assumed share of requests whose intent is not in the training set.
        folds: Folds of the calibration's cross-validation.
        top_k: How many intents :attr:`IntentPrediction.top` lists.
        seed: Seed of the cross-validation folds.
        max_chars: Longest request accepted.
        embeddings: A LangChain ``Embeddings`` whose sentence vectors the model reads
            too, for example a local Hugging Face model
            (:func:`~langgraph_speculative.integrations.huggingface.local_huggingface_embeddings`):
            a pretrained model knows what the training requests cannot teach (that
            "甲亢" is an illness, "搜狗" an app). Each request is embedded once more per
            prediction.
        features: What the linear model reads: ``"ngrams"`` (character n-grams; the
            default without ``embeddings``), ``"embeddings"`` (sentence vectors only) or
            ``"both"`` (the default with ``embeddings``).
        embedding_weight: Length of the sentence vector next to the unit-length n-gram
            vector (``"both"``): above 1 the model leans on the pretrained embedder.

    Example:
        ```python
        from langgraph_speculative.cache.intent.classifier import IntentClassifier
        from langgraph_speculative.cache.training_data import LabelledRequest

        ex = [LabelledRequest(t, d, "QUERY") for t, d in [
            ("北京天气怎么样", "weather"), ("明天上海下雨吗", "weather"),
            ("广州今天热不热", "weather"), ("深圳后天刮风吗", "weather"),
            ("红烧肉怎么做", "cookbook"), ("糖醋排骨的做法", "cookbook"),
            ("宫保鸡丁怎么做", "cookbook"), ("酸菜鱼的做法", "cookbook")]]
        clf = IntentClassifier(min_confidence=0.5).fit(ex)
        assert clf.predict("杭州明天下雨吗").label == "weather.QUERY"
        assert [p.top[0][0] for p in clf.predict_many(["鱼香肉丝怎么做"])] == ["cookbook.QUERY"]
        ```
    """

    def __init__(
        self,
        *,
        model: Literal["logreg", "svm"] = "svm",
        C: float | None = None,
        ngram_range: tuple[int, int] = (1, 3),
        text_mode: Literal["raw", "stripped", "both"] = "raw",
        class_weight: Literal["balanced"] | None = None,
        min_confidence: float | None = None,
        target_precision: float = 0.99,
        unknown_rate: float = 0.1,
        folds: int = 10,
        top_k: int = 5,
        seed: int = 0,
        max_chars: int = 2000,
        embeddings: Embeddings | None = None,
        features: Literal["ngrams", "embeddings", "both"] | None = None,
        embedding_weight: float = 1.0,
    ) -> None:
        if features is None:
            features = "ngrams" if embeddings is None else "both"
        if features not in ("ngrams", "embeddings", "both"):
            raise ValueError(f"features must be 'ngrams', 'embeddings' or 'both', got {features!r}")
        if features != "ngrams" and embeddings is None:
            raise ValueError(f"features={features!r} needs embeddings (a LangChain Embeddings)")
        if features == "ngrams" and embeddings is not None:
            raise ValueError("embeddings are given but features='ngrams' would not read them")
        if not embedding_weight > 0:
            raise ValueError(f"embedding_weight must be positive, got {embedding_weight}")
        if model not in ("logreg", "svm"):
            raise ValueError(f"model must be 'logreg' or 'svm', got {model!r}")
        if text_mode not in ("raw", "stripped", "both"):
            raise ValueError(f"text_mode must be 'raw', 'stripped' or 'both', got {text_mode!r}")
        lo, hi = ngram_range
        if not 1 <= lo <= hi:
            raise ValueError(f"ngram_range must be (lo, hi) with 1 <= lo <= hi, got {ngram_range}")
        if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        if not 0.0 < target_precision <= 1.0:
            raise ValueError(f"target_precision must be in (0, 1], got {target_precision}")
        if not 0.0 <= unknown_rate < 1.0:
            raise ValueError(f"unknown_rate must be in [0, 1), got {unknown_rate}")
        if folds < 2:
            raise ValueError(f"folds must be at least 2, got {folds}")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        self.model = model
        self.C = C if C is not None else (10.0 if model == "logreg" else 0.5)
        self.ngram_range = (lo, hi)
        self.text_mode = text_mode
        self.class_weight = class_weight
        self.target_precision = target_precision
        self.unknown_rate = unknown_rate
        self.folds = folds
        self.top_k = top_k
        self.seed = seed
        self.max_chars = max_chars
        self.features = features
        self.embedding_weight = float(embedding_weight)
        self._embeddings = embeddings
        self._dim = 0  # length of the sentence vectors the model was fitted on
        self._fixed_min_confidence = min_confidence
        self._min_confidence = 0.0 if min_confidence is None else min_confidence
        self._extractor: ParameterExtractor | None = None
        self._labels: list[str] = []
        self._features = NgramFeatures(self.ngram_range)
        self._coef = np.zeros((0, 0), dtype=np.float64)  # (n_features, n_labels)
        self._intercept = np.zeros(0, dtype=np.float64)
        self._temperature = 1.0
        self._slot_chars: dict[str, str] = {}
        self._calibration: dict[str, float] = {}
        self._oof_confidence = np.zeros(0, dtype=np.float64)
        self._oof_correct = np.zeros(0, dtype=bool)
        self._oof_predictions: list[tuple[str, float] | None] = []
        self._train_texts: list[str] = []
        self._fitted = False

    # -- properties -------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` or :meth:`load` has run."""
        return self._fitted

    @property
    def labels(self) -> tuple[str, ...]:
        """The intents the classifier knows, sorted."""
        return tuple(self._labels)

    @property
    def min_confidence(self) -> float:
        """The unknown threshold: a best confidence below it predicts ``label=None``."""
        return self._min_confidence

    @min_confidence.setter
    def min_confidence(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {value}")
        self._min_confidence = float(value)

    @property
    def temperature(self) -> float:
        """The fitted softmax temperature (1.0 when calibration had too little data)."""
        return self._temperature

    @property
    def calibration(self) -> dict[str, float]:
        """What the calibration measured out of fold (empty before fit).

        Keys: the chosen ``min_confidence``, ``estimated_precision``, ``known_coverage``,
        ``known_accuracy_accepted``, ``unseen_rejected``, ``known_oof_accuracy``, the
        example counts and ``temperature``; NaN where a measure had no data.
        """
        return dict(self._calibration)

    def confidence_for_precision(self, target_precision: float) -> float | None:
        """The least confidence whose out-of-fold accuracy on *known* intents reaches a target.

        Unlike :attr:`min_confidence` (which must also turn away requests of intents never
        seen), this only asks how sure the classifier must be for its top intent to be
        right ``target_precision`` of the time; a caller that guards unseen intents by
        other means (the plan cache's similarity gate) can use it. Never below 0.5.

        Args:
            target_precision: The share of accepted predictions that must be right.

        Returns:
            The threshold, or ``None`` when no out-of-fold predictions were kept (a
            loaded classifier, or too little data).

        Raises:
            ValueError: If ``target_precision`` is outside (0, 1].
        """
        if not 0.0 < target_precision <= 1.0:
            raise ValueError(f"target_precision must be in (0, 1], got {target_precision}")
        if len(self._oof_confidence) == 0:
            return None
        threshold, _ = choose_min_confidence(
            self._oof_confidence,
            self._oof_correct,
            np.zeros(0),
            target_precision,
            0.0,
        )
        return threshold

    def out_of_fold_predictions(self) -> list[tuple[str, float] | None]:
        """The cross-validated ``(top intent, confidence)`` of each example given to :meth:`fit`.

        Each comes from a fold model that did not see the example (in the order of the
        examples); ``None`` where no fold model knew the example's intent. Empty for a
        loaded classifier.
        """
        return list(self._oof_predictions)

    @property
    def extractor(self) -> ParameterExtractor | None:
        """The parameter extractor used to strip requests (``text_mode`` other than raw)."""
        return self._extractor

    @property
    def embeddings(self) -> Embeddings | None:
        """The sentence embedder the model reads (``None`` for n-grams only)."""
        return self._embeddings

    # -- text -------------------------------------------------------------------------
    def _check_text(self, text: object) -> str:
        return check_request(text, self.max_chars)

    @staticmethod
    def _normalise(text: str) -> str:
        return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).lower().strip())

    def _stripped(self, text: str, extractor: ParameterExtractor) -> str:
        stripped = extractor.extract_and_strip(text)[1]

        def mark(m: re.Match[str]) -> str:
            return self._slot_chars.get(m.group(0)[1:-1], _UNKNOWN_SLOT_CHAR)

        return PLACEHOLDER_PATTERN.sub(mark, stripped)

    def _grams(self, text: str, extractor: ParameterExtractor | None) -> list[str]:
        grams: list[str] = []
        if self.text_mode in ("raw", "both"):
            grams.extend(ngrams(self._normalise(text), self.ngram_range))
        if self.text_mode in ("stripped", "both"):
            if extractor is None:
                raise NotFittedError(
                    f"this classifier reads stripped requests (text_mode={self.text_mode!r}) "
                    "and has no parameter extractor"
                )
            stripped = ngrams(self._normalise(self._stripped(text, extractor)), self.ngram_range)
            grams.extend(stripped if self.text_mode == "stripped" else ["s" + g for g in stripped])
        return grams

    def _dense(self, texts: Sequence[str]) -> np.ndarray:
        """The requests' sentence vectors, unit length times ``embedding_weight``.

        ``(len(texts), 0)`` when the model reads no embeddings.

        Raises:
            EmbeddingDimensionError: If the embedder returns vectors of another length
                than the model was fitted on, empty ones, or NaN or inf.
        """
        if self._embeddings is None or not texts:
            return np.zeros((len(texts), 0))
        vectors = np.asarray(self._embeddings.embed_documents(list(texts)), dtype=np.float64)
        expected = self._dim or (vectors.shape[1] if vectors.ndim == 2 else 0)
        if vectors.ndim != 2 or vectors.shape != (len(texts), expected) or expected == 0:
            raise EmbeddingDimensionError(
                f"the classifier's embedder returned vectors of shape {vectors.shape} for "
                f"{len(texts)} texts; expected length {self._dim or 'above 0'}"
            )
        if not np.all(np.isfinite(vectors)):
            raise EmbeddingDimensionError("the classifier's embedder returned NaN or inf")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        out: np.ndarray = vectors / np.where(norms > 0, norms, 1.0) * self.embedding_weight
        return out

    def _read(self, grams: list[list[str]]) -> list[list[str]]:
        """The n-grams the linear model reads: none with ``features="embeddings"``."""
        return grams if self.features != "embeddings" else [[] for _ in grams]

    def _design(
        self, features: NgramFeatures, grams: Sequence[list[str]], dense: np.ndarray
    ) -> Any:
        """The model's input rows: n-gram TF-IDF of ``grams``, then the sentence vectors."""
        from scipy.sparse import csr_matrix, hstack  # type: ignore[import-untyped]

        sparse = features.matrix(grams)
        if dense.shape[1] == 0:
            return sparse
        return hstack([sparse, csr_matrix(dense)], format="csr")

    def _score_rows(self, texts: Sequence[str]) -> np.ndarray:
        """Raw scores of checked requests, one row each."""
        grams = self._read([self._grams(t, self._extractor) for t in texts])
        x = self._design(self._features, grams, self._dense(texts))
        return np.asarray(x @ self._coef) + self._intercept

    # -- training ---------------------------------------------------------------------
    def _train(self, x: Any, y: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
        """Fit the linear model; returns ``(coef (n_features, n_labels), intercept)``."""
        classes = np.unique(y)
        coef = np.zeros((x.shape[1], n_labels), dtype=np.float64)
        intercept = np.full(n_labels, -1e4, dtype=np.float64)  # unseen labels never win
        if len(classes) == 1:
            intercept[classes[0]] = 0.0
            return coef, intercept
        if self.model == "logreg":
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(
                C=self.C, tol=1e-3, max_iter=300, class_weight=self.class_weight
            )
            lr.fit(x, y)
            w, b = lr.coef_, lr.intercept_
            if len(classes) == 2:  # binary: one weight vector for class 1
                w = np.vstack([-w[0] / 2, w[0] / 2])
                b = np.array([-b[0] / 2, b[0] / 2])
        else:
            from sklearn.svm import LinearSVC

            svm = LinearSVC(C=self.C, class_weight=self.class_weight, max_iter=10_000)
            svm.fit(x, y)
            w, b = svm.coef_, svm.intercept_
            if len(classes) == 2:
                w = np.vstack([-w[0], w[0]])
                b = np.array([-b[0], b[0]])
        coef[:, classes] = w.T
        intercept[classes] = b
        return coef, intercept

    def _fit_fold(
        self,
        grams: Sequence[list[str]],
        dense: np.ndarray,
        y: np.ndarray,
        train_idx: np.ndarray,
        test_idx: np.ndarray,
        n_labels: int,
    ) -> np.ndarray:
        features = NgramFeatures(self.ngram_range)
        features.fit([grams[k] for k in train_idx])
        x_train = self._design(features, [grams[k] for k in train_idx], dense[train_idx])
        x_test = self._design(features, [grams[k] for k in test_idx], dense[test_idx])
        coef, intercept = self._train(x_train, y[train_idx], n_labels)
        scores: np.ndarray = np.asarray(x_test @ coef) + intercept
        return scores

    def fit(
        self, examples: Iterable[LabelledRequest], *, extractor: ParameterExtractor | None = None
    ) -> Self:
        """Train the classifier and calibrate its confidences and unknown threshold.

        Args:
            examples: Labelled requests of at least two intents.
            extractor: A fitted parameter extractor; needed when ``text_mode`` is
                ``"stripped"`` or ``"both"`` (ignored for ``"raw"``).

        Returns:
            The classifier itself.

        Raises:
            ValueError: If the examples hold fewer than two intents, or the text mode
                needs an extractor and none (or an unfitted one) is given.
            TypeError: If an example is not a :class:`LabelledRequest`.
        """
        data = list(examples)
        for k, ex in enumerate(data):
            if not isinstance(ex, LabelledRequest):
                raise TypeError(f"example {k} is a {type(ex).__name__}, not a LabelledRequest")
        labels = sorted({ex.label for ex in data})
        if len(labels) < 2:
            raise ValueError(f"fit needs examples of at least two intents, got {labels}")
        if self.text_mode != "raw":
            if extractor is None or not extractor.is_fitted:
                raise ValueError(f"text_mode={self.text_mode!r} needs a fitted extractor")
            slots = sorted(set(extractor.slots) | {"datetime", "number", "place", "name"})
            slots += sorted(set(extractor.gazetteer_names) - set(slots))
            self._slot_chars = {s: chr(0xE000 + k) for k, s in enumerate(slots)}
            self._extractor = extractor
        else:
            self._extractor = None
        index = {lab: k for k, lab in enumerate(labels)}
        texts = [ex.text for ex in data]
        y = np.array([index[ex.label] for ex in data], dtype=np.int64)
        domains = [ex.domain for ex in data]
        self._labels = labels
        grams = self._read([self._grams(t, self._extractor) for t in texts])
        self._dim = 0
        dense = self._dense(texts)
        self._dim = dense.shape[1]
        self._calibrate(grams, dense, y, domains, len(labels))
        self._train_texts = texts

        features = NgramFeatures(self.ngram_range)
        features.fit(grams)
        coef, intercept = self._train(self._design(features, grams, dense), y, len(labels))
        self._features = features
        self._coef = coef
        self._intercept = intercept
        self._fitted = True
        return self

    def _calibrate(
        self,
        grams: list[list[str]],
        dense: np.ndarray,
        y: np.ndarray,
        domains: list[str],
        n_labels: int,
    ) -> None:
        rng = np.random.default_rng(self.seed)
        n = len(grams)
        # 1. Known intents: stratified folds (each class dealt round-robin after a shuffle).
        fold = np.zeros(n, dtype=np.int64)
        for c in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == c))
            fold[members] = (np.arange(len(members)) + int(rng.integers(self.folds))) % self.folds
        oof = np.full((n, n_labels), np.nan)
        for f in range(self.folds):
            test_idx, train_idx = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
            if len(test_idx) == 0 or len(np.unique(y[train_idx])) < 2:
                continue
            oof[test_idx] = self._fit_fold(grams, dense, y, train_idx, test_idx, n_labels)
        seen_in_fold = np.array(
            [not np.isnan(oof[k, 0]) and bool(np.any(y[fold != fold[k]] == y[k])) for k in range(n)]
        )
        known_scores, known_y = oof[seen_in_fold], y[seen_in_fold]
        self._temperature = fit_temperature(known_scores, known_y) if len(known_y) >= 20 else 1.0
        known_probs = (
            softmax(known_scores / self._temperature) if len(known_y) else np.zeros((0, 1))
        )
        known_conf = known_probs.max(axis=1) if len(known_y) else np.zeros(0)
        known_correct = (
            known_probs.argmax(axis=1) == known_y if len(known_y) else np.zeros(0, dtype=bool)
        )

        # 2. Unseen intents: hold out whole domains (or whole intents with < 3 domains).
        groups_of = domains if len(set(domains)) >= 3 else [str(c) for c in y.tolist()]
        groups = sorted(set(groups_of))
        unseen_conf = np.zeros(0)
        if len(groups) >= 3:
            order = rng.permutation(len(groups))
            group_fold = {groups[g]: k % min(self.folds, len(groups)) for k, g in enumerate(order)}
            gf = np.array([group_fold[g] for g in groups_of])
            confs: list[np.ndarray] = []
            for f in range(min(self.folds, len(groups))):
                test_idx, train_idx = np.flatnonzero(gf == f), np.flatnonzero(gf != f)
                if len(test_idx) == 0 or len(np.unique(y[train_idx])) < 2:
                    continue
                scores = self._fit_fold(grams, dense, y, train_idx, test_idx, n_labels)
                confs.append(softmax(scores / self._temperature).max(axis=1))
            if confs:
                unseen_conf = np.concatenate(confs)

        self._oof_confidence = np.asarray(known_conf, dtype=np.float64)
        self._oof_correct = np.asarray(known_correct, dtype=bool)
        self._oof_predictions = [None] * n
        for row, k in enumerate(np.flatnonzero(seen_in_fold)):
            j = int(known_probs[row].argmax())
            self._oof_predictions[int(k)] = (self._labels[j], float(known_probs[row, j]))

        # 3. The threshold.
        fixed = self._fixed_min_confidence
        if len(known_conf) == 0:
            threshold = MIN_THRESHOLD if fixed is None else fixed
            report: dict[str, float] = {}
        else:
            threshold, report = choose_min_confidence(
                known_conf,
                known_correct,
                unseen_conf,
                self.target_precision,
                self.unknown_rate,
                fixed,
            )
        report["temperature"] = self._temperature
        report["min_confidence"] = threshold
        self._min_confidence = threshold
        self._calibration = report

    # -- inference --------------------------------------------------------------------
    def _prediction(self, probs: np.ndarray) -> IntentPrediction:
        k = min(self.top_k, len(self._labels))
        order = np.argsort(-probs, kind="stable")[:k]
        top = tuple((self._labels[j], float(probs[j])) for j in order)
        confidence = top[0][1]
        label = top[0][0] if confidence >= self._min_confidence else None
        return IntentPrediction(label, confidence, top)

    def _require_fitted(self, what: str) -> None:
        if not self._fitted:
            raise NotFittedError(f"IntentClassifier.{what} before fit() or load()")

    def predict(self, text: str) -> IntentPrediction:
        """Predict the intent of one request.

        Args:
            text: The request.

        Returns:
            The prediction; ``label`` is ``None`` when the intent is unknown.

        Raises:
            NotFittedError: Before :meth:`fit` or :meth:`load`.
            RequestError: If ``text`` is not a string, is blank, or is too long.
        """
        self._require_fitted("predict")
        _, scores = self._scores(text)
        return self._prediction(softmax(scores / self._temperature))

    def _scores(self, text: str) -> tuple[list[str], np.ndarray]:
        """A request's n-grams and its raw score for each known intent."""
        text = self._check_text(text)
        grams = self._grams(text, self._extractor)
        idx, vals = self._features.row(grams)  # no vocabulary: features="embeddings"
        scores = vals @ self._coef[idx] + self._intercept
        if self._embeddings is not None:
            scores += self._dense([text])[0] @ self._coef[len(self._features.vocabulary) :]
        return grams, scores

    def predict_many(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """Predict the intents of many requests (one matrix product).

        Args:
            texts: The requests.

        Returns:
            One prediction per request, in order.

        Raises:
            NotFittedError: Before :meth:`fit` or :meth:`load`.
            RequestError: If a request is not usable (the message gives its index).
        """
        self._require_fitted("predict_many")
        checked: list[str] = []
        for k, text in enumerate(texts):
            try:
                checked.append(self._check_text(text))
            except RequestError as exc:
                raise RequestError(f"request {k}: {exc}") from exc
        if not checked:
            return []
        probs = softmax(self._score_rows(checked) / self._temperature)
        return [self._prediction(row) for row in probs]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities of every intent (columns in :attr:`labels` order).

        Args:
            texts: The requests.

        Returns:
            An array of shape ``(len(texts), len(labels))``.

        Raises:
            NotFittedError: Before :meth:`fit` or :meth:`load`.
            RequestError: If a request is not usable.
        """
        self._require_fitted("predict_proba")
        checked = [self._check_text(t) for t in texts]
        if not checked:
            return np.zeros((0, len(self._labels)))
        return softmax(self._score_rows(checked) / self._temperature)

    # -- persistence ------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Save the fitted classifier to a directory (``meta.json`` + ``arrays.npz``).

        The parameter extractor of a ``stripped``/``both`` classifier is not saved with
        it: save it too and pass it to :meth:`load`; nor is the sentence embedder (its
        name and vector length are: :meth:`load` checks the one given). The training
        requests' texts are saved (not their labels):
        :class:`~langgraph_speculative.cache.intent.learned.LearnedIntents` trains
        against them.

        Args:
            path: The directory (created if needed).

        Raises:
            NotFittedError: Before :meth:`fit` or :meth:`load`.
        """
        self._require_fitted("save")
        vocabulary = sorted(self._features.vocabulary, key=self._features.vocabulary.__getitem__)
        meta = {
            "settings": {
                "model": self.model,
                "C": self.C,
                "ngram_range": list(self.ngram_range),
                "text_mode": self.text_mode,
                "class_weight": self.class_weight,
                "target_precision": self.target_precision,
                "unknown_rate": self.unknown_rate,
                "folds": self.folds,
                "top_k": self.top_k,
                "seed": self.seed,
                "max_chars": self.max_chars,
                "fixed_min_confidence": self._fixed_min_confidence,
                "features": self.features,
                "embedding_weight": self.embedding_weight,
            },
            "embedding_dim": self._dim,
            "embedding_model": _describe(self._embeddings),
            "labels": self._labels,
            "vocabulary": vocabulary,
            "temperature": self._temperature,
            "min_confidence": self._min_confidence,
            "slot_chars": self._slot_chars,
            "training_texts": self._train_texts,
            "calibration": {
                k: (None if math.isnan(v) else v) for k, v in self._calibration.items()
            },
        }
        write_model_dir(
            path,
            fmt=_FORMAT,
            version=_FORMAT_VERSION if self._embeddings is None else _FORMAT_VERSION_EMBEDDINGS,
            meta=meta,
            arrays={
                "idf": self._features.idf,
                "coef": self._coef.astype(np.float32),
                "intercept": self._intercept,
            },
        )

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        extractor: ParameterExtractor | None = None,
        embeddings: Embeddings | None = None,
    ) -> IntentClassifier:
        """Load a classifier saved by :meth:`save`.

        Args:
            path: The directory.
            extractor: The fitted parameter extractor, for a classifier trained on
                stripped requests (``text_mode`` ``"stripped"`` or ``"both"``).
            embeddings: The sentence embedder, for a classifier that reads one (the same
                model it was fitted with: its vector length is checked).

        Returns:
            The fitted classifier.

        Raises:
            CacheCorruptError: If the files are missing, damaged or of another format.
            ValueError: If the classifier needs an extractor or an embedder and none is
                given, or is given an embedder it does not read.
            EmbeddingDimensionError: If the embedder's vectors have another length than
                the classifier was fitted on.
        """
        meta, arrays = read_model_dir(
            path,
            fmt=_FORMAT,
            version=(_FORMAT_VERSION, _FORMAT_VERSION_EMBEDDINGS),
            required=("idf", "coef", "intercept"),
        )
        try:
            s = meta["settings"]
            features = s.get("features", "ngrams")
            dim = int(meta.get("embedding_dim", 0))
            model_name = str(meta.get("embedding_model", ""))
            if features not in ("ngrams", "embeddings", "both"):
                raise ValueError(f"unknown features {features!r}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CacheCorruptError(f"{path}: malformed classifier metadata: {exc!r}") from exc
        if features != "ngrams" and embeddings is None:
            raise ValueError(
                f"{path}: this classifier reads sentence embeddings ({model_name}, "
                f"length {dim}); pass that embedder as embeddings="
            )
        if features == "ngrams" and embeddings is not None:
            raise ValueError(f"{path}: this classifier reads no embeddings; pass none")
        if embeddings is not None and embedding_dimension(embeddings) != dim:
            raise EmbeddingDimensionError(
                f"{path}: the classifier was fitted on vectors of length {dim} "
                f"({model_name}); the embedder given returns length "
                f"{embedding_dimension(embeddings)}"
            )
        try:
            clf = cls(
                model=s["model"],
                C=float(s["C"]),
                ngram_range=(int(s["ngram_range"][0]), int(s["ngram_range"][1])),
                text_mode=s["text_mode"],
                class_weight=s["class_weight"],
                min_confidence=s["fixed_min_confidence"],
                target_precision=float(s["target_precision"]),
                unknown_rate=float(s["unknown_rate"]),
                folds=int(s["folds"]),
                top_k=int(s["top_k"]),
                seed=int(s["seed"]),
                max_chars=int(s["max_chars"]),
                embeddings=embeddings,
                features=features,
                embedding_weight=float(s.get("embedding_weight", 1.0)),
            )
            labels = [str(x) for x in meta["labels"]]
            vocabulary = [str(g) for g in meta["vocabulary"]]
            temperature = float(meta["temperature"])
            min_confidence = float(meta["min_confidence"])
            slot_chars = {str(k): str(v) for k, v in meta["slot_chars"].items()}
            train_texts = [str(t) for t in meta.get("training_texts", [])]
            calibration = {
                str(k): float("nan") if v is None else float(v)
                for k, v in meta["calibration"].items()
            }
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise CacheCorruptError(f"{path}: malformed classifier metadata: {exc!r}") from exc
        idf, coef, intercept = arrays["idf"], arrays["coef"], arrays["intercept"]
        if (
            idf.shape != (len(vocabulary),)
            or coef.shape != (len(vocabulary) + dim, len(labels))
            or intercept.shape != (len(labels),)
            or len(labels) < 2
            or not temperature > 0
            or not 0.0 <= min_confidence <= 1.0
        ):
            raise CacheCorruptError(f"{path}: classifier arrays do not match its metadata")
        if clf.text_mode != "raw":
            if extractor is None or not extractor.is_fitted:
                raise ValueError(
                    f"{path}: this classifier reads stripped requests; pass its fitted extractor"
                )
            clf._extractor = extractor
        features = NgramFeatures(clf.ngram_range)
        features.vocabulary = {g: k for k, g in enumerate(vocabulary)}
        features.idf = idf.astype(np.float64)
        clf._features = features
        clf._labels = labels
        clf._coef = coef.astype(np.float64)
        clf._intercept = intercept.astype(np.float64)
        clf._temperature = temperature
        clf._min_confidence = min_confidence
        clf._slot_chars = slot_chars
        clf._calibration = calibration
        clf._train_texts = train_texts
        clf._dim = dim
        clf._fitted = True
        return clf


def _describe(embeddings: Embeddings | None) -> str:
    """A readable name of an embedder (its model name when it has one)."""
    if embeddings is None:
        return ""
    kind = type(embeddings).__name__
    name = getattr(embeddings, "model_name", None) or getattr(embeddings, "model", None)
    return f"{kind}({name})" if isinstance(name, str) else kind
