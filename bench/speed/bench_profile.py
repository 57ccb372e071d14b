"""Where a run's minutes went, by method and step, read from its record (no model is loaded).

    python -m bench.speed.bench_profile runs/larger_animal                  # one run: each method, and each / paper
    python -m bench.speed.bench_profile runs/before runs/after --label before,after

Each row: proposing (GP fit, acquisition and generation: the proposal lines' seconds, with how many candidates were
drawn for how many new instructions), the search's answers (eval lines), halving's answers (confirm lines) and the test
split, in minutes of recorded work (model loading is not recorded work), and the method's minutes over the paper
allocation's row where the run has one (`--baselines paper`): issue 47's ratio, measured in one run.
"""

from __future__ import annotations

import argparse

from izkit.methods import PAPER, label
from izkit.replay import replay

from bench.common.report import emit

STEPS = (("proposing", ("proposal",)), ("search answers", ("eval",)), ("halving answers", ("confirm",)),
         ("test", ("test", "test_curve")))


def draws(rec, method: str) -> tuple[int, int]:
    """(candidates drawn, new instructions) over a method's proposal lines in a record."""
    props = list(rec.of_kind("proposal", method=method))
    return sum(p.get("drawn", 0) for p in props), sum(p.get("new", 0) for p in props)


def profile(path: str, name: str) -> list[str]:
    rec = replay(path).record
    methods = list(dict.fromkeys(e["method"] for e in rec.of_kind("eval")))
    paper = rec.work_seconds(PAPER) if PAPER in methods else None
    rows = []
    for m in methods:
        minutes = [sum(e.get("seconds", 0.0) for k in kinds for e in rec.of_kind(k, method=m)) / 60
                   for _, kinds in STEPS]
        rounds, (drawn, new) = sum(1 for _ in rec.of_kind("proposal", method=m)), draws(rec, m)
        per_new = f"{drawn / new:.2f}" if new else "-"
        ratio = f"{rec.work_seconds(m) / paper:.2f}x" if paper else "-"
        rows.append(f"| {name} | {label(m)} | {rounds} | {drawn} | {new} | {per_new} | "
                    + " | ".join(f"{v:.2f}" for v in minutes)
                    + f" | {rec.answers(m):,} | **{rec.work_seconds(m) / 60:.2f}** | {ratio} |")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders or record files")
    ap.add_argument("--label", default=None, help="comma-separated names for the runs (default: their folders)")
    args = ap.parse_args()
    names = args.label.split(",") if args.label else args.runs
    if len(names) != len(args.runs):
        ap.error(f"--label names {len(names)} runs, {len(args.runs)} given")
    lines = ["| run | method | rounds | drawn | new | drawn per new | "
             + " | ".join(f"{s} (min)" for s, _ in STEPS) + " | answers | minutes | / paper |",
             "|---|---|---|---|---|---|" + "---|" * len(STEPS) + "---|---|---|"]
    for path, name in zip(args.runs, names):
        lines += profile(path, name)
    emit("\n".join(lines), "bench_profile")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
