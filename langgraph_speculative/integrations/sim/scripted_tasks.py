"""Tool-calling tasks and the responder that plays them on the scripted model.

A :class:`ScriptedTask` is a user question, the tools it may use (JSON schemas), and the
calls a correct agent makes, with their dependencies (a call that needs another call's
result lists it in ``depends_on``). :class:`TaskResponder` turns a task into model
behaviour: given the conversation so far, it emits the calls that are *ready* (not yet
made, all dependencies answered), one per turn (``sequential``, ReAct) or all at once
(``parallel``), then a final answer once every result is in. The ``async`` policy is the
AsyncLM model: it emits every ready call, writes a trap (``[TRAP][END]``) when it can only
wait for results, and never treats a pending-result placeholder as a result.

Example:
    ```python
    from langgraph_speculative.integrations import PlannedCall, ScriptedTask, TaskResponder

    task = ScriptedTask(
        id="weather",
        question="Weather in Paris and Rome?",
        functions=({"name": "get_weather", "parameters": {"type": "object", "properties": {}}},),
        calls=(
            PlannedCall("0", "get_weather", {"city": "Paris"}),
            PlannedCall("1", "get_weather", {"city": "Rome"}),
        ),
    )
    responder = TaskResponder(task, policy="parallel")
    turn = responder([])
    assert [c["args"]["city"] for c in turn.tool_calls] == ["Paris", "Rome"]
    ```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, ToolCall, ToolMessage

from langgraph_speculative.async_calling.cml import TRAP_BLOCK
from langgraph_speculative.async_calling.interrupts import is_pending_placeholder
from langgraph_speculative.errors import ScriptError
from langgraph_speculative.integrations.sim.latency import LatencyModel
from langgraph_speculative.integrations.sim.scripted_model import ModelTurn

__all__ = ["Order", "PlannedCall", "Policy", "ScriptedTask", "TaskResponder"]

Policy = Literal["sequential", "parallel", "async"]
Order = Literal["script", "longest_first"]


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One call a correct agent makes.

    Attributes:
        id: Id of the call inside its task (unique per task).
        name: Tool name.
        args: Arguments.
        depends_on: Ids (within the task) of calls whose results this call needs.
    """

    id: str
    name: str
    args: Mapping[str, Any]
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScriptedTask:
    """A tool-calling task with its ground-truth calls.

    Attributes:
        id: Task id (for example a BFCL record id).
        question: The user's request.
        functions: The tools' JSON schemas (BFCL / OpenAI function format).
        calls: The calls a correct agent makes.
        answer_tokens: Length of the final answer, in tokens.

    Raises:
        ScriptError: If a call names a tool not in ``functions``, call ids repeat, a
            dependency is unknown, or dependencies form a cycle.
    """

    id: str
    question: str
    functions: tuple[Mapping[str, Any], ...]
    calls: tuple[PlannedCall, ...]
    answer_tokens: int = 20
    _by_id: dict[str, PlannedCall] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = {f.get("name") for f in self.functions}
        by_id: dict[str, PlannedCall] = {}
        for call in self.calls:
            if call.name not in names:
                raise ScriptError(
                    f"task {self.id!r}: call {call.id!r} asks for tool {call.name!r}, "
                    f"which the task does not have (it has {sorted(map(str, names))})"
                )
            if call.id in by_id:
                raise ScriptError(f"task {self.id!r}: call id {call.id!r} repeats")
            by_id[call.id] = call
        for call in self.calls:
            for dep in call.depends_on:
                if dep not in by_id:
                    raise ScriptError(
                        f"task {self.id!r}: call {call.id!r} depends on unknown call {dep!r}"
                    )
        if self.answer_tokens < 0:
            raise ScriptError(f"task {self.id!r}: answer_tokens must be >= 0")
        object.__setattr__(self, "_by_id", by_id)
        self._check_acyclic()

    def _check_acyclic(self) -> None:
        state: dict[str, int] = {}

        def visit(cid: str) -> None:
            if state.get(cid) == 1:
                raise ScriptError(f"task {self.id!r}: dependency cycle through call {cid!r}")
            if state.get(cid) == 2:
                return
            state[cid] = 1
            for dep in self._by_id[cid].depends_on:
                visit(dep)
            state[cid] = 2

        for call in self.calls:
            visit(call.id)

    def call(self, call_id: str) -> PlannedCall:
        """Return the planned call with id ``call_id`` (within the task)."""
        return self._by_id[call_id]

    def tool_call_id(self, call: PlannedCall) -> str:
        """The deterministic ``tool_call_id`` the model uses for ``call``."""
        return f"call_{self.id}_{call.id}"

    def tool_call(self, call: PlannedCall) -> ToolCall:
        """``call`` as a LangChain ``ToolCall`` with its deterministic id."""
        return ToolCall(
            name=call.name, args=dict(call.args), id=self.tool_call_id(call), type="tool_call"
        )

    def final_answer(self) -> str:
        """The final answer text: exactly ``answer_tokens`` tokens of ASCII."""
        head = f"Done: {len(self.calls)} calls answered. "
        body = head + "All results are in. " * (self.answer_tokens // 4 + 1)
        return body[: 4 * self.answer_tokens]


class TaskResponder:
    """Plays a :class:`ScriptedTask` as a model would (see module docs).

    Args:
        task: The task.
        policy: ``sequential`` emits one ready call per turn (ReAct); ``parallel`` emits
            every ready call in one turn; ``async`` emits every ready call and traps
            (instead of failing) when it can only wait.
        order: ``script`` keeps the task's call order among ready calls; ``longest_first``
            emits the longest expected call first (needs ``expected_ms``).
        expected_ms: Expected duration of a call (for ``longest_first``).

    Raises:
        ValueError: On an unknown policy or order, or ``longest_first`` without
            ``expected_ms``.
    """

    def __init__(
        self,
        task: ScriptedTask,
        *,
        policy: Policy = "parallel",
        order: Order = "script",
        expected_ms: Callable[[PlannedCall], float] | None = None,
    ) -> None:
        if policy not in ("sequential", "parallel", "async"):
            raise ValueError(f"unknown policy {policy!r}; choose sequential, parallel or async")
        if order not in ("script", "longest_first"):
            raise ValueError(f"unknown order {order!r}; choose script or longest_first")
        if order == "longest_first" and expected_ms is None:
            raise ValueError("order='longest_first' needs expected_ms")
        self.task = task
        self.policy = policy
        self.order = order
        self.expected_ms = expected_ms
        self._ids = {task.tool_call_id(c): c.id for c in task.calls}

    @classmethod
    def on_latency(
        cls,
        task: ScriptedTask,
        latency: LatencyModel,
        *,
        policy: Policy = "parallel",
        estimate_noise: float | None = 0.5,
    ) -> TaskResponder:
        """A responder whose model knows roughly how long each call takes.

        Ready calls are emitted longest-expected-first by
        :meth:`LatencyModel.estimate_ms` with ``estimate_noise``; ``None`` means the model
        knows nothing per call and keeps the task's order.
        """
        if estimate_noise is None:
            return cls(task, policy=policy)
        noise = estimate_noise
        return cls(
            task,
            policy=policy,
            order="longest_first",
            expected_ms=lambda c: latency.estimate_ms(c.name, c.args, noise),
        )

    def progress(self, messages: Sequence[BaseMessage]) -> tuple[set[str], set[str]]:
        """Return (ids of calls already made, ids of calls answered), as task call ids."""
        made: set[str] = set()
        answered: set[str] = set()
        for m in messages:
            if isinstance(m, AIMessage):
                made.update(self._ids[tc["id"]] for tc in m.tool_calls if tc["id"] in self._ids)
            elif (
                isinstance(m, ToolMessage)
                and m.tool_call_id in self._ids
                and not is_pending_placeholder(m)
            ):
                answered.add(self._ids[m.tool_call_id])
        return made, answered

    def ready(self, made: set[str], answered: set[str]) -> list[PlannedCall]:
        """Calls not made yet whose dependencies are all answered, in emission order."""
        ready = [
            c
            for c in self.task.calls
            if c.id not in made and all(d in answered for d in c.depends_on)
        ]
        if self.order == "longest_first" and self.expected_ms is not None:
            ready.sort(key=self.expected_ms, reverse=True)
        return ready

    def __call__(self, messages: Sequence[BaseMessage]) -> ModelTurn:
        """Return the next turn for ``messages``.

        Raises:
            ScriptError: If a synchronous policy is asked to go on while no call is ready
                and results it needs are missing (a synchronous agent never does that).
        """
        made, answered = self.progress(messages)
        ready = self.ready(made, answered)
        if ready:
            chosen = ready[:1] if self.policy == "sequential" else ready
            return ModelTurn(tool_calls=tuple(self.task.tool_call(c) for c in chosen))
        return self._wait_or_answer(made, answered)

    def next_action(self, messages: Sequence[BaseMessage]) -> ModelTurn:
        """Return the next *step* of an interruptible session: one call, a trap, or the answer.

        A session asks again after every step, so results injected meanwhile count.
        """
        made, answered = self.progress(messages)
        ready = self.ready(made, answered)
        if ready:
            return ModelTurn(tool_calls=(self.task.tool_call(ready[0]),))
        return self._wait_or_answer(made, answered)

    def _wait_or_answer(self, made: set[str], answered: set[str]) -> ModelTurn:
        missing = sorted(made - answered)
        if missing or len(made) < len(self.task.calls):
            if self.policy == "async":
                return ModelTurn(text=TRAP_BLOCK)
            raise ScriptError(
                f"task {self.task.id!r}: the model was asked to continue while results of "
                f"calls {missing} are missing"
            )
        return ModelTurn(text=self.task.final_answer())
