"""Choosing the winner (notebook 9): the winner's curse in recorded runs and in simulation, and successive halving's
allocation of a budget of black-box answers as a widget.

- :func:`picks`: the dev score each method kept its instruction on, beside that instruction's test score, per run of a
  study (records only: ``izkit.study.finished_runs``); :func:`curse_by_task`: their gap grouped by task.
- :func:`curse_simulation`: n candidates with known true accuracies, each scored on m coin-flip examples, the best
  estimate kept: how far the pick's estimate sits above its truth, for every (n, m); :func:`curse_explorer`: the
  same as a widget, sliders for n and m, one draw and the curse against n drawn.
- :func:`candidate_pool` and :func:`simulate_allocation`: the instructions one archived (task, seed) run's searches
  wrote stand in as candidates (their 20-example dev scores as true accuracies, as ``bench/bench_selection.py`` does);
  a budget of answers is spent either the paper's way (budget / 20 candidates on 20 examples, best kept) or by
  successive halving (``izkit.selection``), on the same simulated answers (paired, seeded).
- :func:`halving_explorer`: sliders for the examples at the first rung, the promotion factor eta, the examples at the
  last rung and the budget; the figure redraws with the pick's true accuracy and the winner's curse against answers.
- :func:`answers_studies`: the finished runs of the study at budgets of answers (``bench/study-answers/<budget>/``),
  by budget; :func:`heldout_scores` and :func:`heldout_groups`: its picks judged on held-out induce examples;
  :func:`first_rung`: whether halving's first promotion ranked its candidates or tied them, and how what the tie
  order promoted did on the next rung (records only).

No model is loaded; the test split is read only from records, for the picks the runs already made. The archived
studies are found when first read, by ``izkit.study.archived_study`` (``$IZKIT_STUDY``, else the clone's bench/).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
from matplotlib.figure import Figure

from izkit.explorer import SLIDER_LAYOUT, SLIDER_STYLE, Explorer, errors_to, png
from izkit.replay import Replay
from izkit.selection import Rung, answers, halving_rungs, most_candidates, successive_halving
from izkit.study import archived_study, finished_runs, method_test_score, task_groups


def __getattr__(name: str) -> Path:
    """``STUDY`` and ``STUDY_ANSWERS``: the archived studies' folders, looked up when read (PEP 562), so an izkit
    installed without the records says how to point at them (``$IZKIT_STUDY``) instead of naming a missing path."""
    if name in _ARCHIVED:
        return archived_study(_ARCHIVED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# The archived studies are found at call time by izkit.study.archived_study ($IZKIT_STUDY, else the clone's bench/):
# ``winner.STUDY`` (bench/study: 150 distinct instructions per method, the paper's allocation) and
# ``winner.STUDY_ANSWERS`` (bench/study-answers: one folder per budget of answers) are looked up when read
# (``__getattr__`` above).
_ARCHIVED = {"STUDY": "study", "STUDY_ANSWERS": "study-answers"}
SEARCHES = ("instructzero", "paper", "matern", "uniform", "ape")  # the methods that write many candidates
DEV = 20  # the paper's dev examples: what its allocation scores every candidate on
EXAMPLES = 100  # simulated answers per candidate: dev plus the 80 spare induce examples (halving's top at most)
BUDGETS = (250, 500, 1000, 1500, 2000, 3000, 4000, 5000)  # answers per method, the explorer's x axis


# ----------------------------------------------------------------------------------------------------------------------
# Recorded runs


def study_runs(folder: str | Path | None = None) -> list[Replay]:
    """The finished runs of a study folder (default: the archived study, ``archived_study("study")``); an error naming
    the folder when there is none."""
    folder = archived_study("study") if folder is None else folder
    runs = finished_runs(folder)
    if not runs:
        raise FileNotFoundError(f"{folder}: no finished run (<task>-seed<k>/record.jsonl); the archived study ships "
                                "with the repository in bench/study")
    return runs


def picks(runs: Sequence[Replay], methods: Sequence[str], objective: str | None = None
          ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per method, the dev score its kept instruction was kept on (n,) and that instruction's test score (n,), over
    the runs that have the method (a run without a test line for it is left out)."""
    out = {}
    for m in methods:
        dev, test = [], []
        for r in runs:
            if m not in r.methods():
                continue
            t, kept = method_test_score(r, m, objective or r.objective), r.kept(m)
            if math.isfinite(t) and kept is not None and kept["mean"] is not None:  # a run whose evals all failed
                dev.append(float(kept["mean"]))
                test.append(t)
        out[m] = (np.array(dev), np.array(test))
    return out


def curse_by_task(runs: Sequence[Replay], methods: Sequence[str], objective: str | None = None
                  ) -> dict[str, dict[str, np.ndarray]]:
    """Per method, the dev - test gap of its pick per (task, seed), grouped by task: ``{method: {task: (seeds,)}}``
    (the runs :func:`picks` keeps), so that an interval can resample tasks, then seeds (``nested_bootstrap_ci``)."""
    out = {}
    for m in methods:
        tasks, gaps = [], []
        for r in runs:
            if m not in r.methods():
                continue
            t, kept = method_test_score(r, m, objective or r.objective), r.kept(m)
            if math.isfinite(t) and kept is not None and kept["mean"] is not None:
                tasks.append(Path(r.config["task"]).stem)
                gaps.append(float(kept["mean"]) - t)
        out[m] = task_groups(tasks, gaps)
    return out


def answers_studies(folder: str | Path | None = None) -> dict[int, list[Replay]]:
    """The finished runs of the study at budgets of answers, by budget: ``folder/<budget>/<task>-seed<k>/record.jsonl``
    (default: the archived one, ``archived_study("study-answers")``, an error saying how to point at it when it is not
    found); budgets with no finished run (and a given folder that is missing) are left out."""
    folder = archived_study("study-answers") if folder is None else Path(folder)
    if not folder.is_dir():
        return {}
    found = {int(d.name): finished_runs(d) for d in sorted(folder.iterdir()) if d.is_dir() and d.name.isdigit()}
    return {b: runs for b, runs in sorted(found.items()) if runs}


def heldout_scores(budget: int, folder: str | Path | None = None) -> dict[str, dict[str, float]]:
    """The study at ``budget`` answers, its picks judged on held-out induce examples (``bench/study_heldout.py``):
    ``{"<task>-seed<k>": {method: accuracy, ..., "held_out": examples}}`` from ``folder/heldout-<budget>.json``
    (default: the archived study at budgets of answers). A run with too few held-out examples carries only
    ``held_out``. These examples come after the 100 that halving's last rung used: no method saw them."""
    folder = archived_study("study-answers") if folder is None else Path(folder)
    path = folder / f"heldout-{budget}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no held-out reading at {budget} answers (python bench/study_heldout.py "
                                f"--budgets {budget} writes it)")
    return json.loads(path.read_text())


def run_task(name: str) -> str:
    """The task of a run folder's name: ``"larger_animal-seed0"`` -> ``"larger_animal"``."""
    return name.rsplit("-seed", 1)[0]


def heldout_groups(scores: dict[str, dict[str, float]], a: str, b: str) -> dict[str, np.ndarray]:
    """A - B on the held-out examples per (task, seed), grouped by task (:func:`izkit.study.task_groups`); runs
    without both scores are left out."""
    names = [k for k, v in scores.items() if a in v and b in v]
    return task_groups([run_task(k) for k in names], [scores[k][a] - scores[k][b] for k in names])


@dataclass
class FirstRung:
    """What successive halving's first promotion did in a study's runs, for one method."""

    halvings: int  # runs with a first promotion
    boundary_tied: int  # runs whose promotion boundary fell inside a block of equal means (the tie order decided)
    all_tied: int  # runs whose candidates all had the same mean on the first rung's examples
    pool_round0: float  # share of the candidates that came from round 0 (the initial design)
    promoted_round0: float  # share of the promoted that came from round 0
    by_tie: float = math.nan  # share of the promoted that the tie order chose (their mean equals the boundary's)
    next_by_tie: float = math.nan  # their mean on the second rung's new examples
    next_above: float = math.nan  # the same for the promoted that stood above the boundary
    order_gaps: tuple[float, ...] = ()  # per halving whose tie order chose from both: later rounds - round 0, on
    # the second rung's new examples (does the order in which candidates were scored matter?)
    picks_by_tie: int = 0  # runs whose kept instruction was one the tie order promoted


def first_rung(runs: Sequence[Replay], method: str) -> FirstRung:
    """How successive halving's first promotion went for ``method`` (records only): whether the first rung's few
    examples ranked the candidates or tied them, how much of what went on came from round 0, and how the candidates
    the tie order promoted did on the second rung's new examples, against those promoted on their scores."""
    halvings = tied = all_tied = 0
    pool = [0, 0]  # [from round 0, all]
    promoted = [0, 0]
    nxt: dict[str, list[float]] = {"tie": [], "above": []}
    gaps = []
    picks = 0
    for r in runs:
        sel = r.record.find("selection", method=method)
        if sel is None or len(sel["members"]) < 2:
            continue
        first, k = sel["rungs"][0][0], sel["rungs"][1][1]
        rounds: dict[str, int] = {}
        means: dict[str, float] = {}
        for e in r.evals(method):
            if e["mean"] is not None and e["instruction"] not in rounds:
                rounds[e["instruction"]] = e["round"]
                means[e["instruction"]] = float(np.mean(e["scores"][:first]))
        m = np.array(list(means.values()))
        cut = np.sort(m)[::-1][k - 1]
        boundary_tied = (m == cut).sum() > k - (m > cut).sum()
        halvings += 1
        tied += int(boundary_tied)
        all_tied += int(np.all(m == m[0]))
        pool[0] += sum(v == 0 for v in rounds.values())
        pool[1] += len(rounds)
        promoted[0] += sum(rounds.get(t) == 0 for t in sel["members"][1])
        promoted[1] += len(sel["members"][1])
        second = {c["instruction"]: c["mean"] for c in r.record.of_kind("confirm", method=method)
                  if c["start"] == first and c["mean"] is not None}  # the second rung's new examples
        by_round: dict[bool, list[float]] = {False: [], True: []}  # tie-promoted, by "after round 0"
        picks += int(boundary_tied and means.get(sel["instruction"]) == cut)  # the selection line names the pick
        for t in sel["members"][1]:
            if t not in second:
                continue
            if boundary_tied and means[t] == cut:
                nxt["tie"].append(second[t])
                by_round[rounds[t] > 0].append(second[t])
            else:
                nxt["above"].append(second[t])
        if by_round[False] and by_round[True]:
            gaps.append(float(np.mean(by_round[True]) - np.mean(by_round[False])))
    mean = lambda xs: float(np.mean(xs)) if xs else math.nan  # noqa: E731
    return FirstRung(halvings, tied, all_tied, pool[0] / max(pool[1], 1), promoted[0] / max(promoted[1], 1),
                     mean([1.0] * len(nxt["tie"]) + [0.0] * len(nxt["above"])), mean(nxt["tie"]),
                     mean(nxt["above"]), tuple(gaps), picks)


# ----------------------------------------------------------------------------------------------------------------------
# The winner's curse, simulated


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

    def on_change(_: dict[str, Any]) -> None:
        with errors_to(output):
            compute()
            draw()

    for k in ("n", "m"):
        w[k].observe(on_change, names="value")
    compute()
    draw()
    ui = W.VBox([w["n"], w["m"], w["readout"], image, output])
    ui.add_class("izkit-curse-explorer")
    return Explorer(w, state, fig, image, output, ui, draw)


# ----------------------------------------------------------------------------------------------------------------------
# Allocations of a budget of answers, simulated on one run's instructions


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
    """One way of spending each budget, over repetitions: the paper's (``halving is None``) or successive halving."""

    halving: tuple[int, float, int] | None  # (first, eta, top), or None for the paper's best of budget / 20 on 20
    budgets: np.ndarray  # (B,) answers allowed
    candidates: np.ndarray  # (B,) candidates drawn at each budget
    answers: np.ndarray  # (B,) answers spent (at most the budget)
    truth: np.ndarray  # (reps, B) the pick's true accuracy
    estimate: np.ndarray  # (reps, B) what the allocation measured for its pick
    best: np.ndarray  # (reps, B) the best true accuracy among the candidates drawn
    rungs: list[list[Rung]] = field(default_factory=list)  # per budget; one rung of 20 for the paper

    @property
    def curse(self) -> np.ndarray:
        """(reps, B) estimate - truth of the pick."""
        return self.estimate - self.truth

    @property
    def name(self) -> str:
        if self.halving is None:
            return f"paper: best of budget/{DEV} on {DEV} examples"
        first, eta, top = self.halving
        return f"halving: {first} examples first, eta {eta:g}, up to {top}"


def candidates_for(budget: int, halving: tuple[int, float, int] | None) -> int:
    """How many candidates an allocation scores with ``budget`` answers."""
    return budget // DEV if halving is None else most_candidates(budget, *halving)


def rungs_text(rungs: Sequence[Rung]) -> str:
    """``216 x 5 -> 72 x 15 -> ...``: candidates x examples, rung by rung."""
    return " → ".join(f"{r.candidates} × {r.examples}" for r in rungs)


def simulate_allocation(pool: np.ndarray, halving: tuple[int, float, int] | None, budgets: Sequence[int] = BUDGETS,
                        reps: int = 40, seed: int = 0) -> Allocation:
    """Spend each budget on candidates drawn from ``pool`` (their true accuracies), answers simulated as coin flips.

    Repetition r draws its candidates (the pool shuffled, reshuffled each time it runs out) and every candidate's
    answers to :data:`EXAMPLES` examples from streams seeded by (seed, r) alone, so every allocation and every budget
    of one repetition sees the same candidates in the same order and the same answers: budgets are nested and
    allocations paired. The paper keeps the best mean over the first 20 examples; halving runs
    :func:`izkit.selection.successive_halving` on :func:`izkit.selection.halving_rungs`. Ties go to the first drawn.
    """
    pool = np.asarray(pool, dtype=float)
    if len(pool) == 0:
        raise ValueError("the pool of candidates is empty")
    if halving is not None and halving[2] > EXAMPLES:
        raise ValueError(f"halving's top is at most {EXAMPLES} examples, got {halving[2]}")
    budgets = np.asarray(budgets, dtype=int)
    n = np.array([candidates_for(int(b), halving) for b in budgets])  # (B,)
    rungs = [halving_rungs(int(k), *halving) if halving is not None and k >= 1 else [Rung(DEV, int(k))]
             for k in n]
    spent = np.array([answers(r) if k >= 1 else 0 for r, k in zip(rungs, n)])
    truth, estimate, best = (np.full((reps, len(budgets)), np.nan) for _ in range(3))
    n_max = int(n.max())
    for r in range(reps):
        rng_c, rng_f = np.random.default_rng([seed, r, 0]), np.random.default_rng([seed, r, 1])
        order = np.concatenate([rng_c.permutation(len(pool)) for _ in range(-(-n_max // len(pool)))])[:n_max]
        p = pool[order]  # (n_max,) true accuracies, in the order drawn
        flips = (rng_f.random((n_max, EXAMPLES)) < p[:, None]).astype(float)  # (n_max, EXAMPLES); row i fixed by r
        for b, k in enumerate(n):
            if k < 1:
                continue
            if halving is None:
                means = flips[:k, :DEV].mean(axis=1)  # (k,)
                pick, est = int(np.argmax(means)), float(means.max())  # argmax: the first of the best
            else:
                res = successive_halving(lambda c, a, z: flips[c, a:z], rungs[b])
                pick, est = res.pick, res.means[-1][res.pick]
            truth[r, b], estimate[r, b], best[r, b] = p[pick], est, p[:k].max()
    return Allocation(halving, budgets, n, spent, truth, estimate, best, rungs)


def mean_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over the rows of x (reps, B)."""
    return x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(len(x)) if len(x) > 1 else np.zeros(x.shape[1])


def draw_allocations(fig: Figure, allocations: Sequence[Allocation], pool: np.ndarray, budget: int | None = None,
                     title: str = "") -> None:
    """Left: the pick's true accuracy against the answers spent (mean over repetitions, band +- one standard error),
    with the pool's best instruction (the ceiling); right: the winner's curse, estimate - truth of the pick."""
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
        if budget is not None:
            a.axvline(budget, color="0.6", ls="--", lw=1)
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


def at_budget(al: Allocation, budget: int) -> dict[str, Any]:
    """An allocation's numbers at one of its budgets: candidates, rungs, answers, the pick's truth and curse."""
    b = int(np.flatnonzero(al.budgets == budget)[0])
    return {"candidates": int(al.candidates[b]), "rungs": al.rungs[b], "answers": int(al.answers[b]),
            "truth": float(np.mean(al.truth[:, b])), "curse": float(np.mean(al.curse[:, b])),
            "shortfall": float(np.mean(al.best[:, b] - al.truth[:, b]))}


def halving_explorer(pool: np.ndarray, *, reps: int = 40, seed: int = 0, budgets: Sequence[int] = BUDGETS,
                     first: int = 5, eta: float = 3.0, top: int = 100, budget: int = 3000, title: str = "") -> Explorer:
    """Sliders over successive halving's allocation (examples at the first rung, eta, examples at the last rung, the
    budget marked), against the paper's best of budget / 20 on 20 examples, simulated on ``pool`` (true accuracies).

    Releasing a slider re-simulates halving over every budget (the paper's curve is simulated once) and redraws; the
    readout states the numbers at the marked budget. ``.state`` holds both allocations and those numbers.
    """
    pool = np.asarray(pool, dtype=float)
    budgets = tuple(int(b) for b in budgets)
    w: dict[str, W.Widget] = {
        "first": W.IntSlider(value=first, min=1, max=DEV, step=1, description="examples first",
                             continuous_update=False, layout=SLIDER_LAYOUT, style=SLIDER_STYLE),
        "eta": W.FloatSlider(value=eta, min=1.5, max=5.0, step=0.5, description="eta (promotion)",
                             readout_format=".1f", continuous_update=False, layout=SLIDER_LAYOUT, style=SLIDER_STYLE),
        "top": W.Dropdown(options=[(f"{DEV}: the dev examples only", DEV),
                                   (f"{EXAMPLES}: dev + {EXAMPLES - DEV} spare induce examples", EXAMPLES)],
                          value=top, description="examples last", layout=SLIDER_LAYOUT, style=SLIDER_STYLE),
        "budget": W.SelectionSlider(options=list(budgets), value=budget, description="answers (marked)",
                                    continuous_update=False, layout=SLIDER_LAYOUT, style=SLIDER_STYLE),
        "readout": W.HTML(),
    }
    image, output = W.Image(format="png"), W.Output()
    fig = Figure(figsize=(11.0, 4.0))
    paper = simulate_allocation(pool, None, budgets, reps, seed)
    cache: dict[tuple[int, float, int], Allocation] = {}
    state: dict[str, Any] = {"paper": paper, "n_redraws": 0}

    def compute() -> None:
        key = (int(w["first"].value), float(w["eta"].value), int(w["top"].value))
        if key not in cache:
            cache[key] = simulate_allocation(pool, key, budgets, reps, seed)
        state["halving"], state["budget"] = cache[key], int(w["budget"].value)
        h, p = at_budget(cache[key], state["budget"]), at_budget(paper, state["budget"])
        state["at"] = {"halving": h, "paper": p}
        w["readout"].value = (
            f"At {state['budget']:,} answers, over {reps} repetitions: <b>halving</b> scores {h['candidates']} "
            f"candidates ({html.escape(rungs_text(h['rungs']))}; candidates × examples), {h['answers']:,} answers; "
            f"its pick's true accuracy <b>{h['truth']:.3f}</b>, curse {h['curse']:+.3f}. <b>The paper</b> scores "
            f"{p['candidates']} on {DEV} examples: <b>{p['truth']:.3f}</b>, curse {p['curse']:+.3f}.")

    def draw() -> None:
        draw_allocations(fig, [paper, state["halving"]], pool, state["budget"], title)
        image.value = png(fig)
        state["n_redraws"] += 1

    def on_change(_: dict[str, Any]) -> None:
        with errors_to(output):
            compute()
            draw()

    for k in ("first", "eta", "top", "budget"):
        w[k].observe(on_change, names="value")
    compute()
    draw()
    ui = W.VBox([w["first"], w["eta"], w["top"], w["budget"], w["readout"], image, output])
    ui.add_class("izkit-halving-explorer")  # how the browser test finds it
    return Explorer(w, state, fig, image, output, ui, draw)
