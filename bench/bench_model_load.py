"""How long the embedded model takes to load: converting the GGUF file vs loading the cached safetensors.

    python bench/bench_model_load.py            # median of 5 cached loads, and one conversion for the ratio
    python bench/bench_model_load.py --no-convert

Target (issue 2): a cached load under 5 s on a 2-core machine (median of 5).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from izkit import models

from _report import emit


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-convert", action="store_true", help="skip the one conversion from GGUF (about 40 s)")
    args = ap.parse_args()

    folder = models.embedded_model_dir()  # make sure the cache exists before timing cached loads
    def fresh_load() -> None:  # as a new process would: verify the cache's sha256 sums, then load
        models._verified.clear()
        models.load_causal_lm(device="cpu", cache=False)

    loads = [timed(fresh_load) for _ in range(args.repeats)]
    rows = [("cached load (verify sha256 + from_pretrained), median", statistics.median(loads))]
    rows.append(("cached load, min / max", f"{min(loads):.2f} / {max(loads):.2f}"))
    if not args.no_convert:
        with tempfile.TemporaryDirectory() as tmp:
            convert = timed(lambda: models._convert_embedded(Path(tmp) / models.EMBEDDED_NAME))
        rows.append(("first-time conversion from GGUF (de-quantise + save)", convert))
        rows.append(("ratio conversion / cached load", f"{convert / statistics.median(loads):.1f}x"))
    lines = [f"model load, torch {torch.__version__}, {torch.get_num_threads()} threads, cache in {folder.parent}",
             "", "| what | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in rows]
    lines.append(f"\ntarget: cached load median < 5 s -> {'met' if rows[0][1] < 5 else 'MISSED'}")
    text = "\n".join(lines)
    emit(text, "model_load")


if __name__ == "__main__":
    main()
