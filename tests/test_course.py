"""izkit.course: the course's shared runs are made with their notebook's config when missing, finished when
interrupted, and read back as they are when done; the loop is the fake pipeline of conftest (no model)."""

from __future__ import annotations

from pathlib import Path

import pytest

import izkit.course as course
from conftest import Killed, make_fake_pipeline
from izkit.config import Config
from izkit.course import course_config, course_folder, course_run, finished
from izkit.loop import Run
from izkit.replay import Replay, replay


@pytest.fixture(autouse=True)
def no_server(monkeypatch):
    """The course's default black box (the embedded model), whatever the developer's environment says."""
    monkeypatch.delenv("IZKIT_BASE_URL", raising=False)
    monkeypatch.delenv("IZKIT_BLACKBOX_MODEL", raising=False)


@pytest.fixture
def calls(monkeypatch):
    """Replace izkit.course.run by the loop on fakes; every call's (config, folder, resume) is kept."""
    seen = []

    def fake_run(cfg, out, resume=False, progress=True):
        seen.append((cfg, Path(out), resume))
        return Run(cfg, out, resume=resume, progress=False, pipeline=make_fake_pipeline()).execute()

    monkeypatch.setattr(course, "run", fake_run)
    return seen


def test_configs_are_the_notebooks_own():
    assert course_config("notebook-01", fast=False) == Config.quick("larger_animal")
    assert course_config("notebook-01", fast=True) == Config.quick("larger_animal", n_init=3, n_rounds=1, batch_size=3)
    full = course_config("notebook-07", fast=False)
    assert full.answer_budget == 50 * 20 and full.selection == "halving"  # the paper's spend for 50 instructions
    assert full.n_init == 25 and full.n_dev == 20 and full.task == "larger_animal"
    assert full.baselines == ("paper", "matern", "uniform", "ape", "manual", "reference")
    full.validate()
    fast = course_config("notebook-07", fast=True)
    assert fast.answer_budget == 6 * 5 and fast.baselines == full.baselines
    with pytest.raises(ValueError, match="notebook-01, notebook-07"):
        course_config("notebook-05")


def test_environment_sets_the_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("IZKIT_RUNS", str(tmp_path))
    monkeypatch.setenv("IZKIT_FAST", "1")
    assert course_folder() == tmp_path / "notebook-01-fast"
    assert course_config().answer_budget == 6 * 5
    monkeypatch.setenv("IZKIT_FAST", "0")
    assert course_folder("notebook-07") == tmp_path / "notebook-07" and course_config().answer_budget == 12 * 5
    monkeypatch.setenv("IZKIT_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("IZKIT_BLACKBOX_MODEL", "served")
    cfg = course_config()  # a teacher's server reaches the shared runs too, as in notebook 1
    assert (cfg.blackbox, cfg.base_url, cfg.blackbox_model) == ("openai", "http://127.0.0.1:9/v1", "served")


def test_a_missing_run_is_made_once_then_read_back(tmp_path, calls):
    rep = course_run(runs=tmp_path, fast=True)
    assert isinstance(rep, Replay) and rep.record.done
    assert calls == [(course_config("notebook-01", fast=True), tmp_path / "notebook-01-fast", False)]
    assert len(rep.evals("instructzero")) == course_config("notebook-01", fast=True).budget
    again = course_run(runs=tmp_path, fast=True)
    assert len(calls) == 1  # done: nothing is run again
    assert again.evals() == rep.evals()


def test_an_unfinished_run_is_finished(tmp_path, calls):
    out = course_folder("notebook-01", tmp_path, fast=True)
    with pytest.raises(Killed):
        Run(course_config("notebook-01", fast=True), out, progress=False,
            pipeline=make_fake_pipeline(die_after=3)).execute()
    assert (out / "record.jsonl").exists() and not finished(out)
    rep = course_run(runs=tmp_path, fast=True)
    assert [c[2] for c in calls] == [True] and rep.record.done  # resumed, not started over
    Run(course_config("notebook-01", fast=True), tmp_path / "ref", progress=False,
        pipeline=make_fake_pipeline()).execute()  # the same run, never interrupted
    assert [e["instruction"] for e in rep.evals()] == [e["instruction"] for e in replay(tmp_path / "ref").evals()]


def test_an_empty_record_starts_afresh(tmp_path, calls):
    out = course_folder("notebook-01", tmp_path, fast=True)
    out.mkdir(parents=True)
    (out / "record.jsonl").touch()  # killed before the header was written
    assert not finished(out)
    assert course_run(runs=tmp_path, fast=True).record.done and calls[0][2] is False


def test_prefer_takes_a_finished_run_and_never_makes_one(tmp_path, calls):
    rep = course_run("notebook-01", runs=tmp_path, fast=True, prefer="notebook-07")
    assert [c[1].name for c in calls] == ["notebook-01-fast"]  # no notebook 7 run: notebook 1's is made
    assert rep.methods() == ["instructzero", "manual", "reference"]
    calls.clear()
    Run(course_config("notebook-07", fast=True), course_folder("notebook-07", tmp_path, fast=True), progress=False,
        pipeline=make_fake_pipeline()).execute()
    rep = course_run("notebook-01", runs=tmp_path, fast=True, prefer="notebook-07")
    assert calls == [] and "uniform" in rep.methods()  # notebook 7's run, with its baselines
    assert rep.record.path.parent.name == "notebook-07-fast"
