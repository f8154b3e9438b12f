"""Structured plans: the unit the plan cache stores and reuses (AgentReuse).

A :class:`Plan` is a DAG of :class:`PlanStep` s. Each step calls one tool with ``inputs``;
a string input may hold *references*, alone or inside a longer template string:

* ``{param:NAME}``: the request parameter (slot) ``NAME``, for example ``{param:endLoc_city}``;
* ``{step:ID}``: the output of step ``ID`` (the text of its ``ToolMessage``);
* ``{step:ID.key.0.field}``: one value of step ``ID``'s JSON output (keys, list indices).

A planner's concrete plan becomes a storable *template* with :meth:`Plan.abstract` (the
request's parameter values are replaced by ``{param:…}`` references); a template is
reused for a new request with :meth:`Plan.fill` (the new values go in). Every plan is
validated on construction; a bad one raises
:class:`~langgraph_speculative.errors.PlanValidationError` naming the step and field.

A parameter's value is a string, or a list of strings for a multi-valued slot (the two
teams of a match). A list fills an input that is exactly one ``{param:NAME}`` reference
as the list itself (a JSON array); inside a longer string its values are joined with
``", "`` (:data:`LIST_SEPARATOR`). :meth:`Plan.abstract` inverts both: an input equal
to the list, and the joined values inside a string, become the reference.

Example:
    ```python
    from langgraph_speculative.cache.plans.plan import Plan, PlanStep

    concrete = Plan(steps=[
        PlanStep(id="s1", description="find trains", tool="search_trains",
                 inputs={"from": "合肥", "to": "北京", "date": "后天"}, output="train list"),
        PlanStep(id="s2", description="book the first", tool="book_ticket",
                 inputs={"train": "{step:s1.0.number}", "note": "合肥 to 北京"},
                 depends_on=["s1"], output="booking"),
    ])
    slots = {"startLoc_city": "合肥", "endLoc_city": "北京", "startDate_date": "后天"}
    template = concrete.abstract(slots)
    assert template.steps[0].inputs["from"] == "{param:startLoc_city}"
    assert template.steps[1].inputs["note"] == "{param:startLoc_city} to {param:endLoc_city}"

    new = {"startLoc_city": "长沙", "endLoc_city": "上海", "startDate_date": "明天"}
    reused = template.fill(new)
    assert reused.steps[0].inputs == {"from": "长沙", "to": "上海", "date": "明天"}
    assert reused.signature() == concrete.signature()  # same shape, other values
    assert Plan.from_json(template.to_json()) == template

    match = Plan(parameters=["name"], steps=[
        PlanStep(id="s1", description="find the match", tool="match_scores",
                 inputs={"teams": "{param:name}", "title": "{param:name} 比分"},
                 output="scores"),
    ])
    filled = match.fill({"name": ["湖人", "勇士"]})
    assert filled.steps[0].inputs == {"teams": ["湖人", "勇士"], "title": "湖人, 勇士 比分"}
    assert filled.abstract({"name": ["湖人", "勇士"]}).steps == match.steps
    ```
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)

from langgraph_speculative.errors import MissingParameterError, PlanValidationError

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

ParameterValue = str | list[str]
"""A parameter's value: one string, or a list of strings (a multi-valued slot)."""

LIST_SEPARATOR = ", "
"""Joins the values of a list parameter referenced inside a longer string."""

MissingMode = Literal["error", "drop"]
"""What :meth:`Plan.fill` does with a referenced parameter that has no value: ``"error"``
raises :class:`~langgraph_speculative.errors.MissingParameterError`; ``"drop"`` removes
every input whose whole value is such a reference (the step runs without that input) and
still raises for a missing reference inside a longer string or a nested value."""

_PARAM_NAME = re.compile(r"[^\W\d]\w*")
_STEP_ID = re.compile(r"[A-Za-z0-9_-]+")
_PATH_KEY = re.compile(r"[^.{}\s]+")
# Something that opens a reference; it must start a well-formed one.
_OPEN = re.compile(r"\{(param|step):")
# A candidate reference: the body is checked by kind.
_CANDIDATE = re.compile(r"\{(param|step):([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class Reference:
    """One reference found in a string input.

    Attributes:
        kind: ``"param"`` or ``"step"``.
        name: The parameter name, or the referenced step's id.
        path: For a step reference, the keys/indices into its JSON output (empty: the
            whole output text).
        start: Offset of the opening ``{`` in the string.
        end: Offset just past the closing ``}``.
    """

    kind: Literal["param", "step"]
    name: str
    path: tuple[str, ...]
    start: int
    end: int

    @property
    def text(self) -> str:
        """The reference as written (``{param:x}``, ``{step:s1.a.b}``)."""
        if self.kind == "param":
            return parameter_reference(self.name)
        return step_reference(self.name, *self.path)


def parameter_reference(name: str) -> str:
    """Return the reference text of parameter ``name``: ``{param:name}``."""
    return "{param:" + name + "}"


def step_reference(step_id: str, *path: str) -> str:
    """Return the reference text of step ``step_id``'s output, or a value of it at ``path``."""
    return "{step:" + ".".join((step_id, *path)) + "}"


def iter_references(text: str) -> Iterator[Reference]:
    """Yield the references of ``text`` in order.

    Args:
        text: A string input of a plan step.

    Raises:
        PlanValidationError: If ``{param:`` or ``{step:`` opens something that is not a
            well-formed reference (unclosed, empty, or a bad name, id or path).
    """
    pos = 0
    while True:
        opening = _OPEN.search(text, pos)
        if opening is None:
            return
        match = _CANDIDATE.match(text, opening.start())
        body = match.group(2) if match is not None else None
        ref = _parse_body(opening.group(1), body, opening.start(), match.end() if match else 0)
        if ref is None:
            end = match.end() if match is not None else len(text)
            shown = text[opening.start() : min(end, opening.start() + 60)]
            raise PlanValidationError(
                f"malformed reference {shown!r}: write {{param:NAME}}, {{step:ID}} "
                "or {step:ID.key}, with no space or brace inside"
            )
        yield ref
        pos = ref.end


def _parse_body(kind: str, body: str | None, start: int, end: int) -> Reference | None:
    if body is None:
        return None
    if kind == "param":
        if not _PARAM_NAME.fullmatch(body):
            return None
        return Reference("param", body, (), start, end)
    step_id, *path = body.split(".")
    if not _STEP_ID.fullmatch(step_id) or not all(_PATH_KEY.fullmatch(k) for k in path):
        return None
    return Reference("step", step_id, tuple(path), start, end)


def _split(text: str) -> list[str | Reference]:
    """Split ``text`` into literal pieces and references (in order)."""
    parts: list[str | Reference] = []
    pos = 0
    for ref in iter_references(text):
        if ref.start > pos:
            parts.append(text[pos : ref.start])
        parts.append(ref)
        pos = ref.end
    if pos < len(text):
        parts.append(text[pos:])
    return parts


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Yield ``(location, string)`` for every string inside a JSON value."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")


def _map_strings(value: Any, fn: Any) -> Any:
    """Return ``value`` with every string ``s`` replaced by ``fn(s)`` (JSON values)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    return value


def _plan_error(exc: ValidationError) -> PlanValidationError:
    """Turn pydantic's error into ours, keeping our own messages and where they apply."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        cause = (err.get("ctx") or {}).get("error")
        text = str(cause) if isinstance(cause, PlanValidationError) else err["msg"]
        loc = ".".join(str(p) for p in err["loc"])
        lines.append(f"{loc}: {text}" if loc else text)
    return PlanValidationError("; ".join(lines))


class _Model(BaseModel):
    """A frozen model whose construction raises :class:`PlanValidationError`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _plan_error(exc) from exc

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate ``obj``; raises :class:`PlanValidationError` instead of pydantic's error."""
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise _plan_error(exc) from exc

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate JSON text; raises :class:`PlanValidationError` instead of pydantic's."""
        try:
            return super().model_validate_json(json_data, *args, **kwargs)
        except ValidationError as exc:
            raise _plan_error(exc) from exc


class PlanStep(_Model):
    """One step of a plan: one tool call, its inputs, and the steps it needs first.

    Example:
        ```python
        from langgraph_speculative.cache.plans.plan import PlanStep

        step = PlanStep(id="s2", description="weather at the destination", tool="weather",
                        inputs={"city": "{param:endLoc_city}"}, output="forecast")
        assert step.references()[0].name == "endLoc_city"
        ```
    """

    id: str = Field(
        description="Short unique step id made of letters, digits, '_' or '-' (s1, s2, ...)."
    )
    description: str = Field(description="What the step does, in one sentence.")
    tool: str = Field(description="Name of the one tool this step calls.")
    inputs: dict[str, JsonValue] = Field(
        default_factory=dict,
        description=(
            "The tool's arguments by name. A string may reference a request parameter as "
            "{param:NAME} or an earlier step's output as {step:ID} (a field of a JSON "
            "output: {step:ID.field}), alone or inside a longer string."
        ),
    )
    depends_on: list[str] = Field(
        default_factory=list,
        description="Ids of the steps whose outputs this step needs; others run in parallel.",
    )
    output: str = Field(description="What the step produces.")

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _STEP_ID.fullmatch(value):
            raise PlanValidationError(
                f"step id {value!r} is invalid: use letters, digits, '_' or '-' only"
            )
        return value

    @field_validator("depends_on")
    @classmethod
    def _dedupe(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.tool.strip():
            raise PlanValidationError(f"step {self.id!r}: the tool name is empty")
        for key in self.inputs:
            if not key:
                raise PlanValidationError(f"step {self.id!r}: an input has an empty name")
        self.references()  # malformed references fail here
        return self

    def references(self) -> list[Reference]:
        """Return the references of this step's inputs, in input order.

        Raises:
            PlanValidationError: If an input holds a malformed reference.
        """
        return [ref for _, ref in self._located_references()]

    def _located_references(self) -> list[tuple[str, Reference]]:
        out: list[tuple[str, Reference]] = []
        for where, text in _strings(self.inputs, "inputs"):
            try:
                out.extend((where, ref) for ref in iter_references(text))
            except PlanValidationError as exc:
                raise PlanValidationError(f"step {self.id!r}, {where}: {exc}") from None
        return out


class Plan(_Model):
    """A validated DAG of tool-call steps, concrete or a template with ``{param:…}`` slots.

    Validation (on construction) rejects an empty plan, duplicate step ids, unknown
    dependencies, cycles, a ``{step:x}`` reference whose ``x`` is not a (transitive)
    dependency of its step, a ``{param:p}`` reference whose ``p`` is not in
    ``parameters``, and malformed references.

    Example:
        ```python
        from langgraph_speculative.cache.plans.plan import Plan
        from langgraph_speculative.errors import MissingParameterError, PlanValidationError

        template = Plan.model_validate({
            "parameters": ["dishName"],
            "steps": [{"id": "s1", "description": "find a recipe", "tool": "recipe",
                       "inputs": {"dish": "{param:dishName}"}, "output": "recipe"}],
        })
        assert template.filled_inputs({"dishName": "红烧肉"}) == {"s1": {"dish": "红烧肉"}}
        try:
            template.fill({})
        except MissingParameterError as exc:
            assert exc.missing == ("dishName",)
        try:
            Plan(steps=[{"id": "s1", "description": "", "tool": "t", "output": "",
                         "depends_on": ["s9"]}])
        except PlanValidationError as exc:
            assert "s9" in str(exc)
        ```
    """

    model_config = ConfigDict(
        json_schema_extra={
            "description": (
                "A plan answering the user's request: tool-call steps with their "
                "dependencies. Independent steps run in parallel."
            )
        }
    )

    steps: list[PlanStep] = Field(description="The steps, at least one.")
    parameters: list[str] = Field(
        default_factory=list,
        description="Names of the request parameters the steps reference as {param:NAME}.",
    )
    intent: str | None = Field(default=None, description="Label of the task type, if known.")
    source_request: str | None = Field(
        default=None, description="The request this plan was made for, if known."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.steps:
            raise PlanValidationError("a plan needs at least one step")
        for name in self.parameters:
            if not _PARAM_NAME.fullmatch(name):
                raise PlanValidationError(
                    f"parameter name {name!r} is invalid: use letters, digits and '_', "
                    "not starting with a digit"
                )
        if len(set(self.parameters)) != len(self.parameters):
            dupes = sorted({p for p in self.parameters if self.parameters.count(p) > 1})
            raise PlanValidationError(f"duplicate parameter names: {', '.join(dupes)}")
        ids = [s.id for s in self.steps]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise PlanValidationError(f"duplicate step ids: {', '.join(dupes)}")
        known = set(ids)
        for step in self.steps:
            for dep in step.depends_on:
                if dep not in known:
                    raise PlanValidationError(
                        f"step {step.id!r} depends on {dep!r}, which is not a step of the plan"
                    )
        try:
            order = list(TopologicalSorter({s.id: s.depends_on for s in self.steps}).static_order())
        except CycleError as exc:
            cycle = " -> ".join(reversed(exc.args[1]))
            raise PlanValidationError(f"the step dependencies form a cycle: {cycle}") from None
        by_id = {s.id: s for s in self.steps}
        ancestors: dict[str, set[str]] = {}
        for sid in order:  # dependencies come first
            ancestors[sid] = set(by_id[sid].depends_on).union(
                *(ancestors[d] for d in by_id[sid].depends_on)
            )
        params = set(self.parameters)
        for step in self.steps:
            for where, ref in step._located_references():
                if ref.kind == "param" and ref.name not in params:
                    listed = ", ".join(self.parameters) or "none"
                    raise PlanValidationError(
                        f"step {step.id!r}, {where}: {ref.text} names no parameter of the plan "
                        f"(parameters: {listed})"
                    )
                if ref.kind == "step" and ref.name not in ancestors[step.id]:
                    deps = ", ".join(sorted(ancestors[step.id])) or "none"
                    raise PlanValidationError(
                        f"step {step.id!r}, {where}: {ref.text} is not the output of a "
                        f"dependency of {step.id!r} (its dependencies: {deps})"
                    )
        return self

    # -- reading -----------------------------------------------------------------------
    def parameter_names(self) -> list[str]:
        """Return the parameters the steps reference, in order of first reference."""
        seen: dict[str, None] = {}
        for step in self.steps:
            for ref in step.references():
                if ref.kind == "param":
                    seen.setdefault(ref.name)
        return list(seen)

    def step(self, step_id: str) -> PlanStep:
        """Return the step with id ``step_id``.

        Raises:
            PlanValidationError: If the plan has no such step.
        """
        for s in self.steps:
            if s.id == step_id:
                return s
        raise PlanValidationError(f"the plan has no step {step_id!r}")

    def ordered_steps(self) -> list[PlanStep]:
        """Return the steps in a deterministic topological order (dependencies first).

        Among steps that are ready together, the plan's own order is kept.
        """
        remaining = {s.id: set(s.depends_on) for s in self.steps}
        out: list[PlanStep] = []
        while remaining:
            ready = [s for s in self.steps if s.id in remaining and not remaining[s.id]]
            for s in ready:
                del remaining[s.id]
            for deps in remaining.values():
                deps.difference_update(s.id for s in ready)
            out.extend(ready)
        return out

    def signature(self) -> str:
        """Return a stable string of the plan's shape: tools and dependency structure.

        Values, step ids, descriptions and the order the steps are listed in do not count,
        so the same task planned for other parameters (or with other step ids) gives the
        same signature. The string reads ``tool+tool+...#digest``: the sorted tool names,
        then a digest of the dependency structure (each step's tool with its ancestors'
        and descendants' shapes).
        """
        by_id = {s.id: s for s in self.steps}
        children: dict[str, list[str]] = {s.id: [] for s in self.steps}
        for s in self.steps:
            for dep in s.depends_on:
                children[dep].append(s.id)
        up: dict[str, str] = {}
        down: dict[str, str] = {}
        order = self.ordered_steps()
        for s in order:
            inner = ",".join(sorted(up[d] for d in s.depends_on))
            up[s.id] = _digest(f"{s.tool}({inner})")
        for s in reversed(order):
            inner = ",".join(sorted(down[c] for c in children[s.id]))
            down[s.id] = _digest(f"{s.tool}({inner})")
        nodes = sorted(f"{up[i]}/{down[i]}" for i in by_id)
        tools = "+".join(sorted(s.tool for s in self.steps))
        return f"{tools}#{_digest('|'.join(nodes))}"

    # -- templates ---------------------------------------------------------------------
    def abstract(self, values: Mapping[str, ParameterValue]) -> Plan:
        """Turn a concrete plan into a template: parameter values become references.

        Every literal occurrence of a value in a string input (nested ones too) is
        replaced by ``{param:slot}``; longer values are matched first, and existing
        references are left as they are. Empty values are skipped; when two parameters
        share a value, the first one in ``values`` is used. ``parameters`` keeps the
        plan's own names and gains the ones now referenced.

        A list value (a multi-valued slot) replaces an input, or a nested JSON value,
        equal to the list by the whole reference, and its values joined with
        :data:`LIST_SEPARATOR` inside a string (what :meth:`fill` writes there); its
        single values are not replaced on their own, and a list holding an empty value
        is skipped. (A string input that is exactly the joined values becomes the whole
        reference too, so it is filled with the list itself.)

        Args:
            values: The request's parameter values by slot name.

        Returns:
            The template (a new plan).

        Raises:
            PlanValidationError: If a name is not a valid parameter name, or a value is not
                a string or a list of strings, or itself contains reference syntax.
        """
        clean = _check_values(values)
        chosen: dict[str, str] = {}  # value -> slot (first slot wins on equal values)
        lists: list[tuple[list[str], str]] = []  # (list value, slot), first slot first
        for slot, value in clean.items():
            if isinstance(value, list):
                if not all(value):
                    continue  # a list holding an empty value is skipped as a whole
                if all(value != known for known, _ in lists):
                    lists.append((value, slot))
                text = LIST_SEPARATOR.join(value)
            else:
                text = value
            if text:
                chosen.setdefault(text, slot)
        if not chosen:
            return self
        pattern = re.compile(
            "|".join(re.escape(v) for v in sorted(chosen, key=lambda v: (-len(v), v)))
        )

        def replace(text: str) -> str:
            out: list[str] = []
            for part in _split(text):
                if isinstance(part, Reference):
                    out.append(part.text)
                else:
                    out.append(pattern.sub(lambda m: parameter_reference(chosen[m.group(0)]), part))
            return "".join(out)

        def replace_value(value: Any) -> Any:
            for known, slot in lists:
                if value == known:
                    return parameter_reference(slot)
            if isinstance(value, str):
                return replace(value)
            if isinstance(value, list):
                return [replace_value(v) for v in value]
            if isinstance(value, dict):
                return {k: replace_value(v) for k, v in value.items()}
            return value

        steps = [
            s.model_copy(update={"inputs": {k: replace_value(v) for k, v in s.inputs.items()}})
            for s in self.steps
        ]
        used = {r.name for s in steps for r in s.references() if r.kind == "param"}
        names = list(self.parameters) + [n for n in clean if n in used and n not in self.parameters]
        return Plan(
            steps=steps,
            parameters=names,
            intent=self.intent,
            source_request=self.source_request,
        )

    def fill(self, values: Mapping[str, ParameterValue], *, missing: MissingMode = "error") -> Plan:
        """Substitute parameter values for the ``{param:…}`` references.

        Values of parameters the plan does not reference are ignored. The result takes no
        parameters and holds no ``{param:…}`` reference.

        A list value (a multi-valued slot) replaces a string that is exactly its
        reference (an input, or a string nested in one) by the list itself, a JSON
        array; a reference inside a longer string gets the values joined with
        :data:`LIST_SEPARATOR` (``", "``): ``"{param:name} 比分"`` with ``["湖人", "勇士"]``
        reads ``"湖人, 勇士 比分"``.

        Args:
            values: Parameter values by slot name.
            missing: See :data:`MissingMode`.

        Returns:
            The filled plan (a new plan).

        Raises:
            MissingParameterError: If referenced parameters have no value; ``missing``
                lists every one of them.
            PlanValidationError: If a value is not a string or a list of strings, or
                contains reference syntax.
        """
        clean = _check_values(values)
        absent: dict[str, None] = {}

        def substitute(text: str) -> Any:
            parts = _split(text)
            if len(parts) == 1 and isinstance(parts[0], Reference):
                whole = parts[0]
                if whole.kind == "param" and isinstance(clean.get(whole.name), list):
                    return list(clean[whole.name])
            out: list[str] = []
            for part in parts:
                if isinstance(part, str):
                    out.append(part)
                elif part.kind == "step":
                    out.append(part.text)
                elif part.name in clean:
                    value = clean[part.name]
                    out.append(value if isinstance(value, str) else LIST_SEPARATOR.join(value))
                else:
                    absent.setdefault(part.name)
                    out.append(part.text)
            return "".join(out)

        steps: list[PlanStep] = []
        for s in self.steps:
            inputs: dict[str, Any] = {}
            for key, value in s.inputs.items():
                if missing == "drop" and isinstance(value, str):
                    whole = _whole_reference(value)
                    if whole is not None and whole.kind == "param" and whole.name not in clean:
                        continue
                inputs[key] = _map_strings(value, substitute)
            steps.append(s.model_copy(update={"inputs": inputs}))
        if absent:
            names = tuple(absent)
            raise MissingParameterError(
                f"no value for parameter{'s' if len(names) > 1 else ''} {', '.join(names)} "
                f"(given: {', '.join(clean) or 'none'})",
                missing=names,
            )
        return Plan(steps=steps, parameters=[], intent=self.intent, source_request=None)

    def filled_inputs(
        self, values: Mapping[str, ParameterValue], *, missing: MissingMode = "error"
    ) -> dict[str, dict[str, Any]]:
        """Return each step's inputs after :meth:`fill` (step id -> inputs).

        Raises:
            MissingParameterError: As :meth:`fill`.
        """
        return {s.id: dict(s.inputs) for s in self.fill(values, missing=missing).steps}

    # -- serialisation -----------------------------------------------------------------
    def to_json(self) -> str:
        """Serialise the plan as JSON text (UTF-8 characters kept)."""
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Plan:
        """Rebuild a plan from :meth:`to_json` output (validated).

        Raises:
            PlanValidationError: If the text is not a valid plan.
        """
        if not isinstance(text, str | bytes):
            raise PlanValidationError(f"plan JSON must be text, got {type(text).__name__}")
        return cls.model_validate_json(text)


def _whole_reference(text: str) -> Reference | None:
    """The reference ``text`` consists of, if it is exactly one reference."""
    parts = _split(text)
    if len(parts) == 1 and isinstance(parts[0], Reference):
        return parts[0]
    return None


def _check_values(values: Mapping[str, ParameterValue]) -> dict[str, ParameterValue]:
    """Check parameter values: strings, or non-empty lists (or tuples) of strings.

    Returns:
        A copy (lists copied, tuples made lists).
    """
    if not isinstance(values, Mapping):
        raise PlanValidationError(
            f"parameter values must be a mapping of name to text, got {type(values).__name__}"
        )
    clean: dict[str, ParameterValue] = {}
    for name, value in values.items():
        if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
            raise PlanValidationError(f"parameter name {name!r} is invalid")
        items: list[object] = list(value) if isinstance(value, list | tuple) else [value]
        if not items:
            raise PlanValidationError(f"parameter {name!r}: a list value must not be empty")
        for item in items:
            if not isinstance(item, str):
                raise PlanValidationError(
                    f"parameter {name!r}: the value must be a string or a list of strings, "
                    f"got {type(item).__name__}"
                )
            if _OPEN.search(item):
                raise PlanValidationError(
                    f"parameter {name!r}: the value {item!r} contains reference syntax"
                )
        clean[name] = value if isinstance(value, str) else [str(v) for v in items]
    return clean


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def references_in(value: Any) -> Iterable[Reference]:
    """Yield the references inside a JSON value (helper for the runner and the planner)."""
    for _, text in _strings(value, ""):
        yield from iter_references(text)


def split_template(text: str) -> Sequence[str | Reference]:
    """Split a string into literal pieces and references, in order.

    Raises:
        PlanValidationError: If it holds a malformed reference.
    """
    return _split(text)
