"""izkit.pipeline: the models a config names, loaded once, and the pipeline a record's header rebuilds."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from izkit.config import Config
from izkit.pipeline import Pipeline


@pytest.fixture
def loads(monkeypatch, embedded):
    """Every load_causal_lm call, answered with the session's cheap embedded model (no second copy is loaded)."""
    import izkit.models

    calls = []

    def fake_load(name=None, device=None, dtype=None):
        calls.append((name, dtype))
        return embedded

    monkeypatch.setattr(izkit.models, "load_causal_lm", fake_load)
    return calls


def test_one_model_serves_both_roles_when_both_name_the_same(loads):
    cfg = Config.quick("antonyms", answer_cache=None)
    p = Pipeline.from_config(cfg)
    assert len(loads) == 1  # the black box reuses the generator's model
    assert p.blackbox.model is p.generator.model
    assert p.ids["generator"]["name"] == p.generator.model.izkit_info.name and p.ids["blackbox"] == p.blackbox.model_id
    task_splits = __import__("izkit.tasks", fromlist=["load_task"]).load_task("antonyms").splits(5, 5, 10, 0)
    assert [e.input for e in p.exemplars] == [e.input for e in task_splits.exemplars] and p.metric == "em"


def test_another_black_box_model_is_loaded_beside_the_generator(loads):
    Pipeline.from_config(Config.quick("antonyms", answer_cache=None, blackbox_model="elsewhere"))
    assert [name for name, _ in loads] == [None, "elsewhere"]


def test_a_record_rebuilds_the_same_projection_exemplars_and_number_format(loads):
    cfg = Config.quick("antonyms", seed=3, answer_cache=None)
    first = Pipeline.from_config(cfg)
    header = {"config": {**cfg.to_dict(), "a_setting_from_a_later_izkit": 1}, "objective": "accuracy",
              "models": {"generator": {**first.ids["generator"], "dtype": "bfloat16"}}}
    again, splits = Pipeline.from_record(header)
    assert torch.equal(again.generator.projection.A, first.generator.projection.A)  # the same A (seed 3)
    assert [e.input for e in again.exemplars] == [e.input for e in first.exemplars]
    assert len(splits.dev) == cfg.n_dev
    assert loads[-1][1] == "bfloat16"  # answers in the format the record was made in
    other = dataclasses.replace(cfg, seed=4)
    assert not torch.equal(Pipeline.from_config(other).generator.projection.A, first.generator.projection.A)
