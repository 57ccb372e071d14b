"""Issue 47's check: does drawing at most 1.5 candidates per new instruction keep InstructZero's pick?

The answers study's default (halving from 2 examples with preimages, `--screen 2 --max-draws 10`) draws about 3-4
candidates per new instruction and costs 3-5x the paper allocation's minutes (bench/speed/bench_profile.py). The
variant draws one EI maximiser per missing instruction a pass (`--screen 1`) and at most 1.5 candidates per new
instruction over the search (`--max-draws 1.5`); a round that cannot find its instructions within that ends the
search, and halving spends the answers left on wider rungs (izkit.selection.widest_first). This runs it over the
answers study's 10 tasks x 3 seeds (InstructZero alone) and pairs its pick with the archived default's, on the
held-out induce examples no method read (bench/studies/study_heldout.py: they choose a default) and on test
(reported only).

    python -m bench.studies.study_draws --run            # the runs, archived pair by pair, resumable
    python -m bench.studies.study_draws                  # the comparison, from the archives

The held-out scores of the variant's picks go to bench/data/study-draws/heldout-<answers>.json (read back on a later
call); Markdown to bench/out/study_draws.md.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys

import numpy as np

from izkit.pipeline import Pipeline
from izkit.studies.study import (bootstrap_ci, by_task, finished_runs, method_test_score, task_groups,
                                 wilcoxon_p)
from izkit.studies.winner import run_task

from bench.common.paths import DATA, ROOT
from bench.common.report import emit
from bench.speed.bench_profile import draws
from bench.studies.study_answers import TASKS
from bench.studies.study_heldout import held_out

ARCHIVE, BEFORE = DATA / "study-draws", DATA / "study-answers"
VARIANT = ("--screen", "1", "--max-draws", "1.5")
MARGIN = 0.01  # non-inferior: the variant's mean held-out accuracy at most this far below the default's


def run(answers: str) -> int:
    cmd = [sys.executable, "-m", "izkit.cli", "compare", "--tasks", TASKS, "--seeds", "0,1,2", "--answers", answers,
           *VARIANT, "--baselines", "none", "--out", str(ROOT / "runs" / "study-draws" / answers),
           "--archive", str(ARCHIVE / answers)]
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd)


def score_held_out(answers: str, limit: int = 95, min_held: int = 20) -> dict[str, float]:
    """{run name: held-out accuracy of the variant's pick}, scoring what is not kept yet."""
    path = ARCHIVE / f"heldout-{answers}.json"
    scores = json.loads(path.read_text()) if path.is_file() else {}
    for rep in finished_runs(ARCHIVE / answers):
        name = rep.record.path.parent.name
        if name in scores:
            continue
        held = held_out(rep.record.header, limit)
        if len(held) >= min_held:
            pipeline, _ = Pipeline.from_record(rep.record.header)
            res = pipeline.blackbox.score([rep.kept("instructzero")["instruction"]], held, metric=pipeline.metric,
                                          objective="accuracy")
            scores[name] = float(res.means[0])
        else:
            scores[name] = math.nan  # too few held-out examples (antonyms); kept so it is not looked at again
        path.write_text(json.dumps(scores, indent=1, sort_keys=True) + "\n")  # after every pair: nothing is lost
    return scores


def cost(rep, method: str) -> tuple[float, int, int]:
    """(recorded minutes, candidates drawn, new instructions) of one method in a run."""
    return (rep.record.work_seconds(method) / 60, *draws(rep.record, method))


def compare(answers: str) -> list[str]:
    new = {r.record.path.parent.name: r for r in finished_runs(ARCHIVE / answers)}
    old = {r.record.path.parent.name: r for r in finished_runs(BEFORE / answers) if r.record.path.parent.name in new}
    held_new = score_held_out(answers)
    held_old = json.loads((BEFORE / f"heldout-{answers}.json").read_text())
    names = sorted(old)
    lines = [f"### {answers} answers: {len(names)} (task, seed) pairs, the variant ({' '.join(VARIANT)}) against the "
             "archived default (bench/data/study-answers)", "",
             "| reading | pairs | variant | default | variant - default | 95% CI | Wilcoxon p | tasks up/tied/down |",
             "|---|---|---|---|---|---|---|---|"]
    for reading, a, b in (
            ("held-out induce (chooses)", [held_new.get(n, math.nan) for n in names],
             [held_old.get(n, {}).get("instructzero", math.nan) for n in names]),
            ("test (reported only)", [method_test_score(new[n], "instructzero", "accuracy") for n in names],
             [method_test_score(old[n], "instructzero", "accuracy") for n in names])):
        ok = [i for i in range(len(names)) if math.isfinite(a[i]) and math.isfinite(b[i])]
        diffs = np.array([a[i] - b[i] for i in ok])
        lo, hi = bootstrap_ci(diffs)
        t = by_task(task_groups([run_task(names[i]) for i in ok], diffs.tolist()))
        lines.append(f"| {reading} | {len(ok)} | {np.mean([a[i] for i in ok]):.3f} | {np.mean([b[i] for i in ok]):.3f}"
                     f" | {diffs.mean():+.3f} | [{lo:+.3f}, {hi:+.3f}] | {wilcoxon_p(diffs):.3f} | "
                     f"{t.wins}/{t.ties}/{t.losses} |")
    mean_diff = np.nanmean([held_new.get(n, math.nan) - held_old.get(n, {}).get("instructzero", math.nan)
                            for n in names])
    judged = [n for n in names if math.isfinite(held_new.get(n, math.nan)) and "paper" in held_old.get(n, {})]
    means = {label: np.mean([get(n) for n in judged]) for label, get in (
        ("the variant", held_new.get), ("the default", lambda n: held_old[n]["instructzero"]),
        ("the paper's allocation", lambda n: held_old[n]["paper"]), ("Uniform", lambda n: held_old[n]["uniform"]),
        ("the hand-written instruction", lambda n: held_old[n]["reference"]))}
    lines += ["", f"Mean held-out accuracy on the same {len(judged)} pairs: "
              + ", ".join(f"{k} {v:.3f}" for k, v in means.items()) + " (the last three archived)."]
    lines += ["", f"Non-inferiority on held-out induce examples (mean within {MARGIN} of the default's): "
              f"{'met' if mean_diff >= -MARGIN else 'not met'} ({mean_diff:+.3f}).", "",
              "| per run (mean over pairs) | minutes of recorded work | drawn | new | drawn per new |",
              "|---|---|---|---|---|"]
    for label, reps, method in (("variant", new, "instructzero"), ("default (archived)", old, "instructzero"),
                                ("paper's allocation (archived)", old, "paper")):
        c = np.array([cost(reps[n], method) for n in names])
        lines.append(f"| {label} | {c[:, 0].mean():.1f} | {c[:, 1].mean():.0f} | {c[:, 2].mean():.0f} | "
                     f"{c[:, 1].sum() / c[:, 2].sum():.2f} |")
    lines += ["", "The archived runs shared the machine (two pairs at a time on Ray): compare their minutes with "
              "each other, not with the variant's.", ""]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--answers", default="1000")
    ap.add_argument("--run", action="store_true", help="run (or go on with) the variant's pairs first")
    args = ap.parse_args()
    if args.run and run(args.answers):
        return 1
    emit("\n".join(compare(args.answers)), "study_draws")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
