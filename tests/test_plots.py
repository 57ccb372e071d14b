"""izkit.plots: every figure is drawn headless from record lines and holds what it should."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from izkit import plots


@pytest.fixture()
def evals():
    rng = np.random.default_rng(0)
    out = []
    for i in range(30):
        out.append({"method": "instructzero", "round": 0 if i < 10 else 1 + (i - 10) // 10,
                    "z": rng.uniform(-1, 1, 10).tolist(), "mean": float(i % 7)})
    for i in range(30):
        out.append({"method": "uniform", "round": 0, "z": rng.uniform(-1, 1, 10).tolist(), "mean": float(i % 5)})
    out.append({"method": "manual", "round": 0, "z": None, "mean": 2.0})
    return out


def test_best_so_far_is_monotone_per_method(evals):
    fig = plots.best_so_far(evals, objective="loglik")
    ax = fig.axes[0]
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert {"InstructZero", "Uniform", "Manual (generator)"} <= set(labels)
    iz = next(ln for ln in ax.get_lines() if ln.get_label() == "InstructZero").get_ydata()
    assert np.all(np.diff(iz) >= 0) and iz[-1] == 6
    assert "loglik" in ax.get_ylabel()


def test_best_so_far_spends_answers_on_its_x_axis():
    """Twenty answers an evaluation with the paper's allocation, two while a halving search runs."""
    rows = [{"method": "paper", "mean": 0.1 * i, "scores": [0.0] * 20} for i in range(3)]
    rows += [{"method": "instructzero", "mean": 0.1 * i, "scores": [0.0, 1.0]} for i in range(3)]
    ax = plots.best_so_far(rows).axes[0]
    x = {ln.get_label(): ln.get_xdata() for ln in ax.get_lines()}
    assert list(x["InstructZero (paper)"][:3]) == [20, 40, 60] and list(x["InstructZero"][:3]) == [2, 4, 6]
    assert "answers" in ax.get_xlabel()


def test_best_so_far_draws_a_single_instruction_over_the_searches_with_its_examples():
    """Under halving the hand-written row and InstructZero can both sit at 0.5 on 2 examples: the level stays seen."""
    rows = [{"method": "instructzero", "mean": 0.5, "scores": [0.0, 1.0]} for _ in range(4)]
    rows.append({"method": "reference", "mean": 0.5, "scores": [1.0, 0.0]})
    ax = plots.best_so_far(rows).axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    ref, iz = lines["Hand-written (on 2 examples)"], lines["InstructZero"]
    assert ref.get_zorder() > iz.get_zorder() and ref.get_linestyle() == ":"
    assert ref.get_color() == plots.METHOD_COLORS["reference"] and iz.get_color() == plots.METHOD_COLORS["instructzero"]


def test_top_quantile_per_round(evals):
    fig = plots.top_quantile_per_round(evals, quantile=0.15)
    line = next(ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("mean of the top"))
    # round 0 holds scores 0..6,0,1,2 -> top 15% of 10 = 2 best = 6, 5
    assert line.get_ydata()[0] == pytest.approx(5.5)
    assert len(line.get_ydata()) == 3


def test_soft_prompt_map_marks_best_of_each_round(evals):
    fig = plots.soft_prompt_map(evals)
    assert [t.get_text() for t in fig.axes[0].texts] == ["init", "r1", "r2"]


def test_soft_prompt_map_one_label_when_rounds_share_their_best():
    z = [0.5] * 10
    evals = [{"method": "instructzero", "round": r, "z": z, "mean": 1.0} for r in range(3)]
    evals += [{"method": "instructzero", "round": r, "z": [-0.5] * 10, "mean": 0.0} for r in range(3)]
    fig = plots.soft_prompt_map(evals)
    assert [t.get_text() for t in fig.axes[0].texts] == ["init, r1, r2"]


def test_pca_2d_recovers_a_line():
    t = np.linspace(-1, 1, 20)[:, None]
    xy, var = plots.pca_2d(np.hstack([t, 2 * t, np.zeros_like(t)]))
    assert var[0] == pytest.approx(1.0) and np.allclose(xy[:, 1], 0, atol=1e-12)


def test_kernel_heatmaps_three_panels_and_order():
    m = np.arange(9.0).reshape(3, 3)
    fig = plots.kernel_heatmaps(m, m, m, order=np.array([2, 1, 0]))
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 3
    assert panels[0].images[0].get_array()[0, 0] == 8.0
