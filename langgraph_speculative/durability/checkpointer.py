"""The interrupt-aware checkpointer: crash and resume without a lost or repeated tool call.

:class:`InterruptAwareCheckpointer` wraps any LangGraph ``BaseCheckpointSaver``
(``InMemorySaver``, ``SqliteSaver`` / ``AsyncSqliteSaver``, ``PostgresSaver`` /
``AsyncPostgresSaver``, ...) and delegates every method to it unchanged
(:class:`~langgraph_speculative.durability.delegating_saver.DelegatingSaver`), so LangGraph's
own checkpoints behave exactly as with the wrapped saver (it passes LangGraph's checkpoint
conformance suite for each). It adds one thing: nodes of this package find it in their
config (:func:`journal_for`) and keep a write-ahead
:class:`~langgraph_speculative.durability.journal.RunJournal` of what happens *inside* a superstep
(calls started, results, model turns, commits and aborts, input updates, deliveries).
After a crash, the task runs again with the same task id, reads its journal and resumes:
no completed call runs again, no result is delivered twice, and a call that was running
is re-run only when that is safe (:mod:`langgraph_speculative.durability.resume`).

A saver with only synchronous methods (``SqliteSaver``, ``PostgresSaver``) also serves
async graphs through the wrapper: its async methods run the sync ones in a worker thread.

Durability modes. With ``"sync"`` and ``"async"`` the journal is complete (with
``"async"`` a node waits until LangGraph has stored the checkpoint its records hang on).
With ``"exit"`` LangGraph stores nothing until the run ends, so a crashed run restarts
from the last stored checkpoint with new task ids: nodes do not journal, completed calls
run again, and the only protection left is the idempotency key, derived from the call
id, tool and arguments (so only calls with deterministic ids, such as reused plan steps,
get the same key again).

Example:
    ```python
    import asyncio
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import tool
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph_speculative.durability.checkpointer import InterruptAwareCheckpointer
    from langgraph_speculative.integrations import LatencyModel, ModelTurn, ScriptedChatModel
    from langgraph_speculative.nodes import create_async_agent

    @tool
    async def get_weather(city: str) -> str:
        '''Current weather of a city.'''
        return f"sunny in {city}"

    model = ScriptedChatModel(
        script=[ModelTurn.calls(("get_weather", {"city": "Paris"})), ModelTurn(text="Sunny.")],
        latency=LatencyModel.zero(),
    )
    saver = InterruptAwareCheckpointer(InMemorySaver())
    agent = create_async_agent(model, [get_weather]).compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t1"}}
    out = asyncio.run(agent.ainvoke({"messages": [HumanMessage("Weather?")]}, config))
    assert out["messages"][-1].content == "Sunny."
    ```
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)

from langgraph_speculative.durability.delegating_saver import DelegatingSaver
from langgraph_speculative.durability.journal import RunJournal
from langgraph_speculative.durability.records import LEASE_METADATA_KEY, CheckpointView, Lease
from langgraph_speculative.durability.resume import OutcomeUnknownHook
from langgraph_speculative.errors import CheckpointerError

__all__ = ["InterruptAwareCheckpointer", "journal_for"]

# LangGraph's config keys (langgraph._internal._constants), read, never written
_CHECKPOINTER_KEY = "__pregel_checkpointer"
_TASK_ID_KEY = "__pregel_task_id"
_DURABILITY_KEY = "__pregel_durability"

_SEEN_MAX = 256  # checkpoints whose pending writes the wrapper remembers (per instance)

_Key = tuple[str, str, str]


def _key_of(config: RunnableConfig | None) -> _Key | None:
    conf = (config or {}).get("configurable") or {}
    thread_id, checkpoint_id = conf.get("thread_id"), conf.get("checkpoint_id")
    if thread_id is None or not isinstance(checkpoint_id, str) or not checkpoint_id:
        return None
    return (str(thread_id), str(conf.get("checkpoint_ns") or ""), checkpoint_id)


class InterruptAwareCheckpointer(DelegatingSaver):
    """A checkpoint saver that delegates to another and lets nodes journal inside a step.

    Compile a graph with it (``graph.compile(checkpointer=InterruptAwareCheckpointer(saver))``)
    and run it with a ``thread_id``; after a crash, resume with
    ``graph.ainvoke(None, config)``. Nodes of this package journal their work
    (:func:`journal_for`); other nodes and LangGraph itself see the wrapped saver.

    Args:
        saver: The saver to wrap (must be set up, e.g. ``PostgresSaver.setup()`` called).
        on_outcome_unknown: Called for a call that was running at a crash whose tool is neither
            idempotent nor takes an idempotency key; see
            :data:`~langgraph_speculative.durability.resume.OutcomeUnknownHook`. The default
            delivers an "outcome unknown" error result and never re-runs the call.
        lease_ttl: Seconds after a run's last journal record after which its claim on a
            thread counts as stale when it was made on another host (on the same host a
            claim is stale as soon as its process is gone).
        parent_wait: Seconds a node waits for LangGraph to store the checkpoint its
            journal hangs on (``durability="async"`` stores it in the background).
        claim_window: Seconds within which the tasks of a checkpoint this wrapper stored
            write their first journal records (else they read back once); a run that
            loaded the checkpoint may take over a task its live creator never started
            only after this (:mod:`langgraph_speculative.durability.journal`).

    Every checkpoint stored through the wrapper carries a creator lease in its metadata
    (key :data:`~langgraph_speculative.durability.records.LEASE_METADATA_KEY`: this wrapper's
    :attr:`owner`, host, pid, time), so the journals of its tasks own them without a
    claim; the key is stripped from every metadata the wrapper returns.

    Raises:
        CheckpointerError: If ``saver`` is not a ``BaseCheckpointSaver``, or a number is
            out of range.

    Example:
        ```python
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph_speculative.durability.checkpointer import InterruptAwareCheckpointer

        inner = InMemorySaver()
        saver = InterruptAwareCheckpointer(inner)
        assert saver.saver is inner and saver.serde is inner.serde
        ```
    """

    def __init__(
        self,
        saver: BaseCheckpointSaver[Any],
        *,
        on_outcome_unknown: OutcomeUnknownHook | None = None,
        lease_ttl: float = 120.0,
        parent_wait: float = 5.0,
        claim_window: float = 4.0,
    ) -> None:
        super().__init__(saver)
        if isinstance(saver, InterruptAwareCheckpointer):
            raise CheckpointerError("the saver is already an InterruptAwareCheckpointer")
        if not lease_ttl > 0 or not parent_wait >= 0 or not claim_window > 0:
            raise CheckpointerError(
                "lease_ttl and claim_window must be > 0 and parent_wait >= 0, got "
                f"lease_ttl={lease_ttl}, parent_wait={parent_wait}, claim_window={claim_window}"
            )
        self.on_outcome_unknown = on_outcome_unknown
        self.lease_ttl = lease_ttl
        self.parent_wait = parent_wait
        self.claim_window = claim_window
        self.owner = uuid.uuid4().hex
        """Id of this wrapper in the creator leases of the checkpoints it stores."""
        # checkpoints this wrapper just stored or loaded, for the journals opened on them
        self._seen: OrderedDict[_Key, CheckpointView] = OrderedDict()

    # -- journals --------------------------------------------------------------------
    def journal(
        self, *, thread_id: str, checkpoint_ns: str, checkpoint_id: str, task_id: str
    ) -> RunJournal:
        """A (not yet opened) journal of one task; nodes use :func:`journal_for`."""
        return RunJournal(
            self,
            thread_id=thread_id,
            checkpoint_ns=checkpoint_ns,
            checkpoint_id=checkpoint_id,
            task_id=task_id,
            on_outcome_unknown=self.on_outcome_unknown,
            lease_ttl=self.lease_ttl,
            parent_wait=self.parent_wait,
            claim_window=self.claim_window,
        )

    # -- what the wrapper remembers of checkpoints -----------------------------------
    def _remember(self, key: _Key | None, view: CheckpointView) -> None:
        if key is None:
            return
        self._seen[key] = view
        self._seen.move_to_end(key)
        while len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)

    def _stamp(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata
    ) -> tuple[CheckpointMetadata, CheckpointView]:
        """Carry the creator lease in ``metadata``; remember the checkpoint as new.

        Remembered before it is stored, so that a node LangGraph starts while it stores
        the checkpoint in the background (``durability="async"``) waits for the put
        instead of reading.
        """
        lease = Lease(0, self.owner, socket.gethostname(), os.getpid(), time.time(), self.lease_ttl)
        stamped: dict[str, Any] = {**metadata, LEASE_METADATA_KEY: lease.to_dict()}
        view = CheckpointView([], stamped[LEASE_METADATA_KEY], lease.at, created=True, stored=False)
        conf = config.get("configurable") or {}
        key = _key_of(
            {
                "configurable": {
                    "thread_id": conf.get("thread_id"),
                    "checkpoint_ns": conf.get("checkpoint_ns") or "",
                    "checkpoint_id": checkpoint.get("id"),
                }
            }
        )
        self._remember(key, view)
        if key is not None:
            view.register(self.owner, *key)
        return stamped, view  # type: ignore[return-value]

    def _strip(self, tup: CheckpointTuple | None) -> CheckpointTuple | None:
        if tup is None or not isinstance(tup.metadata, Mapping):
            return tup
        if LEASE_METADATA_KEY not in tup.metadata:
            return tup
        metadata = {k: v for k, v in tup.metadata.items() if k != LEASE_METADATA_KEY}
        return tup._replace(metadata=metadata)  # type: ignore[arg-type]

    def _loaded(self, tup: CheckpointTuple | None) -> CheckpointTuple | None:
        """Remember what a load saw (for the journals of its tasks), then strip it."""
        if tup is not None:
            carried = (tup.metadata or {}).get(LEASE_METADATA_KEY)
            writes = [(w[0], w[1], w[2]) for w in (tup.pending_writes or ())]
            self._remember(_key_of(tup.config), CheckpointView(writes, carried, time.time()))
        return self._strip(tup)

    def _forget(self, thread_id: str) -> None:
        for key in [k for k in self._seen if k[0] == str(thread_id)]:
            del self._seen[key]

    def _take_view(self, config: RunnableConfig, task_id: str) -> CheckpointView | None:
        """What this wrapper last stored or loaded of a checkpoint, once per task.

        ``None`` when it has not seen the checkpoint, or a journal of ``task_id`` already
        used the view (a retried task reads afresh). A loaded view may be stale if
        another process writes meanwhile: a journal decides a claim on a read-back.
        """
        key = _key_of(config)
        view = self._seen.get(key) if key is not None else None
        if view is None or task_id in view.opened:
            return None
        view.opened.add(task_id)
        return view

    async def _aget_raw(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The wrapped saver's tuple, metadata as stored (for journals)."""
        return await super().aget_tuple(config)

    def _rewrap(self, saver: BaseCheckpointSaver[Any]) -> InterruptAwareCheckpointer:
        """A wrapper of ``saver`` with these options, for the same run (:attr:`owner`)."""
        clone = InterruptAwareCheckpointer(
            saver,
            on_outcome_unknown=self.on_outcome_unknown,
            lease_ttl=self.lease_ttl,
            parent_wait=self.parent_wait,
            claim_window=self.claim_window,
        )
        clone.owner = self.owner  # the same run, whichever of the two stores
        return clone

    # -- what the wrapper adds to the delegation -------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Delegate to the wrapped saver (the creator lease stripped from the metadata)."""
        return self._loaded(super().get_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Delegate to the wrapped saver (the creator lease stripped from the metadata)."""
        for tup in super().list(config, filter=filter, before=before, limit=limit):
            yield self._strip(tup)  # type: ignore[misc]

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Delegate to the wrapped saver, the creator lease added to ``metadata``."""
        stamped, view = self._stamp(config, checkpoint, metadata)
        stored = super().put(config, checkpoint, stamped, new_versions)
        view.stored = True
        return stored

    def delete_thread(self, thread_id: str) -> None:
        """Delegate to the wrapped saver (the journals of the thread go with it)."""
        self._forget(thread_id)
        super().delete_thread(thread_id)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Delegate to the wrapped saver (the creator lease stripped from the metadata)."""
        return self._loaded(await super().aget_tuple(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Delegate to the wrapped saver (the creator lease stripped from the metadata)."""
        async for tup in super().alist(config, filter=filter, before=before, limit=limit):
            yield self._strip(tup)  # type: ignore[misc]

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Delegate to the wrapped saver, the creator lease added to ``metadata``."""
        stamped, view = self._stamp(config, checkpoint, metadata)
        stored = await super().aput(config, checkpoint, stamped, new_versions)
        view.stored = True
        return stored

    async def adelete_thread(self, thread_id: str) -> None:
        """Delegate to the wrapped saver (the journals of the thread go with it)."""
        self._forget(thread_id)
        await super().adelete_thread(thread_id)


def journal_for(config: RunnableConfig | None) -> RunJournal | None:
    """The journal of the node run that ``config`` belongs to (not yet opened).

    Args:
        config: The ``RunnableConfig`` LangGraph passes to a node.

    Returns:
        ``None`` outside a graph run, when the graph's checkpointer is not an
        :class:`InterruptAwareCheckpointer` (nodes then behave exactly as without one),
        and with ``durability="exit"`` (nothing is stored mid-run, so there is nothing
        to resume from).
    """
    conf = (config or {}).get("configurable") or {}
    saver = conf.get(_CHECKPOINTER_KEY)
    if not isinstance(saver, InterruptAwareCheckpointer):
        return None
    if conf.get(_DURABILITY_KEY) == "exit":
        return None
    task_id = conf.get(_TASK_ID_KEY)
    thread_id = conf.get("thread_id")
    task_ns = conf.get("checkpoint_ns") or ""
    parent_ns = task_ns.rsplit("|", 1)[0] if "|" in task_ns else ""
    checkpoint_id = (conf.get("checkpoint_map") or {}).get(parent_ns)
    if not (isinstance(task_id, str) and task_id and isinstance(checkpoint_id, str)):
        return None
    if thread_id is None or thread_id == "":
        return None
    return saver.journal(
        thread_id=str(thread_id),
        checkpoint_ns=parent_ns,
        checkpoint_id=checkpoint_id,
        task_id=task_id,
    )
