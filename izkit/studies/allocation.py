"""Spending the black-box answers allowed, simulated (notebook 9): the paper's allocation against successive halving.

- :func:`candidate_pool`: the instructions one archived (task, seed) run's searches wrote stand in as candidates,
  their 20-example dev scores as true accuracies (as ``bench/studies/bench_selection.py`` does).
- :func:`simulate_allocation`: the answers allowed spent either the paper's way (answers / 20 candidates on 20
  examples, best kept) or by successive halving (``izkit.selection``), on the same simulated answers (paired, seeded);
  :func:`allocation_pick` is the pick itself, for simulations that draw their answers another way.
- :func:`halving_explorer`: sliders for the examples at the first rung, the promotion factor eta, the examples at the
  last rung and the answers allowed; the figure redraws with the pick's true accuracy and the winner's curse
  against answers.

No model is loaded.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as W
import numpy as np
from matplotlib.figure import Figure

from izkit.course.explorer import SLIDER_LAYOUT, SLIDER_STYLE, Explorer, png, redraw_on
from izkit.replay import Replay
from izkit.methods import SEARCHES  # the methods that write many candidates
from izkit import selection  # selection.answers, what a schedule costs: here a parameter "answers" is those allowed
from izkit.selection import Rung, halving_rungs, most_candidates, successive_halving

DEV = 20  # the paper's dev examples: what its allocation scores every candidate on
EXAMPLES = 100  # simulated answers per candidate: dev plus the 80 spare induce examples (halving's top at most)
ANSWERS = (250, 500, 1000, 1500, 2000, 3000, 4000, 5000)  # answers allowed per method, the explorer's x axis


def candidate_pool(rep: Replay, methods: Sequence[str] = SEARCHES) -> np.ndarray:
    """The dev scores (k,) of the distinct instructions the run's searches wrote, each at its first scoring."""
    means: dict[str, float] = {}
    for m in methods:
        for e in rep.evals(m):
            if e["mean"] is not None:
                means.setdefault(e["instruction"], float(e["mean"]))
    return np.array(list(means.values()))


@dataclass
class Allocation:
    """One way of spending each number of answers allowed, over repetitions: the paper's (``halving is None``) or
    successive halving."""

    halving: tuple[int, float, int] | None  # (first, eta, top), or None for the paper's best of answers / 20 on 20
    allowed: np.ndarray  # (B,) answers allowed
    candidates: np.ndarray  # (B,) candidates drawn at each number allowed
    answers: np.ndarray  # (B,) answers spent (at most those allowed)
    truth: np.ndarray  # (reps, B) the pick's true accuracy
    estimate: np.ndarray  # (reps, B) what the allocation measured for its pick
    best: np.ndarray  # (reps, B) the best true accuracy among the candidates drawn
    rungs: list[list[Rung]] = field(default_factory=list)  # per number allowed; one rung of 20 for the paper

    @property
    def curse(self) -> np.ndarray:
        """(reps, B) estimate - truth of the pick."""
        return self.estimate - self.truth

    @property
    def name(self) -> str:
        if self.halving is None:
            return f"paper: best of answers/{DEV} on {DEV} examples"
        first, eta, top = self.halving
        return f"halving: {first} examples first, eta {eta:g}, up to {top}"


def candidates_for(allowed: int, halving: tuple[int, float, int] | None) -> int:
    """How many candidates an allocation scores with ``allowed`` answers (:func:`izkit.selection.most_candidates`)."""
    return allowed // DEV if halving is None else most_candidates(allowed, *halving)


def rungs_text(rungs: Sequence[Rung]) -> str:
    """``216 x 5 -> 72 x 15 -> ...``: candidates x examples, rung by rung."""
    return " → ".join(f"{r.candidates} × {r.examples}" for r in rungs)


def allocation_pick(flips: np.ndarray, rungs: Sequence[Rung] | None) -> tuple[int, float]:
    """The candidate an allocation keeps from the answers ``flips`` (k, E) of k candidates, and the mean it was kept
    on: the paper's best mean over the first :data:`DEV` examples (``rungs`` None; ties to the first drawn), else
    :func:`izkit.selection.successive_halving` on ``rungs``."""
    if rungs is None:
        means = flips[:, :DEV].mean(axis=1)  # (k,)
        return int(np.argmax(means)), float(means.max())  # argmax: the first of the best
    res = successive_halving(lambda c, a, z: flips[c, a:z], rungs)
    return res.pick, float(res.means[-1][res.pick])


def simulate_allocation(pool: np.ndarray, halving: tuple[int, float, int] | None, allowed: Sequence[int] = ANSWERS,
                        reps: int = 40, seed: int = 0) -> Allocation:
    """Spend each number of answers ``allowed`` on candidates drawn from ``pool`` (their true accuracies), answers
    simulated as coin flips.

    Repetition r draws its candidates (the pool shuffled, reshuffled each time it runs out) and every candidate's
    answers to :data:`EXAMPLES` examples from streams seeded by (seed, r) alone, so every allocation and every number
    allowed in one repetition sees the same candidates in the same order and the same answers: they are nested and
    allocations paired. The paper keeps the best mean over the first 20 examples; halving runs
    :func:`izkit.selection.successive_halving` on :func:`izkit.selection.halving_rungs`. Ties go to the first drawn.
    """
    pool = np.asarray(pool, dtype=float)
    if len(pool) == 0:
        raise ValueError("the pool of candidates is empty")
    if halving is not None and halving[2] > EXAMPLES:
        raise ValueError(f"halving's top is at most {EXAMPLES} examples, got {halving[2]}")
    allowed = np.asarray(allowed, dtype=int)
    n = np.array([candidates_for(int(b), halving) for b in allowed])  # (B,)
    rungs = [halving_rungs(int(k), *halving) if halving is not None and k >= 1 else [Rung(DEV, int(k))]
             for k in n]
    spent = np.array([selection.answers(r) if k >= 1 else 0 for r, k in zip(rungs, n)])
    truth, estimate, best = (np.full((reps, len(allowed)), np.nan) for _ in range(3))
    n_max = int(n.max())
    for r in range(reps):
        rng_c, rng_f = np.random.default_rng([seed, r, 0]), np.random.default_rng([seed, r, 1])
        order = np.concatenate([rng_c.permutation(len(pool)) for _ in range(-(-n_max // len(pool)))])[:n_max]
        p = pool[order]  # (n_max,) true accuracies, in the order drawn
        flips = (rng_f.random((n_max, EXAMPLES)) < p[:, None]).astype(float)  # (n_max, EXAMPLES); row i fixed by r
        for b, k in enumerate(n):
            if k < 1:
                continue
            pick, est = allocation_pick(flips[:k], None if halving is None else rungs[b])
            truth[r, b], estimate[r, b], best[r, b] = p[pick], est, p[:k].max()
    return Allocation(halving, allowed, n, spent, truth, estimate, best, rungs)


def mean_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over the rows of x (reps, B)."""
    return x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(len(x)) if len(x) > 1 else np.zeros(x.shape[1])


def draw_allocations(fig: Figure, allocations: Sequence[Allocation], pool: np.ndarray, answers: int | None = None,
                     title: str = "") -> None:
    """Left: the pick's true accuracy against the answers spent (mean over repetitions, band +- one standard error),
    with the pool's best instruction (the ceiling); right: the winner's curse, estimate - truth of the pick. A dashed
    line marks ``answers`` allowed, when given."""
    fig.clear()
    ax, ax2 = fig.subplots(1, 2)
    for i, al in enumerate(allocations):
        ok = al.candidates >= 1
        for a, y in ((ax, al.truth), (ax2, al.curse)):
            mean, se = mean_se(y[:, ok])
            a.plot(al.answers[ok], mean, marker="o", ms=4, color=f"C{i}", label=al.name)
            a.fill_between(al.answers[ok], mean - se, mean + se, color=f"C{i}", alpha=0.2)
    ax.axhline(float(pool.max()), ls=":", color="0.3", label=f"best instruction in the pool ({pool.max():.2f})")
    ax2.axhline(0.0, color="0.3", lw=0.8)
    for a in (ax, ax2):
        if answers is not None:
            a.axvline(answers, color="0.6", ls="--", lw=1)
        a.set_xlabel("black-box answers spent")
        a.grid(alpha=0.3)
    ax.set_ylabel("true accuracy of the pick")
    ax2.set_ylabel("winner's curse: estimate − truth of the pick")
    ax.legend(fontsize=8, loc="lower right", frameon=False)  # the right panel's lines are the same allocations
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()


# ----------------------------------------------------------------------------------------------------------------------
# The explorer


def at_answers(al: Allocation, answers: int) -> dict[str, Any]:
    """An allocation's numbers at one of the answers it was allowed: candidates, rungs, answers spent, the pick's truth
    and curse."""
    b = int(np.flatnonzero(al.allowed == answers)[0])
    return {"candidates": int(al.candidates[b]), "rungs": al.rungs[b], "answers": int(al.answers[b]),
            "truth": float(np.mean(al.truth[:, b])), "curse": float(np.mean(al.curse[:, b])),
            "shortfall": float(np.mean(al.best[:, b] - al.truth[:, b]))}


def halving_explorer(pool: np.ndarray, *, reps: int = 40, seed: int = 0, allowed: Sequence[int] = ANSWERS,
                     first: int = 5, eta: float = 3.0, top: int = 100, answers: int = 3000,
                     title: str = "") -> Explorer:
    """Sliders over successive halving's allocation (examples at the first rung, eta, examples at the last rung, the
    answers allowed marked, one of ``allowed``), against the paper's best of answers / 20 on 20 examples, simulated on
    ``pool`` (true accuracies).

    Releasing a slider re-simulates halving at every number of answers allowed (the paper's curve is simulated once)
    and redraws; the readout states the numbers at the marked one. ``.state`` holds both allocations and those
    numbers.
    """
    pool = np.asarray(pool, dtype=float)
    allowed = tuple(int(b) for b in allowed)
    w: dict[str, W.Widget] = {
        "first": W.IntSlider(value=first, min=1, max=DEV, step=1, description="examples first",
                             continuous_update=False, layout=SLIDER_LAYOUT, style=SLIDER_STYLE),
        "eta": W.FloatSlider(value=eta, min=1.5, max=5.0, step=0.5, description="eta (promotion)",
                             readout_format=".1f", continuous_update=False, layout=SLIDER_LAYOUT, style=SLIDER_STYLE),
        "top": W.Dropdown(options=[(f"{DEV}: the dev examples only", DEV),
                                   (f"{EXAMPLES}: dev + {EXAMPLES - DEV} spare induce examples", EXAMPLES)],
                          value=top, description="examples last", layout=SLIDER_LAYOUT, style=SLIDER_STYLE),
        "answers": W.SelectionSlider(options=list(allowed), value=answers, description="answers (marked)",
                                     continuous_update=False, layout=SLIDER_LAYOUT, style=SLIDER_STYLE),
        "readout": W.HTML(),
    }
    image, output = W.Image(format="png"), W.Output()
    fig = Figure(figsize=(11.0, 4.0))
    paper = simulate_allocation(pool, None, allowed, reps, seed)
    cache: dict[tuple[int, float, int], Allocation] = {}
    state: dict[str, Any] = {"paper": paper, "n_redraws": 0}

    def compute() -> None:
        key = (int(w["first"].value), float(w["eta"].value), int(w["top"].value))
        if key not in cache:
            cache[key] = simulate_allocation(pool, key, allowed, reps, seed)
        state["halving"], state["answers"] = cache[key], int(w["answers"].value)
        h, p = at_answers(cache[key], state["answers"]), at_answers(paper, state["answers"])
        state["at"] = {"halving": h, "paper": p}
        w["readout"].value = (
            f"At {state['answers']:,} answers, over {reps} repetitions: <b>halving</b> scores {h['candidates']} "
            f"candidates ({html.escape(rungs_text(h['rungs']))}; candidates × examples), {h['answers']:,} answers; "
            f"its pick's true accuracy <b>{h['truth']:.3f}</b>, curse {h['curse']:+.3f}. <b>The paper</b> scores "
            f"{p['candidates']} on {DEV} examples: <b>{p['truth']:.3f}</b>, curse {p['curse']:+.3f}.")

    def draw() -> None:
        draw_allocations(fig, [paper, state["halving"]], pool, state["answers"], title)
        image.value = png(fig)
        state["n_redraws"] += 1

    redraw_on([w[k] for k in ("first", "eta", "top", "answers")], output, compute, draw)
    ui = W.VBox([w["first"], w["eta"], w["top"], w["answers"], w["readout"], image, output])
    ui.add_class("izkit-halving-explorer")  # how the browser test finds it
    return Explorer(w, state, fig, image, output, ui, draw)
