"""Drop-in LangGraph nodes and graph factories.

Asynchronous function calling, speculative tool calls and plan reuse land here as their
issues are built.
"""
