"""The whole InstructZero loop at the paper's spend on the embedded model: batched + cached vs one answer per call.

    python -m bench.speed.bench_loop --task antonyms              # both runs (the slow one takes a long time)
    python -m bench.speed.bench_loop --task antonyms --budget 50  # a smaller spend (the answers of 50 instructions)
    python -m bench.speed.bench_loop --skip-slow --paper          # the paper's allocation, not izkit's default halving
    python -m bench.speed.bench_loop --skip-slow --before         # beside the fast run: the same as before 2026-12-06

Fast: instructions generated in batches, answers scored in batches, an answer cache (fresh for this run, so
duplicate instructions are scored once). Slow: one instruction per generate call, one answer per call, no cache.
Targets (issue 5): at least 5x between them, and under 6 minutes for the fast one at the paper's budget (150).
Both runs use the same seed, so they propose the same soft prompts; the table shows what each kept.
``--before`` adds a third run: batched + cached, with generator passes of 32 rows and the prediction's two kernel calls
(issue 25's changes undone), timed in the same process for the before/after ratio. Its proposals differ from the fast
run's after the first BO round (the acquisition's L-BFGS-B is chaotic in a gradient's last bits; bfloat16 rounding
depends on a pass's rows), so the two runs draw other candidates: compare minutes per candidate as well as minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import tempfile
import time
from pathlib import Path

import torch

from izkit.cache import AnswerCache
from izkit.config import Config
from izkit.loop import Run
from izkit.pipeline import Pipeline

from bench.common.before import BATCH_SIZE, two_call_prediction
from bench.common.report import emit


def one_run(cfg: Config, out: Path, batched: bool, before: bool = False) -> tuple[float, object]:
    pipeline = Pipeline.from_config(cfg)
    if before:
        pipeline.generator.batch_size = BATCH_SIZE
    if batched:
        pipeline.blackbox.cache = AnswerCache(out / "answers.sqlite")  # fresh: no answers from earlier runs
    else:
        pipeline.blackbox.cache = None
        pipeline.blackbox.batch_size = 1
        pipeline.generator.batch_size = 1
    run = Run(cfg, out, progress=True, pipeline=pipeline)
    t = time.perf_counter()
    with two_call_prediction() if before else contextlib.nullcontext():
        result = run.execute()
    wall = time.perf_counter() - t
    rec = run.record
    props = list(rec.of_kind("proposal"))
    result.breakdown = {  # where the time went, from the record
        "proposing (generation + GP + EI)": sum(p.get("seconds", 0.0) for p in props),
        "candidates generated": sum(p.get("drawn", len(p["instructions"])) for p in props),
        "scoring dev": sum(e.get("seconds", 0.0) for e in rec.of_kind("eval")),
        "scoring test": sum(e.get("seconds", 0.0) for e in rec.of_kind("test")),
    }
    return wall, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="antonyms")
    ap.add_argument("--budget", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-slow", action="store_true", help="only the fast run")
    ap.add_argument("--paper", action="store_true", help="the paper's allocation (Config.as_paper), not halving")
    ap.add_argument("--before", action="store_true", help="also the fast run as it was before 2026-12-06")
    args = ap.parse_args()
    cfg = Config(args.task, seed=args.seed, baselines=(), device="cpu").with_instructions(args.budget)
    cfg = cfg.as_paper() if args.paper else cfg
    with tempfile.TemporaryDirectory() as tmp:
        fast_s, fast = one_run(cfg, Path(tmp) / "fast", batched=True)
        rows = [("batched + cached", fast_s, fast)]
        if args.before:
            before_s, before = one_run(cfg, Path(tmp) / "before", batched=True, before=True)
            rows.append(("before 2026-12-06: passes of 32, two-call prediction", before_s, before))
        if not args.skip_slow:
            slow_s, slow = one_run(cfg, Path(tmp) / "slow", batched=False)
            rows.append(("one answer per call, no cache", slow_s, slow))
    lines = [f"InstructZero loop, task {args.task}, {cfg.answers} answers ({cfg.selection}), {cfg.candidates} "
             f"candidates ({cfg.round_sizes}), {cfg.search_examples} dev examples each while searching, "
             f"seed {args.seed}, objective {fast.objective}, torch {torch.__version__}, {torch.get_num_threads()} threads",
             "", "| run | wall time (min) | candidates generated | proposing (s) | s / candidate proposed | "
             "scoring dev (s) | kept on (mean) | kept instruction |", "|---|---|---|---|---|---|---|---|"]
    for name, s, r in rows:
        iz, b = r.methods["instructzero"], r.breakdown
        per = b["proposing (generation + GP + EI)"] / max(b["candidates generated"], 1)
        lines.append(f"| {name} | {s / 60:.2f} | {b['candidates generated']} | "
                     f"{b['proposing (generation + GP + EI)']:.0f} | {per:.3f} | {b['scoring dev']:.0f} | "
                     f"{iz.best_dev:.3f} | {iz.best_instruction[:60]!r} |")
    for name, s, _ in rows[1:]:
        slow = name.startswith("one answer")
        lines.append(f"\nratio {'slow' if slow else 'before'} / fast: {s / rows[0][1]:.2f}x"
                     + (" (target >= 5x)" if slow else ""))
    lines.append(f"fast run: {fast_s / 60:.2f} min (target < 6 min at budget 150); load average "
                 f"{os.getloadavg()[0]:.2f} at the end")
    lines.append("fast run's time from its record: " + ", ".join(
        f"{k} {v:.0f}" + ("" if k.startswith("candidates") else " s") for k, v in fast.breakdown.items()))
    info = getattr(Pipeline.from_config(cfg).blackbox.model, "izkit_info", None)  # memoised: no second load
    lines.append(f"model {info.name if info else '?'} in {info.dtype if info else '?'}, one copy in both roles; peak "
                 f"resident memory of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    text = "\n".join(lines)
    emit(text, "loop")


if __name__ == "__main__":
    main()
