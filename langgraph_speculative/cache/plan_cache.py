"""The plan cache: classify, strip, search within the intent, fill (AgentReuse).

A request goes through five cheap stages before any LLM is asked:

1. **classify** its intent (:class:`IntentClassifier`; ``None`` = unknown intent);
2. **extract** its parameters and **strip** them (typed placeholders such as
   ``<endLoc_city>``), so "后天从合肥到北京的火车票" and "明天长沙到上海的火车票" read alike;
3. **embed** the stripped text (any LangChain ``Embeddings``);
4. **search** the vector index *within the intent's partition* (cosine);
5. on a hit at or above the intent's threshold, **fill** the cached plan template with
   the new request's parameters.

On a miss the caller plans (an LLM planner) and :meth:`PlanCache.store` keeps the plan as a
template. Requests of unknown intent are not dropped: they are matched against plans of
*induced* intents (:mod:`~langgraph_speculative.cache.intent.induction`), and the induced
intents are learned online (:class:`~langgraph_speculative.cache.intent.classifier.LearnedIntents`,
refitted inside :meth:`PlanCache.store`), so a new task type is recognised after a couple
of planned requests.

A hit is never served when it cannot be filled: a template that needs a parameter the new
request does not have is a miss (``miss_reason`` says which), not a wrong plan.

A multi-valued slot (given a list in training, such as the two teams of a match: see
:meth:`ParameterExtractor.multi_valued`) fills a plan with all of the request's values
of that slot, in text order, as a list (:meth:`Plan.fill` puts the list in an input that
is exactly its reference, and joins the values with ``", "`` inside a longer string);
so does a slot whose cached template was abstracted from a list. Any other slot found
more than once fills with its first value.

Example:
    ```python
    from langgraph_speculative.cache import PlanCache, Plan, PlanStep
    from langgraph_speculative.cache.training_data import LabelledRequest, check_request

    examples = [
        LabelledRequest(f"{a}到{b}的火车票", "train", "QUERY", {"startLoc_city": a,
                                                                "endLoc_city": b})
        for a, b in [("合肥", "北京"), ("长沙", "上海"), ("广州", "深圳"), ("南京", "杭州")]
    ] + [
        LabelledRequest(f"{d}怎么做", "cookbook", "QUERY", {"dishName": d})
        for d in ["糖醋排骨", "红烧肉", "宫保鸡丁", "麻婆豆腐"]
    ]
    cache = PlanCache.from_examples(examples)

    first = cache.lookup("合肥到北京的火车票")
    assert first.hit is None  # the cache is empty: plan it, then store the plan
    plan = Plan(
        parameters=["startLoc_city", "endLoc_city"],
        steps=[PlanStep(id="s1", description="search trains", tool="search_trains",
                        inputs={"from": "{param:startLoc_city}", "to": "{param:endLoc_city}"},
                        output="trains")],
    )
    cache.store(first, plan)

    again = cache.lookup("长沙到上海的火车票")
    assert again.hit is not None
    assert again.hit.plan.steps[0].inputs == {"from": "长沙", "to": "上海"}
    ```
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from langgraph_speculative.cache._model_files import read_tagged_json
from langgraph_speculative.cache.intent.classifier import IntentClassifier, IntentPrediction
from langgraph_speculative.cache.intent.induction import IntentInducer
from langgraph_speculative.cache.intent.learned import LearnedIntents
from langgraph_speculative.cache.parameters.extractor import Parameter, ParameterExtractor
from langgraph_speculative.cache.plans.plan import ParameterValue, Plan
from langgraph_speculative.cache.training_data import LabelledRequest, check_request
from langgraph_speculative.cache.vectors.backends import open_vector_index
from langgraph_speculative.cache.vectors.embeddings import NgramEmbeddings
from langgraph_speculative.cache.vectors.vector_index import VectorHit, VectorIndex
from langgraph_speculative.errors import (
    CacheCorruptError,
    EmbeddingDimensionError,
    MissingParameterError,
    PlanValidationError,
    RequestError,
)

__all__ = ["ALL_PARTITION", "CacheHit", "CacheLookup", "PlanCache"]

ALL_PARTITION = "__all__"
"""The single partition used when intent gating is off (the baselines without it)."""

_FORMAT = "langgraph-speculative/plan-cache"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class CacheHit:
    """A cached plan chosen for a request.

    Attributes:
        key: The entry's key in the vector index.
        partition: The partition it was found in (the intent, or the induced partition).
        score: Cosine similarity between the stripped request and the entry.
        template: The cached plan, with ``{param:...}`` placeholders.
        plan: The template filled with the request's parameters (ready to run).
        payload: The entry's stored payload (``label``, ``stripped``, ``induced``, ...).
    """

    key: str
    partition: str
    score: float
    template: Plan
    plan: Plan
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CacheLookup:
    """What the cache made of one request: its intent, parameters, and the hit if any.

    Attributes:
        request: The request as given.
        intent: The classifier's prediction (``None`` when intent gating is off). When a
            learned intent (:attr:`PlanCache.learned_intents`) beats the known ones, its
            label and probability lead ``top``, followed by the classifier's known intents.
        parameters: The parameters recognised in the request, in text order.
        stripped: The request with its parameters replaced by typed placeholders (the
            request itself when stripping is off).
        partition: The partition searched (and where :meth:`PlanCache.store` puts a plan).
        threshold: The similarity a hit needed.
        hit: The reused plan, or ``None`` on a miss.
        miss_reason: Why there is no hit (``None`` on a hit).
        timings_ms: Milliseconds spent per stage (classify, extract, embed, search, fill).
        vector: The embedding of ``stripped`` (reused by :meth:`PlanCache.store`).
        multi_valued: The slots of ``parameters`` that are multi-valued for the request's
            intent (:meth:`ParameterExtractor.multi_valued`): they fill a plan with a
            list when the request has several values of them.
    """

    request: str
    intent: IntentPrediction | None
    parameters: tuple[Parameter, ...]
    stripped: str
    partition: str
    threshold: float
    hit: CacheHit | None
    miss_reason: str | None
    timings_ms: Mapping[str, float]
    vector: np.ndarray = field(repr=False, compare=False)
    multi_valued: frozenset[str] = frozenset()

    @property
    def values(self) -> dict[str, ParameterValue]:
        """The parameters as plans and planners take them: ``{slot: value or [values]}``.

        A slot of :attr:`multi_valued` found more than once gives the list of its values
        in text order (``{"name": ["湖人", "勇士"]}``); any other slot its first value.
        """
        return _slot_values(self.parameters, self.multi_valued)

    @property
    def overhead_ms(self) -> float:
        """Total time the lookup took, in milliseconds."""
        return float(sum(self.timings_ms.values()))


class PlanCache:
    """A semantic cache of structured plans, searched within the request's intent.

    Args:
        embeddings: Embeds stripped requests (any LangChain ``Embeddings``; vectors are
            L2-normalised here, so inner product is cosine).
        index: The vector back-end (faiss by default, in memory); see
            :func:`~langgraph_speculative.cache.vectors.backends.open_vector_index`.
        classifier: The intent classifier; required when ``intent_gating`` is on.
        extractor: The parameter extractor; required when ``strip_parameters`` is on.
        thresholds: Per-intent similarity thresholds (see :meth:`calibrate`).
        default_threshold: Threshold of intents without their own (0.75, AgentReuse's).
        intent_gating: Search only the request's intent partition (off: one partition).
        strip_parameters: Embed the request with parameters replaced by placeholders.
        inducer: How requests of unknown intent reuse induced plans; ``None`` turns
            induction off (unknown intents then always miss, as in AgentReuse). With its
            ``learn`` on, induced intents are learned online (see :attr:`learned_intents`).
        max_request_chars: Longer requests raise :class:`RequestError`.
        fill_missing: Value given to a cached plan's parameters the new request lacks
            (for optional slots). ``None`` (default): such a hit is a miss instead, and
            the planner is asked: a plan is never run with a parameter it did not get.
        min_confidence: Least classifier confidence for a known intent; ``None`` uses the
            classifier's own calibrated threshold. The cache can afford a lower one than a
            classifier alone, since a hit also needs a similar entry in that intent.
        confident_threshold: The similarity a hit needs when the classifier alone vouches
            for the intent (confidence at or above its own stand-alone threshold): the
            intent's plan is then reused from its nearest entry unless the two share
            almost nothing. ``None``: the intent's calibrated threshold applies always.

    Raises:
        ValueError: A component required by the chosen flags is missing, or a threshold
            is outside (0, 1].
    """

    def __init__(
        self,
        *,
        embeddings: Embeddings,
        index: VectorIndex | None = None,
        classifier: IntentClassifier | None = None,
        extractor: ParameterExtractor | None = None,
        thresholds: Mapping[str, float] | None = None,
        default_threshold: float = 0.75,
        intent_gating: bool = True,
        strip_parameters: bool = True,
        inducer: IntentInducer | None = None,
        max_request_chars: int = 2000,
        fill_missing: str | None = None,
        min_confidence: float | None = None,
        confident_threshold: float | None = 0.05,
    ) -> None:
        if intent_gating and classifier is None:
            raise ValueError("intent_gating needs a classifier")
        if strip_parameters and extractor is None:
            raise ValueError("strip_parameters needs an extractor")
        if max_request_chars < 1:
            raise ValueError(f"max_request_chars must be >= 1, got {max_request_chars}")
        self.embeddings = embeddings
        self.classifier = classifier
        self.extractor = extractor
        self.intent_gating = intent_gating
        self.strip_parameters = strip_parameters
        self.inducer = inducer if intent_gating else None
        self.max_request_chars = max_request_chars
        self.fill_missing = fill_missing
        self.min_confidence = min_confidence
        self.confident_threshold = (
            None
            if confident_threshold is None
            else _check_threshold("confident_threshold", confident_threshold)
        )
        self.default_threshold = _check_threshold("default_threshold", default_threshold)
        self.thresholds = {k: _check_threshold(k, v) for k, v in (thresholds or {}).items()}
        self._dim: int | None = index.dim if index is not None else None
        self._index = index
        self._learned: LearnedIntents | None = None
        if (
            self.inducer is not None
            and self.inducer.learn
            and classifier is not None
            and classifier.is_fitted
        ):
            self._learned = LearnedIntents(
                classifier, C=self.inducer.learned_C, min_examples=self.inducer.learned_min_examples
            )
        self._known_signatures: set[str] = set()  # plan shapes stored under known intents
        # per known intent, the shapes of the plans made for requests searched there
        self._intent_shapes: dict[str, Counter[str]] = {}
        self._learn_lock = threading.Lock()

    @property
    def learned_intents(self) -> LearnedIntents | None:
        """The induced intents learned online from stored plans (``None`` when off).

        Each plan stored for a request of no known intent adds the request, labelled with
        the plan's shape, unless that shape was stored under a known intent. The model is
        refitted inside :meth:`store` (synchronously; :meth:`astore` runs it in a worker
        thread) once the label has ``inducer.learned_min_examples`` requests.
        """
        return self._learned

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_examples(
        cls,
        examples: Sequence[LabelledRequest],
        *,
        gazetteers: Mapping[str, Any] | None = None,
        embeddings: Embeddings | None = None,
        classifier: IntentClassifier | None = None,
        backend: str = "faiss",
        backend_options: Mapping[str, Any] | None = None,
        calibrate: bool = True,
        intent_precision: float = 0.97,
        **options: Any,
    ) -> PlanCache:
        """Train the pipeline from labelled requests and open an empty cache.

        Fits the parameter extractor (slot values, gazetteers), the intent classifier, the
        default embedder's IDF (on stripped training requests) and, when ``calibrate``,
        the per-intent thresholds (:meth:`calibrate`).

        Args:
            examples: Labelled requests (``text``, ``domain``, ``intent``, ``slots``).
            gazetteers: Named lists of known values (see :class:`ParameterExtractor`).
            embeddings: The embedder; the offline :class:`NgramEmbeddings` by default.
            classifier: The intent classifier to fit on ``examples`` (for example one
                that reads a local Hugging Face model: ``IntentClassifier(embeddings=
                local_huggingface_embeddings(path))``); ``IntentClassifier()`` by default.
            backend: ``"faiss"`` (default) or ``"pgvector"``.
            backend_options: Options of the back-end (``directory``, ``dsn``, ``table``).
            calibrate: Calibrate per-intent thresholds on the examples.
            intent_precision: Out-of-fold accuracy the classifier's top intent must reach
                for the cache to search its partition; sets ``min_confidence`` (see
                :meth:`IntentClassifier.confidence_for_precision`) unless given.
            **options: Further :class:`PlanCache` arguments (``default_threshold``, ...).

        Returns:
            The cache, empty, ready for :meth:`lookup` and :meth:`store`.

        Raises:
            RequestError: If ``examples`` is empty.
        """
        if not examples:
            raise RequestError("from_examples needs at least one labelled request")
        extractor = ParameterExtractor(gazetteers=gazetteers)
        extractor.fit(examples)
        classifier = classifier if classifier is not None else IntentClassifier()
        classifier.fit(examples, extractor=extractor)
        if embeddings is None:
            ngram = NgramEmbeddings()
            ngram.fit([extractor.extract_and_strip(e.text)[1] for e in examples])
            embeddings = ngram
        options.setdefault("inducer", IntentInducer())
        if "min_confidence" not in options:
            # The similarity gate and the filing rule (see _store_partition) guard against
            # unseen intents, so the cache needs only a confidence at which the top intent
            # is right often enough, measured out of fold on the examples.
            options["min_confidence"] = classifier.confidence_for_precision(intent_precision)
        dim = len(embeddings.embed_query("dimension probe"))
        index = open_vector_index(backend, dim=dim, **dict(backend_options or {}))
        cache = cls(
            embeddings=embeddings,
            index=index,
            classifier=classifier,
            extractor=extractor,
            **options,
        )
        if calibrate:
            cache.calibrate(examples)
        return cache

    def empty_copy(self, index: VectorIndex | None = None) -> PlanCache:
        """A cache with the same models and settings and no entries (nor learned intents).

        Args:
            index: The new cache's vector back-end (a new in-memory faiss index of the
                same dimension when omitted).

        Returns:
            The new, empty cache (models are shared, not copied).
        """
        return PlanCache(
            embeddings=self.embeddings,
            index=index if index is not None else open_vector_index("faiss", dim=self.index.dim),
            classifier=self.classifier,
            extractor=self.extractor,
            thresholds=self.thresholds,
            default_threshold=self.default_threshold,
            intent_gating=self.intent_gating,
            strip_parameters=self.strip_parameters,
            inducer=self.inducer,
            max_request_chars=self.max_request_chars,
            fill_missing=self.fill_missing,
            min_confidence=self.min_confidence,
            confident_threshold=self.confident_threshold,
        )

    # -- lookup -------------------------------------------------------------------------
    def threshold_for(self, partition: str) -> float:
        """The similarity a hit in ``partition`` needs."""
        if self.inducer is not None and partition == self.inducer.partition:
            return self.inducer.threshold
        return self.thresholds.get(partition, self.thresholds.get("*", self.default_threshold))

    def lookup(self, request: str) -> CacheLookup:
        """Classify, strip, embed, search and fill: the cache's answer for ``request``.

        Args:
            request: The user's request.

        Returns:
            The lookup; ``lookup.hit`` holds the filled plan on a hit.

        Raises:
            RequestError: If the request is not a string, is blank, or is too long.
            EmbeddingDimensionError: If the embedder's vectors do not fit the index.
        """
        timings: dict[str, float] = {}
        intent, parameters, stripped, partition, multi = self._analyse(request, timings)
        t0 = time.perf_counter()
        vector = self._embed(self.embeddings.embed_query(stripped))
        timings["embed"] = _ms_since(t0)
        hits: list[VectorHit] = []
        if partition:
            t0 = time.perf_counter()
            hits = self.index.search(vector, partition=partition, k=self._k(partition, intent))
            timings["search"] = _ms_since(t0)
        return self._decide(
            request, intent, parameters, stripped, partition, vector, hits, timings, multi
        )

    async def alookup(self, request: str) -> CacheLookup:
        """Async :meth:`lookup` (embedding and search may leave the event loop)."""
        timings: dict[str, float] = {}
        if self.classifier is not None and self.classifier.embeddings is not None:
            # the classifier runs a model of its own: off the event loop
            analysed = await asyncio.to_thread(self._analyse, request, timings)
        else:
            analysed = self._analyse(request, timings)
        intent, parameters, stripped, partition, multi = analysed
        t0 = time.perf_counter()
        vector = self._embed(await self.embeddings.aembed_query(stripped))
        timings["embed"] = _ms_since(t0)
        hits: list[VectorHit] = []
        if partition:
            t0 = time.perf_counter()
            hits = await self.index.asearch(
                vector, partition=partition, k=self._k(partition, intent)
            )
            timings["search"] = _ms_since(t0)
        return self._decide(
            request, intent, parameters, stripped, partition, vector, hits, timings, multi
        )

    # -- storing ------------------------------------------------------------------------
    def store(self, lookup: CacheLookup, plan: Plan) -> str:
        """Keep ``plan`` (the planner's answer to a missed request) for later reuse.

        The plan is turned into a template first: the request's parameter values in its
        inputs become ``{param:slot}`` references (:attr:`CacheLookup.values`:
        an input equal to a multi-valued slot's list of values becomes its reference, and
        the template then fills that slot with a list even from one value).

        Args:
            lookup: The (missed) lookup of the request the plan answers.
            plan: The planner's plan, concrete or already a template.

        Returns:
            The new entry's key.
        """
        key, partition, vector, payload = self._entry(lookup, plan)
        self.index.add(partition, key, vector, payload)
        self._learn(lookup, partition, payload)
        return key

    async def astore(self, lookup: CacheLookup, plan: Plan) -> str:
        """Async :meth:`store`."""
        key, partition, vector, payload = self._entry(lookup, plan)
        await self.index.aadd(partition, key, vector, payload)
        await asyncio.to_thread(self._learn, lookup, partition, payload)
        return key

    # -- thresholds ---------------------------------------------------------------------
    def calibrate(self, examples: Sequence[LabelledRequest], **options: Any) -> dict[str, float]:
        """Calibrate per-intent thresholds on labelled requests and use them.

        See :func:`~langgraph_speculative.cache.thresholds.calibrate_thresholds`.

        Returns:
            The thresholds, by intent label.
        """
        from langgraph_speculative.cache.thresholds import calibrate_thresholds

        if not self.intent_gating:
            return {}
        self.thresholds = calibrate_thresholds(self, examples, **options)
        return dict(self.thresholds)

    # -- persistence --------------------------------------------------------------------
    @property
    def index(self) -> VectorIndex:
        """The vector back-end (a faiss index in memory unless one was given)."""
        if self._index is None:
            dim = len(self.embeddings.embed_query("dimension probe"))
            self._index = open_vector_index("faiss", dim=dim)
            self._dim = dim
        return self._index

    def save(self, directory: str | Path) -> None:
        """Save the pipeline's models and settings (atomically) to ``directory``.

        The learned intents are saved as their examples (``learned.json``) and refitted
        by :meth:`load`.

        The vector entries are saved by the back-end itself (faiss: ``index.save``;
        pgvector: already in the database). The directory is written beside the target
        and renamed into place, so a crash never leaves it half written.

        Raises:
            TypeError: If the embedder or a model cannot be saved.
        """
        target = Path(directory)
        tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        try:
            embeddings = self.embeddings
            if not isinstance(embeddings, NgramEmbeddings):
                raise TypeError(
                    f"only NgramEmbeddings can be saved with the cache, not "
                    f"{type(embeddings).__name__}; pass your embedder to PlanCache.load"
                )
            if self.classifier is not None:
                self.classifier.save(tmp / "intent")
            if self.extractor is not None:
                self.extractor.save(tmp / "parameters")
            embeddings.save(tmp / "embeddings")
            settings = {
                "format": _FORMAT,
                "version": _FORMAT_VERSION,
                "thresholds": self.thresholds,
                "default_threshold": self.default_threshold,
                "intent_gating": self.intent_gating,
                "strip_parameters": self.strip_parameters,
                "inducer": None if self.inducer is None else self.inducer.settings(),
                "max_request_chars": self.max_request_chars,
                "fill_missing": self.fill_missing,
                "min_confidence": self.min_confidence,
                "confident_threshold": self.confident_threshold,
            }
            with open(tmp / "settings.json", "w", encoding="utf-8") as f:
                json.dump(settings, f, ensure_ascii=False, indent=1)
                f.flush()
                os.fsync(f.fileno())
            if self.inducer is not None:
                learned = {
                    "examples": [] if self._learned is None else self._learned.examples,
                    "known_signatures": sorted(self._known_signatures),
                    "intent_shapes": {k: dict(v) for k, v in self._intent_shapes.items()},
                }
                with open(tmp / "learned.json", "w", encoding="utf-8") as f:
                    json.dump(learned, f, ensure_ascii=False)
                    f.flush()
                    os.fsync(f.fileno())
            if target.exists():
                old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
                target.rename(old)
                tmp.rename(target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        index: VectorIndex | None = None,
        embeddings: Embeddings | None = None,
        classifier_embeddings: Embeddings | None = None,
    ) -> PlanCache:
        """Load a cache saved with :meth:`save`.

        Args:
            directory: The saved directory.
            index: The vector back-end holding the entries (a new in-memory faiss index
                when omitted).
            embeddings: The embedder, when it is not the saved default one.
            classifier_embeddings: The intent classifier's sentence embedder, when it
                reads one (see :class:`IntentClassifier`).

        Raises:
            CacheCorruptError: If the directory is missing, partly written or damaged.
            ValueError: If the classifier reads an embedder and none is given.
            EmbeddingDimensionError: If the classifier's embedder does not fit it.
        """
        path = Path(directory)
        try:
            raw = (path / "settings.json").read_bytes()
        except OSError as exc:
            raise CacheCorruptError(f"cannot read {path / 'settings.json'}: {exc}") from exc
        settings = read_tagged_json(
            raw,
            path / "settings.json",
            fmt=_FORMAT,
            version=_FORMAT_VERSION,
            what="saved plan cache",
        )
        classifier = (  # its own errors: a missing embedder is not a corrupt cache
            IntentClassifier.load(path / "intent", embeddings=classifier_embeddings)
            if (path / "intent").exists()
            else None
        )
        try:
            extractor = (
                ParameterExtractor.load(path / "parameters")
                if (path / "parameters").exists()
                else None
            )
            if embeddings is None:
                embeddings = NgramEmbeddings.load(path / "embeddings")
            inducer_cfg = settings.get("inducer")
            cache = cls(
                embeddings=embeddings,
                index=index,
                classifier=classifier,
                extractor=extractor,
                thresholds=settings["thresholds"],
                default_threshold=settings["default_threshold"],
                intent_gating=settings["intent_gating"],
                strip_parameters=settings["strip_parameters"],
                inducer=None if inducer_cfg is None else IntentInducer(**inducer_cfg),
                max_request_chars=settings["max_request_chars"],
                fill_missing=settings.get("fill_missing"),
                min_confidence=settings.get("min_confidence"),
                confident_threshold=settings.get("confident_threshold", 0.05),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CacheCorruptError(f"{path}: bad settings: {exc}") from exc
        cache._load_learned(path / "learned.json")
        return cache

    def _load_learned(self, file: Path) -> None:
        if self.inducer is None or not file.exists():
            return
        try:
            with open(file, encoding="utf-8") as f:
                learned = json.load(f)
            self._known_signatures = {str(s) for s in learned["known_signatures"]}
            self._intent_shapes = {
                str(k): Counter({str(shape): int(n) for shape, n in v.items()})
                for k, v in learned.get("intent_shapes", {}).items()
            }
            if self._learned is not None:
                for text, label in learned["examples"]:
                    self._learned.add(str(text), str(label), refit=False)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RequestError) as exc:
            raise CacheCorruptError(f"cannot read {file}: {exc}") from exc
        if self._learned is not None:
            self._learned.refit()

    # -- internals ----------------------------------------------------------------------
    def _analyse(
        self, request: str, timings: dict[str, float]
    ) -> tuple[IntentPrediction | None, tuple[Parameter, ...], str, str, frozenset[str]]:
        check_request(request, self.max_request_chars, limit_name="max_request_chars")
        intent: IntentPrediction | None = None
        partition = ALL_PARTITION
        label: str | None = None
        if self.intent_gating:
            assert self.classifier is not None
            t0 = time.perf_counter()
            if self._learned is not None:
                intent, learned = self._learned.classify(request)
            else:
                intent, learned = self.classifier.predict(request), None
            if self.min_confidence is not None and intent.top:
                top_label, top_p = intent.top[0]
                known = top_p >= self.min_confidence
                intent = IntentPrediction(top_label if known else None, top_p, intent.top)
            timings["classify"] = _ms_since(t0)
            label = intent.label
            if learned is not None and self.inducer is not None:
                # A learned intent beats every known one: the known label is doubtful.
                name, p = learned
                if p >= self.inducer.learned_confidence:
                    intent = IntentPrediction(name, p, ((name, p), *intent.top))
                else:
                    intent = IntentPrediction(None, p, intent.top)
                label = None  # the extractor knows no slots of a learned intent
                partition = self.inducer.partition
            elif label is not None:
                partition = label
            elif self.inducer is not None:
                partition = self.inducer.partition
            else:
                partition = ""  # unknown intent, no induction: nothing to search
        parameters: tuple[Parameter, ...] = ()
        stripped = request
        multi: frozenset[str] = frozenset()
        t0 = time.perf_counter()
        if self.extractor is not None:
            params, stripped_text = self.extractor.extract_and_strip(request, label)
            parameters = tuple(params)
            if self.strip_parameters:
                stripped = stripped_text
            extractor = self.extractor
            multi = frozenset(p.slot for p in parameters if extractor.multi_valued(p.slot, label))
        timings["extract"] = _ms_since(t0)
        return intent, parameters, stripped, partition, multi

    def _embed(self, vector: Sequence[float]) -> np.ndarray:
        array = np.asarray(vector, dtype=np.float32).reshape(-1)
        if self._dim is not None and array.shape[0] != self._dim:
            raise EmbeddingDimensionError(
                f"the embedder gave a vector of dimension {array.shape[0]}; "
                f"the index holds dimension {self._dim}"
            )
        if not np.all(np.isfinite(array)):
            raise EmbeddingDimensionError("the embedder gave a vector with NaN or inf")
        norm = float(np.linalg.norm(array))
        return array / norm if norm > 0 else array

    def _vouched(self, intent: IntentPrediction | None, partition: str) -> bool:
        """Whether the classifier alone vouches for the intent searched (its own threshold)."""
        return (
            self.classifier is not None
            and intent is not None
            and intent.label is not None
            and partition == intent.label
            and intent.confidence >= self.classifier.min_confidence
        )

    def _doubted(self, intent: IntentPrediction | None, partition: str) -> bool:
        """Whether ``partition`` is the request's known intent, but not vouched for."""
        return (
            intent is not None
            and intent.label is not None
            and partition == intent.label
            and not self._induced(partition)
            and not self._vouched(intent, partition)
        )

    def _k(self, partition: str, intent: IntentPrediction | None) -> int:
        if not self._induced(partition) or self.inducer is None:
            # a request the classifier does not vouch for may skip entries filed on the
            # planner's word (see _decide): look a little further
            return _UNVOUCHED_K if self._doubted(intent, partition) else 1
        if self._learned_label(intent) is not None:
            return max(self.inducer.k, self.inducer.learned_k)
        return self.inducer.k

    def _learned_label(self, intent: IntentPrediction | None) -> str | None:
        """The learned intent of a prediction (``None`` when it is known or unknown)."""
        if intent is None or intent.label is None or self.classifier is None:
            return None
        return None if intent.label in self.classifier.labels else intent.label

    def _known_top(self, intent: IntentPrediction) -> str | None:
        """The most likely *known* intent of a prediction."""
        labels = self.classifier.labels if self.classifier is not None else ()
        return next((lab for lab, _ in intent.top if lab in labels), None)

    def _induced(self, partition: str) -> bool:
        return self.inducer is not None and partition == self.inducer.partition

    def _decide(
        self,
        request: str,
        intent: IntentPrediction | None,
        parameters: tuple[Parameter, ...],
        stripped: str,
        partition: str,
        vector: np.ndarray,
        hits: Sequence[VectorHit],
        timings: dict[str, float],
        multi: frozenset[str],
    ) -> CacheLookup:
        threshold = self.threshold_for(partition) if partition else 1.0
        if self._vouched(intent, partition) and self.confident_threshold is not None:
            threshold = min(threshold, self.confident_threshold)

        def miss(reason: str) -> CacheLookup:
            return CacheLookup(
                request, intent, parameters, stripped, partition, threshold, None, reason,
                timings, vector, multi,
            )  # fmt: skip

        if not partition:
            return miss("unknown intent")
        learned = self._learned_label(intent)
        if learned is not None and self.inducer is not None and intent is not None:
            chosen = self.inducer.choose_learned(hits, learned)
            if chosen is not None:
                return self._fill(
                    request, intent, parameters, stripped, partition,
                    self.inducer.learned_threshold, chosen, vector, timings, multi,
                )  # fmt: skip
            # No entry of the learned intent is close: match as a request of unknown intent.
            intent = IntentPrediction(None, intent.confidence, intent.top[1:])
            hits = hits[: self.inducer.k]
        if self._induced(partition) and self.inducer and not self.inducer.usable(stripped):
            return miss("unknown intent, and too little left after stripping to match by")
        top = intent.top[0][0] if intent is not None and intent.top else None
        if self._induced(partition):
            # No classifier vouches for the request: its top intent must at least agree
            # with the top intent of the entry it would reuse.
            hits = [h for h in hits if h.payload.get("top", top) == top]
        elif self._doubted(intent, partition):
            # Nor for this one: it reuses only entries the classifier vouched for (an
            # entry filed on the planner's word may be a near neighbour of a misroute).
            hits = [h for h in hits if not h.payload.get("by_plan")][:1]
        if not hits:
            return miss("nothing cached for this intent yet")
        best: VectorHit | None = hits[0]
        if self._induced(partition) and self.inducer is not None:
            best = self.inducer.choose(hits)
            if best is None:
                return miss("no induced intent matches clearly")
        assert best is not None
        if best.score < threshold:
            return miss(f"nearest entry is {best.score:.3f} similar, below {threshold:.3f}")
        return self._fill(
            request, intent, parameters, stripped, partition, threshold, best, vector, timings,
            multi,
        )  # fmt: skip

    def _fill(
        self,
        request: str,
        intent: IntentPrediction | None,
        parameters: tuple[Parameter, ...],
        stripped: str,
        partition: str,
        threshold: float,
        best: VectorHit,
        vector: np.ndarray,
        timings: dict[str, float],
        multi: frozenset[str],
    ) -> CacheLookup:
        """Fill the chosen entry's plan with the request's parameters (a miss if it cannot).

        A slot of ``multi`` with several values fills with their list; a slot the
        template was abstracted from a list (the entry's ``list_slots``) always does.
        """
        t0 = time.perf_counter()
        try:
            template = Plan.from_json(best.payload["plan"])
            list_slots = frozenset(str(s) for s in best.payload.get("list_slots", ()))
            values = _slot_values(parameters, multi, list_slots)
            if self.fill_missing is not None:
                values = {**dict.fromkeys(template.parameters, self.fill_missing), **values}
            plan = template.fill(values)
        except MissingParameterError as exc:
            timings["fill"] = _ms_since(t0)
            return CacheLookup(
                request, intent, parameters, stripped, partition, threshold, None,
                f"the cached plan needs {', '.join(exc.missing)}, not in the request",
                timings, vector, multi,
            )  # fmt: skip
        except (KeyError, TypeError, PlanValidationError) as exc:
            raise CacheCorruptError(f"cache entry {best.key!r} holds no valid plan: {exc}") from exc
        timings["fill"] = _ms_since(t0)
        hit = CacheHit(best.key, best.partition, best.score, template, plan, dict(best.payload))
        return CacheLookup(
            request, intent, parameters, stripped, partition, threshold, hit, None, timings,
            vector, multi,
        )  # fmt: skip

    def _store_partition(self, lookup: CacheLookup, shape: str | None) -> str:
        """Where a missed request's plan (of plan shape ``shape``) is filed.

        A request searched in its intent's partition on a confidence the classifier alone
        would not vouch for (below its stand-alone ``min_confidence``) is filed with the
        induced plans instead: one misrouted request must not pollute an intent's
        partition, where every later request of that intent would reuse its wrong plan.
        Unless the planner confirms the intent: the plan has the shape that the plans
        made so far for requests searched in that partition have most often (a
        misrouted request's plan has its own intent's shape).
        """
        if self.inducer is not None and self._doubted(lookup.intent, lookup.partition):
            shapes = self._intent_shapes.get(lookup.partition)
            if shape is not None and shapes and shapes.most_common(1)[0][0] == shape:
                return lookup.partition
            return self.inducer.partition
        return lookup.partition

    def _entry(
        self, lookup: CacheLookup, plan: Plan
    ) -> tuple[str, str, np.ndarray, dict[str, Any]]:
        values = lookup.values
        template = plan.abstract(values)
        shape = self.inducer.label(template) if self.inducer is not None else None
        partition = self._store_partition(lookup, shape)
        payload: dict[str, Any] = {
            "plan": template.to_json(),
            "stripped": lookup.stripped,
            "request": lookup.request,
        }
        if self._induced(partition) and shape is not None:
            payload["induced"] = shape
        elif not partition:
            raise RequestError(
                "this request's intent is unknown and intent induction is off: "
                "there is no partition to store its plan in"
            )
        if lookup.intent is not None:
            payload["label"] = lookup.intent.label
            top = self._known_top(lookup.intent)
            if top is not None:
                payload["top"] = top
        if shape is not None and "induced" not in payload:
            payload["shape"] = shape
        lists = [slot for slot, value in values.items() if isinstance(value, list)]
        if lists:
            # the slots the template now references where the plan held their list
            before, after = _param_names(plan), _param_names(template)
            from_list = sorted(slot for slot in lists if slot in after and slot not in before)
            if from_list:
                payload["list_slots"] = from_list
        if self._doubted(lookup.intent, partition):
            payload["by_plan"] = True  # filed because the plan's shape confirmed the intent
        return uuid.uuid4().hex, partition, lookup.vector, payload

    def _learn(self, lookup: CacheLookup, partition: str, payload: Mapping[str, Any]) -> None:
        """Learn from a stored plan: its intent's plan shapes, and the learned intents.

        The shapes decide where later plans of the intent are filed
        (:meth:`_store_partition`); a request of no known intent teaches
        :attr:`learned_intents`.
        """
        if self.inducer is None:
            return
        shape = str(payload.get("shape", payload.get("induced", "")))
        intent = lookup.intent
        with self._learn_lock:
            if intent is not None and intent.label is not None and lookup.partition == intent.label:
                # copied, then swapped in: lookups on other threads read it without the lock
                counts = Counter(self._intent_shapes.get(intent.label, ()))
                counts[shape] += 1
                self._intent_shapes = {**self._intent_shapes, intent.label: counts}
            if not self._induced(partition):
                self._known_signatures.add(shape)
            elif self._learned is not None and shape not in self._known_signatures:
                self._learned.add(lookup.request, shape)


_UNVOUCHED_K = 8  # entries searched for a request the classifier does not vouch for


def _slot_values(
    parameters: Sequence[Parameter],
    multi: frozenset[str],
    list_slots: frozenset[str] = frozenset(),
) -> dict[str, ParameterValue]:
    """``{slot: value}`` of parameters in text order; lists for multi-valued slots.

    A slot of ``multi`` with several values gives their list; a slot of ``list_slots``
    gives a list always (of one value too); any other slot its first value.
    """
    gathered: dict[str, list[str]] = {}
    for p in sorted(parameters, key=lambda q: q.start):
        gathered.setdefault(p.slot, []).append(p.value)
    values: dict[str, ParameterValue] = {}
    for slot, found in gathered.items():
        if slot in list_slots or (slot in multi and len(found) > 1):
            values[slot] = found
        else:
            values[slot] = found[0]
    return values


def _param_names(plan: Plan) -> set[str]:
    """The parameters a plan's steps reference."""
    return {r.name for s in plan.steps for r in s.references() if r.kind == "param"}


def _check_threshold(name: str, value: float) -> float:
    if not 0.0 < float(value) <= 1.0:
        raise ValueError(f"threshold {name!r} must be in (0, 1], got {value}")
    return float(value)


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
