"""Past one machine, measured on this one: a study on Ray against the plain `izkit compare`, and the served
generator's footprint (issue 27).

1. The same quick `izkit compare` (default model, `--quick`) three ways, each with a fresh answer cache: plain with
   two torch threads (the default), plain with one, and `--ray` on a local Ray (two one-CPU workers on two cores).
   Prints each wall time, pairs per hour against the plain two-thread run, and whether the Ray records' evaluations
   (method, instruction, dev mean) are those of the plain one-thread run, line for line (bfloat16 rounding may differ
   with the thread count, so the one-thread run is the one to match).
2. What a served generator leaves in this process: peak resident memory and seconds of
   `izkit.models.load_input_embeddings` (the tokenizer and embedding table alone) against `load_causal_lm` (the whole
   model), each in a fresh process.

    python -m bench.speed.bench_fanout                      # sum,antonyms x seed 0: about 15 minutes on two cores
    python -m bench.speed.bench_fanout --tasks sum --seeds 0,1

Prints Markdown and writes it to bench/out/bench_fanout.md. Needs `pip install ray`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common.paths import ROOT
from bench.common.report import emit
LOAD = """
import resource, sys, time
t = time.perf_counter()
from izkit.models import load_causal_lm, load_input_embeddings
model, _ = (load_input_embeddings() if sys.argv[1] == "table" else load_causal_lm(device="cpu"))
n = sum(p.numel() for p in model.parameters())
print(f"{time.perf_counter() - t:.1f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} {n / 1e6:.1f}")
"""


def compare(args: argparse.Namespace, out: Path, threads: int | None, ray: bool) -> float:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "izkit.cli", "compare", "--tasks", args.tasks, "--seeds", args.seeds, "--quick",
           "--out", str(out), "--cache", str(out) + ".sqlite", *(["--ray"] if ray else [])]
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def evals(folder: Path) -> dict[str, list[tuple]]:
    return {rec.parent.name: [(e["method"], e["instruction"], round(e["mean"], 6))
                              for e in map(json.loads, rec.read_text().splitlines()) if e["kind"] == "eval"]
            for rec in sorted(folder.glob("*/record.jsonl"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default="sum,antonyms")
    ap.add_argument("--seeds", default="0")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_fanout_"))
    try:
        n_pairs = len(args.tasks.split(",")) * len(args.seeds.split(","))
        runs = [("plain, 2 threads", None, False), ("plain, 1 thread", 1, False), ("Ray, 2 one-CPU workers", None, True)]
        secs = {name: compare(args, work / f"run{k}", threads, ray) for k, (name, threads, ray) in enumerate(runs)}
        same = evals(work / "run1") == evals(work / "run2")
        lines = [f"`izkit compare --tasks {args.tasks} --seeds {args.seeds} --quick`, {n_pairs} pairs, default model, "
                 f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end", "",
                 "| how | wall s | pairs per hour | vs plain 2 threads |", "|---|---|---|---|"]
        base = secs["plain, 2 threads"]
        for name, s in secs.items():
            lines.append(f"| {name} | {s:.0f} | {3600 * n_pairs / s:.1f} | {base / s:.2f}x |")
        lines += ["", f"Ray's evaluations (method, instruction, dev mean) are the plain one-thread run's: **{same}**", ""]
        lines += ["| load, fresh process | seconds | peak resident MiB | parameters (M) |", "|---|---|---|---|"]
        for kind, label in (("table", "tokenizer + embedding table (load_input_embeddings)"),
                            ("whole", "whole model (load_causal_lm)")):
            got = subprocess.run([sys.executable, "-c", LOAD, kind], cwd=ROOT, check=True, capture_output=True,
                                 text=True).stdout.split()
            lines.append(f"| {label} | {got[0]} | {got[1]} | {got[2]} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit("\n".join(lines), "bench_fanout")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
