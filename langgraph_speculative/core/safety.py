"""Safety labels of tools: safe (read-only), idempotent, takes an idempotency key.

A *safe* tool only reads: running it early, twice, or for a call that is later withdrawn
does no harm. An *unsafe* tool changes the world (sends, books, pays, deletes). The
executor never runs an unsafe tool for a speculative call before that call is committed.

Two more labels tell the crash-safe checkpointer what it may do with an unsafe call that
was running when the process died:

- *idempotent*: running it again has the same effect as running it once (``set``, not
  ``add``); it is simply re-run. Safe implies idempotent.
- *takes an idempotency key*: the tool reads its key with
  :func:`~langgraph_speculative.core.executor.idempotency_key_of` and passes it to the
  service it calls, which applies one effect per key; it is re-run with the **same** key.

An unsafe call with neither label is never re-run silently after a crash: its outcome is
reported as unknown (see :mod:`langgraph_speculative.durability.resume`).

Tools are labelled through their LangChain ``metadata``. **Unlabelled tools are treated as
unsafe, not idempotent and keyless**: the conservative default costs some speed, never a
side effect.

Example:
    ```python
    from langchain_core.tools import tool
    from langgraph_speculative import label_tool
    from langgraph_speculative.core.safety import is_safe_tool
    from langgraph_speculative.core.safety import is_idempotent_tool, takes_idempotency_key

    @tool
    def get_weather(city: str) -> str:
        '''Current weather of a city.'''
        return "sunny"

    @tool
    def pay(amount: int) -> str:
        '''Pay an amount.'''
        return "paid"

    label_tool(get_weather, safe=True)
    label_tool(pay, safe=False, takes_idempotency_key=True)
    assert is_safe_tool(get_weather) and is_idempotent_tool(get_weather)
    assert not is_idempotent_tool(pay) and takes_idempotency_key(pay)
    ```
"""

from __future__ import annotations

from typing import TypeVar

from langchain_core.tools import BaseTool

__all__ = [
    "IDEMPOTENT_METADATA_KEY",
    "KEYED_METADATA_KEY",
    "SAFE_METADATA_KEY",
    "is_idempotent_tool",
    "is_safe_tool",
    "label_tool",
    "takes_idempotency_key",
]

SAFE_METADATA_KEY = "speculative_safe"
"""The ``BaseTool.metadata`` key that holds a tool's safe (``True``) / unsafe label."""

IDEMPOTENT_METADATA_KEY = "speculative_idempotent"
"""The ``BaseTool.metadata`` key that holds a tool's idempotent label."""

KEYED_METADATA_KEY = "speculative_takes_idempotency_key"
"""The ``BaseTool.metadata`` key that says the tool passes its idempotency key on."""

ToolT = TypeVar("ToolT", bound=BaseTool)


def label_tool(
    tool: ToolT,
    *,
    safe: bool,
    idempotent: bool | None = None,
    takes_idempotency_key: bool = False,
) -> ToolT:
    """Label a tool, in place.

    Args:
        tool: The tool to label.
        safe: ``True`` if running the tool has no side effect.
        idempotent: ``True`` if running it twice has the effect of running it once.
            ``None`` (the default) means "as safe": safe tools are idempotent, unsafe
            ones are not.
        takes_idempotency_key: ``True`` if the tool passes the key it is given
            (:func:`~langgraph_speculative.core.executor.idempotency_key_of`) to the service it
            calls, so a re-run with the same key has no second effect.

    Returns:
        The same tool, for chaining.

    Raises:
        ValueError: If a safe tool is labelled not idempotent.
    """
    if safe and idempotent is False:
        raise ValueError(f"tool {tool.name!r}: a safe tool is always idempotent")
    metadata = {
        k: v
        for k, v in (tool.metadata or {}).items()
        if k not in (IDEMPOTENT_METADATA_KEY, KEYED_METADATA_KEY)
    }
    metadata[SAFE_METADATA_KEY] = bool(safe)
    if idempotent is not None:  # only the labels given are stored: old labels stay as they were
        metadata[IDEMPOTENT_METADATA_KEY] = bool(idempotent)
    if takes_idempotency_key:
        metadata[KEYED_METADATA_KEY] = True
    tool.metadata = metadata
    return tool


def is_safe_tool(tool: BaseTool) -> bool:
    """Tell whether a tool is labelled safe; unlabelled tools are unsafe.

    Args:
        tool: The tool to look at.

    Returns:
        ``True`` only if the tool carries an explicit safe label.
    """
    return (tool.metadata or {}).get(SAFE_METADATA_KEY) is True


def is_idempotent_tool(tool: BaseTool) -> bool:
    """Tell whether re-running a tool is harmless (safe tools are idempotent).

    Args:
        tool: The tool to look at.

    Returns:
        ``True`` if the tool is labelled safe or idempotent.
    """
    return is_safe_tool(tool) or (tool.metadata or {}).get(IDEMPOTENT_METADATA_KEY) is True


def takes_idempotency_key(tool: BaseTool) -> bool:
    """Tell whether a tool passes its idempotency key on to the service it calls.

    Args:
        tool: The tool to look at.

    Returns:
        ``True`` only if the tool carries an explicit label saying so.
    """
    return (tool.metadata or {}).get(KEYED_METADATA_KEY) is True
