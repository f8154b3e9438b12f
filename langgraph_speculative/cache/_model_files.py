"""Save and load the plan cache's small models without pickle: ``meta.json`` + ``arrays.npz``.

A model directory holds ``meta.json`` (the format name and version, the model's settings
and vocabularies, and the SHA-256 of ``arrays.npz``) and ``arrays.npz`` (numeric arrays,
read with ``allow_pickle=False``). Any damage (a missing or unreadable file, another
format, a checksum mismatch, a missing array) raises
:class:`~langgraph_speculative.errors.CacheCorruptError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from langgraph_speculative.errors import CacheCorruptError

__all__ = ["read_model_dir", "read_tagged_json", "sha256_json", "write_model_dir"]

_META = "meta.json"
_ARRAYS = "arrays.npz"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_model_dir(
    path: str | Path,
    *,
    fmt: str,
    version: int,
    meta: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
) -> None:
    """Write a model directory (created if needed; its two files are replaced atomically).

    Args:
        path: The directory.
        fmt: The format name stored in ``meta.json`` and checked on load.
        version: The format version.
        meta: JSON-serialisable settings and vocabularies.
        arrays: Named numeric arrays (no object arrays).
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp_arrays = directory / f".{_ARRAYS}.{tag}.tmp"
    tmp_meta = directory / f".{_META}.{tag}.tmp"
    try:
        with open(tmp_arrays, "wb") as f:
            savez: Any = np.savez_compressed
            savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
            f.flush()
            os.fsync(f.fileno())
        document = {
            "format": fmt,
            "version": version,
            "arrays_sha256": _sha256(tmp_arrays),
            "meta": dict(meta),
        }
        with open(tmp_meta, "w", encoding="utf-8") as f:
            json.dump(document, f, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_arrays, directory / _ARRAYS)
        os.replace(tmp_meta, directory / _META)
    finally:
        for tmp in (tmp_arrays, tmp_meta):
            if tmp.exists():
                tmp.unlink()


def read_model_dir(
    path: str | Path,
    *,
    fmt: str,
    version: int | tuple[int, ...],
    required: tuple[str, ...] = (),
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a model directory written by :func:`write_model_dir`.

    Args:
        path: The directory.
        fmt: The expected format name.
        version: The expected format version (or the versions this reader knows).
        required: Array names that must be present.

    Returns:
        ``(meta, arrays)``.

    Raises:
        CacheCorruptError: If a file is missing, unreadable, of another format or
            version, fails its checksum, or lacks a required array.
    """
    directory = Path(path)
    meta_path = directory / _META
    arrays_path = directory / _ARRAYS
    try:
        raw = meta_path.read_bytes()
    except OSError as exc:
        raise CacheCorruptError(f"{meta_path}: cannot read the model file: {exc}") from exc
    document = read_tagged_json(raw, meta_path, fmt=fmt, version=version, what="model file")
    if not isinstance(document.get("meta"), dict):
        raise CacheCorruptError(f"{meta_path}: not a model file (no 'meta' object)")
    try:
        actual = _sha256(arrays_path)
    except OSError as exc:
        raise CacheCorruptError(f"{arrays_path}: cannot read the model arrays: {exc}") from exc
    if actual != document.get("arrays_sha256"):
        raise CacheCorruptError(f"{arrays_path}: checksum mismatch (damaged or replaced)")
    try:
        with np.load(arrays_path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CacheCorruptError(f"{arrays_path}: cannot read the model arrays: {exc}") from exc
    missing = [name for name in required if name not in arrays]
    if missing:
        raise CacheCorruptError(f"{arrays_path}: missing array(s) {missing}")
    return document["meta"], arrays


def sha256_json(value: Any) -> str:
    """The SHA-256 of ``value``'s canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def read_tagged_json(
    raw: bytes, source: Path, *, fmt: str, version: int | tuple[int, ...], what: str
) -> dict[str, Any]:
    """Parse a JSON document that names its format and version, and check both.

    Args:
        raw: The file's bytes.
        source: The file (for messages).
        fmt: The expected ``format`` field.
        version: The expected ``version`` field (or the versions this reader knows).
        what: What the file should be (for messages), e.g. ``"FaissIndex manifest"``.

    Returns:
        The document.

    Raises:
        CacheCorruptError: If it is not JSON, not ours, or of another version.
    """
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheCorruptError(f"{source}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise CacheCorruptError(f"{source}: not a {what} (format tag missing)")
    versions = (version,) if isinstance(version, int) else version
    if doc.get("version") not in versions:
        expected = " or ".join(str(v) for v in versions)
        raise CacheCorruptError(
            f"{source}: format version {doc.get('version')!r}; this library reads {expected}"
        )
    return doc
