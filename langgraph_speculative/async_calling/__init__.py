"""Asynchronous function calling (AsyncLM): the token monitor, CML, interrupts."""
