"""izkit.loop (with config, strategies, replay, compare): the loop end to end on the embedded model, resume after kills, replay, compare table."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from conftest import Killed, make_fake_pipeline
from izkit.studies.compare import compare_table
from izkit.config import Config
from izkit.loop import Run, RunResult, run
from izkit.replay import replay
from izkit.strategies import new_instructions
from izkit.records import RecordError

TASK = "antonyms"


def resumed(args, out) -> Config:
    """The one config ``izkit run --resume OUT`` goes on with, for these parsed flags (izkit.resume.plan_run)."""
    from izkit.cli import config_from_args
    from izkit.resume import plan_run

    return plan_run(out, cfg := config_from_args(args, args.task), resume=True, flags=cfg.changes()).config


def fake_cfg(**kw) -> Config:
    # the paper's allocation (every instruction on all n_dev, the dev-best kept), whose loop these tests count;
    # halving: tests/test_selection
    kw = {"baselines": ("uniform", "ape", "manual"), "objective": "loglik", "selection": "best", "preimages": False,
          **kw}  # the fake scores are loglik-like
    return Config.quick(TASK, n_init=4, n_rounds=2, batch_size=3, n_dev=4, n_test=5, **kw)


def outcome(result: RunResult, out) -> tuple:
    lines = [json.loads(s) for s in (out / "record.jsonl").read_text().splitlines()]
    evals = [(e["method"], e["round"], e["index"], e["instruction"], e["mean"]) for e in lines if e["kind"] == "eval"]
    best = {m: (r.best_instruction, r.best_dev, r.test) for m, r in result.methods.items()}
    return sorted(evals), best


def test_loop_with_fake_models_counts_and_methods(tmp_path):
    cfg = fake_cfg()
    res = Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline()).execute()
    evals = [json.loads(s) for s in (tmp_path / "record.jsonl").read_text().splitlines()]
    kinds = [e["kind"] for e in evals]
    assert kinds[0] == "header" and kinds[-1] == "done"
    per_method = {m: sum(1 for e in evals if e["kind"] == "eval" and e["method"] == m) for m in res.methods}
    assert per_method == {"instructzero": 10, "uniform": 10, "ape": 10, "manual": 1}
    assert sum(1 for e in evals if e["kind"] == "gp") == 2  # one GP fit per BO round
    iz = [e for e in evals if e["kind"] == "eval" and e["method"] == "instructzero"]
    assert all(-1 <= v <= 1 for e in iz for v in e["z"])
    assert res.methods["instructzero"].best_dev == max(e["mean"] for e in iz)
    assert {m: r.kept_on for m, r in res.methods.items()} == dict.fromkeys(res.methods, 4)  # the paper's: all n_dev


def test_config_survives_a_json_round_trip():
    cfg = Config(TASK, seed=3, baselines=("uniform", "ape"), screen=1).with_instructions(60)
    back = Config.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and isinstance(back.baselines, tuple)


def test_new_instructions_keeps_the_first_new_ones_in_order_and_never_a_repeat():
    cands = ["a", "b", "a", "c", "old", "d", "e"]  # best EI first
    assert new_instructions(cands, {"old"}, 3) == [0, 1, 3]  # a, b, c: the second "a" and "old" are skipped
    assert new_instructions(cands, {"old"}, 5) == [0, 1, 3, 5, 6]
    assert new_instructions(["old", "a", "a"], {"old"}, 3) == [1]  # fewer new than asked: no repeat fills the batch
    assert new_instructions(["x"], set(), 3) == [0]


@pytest.mark.parametrize("screen", [1, 3])
def test_every_method_scores_its_candidates_as_distinct_instructions_and_no_soft_prompt_twice(tmp_path, screen):
    cfg = fake_cfg(screen=screen, baselines=("matern", "uniform", "ape"))
    Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline()).execute()
    lines = [json.loads(s) for s in (tmp_path / "record.jsonl").read_text().splitlines()]
    for method in ("instructzero", "matern", "uniform", "ape"):
        evals = [e for e in lines if e["kind"] == "eval" and e["method"] == method]
        texts = [e["instruction"] for e in evals]
        assert len(texts) == len(set(texts)) == cfg.candidates, method  # as many distinct instructions each
        if method != "ape":
            zs = [tuple(e["z"]) for e in evals]
            assert len(set(zs)) == len(zs), method  # no evaluated soft prompt proposed again
        props = [p for p in lines if p["kind"] == "proposal" and p["method"] == method]
        assert [p["new"] for p in props] == cfg.round_sizes
        assert all(p["drawn"] >= p["new"] and p["attempts"] >= 1 for p in props)
    bo = [p for p in lines if p["kind"] == "proposal" and p["method"] == "instructzero" and p["round"] > 0]
    assert all(p["drawn"] >= screen * p["new"] for p in bo)  # the first pass draws screen x the batch


def test_a_round_that_runs_out_of_new_instructions_is_short_and_says_so(tmp_path):
    class FewInstructions:  # only three instructions exist
        def generate(self, Z, exemplars):
            return [f"instruction {int(float(z[0]) > 0) + int(float(z[1]) > 0.5)}" for z in Z]

        def generate_plain(self, exemplars, n=1, sampling=None):
            return ["plain"] * n

    cfg = fake_cfg(baselines=("uniform",), max_draws=3)
    Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline(generator=FewInstructions())).execute()
    lines = [json.loads(s) for s in (tmp_path / "record.jsonl").read_text().splitlines()]
    for method in ("instructzero", "uniform"):
        texts = [e["instruction"] for e in lines if e["kind"] == "eval" and e["method"] == method]
        assert len(texts) == len(set(texts)) <= 3, method
        props = [p for p in lines if p["kind"] == "proposal" and p["method"] == method]
        assert sum(p["new"] for p in props) == len(texts)
        assert all(p["drawn"] <= cfg.max_draws * size for p, size in zip(props, cfg.round_sizes))


@pytest.mark.parametrize("die_after", [0, 1, 3, 5, 9, 14, 22, 30])
def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, die_after):
    cfg = fake_cfg()
    ref = Run(cfg, tmp_path / "ref", progress=False, pipeline=make_fake_pipeline()).execute()
    out = tmp_path / "killed"
    with pytest.raises(Killed):
        Run(cfg, out, progress=False, pipeline=make_fake_pipeline(die_after=die_after)).execute()
    before = [json.loads(s) for s in (out / "record.jsonl").read_text().splitlines()] if die_after else []
    models = make_fake_pipeline()
    res = Run(cfg, out, resume=True, progress=False, pipeline=models).execute()
    assert outcome(res, out) == outcome(ref, tmp_path / "ref")
    lines = [json.loads(s) for s in (out / "record.jsonl").read_text().splitlines()]
    assert res.work_seconds == pytest.approx(sum(e.get("seconds", 0) for e in lines if e["kind"] != "done"))
    assert all(e in lines for e in before)  # the time (and all else) recorded before the kill still counts
    keys = [(m, r, i) for m, r, i, *_ in outcome(res, out)[0]]
    assert len(keys) == len(set(keys))  # nothing evaluated twice
    scored = lambda ls: sum(1 for e in ls if e["kind"] in ("eval", "test"))  # noqa: E731 (one black-box call each)
    assert scored(before) == die_after  # every call the killed run got an answer to is in its record
    assert models.blackbox.calls == scored(lines) - scored(before)  # the resumed run asked only for the rest


def test_resume_asks_nothing_already_recorded(tmp_path):
    cfg = fake_cfg()
    Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline()).execute()
    models = make_fake_pipeline()
    Run(cfg, tmp_path, resume=True, progress=False, pipeline=models).execute()
    assert models.blackbox.calls == 0


def test_torn_last_line_is_redone(tmp_path):
    cfg = fake_cfg()
    ref = Run(cfg, tmp_path / "ref", progress=False, pipeline=make_fake_pipeline()).execute()
    out = tmp_path / "torn"
    with pytest.raises(Killed):
        Run(cfg, out, progress=False, pipeline=make_fake_pipeline(die_after=6)).execute()
    text = (out / "record.jsonl").read_text()
    (out / "record.jsonl").write_text(text + text.splitlines()[-1][:25])  # a kill in the middle of a write
    res = Run(cfg, out, resume=True, progress=False, pipeline=make_fake_pipeline()).execute()
    assert outcome(res, out) == outcome(ref, tmp_path / "ref")


def test_resume_with_another_config_names_the_field(tmp_path):
    cfg = fake_cfg()
    with pytest.raises(Killed):
        Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline(die_after=2)).execute()
    with pytest.raises(RecordError, match=r"made with seed=0, but the run asks for seed=1"):
        Run(dataclasses.replace(cfg, seed=1), tmp_path, resume=True, progress=False, pipeline=make_fake_pipeline())


def test_new_run_refuses_an_existing_record(tmp_path):
    Run(fake_cfg(), tmp_path, progress=False, pipeline=make_fake_pipeline()).execute()
    with pytest.raises(RecordError, match="already exists; resume it with --resume"):
        Run(fake_cfg(), tmp_path, progress=False, pipeline=make_fake_pipeline())


@pytest.mark.parametrize(("field", "value", "msg"), [
    ("blackbox", "remote", "blackbox must be one of 'local', 'openai', got 'remote'"),
    ("baselines", ("random",), "unknown baseline 'random'"),
    ("objective", "bleu", "objective must be one of None, 'accuracy', 'loglik', got 'bleu'"),
    ("n_dev", 0, "n_dev must be at least 1"),
])
def test_bad_config_values(tmp_path, field, value, msg):
    with pytest.raises(ValueError, match=msg):
        Run(dataclasses.replace(fake_cfg(), **{field: value}), tmp_path, progress=False, pipeline=make_fake_pipeline())


def test_agreement_similarity_needs_accuracy(tmp_path):
    with pytest.raises(ValueError, match="agreement.*use --objective accuracy"):
        Run(fake_cfg(similarity="agreement"), tmp_path, progress=False, pipeline=make_fake_pipeline())


def test_instructions_set_rounds():
    best = Config(TASK, selection="best")
    cfg = best.with_instructions(150)
    assert (cfg.n_init, cfg.n_rounds, cfg.batch_size, cfg.candidates) == (25, 5, 25, 150)
    assert best.with_instructions(60).round_sizes == [25, 25, 10]
    assert best.with_instructions(10).round_sizes == [10]
    assert Config(TASK).with_instructions(50).answers == 1000  # with halving, --budget is the paper's spend
    with pytest.raises(ValueError, match="--budget must be at least 1"):
        Config(TASK).with_instructions(0)


def test_defaults_are_the_papers_search_and_spend_with_halvings_pick_and_the_paper_one_call_away():
    cfg = Config(TASK)
    assert (cfg.d, cfg.n_tokens, cfg.kappa, cfg.n_dev, cfg.n_test) == (10, 5, 5, 20, 100)
    assert (cfg.n_init, cfg.batch_size, cfg.answers) == (25, 25, 3000)  # the paper's 150 x 20 answers
    assert (cfg.selection, cfg.halving_first, cfg.halving_eta, cfg.halving_top, cfg.preimages) == (
        "halving", 2, 3.0, 100, True)  # the study's new selection (bench/RESULTS.md)
    assert cfg.candidates == 450 and cfg.round_sizes == [25] * 18
    paper = cfg.as_paper()
    assert (paper.selection, paper.preimages, paper.sampled, paper.answers) == ("best", False, 0.0, 3000)
    assert (paper.n_init, paper.n_rounds, paper.batch_size, paper.candidates) == (25, 5, 25, 150)
    assert cfg.selection == "halving"  # as_paper copies, never edits
    assert cfg.resolved_objective() == "accuracy"  # the paper's objective, for a local black box too
    assert dataclasses.replace(cfg, blackbox="openai").resolved_objective() == "accuracy"
    assert cfg.baselines == ("manual", "reference") and cfg.generator is None


def test_replay_without_a_model(tmp_path):
    cfg = fake_cfg()
    res = Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline()).execute()
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
            results.append(Run(cfg, tmp_path / f"{task}{seed}", progress=False, pipeline=make_fake_pipeline()).execute())
    table = compare_table(results, "loglik").splitlines()
    assert table[0].startswith("Test loglik (mean +- sd over seeds; BO optimised loglik on dev)")
    assert table[2] == "| task | InstructZero | Uniform | APE-style | Manual (generator) | seeds | minutes of work |"
    assert table[-2] == "| distinct instructions scored per run | 10.0 | 10.0 | 10.0 | 1.0 | | |"  # as many each
    assert table[-1] == "| black-box answers on dev-side examples per run | 40 | 40 | 40 | 4 | | |"  # x 4 dev examples
    minutes = sum(r.work_seconds for r in results if r.config.task == "sum") / 60
    assert table[5].endswith(f" | 2 | {minutes:.1f} |") and minutes > 0
    one_seed = compare_table(results[:1], "loglik").splitlines()[4]
    assert f"| {results[0].methods['instructzero'].test['loglik']:.3f} |" in one_seed and "+-" not in one_seed
    assert [row.split(" | ")[0] for row in table[4:-2]] == ["| antonyms", "| sum", "| **average**"]
    vals = [r.methods["uniform"].test["loglik"] for r in results if r.config.task == "sum"]
    assert f"{np.mean(vals):.3f} +- {np.std(vals, ddof=1):.3f}" in table[5]


def test_resume_takes_the_config_from_the_record(tmp_path):
    from izkit.cli import build_parser

    cfg = fake_cfg(seed=3, baselines=("uniform",))
    Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline()).execute()

    def args(*flags):
        return build_parser().parse_args(["run", "--task", TASK, "--resume", str(tmp_path), *flags])

    assert resumed(args(), tmp_path) == cfg  # nothing but --task: the record's config, quick preset and all
    assert resumed(args("--seed", "3", "--baselines", "uniform"), tmp_path) == cfg  # agreeing flags are fine
    assert resumed(args("--timeout", "5"), tmp_path).request_timeout == 5.0  # how to reach the endpoint
    with pytest.raises(RecordError, match="made with seed=3, but the flags ask for seed=4"):
        resumed(args("--seed", "4"), tmp_path)
    with pytest.raises(RecordError, match="a run of task 'antonyms', not 'sum'"):
        resumed(build_parser().parse_args(["run", "--task", "sum", "--resume", str(tmp_path)]), tmp_path)
    with pytest.raises(RecordError, match="no run recorded there"):
        resumed(args(), tmp_path / "elsewhere")


def test_compare_covers_every_task_before_any_twice(tmp_path, monkeypatch):
    import izkit.studies.compare as cmp

    calls = []
    monkeypatch.setattr(cmp, "run", lambda cfg, out, resume, progress: calls.append((cfg.task, cfg.seed, out.name)))
    cmp.compare(fake_cfg(), ["antonyms", "sum"], [0, 1], tmp_path, progress=False)
    assert calls == [("antonyms", 0, "antonyms-seed0"), ("sum", 0, "sum-seed0"),
                     ("antonyms", 1, "antonyms-seed1"), ("sum", 1, "sum-seed1")]


def test_quick_run_on_the_embedded_model(tmp_path, embedded):
    cfg = Config.quick(TASK, n_init=2, n_rounds=1, batch_size=2, n_dev=3, n_test=3, device="cpu")  # 12 answers
    res = run(cfg, tmp_path, progress=False)
    assert res.objective == "accuracy"
    iz = res.methods["instructzero"]
    assert iz.n_evals == cfg.candidates == 3 and iz.best_instruction  # halving, the default: 3 x 2 + 1 x 4 answers
    assert iz.answers == 10 and iz.best_instruction == replay(tmp_path).kept()["instruction"]
    assert set(iz.test) == {"loglik", "accuracy"}  # a local black box reports both on test
    assert 0 <= iz.best_dev <= 1
    assert "manual" in res.methods and "reference" in res.methods
    header = json.loads((tmp_path / "record.jsonl").read_text().splitlines()[0])
    assert header["models"]["generator"]["name"] == "gemma-3-270m" and header["objective"] == "accuracy"
    text = res.summary()  # the methods by their display names, as every other table
    assert "InstructZero" in text and "Manual (generator)" in text and "Hand-written" in text
    assert "kept: successive halving" in text
    assert "instructzero" not in text
    minutes = f"time: {res.work_seconds / 60:.1f} min of recorded work"
    assert text.splitlines()[-1].startswith(minutes) and res.work_seconds > 0  # the run says what it cost


def _canonical(value):
    """A record line without its times, floats to 6 significant digits: what must not change when the code is moved.

    (8 decimal places were too fine: on a machine with numpy 2.4.6, scipy 1.17.1 and OpenBLAS's Haswell kernels the
    same code changed the 8th decimal of log-EI values near -6e5 and of the GP's fitted lengthscales.)"""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in sorted(value.items()) if k not in ("seconds", "created")}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def test_a_seeded_quick_run_gives_the_pinned_record(tmp_path):
    """The record of a seeded quick run with the fake pipeline, pinned: moving code must not change one line.

    First pinned before the layout change (izkit/instructzero.py) and unchanged by it; re-pinned when every method
    began to score distinct instructions only (round 1 no longer re-scores "instruction 3-0"), and when
    gp lines began to carry the round's diagnostics; re-pinned at 6 significant digits (see ``_canonical``) with the
    same evaluations and bests as before; unchanged by the strategy seam (issue 23), then re-pinned once when APE-style
    began to sample with APE's own template (the fake's ``generate_ape``): only the APE lines differ; re-pinned when
    proposal lines began to keep their preimages (issue 24; without those keys the record hashes to the pin before,
    9ceb5578...). A change of
    the method itself changes it on purpose, and the commit that does so says why.

    Compared line by line with ``tests/data/pinned_record.json`` (floats to a relative 1e-4), no longer by a sha256 of
    the 6-digit text: on an AMD EPYC machine the same code moved the 6th digit of one EI maximiser's soft prompt (1e-6
    relative; MKL's code paths, ``MKL_CBWR``, move it as much), which the hash could not tell from a change of the
    method. ``IZKIT_REPIN=1`` rewrites the file (say why in the commit).
    """
    res = Run(fake_cfg(), tmp_path, progress=False, pipeline=make_fake_pipeline()).execute()
    lines = [json.loads(s) for s in (tmp_path / "record.jsonl").read_text().splitlines()]
    evals = [(e["method"], e["round"], e["index"], e["instruction"], round(e["mean"], 6))
             for e in lines if e["kind"] == "eval"]
    assert evals[:7] == [("instructzero", 0, 0, "instruction 1-2", -0.656923),
                         ("instructzero", 0, 1, "instruction 3-0", -0.376621),
                         ("instructzero", 0, 2, "instruction 2-3", -0.690009),
                         ("instructzero", 0, 3, "instruction 0-1", -0.433474),
                         ("instructzero", 1, 0, "instruction 0-0", -0.658995),
                         ("instructzero", 1, 1, "instruction 2-2", -0.374635),
                         ("instructzero", 1, 2, "instruction 1-1", -0.683064)]
    best = {m: (r.best_instruction, round(r.best_dev, 6)) for m, r in res.methods.items()}
    assert best == {"instructzero": ("instruction 2-2", -0.374635), "uniform": ("instruction 2-0", -0.14406),
                    "ape": ("ape 0-1", -0.358995), "manual": ("plain 0-0", -0.592966)}
    body = [_canonical(line) for line in lines[1:]]
    if os.environ.get("IZKIT_REPIN"):
        PINNED_RECORD.write_text(json.dumps(body, sort_keys=True, indent=0) + "\n")
    assert_same_record(body, json.loads(PINNED_RECORD.read_text()))


PINNED_RECORD = Path(__file__).parent / "data" / "pinned_record.json"


def assert_same_record(got, want, where: str = "line") -> None:
    """``got`` is ``want``: the same keys, lengths, strings and integers, floats within a relative 1e-4 (each fault
    names where it is: line index, then keys and list positions)."""
    if isinstance(want, float):
        assert isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-12), \
            f"{where}: {got!r}, pinned {want!r}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{where}: {sorted(got)}, pinned {sorted(want)}"
        for k in want:
            assert_same_record(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {len(got)} items, pinned {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_record(g, w, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r}, pinned {want!r}"


def test_the_pinned_record_comparison_tells_a_digit_from_a_change():
    pinned = json.loads(PINNED_RECORD.read_text())
    i = next(k for k, line in enumerate(pinned) if line["kind"] == "eval" and line["mean"])  # whatever was pinned

    def edited(**fields):
        lines = copy.deepcopy(pinned)
        lines[i].update(fields)
        return lines

    mean = pinned[i]["mean"]
    assert_same_record(edited(mean=mean * (1 + 2e-6)), pinned)  # an optimiser's 6th digit
    for changed in (edited(mean=mean * (1 + 1e-3)), edited(instruction=pinned[i]["instruction"] + " again")):
        with pytest.raises(AssertionError):
            assert_same_record(changed, pinned)


def test_exploration_settings_reach_the_gp_and_every_round_logs_its_diagnostics(tmp_path):
    cfg = fake_cfg(baselines=(), batch="authors", gp_inputs="unit", gp_noise="known", residual=True,
                   score_standardize="column")
    Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline()).execute()
    lines = [json.loads(s) for s in (tmp_path / "record.jsonl").read_text().splitlines()]
    texts = [e["instruction"] for e in lines if e["kind"] == "eval"]
    assert len(texts) == len(set(texts)) == cfg.candidates
    gps = [g for g in lines if g["kind"] == "gp"]
    assert len(gps) == cfg.n_rounds and all("sd_ratio_q50" in g["diagnostics"] for g in gps)
    assert all("residual_outputscale" in g["hyperparameters"] for g in gps)
    gp = replay(tmp_path).gp()  # the replayed GP is built with the record's settings
    assert gp.config.input_bounds == (-1.0, 1.0) and gp.config.noise_var_y is not None
    assert gp.kernel_.residual and gp.kernel_.similarity.standardize == "column"
    with pytest.raises(ValueError, match="batch must be one of 'ei', 'authors', got 'cma'"):
        Run(fake_cfg(batch="cma"), tmp_path / "bad", progress=False, pipeline=make_fake_pipeline())
    with pytest.raises(ValueError, match="dtype must be one of None, 'float32', 'bfloat16', got 'float16'"):
        fake_cfg(dtype="float16").validate()


def test_the_hand_written_instruction_is_scored_as_a_row_and_skipped_where_a_task_has_none(tmp_path, caplog):
    import shutil

    cfg = fake_cfg(baselines=("manual", "reference"))
    res = Run(cfg, tmp_path / "a", progress=False, pipeline=make_fake_pipeline()).execute()
    assert res.methods["reference"].best_instruction == "Write the opposite of the given word."
    assert res.methods["reference"].n_evals == 1 and set(res.methods["reference"].test) == {"loglik", "accuracy"}
    root = tmp_path / "bench"  # a task from the original benchmark: no reference in its metadata
    for split in ("induce", "execute"):
        (root / split).mkdir(parents=True)
        data = json.loads(shutil.copy(f"data/{split}/antonyms.json", root / split / "antonyms.json") and
                          (root / split / "antonyms.json").read_text())
        del data["metadata"]["reference_instruction"]
        (root / split / "antonyms.json").write_text(json.dumps(data))
    res = Run(dataclasses.replace(cfg, root=str(root)), tmp_path / "b", progress=False,
              pipeline=make_fake_pipeline()).execute()
    assert "reference" not in res.methods and "has no reference_instruction" in caplog.text


def test_a_record_of_another_default_model_refuses_to_resume(tmp_path, monkeypatch):
    from izkit import models

    monkeypatch.delenv("IZKIT_MODEL")  # the tests' cheap-model override would stand for the default

    cfg = fake_cfg(baselines=())
    Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline()).execute()
    path = tmp_path / "record.jsonl"
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header["models"]["generator"] = {"name": "gemma-3-270m", "source": "x", "device": "cpu", "dtype": "float32"}
    header["config"]["task"] = "antonyms"
    path.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
    monkeypatch.setattr(models, "DEFAULT_MODEL", "gemma-3-270m")
    Run(cfg, tmp_path, resume=True, progress=False, pipeline=make_fake_pipeline())  # the same default: fine
    monkeypatch.setattr(models, "DEFAULT_MODEL", "qwen2.5-coder-0.5b-instruct")
    with pytest.raises(RecordError, match="made with the default model of its izkit version, 'gemma-3-270m', and the "
                                          "default is now 'qwen2.5-coder-0.5b-instruct'; resume it with --generator"):
        Run(cfg, tmp_path, resume=True, progress=False, pipeline=make_fake_pipeline())
    Run(dataclasses.replace(cfg, generator="gemma-3-270m"), tmp_path, resume=True, progress=False,
        pipeline=make_fake_pipeline())  # named explicitly: resumes
    from izkit.cli import build_parser

    args = build_parser().parse_args(["run", "--task", "antonyms", "--resume", str(tmp_path), "--generator",
                                      "gemma-3-270m"])
    Run(resumed(args, tmp_path), tmp_path, resume=True, progress=False, pipeline=make_fake_pipeline())
    with pytest.raises(RecordError, match="generator='gemma-3-270m', but the flags ask for generator='other'"):
        resumed(build_parser().parse_args(["run", "--task", "antonyms", "--resume", str(tmp_path),
                                                 "--generator", "other"]), tmp_path)


def test_instructions_are_scored_in_fixed_groups_and_a_partial_group_is_asked_again_whole(tmp_path):
    from conftest import FakeBlackBox

    SCORE_GROUP = 8

    class Recording(FakeBlackBox):
        instructions_per_call = SCORE_GROUP  # as the local black box asks

        def __init__(self):
            super().__init__()
            self.asked = []

        def score(self, instructions, examples, metric="em", objective=None):
            self.asked.append(list(instructions))
            return super().score(instructions, examples, metric, objective)

    cfg = Config.quick(TASK, baselines=(), n_init=11, n_rounds=0, n_dev=4, n_test=5,
                       selection="best")  # one round of the paper's allocation: groups of 8, 3
    bb = Recording()
    Run(cfg, tmp_path / "a", progress=False, pipeline=make_fake_pipeline(blackbox=bb)).execute()
    assert [len(a) for a in bb.asked[:2]] == [SCORE_GROUP, 11 - SCORE_GROUP]  # then the test split, one each
    path = tmp_path / "a" / "record.jsonl"
    lines = path.read_text().splitlines()
    evals = [k for k, s in enumerate(lines) if '"kind":"eval"' in s]
    path.write_text("\n".join(lines[: evals[5]]) + "\n")  # a kill after 5 lines of the first group were written
    bb2 = Recording()
    Run(cfg, tmp_path / "a", resume=True, progress=False, pipeline=make_fake_pipeline(blackbox=bb2)).execute()
    assert [len(a) for a in bb2.asked[:2]] == [SCORE_GROUP, 11 - SCORE_GROUP]  # the whole first group again
    again = [json.loads(s) for s in path.read_text().splitlines() if '"kind":"eval"' in s]
    assert sorted(e["index"] for e in again) == list(range(11))  # each index once


def test_a_resume_may_name_a_restarted_loopback_server_on_another_port_but_not_another_host(tmp_path):
    from izkit.cli import build_parser

    cfg = fake_cfg(baselines=(), blackbox="openai", blackbox_model="m", base_url="http://127.0.0.1:8001/v1",
                   objective="accuracy")
    Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline()).execute()

    def args(url):
        return build_parser().parse_args(["run", "--task", "antonyms", "--resume", str(tmp_path), "--base-url", url])

    moved = resumed(args("http://127.0.0.1:9002/v1"), tmp_path)
    assert moved.base_url == "http://127.0.0.1:9002/v1"
    Run(moved, tmp_path, resume=True, progress=False, pipeline=make_fake_pipeline())  # the Run's own check agrees
    with pytest.raises(RecordError, match="base_url"):
        resumed(args("http://example.org/v1"), tmp_path)
    with pytest.raises(RecordError, match="base_url"):
        Run(dataclasses.replace(cfg, base_url="http://example.org/v1"), tmp_path, resume=True, progress=False,
            pipeline=make_fake_pipeline())


def test_test_curve_scores_each_rounds_incumbent_and_search_alone_never_touches_test(tmp_path):
    pipe = make_fake_pipeline()
    run = Run(fake_cfg(baselines=("uniform",)), tmp_path / "search", progress=False, pipeline=pipe)
    assert run.search(["uniform"]) == ["uniform"]
    lines = [json.loads(s) for s in (tmp_path / "search" / "record.jsonl").read_text().splitlines()]
    assert {e["method"] for e in lines if e["kind"] == "eval"} == {"uniform"}
    assert not [e for e in lines if e["kind"] in ("test", "test_curve", "done")]
    with pytest.raises(ValueError, match=r"\['ape'\] are not in this run's config"):
        run.search(["ape"])

    cfg = fake_cfg(baselines=("uniform", "manual"), test_curve=True)
    res = Run(cfg, tmp_path / "curve", progress=False, pipeline=make_fake_pipeline()).execute()
    lines = [json.loads(s) for s in (tmp_path / "curve" / "record.jsonl").read_text().splitlines()]
    for method in ("instructzero", "uniform"):
        pts = [t for t in lines if t["kind"] == "test_curve" and t["method"] == method]
        evals = [e for e in lines if e["kind"] == "eval" and e["method"] == method]
        assert [p["round"] for p in pts] == [0, 1, 2]
        assert [p["n_distinct"] for p in pts] == list(np.cumsum(cfg.round_sizes))
        for p in pts:
            upto = [e for e in evals if e["round"] <= p["round"]]
            assert p["dev"] == max(e["mean"] for e in upto)
            assert p["instruction"] == next(e for e in upto if e["mean"] == p["dev"])["instruction"]  # ties: first
        assert pts[-1]["instruction"] == res.methods[method].best_instruction
        assert pts[-1]["mean"] == res.methods[method].test["loglik"]
    assert not [t for t in lines if t["kind"] == "test_curve" and t["method"] == "manual"]


def test_the_course_switches_to_an_openai_black_box_by_environment(monkeypatch):
    from izkit.config import blackbox_from_env

    monkeypatch.delenv("IZKIT_BASE_URL", raising=False)
    monkeypatch.delenv("IZKIT_BLACKBOX_MODEL", raising=False)
    assert blackbox_from_env() == {}
    monkeypatch.setenv("IZKIT_BASE_URL", "http://127.0.0.1:8000/v1")
    with pytest.raises(ValueError, match=r"\$IZKIT_BASE_URL is set but \$IZKIT_BLACKBOX_MODEL is not"):
        blackbox_from_env()
    monkeypatch.setenv("IZKIT_BLACKBOX_MODEL", "my-model")
    cfg = Config.quick(TASK, **blackbox_from_env())
    assert (cfg.blackbox, cfg.base_url, cfg.blackbox_model) == ("openai", "http://127.0.0.1:8000/v1", "my-model")


def test_a_resumed_run_keeps_the_number_format_it_began_in(tmp_path):
    """A record whose models were loaded in float32 resumes in float32 whatever this machine's default is now."""
    from izkit.resume import with_recorded_dtype

    cfg = fake_cfg()
    Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline()).execute()
    lines = (tmp_path / "record.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    header["models"]["generator"] = {"name": "gemma-3-270m", "source": "x", "device": "cpu", "dtype": "float32"}
    (tmp_path / "record.jsonl").write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    resumed = Run(cfg, tmp_path, resume=True, progress=False, pipeline=make_fake_pipeline())
    assert cfg.dtype is None and resumed.cfg.dtype == "float32"
    assert with_recorded_dtype({**cfg.to_dict(), "dtype": "bfloat16"}, header)["dtype"] == "bfloat16"  # asked wins
    assert with_recorded_dtype(cfg.to_dict(), {"models": {}})["dtype"] is None


def test_a_run_another_process_is_writing_is_refused_and_left_untouched(tmp_path):
    from test_records import _hold_lock

    from izkit.records import RecordBusy

    out = tmp_path / "run"
    Run(fake_cfg(), out, progress=False, pipeline=make_fake_pipeline()).execute()
    torn = (out / "record.jsonl").read_bytes()[:-1]  # its last line torn, as if the other process were mid-write
    (out / "record.jsonl").write_bytes(torn)
    child = _hold_lock(out)
    try:
        with pytest.raises(RecordBusy, match="is writing this run"):
            Run(fake_cfg(), out, resume=True, progress=False, pipeline=make_fake_pipeline())
        assert (out / "record.jsonl").read_bytes() == torn  # not cut: the other writer's line is not ours to cut
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    Run(fake_cfg(), out, resume=True, progress=False, pipeline=make_fake_pipeline()).execute()


def test_two_compares_on_one_folder_share_out_the_pairs(tmp_path, monkeypatch):
    """A pair another process holds is skipped, the rest run, and it is read back once that process lets go."""
    import threading

    import izkit.studies.compare as cmp
    from test_records import _hold_lock

    from izkit.records import locked_run

    calls = []

    def fake_run(cfg, out, resume, progress):
        with locked_run(out):  # what Run.__init__ does first
            pass
        calls.append(out.name)
        return out.name

    monkeypatch.setattr(cmp, "run", fake_run)
    child = _hold_lock(tmp_path / "antonyms-seed0")
    threading.Timer(0.5, child.stdin.close).start()
    try:
        results = cmp.compare(fake_cfg(), ["antonyms", "sum"], [0], tmp_path, progress=False, poll_seconds=0.05)
    finally:
        child.wait(timeout=30)
    assert calls == ["sum-seed0", "antonyms-seed0"] and results == ["antonyms-seed0", "sum-seed0"]


def test_a_finished_pair_copied_back_from_an_archive_is_read_back_by_compare_without_a_model(tmp_path, monkeypatch):
    """The study's archive (records without the answers' text), copied into a fresh study folder, resumes the study:
    compare reads the finished pair back with the same results and loads no model."""
    import shutil

    import izkit.studies.compare as cmp
    from izkit.pipeline import Pipeline
    from izkit.studies.study import archive, finished_runs

    cfg = dataclasses.replace(fake_cfg(), task="antonyms", seed=0)
    done = Run(cfg, tmp_path / "first" / "antonyms-seed0", progress=False, pipeline=make_fake_pipeline()).execute()
    archive(finished_runs(tmp_path / "first"), tmp_path / "kept")
    shutil.copytree(tmp_path / "kept", tmp_path / "again")

    def no_model(*args, **kwargs):
        raise AssertionError("a finished pair must not load a model")

    monkeypatch.setattr(Pipeline, "from_config", no_model)
    back, = cmp.compare(fake_cfg(), ["antonyms"], [0], tmp_path / "again", progress=False)
    assert {m: (r.best_instruction, r.best_dev, r.test, r.n_distinct) for m, r in back.methods.items()} == \
        {m: (r.best_instruction, r.best_dev, r.test, r.n_distinct) for m, r in done.methods.items()}


def test_the_progress_bar_steps_by_round_and_the_summary_gives_each_methods_minutes(tmp_path, capsys):
    """Proposing is most of a round's time, so the bar counts rounds (its rate and ETA per round, not per quick
    evaluation) and says what the round is doing; a run read back starts its bars full; the table prints minutes."""
    cfg = fake_cfg()
    res = Run(cfg, tmp_path, progress=True, pipeline=make_fake_pipeline()).execute()
    err = capsys.readouterr().err
    n = len(cfg.round_sizes)
    assert "instructzero: 100%" in err and f"{n}/{n} [" in err and "round/s" in err, err[-2000:]
    assert f"round {n - 1}: scoring {cfg.round_sizes[-1]} (drawn" in err and "eval/s" not in err.split("halving")[0]
    head, rows = res.summary().splitlines()[1], res.summary().splitlines()[2:-1]
    assert "minutes" in head and all(m.minutes > 0 for m in res.methods.values())
    assert [float(r.split()[2]) for r in rows if r.startswith("InstructZero")] == [round(res.methods[
        "instructzero"].minutes, 1)]
    Run(cfg, tmp_path, resume=True, progress=True, pipeline=make_fake_pipeline()).execute()  # read back
    again = capsys.readouterr().err
    assert f"{n}/{n} [" in again and "proposing" not in again


def test_resuming_a_folder_that_is_not_there_leaves_no_folder_behind(tmp_path):
    """``izkit run --resume DIR`` of a DIR that does not exist fails naming it, and does not create DIR (a folder with
    only a lock file in it would look like a run); a folder that was there stays."""
    with pytest.raises(RecordError):
        Run(fake_cfg(), tmp_path / "nowhere", resume=True, flags={}, progress=False,
            pipeline=make_fake_pipeline())
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "there").mkdir()
    with pytest.raises(RecordError):
        Run(fake_cfg(), tmp_path / "there", resume=True, flags={}, progress=False,
            pipeline=make_fake_pipeline())
    assert (tmp_path / "there").is_dir()
