"""The simulated model of ``bench speculative``: it listens and acts on partial input.

:class:`ListeningResponder` plays a :class:`~.scripted_tasks.ScriptedTask` in the
clock-based interaction format (:mod:`langgraph_speculative.interaction_format`). It reads
the conversation (user updates, tool results, its own earlier actions) and writes actions:

- before the final input: ``CALL`` each ground-truth call once it is *known* from the
  transcript (:func:`~.simulated_speech.call_knowledge`); with probability ``premature``
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
    from langgraph_speculative.integrations.scripted_listener import (
        ListenerView,
        ListeningResponder,
    )
    from langgraph_speculative.interaction_format import Call

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

from langgraph_speculative.integrations.scripted_model import ModelTurn
from langgraph_speculative.integrations.scripted_tasks import ScriptedTask
from langgraph_speculative.integrations.simulated_speech import call_knowledge
from langgraph_speculative.interaction_format import (
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
from langgraph_speculative.ledger import canonical_json

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
        self.premature = premature
        self.seed = seed

    def call_id(self, index: int) -> str:
        """The model's id of the task's ``index``-th call."""
        return f"c{index}"

    def _jumps_the_gun(self, index: int) -> bool:
        key = f"{self.seed}\x00{self.task.id}\x00{index}".encode()
        u = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
        return u < self.premature

    def step(self, view: ListenerView) -> list[Action]:
        """The actions for ``view``: calls/revisions, a confirmation, an answer, or a pause."""
        out: list[Action] = []
        if view.confirmed:
            plan = {self.call_id(i) for i in range(len(self.task.calls))}
            if plan <= view.results:
                return [Answer(self.task.final_answer())]
            return [Pause()]
        for i, planned in enumerate(self.task.calls):
            cid = self.call_id(i)
            args = dict(planned.args)
            have = view.calls.get(cid)
            if view.final or call_knowledge(args, view.transcript).known:
                if have is None:
                    out.append(Call(cid, planned.name, args))
                elif canonical_json(have[1]) != canonical_json(args):
                    out.append(Revise(cid, planned.name, args))
            elif have is None and self._jumps_the_gun(i):
                cut = call_knowledge(args, view.transcript).premature
                if cut is not None:
                    out.append(Call(cid, planned.name, cut))
        if view.final:
            for cid in view.calls:
                if cid not in {self.call_id(i) for i in range(len(self.task.calls))}:
                    out.append(Remove(cid))
            out.append(Confirm(tuple(self.call_id(i) for i in range(len(self.task.calls)))))
        return out or [Pause()]

    def view(self, messages: Sequence[BaseMessage]) -> ListenerView:
        """Rebuild the view from the conversation (rendered events and the model's actions)."""
        view = ListenerView()
        for m in messages:
            if isinstance(m, HumanMessage) and isinstance(m.content, str):
                for event in parse_events(m.content):
                    if isinstance(event, UserInput):
                        view.transcript, view.final = event.text, event.final
                    elif isinstance(event, ToolResult):
                        view.results.add(event.call_id)
            elif isinstance(m, AIMessage) and isinstance(m.content, str) and m.content.strip():
                for action in parse_actions(m.content):
                    _apply(view, action)
        return view

    def __call__(self, messages: Sequence[BaseMessage]) -> ModelTurn:
        """The next turn: the actions for the conversation, as text (a pause waits)."""
        actions = self.step(self.view(messages))
        waits = all(isinstance(a, Pause) for a in actions)
        more = not waits and not any(isinstance(a, Answer) for a in actions)
        return ModelTurn(text=render_actions(actions) + "\n", waits=waits, more=more)

    next_action = __call__


def _apply(view: ListenerView, action: Action) -> None:
    if isinstance(action, Call | Revise):
        view.calls[action.id] = (action.name, dict(action.arguments))
    elif isinstance(action, Remove):
        view.calls.pop(action.id, None)
    elif isinstance(action, Confirm):
        view.confirmed = True
