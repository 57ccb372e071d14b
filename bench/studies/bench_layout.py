"""Where the soft tokens sit: the paper's ``[BOS ; p ; demos ; cue]`` against after the demos and just before the
cue (izkit.generator.LAYOUTS), measured on the induce split only (its spare examples; never the test split).

For each task and layout: 100 soft prompts (the paper's initial design: scrambled Sobol points in [-1, 1]^10, the
run's projection A), the instructions they write, and how good the best of them can be (the ceiling):

- seconds per candidate (the generator's default batch; the layouts after the demos prefill them once per pass);
- distinct instructions, and how many of the 100 are the cleaner's placeholder (a loop or nothing);
- on topic: distinct instructions whose accuracy on the screening examples is at least half the hand-written
  instruction's (and above zero);
- the ceiling: every distinct instruction scored on ``--screen`` spare induce examples, the best ``--top`` of them
  re-scored on ``--confirm`` further spare examples; the best of those on the confirmation examples (picked and
  judged on examples the screening never saw). The hand-written instruction is scored on the same examples.

    python -m bench.studies.bench_layout                       # 6 tasks x 3 layouts, about 30 minutes on two cores
    python -m bench.studies.bench_layout --tasks antonyms,sum --n-z 25
    python -m bench.studies.bench_layout --projection normal --layouts after-demos,before-cue

Prints Markdown and writes it to bench/out/bench_layout.md. Uses the default answer cache.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP runtime (bench/README.md)

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from izkit.blackbox import LocalBlackBox  # noqa: E402
from izkit.cleaner import EMPTY_PLACEHOLDER  # noqa: E402
from izkit.generator import LAYOUTS, RandomProjection, SoftPromptGenerator  # noqa: E402
from izkit.models import load_causal_lm  # noqa: E402
from izkit.strategies import sobol_design  # noqa: E402
from izkit.tasks import load_task  # noqa: E402
from bench.common.report import emit  # noqa: E402

TASKS = "antonyms,larger_animal,sum,first_word_letter,negation,diff"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--layouts", default=",".join(LAYOUTS))
    ap.add_argument("--n-z", type=int, default=100, help="Sobol soft prompts per task and layout")
    ap.add_argument("--screen", type=int, default=20, help="spare induce examples every distinct instruction sees")
    ap.add_argument("--top", type=int, default=3, help="instructions re-scored on the confirmation examples")
    ap.add_argument("--confirm", type=int, default=50, help="further spare induce examples for the top ones")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--projection", choices=("uniform", "normal"), default="uniform",
                    help="A's entries: uniform (the paper's, the default) or normal, scaled to the embeddings' spread")
    args = ap.parse_args()
    layouts = args.layouts.split(",")

    model, tok = load_causal_lm(device="cpu")
    blackbox = LocalBlackBox(model, tok, objective="accuracy")
    proj = RandomProjection.for_model(model, kind=args.projection, seed=args.seed)  # a run's A, as the pipeline
    z = sobol_design(args.n_z, 10, args.seed)  # (n, 10): the paper's initial design
    rows, picks, ceilings = [], [], {layout: [] for layout in layouts}
    t_start = time.perf_counter()
    for name in args.tasks.split(","):
        task = load_task(name)
        exemplars = task.splits(5, 20, 100, args.seed).exemplars
        spare = task.spare_induce(5, 20, args.seed)
        screen, confirm = spare[: args.screen], spare[args.screen : args.screen + args.confirm]
        ref = task.reference_instruction
        ref_screen = ref_confirm = float("nan")
        if ref:
            ref_screen = float(blackbox.score([ref], screen, task.metric).means[0])
            ref_confirm = float(blackbox.score([ref], confirm, task.metric).means[0]) if confirm else float("nan")
        for layout in layouts:
            gen = SoftPromptGenerator(model, tok, proj, layout=layout)
            t = time.perf_counter()
            out = gen.generate(z, exemplars, progress=False)
            per = (time.perf_counter() - t) / len(out)
            distinct = list(dict.fromkeys(v for v in out if v != EMPTY_PLACEHOLDER))
            placeholders = sum(v == EMPTY_PLACEHOLDER for v in out)
            sc = blackbox.score(distinct, screen, task.metric).means if distinct else np.zeros(0)  # (I,)
            floor = max(0.5 * ref_screen, 1e-9) if ref else 1e-9
            on_topic = int((sc >= floor).sum())
            top = [distinct[i] for i in np.argsort(-sc, kind="stable")[: args.top]]
            conf = blackbox.score(top, confirm, task.metric).means if top and confirm else np.zeros(0)
            best = int(np.argmax(conf)) if len(conf) else -1
            ceiling = float(conf[best]) if best >= 0 else float("nan")
            ceilings[layout].append(ceiling)
            rows.append([name, layout, f"{per:.3f}", str(len(distinct)), str(placeholders), str(on_topic),
                         f"{sc.max() if len(sc) else float('nan'):.3f}", f"{ceiling:.3f}", f"{ref_confirm:.3f}"])
            picks.append(f"- {name} / {layout}: \"{top[best] if best >= 0 else '-'}\" ({ceiling:.3f} on "
                         f"{len(confirm)} confirmation examples)")
            print(" | ".join(rows[-1]), flush=True)
    means = ", ".join(f"{layout} {np.nanmean(ceilings[layout]):.3f}" for layout in layouts)
    text = "\n".join([
        f"## Layouts: {args.n_z} Sobol soft prompts per task, seed {args.seed}, {args.projection} projection, "
        "default model, accuracy",
        "",
        table(["task", "layout", "s / candidate", "distinct", "placeholders", "on topic", "best on screen",
               f"ceiling ({args.top} best re-scored on {args.confirm})", "hand-written (same examples)"], rows),
        "",
        f"Mean ceiling over tasks: {means}.",
        "",
        "The ceiling's instruction per task and layout:",
        *picks,
        "",
        f"Screening on {args.screen} spare induce examples, confirmation on the next {args.confirm}; total "
        f"{(time.perf_counter() - t_start) / 60:.1f} min.",
    ])
    emit(text, "bench_layout")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
