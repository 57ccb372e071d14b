"""Successive halving against the paper's allocation, simulated on the study's own instructions (issue 24, dev only).

Which allocation of the answers allowed picks the best instruction? This bench answers it without a model, from the
instructions the archived study (bench/data/study) wrote: for each (task, seed) the distinct instructions of its four
searches, each with its dev accuracy on 20 examples, stand in as the candidates' true accuracies p. A method draws n
candidates from that pool at random and scores candidate i on example j as a coin flip with probability p_i (the same
flips for every allocation of one repetition: paired); izkit.studies.allocation.simulate_allocation does it, the simulation
notebook 9 runs. Allocations with the same answers allowed:

- paper: n = answers / 20 candidates, each on the 20 dev examples, best kept (ties to the first scored);
- halving (first, eta, top): successive halving (izkit.selection) with as many candidates as the answers allow,
  `first` examples each, the best 1/eta promoted to eta times more, up to `top` examples (20: dev only; 100: dev plus
  80 spare induce examples).

Reported per allocation: the pick's true accuracy (mean over pairs and repetitions), its shortfall from the best
candidate it drew, and the winner's curse (the pick's estimate minus its truth). A simulation: its candidates are drawn
at random (no BO), and the 'true' p are themselves 20-example estimates, so the pool is more spread than the truth; it
ranks allocations, it does not predict test accuracy. The test split is never read.

    python -m bench.studies.bench_selection --reps 100            # 3000 and 1000 answers (about 8 min on one core)
    python -m bench.studies.bench_selection --reps 20 --answers 3000   # a first look in under a minute
    python -m bench.studies.bench_selection --paired --reps 100   # examples shared by every candidate (below)

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

import numpy as np

from izkit.studies.allocation import SEARCHES, allocation_pick, candidate_pool, candidates_for, simulate_allocation
from izkit.selection import halving_rungs
from izkit.studies.study import archived_study, finished_runs

from bench.common.report import emit

ALLOCATIONS = [("paper", None)] + [(f"halving first={f} eta={e} top={t}", (f, e, t))
                                   for t in (20, 100) for f in (2, 5, 10) for e in (2, 3, 4) if f < t]


def pools(runs) -> dict[str, np.ndarray]:
    """(task-seed) -> the dev accuracies of the distinct instructions its searches wrote (izkit.studies.allocation's pool)."""
    return {rep.record.path.parent.name: candidate_pool(rep) for rep in runs}


def simulate(pool: np.ndarray, allowed: int, alloc, reps: int) -> np.ndarray:
    """(reps, 3): true p of the pick, best p drawn - that, estimate of the pick - its true p, by
    izkit.studies.allocation.simulate_allocation (independent coin flips, the same flips for every allocation of a rep)."""
    a = simulate_allocation(pool, alloc, [allowed], reps=reps, seed=0)
    truth, best, estimate = a.truth[:, 0], a.best[:, 0], a.estimate[:, 0]
    return np.stack([truth, best - truth, estimate - truth], axis=1)


def score_matrices(runs) -> dict[str, np.ndarray]:
    """(task-seed) -> (instructions, 20) per-example dev scores of the distinct instructions its searches wrote (each
    at its first scoring; the same 20 dev examples for all of them)."""
    out = {}
    for rep in runs:
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


def simulate_paired(a: np.ndarray, b: np.ndarray, allowed: int, alloc, rng: np.random.Generator
                    ) -> tuple[float, float, float]:
    """As :func:`simulate` for one repetition, with the examples shared by every candidate: difficulties drawn from
    the fitted ``b``; the pick is izkit.studies.allocation.allocation_pick's."""
    n = candidates_for(allowed, alloc)
    n_examples = 20 if alloc is None else max(alloc[2], 20)
    ability = rng.choice(a, size=n, replace=n > len(a))  # (n,)
    diff = rng.choice(b, size=n_examples) + rng.normal(0.0, 0.5, size=n_examples)  # (E,) one set for all
    flips = (rng.random((n, len(diff))) < 1.0 / (1.0 + np.exp(diff[None, :] - ability[:, None]))).astype(float)
    pop = rng.choice(b, size=4000) + rng.normal(0.0, 0.5, size=4000)  # the task's examples at large
    p = (1.0 / (1.0 + np.exp(pop[None, :] - ability[:, None]))).mean(1)  # (n,) expected accuracy: the truth
    pick, estimate = allocation_pick(flips, None if alloc is None else halving_rungs(n, *alloc))
    return float(p[pick]), float(p.max() - p[pick]), float(estimate - p[pick])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--answers", default="3000,1000", help="answers allowed per method, comma-separated")
    ap.add_argument("--reps", type=int, default=100, help="repetitions per (task, seed) pair")
    ap.add_argument("--paired", action="store_true", help="shared examples from a fitted item-response model")
    args = ap.parse_args()
    from tqdm.auto import tqdm

    runs = finished_runs(archived_study("study"))
    if args.paired:
        fits = {k: fit_rasch(y) for k, y in score_matrices(runs).items()}
        data = {k: a for k, (a, _) in fits.items()}
    else:
        data = pools(runs)
    lines = [f"Simulated on the instructions of {len(data)} archived (task, seed) pairs (pool sizes "
             f"{min(map(len, data.values()))}-{max(map(len, data.values()))}), {args.reps} repetitions each, "
             f"{'examples shared (item-response model)' if args.paired else 'independent coin flips'}; "
             f"`python -m bench.studies.bench_selection {'--paired ' if args.paired else ''}--reps {args.reps} "
             f"--answers {args.answers}`", ""]
    for allowed in (int(b) for b in args.answers.split(",")):
        lines += [f"{allowed} answers allowed", "",
                  "| allocation | candidates | true accuracy of the pick | shortfall from best drawn | winner's curse |",
                  "|---|---|---|---|---|"]
        rows = []
        for name, alloc in tqdm(ALLOCATIONS, desc=f"{allowed} answers"):
            n = candidates_for(allowed, alloc)
            if n < 2:
                continue
            if args.paired:
                rng = np.random.default_rng(0)  # the same seed for every allocation
                res = np.array([simulate_paired(*fits[key], allowed, alloc, rng) for key in data
                                for _ in range(args.reps)])
            else:
                res = np.concatenate([simulate(data[key], allowed, alloc, args.reps) for key in data])
            rows.append((res[:, 0].mean(), f"| {name} | {n} | {res[:, 0].mean():.3f} | {res[:, 1].mean():.3f} | "
                                           f"{res[:, 2].mean():+.3f} |"))
        lines += [r for _, r in sorted(rows, key=lambda t: -t[0])] + [""]
    emit("\n".join(lines), "selection_paired" if args.paired else "selection")


if __name__ == "__main__":
    main()
