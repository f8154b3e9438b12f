"""FaissIndex specifics: HNSW tombstones, atomic checksummed saves, corruption, writers."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import REPO_ROOT

from langgraph_speculative.cache._model_files import sha256_json
from langgraph_speculative.cache.vectors import faiss_index as fi
from langgraph_speculative.cache.vectors.faiss_index import LOCK_FILE, MANIFEST_FILE, FaissIndex
from langgraph_speculative.errors import (
    CacheCorruptError,
    ConcurrentWriterError,
    EmbeddingDimensionError,
)


def filled(hnsw: bool = False, n: int = 60, dim: int = 8, seed: int = 0) -> FaissIndex:
    rng = np.random.default_rng(seed)
    index = FaissIndex(dim, hnsw=hnsw)
    for part in ("train.QUERY", "cookbook.QUERY"):
        vectors = rng.normal(size=(n, dim))
        index.add_many(
            part, [(f"{part}-{i}", v, {"i": i, "p": part}) for i, v in enumerate(vectors)]
        )
    return index


def snapshot(index: FaissIndex, dim: int = 8) -> list[list[tuple[str, float, str]]]:
    rng = np.random.default_rng(99)
    out = []
    for q in rng.normal(size=(10, dim)):
        for part in (None, "train.QUERY"):
            out.append(
                [
                    (h.key, round(h.score, 5), json.dumps(h.payload))
                    for h in index.search(q, partition=part, k=4)
                ]
            )
    return out


def data_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("data-*/*") if p.is_file())


# -- HNSW removal ----------------------------------------------------------------------------
def test_hnsw_removal_and_compaction() -> None:
    rng = np.random.default_rng(1)
    index = FaissIndex(8, hnsw=True)
    vectors = rng.normal(size=(300, 8))
    index.add_many("p", [(f"k{i}", v, None) for i, v in enumerate(vectors)])
    for i in range(200):
        assert index.remove("p", f"k{i}")
    part = index._parts["p"]
    assert part.index.ntotal < 300  # compacted: tombstones were dropped, not only hidden
    assert index.count("p") == 100
    for i in (200, 250, 299):
        assert index.search(vectors[i], partition="p")[0].key == f"k{i}"
    hits = index.search(vectors[5], partition="p", k=100)
    assert all(int(h.key[1:]) >= 200 for h in hits) and len(hits) == 100


# -- save / load ------------------------------------------------------------------------------
@pytest.mark.parametrize("hnsw", [False, True], ids=["flat", "hnsw"])
def test_save_load_round_trip(tmp_path: Path, hnsw: bool) -> None:
    index = filled(hnsw=hnsw)
    index.remove("train.QUERY", "train.QUERY-3")
    index.add("train.QUERY", "train.QUERY-4", np.ones(8), {"replaced": True})
    before = snapshot(index)
    target = index.save(tmp_path / "cache")
    again = FaissIndex.load(target)
    assert again.hnsw == hnsw and again.dim == 8 and again.directory == target
    assert again.count() == index.count() == 119
    assert again.partitions() == ["cookbook.QUERY", "train.QUERY"]
    assert snapshot(again) == before
    # ids keep counting after a load: new entries never collide with stored ones
    again.add("train.QUERY", "new", -np.ones(8), {"new": 1})
    assert again.search(-np.ones(8), partition="train.QUERY")[0].payload == {"new": 1}
    assert again.search(np.ones(8), partition="train.QUERY")[0].payload == {"replaced": True}


def test_manifest_lists_every_file_with_its_sha256(tmp_path: Path) -> None:
    target = filled().save(tmp_path / "cache")
    manifest = json.loads((target / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["format"] == "lgs-faiss-index" and manifest["version"] == fi.FORMAT_VERSION
    assert manifest["dim"] == 8 and manifest["generation"] == 1
    assert [p["name"] for p in manifest["partitions"]] == ["cookbook.QUERY", "train.QUERY"]
    files = data_files(target)
    assert len(files) == 4
    for path in files:
        entry = manifest["files"][f"{path.parent.name}/{path.name}"]
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["size"] == path.stat().st_size


def test_empty_index_round_trip(tmp_path: Path) -> None:
    FaissIndex(5).save(tmp_path / "c")
    again = FaissIndex.load(tmp_path / "c", dim=5)
    assert again.count() == 0 and again.partitions() == []


def test_resave_keeps_previous_snapshot_only(tmp_path: Path) -> None:
    index = filled()
    target = tmp_path / "c"
    for i in range(4):
        index.add("extra", f"e{i}", np.ones(8))
        index.save(target)
    data_dirs = sorted(p.name for p in target.glob("data-*"))
    assert len(data_dirs) == 2 and data_dirs[-1].startswith("data-00000004-")
    assert FaissIndex.load(target).count("extra") == 4


def test_save_needs_a_directory() -> None:
    with pytest.raises(ValueError, match="directory"):
        FaissIndex(3).save()


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FaissIndex.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        FaissIndex.load(tmp_path / "empty")
    filled().save(tmp_path / "c")
    with pytest.raises(EmbeddingDimensionError, match="dimension 8"):
        FaissIndex.load(tmp_path / "c", dim=16)


# -- corruption ------------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return filled().save(tmp_path / "cache")


@pytest.mark.parametrize("which", [".faiss", ".json"])
def test_truncated_file(saved: Path, which: str) -> None:
    victim = next(p for p in data_files(saved) if p.name.endswith(which))
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 3])
    with pytest.raises(CacheCorruptError, match=re.escape(victim.name)) as info:
        FaissIndex.load(saved)
    assert "truncated" in str(info.value)


@pytest.mark.parametrize("which", [".faiss", ".json"])
def test_flipped_byte(saved: Path, which: str) -> None:
    victim = next(p for p in data_files(saved) if p.name.endswith(which))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(CacheCorruptError, match=re.escape(f"{victim.name}: sha256 mismatch")):
        FaissIndex.load(saved)


def test_flipped_byte_in_manifest(saved: Path) -> None:
    path = saved / MANIFEST_FILE
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"dim": 8', '"dim": 9'), encoding="utf-8")
    with pytest.raises(CacheCorruptError, match=r"MANIFEST\.json: manifest checksum"):
        FaissIndex.load(saved)
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(CacheCorruptError, match="not valid JSON"):
        FaissIndex.load(saved)


def test_deleted_manifest(saved: Path) -> None:
    (saved / MANIFEST_FILE).unlink()
    with pytest.raises(CacheCorruptError, match=r"MANIFEST\.json is missing"):
        FaissIndex.load(saved)
    with pytest.raises(CacheCorruptError):  # open() does not silently start empty either
        FaissIndex.open(saved, dim=8)


def test_deleted_data_file(saved: Path) -> None:
    victim = data_files(saved)[0]
    victim.unlink()
    with pytest.raises(CacheCorruptError, match=re.escape(f"{victim.name} is missing")):
        FaissIndex.load(saved)


def test_other_version_or_format(saved: Path) -> None:
    path = saved / MANIFEST_FILE
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.pop("manifest_sha256")
    manifest["version"] = 99
    manifest["manifest_sha256"] = sha256_json(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(CacheCorruptError, match="version 99"):
        FaissIndex.load(saved)
    path.write_text(json.dumps({"format": "something-else"}), encoding="utf-8")
    with pytest.raises(CacheCorruptError, match="not a FaissIndex manifest"):
        FaissIndex.load(saved)


def test_stray_temp_dir_is_ignored_then_cleaned(saved: Path) -> None:
    stray = saved / ".tmp-deadbeefdeadbeef"
    stray.mkdir()
    (stray / "p00000.faiss").write_bytes(b"half written garbage")
    (saved / ".tmp-cafecafecafecafe.manifest").write_text("{", encoding="utf-8")
    index = FaissIndex.load(saved)
    assert index.count() == 120
    index.add("p", "k", np.ones(8))
    index.save()
    assert not list(saved.glob(".tmp-*"))
    assert FaissIndex.load(saved).count() == 121


def test_partly_written_first_save(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    (target / ".tmp-0123456789abcdef").mkdir(parents=True)
    with pytest.raises(CacheCorruptError, match="partly written"):
        FaissIndex.load(target)
    # nothing was ever published: open() starts empty and the next save cleans up
    index = FaissIndex.open(target, dim=4)
    assert index.count() == 0
    index.add("p", "k", [1, 0, 0, 0])
    index.save()
    assert FaissIndex.load(target).count() == 1


def test_manifest_naming_wrong_index_type(tmp_path: Path) -> None:
    target = filled(hnsw=True).save(tmp_path / "c")
    path = target / MANIFEST_FILE
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.pop("manifest_sha256")
    manifest["hnsw"] = False
    manifest["manifest_sha256"] = sha256_json(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(CacheCorruptError, match="index type"):
        FaissIndex.load(target)


# -- writers ---------------------------------------------------------------------------------
def test_lost_update_is_refused(saved: Path) -> None:
    a = FaissIndex.load(saved)
    b = FaissIndex.load(saved)
    a.add("p", "from-a", np.ones(8))
    a.save()
    b.add("p", "from-b", np.ones(8))
    with pytest.raises(ConcurrentWriterError, match="another writer saved generation 2"):
        b.save()
    assert {h.key for h in FaissIndex.load(saved).search(np.ones(8), partition="p", k=5)} == {
        "from-a"
    }
    b.save(force=True)
    assert {h.key for h in FaissIndex.load(saved).search(np.ones(8), partition="p", k=5)} == {
        "from-b"
    }
    a.add("p", "a2", np.ones(8))
    with pytest.raises(ConcurrentWriterError):
        a.save()


def test_fresh_index_does_not_clobber_a_saved_one(saved: Path) -> None:
    fresh = FaissIndex(8, directory=saved)
    with pytest.raises(ConcurrentWriterError, match="not loaded from"):
        fresh.save()
    opened = FaissIndex.open(saved, dim=8)
    assert opened.count() == 120
    opened.save()


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    for _ in range(3000):
        if path.exists():
            return
        if proc.poll() is not None:
            raise AssertionError(f"helper process died: {proc.communicate()}")
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {path}")


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    target.mkdir()
    holder = _python(
        """
        import fcntl, os, sys, time
        from pathlib import Path
        d = Path(sys.argv[1])
        fd = os.open(d / sys.argv[2], os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        (d.parent / "locked").touch()
        while not (d.parent / "release").exists():
            time.sleep(0.01)
        """,
        str(target),
        LOCK_FILE,
    )
    try:
        _wait_for(tmp_path / "locked", holder)
        index = filled()
        with pytest.raises(ConcurrentWriterError, match="another writer holds"):
            index.save(target, timeout=0.2)
        assert not (target / MANIFEST_FILE).exists()
        (tmp_path / "release").touch()
        index.save(target, timeout=30)  # waits for the holder to let go
    finally:
        (tmp_path / "release").touch()
        holder.wait(timeout=30)
    assert FaissIndex.load(target).count() == 120
    fd = os.open(target / LOCK_FILE, os.O_RDWR)
    try:  # the lock is free again once save returns
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


_SAVER = """
import sys, time
from pathlib import Path
import numpy as np
from langgraph_speculative.cache.vectors.faiss_index import FaissIndex
from langgraph_speculative.errors import ConcurrentWriterError
target, name, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
index = FaissIndex(8)
index.add_many(name, [(f"{name}{i}", np.full(8, i + 1.0) * np.arange(1, 9), {"w": name})
                      for i in range(50)])
(go.parent / f"ready-{name}").touch()
while not go.exists():
    time.sleep(0.001)
try:
    index.save(target, timeout=30)
    print("saved")
except ConcurrentWriterError as exc:
    print("conflict", exc)
"""


def test_two_processes_save_at_the_same_moment(tmp_path: Path) -> None:
    target, go = tmp_path / "cache", tmp_path / "go"
    procs = {name: _python(_SAVER, str(target), name, str(go)) for name in ("a", "b")}
    for name, proc in procs.items():
        _wait_for(tmp_path / f"ready-{name}", proc)
    go.touch()
    outcome = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outcome[name] = out.split()[0]
    assert sorted(outcome.values()) == ["conflict", "saved"]
    winner = next(name for name, result in outcome.items() if result == "saved")
    loaded = FaissIndex.load(target)
    assert loaded.partitions() == [winner] and loaded.count() == 50


_WRITER = """
import sys
from pathlib import Path
import numpy as np
from langgraph_speculative.cache.vectors.faiss_index import FaissIndex
target, rounds = Path(sys.argv[1]), int(sys.argv[2])
for i in range(rounds):
    index = FaissIndex.open(target, dim=8)
    index.add("p", f"k{i}", np.arange(1, 9) + i, {"round": i})
    index.save()
print("done")
"""


def test_readers_never_see_a_half_written_state(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    first = FaissIndex(8)
    first.add("p", "k-init", np.ones(8), {"round": -1})
    first.save(target)
    rounds = 15
    writer = _python(_WRITER, str(target), str(rounds))
    seen: set[int] = set()
    try:
        while writer.poll() is None:
            index = FaissIndex.load(target)  # must never raise while the writer works
            n = index.count("p")
            stored = {h.key for h in index.search(np.ones(8), partition="p", k=n)}
            assert stored == {"k-init"} | {f"k{i}" for i in range(n - 1)}
            seen.add(n)
    finally:
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0 and out.strip() == "done", err
    final = FaissIndex.load(target)
    assert final.count("p") == rounds + 1
    assert len(seen) >= 3  # the reader really ran while generations were being published


def test_reader_retries_when_a_writer_collects_its_snapshot(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = FaissIndex.load(saved)
    real = fi._read_checked
    raced: list[bool] = []

    def racing(data_dir: Path, fname: str, files: Any) -> bytes:
        if not raced:  # between reading the manifest and its files, two saves land
            raced.append(True)
            for i in range(2):
                writer.add("p", f"w{i}", np.ones(8))
                writer.save()
        return real(data_dir, fname, files)

    monkeypatch.setattr(fi, "_read_checked", racing)
    loaded = FaissIndex.load(saved)  # its snapshot was collected: it retries, never fails
    assert raced and loaded.count("p") == 2 and loaded.count() == 122
