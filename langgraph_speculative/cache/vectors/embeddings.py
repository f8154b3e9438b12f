"""Embedders of stripped requests: an offline character n-gram default and local Hugging Face.

The plan cache embeds *stripped* requests (parameters replaced by typed placeholders such
as ``<endLoc_city>``; mostly short Chinese text) and searches them by cosine. Two
LangChain :class:`~langchain_core.embeddings.Embeddings` are offered:

* :class:`NgramEmbeddings`: the default that works on a fresh machine, pure numpy, tens
  of microseconds per request. Character n-grams (a placeholder counts as one character),
  hashed with a stable hash into ``dim`` signed buckets, sublinear TF, optional IDF
  learned by :meth:`NgramEmbeddings.fit`, L2-normalised float32. Deterministic across
  processes and machines; :meth:`~NgramEmbeddings.save` / :meth:`~NgramEmbeddings.load`
  keep a fitted one (JSON, checksummed, no pickle).
* :func:`local_huggingface_embeddings`: a sentence-transformers model loaded **only** from
  a local directory (never from a hub).

:func:`embedding_dimension` tells the dimension of any embedder (it embeds one probe).

Example:
    ```python
    import numpy as np

    from langgraph_speculative.cache.vectors.embeddings import NgramEmbeddings, embedding_dimension

    emb = NgramEmbeddings(dim=256)
    train = np.array(emb.embed_query("<startLoc_city>到<endLoc_city>的火车票"))
    rail = np.array(emb.embed_query("从<startLoc_city>去<endLoc_city>的高铁票"))
    dish = np.array(emb.embed_query("<dishName>怎么做"))
    assert embedding_dimension(emb) == 256
    assert abs(float(train @ train) - 1.0) < 1e-5  # unit length: cosine = inner product
    assert float(train @ rail) > float(train @ dish) + 0.2
    ```
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from numpy.typing import NDArray

from langgraph_speculative.cache._model_files import read_tagged_json, sha256_json
from langgraph_speculative.errors import (
    CacheCorruptError,
    EmbeddingDimensionError,
    NotFittedError,
    RequestError,
)

__all__ = [
    "PLACEHOLDER_PATTERN",
    "NgramEmbeddings",
    "embedding_dimension",
]

PLACEHOLDER_PATTERN = re.compile(r"<[^<>\s]{1,64}>")
"""A typed placeholder of a stripped request (``<endLoc_city>``): one token for n-grams."""

_FORMAT = "lgs-ngram-embeddings"
_FORMAT_VERSION = 1
_HASH_PERSON = b"lgs-ngram-v1"  # personalises blake2b: changing it changes every vector
_HASH_CACHE_LIMIT = 1 << 18
_NGRAM_JOIN = "\x1f"


def _is_word_char(unit: str) -> bool:
    """A non-CJK letter or digit: a space between two of them separates words."""
    return len(unit) == 1 and unit.isalnum() and ord(unit) < 0x2E80


class NgramEmbeddings(Embeddings):
    """Hashed character n-gram embeddings (pure numpy, offline, deterministic).

    A text is NFKC-normalised and case-folded; punctuation is dropped; whitespace is kept
    only between two non-CJK letters or digits (it separates words there and is noise in
    Chinese). Each placeholder (``<dishName>``) is one unit. Every n-gram of units with
    ``n`` in ``ngram_range`` is hashed with BLAKE2b (stable across processes, unlike
    :func:`hash`) to a bucket in ``[0, dim)`` and a sign (signed hashing: collisions
    cancel instead of inflating similarity). Its weight is ``1 + ln(tf)`` (sublinear TF)
    or ``tf``, times the bucket's IDF once :meth:`fit` has run. Vectors are L2-normalised
    float32, so cosine similarity is the inner product.

    Calling :meth:`fit` (or passing ``use_idf=True`` and then fitting) changes every
    vector: re-embed what an index holds after refitting (:attr:`fingerprint` tells two
    configurations apart).

    Example:
        ```python
        import tempfile
        from pathlib import Path

        from langgraph_speculative.cache.vectors.embeddings import NgramEmbeddings

        emb = NgramEmbeddings(dim=512, use_idf=True).fit(
            ["<dishName>怎么做", "<dishName>的做法", "<city>的天气", "<city>明天天气怎么样"]
        )
        path = Path(tempfile.mkdtemp()) / "ngram.json"
        emb.save(path)
        again = NgramEmbeddings.load(path)
        assert again.fingerprint == emb.fingerprint
        assert again.embed_query("<dishName>怎么做") == emb.embed_query("<dishName>怎么做")
        ```
    """

    def __init__(
        self,
        *,
        dim: int = 256,
        ngram_range: tuple[int, int] = (1, 3),
        sublinear_tf: bool = True,
        use_idf: bool = False,
        max_chars: int = 2048,
    ) -> None:
        """Create an embedder.

        Args:
            dim: Number of hash buckets, i.e. the vector dimension (>= 8).
            ngram_range: Smallest and largest n-gram length, ``1 <= lo <= hi <= 8``.
            sublinear_tf: Weight an n-gram by ``1 + ln(count)`` instead of its count.
            use_idf: Require IDF weights: embedding raises :class:`NotFittedError` until
                :meth:`fit` (or :meth:`load` of a fitted one). :meth:`fit` turns IDF on
                in any case.
            max_chars: Longest accepted text; longer ones raise :class:`RequestError`.

        Raises:
            ValueError: A parameter is out of range.
        """
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 8:
            raise ValueError(f"dim must be an int >= 8, got {dim!r}")
        lo, hi = ngram_range
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi <= 8):
            raise ValueError(
                f"ngram_range must be (lo, hi) with 1 <= lo <= hi <= 8, got {ngram_range!r}"
            )
        if not isinstance(max_chars, int) or max_chars < 1:
            raise ValueError(f"max_chars must be a positive int, got {max_chars!r}")
        self._dim = dim
        self._ngram_range = (lo, hi)
        self._sublinear_tf = bool(sublinear_tf)
        self._use_idf = bool(use_idf)
        self._max_chars = max_chars
        self._idf: NDArray[np.float32] | None = None
        self._n_docs = 0
        self._buckets: dict[str, tuple[int, float]] = {}

    # -- properties -----------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """The vector dimension (number of hash buckets)."""
        return self._dim

    @property
    def ngram_range(self) -> tuple[int, int]:
        """Smallest and largest n-gram length."""
        return self._ngram_range

    @property
    def is_fitted(self) -> bool:
        """Whether IDF weights were learned (by :meth:`fit` or loaded)."""
        return self._idf is not None

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of everything that decides the vectors: equal means same vectors."""
        digest = hashlib.sha256(json.dumps(self._config(), sort_keys=True).encode("utf-8"))
        if self._idf is not None:
            digest.update(self._idf.tobytes())
        return digest.hexdigest()

    # -- text to units to n-grams ---------------------------------------------------------
    def units(self, text: str) -> list[str]:
        """Split a text into the units its n-grams are made of (after normalisation).

        Args:
            text: The (stripped) request.

        Returns:
            Units: single characters, ``" "`` between two words, and whole placeholders.

        Raises:
            RequestError: ``text`` is not a string, is blank, is longer than ``max_chars``
                or has nothing left after normalisation (only punctuation).
        """
        if not isinstance(text, str):
            raise RequestError(f"text to embed must be a str, got {type(text).__name__}")
        if len(text) > self._max_chars:
            raise RequestError(
                f"text to embed is {len(text)} chars long; the limit is {self._max_chars}"
            )
        if not text.strip():
            raise RequestError("text to embed is empty or blank")
        raw: list[str] = []
        pos = 0
        for match in PLACEHOLDER_PATTERN.finditer(text):
            self._char_units(text[pos : match.start()], raw)
            raw.append(match.group(0))
            pos = match.end()
        self._char_units(text[pos:], raw)
        units: list[str] = []
        for i, unit in enumerate(raw):
            if unit == " ":
                if (
                    units
                    and _is_word_char(units[-1])
                    and i + 1 < len(raw)
                    and _is_word_char(raw[i + 1])
                ):
                    units.append(" ")
                continue
            units.append(unit)
        if not units:
            raise RequestError(f"text to embed has no content after normalisation: {text!r}")
        return units

    @staticmethod
    def _char_units(chunk: str, out: list[str]) -> None:
        for ch in unicodedata.normalize("NFKC", chunk).casefold():
            if ch.isspace():
                if not out or out[-1] != " ":
                    out.append(" ")
            elif not unicodedata.category(ch).startswith("P"):
                out.append(ch)

    def _ngrams(self, units: Sequence[str]) -> Counter[str]:
        lo, hi = self._ngram_range
        grams: Counter[str] = Counter()
        size = len(units)
        for n in range(lo, min(hi, size) + 1):
            for i in range(size - n + 1):
                grams[_NGRAM_JOIN.join(units[i : i + n])] += 1
        return grams

    def _bucket(self, gram: str) -> tuple[int, float]:
        hit = self._buckets.get(gram)
        if hit is None:
            digest = hashlib.blake2b(
                gram.encode("utf-8"), digest_size=8, person=_HASH_PERSON
            ).digest()
            value = int.from_bytes(digest, "little")
            hit = (value % self._dim, 1.0 if value >> 63 else -1.0)
            if len(self._buckets) >= _HASH_CACHE_LIMIT:
                self._buckets.clear()
            self._buckets[gram] = hit
        return hit

    # -- embedding --------------------------------------------------------------------------
    def embed_query_array(self, text: str) -> NDArray[np.float32]:
        """Embed one text as a float32 numpy vector of unit length.

        Args:
            text: The (stripped) request.

        Returns:
            A ``(dim,)`` float32 array with L2 norm 1.

        Raises:
            RequestError: The text is unusable (see :meth:`units`).
            NotFittedError: ``use_idf=True`` and :meth:`fit` was not called.
        """
        if self._use_idf and self._idf is None:
            raise NotFittedError(
                "NgramEmbeddings(use_idf=True) must be fitted (fit(texts)) or loaded before use"
            )
        grams = self._ngrams(self.units(text))
        idx = np.empty(len(grams), dtype=np.intp)
        weights = np.empty(len(grams), dtype=np.float64)
        for j, (gram, count) in enumerate(grams.items()):
            bucket, sign = self._bucket(gram)
            idx[j] = bucket
            tf = 1.0 + math.log(count) if self._sublinear_tf else float(count)
            weights[j] = sign * tf
        vec = np.bincount(idx, weights=weights, minlength=self._dim).astype(np.float64)
        if self._idf is not None:
            vec *= self._idf
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:  # every n-gram cancelled out: astronomically unlikely
            raise RequestError(f"text {text!r} hashed to the zero vector; cannot embed it")
        return (vec / norm).astype(np.float32)

    def embed_documents_array(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed several texts as one ``(len(texts), dim)`` float32 matrix.

        Args:
            texts: The (stripped) requests.

        Returns:
            One unit-length row per text.

        Raises:
            RequestError: A text is unusable; the message names its position.
            NotFittedError: ``use_idf=True`` and :meth:`fit` was not called.
        """
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            try:
                out[i] = self.embed_query_array(text)
            except RequestError as exc:
                raise RequestError(f"texts[{i}]: {exc}") from exc
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed several texts (LangChain interface).

        Args:
            texts: The (stripped) requests.

        Returns:
            One unit-length vector per text.
        """
        result: list[list[float]] = self.embed_documents_array(texts).tolist()
        return result

    def embed_query(self, text: str) -> list[float]:
        """Embed one text (LangChain interface).

        Args:
            text: The (stripped) request.

        Returns:
            A unit-length vector of ``dim`` floats.
        """
        result: list[float] = self.embed_query_array(text).tolist()
        return result

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents`: runs inline (microseconds; no thread hop).

        Args:
            texts: The (stripped) requests.

        Returns:
            One unit-length vector per text.
        """
        return self.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query`: runs inline (microseconds; no thread hop).

        Args:
            text: The (stripped) request.

        Returns:
            A unit-length vector of ``dim`` floats.
        """
        return self.embed_query(text)

    # -- IDF ------------------------------------------------------------------------------
    def fit(self, texts: Iterable[str]) -> NgramEmbeddings:
        """Learn IDF weights of the hash buckets from a corpus and turn IDF weighting on.

        ``idf = ln((1 + N) / (1 + df)) + 1`` per bucket (smoothed, never zero), where
        ``df`` counts the texts that have an n-gram in the bucket.

        Args:
            texts: The training texts (stripped requests), at least one.

        Returns:
            ``self``, fitted.

        Raises:
            RequestError: No text was given, or a text is unusable (named by position).
        """
        df = np.zeros(self._dim, dtype=np.float64)
        n_docs = 0
        for i, text in enumerate(texts):
            try:
                grams = self._ngrams(self.units(text))
            except RequestError as exc:
                raise RequestError(f"fit: texts[{i}]: {exc}") from exc
            buckets = {self._bucket(gram)[0] for gram in grams}
            df[list(buckets)] += 1.0
            n_docs += 1
        if n_docs == 0:
            raise RequestError("fit needs at least one text")
        self._idf = (np.log((1.0 + n_docs) / (1.0 + df)) + 1.0).astype(np.float32)
        self._n_docs = n_docs
        self._use_idf = True
        return self

    # -- persistence ------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {
            "dim": self._dim,
            "ngram_range": list(self._ngram_range),
            "sublinear_tf": self._sublinear_tf,
            "use_idf": self._use_idf,
            "max_chars": self._max_chars,
            "hash": _HASH_PERSON.decode("ascii"),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the configuration and IDF weights to a JSON file, atomically.

        The file carries a format tag, a version and a SHA-256 of its content, so a
        damaged file is refused by :meth:`load`. It is written to a temporary file beside
        the target, fsynced, then renamed over it.

        Args:
            path: The file to write (its parent directory must exist).

        Returns:
            The path written.
        """
        target = Path(path)
        body: dict[str, Any] = {
            "config": self._config(),
            "n_docs": self._n_docs,
            "idf": None if self._idf is None else [float(x) for x in self._idf],
        }
        doc = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "sha256": sha256_json(body),
            **body,
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, ensure_ascii=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NgramEmbeddings:
        """Read an embedder written by :meth:`save`.

        Args:
            path: The JSON file.

        Returns:
            An embedder that gives exactly the vectors the saved one gave.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            CacheCorruptError: The file is damaged, truncated, not ours or of another
                version (the message names the file and what failed).
        """
        source = Path(path)
        doc = read_tagged_json(
            source.read_bytes(),
            source,
            fmt=_FORMAT,
            version=_FORMAT_VERSION,
            what="saved NgramEmbeddings",
        )
        body: dict[str, Any] = {k: doc.get(k) for k in ("config", "n_docs", "idf")}
        if doc.get("sha256") != sha256_json(body):
            raise CacheCorruptError(
                f"{source}: checksum mismatch (the file was altered or damaged)"
            )
        try:
            config = body["config"]
            emb = cls(
                dim=config["dim"],
                ngram_range=(config["ngram_range"][0], config["ngram_range"][1]),
                sublinear_tf=config["sublinear_tf"],
                use_idf=config["use_idf"],
                max_chars=config["max_chars"],
            )
            if config["hash"] != _HASH_PERSON.decode("ascii"):
                raise ValueError(f"hash {config['hash']!r} is not {_HASH_PERSON.decode()!r}")
            idf = body["idf"]
            if idf is not None:
                arr = np.asarray(idf, dtype=np.float32)
                if arr.shape != (emb.dim,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
                    raise ValueError("idf must be dim positive finite numbers")
                emb._idf = arr
                emb._n_docs = int(body["n_docs"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise CacheCorruptError(f"{source}: invalid content ({exc})") from exc
        return emb


def embedding_dimension(embeddings: Embeddings) -> int:
    """Tell the dimension of an embedder's vectors by embedding one probe text.

    Args:
        embeddings: Any LangChain embedder.

    Returns:
        The length of its query vectors.

    Raises:
        EmbeddingDimensionError: The embedder returned an empty vector.
    """
    vector = embeddings.embed_query("dimension probe 维度探测")
    size = len(vector)
    if size == 0:
        raise EmbeddingDimensionError(f"{type(embeddings).__name__} returned an empty vector")
    return size
