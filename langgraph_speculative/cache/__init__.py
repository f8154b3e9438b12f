"""Plan reuse (AgentReuse): intent, parameters, embedders, plans, vector back-ends, the cache.

The pieces, each in its own module, and the names exported here:

- :class:`PlanCache` (:mod:`~langgraph_speculative.cache.plan_cache`): the pipeline
  classify -> extract and strip -> embed -> search within the intent -> fill;
- :class:`IntentClassifier` / :class:`IntentPrediction` (``intent.classifier``),
  :class:`LearnedIntents` (``intent.learned``) and
  :class:`ParameterExtractor` / :class:`Parameter` (``parameters.extractor``),
  :func:`load_gazetteers` (``parameters.gazetteers``), :func:`normalise_value`
  (``parameters.normalise``), trained from :class:`LabelledRequest` examples
  (``training_data``);
- :class:`NgramEmbeddings` (and, from :mod:`langgraph_speculative.integrations.huggingface`,
  :func:`~langgraph_speculative.integrations.huggingface.local_huggingface_embeddings`)
  (``vectors.embeddings``);
- :class:`VectorIndex` (``vectors.vector_index``) with :class:`FaissIndex` and
  :class:`PgVectorIndex`, opened by name with :func:`open_vector_index`
  (``vectors.backends``);
- :class:`Plan` / :class:`PlanStep` (``plans.plan``), :class:`LLMPlanner` and
  :class:`TemplatePlanner` (``plans.planner``), :func:`run_plan` / :class:`PlanRun`
  (``plans.runner``);
- :class:`IntentInducer` (``intent.induction``): reuse for intents never trained on.

The graph nodes that use them are in :mod:`langgraph_speculative.nodes.plan_reuse`.
Names are imported on first use, so ``import langgraph_speculative.cache`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langgraph_speculative.cache.intent.classifier import IntentClassifier, IntentPrediction
    from langgraph_speculative.cache.intent.induction import IntentInducer
    from langgraph_speculative.cache.intent.learned import LearnedIntents
    from langgraph_speculative.cache.parameters.extractor import Parameter, ParameterExtractor
    from langgraph_speculative.cache.parameters.gazetteers import load_gazetteers
    from langgraph_speculative.cache.parameters.normalise import normalise_value
    from langgraph_speculative.cache.plan_cache import CacheHit, CacheLookup, PlanCache
    from langgraph_speculative.cache.plans.plan import Plan, PlanStep
    from langgraph_speculative.cache.plans.planner import LLMPlanner, PlanDraft, TemplatePlanner
    from langgraph_speculative.cache.plans.runner import PlanRun, run_plan
    from langgraph_speculative.cache.training_data import LabelledRequest, load_labelled
    from langgraph_speculative.cache.vectors.backends import open_vector_index
    from langgraph_speculative.cache.vectors.embeddings import NgramEmbeddings
    from langgraph_speculative.cache.vectors.faiss_index import FaissIndex
    from langgraph_speculative.cache.vectors.pgvector_index import PgVectorIndex
    from langgraph_speculative.cache.vectors.vector_index import VectorHit, VectorIndex

_EXPORTS = {
    "CacheHit": "plan_cache",
    "CacheLookup": "plan_cache",
    "FaissIndex": "vectors.faiss_index",
    "IntentClassifier": "intent.classifier",
    "IntentInducer": "intent.induction",
    "IntentPrediction": "intent.classifier",
    "LearnedIntents": "intent.learned",
    "LLMPlanner": "plans.planner",
    "LabelledRequest": "training_data",
    "NgramEmbeddings": "vectors.embeddings",
    "Parameter": "parameters.extractor",
    "ParameterExtractor": "parameters.extractor",
    "PgVectorIndex": "vectors.pgvector_index",
    "Plan": "plans.plan",
    "PlanCache": "plan_cache",
    "PlanDraft": "plans.planner",
    "PlanRun": "plans.runner",
    "PlanStep": "plans.plan",
    "TemplatePlanner": "plans.planner",
    "VectorHit": "vectors.vector_index",
    "VectorIndex": "vectors.vector_index",
    "load_gazetteers": "parameters.gazetteers",
    "load_labelled": "training_data",
    "normalise_value": "parameters.normalise",
    "open_vector_index": "vectors.backends",
    "run_plan": "plans.runner",
}

__all__ = [
    "CacheHit",
    "CacheLookup",
    "FaissIndex",
    "IntentClassifier",
    "IntentInducer",
    "IntentPrediction",
    "LLMPlanner",
    "LabelledRequest",
    "LearnedIntents",
    "NgramEmbeddings",
    "Parameter",
    "ParameterExtractor",
    "PgVectorIndex",
    "Plan",
    "PlanCache",
    "PlanDraft",
    "PlanRun",
    "PlanStep",
    "TemplatePlanner",
    "VectorHit",
    "VectorIndex",
    "load_gazetteers",
    "load_labelled",
    "normalise_value",
    "open_vector_index",
    "run_plan",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
