"""Benchmark InstructZero steps 1-2: soft prompts -> instructions with the embedded default model (or $IZKIT_MODEL).

1. Speed: 25 soft prompts -> 25 instructions in one batched decoding pass vs 25 single calls (target >= 4x), measured
   side by side in one run, with a check that both give the same instructions (greedy).
2. Search space: how many distinct instructions 100 soft prompts (scrambled Sobol points in [-1, 1]^10, the paper's
   initial design) give on three tasks, for both projection kinds (uniform entries, as in the paper; normal entries
   scaled to the embedding's spread). Bayesian optimisation can only search among instructions that differ.
3. Layouts: seconds per candidate for 64 Sobol soft prompts in passes of 32 (a BO round draws 50: 25 slots, 2 each)
   and of 64, for each layout of izkit.generator.LAYOUTS, against the soft-first layout as it was before greedy rows
   stopped at a settled loop (the "before" row), and the soft-first layout with one new token (its prefill alone: the
   part of a candidate's cost no decoding change removes), each configuration timed ``--repeats`` times
   interleaved, the fastest kept (the machine is shared). ``--profile`` adds torch.profiler's top operators for one
   pass of 64 in the layout after the demos.

    python -m bench.speed.bench_generation            # full run (a few minutes on two cores)
    python -m bench.speed.bench_generation --quick    # 25 soft prompts per task for part 2
    python -m bench.speed.bench_generation --layouts-only --profile

The machine is shared: busy-waiting OpenMP threads stall whenever a sibling thread is descheduled (small ops ran
5-20x slower in our runs), so this script sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is already set.

Prints markdown tables and writes them to bench/out/bench_generation.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP runtime

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

import torch  # noqa: E402

import izkit.generator as generator_module  # noqa: E402
from izkit.cleaner import instruction_complete  # noqa: E402
from izkit.generator import LAYOUTS, RandomProjection, SoftPromptGenerator  # noqa: E402
from izkit.models import load_causal_lm  # noqa: E402
from izkit.tasks import Example  # noqa: E402
from bench.common.report import emit  # noqa: E402

TASKS = ("antonyms", "larger_animal", "sum")
FALLBACK = {  # hand-written demos, used only where the task files are missing
    "antonyms": [("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"), ("happy", "sad")],
    "larger_animal": [("cat, horse", "horse"), ("ant, dog", "dog"), ("whale, fox", "whale"), ("mouse, lion", "lion"),
                      ("bee, cow", "cow")],
    "sum": [("12 30", "42"), ("5 7", "12"), ("41 9", "50"), ("23 23", "46"), ("8 61", "69")],
}


def exemplars(task: str) -> tuple[list[Example], str]:
    try:
        from izkit.tasks import load_task

        return list(load_task(task).splits(kappa=5).exemplars), "data/"
    except Exception:  # noqa: BLE001 - a missing or malformed task file: fall back to the hand-written demos
        return [Example(x, (y,)) for x, y in FALLBACK[task]], "hand-written"


def sobol(n: int, d: int = 10, seed: int = 0) -> torch.Tensor:
    engine = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed)
    return engine.draw(n).double() * 2 - 1  # (n, d) in [-1, 1]


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def layouts_part(model, tok, demos, repeats: int, profile: bool, max_new_tokens: int) -> str:
    """Part 3: seconds per candidate for each layout and pass size, and the soft-first layout before loops stopped."""
    proj = RandomProjection.for_model(model, kind="uniform", seed=0)
    z = sobol(64)  # (64, 10)
    configs = ([("soft-first", 32, False, max_new_tokens)]
               + [(layout, size, True, max_new_tokens) for layout in LAYOUTS for size in (32, 64)]
               + [("soft-first", 64, True, 1)])  # the prefill alone (and one step): what no decoding trick removes
    best: dict[tuple, float] = {}
    outputs: dict[tuple, list[str]] = {}
    for _ in range(repeats):
        for layout, size, loops, steps in configs:
            gen = SoftPromptGenerator(model, tok, proj, max_new_tokens=steps, batch_size=size, layout=layout)
            gen.generate(z[:2], demos)  # warm-up, and the demos' cache for the layouts that share it
            if not loops:  # the "before" row: only a sentence end, a line break or an echo ends a greedy row
                generator_module.instruction_complete = lambda raw, lead, loops=False: instruction_complete(raw, lead)
            try:
                t = time.perf_counter()
                outputs[(layout, size, loops, steps)] = gen.generate(z, demos, progress=False)
                dt = (time.perf_counter() - t) / len(z)
            finally:
                generator_module.instruction_complete = instruction_complete
            best[(layout, size, loops, steps)] = min(best.get((layout, size, loops, steps), float("inf")), dt)
    before = best[configs[0]]
    rows = []
    for key in configs:
        layout, size, loops, steps = key
        out = outputs[key]
        name = (f"{layout}{'' if loops else ' (before: loops run on)'}"
                + (f" (prefill only: {steps} token)" if steps < max_new_tokens else ""))
        rows.append([name, str(size), f"{best[key] * 1000:.0f}", f"{before / best[key]:.2f}x",
                     str(len(set(out))) if steps == max_new_tokens else "-",
                     str(sum(v == "(no instruction generated)" for v in out)) if steps == max_new_tokens else "-"])
    same = outputs[configs[0]] == outputs[("soft-first", 32, True, max_new_tokens)]
    text = table(["layout", "pass", "ms / candidate", "speed-up vs before", "distinct of 64", "placeholders"], rows)
    text += (f"\n\nStopping greedy rows at a settled loop left the soft-first layout's 64 instructions "
             f"{'unchanged' if same else 'CHANGED'}. Fastest of {repeats} interleaved timings each.")
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        gen = SoftPromptGenerator(model, tok, proj, max_new_tokens=max_new_tokens, batch_size=64, layout=LAYOUTS[1])
        gen.generate(z[:2], demos)
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            gen.generate(z, demos, progress=False)
        top = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8)
        text += f"\n\ntorch.profiler, one pass of 64 in the {LAYOUTS[1]} layout:\n\n```\n{top}\n```"
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="25 soft prompts per task in part 2 instead of 100")
    ap.add_argument("--n-z", type=int, default=None, help="soft prompts per task in part 2 (default 100)")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--layouts-only", action="store_true", help="only part 3 (the layouts' speed)")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved timings of each layout (part 3)")
    ap.add_argument("--profile", action="store_true", help="torch.profiler's top operators in part 3")
    args = ap.parse_args()
    n_z = args.n_z or (25 if args.quick else 100)
    logging.basicConfig(level=logging.WARNING)
    t_start = time.perf_counter()

    model, tok = load_causal_lm(device="cpu")
    demos, source = exemplars("antonyms")
    head = (f"# bench_generation\n\nModel: {model.izkit_info.name} ({model.izkit_info.dtype}, "
            f"{model.izkit_info.device}), torch threads: {torch.get_num_threads()}, max_new_tokens: "
            f"{args.max_new_tokens}. Demos: antonyms ({source}).")
    layouts = layouts_part(model, tok, demos, args.repeats, args.profile, args.max_new_tokens)
    if args.layouts_only:
        emit(f"{head}\n\n## Layouts: 64 soft prompts, ms per candidate\n\n{layouts}\n", "bench_generation_layouts")
        return 0
    proj = RandomProjection.for_model(model, kind="uniform", seed=0)
    gen = SoftPromptGenerator(model, tok, proj, max_new_tokens=args.max_new_tokens, batch_size=100)
    z = sobol(25)  # (25, 10)
    gen.generate(z[:2], demos)  # warm-up (allocator, kernels)

    t = time.perf_counter()
    batched = gen.generate(z, demos)
    t_batched = time.perf_counter() - t
    t = time.perf_counter()
    single = [gen.generate(z[i], demos)[0] for i in range(len(z))]
    t_single = time.perf_counter() - t
    same = sum(a == b for a, b in zip(batched, single))
    speed = table(
        ["method", "model calls", "seconds", "instructions/s", "speed-up"],
        [
            ["25 single calls", "25", f"{t_single:.2f}", f"{25 / t_single:.2f}", "1.00x"],
            ["one batched call", "1", f"{t_batched:.2f}", f"{25 / t_batched:.2f}", f"{t_single / t_batched:.2f}x"],
        ],
    )
    speed += f"\n\nSame instructions batched and one at a time: {same}/25 (greedy). Demos: antonyms ({source})."

    rows = []
    examples_out = []
    for task in TASKS:
        demos_t, src = exemplars(task)
        for kind in ("uniform", "normal"):
            p = RandomProjection.for_model(model, kind=kind, seed=0)
            g = SoftPromptGenerator(model, tok, p, max_new_tokens=args.max_new_tokens, batch_size=100)
            t = time.perf_counter()
            out = g.generate(sobol(n_z), demos_t, progress=False)
            dt = time.perf_counter() - t
            counts = Counter(out)
            top, top_n = counts.most_common(1)[0]
            rows.append([task, kind, f"{p.scale:.3g}" if kind == "normal" else "U[-1,1]", str(n_z), str(len(counts)),
                         f"{top_n}", f"{dt:.1f}", src])
            examples_out.append(f"- {task} / {kind}: most common ({top_n}x) \"{top}\"")
    distinct = table(
        ["task", "projection", "A entries", "soft prompts", "distinct instructions", "most common (count)", "seconds",
         "demos"],
        rows,
    )

    total = time.perf_counter() - t_start
    text = (
        f"{head} Total runtime {total:.0f} s.\n\n## 25 soft prompts -> 25 instructions\n\n{speed}\n\n"
        f"## Distinct instructions from {n_z} Sobol soft prompts\n\n{distinct}\n\n" + "\n".join(examples_out)
        + f"\n\n## Layouts: 64 soft prompts, ms per candidate\n\n{layouts}\n"
    )
    emit(text, "bench_generation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
