"""Helpers shared by the tests (imported as ``helpers``; pytest puts tests/ on the path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import strategies as st

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository root (the folder holding ``pyproject.toml``)."""

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


def write_mixed_bfcl(folder: Any, category: str = "parallel") -> tuple[Any, Any]:
    """Write a BFCL question file and its answers: two good records among bad ones.

    The bad ones: a list of strings for an array of integers, a value outside an ``enum``,
    a line that is not JSON, a record without an answer, a call of an unknown function.
    Returns ``(questions path, answers path)``; the good ids are ``good_0`` and ``good_1``.
    """
    import json
    from pathlib import Path

    def fn(name: str, props: dict[str, Any]) -> dict[str, Any]:
        params = {"type": "dict", "properties": props, "required": list(props)}
        return {"name": name, "description": name, "parameters": params}

    play = fn("spotify.play", {"artist": {"type": "string"}, "duration": {"type": "integer"}})
    ints = fn("sort_list", {"elements": {"type": "array", "items": {"type": "integer"}}})
    mode = fn("set_mode", {"mode": {"type": "string", "enum": ["eco", "sport"]}})

    def record(rid: str, text: str, function: dict[str, Any]) -> str:
        question = [[{"role": "user", "content": text}]]
        return json.dumps({"id": rid, "question": question, "function": [function]})

    def answer(rid: str, *calls: dict[str, Any]) -> str:
        return json.dumps({"id": rid, "ground_truth": list(calls)})

    two = (
        {"spotify.play": {"artist": ["Taylor Swift"], "duration": [20]}},
        {"spotify.play": {"artist": ["Maroon 5"], "duration": [15]}},
    )
    records = [
        record("good_0", "Play Taylor Swift for 20 and Maroon 5 for 15 minutes.", play),
        record("bad_ints", "Sort apple and pear.", ints),
        record("bad_enum", "Turbo mode.", mode),
        '{"id": "bad_json", "question": [[',
        record("bad_noanswer", "Play Adele for 5 minutes.", play),
        record("bad_unknown", "Play Adele for 5 minutes.", play),
        record("good_1", "Play Taylor Swift for 20 and Maroon 5 for 15 minutes.", play),
    ]
    answers = [
        answer("good_0", *two),
        answer("bad_ints", {"sort_list": {"elements": [["apple", "pear"]]}}),
        answer("bad_enum", {"set_mode": {"mode": ["turbo"]}}),
        answer("bad_unknown", {"spotify.pause": {"artist": ["Adele"]}}),
        answer("good_1", *two),
    ]
    root = Path(folder)
    (root / "possible_answer").mkdir(parents=True, exist_ok=True)
    name = f"BFCL_v4_{category}.json"
    data, truth = root / name, root / "possible_answer" / name
    data.write_text("\n".join(records), encoding="utf-8")
    truth.write_text("\n".join(answers), encoding="utf-8")
    return data, truth
