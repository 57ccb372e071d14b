"""The study of issue 24: every method at one budget of black-box answers, the paper's allocation beside halving's.

For each budget of answers (1000, then 3000), one `izkit compare` over every (task, seed), seed-major (every task
once before any task twice):

    izkit compare --tasks T --seeds 0,1,2 --selection halving --halving-first 2 --preimages --answers B \\
        --baselines paper,matern,uniform,ape,reference --out runs/study-answers/B --archive bench/study-answers/B

so each record holds six rows at B answers each: InstructZero with the new selection (successive halving from 2
examples, the GP also learning from preimages), InstructZero with the paper's allocation (B / 20 instructions on the
20 dev examples, best kept, no preimages), plain Matern BO, Uniform and APE-style with the same halving, and the
hand-written instruction. `--archive` keeps each pair (without the answers' text) in bench/study-answers/B/ as soon
as it is finished, so a study outlives the machine in git, and copies the archive back first, so a later sitting goes
on where it stopped (finished pairs are read back, not rerun). `--ray` fans the pairs out on a local Ray, one CPU
each (on two cores, two pairs at a time).

    python bench/study_answers.py                        # the whole study, resumable
    python bench/study_answers.py --ray                  # the same, two one-CPU pairs at a time on Ray
    python bench/study_answers.py --tasks sum --seeds 0  # one pair at both budgets
    python bench/study_answers.py --report               # the summary of each budget from the archive alone

The new selection's settings were chosen on held-out spare induce examples, never test (bench/bench_allocation.py).
"""

from __future__ import annotations

import argparse
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
    ap.add_argument("--ray", action="store_true", help="two one-CPU pairs at a time on a local Ray (izkit.fanout)")
    args = ap.parse_args()
    budgets = args.budgets.split(",")
    if args.report:
        return report(budgets)
    for b in budgets:
        izkit("compare", "--tasks", args.tasks, "--seeds", args.seeds, *NEW, "--answers", b, "--baselines", BASELINES,
              "--out", str(LIVE / b), "--archive", str(ARCHIVE / b), *(["--ray"] if args.ray else []))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
