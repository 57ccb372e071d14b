"""data/: the project's own task files parse, have the benchmark's layouts, keep their splits apart, and are exactly
what data/make_tasks.py writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from izkit.metrics import METRICS, metric_for, normalise, score
from izkit.tasks import load_task

DATA = Path(__file__).resolve().parent.parent / "data"
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


def test_generator_reproduces_the_files(tmp_path):
    subprocess.run([sys.executable, str(DATA / "make_tasks.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    for split in SPLITS:
        made = sorted(p.name for p in (tmp_path / split).glob("*.json"))
        assert made == [f"{t}.json" for t in TASKS]
        for name in made:
            assert (tmp_path / split / name).read_bytes() == (DATA / split / name).read_bytes(), f"{split}/{name}"


def test_readme_lists_every_task():
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for task in TASKS:
        assert f"`{task}`" in readme
