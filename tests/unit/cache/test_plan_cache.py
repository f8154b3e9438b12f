"""The plan cache: classify, strip, search within the intent, fill; store; persist."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings

from langgraph_speculative.cache import (
    IntentInducer,
    LabelledRequest,
    NgramEmbeddings,
    Plan,
    PlanCache,
    PlanStep,
)
from langgraph_speculative.cache.plan_cache import ALL_PARTITION
from langgraph_speculative.errors import (
    CacheCorruptError,
    EmbeddingDimensionError,
    RequestError,
)

PAIRS = [("合肥", "北京"), ("长沙", "上海"), ("广州", "深圳"), ("南京", "杭州"), ("成都", "西安")]
DISHES = ["糖醋排骨", "红烧肉", "宫保鸡丁", "麻婆豆腐", "鱼香肉丝"]


def _examples() -> list[LabelledRequest]:
    out = [
        LabelledRequest(
            f"{a}到{b}的火车票", "train", "QUERY", {"startLoc_city": a, "endLoc_city": b}
        )
        for a, b in PAIRS
    ]
    out += [
        LabelledRequest(
            f"从{a}去{b}的火车", "train", "QUERY", {"startLoc_city": a, "endLoc_city": b}
        )
        for a, b in PAIRS
    ]
    out += [LabelledRequest(f"{d}怎么做", "cookbook", "QUERY", {"dishName": d}) for d in DISHES]
    out += [LabelledRequest(f"教我做{d}", "cookbook", "QUERY", {"dishName": d}) for d in DISHES]
    return out


TRAIN_PLAN = Plan(
    parameters=["startLoc_city", "endLoc_city"],
    steps=[
        PlanStep(
            id="s1",
            description="search trains",
            tool="search_trains",
            inputs={"from": "{param:startLoc_city}", "to": "{param:endLoc_city}"},
            output="trains",
        )
    ],
)
DISH_PLAN = Plan(
    parameters=["dishName"],
    steps=[
        PlanStep(
            id="s1",
            description="find a recipe",
            tool="recipe",
            inputs={"dish": "{param:dishName}"},
            output="recipe",
        )
    ],
)


@pytest.fixture(scope="module")
def trained() -> PlanCache:
    return PlanCache.from_examples(_examples())


@pytest.fixture
def cache(trained: PlanCache) -> PlanCache:
    """A fresh, empty cache sharing the trained models."""
    return trained.empty_copy()


def test_miss_then_store_then_hit_with_new_parameters(cache: PlanCache) -> None:
    first = cache.lookup("合肥到北京的火车票")
    assert first.hit is None and first.miss_reason
    assert first.intent is not None and first.intent.label == "train.QUERY"
    assert first.values == {"startLoc_city": "合肥", "endLoc_city": "北京"}
    assert "<startLoc_city>" in first.stripped and "合肥" not in first.stripped
    cache.store(first, TRAIN_PLAN)
    again = cache.lookup("长沙到上海的火车票")
    assert again.hit is not None
    assert again.hit.partition == "train.QUERY"
    assert again.hit.plan.steps[0].inputs == {"from": "长沙", "to": "上海"}
    assert set(again.timings_ms) >= {"classify", "extract", "embed", "search", "fill"}
    assert again.overhead_ms > 0


def test_concrete_plan_is_stored_as_a_template(cache: PlanCache) -> None:
    first = cache.lookup("合肥到北京的火车票")
    concrete = TRAIN_PLAN.fill({"startLoc_city": "合肥", "endLoc_city": "北京"})
    cache.store(first, concrete)
    again = cache.lookup("南京到杭州的火车票")
    assert again.hit is not None
    assert again.hit.plan.steps[0].inputs == {"from": "南京", "to": "杭州"}


def test_search_stays_within_the_intent(cache: PlanCache) -> None:
    cache.store(cache.lookup("合肥到北京的火车票"), TRAIN_PLAN)
    dish = cache.lookup("红烧肉怎么做")
    assert dish.intent is not None and dish.intent.label == "cookbook.QUERY"
    assert dish.hit is None  # the only entry is a train plan: never served for a dish
    cache.store(dish, DISH_PLAN)
    hit = cache.lookup("鱼香肉丝怎么做")
    assert hit.hit is not None and hit.hit.plan.steps[0].inputs == {"dish": "鱼香肉丝"}


DATED_PLAN = Plan(
    parameters=["startLoc_city", "endLoc_city", "startDate_date"],
    steps=[
        PlanStep(
            id="s1",
            description="search trains on a day",
            tool="search_trains",
            inputs={
                "from": "{param:startLoc_city}",
                "to": "{param:endLoc_city}",
                "day": "{param:startDate_date}",
            },
            output="trains",
        )
    ],
)


def test_a_plan_needing_a_parameter_the_request_lacks_is_a_miss(cache: PlanCache) -> None:
    cache.store(cache.lookup("合肥到北京的火车票"), DATED_PLAN)
    lookup = cache.lookup("长沙到上海的火车票")
    assert lookup.hit is None
    assert lookup.miss_reason is not None and "startDate_date" in lookup.miss_reason


def test_fill_missing_gives_optional_parameters_a_value(trained: PlanCache) -> None:
    cache = PlanCache(
        embeddings=trained.embeddings,
        classifier=trained.classifier,
        extractor=trained.extractor,
        thresholds=trained.thresholds,
        fill_missing="",
    )
    cache.store(cache.lookup("合肥到北京的火车票"), DATED_PLAN)
    lookup = cache.lookup("长沙到上海的火车票")
    assert lookup.hit is not None
    assert lookup.hit.plan.steps[0].inputs == {"from": "长沙", "to": "上海", "day": ""}


@pytest.mark.parametrize("bad", ["", "   \n", "x" * 2001])
def test_bad_requests_raise_request_error(cache: PlanCache, bad: str) -> None:
    with pytest.raises(RequestError):
        cache.lookup(bad)


def test_non_string_request_raises(cache: PlanCache) -> None:
    with pytest.raises(RequestError, match="string"):
        cache.lookup(42)  # type: ignore[arg-type]


class _WrongDim(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0, 0.0] for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return [1.0, 0.0, 0.0]


def test_embedding_of_the_wrong_dimension_is_refused(trained: PlanCache) -> None:
    cache = PlanCache(
        embeddings=trained.embeddings,
        classifier=trained.classifier,
        extractor=trained.extractor,
    )
    first = cache.lookup("合肥到北京的火车票")
    cache.store(first, TRAIN_PLAN)
    cache.embeddings = _WrongDim()
    with pytest.raises(EmbeddingDimensionError, match="dimension 3"):
        cache.lookup("长沙到上海的火车票")
    assert cache.index.count() == 1  # nothing half-stored


def test_unknown_intent_without_induction_misses_and_is_not_stored(trained: PlanCache) -> None:
    cache = PlanCache(
        embeddings=trained.embeddings,
        classifier=trained.classifier,
        extractor=trained.extractor,
        inducer=None,
    )
    assert trained.classifier is not None
    trained.classifier.min_confidence, saved = 1.0, trained.classifier.min_confidence
    try:
        lookup = cache.lookup("明天会下雨吗")
    finally:
        trained.classifier.min_confidence = saved
    assert lookup.intent is not None and lookup.intent.label is None
    assert lookup.hit is None and lookup.miss_reason == "unknown intent"
    with pytest.raises(RequestError, match="induction"):
        cache.store(lookup, DISH_PLAN)


def test_unknown_intents_are_induced_and_reused(cache: PlanCache) -> None:
    assert cache.inducer is not None
    cache.min_confidence = 1.0 + 1e-9  # every request is of unknown intent
    first = cache.lookup("红烧肉怎么做")
    assert first.partition == cache.inducer.partition and first.hit is None
    cache.store(first, DISH_PLAN)
    again = cache.lookup("糖醋排骨怎么做")
    train = cache.lookup("合肥到北京的火车票")
    assert again.hit is not None
    assert again.hit.payload["induced"] == IntentInducer.label(DISH_PLAN)
    assert again.hit.plan.steps[0].inputs == {"dish": "糖醋排骨"}
    assert train.hit is None  # a different kind of request is not guessed at


def test_without_gating_everything_shares_one_partition(trained: PlanCache) -> None:
    cache = PlanCache(
        embeddings=trained.embeddings,
        extractor=trained.extractor,
        intent_gating=False,
    )
    lookup = cache.lookup("合肥到北京的火车票")
    assert lookup.partition == ALL_PARTITION and lookup.intent is None
    cache.store(lookup, TRAIN_PLAN)
    assert cache.lookup("长沙到上海的火车票").hit is not None


def test_components_required_by_the_flags() -> None:
    emb = NgramEmbeddings()
    with pytest.raises(ValueError, match="classifier"):
        PlanCache(embeddings=emb, strip_parameters=False)
    with pytest.raises(ValueError, match="extractor"):
        PlanCache(embeddings=emb, intent_gating=False)
    with pytest.raises(ValueError, match="threshold"):
        PlanCache(embeddings=emb, intent_gating=False, strip_parameters=False, default_threshold=0)


def test_calibrated_thresholds_cover_every_intent(trained: PlanCache) -> None:
    assert set(trained.thresholds) >= {"train.QUERY", "cookbook.QUERY", "*"}
    assert all(0.0 < t <= 1.0 for t in trained.thresholds.values())
    assert trained.threshold_for("train.QUERY") == trained.thresholds["train.QUERY"]
    assert trained.threshold_for("never.SEEN") == trained.thresholds["*"]


async def test_concurrent_async_lookups_and_stores(cache: PlanCache) -> None:
    first = await cache.alookup("合肥到北京的火车票")
    await cache.astore(first, TRAIN_PLAN)
    requests = [f"{a}到{b}的火车票" for a, b in PAIRS] * 4
    lookups = await asyncio.gather(*(cache.alookup(r) for r in requests))
    assert all(lk.hit is not None for lk in lookups)
    keys = await asyncio.gather(*(cache.astore(lk, TRAIN_PLAN) for lk in lookups))
    assert len(set(keys)) == len(keys)
    assert cache.index.count("train.QUERY") == 1 + len(requests)


def test_save_and_load_round_trip(cache: PlanCache, tmp_path: Path) -> None:
    cache.save(tmp_path / "models")
    loaded = PlanCache.load(tmp_path / "models")
    assert loaded.thresholds == cache.thresholds
    lookup = loaded.lookup("合肥到北京的火车票")
    assert lookup.values == {"startLoc_city": "合肥", "endLoc_city": "北京"}
    assert lookup.intent is not None and lookup.intent.label == "train.QUERY"
    cache.save(tmp_path / "models")  # replacing a saved cache leaves no stray directories
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_load_rejects_damaged_settings(cache: PlanCache, tmp_path: Path) -> None:
    cache.save(tmp_path / "models")
    settings = tmp_path / "models" / "settings.json"
    settings.write_text("{not json", encoding="utf-8")
    with pytest.raises(CacheCorruptError, match=r"settings\.json"):
        PlanCache.load(tmp_path / "models")
    settings.write_text(json.dumps({"format": "other"}), encoding="utf-8")
    with pytest.raises(CacheCorruptError, match="not a saved plan cache"):
        PlanCache.load(tmp_path / "models")
    with pytest.raises(CacheCorruptError):
        PlanCache.load(tmp_path / "missing")


def test_a_corrupt_entry_is_an_error_not_a_plan(cache: PlanCache) -> None:
    first = cache.lookup("合肥到北京的火车票")
    cache.index.add("train.QUERY", "bad", first.vector, {"plan": "{broken"})
    with pytest.raises(CacheCorruptError, match="bad"):
        cache.lookup("合肥到北京的火车票")


def test_pgvector_back_end_is_one_argument(postgres_dsn: str) -> None:
    cache = PlanCache.from_examples(
        _examples(),
        backend="pgvector",
        backend_options={"dsn": postgres_dsn, "table": "test_plan_cache_swap"},
    )
    cache.store(cache.lookup("合肥到北京的火车票"), TRAIN_PLAN)
    again = cache.lookup("长沙到上海的火车票")
    assert again.hit is not None and again.hit.plan.steps[0].inputs == {
        "from": "长沙",
        "to": "上海",
    }
    cache.index.close()


def test_empty_copy_shares_models_not_entries(cache: PlanCache) -> None:
    cache.store(cache.lookup("合肥到北京的火车票"), TRAIN_PLAN)
    copy = cache.empty_copy()
    assert copy.classifier is cache.classifier and copy.thresholds == cache.thresholds
    assert copy.index.count() == 0 and cache.index.count() == 1
    assert copy.lookup("长沙到上海的火车票").hit is None


def test_a_confident_intent_reuses_its_plan_even_when_worded_otherwise(cache: PlanCache) -> None:
    cache.store(cache.lookup("合肥到北京的火车票"), TRAIN_PLAN)
    assert cache.classifier is not None and cache.confident_threshold is not None
    saved = cache.classifier.min_confidence
    try:
        cache.classifier.min_confidence = 0.0  # the classifier alone vouches for the intent
        vouched = cache.lookup("从长沙去上海的火车")
        cache.classifier.min_confidence = 1.0  # it vouches for nothing
        unvouched = cache.lookup("从长沙去上海的火车")
    finally:
        cache.classifier.min_confidence = saved
    assert vouched.partition == unvouched.partition == "train.QUERY"
    assert vouched.threshold == cache.confident_threshold
    assert vouched.hit is not None
    assert vouched.hit.plan.steps[0].inputs == {"from": "长沙", "to": "上海"}
    assert unvouched.threshold == cache.threshold_for("train.QUERY")
    strict = cache.empty_copy()
    strict.confident_threshold = None
    cache.classifier.min_confidence = 0.0
    try:
        assert strict.lookup("从长沙去上海的火车").threshold == strict.threshold_for("train.QUERY")
    finally:
        cache.classifier.min_confidence = saved


def test_a_doubted_miss_joins_its_intent_once_the_planner_confirms_the_shape(
    cache: PlanCache, tmp_path: Path
) -> None:
    assert cache.classifier is not None and cache.inducer is not None
    saved = cache.classifier.min_confidence
    cache.min_confidence = 0.0  # every request searches its top intent's partition ...
    cache.classifier.min_confidence = 1.0  # ... which the classifier alone never vouches for
    induced = cache.inducer.partition
    try:
        cache.store(cache.lookup("合肥到北京的火车票"), TRAIN_PLAN)  # no shape known yet
        assert (cache.index.count("train.QUERY"), cache.index.count(induced)) == (0, 1)
        cache.store(cache.lookup("长沙到上海的火车票"), TRAIN_PLAN)  # the planner agrees
        assert (cache.index.count("train.QUERY"), cache.index.count(induced)) == (1, 1)
        cache.store(cache.lookup("广州到深圳的火车票"), DISH_PLAN)  # a misroute's plan
        assert (cache.index.count("train.QUERY"), cache.index.count(induced)) == (1, 2)
        # an entry filed on the planner's word serves only requests the classifier vouches
        # for: a doubted request could be a misroute that happens to look like it
        doubted = cache.lookup("南京到杭州的火车票")
        assert doubted.hit is None and doubted.partition == "train.QUERY"
        cache.classifier.min_confidence = 0.0
        vouched = cache.lookup("南京到杭州的火车票")
        assert vouched.hit is not None and vouched.hit.payload.get("by_plan") is True
        assert vouched.hit.plan.steps[0].inputs == {"from": "南京", "to": "杭州"}
        # what the cache learned of the intent's plans is saved with it
        cache.classifier.min_confidence = 1.0
        cache.save(tmp_path / "c")
        loaded = PlanCache.load(tmp_path / "c")  # entries are not saved: an empty index
        loaded.min_confidence = 0.0
        loaded.store(loaded.lookup("成都到西安的火车票"), TRAIN_PLAN)
        assert loaded.index.count("train.QUERY") == 1  # confirmed at once
    finally:
        cache.classifier.min_confidence = saved


RIDDLE_PLAN = Plan(
    steps=[
        PlanStep(id="s1", description="tell a riddle", tool="riddle", inputs={}, output="riddle")
    ]
)


def _unknown_intent_cache(trained: PlanCache, **inducer: Any) -> PlanCache:
    """A cache where every request is of unknown intent (the classifier never vouches)."""
    return PlanCache(
        embeddings=trained.embeddings,
        classifier=trained.classifier,
        extractor=trained.extractor,
        thresholds=trained.thresholds,
        inducer=IntentInducer(**inducer),
        min_confidence=1.0 + 1e-9,
    )


def _plan_two_riddles(cache: PlanCache) -> None:
    for text in ["给我讲一个谜语", "我想猜个谜语"]:
        lookup = cache.lookup(text)
        assert lookup.hit is None
        cache.store(lookup, RIDDLE_PLAN)


def test_a_new_task_type_is_learned_from_two_planned_requests(trained: PlanCache) -> None:
    cache = _unknown_intent_cache(trained)
    _plan_two_riddles(cache)
    label = IntentInducer.label(RIDDLE_PLAN)
    assert cache.learned_intents is not None and cache.learned_intents.labels == (label,)
    third = cache.lookup("讲个谜语让我猜猜")
    assert third.intent is not None and third.intent.label == label
    assert third.hit is not None and third.hit.payload["induced"] == label
    for other in ["今天天气怎么样", "红烧肉怎么做"]:  # other task types are not guessed at
        assert cache.lookup(other).hit is None
    assert trained.empty_copy().learned_intents is not None
    assert trained.empty_copy().learned_intents.labels == ()  # type: ignore[union-attr]


def test_without_learning_the_new_task_type_is_not_reused(trained: PlanCache) -> None:
    cache = _unknown_intent_cache(trained, learn=False)
    _plan_two_riddles(cache)
    assert cache.learned_intents is None
    assert cache.lookup("讲个谜语让我猜猜").hit is None


def test_a_plan_shape_of_a_known_intent_is_not_learned(trained: PlanCache) -> None:
    cache = trained.empty_copy()
    dish = cache.lookup("红烧肉怎么做")
    assert dish.partition == "cookbook.QUERY"
    cache.store(dish, DISH_PLAN)
    cache.min_confidence = 1.0 + 1e-9
    for text in ["糖醋排骨怎么做", "教我做宫保鸡丁"]:
        cache.store(cache.lookup(text), DISH_PLAN)
    assert cache.learned_intents is not None and cache.learned_intents.labels == ()


def test_learned_intents_are_saved_and_refitted_on_load(trained: PlanCache, tmp_path: Path) -> None:
    cache = _unknown_intent_cache(trained)
    _plan_two_riddles(cache)
    cache.save(tmp_path / "models")
    loaded = PlanCache.load(tmp_path / "models")
    assert loaded.learned_intents is not None
    assert loaded.learned_intents.examples == cache.learned_intents.examples  # type: ignore[union-attr]
    assert loaded.learned_intents.labels == (IntentInducer.label(RIDDLE_PLAN),)
    assert loaded.inducer == cache.inducer
    prediction = loaded.learned_intents.predict("讲个谜语让我猜猜")
    assert prediction is not None and prediction[0] == IntentInducer.label(RIDDLE_PLAN)


class _CountingEmbeddings(NgramEmbeddings):
    """The offline embedder, counting the threads its queries run on."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        import threading

        self.threads.add(threading.get_ident())
        return super().embed_documents(texts)


async def test_a_classifier_with_its_own_embedder_is_fitted_saved_and_loaded(
    tmp_path: Path,
) -> None:
    import threading

    from langgraph_speculative.cache import IntentClassifier

    emb = _CountingEmbeddings()
    emb.fit([e.text for e in _examples()])
    classifier = IntentClassifier(embeddings=emb, min_confidence=0.5, folds=5)
    cache = PlanCache.from_examples(_examples(), classifier=classifier)
    assert cache.classifier is classifier and classifier.is_fitted
    emb.threads.clear()  # fitting ran here; lookups must not
    first = await cache.alookup("合肥到北京的火车票")
    assert first.intent is not None and first.intent.label == "train.QUERY"
    assert threading.get_ident() not in emb.threads  # embedded off the event loop
    cache.store(first, TRAIN_PLAN)
    hit = await cache.alookup("长沙到上海的火车票")
    assert hit.hit is not None and hit.values == {"startLoc_city": "长沙", "endLoc_city": "上海"}
    cache.save(tmp_path / "models")
    with pytest.raises(ValueError, match="pass that embedder"):
        PlanCache.load(tmp_path / "models")
    loaded = PlanCache.load(tmp_path / "models", classifier_embeddings=emb)
    assert loaded.classifier is not None and loaded.classifier.embeddings is emb
    lookup = loaded.lookup("南京到杭州的火车票")
    assert lookup.intent is not None and lookup.intent.label == "train.QUERY"


# -- list-valued (multi-valued) slots ---------------------------------------------------

MATCHES = [
    ("湖人", "勇士", "{a}对{b}的比赛"),
    ("火箭", "马刺", "{a}对{b}的比赛"),
    ("热火", "公牛", "{a}对阵{b}的比分"),
    ("快船", "掘金", "{a}和{b}的比赛"),
    ("湖人", "火箭", "{a}对{b}的比分"),
    ("勇士", "热火", "{a}和{b}的比分"),
    ("马刺", "快船", "{a}对阵{b}的比赛"),
    ("公牛", "掘金", "{a}对{b}的比分"),
]
MATCH_PLAN = Plan(
    parameters=["name"],
    steps=[
        PlanStep(
            id="s1",
            description="look the match up",
            tool="match_scores",
            inputs={"teams": "{param:name}", "title": "{param:name} 比分"},
            output="scores",
        )
    ],
)


@pytest.fixture(scope="module")
def team_trained() -> PlanCache:
    matches = [
        LabelledRequest(p.format(a=a, b=b), "sports", "MATCH", {"name": [a, b]})
        for a, b, p in MATCHES
    ]
    return PlanCache.from_examples(_examples() + matches)


def test_a_two_team_request_reuses_the_plan_filled_with_both(team_trained: PlanCache) -> None:
    cache = team_trained.empty_copy()
    first = cache.lookup("湖人对勇士的比赛")
    assert first.intent is not None and first.intent.label == "sports.MATCH"
    assert first.multi_valued == {"name"}
    assert first.values == {"name": ["湖人", "勇士"]}
    assert first.stripped.count("<name>") == 2
    cache.store(first, MATCH_PLAN)
    again = cache.lookup("马刺对掘金的比赛")  # a pair never seen together
    assert again.hit is not None and again.hit.partition == "sports.MATCH"
    assert again.hit.plan.steps[0].inputs == {"teams": ["马刺", "掘金"], "title": "马刺, 掘金 比分"}
    # single-valued slots still fill with one string
    cache.store(cache.lookup("合肥到北京的火车票"), TRAIN_PLAN)
    train = cache.lookup("长沙到上海的火车票")
    assert train.multi_valued == frozenset()
    assert train.hit is not None
    assert train.hit.plan.steps[0].inputs == {"from": "长沙", "to": "上海"}


def test_a_concrete_plan_holding_the_list_is_stored_as_a_list_template(
    team_trained: PlanCache,
) -> None:
    cache = team_trained.empty_copy()
    first = cache.lookup("湖人对勇士的比赛")
    concrete = MATCH_PLAN.fill({"name": ["湖人", "勇士"]})
    assert concrete.steps[0].inputs["teams"] == ["湖人", "勇士"]
    key = cache.store(first, concrete)
    (entry,) = cache.index.search(first.vector, partition="sports.MATCH", k=1)
    assert entry.key == key and entry.payload["list_slots"] == ["name"]
    assert Plan.from_json(entry.payload["plan"]).steps == MATCH_PLAN.steps
    again = cache.lookup("火箭和热火的比赛")
    assert again.hit is not None
    assert again.hit.plan.steps[0].inputs["teams"] == ["火箭", "热火"]
    # the template was abstracted from a list: one team still fills it with a list
    one = cache.lookup("湖人的比赛")
    assert one.values == {"name": "湖人"}
    assert one.hit is not None and one.hit.plan.steps[0].inputs["teams"] == ["湖人"]


def test_slot_values_first_value_unless_multi_valued() -> None:
    from langgraph_speculative.cache.parameters.extractor import Parameter
    from langgraph_speculative.cache.plan_cache import _slot_values

    params = [
        Parameter("name", "name", "勇士", "勇士", 3, 5),
        Parameter("name", "name", "湖人", "湖人", 0, 2),
        Parameter("day", "time", "今晚", "今晚", 6, 8),
    ]
    assert _slot_values(params, frozenset()) == {"name": "湖人", "day": "今晚"}
    assert _slot_values(params, frozenset({"name", "day"})) == {
        "name": ["湖人", "勇士"],  # in text order
        "day": "今晚",  # one value: a string
    }
    forced = _slot_values(params, frozenset(), frozenset({"day"}))
    assert forced == {"name": "湖人", "day": ["今晚"]}
