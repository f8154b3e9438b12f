"""A checkpoint saver that delegates every method, sync and async, to another saver.

:class:`DelegatingSaver` is the base of the savers that wrap another LangGraph
``BaseCheckpointSaver`` to add something around its calls: the
:class:`~langgraph_speculative.durability.checkpointer.InterruptAwareCheckpointer` (run
journals) and the benchmark's
:class:`~langgraph_speculative.bench.recovery_trial.TimingSaver` (time spent in storage).
By itself it changes nothing: LangGraph's checkpoints behave exactly as with the wrapped
saver. What it takes care of, so that each wrapper need not:

- every method is delegated, ``put_writes`` / ``aput_writes`` with ``task_path`` named in
  the signature (LangGraph passes ``task_path`` only to a saver whose signature names it);
  ``config_specs``, ``get_next_version`` (the wrapped saver's version format) and
  ``with_allowlist`` (a wrapper like this one around the wrapped saver's clone) too;
- the optional methods (``delete_for_runs``, ``copy_thread``, ``prune`` and their async
  forms) exist only when the wrapped saver has them, so capability detection (as
  LangGraph's conformance suite does it) sees the wrapped saver's capabilities;
- a saver with only synchronous methods (``SqliteSaver``, ``PostgresSaver``) also serves
  async graphs: the async methods run its sync ones in a worker thread;
- the wrapped saver's own API (``setup()``, ``conn``, ...) stays reachable as attributes.

Subclasses override a method and call ``super()``; every async call but ``alist`` goes
through one method, ``_call``, so a subclass can wrap them all in one place.

Example:
    ```python
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph_speculative.durability.delegating_saver import DelegatingSaver

    class CountingSaver(DelegatingSaver):
        '''Counts the checkpoints stored through it.'''

        def __init__(self, saver):
            super().__init__(saver)
            self.puts = 0

        def put(self, config, checkpoint, metadata, new_versions):
            self.puts += 1
            return super().put(config, checkpoint, metadata, new_versions)

    inner = InMemorySaver()
    saver = CountingSaver(inner)
    config = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
    stored = saver.put(config, empty_checkpoint(), {}, {})
    assert saver.puts == 1 and inner.get_tuple(stored) is not None  # stored in the inner
    ```
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)

from langgraph_speculative.errors import CheckpointerError

__all__ = ["DelegatingSaver"]

_T = TypeVar("_T")

# optional methods: the wrapper has them only when the wrapped saver has them, so
# capability detection (as the conformance suite does it) sees the wrapped saver's
_OPTIONAL = ("delete_for_runs", "copy_thread", "prune")


def _overrides(cls: type, name: str) -> bool:
    return getattr(cls, name, None) is not getattr(BaseCheckpointSaver, name, None)


@functools.cache
def _variant(cls: type[DelegatingSaver], missing: frozenset[str]) -> type[DelegatingSaver]:
    """A subclass of ``cls`` without the optional methods the wrapped saver lacks."""
    if not missing:
        return cls
    body: dict[str, Any] = {name: getattr(BaseCheckpointSaver, name) for name in missing}
    body["__doc__"] = cls.__doc__
    body["__module__"] = cls.__module__
    body["_variant_of"] = cls
    variant = type(cls.__name__, (cls,), body)
    variant.__qualname__ = cls.__qualname__
    return variant


class DelegatingSaver(BaseCheckpointSaver[Any]):
    """A checkpoint saver that delegates every method to another (see the module docs).

    Args:
        saver: The saver to wrap (must be set up, e.g. ``PostgresSaver.setup()`` called).

    Raises:
        CheckpointerError: If ``saver`` is not a ``BaseCheckpointSaver``.

    Example:
        ```python
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph_speculative.durability.delegating_saver import DelegatingSaver

        inner = InMemorySaver()
        saver = DelegatingSaver(inner)
        config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        assert saver.get_tuple(config) is None and saver.serde is inner.serde
        ```
    """

    def __new__(cls, saver: BaseCheckpointSaver[Any], *args: Any, **kwargs: Any) -> Any:
        """Pick the variant with exactly the optional methods the wrapped saver has."""
        if isinstance(saver, BaseCheckpointSaver):
            kind = type(saver)
            missing = frozenset(
                method
                for name in _OPTIONAL
                if not (_overrides(kind, name) or _overrides(kind, f"a{name}"))
                for method in (name, f"a{name}")
            )
            cls = _variant(cls.__dict__.get("_variant_of", cls), missing)
        return super().__new__(cls)

    def __init__(self, saver: BaseCheckpointSaver[Any]) -> None:
        if not isinstance(saver, BaseCheckpointSaver):
            raise CheckpointerError(
                f"{type(self).__name__} wraps a BaseCheckpointSaver, got {type(saver)}"
            )
        super().__init__(serde=saver.serde)
        self.serde = saver.serde  # the very same serializer (no extra wrapping)
        self._saver = saver
        self._thread_only: set[str] = set()  # async methods the saver only has in sync

    @property
    def saver(self) -> BaseCheckpointSaver[Any]:
        """The wrapped saver."""
        return self._saver

    def __getattr__(self, name: str) -> Any:
        # the wrapped saver's own API (setup(), conn, ...) stays reachable
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._saver, name)

    def _rewrap(self, saver: BaseCheckpointSaver[Any]) -> DelegatingSaver:
        """A wrapper like this one around ``saver`` (for :meth:`with_allowlist`).

        Subclasses whose constructor takes more than the saver override it.
        """
        return type(self)(saver)

    # -- sync delegation -------------------------------------------------------------
    @property
    def config_specs(self) -> list[Any]:
        """The wrapped saver's configuration specs."""
        return list(self._saver.config_specs)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Delegate to the wrapped saver."""
        return self._saver.get_tuple(config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Delegate to the wrapped saver."""
        return self._saver.list(config, filter=filter, before=before, limit=limit)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Delegate to the wrapped saver."""
        return self._saver.put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Delegate to the wrapped saver (``task_path`` included)."""
        self._saver.put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        """Delegate to the wrapped saver."""
        self._saver.delete_thread(thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delegate to the wrapped saver."""
        self._saver.delete_for_runs(run_ids)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Delegate to the wrapped saver."""
        self._saver.copy_thread(source_thread_id, target_thread_id)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Delegate to the wrapped saver."""
        self._saver.prune(thread_ids, strategy=strategy)

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Delegate to the wrapped saver."""
        return self._saver.get_delta_channel_history(config=config, channels=channels)

    def get_next_version(self, current: Any, channel: None) -> Any:
        """Delegate to the wrapped saver (its version format)."""
        return self._saver.get_next_version(current, channel)

    def with_allowlist(
        self, extra_allowlist: Collection[tuple[str, ...]]
    ) -> BaseCheckpointSaver[Any]:
        """A wrapper like this one of the wrapped saver's clone with a derived allowlist."""
        inner = self._saver.with_allowlist(extra_allowlist)
        return self if inner is self._saver else self._rewrap(inner)

    # -- async delegation ------------------------------------------------------------
    async def _call(self, name: str, sync: Callable[[], _T], run: Callable[[], Any]) -> _T:
        """Await the saver's async ``name``; fall back to its sync method in a thread."""
        if name not in self._thread_only:
            try:
                result: _T = await run()
                return result
            except NotImplementedError:
                if not _overrides(type(self._saver), name[1:]):
                    raise
                self._thread_only.add(name)  # a sync-only saver (SqliteSaver, ...)
        return await asyncio.to_thread(sync)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Delegate to the wrapped saver."""
        return await self._call(
            "aget_tuple",
            lambda: self._saver.get_tuple(config),
            lambda: self._saver.aget_tuple(config),
        )

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Delegate to the wrapped saver."""
        if "alist" not in self._thread_only:
            items = self._saver.alist(config, filter=filter, before=before, limit=limit)
            try:
                first = await anext(items)
            except StopAsyncIteration:
                return
            except NotImplementedError:
                if not _overrides(type(self._saver), "list"):
                    raise
                self._thread_only.add("alist")
            else:
                yield first
                async for item in items:
                    yield item
                return
        found = await asyncio.to_thread(
            lambda: [*self._saver.list(config, filter=filter, before=before, limit=limit)]
        )
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Delegate to the wrapped saver."""
        return await self._call(
            "aput",
            lambda: self._saver.put(config, checkpoint, metadata, new_versions),
            lambda: self._saver.aput(config, checkpoint, metadata, new_versions),
        )

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Delegate to the wrapped saver (``task_path`` included)."""
        await self._call(
            "aput_writes",
            lambda: self._saver.put_writes(config, writes, task_id, task_path),
            lambda: self._saver.aput_writes(config, writes, task_id, task_path),
        )

    async def adelete_thread(self, thread_id: str) -> None:
        """Delegate to the wrapped saver."""
        await self._call(
            "adelete_thread",
            lambda: self._saver.delete_thread(thread_id),
            lambda: self._saver.adelete_thread(thread_id),
        )

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delegate to the wrapped saver."""
        await self._call(
            "adelete_for_runs",
            lambda: self._saver.delete_for_runs(run_ids),
            lambda: self._saver.adelete_for_runs(run_ids),
        )

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Delegate to the wrapped saver."""
        await self._call(
            "acopy_thread",
            lambda: self._saver.copy_thread(source_thread_id, target_thread_id),
            lambda: self._saver.acopy_thread(source_thread_id, target_thread_id),
        )

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Delegate to the wrapped saver."""
        await self._call(
            "aprune",
            lambda: self._saver.prune(thread_ids, strategy=strategy),
            lambda: self._saver.aprune(thread_ids, strategy=strategy),
        )

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Delegate to the wrapped saver."""
        return await self._call(
            "aget_delta_channel_history",
            lambda: self._saver.get_delta_channel_history(config=config, channels=channels),
            lambda: self._saver.aget_delta_channel_history(config=config, channels=channels),
        )
