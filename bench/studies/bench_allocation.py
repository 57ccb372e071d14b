"""How should a search spend its answers? The paper's allocation against successive halving, in real runs, judged on
held-out induce examples (issue 24, point 5: the default is chosen here, on dev and spare data only).

bench/studies/bench_selection.py ranks allocations in a simulation (random candidates, coin flips). This bench runs
the real search (InstructZero by default: the GP, EI and the generator) under each allocation with the same black-box
answers allowed, and judges each run's pick on induce examples that no allocation ever saw:

- paper: answers / n_dev instructions, each scored on the 20 dev examples, the best kept (`--selection best`);
- halving F: `--selection halving --halving-first F` (eta 3, last rung on dev plus 80 spare induce examples): as many
  candidates as the answers allow, each scored on the first F dev examples during the search (the GP is fitted on
  those), the best third promoted to three times more examples, the pick made on 100;
- `+pre` (`--preimages`: the GP also learns from soft prompts that wrote an instruction already scored, PRESTO),
  `+mixed` (`--sampled 0.5`: half of each round sampled APE-style, a mixed pool), `+last` / `+random`
  (`--halving-ties`: equal means at a promotion go to the later-scored, or in a seeded random order, not the first
  scored), after any allocation's name.

Held out: the spare induce examples after the 80 that halving's last rung uses (spare[80:], up to `--held-out`; tasks
with 200 induce examples have 95). The hand-written instruction is scored on them too. The test split is never read.

    python -m bench.studies.bench_allocation                          # 6 tasks x 3 allocations at 1000 answers, ~50 min
    python -m bench.studies.bench_allocation --tasks sum,diff --allocations paper,halving2
    python -m bench.studies.bench_allocation --allocations halving5,halving5+pre,halving5+mixed

Prints Markdown and writes it to bench/out/bench_allocation.md; the runs are kept in bench/out/allocation/ (resumed).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP runtime (bench/README.md)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from bench.common.paths import OUT_DIR  # noqa: E402
from bench.common.report import emit  # noqa: E402
from izkit.config import Config  # noqa: E402
from izkit.methods import METHOD  # noqa: E402
from izkit.loop import Run  # noqa: E402
from izkit.pipeline import Pipeline  # noqa: E402
from izkit.records import RECORD_NAME, RunRecord  # noqa: E402
from izkit.studies.study import wilcoxon_p  # noqa: E402
from izkit.tasks import load_task  # noqa: E402

TASKS = "larger_animal,sum,negation,diff,first_word_letter,active_to_passive"
ALLOCATIONS = "paper,halving2,halving5"
SUFFIXES = {"pre": {"preimages": True}, "mixed": {"sampled": 0.5}, "last": {"halving_ties": "last"},
            "random": {"halving_ties": "random"}}
RUNS = OUT_DIR / "allocation"


def allocation(name: str) -> dict:
    """The Config fields an allocation's name stands for: ``paper``, or ``halving<F>`` (eta 3, top 100), then any of
    ``+pre`` (the GP learns from preimages, PRESTO), ``+mixed`` (half of each round sampled APE-style), ``+last`` and
    ``+random`` (halving's tie order)."""
    base, *suffixes = name.split("+")
    if base == "paper":
        fields = {"selection": "best", "preimages": False}
    elif base.startswith("halving") and base[7:].isdigit():
        fields = {"selection": "halving", "halving_first": int(base[7:]), "preimages": False}  # +pre turns them on
    else:
        raise SystemExit(f"unknown allocation {name!r}: paper or halving<F>, with +pre / +mixed / +last / +random")
    for suffix in suffixes:
        if suffix not in SUFFIXES:
            raise SystemExit(f"unknown suffix {suffix!r} in {name!r}; choose from {', '.join(SUFFIXES)}")
        fields.update(SUFFIXES[suffix])
    return fields


def settings(name: str, task: str, seed: int, answers: int, method: str, cache: Path) -> Config:
    """The run's config for one allocation at ``answers`` black-box answers."""
    fields = allocation(name)
    cfg = Config(task, seed=seed, baselines=() if method == METHOD else (method,), answer_cache=str(cache),
                 device="cpu")
    if fields["selection"] == "best":
        return dataclasses.replace(cfg, **fields).with_instructions(answers // cfg.n_dev)
    return dataclasses.replace(cfg, answers=answers, **fields)


def pick(run: Run, method: str) -> tuple[str, float, int, int]:
    """The run's kept instruction, the mean it was kept on, the answers spent and the distinct instructions."""
    evals = [e for e in run.record.evals(method) if e["mean"] is not None]
    line = run.record.find("selection", method=method)
    if line is not None:
        kept, mean = line["instruction"], line["mean"]
    else:
        best = max(evals, key=lambda e: e["mean"])  # ties: the first scored, as the loop's
        kept, mean = best["instruction"], best["mean"]
    return kept, float(mean), run.record.answers(method), len({e["instruction"] for e in evals})


def versus(d: np.ndarray) -> str:
    """A paired difference as 'mean (wins/ties/losses, p)'."""
    return (f"{d.mean():+.3f} ({(d > 1e-9).sum()}/{(abs(d) <= 1e-9).sum()}/{(d < -1e-9).sum()}, "
            f"p {wilcoxon_p(d):.2f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--answers", type=int, default=1000, help="black-box answers each run spends on dev-side examples")
    ap.add_argument("--allocations", default=ALLOCATIONS, help="paper, halving<F>, each with +pre / +mixed / +last / +random")
    ap.add_argument("--method", default="instructzero", help="the search to run (instructzero, matern, uniform, ape)")
    ap.add_argument("--held-out", type=int, default=95, help="spare induce examples after halving's 80 to judge on")
    args = ap.parse_args()
    names = args.allocations.split(",")
    for name in names:
        allocation(name)  # a typo stops here, not after an hour of runs
    RUNS.mkdir(parents=True, exist_ok=True)
    cache = RUNS / "answers.sqlite"  # shared: the same question is answered once, whichever allocation asks it
    rows: dict[str, list[dict]] = {n: [] for n in names}
    ref_rows = []
    for task_name in args.tasks.split(","):
        task = load_task(task_name)
        pipeline = None
        for name in names:
            cfg = settings(name, task_name, args.seed, args.answers, args.method, cache)
            if pipeline is None:
                splits = task.splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed)
                pipeline = Pipeline.from_config(cfg, splits, task.metric, cfg.resolved_objective())
                spare = task.spare_induce(cfg.kappa, cfg.n_dev, cfg.seed)
                held = spare[cfg.halving_top - cfg.n_dev:][: args.held_out]
                if len(held) < 20:
                    raise SystemExit(f"{task_name}: only {len(held)} spare induce examples after halving's; pick a "
                                     f"task with more induce examples")
                ref = pipeline.blackbox.score([task.reference_instruction], held, metric=task.metric,
                                              objective=cfg.resolved_objective())
                ref_rows.append({"task": task_name, "held": float(ref.means[0]), "n": len(held)})
            out = RUNS / f"{args.method}-{args.answers}" / name / f"{task_name}-s{args.seed}"
            resume = (out / RECORD_NAME).exists() and (out / RECORD_NAME).stat().st_size > 0
            run = Run(cfg, out, resume=resume, progress=True, pipeline=pipeline)
            run.search([args.method])
            kept, mean, spent, distinct = pick(run, args.method)
            judged = pipeline.blackbox.score([kept], held, metric=task.metric, objective=cfg.resolved_objective())
            rows[name].append({"task": task_name, "kept": kept, "mean": mean, "held": float(judged.means[0]),
                               "answers": spent, "distinct": distinct,
                               "minutes": RunRecord.open(out / RECORD_NAME).work_seconds() / 60})
            print(f"{task_name} {name}: {kept!r} kept at {mean:.3f}, held-out {judged.means[0]:.3f}, "
                  f"{spent} answers, {distinct} distinct", flush=True)
    return report(args, names, rows, ref_rows)


def report(args: argparse.Namespace, names: list[str], rows: dict[str, list[dict]], ref_rows: list[dict]) -> int:
    lines = [f"`python -m bench.studies.bench_allocation --answers {args.answers} --method {args.method}` "
             f"(seed {args.seed}): "
             f"each allocation's pick judged on held-out spare induce examples", "",
             "| task | held out | " + " | ".join(names) + " | hand-written |", "|---|---|" + "---|" * (len(names) + 1)]
    for i, ref in enumerate(ref_rows):
        lines.append(f"| {ref['task']} | {ref['n']} | " + " | ".join(f"{rows[n][i]['held']:.3f}" for n in names)
                     + f" | {ref['held']:.3f} |")
    held = {n: np.array([r["held"] for r in rows[n]]) for n in names}
    ref = np.array([r["held"] for r in ref_rows])
    lines.append("| **mean** | | " + " | ".join(f"**{held[n].mean():.3f}**" for n in names) + f" | {ref.mean():.3f} |")
    first = names[0]
    lines += ["", f"| allocation | answers | distinct | kept-on mean - held out (curse) | minutes of work | - {first} "
              "(wins/ties/losses, p) | - hand-written |", "|---|---|---|---|---|---|---|"]
    for n in names:
        curse = np.mean([r["mean"] - r["held"] for r in rows[n]])
        vs_paper = versus(held[n] - held[first]) if n != first else ""
        vs_ref = versus(held[n] - ref)
        lines.append(f"| {n} | {np.mean([r['answers'] for r in rows[n]]):.0f} | "
                     f"{np.mean([r['distinct'] for r in rows[n]]):.0f} | {curse:+.3f} | "
                     f"{np.mean([r['minutes'] for r in rows[n]]):.1f} | "
                     + f"{vs_paper} | {vs_ref} |")
    lines += ["", "Kept instructions:", ""]
    for n in names:
        lines += [f"- {n}: " + "; ".join(f"{r['task']} {r['kept']!r}" for r in rows[n])]
    emit("\n".join(lines), "bench_allocation")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
