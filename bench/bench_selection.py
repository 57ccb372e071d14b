"""Successive halving against the paper's allocation, simulated on the study's own instructions (issue 24, dev only).

Which allocation of a budget of answers picks the best instruction? This bench answers it without a model, from the
instructions the archived study (bench/study) wrote: for each (task, seed) the distinct instructions of its four
searches, each with its dev accuracy on 20 examples, stand in as the candidates' true accuracies p. A method draws n
candidates from that pool at random and scores candidate i on example j as a coin flip with probability p_i (the same
flips for every allocation of one repetition: paired). Allocations at the same budget of answers:

- paper: n = budget / 20 candidates, each on the 20 dev examples, best kept (ties to the first scored);
- halving (first, eta, top): successive halving (izkit.selection) with as many candidates as the budget allows,
  `first` examples each, the best 1/eta promoted to eta times more, up to `top` examples (20: dev only; 100: dev plus
  80 spare induce examples).

Reported per allocation: the pick's true accuracy (mean over pairs and repetitions), its shortfall from the best
candidate it drew, and the winner's curse (the pick's estimate minus its truth). A simulation: its candidates are drawn
at random (no BO), and the 'true' p are themselves 20-example estimates, so the pool is more spread than the truth; it
ranks allocations, it does not predict test accuracy. The test split is never read.

    python bench/bench_selection.py --reps 100            # budgets 3000 and 1000 (about 8 min on one core)
    python bench/bench_selection.py --reps 20 --budgets 3000   # a first look in under a minute
    python bench/bench_selection.py --paired --reps 100   # examples shared by every candidate (below)

`--paired`: independent coin flips miss what a real run's examples do: every candidate of a rung sees the same
examples, and some examples are hard for every instruction, so on few examples whole pools tie (the answers study's
first rung of 2 examples tied in every halving). The paired mode fits an item-response model to each pair's real
(instructions x 20 dev examples) score matrix, P(instruction i right on example j) = sigmoid(a_i - b_j) (Rasch's
model, MAP with N(0, 2^2) priors on a and b), and simulates each repetition's examples by drawing difficulties b from
the fitted ones (with N(0, 0.5^2) jitter), shared by all candidates; a candidate's truth is its expected accuracy over
that difficulty distribution. Candidates are drawn at random, so ties to the first drawn are random tie-breaks here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._report import emit  # noqa: E402
from izkit.study import finished_runs  # noqa: E402
from izkit.allocation import candidate_pool  # noqa: E402
from izkit.selection import answers, halving_rungs, most_candidates, successive_halving, top_k  # noqa: E402

STUDY = Path(__file__).resolve().parent / "study"
SEARCHES = ("instructzero", "matern", "uniform", "ape")
ALLOCATIONS = [("paper", None)] + [(f"halving first={f} eta={e} top={t}", (f, e, t))
                                   for t in (20, 100) for f in (2, 5, 10) for e in (2, 3, 4) if f < t]


def pools(study: Path) -> dict[str, np.ndarray]:
    """(task-seed) -> the dev accuracies of the distinct instructions its searches wrote (izkit.winner's pool)."""
    return {rep.record.path.parent.name: candidate_pool(rep, SEARCHES) for rep in finished_runs(study)}


def size(budget: int, alloc) -> tuple[int, int]:
    """(candidates, examples simulated per candidate) for an allocation of ``budget`` answers."""
    top = 20 if alloc is None else alloc[2]
    return (budget // 20 if alloc is None else most_candidates(budget, *alloc)), max(top, 20)


def outcome(flips: np.ndarray, p: np.ndarray, budget: int, alloc) -> tuple[float, float, float]:
    """(true p of the pick, best p drawn - that, estimate of the pick - its true p): the paper's best on the first
    20 examples, or successive halving, on the answers ``flips`` (n, E) of candidates with true accuracies ``p``."""
    if alloc is None:
        pick = top_k(flips[:, :20].mean(1), 1)[0]
        estimate = flips[pick, :20].mean()
    else:
        rungs = halving_rungs(len(p), *alloc)
        assert answers(rungs) <= budget
        res = successive_halving(lambda c, lo, hi: flips[c, lo:hi], rungs)
        pick, estimate = res.pick, res.means[-1][res.pick]
    return float(p[pick]), float(p.max() - p[pick]), float(estimate - p[pick])


def simulate(pool: np.ndarray, budget: int, alloc, rng: np.random.Generator) -> tuple[float, float, float]:
    """(true p of the pick, best p drawn - that, estimate of the pick - its true p) for one repetition."""
    n, n_examples = size(budget, alloc)
    p = rng.choice(pool, size=n, replace=n > len(pool))  # (n,)
    flips = (rng.random((n, n_examples)) < p[:, None]).astype(float)  # (n, E)
    return outcome(flips, p, budget, alloc)


def score_matrices(study: Path) -> dict[str, np.ndarray]:
    """(task-seed) -> (instructions, 20) per-example dev scores of the distinct instructions its searches wrote (each
    at its first scoring; the same 20 dev examples for all of them)."""
    out = {}
    for rep in finished_runs(study):
        rows: dict[str, list[float]] = {}
        for m in SEARCHES:
            for e in rep.evals(m):
                if e["mean"] is not None and len(e["scores"]) == 20:
                    rows.setdefault(e["instruction"], e["scores"])
        out[rep.record.path.parent.name] = np.array(list(rows.values()), dtype=float)
    return out


def fit_rasch(y: np.ndarray, prior_sd: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """MAP abilities a (I,) and difficulties b (J,) of P(y_ij = 1) = sigmoid(a_i - b_j), N(0, prior_sd^2) priors."""
    from scipy.optimize import minimize

    n_i, n_j = y.shape

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = theta[:n_i], theta[n_i:]
        logit = a[:, None] - b[None, :]  # (I, J)
        p = 1.0 / (1.0 + np.exp(-logit))
        loss = np.sum(np.logaddexp(0.0, logit) - y * logit) + 0.5 * np.sum(theta**2) / prior_sd**2
        g = p - y  # d loss / d logit, (I, J)
        return loss, np.concatenate([g.sum(1), -g.sum(0)]) + theta / prior_sd**2

    res = minimize(nll, np.zeros(n_i + n_j), jac=True, method="L-BFGS-B")
    return res.x[:n_i], res.x[n_i:]


def simulate_paired(a: np.ndarray, b: np.ndarray, budget: int, alloc, rng: np.random.Generator
                    ) -> tuple[float, float, float]:
    """As :func:`simulate`, with the examples shared by every candidate: difficulties drawn from the fitted ``b``."""
    n, n_examples = size(budget, alloc)
    ability = rng.choice(a, size=n, replace=n > len(a))  # (n,)
    diff = rng.choice(b, size=n_examples) + rng.normal(0.0, 0.5, size=n_examples)  # (E,) one set for all
    flips = (rng.random((n, len(diff))) < 1.0 / (1.0 + np.exp(diff[None, :] - ability[:, None]))).astype(float)
    pop = rng.choice(b, size=4000) + rng.normal(0.0, 0.5, size=4000)  # the task's examples at large
    p = (1.0 / (1.0 + np.exp(pop[None, :] - ability[:, None]))).mean(1)  # (n,) expected accuracy: the truth
    return outcome(flips, p, budget, alloc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budgets", default="3000,1000", help="comma-separated budgets of answers")
    ap.add_argument("--reps", type=int, default=100, help="repetitions per (task, seed) pair")
    ap.add_argument("--paired", action="store_true", help="shared examples from a fitted item-response model")
    args = ap.parse_args()
    from tqdm.auto import tqdm

    if args.paired:
        fits = {k: fit_rasch(y) for k, y in score_matrices(STUDY).items()}
        data = {k: a for k, (a, _) in fits.items()}
        draw = lambda key, budget, alloc, rng: simulate_paired(*fits[key], budget, alloc, rng)  # noqa: E731
    else:
        data = pools(STUDY)
        draw = lambda key, budget, alloc, rng: simulate(data[key], budget, alloc, rng)  # noqa: E731
    lines = [f"Simulated on the instructions of {len(data)} archived (task, seed) pairs (pool sizes "
             f"{min(map(len, data.values()))}-{max(map(len, data.values()))}), {args.reps} repetitions each, "
             f"{'examples shared (item-response model)' if args.paired else 'independent coin flips'}; "
             f"`python bench/bench_selection.py {'--paired ' if args.paired else ''}--reps {args.reps} "
             f"--budgets {args.budgets}`", ""]
    for budget in (int(b) for b in args.budgets.split(",")):
        lines += [f"Budget {budget} answers", "",
                  "| allocation | candidates | true accuracy of the pick | shortfall from best drawn | winner's curse |",
                  "|---|---|---|---|---|"]
        rows = []
        for name, alloc in tqdm(ALLOCATIONS, desc=f"budget {budget}"):
            n = size(budget, alloc)[0]
            if n < 2:
                continue
            rng = np.random.default_rng(0)  # the same seed for every allocation
            res = np.array([draw(key, budget, alloc, rng) for key in data for _ in range(args.reps)])
            rows.append((res[:, 0].mean(), f"| {name} | {n} | {res[:, 0].mean():.3f} | {res[:, 1].mean():.3f} | "
                                           f"{res[:, 2].mean():+.3f} |"))
        lines += [r for _, r in sorted(rows, key=lambda t: -t[0])] + [""]
    emit("\n".join(lines), "selection_paired" if args.paired else "selection")


if __name__ == "__main__":
    main()
