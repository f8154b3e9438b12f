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

Example:
    ```python
    from langgraph_speculative.cache.intent_induction import IntentInducer
    from langgraph_speculative.cache.vector_index import VectorHit

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

from langgraph_speculative.cache.embedders import PLACEHOLDER_PATTERN
from langgraph_speculative.cache.plans import Plan
from langgraph_speculative.cache.vector_index import VectorHit

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
    """

    threshold: float = 0.8
    k: int = 3
    partition: str = INDUCED_PARTITION
    min_content: int = 2

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")

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
