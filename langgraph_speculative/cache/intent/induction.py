"""Online intent induction: reuse plans of task types the intent classifier never saw.

AgentReuse sends every request of an unknown intent to the planner and never caches it,
so a new task type is planned again and again. Here such requests are not dropped: once
the planner has planned one, its plan is stored in an *induced* partition, labelled by
the plan's shape (:meth:`Plan.signature`: tools and dependencies, not values). The next
unknown request is compared with the induced entries; it reuses one only when

* its nearest induced entry is at least ``threshold`` similar (stricter than within a
  known intent, since no classifier vouches for the request), and
* the entries above the threshold among its ``k`` nearest agree on one plan shape
  (a request that sits between two task types is not guessed at), and
* enough of the request is left once its parameters are stripped (``min_content``
  characters besides placeholders): "<name>" alone says nothing about the task.

With ``learn`` on (the default), the induced labels are also *learned*: each planned request of
unknown intent is added, with its plan's label, to
:class:`~langgraph_speculative.cache.intent.classifier.LearnedIntents`, which learns to recognise
the new task type after ``learned_min_examples`` requests. A later request whose learned intent
beats every known intent with probability at least ``learned_confidence`` then reuses the nearest
induced entry *of that intent* if it is at least ``learned_threshold`` similar (the looser threshold
a classifier's vote affords). A signature already stored under a known intent is not learned (it is
that intent).

Example:
    ```python
    from langgraph_speculative.cache.intent.induction import IntentInducer
    from langgraph_speculative.cache.vectors.vector_index import VectorHit

    inducer = IntentInducer(threshold=0.8)
    hits = [
        VectorHit(key="a", score=0.93, partition=inducer.partition, payload={"induced": "x"}),
        VectorHit(key="b", score=0.85, partition=inducer.partition, payload={"induced": "x"}),
    ]
    assert inducer.choose(hits).key == "a"
    other = VectorHit(key="c", score=0.9, partition=inducer.partition, payload={"induced": "y"})
    hits.append(other)
    assert inducer.choose(hits) is None  # two plan shapes above the threshold: no guess
    assert inducer.usable("<dishName>怎么做") and not inducer.usable("<name>。")
    ```
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from langgraph_speculative.cache.plans.plan import Plan
from langgraph_speculative.cache.vectors.embeddings import PLACEHOLDER_PATTERN
from langgraph_speculative.cache.vectors.vector_index import VectorHit

__all__ = ["INDUCED_PARTITION", "IntentInducer"]

INDUCED_PARTITION = "__induced__"
"""The vector-index partition that holds the plans of requests of no known intent."""

_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class IntentInducer:
    """Decides when a request of unknown intent may reuse an induced plan.

    Args:
        threshold: Least cosine similarity between the stripped request and an induced
            entry for a reuse.
        k: How many nearest induced entries are asked to agree on one plan shape.
        partition: The vector-index partition of induced entries.
        min_content: Least characters a stripped request must keep besides placeholders
            and punctuation to take part.
        learn: Learn the induced labels online (see the module).
        learned_confidence: Least probability of a learned intent for its entries to be
            searched.
        learned_threshold: Least similarity to an entry of the learned intent for a reuse.
        learned_k: How many nearest induced entries are searched for one of the learned
            intent.
        learned_min_examples: Planned requests a label needs before it is learned.
        learned_C: Inverse regularisation of the learned intents' model.
    """

    threshold: float = 0.8
    k: int = 3
    partition: str = INDUCED_PARTITION
    min_content: int = 2
    learn: bool = True
    learned_confidence: float = 0.7
    learned_threshold: float = 0.3
    learned_k: int = 50
    learned_min_examples: int = 2
    learned_C: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if not 0.0 <= self.learned_confidence <= 1.0:
            raise ValueError(f"learned_confidence must be in [0, 1], got {self.learned_confidence}")
        if not 0.0 < self.learned_threshold <= 1.0:
            raise ValueError(f"learned_threshold must be in (0, 1], got {self.learned_threshold}")
        if self.learned_k < 1:
            raise ValueError(f"learned_k must be >= 1, got {self.learned_k}")
        if self.learned_min_examples < 1:
            raise ValueError(f"learned_min_examples must be >= 1, got {self.learned_min_examples}")
        if not self.learned_C > 0:
            raise ValueError(f"learned_C must be positive, got {self.learned_C}")

    def settings(self) -> dict[str, float | int | bool]:
        """The settings to save (all but ``partition``), as ``IntentInducer(**settings)``."""
        return {
            "threshold": self.threshold,
            "k": self.k,
            "min_content": self.min_content,
            "learn": self.learn,
            "learned_confidence": self.learned_confidence,
            "learned_threshold": self.learned_threshold,
            "learned_k": self.learned_k,
            "learned_min_examples": self.learned_min_examples,
            "learned_C": self.learned_C,
        }

    @staticmethod
    def label(plan: Plan) -> str:
        """The induced intent of a plan: a short stable name for its shape."""
        digest = hashlib.sha256(plan.signature().encode("utf-8")).hexdigest()[:12]
        return f"induced:{digest}"

    def usable(self, stripped: str) -> bool:
        """Whether a stripped request says enough about its task to match by.

        Args:
            stripped: The request with parameters replaced by placeholders.
        """
        content = _NOT_WORD.sub("", PLACEHOLDER_PATTERN.sub("", stripped))
        return len(content) >= self.min_content

    def choose_learned(self, hits: Sequence[VectorHit], label: str) -> VectorHit | None:
        """Pick the entry to reuse for a request the learned model gives intent ``label``.

        Args:
            hits: The nearest induced entries, best first.
            label: The learned intent of the request.

        Returns:
            The nearest entry of that intent when it is at least ``learned_threshold``
            similar; otherwise ``None``.
        """
        for h in hits[: self.learned_k]:
            if h.payload.get("induced") == label:
                return h if h.score >= self.learned_threshold else None
        return None

    def choose(self, hits: Sequence[VectorHit]) -> VectorHit | None:
        """Pick the induced entry to reuse among the nearest ``hits``, or ``None``.

        Args:
            hits: The nearest induced entries, best first (``payload["induced"]`` holds
                each entry's induced intent).

        Returns:
            The best hit when it clears the threshold and every hit above the threshold
            shares its induced intent; otherwise ``None``.
        """
        above = [h for h in hits[: self.k] if h.score >= self.threshold]
        if not above:
            return None
        best = max(above, key=lambda h: h.score)
        shapes = {h.payload.get("induced") for h in above}
        return best if len(shapes) == 1 else None
