"""Labelled requests for the plan cache: load them, split them for benchmarks.

A :class:`LabelledRequest` is one user request with its intent (``domain`` and
``intent``, together the class ``label``) and its slots (``{slot: value}``, each value a
substring of the text, or a list of such substrings for a multi-valued slot: the two
teams of a match, ``{"name": ["湖人", "勇士"]}``). :func:`load_labelled` reads them from a
JSON array (the SMP2019 ECDT task-1 format, ``[{"text", "domain", "intent", "slots"},
...]``) or JSON Lines; :func:`load_labelled_report` reads them too but skips malformed
records and reports them (:class:`~langgraph_speculative.errors.SkippedRecord`).
:func:`stratified_split` and :func:`hold_out_domains` make the train/test splits the benchmarks use.

Example:
    ```python
    import json
    import tempfile
    from pathlib import Path

    from langgraph_speculative.cache.training_data import (
        load_labelled, load_labelled_report, stratified_split)

    records = [
        {"text": f"{a}到{b}的火车", "domain": "train", "intent": "QUERY",
         "slots": {"startLoc_city": a, "endLoc_city": b}}
        for a, b in [("合肥", "北京"), ("长沙", "上海"), ("广州", "深圳"), ("南京", "杭州")]
    ] + [{"text": "红烧肉怎么做", "domain": "cookbook", "intent": "QUERY",
          "slots": {"dishName": "红烧肉"}},
         {"text": "湖人对勇士的比赛", "domain": "match", "intent": "QUERY",
          "slots": {"name": ["湖人", "勇士"]}},
         {"text": "没有意图的记录", "domain": "match"}]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "requests.json"
        path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        examples, skipped = load_labelled_report(path)
    assert examples[0].label == "train.QUERY"
    assert examples[0].slots == {"startLoc_city": "合肥", "endLoc_city": "北京"}
    assert examples[5].slots == {"name": ("湖人", "勇士")}  # a list is kept as a tuple
    assert [(s.id, "'intent'" in s.reason) for s in skipped] == [("6", True)]
    train, test = stratified_split(examples[:5], test_fraction=0.5, seed=0)
    assert len(train) + len(test) == 5 and {e.label for e in test} == {"train.QUERY"}
    ```
"""

from __future__ import annotations

import json
import logging
import random
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from langgraph_speculative.errors import DataFormatError, RequestError, SkippedRecord

__all__ = [
    "LabelledRequest",
    "SlotValue",
    "check_request",
    "hold_out_domains",
    "load_labelled",
    "load_labelled_report",
    "slot_values",
    "stratified_split",
]

_log = logging.getLogger(__name__)

SlotValue = str | tuple[str, ...]
"""A slot's value: one string, or (a multi-valued slot) a tuple of strings in text order."""


def slot_values(value: str | Sequence[str]) -> tuple[str, ...]:
    """The values of a slot, as a tuple: ``("合肥",)`` or ``("湖人", "勇士")``.

    Args:
        value: A slot's value, one string or a sequence of strings.

    Returns:
        The string alone in a 1-tuple, or the sequence's strings in order.
    """
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@dataclass(frozen=True)
class LabelledRequest:
    """One request with its intent and its slots.

    Attributes:
        text: The request as the user said it.
        domain: Its domain (``"train"``, ``"cookbook"``, ...).
        intent: Its intent within the domain (``"QUERY"``, ``"PLAY"``, ...).
        slots: ``{slot name: value}``; a value is normally a substring of ``text``
            (the parameter extractor learns only from those that are). A multi-valued
            slot (a match between two teams: ``{"name": ["湖人", "勇士"]}``) holds a
            list of values, stored as a tuple so the request stays hashable. Read-only.

    Example:
        ```python
        from langgraph_speculative.cache.training_data import LabelledRequest

        req = LabelledRequest("明天长沙到上海的火车票", "train", "QUERY",
                              {"startLoc_city": "长沙", "endLoc_city": "上海"})
        assert req.label == "train.QUERY"
        assert hash(req) == hash(LabelledRequest(req.text, "train", "QUERY", dict(req.slots)))
        match = LabelledRequest("湖人对勇士的比赛", "match", "QUERY", {"name": ["湖人", "勇士"]})
        assert match.slots["name"] == ("湖人", "勇士")
        assert match == LabelledRequest(match.text, "match", "QUERY", {"name": ("湖人", "勇士")})
        ```
    """

    text: str
    domain: str
    intent: str
    slots: Mapping[str, SlotValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        slots = {
            k: tuple(v) if isinstance(v, list | tuple) else v for k, v in dict(self.slots).items()
        }
        object.__setattr__(self, "slots", MappingProxyType(slots))

    @property
    def label(self) -> str:
        """The class: ``f"{domain}.{intent}"``."""
        return f"{self.domain}.{self.intent}"

    def __hash__(self) -> int:
        return hash((self.text, self.domain, self.intent, tuple(sorted(self.slots.items()))))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelledRequest):
            return NotImplemented
        return (self.text, self.domain, self.intent, dict(self.slots)) == (
            other.text,
            other.domain,
            other.intent,
            dict(other.slots),
        )


class _BadRecord(Exception):
    """A record is malformed (the message says why)."""


def _folded(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _record(raw: Any) -> LabelledRequest:
    if not isinstance(raw, Mapping):
        raise _BadRecord(f"expected a JSON object, got {type(raw).__name__}")
    fields: dict[str, str] = {}
    for name in ("text", "domain", "intent"):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            raise _BadRecord(f"field {name!r} must be a non-empty string, got {value!r}")
        fields[name] = value
    slots = raw.get("slots", {})
    if slots is None:
        slots = {}
    if not isinstance(slots, Mapping):
        raise _BadRecord(
            "field 'slots' must be an object of strings (or lists of strings), got "
            f"{type(slots).__name__}"
        )
    text = _folded(fields["text"])
    clean: dict[str, SlotValue] = {}
    for key, value in slots.items():
        values = value if isinstance(value, list) else [value]
        if (
            not isinstance(key, str)
            or not key
            or not values
            or not all(isinstance(v, str) and v for v in values)
        ):
            raise _BadRecord(
                f"field 'slots' entry {key!r}: {value!r} must map a non-empty name to a "
                "non-empty string or a non-empty list of non-empty strings"
            )
        missing = [v for v in values if _folded(v) not in text]
        if missing:
            raise _BadRecord(
                f"field 'slots' entry {key!r}: value {missing[0]!r} is not a substring of "
                f"the text {fields['text']!r}"
            )
        clean[key] = tuple(values) if isinstance(value, list) else value
    return LabelledRequest(fields["text"], fields["domain"], fields["intent"], clean)


def load_labelled(path: str | Path, *, strict: bool = True) -> list[LabelledRequest]:
    """Read labelled requests from a JSON array or a JSON Lines file.

    Each record is an object ``{"text": str, "domain": str, "intent": str, "slots":
    {str: str or [str, ...]}}`` (``slots`` may be missing or ``null``: no slots; a list
    is a multi-valued slot, kept as a tuple). Every slot value must be a substring of
    the text (full-width and case folded). The SMP2019 ECDT task-1 files (``dev.json``)
    are read as they are.

    Args:
        path: The file. ``.jsonl`` files (or files whose first character is not ``[``)
            are read as JSON Lines, one record per non-blank line.
        strict: Raise on the first malformed record (default). ``False``: skip
            malformed records and log how many (:func:`load_labelled_report` returns
            which and why).

    Returns:
        The requests, in file order.

    Raises:
        DataFormatError: If the file is not valid JSON (nor JSON Lines), or (``strict``)
            a record is not an object, has a missing or malformed field, or a slot value
            that is not in its text; ``record_id`` is the 0-based record index and the
            message names the field.
        FileNotFoundError: If the file does not exist.
    """
    requests, skipped = load_labelled_report(path, strict=strict)
    if skipped:
        _log.warning("%s: skipped %d malformed record(s)", path, len(skipped))
    return requests


def load_labelled_report(
    path: str | Path, *, strict: bool = False
) -> tuple[list[LabelledRequest], list[SkippedRecord]]:
    """Read labelled requests like :func:`load_labelled`, skipping malformed records.

    A record that is not an object, lacks ``text``, ``domain`` or ``intent``, has
    ``slots`` that are not an object, an empty slot value or one that is not in its
    text, and (JSON Lines) a line that is not JSON, is left out and reported. A file
    that is not JSON at all (a JSON array that does not parse, or JSON Lines of which
    no line parses) still raises.

    Args:
        path: The file (see :func:`load_labelled`).
        strict: Raise on the first malformed record instead (as :func:`load_labelled`).

    Returns:
        ``(requests, skipped)``: the good requests in file order, and one
        :class:`~langgraph_speculative.errors.SkippedRecord` per record left out, in file order.

    Raises:
        DataFormatError: If the file is not valid JSON, nor JSON Lines with at least one
            line of JSON; with ``strict``, also on the first malformed record.
        FileNotFoundError: If the file does not exist.
    """
    text = Path(path).read_text(encoding="utf-8")
    name = Path(path).name
    stripped = text.lstrip("\ufeff \t\r\n")
    raws: list[tuple[int, int | None, Any]] = []  # (record index, line, raw record)
    skipped: list[SkippedRecord] = []
    if stripped.startswith("["):
        try:
            loaded = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: not valid JSON: {exc}") from exc
        raws = [(i, None, raw) for i, raw in enumerate(loaded)]
    else:
        offset = len(text) - len(stripped)
        first_line = text[:offset].count("\n") + 1
        index = 0
        for lineno, line in enumerate(stripped.splitlines(), first_line):
            if not line.strip():
                continue
            try:
                raws.append((index, lineno, json.loads(line)))
            except json.JSONDecodeError as exc:
                if strict:
                    raise DataFormatError(
                        f"{path}: line {lineno} is not valid JSON: {exc}", record_id=str(index)
                    ) from exc
                reason = f"line {lineno} is not valid JSON: {exc}"
                skipped.append(SkippedRecord(str(index), reason, "malformed", name, lineno))
            index += 1
        if skipped and not raws:
            raise DataFormatError(
                f"{path}: not valid JSON, nor JSON Lines (no line of it is JSON; "
                f"{skipped[0].reason})"
            )
    requests: list[LabelledRequest] = []
    for rid, line_no, raw in raws:
        try:
            requests.append(_record(raw))
        except _BadRecord as exc:
            if strict:
                raise DataFormatError(str(exc), record_id=str(rid)) from None
            skipped.append(SkippedRecord(str(rid), str(exc), "malformed", name, line_no))
    skipped.sort(key=lambda s: int(s.id))
    return requests, skipped


def stratified_split(
    examples: Sequence[LabelledRequest], test_fraction: float, seed: int
) -> tuple[list[LabelledRequest], list[LabelledRequest]]:
    """Split requests into train and test sets with the same class proportions.

    Within each class (``label``) the requests are shuffled with ``seed`` and
    ``round(n * test_fraction)`` of them go to the test set, but at least one stays in the
    training set (a class of one request is never tested). Deterministic for a seed.

    Args:
        examples: The requests.
        test_fraction: The share of each class to put in the test set, in ``(0, 1)``.
        seed: The random seed.

    Returns:
        ``(train, test)``, each in the order of ``examples``.

    Raises:
        ValueError: If ``test_fraction`` is not strictly between 0 and 1.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        by_label[ex.label].append(i)
    test_idx: set[int] = set()
    for label in sorted(by_label):
        idx = by_label[label]
        rng.shuffle(idx)
        k = min(round(len(idx) * test_fraction), len(idx) - 1)
        test_idx.update(idx[:k])
    train = [ex for i, ex in enumerate(examples) if i not in test_idx]
    test = [ex for i, ex in enumerate(examples) if i in test_idx]
    return train, test


def hold_out_domains(
    examples: Sequence[LabelledRequest], domains: Iterable[str]
) -> tuple[list[LabelledRequest], list[LabelledRequest]]:
    """Set whole domains apart: the requests of intents a model must treat as unknown.

    Args:
        examples: The requests.
        domains: The domains to hold out (for example ``["weather", "lottery"]``).

    Returns:
        ``(kept, held_out)``: the requests of the other domains and of ``domains``, each
        in the order of ``examples``.

    Raises:
        ValueError: If ``domains`` is empty or names a domain no request has.
    """
    wanted = set(domains)
    if not wanted:
        raise ValueError("hold_out_domains needs at least one domain")
    present = {ex.domain for ex in examples}
    missing = sorted(wanted - present)
    if missing:
        raise ValueError(f"no request has domain(s) {missing}; domains are {sorted(present)}")
    kept = [ex for ex in examples if ex.domain not in wanted]
    held = [ex for ex in examples if ex.domain in wanted]
    return kept, held


def check_request(text: object, max_chars: int, *, limit_name: str = "max_chars") -> str:
    """Return ``text`` if it is a usable request; raise a clear error otherwise.

    Every stage of the plan cache (classifier, extractor, the cache itself) checks a
    request the same way, before it touches any model or store.

    Args:
        text: The request.
        max_chars: The most characters accepted.
        limit_name: The setting that holds ``max_chars`` (named in the error).

    Returns:
        ``text`` unchanged.

    Raises:
        RequestError: If ``text`` is not a string, is empty or blank, or is too long.
    """
    if not isinstance(text, str):
        raise RequestError(f"the request must be a string, got {type(text).__name__}")
    if not text.strip():
        raise RequestError("the request is empty or blank")
    if len(text) > max_chars:
        raise RequestError(
            f"the request has {len(text)} characters; the limit is {max_chars} ({limit_name})"
        )
    return text
