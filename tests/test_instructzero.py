"""izkit.instructzero: the loop end to end on the embedded model, resume after kills, replay, compare table."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from izkit.blackbox import ScoreResult, Usage
from izkit.instructzero import Config, Run, RunResult, compare_table, replay, run, screen_new_instructions
from izkit.records import RecordError

TASK = "antonyms"


class Killed(Exception):
    """Stands in for SIGKILL: raised from inside the black box after a given number of calls."""


def _h(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 16**8


class FakeGenerator:
    """Instructions from a coarse grid over z, so nearby soft prompts share an instruction (as a real model does)."""

    def generate(self, Z, exemplars):
        return [f"instruction {int((float(z[0]) + 1) * 2)}-{int((float(z[1]) + 1) * 2)}" for z in Z]

    def generate_plain(self, exemplars, n=1, sampling=None):
        seed = 0 if sampling is None else sampling.seed
        return [f"plain {seed}-{i if sampling else 0}" for i in range(n)]


class FakeBlackBox:
    objective = "loglik"

    def __init__(self, die_after: int | None = None):
        self.calls = 0
        self.die_after = die_after

    def score(self, instructions, examples, metric="em", objective=None):
        if self.die_after is not None and self.calls >= self.die_after:
            raise Killed(f"killed after {self.calls} calls")
        self.calls += 1
        scores = np.array([[_h(v + e.input) - 1 for e in examples] for v in instructions])  # (I, E)
        return ScoreResult(objective or self.objective, list(instructions), scores,
                           [[""] * len(examples) for _ in instructions], scores.mean(1), Usage(requests=1))


class FakeModels:
    def __init__(self, die_after=None):
        self.generator, self.blackbox = FakeGenerator(), FakeBlackBox(die_after)
        self.exemplars, self.metric = None, "em"

    def ids(self):
        return {"generator": "fake", "blackbox": "fake"}


def fake_cfg(**kw) -> Config:
    kw = {"baselines": ("uniform", "ape", "manual"), **kw}
    return Config.quick(TASK, n_init=4, n_rounds=2, batch_size=3, n_dev=4, n_test=5, **kw)


def outcome(result: RunResult, out) -> tuple:
    lines = [json.loads(s) for s in (out / "record.jsonl").read_text().splitlines()]
    evals = [(e["method"], e["round"], e["index"], e["instruction"], e["mean"]) for e in lines if e["kind"] == "eval"]
    best = {m: (r.best_instruction, r.best_dev, r.test) for m, r in result.methods.items()}
    return sorted(evals), best


def test_loop_with_fake_models_counts_and_methods(tmp_path):
    cfg = fake_cfg()
    res = Run(cfg, tmp_path, progress=False, models=FakeModels()).execute()
    evals = [json.loads(s) for s in (tmp_path / "record.jsonl").read_text().splitlines()]
    kinds = [e["kind"] for e in evals]
    assert kinds[0] == "header" and kinds[-1] == "done"
    per_method = {m: sum(1 for e in evals if e["kind"] == "eval" and e["method"] == m) for m in res.methods}
    assert per_method == {"instructzero": 10, "uniform": 10, "ape": 10, "manual": 1}
    assert sum(1 for e in evals if e["kind"] == "gp") == 2  # one GP fit per BO round
    iz = [e for e in evals if e["kind"] == "eval" and e["method"] == "instructzero"]
    assert all(-1 <= v <= 1 for e in iz for v in e["z"])
    assert res.methods["instructzero"].best_dev == max(e["mean"] for e in iz)


def test_config_survives_a_json_round_trip():
    cfg = Config(TASK, seed=3, baselines=("uniform", "ape"), screen=1).with_budget(60)
    back = Config.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and isinstance(back.baselines, tuple)


def test_screen_keeps_the_best_new_instructions_in_ei_order():
    cands = ["a", "b", "a", "c", "old", "d", "e"]  # best EI first
    assert screen_new_instructions(cands, {"old"}, 3) == [0, 1, 3]  # a, b, c: the second "a" and "old" are skipped
    assert screen_new_instructions(cands, {"old"}, 5) == [0, 1, 3, 5, 6]
    # fewer new than q: the best of the rest fill the batch (they come from the cache)
    assert screen_new_instructions(["old", "a", "a"], {"old"}, 3) == [0, 1, 2]
    assert screen_new_instructions(["x"], set(), 3) == [0]


def test_bo_rounds_spend_evaluations_on_new_instructions(tmp_path):
    def distinct_and_props(screen):
        cfg = fake_cfg(screen=screen, baselines=())
        Run(cfg, tmp_path / str(screen), progress=False, models=FakeModels()).execute()
        lines = [json.loads(s) for s in (tmp_path / str(screen) / "record.jsonl").read_text().splitlines()]
        evals = [e["instruction"] for e in lines if e["kind"] == "eval"]
        props = [p for p in lines if p["kind"] == "proposal" and p["round"] > 0]
        assert all(p["screened"] == screen * cfg.batch_size for p in props)
        assert sum(p["new"] for p in props) == len(set(evals)) - len(set(evals[: cfg.n_init]))
        return len(set(evals))

    # plain top-q EI (screen 1) writes the incumbent's instruction again; screening finds new ones
    assert distinct_and_props(4) > distinct_and_props(1)


@pytest.mark.parametrize("die_after", [0, 1, 3, 5, 9, 14, 22, 30])
def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, die_after):
    cfg = fake_cfg()
    ref = Run(cfg, tmp_path / "ref", progress=False, models=FakeModels()).execute()
    out = tmp_path / "killed"
    with pytest.raises(Killed):
        Run(cfg, out, progress=False, models=FakeModels(die_after=die_after)).execute()
    before = [json.loads(s) for s in (out / "record.jsonl").read_text().splitlines()] if die_after else []
    models = FakeModels()
    res = Run(cfg, out, resume=True, progress=False, models=models).execute()
    assert outcome(res, out) == outcome(ref, tmp_path / "ref")
    lines = [json.loads(s) for s in (out / "record.jsonl").read_text().splitlines()]
    assert res.work_seconds == pytest.approx(sum(e.get("seconds", 0) for e in lines if e["kind"] != "done"))
    assert all(e in lines for e in before)  # the time (and all else) recorded before the kill still counts
    keys = [(m, r, i) for m, r, i, *_ in outcome(res, out)[0]]
    assert len(keys) == len(set(keys))  # nothing evaluated twice
    lines = (out / "record.jsonl").read_text().splitlines()
    done_before = sum(1 for s in lines if '"kind":"eval"' in s) - models.blackbox.calls + sum(
        1 for s in lines if '"kind":"test"' in s)
    assert done_before >= 0


def test_resume_asks_nothing_already_recorded(tmp_path):
    cfg = fake_cfg()
    Run(cfg, tmp_path, progress=False, models=FakeModels()).execute()
    models = FakeModels()
    Run(cfg, tmp_path, resume=True, progress=False, models=models).execute()
    assert models.blackbox.calls == 0


def test_torn_last_line_is_redone(tmp_path):
    cfg = fake_cfg()
    ref = Run(cfg, tmp_path / "ref", progress=False, models=FakeModels()).execute()
    out = tmp_path / "torn"
    with pytest.raises(Killed):
        Run(cfg, out, progress=False, models=FakeModels(die_after=6)).execute()
    text = (out / "record.jsonl").read_text()
    (out / "record.jsonl").write_text(text + text.splitlines()[-1][:25])  # a kill in the middle of a write
    res = Run(cfg, out, resume=True, progress=False, models=FakeModels()).execute()
    assert outcome(res, out) == outcome(ref, tmp_path / "ref")


def test_resume_with_another_config_names_the_field(tmp_path):
    cfg = fake_cfg()
    with pytest.raises(Killed):
        Run(cfg, tmp_path, progress=False, models=FakeModels(die_after=2)).execute()
    with pytest.raises(RecordError, match=r"made with seed=0, but the run asks for seed=1"):
        Run(dataclasses.replace(cfg, seed=1), tmp_path, resume=True, progress=False, models=FakeModels())


def test_new_run_refuses_an_existing_record(tmp_path):
    Run(fake_cfg(), tmp_path, progress=False, models=FakeModels()).execute()
    with pytest.raises(RecordError, match="already exists; resume it with --resume"):
        Run(fake_cfg(), tmp_path, progress=False, models=FakeModels())


@pytest.mark.parametrize(("field", "value", "msg"), [
    ("blackbox", "remote", "blackbox must be 'local' or 'openai'"),
    ("baselines", ("random",), "unknown baseline 'random'"),
    ("objective", "bleu", "objective must be 'accuracy' or 'loglik'"),
    ("n_dev", 0, "n_dev must be at least 1"),
])
def test_bad_config_values(tmp_path, field, value, msg):
    with pytest.raises(ValueError, match=msg):
        Run(dataclasses.replace(fake_cfg(), **{field: value}), tmp_path, progress=False, models=FakeModels())


def test_agreement_similarity_needs_accuracy(tmp_path):
    with pytest.raises(ValueError, match="agreement.*use --objective accuracy"):
        Run(fake_cfg(similarity="agreement"), tmp_path, progress=False, models=FakeModels())


def test_budget_sets_rounds():
    cfg = Config(TASK).with_budget(150)
    assert (cfg.n_init, cfg.n_rounds, cfg.batch_size, cfg.budget) == (25, 5, 25, 150)
    assert Config(TASK).with_budget(60).round_sizes == [25, 25, 10]
    assert Config(TASK).with_budget(10).round_sizes == [10]
    with pytest.raises(ValueError, match="--budget must be at least 1"):
        Config(TASK).with_budget(0)


def test_paper_defaults():
    cfg = Config(TASK)
    assert (cfg.d, cfg.n_tokens, cfg.kappa, cfg.n_dev, cfg.n_test) == (10, 5, 5, 20, 100)
    assert (cfg.n_init, cfg.n_rounds, cfg.batch_size, cfg.budget) == (25, 5, 25, 150)
    assert cfg.resolved_objective() == "loglik"
    assert dataclasses.replace(cfg, blackbox="openai").resolved_objective() == "accuracy"


def test_replay_without_a_model(tmp_path):
    cfg = fake_cfg()
    res = Run(cfg, tmp_path, progress=False, models=FakeModels()).execute()
    rp = replay(tmp_path)
    assert rp.methods() == ["instructzero", "uniform", "ape", "manual"]
    assert rp.best()["instruction"] == res.methods["instructzero"].best_instruction
    assert rp.test_scores("instructzero") == res.methods["instructzero"].test
    L, S, K = rp.kernel_matrices()
    assert np.allclose(K, S, atol=1e-6)  # eq. 9 equals S on the evaluated points
    assert set(rp.figures()) == {"best_so_far", "rounds", "soft_prompts", "kernels"}


def test_compare_table_format(tmp_path):
    results = []
    for task in ("antonyms", "sum"):
        for seed in (0, 1):
            cfg = dataclasses.replace(fake_cfg(), task=task, seed=seed)
            results.append(Run(cfg, tmp_path / f"{task}{seed}", progress=False, models=FakeModels()).execute())
    table = compare_table(results, "loglik").splitlines()
    assert table[0].startswith("Test loglik (mean +- sd over seeds; BO optimised loglik on dev)")
    assert table[2] == "| task | InstructZero | Uniform | APE-style | Manual | seeds | minutes of work |"
    minutes = sum(r.work_seconds for r in results if r.config.task == "sum") / 60
    assert table[5].endswith(f" | 2 | {minutes:.1f} |") and minutes > 0
    one_seed = compare_table(results[:1], "loglik").splitlines()[4]
    assert f"| {results[0].methods['instructzero'].test['loglik']:.3f} |" in one_seed and "+-" not in one_seed
    assert [row.split(" | ")[0] for row in table[4:]] == ["| antonyms", "| sum", "| **average**"]
    vals = [r.methods["uniform"].test["loglik"] for r in results if r.config.task == "sum"]
    assert f"{np.mean(vals):.3f} +- {np.std(vals, ddof=1):.3f}" in table[5]


def test_resume_takes_the_config_from_the_record(tmp_path):
    from izkit.cli import build_parser
    from izkit.instructzero import resume_config

    cfg = fake_cfg(seed=3, baselines=("uniform",))
    Run(cfg, tmp_path, progress=False, models=FakeModels()).execute()

    def args(*flags):
        return build_parser().parse_args(["run", "--task", TASK, "--resume", str(tmp_path), *flags])

    assert resume_config(args(), tmp_path) == cfg  # nothing but --task: the record's config, quick preset and all
    assert resume_config(args("--seed", "3", "--baselines", "uniform"), tmp_path) == cfg  # agreeing flags are fine
    assert resume_config(args("--timeout", "5"), tmp_path).request_timeout == 5.0  # how to reach the endpoint
    with pytest.raises(RecordError, match="made with seed=3, but the flags ask for seed=4"):
        resume_config(args("--seed", "4"), tmp_path)
    with pytest.raises(RecordError, match="a run of task 'antonyms', not 'sum'"):
        resume_config(build_parser().parse_args(["run", "--task", "sum", "--resume", str(tmp_path)]), tmp_path)
    with pytest.raises(RecordError, match="no run record"):
        resume_config(args(), tmp_path / "elsewhere")


def test_compare_covers_every_task_before_any_twice(tmp_path, monkeypatch):
    import izkit.instructzero as iz

    calls = []
    monkeypatch.setattr(iz, "run", lambda cfg, out, resume, progress: calls.append((cfg.task, cfg.seed, out.name)))
    iz.compare(fake_cfg(), ["antonyms", "sum"], [0, 1], tmp_path, progress=False)
    assert calls == [("antonyms", 0, "antonyms-seed0"), ("sum", 0, "sum-seed0"),
                     ("antonyms", 1, "antonyms-seed1"), ("sum", 1, "sum-seed1")]


def test_quick_run_on_the_embedded_model(tmp_path, embedded):
    cfg = Config.quick(TASK, n_init=2, n_rounds=1, batch_size=2, n_dev=3, n_test=3, device="cpu")
    res = run(cfg, tmp_path, progress=False)
    assert res.objective == "loglik"
    iz = res.methods["instructzero"]
    assert iz.n_evals == 4 and iz.best_instruction
    assert set(iz.test) == {"loglik", "accuracy"}  # a local black box reports both on test
    assert np.isfinite(iz.best_dev) and iz.best_dev < 0
    assert "manual" in res.methods
    header = json.loads((tmp_path / "record.jsonl").read_text().splitlines()[0])
    assert header["models"]["generator"]["name"] == "gemma-3-270m" and header["objective"] == "loglik"
    assert "InstructZero" not in res.summary() and "instructzero" in res.summary()
