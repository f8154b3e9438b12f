"""The child side of ``bench recovery``: one attempt of one trial, in a forked process.

The parent (:mod:`langgraph_speculative.bench.recovery_bench`) imports everything, then forks one
child per attempt with :func:`fork_attempt`; the child builds the agent on the simulated
model, opens the checkpointer, starts the task (or resumes it from the checkpointer when
the thread already has a checkpoint), writes an outcome file and leaves with
``os._exit``. The parent may SIGKILL it at any moment.

Tools have three kinds. ``read`` tools only read. ``keyed`` tools are payment-like: they
pass their idempotency key to a *provider* that applies a key at most once, as Stripe
does, and answer a repeated key with the stored response. ``unkeyed`` tools change the
world and cannot take a key. Every execution appends ``start`` / ``done`` records (and,
for the unsafe kinds, an ``effect`` or ``replay`` record) to a per-trial journal file:
one JSON line each, appended, flushed and fsynced under a file lock, so the records
survive the SIGKILL; the provider's "key seen" check reads that same journal under the
same lock.

Example:
    ```python
    import tempfile
    from pathlib import Path
    from langgraph_speculative.bench.recovery_trial import Journal

    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "journal.jsonl")
        first = journal.apply_effect({"tool": "pay_invoice", "call_id": "c1"}, key="k1")
        again = journal.apply_effect({"tool": "pay_invoice", "call_id": "c1"}, key="k1")
        assert first == again  # the provider applied key k1 once
        assert [r["event"] for r in journal.records()] == ["effect", "replay"]
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import json
import os
import re
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.graph import START, MessagesState, StateGraph
from pydantic import BaseModel, ConfigDict, create_model

from langgraph_speculative.core.executor import idempotency_key_of
from langgraph_speculative.core.ledger import canonical_json
from langgraph_speculative.core.safety import label_tool
from langgraph_speculative.durability.delegating_saver import DelegatingSaver
from langgraph_speculative.errors import CheckpointerError, SpeculativeError
from langgraph_speculative.integrations.sim.latency import LatencyModel
from langgraph_speculative.integrations.sim.scripted_model import ModelTurn, ScriptedChatModel
from langgraph_speculative.integrations.sim.scripted_tasks import ScriptedTask, TaskResponder
from langgraph_speculative.integrations.sim.tools import default_result

__all__ = [
    "GRAPHS",
    "SYSTEMS",
    "TOOL_KINDS",
    "Attempt",
    "AttemptResponder",
    "CallIds",
    "CheckpointStats",
    "Durability",
    "Graph",
    "Journal",
    "OutcomePolicy",
    "StoreSpec",
    "TimingSaver",
    "ToolKind",
    "build_tools",
    "canonical_call_id",
    "fork_attempt",
    "interrupt_aware_class",
    "measure_overhead",
    "open_plain_saver",
    "outcome_hook",
    "run_attempt",
    "setup_store",
    "standard_agent",
    "tool_functions",
]

SYSTEMS: tuple[str, ...] = ("stock", "interrupt_aware")
"""The compared systems: the plain saver, and the interrupt-aware wrapper around it."""

ToolKind = Literal["read", "keyed", "unkeyed"]
CallIds = Literal["stable", "fresh"]
Durability = Literal["sync", "async", "exit"]
Graph = Literal["async", "standard"]
"""The graph a run uses: the project's async agent or LangGraph's usual tool loop."""
GRAPHS: tuple[Graph, ...] = ("async", "standard")
OutcomePolicy = Literal["reconcile", "report", "raise", "rerun"]

TOOL_KINDS: dict[str, tuple[ToolKind, dict[str, type]]] = {
    "get_balance": ("read", {"account": str}),
    "lookup_invoice": ("read", {"invoice": str}),
    "get_exchange_rate": ("read", {"currency": str}),
    "pay_invoice": ("keyed", {"invoice": str, "amount_cents": int}),
    "transfer_funds": ("keyed", {"to_account": str, "amount_cents": int}),
    "send_email": ("unkeyed", {"to": str, "subject": str}),
    "create_ticket": ("unkeyed", {"title": str}),
}
"""Tool name to (kind, parameters) of every tool a recovery task may use."""

_FRESH_SUFFIX = re.compile(r"_a\d+$")
_T = TypeVar("_T")


def tool_functions(names: Collection[str]) -> tuple[dict[str, Any], ...]:
    """The JSON schemas (BFCL / OpenAI function format) of the named tools.

    Raises:
        KeyError: If a name is not in :data:`TOOL_KINDS`.
    """
    out = []
    for name in names:
        kind, params = TOOL_KINDS[name]
        props = {
            p: {"type": "integer" if t is int else "string", "description": p}
            for p, t in params.items()
        }
        out.append(
            {
                "name": name,
                "description": f"{name.replace('_', ' ')} ({kind})",
                "parameters": {"type": "dict", "properties": props, "required": list(props)},
            }
        )
    return tuple(out)


# -- the store -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoreSpec:
    """Where the checkpoints go.

    Attributes:
        kind: ``sqlite`` or ``postgres``.
        target: The SQLite file, or the PostgreSQL connection string.
    """

    kind: Literal["sqlite", "postgres"]
    target: str

    def __post_init__(self) -> None:
        if self.kind not in ("sqlite", "postgres"):
            raise ValueError(f"unknown checkpointer {self.kind!r}; choose sqlite or postgres")
        if not self.target:
            raise ValueError(f"the {self.kind} checkpointer needs a target (file or DSN)")


@contextlib.asynccontextmanager
async def open_plain_saver(store: StoreSpec) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Open LangGraph's own async saver for ``store`` (closed on exit)."""
    if store.kind == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(store.target) as sqlite_saver:
            yield sqlite_saver
    else:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(store.target) as pg_saver:
            yield pg_saver


async def setup_store(store: StoreSpec) -> None:
    """Create the saver's tables (run once, before any attempt)."""
    async with open_plain_saver(store) as saver:
        setup = getattr(saver, "setup", None)
        if setup is not None:
            await setup()


def interrupt_aware_class() -> Callable[..., BaseCheckpointSaver[Any]]:
    """Import the interrupt-aware checkpointer class (lazily: it may not exist yet).

    Raises:
        CheckpointerError: If ``langgraph_speculative.durability.checkpointer`` cannot be
            imported or has no ``InterruptAwareCheckpointer``.
    """
    try:
        module = importlib.import_module("langgraph_speculative.durability.checkpointer")
    except ImportError as exc:
        raise CheckpointerError(
            "the interrupt_aware system needs langgraph_speculative.durability.checkpointer "
            f"(InterruptAwareCheckpointer), which cannot be imported: {exc}; "
            "run with --systems stock"
        ) from exc
    cls = getattr(module, "InterruptAwareCheckpointer", None)
    if not isinstance(cls, type) or not issubclass(cls, BaseCheckpointSaver):
        raise CheckpointerError(
            "langgraph_speculative.durability.checkpointer has no InterruptAwareCheckpointer "
            "saver class; "
            "run with --systems stock"
        )
    return cast("Callable[..., BaseCheckpointSaver[Any]]", cls)


# -- timing proxy ----------------------------------------------------------------------------
@dataclass(slots=True)
class CheckpointStats:
    """Time spent in a checkpointer.

    Attributes:
        seconds: Total seconds spent in its async methods.
        calls: Number of calls per method name.
    """

    seconds: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)


class TimingSaver(DelegatingSaver):
    """A saver that delegates every call to ``inner`` and times the async ones.

    The delegation is
    :class:`~langgraph_speculative.durability.delegating_saver.DelegatingSaver`'s; this
    class only adds the timing: every async call (each step of an ``alist`` iteration
    apart) adds its time to :attr:`stats`. The sync API is delegated untimed (the
    benchmark's agent is async).

    Args:
        inner: The saver to time.
        stats: Where to add the time (shared by the ``with_allowlist`` clones LangGraph
            makes when it compiles a graph); a new one by default.

    Example:
        ```python
        # skip-test
        timed = TimingSaver(AsyncSqliteSaver(conn))
        graph = builder.compile(checkpointer=timed)
        ...  # run the graph
        print(timed.stats.seconds, dict(timed.stats.calls))
        ```
    """

    def __init__(
        self, inner: BaseCheckpointSaver[Any], stats: CheckpointStats | None = None
    ) -> None:
        super().__init__(inner)
        self.stats = stats if stats is not None else CheckpointStats()

    @property
    def inner(self) -> BaseCheckpointSaver[Any]:
        """The timed saver (the same as :attr:`saver`)."""
        return self.saver

    def _rewrap(self, saver: BaseCheckpointSaver[Any]) -> TimingSaver:
        """A proxy of a ``with_allowlist`` clone, adding to the same stats."""
        return TimingSaver(saver, self.stats)

    def _add(self, method: str, started: float) -> None:
        self.stats.seconds += time.perf_counter() - started
        self.stats.calls[method] += 1

    async def _call(self, name: str, sync: Callable[[], _T], run: Callable[[], Any]) -> _T:
        """Delegate, timed."""
        started = time.perf_counter()
        try:
            return await super()._call(name, sync, run)
        finally:
            self._add(name, started)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Delegate, timing each step of the iteration."""
        items = super().alist(config, filter=filter, before=before, limit=limit)
        while True:
            started = time.perf_counter()
            try:
                item = await anext(items)
            except StopAsyncIteration:
                self._add("alist", started)
                return
            self._add("alist", started)
            yield item


# -- journal and provider --------------------------------------------------------------------
class Journal:
    """An append-only JSON-lines file that survives SIGKILL (see the module docs).

    Each :meth:`append` writes one line under an exclusive ``flock``, then flushes and
    fsyncs. A line torn by a kill mid-write is skipped by :meth:`records` (and the next
    append starts a fresh line), so one torn record never hides the others.

    Args:
        path: The journal file (created on first append).
        fsync: Fsync each append (off only for runs nobody kills: an fsync blocks the
            event loop, which would inflate the checkpointer times measured meanwhile).
    """

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, fd: int, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        size = os.fstat(fd).st_size
        if size:
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":  # a torn line from a killed writer
                line = "\n" + line
        os.write(fd, line.encode())
        if self.fsync:
            os.fsync(fd)

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one record durably (one JSON line, flushed and fsynced)."""
        with self._locked() as fd:
            self._write(fd, record)

    def _read(self, fd: int | None = None) -> list[dict[str, Any]]:
        if fd is None:
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                return []
        else:
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            data = b"".join(chunks)
        out: list[dict[str, Any]] = []
        for line in data.decode("utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # torn by a kill
            if isinstance(record, dict):
                out.append(record)
        return out

    def records(self) -> list[dict[str, Any]]:
        """Every complete record, in append order (torn lines skipped)."""
        return self._read()

    def apply_effect(self, base: Mapping[str, Any], key: str | None) -> str:
        """Apply a side effect at most once per idempotency key (the provider).

        Under the journal's lock: if an ``effect`` record with ``key`` exists, append a
        ``replay`` record and return that effect's stored response; otherwise make a new
        confirmation, append an ``effect`` record and return it. ``key=None`` (a tool that
        cannot take a key) always applies a new effect.

        Args:
            base: Fields of the record (trial, call_id, tool, ...).
            key: The idempotency key, or ``None``.

        Returns:
            The provider's response (JSON text with a confirmation id).
        """
        with self._locked() as fd:
            if key is not None:
                for record in self._read(fd):
                    if record.get("event") == "effect" and record.get("key") == key:
                        response = str(record.get("result"))
                        self._write(fd, {**base, "event": "replay", "key": key, "result": response})
                        return response
            tool = str(base.get("tool", "effect"))
            response = json.dumps(
                {"tool": tool, "confirmation": f"{tool[:3]}_{uuid.uuid4().hex[:12]}"},
                sort_keys=True,
            )
            self._write(fd, {**base, "event": "effect", "key": key, "result": response})
            return response


# -- tools -----------------------------------------------------------------------------------
@dataclass(slots=True)
class _ToolContext:
    trial: int
    system: str
    attempt: int
    journal: Journal
    latency: LatencyModel
    planned: dict[tuple[str, str], str]  # (tool, canonical args) -> planned call id

    async def execute(
        self, name: str, kind: ToolKind, args: dict[str, Any], call_id: str | None, key: str | None
    ) -> str:
        base = {
            "trial": self.trial,
            "system": self.system,
            "attempt": self.attempt,
            "pid": os.getpid(),
            "call_id": call_id,
            "planned": self.planned.get((name, canonical_json(args))),
            "tool": name,
            "kind": kind,
            "key": key,
        }
        self.journal.append({**base, "event": "start", "at": time.time()})
        seconds = self.latency.tool_ms(name, args) / 1000.0
        if kind == "read":
            await asyncio.sleep(seconds)
            result = default_result(name, args)
        else:  # the request travels, the provider applies it, the response travels back
            await asyncio.sleep(seconds / 2)
            result = self.journal.apply_effect(base, key if kind == "keyed" else None)
            await asyncio.sleep(seconds / 2)
        self.journal.append({**base, "event": "done", "result": result, "at": time.time()})
        return result


class _JournaledTool(BaseTool):
    """A tool whose executions go to the trial's journal (see the module docs)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kind: ToolKind
    context: Any

    def _to_args_and_kwargs(
        self, tool_input: str | dict[str, Any], tool_call_id: str | None
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        _, kwargs = super()._to_args_and_kwargs(tool_input, tool_call_id)
        args = {k: v for k, v in kwargs.items() if v is not None}
        return (), {"arguments": args, "call_id": tool_call_id}

    def _run(self, *args: Any, **kwargs: Any) -> str:
        raise SpeculativeError(f"tool {self.name!r} of bench recovery runs asynchronously only")

    async def _arun(self, *args: Any, config: RunnableConfig, **kwargs: Any) -> str:
        context: _ToolContext = self.context
        key = idempotency_key_of(config) if self.kind == "keyed" else None
        return await context.execute(
            self.name, self.kind, dict(kwargs["arguments"]), kwargs.get("call_id"), key
        )


def build_tools(
    task: ScriptedTask,
    *,
    trial: int,
    system: str,
    attempt: int,
    journal: Journal,
    latency: LatencyModel,
) -> list[BaseTool]:
    """The task's tools, labelled, writing to ``journal``.

    ``read`` tools are labelled safe; ``keyed`` ones unsafe, not idempotent, taking an
    idempotency key; ``unkeyed`` ones unsafe, not idempotent, keyless.

    Raises:
        KeyError: If the task names a tool not in :data:`TOOL_KINDS`.
    """
    planned = {(c.name, canonical_json(dict(c.args))): c.id for c in task.calls}
    context = _ToolContext(trial, system, attempt, journal, latency, planned)
    tools: list[BaseTool] = []
    for fn in task.functions:
        name = str(fn["name"])
        kind, params = TOOL_KINDS[name]
        schema: type[BaseModel] = create_model(  # type: ignore[call-overload]
            f"{name}_args", **{p: (t, ...) for p, t in params.items()}
        )
        tool = _JournaledTool(
            name=name,
            description=str(fn.get("description", name)),
            args_schema=schema,
            kind=kind,
            context=context,
        )
        if kind == "read":
            label_tool(tool, safe=True)
        else:
            label_tool(tool, safe=False, idempotent=False, takes_idempotency_key=kind == "keyed")
        tools.append(tool)
    return tools


# -- the model -------------------------------------------------------------------------------
def canonical_call_id(call_id: str) -> str:
    """A call id without the per-attempt suffix that ``fresh`` call ids carry."""
    return _FRESH_SUFFIX.sub("", call_id)


class AttemptResponder:
    """The task's responder (AsyncLM policy), with stable or per-attempt call ids.

    With ``fresh`` ids each attempt's *new* calls get an ``_a<attempt>`` suffix, as a real
    model regenerating its answer after a crash writes new call ids; calls already in the
    conversation keep theirs.

    Args:
        task: The task.
        attempt: The attempt number.
        call_ids: ``stable`` or ``fresh``.
    """

    def __init__(self, task: ScriptedTask, attempt: int, call_ids: CallIds) -> None:
        if call_ids not in ("stable", "fresh"):
            raise ValueError(f"call_ids must be 'stable' or 'fresh', got {call_ids!r}")
        self.inner = TaskResponder(task, policy="async")
        self.suffix = f"_a{attempt}" if call_ids == "fresh" else ""

    def __call__(self, messages: Sequence[BaseMessage]) -> ModelTurn:
        """The next turn for ``messages``."""
        turn = self.inner([_canonical(m) for m in messages] if self.suffix else messages)
        if not self.suffix or not turn.tool_calls:
            return turn
        calls = tuple(
            ToolCall(name=c["name"], args=c["args"], id=f"{c['id']}{self.suffix}", type="tool_call")
            for c in turn.tool_calls
        )
        return replace(turn, tool_calls=calls)


def _canonical(message: BaseMessage) -> BaseMessage:
    if isinstance(message, AIMessage) and message.tool_calls:
        calls = [{**c, "id": canonical_call_id(c["id"] or "")} for c in message.tool_calls]
        return message.model_copy(update={"tool_calls": calls})
    if isinstance(message, ToolMessage):
        return message.model_copy(update={"tool_call_id": canonical_call_id(message.tool_call_id)})
    return message


# -- one attempt -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Attempt:
    """Everything a child needs for one attempt.

    Attributes:
        trial: Trial number.
        system: ``stock`` or ``interrupt_aware``.
        attempt: Attempt number within the trial (0 = the first start).
        task: The task.
        thread_id: The LangGraph thread.
        store: Where checkpoints go.
        journal: The trial's journal file.
        outcome: Where the child writes its outcome (JSON).
        log: Where the child's stderr goes.
        latency: The latency model.
        durability: LangGraph durability mode of the run.
        call_ids: ``stable`` or ``fresh`` call ids (see :class:`AttemptResponder`).
        timing: Time the checkpointer's storage calls (a :class:`TimingSaver` around the
            plain saver).
        outcome_policy: The wrapper's ``on_outcome_unknown`` (see :func:`outcome_hook`).
        wrapper_options: More keyword options of ``InterruptAwareCheckpointer``.
        graph: ``async``: the project's async agent
            (:func:`~langgraph_speculative.nodes.create_async_agent`); ``standard``:
            LangGraph's usual tool loop (:func:`standard_agent`).
    """

    trial: int
    system: str
    attempt: int
    task: ScriptedTask
    thread_id: str
    store: StoreSpec
    journal: Path
    outcome: Path
    log: Path
    latency: LatencyModel
    durability: Durability = "sync"
    call_ids: CallIds = "stable"
    timing: bool = False
    outcome_policy: OutcomePolicy = "reconcile"
    wrapper_options: Mapping[str, Any] = field(default_factory=dict)
    graph: Graph = "async"


def _message_record(m: BaseMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"type": m.type, "id": m.id, "content": m.text}
    if isinstance(m, AIMessage):
        out["tool_calls"] = [
            {"id": c["id"], "name": c["name"], "args": c["args"]} for c in m.tool_calls
        ]
    if isinstance(m, ToolMessage):
        out["tool_call_id"] = m.tool_call_id
        out["name"] = m.name
        out["status"] = m.status
    return out


def outcome_hook(
    policy: OutcomePolicy, journal: Journal | None = None, trial: int | None = None
) -> Callable[[Any], Any]:
    """The ``on_outcome_unknown`` hook of a policy name.

    ``reconcile`` asks the provider what happened, as an app would (look in the sent
    folder, query the payment service): it delivers the recorded response of the call's
    effect when there is one and runs the call again when there is none. ``report``
    delivers an "outcome unknown" error result (the wrapper's default), ``raise`` stops the
    run with ``OutcomeUnknownError``, ``rerun`` runs the call again unconditionally.

    Args:
        policy: The policy name.
        journal: The trial's journal (the provider's records; ``reconcile`` only).
        trial: The trial number (``reconcile`` only).

    Raises:
        ValueError: On an unknown policy, or ``reconcile`` without a journal.
    """
    from langgraph_speculative.durability import resume

    def reconcile(record: Any) -> resume.Resolution:
        assert journal is not None
        for entry in journal.records():
            if (
                entry.get("event") == "effect"
                and entry.get("trial") == trial
                and entry.get("call_id") == record.id
            ):
                return resume.Resolution.deliver(str(entry.get("result")))
        return resume.Resolution.rerun()

    hooks: dict[str, Callable[[Any], Any]] = {
        "reconcile": reconcile,
        "report": resume.report_outcome_unknown,
        "raise": resume.raise_outcome_unknown,
        "rerun": lambda record: resume.Resolution.rerun(),
    }
    if policy not in hooks:
        raise ValueError(f"unknown outcome-unknown policy {policy!r}; choose {sorted(hooks)}")
    if policy == "reconcile" and journal is None:
        raise ValueError("the reconcile policy needs the trial's journal")
    return hooks[policy]


def _checkpointer_stack(
    a: Attempt, plain: BaseCheckpointSaver[Any]
) -> tuple[BaseCheckpointSaver[Any], TimingSaver | None]:
    """(checkpointer to compile with, timing proxy around the plain saver if timed).

    The proxy goes *under* the wrapper: nodes find the wrapper by its type in their config,
    and the wrapper's own journal records are written through it, so the proxy sees every
    storage call of both systems.
    """
    timed = TimingSaver(plain) if a.timing else None
    saver: BaseCheckpointSaver[Any] = timed if timed is not None else plain
    if a.system == "interrupt_aware":
        hook = outcome_hook(a.outcome_policy, Journal(a.journal), a.trial)
        options = {"on_outcome_unknown": hook, **a.wrapper_options}
        saver = interrupt_aware_class()(saver, **options)
    elif a.system != "stock":
        raise ValueError(f"unknown system {a.system!r}; choose from {list(SYSTEMS)}")
    return saver, timed


def standard_agent(model: BaseChatModel, tools: Sequence[BaseTool]) -> StateGraph[Any]:
    """LangGraph's usual tool loop: a model node, then a ``ToolNode``, until an answer.

    Each model turn and each batch of calls is a superstep, checkpointed by LangGraph: the
    baseline for the wrapper's cost where nodes have nothing to journal.

    Args:
        model: The chat model (its tools are bound here).
        tools: The tools.

    Returns:
        The uncompiled graph.
    """
    from langgraph.prebuilt import ToolNode, tools_condition

    bound = model.bind_tools(list(tools))

    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    builder: StateGraph[Any] = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(list(tools)))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder


async def run_attempt(a: Attempt) -> dict[str, Any]:
    """Run one attempt: start the task, or resume it from the checkpointer; return the outcome.

    The outcome holds ``status`` (``finished`` or ``error``), ``start`` (``fresh``: no
    checkpoint yet, the task starts; ``resume``: the thread had a checkpoint with work
    left, ``ainvoke(None, config)`` goes on from it; ``done``: it had already finished),
    the final ``messages``, the error if any, and with ``timing`` the seconds and calls
    spent in the checkpointer.
    """
    from langgraph_speculative.nodes.async_calling import create_async_agent

    started = time.perf_counter()
    journal = Journal(a.journal, fsync=not a.timing)  # timed runs are never killed
    out: dict[str, Any] = {"trial": a.trial, "system": a.system, "attempt": a.attempt}
    async with open_plain_saver(a.store) as plain:
        saver, timed = _checkpointer_stack(a, plain)
        tools = build_tools(
            a.task,
            trial=a.trial,
            system=a.system,
            attempt=a.attempt,
            journal=journal,
            latency=a.latency,
        )
        model = ScriptedChatModel(
            script=AttemptResponder(a.task, a.attempt, a.call_ids), latency=a.latency
        )
        builder = standard_agent if a.graph == "standard" else create_async_agent
        graph = builder(model, tools).compile(checkpointer=saver)
        config: RunnableConfig = {
            "configurable": {"thread_id": a.thread_id},
            "recursion_limit": 4 * len(a.task.calls) + 10,
        }
        try:
            snapshot = await graph.aget_state(config)
            if snapshot.created_at is None:
                out["start"] = "fresh"
                state = await graph.ainvoke(
                    {"messages": [HumanMessage(a.task.question)]}, config, durability=a.durability
                )
            else:  # resume; a finished thread just returns its state
                # (``next`` alone misses a step whose writes were saved before the kill)
                out["start"] = "resume" if snapshot.next or snapshot.tasks else "done"
                state = await graph.ainvoke(None, config, durability=a.durability)
            out["status"] = "finished"
            out["messages"] = [_message_record(m) for m in state.get("messages", [])]
        except Exception as exc:
            out["status"] = "error"
            out["error_type"] = type(exc).__name__
            out["error"] = str(exc)[:2000]
            for attr in ("call_id", "tool"):
                if hasattr(exc, attr):
                    out[f"error_{attr}"] = str(getattr(exc, attr))
            traceback.print_exc()
    if timed is not None:
        out["checkpoint_s"] = timed.stats.seconds
        out["checkpoint_calls"] = dict(timed.stats.calls)
    out["ms"] = (time.perf_counter() - started) * 1e3
    return out


async def measure_overhead(
    tasks: Sequence[ScriptedTask], template: Attempt, directory: Path, repeats: int = 3
) -> dict[str, dict[str, list[list[float]]]]:
    """Time the checkpointer's storage on uncrashed runs, one at a time, systems interleaved.

    Each task runs ``repeats`` times as the async agent and as LangGraph's usual tool loop,
    on the plain saver and wrapped (which goes first alternates by task and repeat), each
    run on a new thread of ``template.store``; nothing else runs meanwhile. A task's
    storage time per system is the *minimum* over its repeats: noise from a loaded CPU or
    a slow disk flush only ever adds time, so the minimum estimates the storage's own cost
    and one unlucky flush cannot land on one system only.

    Args:
        tasks: The tasks.
        template: Settings every run shares (store, latency, durability, call ids, the
            wrapper's options); its task, system, graph and files are replaced.
        directory: Where the runs' side-effect journals and logs go.
        repeats: Runs per task, graph and system (at least 1).

    Returns:
        ``{graph: {system: [[storage ms, storage calls], ...]}}`` in task order, graphs
        ``async`` and ``standard``, systems ``stock`` and ``interrupt_aware``.

    Raises:
        SpeculativeError: If a run does not finish.
        ValueError: If ``repeats`` < 1.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    out: dict[str, dict[str, list[list[float]]]] = {}
    for i, task in enumerate(tasks):
        for graph in GRAPHS:
            best: dict[str, list[float]] = {}
            for rep in range(repeats):
                order = SYSTEMS if (i + rep) % 2 == 0 else SYSTEMS[::-1]
                for system in order:
                    row = await _overhead_run(template, directory, task, i, rep, graph, system)
                    if system not in best or row[0] < best[system][0]:
                        best[system] = row
            for system in SYSTEMS:
                out.setdefault(graph, {}).setdefault(system, []).append(best[system])
    return out


async def _overhead_run(
    template: Attempt,
    directory: Path,
    task: ScriptedTask,
    i: int,
    rep: int,
    graph: Graph,
    system: str,
) -> list[float]:
    """One timed overhead run: ``[storage ms, storage calls]``."""
    name = f"overhead-{graph}-{system}-{i}-{rep}"
    a = replace(
        template,
        trial=i,
        system=system,
        attempt=0,
        task=task,
        thread_id=f"{template.thread_id}-{name}",
        journal=directory / f"{name}.jsonl",
        outcome=directory / f"{name}.json",
        log=directory / f"{name}.log",
        timing=True,
        graph=graph,
    )
    result = await run_attempt(a)
    if result.get("status") != "finished":
        raise SpeculativeError(
            f"overhead run {name} did not finish: {result.get('error_type')}: {result.get('error')}"
        )
    calls = sum(result["checkpoint_calls"].values())
    return [result["checkpoint_s"] * 1e3, float(calls)]


def _write_atomic(path: Path, document: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(document, fh, ensure_ascii=False, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _child(a: Attempt | None, job: Callable[[], Any] | None = None) -> NoReturn:
    """The body of a forked child: never returns, never runs the parent's exit handlers."""
    code = 1
    try:
        if a is not None:
            fd = os.open(a.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 2)
            os.close(fd)
            outcome = asyncio.run(run_attempt(a))
            _write_atomic(a.outcome, outcome)
            code = 0 if outcome.get("status") == "finished" else 1
        elif job is not None:
            job()
            code = 0
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        os._exit(code)


def fork_attempt(a: Attempt | None = None, job: Callable[[], Any] | None = None) -> int:
    """Fork a child that runs attempt ``a`` (or calls ``job``); return its pid.

    The caller must hold no running event loop and no threads that the child needs.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which leaves with os._exit
        _child(a, job)
    return pid
