"""The winner's curse, simulated (notebook 9): keep the best of n noisy estimates and it looks better than it is.

- :func:`curse_simulation`: n candidates with true accuracies drawn uniformly from [lo, hi], each scored on m
  coin-flip examples, the best estimate kept: how far the pick's estimate sits above its truth, for every (n, m).
- :func:`curse_draw`, :func:`draw_curse`: one such draw, and the figure of it beside the curse against n.
- :func:`curse_explorer`: the same as a widget, sliders for n and m.

The curse in the archived study's records is :mod:`izkit.studies.winner`'s; halving's allocation is :mod:`izkit.studies.allocation`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as W
import numpy as np
from matplotlib.figure import Figure

from izkit.course.explorer import SLIDER_LAYOUT, SLIDER_STYLE, Explorer, png, redraw_on


def curse_simulation(ns: Sequence[int], ms: Sequence[int], reps: int, lo: float = 0.3, hi: float = 0.7,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n candidates with true accuracies drawn uniformly from [lo, hi], each scored on m coin-flip examples, the best
    estimate kept (ties: the first). Returns the winner's curse, mean over ``reps`` of (estimate - truth) of the pick,
    (len(ns), len(ms)), and the pick's mean true accuracy (len(ns), len(ms)). Seeded per (n, m)."""
    curse = np.zeros((len(ns), len(ms)))
    truth = np.zeros((len(ns), len(ms)))
    for i, n in enumerate(ns):
        for j, m in enumerate(ms):
            rng = np.random.default_rng([seed, n, m])
            p = rng.uniform(lo, hi, size=(reps, n))  # (reps, n) true accuracies
            est = rng.binomial(m, p) / m  # (reps, n) accuracy on m examples
            pick = est.argmax(axis=1)  # (reps,) first of the best
            rows = np.arange(reps)
            curse[i, j] = float((est[rows, pick] - p[rows, pick]).mean())
            truth[i, j] = float(p[rows, pick].mean())
    return curse, truth


def curse_draw(n: int, m: int, lo: float = 0.3, hi: float = 0.7, seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray, int]:
    """One repetition of :func:`curse_simulation`'s experiment, to look at: the n true accuracies (n,), their
    estimates on m examples (n,) and the index of the pick (the first of the best estimates). Seeded per (n, m)."""
    rng = np.random.default_rng([seed, n, m, 1])  # a stream of its own: not one of curse_simulation's repetitions
    p = rng.uniform(lo, hi, size=n)  # (n,) true accuracies
    est = rng.binomial(m, p) / m  # (n,) accuracy on m examples
    return p, est, int(np.argmax(est))


CURSE_NS = (1, 2, 3, 5, 10, 20, 30, 50, 100, 150, 200, 300, 500, 1000)  # candidates: the explorer's first slider
CURSE_MS = (5, 10, 20, 50, 100, 200, 500)  # examples per candidate (20: the paper's dev set)


def draw_curse(fig: Figure, n: int, m: int, ns: Sequence[int], curve: np.ndarray, truth: np.ndarray,
               draw: tuple[np.ndarray, np.ndarray, int], lo: float, hi: float) -> None:
    """Left: one draw, every candidate's estimate against its true accuracy, the pick marked with its gap to the
    diagonal; right: the curse (mean of estimate - truth of the pick) against the number of candidates at m examples
    each, and the pick's mean estimate and truth, with n marked."""
    fig.clear()
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.25]})
    p, est, pick = draw
    ax.scatter(p, est, s=12 if n > 100 else 24, alpha=0.5, color="C0", label=f"the {n} candidates")
    ax.plot([lo, hi], [lo, hi], ls="--", color="0.5", lw=1, label="estimate = truth")
    ax.plot([p[pick], p[pick]], [p[pick], est[pick]], color="C3", lw=2.5,
            label=f"the pick: {est[pick]:.2f} measured, {p[pick]:.2f} true")
    ax.scatter([p[pick]], [est[pick]], s=70, color="C3", zorder=3)
    ax.set_xlim(lo - 0.02, hi + 0.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("true accuracy")
    ax.set_ylabel(f"estimate on {m} examples")
    ax.set_title("one draw: the best estimate is kept", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    ax.grid(alpha=0.3)
    i = list(ns).index(n)
    ax2.plot(ns, curve, marker="o", ms=4, color="C3", label="curse: estimate − truth of the pick")
    ax2.plot(ns, truth + curve, color="C1", lw=1, ls=":", label="the pick's estimate")
    ax2.plot(ns, truth, color="C2", lw=1, ls=":", label="the pick's true accuracy")
    ax2.scatter([n], [curve[i]], s=90, facecolor="none", edgecolor="k", zorder=3)
    ax2.axhline(0, color="0.3", lw=0.8)
    ax2.set_xscale("log")
    ax2.set_ylim(min(-0.05, float(curve.min()) - 0.02), 1.0)
    ax2.set_xlabel("candidates n (log scale)")
    ax2.set_ylabel("mean over repetitions")
    ax2.set_title(f"{m} examples each: the curse at {n} candidates is {curve[i]:+.3f}", fontsize=10)
    ax2.legend(fontsize=8, frameon=False, loc="center left")
    ax2.grid(alpha=0.3)
    fig.tight_layout()


def curse_explorer(n: int = 150, m: int = 20, *, reps: int = 2000, lo: float = 0.3, hi: float = 0.7,
                   seed: int = 0) -> Explorer:
    """Sliders for the number of candidates n and the examples m each is scored on; the figure redraws with one draw
    (left) and, over ``reps`` repetitions of :func:`curse_simulation`, how far the kept candidate's estimate sits
    above its true accuracy as n grows at this m (right). ``.state`` holds the numbers the readout states."""
    w: dict[str, W.Widget] = {
        "n": W.SelectionSlider(options=list(CURSE_NS), value=n, description="candidates n", continuous_update=False,
                               layout=SLIDER_LAYOUT, style=SLIDER_STYLE),
        "m": W.SelectionSlider(options=list(CURSE_MS), value=m, description="examples each m",
                               continuous_update=False, layout=SLIDER_LAYOUT, style=SLIDER_STYLE),
        "readout": W.HTML(),
    }
    image, output = W.Image(format="png"), W.Output()
    fig = Figure(figsize=(11.0, 4.0))
    curves: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # m -> curse (len(ns),), truth (len(ns),)
    state: dict[str, Any] = {"n_redraws": 0, "reps": reps}

    def compute() -> None:
        n, m = int(w["n"].value), int(w["m"].value)
        if m not in curves:
            curse, truth = curse_simulation(CURSE_NS, [m], reps, lo, hi, seed)  # (len(ns), 1) each
            curves[m] = (curse[:, 0], truth[:, 0])
        curse, truth = curves[m]
        i = CURSE_NS.index(n)
        state.update(n=n, m=m, curve=curse, truth_curve=truth, curse=float(curse[i]), truth=float(truth[i]),
                     estimate=float(truth[i] + curse[i]), draw=curse_draw(n, m, lo, hi, seed))
        w["readout"].value = (
            f"{n} candidate{'s' if n > 1 else ''}, true accuracies uniform in [{lo:g}, {hi:g}], each scored on {m} "
            f"examples; the best estimate kept. Over {reps:,} repetitions the kept one measured "
            f"<b>{state['estimate']:.3f}</b> on average, its true accuracy was <b>{state['truth']:.3f}</b>: its "
            f"estimate sits <b>{state['curse']:+.3f}</b> above its truth (the winner's curse). "
            f"Answers spent: {n * m:,}.")

    def draw() -> None:
        draw_curse(fig, state["n"], state["m"], CURSE_NS, state["curve"], state["truth_curve"], state["draw"], lo, hi)
        image.value = png(fig)
        state["n_redraws"] += 1

    redraw_on([w["n"], w["m"]], output, compute, draw)
    ui = W.VBox([w["n"], w["m"], w["readout"], image, output])
    ui.add_class("izkit-curse-explorer")
    return Explorer(w, state, fig, image, output, ui, draw)
