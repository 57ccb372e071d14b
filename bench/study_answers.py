"""The study of issue 24: every method at one budget of black-box answers, the paper's allocation beside halving's.

For each (task, seed), seed-major (every task once before any task twice), and each budget of answers (1000, then
3000), one `izkit compare` of one pair:

    izkit compare --tasks TASK --seeds SEED --selection halving --halving-first 2 --preimages --answers B \\
        --baselines paper,matern,uniform,ape,reference --out runs/study-answers/B

so each record holds six rows at B answers each: InstructZero with the new selection (successive halving from 2
examples, the GP also learning from preimages), InstructZero with the paper's allocation (B / 20 instructions on the
20 dev examples, best kept, no preimages), plain Matern BO, Uniform and APE-style with the same halving, and the
hand-written instruction. After each pair its record is archived (without the answers' text) in
bench/study-answers/B/ with `izkit summary --archive`, so a study outlives the machine in git; a later sitting copies
the archive back and goes on where it stopped (finished pairs are read back, not rerun).

    python bench/study_answers.py                        # the whole study, resumable
    python bench/study_answers.py --tasks sum --seeds 0  # one pair at both budgets
    python bench/study_answers.py --report               # the summary of each budget from the archive alone

The new selection's settings were chosen on held-out spare induce examples, never test (bench/bench_allocation.py).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT / "bench" / "study-answers"
LIVE = ROOT / "runs" / "study-answers"
TASKS = ("antonyms,larger_animal,sum,first_word_letter,negation,diff,synonyms,translation_en-fr,singular_to_plural,"
         "active_to_passive")
BUDGETS = "1000,3000"
BASELINES = "paper,matern,uniform,ape,reference"
NEW = ("--selection", "halving", "--halving-first", "2", "--preimages")  # chosen on held-out spare induce examples
#       (bench/bench_allocation.py, bench/RESULTS.md "Choosing the winner in real runs"): eta 3 and top 100 by default


def izkit(*args: str) -> None:
    """Run the izkit command line of this checkout; stop the study if it fails (the record keeps what was done)."""
    cmd = [sys.executable, "-m", "izkit.cli", *args]
    print("+ izkit " + " ".join(args), flush=True)
    if subprocess.run(cmd, cwd=ROOT).returncode:
        raise SystemExit(f"izkit {' '.join(args)} failed; run this script again to resume")


def restore(budget: str) -> None:
    """Copy archived records that the live folder lacks back into it, so `izkit compare` reads them back."""
    for rec in sorted((ARCHIVE / budget).glob("*/record.jsonl")):
        live = LIVE / budget / rec.parent.name / "record.jsonl"
        if not live.exists():
            live.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(rec, live)


def report(budgets: list[str]) -> int:
    """Each budget's `izkit summary` from the archive, and the figure of test score against answers spent."""
    sys.path.insert(0, str(ROOT))
    from izkit.study import finished_runs
    from izkit.study_report import answers_figure

    for b in budgets:
        izkit("summary", str(ARCHIVE / b))
    path = ARCHIVE / "answers.png"
    answers_figure({int(b): finished_runs(ARCHIVE / b) for b in budgets}).savefig(path, dpi=110)
    print(f"the figure: {path}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budgets", default=BUDGETS, help="answers per method, comma-separated")
    ap.add_argument("--report", action="store_true", help="only summarise what is archived")
    args = ap.parse_args()
    budgets = args.budgets.split(",")
    if args.report:
        return report(budgets)
    for b in budgets:
        restore(b)
    for seed in args.seeds.split(","):
        for task in args.tasks.split(","):
            for b in budgets:
                izkit("compare", "--tasks", task, "--seeds", seed, *NEW, "--answers", b, "--baselines", BASELINES,
                      "--out", str(LIVE / b))
                izkit("summary", str(LIVE / b), "--archive", str(ARCHIVE / b))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
