"""Resume state: what a crashed node had done, rebuilt from its journal, and what to do next.

A node run journaled by the
:class:`~langgraph_speculative.durability.checkpointer.InterruptAwareCheckpointer` leaves
:class:`~langgraph_speculative.durability.records.JournalRecord` s in the checkpoint store. When the
task runs again after a crash, its records are replayed into a :class:`ResumeState`:

- calls that **finished** keep their result (keyed by tool call id): they are not re-run,
  and their ``ToolMessage`` is delivered once;
- calls that were **running** at the crash are re-run only when that is safe: safe or
  idempotent tools re-run; tools that take an idempotency key re-run with the *same* key;
  any other call goes to the app's *outcome unknown* hook (:data:`OutcomeUnknownHook`),
  whose :class:`Resolution` says whether to re-run it, deliver a result the app supplies,
  or deliver an "outcome unknown" error (the default: never run twice silently);
- completed model **turns** are replayed instead of asking the model again;
- **input updates**, speculative **commits and aborts**, and which results were already
  **delivered** to the model survive.

A model asked again for a turn it was streaming at the crash may name its calls with other
ids: :meth:`ResumeState.claim` matches such a call to the journaled one by tool and
canonical arguments, so it inherits that call's result or idempotency key.

Example:
    ```python
    from langchain_core.messages import ToolMessage
    from langgraph_speculative.core.ledger import CallRecord
    from langgraph_speculative.durability.resume import ResumeState

    started = CallRecord("c1", "pay", {"amount": 5}, idempotency_key="k1")
    state = ResumeState()
    state.add_started(started, request=1)
    state.add_finished("c1", "done", ToolMessage("paid", tool_call_id="c1"), None)
    # the model, asked again, called the same tool with the same arguments under a new id
    claimed = state.claim("c9", "pay", {"amount": 5})
    assert claimed is not None and claimed.record.idempotency_key == "k1"
    assert claimed.result is not None and claimed.result.content == "paid"
    ```
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from langchain_core.messages import ToolMessage

from langgraph_speculative.core.ledger import (
    CallRecord,
    CallState,
    InputRecord,
    Speculation,
    canonical_json,
)
from langgraph_speculative.errors import OutcomeUnknownError, SpeculativeError

__all__ = [
    "JournaledCall",
    "OutcomeUnknownHook",
    "Resolution",
    "ResolutionKind",
    "ResumeState",
    "TurnRecord",
    "outcome_unknown_message",
    "raise_outcome_unknown",
    "report_outcome_unknown",
    "resolve_outcome_unknown",
]


class ResolutionKind(StrEnum):
    """What to do with a call whose outcome is unknown after a crash."""

    RERUN = "rerun"
    DELIVER = "deliver"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Resolution:
    """The app's answer for a call that was running at a crash and cannot safely re-run.

    Build one with :meth:`rerun`, :meth:`deliver` or :meth:`unknown`.

    Attributes:
        kind: Re-run the call, deliver ``content`` as its result, or deliver an "outcome
            unknown" error result.
        content: The result to deliver (``deliver``) or the error text (``unknown``;
            ``None`` for the default text).
    """

    kind: ResolutionKind
    content: str | None = None

    @classmethod
    def rerun(cls) -> Resolution:
        """Run the call again (the app checked that this is harmless)."""
        return cls(ResolutionKind.RERUN)

    @classmethod
    def deliver(cls, content: str) -> Resolution:
        """Deliver ``content`` as the call's result (the app found out what happened)."""
        if not isinstance(content, str):
            raise SpeculativeError(f"a delivered result must be a str, got {type(content)}")
        return cls(ResolutionKind.DELIVER, content)

    @classmethod
    def unknown(cls, message: str | None = None) -> Resolution:
        """Deliver an error result saying the outcome is unknown (the default)."""
        return cls(ResolutionKind.UNKNOWN, message)


OutcomeUnknownHook = Callable[[CallRecord], "Resolution | Awaitable[Resolution]"]
"""Called with the ledger record of a call that was running at a crash, whose tool is
neither idempotent nor takes an idempotency key; returns (or awaits to) a
:class:`Resolution`. An exception it raises fails the call like a tool's own."""


def outcome_unknown_message(record: CallRecord) -> str:
    """The default text of the error result of a call whose outcome is unknown."""
    return (
        f"Outcome unknown: the process stopped while tool {record.tool!r} (call "
        f"{record.id!r}) was running. The tool is not idempotent and takes no idempotency "
        "key, so it was not run again; check whether it took effect before retrying."
    )


def report_outcome_unknown(record: CallRecord) -> Resolution:
    """The default hook: deliver an "outcome unknown" error result, never re-run."""
    return Resolution.unknown()


def raise_outcome_unknown(record: CallRecord) -> Resolution:
    """A strict hook: stop the run with :class:`~langgraph_speculative.errors.OutcomeUnknownError`.

    Raises:
        OutcomeUnknownError: Always.
    """
    raise OutcomeUnknownError(outcome_unknown_message(record), call_id=record.id, tool=record.tool)


async def resolve_outcome_unknown(
    hook: OutcomeUnknownHook | None, record: CallRecord
) -> Resolution:
    """Call ``hook`` (the default when ``None``) and check what it returned.

    Raises:
        SpeculativeError: If the hook returns something other than a :class:`Resolution`.
    """
    out: Any = (hook or report_outcome_unknown)(record)
    if inspect.isawaitable(out):
        out = await out
    if not isinstance(out, Resolution):
        raise SpeculativeError(
            f"the outcome-unknown hook must return a Resolution, got {type(out).__name__}"
        )
    return out


@dataclass(slots=True)
class JournaledCall:
    """A call as the journal knows it.

    Attributes:
        record: The ledger record as it was when the call started (id, tool, args,
            idempotency key, safety, speculation, dependencies).
        request: The model request (1, 2, ...) whose stream started it, if any.
        alias_of: The journaled call it stands for, when a re-asked model renamed it.
        state: ``running`` until a finish record arrives, then its terminal state.
        result: The result ``ToolMessage`` once finished.
        error: The error text of a failed or cancelled call.
        claimed: Whether a resumed run already took this call over.
    """

    record: CallRecord
    request: int | None = None
    alias_of: str | None = None
    state: CallState = CallState.RUNNING
    result: ToolMessage | None = None
    error: str | None = None
    claimed: bool = False

    @property
    def finished(self) -> bool:
        """Whether the call reached a terminal state before the crash."""
        return self.state.terminal


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """A model turn the node completed (replayed instead of asking the model again).

    Attributes:
        index: The model request number (1, 2, ...) within the node run.
        text: The text the model wrote.
        calls: The turn's tool calls (``name``, ``args``, ``id``), with the ids the node
            gave them.
        invalid: Malformed calls (``name``, ``args`` text, ``id``, ``error``).
        trap: Whether the model trapped (waited for a result) at the end.
        seen: Ids of the calls whose results the model had seen when it wrote the turn.
        meta: Anything else a node needs to replay the turn (JSON-able values; stored
            only when not empty).
    """

    index: int
    text: str = ""
    calls: tuple[dict[str, Any], ...] = ()
    invalid: tuple[dict[str, Any], ...] = ()
    trap: bool = False
    seen: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-serialisable form stored in the journal."""
        return {
            "index": self.index,
            "text": self.text,
            "calls": [dict(c) for c in self.calls],
            "invalid": [dict(c) for c in self.invalid],
            "trap": self.trap,
            "seen": list(self.seen),
            **({"meta": dict(self.meta)} if self.meta else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnRecord:
        """Rebuild a turn from :meth:`to_dict` output.

        Raises:
            SpeculativeError: If the data is not a turn record.
        """
        try:
            index = data["index"]
            if isinstance(index, bool) or not isinstance(index, int) or index < 1:
                raise TypeError(f"index must be an integer >= 1, got {index!r}")
            text = data.get("text", "")
            trap = data.get("trap", False)
            if not isinstance(text, str) or not isinstance(trap, bool):
                raise TypeError("text must be a string and trap a boolean")
            calls = tuple(_call_dict(c, invalid=False) for c in data.get("calls", ()))
            invalid = tuple(_call_dict(c, invalid=True) for c in data.get("invalid", ()))
            seen = data.get("seen", ())
            if isinstance(seen, str) or not all(isinstance(s, str) for s in seen):
                raise TypeError(f"seen must be a list of call ids, got {seen!r}")
            meta = data.get("meta", {})
            if not isinstance(meta, Mapping) or not all(isinstance(k, str) for k in meta):
                raise TypeError(f"meta must be a mapping with string keys, got {meta!r}")
            return cls(index, text, calls, invalid, trap, tuple(seen), dict(meta))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SpeculativeError(f"not a turn record: {exc}") from exc


def _call_dict(data: Any, *, invalid: bool) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise TypeError(f"a call is a mapping, got {type(data).__name__}")
    call_id = data.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise TypeError(f"a call needs a non-empty id, got {call_id!r}")
    name = data.get("name")
    if invalid:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"call {call_id!r}: name must be a string or null")
        return {
            "name": name,
            "args": data.get("args"),
            "id": call_id,
            "error": data.get("error"),
            "type": "invalid_tool_call",
        }
    args = data.get("args")
    if not isinstance(name, str) or not name or not isinstance(args, Mapping):
        raise TypeError(f"call {call_id!r}: needs a tool name and an args mapping")
    return {"name": name, "args": dict(args), "id": call_id, "type": "tool_call"}


def _match_key(tool: str, args: Mapping[str, Any]) -> str:
    try:
        return f"{tool}\x00{canonical_json(dict(args))}"
    except (TypeError, ValueError):
        return f"{tool}\x00{args!r}"


def _same(record: CallRecord, tool: str, args: Mapping[str, Any]) -> bool:
    return _match_key(record.tool, record.args) == _match_key(tool, args)


@dataclass(slots=True)
class ResumeState:
    """Everything a node run's journal says, replayed in record order.

    Attributes:
        calls: Journaled calls by id, in the order they started.
        turns: Completed model turns by request number.
        inputs: Input updates received, in ``seq`` order.
        speculation: Commits and aborts of speculative calls, by call id.
        delivered: Ids of the calls whose results the model has seen.
        records: How many journal records were replayed (0 on a first run).
        owners: Ids of the runs that wrote the records, oldest first.
    """

    calls: dict[str, JournaledCall] = field(default_factory=dict)
    turns: dict[int, TurnRecord] = field(default_factory=dict)
    inputs: list[InputRecord] = field(default_factory=list)
    speculation: dict[str, Speculation] = field(default_factory=dict)
    delivered: set[str] = field(default_factory=set)
    records: int = 0
    owners: list[str] = field(default_factory=list)

    # -- replay (used by the journal) ------------------------------------------------
    def add_started(
        self, record: CallRecord, *, request: int | None = None, alias_of: str | None = None
    ) -> None:
        """Replay a call-started record (a second start of the same id is a re-run)."""
        known = self.calls.get(record.id)
        if known is not None and known.finished and _same(known.record, record.tool, record.args):
            return  # a finished result wins over a later, stale start of the same call
        self.calls[record.id] = JournaledCall(record, request, alias_of)

    def add_finished(
        self, call_id: str, state: str, result: ToolMessage | None, error: str | None
    ) -> None:
        """Replay a call-finished record.

        Raises:
            SpeculativeError: If the call never started or the state is not terminal.
        """
        known = self.calls.get(call_id)
        if known is None:
            raise SpeculativeError(f"call {call_id!r} finished but never started")
        final = CallState(state)
        if not final.terminal:
            raise SpeculativeError(f"call {call_id!r} finished in non-terminal state {state!r}")
        known.state, known.result, known.error = final, result, error

    def add_turn(self, turn: TurnRecord) -> None:
        """Replay a completed model turn (and what the model had seen for it)."""
        self.turns[turn.index] = turn
        self.delivered.update(turn.seen)

    def add_input(self, update: InputRecord) -> None:
        """Replay an input update (a repeated ``seq`` is ignored)."""
        if self.inputs and update.seq <= self.inputs[-1].seq:
            return
        self.inputs.append(update)

    # -- reading ---------------------------------------------------------------------
    @property
    def resuming(self) -> bool:
        """Whether there is anything to resume (the task ran before)."""
        return self.records > 0

    def completed(self) -> dict[str, ToolMessage]:
        """Results of the calls that finished before the crash, by call id."""
        return {cid: c.result for cid, c in self.calls.items() if c.result is not None}

    def running(self) -> list[CallRecord]:
        """Records of the calls that were running at the crash."""
        return [c.record for c in self.calls.values() if not c.finished]

    def undelivered(self) -> list[str]:
        """Ids of finished calls whose results the model had not seen (queued interrupts)."""
        return [cid for cid, c in self.calls.items() if c.finished and cid not in self.delivered]

    def orphans(self) -> list[JournaledCall]:
        """Journaled calls no completed turn names and no resumed run claimed."""
        named = {c["id"] for t in self.turns.values() for c in (*t.calls, *t.invalid)}
        return [c for cid, c in self.calls.items() if cid not in named and not c.claimed]

    def claim(self, call_id: str, tool: str, args: Mapping[str, Any]) -> JournaledCall | None:
        """Take over the journaled call that a (re-)submitted call stands for.

        The same id wins; else, for an id the journal does not know, the oldest unclaimed
        journaled call of the same tool and canonical arguments that no completed turn
        names (a call the model streamed before the crash and named differently when
        asked again).

        Returns:
            The journaled call, or ``None`` when the call is new.
        """
        known = self.calls.get(call_id)
        if known is not None:
            if known.claimed or not _same(known.record, tool, args):
                return None  # another call under a reused id: a new call
            known.claimed = True
            return known
        wanted = _match_key(tool, args)
        for orphan in self.orphans():
            if _match_key(orphan.record.tool, orphan.record.args) == wanted:
                orphan.claimed = True
                return orphan
        return None

    def conflicts(self, call_id: str, tool: str, args: Mapping[str, Any]) -> bool:
        """Whether the journal holds another call (other tool or arguments) under ``call_id``."""
        known = self.calls.get(call_id)
        return known is not None and not _same(known.record, tool, args)

    def restored_ledger_records(self) -> Sequence[CallRecord]:
        """The journaled calls as ledger records in their last known state (for reports)."""
        out: list[CallRecord] = []
        for c in self.calls.values():
            rec = CallRecord.from_dict(c.record.to_dict())
            rec.state = c.state
            rec.result = c.result
            rec.error = c.error
            if c.record.id in self.speculation:
                rec.speculation = self.speculation[c.record.id]
            out.append(rec)
        return out
