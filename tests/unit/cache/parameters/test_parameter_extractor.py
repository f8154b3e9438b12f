from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langgraph_speculative.cache.parameters.extractor import (
    Parameter,
    ParameterExtractor,
    load_gazetteers,
    normalise_value,
)
from langgraph_speculative.cache.training_data import (
    LabelledRequest,
    load_labelled,
    stratified_split,
)
from langgraph_speculative.errors import (
    CacheCorruptError,
    DataFormatError,
    NotFittedError,
    RequestError,
)

# --- normalise_value -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("第十五集", "第15集"),
        ("六十九集", "69集"),
        ("二零一九年", "2019年"),
        ("一百零五", "105"),
        ("三万五千", "35000"),
        ("下午三点", "下午3点"),
        ("两点半", "2点半"),
        ("一起", "一起"),  # a word, not a number
        ("万一", "万一"),
        ("\uff23\uff23\uff34\uff36\uff15", "cctv5"),  # full-width
        ("  北京。 ", "北京"),
        ("Five PM", "5pm"),
        ("5:00 p.m.", "5pm"),
        ("New   York", "new york"),
        ("twenty", "20"),
    ],
)
def test_normalise_value(raw: str, expected: str) -> None:
    assert normalise_value(raw) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("一二三十百千万两零第集点 5:pmAaB,。ｃ北京\u3000")),
        max_size=12,
    )
)
def test_normalise_value_is_idempotent(text: str) -> None:
    once = normalise_value(text)
    assert normalise_value(once) == once


# --- Parameter -------------------------------------------------------------------------


def test_parameter_validates() -> None:
    p = Parameter("city", "place", "北京", "北京", 3, 5)
    assert p.placeholder == "<city>"
    with pytest.raises(ValueError, match="kind"):
        Parameter("city", "town", "北京", "北京", 3, 5)
    with pytest.raises(ValueError, match="offsets"):
        Parameter("city", "place", "北京", "北京", 3, 6)
    with pytest.raises(ValueError, match="slot"):
        Parameter("", "place", "北京", "北京", 3, 5)


# --- gazetteers ------------------------------------------------------------------------


def test_load_gazetteers(tmp_path: Path) -> None:
    (tmp_path / "city.txt").write_text("北京市\n\n# comment\n 合肥市 \n", encoding="utf-8")
    (tmp_path / "dish.txt").write_text("红烧肉\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("ignored", encoding="utf-8")
    assert load_gazetteers(tmp_path) == {"city": ["北京市", "合肥市"], "dish": ["红烧肉"]}
    with pytest.raises(FileNotFoundError):
        load_gazetteers(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match=r"no \*\.txt"):
        load_gazetteers(empty)
    (empty / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataFormatError, match="UTF-8"):
        load_gazetteers(empty)


# --- a small trained extractor -----------------------------------------------------------

_TRAIN_ROWS = [
    ("明天从合肥到北京的火车票", "明天", "合肥", "北京"),
    ("帮我查后天长沙到上海的火车", "后天", "长沙", "上海"),
    ("我要订今天从广州去深圳的高铁票", "今天", "广州", "深圳"),
    ("南京到杭州明天的火车", "明天", "南京", "杭州"),
    ("查一下后天从武汉到成都的火车票", "后天", "武汉", "成都"),
    ("西安到重庆的动车今天还有吗", "今天", "西安", "重庆"),
    ("明天郑州到洛阳的火车票", "明天", "郑州", "洛阳"),
    ("今天从济南去青岛的高铁", "今天", "济南", "青岛"),
]


def _examples() -> list[LabelledRequest]:
    out = [
        LabelledRequest(
            t, "train", "QUERY", {"startDate_date": d, "startLoc_city": a, "endLoc_city": b}
        )
        for t, d, a, b in _TRAIN_ROWS
    ]
    for dish in ["红烧肉", "糖醋排骨", "宫保鸡丁", "麻婆豆腐", "鱼香肉丝", "酸菜鱼"]:
        out.append(LabelledRequest(f"{dish}怎么做", "cookbook", "QUERY", {"dishName": dish}))
        out.append(LabelledRequest(f"教我做{dish}", "cookbook", "QUERY", {"dishName": dish}))
    for name in ["王小明", "李华", "张伟", "刘芳"]:
        out.append(LabelledRequest(f"打电话给{name}", "telephone", "DIAL", {"name": name}))
    return out


@pytest.fixture(scope="module")
def extractor() -> ParameterExtractor:
    gazetteers = {
        "city": ["北京市", "合肥市", "苏州市", "天津市", "长沙市", "上海市"],
        "dishName": ["红烧肉", "回锅肉", "水煮鱼"],
    }
    return ParameterExtractor(gazetteers=gazetteers).fit(_examples())


def test_learns_slots_kinds_and_labels(extractor: ParameterExtractor) -> None:
    assert extractor.is_fitted
    assert set(extractor.slots) == {
        "startDate_date",
        "startLoc_city",
        "endLoc_city",
        "dishName",
        "name",
    }
    assert extractor.slot_kind("startDate_date") == "time"
    assert extractor.slot_kind("startLoc_city") == "place"
    assert extractor.slot_kind("endLoc_city") == "place"
    assert extractor.slot_kind("datetime") == "time" and extractor.slot_kind("number") == "number"
    assert extractor.labels == ("cookbook.QUERY", "telephone.DIAL", "train.QUERY")


def test_context_decides_start_and_end(extractor: ParameterExtractor) -> None:
    params, stripped = extractor.extract_and_strip("帮我订后天从苏州到天津的火车票", "train.QUERY")
    assert [(p.slot, p.text, p.start, p.end) for p in params] == [
        ("startDate_date", "后天", 3, 5),
        ("startLoc_city", "苏州", 6, 8),
        ("endLoc_city", "天津", 9, 11),
    ]
    assert stripped == "帮我订<startDate_date>从<startLoc_city>到<endLoc_city>的火车票"
    # the reversed trip swaps the slots: context, not the value, decides
    reversed_ = {
        p.slot: p.value for p in extractor.extract("后天从天津到苏州的火车票", "train.QUERY")
    }
    assert reversed_["startLoc_city"] == "天津" and reversed_["endLoc_city"] == "苏州"


def test_same_task_other_parameters_strip_alike(extractor: ParameterExtractor) -> None:
    a = extractor.extract_and_strip("明天长沙到上海的火车票")[1]
    b = extractor.extract_and_strip("后天天津到苏州的火车票")[1]
    assert a == b == "<startDate_date><startLoc_city>到<endLoc_city>的火车票"


def test_label_restricts_slots(extractor: ParameterExtractor) -> None:
    params = extractor.extract("回锅肉怎么做", "cookbook.QUERY")
    assert [(p.slot, p.value) for p in params] == [("dishName", "回锅肉")]
    # with the telephone intent no city or date slot can be predicted
    for p in extractor.extract("打电话给北京的王小明", "telephone.DIAL"):
        assert p.slot not in {"startLoc_city", "endLoc_city", "startDate_date"}


def test_fallback_numbers_times_and_english(extractor: ParameterExtractor) -> None:
    detectors = ParameterExtractor().fit([])  # no examples: detectors only
    params = detectors.extract("我想看第十五集")
    assert [(p.slot, p.kind, p.text, p.value) for p in params] == [
        ("number", "number", "十五", "15")
    ]
    assert detectors.extract_and_strip("把张新涛的电话发给常胜宾")[1] == "把<name>的电话发给<name>"
    assert detectors.extract_and_strip("明天去南京出差")[1] == "<datetime>去<place>出差"
    params = detectors.extract("提醒我明天下午三点开会")
    assert [(p.slot, p.kind, p.value) for p in params] == [("datetime", "time", "明天下午3点")]
    english = extractor.extract("Book a train from Boston to New York on May 5 for 3 people")
    got = [(p.slot, p.kind, p.value) for p in english]
    assert ("place", "place", "boston") in got and ("place", "place", "new york") in got
    assert ("datetime", "time", "may 5") in got and ("number", "number", "3") in got
    plain = ParameterExtractor(fallback=False).fit([])
    assert plain.extract("Book a train from Boston tomorrow") == []


def test_gazetteer_fallback_respects_word_boundaries() -> None:
    extractor = ParameterExtractor(gazetteers={"railway_station": ["东商", "合肥"]}).fit([])
    assert [p.slot for p in extractor.extract("从合肥出发")] == ["railway_station"]
    assert "railway_station" not in {p.slot for p in extractor.extract("搜索京东商城")}


def test_request_errors_and_not_fitted(extractor: ParameterExtractor) -> None:
    with pytest.raises(NotFittedError):
        ParameterExtractor().extract("明天的火车")
    with pytest.raises(NotFittedError):
        ParameterExtractor().save("/nonexistent")
    for bad in ["", "   ", None, 3]:
        with pytest.raises(RequestError):
            extractor.extract(bad)  # type: ignore[arg-type]
    with pytest.raises(RequestError, match="limit"):
        ParameterExtractor(max_chars=5).fit([]).extract("123456")
    with pytest.raises(RequestError, match="label"):
        extractor.extract("明天的火车", label=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="LabelledRequest"):
        ParameterExtractor().fit([{"text": "x"}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="epochs"):
        ParameterExtractor(epochs=0)


def test_strip_validates_parameters(extractor: ParameterExtractor) -> None:
    text = "明天长沙到上海的火车票"
    params = extractor.extract(text)
    assert extractor.strip(text, list(reversed(params))) == extractor.strip(text, params)
    wrong = Parameter("city", "place", "北京", "北京", 2, 4)
    with pytest.raises(RequestError, match="not in the request"):
        extractor.strip(text, [wrong])
    a = Parameter("a", "value", "长沙", "长沙", 2, 4)
    b = Parameter("b", "value", "沙到", "沙到", 3, 5)
    with pytest.raises(RequestError, match="overlaps"):
        extractor.strip(text, [a, b])
    assert extractor.strip(text, []) == text


def test_global_jieba_dictionary_untouched() -> None:
    import jieba

    odd = "阿尔卡季耶夫斯克"
    ParameterExtractor(gazetteers={"city": [odd + "市"]}).fit([]).extract(f"去{odd}的火车")
    assert odd not in jieba.dt.FREQ and odd not in jieba.dt.user_word_tag_tab


def test_save_load_round_trip(extractor: ParameterExtractor, tmp_path: Path) -> None:
    extractor.save(tmp_path / "params")
    loaded = ParameterExtractor.load(tmp_path / "params")
    assert loaded.slots == extractor.slots and loaded.labels == extractor.labels
    for text, label in [
        ("帮我订后天从苏州到天津的火车票", "train.QUERY"),
        ("回锅肉怎么做", None),
        ("打电话给张伟", "telephone.DIAL"),
        ("Call Anna Smith at 5pm", None),
    ]:
        assert loaded.extract(text, label) == extractor.extract(text, label)
    meta = json.loads((tmp_path / "params" / "meta.json").read_text(encoding="utf-8"))
    assert meta["format"] == "langgraph_speculative.parameter_extractor"


def test_load_rejects_damage(extractor: ParameterExtractor, tmp_path: Path) -> None:
    target = tmp_path / "params"
    extractor.save(target)
    arrays = target / "arrays.npz"
    data = bytearray(arrays.read_bytes())
    data[len(data) // 2] ^= 0xFF
    arrays.write_bytes(bytes(data))
    with pytest.raises(CacheCorruptError, match="checksum"):
        ParameterExtractor.load(target)
    extractor.save(target)
    (target / "meta.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CacheCorruptError, match=r"meta\.json"):
        ParameterExtractor.load(target)
    with pytest.raises(CacheCorruptError):
        ParameterExtractor.load(tmp_path / "missing")
    extractor.save(target)
    meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    meta["format"] = "something.else"
    (target / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(CacheCorruptError, match="format"):
        ParameterExtractor.load(target)
    extractor.save(target)
    meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    meta["meta"]["tags"] = meta["meta"]["tags"][:-2]  # arrays no longer fit
    (target / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(CacheCorruptError, match="do not match"):
        ParameterExtractor.load(target)


# --- SMP2019: extraction quality on a seeded split ----------------------------------------


def _quality(
    extractor: ParameterExtractor, test: list[LabelledRequest], with_label: bool
) -> tuple[float, float, float, list[float]]:
    tp = fp = fn = exact = 0
    latencies: list[float] = []
    for ex in test:
        t0 = time.perf_counter()
        params, _ = extractor.extract_and_strip(ex.text, ex.label if with_label else None)
        latencies.append((time.perf_counter() - t0) * 1000)
        pred = Counter((p.slot, normalise_value(p.value)) for p in params)
        gold = Counter((k, normalise_value(v)) for k, v in ex.slots.items())
        tp += sum((pred & gold).values())
        fp += sum((pred - gold).values())
        fn += sum((gold - pred).values())
        first: dict[str, str] = {}
        for p in params:
            first.setdefault(p.slot, normalise_value(p.value))
        exact += first == {k: normalise_value(v) for k, v in ex.slots.items()}
    return tp / (tp + fp), tp / (tp + fn), exact / len(test), latencies


@pytest.mark.shared_data
def test_smp2019_extraction_quality(shared_data: Path, tmp_path: Path) -> None:
    data = load_labelled(shared_data / "smp2019" / "dev.json")
    train, test = stratified_split(data, test_fraction=0.5, seed=0)
    extractor = ParameterExtractor(gazetteers=load_gazetteers(shared_data / "smp2019" / "dic"))
    extractor.fit(train)
    # measured: P 0.847, R 0.820, exact 0.780 with the gold intent
    precision, recall, exact, latencies = _quality(extractor, test, with_label=True)
    assert precision >= 0.81 and recall >= 0.78 and exact >= 0.74, (precision, recall, exact)
    # measured: P 0.724, R 0.696, exact 0.646 without it
    precision, recall, exact, _ = _quality(extractor, test, with_label=False)
    assert precision >= 0.68 and recall >= 0.65 and exact >= 0.60, (precision, recall, exact)
    assert statistics.median(latencies) > 0
    extractor.save(tmp_path / "smp")
    loaded = ParameterExtractor.load(tmp_path / "smp")
    for ex in test[:100]:
        assert loaded.extract(ex.text, ex.label) == extractor.extract(ex.text, ex.label)


# --- list-valued (multi-valued) slots ---------------------------------------------------

_MATCHES = [
    ("湖人", "勇士", "{a}对{b}的比赛"),
    ("火箭", "马刺", "{a}对{b}的比赛"),
    ("热火", "公牛", "今晚{a}对阵{b}"),
    ("快船", "掘金", "{a}和{b}的比分"),
    ("湖人", "火箭", "{a}对{b}谁赢了"),
    ("勇士", "热火", "{a}和{b}的比分"),
    ("马刺", "快船", "今晚{a}对阵{b}"),
    ("公牛", "掘金", "{a}对{b}谁赢了"),
    ("凯尔特人", "尼克斯", "{a}对{b}的比赛"),
]


def _match_examples() -> list[LabelledRequest]:
    return [
        LabelledRequest(p.format(a=a, b=b), "sports", "MATCH", {"name": [a, b]})
        for a, b, p in _MATCHES
    ]


@pytest.fixture(scope="module")
def team_extractor() -> ParameterExtractor:
    teams = {t for a, b, _ in _MATCHES for t in (a, b)} | {"雷霆", "篮网"}  # a team list
    return ParameterExtractor(gazetteers={"team": sorted(teams)}).fit(
        _examples() + _match_examples()
    )


def test_gold_spans_locate_every_value_of_a_list() -> None:
    spans = ParameterExtractor._gold_spans("湖人对勇士的比赛", {"name": ("湖人", "勇士")})
    assert spans == [(0, 2, "name"), (3, 5, "name")]
    # the same value twice: two occurrences, never overlapping
    spans = ParameterExtractor._gold_spans("湖人对湖人", {"name": ["湖人", "湖人"], "x": "人对"})
    assert spans == [(0, 2, "name"), (3, 5, "name")]


def test_multi_valued_slots_are_learned_per_intent(team_extractor: ParameterExtractor) -> None:
    assert team_extractor.multi_valued("name", "sports.MATCH")
    assert not team_extractor.multi_valued("name", "telephone.DIAL")  # one contact there
    assert not team_extractor.multi_valued("dishName", "cookbook.QUERY")
    assert team_extractor.multi_valued("name")  # any intent
    assert team_extractor.multi_valued("name", "never.SEEN")
    assert not team_extractor.multi_valued("dishName")


@pytest.mark.parametrize(
    ("text", "teams", "stripped"),
    [
        ("勇士对马刺的比赛", ["勇士", "马刺"], "<name>对<name>的比赛"),  # an unseen pair
        ("热火和湖人的比分", ["热火", "湖人"], "<name>和<name>的比分"),
        ("雷霆对篮网的比赛", ["雷霆", "篮网"], "<name>对<name>的比赛"),  # teams never trained on
    ],
)
def test_every_value_of_a_list_slot_is_extracted_and_stripped(
    team_extractor: ParameterExtractor, text: str, teams: list[str], stripped: str
) -> None:
    params, got = team_extractor.extract_and_strip(text, "sports.MATCH")
    assert [(p.slot, p.value) for p in params] == [("name", t) for t in teams]
    assert got == stripped
    assert team_extractor.strip(text, params) == stripped


def test_multi_valued_slots_survive_save_and_load(
    team_extractor: ParameterExtractor, tmp_path: Path
) -> None:
    target = tmp_path / "params"
    team_extractor.save(target)
    loaded = ParameterExtractor.load(target)
    assert loaded.multi_valued("name", "sports.MATCH")
    assert not loaded.multi_valued("name", "telephone.DIAL")
    text = "勇士对马刺的比赛"
    assert loaded.extract(text, "sports.MATCH") == team_extractor.extract(text, "sports.MATCH")
    # a file saved before multi-valued slots existed: loads, no slot multi-valued
    document = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    del document["meta"]["multi_slots"]
    (target / "meta.json").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    old = ParameterExtractor.load(target)
    assert not old.multi_valued("name", "sports.MATCH") and not old.multi_valued("name")
    assert old.extract(text, "sports.MATCH") == team_extractor.extract(text, "sports.MATCH")
