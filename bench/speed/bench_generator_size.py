"""What a larger generator costs (issue 48, item 3): the default Qwen2.5-Coder-0.5B-Instruct against the optional
Qwen2.5-Coder-1.5B-Instruct, each in a process of its own so that its memory is its own: seconds to load the cached
conversion, resident memory once loaded and at the process's peak, and seconds per candidate for N Sobol soft prompts
in one decoding pass (a run's default generator settings: izkit.config.Config), with the distinct instructions they
give on a task's demos. The black box is not loaded: a run with the larger generator keeps the default black box.

    izkit prepare qwen2.5-coder-1.5b-instruct                    # once: installs its 22 parts (1.1 GB), converts it
    python -m bench.speed.bench_generator_size                   # both generators, 32 soft prompts on antonyms
    python -m bench.speed.bench_generator_size --n 8 --models qwen2.5-coder-1.5b-instruct

A whole run's minutes with the larger generator come from the run itself (its summary prints the minutes of work):

    izkit run --task antonyms --quick --generator qwen2.5-coder-1.5b-instruct \\
        --blackbox-model qwen2.5-coder-0.5b-instruct --baselines none

Prints a Markdown table and writes it to bench/out/bench_generator_size.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

MODELS = ("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct")
MARK = "RESULT "  # the line a child prints its figures on


def rss_mib() -> float:
    """This process's resident memory now, MiB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(name: str, n: int, task: str) -> dict:
    """In this process: load ``name`` from the cache, then one pass of ``n`` soft prompts (after a warm-up of 2)."""
    import torch

    from izkit.config import Config
    from izkit.generator import RandomProjection, SoftPromptGenerator
    from izkit.models import embedded_model_dir, load_causal_lm
    from izkit.tasks import load_task

    embedded_model_dir(name)  # converted before the clock starts (`izkit prepare NAME`)
    cfg = Config(task=task)
    start = time.perf_counter()
    model, tok = load_causal_lm(name, device="cpu")
    load_s = time.perf_counter() - start
    loaded = rss_mib()
    demos = list(load_task(task).splits(kappa=cfg.kappa, seed=cfg.seed).exemplars)
    proj = RandomProjection.for_model(model, d=cfg.d, n_tokens=cfg.n_tokens, kind=cfg.projection, seed=cfg.seed)
    gen = SoftPromptGenerator(model, tok, proj, chat=cfg.generator_prompt == "chat", layout=cfg.layout)
    z = torch.quasirandom.SobolEngine(cfg.d, scramble=True, seed=0).draw(n).double() * 2 - 1  # (n, d) in [-1, 1]
    gen.generate(z[:2], demos, progress=False)  # warm-up
    start = time.perf_counter()
    out = gen.generate(z, demos, progress=False)
    per = (time.perf_counter() - start) / n
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"model": name, "dtype": model.izkit_info.dtype, "params": sum(p.numel() for p in model.parameters()),
            "load_s": load_s, "loaded_mib": loaded, "peak_mib": peak, "s_per_candidate": per,
            "distinct": len(set(out)), "n": n, "examples": sorted(set(out))[:3], "threads": torch.get_num_threads()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), help=f"embedded generators (default {MODELS})")
    ap.add_argument("--n", type=int, default=32, help="soft prompts in the timed pass (default 32)")
    ap.add_argument("--task", default="antonyms", help="whose demos the generator reads (default antonyms)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # the child's job: one model, figures on stdout
    args = ap.parse_args()
    if args.one:
        print(MARK + json.dumps(measure(args.one, args.n, args.task)), flush=True)
        return 0

    rows = []
    for name in args.models:
        done = subprocess.run([sys.executable, "-m", "bench.speed.bench_generator_size", "--one", name,
                               "--n", str(args.n), "--task", args.task], capture_output=True, text=True)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith(MARK)]
        if done.returncode or not lines:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{name}: the measuring process failed (status {done.returncode})")
        r = json.loads(lines[-1][len(MARK):])
        rows.append(f"| {r['model']} | {r['params'] / 1e9:.2f}B | {r['dtype']} | {r['load_s']:.1f} | "
                    f"{r['loaded_mib']:,.0f} | {r['peak_mib']:,.0f} | {r['s_per_candidate']:.2f} | "
                    f"{r['distinct']} of {r['n']} | {r['threads']} |")
        print(f"{name}: e.g. {r['examples']}", file=sys.stderr)
    from bench.common.report import emit

    head = ("| generator | parameters | dtype | cached load (s) | resident once loaded (MiB) | peak (MiB) | "
            "s / candidate | distinct | torch threads |\n|---|---|---|---|---|---|---|---|---|\n")
    emit(head + "\n".join(rows) + f"\n\n{args.n} Sobol soft prompts on {args.task}'s demos in one pass, after a "
         "warm-up of 2; each generator in a process of its own; no black box loaded.", "bench_generator_size")
    return 0


if __name__ == "__main__":
    sys.exit(main())
