"""Labelled requests for the plan cache: load them, split them for benchmarks.

A :class:`LabelledRequest` is one user request with its intent (``domain`` and
``intent``, together the class ``label``) and its slots (``{slot: value}``, each value a
substring of the text). :func:`load_labelled` reads them from a JSON array (the SMP2019
ECDT task-1 format, ``[{"text", "domain", "intent", "slots"}, ...]``) or JSON Lines.
:func:`stratified_split` and :func:`hold_out_domains` make the train/test splits the
benchmarks use.

Example:
    ```python
    import json
    import tempfile
    from pathlib import Path

    from langgraph_speculative.cache.training_data import load_labelled, stratified_split

    records = [
        {"text": f"{a}到{b}的火车", "domain": "train", "intent": "QUERY",
         "slots": {"startLoc_city": a, "endLoc_city": b}}
        for a, b in [("合肥", "北京"), ("长沙", "上海"), ("广州", "深圳"), ("南京", "杭州")]
    ] + [{"text": "红烧肉怎么做", "domain": "cookbook", "intent": "QUERY",
          "slots": {"dishName": "红烧肉"}}]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "requests.json"
        path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        examples = load_labelled(path)
    assert examples[0].label == "train.QUERY"
    assert examples[0].slots == {"startLoc_city": "合肥", "endLoc_city": "北京"}
    train, test = stratified_split(examples, test_fraction=0.5, seed=0)
    assert len(train) + len(test) == 5 and {e.label for e in test} == {"train.QUERY"}
    ```
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from langgraph_speculative.errors import DataFormatError, RequestError

__all__ = [
    "LabelledRequest",
    "check_request",
    "hold_out_domains",
    "load_labelled",
    "stratified_split",
]


@dataclass(frozen=True)
class LabelledRequest:
    """One request with its intent and its slots.

    Attributes:
        text: The request as the user said it.
        domain: Its domain (``"train"``, ``"cookbook"``, ...).
        intent: Its intent within the domain (``"QUERY"``, ``"PLAY"``, ...).
        slots: ``{slot name: value}``; a value is normally a substring of ``text``
            (the parameter extractor learns only from those that are). Read-only.

    Example:
        ```python
        from langgraph_speculative.cache.training_data import LabelledRequest

        req = LabelledRequest("明天长沙到上海的火车票", "train", "QUERY",
                              {"startLoc_city": "长沙", "endLoc_city": "上海"})
        assert req.label == "train.QUERY"
        assert hash(req) == hash(LabelledRequest(req.text, "train", "QUERY", dict(req.slots)))
        ```
    """

    text: str
    domain: str
    intent: str
    slots: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", MappingProxyType(dict(self.slots)))

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


def _record(index: int, raw: Any) -> LabelledRequest:
    rid = str(index)
    if not isinstance(raw, Mapping):
        raise DataFormatError(f"expected a JSON object, got {type(raw).__name__}", record_id=rid)
    fields: dict[str, str] = {}
    for name in ("text", "domain", "intent"):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            raise DataFormatError(
                f"field {name!r} must be a non-empty string, got {value!r}", record_id=rid
            )
        fields[name] = value
    slots = raw.get("slots", {})
    if slots is None:
        slots = {}
    if not isinstance(slots, Mapping):
        raise DataFormatError(
            f"field 'slots' must be an object of strings, got {type(slots).__name__}",
            record_id=rid,
        )
    for key, value in slots.items():
        if not isinstance(key, str) or not key or not isinstance(value, str) or not value:
            raise DataFormatError(
                f"field 'slots' entry {key!r}: {value!r} must map a non-empty name to a "
                "non-empty string",
                record_id=rid,
            )
    return LabelledRequest(fields["text"], fields["domain"], fields["intent"], dict(slots))


def load_labelled(path: str | Path) -> list[LabelledRequest]:
    """Read labelled requests from a JSON array or a JSON Lines file.

    Each record is an object ``{"text": str, "domain": str, "intent": str, "slots":
    {str: str}}`` (``slots`` may be missing or ``null``: no slots). The SMP2019 ECDT
    task-1 files (``dev.json``) are read as they are.

    Args:
        path: The file. ``.jsonl`` files (or files whose first character is not ``[``)
            are read as JSON Lines, one record per non-blank line.

    Returns:
        The requests, in file order.

    Raises:
        DataFormatError: If the file is not valid JSON, or a record is not an object or
            has a missing or malformed field; ``record_id`` is the 0-based record index
            and the message names the field.
        FileNotFoundError: If the file does not exist.
    """
    text = Path(path).read_text(encoding="utf-8")
    stripped = text.lstrip("\ufeff \t\r\n")
    raws: list[Any]
    if stripped.startswith("["):
        try:
            loaded = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: not valid JSON: {exc}") from exc
        raws = list(loaded)
    else:
        raws = []
        for lineno, line in enumerate(stripped.splitlines(), 1):
            if not line.strip():
                continue
            try:
                raws.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataFormatError(
                    f"{path}: line {lineno} is not valid JSON: {exc}", record_id=str(len(raws))
                ) from exc
    return [_record(i, raw) for i, raw in enumerate(raws)]


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
