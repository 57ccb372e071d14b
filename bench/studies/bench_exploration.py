"""Exploration with eq. 9, one setting at a time, on dev only (issue 14, point 2): which BO surrogate and batch rule?

Each variant is an InstructZero run (the default models, accuracy, the one-budget rule) on the same tasks and seeds,
so every variant starts from the same Sobol design (its 25 instructions are answered once, from a shared answer
cache); Uniform at the same budget is the floor every BO variant should clear. Per variant, over tasks x seeds:

- best dev accuracy at the budget (what BO maximises; it favours whatever tries the most, but budgets are equal);
- **fresh dev**: the best instruction's accuracy on up to 50 induce examples that are neither exemplars nor dev
  (never the test split): the figure that chooses, as it does not reward the winner's curse;
- the mean dev accuracy of the instructions the later rounds scored (after the shared Sobol design: what the
  search itself found), and how many of them reach the design's best (a later one must beat it strictly to be kept,
  as ties go to the first);
- distinct instructions, soft prompts evaluated twice, candidates drawn per new instruction;
- from the BO rounds' gp lines: the median of S's off-diagonal 99th percentile and of the posterior sd at random z
  over y's sd (near 0: EI only exploits).

    python -m bench.studies.bench_exploration                # the default grid (resumes: runs already made are read)
    python -m bench.studies.bench_exploration --tasks antonyms,sum --seeds 0 --budget 50
    python -m bench.studies.bench_exploration --variants base,unit  # a subset

Runs are kept under bench/out/exploration/ (git-ignored); prints a Markdown table and writes bench/out/exploration.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from bench.common.paths import OUT_DIR  # noqa: E402
from bench.common.report import emit  # noqa: E402

from izkit.config import Config  # noqa: E402
from izkit.methods import METHOD, RANDOM  # noqa: E402
from izkit.loop import Run  # noqa: E402
from izkit.records import RECORD_NAME, RunRecord  # noqa: E402
from izkit.tasks import load_task  # noqa: E402

# name -> Config fields; "base" is izkit's settings before this study (the authors' surrogate, EI's top-q batch)
VARIANTS: dict[str, dict] = {
    "base": {},
    "unit": {"gp_inputs": "unit"},
    "standardize": {"score_standardize": "column"},
    "known-noise": {"gp_noise": "known"},
    "residual": {"residual": True},
    "authors-batch": {"batch": "authors"},
    "all": {"gp_inputs": "unit", "score_standardize": "column", "gp_noise": "known", "residual": True},
    "uniform": {"baselines": ("uniform",)},  # not BO: the floor, at the same budget
}
TASKS = "antonyms,larger_animal,sum,first_word_letter"
N_FRESH = 50
RUNS = OUT_DIR / "exploration"


def fresh_dev(task, cfg: Config) -> tuple:
    """Up to N_FRESH induce examples that the run's exemplars and dev set do not use (never the test split)."""
    return task.spare_induce(cfg.kappa, cfg.n_dev, cfg.seed, limit=N_FRESH)


def one(variant: str, task_name: str, seed: int, budget: int, cache: Path) -> dict:
    """One variant on one (task, seed): run (or resume) its search, score its best on fresh dev, read its facts."""
    fields = dict(VARIANTS[variant])
    method = RANDOM if variant == "uniform" else METHOD
    cfg = Config(task_name, seed=seed, baselines=fields.pop("baselines", ()), answer_cache=str(cache), device="cpu")
    cfg = dataclasses.replace(cfg, **fields).as_paper().with_instructions(budget)  # measured with the paper's allocation
    out = RUNS / variant / f"{task_name}-s{seed}"
    resume = (out / RECORD_NAME).exists() and (out / RECORD_NAME).stat().st_size > 0
    run = Run(cfg, out, resume=resume, progress=True)
    run.search([method])
    evals = run.record.evals(method)
    best = max(evals, key=lambda e: -1.0 if e["mean"] is None else e["mean"])  # ties: the first, as the loop's
    task = load_task(task_name)
    fresh = run.pipeline.blackbox.score([best["instruction"]], fresh_dev(task, cfg), metric=task.metric,
                                        objective=run.objective)
    proposals = [p for p in run.record.of_kind("proposal", method=method) if p["round"] > 0]
    init_best = max(e["mean"] for e in evals if e["round"] == 0 and e["mean"] is not None)
    zs = [tuple(e["z"]) for e in evals if e.get("z") is not None]
    gps = [g.get("diagnostics", {}) for g in run.record.of_kind("gp", method=method)]
    return {
        "best_dev": best["mean"], "fresh": float(fresh.means[0]), "instruction": best["instruction"],
        "later_mean": np.mean([e["mean"] for e in evals if e["round"] > 0 and e["mean"] is not None] or [np.nan]),
        "later_ge_init": sum(e["mean"] is not None and e["mean"] >= init_best for e in evals if e["round"] > 0),
        "distinct": len({e["instruction"] for e in evals}), "repeats": len(zs) - len(set(zs)),
        "drawn_per_new": np.mean([p.get("drawn", 0) / max(1, p.get("new", 1)) for p in proposals]) if proposals
        else float("nan"),
        "S99": np.median([g["S_offdiag_q99"] for g in gps if "S_offdiag_q99" in g]) if gps else float("nan"),
        "sd_ratio": np.median([g["sd_ratio_q50"] for g in gps if "sd_ratio_q50" in g]) if gps else float("nan"),
        "minutes": RunRecord.open(out / RECORD_NAME).work_seconds() / 60,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--budget", type=int, default=75)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    tasks, seeds = args.tasks.split(","), [int(s) for s in args.seeds.split(",")]
    variants = args.variants.split(",")
    cache = RUNS / "answers.sqlite"  # shared by every variant: the same question is answered once
    RUNS.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict]] = {v: [] for v in variants}
    for t in tasks:
        for s in seeds:
            for v in variants:
                r = one(v, t, s, args.budget, cache)
                rows[v].append(r)
                print(f"{v:14s} {t:18s} s{s}: dev {r['best_dev']:.2f} fresh {r['fresh']:.2f} "
                      f"{r['distinct']} distinct, {r['repeats']} repeated z  {r['instruction']!r}", flush=True)
    lines = [f"Exploration variants, dev only: tasks {', '.join(tasks)}, seeds {seeds}, budget {args.budget} distinct "
             f"instructions, the default models, accuracy; fresh dev = the best instruction on up to {N_FRESH} unused "
             "induce examples", "",
             "| variant | best dev | fresh dev | fresh dev per task | later rounds' mean dev | later >= design best | "
             "distinct | repeated z | drawn per new | S off-diag q99 | posterior sd / sd(y) | minutes per run |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for v, rs in rows.items():
        per_task = " ".join(f"{np.mean([r['fresh'] for r in rs[i * len(seeds):(i + 1) * len(seeds)]]):.2f}"
                            for i in range(len(tasks)))
        lines.append(f"| {v} | {np.mean([r['best_dev'] for r in rs]):.3f} | {np.mean([r['fresh'] for r in rs]):.3f} | "
                     f"{per_task} | {np.nanmean([r['later_mean'] for r in rs]):.3f} | {sum(r['later_ge_init'] for r in rs)} | "
                     f"{np.mean([r['distinct'] for r in rs]):.1f} | {sum(r['repeats'] for r in rs)} | "
                     f"{np.nanmean([r['drawn_per_new'] for r in rs]):.2f} | {np.nanmedian([r['S99'] for r in rs]):.3g} | "
                     f"{np.nanmedian([r['sd_ratio'] for r in rs]):.3g} | {np.mean([r['minutes'] for r in rs]):.1f} |")
    emit("\n".join(lines), "exploration")


if __name__ == "__main__":
    main()
