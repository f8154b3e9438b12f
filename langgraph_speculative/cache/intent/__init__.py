"""Intent classification: the classifier, learned and induced intents, calibration.

The modules, one concept each:

- :mod:`~langgraph_speculative.cache.intent.classifier`: :class:`IntentClassifier`
  (calibrated, with an explicit "unknown") and its :class:`IntentPrediction`;
- :mod:`~langgraph_speculative.cache.intent.learned`: :class:`LearnedIntents`, intents
  learned online next to a fitted classifier;
- :mod:`~langgraph_speculative.cache.intent.induction`: :class:`IntentInducer`, reuse
  for requests of intents never trained on;
- :mod:`~langgraph_speculative.cache.intent.calibration`: temperature scaling and the
  unknown threshold;
- :mod:`~langgraph_speculative.cache.intent.ngram_features`: the character n-gram TF-IDF
  features.
"""

from __future__ import annotations

from langgraph_speculative.cache.intent.classifier import IntentClassifier, IntentPrediction
from langgraph_speculative.cache.intent.induction import INDUCED_PARTITION, IntentInducer
from langgraph_speculative.cache.intent.learned import LearnedIntents

__all__ = [
    "INDUCED_PARTITION",
    "IntentClassifier",
    "IntentInducer",
    "IntentPrediction",
    "LearnedIntents",
]
