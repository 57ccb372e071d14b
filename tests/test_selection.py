"""izkit.selection: successive halving over nested, paired example sets with the answers allowed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from izkit.selection import (Rung, answers, halving_rungs, most_candidates, successive_halving, top_k,
                             widest_first)


def test_rungs_shrink_candidates_and_grow_examples_until_the_top():
    assert halving_rungs(27, 5, 3, 100) == [Rung(5, 27), Rung(15, 9), Rung(45, 3), Rung(100, 1)]
    assert halving_rungs(10, 20, 2, 20) == [Rung(20, 10)]  # one fidelity: score all on everything, keep the best
    assert halving_rungs(2, 5, 3, 100) == [Rung(5, 2), Rung(15, 1)]  # one left: no answer is spent past it
    with pytest.raises(ValueError, match="eta > 1"):
        halving_rungs(10, 5, 1, 100)


def test_answers_count_each_rungs_new_examples_once():
    assert answers([Rung(5, 27), Rung(15, 9), Rung(45, 3), Rung(100, 1)]) == 27 * 5 + 9 * 10 + 3 * 30 + 1 * 55
    assert answers([Rung(20, 150)]) == 3000  # the paper's run: 150 instructions on 20 examples


def test_the_most_candidates_that_fit_in_the_answers_allowed():
    n = most_candidates(3000, 5, 3, 100)
    assert answers(halving_rungs(n, 5, 3, 100)) <= 3000 < answers(halving_rungs(n + 1, 5, 3, 100))
    assert most_candidates(3000, 20, 2, 20) == 150 and most_candidates(3, 5, 3, 100) == 0


def test_fewer_candidates_than_planned_widen_the_first_rung_within_the_answers_allowed():
    n = most_candidates(3000, 2, 3, 100)
    assert widest_first(n, 3000, 2, 3, 100) == 2  # as many as planned: the rungs as planned
    e = widest_first(60, 3000, 2, 3, 100)
    assert e > 2 and answers(halving_rungs(60, e, 3, 100)) <= 3000 < answers(halving_rungs(60, e + 1, 3, 100))
    assert widest_first(3, 3000, 2, 3, 100) == 100  # a handful of candidates: each on every example
    assert widest_first(10**6, 3000, 2, 3, 100) == 2  # nothing fits: the rungs stay as given


def test_the_papers_allocation_draws_enough_to_score_every_instruction_of_its_budget():
    from izkit.config import PAPER_MAX_DRAWS, Config

    cfg = Config("antonyms", max_draws=1.5)
    assert cfg.for_method("paper").max_draws == PAPER_MAX_DRAWS and cfg.for_method("instructzero").max_draws == 1.5
    assert Config("antonyms", max_draws=20).as_paper().max_draws == 20


def test_top_k_breaks_ties_by_scoring_order():
    assert top_k(np.array([0.5, 0.7, 0.7, 0.1]), 2) == [1, 2]
    assert top_k(np.array([0.2, 0.2, 0.2]), 1) == [0]


def test_ties_go_by_the_order_given():
    means = np.array([0.5, 0.7, 0.7, 0.7, 0.1])
    assert top_k(means, 2, rank=[0, 3, 2, 1, 4]) == [3, 2]  # equal means: lower rank first
    assert top_k(means, 2, rank=[0, -1, -2, -3, -4]) == [3, 2]  # "last": the later-scored first
    assert top_k(means, 3, rank=[9, 9, 9, 9, 0]) == [1, 2, 3]  # rank orders ties only, never a better mean


def test_a_tied_first_rung_promotes_by_the_tie_order_and_the_pick_too():
    """Every candidate scores 0 on the first 2 examples (as whole pools do on hard examples): which ones go on is the
    tie order alone, and the pick among equals follows it too."""
    table = np.zeros((9, 6))
    table[[1, 7], 2:] = 1.0  # candidates 1 and 7 are the good ones, invisible on the first 2 examples
    score = lambda c, a, b: table[c, a:b]  # noqa: E731
    rungs = halving_rungs(9, 2, 3, 6)  # 9 on 2, 3 on 6
    assert successive_halving(score, rungs).members[1] == [0, 1, 2]  # the earlier-scored
    last = successive_halving(score, rungs, ties=[-i for i in range(9)])
    assert last.members[1] == [8, 7, 6] and last.pick == 7
    assert successive_halving(score, rungs, ties=[5, 0, 8, 7, 6, 4, 3, 1, 2]).members[1] == [1, 7, 8]
    assert successive_halving(score, rungs, ties=[5, 0, 8, 7, 6, 4, 3, 1, 2]).pick == 1  # tie at the pick: rank 0


def truth_scorer(p: np.ndarray, n_examples: int, seed: int = 0):
    """Candidates with true accuracies p; example j of candidate i is a fixed coin flip; records every ask."""
    rng = np.random.default_rng(seed)
    table = (rng.random((len(p), n_examples)) < p[:, None]).astype(float)  # (n, E)
    asked = []

    def score(cands, start, stop):
        asked.append((tuple(cands), start, stop))
        return table[cands, start:stop]

    return score, table, asked


def test_halving_is_paired_nested_and_spends_exactly_its_answers():
    p = np.linspace(0.1, 0.9, 27)
    score, table, asked = truth_scorer(p, 100)
    rungs = halving_rungs(27, 5, 3, 100)
    out = successive_halving(score, rungs)
    assert out.answers == answers(rungs) == sum(len(c) * (b - a) for c, a, b in asked)
    assert [(a, b) for _, a, b in asked] == [(0, 5), (5, 15), (15, 45), (45, 100)]  # each rung extends the last
    for r, (cands, a, b) in enumerate(asked):
        assert list(cands) == out.members[r]  # every member of a rung sees the same examples
    for r in range(1, len(rungs)):
        prev = out.means[r - 1]
        best = top_k(np.array([prev[i] for i in out.members[r - 1]]), rungs[r].candidates)
        assert out.members[r] == [out.members[r - 1][j] for j in best]  # the best of the rung below, best first
    assert out.pick == out.members[-1][0]
    assert np.array_equal(out.scores[out.pick], table[out.pick])


def test_the_pick_is_made_on_the_largest_rung_not_the_first():
    # candidate 0 is lucky on the first 5 examples, candidate 1 is better on all 20
    table = np.array([[1, 1, 1, 1, 1] + [0] * 15, [1, 1, 1, 1, 0] + [1] * 15, [0] * 20], dtype=float)
    out = successive_halving(lambda c, a, b: table[c, a:b], [Rung(5, 3), Rung(20, 2)])
    assert out.members[1] == [0, 1] and out.pick == 1


def test_known_scores_are_reused_never_asked_again():
    p = np.array([0.2, 0.8, 0.5, 0.6])
    score, table, asked = truth_scorer(p, 20)
    known = {i: table[i, :5] for i in range(4)}  # the search scored everyone on the first 5 already
    out = successive_halving(score, [Rung(5, 4), Rung(20, 2)], known=known)
    assert asked == [(tuple(out.members[1]), 5, 20)] and out.answers == 2 * 15


def test_a_scorer_of_the_wrong_shape_is_named():
    with pytest.raises(ValueError, match=r"returned shape \(2, 3\) for 2 candidates on examples 0..5"):
        successive_halving(lambda c, a, b: np.zeros((2, 3)), [Rung(5, 2)])


# ----------------------------------------------------------------------------------------------------------------------
# Halving inside a run (izkit.loop with --selection halving), on the fake pipeline


def halving_cfg(**kw):
    from izkit.config import Config

    kw = {"baselines": ("uniform", "ape", "reference"), "objective": "loglik", "selection": "halving",
          "answers": 120, "halving_first": 2, "halving_eta": 2.0, "halving_top": 16, **kw}
    return Config.quick("antonyms", n_init=4, batch_size=3, n_dev=4, n_test=5, **kw)


class FineGenerator:
    """Every soft prompt its own instruction, and APE samples all distinct: a round never runs out of new ones."""

    def generate(self, Z, exemplars):
        return [f"instruction {float(z[0]):.4f} {float(z[1]):.4f}" for z in Z]

    def generate_plain(self, exemplars, n=1, sampling=None):
        return [f"plain {0 if sampling is None else sampling.seed}-{i}" for i in range(n)]

    generate_ape = generate_plain


class Listening:
    """The fake black box, keeping the inputs of every example it is asked to answer."""

    def __init__(self, die_after=None):
        from conftest import FakeBlackBox

        self.inner, self.inputs = FakeBlackBox(die_after), []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def score(self, instructions, examples, metric="em", objective=None):
        self.inputs += [e.input for e in examples]
        return self.inner.score(instructions, examples, metric, objective)


def test_a_halving_run_spends_its_answers_on_induce_examples_and_picks_on_the_last_rung(tmp_path):
    import json

    from conftest import make_fake_pipeline
    from izkit.loop import Run
    from izkit.tasks import load_task

    cfg = halving_cfg()
    bb = Listening()
    res = Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline(blackbox=bb, generator=FineGenerator())).execute()
    lines = [json.loads(s) for s in (tmp_path / "record.jsonl").read_text().splitlines()]
    task = load_task("antonyms")
    splits = task.splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed)
    induce = [e.input for e in splits.dev + task.spare_induce(cfg.kappa, cfg.n_dev, cfg.seed)]
    n = cfg.candidates
    assert n == most_candidates(120, 2, 2.0, 16)
    for method in ("instructzero", "uniform", "ape"):
        evals = [e for e in lines if e["kind"] == "eval" and e["method"] == method]
        assert len(evals) == n and all(len(e["scores"]) == 2 for e in evals)  # the search: first 2 dev examples
        sel = [s for s in lines if s["kind"] == "selection" and s["method"] == method]
        assert len(sel) == 1 and sel[0]["answers"] == answers(halving_rungs(n, 2, 2.0, 16)) - 2 * n  # beyond rung 0
        assert res.methods[method].answers == answers(halving_rungs(n, 2, 2.0, 16)) <= 120
        assert res.methods[method].best_instruction == sel[0]["instruction"] in sel[0]["members"][-1]
        assert res.methods[method].kept_on == 16  # its mean is over the last rung's examples
        confirms = [c for c in lines if c["kind"] == "confirm" and c["method"] == method]
        assert {(c["start"], c["stop"]) for c in confirms} == {(2, 4), (4, 8), (8, 16)}
    dev_side = sum(len(e["scores"]) for e in lines if e["kind"] in ("eval", "confirm"))
    assert set(bb.inputs[:dev_side]) == set(induce[:16])  # search and halving: the first 16 induce examples only
    assert set(bb.inputs[dev_side:]) <= {e.input for e in splits.test}  # then the test split, for the picks alone
    ref = [s for s in lines if s["kind"] in ("selection", "confirm") and s["method"] == "reference"]
    assert [(c["kind"], c.get("start"), c.get("stop")) for c in ref] == [("confirm", 2, 16), ("selection", None, None)]
    assert ref[1]["rungs"] == [[2, 1], [16, 1]] and ref[1]["answers"] == 14  # straight to the last rung's examples
    assert res.methods["reference"].answers == 16 and res.methods["reference"].kept_on == 16
    assert res.methods["reference"].best_dev == pytest.approx(np.mean(ref[0]["scores"] + [
        e for line in lines if line["kind"] == "eval" and line["method"] == "reference" for e in line["scores"]]))
    text = res.summary()  # the table says on how many examples each kept mean is
    assert f"{res.methods['reference'].best_dev:.3f} (16)" in text and "kept on loglik (examples)" in text


class ThreeInstructions(FineGenerator):
    """Only three instructions exist for soft prompts: the generator's reachable set is exhausted after round 0."""

    def generate(self, Z, exemplars):
        return [f"instruction {int(float(z[0]) > 0) + int(float(z[1]) > 0.5)}" for z in Z]


def test_a_halving_search_stops_after_a_short_round_and_its_answers_widen_the_rungs(tmp_path):
    """max_draws per instruction found too few new ones: the proposal line says short, no later round is proposed,
    and halving spends the answers the missing candidates would have had on wider rungs, within the answers allowed;
    a resumed run reads it all back the same."""
    import json

    from conftest import make_fake_pipeline
    from izkit.loop import Run

    cfg = halving_cfg(baselines=("uniform",), max_draws=1.5)
    pipe = make_fake_pipeline(generator=ThreeInstructions())
    res = Run(cfg, tmp_path, progress=False, pipeline=pipe).execute()
    lines = [json.loads(s) for s in (tmp_path / "record.jsonl").read_text().splitlines()]
    assert len(cfg.round_sizes) > 2
    for method in ("instructzero", "uniform"):
        props = [p for p in lines if p["kind"] == "proposal" and p["method"] == method]
        assert props[-1].get("short") and all(not p.get("short") for p in props[:-1])  # it stopped at the first
        assert len(props) < len(cfg.round_sizes) and all(p["drawn"] <= 1.5 * cfg.round_sizes[p["round"]] for p in props)
        n = sum(p["new"] for p in props)
        sel = next(s for s in lines if s["kind"] == "selection" and s["method"] == method)
        first = widest_first(n, cfg.answers, 2, 2.0, 16)
        assert first > 2 and sel["rungs"] == [[r.examples, r.candidates] for r in halving_rungs(n, first, 2.0, 16)]
        assert res.methods[method].answers == answers(halving_rungs(n, first, 2.0, 16)) <= cfg.answers
    again = Run(cfg, tmp_path, resume=True, progress=False, pipeline=make_fake_pipeline(generator=ThreeInstructions()))
    assert again.execute().methods["instructzero"].best_instruction == res.methods["instructzero"].best_instruction
    assert (tmp_path / "record.jsonl").read_text().count('"kind":"proposal"') == len(
        [p for p in lines if p["kind"] == "proposal"])  # nothing proposed again


def test_without_halving_singles_a_single_instruction_keeps_the_searchs_examples(tmp_path):
    """--no-halving-singles (and every record made before the setting): the hand-written row on the first 2 only."""
    from conftest import make_fake_pipeline
    from izkit.loop import Run
    from izkit.resume import settings_of

    cfg = halving_cfg(baselines=("reference",), halving_singles=False)
    res = Run(cfg, tmp_path, progress=False, pipeline=make_fake_pipeline(generator=FineGenerator())).execute()
    assert res.methods["reference"].answers == 2 and res.methods["reference"].kept_on == 2
    assert res.methods["instructzero"].kept_on == 16
    assert f"{res.methods['reference'].best_dev:.3f} (2)" in res.summary()
    assert settings_of({"config": {"task": "antonyms"}}).halving_singles is False  # an older record resumes as it ran


@pytest.mark.parametrize("die_after", [3, 40, 47, 60])
def test_a_killed_halving_run_resumes_to_the_same_record(tmp_path, die_after):
    from conftest import Killed, make_fake_pipeline
    from izkit.loop import Run
    from izkit.records import comparable_lines

    cfg = halving_cfg()
    Run(cfg, tmp_path / "ref", progress=False, pipeline=make_fake_pipeline()).execute()
    with pytest.raises(Killed):
        Run(cfg, tmp_path / "k", progress=False, pipeline=make_fake_pipeline(die_after=die_after)).execute()
    again = make_fake_pipeline()
    Run(cfg, tmp_path / "k", resume=True, progress=False, pipeline=again).execute()
    assert comparable_lines(tmp_path / "k" / "record.jsonl") == comparable_lines(tmp_path / "ref" / "record.jsonl")
    finished = make_fake_pipeline(generator=FineGenerator())
    Run(cfg, tmp_path / "k", resume=True, progress=False, pipeline=finished).execute()
    assert finished.blackbox.calls == 0  # a finished halving run is read back without asking anything


@pytest.mark.parametrize("ties", ["last", "random"])
def test_the_tie_order_reaches_halving_is_seeded_and_a_killed_run_resumes_to_the_same_record(tmp_path, ties,
                                                                                           monkeypatch):
    import izkit.selection
    from conftest import Killed, make_fake_pipeline
    from izkit.loop import Run
    from izkit.records import comparable_lines

    seen = []
    real = izkit.selection.successive_halving
    monkeypatch.setattr(izkit.selection, "successive_halving",
                        lambda *a, **k: seen.append(list(k["ties"])) or real(*a, **k))
    cfg = halving_cfg(halving_ties=ties)
    Run(cfg, tmp_path / "ref", progress=False, pipeline=make_fake_pipeline()).execute()
    n, calls = len(seen[0]), len(seen)  # the instructions instructzero scored (the fake generator repeats some)
    if ties == "last":
        assert seen[0] == [-i for i in range(n)]
    else:
        assert sorted(seen[0]) == list(range(n)) and seen[0] != list(range(n)) and seen[0] != seen[1]  # per method
    with pytest.raises(Killed):
        Run(cfg, tmp_path / "k", progress=False, pipeline=make_fake_pipeline(die_after=47)).execute()
    Run(cfg, tmp_path / "k", resume=True, progress=False, pipeline=make_fake_pipeline()).execute()
    assert comparable_lines(tmp_path / "k" / "record.jsonl") == comparable_lines(tmp_path / "ref" / "record.jsonl")
    assert calls == 4 and len(seen) > calls  # three searches and the hand-written row (halving_singles)
    assert all(order in seen[:calls] for order in seen[calls:])  # the same orders again, killed or resumed


def test_halving_settings_are_checked_and_the_spend_is_in_answers():
    from izkit.config import Config

    halving60 = Config("antonyms", selection="halving").with_instructions(60)  # --budget: the paper's spend for 60
    assert halving60.answers == 1200 and halving60.candidates == most_candidates(1200, 2, 3.0, 100)
    assert sum(halving60.round_sizes) == halving60.candidates
    best = Config("antonyms", answers=5000, selection="best")  # in answers with the paper's selection: 250 on 20
    assert best.candidates == 250 and sum(best.round_sizes) == 250 and best.round_sizes[:2] == [25, 25]
    with pytest.raises(ValueError, match="halving_eta > 1"):
        Config("antonyms", selection="halving", halving_eta=1.0).validate()
    paper, halving = Config("antonyms").as_paper(), Config("antonyms")
    assert paper.answers == halving.answers == 3000 and paper.candidates == 150
    assert halving.candidates == most_candidates(3000, 2, 3.0, 100) and sum(halving.round_sizes) == halving.candidates
    assert halving.search_examples == 2 and paper.search_examples == 20


def test_the_papers_allocation_runs_beside_halving_at_the_same_answers(tmp_path):
    import json

    from conftest import Killed, make_fake_pipeline
    from izkit.config import Config
    from izkit.loop import Run
    from izkit.records import comparable_lines

    cfg = halving_cfg(baselines=("paper", "uniform", "reference"))
    paper = cfg.for_method("paper")
    assert paper.selection == "best" and paper.candidates == 120 // 4 and paper.search_examples == 4
    assert cfg.for_method("uniform") is cfg and cfg.for_method("instructzero") is cfg
    new = dataclasses.replace(cfg, preimages=True, sampled=0.5).for_method("paper")
    assert not new.preimages and new.sampled == 0.0  # the paper's row is the paper's method, whatever the run adds
    res = Run(cfg, tmp_path / "ref", progress=False, pipeline=make_fake_pipeline(generator=FineGenerator())).execute()
    lines = [json.loads(s) for s in (tmp_path / "ref" / "record.jsonl").read_text().splitlines()]
    evals = {m: [e for e in lines if e["kind"] == "eval" and e["method"] == m] for m in ("instructzero", "paper")}
    assert len(evals["paper"]) == 30 and all(len(e["scores"]) == 4 for e in evals["paper"])
    assert not [s for s in lines if s["kind"] in ("selection", "confirm") and s["method"] == "paper"]
    assert res.methods["paper"].answers == 120 and res.methods["instructzero"].answers <= 120
    first = {m: [e["instruction"] for e in evals[m] if e["round"] == 0] for m in evals}
    assert first["paper"] == first["instructzero"]  # the same Sobol design: the two allocations start paired
    best = max(evals["paper"], key=lambda e: e["mean"])
    assert res.methods["paper"].best_instruction == best["instruction"]
    assert "InstructZero (paper)" in res.summary() and "the best on dev" in res.summary()
    with pytest.raises(Killed):  # killed inside the paper row, then resumed: the same record
        Run(cfg, tmp_path / "k", progress=False, pipeline=make_fake_pipeline(die_after=60,
                                                                             generator=FineGenerator())).execute()
    killed = [json.loads(s) for s in (tmp_path / "k" / "record.jsonl").read_text().splitlines()]
    assert 0 < sum(e["kind"] == "eval" and e["method"] == "paper" for e in killed) < 30
    Run(cfg, tmp_path / "k", resume=True, progress=False, pipeline=make_fake_pipeline(generator=FineGenerator())).execute()
    assert comparable_lines(tmp_path / "k" / "record.jsonl") == comparable_lines(tmp_path / "ref" / "record.jsonl")
    Config("antonyms", baselines=("paper",)).validate()  # beside the default halving
    with pytest.raises(ValueError, match="drop --paper or the baseline"):
        Config("antonyms", baselines=("paper",)).as_paper().validate()
