"""Load Berkeley Function Calling Leaderboard (BFCL) files as scripted tasks.

``bench async`` (``BENCHMARKS.md`` section 1) plays BFCL records on the simulated model:
each record becomes a :class:`~langgraph_speculative.integrations.ScriptedTask` whose
calls are the ground truth.

* Single-turn categories (``simple_python``, ``multiple``, ``parallel``,
  ``parallel_multiple``, ``live_*``): the question is the last user message of the first
  turn, the tools are the record's ``function`` list (BFCL schemas kept as they are), and
  each ground-truth entry ``{name: {param: [acceptable values]}}`` becomes an independent
  call with the *first* acceptable value of each parameter; a parameter whose acceptable
  values include ``""`` is optional and left out. Call ids are ``"0"``, ``"1"``, ...
* ``multi_turn_base``: only turn 0 is used. Its ground truth is a list of Python call
  strings (``"cd(folder='document')"``, ``"sort('final_report.pdf')"``), parsed with
  ``ast`` (literal arguments only; positional arguments follow the order of the
  function's ``properties``). The tools come from ``multi_turn_func_doc/`` beside the
  data file (one file per class in ``involved_classes``, see
  :data:`MULTI_TURN_FUNC_DOC_FILES`), minus the record's ``excluded_function``. The calls
  of one record form a chain (each depends on the one before); call ids are
  ``"r{k}.{i}"`` (chain ``k`` of the task, call ``i`` of the chain). ``merge=K`` joins K
  distinct records into one task (K independent chains) after a seeded shuffle of the
  records.

Files are JSON Lines, records joined to their answers on ``id``. Anything malformed
raises :class:`~langgraph_speculative.errors.DataFormatError` naming the record (and the
line, for a line that is not JSON).

Example:
    ```python
    from langgraph_speculative.integrations.bfcl import load_bfcl

    tasks = load_bfcl(
        "../shared/data/bfcl/BFCL_v4_parallel.json",
        "../shared/data/bfcl/possible_answer/BFCL_v4_parallel.json",
        limit=10,
        seed=0,
    )
    for task in tasks:
        print(task.id, [c.name for c in task.calls])
    ```
"""

from __future__ import annotations

import ast
import json
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langgraph_speculative.errors import DataFormatError, ScriptError
from langgraph_speculative.integrations.scripted_tasks import PlannedCall, ScriptedTask

__all__ = [
    "BFCL_CATEGORIES",
    "MULTI_TURN_FUNC_DOC_FILES",
    "Kind",
    "bfcl_category",
    "load_bfcl",
    "parse_call",
]

Kind = Literal["single_turn", "multi_turn"]
"""Kind of BFCL file: one task per record (``single_turn``) or turn-0 chains (``multi_turn``)."""

BFCL_CATEGORIES: dict[str, Kind] = {
    "simple_python": "single_turn",
    "multiple": "single_turn",
    "parallel": "single_turn",
    "parallel_multiple": "single_turn",
    "live_simple": "single_turn",
    "live_multiple": "single_turn",
    "live_parallel": "single_turn",
    "live_parallel_multiple": "single_turn",
    "multi_turn_base": "multi_turn",
}
"""Supported BFCL categories (file ``BFCL_v{N}_{category}.json``) and their kind."""

MULTI_TURN_FUNC_DOC_FILES: dict[str, str] = {
    "GorillaFileSystem": "gorilla_file_system.json",
    "MathAPI": "math_api.json",
    "MessageAPI": "message_api.json",
    "TwitterAPI": "posting_api.json",
    "TicketAPI": "ticket_api.json",
    "TradingBot": "trading_bot.json",
    "TravelAPI": "travel_booking.json",
    "VehicleControlAPI": "vehicle_control.json",
    "WebSearchAPI": "web_search.json",
    "MemoryAPI_kv": "memory_kv.json",
    "MemoryAPI_vector": "memory_vector.json",
    "MemoryAPI_rec_sum": "memory_rec_sum.json",
}
"""Class named in a multi-turn record's ``involved_classes`` -> its function-doc file."""

_FILE_NAME = re.compile(r"^BFCL_v\d+_(?P<category>.+)\.jsonl?$")
_ID_IN_LINE = re.compile(r'"id"\s*:\s*"([^"]*)"')


def bfcl_category(path: str | Path) -> str | None:
    """The BFCL category a file name encodes (``BFCL_v4_parallel.json`` -> ``parallel``).

    Args:
        path: The data (or answer) file.

    Returns:
        The category, or ``None`` if the name does not follow BFCL's pattern.
    """
    match = _FILE_NAME.match(Path(path).name)
    return match.group("category") if match else None


@dataclass(frozen=True, slots=True)
class _Record:
    line: int
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.data["id"])


def _json_lines(path: Path, record_id: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` of a JSON Lines file, skipping blank lines.

    Raises:
        DataFormatError: On a line that is not a JSON object, naming the line and the
            record id (``record_id``, or the id found in the broken line).
    """
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                found = _ID_IN_LINE.search(line) if record_id is None else None
                raise DataFormatError(
                    f"{path.name} line {lineno}: not valid JSON ({exc.msg})",
                    record_id=found.group(1) if found else record_id,
                ) from None
            if not isinstance(data, dict):
                raise DataFormatError(
                    f"{path.name} line {lineno}: a line must hold a JSON object",
                    record_id=record_id,
                )
            yield lineno, data


def _read_jsonl(path: Path) -> list[_Record]:
    records: list[_Record] = []
    seen: set[str] = set()
    for lineno, data in _json_lines(path):
        rid = data.get("id")
        if not isinstance(rid, str) or not rid:
            raise DataFormatError(f"{path.name} line {lineno}: record without a string 'id'")
        if rid in seen:
            raise DataFormatError(f"{path.name} line {lineno}: id repeats", record_id=rid)
        seen.add(rid)
        records.append(_Record(lineno, data))
    return records


def _question(rec: _Record) -> str:
    turns = rec.data.get("question")
    if not isinstance(turns, list) or not turns or not isinstance(turns[0], list):
        raise DataFormatError("missing or malformed 'question'", record_id=rec.id)
    for message in reversed(turns[0]):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
    raise DataFormatError("the first turn of 'question' has no user message", record_id=rec.id)


def _properties(function: Mapping[str, Any]) -> dict[str, Any]:
    params = function.get("parameters")
    props = params.get("properties") if isinstance(params, Mapping) else None
    return dict(props) if isinstance(props, Mapping) else {}


def _functions(value: Any, rid: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise DataFormatError("missing or empty 'function' list", record_id=rid)
    for f in value:
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            raise DataFormatError("a 'function' entry has no name", record_id=rid)
    return value


def _check_args(
    rid: str, name: str, args: Mapping[str, Any], functions: Mapping[str, Mapping[str, Any]]
) -> None:
    if name not in functions:
        raise DataFormatError(
            f"the answer calls {name!r}, which is not among the record's functions "
            f"{sorted(functions)}",
            record_id=rid,
        )
    props = _properties(functions[name])
    unknown = sorted(set(args) - set(props))
    if unknown:
        raise DataFormatError(
            f"the answer gives {name!r} parameters {unknown} its schema does not have",
            record_id=rid,
        )


def _task(
    rid: str,
    question: str,
    functions: Sequence[Mapping[str, Any]],
    calls: Sequence[PlannedCall],
    answer_tokens: int,
) -> ScriptedTask:
    try:
        return ScriptedTask(rid, question, tuple(functions), tuple(calls), answer_tokens)
    except ScriptError as exc:
        raise DataFormatError(str(exc), record_id=rid) from exc


# --- single turn --------------------------------------------------------------------------


def _single_turn_calls(
    rid: str, truth: Any, functions: Mapping[str, Mapping[str, Any]]
) -> list[PlannedCall]:
    if not isinstance(truth, list):
        raise DataFormatError("'ground_truth' must be a list of calls", record_id=rid)
    calls: list[PlannedCall] = []
    for i, entry in enumerate(truth):
        if not isinstance(entry, Mapping) or len(entry) != 1:
            raise DataFormatError(
                f"ground-truth entry {i} must be {{function: {{param: [values]}}}}",
                record_id=rid,
            )
        ((name, params),) = entry.items()
        if not isinstance(params, Mapping):
            raise DataFormatError(f"ground-truth entry {i}: parameters of {name!r}", record_id=rid)
        if name not in functions:
            _check_args(rid, name, {}, functions)
        where = f"ground-truth entry {i}: {name}"
        block = functions[name].get("parameters")
        args = _pick_args(params, block if isinstance(block, Mapping) else {}, rid, where)
        _check_args(rid, name, args, functions)
        calls.append(PlannedCall(str(i), name, args))
    return calls


def _pick_args(
    params: Mapping[str, Any], schema: Mapping[str, Any], rid: str, where: str
) -> dict[str, Any]:
    """First acceptable value of each parameter; parameters that accept ``""`` left out.

    ``schema`` is the parameter block (``properties``, ``required``). A few BFCL answers
    accept ``""`` for a parameter their own schema requires; the first other acceptable
    value is used then, so that every planned call fits its schema.
    """
    props = schema.get("properties")
    props = props if isinstance(props, Mapping) else {}
    required = schema.get("required")
    required = required if isinstance(required, list) else []
    args: dict[str, Any] = {}
    for param, values in params.items():
        if not isinstance(values, list) or not values:
            raise DataFormatError(f"{where}.{param} must list acceptable values", record_id=rid)
        if "" in values:  # optional: the model may leave it out, and does
            if param not in required:
                continue
            values = [v for v in values if v != ""]
            if not values:
                raise DataFormatError(
                    f'{where}.{param} is required but only "" is acceptable', record_id=rid
                )
        args[param] = _pick_value(values[0], props.get(param), rid, f"{where}.{param}")
    return args


def _pick_value(value: Any, spec: Any, rid: str, where: str) -> Any:
    """Resolve BFCL's nested answers.

    Inside a ``dict`` parameter with ``properties`` (also as array items), each key again
    maps to a list of acceptable values.
    """
    if not isinstance(spec, Mapping):
        return value
    kind = spec.get("type")
    if kind in ("dict", "object") and isinstance(spec.get("properties"), Mapping):
        if isinstance(value, Mapping) and all(isinstance(v, list) for v in value.values()):
            return _pick_args(value, spec, rid, where)
        return value
    if kind in ("array", "tuple") and isinstance(value, list):
        items = spec.get("items")
        return [_pick_value(v, items, rid, f"{where}[{j}]") for j, v in enumerate(value)]
    return value


def _load_single_turn(
    records: list[_Record], answers: Mapping[str, _Record], answer_tokens: int
) -> list[ScriptedTask]:
    tasks: list[ScriptedTask] = []
    for rec in records:
        question = _question(rec)
        functions = _functions(rec.data.get("function"), rec.id)
        answer = answers.get(rec.id)
        if answer is None:
            raise DataFormatError("no answer record with this id", record_id=rec.id)
        if "ground_truth" not in answer.data:
            raise DataFormatError("the answer record has no 'ground_truth'", record_id=rec.id)
        by_name = {f["name"]: f for f in functions}
        calls = _single_turn_calls(rec.id, answer.data["ground_truth"], by_name)
        tasks.append(_task(rec.id, question, functions, calls, answer_tokens))
    return tasks


# --- multi turn ---------------------------------------------------------------------------


def parse_call(text: str, functions: Mapping[str, Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Parse one BFCL multi-turn ground-truth call such as ``"mv(source='a', destination='b')"``.

    Positional arguments map onto the function's parameters in the order of its schema's
    ``properties``. Argument values must be Python literals; tuples become lists (JSON).

    Args:
        text: The call text.
        functions: The function schemas available, by name.

    Returns:
        ``(function name, arguments)``.

    Raises:
        ValueError: If the text is not a single call of a known function with literal
            arguments (the loader wraps it in ``DataFormatError``).
    """
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"cannot parse call {text!r}: {exc.msg}") from None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"{text!r} is not a call of a plain function name")
    name = node.func.id
    if name not in functions:
        raise ValueError(f"{text!r} calls {name!r}, which is not among the record's functions")
    order = list(_properties(functions[name]))
    if len(node.args) > len(order):
        raise ValueError(
            f"{text!r} passes {len(node.args)} positional arguments; {name!r} "
            f"has {len(order)} parameters"
        )
    args: dict[str, Any] = {}
    for param, value in zip(order, node.args, strict=False):
        args[param] = _literal(value, text)
    for kw in node.keywords:
        if kw.arg is None:
            raise ValueError(f"{text!r} uses ** arguments")
        if kw.arg in args:
            raise ValueError(f"{text!r} gives {kw.arg!r} twice")
        if kw.arg not in order:
            raise ValueError(f"{text!r}: {name!r} has no parameter {kw.arg!r}")
        args[kw.arg] = _literal(kw.value, text)
    return name, args


def _literal(node: ast.expr, text: str) -> Any:
    if isinstance(node, ast.Starred):
        raise ValueError(f"{text!r} uses * arguments")
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"{text!r}: argument {ast.unparse(node)!r} is not a literal") from None
    return _to_json(value, text)


def _to_json(value: Any, text: str) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_to_json(v, text) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _to_json(v, text) for k, v in value.items()}
    raise ValueError(f"{text!r}: argument value {value!r} has no JSON form")


class _FuncDocs:
    """Lazily loaded ``multi_turn_func_doc`` files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[str, list[dict[str, Any]]] = {}

    def functions(self, cls: str, rid: str) -> list[dict[str, Any]]:
        file = MULTI_TURN_FUNC_DOC_FILES.get(cls)
        if file is None:
            raise DataFormatError(
                f"unknown class {cls!r} in 'involved_classes' (known: "
                f"{sorted(MULTI_TURN_FUNC_DOC_FILES)})",
                record_id=rid,
            )
        if file not in self._cache:
            path = self.folder / file
            if not path.is_file():
                raise DataFormatError(
                    f"function docs of {cls!r} not found at {path}", record_id=rid
                )
            docs: list[dict[str, Any]] = []
            for lineno, doc in _json_lines(path, record_id=rid):
                if not isinstance(doc.get("name"), str):
                    raise DataFormatError(
                        f"{file} line {lineno}: a function doc needs a name", record_id=rid
                    )
                docs.append(doc)
            self._cache[file] = docs
        return self._cache[file]


@dataclass(frozen=True, slots=True)
class _Chain:
    rid: str
    question: str
    functions: list[dict[str, Any]]
    calls: list[tuple[str, dict[str, Any]]]


def _chain(rec: _Record, answers: Mapping[str, _Record], docs: _FuncDocs) -> _Chain:
    rid = rec.id
    question = _question(rec)
    classes = rec.data.get("involved_classes")
    if not isinstance(classes, list) or not classes:
        raise DataFormatError("missing or empty 'involved_classes'", record_id=rid)
    excluded = rec.data.get("excluded_function") or []
    if not isinstance(excluded, list):
        raise DataFormatError("'excluded_function' must be a list", record_id=rid)
    functions: dict[str, dict[str, Any]] = {}
    for cls in classes:
        for doc in docs.functions(str(cls), rid):
            name = doc["name"]
            if name in excluded:
                continue
            if name in functions and functions[name] != doc:
                raise DataFormatError(f"two different docs for function {name!r}", record_id=rid)
            functions[name] = doc
    answer = answers.get(rid)
    if answer is None:
        raise DataFormatError("no answer record with this id", record_id=rid)
    truth = answer.data.get("ground_truth")
    if not isinstance(truth, list) or not truth or not isinstance(truth[0], list):
        raise DataFormatError("'ground_truth' must be a list of turns (lists)", record_id=rid)
    calls: list[tuple[str, dict[str, Any]]] = []
    for text in truth[0]:
        if not isinstance(text, str):
            raise DataFormatError(f"ground-truth call {text!r} is not a string", record_id=rid)
        try:
            calls.append(parse_call(text, functions))
        except ValueError as exc:
            raise DataFormatError(str(exc), record_id=rid) from None
    return _Chain(rid, question, list(functions.values()), calls)


def _merged_task(chains: Sequence[_Chain], answer_tokens: int) -> ScriptedTask:
    functions: dict[str, dict[str, Any]] = {}
    calls: list[PlannedCall] = []
    for k, chain in enumerate(chains):
        for f in chain.functions:
            functions.setdefault(f["name"], f)
        prev: str | None = None
        for i, (name, args) in enumerate(chain.calls):
            cid = f"r{k}.{i}"
            calls.append(PlannedCall(cid, name, args, (prev,) if prev else ()))
            prev = cid
    return _task(
        "+".join(c.rid for c in chains),
        "\n".join(c.question for c in chains),
        list(functions.values()),
        calls,
        answer_tokens,
    )


def _load_multi_turn(
    records: list[_Record],
    answers: Mapping[str, _Record],
    folder: Path,
    merge: int,
    seed: int,
    answer_tokens: int,
) -> list[ScriptedTask]:
    docs = _FuncDocs(folder)
    chains = [_chain(rec, answers, docs) for rec in records]
    if merge > 1:
        random.Random(seed).shuffle(chains)
    groups = [chains[i : i + merge] for i in range(0, len(chains) - merge + 1, merge)]
    return [_merged_task(group, answer_tokens) for group in groups]


# --- entry point --------------------------------------------------------------------------


def _kind(data_path: Path, records: list[_Record]) -> Kind:
    category = bfcl_category(data_path)
    if category is not None:
        if category not in BFCL_CATEGORIES:
            raise ValueError(
                f"unsupported BFCL category {category!r} ({data_path.name}); supported: "
                f"{sorted(BFCL_CATEGORIES)}"
            )
        return BFCL_CATEGORIES[category]
    if records and "involved_classes" in records[0].data:
        return "multi_turn"
    return "single_turn"


def load_bfcl(
    data_path: str | Path,
    answers_path: str | Path,
    *,
    merge: int = 1,
    limit: int | None = None,
    seed: int = 0,
    answer_tokens: int = 20,
) -> list[ScriptedTask]:
    """Load a BFCL question file and its ground truth as scripted tasks.

    The kind of file (single-turn or ``multi_turn_base``) comes from its name
    (:func:`bfcl_category`); a file with another name is multi-turn if its records list
    ``involved_classes``.

    Args:
        data_path: The question file (JSON Lines).
        answers_path: The ground-truth file (JSON Lines, joined on ``id``).
        merge: Multi-turn only: records per task (K independent chains, from K distinct
            records, grouped after a ``random.Random(seed)`` shuffle; an incomplete last
            group is dropped). ``1`` keeps one task per record, in file order.
        limit: Keep the first ``limit`` tasks after a ``random.Random(seed)`` shuffle of
            the task list. With ``None`` (the default) every task is kept, in file order
            (or merge order); the shuffle only happens when ``limit`` is set.
        seed: Seed of the shuffles.
        answer_tokens: Length of each task's final answer, in tokens.

    Returns:
        The tasks.

    Raises:
        ValueError: On ``merge`` < 1, ``merge`` > 1 for a single-turn file, ``limit`` < 0,
            or an unsupported BFCL category.
        DataFormatError: On a malformed record or answer (the message names the record,
            and the line for a line that is not JSON).
        OSError: If a file cannot be read.
    """
    data_path, answers_path = Path(data_path), Path(answers_path)
    if merge < 1:
        raise ValueError(f"merge must be >= 1, got {merge}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    records = _read_jsonl(data_path)
    kind = _kind(data_path, records)
    if kind == "single_turn" and merge != 1:
        raise ValueError(
            f"merge={merge} needs a multi_turn_base file; {data_path.name} is single-turn "
            "(use merge=1)"
        )
    answers = {a.id: a for a in _read_jsonl(answers_path)}
    if kind == "single_turn":
        tasks = _load_single_turn(records, answers, answer_tokens)
    else:
        folder = data_path.parent / "multi_turn_func_doc"
        tasks = _load_multi_turn(records, answers, folder, merge, seed, answer_tokens)
    if limit is not None:
        random.Random(seed).shuffle(tasks)
        tasks = tasks[:limit]
    return tasks
