"""Gazetteers: named lists of known values (cities, stations, dishes) and their matcher.

A gazetteer is read from a ``*.txt`` file (one entry per line, :func:`load_gazetteers`)
or given as an iterable of entries (:func:`gazetteer_entries`). Its name says its kind
(:func:`gazetteer_kind`: ``city`` and ``station`` are places, ``contact`` a name). A
:class:`Matcher` finds entries in text, longest first; :func:`gazetteer_matcher` builds
the one the parameter extractor uses, where a place also matches without its
administrative suffix (北京市 -> 北京).

Example:
    ```python
    from langgraph_speculative.cache.parameters.gazetteers import gazetteer_kind, gazetteer_matcher

    matcher = gazetteer_matcher({"city": ["北京市", "合肥市"]}, {"city": gazetteer_kind("city")})
    assert matcher.find("从合肥到北京市") == [(1, 3, ("city",)), (4, 7, ("city",))]
    ```
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from langgraph_speculative.cache.parameters.normalise import fold
from langgraph_speculative.errors import DataFormatError

__all__ = [
    "Matcher",
    "gazetteer_entries",
    "gazetteer_kind",
    "gazetteer_matcher",
    "load_gazetteers",
]

_PLACE_WORDS = ("city", "province", "station", "country", "place", "location", "area", "poi")
_PERSON_WORDS = ("person", "people", "contact", "surname", "firstname")
_PLACE_SUFFIXES = ("特别行政区", "自治区", "自治州", "自治县", "地区", "市", "省", "县", "区", "盟")


def gazetteer_kind(name: str) -> str:
    """The kind of the values a gazetteer holds, read from its name.

    Args:
        name: The gazetteer's name (``"city"``, ``"railway_station"``, ``"dishName"``).

    Returns:
        ``"place"`` for names with ``city``, ``province``, ``station``, ``country``,
        ``place``, ``location``, ``area`` or ``poi``; ``"name"`` for ``person``,
        ``people``, ``contact``, ``surname`` or ``firstname``; else ``"value"``.
    """
    low = name.lower()
    if any(w in low for w in _PLACE_WORDS):
        return "place"
    if any(w in low for w in _PERSON_WORDS):
        return "name"
    return "value"


class Matcher:
    """Greedy forward longest-match over a dictionary ``entry -> tags``.

    Entries of one character are never matched.

    Args:
        entries: ``{entry: tags}``; the tags come back with each match.

    Attributes:
        entries: The dictionary, its tags as tuples.
    """

    def __init__(self, entries: Mapping[str, Sequence[str]]) -> None:
        self.entries: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in entries.items()}
        longest: dict[str, int] = {}
        for entry in self.entries:
            first = entry[0]
            longest[first] = max(longest.get(first, 0), len(entry))
        self._longest = longest

    def find(self, text: str) -> list[tuple[int, int, tuple[str, ...]]]:
        """Scan ``text`` left to right; at each position take the longest entry there.

        Args:
            text: The text to scan (folded, like the entries).

        Returns:
            ``(start, end, tags)`` per match, in text order, not overlapping.
        """
        out: list[tuple[int, int, tuple[str, ...]]] = []
        n, i = len(text), 0
        entries, longest = self.entries, self._longest
        while i < n:
            top = longest.get(text[i], 0)
            found = False
            for length in range(min(top, n - i), 1, -1):
                tags = entries.get(text[i : i + length])
                if tags is not None:
                    out.append((i, i + length, tags))
                    i += length
                    found = True
                    break
            if not found:
                i += 1
        return out


def load_gazetteers(dic_dir: str | Path) -> dict[str, list[str]]:
    """Read every ``*.txt`` gazetteer of a directory: one entry per line.

    The name of each gazetteer is the file stem (``city.txt`` -> ``"city"``). Blank lines
    and lines starting with ``#`` are skipped; entries are stripped.

    Args:
        dic_dir: The directory (for SMP2019: ``data/smp2019/dic`` with ``city``,
            ``province``, ``railway_station`` and ``dishName``).

    Returns:
        ``{name: [entry, ...]}`` in file order.

    Raises:
        FileNotFoundError: If ``dic_dir`` is not a directory.
        DataFormatError: If it holds no ``*.txt`` file, or a file is not UTF-8 text.
    """
    directory = Path(dic_dir)
    if not directory.is_dir():
        raise FileNotFoundError(f"gazetteer directory not found: {directory}")
    out: dict[str, list[str]] = {}
    for path in sorted(directory.glob("*.txt")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise DataFormatError(f"gazetteer {path} is not UTF-8 text: {exc}") from exc
        out[path.stem] = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    if not out:
        raise DataFormatError(f"no *.txt gazetteer in {directory}")
    return out


def gazetteer_entries(
    gazetteers: Mapping[str, str | Path | Iterable[str]] | None,
) -> dict[str, list[str]]:
    """The entries of each gazetteer, from a file path or an iterable of entries.

    A path is read like :func:`load_gazetteers` reads a file; entries are stripped and
    blank ones dropped.

    Args:
        gazetteers: ``{name: path or iterable of entries}``, or ``None`` for none.

    Returns:
        ``{name: [entry, ...]}`` in the order given.

    Raises:
        ValueError: If a name is not a non-empty string or an entry not a string.
        DataFormatError: If a file is not UTF-8 text.
    """
    out: dict[str, list[str]] = {}
    for name, source in (gazetteers or {}).items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"gazetteer names must be non-empty strings, got {name!r}")
        if isinstance(source, str | Path):
            path = Path(source)
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except UnicodeDecodeError as exc:
                raise DataFormatError(f"gazetteer {path} is not UTF-8 text: {exc}") from exc
            entries = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
        else:
            entries = []
            for entry in source:
                if not isinstance(entry, str):
                    raise ValueError(f"gazetteer {name!r} holds a non-string entry {entry!r}")
                if entry.strip():
                    entries.append(entry.strip())
        out[name] = entries
    return out


def gazetteer_matcher(gazetteers: Mapping[str, Sequence[str]], kinds: Mapping[str, str]) -> Matcher:
    """The matcher of a set of gazetteers: folded entries, tagged with their gazetteers.

    Entries shorter than two characters are left out; an entry of a place gazetteer
    that ends in an administrative suffix (市, 省, 自治区...) also matches without it,
    when at least two characters remain.

    Args:
        gazetteers: ``{name: [entry, ...]}`` (see :func:`gazetteer_entries`).
        kinds: The kind of each gazetteer (:func:`gazetteer_kind`).

    Returns:
        A matcher whose tags are the names of the gazetteers holding each entry, sorted.
    """
    entries: dict[str, set[str]] = defaultdict(set)
    for name, values in gazetteers.items():
        for value in values:
            folded = fold(value)
            if len(folded) >= 2:
                entries[folded].add(name)
            if kinds[name] == "place":
                for suffix in _PLACE_SUFFIXES:
                    if folded.endswith(suffix) and len(folded) - len(suffix) >= 2:
                        entries[folded[: -len(suffix)]].add(name)
                        break
    return Matcher({k: sorted(v) for k, v in entries.items()})
