"""izkit.studies.winner (notebook 9): the winner's curse from records and simulated, allocations of answers, the explorer."""

from __future__ import annotations

import json
import math
import shutil

import matplotlib

matplotlib.use("Agg")

import ipywidgets as W  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from izkit import winner  # noqa: E402
from izkit.replay import replay  # noqa: E402
from izkit.studies.study import method_test_score  # noqa: E402

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
    allowed = (400, 1000, 3000)
    paper = winner.simulate_allocation(POOL, None, allowed, reps=6, seed=3)
    same = winner.simulate_allocation(POOL, (20, 3.0, 20), allowed, reps=6, seed=3)
    assert list(paper.candidates) == [20, 50, 150] and list(paper.answers) == [400, 1000, 3000]
    assert list(paper.allowed) == [400, 1000, 3000]
    assert np.array_equal(paper.truth, same.truth) and np.allclose(paper.estimate, same.estimate)


def test_halving_spends_at_most_the_answers_allowed_and_picks_better_here():
    allowed = (500, 1000, 3000)
    paper = winner.simulate_allocation(POOL, None, allowed, reps=30, seed=0)
    halving = winner.simulate_allocation(POOL, (5, 3.0, 100), allowed, reps=30, seed=0)
    assert np.all(halving.answers <= np.array(allowed)) and np.all(halving.candidates > paper.candidates)
    assert [r.examples for r in halving.rungs[-1]] == [5, 15, 45, 100]
    assert np.all(halving.truth <= halving.best + 1e-12) and np.all(halving.best <= POOL.max())
    assert halving.truth[:, -1].mean() > paper.truth[:, -1].mean()  # the last rung on 100 examples: a better pick
    assert halving.curse[:, -1].mean() < paper.curse[:, -1].mean()  # ... and a smaller curse
    at = winner.at_answers(halving, 3000)
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


def test_answers_studies_finds_finished_runs_by_answers_allowed_and_nothing_while_none_is_done(tmp_path):
    assert winner.answers_studies(tmp_path / "missing") == {}
    (tmp_path / "1000").mkdir()
    (tmp_path / "notes").mkdir()
    assert winner.answers_studies(tmp_path) == {}  # a folder of answers allowed with no finished run yet
    shutil.copytree(winner.STUDY / "sum-seed0", tmp_path / "3000" / "sum-seed0")
    found = winner.answers_studies(tmp_path)
    assert list(found) == [3000] and [r.config["task"] for r in found[3000]] == ["sum"]


def test_the_halving_explorer_redraws_when_a_slider_moves():
    ex = winner.halving_explorer(POOL, reps=3, allowed=(500, 1000), answers=1000)
    assert bytes(ex.image.value).startswith(PNG) and ex.state["n_redraws"] == 1
    before = bytes(ex.image.value)
    h = ex.state["at"]["halving"]
    assert f"{h['candidates']} candidates" in ex.widgets["readout"].value and "1,000 answers" in ex.widgets[
        "readout"].value
    ex.widgets["first"].value = 2
    assert ex.state["n_redraws"] == 2 and bytes(ex.image.value) != before
    assert ex.state["halving"].halving == (2, 3.0, 100) and ex.state["at"]["halving"]["candidates"] > h["candidates"]
    ex.widgets["answers"].value = 500
    assert ex.state["answers"] == 500 and ex.state["at"]["paper"]["candidates"] == 25
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


# ----------------------------------------------------------------------------------------------------------------------
# The winner's curse as an explorer


def test_the_curse_explorer_starts_with_a_slider_and_redraws_when_one_moves():
    ex = winner.curse_explorer(n=150, m=20, reps=200, seed=0)
    first = ex.ui.children[0]
    assert isinstance(first, (W.SelectionSlider, W.IntSlider, W.FloatSlider)) and first is ex.widgets["n"]
    assert "izkit-curse-explorer" in ex.ui._dom_classes
    assert not ex.widgets["n"].continuous_update and not ex.widgets["m"].continuous_update
    assert bytes(ex.image.value).startswith(PNG) and ex.state["n_redraws"] == 1
    curse, truth = winner.curse_simulation([150], [20], reps=200, seed=0)  # what the readout states is the simulation's
    assert ex.state["curse"] == pytest.approx(curse[0, 0]) and ex.state["truth"] == pytest.approx(truth[0, 0])
    assert f"{curse[0, 0]:+.3f}" in ex.widgets["readout"].value and "3,000" in ex.widgets["readout"].value
    before, at150 = bytes(ex.image.value), ex.state["curse"]
    ex.widgets["n"].value = 1000
    assert ex.state["n_redraws"] == 2 and bytes(ex.image.value) != before
    assert ex.state["curse"] > at150 + 0.02  # more candidates: the kept one's estimate sits further above its truth
    ex.widgets["m"].value = 500
    assert ex.state["curse"] < at150 / 2 and ex.state["n_redraws"] == 3  # more examples each: far less
    ex.widgets["n"].value = 1
    assert abs(ex.state["curse"]) < 0.03  # nothing chosen: no curse
    p, est, pick = ex.state["draw"]
    assert len(p) == len(est) == 1 and pick == 0
    assert not ex.output.outputs  # no error met


def test_one_draw_keeps_the_first_of_the_best_estimates_and_is_seeded():
    p, est, pick = winner.curse_draw(50, 20, seed=3)
    assert p.shape == est.shape == (50,) and np.all((p >= 0.3) & (p <= 0.7))
    assert np.all(np.isclose(est * 20, np.round(est * 20)))  # a count of right answers out of 20
    assert est[pick] == est.max() and pick == int(np.flatnonzero(est == est.max())[0])
    again = winner.curse_draw(50, 20, seed=3)
    assert np.array_equal(p, again[0]) and np.array_equal(est, again[1])


def test_the_halving_explorer_carries_its_css_class():
    ex = winner.halving_explorer(POOL, reps=2, allowed=(500,), answers=500)
    assert "izkit-halving-explorer" in ex.ui._dom_classes and isinstance(ex.ui.children[0], W.IntSlider)


# ----------------------------------------------------------------------------------------------------------------------
# Where the archived studies are read from, and the held-out reading


def test_the_study_is_looked_up_when_read_and_an_installed_izkit_says_how_to_point_at_it(tmp_path, monkeypatch):
    monkeypatch.setenv("IZKIT_STUDY", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="IZKIT_STUDY"):
        winner.STUDY
    with pytest.raises(FileNotFoundError, match="IZKIT_STUDY"):
        winner.study_runs()
    with pytest.raises(FileNotFoundError, match="IZKIT_STUDY"):
        winner.answers_studies()
    monkeypatch.delenv("IZKIT_STUDY")
    clone = winner.STUDY
    (tmp_path / "study").mkdir()
    shutil.copytree(clone / "sum-seed1", tmp_path / "study" / "sum-seed1")
    monkeypatch.setenv("IZKIT_STUDY", str(tmp_path))
    assert winner.STUDY == tmp_path / "study"
    assert [r.config["task"] for r in winner.study_runs()] == ["sum"]  # the default folder, read at call time
    with pytest.raises(AttributeError):
        winner.NOT_A_STUDY


def test_heldout_groups_pair_methods_by_task_and_skip_runs_without_scores(tmp_path):
    scores = {"sum-seed0": {"instructzero": 0.7, "paper": 0.5, "held_out": 95},
              "sum-seed1": {"instructzero": 0.6, "paper": 0.6, "held_out": 95},
              "antonyms-seed0": {"held_out": 13},  # too few held-out examples: no scores
              "translation_en-fr-seed2": {"instructzero": 0.2, "paper": 0.3, "held_out": 53}}
    (tmp_path / "heldout-1000.json").write_text(json.dumps(scores))
    got = winner.heldout_groups(winner.heldout_scores(1000, tmp_path), "instructzero", "paper")
    assert list(got) == ["sum", "translation_en-fr"]
    assert got["sum"] == pytest.approx([0.2, 0.0]) and got["translation_en-fr"] == pytest.approx([-0.1])
    with pytest.raises(FileNotFoundError, match="study_heldout"):
        winner.heldout_scores(3000, tmp_path)
    real = winner.heldout_scores(1000)
    groups = winner.heldout_groups(real, "instructzero", "paper")
    assert "antonyms" not in groups and sum(len(g) for g in groups.values()) == sum(
        "paper" in v for v in real.values())


# ----------------------------------------------------------------------------------------------------------------------
# Statistics over (task, seed) pairs that nest in tasks (izkit.studies.study)


def test_task_groups_group_by_task_and_drop_missing_scores():
    from izkit.studies.study import task_groups

    got = task_groups(["b", "a", "b", "a", "c"], [1.0, 2.0, 3.0, float("nan"), float("nan")])
    assert list(got) == ["a", "b"] and got["a"] == pytest.approx([2.0]) and got["b"] == pytest.approx([1.0, 3.0])
    with pytest.raises(ValueError):
        task_groups(["a"], [1.0, 2.0])


def test_the_nested_bootstrap_is_wider_than_one_that_treats_seeds_as_tasks():
    from izkit.studies.study import bootstrap_ci, nested_bootstrap_ci

    rng = np.random.default_rng(0)
    task_effect = rng.normal(0.02, 0.05, size=10)  # (10,) what a task does to the difference
    groups = {f"t{i}": e + rng.normal(0, 0.005, size=3) for i, e in enumerate(task_effect)}  # 3 seeds, alike
    flat = np.concatenate(list(groups.values()))  # (30,) as if 30 independent pairs
    lo, hi = nested_bootstrap_ci(groups)
    flo, fhi = bootstrap_ci(flat)
    assert hi - lo > 1.4 * (fhi - flo)  # about sqrt(3) wider: three alike seeds are one task's evidence, not three
    assert lo < np.mean([g.mean() for g in groups.values()]) < hi
    assert nested_bootstrap_ci(groups) == (lo, hi)  # seeded
    one = nested_bootstrap_ci({"t": np.array([0.1, 0.2, 0.3])})  # one task: only its seeds vary
    assert 0.1 <= one[0] < one[1] <= 0.3
    assert all(math.isnan(x) for x in nested_bootstrap_ci({}))


def test_by_task_tests_the_per_task_means():
    from izkit.studies.study import by_task, wilcoxon_p

    groups = {f"t{i}": np.full(3, d) for i, d in enumerate([0.1, 0.2, 0.05, 0.3, -0.02, 0.0, 0.15, 0.08])}
    got = by_task(groups, "x", "y")
    assert got.diffs == pytest.approx([0.1, 0.2, 0.05, 0.3, -0.02, 0.0, 0.15, 0.08])
    assert (got.wins, got.ties, got.losses, got.n_pairs) == (6, 1, 1, 24)
    assert got.mean == pytest.approx(np.mean(got.diffs))
    assert got.p_value == pytest.approx(wilcoxon_p(got.diffs))
    assert got.p_value > wilcoxon_p(np.concatenate(list(groups.values()))) * 3  # 24 copies overstate the evidence
    assert got.ci[0] < got.mean < got.ci[1]


def test_paired_by_task_reads_the_archived_study_one_difference_per_task():
    from izkit.studies.study import method_test_score, paired, paired_by_task

    runs = winner.study_runs()
    pt = paired_by_task(runs, "instructzero", "uniform", "accuracy")
    tasks = sorted({r.config["task"] for r in runs})
    assert list(pt.groups) == tasks and pt.n_pairs == len(paired(runs, "instructzero", "uniform", "accuracy").diffs)
    seeds = [x for x in runs if x.config["task"] == tasks[0]]  # one task's runs, one difference each
    assert pt.groups[tasks[0]] == pytest.approx([method_test_score(x, "instructzero", "accuracy")
                                                 - method_test_score(x, "uniform", "accuracy") for x in seeds])
    assert pt.diffs[0] == pytest.approx(pt.groups[tasks[0]].mean()) and len(pt.diffs) == len(tasks)


def test_holm_adjusts_step_down_and_leaves_untested_ones_out():
    from izkit.studies.study import holm

    got = holm([0.01, 0.04, 0.03, 0.005, float("nan")])
    # m = 4 tests: 0.005 x 4, 0.01 x 3, 0.03 x 2, 0.04 x 1, then made non-decreasing in that order
    assert got[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and math.isnan(got[4])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.2]) == pytest.approx([0.2]) and len(holm([])) == 0
    p = np.random.default_rng(1).random(12)
    adj = holm(p)
    assert np.all(adj >= p) and np.all(np.diff(adj[np.argsort(p)]) >= 0)


def test_evidence_reads_a_large_p_as_no_evidence_never_as_the_same():
    from izkit.studies.study import evidence

    assert evidence(0.01) == "evidence of a difference"
    assert evidence(0.41) == "no evidence of a difference" and evidence(0.05) == "no evidence of a difference"
    assert evidence(0.03, alpha=0.01) == "no evidence of a difference" and evidence(float("nan")) == "no test"


def test_borderline_names_an_interval_and_a_test_that_disagree():
    from izkit.studies.study import borderline

    assert borderline((0.018, 0.152), 0.055) == "borderline: the interval excludes 0, the test does not reach 0.05"
    assert borderline((-0.15, -0.01), 0.08).startswith("borderline: the interval excludes 0")  # either sign
    assert borderline((-0.01, 0.12), 0.03) == "borderline: the test is below 0.05, the interval does not exclude 0"
    assert borderline((0.02, 0.15), 0.01) == "" and borderline((-0.05, 0.1), 0.4) == ""  # they agree
    assert borderline((0.02, 0.15), 0.055, alpha=0.1) == ""
    assert borderline((0.0, 0.0), float("nan")) == ""  # no test


def test_curse_by_task_holds_the_same_gaps_as_picks_grouped_by_task():
    runs = winner.study_runs()
    got = winner.curse_by_task(runs, ["instructzero", "reference"])
    dev, test = winner.picks(runs, ["instructzero"])["instructzero"]
    flat = np.concatenate(list(got["instructzero"].values()))
    assert len(flat) == len(dev) and flat.mean() == pytest.approx((dev - test).mean())
    assert list(got["instructzero"]) == sorted({r.config["task"] for r in runs})
    assert all(len(g) == 3 for g in got["reference"].values())  # three seeds of every task
