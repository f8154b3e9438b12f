"""Planners: where a plan comes from when the cache has none.

:class:`LLMPlanner` asks a chat model for a structured plan (``with_structured_output``,
on the tool-calling path every LangChain chat model supports), checks that each step
calls one of the given tools with inputs that tool has, and turns the concrete plan into
a template (:meth:`~langgraph_speculative.cache.plans.plan.Plan.abstract`) ready to store. An
invalid plan is shown back to the model with the error once; a second invalid plan
raises :class:`~langgraph_speculative.errors.PlanValidationError`.

:class:`TemplatePlanner` is its deterministic stand-in for benchmarks and demos: it
returns a class's canonical plan filled with the request's parameters, and *accounts*
(does not sleep) a fixed planning time per call.

Both keep time: ``last_ms`` (the latest call), ``elapsed_ms`` (all calls) and ``calls``.

Example:
    ```python
    from langchain_core.tools import tool
    from langgraph_speculative.cache.plans.planner import LLMPlanner
    from langgraph_speculative.integrations import ModelTurn, ScriptedChatModel

    @tool
    def search_trains(origin: str, destination: str) -> str:
        '''Trains between two cities.'''
        return "G7"

    step = {"id": "s1", "description": "find trains", "tool": "search_trains",
            "inputs": {"origin": "合肥", "destination": "北京"}, "output": "train list"}
    model = ScriptedChatModel(script=[ModelTurn.calls(("PlanDraft", {"steps": [step]}))])
    planner = LLMPlanner(model, [search_trains])
    plan = planner.plan("合肥到北京的火车票", {"startLoc_city": "合肥", "endLoc_city": "北京"})
    assert plan.steps[0].inputs == {"origin": "{param:startLoc_city}",
                                    "destination": "{param:endLoc_city}"}
    assert plan.parameters == ["startLoc_city", "endLoc_city"] and planner.calls == 1
    ```
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field

from langgraph_speculative.cache.plans.plan import ParameterValue, Plan, PlanStep, references_in
from langgraph_speculative.errors import PlanCacheError, PlanValidationError, RequestError

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "LLMPlanner",
    "PlanDraft",
    "StepDraft",
    "TemplatePlanner",
]

DEFAULT_SYSTEM_PROMPT = """\
You are a planner. Break the user's request into a plan of tool calls and submit it by \
calling PlanDraft once.
- Every step calls exactly one of the tools listed below, with inputs named as that \
tool's parameters (every required one included).
- Give the steps short unique ids: s1, s2, ...
- A step that needs another step's output lists that step in depends_on and writes \
{step:ID} in an input (or {step:ID.field} for one field of a JSON output).
- Steps that do not depend on each other run in parallel: list only real dependencies.
- Write the request's parameter values (listed with the request) exactly as given."""
"""The planner's default instructions; the tool catalog is appended to any prompt."""


class StepDraft(BaseModel):
    """One step of a plan draft (the model's output; validated when made a ``Plan``)."""

    id: str = Field(description="Short unique step id: s1, s2, ...")
    description: str = Field(description="What the step does, in one sentence.")
    tool: str = Field(description="The name of the one tool this step calls.")
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "The tool's arguments by name. To use an earlier step's output write "
            "{step:ID}, or {step:ID.field} for one field of a JSON output."
        ),
    )
    depends_on: list[str] = Field(
        default_factory=list, description="Ids of the steps whose outputs this step needs."
    )
    output: str = Field(description="What the step produces.")


class PlanDraft(BaseModel):
    """The plan schema :class:`LLMPlanner` asks the model for (a slim ``Plan``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "description": (
                "Submit the plan for the user's request: the tool-call steps and their "
                "dependencies. Independent steps run in parallel."
            )
        }
    )

    steps: list[StepDraft] = Field(description="The steps of the plan, at least one.")


class _Clock:
    """Planning-time accounting shared by the planners."""

    def __init__(self) -> None:
        self.last_ms = 0.0
        self.elapsed_ms = 0.0
        self.calls = 0

    def _account(self, ms: float) -> None:
        self.last_ms = ms
        self.elapsed_ms += ms
        self.calls += 1

    def reset_clock(self) -> None:
        """Set ``last_ms``, ``elapsed_ms`` and ``calls`` back to zero."""
        self.last_ms = self.elapsed_ms = 0.0
        self.calls = 0


def _check_request(request: str) -> str:
    if not isinstance(request, str) or not request.strip():
        raise RequestError(f"the request must be a non-blank string, got {request!r}")
    return request


def _check_parameters(parameters: Mapping[str, ParameterValue]) -> dict[str, ParameterValue]:
    if not isinstance(parameters, Mapping):
        raise PlanValidationError(
            f"parameters must map slot names to values, got {type(parameters).__name__}"
        )

    def ok(v: object) -> bool:
        if isinstance(v, str):
            return True
        return isinstance(v, list | tuple) and bool(v) and all(isinstance(x, str) for x in v)

    bad = {k: v for k, v in parameters.items() if not isinstance(k, str) or not ok(v)}
    if bad:
        raise PlanValidationError(
            f"parameter names must be strings and values strings or non-empty lists of "
            f"strings, got {bad!r}"
        )
    return {k: v if isinstance(v, str) else list(v) for k, v in parameters.items()}


class LLMPlanner(_Clock):
    """Plans a request with a chat model's structured output.

    Args:
        model: A chat model that supports tool calling (``with_structured_output``).
        tools: The tools a plan may call; their names and parameters are shown to the
            model, and each step is checked against them.
        system_prompt: Instructions replacing :data:`DEFAULT_SYSTEM_PROMPT` (the tool
            catalog is appended to them).
        retries: How many times an invalid plan is sent back with its error (default 1).

    Attributes:
        last_ms: Wall time of the latest :meth:`aplan` / :meth:`plan` call, in ms.
        elapsed_ms: Wall time of all calls, in ms.
        calls: Number of calls.

    Raises:
        ValueError: If two tools share a name, no tool is given, or ``retries`` < 0.

    Example:
        ```python
        from langchain_core.tools import tool
        from langgraph_speculative.cache.plans.planner import LLMPlanner
        from langgraph_speculative.errors import PlanValidationError
        from langgraph_speculative.integrations import ModelTurn, ScriptedChatModel

        @tool
        def recipe(dish: str) -> str:
            '''How to cook a dish.'''
            return "..."

        bad = {"steps": [{"id": "s1", "description": "cook", "tool": "oven",
                          "inputs": {"dish": "红烧肉"}, "output": "recipe"}]}
        model = ScriptedChatModel(script=[ModelTurn.calls(("PlanDraft", bad))] * 2)
        try:
            LLMPlanner(model, [recipe]).plan("红烧肉怎么做", {"dishName": "红烧肉"})
        except PlanValidationError as exc:
            assert "'oven' is not one of the tools" in str(exc)
        ```
    """

    def __init__(
        self,
        model: BaseChatModel,
        tools: Sequence[BaseTool],
        *,
        system_prompt: str | None = None,
        retries: int = 1,
    ) -> None:
        super().__init__()
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if not tools:
            raise ValueError("an LLMPlanner needs at least one tool")
        self.model = model
        self.retries = retries
        self.tools: dict[str, BaseTool] = {}
        self._specs: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for t in tools:
            if t.name in self.tools:
                raise ValueError(f"two tools are named {t.name!r}")
            self.tools[t.name] = t
            params = convert_to_openai_tool(t)["function"].get("parameters") or {}
            self._specs[t.name] = (
                dict(params.get("properties") or {}),
                list(params.get("required") or []),
            )
        self.system_prompt = (
            (system_prompt if system_prompt is not None else DEFAULT_SYSTEM_PROMPT)
            + "\n\nTools:\n"
            + self._catalog()
        )
        self._structured: Runnable[Any, Any] = model.with_structured_output(
            PlanDraft, include_raw=True
        )

    # -- public ------------------------------------------------------------------------
    async def aplan(
        self, request: str, parameters: Mapping[str, ParameterValue], *, label: str | None = None
    ) -> Plan:
        """Ask the model for a plan of ``request`` and return it as a template.

        Args:
            request: The user's request.
            parameters: The request's parameter values by slot name; their occurrences in
                the plan's inputs become ``{param:slot}`` references.
            label: The request's intent label, kept as the plan's ``intent``.

        Returns:
            The validated plan template (``source_request`` = ``request``).

        Raises:
            RequestError: If the request is blank.
            PlanValidationError: If the model's plan is still invalid after the retries
                (the message holds the last error), or ``parameters`` is malformed.
        """
        session = _Session(self, request, parameters, label)
        start = time.perf_counter()
        try:
            while True:
                plan = session.read(await self._structured.ainvoke(session.messages))
                if plan is not None:
                    return plan
        finally:
            self._account((time.perf_counter() - start) * 1000.0)

    def plan(
        self, request: str, parameters: Mapping[str, ParameterValue], *, label: str | None = None
    ) -> Plan:
        """Synchronous :meth:`aplan` (same arguments, result and errors)."""
        session = _Session(self, request, parameters, label)
        start = time.perf_counter()
        try:
            while True:
                plan = session.read(self._structured.invoke(session.messages))
                if plan is not None:
                    return plan
        finally:
            self._account((time.perf_counter() - start) * 1000.0)

    def check(self, plan: Plan) -> None:
        """Check that every step calls a known tool with inputs that tool has.

        Raises:
            PlanValidationError: Naming the step, and the unknown tool, unknown input or
                missing required input.
        """
        for step in plan.steps:
            spec = self._specs.get(step.tool)
            if spec is None:
                raise PlanValidationError(
                    f"step {step.id!r}: {step.tool!r} is not one of the tools "
                    f"({', '.join(self.tools)})"
                )
            properties, required = spec
            unknown = [k for k in step.inputs if k not in properties]
            if unknown:
                raise PlanValidationError(
                    f"step {step.id!r}: tool {step.tool!r} has no input {unknown[0]!r} "
                    f"(its inputs: {', '.join(properties) or 'none'})"
                )
            missing = [k for k in required if k not in step.inputs]
            if missing:
                raise PlanValidationError(
                    f"step {step.id!r}: tool {step.tool!r} needs input "
                    f"{', '.join(repr(k) for k in missing)}"
                )

    # -- internals ---------------------------------------------------------------------
    def _catalog(self) -> str:
        lines: list[str] = []
        for name, tool in self.tools.items():
            properties, required = self._specs[name]
            args = []
            for arg, schema in properties.items():
                kind = schema.get("type", "any") if isinstance(schema, dict) else "any"
                args.append(f"{arg} ({kind}{', required' if arg in required else ''})")
            description = " ".join((tool.description or "").split())
            lines.append(f"- {name}: {description}\n  inputs: {', '.join(args) or 'none'}")
        return "\n".join(lines)

    def _to_plan(
        self, draft: PlanDraft, request: str, values: dict[str, ParameterValue], label: str | None
    ) -> Plan:
        steps = [PlanStep(**s.model_dump()) for s in draft.steps]
        named = {r.name for s in steps for r in references_in(s.inputs) if r.kind == "param"}
        concrete = Plan(
            steps=steps,
            parameters=[p for p in values if p in named],
            intent=label,
            source_request=request,
        )
        self.check(concrete)
        return concrete.abstract(values)


class _Session:
    """One planning conversation: the messages so far and the attempts left."""

    def __init__(
        self,
        planner: LLMPlanner,
        request: str,
        parameters: Mapping[str, ParameterValue],
        label: str | None,
    ) -> None:
        self.planner = planner
        self.request = _check_request(request)
        self.values = _check_parameters(parameters)
        self.label = label
        self.attempts_left = planner.retries + 1
        listed = (
            "\n".join(
                f"- {k}: {v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}"
                for k, v in self.values.items()
            )
            or "(none)"
        )
        self.messages: list[BaseMessage] = [
            SystemMessage(planner.system_prompt),
            HumanMessage(f"Request: {request}\nParameters:\n{listed}"),
        ]

    def read(self, out: Any) -> Plan | None:
        """Return the plan of the model's answer ``out``, or ``None`` to ask again.

        Raises:
            PlanValidationError: If the answer is invalid and no attempt is left.
        """
        self.attempts_left -= 1
        raw = out.get("raw") if isinstance(out, Mapping) else None
        parsed = out.get("parsed") if isinstance(out, Mapping) else out
        error: str
        if isinstance(parsed, PlanDraft):
            try:
                return self.planner._to_plan(parsed, self.request, self.values, self.label)
            except PlanValidationError as exc:
                error = str(exc)
        elif isinstance(out, Mapping) and out.get("parsing_error") is not None:
            error = f"the plan does not match the PlanDraft schema: {out['parsing_error']}"
        else:
            error = "no plan was submitted: call PlanDraft with the plan"
        if self.attempts_left <= 0:
            tries = self.planner.retries + 1
            raise PlanValidationError(
                f"the model gave no valid plan in {tries} attempt{'s' if tries > 1 else ''}; "
                f"last error: {error}"
            )
        feedback = f"The plan is invalid: {error}. Submit a corrected plan with PlanDraft."
        if isinstance(raw, AIMessage):
            self.messages.append(raw)
            if raw.tool_calls:  # every call gets its answer, or the next request is refused
                for i, call in enumerate(raw.tool_calls):
                    self.messages.append(
                        ToolMessage(
                            content=feedback if i == 0 else "Ignored: submit one plan.",
                            tool_call_id=call.get("id") or "",
                            status="error",
                        )
                    )
                return None
        self.messages.append(HumanMessage(feedback))
        return None


class TemplatePlanner(_Clock):
    """A deterministic planner: a canonical plan template per request class.

    Stands in for an LLM in benchmarks and demos. A request's plan is its class's
    template filled with the request's parameters (an input whose whole value is a
    parameter the request lacks is left out), made a template again with
    :meth:`~langgraph_speculative.cache.plans.plan.Plan.abstract`, exactly as an LLM planner's
    concrete plan would be. The planning time is accounted, never slept.

    Args:
        templates: Class label -> plan template (``{param:slot}`` references).
        label_of: Finds a request's class when :meth:`aplan` is given no ``label``.
        planner_ms: Planning time accounted per call (the benchmark uses 31800 ms, the
            paper's GPT-4 planning time).

    Attributes:
        last_ms: ``planner_ms`` after a call; ``elapsed_ms``: the sum over calls;
        calls: Number of calls.

    Raises:
        ValueError: If ``planner_ms`` is negative or not finite, or a label is empty.
        PlanValidationError: If a template is not a ``Plan``.

    Example:
        ```python
        from langgraph_speculative.cache.plans.plan import Plan
        from langgraph_speculative.cache.plans.planner import TemplatePlanner

        template = Plan.model_validate({"parameters": ["startLoc_city", "endLoc_city"],
            "steps": [{"id": "s1", "description": "search", "tool": "search_trains",
                       "inputs": {"from": "{param:startLoc_city}", "to": "{param:endLoc_city}"},
                       "output": "trains"}]})
        planner = TemplatePlanner({"train.QUERY": template}, planner_ms=31800)
        plan = planner.plan("去北京的火车", {"endLoc_city": "北京"}, label="train.QUERY")
        assert plan.steps[0].inputs == {"to": "{param:endLoc_city}"}  # no origin given
        assert plan.fill({"endLoc_city": "上海"}).steps[0].inputs == {"to": "上海"}
        assert (planner.calls, planner.elapsed_ms) == (1, 31800)
        ```
    """

    def __init__(
        self,
        templates: Mapping[str, Plan],
        *,
        label_of: Callable[[str], str | None] | None = None,
        planner_ms: float = 0.0,
    ) -> None:
        super().__init__()
        if not math.isfinite(planner_ms) or planner_ms < 0:
            raise ValueError(f"planner_ms must be a finite number >= 0, got {planner_ms}")
        for label, template in templates.items():
            if not isinstance(label, str) or not label:
                raise ValueError(f"template labels must be non-empty strings, got {label!r}")
            if not isinstance(template, Plan):
                raise PlanValidationError(
                    f"template {label!r} is a {type(template).__name__}, not a Plan"
                )
        self.templates = dict(templates)
        self.label_of = label_of
        self.planner_ms = float(planner_ms)

    def plan(
        self, request: str, parameters: Mapping[str, ParameterValue], *, label: str | None = None
    ) -> Plan:
        """Return the plan template of ``request``'s class, bound to its parameters.

        Args:
            request: The request (kept as ``source_request``; given to ``label_of``).
            parameters: The request's parameter values by slot name.
            label: The request's class; found with ``label_of`` when omitted.

        Raises:
            RequestError: If the request is blank.
            PlanCacheError: If the class is unknown or cannot be found.
            MissingParameterError: If a template string input needs a parameter the
                request lacks.
        """
        _check_request(request)
        values = _check_parameters(parameters)
        if label is None and self.label_of is not None:
            label = self.label_of(request)
        if label is None:
            raise PlanCacheError(
                f"no class label for request {request!r}: pass label= or give label_of"
            )
        template = self.templates.get(label)
        if template is None:
            known = ", ".join(sorted(self.templates)) or "none"
            raise PlanCacheError(f"no plan template for class {label!r} (known: {known})")
        concrete = template.fill(values, missing="drop")
        plan = concrete.abstract(values).model_copy(
            update={"intent": label, "source_request": request}
        )
        self._account(self.planner_ms)
        return plan

    async def aplan(
        self, request: str, parameters: Mapping[str, ParameterValue], *, label: str | None = None
    ) -> Plan:
        """Asynchronous :meth:`plan` (the same; nothing is awaited)."""
        return self.plan(request, parameters, label=label)
