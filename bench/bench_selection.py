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
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._report import emit  # noqa: E402
from izkit.study import finished_runs  # noqa: E402
from izkit.winner import candidate_pool  # noqa: E402
from izkit.selection import answers, halving_rungs, most_candidates, successive_halving, top_k  # noqa: E402

STUDY = Path(__file__).resolve().parent / "study"
SEARCHES = ("instructzero", "matern", "uniform", "ape")
ALLOCATIONS = [("paper", None)] + [(f"halving first={f} eta={e} top={t}", (f, e, t))
                                   for t in (20, 100) for f in (2, 5, 10) for e in (2, 3, 4) if f < t]


def pools(study: Path) -> dict[str, np.ndarray]:
    """(task-seed) -> the dev accuracies of the distinct instructions its searches wrote (izkit.winner's pool)."""
    return {rep.record.path.parent.name: candidate_pool(rep, SEARCHES) for rep in finished_runs(study)}


def simulate(pool: np.ndarray, budget: int, alloc, rng: np.random.Generator) -> tuple[float, float, float]:
    """(true p of the pick, best p drawn - that, estimate of the pick - its true p) for one repetition."""
    top = 20 if alloc is None else alloc[2]
    n = budget // 20 if alloc is None else most_candidates(budget, *alloc)
    p = rng.choice(pool, size=n, replace=n > len(pool))  # (n,)
    flips = (rng.random((n, max(top, 20))) < p[:, None]).astype(float)  # (n, E)
    if alloc is None:
        pick = top_k(flips[:, :20].mean(1), 1)[0]
        estimate = flips[pick, :20].mean()
    else:
        rungs = halving_rungs(n, *alloc)
        assert answers(rungs) <= budget
        res = successive_halving(lambda c, a, b: flips[c, a:b], rungs)
        pick, estimate = res.pick, res.means[-1][res.pick]
    return float(p[pick]), float(p.max() - p[pick]), float(estimate - p[pick])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budgets", default="3000,1000", help="comma-separated budgets of answers")
    ap.add_argument("--reps", type=int, default=100, help="repetitions per (task, seed) pair")
    args = ap.parse_args()
    from tqdm.auto import tqdm

    data = pools(STUDY)
    lines = [f"Simulated on the instructions of {len(data)} archived (task, seed) pairs (pool sizes "
             f"{min(map(len, data.values()))}-{max(map(len, data.values()))}), {args.reps} repetitions each; "
             f"`python bench/bench_selection.py --reps {args.reps} --budgets {args.budgets}`", ""]
    for budget in (int(b) for b in args.budgets.split(",")):
        lines += [f"Budget {budget} answers", "",
                  "| allocation | candidates | true accuracy of the pick | shortfall from best drawn | winner's curse |",
                  "|---|---|---|---|---|"]
        rows = []
        for name, alloc in tqdm(ALLOCATIONS, desc=f"budget {budget}"):
            n = budget // 20 if alloc is None else most_candidates(budget, *alloc)
            if n < 2:
                continue
            rng = np.random.default_rng(0)  # the same seed for every allocation
            res = np.array([simulate(pool, budget, alloc, rng) for pool in data.values() for _ in range(args.reps)])
            rows.append((res[:, 0].mean(), f"| {name} | {n} | {res[:, 0].mean():.3f} | {res[:, 1].mean():.3f} | "
                                           f"{res[:, 2].mean():+.3f} |"))
        lines += [r for _, r in sorted(rows, key=lambda t: -t[0])] + [""]
    emit("\n".join(lines), "selection")


if __name__ == "__main__":
    main()
