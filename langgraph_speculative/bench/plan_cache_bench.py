"""``bench plan-cache``: plan reuse in the AgentReuse setting (BENCHMARKS.md section 3).

A stream of labelled requests is replayed through several caches side by side, each from
empty, in ``--seeds`` seeded shuffles. On a miss a deterministic planner returns the
request class's canonical plan (its time, ``--planner-ms``, is accounted, not slept) and
the plan is stored; on a hit the cached plan is filled with the *extracted* parameters.

Systems (one run, same stream, same seeds):

* ``no_cache``: every request is planned;
* ``gptcache_style``: raw text, one global index, cosine ``--threshold``;
* ``with_args``: intent gating, no parameter stripping, ``--threshold``;
* ``one_intent``: parameter stripping, no intent gating, ``--threshold``;
* ``agentreuse``: this project's default pipeline (intent gating, stripping,
  per-intent thresholds calibrated on ``--train``, online intent induction).

Scoring per request: ``y = 1`` iff the cache holds an entry of the request's class (for
``no_cache``: iff a request of the class was planned before, i.e. what a cache would hold).
TP: reused and the matched entry has the same class; FP: reused, another class (a wrong
plan served); FN: ``y = 1`` and planned; TN: ``y = 0`` and planned. *Effective reuse*: TPs
whose filled plan inputs all equal the gold slot values (after
:func:`~langgraph_speculative.cache.parameters.extractor.normalise_value`), over N. A precision with
no reuse at all is reported as 0. A multi-valued gold slot (a list of values, such as the
two teams of a match) must be filled with the same list (element by element after
normalisation, order kept); a list of one value counts as that value, as the cache fills
a single value as a string.

``bench plan-cache`` skips the malformed records of ``--train`` and ``--stream`` (see
:func:`~langgraph_speculative.cache.training_data.load_labelled_report`), prints how many
and lists them under ``skipped`` in its JSON; ``--strict`` fails on the first instead.

Example:
    ```python
    from langgraph_speculative.bench.plan_cache_bench import run_plan_cache_benchmark
    from langgraph_speculative.cache.training_data import LabelledRequest

    def req(text, domain, intent, **slots):
        return LabelledRequest(text, domain, intent, slots)

    train = [req(f"{a}到{b}的火车票", "train", "QUERY", startLoc_city=a, endLoc_city=b)
             for a, b in [("合肥", "北京"), ("长沙", "上海"), ("广州", "深圳"), ("南京", "杭州")]]
    train += [req(f"{d}怎么做", "cookbook", "QUERY", dishName=d)
              for d in ["糖醋排骨", "红烧肉", "宫保鸡丁", "麻婆豆腐"]]
    stream = [req("成都到重庆的火车票", "train", "QUERY", startLoc_city="成都", endLoc_city="重庆"),
              req("西安到武汉的火车票", "train", "QUERY", startLoc_city="西安", endLoc_city="武汉"),
              req("鱼香肉丝怎么做", "cookbook", "QUERY", dishName="鱼香肉丝")]
    doc = run_plan_cache_benchmark(train, stream, seeds=2, progress_bar=False)
    assert doc["systems"]["no_cache"]["latency_reduction"] == 0.0
    assert doc["systems"]["agentreuse"]["precision"] >= doc["systems"]["no_cache"]["precision"]
    ```
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from langgraph_speculative.bench.report import format_table, percentile, progress, write_json
from langgraph_speculative.cache.intent.classifier import IntentClassifier
from langgraph_speculative.cache.parameters.extractor import normalise_value
from langgraph_speculative.cache.plan_cache import PlanCache
from langgraph_speculative.cache.plans.plan import ParameterValue, Plan, PlanStep
from langgraph_speculative.cache.training_data import (
    LabelledRequest,
    SlotValue,
    load_labelled_report,
)
from langgraph_speculative.cache.vectors.embeddings import NgramEmbeddings
from langgraph_speculative.errors import SkippedRecord

__all__ = [
    "SYSTEMS",
    "add_arguments",
    "canonical_plans",
    "run",
    "run_plan_cache_benchmark",
]

SYSTEMS = ("no_cache", "gptcache_style", "with_args", "one_intent", "agentreuse")
"""The systems compared, in table order."""

_METRICS = ("precision", "recall", "f1", "accuracy", "effective_reuse", "latency_reduction")


def canonical_plans(requests: Sequence[LabelledRequest]) -> dict[str, Plan]:
    """The canonical plan template of every request class (``domain.intent``).

    A class's plan looks its slots up with a class-specific tool, then answers from the
    result; its parameters are every slot name seen in the class. Each slot is one whole
    ``{param:slot}`` input, so a multi-valued slot is filled with its list of values.

    Args:
        requests: Requests of every class the planner must know (training and stream).

    Returns:
        ``{class label: plan template}``.
    """
    slots: dict[str, set[str]] = defaultdict(set)
    for r in requests:
        slots[r.label].update(r.slots)
    plans: dict[str, Plan] = {}
    for label, names in slots.items():
        params = sorted(names)
        tool = label.lower().replace(".", "_")
        plans[label] = Plan(
            intent=label,
            parameters=params,
            steps=[
                PlanStep(
                    id="lookup",
                    description=f"look up {label} with the request's parameters",
                    tool=f"{tool}_lookup",
                    inputs={p: f"{{param:{p}}}" for p in params},
                    depends_on=[],
                    output="the records found",
                ),
                PlanStep(
                    id="answer",
                    description="answer the user from the records",
                    tool="answer",
                    inputs={"records": "{step:lookup}"},
                    depends_on=["lookup"],
                    output="the answer",
                ),
            ],
        )
    return plans


@dataclass
class _Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    effective: int = 0
    overhead_ms: float = 0.0
    misses: int = 0
    n: int = 0
    lookups_ms: list[float] = field(default_factory=list)

    def metrics(self, planner_ms: float) -> dict[str, float]:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        n = max(self.n, 1)
        cost = self.overhead_ms + self.misses * planner_ms
        return {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "accuracy": (self.tp + self.tn) / n,
            "effective_reuse": self.effective / n,
            "latency_reduction": 1.0 - cost / (n * planner_ms) if self.n else 0.0,
        }


@dataclass
class _Models:
    default: PlanCache  # the default pipeline, as PlanCache.from_examples builds it
    raw_embeddings: NgramEmbeddings  # fitted on raw requests, for the unstripped baselines


def _train(
    train: Sequence[LabelledRequest],
    gazetteers: Mapping[str, Any] | None,
    classifier_embeddings: Embeddings | None = None,
) -> _Models:
    classifier = (
        IntentClassifier(embeddings=classifier_embeddings)
        if classifier_embeddings is not None
        else None
    )
    default = PlanCache.from_examples(
        train, gazetteers=gazetteers, classifier=classifier, fill_missing=""
    )
    raw = NgramEmbeddings()
    raw.fit([r.text for r in train])
    return _Models(default, raw)


def _make_cache(system: str, models: _Models, threshold: float) -> PlanCache:
    embeddings: Embeddings
    if system == "gptcache_style":
        embeddings, gating, strip = models.raw_embeddings, False, False
    elif system == "with_args":
        embeddings, gating, strip = models.raw_embeddings, True, False
    elif system == "one_intent":
        embeddings, gating, strip = models.default.embeddings, False, True
    elif system == "agentreuse":
        return models.default.empty_copy()
    else:
        raise ValueError(f"unknown system {system!r}; choose from {', '.join(SYSTEMS)}")
    return PlanCache(
        embeddings=embeddings,
        classifier=models.default.classifier,
        extractor=models.default.extractor,
        default_threshold=threshold,
        intent_gating=gating,
        strip_parameters=strip,
        inducer=None,
        fill_missing="",
        confident_threshold=None,  # the baselines use the fixed --threshold only
    )


def _gold_inputs(plan: Plan, slots: Mapping[str, SlotValue]) -> dict[str, dict[str, Any]]:
    values: dict[str, ParameterValue] = {}
    for p in plan.parameters:
        value = slots.get(p, "")
        values[p] = value if isinstance(value, str) else list(value)
    return _normalised(plan.filled_inputs(values))


def _normalised_value(value: Any) -> Any:
    """A filled input for comparison: strings normalised, lists element by element.

    A list of one string reads as that string (the cache fills one value as a string).
    """
    if isinstance(value, str):
        return normalise_value(value)
    if isinstance(value, list):
        if len(value) == 1 and isinstance(value[0], str):
            return normalise_value(value[0])
        return [_normalised_value(v) for v in value]
    return value


def _normalised(inputs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        step: {k: _normalised_value(v) for k, v in values.items()}
        for step, values in inputs.items()
    }


def _replay(
    cache: PlanCache | None,
    stream: Sequence[LabelledRequest],
    plans: Mapping[str, Plan],
    unseen: set[str],
    tallies: dict[str, _Tally],
    bar: Any,
) -> None:
    planned_classes: set[str] = set()  # classes of the entries the cache holds
    entry_class: dict[str, str] = {}
    for request in stream:
        group = "unseen" if request.domain in unseen else "seen"
        y = request.label in planned_classes
        reused_class: str | None = None
        filled_ok = False
        lookup = None
        if cache is not None:
            lookup = cache.lookup(request.text)
            for t in (tallies["all"], tallies[group]):
                t.overhead_ms += lookup.overhead_ms
                t.lookups_ms.append(lookup.overhead_ms)
            if lookup.hit is not None:
                reused_class = entry_class[lookup.hit.key]
                if reused_class == request.label:
                    gold = _gold_inputs(plans[request.label], request.slots)
                    got = _normalised(lookup.hit.plan.filled_inputs({}))
                    filled_ok = got == gold
        for t in (tallies["all"], tallies[group]):
            t.n += 1
            if reused_class is not None:
                if reused_class == request.label:
                    t.tp += 1
                    t.effective += int(filled_ok)
                else:
                    t.fp += 1
            else:
                t.misses += 1
                if y:
                    t.fn += 1
                else:
                    t.tn += 1
        if reused_class is None:
            if cache is None:
                planned_classes.add(request.label)  # what a cache would hold
            elif lookup is not None and lookup.partition:
                key = cache.store(lookup, plans[request.label])
                entry_class[key] = request.label
                planned_classes.add(request.label)
            # else: unknown intent and no induction: planned, nothing stored
        bar.update(1)


def run_plan_cache_benchmark(
    train: Sequence[LabelledRequest],
    stream: Sequence[LabelledRequest],
    *,
    systems: Sequence[str] = SYSTEMS,
    seeds: int = 5,
    threshold: float = 0.75,
    planner_ms: float = 31800.0,
    gazetteers: Mapping[str, Any] | None = None,
    classifier_embeddings: Embeddings | None = None,
    progress_bar: bool = True,
) -> dict[str, Any]:
    """Replay ``stream`` through every system and score them (BENCHMARKS.md section 3).

    Args:
        train: Labelled requests the pipeline is fitted on.
        stream: Labelled requests replayed through the caches.
        systems: Which of :data:`SYSTEMS` to run.
        seeds: How many seeded shuffles of the stream (seeds 0..seeds-1).
        threshold: The cosine threshold of the baselines (and of intents the calibration
            did not cover).
        planner_ms: Accounted time of one planner call.
        gazetteers: Gazetteers for the parameter extractor.
        classifier_embeddings: A sentence embedder the default pipeline's intent
            classifier reads next to its n-grams (see :class:`IntentClassifier`).
        progress_bar: Show a progress bar on stderr.

    Returns:
        The JSON document: ``requests``, ``systems.{name}.{metric}`` (means over seeds;
        also ``.seen`` and ``.unseen`` for requests whose domain is in / absent from the
        training data), ``overhead_ms.{p50,p95}`` of the default pipeline, and settings.

    Raises:
        ValueError: If a system is unknown, ``seeds`` < 1 or the stream is empty.
    """
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown system(s) {unknown}; choose from {', '.join(SYSTEMS)}")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if not stream:
        raise ValueError("the stream is empty")
    t_train = time.perf_counter()
    models = _train(train, gazetteers, classifier_embeddings)
    train_s = time.perf_counter() - t_train
    plans = canonical_plans([*train, *stream])
    unseen = {r.domain for r in stream} - {r.domain for r in train}
    per_seed: dict[str, dict[str, list[dict[str, float]]]] = {s: defaultdict(list) for s in systems}
    overhead: list[float] = []
    bar = progress(len(systems) * seeds * len(stream), "bench plan-cache", enabled=progress_bar)
    bar.unit = "request"
    with bar:
        for seed in range(seeds):
            order = list(stream)
            random.Random(seed).shuffle(order)
            for system in systems:
                cache = None if system == "no_cache" else _make_cache(system, models, threshold)
                tallies = {"all": _Tally(), "seen": _Tally(), "unseen": _Tally()}
                _replay(cache, order, plans, unseen, tallies, bar)
                for group, tally in tallies.items():
                    if tally.n:
                        per_seed[system][group].append(tally.metrics(planner_ms))
                if system == "agentreuse":
                    overhead.extend(tallies["all"].lookups_ms)
    doc_systems: dict[str, Any] = {}
    for system in systems:
        entry: dict[str, Any] = _mean(per_seed[system]["all"])
        for group in ("seen", "unseen"):
            if per_seed[system][group]:
                entry[group] = _mean(per_seed[system][group])
        doc_systems[system] = entry
    return {
        "requests": len(stream),
        "train_requests": len(train),
        "seeds": seeds,
        "systems": doc_systems,
        "overhead_ms": {
            "p50": percentile(overhead, 50) if overhead else 0.0,
            "p95": percentile(overhead, 95) if overhead else 0.0,
        },
        "settings": {
            "threshold": threshold,
            "planner_ms": planner_ms,
            "classes_in_stream": len({r.label for r in stream}),
            "unseen_domains": sorted(unseen),
            "unseen_requests": sum(r.domain in unseen for r in stream),
            "agentreuse_thresholds": models.default.thresholds,
            "agentreuse_min_confidence": models.default.min_confidence,
            "train_seconds": round(train_s, 2),
            "classifier_features": models.default.classifier.features
            if models.default.classifier is not None
            else None,
        },
    }


def _mean(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {m: statistics.fmean(r[m] for r in rows) for m in _METRICS}


def table(doc: Mapping[str, Any]) -> str:
    """Format a :func:`run_plan_cache_benchmark` document as a plain-text table."""
    rows = []
    for system, m in doc["systems"].items():
        unseen = m.get("unseen")
        rows.append(
            [
                system,
                *(f"{m[k]:.4f}" for k in ("precision", "recall", "f1", "accuracy")),
                f"{m['effective_reuse']:.3f}",
                f"{-m['latency_reduction'] * 100:+.2f}%",
                "-" if unseen is None else f"{unseen['precision']:.3f}/{unseen['recall']:.3f}",
            ]
        )
    headers = ["system", "precision", "recall", "F1", "accuracy", "eff. reuse", "latency"]
    return format_table([*headers, "unseen P/R"], rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench plan-cache`` flags to ``parser``."""
    parser.add_argument("--train", required=True, type=Path, help="labelled requests (JSON)")
    parser.add_argument(
        "--stream",
        type=Path,
        default=None,
        help="requests to replay (JSON); omitted: a stratified split of --train",
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=0.5,
        help="without --stream: share of --train replayed as the stream (default 0.5)",
    )
    parser.add_argument("--split-seed", type=int, default=0, help="seed of that split")
    parser.add_argument(
        "--hold-out-domains",
        default="",
        help="comma-separated domains removed from training (kept in the stream): unseen intents",
    )
    parser.add_argument("--gazetteers", type=Path, default=None, help="gazetteer directory")
    parser.add_argument(
        "--classifier-model",
        type=Path,
        default=None,
        help="a local sentence-transformers model directory: the intent classifier reads "
        "its embeddings next to character n-grams (needs the 'hf' extra)",
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeded shuffles of the stream")
    parser.add_argument("--threshold", type=float, default=0.75, help="cosine threshold")
    parser.add_argument("--planner-ms", type=float, default=31800.0, help="planner time")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help="comma-separated systems to run"
    )
    parser.add_argument("--limit", type=int, default=None, help="replay the first N requests")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail on the first malformed record of --train or --stream (default: skip "
        "malformed records and report them)",
    )


def _skipped_json(skipped: Sequence[SkippedRecord]) -> list[dict[str, Any]]:
    return [s.to_json() for s in skipped]


def run(args: argparse.Namespace) -> int:
    """Run ``bench plan-cache`` from parsed flags; return the exit code (0).

    Malformed records of ``--train`` and ``--stream`` are skipped and reported (the
    count printed, each under ``skipped`` in the JSON: ``{"id", "reason", "kind",
    "file"}``, ``id`` the 0-based record index, ``kind`` ``"malformed"``, plus ``line``
    in a JSON Lines file) unless ``args.strict``.

    Raises:
        DataFormatError: If a file is not JSON, or with ``args.strict`` on the first
            malformed record.
    """
    from langgraph_speculative.cache.parameters.extractor import load_gazetteers
    from langgraph_speculative.cache.training_data import hold_out_domains, stratified_split
    from langgraph_speculative.integrations.huggingface import local_huggingface_embeddings

    train, train_skipped = load_labelled_report(args.train, strict=args.strict)
    skipped = _skipped_json(train_skipped)
    if args.stream is not None:
        stream, stream_skipped = load_labelled_report(args.stream, strict=args.strict)
        skipped += _skipped_json(stream_skipped)
    else:
        train, stream = stratified_split(train, args.test_fraction, seed=args.split_seed)
    held = [d.strip() for d in args.hold_out_domains.split(",") if d.strip()]
    if held:
        train, _ = hold_out_domains(train, held)
    if args.limit is not None:
        stream = stream[: args.limit]
    gazetteers = None
    gaz_dir = args.gazetteers
    if gaz_dir is None and (args.train.parent / "dic").is_dir():
        gaz_dir = args.train.parent / "dic"
    if gaz_dir is not None:
        gazetteers = load_gazetteers(gaz_dir)
    doc = run_plan_cache_benchmark(
        train,
        stream,
        systems=[s.strip() for s in args.systems.split(",") if s.strip()],
        seeds=args.seeds,
        threshold=args.threshold,
        planner_ms=args.planner_ms,
        gazetteers=gazetteers,
        classifier_embeddings=(
            local_huggingface_embeddings(args.classifier_model)
            if args.classifier_model is not None
            else None
        ),
        progress_bar=not args.no_progress,
    )
    doc["skipped"] = skipped
    print(
        f"bench plan-cache: {doc['requests']} requests replayed x {doc['seeds']} seeds, "
        f"{doc['train_requests']} training requests"
        + (f", unseen domains {', '.join(doc['settings']['unseen_domains'])}" if held else "")
    )
    files = sorted({s["file"] for s in skipped})
    print(
        f"skipped {len(skipped)} malformed record(s)"
        + (f" of {', '.join(files)}" if files else "")
        + (" (listed under 'skipped' in the JSON report)" if skipped and args.json else "")
    )
    for entry in skipped[:5]:
        print(f"  {entry['file']} record {entry['id']}: {entry['reason']}")
    if len(skipped) > 5:
        print(f"  ... and {len(skipped) - 5} more")
    print(table(doc))
    print(
        f"overhead of the default pipeline per request: p50 {doc['overhead_ms']['p50']:.2f} ms, "
        f"p95 {doc['overhead_ms']['p95']:.2f} ms"
    )
    if args.json is not None:
        write_json(args.json, doc)
        print(f"wrote {args.json}")
    return 0
