"""Old import paths of the modules that moved into the wings, kept for one release.

Version 0.2 gave each capability its own package (``core``, ``async_calling``,
``speculative``, ``durability``, ``cache``, ``integrations.sim``, ``bench``). Importing a
module under its old name (``langgraph_speculative.ledger``) still works until 0.3: it
warns with a :class:`DeprecationWarning` naming the new path, and gives the very same
module object, so ``isinstance`` checks and monkeypatching see one module.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

__all__ = ["MOVED", "install"]

MOVED: dict[str, str] = {
    "ledger": "core.ledger",
    "executor": "core.executor",
    "safety": "core.safety",
    "token_monitor": "async_calling.token_monitor",
    "cml": "async_calling.cml",
    "interrupts": "async_calling.interrupts",
    "input_stream": "speculative.input_stream",
    "interaction_format": "speculative.interaction_format",
    "speculation": "speculative.manager",
    "checkpointer": "durability.checkpointer",
    "journal": "durability.journal",
    "resume": "durability.resume",
    "cache.intent_induction": "cache.intent.induction",
    "cache.embedders": "cache.vectors.embeddings",
    "cache.vector_index": "cache.vectors.vector_index",
    "cache.faiss_index": "cache.vectors.faiss_index",
    "cache.pgvector_index": "cache.vectors.pgvector_index",
    "cache.planner": "cache.plans.planner",
    "cache.plan_runner": "cache.plans.runner",
    "integrations.latency": "integrations.sim.latency",
    "integrations.scripted_model": "integrations.sim.scripted_model",
    "integrations.scripted_tasks": "integrations.sim.scripted_tasks",
    "integrations.scripted_listener": "integrations.sim.scripted_listener",
    "integrations.sessions": "integrations.sim.sessions",
    "integrations.sim_server": "integrations.sim.server",
    "integrations.sim_tools": "integrations.sim.tools",
    "integrations.bfcl": "integrations.sim.bfcl",
    "integrations.simulated_speech": "integrations.sim.speech",
    "bench.async_calling": "bench.async_bench",
    "bench.speculative": "bench.speculative_bench",
    "bench.plan_cache": "bench.plan_cache_bench",
    "bench.recovery": "bench.recovery_bench",
    "bench._recovery_child": "bench.recovery_trial",
    "bench.cache_scale": "bench.cache_scale_bench",
    "demo": "bench.demo",
    "timeline": "bench.timeline",
}
"""Old module path -> the module's path now (both under ``langgraph_speculative.``)."""

_PREFIX = "langgraph_speculative."


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new
        self.spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.new}; the old path goes away in 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(self.new)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run; give the module back its own spec (the import system set ours)."""
        if self.spec is not None:
            module.__spec__ = self.spec


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PREFIX):
            return None
        new = MOVED.get(fullname.removeprefix(_PREFIX))
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(_PREFIX + new))


def install() -> None:
    """Make the old paths importable (idempotent; the package does it on import)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
