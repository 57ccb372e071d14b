"""izkit.strategies: each method's proposal from a Round of fakes, with no Run, no record and no model."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from conftest import FakeBlackBox, FakeGenerator
from izkit.config import METHODS, Config
from izkit.seeds import design_seed, round_seed
from izkit.strategies import (APE, BayesOpt, Manual, Reference, Round, Uniform, fill_round, is_search,
                              sobol_design, strategy_for)


class UniqueGenerator(FakeGenerator):
    """Every soft prompt writes its own instruction (its coordinates), so no candidate is a repeat."""

    def __init__(self):
        self.calls: list[int] = []

    def generate(self, Z, exemplars):
        self.calls.append(len(Z))
        return [" ".join(f"{float(v):.6f}" for v in z) for z in Z]


def make_round(method="instructzero", rnd=0, size=4, evals=(), generator=None, drawn=None, **cfg) -> Round:
    """A round of the fake generator; ``drawn`` (the candidates earlier rounds drew) defaults to one per eval."""
    config = Config.quick("antonyms", objective="loglik", **cfg)
    return Round(method, rnd, size, config, generator or UniqueGenerator(), ["demo"], list(evals),
                 drawn=len(evals) if drawn is None else drawn)


def scored(prop, method="instructzero", rnd=0) -> list[dict]:
    """Eval lines for a proposal, scored by the fake black box on four inputs (what the loop would record)."""
    examples = [type("Example", (), {"input": f"x{i}"})() for i in range(4)]
    res = FakeBlackBox().score(prop.instructions, examples)
    return [{"method": method, "round": rnd, "index": i, "z": prop.z[i], "instruction": v,
             "scores": res.scores[i].tolist(), "predictions": res.predictions[i], "mean": float(res.means[i])}
            for i, v in enumerate(prop.instructions)]


def test_every_method_is_made_from_its_row_of_the_table():
    kinds = {m: strategy_for(m).kind for m in METHODS}
    assert kinds == {"instructzero": "search", "paper": "search", "matern": "search", "uniform": "search",
                     "ape": "search", "manual": "single", "reference": "single"}
    assert [m for m in METHODS if is_search(m)] == ["instructzero", "paper", "matern", "uniform", "ape"]
    assert [m for m in METHODS if strategy_for(m).needs_reference] == ["reference"]
    assert [(m, strategy_for(m).coupled) for m in METHODS if isinstance(strategy_for(m), BayesOpt)] == [
        ("instructzero", True), ("paper", True), ("matern", False)]
    with pytest.raises(ValueError, match="unknown method 'random'; choose from instructzero"):
        strategy_for("random")


def test_a_round_derives_its_seed_from_seed_method_round_and_attempt():
    r = make_round("uniform", rnd=2, seed=3)
    assert r.seed() == round_seed(3, "uniform", 2) == (3 + 7919) * 1000 + 2
    assert make_round("instructzero", rnd=2, seed=3).seed(attempt=1) == 3 * 1000 + 2 + 100_000
    assert r.seed() != make_round("instructzero", rnd=2, seed=3).seed()  # random search draws apart from BO
    assert make_round("instructzero", seed=3).seed() == make_round("matern", seed=3).seed()  # the BOs are paired


def test_the_initial_design_is_the_seeded_sobol_design_for_both_bos():
    r = make_round("instructzero", size=5, seed=2)
    prop = BayesOpt("instructzero", coupled=True).propose(r)
    assert np.allclose(prop.z, sobol_design(5, 10, design_seed(2)).numpy())
    twin = BayesOpt("matern", coupled=False).propose(dataclasses.replace(r, method="matern"))
    assert twin.z == prop.z and twin.instructions == prop.instructions
    assert prop.gp is None and prop.facts == {"drawn": 5, "new": 5, "attempts": 1}


def test_a_bo_round_fits_the_gp_then_proposes_new_soft_prompts_by_ei():
    bo = BayesOpt("instructzero", coupled=True)
    first = bo.propose(make_round(size=5))
    r1 = make_round(rnd=1, size=3, evals=scored(first))
    prop = bo.propose(r1)
    assert len(prop.instructions) == 3 and not set(prop.instructions) & r1.seen
    evaluated = torch.tensor(first.z)
    assert torch.cdist(torch.tensor(prop.z), evaluated).min() > 0  # no evaluated soft prompt again
    assert {"log_marginal_likelihood", "hyperparameters", "acquisition", "diagnostics"} <= set(prop.gp)
    assert len(prop.gp["acquisition"]) >= 3 and prop.facts["random"] == 0
    gp = bo.fit(r1.evals, r1.cfg, 1)  # the same GP as the round's (what a replay refits)
    assert gp.log_marginal_likelihood_ == pytest.approx(prop.gp["log_marginal_likelihood"])
    again = bo.propose(r1)
    assert again.z == prop.z and again.instructions == prop.instructions  # seeded: the same round twice


def test_a_bo_round_that_only_meets_repeats_falls_back_to_uniform_draws_and_counts_them():
    class OneInstruction(UniqueGenerator):
        def generate(self, Z, exemplars):
            self.calls.append(len(Z))
            return ["the same"] * len(Z)

    bo = BayesOpt("matern", coupled=False)
    evals = scored(bo.propose(make_round("matern", size=4)), "matern")
    gen = OneInstruction()
    evals[0]["instruction"] = "the same"
    prop = bo.propose(make_round("matern", rnd=1, size=2, evals=evals, generator=gen, max_draws=5, drawn=20))
    assert prop.instructions == [] and prop.facts["drawn"] == 10  # max_draws x (4 + 2) - 20 drawn, no repeat kept
    assert prop.facts["short"]
    assert prop.facts["random"] == sum(gen.calls[4:])  # passes past WIDEN_PASSES draw uniformly


def test_a_round_may_draw_what_earlier_rounds_saved_of_max_draws_per_instruction():
    assert make_round(size=4, max_draws=1.5).draw_cap() == 6  # floor(1.5 x 4)
    evals = [{"instruction": f"i{k}"} for k in range(8)]
    assert make_round(rnd=2, size=4, evals=evals, drawn=10, max_draws=1.5).draw_cap() == 8  # 1.5 x 12 - 10
    assert make_round(rnd=2, size=4, evals=evals, drawn=30, max_draws=1.5).draw_cap() == 4  # never below the size


def test_uniform_draws_a_seeded_stream_per_round():
    a = Uniform().propose(make_round("uniform", rnd=1, size=4))
    assert Uniform().propose(make_round("uniform", rnd=1, size=4)).z == a.z
    assert Uniform().propose(make_round("uniform", rnd=2, size=4)).z != a.z
    assert all(-1 <= v <= 1 for z in a.z for v in z)


def test_ape_samples_with_apes_template_a_stream_per_attempt_and_skips_what_the_method_scored():
    seed = round_seed(0, "ape", 1)
    prop = APE().propose(make_round("ape", rnd=1, size=3, generator=FakeGenerator(),
                                    evals=[{"instruction": f"ape {seed}-0"}]))
    assert prop.z is None
    assert prop.instructions == [f"ape {seed}-1", f"ape {seed}-2",
                                 f"ape {seed + 100_000}-0"]  # the seen one skipped, a second pass for the rest


def test_single_instruction_methods():
    r = make_round("manual", size=1, generator=FakeGenerator())
    assert Manual().propose(r).instructions == ["plain 0-0"]
    ref = dataclasses.replace(r, method="reference", reference_instruction="Write the opposite word.")
    assert Reference().propose(ref).instructions == ["Write the opposite word."]
    with pytest.raises(ValueError, match="no reference_instruction"):
        Reference().propose(r)


def test_fill_round_stops_at_max_draws_and_keeps_no_repeat():
    def draw(k, attempt, tried):
        return None, [f"v{(attempt * k + i) % 3}" for i in range(k)]

    prop = fill_round(draw, seen={"v0"}, size=5, screen=1, max_draws=12)
    assert prop.instructions == ["v1", "v2"] and prop.z is None
    assert prop.facts == {"drawn": 12, "new": 2, "attempts": 4, "short": True}  # the record says it ran out


def test_fill_round_keeps_the_preimages_of_scored_instructions_only():
    """Drawn and not kept: a soft prompt that wrote a scored instruction (v0, or v1 kept this round) is a preimage;
    one that wrote a new instruction after the round was full (v3) is not: nobody scores it."""
    texts = iter([["v0", "v1", "v1"], ["v2", "v0", "v3"]])

    def draw(k, attempt, tried):
        batch = next(texts)
        return torch.full((len(batch), 2), float(attempt)) + torch.arange(len(batch))[:, None], batch

    prop = fill_round(draw, seen={"v0"}, size=2, screen=1, max_draws=12)
    assert prop.instructions == ["v1", "v2"] and prop.z == [[1.0, 1.0], [1.0, 1.0]]
    assert prop.facts["preimages"] == {"z": [[0.0, 0.0], [2.0, 2.0], [2.0, 2.0]], "instructions": ["v0", "v1", "v0"]}


def test_preimage_sharing_adds_scored_copies_to_the_gp_and_the_replay_refits_the_same(tmp_path):
    """With --preimages, each proposal's preimages join the GP's data as copies of their instruction's eval line
    (no answer spent); the replay of the record refits the GP of the run's last round exactly."""
    from conftest import make_fake_pipeline
    from izkit.loop import Run
    from izkit.replay import replay
    from izkit.surrogate import preimage_evals

    evals = [{"instruction": "a", "z": [0.1], "mean": 0.5, "scores": [0.5]}]
    assert preimage_evals(evals, [([0.9], "a"), ([0.3], "b")]) == [
        {"instruction": "a", "z": [0.9], "mean": 0.5, "scores": [0.5], "preimage": True}]  # "b" has no score
    cfg = Config.quick("antonyms", baselines=(), objective="loglik", preimages=True, n_init=4, batch_size=4,
                       n_rounds=2, selection="best")  # 12 evals of n_dev examples (halving: test_selection)
    Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline()).execute()
    rep = replay(tmp_path)
    pre = [p.get("preimages", {"z": []}) for p in rep.record.of_kind("proposal", method="instructzero")]
    n_pre = sum(len(p["z"]) for p in pre[:-1])  # the last round's GP saw the preimages of the rounds before it
    assert n_pre > 0
    gp = rep.gp(upto_round=1)
    assert gp.Z_train_.shape[0] == len(rep.evals()[:8]) + n_pre
    line = rep.record.find("gp", method="instructzero", round=2)
    assert gp.log_marginal_likelihood_ == pytest.approx(line["log_marginal_likelihood"], rel=1e-9)
    plain = BayesOpt("instructzero", coupled=True).fit(rep.evals()[:8], dataclasses.replace(cfg, preimages=False), 2,
                                                       [([0.0] * cfg.d, rep.evals()[0]["instruction"])])
    assert plain.Z_train_.shape[0] == 8  # without the setting the preimages are kept in the record, not used


def test_a_mixed_pool_samples_its_share_of_each_round_and_the_gp_sees_only_soft_prompts(tmp_path):
    """--sampled 0.5: of each round's new instructions, half (rounded) are APE-style samples with no soft prompt,
    none repeating the search's own; the GP is fitted on the soft-prompted evaluations alone; resumed, the same."""
    import json

    from conftest import Killed, make_fake_pipeline
    from izkit.loop import Run
    from izkit.records import comparable_lines
    from izkit.replay import replay
    from izkit.strategies import Mixed

    cfg = Config.quick("antonyms", baselines=("uniform", "ape"), objective="loglik", sampled=0.5, n_init=4,
                       batch_size=3, n_rounds=2)
    assert isinstance(strategy_for("instructzero", cfg), Mixed) and isinstance(strategy_for("ape", cfg), APE)
    assert isinstance(strategy_for("instructzero"), BayesOpt)  # the settings decide; the name alone is the method
    Run(cfg, tmp_path / "ref", progress=False, pipeline=make_fake_pipeline()).execute()
    lines = [json.loads(s) for s in (tmp_path / "ref" / "record.jsonl").read_text().splitlines()]
    for method in ("instructzero", "uniform"):
        evals = [e for e in lines if e["kind"] == "eval" and e["method"] == method]
        texts = [e["instruction"] for e in evals]
        assert len(texts) == len(set(texts)) == cfg.candidates
        for rnd, size in enumerate(cfg.round_sizes):
            got = [e for e in evals if e["round"] == rnd]
            assert sum(e["z"] is None for e in got) == math.floor(size * 0.5 + 0.5)  # 2 of 4, then 2 of 3
            assert all(e["instruction"].startswith("ape") == (e["z"] is None) for e in got)
    gps = [g for g in lines if g["kind"] == "gp" and g["method"] == "instructzero"]
    rep = replay(tmp_path / "ref")
    assert rep.gp(upto_round=0).Z_train_.shape[0] == 2  # round 0's two Sobol points, not its two samples
    assert rep.gp(upto_round=0).log_marginal_likelihood_ == pytest.approx(gps[0]["log_marginal_likelihood"])
    with pytest.raises(Killed):
        Run(cfg, tmp_path / "k", progress=False, pipeline=make_fake_pipeline(die_after=9)).execute()
    Run(cfg, tmp_path / "k", resume=True, progress=False, pipeline=make_fake_pipeline()).execute()
    assert comparable_lines(tmp_path / "k" / "record.jsonl") == comparable_lines(tmp_path / "ref" / "record.jsonl")
    with pytest.raises(ValueError, match="in \\[0, 1\\)"):
        Config("antonyms", sampled=1.0).validate()
