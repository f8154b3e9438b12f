"""In-process vector back-end on faiss, with crash-safe, checksummed saves.

:class:`FaissIndex` keeps one faiss index per partition (an ``IndexIDMap2`` over an exact
``IndexFlatIP``, or over ``IndexHNSWFlat`` with ``hnsw=True`` for large caches) and the
payloads beside it. It is thread-safe (one lock; every operation holds it for
microseconds) and its async methods run inline, so concurrent asyncio tasks may share it.

**Saved layout.** ``save(directory)`` never changes a published file::

    directory/
      MANIFEST.json           format, version, dim, generation, partitions, sha256 of files
      data-<gen>-<token>/     one immutable snapshot: p00000.faiss + p00000.json, ...
      .lock                   flock'ed by the writer while it saves

A save writes a new ``.tmp-<token>`` directory beside the published ones, fsyncs every
file and the directory, renames it to ``data-<gen>-<token>``, then atomically replaces
``MANIFEST.json`` (temp file, fsync, ``os.replace``, fsync of the directory) and finally
deletes snapshots older than the previous one. A crash at any point leaves either the
old or the new manifest, each naming complete files. Readers take no lock: they read the
manifest, then the files it names, verify sizes and sha256, and retry when a concurrent
writer deleted the snapshot they were reading; they never see a half-written state.

**Concurrent writers.** A writer holds an exclusive ``fcntl.flock`` on ``.lock`` while it
saves; another writer waits up to ``timeout`` seconds, then gets
:class:`~langgraph_speculative.errors.ConcurrentWriterError`. Lost updates are refused
too: an index saves over a directory only if the directory still holds the snapshot the
index was loaded from (or last saved); if another writer saved in between, ``save``
raises ``ConcurrentWriterError`` (reload, or pass ``force=True`` to overwrite).

Example:
    ```python
    import tempfile

    import numpy as np

    from langgraph_speculative.cache.vectors.faiss_index import FaissIndex

    rng = np.random.default_rng(0)
    index = FaissIndex(64)
    vectors = rng.normal(size=(100, 64))
    index.add_many("weather", [(f"k{i}", v, {"i": i}) for i, v in enumerate(vectors)])
    hit = index.search(vectors[42], partition="weather")[0]
    assert hit.key == "k42" and hit.payload == {"i": 42}

    directory = tempfile.mkdtemp() + "/plans"
    index.save(directory)
    again = FaissIndex.load(directory)
    assert again.count("weather") == 100
    assert again.search(vectors[7], partition="weather")[0].key == "k7"
    ```
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

from langgraph_speculative.cache._model_files import read_tagged_json, sha256_json
from langgraph_speculative.cache.vectors.vector_index import VectorHit, VectorIndex
from langgraph_speculative.errors import (
    CacheCorruptError,
    ConcurrentWriterError,
    EmbeddingDimensionError,
)

__all__ = ["FORMAT_VERSION", "LOCK_FILE", "MANIFEST_FILE", "FaissIndex"]

FORMAT_VERSION = 1
"""Version of the saved layout this module writes and reads."""

MANIFEST_FILE = "MANIFEST.json"
"""Name of the manifest inside a saved directory."""

LOCK_FILE = ".lock"
"""Name of the writers' lock file inside a saved directory."""

_FORMAT = "lgs-faiss-index"
_DATA_RE = re.compile(r"^data-(\d{8})-([0-9a-f]{16})$")
_PART_FILE_RE = re.compile(r"^p\d{5}\.(faiss|json)$")
_TMP_PREFIX = ".tmp-"
_LOAD_ATTEMPTS = 8


@dataclass
class _Partition:
    """One partition: its faiss index, key <-> id maps and payloads (JSON text)."""

    index: Any
    ids: dict[str, int] = field(default_factory=dict)
    keys: dict[int, str] = field(default_factory=dict)
    payloads: dict[int, str] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    next_id: int = 0


class _Vanished(Exception):
    """A file named by the manifest disappeared (a concurrent writer collected it)."""


class FaissIndex(VectorIndex):
    """Partitioned faiss vector index; exact by default, HNSW on request.

    Example:
        ```python
        from langgraph_speculative.cache.vectors.faiss_index import FaissIndex

        index = FaissIndex(2, hnsw=True)
        index.add("p", "a", [1.0, 0.0], {"v": 1})
        index.add("p", "a", [0.0, 1.0], {"v": 2})  # same key: replaced
        assert index.count("p") == 1
        hit = index.search([0.0, 1.0], partition="p")[0]
        assert hit.payload == {"v": 2}
        assert index.remove("p", "a") and index.search([0.0, 1.0], partition="p") == []
        ```
    """

    inline_async = True  # calls take microseconds under the lock: no worker thread

    def __init__(
        self,
        dim: int,
        *,
        directory: str | os.PathLike[str] | None = None,
        normalize: bool = True,
        hnsw: bool = False,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
    ) -> None:
        """Create an empty index.

        Args:
            dim: Vector dimension.
            directory: Default target of :meth:`save` (nothing is read from it: use
                :meth:`load` or :meth:`open` for that).
            normalize: L2-normalise vectors on add and search (scores are cosines).
            hnsw: Use an approximate ``IndexHNSWFlat`` per partition instead of an exact
                flat index (faster beyond ~1e5 entries per partition; removal is lazy).
            hnsw_m: HNSW graph degree.
            ef_construction: HNSW build-time beam width.
            ef_search: HNSW search-time beam width (raised to ``k`` when smaller).

        Raises:
            ValueError: A parameter is out of range.
        """
        super().__init__(dim, normalize=normalize)
        for name, value in (
            ("hnsw_m", hnsw_m),
            ("ef_construction", ef_construction),
            ("ef_search", ef_search),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self._directory = None if directory is None else Path(directory)
        self._hnsw = bool(hnsw)
        self._hnsw_m = hnsw_m
        self._ef_construction = ef_construction
        self._ef_search = ef_search
        self._parts: dict[str, _Partition] = {}
        self._lock = threading.RLock()
        self._base_tokens: dict[Path, str] = {}

    # -- properties -----------------------------------------------------------------------
    @property
    def directory(self) -> Path | None:
        """Default target of :meth:`save` (the directory it was loaded from, if any)."""
        return self._directory

    @property
    def hnsw(self) -> bool:
        """Whether partitions use approximate HNSW indexes."""
        return self._hnsw

    # -- faiss plumbing -----------------------------------------------------------------------
    def _new_faiss(self) -> Any:
        inner: Any
        if self._hnsw:
            inner = faiss.IndexHNSWFlat(self._dim, self._hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self._ef_construction
            inner.hnsw.efSearch = self._ef_search
        else:
            inner = faiss.IndexFlatIP(self._dim)
        return faiss.IndexIDMap2(inner)

    def _drop_ids(self, part: _Partition, ids: list[int]) -> None:
        if not ids:
            return
        if self._hnsw:  # HNSW cannot remove: tombstone, compact when too many
            part.deleted.update(ids)
            live = len(part.ids)
            if len(part.deleted) > max(64, live // 4):
                self._compact(part)
        else:
            part.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def _compact(self, part: _Partition) -> None:
        """Rebuild an HNSW partition without its tombstoned vectors."""
        old = part.index
        ext_ids = faiss.vector_to_array(old.id_map).astype(np.int64)
        stored = faiss.downcast_index(old.index).reconstruct_n(0, old.ntotal)
        keep = np.array([i not in part.deleted for i in ext_ids.tolist()], dtype=bool)
        fresh = self._new_faiss()
        if keep.any():
            fresh.add_with_ids(np.ascontiguousarray(stored[keep]), ext_ids[keep])
        part.index = fresh
        part.deleted.clear()

    # -- hooks --------------------------------------------------------------------------------
    def _add_many(
        self, partition: str, keys: list[str], vectors: NDArray[np.float32], payloads: list[str]
    ) -> None:
        with self._lock:
            part = self._parts.get(partition)
            if part is None:
                part = self._parts[partition] = _Partition(index=self._new_faiss())
            stale = [part.ids[k] for k in keys if k in part.ids]
            for old in stale:
                del part.keys[old]
                del part.payloads[old]
            self._drop_ids(part, stale)
            new_ids = np.arange(part.next_id, part.next_id + len(keys), dtype=np.int64)
            part.next_id += len(keys)
            part.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), new_ids)
            for key, new_id, payload in zip(keys, new_ids.tolist(), payloads, strict=True):
                part.ids[key] = new_id
                part.keys[new_id] = key
                part.payloads[new_id] = payload

    def _search_partition(
        self, name: str, part: _Partition, query: NDArray[np.float32], k: int
    ) -> list[VectorHit]:
        live = len(part.ids)
        if live == 0:
            return []
        want = min(k + len(part.deleted), part.index.ntotal)
        if self._hnsw:
            inner: Any = faiss.downcast_index(part.index.index)
            inner.hnsw.efSearch = max(self._ef_search, want)
        scores, ids = part.index.search(query.reshape(1, -1), want)
        hits: list[VectorHit] = []
        for score, ident in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
            if ident < 0 or ident in part.deleted:
                continue
            hits.append(
                VectorHit(
                    key=part.keys[ident],
                    score=float(score),
                    partition=name,
                    payload=json.loads(part.payloads[ident]),
                )
            )
            if len(hits) == k:
                break
        return hits

    def _search(self, query: NDArray[np.float32], partition: str | None, k: int) -> list[VectorHit]:
        with self._lock:
            if partition is not None:
                part = self._parts.get(partition)
                return [] if part is None else self._search_partition(partition, part, query, k)
            hits: list[VectorHit] = []
            for name, part in self._parts.items():
                hits.extend(self._search_partition(name, part, query, k))
            return hits

    def _remove(self, partition: str, key: str) -> bool:
        with self._lock:
            part = self._parts.get(partition)
            if part is None or key not in part.ids:
                return False
            ident = part.ids.pop(key)
            del part.keys[ident]
            del part.payloads[ident]
            self._drop_ids(part, [ident])
            if not part.ids:
                del self._parts[partition]
            return True

    def _partitions(self) -> list[str]:
        with self._lock:
            return [name for name, part in self._parts.items() if part.ids]

    def _count(self, partition: str | None) -> int:
        with self._lock:
            if partition is not None:
                part = self._parts.get(partition)
                return 0 if part is None else len(part.ids)
            return sum(len(part.ids) for part in self._parts.values())

    # -- persistence ----------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {
            "dim": self._dim,
            "normalize": self._normalize,
            "hnsw": self._hnsw,
            "hnsw_m": self._hnsw_m,
            "ef_construction": self._ef_construction,
            "ef_search": self._ef_search,
        }

    def _snapshot(self) -> list[tuple[str, bytes, bytes]]:
        """(partition, faiss bytes, meta JSON bytes) of every non-empty partition."""
        self._check_open()
        out: list[tuple[str, bytes, bytes]] = []
        with self._lock:
            for name in sorted(self._parts):
                part = self._parts[name]
                if not part.ids:
                    continue
                meta = {
                    "partition": name,
                    "next_id": part.next_id,
                    "deleted": sorted(part.deleted),
                    "entries": [
                        [ident, part.keys[ident], part.payloads[ident]]
                        for ident in sorted(part.keys)
                    ],
                }
                blob = faiss.serialize_index(part.index).tobytes()
                out.append((name, blob, json.dumps(meta, ensure_ascii=False).encode("utf-8")))
        return out

    def save(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        timeout: float = 10.0,
        force: bool = False,
    ) -> Path:
        """Write the whole index to a directory, atomically (see the module docstring).

        Args:
            directory: Target directory (created if needed); defaults to
                :attr:`directory`. After a successful save it becomes the default.
            timeout: Seconds to wait for another writer's lock before giving up.
            force: Overwrite even if another writer saved to the directory since this
                index was loaded from (or last saved to) it, or its manifest is damaged.

        Returns:
            The directory written.

        Raises:
            ValueError: No directory given and none set.
            ConcurrentWriterError: Another writer held the lock for ``timeout`` seconds,
                or saved to the directory after this index last read or wrote it.
            CacheCorruptError: The directory's current manifest is damaged (use
                ``force=True`` to replace it).
        """
        target = Path(directory) if directory is not None else self._directory
        if target is None:
            raise ValueError("FaissIndex.save needs a directory (none was given or set)")
        target.mkdir(parents=True, exist_ok=True)
        resolved = target.resolve()
        with _writer_lock(target, timeout):
            previous: dict[str, Any] | None = None
            try:
                previous = _read_manifest(target)
            except FileNotFoundError:
                previous = None
            except CacheCorruptError:
                published = (target / MANIFEST_FILE).exists() or any(
                    _DATA_RE.match(p.name) for p in target.iterdir()
                )
                if published and not force:  # only leftovers of a crashed first save are
                    raise  # harmless: they are collected below
            if previous is not None and not force:
                base = self._base_tokens.get(resolved)
                if base is None:
                    raise ConcurrentWriterError(
                        f"{target} holds a saved index (generation {previous['generation']}) "
                        "that this index was not loaded from; load it (FaissIndex.open or "
                        "FaissIndex.load), or save with force=True to replace it"
                    )
                if base != previous["token"]:
                    raise ConcurrentWriterError(
                        f"{target}: another writer saved generation {previous['generation']} "
                        "after this index last loaded or saved it; load it again, or save "
                        "with force=True to overwrite"
                    )
            _remove_stale_temps(target)
            generation = (int(previous["generation"]) if previous else 0) + 1
            token = secrets.token_hex(8)
            data_name = f"data-{generation:08d}-{token}"
            snapshot = self._snapshot()
            files: dict[str, dict[str, Any]] = {}
            partitions: list[dict[str, Any]] = []
            tmp = target / f"{_TMP_PREFIX}{token}"
            tmp.mkdir()
            try:
                for i, (name, blob, meta) in enumerate(snapshot):
                    index_file, meta_file = f"p{i:05d}.faiss", f"p{i:05d}.json"
                    for fname, data in ((index_file, blob), (meta_file, meta)):
                        _write_durably(tmp / fname, data)
                        files[f"{data_name}/{fname}"] = {
                            "sha256": hashlib.sha256(data).hexdigest(),
                            "size": len(data),
                        }
                    partitions.append(
                        {"name": name, "index_file": index_file, "meta_file": meta_file}
                    )
                _fsync_dir(tmp)
                os.rename(tmp, target / data_name)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            _fsync_dir(target)
            body = {
                "format": _FORMAT,
                "version": FORMAT_VERSION,
                **self._config(),
                "generation": generation,
                "token": token,
                "data_dir": data_name,
                "partitions": partitions,
                "files": files,
            }
            manifest = {**body, "manifest_sha256": sha256_json(body)}
            tmp_manifest = target / f"{_TMP_PREFIX}{token}.manifest"
            _write_durably(tmp_manifest, json.dumps(manifest, ensure_ascii=False).encode())
            os.replace(tmp_manifest, target / MANIFEST_FILE)
            _fsync_dir(target)
            keep = {data_name, previous["data_dir"] if previous else None}
            for child in target.iterdir():
                if _DATA_RE.match(child.name) and child.name not in keep:
                    shutil.rmtree(child, ignore_errors=True)
        with self._lock:
            self._base_tokens[resolved] = token
            if self._directory is None:
                self._directory = target
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, dim: int | None = None) -> FaissIndex:
        """Read a saved index, verifying the manifest and every file's size and sha256.

        Args:
            directory: A directory written by :meth:`save`.
            dim: The dimension the caller expects (checked when given).

        Returns:
            The index; :attr:`directory` is set to ``directory``.

        Raises:
            FileNotFoundError: ``directory`` does not exist.
            CacheCorruptError: The directory is damaged, partly written, or of another
                format or version; the message names the file that failed.
            EmbeddingDimensionError: The saved dimension is not ``dim``.
        """
        root = Path(directory)
        if not root.is_dir():
            raise FileNotFoundError(f"no saved FaissIndex at {root} (not a directory)")
        last: Exception | None = None
        for _ in range(_LOAD_ATTEMPTS):
            manifest = _read_manifest(root)
            if dim is not None and manifest["dim"] != dim:
                raise EmbeddingDimensionError(
                    f"{root}: saved index has dimension {manifest['dim']}, expected {dim}"
                )
            try:
                index = cls._from_manifest(root, manifest)
            except _Vanished as exc:
                last = exc
                try:
                    now = _read_manifest(root)
                except CacheCorruptError:
                    now = None
                if now is not None and now["token"] != manifest["token"]:
                    continue  # a writer replaced the snapshot while we read it: retry
                raise CacheCorruptError(f"{root}: {exc}") from exc
            index._base_tokens[root.resolve()] = manifest["token"]
            return index
        raise CacheCorruptError(f"{root}: the saved index kept changing while it was read ({last})")

    @classmethod
    def open(cls, directory: str | os.PathLike[str], *, dim: int, **options: Any) -> FaissIndex:
        """Load the index saved in ``directory``, or create an empty one that saves there.

        Args:
            directory: The cache directory.
            dim: Expected dimension (a saved index of another one is refused).
            **options: Constructor options for a new index (a saved index keeps its own).

        Returns:
            The loaded or new index; its :attr:`directory` is ``directory``.

        Raises:
            CacheCorruptError: The directory holds a damaged or partly written index.
            EmbeddingDimensionError: The saved index has another dimension.
        """
        root = Path(directory)
        if root.is_dir() and any(
            p.name == MANIFEST_FILE or _DATA_RE.match(p.name) for p in root.iterdir()
        ):
            return cls.load(root, dim=dim)
        return cls(dim, directory=root, **options)

    @classmethod
    def _from_manifest(cls, root: Path, manifest: dict[str, Any]) -> FaissIndex:
        where = root / MANIFEST_FILE
        try:
            index = cls(
                manifest["dim"],
                directory=root,
                normalize=manifest["normalize"],
                hnsw=manifest["hnsw"],
                hnsw_m=manifest["hnsw_m"],
                ef_construction=manifest["ef_construction"],
                ef_search=manifest["ef_search"],
            )
            data_dir = root / str(manifest["data_dir"])
            files: dict[str, Any] = manifest["files"]
            parts = [(p["name"], p["index_file"], p["meta_file"]) for p in manifest["partitions"]]
            for name, index_file, meta_file in parts:
                if not (
                    isinstance(name, str)
                    and _PART_FILE_RE.match(str(index_file))
                    and _PART_FILE_RE.match(str(meta_file))
                ):
                    raise ValueError(f"bad partition entry {name!r}: {index_file!r}, {meta_file!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise CacheCorruptError(f"{where}: invalid manifest ({exc!r})") from exc
        for name, index_file, meta_file in parts:
            blob = _read_checked(data_dir, index_file, files)
            meta_bytes = _read_checked(data_dir, meta_file, files)
            index._parts[name] = _load_partition(
                index, name, data_dir, index_file, meta_file, blob, meta_bytes
            )
        return index


# -- helpers ---------------------------------------------------------------------------------
def _write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _writer_lock(directory: Path, timeout: float) -> Iterator[None]:
    """Hold the exclusive writers' flock of ``directory``; wait up to ``timeout`` seconds."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(0.0, timeout)
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ConcurrentWriterError(
                        f"{directory}: another writer holds {LOCK_FILE} (waited {timeout:g} s)"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _remove_stale_temps(directory: Path) -> None:
    """Delete leftovers of crashed saves (only called while holding the writers' lock)."""
    for child in directory.iterdir():
        if child.name.startswith(_TMP_PREFIX):
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def _read_manifest(root: Path) -> dict[str, Any]:
    """Read and verify ``MANIFEST.json``; FileNotFoundError only when ``root`` is empty."""
    path = root / MANIFEST_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if root.is_dir() and any(
            p.name.startswith(_TMP_PREFIX) or _DATA_RE.match(p.name) for p in root.iterdir()
        ):
            raise CacheCorruptError(
                f"{path} is missing: the directory holds a partly written or damaged index"
            ) from None
        raise
    manifest = read_tagged_json(
        raw, path, fmt=_FORMAT, version=FORMAT_VERSION, what="FaissIndex manifest"
    )
    claimed = manifest.pop("manifest_sha256", None)
    if claimed != sha256_json(manifest):
        raise CacheCorruptError(f"{path}: manifest checksum mismatch (altered or damaged)")
    for key, kind in (("token", str), ("generation", int), ("data_dir", str), ("dim", int)):
        if not isinstance(manifest.get(key), kind):
            raise CacheCorruptError(f"{path}: manifest field {key!r} is missing or invalid")
    if not _DATA_RE.match(manifest["data_dir"]):
        raise CacheCorruptError(f"{path}: manifest names an invalid data directory")
    return manifest


def _read_checked(data_dir: Path, fname: str, files: dict[str, Any]) -> bytes:
    rel = f"{data_dir.name}/{fname}"
    path = data_dir / fname
    expected = files.get(rel)
    if not isinstance(expected, dict):
        raise CacheCorruptError(f"{path}: not listed in the manifest")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _Vanished(f"{path} is missing") from None
    if len(data) != expected.get("size"):
        raise CacheCorruptError(
            f"{path}: size {len(data)} bytes, manifest says {expected.get('size')} "
            "(truncated or partly written)"
        )
    if hashlib.sha256(data).hexdigest() != expected.get("sha256"):
        raise CacheCorruptError(f"{path}: sha256 mismatch (the file is damaged)")
    return data


def _load_partition(
    index: FaissIndex,
    name: str,
    data_dir: Path,
    index_file: str,
    meta_file: str,
    blob: bytes,
    meta_bytes: bytes,
) -> _Partition:
    meta_path = data_dir / meta_file
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
        if meta["partition"] != name:
            raise ValueError(f"names partition {meta['partition']!r}, manifest says {name!r}")
        part = _Partition(index=None, next_id=int(meta["next_id"]))
        part.deleted = {int(i) for i in meta["deleted"]}
        for ident, key, payload in meta["entries"]:
            if not isinstance(key, str) or not isinstance(payload, str):
                raise ValueError("entry key and payload must be strings")
            json.loads(payload)
            part.ids[key] = int(ident)
            part.keys[int(ident)] = key
            part.payloads[int(ident)] = payload
        if len(part.ids) != len(part.keys):
            raise ValueError("duplicate keys or ids")
    except (UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CacheCorruptError(f"{meta_path}: invalid partition metadata ({exc})") from exc
    index_path = data_dir / index_file
    try:
        restored = faiss.deserialize_index(np.frombuffer(blob, dtype=np.uint8))
    except RuntimeError as exc:
        raise CacheCorruptError(f"{index_path}: faiss cannot read it ({exc})") from exc
    expected_kind = faiss.IndexHNSWFlat if index.hnsw else faiss.IndexFlatIP
    if not isinstance(restored, faiss.IndexIDMap2) or not isinstance(
        faiss.downcast_index(restored.index), expected_kind
    ):
        raise CacheCorruptError(f"{index_path}: not the faiss index type the manifest says")
    if restored.d != index.dim:
        raise CacheCorruptError(f"{index_path}: dimension {restored.d}, manifest says {index.dim}")
    stored_ids = set(faiss.vector_to_array(restored.id_map).tolist())
    if stored_ids != set(part.keys) | part.deleted:
        raise CacheCorruptError(f"{index_path}: its vector ids do not match {meta_path.name}")
    part.index = restored
    return part
