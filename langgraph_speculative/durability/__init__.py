"""Crash safety: the interrupt-aware checkpointer, its journal, resume semantics."""
