"""Structured plans: the plan model, the planners, the DAG runner."""
