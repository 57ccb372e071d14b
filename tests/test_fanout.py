"""izkit.fanout: a study on Ray gives the records a plain `izkit compare` gives, and records travel with the tasks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import izkit.compare as cmp
from izkit.fanout import pair_on_worker
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


def test_the_ray_flags_need_ray(tmp_path, capsys):
    from izkit.cli import main

    assert main(["compare", "--tasks", "antonyms", "--seeds", "0", "--ray-cpus", "2", "--out", str(tmp_path)]) == 2
    assert "add --ray [ADDRESS]" in capsys.readouterr().err
    assert not (tmp_path / "antonyms-seed0").exists()  # refused before anything ran


def test_two_one_cpu_workers_finish_a_2x2_compare_as_the_plain_run(tmp_path, fake_models):
    ray = pytest.importorskip("ray") if os.environ.get("CI") != "true" else __import__("ray")  # CI installs it
    from izkit.fanout import compare_on_ray

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
