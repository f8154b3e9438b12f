"""Helpers shared by the tests (imported as ``helpers``; pytest puts tests/ on the path)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

TOOL_NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,10}(\.[a-z_][a-z0-9_]{0,6})?", fullmatch=True)
"""Tool names, some dotted like BFCL's (``math.factorial``)."""


def json_strategies(
    strings: st.SearchStrategy[str], *, int_bound: int
) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any], st.SearchStrategy[dict[str, Any]]]:
    """JSON scalars, values and argument dicts built from ``strings`` (a module's tricky text).

    Returns:
        ``(scalars, json_values, args_dicts)``.
    """
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-int_bound, int_bound)
        | st.floats(allow_nan=False, allow_infinity=False)
        | strings
    )
    json_values = st.recursive(
        scalars,
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(strings, kids, max_size=3),
        max_leaves=8,
    )
    return scalars, json_values, st.dictionaries(strings, json_values, max_size=4)
