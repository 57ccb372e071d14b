"""Benchmark the OpenAI-compatible black box: OpenAIBlackBox against a local `transformers serve` (InstructZero step 3).

Starts ``transformers serve --continuous-batching`` for the embedded Gemma 3 270M on a free loopback port, then scores
instructions x dev examples through ``/v1/completions`` with 1 request in flight vs 16 (target >= 3x), and through
``/v1/chat/completions`` with 16, side by side in one run. Each row scores different instructions, so nothing is
answered from a cache (the answer cache is off).

    python -m bench.speed.bench_openai [--quick]

The machine is shared: busy-waiting OpenMP threads stall whenever a sibling thread is descheduled, so this script sets
``OMP_WAIT_POLICY=PASSIVE`` (unless already set) for itself and the server it starts.

Prints a markdown table and writes it to bench/out/bench_openai.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP runtime (also for the server)

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from izkit.blackbox import OpenAIBlackBox  # noqa: E402
from izkit.serving.serve import LocalServer  # noqa: E402
from izkit.tasks import Example  # noqa: E402
from bench.common.report import emit  # noqa: E402

DEV = [Example(x, (y,)) for x, y in [("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"),
                                     ("happy", "sad"), ("good", "bad"), ("light", "dark"), ("open", "closed")]]
BASE = ["Write the antonym of the word.", "Give the opposite of the word.", "Write a word that means the opposite.",
        "Output the antonym."]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--instructions", type=int, default=4, help="instructions per row (x 8 dev examples)")
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="2 instructions per row")
    args = ap.parse_args()
    n_ins = 2 if args.quick else args.instructions
    logging.basicConfig(level=logging.WARNING)
    t_start = time.perf_counter()
    plan = [("completions", 1), ("completions", 16), ("chat", 16)]
    rows = []
    with LocalServer() as srv:
        t_ready = time.perf_counter() - t_start
        base_rate = None
        for run, (api, conc) in enumerate(plan):
            instructions = [f"{v} (set {run})" for v in (BASE * ((n_ins + 3) // 4))[:n_ins]]  # new questions each row
            box = OpenAIBlackBox(srv.model_id, base_url=srv.base_url, api=api, concurrency=conc,
                                 max_tokens=args.max_tokens, timeout=600.0, cache=None)
            t = time.perf_counter()
            res = box.score(instructions, DEV)
            dt = time.perf_counter() - t
            n = res.usage.requests
            rate = n / dt
            base_rate = base_rate or rate
            rows.append([api, str(conc), str(n), f"{dt:.2f}", f"{rate:.2f}", f"{rate / base_rate:.2f}x",
                         f"{res.usage.completion_tokens / dt:.1f}"])
    header = ["api", "concurrency", "requests", "seconds", "requests/s", "speed-up", "completion tokens/s"]
    table = "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
                      + ["| " + " | ".join(r) + " |" for r in rows])
    total = time.perf_counter() - t_start
    text = (
        f"# bench_openai\n\nOpenAIBlackBox -> transformers serve --continuous-batching (embedded gemma-3-270m, CPU, "
        f"loopback); {n_ins} instructions x {len(DEV)} examples per row, max_tokens {args.max_tokens}, temperature 0. "
        f"Server ready after {t_ready:.0f} s (start + warm-up); total runtime {total:.0f} s. Speed-up is requests/s "
        f"over concurrency 1. No `stop` is sent, so every answer runs to max_tokens and the client keeps its first "
        f"non-empty line.\n\n{table}\n"
    )
    emit(text, "bench_openai")
    return 0


if __name__ == "__main__":
    sys.exit(main())
