from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from langgraph_speculative.cache.training_data import (
    LabelledRequest,
    hold_out_domains,
    load_labelled,
    load_labelled_report,
    slot_values,
    stratified_split,
)
from langgraph_speculative.errors import DataFormatError, SkippedRecord


def _req(text: str, domain: str = "train", intent: str = "QUERY", **slots: str) -> LabelledRequest:
    return LabelledRequest(text, domain, intent, slots)


def test_labelled_request_label_equality_and_hash() -> None:
    a = _req("合肥到北京的火车", startLoc_city="合肥", endLoc_city="北京")
    b = _req("合肥到北京的火车", endLoc_city="北京", startLoc_city="合肥")
    assert a.label == "train.QUERY"
    assert a == b and hash(a) == hash(b)
    assert a != _req("合肥到北京的火车", intent="BOOK", startLoc_city="合肥", endLoc_city="北京")
    assert len({a, b}) == 1


def test_labelled_request_slots_are_read_only_copies() -> None:
    slots = {"dishName": "红烧肉"}
    req = LabelledRequest("红烧肉怎么做", "cookbook", "QUERY", slots)
    slots["dishName"] = "changed"
    assert req.slots["dishName"] == "红烧肉"
    with pytest.raises(TypeError):
        req.slots["dishName"] = "x"  # type: ignore[index]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_labelled_json_array_and_json_lines(tmp_path: Path) -> None:
    records = [
        {"text": "播放断点", "domain": "music", "intent": "PLAY", "slots": {"song": "断点"}},
        {"text": "讲个笑话", "domain": "joke", "intent": "QUERY"},
        {"text": "打开微信", "domain": "app", "intent": "LAUNCH", "slots": None},
    ]
    array = load_labelled(_write(tmp_path, "a.json", json.dumps(records, ensure_ascii=False)))
    lines = load_labelled(
        _write(
            tmp_path,
            "a.jsonl",
            "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n\n",
        )
    )
    assert array == lines
    assert [r.label for r in array] == ["music.PLAY", "joke.QUERY", "app.LAUNCH"]
    assert array[0].slots == {"song": "断点"} and array[1].slots == {} and array[2].slots == {}


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"domain": "music", "intent": "PLAY"}, "text"),
        ({"text": "  ", "domain": "music", "intent": "PLAY"}, "text"),
        ({"text": "x", "domain": 3, "intent": "PLAY"}, "domain"),
        ({"text": "x", "domain": "music", "intent": ""}, "intent"),
        ({"text": "x", "domain": "music", "intent": "PLAY", "slots": ["a"]}, "slots"),
        ({"text": "x", "domain": "music", "intent": "PLAY", "slots": {"song": 3}}, "slots"),
        ({"text": "x", "domain": "music", "intent": "PLAY", "slots": {"": "x"}}, "slots"),
    ],
)
def test_load_labelled_names_record_and_field(
    tmp_path: Path, record: dict[str, object], field: str
) -> None:
    good = {"text": "播放断点", "domain": "music", "intent": "PLAY", "slots": {}}
    path = _write(tmp_path, "bad.json", json.dumps([good, record], ensure_ascii=False))
    with pytest.raises(DataFormatError) as info:
        load_labelled(path)
    assert info.value.record_id == "1"
    assert repr(field) in str(info.value)


def test_load_labelled_rejects_non_objects_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError) as info:
        load_labelled(_write(tmp_path, "a.json", '["just a string"]'))
    assert info.value.record_id == "0"
    with pytest.raises(DataFormatError, match="not valid JSON"):
        load_labelled(_write(tmp_path, "b.json", '[{"text": '))
    with pytest.raises(DataFormatError, match="line 2"):
        load_labelled(_write(tmp_path, "c.jsonl", '{"text": "a"}\n{oops}\n'))
    with pytest.raises(FileNotFoundError):
        load_labelled(tmp_path / "missing.json")


# -- list-valued (multi-valued) slots --------------------------------------------------
MATCH = {
    "text": "今晚湖人对勇士的比赛",
    "domain": "match",
    "intent": "QUERY",
    "slots": {"name": ["湖人", "勇士"], "datetime_date": "今晚"},
}


def test_list_valued_slots_load_as_tuples(tmp_path: Path) -> None:
    song = {"text": "播放断点", "domain": "music", "intent": "PLAY", "slots": {"song": "断点"}}
    records = [MATCH, song]
    array = load_labelled(_write(tmp_path, "a.json", json.dumps(records, ensure_ascii=False)))
    lines = load_labelled(
        _write(tmp_path, "a.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in records))
    )
    assert array == lines
    match = array[0]
    assert match.slots == {"name": ("湖人", "勇士"), "datetime_date": "今晚"}
    assert isinstance(match.slots["name"], tuple)
    assert slot_values(match.slots["name"]) == ("湖人", "勇士")
    assert slot_values(match.slots["datetime_date"]) == ("今晚",)
    # a list given to the constructor is stored as a tuple: equal and hashable alike
    built = LabelledRequest(
        match.text, "match", "QUERY", {"datetime_date": "今晚", "name": ["湖人", "勇士"]}
    )
    assert built == match and hash(built) == hash(match) and len({built, match}) == 1
    swapped = {"datetime_date": "今晚", "name": ["勇士", "湖人"]}  # order counts
    assert built != LabelledRequest(match.text, "match", "QUERY", swapped)


@pytest.mark.parametrize(
    ("slots", "match"),
    [
        ({"name": []}, "non-empty list"),
        ({"name": ["湖人", ""]}, "non-empty list"),
        ({"name": ["湖人", 3]}, "non-empty list"),
        ({"name": ""}, "non-empty string"),
        ({"name": ["湖人", "火箭"]}, "'火箭' is not a substring"),
        ({"name": "火箭"}, "'火箭' is not a substring"),
    ],
)
def test_bad_slot_values_name_the_record(
    tmp_path: Path, slots: dict[str, object], match: str
) -> None:
    bad = {"text": "湖人对勇士的比赛", "domain": "match", "intent": "QUERY", "slots": slots}
    path = _write(tmp_path, "bad.json", json.dumps([MATCH, bad], ensure_ascii=False))
    with pytest.raises(DataFormatError, match=match) as info:
        load_labelled(path)
    assert info.value.record_id == "1" and "'slots'" in str(info.value)


def test_substring_check_folds_width_and_case(tmp_path: Path) -> None:
    record = {"text": "打开ＣＣＴＶ５", "domain": "tv", "intent": "PLAY", "slots": {"ch": "cctv5"}}
    path = _write(tmp_path, "a.json", json.dumps([record], ensure_ascii=False))
    assert load_labelled(path)[0].slots == {"ch": "cctv5"}


def _mixed_records() -> list[object]:
    return [
        MATCH,  # 0: good, a list slot
        {"domain": "music", "intent": "PLAY"},  # 1: no text
        {"text": "播放断点", "domain": "music", "intent": "PLAY", "slots": ["断点"]},  # 2
        {"text": "播放断点", "domain": "music", "intent": "PLAY", "slots": {"song": ""}},  # 3
        {"text": "播放断点", "domain": "music", "intent": "PLAY", "slots": {"song": "晴天"}},  # 4
        "just a string",  # 5
        {"text": "播放断点", "domain": "music", "intent": "PLAY", "slots": {"song": "断点"}},  # 6
        {"text": "讲个笑话", "domain": "joke"},  # 7: no intent
    ]


def test_load_labelled_report_skips_and_reports_bad_records(tmp_path: Path) -> None:
    path = _write(tmp_path, "mixed.json", json.dumps(_mixed_records(), ensure_ascii=False))
    requests, skipped = load_labelled_report(path)
    assert [r.text for r in requests] == ["今晚湖人对勇士的比赛", "播放断点"]
    assert requests[0].slots["name"] == ("湖人", "勇士")
    assert [s.id for s in skipped] == ["1", "2", "3", "4", "5", "7"]
    reasons = {int(s.id): s.reason for s in skipped}
    assert "'text'" in reasons[1] and "'slots'" in reasons[2] and "'slots'" in reasons[3]
    assert "not a substring" in reasons[4] and "JSON object" in reasons[5]
    assert "'intent'" in reasons[7]
    assert all(s.line is None and s.kind == "malformed" for s in skipped)
    assert skipped[0].to_json() == {
        "id": "1",
        "reason": reasons[1],
        "kind": "malformed",
        "file": "mixed.json",
        "line": None,
    }
    # the same records through the lenient load_labelled, and the strict one
    assert load_labelled(path, strict=False) == requests
    with pytest.raises(DataFormatError) as info:
        load_labelled(path)
    assert info.value.record_id == "1" and "'text'" in str(info.value)
    with pytest.raises(DataFormatError):
        load_labelled_report(path, strict=True)


def test_json_lines_bad_lines_are_skipped_with_their_line(tmp_path: Path) -> None:
    good = json.dumps(MATCH, ensure_ascii=False)
    text = "\n".join([good, "{oops}", "", '{"text": "x", "domain": "d"}', good]) + "\n"
    path = _write(tmp_path, "mixed.jsonl", text)
    requests, skipped = load_labelled_report(path)
    assert len(requests) == 2
    assert skipped == [
        SkippedRecord("1", skipped[0].reason, "malformed", "mixed.jsonl", 2),
        SkippedRecord("2", skipped[1].reason, "malformed", "mixed.jsonl", 4),
    ]
    assert "line 2 is not valid JSON" in skipped[0].reason and "'intent'" in skipped[1].reason
    assert skipped[0].to_json()["line"] == 2
    with pytest.raises(DataFormatError, match="line 2") as info:
        load_labelled(path)
    assert info.value.record_id == "1"


def test_a_file_that_is_not_json_still_raises_when_skipping(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="not valid JSON"):
        load_labelled_report(_write(tmp_path, "a.json", '[{"text": '))
    with pytest.raises(DataFormatError, match="nor JSON Lines"):
        load_labelled_report(_write(tmp_path, "b.txt", "text,domain,intent\n播放断点,music,PLAY\n"))
    assert load_labelled_report(_write(tmp_path, "c.jsonl", "\n\n")) == ([], [])


def _dataset() -> list[LabelledRequest]:
    out = [_req(f"火车{i}") for i in range(10)]
    out += [_req(f"菜{i}", domain="cookbook") for i in range(6)]
    out += [_req("唯一", domain="joke")]
    out += [_req(f"歌{i}", domain="music", intent="PLAY") for i in range(2)]
    return out


def test_stratified_split_keeps_proportions_and_is_deterministic() -> None:
    data = _dataset()
    train, test = stratified_split(data, test_fraction=0.5, seed=3)
    assert sorted(map(hash, train + test)) == sorted(map(hash, data))
    counts = Counter(r.label for r in test)
    assert counts == {"train.QUERY": 5, "cookbook.QUERY": 3, "music.PLAY": 1}
    assert any(r.domain == "joke" for r in train)  # a class of one is never tested
    assert (train, test) == stratified_split(data, test_fraction=0.5, seed=3)
    assert stratified_split(data, test_fraction=0.5, seed=4)[1] != test
    # train and test each keep the input order
    assert [data.index(r) for r in test] == sorted(data.index(r) for r in test)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_stratified_split_rejects_bad_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(_dataset(), test_fraction=fraction, seed=0)


def test_hold_out_domains() -> None:
    data = _dataset()
    kept, held = hold_out_domains(data, ["cookbook", "joke"])
    assert {r.domain for r in held} == {"cookbook", "joke"} and len(held) == 7
    assert {r.domain for r in kept} == {"train", "music"} and len(kept) == 12
    with pytest.raises(ValueError, match="weather"):
        hold_out_domains(data, ["weather"])
    with pytest.raises(ValueError, match="at least one"):
        hold_out_domains(data, [])


@pytest.mark.shared_data
def test_smp2019_dev_loads(shared_data: Path) -> None:
    data = load_labelled(shared_data / "smp2019" / "dev.json")
    assert len(data) == 2066
    assert len({r.label for r in data}) == 48
    assert all(v in r.text for r in data for v in r.slots.values())
    train, test = stratified_split(data, test_fraction=0.5, seed=0)
    assert abs(len(test) - len(data) / 2) < 30
    assert {r.label for r in test} <= {r.label for r in train}


@pytest.mark.parametrize(
    ("text", "match"),
    [(42, "string"), ("", "empty"), ("  \n", "empty"), ("x" * 11, "11 characters.*limit_x")],
)
def test_check_request_names_what_is_wrong(text: object, match: str) -> None:
    from langgraph_speculative.cache.training_data import check_request
    from langgraph_speculative.errors import RequestError

    with pytest.raises(RequestError, match=match):
        check_request(text, 10, limit_name="limit_x")
    assert check_request("ok", 10) == "ok"
