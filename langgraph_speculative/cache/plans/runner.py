"""Run a filled plan as a DAG on the shared :class:`~langgraph_speculative.ToolExecutor`.

:func:`run_plan` submits each step the moment every step it depends on has finished, so
independent steps run in parallel. ``{step:…}`` references in a step's inputs are resolved
from its dependencies' outputs (a reference with a path parses the output as JSON). Call
ids are deterministic, ``f"{call_id_prefix}:{step.id}"``: a run resumed after a crash
makes the same calls, and a step the ledger already holds as finished is not run again.

A step that fails (an error ``ToolMessage``, an unknown tool, a failed reference) fails
its dependents: they are recorded as not run, never started. :meth:`PlanRun.messages`
gives the run as chat messages for a state under ``add_messages``.

Example:
    ```python
    import asyncio
    import json
    from langchain_core.tools import tool
    from langgraph_speculative import ToolExecutor
    from langgraph_speculative.cache.plans.runner import run_plan
    from langgraph_speculative.cache.plans.plan import Plan

    @tool
    def search_trains(origin: str, destination: str) -> str:
        '''Trains between two cities.'''
        return json.dumps([{"number": "G7", "from": origin, "to": destination}])

    @tool
    def book(train: str) -> str:
        '''Book a seat.'''
        return f"booked {train}"

    plan = Plan.model_validate({"steps": [
        {"id": "s1", "description": "search", "tool": "search_trains", "output": "trains",
         "inputs": {"origin": "长沙", "destination": "上海"}},
        {"id": "s2", "description": "book", "tool": "book", "output": "booking",
         "inputs": {"train": "{step:s1.0.number}"}, "depends_on": ["s1"]},
    ]})

    async def main() -> None:
        async with ToolExecutor([search_trains, book]) as executor:
            run = await run_plan(plan, executor, call_id_prefix="req-1")
        assert run.ok and run.outputs["s2"].content == "booked G7"
        ai, *results = run.messages()
        assert [c["id"] for c in ai.tool_calls] == ["req-1:s1", "req-1:s2"]
        assert [m.tool_call_id for m in results] == ["req-1:s1", "req-1:s2"]

    asyncio.run(main())
    ```
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage

from langgraph_speculative.cache.plans.plan import Plan, PlanStep, Reference, split_template
from langgraph_speculative.core.executor import ToolExecutor, result_message_id
from langgraph_speculative.core.ledger import CallState
from langgraph_speculative.errors import MissingParameterError, SpeculativeError

__all__ = ["PlanRun", "plan_call_id", "plan_message_id", "run_plan"]


def plan_call_id(call_id_prefix: str, step_id: str) -> str:
    """Return the deterministic tool call id of step ``step_id``: ``prefix:step_id``."""
    return f"{call_id_prefix}:{step_id}"


def plan_message_id(call_id_prefix: str) -> str:
    """Return the deterministic id of the ``AIMessage`` that carries a plan's tool calls."""
    return f"plan-calls-{call_id_prefix}"


@dataclass(slots=True)
class PlanRun:
    """The outcome of :func:`run_plan`.

    Attributes:
        plan: The plan that was run.
        call_id_prefix: The prefix of its call ids.
        calls: Step id -> the tool call made (inputs resolved), or, for a step that was
            not run, the call it would have made (unresolved references left as written).
        results: Step id -> the step's ``ToolMessage`` (result, error, or "not run"),
            for every step.
        failed: Step id -> why the step failed or was not run.
        errors: Step id -> the tool's unhandled exception (only with
            ``return_exceptions=True``; otherwise :func:`run_plan` raises it).
        reused: Ids of the steps the ledger already held as finished (not run again).
    """

    plan: Plan
    call_id_prefix: str
    calls: dict[str, ToolCall] = field(default_factory=dict)
    results: dict[str, ToolMessage] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        """Whether every step succeeded."""
        return not self.failed

    @property
    def outputs(self) -> dict[str, ToolMessage]:
        """Step id -> ``ToolMessage`` of each step that succeeded."""
        return {k: v for k, v in self.results.items() if k not in self.failed}

    def call_id(self, step_id: str) -> str:
        """Return the tool call id of step ``step_id``."""
        return plan_call_id(self.call_id_prefix, step_id)

    def messages(self) -> list[AnyMessage]:
        """Return the run as messages: the plan's calls, then one result per step.

        One ``AIMessage`` carries the tool calls; one ``ToolMessage`` per step follows, in
        the plan's dependency order. Ids are deterministic (:func:`plan_message_id` and
        the executor's ``result_message_id``), so sending them again replaces them under
        ``add_messages`` instead of duplicating them.
        """
        order = [s.id for s in self.plan.ordered_steps() if s.id in self.calls]
        ai = AIMessage(
            content="",
            tool_calls=[self.calls[sid] for sid in order],
            id=plan_message_id(self.call_id_prefix),
        )
        out: list[AnyMessage] = [ai]
        out.extend(self.results[sid] for sid in order if sid in self.results)
        return out


async def run_plan(
    plan: Plan,
    executor: ToolExecutor,
    *,
    call_id_prefix: str,
    return_exceptions: bool = False,
) -> PlanRun:
    """Run a filled plan on ``executor``: every step as soon as its dependencies are done.

    Only the executor's public API is used; the executor may be shared with other nodes
    (each call's completion also shows on its completion queue, as every call's does).

    Args:
        plan: A filled plan (no ``{param:…}`` reference left).
        executor: The run's executor (an open one).
        call_id_prefix: Prefix of the deterministic call ids (``prefix:step_id``); use one
            per plan run, stable across a crash and resume.
        return_exceptions: Record a tool's unhandled exception as a failed step (in
            :attr:`PlanRun.errors`) instead of raising it once every step has settled.

    Returns:
        The :class:`PlanRun`.

    Raises:
        MissingParameterError: If the plan still references parameters (nothing runs).
        ValueError: If ``call_id_prefix`` is empty.
        SpeculativeError: If the ledger already holds a call with one of the plan's ids
            but another tool or other arguments, or an unfinished one this executor does
            not run.
        Exception: The first unhandled tool exception (in plan order), after every step
            settled, unless ``return_exceptions``.
    """
    if not isinstance(call_id_prefix, str) or not call_id_prefix:
        raise ValueError("call_id_prefix must be a non-empty string")
    unfilled = plan.parameter_names()
    if unfilled:
        raise MissingParameterError(
            f"the plan is not filled: it still references {', '.join(unfilled)}",
            missing=tuple(unfilled),
        )
    return await _Run(plan, executor, call_id_prefix, return_exceptions).run()


class _Run:
    """The state of one :func:`run_plan` call."""

    def __init__(
        self, plan: Plan, executor: ToolExecutor, prefix: str, return_exceptions: bool
    ) -> None:
        self.executor = executor
        self.out = PlanRun(plan=plan, call_id_prefix=prefix)
        self.order = plan.ordered_steps()
        self.return_exceptions = return_exceptions
        self.waiters: dict[asyncio.Future[ToolMessage], PlanStep] = {}
        self.submitted: set[str] = set()  # call ids this run submitted

    def _settled(self, step_id: str) -> bool:
        return step_id in self.out.results

    async def run(self) -> PlanRun:
        try:
            while True:
                self._launch_ready()
                if not self.waiters:
                    break
                done, _ = await asyncio.wait(self.waiters, return_when=asyncio.FIRST_COMPLETED)
                for waiter in done:
                    self._settle(self.waiters.pop(waiter), waiter)
        except BaseException:
            for call_id in self.submitted:  # ours only; finished ones are left as they are
                self.executor.cancel(call_id, "the plan run was cancelled")
            for waiter in self.waiters:
                waiter.cancel()
            # let the waiters finish cancelling, so none is left pending on the loop
            await asyncio.gather(*self.waiters, return_exceptions=True)
            raise
        if not self.return_exceptions:
            for step in self.order:
                if step.id in self.out.errors:
                    raise self.out.errors[step.id]
        return self.out

    def _launch_ready(self) -> None:
        """Start (or settle as not run) every unsettled step whose dependencies settled."""
        for step in self.order:  # dependencies first: a failure cascades in one pass
            call_id = self.out.call_id(step.id)
            if self._settled(step.id) or call_id in self.out.calls:
                continue
            if not all(self._settled(d) for d in step.depends_on):
                continue
            broken = [d for d in step.depends_on if d in self.out.failed]
            if broken:
                self._not_run(step, f"its dependency {broken[0]!r} failed")
                continue
            try:
                args = self._resolve(step)
            except _ReferenceError as exc:
                self._not_run(step, str(exc))
                continue
            call = ToolCall(name=step.tool, args=args, id=call_id, type="tool_call")
            self.out.calls[step.id] = call
            self._start(step, call)

    def _start(self, step: PlanStep, call: ToolCall) -> None:
        call_id = call["id"] or ""
        ledger = self.executor.ledger
        if call_id in ledger:
            record = ledger.get(call_id)
            if record.tool != call["name"] or record.args != call["args"]:
                raise SpeculativeError(
                    f"call {call_id!r} is already in the ledger for {record.tool} "
                    f"{record.args!r}, not for step {step.id!r} of this plan "
                    f"({call['name']} {call['args']!r}): use another call_id_prefix"
                )
            if record.state.terminal:  # finished before (a resumed run): not run again
                self.out.reused.add(step.id)
                message = record.result or self._error(
                    step, f"Error: {record.error or record.state.value}"
                )
                ok = record.state is CallState.DONE and message.status != "error"
                self._record(step, message, ok)
                return
            # unfinished: wait for it (the executor raises if it is not running it)
        else:
            deps = [self.out.call_id(d) for d in step.depends_on]
            self.executor.submit(call, depends_on=deps)
            self.submitted.add(call_id)
        waiter = asyncio.ensure_future(self.executor.wait(call_id))
        self.waiters[waiter] = step

    def _settle(self, step: PlanStep, waiter: asyncio.Future[ToolMessage]) -> None:
        exc = waiter.exception()
        if exc is None:
            message = waiter.result()
            record = self.executor.ledger.get(self.out.call_id(step.id))
            ok = record.state is CallState.DONE and message.status != "error"
            self._record(step, message, ok)
            return
        if isinstance(exc, SpeculativeError) and self.out.call_id(step.id) not in self.submitted:
            raise SpeculativeError(
                f"step {step.id!r}: the ledger holds call {self.out.call_id(step.id)!r} "
                f"unfinished, and this executor is not running it: {exc}"
            ) from exc
        self.out.errors[step.id] = exc
        self._record(step, self._error(step, f"Error: {exc!r}"), False)

    def _error(self, step: PlanStep, content: str) -> ToolMessage:
        call_id = self.out.call_id(step.id)
        return ToolMessage(
            content=content,
            tool_call_id=call_id,
            name=step.tool,
            status="error",
            id=result_message_id(call_id),
        )

    def _record(self, step: PlanStep, message: ToolMessage, ok: bool) -> None:
        self.out.results[step.id] = message
        if not ok:
            self.out.failed[step.id] = _text(message) or "the tool reported an error"

    def _not_run(self, step: PlanStep, reason: str) -> None:
        call_id = self.out.call_id(step.id)
        self.out.calls[step.id] = ToolCall(
            name=step.tool, args=dict(step.inputs), id=call_id, type="tool_call"
        )
        self.out.results[step.id] = self._error(step, f"Not run: {reason}.")
        self.out.failed[step.id] = reason

    def _resolve(self, step: PlanStep) -> dict[str, Any]:
        """The step's inputs with ``{step:…}`` references replaced by outputs."""
        return {key: self._resolve_value(step, key, value) for key, value in step.inputs.items()}

    def _resolve_value(self, step: PlanStep, where: str, value: Any) -> Any:
        if isinstance(value, list):
            return [self._resolve_value(step, f"{where}[{i}]", v) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self._resolve_value(step, f"{where}.{k}", v) for k, v in value.items()}
        if not isinstance(value, str):
            return value
        parts = split_template(value)
        if len(parts) == 1 and isinstance(parts[0], Reference):
            return self._lookup(step, where, parts[0])  # keeps the value's JSON type
        out: list[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            else:
                found = self._lookup(step, where, part)
                out.append(found if isinstance(found, str) else _dump(found))
        return "".join(out)

    def _lookup(self, step: PlanStep, where: str, ref: Reference) -> Any:
        if ref.kind == "param":  # pragma: no cover - run_plan refuses unfilled plans
            raise _ReferenceError(f"input {where!r}: {ref.text} is not filled")
        text = _text(self.out.results[ref.name])
        if not ref.path:
            return text
        try:
            value: Any = json.loads(text)
        except json.JSONDecodeError:
            raise _ReferenceError(
                f"input {where!r} needs {ref.text}, but the output of {ref.name!r} is not JSON"
            ) from None
        for depth, key in enumerate(ref.path):
            if isinstance(value, Mapping) and key in value:
                value = value[key]
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                at = ".".join((ref.name, *ref.path[:depth]))
                raise _ReferenceError(
                    f"input {where!r} needs {ref.text}, but {at} has no {key!r} "
                    f"(it is {_describe(value)})"
                )
        return value


class _ReferenceError(Exception):
    """A ``{step:…}`` reference could not be resolved from its dependency's output."""


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        keys = ", ".join(list(map(str, value))[:8])
        return f"an object with keys {keys}" if keys else "an empty object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return f"the {type(value).__name__} {_dump(value)[:40]}"


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _text(message: ToolMessage) -> str:
    """A tool message's content as text (text parts joined)."""
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "".join(parts)
