"""The embedded models side by side: one-time conversion from the packaged GGUF parts vs loading the cached safetensors,
size on disk, and peak memory with each model loaded and with both.

    python -m bench.speed.bench_model_load                 # both models: 5 cached loads each, one conversion each
    python -m bench.speed.bench_model_load --no-convert    # cached loads and memory only
    python -m bench.speed.bench_model_load --models qwen2.5-coder-0.5b-instruct

Every measurement runs in a fresh child process (so the imports, the page cache aside, and the peak RSS are its own):
a cached load is what a new process does, verify the cache's sha256 sums and then ``from_pretrained``; memory is read
after one forward pass, so the weights have been touched. A conversion writes into a temporary cache, never the user's.

Target (issue 2): a cached load under 5 s on a 2-core machine (median of 5).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from izkit import conversion, models

from bench.common.paths import ROOT
from bench.common.report import emit


def _rss_mb() -> float:
    """Resident memory now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def child_convert(name: str) -> dict:
    """One conversion into a temporary cache: seconds and the process's peak memory."""
    spec = models.embedded_model(name)
    with tempfile.TemporaryDirectory(dir=models.cache_dir()) as tmp:
        start = time.perf_counter()
        conversion.convert(spec, Path(tmp) / spec.name)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": _peak_mb()}


def child_loads(name: str, repeats: int) -> dict:
    """``repeats`` cached loads as a new process does them: the sha256 check of the cache, then from_pretrained."""
    verify, load = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        models.embedded_model_dir(name, recheck=True)  # the manifest's sums checked again, as a new process does
        verify.append(time.perf_counter() - start)
        start = time.perf_counter()
        models.load_causal_lm(name, device="cpu", cache=False)
        load.append(time.perf_counter() - start)  # embedded_model_dir is memoised now: from_pretrained alone
    return {"verify": verify, "from_pretrained": load, "total": [v + f for v, f in zip(verify, load)]}


def child_memory(names: list[str]) -> dict:
    """Resident and peak memory with ``names`` loaded together, each after one forward pass."""
    base = _rss_mb()
    held = []
    for name in names:
        model, tok = models.load_causal_lm(name, device="cpu")
        with torch.inference_mode():
            model(**tok("Instruction: find the opposite of a given word.\n\nInput: hot\n\nOutput:", return_tensors="pt"))
        held.append(model)
    return {"baseline_mb": base, "rss_mb": _rss_mb(), "peak_mb": _peak_mb()}


def run_child(*args: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    out = subprocess.run([sys.executable, "-m", __spec__.name, "--child", *args], capture_output=True, text=True,
                         env=env, cwd=ROOT)
    if out.returncode:
        sys.exit(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def disk_mb(name: str) -> float:
    folder = models.embedded_model_dir(name)
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(models.EMBEDDED_MODELS), choices=models.EMBEDDED_MODELS)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-convert", action="store_true", help="skip the one conversion per model (about 1 min each)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        result = {"convert": lambda: child_convert(rest[0]), "loads": lambda: child_loads(rest[0], int(rest[1])),
                  "memory": lambda: child_memory(rest)}[kind]()
        print(json.dumps(result))
        return

    models.prepare_all()  # the caches exist before anything is timed
    names = args.models
    cols = {n: {} for n in names}
    for n in names:
        spec = models.EMBEDDED[n]
        c = cols[n]
        c["GGUF parts (packages)"] = f"{len(spec.parts)} ({spec.parts[0].package.rsplit('-part', 1)[0]}-part*)"
        c["GGUF file, MB"] = f"{spec.size / 1e6:.1f}"
        c["converted cache on disk, MB"] = f"{disk_mb(n):.0f}"
        loads = run_child("loads", n, str(args.repeats))
        c[f"cached load, median of {args.repeats}, s"] = f"{statistics.median(loads['total']):.2f}"
        c["  of which sha256 check of the cache, s"] = f"{statistics.median(loads['verify']):.2f}"
        c["  of which from_pretrained, s"] = f"{statistics.median(loads['from_pretrained']):.2f}"
        c["cached load, min / max, s"] = f"{min(loads['total']):.2f} / {max(loads['total']):.2f}"
        mem = run_child("memory", n)
        c["RSS with the model loaded (after a forward), MB"] = f"{mem['rss_mb']:.0f}"
        c["peak RSS of that process, MB"] = f"{mem['peak_mb']:.0f}"
        if not args.no_convert:
            conv = run_child("convert", n)
            c["first-time conversion (check parts + de-quantise + save), s"] = f"{conv['seconds']:.1f}"
            c["peak RSS during conversion, MB"] = f"{conv['peak_mb']:.0f}"
            c["ratio conversion / cached load"] = f"{conv['seconds'] / statistics.median(loads['total']):.1f}x"
    both = run_child("memory", *names) if len(names) > 1 else None

    rows = list(dict.fromkeys(k for c in cols.values() for k in c))
    lines = [f"embedded models, torch {torch.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')}, "
             f"{os.cpu_count()} CPUs, cache in {models.cache_dir()}", "",
             "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {r} | " + " | ".join(cols[n].get(r, "") for n in names) + " |" for r in rows]
    if both:
        lines.append(f"\nall of {', '.join(names)} loaded in one process: RSS {both['rss_mb']:.0f} MB, "
                     f"peak {both['peak_mb']:.0f} MB")
    medians = {n: float(cols[n][f"cached load, median of {args.repeats}, s"]) for n in names}
    lines.append("\ntarget: cached load median < 5 s -> " +
                 ", ".join(f"{n} {'met' if v < 5 else 'MISSED'}" for n, v in medians.items()))
    emit("\n".join(lines), "model_load")


if __name__ == "__main__":
    main()
