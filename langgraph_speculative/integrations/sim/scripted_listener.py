"""The simulated model of ``bench speculative``: it listens and acts on partial input.

:class:`ListeningResponder` plays a :class:`~.scripted_tasks.ScriptedTask` in the clock-based
interaction format (:mod:`langgraph_speculative.speculative.interaction_format`). It reads the
conversation (user updates, tool results, its own earlier actions) and writes actions:

- before the final input: ``CALL`` each ground-truth call once it is *known* from the
  transcript (:func:`~.simulated_speech.call_knowledge`; a call with no value to say is
  known only from the final input); with probability ``premature``
  (seeded per call) a call whose last string value is still being spoken is called early
  with the cut value and later revised (``REVISE``); ``PAUSE`` when there is nothing new;
- on the final input: ``REVISE``/``CALL`` whatever is still missing or wrong, then
  ``CONFIRM`` every call of the plan (the commit point);
- once every result is in: ``ANSWER``.

It is honest about what it simulates: when the model acts, and with what arguments, is
decided by the transcript and the protocol's rules; the latency comes from the scripted
model that streams its text.

Example:
    ```python
    from langgraph_speculative.integrations import PlannedCall, ScriptedTask
    from langgraph_speculative.integrations.sim.scripted_listener import (
        ListenerView,
        ListeningResponder,
    )
    from langgraph_speculative.speculative.interaction_format import Call

    fn = {"name": "play", "parameters": {"type": "dict", "properties": {}}}
    calls = (PlannedCall("0", "play", {"artist": "Taylor Swift"}),)
    task = ScriptedTask("t", "Play Taylor Swift", (fn,), calls)
    listener = ListeningResponder(task, premature=0.0)
    actions = listener.step(ListenerView(transcript="Play Taylor Swift", final=False))
    assert actions == [Call("c0", "play", {"artist": "Taylor Swift"})]
    ```
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from langgraph_speculative.core.ledger import canonical_json
from langgraph_speculative.errors import InteractionFormatError
from langgraph_speculative.integrations.sim.scripted_model import ModelTurn
from langgraph_speculative.integrations.sim.scripted_tasks import PlannedCall, ScriptedTask
from langgraph_speculative.integrations.sim.speech import call_knowledge
from langgraph_speculative.speculative.interaction_format import (
    Action,
    Answer,
    Call,
    Confirm,
    Pause,
    Remove,
    Revise,
    ToolResult,
    UserInput,
    parse_actions,
    parse_events,
    render_actions,
)

__all__ = ["ListenerView", "ListeningResponder"]


@dataclass(slots=True)
class ListenerView:
    """What the listening model has seen and done so far.

    Attributes:
        transcript: The latest user transcript.
        final: Whether it is final.
        calls: Call id to ``(tool, arguments)`` of the model's live calls.
        confirmed: Whether the model has written ``CONFIRM``.
        results: Ids of calls whose results arrived.
    """

    transcript: str = ""
    final: bool = False
    calls: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    confirmed: bool = False
    results: set[str] = field(default_factory=set)


class ListeningResponder:
    """Plays a task in the interaction format (see module docs).

    Args:
        task: The task (its calls are the ground truth).
        premature: Probability that a call is made early with a cut string value.
        seed: Seed of those draws (stable per task and call).

    Raises:
        ValueError: If ``premature`` is not in [0, 1].
    """

    def __init__(self, task: ScriptedTask, *, premature: float = 0.3, seed: int = 0) -> None:
        if not 0.0 <= premature <= 1.0:
            raise ValueError(f"premature must be in [0, 1], got {premature}")
        self.task = task
        self._index = {c.id: i for i, c in enumerate(task.calls)}
        self.premature = premature
        self.seed = seed

    def call_id(self, index: int) -> str:
        """The model's id of one of the task's calls.

        Args:
            index: The call's position in ``task.calls``.

        Returns:
            ``c<index>``.
        """
        return f"c{index}"

    def _jumps_the_gun(self, index: int) -> bool:
        key = f"{self.seed}\x00{self.task.id}\x00{index}".encode()
        u = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
        return u < self.premature

    def step(self, view: ListenerView) -> list[Action]:
        """Decide what to write next.

        Args:
            view: What the model has seen and done so far.

        Returns:
            Calls and revisions of known (or premature) calls; on the final input, the
            missing revisions and calls, removals of stray calls and ``CONFIRM``; once
            confirmed, ``ANSWER`` when every result is in; ``PAUSE`` when nothing is new.
        """
        out: list[Action] = []
        plan = [self.call_id(i) for i in range(len(self.task.calls))]
        if view.confirmed:  # after the commit point: calls that waited for results, then ANSWER
            for i, planned in enumerate(self.task.calls):
                if plan[i] not in view.calls and self._ready(planned, view):
                    out.append(Call(plan[i], planned.name, dict(planned.args), self._deps(planned)))
            if out:
                return out
            if set(plan) <= view.results:
                return [Answer(self.task.final_answer())]
            return [Pause()]
        for i, planned in enumerate(self.task.calls):
            cid = plan[i]
            args = dict(planned.args)
            have = view.calls.get(cid)
            if not self._ready(planned, view):
                continue  # a call that needs another call's result waits for that RESULT
            if view.final or call_knowledge(args, view.transcript).known:
                if have is None:
                    out.append(Call(cid, planned.name, args, self._deps(planned)))
                elif canonical_json(have[1]) != canonical_json(args):
                    out.append(Revise(cid, planned.name, args, self._deps(planned)))
            elif have is None and self._jumps_the_gun(i):
                cut = call_knowledge(args, view.transcript).premature
                if cut is not None:
                    out.append(Call(cid, planned.name, cut, self._deps(planned)))
        if view.final:
            for cid in view.calls:
                if cid not in plan:
                    out.append(Remove(cid))
            made = {a.id for a in out if isinstance(a, Call | Revise)} | set(view.calls)
            out.append(Confirm(tuple(c for c in plan if c in made)))
        return out or [Pause()]

    def _deps(self, planned: PlannedCall) -> tuple[str, ...]:
        return tuple(self.call_id(self._index[d]) for d in planned.depends_on)

    def _ready(self, planned: PlannedCall, view: ListenerView) -> bool:
        """Every call ``planned`` needs has its result in."""
        return all(self.call_id(self._index[d]) in view.results for d in planned.depends_on)

    def view(self, messages: Sequence[BaseMessage]) -> ListenerView:
        """Rebuild the view from the conversation (rendered events and the model's actions).

        Messages that are not part of the interaction transcript (earlier turns of the
        conversation: plain questions, answers, native tool calls) are skipped. A
        ``RESULT`` counts once it arrived for the call's current version: a revision
        with other arguments, or a cancellation, makes the call wait for a new one.

        Args:
            messages: The conversation (``to_messages`` output, possibly after a system
                message and earlier turns).

        Returns:
            The view.
        """
        view = ListenerView()
        for m in messages:
            if not isinstance(m.content, str) or not m.content.strip():
                continue
            if isinstance(m, HumanMessage):
                try:
                    events = parse_events(m.content)
                except InteractionFormatError:
                    continue  # not a transcript: an earlier turn of the conversation
                for event in events:
                    if isinstance(event, UserInput):
                        view.transcript, view.final = event.text, event.final
                    elif isinstance(event, ToolResult):
                        if event.status == "cancelled":
                            view.results.discard(event.call_id)
                        else:
                            view.results.add(event.call_id)
            elif isinstance(m, AIMessage):
                try:
                    actions = parse_actions(m.content)
                except InteractionFormatError:
                    continue  # an earlier answer in prose
                for action in actions:
                    _apply(view, action)
        return view

    def __call__(self, messages: Sequence[BaseMessage]) -> ModelTurn:
        """The next turn of the scripted model.

        Args:
            messages: The conversation so far.

        Returns:
            The actions as text; a pause waits for injected input, other actions go on.
        """
        actions = self.step(self.view(messages))
        waits = all(isinstance(a, Pause) for a in actions)
        more = not waits and not any(isinstance(a, Answer) for a in actions)
        return ModelTurn(text=render_actions(actions) + "\n", waits=waits, more=more)

    next_action = __call__


def _apply(view: ListenerView, action: Action) -> None:
    if isinstance(action, Call | Revise):
        new = (action.name, dict(action.arguments))
        old = view.calls.get(action.id)
        if old is not None and (old[0], canonical_json(old[1])) != (new[0], canonical_json(new[1])):
            view.results.discard(action.id)  # the earlier result answered the old version
        view.calls[action.id] = new
    elif isinstance(action, Remove):
        view.calls.pop(action.id, None)
        view.results.discard(action.id)
    elif isinstance(action, Confirm):
        view.confirmed = True
