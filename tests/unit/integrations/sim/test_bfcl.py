from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO_ROOT

from langgraph_speculative.errors import DataFormatError
from langgraph_speculative.integrations.sim.bfcl import (
    MULTI_TURN_FUNC_DOC_FILES,
    bfcl_category,
    load_bfcl,
    parse_call,
)
from langgraph_speculative.integrations.sim.latency import LatencyModel
from langgraph_speculative.integrations.sim.scripted_tasks import ScriptedTask
from langgraph_speculative.integrations.sim.tools import make_simulated_tools

ZERO = LatencyModel.zero()


def write_jsonl(path: Path, records: Iterable[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines), encoding="utf-8")  # BFCL: no trailing newline
    return path


def fn(name: str, props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "description": name,
        "parameters": {"type": "dict", "properties": props, "required": required or []},
    }


def question(*turns: str) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": t}] for t in turns]


PLAY = fn(
    "spotify.play", {"artist": {"type": "string"}, "duration": {"type": "integer"}}, ["artist"]
)
WEATHER = fn(
    "get_weather",
    {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    ["city"],
)


def single_files(
    tmp_path: Path, records: list[Any], answers: list[Any], category: str = "parallel"
) -> tuple[Path, Path]:
    name = f"BFCL_v4_{category}.json"
    return (
        write_jsonl(tmp_path / name, records),
        write_jsonl(tmp_path / "possible_answer" / name, answers),
    )


def parallel_record(rid: str = "parallel_0") -> tuple[dict[str, Any], dict[str, Any]]:
    record = {
        "id": rid,
        "question": [
            [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "Play Taylor Swift for 20 and Maroon 5 for 15."},
            ]
        ],
        "function": [PLAY, WEATHER],
    }
    answer = {
        "id": rid,
        "ground_truth": [
            {"spotify.play": {"artist": ["Taylor Swift", "taylor swift"], "duration": [20]}},
            {"spotify.play": {"artist": ["Maroon 5"], "duration": [15, ""]}},
        ],
    }
    return record, answer


# --- single turn ----------------------------------------------------------------------------


def test_single_turn_parallel(tmp_path: Path) -> None:
    record, answer = parallel_record()
    data, answers = single_files(tmp_path, [record], [answer])
    (task,) = load_bfcl(data, answers, answer_tokens=7)
    assert task.id == "parallel_0"
    assert task.question == "Play Taylor Swift for 20 and Maroon 5 for 15."
    assert task.functions == (PLAY, WEATHER)  # BFCL schemas kept as they are
    assert task.answer_tokens == 7
    assert [(c.id, c.name, dict(c.args), c.depends_on) for c in task.calls] == [
        ("0", "spotify.play", {"artist": "Taylor Swift", "duration": 20}, ()),
        ("1", "spotify.play", {"artist": "Maroon 5"}, ()),  # "" acceptable: left out
    ]


def test_required_parameter_accepting_empty_uses_other_value(tmp_path: Path) -> None:
    record = {"id": "s_0", "question": question("weather?"), "function": [WEATHER]}
    answer = {
        "id": "s_0",
        "ground_truth": [{"get_weather": {"city": ["", "Paris"], "unit": ["", "c"]}}],
    }
    data, answers = single_files(tmp_path, [record], [answer], "simple_python")
    (task,) = load_bfcl(data, answers)
    assert dict(task.calls[0].args) == {"city": "Paris"}


def test_nested_dict_answers(tmp_path: Path) -> None:
    find = fn(
        "find",
        {
            "budget": {
                "type": "dict",
                "properties": {"min": {"type": "float"}, "max": {"type": "float"}},
                "required": ["min"],
            },
            "conditions": {
                "type": "array",
                "items": {"type": "dict", "properties": {"field": {"type": "string"}}},
            },
        },
    )
    record = {"id": "m_0", "question": question("find"), "function": [find]}
    truth = {
        "budget": [{"min": [300], "max": [400, ""]}],
        "conditions": [[{"field": ["age", "Age"]}]],
    }
    answer = {"id": "m_0", "ground_truth": [{"find": truth}]}
    data, answers = single_files(tmp_path, [record], [answer], "multiple")
    (task,) = load_bfcl(data, answers)
    args = dict(task.calls[0].args)
    assert args == {"budget": {"min": 300}, "conditions": [{"field": "age"}]}
    (tool,) = make_simulated_tools(task.functions, latency=ZERO)
    tool.invoke(args)


def test_single_turn_rejects_merge(tmp_path: Path) -> None:
    record, answer = parallel_record()
    data, answers = single_files(tmp_path, [record], [answer])
    with pytest.raises(ValueError, match="merge"):
        load_bfcl(data, answers, merge=2)
    with pytest.raises(ValueError, match="merge"):
        load_bfcl(data, answers, merge=0)
    with pytest.raises(ValueError, match="limit"):
        load_bfcl(data, answers, limit=-1)


def test_limit_shuffles_with_seed(tmp_path: Path) -> None:
    pairs = [parallel_record(f"parallel_{i}") for i in range(10)]
    data, answers = single_files(tmp_path, [p[0] for p in pairs], [p[1] for p in pairs])
    ids = [t.id for t in load_bfcl(data, answers)]
    assert ids == [f"parallel_{i}" for i in range(10)]  # no limit: file order
    some = [t.id for t in load_bfcl(data, answers, limit=4, seed=1)]
    assert len(some) == 4 and set(some) <= set(ids)
    assert some == [t.id for t in load_bfcl(data, answers, limit=4, seed=1)]
    assert len(load_bfcl(data, answers, limit=100)) == 10
    orders = {tuple(t.id for t in load_bfcl(data, answers, limit=10, seed=s)) for s in range(5)}
    assert len(orders) > 1


def test_category_detection() -> None:
    assert bfcl_category("x/BFCL_v4_parallel.json") == "parallel"
    assert bfcl_category("BFCL_v3_multi_turn_base.json") == "multi_turn_base"
    assert bfcl_category("records.jsonl") is None


@pytest.mark.parametrize("category", ["memory", "web_search", "irrelevance"])
def test_categories_without_calls_are_refused(tmp_path: Path, category: str) -> None:
    record, answer = parallel_record()
    data, answers = single_files(tmp_path, [record], [answer], category)
    with pytest.raises(ValueError, match="cannot be played"):
        load_bfcl(data, answers)


def test_unknown_category_is_read_by_shape(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record, answer = parallel_record()
    data, answers = single_files(tmp_path, [record], [answer], "brand_new_category")
    (task,) = load_bfcl(data, answers)
    assert task.id == "parallel_0"
    assert "brand_new_category" in caplog.text


def test_multi_turn_variants_read_like_base(tmp_path: Path) -> None:
    data, answers = standard_mt(tmp_path)
    for variant in ("multi_turn_miss_param", "multi_turn_long_context"):
        name = f"BFCL_v4_{variant}.json"
        (tmp_path / name).write_bytes(data.read_bytes())
        (tmp_path / "possible_answer" / name).write_bytes(answers.read_bytes())
        tasks = load_bfcl(tmp_path / name, tmp_path / "possible_answer" / name)
        assert [t.id for t in tasks] == ["mt_0", "mt_1", "mt_2"]


def test_missed_functions_are_not_offered_in_turn_0(tmp_path: Path) -> None:
    record = mt_record("mf_0", ["GorillaFileSystem"], "Sort it.")
    record["missed_function"] = {"1": ["sort"]}
    data, answers = mt_files(tmp_path, [record], [mt_answer("mf_0", ["cd(folder='a')"])])
    (task,) = load_bfcl(data, answers)
    assert "sort" not in {f["name"] for f in task.functions}
    record["missed_function"] = {"1": ["cd"]}
    data, answers = mt_files(tmp_path, [record], [mt_answer("mf_0", ["cd(folder='a')"])])
    loaded = load_bfcl(data, answers)
    assert not loaded and loaded.skipped[0].kind == "invalid"


# --- malformed single-turn records ----------------------------------------------------------


def expect_error(tmp_path: Path, records: list[Any], answers: list[Any], needle: str) -> str:
    data, ans = single_files(tmp_path, records, answers)
    with pytest.raises(DataFormatError) as info:
        load_bfcl(data, ans, strict=True)
    message = str(info.value)
    assert needle in message, message
    loaded = load_bfcl(data, ans)  # not strict: the bad record is skipped and reported
    assert loaded.skipped and any(needle in f"{s.id}: {s.reason}" for s in loaded.skipped)
    return message


def test_bad_json_line(tmp_path: Path) -> None:
    good, answer = parallel_record("parallel_0")
    broken = '{"id": "parallel_1", "question": [[{"role": "user"'
    message = expect_error(tmp_path, [good, broken], [answer], "parallel_1")
    assert "line 2" in message


@pytest.mark.parametrize("field", ["question", "function"])
def test_missing_record_field(tmp_path: Path, field: str) -> None:
    record, answer = parallel_record("parallel_7")
    del record[field]
    expect_error(tmp_path, [record], [answer], "parallel_7")


def test_missing_id(tmp_path: Path) -> None:
    record, answer = parallel_record()
    del record["id"]
    expect_error(tmp_path, [record], [answer], "line 1")


def test_missing_ground_truth(tmp_path: Path) -> None:
    record, answer = parallel_record("parallel_3")
    del answer["ground_truth"]
    expect_error(tmp_path, [record], [answer], "parallel_3")


def test_answer_calls_unknown_function(tmp_path: Path) -> None:
    record, answer = parallel_record("parallel_4")
    answer["ground_truth"].append({"book_flight": {"to": ["Rome"]}})
    message = expect_error(tmp_path, [record], [answer], "parallel_4")
    assert "book_flight" in message


def test_answer_unknown_parameter(tmp_path: Path) -> None:
    record, answer = parallel_record("parallel_5")
    answer["ground_truth"][0]["spotify.play"]["volume"] = [3]
    expect_error(tmp_path, [record], [answer], "volume")


def test_record_without_answer(tmp_path: Path) -> None:
    record, answer = parallel_record("parallel_8")
    other, _ = parallel_record("parallel_9")
    expect_error(tmp_path, [record, other], [answer], "parallel_9")


def test_duplicate_id(tmp_path: Path) -> None:
    record, answer = parallel_record("parallel_2")
    expect_error(tmp_path, [record, record], [answer], "parallel_2")


# --- multi turn -----------------------------------------------------------------------------

FS_DOCS = [
    fn("cd", {"folder": {"type": "string"}}, ["folder"]),
    fn("mkdir", {"dir_name": {"type": "string"}}, ["dir_name"]),
    fn(
        "mv",
        {"source": {"type": "string"}, "destination": {"type": "string"}},
        ["source", "destination"],
    ),
    fn("sort", {"file_name": {"type": "string"}}, ["file_name"]),
    fn("ls", {"a": {"type": "boolean"}}),
]
MATH_DOCS = [
    fn("add", {"a": {"type": "float"}, "b": {"type": "float"}}, ["a", "b"]),
    fn("mean", {"numbers": {"type": "array", "items": {"type": "float"}}}, ["numbers"]),
]


def mt_record(rid: str, classes: list[str], first: str, excluded: list[str] | None = None) -> Any:
    record: dict[str, Any] = {
        "id": rid,
        "question": question(first, "second turn (ignored)"),
        "initial_config": {},
        "path": [],
        "involved_classes": classes,
    }
    if excluded is not None:
        record["excluded_function"] = excluded
    return record


def mt_files(tmp_path: Path, records: list[Any], answers: list[Any]) -> tuple[Path, Path]:
    docs = tmp_path / "multi_turn_func_doc"
    write_jsonl(docs / "gorilla_file_system.json", FS_DOCS)
    write_jsonl(docs / "math_api.json", MATH_DOCS)
    name = "BFCL_v4_multi_turn_base.json"
    return (
        write_jsonl(tmp_path / name, records),
        write_jsonl(tmp_path / "possible_answer" / name, answers),
    )


def mt_answer(rid: str, *turns: list[str]) -> dict[str, Any]:
    return {"id": rid, "ground_truth": list(turns)}


def standard_mt(tmp_path: Path) -> tuple[Path, Path]:
    records = [
        mt_record("mt_0", ["GorillaFileSystem"], "Move the report.", excluded=["ls"]),
        mt_record("mt_1", ["MathAPI"], "Add and average."),
        mt_record("mt_2", ["GorillaFileSystem", "MathAPI"], "Sort it."),
    ]
    answers = [
        mt_answer(
            "mt_0",
            ["cd(folder='document')", "mkdir(dir_name='temp')", "mv('final.pdf', 'temp')"],
            ["cd(folder='..')"],
        ),
        mt_answer("mt_1", ["add(1, b=2.5)", "mean(numbers=[1, 2, (3)])"]),
        mt_answer("mt_2", ["sort('final_report.pdf')"]),
    ]
    return mt_files(tmp_path, records, answers)


def test_multi_turn_chains(tmp_path: Path) -> None:
    tasks = load_bfcl(*standard_mt(tmp_path))
    assert [t.id for t in tasks] == ["mt_0", "mt_1", "mt_2"]
    t0, t1, t2 = tasks
    assert t0.question == "Move the report."  # turn 0 only
    assert [(c.id, c.name, dict(c.args), c.depends_on) for c in t0.calls] == [
        ("r0.0", "cd", {"folder": "document"}, ()),
        ("r0.1", "mkdir", {"dir_name": "temp"}, ("r0.0",)),
        ("r0.2", "mv", {"source": "final.pdf", "destination": "temp"}, ("r0.1",)),
    ]
    assert {f["name"] for f in t0.functions} == {"cd", "mkdir", "mv", "sort"}  # ls excluded
    assert [dict(c.args) for c in t1.calls] == [{"a": 1, "b": 2.5}, {"numbers": [1, 2, 3]}]
    assert {f["name"] for f in t2.functions} == {f["name"] for f in FS_DOCS + MATH_DOCS}
    assert dict(t2.calls[0].args) == {"file_name": "final_report.pdf"}


def test_multi_turn_merge(tmp_path: Path) -> None:
    data, answers = standard_mt(tmp_path)
    tasks = load_bfcl(data, answers, merge=2, seed=0)
    assert len(tasks) == 1  # 3 records, groups of 2: the incomplete last group is dropped
    (task,) = tasks
    rids = task.id.split("+")
    assert len(rids) == 2 and len(set(rids)) == 2 and set(rids) <= {"mt_0", "mt_1", "mt_2"}
    questions = {"mt_0": "Move the report.", "mt_1": "Add and average.", "mt_2": "Sort it."}
    assert task.question == "\n".join(questions[r] for r in rids)
    names = [f["name"] for f in task.functions]
    assert len(names) == len(set(names))
    chains: dict[str, list[Any]] = {}
    for call in task.calls:
        chains.setdefault(call.id.split(".")[0], []).append(call)
    assert sorted(chains) == ["r0", "r1"]
    for prefix, chain in chains.items():
        assert chain[0].depends_on == ()
        for prev, call in itertools.pairwise(chain):
            assert call.depends_on == (prev.id,)
            assert call.id.startswith(prefix + ".")
    assert load_bfcl(data, answers, merge=2, seed=0)[0].id == task.id  # seeded
    merged = {load_bfcl(data, answers, merge=2, seed=s)[0].id for s in range(10)}
    assert len(merged) > 1
    assert len(load_bfcl(data, answers, merge=3)) == 1
    assert list(load_bfcl(data, answers, merge=4)) == []


def test_multi_turn_calls_validate(tmp_path: Path) -> None:
    for task in load_bfcl(*standard_mt(tmp_path), merge=2):
        check_calls_validate(task)


@pytest.mark.parametrize(
    ("classes", "truth", "needle"),
    [
        (["GorillaFileSystem"], ["cd(folder=name)"], "not a literal"),
        (["GorillaFileSystem"], ["cd(folder='a'"], "cannot parse"),
        (["GorillaFileSystem"], ["os.system('ls')"], "plain function"),
        (["GorillaFileSystem"], ["rm(file_name='x')"], "rm"),
        (["GorillaFileSystem"], ["ls(a=True)"], "ls"),  # excluded below
        (["GorillaFileSystem"], ["cd('a', 'b')"], "positional"),
        (["GorillaFileSystem"], ["cd(dir='a')"], "no parameter"),
        (["GorillaFileSystem"], ["cd(**{'folder': 'a'})"], "**"),
        (["GorillaFileSystem"], ["mean(numbers={1, 2})"], "mean"),
        (["MathAPI"], ["mean(numbers={1, 2})"], "JSON"),
        (["NoSuchAPI"], ["cd(folder='a')"], "NoSuchAPI"),
    ],
)
def test_multi_turn_malformed(
    tmp_path: Path, classes: list[str], truth: list[str], needle: str
) -> None:
    record = mt_record("mt_bad", classes, "q", excluded=["ls"])
    data, answers = mt_files(tmp_path, [record], [mt_answer("mt_bad", truth)])
    with pytest.raises(DataFormatError) as info:
        load_bfcl(data, answers, strict=True)
    assert "mt_bad" in str(info.value) and needle in str(info.value), str(info.value)
    (skipped,) = load_bfcl(data, answers).skipped
    assert skipped.id == "mt_bad" and needle in skipped.reason


def test_multi_turn_missing_answer(tmp_path: Path) -> None:
    record = mt_record("mt_lonely", ["MathAPI"], "q")
    data, answers = mt_files(tmp_path, [record], [])
    with pytest.raises(DataFormatError, match="mt_lonely"):
        load_bfcl(data, answers, strict=True)
    assert [s.kind for s in load_bfcl(data, answers).skipped] == ["malformed"]


# --- records that cannot be played, mixed with good ones ---------------------------------------

INTS = fn("sort_list", {"elements": {"type": "array", "items": {"type": "integer"}}}, ["elements"])
MODE = fn("set_mode", {"mode": {"type": "string", "enum": ["eco", "sport"]}}, ["mode"])


def mixed_files(tmp_path: Path) -> tuple[Path, Path]:
    good, good_answer = parallel_record("p_good")
    later, later_answer = parallel_record("p_later")
    records: list[Any] = [
        good,
        {"id": "p_ints", "question": question("sort"), "function": [INTS]},
        {"id": "p_enum", "question": question("mode"), "function": [MODE]},
        '{"id": "p_broken", "question": [[',  # not JSON
        {"id": "p_noanswer", "question": question("x"), "function": [WEATHER]},
        {"id": "p_unknown", "question": question("x"), "function": [WEATHER]},
        {"id": "p_required", "question": question("x"), "function": [WEATHER]},
        later,
    ]
    answers: list[Any] = [
        good_answer,
        {"id": "p_ints", "ground_truth": [{"sort_list": {"elements": [["apple", "pear"]]}}]},
        {"id": "p_enum", "ground_truth": [{"set_mode": {"mode": ["turbo"]}}]},
        {"id": "p_unknown", "ground_truth": [{"get_forecast": {"city": ["Rome"]}}]},
        {"id": "p_required", "ground_truth": [{"get_weather": {"city": [""]}}]},
        later_answer,
    ]
    return single_files(tmp_path, records, answers)


def test_unplayable_records_are_skipped_and_reported(tmp_path: Path) -> None:
    data, answers = mixed_files(tmp_path)
    loaded = load_bfcl(data, answers)
    assert [t.id for t in loaded] == ["p_good", "p_later"]
    assert len(loaded) == 2 and loaded[1].id == "p_later"
    why = {s.id: s for s in loaded.skipped}
    assert list(why) == ["p_broken", "p_ints", "p_enum", "p_noanswer", "p_unknown", "p_required"]
    assert why["p_ints"].kind == "invalid"
    assert "sort_list" in why["p_ints"].reason and "elements.0" in why["p_ints"].reason
    assert "integer" in why["p_ints"].reason and "apple" in why["p_ints"].reason
    assert "mode" in why["p_enum"].reason and "turbo" in why["p_enum"].reason
    assert (why["p_broken"].kind, why["p_broken"].line) == ("malformed", 4)
    assert why["p_noanswer"].kind == "malformed"
    assert "get_forecast" in why["p_unknown"].reason
    assert "required" in why["p_required"].reason
    assert all(s.file == data.name for s in loaded.skipped)
    doc = json.loads(json.dumps([s.to_json() for s in loaded.skipped]))
    assert doc[1] == {
        "id": "p_ints",
        "reason": why["p_ints"].reason,
        "kind": "invalid",
        "file": data.name,
        "line": 2,
    }
    assert "skipped 6 record(s) (4 invalid, 2 malformed)" in loaded.skip_summary()
    with pytest.raises(DataFormatError, match="p_broken"):
        load_bfcl(data, answers, strict=True)  # the first bad record, in strict mode


def test_every_loaded_call_validates_against_its_tool(tmp_path: Path) -> None:
    data, answers = mixed_files(tmp_path)
    for task in load_bfcl(data, answers):
        check_calls_validate(task)


def test_a_json_array_file_is_read_too(tmp_path: Path) -> None:
    record, answer = parallel_record()
    data, answers = single_files(tmp_path, [record], [answer])
    data.write_text(json.dumps([record], indent=2), encoding="utf-8")
    (task,) = load_bfcl(data, answers)
    assert task.id == "parallel_0"


def test_java_records_take_values_in_string_form(tmp_path: Path) -> None:
    java = fn(
        "Repo.fetch",
        {
            "ids": {"type": "ArrayList", "items": {"type": "long"}},
            "verbose": {"type": "boolean"},
            "owner": {"type": "any"},
        },
        ["ids", "verbose", "owner"],
    )
    record = {"id": "simple_java_0", "question": question("fetch"), "function": [java]}
    truth = {"Repo.fetch": {"ids": [[1, 2]], "verbose": [True], "owner": ["repoOwner"]}}
    answer = {"id": "simple_java_0", "ground_truth": [truth]}
    data, answers = single_files(tmp_path, [record], [answer], "simple_java")
    (task,) = load_bfcl(data, answers)
    assert dict(task.calls[0].args) == {"ids": "[1, 2]", "verbose": "true", "owner": "repoOwner"}
    props = task.functions[0]["parameters"]["properties"]
    assert {p["type"] for p in props.values()} == {"string"}
    assert "Java ArrayList" in props["ids"]["description"]
    check_calls_validate(task)


def test_java_type_names_build_tools() -> None:
    java = fn("f", {"n": {"type": "long"}, "m": {"type": "HashMap"}, "s": {"type": "String"}})
    (tool,) = make_simulated_tools([java], latency=ZERO)
    tool.invoke({"n": 3, "m": {"k": 1}, "s": "x"})


def test_nested_dict_without_properties_takes_first_values(tmp_path: Path) -> None:
    f = fn("req", {"headers": {"type": "dict"}}, ["headers"])
    record = {"id": "p_0", "question": question("x"), "function": [f]}
    truth = {"req": {"headers": [{"Accept": ["json", "xml"], "X-Opt": ["", "1"]}]}}
    data, answers = single_files(tmp_path, [record], [{"id": "p_0", "ground_truth": [truth]}])
    (task,) = load_bfcl(data, answers)
    assert dict(task.calls[0].args) == {"headers": {"Accept": "json"}}


def test_parse_call() -> None:
    docs = {d["name"]: d for d in FS_DOCS + MATH_DOCS}
    assert parse_call("mv('a', destination='b')", docs) == (
        "mv",
        {"source": "a", "destination": "b"},
    )
    assert parse_call(" add(-1, 2e3) ", docs) == ("add", {"a": -1, "b": 2000.0})
    assert parse_call("ls()", docs) == ("ls", {})
    with pytest.raises(ValueError):
        parse_call("add(1, a=2)", docs)


# --- real data (../shared/data) -------------------------------------------------------------

SHARED = REPO_ROOT.parent / "shared" / "data" / "bfcl"
FILES = [
    "BFCL_v4_parallel.json",
    "BFCL_v4_multiple.json",
    "BFCL_v4_simple_python.json",
    "BFCL_v4_live_parallel.json",
    "BFCL_v4_multi_turn_base.json",
]


def real(name: str, **kwargs: Any) -> list[ScriptedTask]:
    return load_bfcl(SHARED / name, SHARED / "possible_answer" / name, **kwargs)


def check_calls_validate(task: ScriptedTask) -> None:
    tools = {t.name: t for t in make_simulated_tools(task.functions, latency=ZERO)}
    for call in task.calls:
        assert call.name in tools, (task.id, call.name)
        tools[call.name].invoke(dict(call.args))  # raises ValidationError on a schema error


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/bfcl is absent")
def test_real_parallel() -> None:
    tasks = real("BFCL_v4_parallel.json")
    assert len(tasks) == 200
    for task in tasks:
        assert 2 <= len(task.calls) <= 8, task.id
        names = {f["name"] for f in task.functions}
        assert all(c.name in names for c in task.calls)


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/bfcl is absent")
@pytest.mark.parametrize("name", FILES)
def test_real_files_load_and_validate(name: str) -> None:
    tasks = real(name)
    assert tasks
    for task in tasks:
        check_calls_validate(task)


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/bfcl is absent")
def test_real_multi_turn_merge() -> None:
    tasks = real("BFCL_v4_multi_turn_base.json", merge=3, seed=0)
    assert len(tasks) == 66
    for task in tasks:
        assert len(task.id.split("+")) == 3
        check_calls_validate(task)
    assert [t.id for t in tasks] == [t.id for t in real("BFCL_v4_multi_turn_base.json", merge=3)]
    assert len(real("BFCL_v4_multi_turn_base.json", merge=3, limit=5, seed=1)) == 5


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/bfcl is absent")
def test_real_multi_turn_classes_all_mapped() -> None:
    path = SHARED / "BFCL_v4_multi_turn_base.json"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    classes = {c for r in records for c in r["involved_classes"]}
    assert classes <= set(MULTI_TURN_FUNC_DOC_FILES)
    for file in MULTI_TURN_FUNC_DOC_FILES.values():
        assert (SHARED / "multi_turn_func_doc" / file).is_file()


def test_require_tasks_names_what_was_skipped(tmp_path: Path) -> None:
    data, answers = mixed_files(tmp_path)
    loaded = load_bfcl(data, answers)
    assert loaded.require_tasks() is loaded
    lines = data.read_text(encoding="utf-8").splitlines()
    data.write_text("\n".join(lines[1:-1]), encoding="utf-8")  # only the bad records left
    with pytest.raises(DataFormatError, match="no playable task") as info:
        load_bfcl(data, answers).require_tasks()
    assert "p_ints" in str(info.value) or "p_broken" in str(info.value)
