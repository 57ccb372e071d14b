"""izkit.course: the course's two runs use the paper's allocation (every instruction on every dev example, the best on
dev kept, the same number of distinct instructions for every method), live where the notebooks look for them, and the
archived study's run reads back with no model. The loop is the fake pipeline of conftest (no model)."""

from __future__ import annotations

import pytest

from conftest import make_fake_pipeline
from izkit.config import Config
from izkit.course import BASELINES_07, archived_run, course_config, course_folder
from izkit.loop import Run
from izkit.replay import replay


@pytest.fixture(autouse=True)
def no_server(monkeypatch):
    """The course's default black box (the embedded model), whatever the developer's environment says."""
    monkeypatch.delenv("IZKIT_BASE_URL", raising=False)
    monkeypatch.delenv("IZKIT_BLACKBOX_MODEL", raising=False)


def test_notebook_01_runs_the_papers_allocation():
    full = course_config("notebook-01", fast=False)
    assert full == Config.quick("larger_animal", n_dev=20).as_paper()
    assert (full.selection, full.preimages, full.sampled) == ("best", False, 0.0)  # no halving, no preimages
    assert full.n_dev == 20 and full.candidates == 12 and full.answers == 12 * 20  # 4 + 2 x 4 on all 20 dev
    assert full.search_examples == full.n_dev  # every instruction is scored on every dev example
    fast = course_config("notebook-01", fast=True)
    assert fast == Config.quick("larger_animal", n_init=3, n_rounds=1, batch_size=3).as_paper()
    assert fast.selection == "best" and not fast.preimages and fast.candidates == 6 and fast.round_sizes == [3, 3]
    for cfg in (full, fast):
        cfg.validate()


def test_notebook_07_runs_every_method_in_the_papers_allocation():
    full = course_config("notebook-07", fast=False)
    assert (full.selection, full.preimages) == ("best", False)
    assert full.candidates == 50 and full.answers == 50 * 20 and full.round_sizes == [25, 25]
    assert full.n_init == 25 and full.batch_size == 25 and full.n_dev == 20 and full.task == "larger_animal"
    assert "paper" not in full.baselines  # InstructZero itself is the paper's method here: no separate row
    assert full.baselines == BASELINES_07 == ("matern", "uniform", "ape", "manual", "reference")
    assert all(full.for_method(m) == full for m in full.methods())  # one config: as many instructions each
    full.validate()
    fast = course_config("notebook-07", fast=True)
    assert fast.selection == "best" and fast.candidates == 6 and fast.baselines == full.baselines
    fast.validate()
    with pytest.raises(ValueError, match="notebook-01, notebook-07"):
        course_config("notebook-05")


def test_environment_sets_the_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("IZKIT_RUNS", str(tmp_path))
    monkeypatch.setenv("IZKIT_FAST", "1")
    assert course_folder() == tmp_path / "notebook-01-fast"
    assert course_config().candidates == 6 and course_config().answers == 6 * 5
    monkeypatch.setenv("IZKIT_FAST", "0")
    assert course_folder("notebook-07") == tmp_path / "notebook-07" and course_config().answers == 12 * 20
    monkeypatch.setenv("IZKIT_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("IZKIT_BLACKBOX_MODEL", "served")
    cfg = course_config()  # a teacher's server reaches the course's runs too
    assert (cfg.blackbox, cfg.base_url, cfg.blackbox_model) == ("openai", "http://127.0.0.1:9/v1", "served")
    assert cfg.selection == "best"


@pytest.mark.parametrize("name", ["notebook-01", "notebook-07"])
def test_a_course_run_scores_every_instruction_on_every_dev_example(tmp_path, name):
    cfg = course_config(name, fast=True)
    Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline()).execute()
    rep = replay(tmp_path)
    assert rep.record.find("selection", method="instructzero") is None  # no halving
    for m in ("instructzero", "matern", "uniform") if name == "notebook-07" else ("instructzero",):
        evals = rep.evals(m)
        assert len({e["instruction"] for e in evals}) == cfg.candidates  # as many distinct instructions in every search
        assert all(len(e["scores"]) == cfg.n_dev for e in evals)  # each on every dev example
        assert rep.record.answers(m) == cfg.candidates * cfg.n_dev
        assert rep.kept(m) == rep.best(m)  # the dev best is kept


def test_the_archived_run_reads_back_without_a_model():
    rep = archived_run("larger_animal", 0)
    evals = rep.evals("instructzero")
    assert rep.record.done and rep.config["task"] == "larger_animal"
    assert len({e["instruction"] for e in evals}) == 150  # the paper's 150 instructions
    assert all(len(e["scores"]) == 20 and e["z"] is not None for e in evals)  # 20 dev examples, soft prompts kept
    with pytest.raises(FileNotFoundError, match="no archived record"):
        archived_run("larger_animal", 99)
