"""Structured plans: the plan model, the planners, the DAG runner.

- :mod:`~langgraph_speculative.cache.plans.plan`: :class:`Plan` / :class:`PlanStep`, the
  validated model of a plan with parameter and step references (re-exported here, so the
  old ``langgraph_speculative.cache.plans`` names keep working);
- :mod:`~langgraph_speculative.cache.plans.planner`: the LLM and template planners;
- :mod:`~langgraph_speculative.cache.plans.runner`: the DAG runner (``run_plan``).
"""

from __future__ import annotations

from langgraph_speculative.cache.plans.plan import (
    LIST_SEPARATOR,
    MissingMode,
    ParameterValue,
    Plan,
    PlanStep,
    Reference,
    iter_references,
    parameter_reference,
    references_in,
    split_template,
    step_reference,
)

__all__ = [
    "LIST_SEPARATOR",
    "MissingMode",
    "ParameterValue",
    "Plan",
    "PlanStep",
    "Reference",
    "iter_references",
    "parameter_reference",
    "references_in",
    "split_template",
    "step_reference",
]
