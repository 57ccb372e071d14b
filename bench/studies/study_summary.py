"""What an `izkit compare` folder says beyond its test table: per method, the dev side and where the time went.

    python -m bench.studies.study_summary runs/compare-YYYYmmdd-HHMMSS

First the test tables of `izkit compare` over the finished runs; then for every method, averaged over those runs: distinct instructions among its evaluations,
the best dev score, the round in which that best was first found, the minutes spent (proposals: GP fit, acquisition
and generation; evaluations: black-box scoring), and on how many runs InstructZero beat the method on the test split.
Only records are read (no model is loaded); unfinished runs are listed and left out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from izkit.studies.compare import compare_table
from izkit.config import METHOD_NAMES, METHODS, Config
from izkit.methods import METHOD
from izkit.loop import MethodResult, RunResult
from izkit.replay import replay
from izkit.records import RECORD_NAME

from bench.common.report import emit


def summarise(folder: Path) -> str:
    runs, unfinished = [], []
    for path in sorted(folder.glob(f"*/{RECORD_NAME}")):
        rep = replay(path)
        (runs if rep.record.done else unfinished).append((path.parent.name, rep))
    if not runs:
        raise SystemExit(f"{folder}: no finished runs")
    objective = runs[0][1].objective
    test_objs = sorted({o for _, rep in runs for o in rep.test_scores()}, key=lambda o: o != objective)
    methods = [m for m in METHODS if any(m in rep.methods() for _, rep in runs)]
    lines = [f"{len(runs)} finished runs in {folder} (optimised {objective} on dev); means over runs", "",
             f"| method | distinct instructions | best dev {objective} | round of the best | minutes proposing | "
             "minutes scoring | " + " | ".join(f"InstructZero better / tie / worse, test {o}" for o in test_objs) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(test_objs)]
    for m in methods:
        distinct, best, best_round, prop_s, eval_s = [], [], [], [], []
        cmp = {o: [0, 0, 0] for o in test_objs}
        for _, rep in runs:
            evals = rep.evals(m)
            if not evals:
                continue
            distinct.append(len({e["instruction"] for e in evals}))
            top = rep.best(m)
            best.append(top["mean"])
            best_round.append(top["round"])
            prop_s.append(sum(p.get("seconds", 0.0) for p in rep.record.of_kind("proposal", method=m)))
            eval_s.append(sum(e.get("seconds", 0.0) for e in evals))
            for o in test_objs if m != METHOD else ():
                a, b = rep.test_scores(METHOD).get(o), rep.test_scores(m).get(o)
                if a is not None and b is not None:
                    cmp[o][0 if a > b else 1 if a == b else 2] += 1
        wins = " | ".join("-" if m == METHOD else " / ".join(map(str, cmp[o])) for o in test_objs)
        lines.append(f"| {METHOD_NAMES.get(m, m)} | {np.mean(distinct):.1f} | {np.mean(best):.3f} | "
                     f"{np.mean(best_round):.1f} | {np.mean(prop_s) / 60:.2f} | {np.mean(eval_s) / 60:.2f} | {wins} |")
    if unfinished:
        lines.append(f"\nunfinished, left out: {', '.join(name for name, _ in unfinished)}")
    return "\n".join(lines)


def test_tables(folder: Path) -> str:
    """`izkit compare`'s tables (test scores, mean +- sd over seeds) over the finished runs only, read from records."""
    results = []
    for path in sorted(folder.glob(f"*/{RECORD_NAME}")):
        rep = replay(path)
        if not rep.record.done:
            continue
        cfg = Config.from_dict(rep.config)
        methods = {}
        for m in rep.methods():
            best = rep.best(m)
            methods[m] = MethodResult(m, best["instruction"], best["mean"], len(rep.evals(m)), rep.test_scores(m))
        results.append(RunResult(cfg, rep.objective, methods, path, 0.0, rep.record.work_seconds()))
    objectives = sorted({o for r in results for m in r.methods.values() for o in m.test},
                        key=lambda o: o != results[0].objective)
    return "\n\n".join(compare_table(results, o) for o in objectives)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="the --out folder of `izkit compare`")
    folder = ap.parse_args().folder
    emit(test_tables(folder) + "\n\n" + summarise(folder), "study_summary")


if __name__ == "__main__":
    main()
