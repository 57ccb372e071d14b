"""izkit.studies.fanout: a study on Ray gives the records a plain `izkit compare` gives, and records travel with the tasks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import izkit.studies.compare as cmp
from izkit.studies.fanout import pair_on_worker
from izkit.pipeline import Pipeline
from test_loop import _canonical, fake_cfg
from conftest import Killed, make_fake_pipeline

TESTS = Path(__file__).resolve().parent
TASKS, SEEDS = ["antonyms", "sum"], [0, 1]


def lines(path: Path) -> list:
    return [_canonical(json.loads(s)) for s in path.read_text().splitlines()]


@pytest.fixture
def fake_models(monkeypatch):
    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, *a, **k: make_fake_pipeline()))


def test_a_record_travels_to_a_worker_that_lacks_it_and_comes_back_finished(tmp_path, fake_models, monkeypatch):
    plain = tmp_path / "plain"
    cmp.compare(fake_cfg(), ["antonyms"], [0], plain, progress=False)
    finished = plain / "antonyms-seed0" / "record.jsonl"

    # a pair killed part way on the driver's machine: its record goes to a worker whose folder is empty
    killed = tmp_path / "driver"
    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, *a, **k: make_fake_pipeline(die_after=3)))
    with pytest.raises(Killed):
        cmp.compare(fake_cfg(), ["antonyms"], [0], killed, progress=False)
    partial = (killed / "antonyms-seed0" / "record.jsonl").read_bytes()
    assert partial and b'"kind":"done"' not in partial

    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, *a, **k: make_fake_pipeline()))
    worker = tmp_path / "worker"
    back = pair_on_worker(fake_cfg(), "antonyms", 0, str(worker), partial)
    assert (worker / "antonyms-seed0" / "record.jsonl").read_bytes() == back
    assert back.startswith(partial)  # resumed from what was sent, not started anew
    tmp = tmp_path / "back.jsonl"
    tmp.write_bytes(back)
    assert lines(tmp) == lines(finished)  # and finished as an uninterrupted run


def test_a_worker_that_holds_the_record_keeps_its_own(tmp_path, fake_models):
    """Where the worker shares the driver's folder, what the driver sent is not written over the record there."""
    cmp.compare(fake_cfg(), ["antonyms"], [0], tmp_path, progress=False)
    path = tmp_path / "antonyms-seed0" / "record.jsonl"
    before = path.read_bytes()
    assert pair_on_worker(fake_cfg(), "antonyms", 0, str(tmp_path), b"not a record\n") == before
    assert path.read_bytes() == before


def test_a_pair_that_raises_on_a_worker_sends_back_what_it_did(tmp_path, monkeypatch):
    from izkit.studies.fanout import Failed

    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, *a, **k: make_fake_pipeline(die_after=3)))
    back = pair_on_worker(fake_cfg(), "antonyms", 0, str(tmp_path), b"")
    assert isinstance(back, Failed) and back.error.startswith("Killed")
    assert back.record and back.record == (tmp_path / "antonyms-seed0" / "record.jsonl").read_bytes()


class InlineRay:
    """Just enough of Ray for the driver's loop: each task runs when it is submitted, in this process."""

    def __init__(self):
        self.submitted = []

    def is_initialized(self):
        return True

    def remote(self, **resources):
        def wrap(fn):
            ray = self

            class Task:
                def remote(self, *args):
                    ray.submitted.append(args[1:3])
                    return (len(ray.submitted), fn(*args))
            return Task()
        return wrap

    def wait(self, refs, num_returns):
        return [min(refs)], []

    def get(self, ref):
        return ref[1]


def test_the_driver_keeps_going_past_a_failed_pair_and_keeps_its_partial_record(tmp_path, monkeypatch):
    """A pair that raises on its worker, and one whose archiving fails on the driver, are reported at the end; the
    other pairs finish, and the failed pair's partial record is on the driver's disk, where the same command resumes
    it."""
    import izkit.studies.fanout as fanout

    dying = {("antonyms", 1)}
    monkeypatch.setattr(Pipeline, "from_config", classmethod(
        lambda cls, cfg, *a, **k: make_fake_pipeline(die_after=3 if (cfg.task, cfg.seed) in dying else None)))
    monkeypatch.setattr(fanout, "_ray", InlineRay)
    worker = tmp_path / "worker"
    monkeypatch.setattr(fanout, "pair_on_worker",  # a worker that does not share the driver's folder
                        lambda cfg, task, seed, out, sent: pair_on_worker(cfg, task, seed, str(worker), sent))

    def archive(result):
        if result.config.task == "sum" and result.config.seed == 0:
            raise OSError("archive folder is read-only")

    with pytest.raises(RuntimeError, match=r"2 of 4 pairs failed on Ray \(sum seed 0, antonyms seed 1\).*"
                                           r"archive folder is read-only"):
        fanout.compare_on_ray(fake_cfg(), TASKS, SEEDS, tmp_path / "driver", progress=False, on_finished=archive)
    driver = tmp_path / "driver"
    partial = (driver / "antonyms-seed1" / "record.jsonl").read_bytes()
    assert partial == (worker / "antonyms-seed1" / "record.jsonl").read_bytes() and b'"kind":"done"' not in partial
    for task, seed in [("antonyms", 0), ("sum", 0), ("sum", 1)]:  # the others finished, and came home
        assert b'"kind":"done"' in (driver / f"{task}-seed{seed}" / "record.jsonl").read_bytes()


def test_the_ray_flags_need_ray(tmp_path, capsys):
    from izkit.cli import main

    assert main(["compare", "--tasks", "antonyms", "--seeds", "0", "--ray-cpus", "2", "--out", str(tmp_path)]) == 2
    assert "add --ray [ADDRESS]" in capsys.readouterr().err
    assert not (tmp_path / "antonyms-seed0").exists()  # refused before anything ran


def test_two_one_cpu_workers_finish_a_2x2_compare_as_the_plain_run(tmp_path, fake_models):
    ray = pytest.importorskip("ray") if os.environ.get("CI") != "true" else __import__("ray")  # CI installs it
    from izkit.studies.fanout import compare_on_ray

    plain = cmp.compare(fake_cfg(), TASKS, SEEDS, tmp_path / "plain", progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(TESTS)}, "worker_process_setup_hook": "ray_fakes.install"})
    try:
        assert ray.cluster_resources()["CPU"] == 2  # two one-CPU pairs at a time
        on_ray = compare_on_ray(fake_cfg(), TASKS, SEEDS, tmp_path / "ray", progress=False)
    finally:
        ray.shutdown()
    assert [(r.config.task, r.config.seed) for r in on_ray] == [(r.config.task, r.config.seed) for r in plain]
    for task in TASKS:
        for seed in SEEDS:
            name = f"{task}-seed{seed}/record.jsonl"
            assert lines(tmp_path / "ray" / name) == lines(tmp_path / "plain" / name), name
    assert [r.methods["instructzero"].best_instruction for r in on_ray] == [
        r.methods["instructzero"].best_instruction for r in plain]
