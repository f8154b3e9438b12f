"""Plan reuse (AgentReuse): intent, parameters, embedders, plans, vector back-ends, the cache.

The pieces, each in its own module, and the names exported here:

- :class:`PlanCache` (:mod:`~langgraph_speculative.cache.plan_cache`): the pipeline
  classify -> extract and strip -> embed -> search within the intent -> fill;
- :class:`IntentClassifier` / :class:`IntentPrediction` / :class:`LearnedIntents`
  (``intent``) and
  :class:`ParameterExtractor` / :class:`Parameter` / :func:`load_gazetteers`
  (``parameters``), trained from :class:`LabelledRequest` examples (``training_data``);
- :class:`NgramEmbeddings` and :func:`local_huggingface_embeddings` (``embedders``);
- :class:`VectorIndex` with :class:`FaissIndex` and :class:`PgVectorIndex`, opened by
  name with :func:`open_vector_index` (``vector_index``);
- :class:`Plan` / :class:`PlanStep` (``plans``), :class:`LLMPlanner` and
  :class:`TemplatePlanner` (``planner``), :func:`run_plan` / :class:`PlanRun`
  (``plan_runner``);
- :class:`IntentInducer` (``intent_induction``): reuse for intents never trained on.

The graph nodes that use them are in :mod:`langgraph_speculative.nodes.plan_reuse`.
Names are imported on first use, so ``import langgraph_speculative.cache`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langgraph_speculative.cache.intent.classifier import (
        IntentClassifier,
        IntentPrediction,
        LearnedIntents,
    )
    from langgraph_speculative.cache.intent.induction import IntentInducer
    from langgraph_speculative.cache.parameters.extractor import (
        Parameter,
        ParameterExtractor,
        load_gazetteers,
        normalise_value,
    )
    from langgraph_speculative.cache.plan_cache import CacheHit, CacheLookup, PlanCache
    from langgraph_speculative.cache.plans.plan import Plan, PlanStep
    from langgraph_speculative.cache.plans.planner import LLMPlanner, PlanDraft, TemplatePlanner
    from langgraph_speculative.cache.plans.runner import PlanRun, run_plan
    from langgraph_speculative.cache.training_data import LabelledRequest, load_labelled
    from langgraph_speculative.cache.vectors.embeddings import (
        NgramEmbeddings,
        local_huggingface_embeddings,
    )
    from langgraph_speculative.cache.vectors.faiss_index import FaissIndex
    from langgraph_speculative.cache.vectors.pgvector_index import PgVectorIndex
    from langgraph_speculative.cache.vectors.vector_index import (
        VectorHit,
        VectorIndex,
        open_vector_index,
    )

_EXPORTS = {
    "CacheHit": "plan_cache",
    "CacheLookup": "plan_cache",
    "FaissIndex": "faiss_index",
    "IntentClassifier": "intent",
    "IntentInducer": "intent_induction",
    "IntentPrediction": "intent",
    "LearnedIntents": "intent",
    "LLMPlanner": "planner",
    "LabelledRequest": "training_data",
    "NgramEmbeddings": "embedders",
    "Parameter": "parameters",
    "ParameterExtractor": "parameters",
    "PgVectorIndex": "pgvector_index",
    "Plan": "plans",
    "PlanCache": "plan_cache",
    "PlanDraft": "planner",
    "PlanRun": "plan_runner",
    "PlanStep": "plans",
    "TemplatePlanner": "planner",
    "VectorHit": "vector_index",
    "VectorIndex": "vector_index",
    "load_gazetteers": "parameters",
    "load_labelled": "training_data",
    "local_huggingface_embeddings": "embedders",
    "normalise_value": "parameters",
    "open_vector_index": "vector_index",
    "run_plan": "plan_runner",
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
    "local_huggingface_embeddings",
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
