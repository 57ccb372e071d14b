"""izkit.winner (notebook 9): the winner's curse from records and simulated, allocations of answers, the explorer."""

from __future__ import annotations

import math
import shutil

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from izkit import winner  # noqa: E402
from izkit.replay import replay  # noqa: E402
from izkit.study import method_test_score  # noqa: E402

PNG = b"\x89PNG"
POOL = np.round(np.linspace(0.0, 0.9, 60), 2)  # (60,) true accuracies, one clear best


def test_the_curse_grows_with_candidates_and_shrinks_with_examples():
    ns, ms = [1, 10, 150], [5, 20, 200]
    curse, truth = winner.curse_simulation(ns, ms, reps=400, seed=0)
    assert curse.shape == truth.shape == (3, 3)
    assert np.all(np.abs(curse[0]) < 0.02)  # one candidate: nothing chosen, no curse
    assert np.all(np.diff(curse[:, 1]) > 0)  # more candidates on 20 examples: a bigger curse
    assert np.all(np.diff(curse[2]) < 0)  # 150 candidates on more examples: a smaller one
    assert np.all((truth >= 0.3) & (truth <= 0.7))
    again, _ = winner.curse_simulation(ns, ms, reps=400, seed=0)
    assert np.array_equal(curse, again)  # seeded


def test_halving_with_one_rung_of_20_is_the_papers_allocation_on_the_same_answers():
    budgets = (400, 1000, 3000)
    paper = winner.simulate_allocation(POOL, None, budgets, reps=6, seed=3)
    same = winner.simulate_allocation(POOL, (20, 3.0, 20), budgets, reps=6, seed=3)
    assert list(paper.candidates) == [20, 50, 150] and list(paper.answers) == [400, 1000, 3000]
    assert np.array_equal(paper.truth, same.truth) and np.allclose(paper.estimate, same.estimate)


def test_halving_spends_at_most_the_budget_and_picks_better_here():
    budgets = (500, 1000, 3000)
    paper = winner.simulate_allocation(POOL, None, budgets, reps=30, seed=0)
    halving = winner.simulate_allocation(POOL, (5, 3.0, 100), budgets, reps=30, seed=0)
    assert np.all(halving.answers <= np.array(budgets)) and np.all(halving.candidates > paper.candidates)
    assert [r.examples for r in halving.rungs[-1]] == [5, 15, 45, 100]
    assert np.all(halving.truth <= halving.best + 1e-12) and np.all(halving.best <= POOL.max())
    assert halving.truth[:, -1].mean() > paper.truth[:, -1].mean()  # the last rung on 100 examples: a better pick
    assert halving.curse[:, -1].mean() < paper.curse[:, -1].mean()  # ... and a smaller curse
    at = winner.at_budget(halving, 3000)
    assert at["candidates"] == halving.candidates[-1] and at["answers"] <= 3000 and "100" in winner.rungs_text(
        at["rungs"])


def test_simulate_allocation_refuses_an_empty_pool_and_a_top_past_the_simulated_examples():
    with pytest.raises(ValueError, match="empty"):
        winner.simulate_allocation(np.array([]), None, (1000,), reps=1)
    with pytest.raises(ValueError, match="top"):
        winner.simulate_allocation(POOL, (5, 3.0, winner.EXAMPLES + 1), (1000,), reps=1)


def test_picks_read_the_kept_dev_score_and_its_test_score_from_a_record():
    rep = replay(winner.STUDY / "antonyms-seed0")
    got = winner.picks([rep], ["instructzero", "reference", "paper"])
    assert got["instructzero"] == (pytest.approx([rep.kept("instructzero")["mean"]]),
                                   pytest.approx([method_test_score(rep, "instructzero", rep.objective)]))
    assert len(got["reference"][0]) == 1 and len(got["paper"][0]) == 0  # a method the run lacks: no points
    pool = winner.candidate_pool(rep)
    assert len(pool) == len({e["instruction"] for m in winner.SEARCHES for e in rep.evals(m)})


def test_answers_studies_finds_finished_runs_by_budget_and_nothing_while_none_is_done(tmp_path):
    assert winner.answers_studies(tmp_path / "missing") == {}
    (tmp_path / "1000").mkdir()
    (tmp_path / "notes").mkdir()
    assert winner.answers_studies(tmp_path) == {}  # a budget folder with no finished run yet
    shutil.copytree(winner.STUDY / "sum-seed0", tmp_path / "3000" / "sum-seed0")
    found = winner.answers_studies(tmp_path)
    assert list(found) == [3000] and [r.config["task"] for r in found[3000]] == ["sum"]


def test_the_halving_explorer_redraws_when_a_slider_moves():
    ex = winner.halving_explorer(POOL, reps=3, budgets=(500, 1000), budget=1000)
    assert bytes(ex.image.value).startswith(PNG) and ex.state["n_redraws"] == 1
    before = bytes(ex.image.value)
    h = ex.state["at"]["halving"]
    assert f"{h['candidates']} candidates" in ex.widgets["readout"].value and "1,000 answers" in ex.widgets[
        "readout"].value
    ex.widgets["first"].value = 2
    assert ex.state["n_redraws"] == 2 and bytes(ex.image.value) != before
    assert ex.state["halving"].halving == (2, 3.0, 100) and ex.state["at"]["halving"]["candidates"] > h["candidates"]
    ex.widgets["budget"].value = 500
    assert ex.state["budget"] == 500 and ex.state["at"]["paper"]["candidates"] == 25
    ex.widgets["first"].value, ex.widgets["top"].value = 20, 20
    assert np.array_equal(ex.state["halving"].truth, ex.state["paper"].truth)
    assert not ex.output.outputs  # no error met


def test_first_rung_tells_a_tied_promotion_from_a_ranked_one(tmp_path):
    from izkit.records import RunRecord

    def run(name, first_scores, second=None, promoted=None):
        rec = RunRecord.create(tmp_path / name / "record.jsonl", {"config": {"task": "sum", "seed": 0},
                                                                  "objective": "accuracy"})
        texts = [f"i{j}" for j in range(len(first_scores))]
        for j, (t, sc) in enumerate(zip(texts, first_scores)):
            rec.append({"kind": "eval", "method": "uniform", "round": 0 if j < 2 else 1, "index": j, "z": None,
                        "instruction": t, "scores": sc, "mean": float(np.mean(sc))})
        promoted = promoted or sorted(texts, key=lambda t: -np.mean(first_scores[texts.index(t)]))[:2]
        for t, mean in (second or {}).items():  # the second rung's new examples (2 to 4)
            rec.append({"kind": "confirm", "method": "uniform", "instruction": t, "start": 2, "stop": 4,
                        "scores": [mean, mean], "mean": mean})
        rec.append({"kind": "selection", "method": "uniform", "instruction": promoted[0], "mean": 1.0,
                    "rungs": [[2, len(texts)], [4, len(promoted)]], "members": [texts, promoted], "answers": 4})
        rec.append({"kind": "done"})
        return replay(tmp_path / name)

    ranked = run("a", [[1, 1], [0, 0], [1, 0], [0, 0], [0, 0], [0, 0]], {"i0": 1.0, "i2": 0.5})  # two stand apart
    tied = run("b", [[0, 0]] * 6, {"i0": 0.0, "i1": 0.5})  # everyone 0 on the first two examples: the order picks
    half = run("c", [[1, 1], [0, 0], [0, 1], [1, 0], [0, 0], [0, 0]])  # one clear, then three tied for one place
    one = winner.first_rung([ranked], "uniform")
    assert (one.halvings, one.boundary_tied, one.all_tied) == (1, 0, 0)
    assert one.pool_round0 == pytest.approx(2 / 6) and one.promoted_round0 == pytest.approx(1 / 2)
    assert one.by_tie == 0.0 and one.next_above == pytest.approx(0.75) and math.isnan(one.next_by_tie)
    got = winner.first_rung([ranked, tied, half], "uniform")
    assert (got.halvings, got.boundary_tied, got.all_tied) == (3, 2, 1)
    assert got.pool_round0 == pytest.approx(6 / 18) and got.promoted_round0 == pytest.approx(4 / 6)
    assert got.by_tie == pytest.approx(2 / 4)  # of the promoted with second-rung scores, tied's two went by tie
    assert got.next_by_tie == pytest.approx(0.25) and got.next_above == pytest.approx(0.75)
    assert got.order_gaps == ()  # tied's tie order chose from round 0 only: nothing to compare
    assert got.picks_by_tie == 1 and one.picks_by_tie == 0  # tied kept i0, which went on by the tie order
    mixed = run("d", [[0, 0]] * 6, {"i1": 0.0, "i2": 0.5, "i3": 1.0}, promoted=["i1", "i2", "i3"])
    assert winner.first_rung([mixed], "uniform").order_gaps == pytest.approx((0.75,))  # rounds 1 (i2, i3) - 0 (i1)
    assert winner.first_rung([ranked], "instructzero").halvings == 0  # no halving for that method
