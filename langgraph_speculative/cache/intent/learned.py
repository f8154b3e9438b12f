"""Intents learned online, next to a fitted intent classifier that never saw them.

:class:`LearnedIntents` is a second linear head over the classifier's n-grams: the plan
cache adds requests of no known intent to it, labelled with the shape of their plan, and
asks it whether a new request belongs to one of those learned intents. It works on the
classifier's own n-grams, raw scores and training requests (reading them from the
classifier), and leaves the classifier's weights as they are.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from langgraph_speculative.cache.intent.calibration import softmax
from langgraph_speculative.cache.intent.classifier import IntentClassifier, IntentPrediction
from langgraph_speculative.cache.intent.ngram_features import NgramFeatures
from langgraph_speculative.cache.training_data import check_request
from langgraph_speculative.errors import NotFittedError

__all__ = ["LearnedIntents"]


@dataclass(frozen=True)
class _LearnedHead:
    features: NgramFeatures
    coef: np.ndarray  # (n_features, n_learned)
    intercept: np.ndarray
    labels: tuple[str, ...]


class LearnedIntents:
    """Intents learned online, next to a fitted classifier that never saw them.

    The plan cache labels each request of no known intent with the shape of the plan the
    planner made for it (:meth:`IntentInducer.label
    <langgraph_speculative.cache.intent.induction.IntentInducer.label>`) and adds it here.
    Once a label has ``min_examples`` requests, a one-vs-rest linear SVM per learned label
    is fitted against the classifier's training requests (as "none of these") and the
    other learned requests, over n-grams of all of them (tens of milliseconds for a
    thousand training requests). The classifier itself is left as it is: its weights,
    temperature and thresholds, so its predictions of known intents do not change.

    :meth:`predict` scores a request with the classifier's known intents and the learned
    ones together (one softmax at the classifier's temperature) and returns a learned
    intent only when it beats every known one.

    Args:
        classifier: The fitted
            :class:`~langgraph_speculative.cache.intent.classifier.IntentClassifier`; it
            must hold its training texts (fitted, or saved and loaded by this version).
        C: Inverse regularisation of the learned intents' SVMs (above the classifier's:
            a new intent has few examples and must still win against the known ones).
        min_examples: Requests a label needs before it is learned.

    Raises:
        NotFittedError: If the classifier is not fitted.
        ValueError: If ``C`` is not positive or ``min_examples`` < 1.

    Example:
        ```python
        from langgraph_speculative.cache.intent.classifier import IntentClassifier
        from langgraph_speculative.cache.intent.learned import LearnedIntents
        from langgraph_speculative.cache.training_data import LabelledRequest

        ex = [LabelledRequest(f"{c}到{d}的火车票", "train", "QUERY")
              for c in ["合肥", "长沙", "南京"] for d in ["北京", "上海", "广州"]]
        ex += [LabelledRequest(f"{d}怎么做", "cookbook", "QUERY")
               for d in ["红烧肉", "糖醋排骨", "宫保鸡丁", "麻婆豆腐", "鱼香肉丝"]]
        learned = LearnedIntents(IntentClassifier(min_confidence=0.5).fit(ex))
        learned.add("讲一个谜语", "induced:riddle")
        learned.add("给我猜个谜语", "induced:riddle")
        assert learned.predict("来一个谜语吧")[0] == "induced:riddle"
        assert learned.predict("杭州到北京的火车票") is None
        ```
    """

    def __init__(
        self, classifier: IntentClassifier, *, C: float = 2.0, min_examples: int = 2
    ) -> None:
        if not classifier.is_fitted:
            raise NotFittedError("IntentClassifier.LearnedIntents before fit() or load()")
        if not C > 0:
            raise ValueError(f"C must be positive, got {C}")
        if min_examples < 1:
            raise ValueError(f"min_examples must be >= 1, got {min_examples}")
        self.classifier = classifier
        self.C = float(C)
        self.min_examples = min_examples
        self._base_grams: list[list[str]] | None = None
        self._examples: list[tuple[str, str]] = []
        self._grams: list[list[str]] = []
        self._head: _LearnedHead | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        """The learned intents :meth:`predict` can return (those with enough examples)."""
        return () if self._head is None else self._head.labels

    @property
    def examples(self) -> list[tuple[str, str]]:
        """Every ``(request, label)`` added, in order."""
        return list(self._examples)

    @property
    def can_learn(self) -> bool:
        """Whether the classifier's training texts are there to learn against."""
        return bool(self.classifier._train_texts)

    def add(self, text: str, label: str, *, refit: bool = True) -> bool:
        """Add a request of a learned intent; refit when that label has enough examples.

        Args:
            text: The request.
            label: Its learned intent (not one the classifier knows).
            refit: Refit now (``False`` only adds; call :meth:`refit` later).

        Returns:
            Whether the model was refitted.

        Raises:
            ValueError: If ``label`` is an intent the classifier knows.
            RequestError: If ``text`` is not a usable request.
        """
        if label in self.classifier.labels:
            raise ValueError(f"{label!r} is a known intent of the classifier")
        text = check_request(text, self.classifier.max_chars)
        self._examples.append((text, label))
        self._grams.append(self.classifier._grams(text, self.classifier.extractor))
        count = sum(1 for _, lab in self._examples if lab == label)
        if refit and count >= self.min_examples and self.can_learn:
            self.refit()
            return True
        return False

    def refit(self) -> None:
        """Fit the learned intents' SVMs on the examples added so far (see the class)."""
        counts = Counter(lab for _, lab in self._examples)
        keep = [k for k, (_, lab) in enumerate(self._examples) if counts[lab] >= self.min_examples]
        if not keep or not self.can_learn:
            self._head = None
            return
        clf = self.classifier
        if self._base_grams is None:
            self._base_grams = [clf._grams(t, clf.extractor) for t in clf._train_texts]
        labels = tuple(sorted({self._examples[k][1] for k in keep}))
        index = {lab: j + 1 for j, lab in enumerate(labels)}  # 0: none of them
        grams = self._base_grams + [self._grams[k] for k in keep]
        y = np.array(
            [0] * len(self._base_grams) + [index[self._examples[k][1]] for k in keep],
            dtype=np.int64,
        )
        features = NgramFeatures(clf.ngram_range)
        features.fit(grams)
        from sklearn.svm import LinearSVC

        svm = LinearSVC(C=self.C, max_iter=10_000)
        svm.fit(features.matrix(grams), y)
        w, b = svm.coef_, svm.intercept_
        if len(labels) == 1:  # binary: one weight vector for "learned"
            w, b = w[:1], b[:1]
        else:
            w, b = w[1:], b[1:]
        self._head = _LearnedHead(
            features, np.asarray(w.T), np.asarray(b, dtype=np.float64), labels
        )

    def classify(self, text: str) -> tuple[IntentPrediction, tuple[str, float] | None]:
        """The classifier's prediction and :meth:`predict`'s, in one pass over the request.

        Args:
            text: The request.

        Returns:
            ``(IntentClassifier.predict(text), predict(text))``.

        Raises:
            RequestError: If ``text`` is not a usable request.
        """
        clf = self.classifier
        grams, known = clf._scores(text)
        prediction = clf._prediction(softmax(known / clf.temperature))
        head = self._head
        if head is None:
            return prediction, None
        idx, vals = head.features.row(grams)
        learned = vals @ head.coef[idx] + head.intercept
        probs = softmax(np.concatenate([known, learned]) / clf.temperature)
        j = int(np.argmax(probs))
        if j < len(known):
            return prediction, None
        return prediction, (head.labels[j - len(known)], float(probs[j]))

    def predict(self, text: str) -> tuple[str, float] | None:
        """The learned intent of a request, when one beats every known intent.

        Args:
            text: The request.

        Returns:
            ``(label, probability)`` (softmax over known and learned intents at the
            classifier's temperature), or ``None`` when nothing is learned yet or a
            known intent scores higher.

        Raises:
            RequestError: If ``text`` is not a usable request.
        """
        return self.classify(text)[1]
