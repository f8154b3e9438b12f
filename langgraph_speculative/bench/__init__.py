"""Benchmarks of ``BENCHMARKS.md``: each runs its modes side by side and reports ratios."""
