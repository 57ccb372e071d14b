"""Many tasks x seeds, every method on each: one run folder per (task, seed), a Markdown table and a bar figure.

The same task, seed, dev split and exemplars for every method of a (task, seed) pair, so the rows compare like with
like (paper Table 1). ``compare`` is resumable: finished runs are read back, interrupted ones continued.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from izkit.config import METHOD_NAMES, METHODS, Config
from izkit.loop import RunResult, run
from izkit.records import RecordBusy

log = logging.getLogger(__name__)


def compare(cfg: Config, tasks: list[str], seeds: list[int], out: str | os.PathLike,
            progress: bool = True, poll_seconds: float = 10.0,
            on_finished: Callable[[RunResult], Any] | None = None) -> list[RunResult]:
    """Run every (task, seed) into ``out/<task>-seed<seed>/`` (finished ones are read back, interrupted ones resumed).

    Seed-major: every task once before any task twice, so a study stopped early still covers every task. A pair
    that another process is writing (a second ``izkit compare`` on the same folder, e.g. one per core with
    ``OMP_NUM_THREADS=1``) is skipped and read back once that process has finished it, polling every
    ``poll_seconds``: two such processes share out the pairs between them. :func:`izkit.studies.fanout.compare_on_ray`
    (``izkit compare --ray``) runs the same pairs as Ray tasks, on this machine or a cluster. ``on_finished`` is
    called with each pair's result as soon as it is finished or read back (``izkit compare --archive`` archives it).
    """
    out = Path(out)
    pairs = [(task, seed) for seed in seeds for task in tasks]
    results: dict[tuple[str, int], RunResult] = {}
    busy = []
    for task, seed in pairs:
        try:
            results[task, seed] = run_pair(cfg, task, seed, out, progress)
        except RecordBusy as err:
            log.warning("%s; coming back to it after the others", err)
            busy.append((task, seed))
            continue
        if on_finished is not None:
            on_finished(results[task, seed])
    for task, seed in busy:  # another `izkit compare` on the same folder is running it: wait, then read it back
        while (task, seed) not in results:
            try:
                results[task, seed] = run_pair(cfg, task, seed, out, progress)
            except RecordBusy:
                time.sleep(poll_seconds)
        if on_finished is not None:
            on_finished(results[task, seed])
    return [results[p] for p in pairs]


def pair_folder(out: Path, task: str, seed: int) -> Path:
    """Where one (task, seed) of a study goes: ``out/<task>-seed<seed>/`` (a task given as a path: its file stem)."""
    return out / f"{Path(task).stem}-seed{seed}"


def run_pair(cfg: Config, task: str, seed: int, out: Path, progress: bool) -> RunResult:
    """One (task, seed) into :func:`pair_folder`: started, resumed, or read back when finished (then no model is
    loaded), by the one rule of :func:`izkit.resume.plan_run` (a pair killed before its header starts anew)."""
    return run(dataclasses.replace(cfg, task=task, seed=seed), pair_folder(out, task, seed), resume=True,
               progress=progress)


def compare_table(results: list[RunResult], objective: str) -> str:
    """A Markdown table of test scores (mean +- sd over seeds) per task and method, for one objective."""
    methods = [m for m in METHODS if any(m in r.methods for r in results)]
    tasks = list(dict.fromkeys(r.config.task for r in results))
    opt = sorted({r.objective for r in results})
    lines = [f"Test {objective} (mean +- sd over seeds; BO optimised {', '.join(opt)} on dev)", "",
             "| task | " + " | ".join(METHOD_NAMES.get(m, m) for m in methods) + " | seeds | minutes of work |",
             "|---|" + "---|" * (len(methods) + 2)]
    per_method: dict[str, list[float]] = {m: [] for m in methods}
    for task in tasks:
        rs = [r for r in results if r.config.task == task]
        cells = []
        for m in methods:
            vals = [r.methods[m].test[objective] for r in rs if m in r.methods and objective in r.methods[m].test]
            per_method[m].append(float(np.mean(vals)) if vals else float("nan"))
            cells.append(mean_sd(vals))
        minutes = sum(r.work_seconds for r in rs) / 60
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {len(rs)} | {minutes:.1f} |")
    lines.append("| **average** | " + " | ".join(mean_sd([v for v in per_method[m] if np.isfinite(v)])
                                                for m in methods) + " | | |")
    distinct = [np.mean([r.methods[m].n_distinct for r in results if m in r.methods]) for m in methods]
    lines.append("| distinct instructions scored per run | " + " | ".join(f"{v:.1f}" for v in distinct) + " | | |")
    spent = [np.mean([r.methods[m].answers for r in results if m in r.methods]) for m in methods]
    lines.append("| black-box answers on dev-side examples per run | " + " | ".join(f"{v:.0f}" for v in spent)
                 + " | | |")
    return "\n".join(lines)


def mean_sd(vals: list[float]) -> str:
    """``mean +- sd`` (ddof 1) of the values, the value alone for one, ``-`` for none."""
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"  # one seed: no spread to show
    return f"{np.mean(vals):.3f} +- {float(np.std(vals, ddof=1)):.3f}"


def compare_figure(results: list[RunResult], objective: str) -> Any:
    """Bars of mean test score per task and method, with the spread over seeds (a matplotlib Figure)."""
    from matplotlib.figure import Figure

    methods = [m for m in METHODS if any(m in r.methods for r in results)]
    tasks = list(dict.fromkeys(r.config.task for r in results))
    fig = Figure(figsize=(max(6.0, 1.3 * len(tasks) * len(methods) / 3), 4.2))
    ax = fig.subplots()
    width = 0.8 / len(methods)
    for j, m in enumerate(methods):
        vals = [[r.methods[m].test.get(objective, np.nan) for r in results if r.config.task == t and m in r.methods]
                for t in tasks]
        ax.bar(np.arange(len(tasks)) + j * width, [np.nanmean(v) if v else np.nan for v in vals], width,
               yerr=[np.nanstd(v) if len(v) > 1 else 0 for v in vals], label=METHOD_NAMES.get(m, m), capsize=2)
    ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks, rotation=20, ha="right")
    ax.set_ylabel(f"test {objective}")
    ax.legend(frameon=False, ncols=min(len(methods), 3))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
