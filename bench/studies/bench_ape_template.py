"""APE-style baseline: APE's own forward template against InstructZero's, on dev data only (issue 23, point 2).

The APE-style baseline samples instructions from the generator with no soft prompt. Until issue 23 it sampled them
from InstructZero's prompt (the demos, then "The instruction was to"); now it uses APE's forward-generation template
(Zhou et al., 2023: "I gave a friend an instruction and five inputs. ... Here are the input-output pairs: <demos> The
instruction was to"). For each task, seed 0, as a run builds its pipeline (``Pipeline.from_config(Config(task=...))``:
the default embedded model as generator and as local black box):

1. ``--n`` samples (default 25, one APE round) with each template, same sampling (temperature 0.9, top-p 0.95) and
   the same seed: :meth:`SoftPromptGenerator.generate_ape` and ``generate_plain(..., sampling)``;
2. the distinct instructions each template gives, and how many both give;
3. the dev accuracy (20 dev examples, the task metric) of every distinct instruction: best and mean per template.

The test split is never touched. Each distinct instruction is scored once (the two templates' shared ones too).

    OMP_NUM_THREADS=2 python -m bench.studies.bench_ape_template              # 4 tasks (about 7 min on two cores)
    python -m bench.studies.bench_ape_template --tasks antonyms sum --n 10    # fewer

Prints a Markdown table and writes bench/out/ape_template.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP runtime

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from bench.common.report import emit  # noqa: E402

from izkit.config import Config  # noqa: E402
from izkit.generator import Sampling  # noqa: E402
from izkit.pipeline import Pipeline  # noqa: E402
from izkit.tasks import load_task  # noqa: E402

TASKS = ("antonyms", "larger_animal", "sum", "first_word_letter")
TEMPLATES = ("APE", "InstructZero")  # APE's forward template; InstructZero's prompt with no soft prompt
SEED = 0


def sample(gen, exemplars, template: str, n: int, sampling: Sampling) -> list[str]:
    """n sampled instructions with one of the two templates (the APE-style baseline's draw)."""
    if template == "APE":
        return gen.generate_ape(exemplars, n=n, sampling=sampling)
    return gen.generate_plain(exemplars, n=n, sampling=sampling)


def measure(task_name: str, n: int, bar: tqdm) -> dict:
    """One task: samples with both templates, then every distinct instruction scored on dev once."""
    cfg = Config(task=task_name, seed=SEED)
    task = load_task(task_name)
    splits = task.splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed)  # only exemplars and dev are used below
    pipe = Pipeline.from_config(cfg, splits, task.metric, "accuracy")  # the model is loaded once per process
    sampling = Sampling(temperature=cfg.ape_temperature, seed=cfg.seed * 1000, num_per_call=n)  # APE round 0's draw
    info = pipe.ids["generator"]
    out: dict = {"task": task_name, "samples": {}, "seconds": {}, "model": f"{info['name']} ({info['dtype']}, "
                 f"{info['device']})"}
    for template in TEMPLATES:
        bar.set_postfix_str(f"{task_name}: sampling ({template})")
        t0 = time.perf_counter()
        out["samples"][template] = sample(pipe.generator, splits.exemplars, template, n, sampling)
        out["seconds"][f"sample {template}"] = time.perf_counter() - t0
        bar.update(1)
    union = list(dict.fromkeys(out["samples"]["APE"] + out["samples"]["InstructZero"]))
    bar.set_postfix_str(f"{task_name}: scoring {len(union)} instructions on dev")
    t0 = time.perf_counter()
    result = pipe.blackbox.score(union, splits.dev, metric=pipe.metric, objective="accuracy")
    out["seconds"]["score"] = time.perf_counter() - t0
    out["dev"] = dict(zip(union, (float(m) for m in result.means)))
    bar.update(1)
    return out


def report(results: list[dict], n: int) -> str:
    rows = ["| task | template | distinct of " + str(n) + " | shared | best dev acc | mean dev acc | best instruction |",
            "|---|---|---|---|---|---|---|"]
    best = {t: [] for t in TEMPLATES}
    mean = {t: [] for t in TEMPLATES}
    for r in results:
        distinct = {t: list(dict.fromkeys(r["samples"][t])) for t in TEMPLATES}
        shared = len(set(distinct["APE"]) & set(distinct["InstructZero"]))
        for t in TEMPLATES:
            accs = [r["dev"][v] for v in distinct[t]]
            top = max(distinct[t], key=lambda v: r["dev"][v])  # the first of the best, in sampling order
            best[t].append(max(accs))
            mean[t].append(float(np.mean(accs)))
            cell = " ".join(top.split()).replace("|", "\\|")
            cell = cell if len(cell) <= 70 else cell[:69] + "…"
            rows.append(f"| {r['task']} | {t} | {len(distinct[t])} | {shared} | {max(accs):.2f} | "
                        f"{np.mean(accs):.3f} | '{cell}' |")
    rows.append("| mean over tasks | APE | | | " + f"{np.mean(best['APE']):.3f} | {np.mean(mean['APE']):.3f} | |")
    rows.append("| mean over tasks | InstructZero | | | "
                + f"{np.mean(best['InstructZero']):.3f} | {np.mean(mean['InstructZero']):.3f} | |")
    wins = sum(a > b for a, b in zip(best["APE"], best["InstructZero"]))
    ties = sum(a == b for a, b in zip(best["APE"], best["InstructZero"]))
    seconds = sum(sum(r["seconds"].values()) for r in results)
    head = (f"APE-style samples, APE's forward template against InstructZero's prompt (no soft prompt): {n} samples "
            f"each, temperature 0.9, top-p 0.95, seed {SEED}; dev accuracy on 20 dev examples (the test split is "
            f"never used). Generator and black box: {results[0]['model']}, as a run loads them.")
    tail = (f"Best dev accuracy, APE's template against InstructZero's: higher on {wins}, equal on {ties}, lower on "
            f"{len(results) - wins - ties} of {len(results)} tasks. Sampling and scoring took {seconds / 60:.1f} min "
            f"(model loading excluded; load average {os.getloadavg()[0]:.1f} at the end).")
    return "\n".join([head, ""] + rows + ["", tail])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), help=f"tasks (default: {' '.join(TASKS)})")
    parser.add_argument("--n", type=int, default=25, help="samples per template and task (default 25)")
    args = parser.parse_args(argv)
    results = []
    with tqdm(total=3 * len(args.tasks), desc="APE templates", unit="step") as bar:
        for name in args.tasks:
            results.append(measure(name, args.n, bar))
    emit(report(results, args.n), "ape_template")
    return 0


if __name__ == "__main__":
    sys.exit(main())
