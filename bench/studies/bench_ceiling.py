"""What the generator can write (issue 48): per task, the ceiling of each generator x prompt x pool against the
hand-written instruction, on spare induce examples only (izkit.studies.ceiling; the test split is never read).

For every task, generator (``--generators``, embedded short names or any model izkit loads) and prompt
(``--prompts``: izkit.prompts' plain, chat, sentence): ``--n`` candidates from the pool (``soft``: Sobol soft prompts,
greedy; ``sampled``: APE's template, sampled), every distinct one scored on ``--pick-on`` spare examples, the best
judged on the next ``--judge-on``, beside the hand-written instruction on the same examples. The black box is the
default embedded model throughout, so the hand-written scores stay comparable across generators.

    python -m bench.studies.bench_ceiling                                   # 10 tasks, 0.5B, plain + sentence
    python -m bench.studies.bench_ceiling --generators qwen2.5-coder-0.5b-instruct,qwen2.5-coder-1.5b-instruct
    python -m bench.studies.bench_ceiling --tasks antonyms,synonyms --n 25 --pools soft
    python -m bench.studies.bench_ceiling --tabulate                        # the table of all that is archived

Prints Markdown (bench/out/bench_ceiling.md) and keeps every ceiling in ``--json`` (default
bench/data/ceiling.json, merged with what is there, so a later sitting adds generators), which notebook 9 reads.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP runtime (bench/README.md)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from bench.common.paths import DATA  # noqa: E402
from bench.common.report import emit  # noqa: E402
from izkit.config import Config  # noqa: E402
from izkit.models import DEFAULT_MODEL  # noqa: E402
from izkit.pipeline import Pipeline  # noqa: E402
from izkit.studies.ceiling import POOLS, Ceiling, ceiling  # noqa: E402
from izkit.tasks import load_task  # noqa: E402

TASKS = ("antonyms,larger_animal,sum,first_word_letter,negation,diff,synonyms,translation_en-fr,singular_to_plural,"
         "active_to_passive")  # the answers study's ten


def key(generator: str, prompt: str, pool: str, task: str, seed: int) -> str:
    return f"{generator}|{prompt}|{pool}|{task}|{seed}"


FIELDS = {f.name for f in dataclasses.fields(Ceiling)}


def row(name: str, generator: str, prompt: str, pool: str, c: Ceiling) -> list[str]:
    """One line of the table."""
    return [name, generator, prompt, pool, str(len(c.distinct)), f"{c.pick_mean:.3f}", f"{c.judged:.3f}",
            f"{c.reference_judged:.3f}", f"{c.gap:+.3f}", f"{c.seconds_per_candidate:.2f}",
            c.pick.replace("|", "/")[:70]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--generators", default=DEFAULT_MODEL)
    ap.add_argument("--prompts", default="plain,sentence")
    ap.add_argument("--pools", default=",".join(POOLS))
    ap.add_argument("--n", type=int, default=100, help="candidates per pool")
    ap.add_argument("--pick-on", type=int, default=20)
    ap.add_argument("--judge-on", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=str(DATA / "ceiling.json"))
    ap.add_argument("--tabulate", action="store_true", help="run nothing: print the table of every archived ceiling")
    args = ap.parse_args()
    store = json.loads(open(args.json).read()) if os.path.exists(args.json) else {}
    rows, t0 = [], time.perf_counter()
    if args.tabulate:
        for k, c in store.items():
            generator, prompt, pool, name, seed = k.split("|")
            c = Ceiling(**{f: v for f, v in c.items() if f in FIELDS})
            rows.append(row(name, generator, prompt, pool, c))
        args.n = ", ".join(sorted({str(c["drawn"]) for c in store.values()}))
    for generator in ([] if args.tabulate else args.generators.split(",")):
        for prompt in args.prompts.split(","):
            base = Config(args.tasks.split(",")[0], seed=args.seed, generator=generator, generator_prompt=prompt,
                          blackbox_model=DEFAULT_MODEL, device="cpu")
            pipe = Pipeline.from_config(base)  # loaded once; each task gets its own exemplars below
            for name in args.tasks.split(","):
                cfg = dataclasses.replace(base, task=name)
                task = load_task(name)
                exemplars = task.splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed).exemplars
                for pool in args.pools.split(","):
                    c = ceiling(cfg, pool, args.n, args.pick_on, args.judge_on,
                                dataclasses.replace(pipe, exemplars=exemplars, metric=task.metric))
                    store[key(generator, prompt, pool, name, args.seed)] = dataclasses.asdict(c)
                    with open(args.json, "w") as f:  # kept as each one finishes
                        json.dump(store, f, indent=1, sort_keys=True)
                    rows.append(row(name, generator, prompt, pool, c))
                    print(" | ".join(rows[-1]), flush=True)
    head = ["task", "generator", "prompt", "pool", "distinct", f"pick on {args.pick_on}", f"ceiling on {args.judge_on}",
            "hand-written (same)", "gap", "s / candidate", "the pick"]
    lines = [f"## The ceiling: {args.n} candidates a pool, seed {args.seed}, spare induce examples only", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]
    combos = sorted({(r[1], r[2], r[3]) for r in rows})
    lines += ["", "Mean over tasks (ceiling / gap to the hand-written instruction):"]
    for g, p, pool in combos:
        mine = [r for r in rows if (r[1], r[2], r[3]) == (g, p, pool)]
        lines.append(f"- {g}, {p}, {pool}: {np.mean([float(r[6]) for r in mine]):.3f} / "
                     f"{np.mean([float(r[8]) for r in mine]):+.3f} over {len(mine)} tasks")
    took = "read from" if args.tabulate else f"{(time.perf_counter() - t0) / 60:.1f} min; every ceiling kept in"
    lines += ["", f"{took} {args.json}."]
    rows.sort(key=lambda r: (r[1], r[2], r[3], TASKS.split(",").index(r[0]) if r[0] in TASKS.split(",") else 99))
    emit("\n".join(lines), "bench_ceiling")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
