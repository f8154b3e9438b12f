"""Tests of the safe/unsafe tool labels."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tools import BaseTool, tool

from langgraph_speculative.core.safety import SAFE_METADATA_KEY, is_safe_tool, label_tool


def make_tool(metadata: dict[str, Any] | None = None) -> BaseTool:
    @tool
    def lookup(q: str) -> str:
        """Look something up."""
        return q

    lookup.metadata = metadata
    return lookup


def test_unlabelled_tools_are_unsafe() -> None:
    assert is_safe_tool(make_tool()) is False
    assert is_safe_tool(make_tool({})) is False
    assert is_safe_tool(make_tool({"other": True})) is False


def test_label_safe_and_unsafe_in_place() -> None:
    t = make_tool({"owner": "me"})
    assert label_tool(t, safe=True) is t
    assert is_safe_tool(t) is True
    assert t.metadata == {"owner": "me", SAFE_METADATA_KEY: True}
    label_tool(t, safe=False)
    assert is_safe_tool(t) is False
    assert t.metadata == {"owner": "me", SAFE_METADATA_KEY: False}


def test_label_does_not_mutate_a_shared_metadata_dict() -> None:
    shared: dict[str, Any] = {"owner": "me"}
    t = make_tool(shared)
    label_tool(t, safe=True)
    assert shared == {"owner": "me"}


@pytest.mark.parametrize("value", ["false", "no", 1, "True", [True], None, False])
def test_only_an_explicit_true_label_is_safe(value: Any) -> None:
    assert is_safe_tool(make_tool({SAFE_METADATA_KEY: value})) is False


def test_label_survives_tool_copy() -> None:
    t = label_tool(make_tool(), safe=True)
    assert is_safe_tool(t.model_copy()) is True
