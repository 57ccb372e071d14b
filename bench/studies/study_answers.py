"""The study of issue 24: every method with the same black-box answers allowed, the paper's allocation beside halving.

For each number of answers allowed (1000, then 3000), one `izkit compare` over every (task, seed), seed-major (every
task once before any task twice):

    izkit compare --tasks T --seeds 0,1,2 --selection halving --halving-first 2 --preimages --answers B \\
        --baselines paper,matern,uniform,ape,reference --out runs/study-answers/B --archive bench/data/study-answers/B

so each record holds six rows at B answers each: InstructZero with the new selection (successive halving from 2
examples, the GP also learning from preimages), InstructZero with the paper's allocation (B / 20 instructions on the
20 dev examples, best kept, no preimages), plain Matern BO, Uniform and APE-style with the same halving, and the
hand-written instruction. `--archive` keeps each pair (without the answers' text) in bench/data/study-answers/B/ as soon
as it is finished, so a study outlives the machine in git, and copies the archive back first, so a later sitting goes
on where it stopped (finished pairs are read back, not rerun). `--ray` fans the pairs out on a local Ray, one CPU
each (on two cores, two pairs at a time).

    python -m bench.studies.study_answers                        # the whole study, resumable
    python -m bench.studies.study_answers --ray                  # the same, two one-CPU pairs at a time on Ray
    python -m bench.studies.study_answers --tasks sum --seeds 0  # one pair at both numbers of answers
    python -m bench.studies.study_answers --report               # each number of answers' summary, from the archive
    python -m bench.studies.study_answers --save-unfinished      # before the machine goes back: keep pairs in flight

A pair at 3,000 answers takes hours and a sitting's machine is not kept, so `--save-unfinished` copies each live,
unfinished pair's whole record, gzipped, into bench/data/study-answers/<answers>-unfinished/ (commit it); the next
sitting puts it back into the live folder before `izkit compare` starts, which resumes the pair where it stopped (a
resumed run ends as an uninterrupted one would). A pair archived as finished drops its unfinished copy.

The new selection's settings were chosen on held-out spare induce examples, never test
(bench/studies/bench_allocation.py).
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
from pathlib import Path

from bench.common.paths import DATA, ROOT

ARCHIVE = DATA / "study-answers"
LIVE = ROOT / "runs" / "study-answers"
TASKS = ("antonyms,larger_animal,sum,first_word_letter,negation,diff,synonyms,translation_en-fr,singular_to_plural,"
         "active_to_passive")
ANSWERS = "1000,3000"  # answers allowed per method
BASELINES = "paper,matern,uniform,ape,reference"
NEW = ("--selection", "halving", "--halving-first", "2", "--preimages")  # chosen on held-out spare induce examples
#       (bench/studies/bench_allocation.py, bench/RESULTS.md "Choosing the winner in real runs"): eta 3 and top 100
#       by default


def izkit(*args: str) -> None:
    """Run the izkit command line of this checkout; stop the study if it fails (the record keeps what was done)."""
    cmd = [sys.executable, "-m", "izkit.cli", *args]
    print("+ izkit " + " ".join(args), flush=True)
    if subprocess.run(cmd, cwd=ROOT).returncode:
        raise SystemExit(f"izkit {' '.join(args)} failed; run this script again to resume")


def report(allowed: list[str]) -> int:
    """The `izkit summary` at each number of answers allowed, from the archive, and the figure of test score against
    answers spent."""
    from izkit.studies.study import finished_runs
    from izkit.studies.study_report import answers_figure

    for b in allowed:
        izkit("summary", str(ARCHIVE / b))
    path = ARCHIVE / "answers.png"
    answers_figure({int(b): finished_runs(ARCHIVE / b) for b in allowed}).savefig(path, dpi=110)
    print(f"the figure: {path}")
    return 0


def unfinished_copies(allowed: str) -> dict[str, Path]:
    """{pair: its gzipped unfinished record} kept at ``allowed`` answers."""
    folder = ARCHIVE / f"{allowed}-unfinished"
    return {gz.name.removesuffix(".jsonl.gz"): gz for gz in sorted(folder.glob("*.jsonl.gz"))}


def save_unfinished(allowed: list[str]) -> int:
    """Gzip each live, unfinished pair's record into bench/data/study-answers/<answers>-unfinished/ (whole lines only:
    a pair still running may be writing its last one); drop the copies of pairs archived since."""
    from izkit.records import RECORD_NAME
    from izkit.replay import replay

    for b in allowed:
        archived = {p.parent.name for p in (ARCHIVE / b).glob(f"*/{RECORD_NAME}")}
        for pair, gz in unfinished_copies(b).items():
            if pair in archived:
                gz.unlink()
                print(f"{gz}: removed, the pair is archived")
        for rec in sorted((LIVE / b).glob(f"*/{RECORD_NAME}")):
            if rec.parent.name in archived or replay(rec.parent).record.done:
                continue
            data = rec.read_bytes()
            data = data[: data.rfind(b"\n") + 1]  # whole lines
            dest = ARCHIVE / f"{b}-unfinished" / f"{rec.parent.name}.jsonl.gz"
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".tmp")
            tmp.write_bytes(gzip.compress(data, mtime=0))
            os.replace(tmp, dest)  # the old copy or the new one, never part of one
            print(f"{dest}: {len(data.splitlines())} lines of {rec}")
    return 0


def restore_unfinished(allowed: str) -> None:
    """Put each kept unfinished record back into the live folder, unless the pair is archived or live already."""
    from izkit.records import RECORD_NAME

    for pair, gz in unfinished_copies(allowed).items():
        target = LIVE / allowed / pair / RECORD_NAME
        if (ARCHIVE / allowed / pair / RECORD_NAME).exists() or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(gzip.decompress(gz.read_bytes()))
        print(f"{target}: resumed from {gz}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--answers", default=ANSWERS, help="answers allowed per method, comma-separated")
    ap.add_argument("--report", action="store_true", help="only summarise what is archived")
    ap.add_argument("--ray", action="store_true", help="two one-CPU pairs at a time on a local Ray (izkit.studies.fanout)")
    ap.add_argument("--save-unfinished", action="store_true", help="keep the live, unfinished pairs' records in git")
    args = ap.parse_args()
    allowed = args.answers.split(",")
    if args.report:
        return report(allowed)
    if args.save_unfinished:
        return save_unfinished(allowed)
    for b in allowed:
        restore_unfinished(b)
        izkit("compare", "--tasks", args.tasks, "--seeds", args.seeds, *NEW, "--answers", b, "--baselines", BASELINES,
              "--out", str(LIVE / b), "--archive", str(ARCHIVE / b), *(["--ray"] if args.ray else []))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
