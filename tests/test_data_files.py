"""data/: the project's own task files parse, have the benchmark's layouts, keep their splits apart, and are exactly
what data/make_tasks.py writes from the facts in data/sources/."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from izkit.metrics import METRICS, metric_for, normalise, score
from izkit.tasks import load_task

DATA = Path(__file__).resolve().parent.parent / "data"
SOURCES = DATA / "sources"
TASKS = sorted(p.stem for p in (DATA / "induce").glob("*.json"))
SPLITS = ("induce", "execute")
MIN_SIZE = {"induce": 100, "execute": 50}
SPECIAL = {  # the benchmark's other layouts: task -> (question field, answer field); every other task: input, output
    "cause_and_effect": ("cause", "effect"),
    "common_concept": ("items", "all_common_concepts"),
    "rhymes": ("input", "other_rhymes"),
}


def fields(task: str) -> tuple[str, str]:
    if task.startswith("translation_"):
        return "input", "possible_translations"
    return SPECIAL.get(task, ("input", "output"))


def read(task: str, split: str) -> dict:
    return json.loads((DATA / split / f"{task}.json").read_text(encoding="utf-8"))


def input_key(example: dict) -> str:
    if "cause" in example:  # the input is both sentences, in either order
        return " || ".join(sorted([example["cause"], example["effect"]]))
    if "items" in example:  # the input is the items, in any order
        return ", ".join(sorted(example["items"]))
    return example["input"]


def test_enough_tasks_and_every_metric():
    assert len(TASKS) >= 14
    assert sorted(p.stem for p in (DATA / "execute").glob("*.json")) == TASKS
    assert {metric_for(t) for t in TASKS} == set(METRICS)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("split", SPLITS)
def test_file_layout(task, split):
    data = read(task, split)
    assert set(data) == {"metadata", "examples"}
    examples = data["examples"]
    assert list(examples) == [str(i) for i in range(1, len(examples) + 1)]
    assert data["metadata"]["num_examples"] == len(examples)
    assert len(examples) >= MIN_SIZE[split]
    question, answer = fields(task)
    for ex in examples.values():
        assert set(ex) == {question, answer}
        gold = ex[answer]
        if task == "cause_and_effect":
            assert all(isinstance(s, str) and s.endswith(".") and s.count(".") == 1 for s in (ex["cause"], ex["effect"]))
            continue
        if answer == "output":
            assert isinstance(gold, str)
            gold = [gold]
        assert isinstance(gold, list) and gold and all(isinstance(g, str) and normalise(g) for g in gold)
        if task == "common_concept":
            assert isinstance(ex["items"], list) and len(ex["items"]) >= 2
        else:
            assert isinstance(ex["input"], str) and ex["input"].strip()


@pytest.mark.parametrize("task", TASKS)
def test_no_repeated_or_shared_inputs(task):
    keys = {split: [input_key(e) for e in read(task, split)["examples"].values()] for split in SPLITS}
    for split in SPLITS:
        assert len(set(keys[split])) == len(keys[split]), f"{task}/{split} repeats an input"
    assert not set(keys["induce"]) & set(keys["execute"]), f"{task}: induce and execute share inputs"


@pytest.mark.parametrize("task", TASKS)
def test_loads_and_gold_scores_one(task):
    loaded = load_task(task, root=DATA)
    assert loaded.metric == metric_for(task)
    assert len(loaded.induce) == read(task, "induce")["metadata"]["num_examples"]
    for ex in loaded.induce + loaded.execute:
        assert score(loaded.metric, ex.output, ex.answers) == 1.0


def test_exact_set_answers_come_from_the_input():
    for split in SPLITS:
        for ex in read("taxonomy_animal", split)["examples"].values():
            words = ex["input"].split(", ")
            assert len(words) == 6 and set(ex["output"].split(", ")) < set(words)
        for ex in read("orthography_starts_with", split)["examples"].values():
            sentence, letter = ex["input"][:-4], ex["input"][-2]
            assert ex["input"].endswith(f" [{letter}]") and sentence.endswith(".")
            words = sentence.rstrip(".").split()
            expected = {w.lower() for w in words if w[0].lower() == letter}
            assert {w.lower() for w in ex["output"].split(", ")} == expected


def make_tasks():
    """data/make_tasks.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("make_tasks", DATA / "make_tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def made_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def committed_files() -> dict[str, bytes]:
    return {f"{split}/{t}.json": (DATA / split / f"{t}.json").read_bytes() for split in SPLITS for t in TASKS}


def test_generator_reproduces_the_files(tmp_path):
    """The script, run as the README says, writes exactly the committed files, byte for byte, and nothing else."""
    subprocess.run([sys.executable, str(DATA / "make_tasks.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    made, committed = made_files(tmp_path), committed_files()
    assert sorted(made) == sorted(committed)
    for name in committed:
        assert made[name] == committed[name], f"{name} differs from what data/make_tasks.py writes"


def test_changing_one_fact_changes_the_files(tmp_path):
    """The committed files depend on the facts: one changed antonym changes the antonyms files and nothing else."""
    src = shutil.copytree(SOURCES, tmp_path / "sources")
    antonyms = src / "antonyms.tsv"
    text = antonyms.read_text(encoding="utf-8")
    assert "\nhot\tcold\n" in text
    antonyms.write_text(text.replace("\nhot\tcold\n", "\nhot\tchilly\n"), encoding="utf-8")
    make_tasks().make_all(tmp_path / "out", src=src)
    made, committed = made_files(tmp_path / "out"), committed_files()
    changed = sorted(name for name in committed if made[name] != committed[name])
    assert changed and all(name.endswith("/antonyms.json") for name in changed)


def test_generator_refuses_a_repeated_fact(tmp_path):
    src = shutil.copytree(SOURCES, tmp_path / "sources")
    with open(src / "plurals.tsv", "a", encoding="utf-8") as f:
        f.write("cat\tcats\n")  # already listed
    with pytest.raises(ValueError, match="listed twice"):
        make_tasks().make_all(tmp_path / "out", src=src)


def test_every_facts_file_is_read(tmp_path):
    """Each facts file feeds the task files (no stale copy of a fact)."""
    module = make_tasks()
    read, table = set(), module.table

    def recording_table(src, name, *columns):
        read.add(name)
        return table(src, name, *columns)

    module.table = recording_table
    module.make_all(tmp_path)
    assert read == {p.stem for p in SOURCES.glob("*.tsv")}
    assert sorted(module.TASKS) == TASKS


def test_reference_instructions_name_every_task_once():
    rows = make_tasks().table(SOURCES, "reference_instructions", "task", "instruction")
    assert sorted(task for task, _ in rows) == TASKS
    for task, instruction in rows:
        assert instruction[0].isupper() and instruction.endswith("."), task


def test_generator_is_short():
    assert len((DATA / "make_tasks.py").read_text(encoding="utf-8").splitlines()) <= 700


def test_readme_lists_every_task():
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for task in TASKS:
        assert f"`{task}`" in readme
