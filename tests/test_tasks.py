"""izkit.tasks: every layout of the Instruction Induction format, seeded splits, and every bad-input message."""

import json
from pathlib import Path

import pytest

from izkit.tasks import Example, TaskError, list_tasks, load_task, read_split


def write_split(path: Path, examples: list[dict], num: int | None = None, keys: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = keys or [str(i) for i in range(1, len(examples) + 1)]
    body = {"metadata": {"num_examples": len(examples) if num is None else num}, "examples": dict(zip(keys, examples))}
    path.write_text(json.dumps(body))
    return path


def make_task(root: Path, name: str, induce: list[dict], execute: list[dict], sub: str = "") -> Path:
    write_split(root / sub / "induce" / f"{name}.json", induce)
    write_split(root / sub / "execute" / f"{name}.json", execute)
    return root


def plain(n: int, offset: int = 0) -> list[dict]:
    return [{"input": f"word{i + offset}", "output": f"out{i + offset}"} for i in range(n)]


def test_plain_layout_and_list_outputs(tmp_path):
    make_task(tmp_path, "antonyms", plain(30), [{"input": "hot", "output": ["cold", "chilly"]}])
    task = load_task("antonyms", root=tmp_path)
    assert task.metric == "em"
    assert task.induce[0] == Example("word0", ("out0",))
    assert task.execute[0].answers == ("cold", "chilly")
    assert task.execute[0].output == "cold"


def test_cause_and_effect_layout(tmp_path):
    induce = [{"cause": f"It rained {i}.", "effect": f"The street was wet {i}."} for i in range(40)]
    make_task(tmp_path, "cause_and_effect", induce, induce[:3])
    task = load_task("cause_and_effect", root=tmp_path)
    firsts = set()
    for ex, raw in zip(task.induce, induce):
        assert ex.answers == (raw["cause"],)
        assert ex.input.startswith("Sentence 1: ") and " Sentence 2: " in ex.input
        assert raw["cause"] in ex.input and raw["effect"] in ex.input
        firsts.add(ex.input.startswith(f"Sentence 1: {raw['cause']}"))
    assert firsts == {True, False}  # both orders occur
    assert load_task("cause_and_effect", root=tmp_path).induce == task.induce  # the order is seeded


def test_common_concept_rhymes_translation_layouts(tmp_path):
    cc = [{"items": ["guitars", "pendulums"], "all_common_concepts": ["involve oscillations", "swing"]}]
    make_task(tmp_path, "common_concept", cc, cc)
    rh = [{"input": "cat", "other_rhymes": ["hat", "bat"]}]
    make_task(tmp_path, "rhymes", rh, rh)
    tr = [{"input": "dog", "possible_translations": ["chien"]}]
    make_task(tmp_path, "translation_en-fr", tr, tr)
    c = load_task("common_concept", root=tmp_path)
    assert c.metric == "f1"
    assert c.induce[0] == Example("guitars, pendulums", ("involve oscillations", "swing"))
    assert load_task("rhymes", root=tmp_path).induce[0] == Example("cat", ("hat", "bat"))
    assert load_task("translation_en-fr", root=tmp_path).induce[0] == Example("dog", ("chien",))


@pytest.mark.parametrize("sub", ["", "raw", "data/raw"])
def test_benchmark_clone_layouts(tmp_path, sub):
    make_task(tmp_path, "sum", plain(25), plain(5, 100), sub=sub)
    assert len(load_task("sum", root=tmp_path).induce) == 25
    assert [t.name for t in list_tasks(tmp_path)] == ["sum"]


def test_load_by_induce_file_path(tmp_path):
    make_task(tmp_path, "sum", plain(25), plain(5, 100))
    task = load_task(tmp_path / "induce" / "sum.json")
    assert task.name == "sum" and len(task.execute) == 5


def test_izkit_data_env(tmp_path, monkeypatch):
    make_task(tmp_path, "my_task", plain(25), plain(5, 100))
    monkeypatch.setenv("IZKIT_DATA", str(tmp_path))
    assert load_task("my_task").name == "my_task"
    assert "my_task" in [t.name for t in list_tasks()]


def test_splits_seeded_disjoint_and_sized(tmp_path):
    make_task(tmp_path, "t", plain(60), plain(150, 1000))
    task = load_task("t", root=tmp_path)
    s = task.splits(kappa=5, n_dev=20, n_test=100, seed=0)
    assert len(s.exemplars) == 5 and len(s.dev) == 20 and len(s.test) == 100
    assert not set(s.exemplars) & set(s.dev)
    assert not {e.input for e in s.test} & {e.input for e in s.dev + s.exemplars}
    assert task.splits(seed=0) == s
    assert task.splits(seed=1) != s
    assert len(set(s.test)) == 100


def test_split_smaller_than_kappa_plus_dev(tmp_path):
    make_task(tmp_path, "small", plain(10), plain(5))
    task = load_task("small", root=tmp_path)
    with pytest.raises(TaskError, match=r"small\.json.*10 examples.*kappa \+ dev = 5 \+ 20"):
        task.splits()


def test_missing_file(tmp_path):
    write_split(tmp_path / "induce" / "x.json", plain(3))
    with pytest.raises(TaskError, match=r"execute/x\.json: task file not found"):
        load_task(tmp_path / "induce" / "x.json")


def test_invalid_json(tmp_path):
    p = tmp_path / "induce" / "bad.json"
    p.parent.mkdir()
    p.write_text('{"metadata": {}, "examples": {"1": {"input": "a",}}}')
    with pytest.raises(TaskError, match=r"bad\.json: invalid JSON at line 1, column"):
        read_split(p)


def test_missing_examples_key(tmp_path):
    p = tmp_path / "induce" / "t.json"
    p.parent.mkdir()
    p.write_text('{"metadata": {"num_examples": 0}}')
    with pytest.raises(TaskError, match=r"t\.json: missing the 'examples' key"):
        read_split(p)


def test_non_consecutive_keys(tmp_path):
    p = write_split(tmp_path / "t.json", plain(3), keys=["1", "2", "4"])
    with pytest.raises(TaskError, match=r"t\.json: keys .* key '4' is out of place"):
        read_split(p)


def test_num_examples_mismatch(tmp_path):
    p = write_split(tmp_path / "t.json", plain(3), num=5)
    with pytest.raises(TaskError, match=r"num_examples says 5 but 'examples' has 3"):
        read_split(p)


def test_empty_split(tmp_path):
    p = write_split(tmp_path / "t.json", [])
    with pytest.raises(TaskError, match=r"t\.json: the split is empty"):
        read_split(p)


def test_missing_field_names_key_and_field(tmp_path):
    p = write_split(tmp_path / "t.json", [{"input": "a", "output": "b"}, {"input": "c"}])
    with pytest.raises(TaskError, match=r"t\.json: example '2' has no field 'output'"):
        read_split(p)


def test_unknown_task_lists_close_matches(tmp_path):
    make_task(tmp_path, "antonyms", plain(25), plain(5))
    make_task(tmp_path, "synonyms", plain(25), plain(5))
    with pytest.raises(TaskError, match=r"no task named 'antonym'.*did you mean antonyms"):
        load_task("antonym", root=tmp_path)
    with pytest.raises(TaskError, match=r"no task named 'zzz'.*known tasks: antonyms, synonyms"):
        load_task("zzz", root=tmp_path)


def test_spare_induce_is_what_the_splits_leave_out():
    from izkit.tasks import load_task

    task = load_task("antonyms")
    sp = task.splits(kappa=5, n_dev=20, seed=3)
    spare = task.spare_induce(kappa=5, n_dev=20, seed=3)
    assert len(spare) == len(task.induce) - 25
    ids = lambda exs: {id(e) for e in exs}  # noqa: E731 - the same objects as task.induce holds
    assert not ids(spare) & ids(sp.exemplars + sp.dev)
    assert ids(spare) | ids(sp.exemplars + sp.dev) == ids(task.induce)
    assert task.spare_induce(kappa=5, n_dev=20, seed=3, limit=7) == spare[:7]
    assert task.spare_induce(kappa=5, n_dev=20, seed=4) != spare  # another seed leaves out others
