"""The answers study's picks judged on held-out induce examples: the dev-side view that chooses the defaults (issue 24).

`izkit summary` reports each method's kept instruction on test, and a default must not be chosen there (choose on
dev, report on test). Every method of the answers study read at most the dev examples plus the first 80 spare induce
examples (halving's last rung); the spare induce examples after those were read by none. This script scores each
method's kept instruction, and the hand-written one, on those held-out examples (at most ``--held-out`` per pair; a
task with fewer than ``--min-held``, antonyms with 13, is left out) and prints the paired tests of
:mod:`izkit.studies.study` on them, beside the same tests on test for the same pairs.

    python -m bench.studies.study_heldout                   # 1000 and 3000, from bench/data/study-answers/<answers>/
    python -m bench.studies.study_heldout --answers 1000

The held-out scores are kept in bench/data/study-answers/heldout-<answers>.json (read back, not rescored, on a later
call); Markdown goes to bench/out/study_heldout.md. Loads the default model once (a few minutes per number of answers
allowed on two cores).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP runtime (bench/README.md)

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402

from tqdm import tqdm  # noqa: E402

from izkit.pipeline import Pipeline  # noqa: E402
from izkit.resume import settings_of  # noqa: E402
from izkit.studies.study import finished_runs, method_test_score, paired  # noqa: E402
from izkit.studies.study_report import PAIRED_HEADER, paired_row, task_of  # noqa: E402
from izkit.tasks import load_task  # noqa: E402

from bench.common.paths import DATA  # noqa: E402
from bench.common.report import emit  # noqa: E402

ARCHIVE = DATA / "study-answers"


def held_out(header: dict, limit: int) -> tuple:
    """The spare induce examples of a run's (task, seed) that no method of the study read: those after halving's
    last rung (dev + ``halving_top - n_dev`` spare), at most ``limit``."""
    cfg = settings_of(header)
    spare = load_task(cfg.task, root=cfg.root).spare_induce(cfg.kappa, cfg.n_dev, cfg.seed)
    return spare[cfg.halving_top - cfg.n_dev:][:limit]


def score_held_out(allowed: str, limit: int, min_held: int) -> dict[str, dict[str, float]]:
    """{run name: {method: held-out accuracy of its kept instruction}} at ``allowed`` answers, scoring what is not kept
    yet."""
    path = ARCHIVE / f"heldout-{allowed}.json"
    scores = json.loads(path.read_text()) if path.is_file() else {}
    runs = [r for r in finished_runs(ARCHIVE / allowed) if r.record.path.parent.name not in scores]
    for rep in tqdm(runs, desc=f"held out, {allowed} answers", unit="pair"):
        held = held_out(rep.record.header, limit)
        name = rep.record.path.parent.name
        if len(held) < min_held:
            scores[name] = {"held_out": len(held)}  # too few to judge on; kept so it is not looked at again
        else:
            pipeline, _ = Pipeline.from_record(rep.record.header)
            kept = {m: rep.kept(m)["instruction"] for m in rep.methods()}
            unique = sorted(set(kept.values()))
            res = pipeline.blackbox.score(unique, held, metric=pipeline.metric, objective="accuracy")
            by_text = dict(zip(unique, res.means.tolist()))
            scores[name] = {"held_out": len(held), **{m: by_text[v] for m, v in kept.items()}}
        path.write_text(json.dumps(scores, indent=1, sort_keys=True) + "\n")  # after every pair: nothing is lost
    return scores


def report(allowed: str, scores: dict[str, dict[str, float]]) -> list[str]:
    runs = [r for r in finished_runs(ARCHIVE / allowed) if len(scores.get(r.record.path.parent.name, {})) > 1]

    def held(rep, method: str, objective: str) -> float:
        return float(scores[rep.record.path.parent.name].get(method, math.nan))

    if not runs:
        return [f"### {allowed} answers: no finished pair with enough held-out examples yet", ""]
    methods = [m for m in runs[0].methods() if m != "instructzero"]
    tasks = sorted({task_of(r) for r in runs})
    n_held = sorted({scores[r.record.path.parent.name]["held_out"] for r in runs})
    lines = [f"### {allowed} answers: {len(runs)} pairs ({', '.join(tasks)}), {n_held[0]}-{n_held[-1]} held-out induce "
             "examples each", "", "On held-out induce examples (the dev side: what a default may be chosen on):", ""]
    lines += PAIRED_HEADER + [paired_row(paired(runs, "instructzero", b, "accuracy", score=held)) for b in methods]
    if "paper" in methods:
        lines += [paired_row(paired(runs, "paper", b, "accuracy", score=held)) for b in methods if b != "paper"]
    lines += ["", "The same pairs on test (reported only):", ""]
    lines += PAIRED_HEADER + [paired_row(paired(runs, "instructzero", b, "accuracy", score=method_test_score))
                              for b in methods]
    means = {m: sum(held(r, m, "") for r in runs) / len(runs) for m in ["instructzero", *methods]}
    lines += ["", "Mean held-out accuracy: " + ", ".join(f"{m} {v:.3f}" for m, v in means.items()), ""]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--answers", default="1000,3000", help="answers allowed per method: which folders to read")
    ap.add_argument("--held-out", type=int, default=95, help="held-out induce examples per pair, at most")
    ap.add_argument("--min-held", type=int, default=20, help="leave out a task with fewer held-out examples")
    args = ap.parse_args()
    lines = []
    for allowed in args.answers.split(","):
        if not (ARCHIVE / allowed).is_dir():
            print(f"no archive at {ARCHIVE / allowed}; skipped")
            continue
        lines += report(allowed, score_held_out(allowed, args.held_out, args.min_held))
    emit("\n".join(lines), "study_heldout")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
