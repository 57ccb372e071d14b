"""The whole InstructZero loop at the paper's spend on the embedded model: batched + cached vs one answer per call.

    python bench/bench_loop.py --task antonyms              # both runs (the slow one takes a long time)
    python bench/bench_loop.py --task antonyms --budget 50  # a smaller spend (the answers of 50 instructions)
    python bench/bench_loop.py --skip-slow --paper          # the paper's allocation instead of izkit's default halving

Fast: instructions generated in batches, answers scored in batches, an answer cache (fresh for this run, so
duplicate instructions are scored once). Slow: one instruction per generate call, one answer per call, no cache.
Targets (issue 5): at least 5x between them, and under 6 minutes for the fast one at the paper's budget (150).
Both runs use the same seed, so they propose the same soft prompts; the script checks they end alike.
"""

from __future__ import annotations

import argparse
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

from _report import emit


def one_run(cfg: Config, out: Path, batched: bool) -> tuple[float, object]:
    pipeline = Pipeline.from_config(cfg)
    if batched:
        pipeline.blackbox.cache = AnswerCache(out / "answers.sqlite")  # fresh: no answers from earlier runs
    else:
        pipeline.blackbox.cache = None
        pipeline.blackbox.batch_size = 1
        pipeline.generator.batch_size = 1
    run = Run(cfg, out, progress=True, pipeline=pipeline)
    t = time.perf_counter()
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
    args = ap.parse_args()
    cfg = Config(args.task, seed=args.seed, baselines=(), device="cpu").with_budget(args.budget)
    cfg = cfg.as_paper() if args.paper else cfg
    with tempfile.TemporaryDirectory() as tmp:
        fast_s, fast = one_run(cfg, Path(tmp) / "fast", batched=True)
        rows = [("batched + cached", fast_s, fast)]
        if not args.skip_slow:
            slow_s, slow = one_run(cfg, Path(tmp) / "slow", batched=False)
            rows.append(("one answer per call, no cache", slow_s, slow))
    lines = [f"InstructZero loop, task {args.task}, {cfg.answer_budget} answers ({cfg.selection}), {cfg.budget} "
             f"candidates ({cfg.round_sizes}), {cfg.search_examples} dev examples each while searching, "
             f"seed {args.seed}, objective {fast.objective}, torch {torch.__version__}, {torch.get_num_threads()} threads",
             "", "| run | wall time (min) | kept on (mean) | kept instruction |", "|---|---|---|---|"]
    for name, s, r in rows:
        iz = r.methods["instructzero"]
        lines.append(f"| {name} | {s / 60:.2f} | {iz.best_dev:.3f} | {iz.best_instruction[:60]!r} |")
    if len(rows) == 2:
        lines.append(f"\nratio slow / fast: {rows[1][1] / rows[0][1]:.1f}x (target >= 5x)")
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
