"""Safe/unsafe labels of tools.

A *safe* tool only reads: running it early, twice, or for a call that is later withdrawn
does no harm. An *unsafe* tool changes the world (sends, books, pays, deletes). The
executor never runs an unsafe tool for a speculative call before that call is committed.

Tools are labelled through their LangChain ``metadata``. **Unlabelled tools are treated as
unsafe**: the conservative default costs some speed, never a side effect.

Example:
    ```python
    from langchain_core.tools import tool
    from langgraph_speculative import label_tool, is_safe_tool

    @tool
    def get_weather(city: str) -> str:
        '''Current weather of a city.'''
        return "sunny"

    label_tool(get_weather, safe=True)
    assert is_safe_tool(get_weather)
    ```
"""

from __future__ import annotations

from typing import TypeVar

from langchain_core.tools import BaseTool

__all__ = ["SAFE_METADATA_KEY", "is_safe_tool", "label_tool"]

SAFE_METADATA_KEY = "speculative_safe"
"""The ``BaseTool.metadata`` key that holds a tool's safe (``True``) / unsafe label."""

ToolT = TypeVar("ToolT", bound=BaseTool)


def label_tool(tool: ToolT, *, safe: bool) -> ToolT:
    """Label a tool safe (read-only) or unsafe (side-effecting), in place.

    Args:
        tool: The tool to label.
        safe: ``True`` if running the tool has no side effect.

    Returns:
        The same tool, for chaining.
    """
    tool.metadata = {**(tool.metadata or {}), SAFE_METADATA_KEY: bool(safe)}
    return tool


def is_safe_tool(tool: BaseTool) -> bool:
    """Tell whether a tool is labelled safe; unlabelled tools are unsafe.

    Args:
        tool: The tool to look at.

    Returns:
        ``True`` only if the tool carries an explicit safe label.
    """
    return (tool.metadata or {}).get(SAFE_METADATA_KEY) is True
