"""A study's report: the Markdown summary and the best-so-far figure of many (task, seed) runs.

    izkit summary runs/study          # summary.md and best_so_far.png; or summarise(Path("runs/study")) here
    izkit summary runs/study bench/data/study --archive bench/data/study   # with the archive of earlier sittings, kept

:func:`summarise` writes, section by section: each method's test score per task (mean +- sd over seeds), the distinct
instructions each scored and the recorded work, every run's scores and best instructions, the learning curves'
numbers, and the paired tests of InstructZero against every other method (``izkit.studies.study``: mean difference,
bootstrap interval, Wilcoxon p), on test and on the dev score each search optimised.

The learning curves are aggregated once, by :func:`method_curves`, for the table and for :func:`study_figure`: per
run, the best dev score after each distinct instruction scored (:func:`best_so_far`) and, for runs made with
``--test-curve``, the test score of each round's incumbent (:func:`test_curve`); cut to the length every run reached.
Only records are read; no model is loaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from izkit.studies.compare import mean_sd
from izkit.methods import HUMAN, METHOD, NAMES, RANDOM, TABLE, label
from izkit.records import RECORD_NAME
from izkit.replay import Replay
from izkit.strategies import is_search
from izkit.studies.study import (
    Paired,
    distinct_evaluations,
    finished_runs,
    method_kept_score,
    method_test_score,
    paired,
    repeated_soft_prompts,
    study_folders,
)

PAIRED_HEADER = ["| A - B, paired over (task, seed) | n | mean | 95% bootstrap CI | A better / tie / worse | Wilcoxon p |",
                 "|---|---|---|---|---|---|"]

# ----------------------------------------------------------------------------------------------------------------------
# Learning curves: one run's, then a method's over the study


def best_so_far(rep: Replay, method: str) -> np.ndarray:
    """The best dev score after each distinct instruction the method scored (n,), in the order it scored them."""
    firsts: dict[str, float] = {}
    for e in rep.evals(method):
        if e["mean"] is not None:
            firsts.setdefault(e["instruction"], e["mean"])
    return np.maximum.accumulate(np.array(list(firsts.values()), dtype=float)) if firsts else np.zeros(0)


def test_curve(rep: Replay, method: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``--test-curve`` points of a method: distinct instructions scored after each round (r,), and the test
    score of that round's incumbent (r,); empty when the run was made without ``--test-curve``."""
    pts = sorted(rep.record.of_kind("test_curve", method=method), key=lambda t: t["round"])
    return (np.array([t["n_distinct"] for t in pts], dtype=float),
            np.array([np.nan if t["mean"] is None else t["mean"] for t in pts], dtype=float))


@dataclass
class Curves:
    """A method's learning curves over a study's runs, each cut to the length every run reached."""

    dev: np.ndarray  # (runs, n): best dev score after 1..n distinct instructions; (0, 0) when no run scored any
    test_n: np.ndarray  # (k,): distinct instructions scored after each round (each run allowed as many: the same)
    test: np.ndarray  # (runs', k): the test score of each round's incumbent, runs made with --test-curve only

    def at_rounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The curves after each round both reach: counts (k',), mean best dev (k',), mean incumbent test (k',)."""
        counts = self.test_n.astype(int)
        counts = counts[counts <= self.dev.shape[1]]
        dev = np.take(self.dev, counts - 1, axis=1)  # (runs, k'), rows contiguous: sums as the report always did
        return counts, dev.mean(0), np.nanmean(self.test[:, : len(counts)], axis=0)


def method_curves(runs: list[Replay], method: str) -> Curves:
    """The curves of ``method`` over the runs that have it (:func:`best_so_far`, :func:`test_curve`)."""
    dev = [c for c in (best_so_far(r, method) for r in runs if method in r.methods()) if len(c)]
    pts = [p for p in (test_curve(r, method) for r in runs if method in r.methods()) if len(p[0])]
    n = min((len(c) for c in dev), default=0)
    k = min((len(p[0]) for p in pts), default=0)
    return Curves(np.stack([c[:n] for c in dev]) if dev else np.zeros((0, 0)),
                  np.mean([p[0][:k] for p in pts], axis=0) if pts else np.zeros(0),
                  np.stack([p[1][:k] for p in pts]) if pts else np.zeros((0, 0)))


def curve_table(runs: list[Replay], methods: list[str]) -> list[str]:
    """The study figure's numbers as Markdown lines: after each round (its distinct count), the mean over runs of
    the best dev score so far and, where recorded (``--test-curve``), of the incumbent's test score."""
    rows: dict[str, list[str]] = {}
    counts = np.zeros(0, dtype=int)
    for m in methods:
        cv = method_curves(runs, m)
        if not len(cv.dev) or not len(cv.test):
            continue
        counts, dev, test = cv.at_rounds()
        rows[label(m)] = [f"{d:.3f} / {t:.3f}" for d, t in zip(dev, test)]
    if not rows:
        return []
    return (["Best dev so far / test of the incumbent, mean over runs, after n distinct instructions", "",
             "| method | " + " | ".join(f"n = {c}" for c in counts) + " |", "|---|" + "---|" * len(counts)]
            + [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows.items()] + [""])


# ----------------------------------------------------------------------------------------------------------------------
# The Markdown report


def summarise(folders: str | Path | Sequence[str | Path], objective: str | None = None) -> str:
    """The Markdown report of a study (one folder, or several read as one: ``izkit.studies.study.finished_runs``): per-task
    test scores, distinct evaluations and work, per-run scores and instructions, curves, and paired tests."""
    runs = finished_runs(folders)
    folder = " + ".join(str(f) for f in study_folders(folders))
    if not runs:
        raise ValueError(f"{folder}: no finished run (no */{RECORD_NAME} with a done line)")
    objective = objective or runs[0].objective
    methods = [m for m in NAMES if any(m in r.methods() for r in runs)]
    lines = [f"{len(runs)} finished runs in {folder}; test {objective} of the instruction each method kept "
             f"(mean +- sd over seeds)", ""]
    lines += task_table(runs, methods, objective) + spend_lines(runs, methods)
    if HUMAN in methods:
        lines += reference_line(runs, objective)
    lines += run_table(runs, methods, objective)
    lines += curve_table(runs, [m for m in methods if is_search(m)])
    lines += best_instructions(runs, methods) + paired_tables(runs, methods, objective)
    return "\n".join(lines)


def task_of(rep: Replay) -> str:
    return Path(rep.config["task"]).stem


def task_table(runs: list[Replay], methods: list[str], objective: str) -> list[str]:
    """Per task: each method's test score, mean +- sd over the task's runs."""
    lines = ["| task | " + " | ".join(label(m) for m in methods) + " | seeds |",
             "|---|" + "---|" * (len(methods) + 1)]
    for task in dict.fromkeys(task_of(r) for r in runs):
        rs = [r for r in runs if task_of(r) == task]
        cells = [mean_sd([v for v in (method_test_score(r, m, objective) for r in rs) if math.isfinite(v)])
                 for m in methods]
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {len(rs)} |")
    return lines + [""]


def spend_lines(runs: list[Replay], methods: list[str]) -> list[str]:
    """The distinct instructions each method scored, soft prompts scored twice, the black-box answers spent on
    dev-side examples, and the recorded work."""
    names = [label(m) for m in methods]
    distinct = ", ".join(f"{label(m)} {np.mean(c):.1f} ({min(c)}-{max(c)})"
                         for m in methods for c in [[distinct_evaluations(r, m) for r in runs if m in r.methods()]])
    twice = ", ".join(f"{label(m)} {sum(repeated_soft_prompts(r, m) for r in runs)}"
                      for m in methods if is_search(m))
    spent = ", ".join(f"{label(m)} {np.mean([r.record.answers(m) for r in runs if m in r.methods()]):.0f}"
                      for m in methods)
    per_run = [(r.record.work_seconds() / 60, [r.record.work_seconds(m) / 60 for m in methods]) for r in runs]
    total = [w for w, _ in per_run]
    per_method = ", ".join(f"{name} {np.mean([ws[i] for _, ws in per_run]):.1f}" for i, name in enumerate(names))
    return [f"Distinct instructions scored on dev per run (mean, min-max): {distinct}; soft prompts evaluated twice: "
            f"{twice}.", "", f"Black-box answers on dev-side examples per run (mean; search and selection): {spent}.",
            "", f"Recorded work per (task, seed) run, model loading excluded: {np.mean(total):.1f} min (min-max "
            f"{min(total):.1f}-{max(total):.1f}); per method (mean): {per_method}.", ""]


def reference_line(runs: list[Replay], objective: str) -> list[str]:
    """On how many tasks InstructZero's mean test score (and the paper-allocation row's, where run) is at least the
    hand-written instruction's."""
    tasks = [[r for r in runs if task_of(r) == task] for task in dict.fromkeys(task_of(r) for r in runs)]
    lines = []
    for method in [m.name for m in TABLE if m.is_method and any(m.name in r.methods() for r in runs)]:
        per_task = [(np.nanmean([method_test_score(r, method, objective) for r in rs]),
                     np.nanmean([method_test_score(r, HUMAN, objective) for r in rs])) for rs in tasks]
        at_least = sum(a >= b - 1e-9 for a, b in per_task)  # means of equal scores can differ in the last bit
        lines += [f"{label(method)}'s mean test {objective} is at least the hand-written instruction's on "
                  f"{at_least} of {len(per_task)} tasks.", ""]
    return lines


def run_table(runs: list[Replay], methods: list[str], objective: str) -> list[str]:
    """Per (task, seed): each method's test score and InstructZero's difference from Uniform."""
    lines = ["Per (task, seed): test " + objective + " of the instruction each method kept, and InstructZero's "
             "paired difference from Uniform", "",
             "| task | seed | " + " | ".join(label(m) for m in methods) + " | IZ - Uniform |",
             "|---|---|" + "---|" * (len(methods) + 1)]
    for r in runs:
        scores = {m: method_test_score(r, m, objective) for m in methods}
        diff = scores.get(METHOD, math.nan) - scores.get(RANDOM, math.nan)
        lines.append(f"| {task_of(r)} | {r.config['seed']} | "
                     + " | ".join(f"{scores[m]:.3f}" for m in methods) + f" | {diff:+.3f} |")
    return lines + [""]


def best_instructions(runs: list[Replay], methods: list[str]) -> list[str]:
    """The instruction InstructZero (both allocations, where run) and Uniform kept in every run, as table cells."""
    shown = [m.name for m in TABLE if (m.is_method or m.random) and m.name in methods]
    lines = ["The instruction each run kept (cut at 90 characters)", "",
             "| task | seed | " + " | ".join(label(m) for m in shown) + " |", "|---|---|" + "---|" * len(shown)]
    for r in runs:
        lines.append(f"| {task_of(r)} | {r.config['seed']} | "
                     + " | ".join(table_cell(r.kept(m)["instruction"]) if r.evals(m) else "-" for m in shown) + " |")
    return lines + [""]


def paired_tables(runs: list[Replay], methods: list[str], objective: str) -> list[str]:
    """InstructZero against every other method on test; then against each search on the dev score it optimised."""
    lines = PAIRED_HEADER + [paired_row(paired(runs, METHOD, b, objective))
                             for b in methods if b != METHOD]
    searched = [m for m in methods if m != METHOD and is_search(m)]
    if searched:
        lines += ["", f"The same on the {objective} each search kept its instruction on (the best on "
                  f"{runs[0].config.get('n_dev', '?')}-example dev sets, or halving's mean on its last rung; biased "
                  "upwards by the winner's curse)", ""]
        lines += PAIRED_HEADER + [paired_row(paired(runs, METHOD, b, objective, score=method_kept_score))
                                  for b in searched]
    return lines


def paired_row(pr: Paired) -> str:
    """One row of a paired table: A - B, n, mean, bootstrap interval, wins / ties / losses, Wilcoxon p."""
    return (f"| {label(pr.a)} - {label(pr.b)} | {len(pr.diffs)} | {pr.mean:+.3f} | "
            f"[{pr.ci[0]:+.3f}, {pr.ci[1]:+.3f}] | {pr.wins} / {pr.ties} / {pr.losses} | {pr.p_value:.3g} |")


def table_cell(text: str, width: int = 90) -> str:
    """One table cell: quoted, newlines and pipes escaped, cut at ``width`` characters."""
    text = " ".join(text.split()).replace("|", "\\|")
    return "'" + (text if len(text) <= width else text[:width - 1] + "…") + "'"


# ----------------------------------------------------------------------------------------------------------------------
# The figure


def _band(ax, x: np.ndarray, C: np.ndarray, label: str) -> None:
    """Mean over runs (rows of C) with a band of +- one standard error."""
    mean = C.mean(0)
    se = C.std(0, ddof=1) / np.sqrt(len(C)) if len(C) > 1 else np.zeros(C.shape[1])
    line, = ax.plot(x, mean, label=label)
    ax.fill_between(x, mean - se, mean + se, alpha=0.2, color=line.get_color())


def study_figure(runs: list[Replay], methods: list[str] | None = None):
    """Best-so-far dev score against distinct evaluations (left) and, where the runs were made with
    ``--test-curve``, the test score of each round's incumbent (right): mean over runs, band +- one standard error.
    The hand-written instruction, where scored, is a dashed line on the test panel."""
    from matplotlib.figure import Figure

    methods = methods or [m for m in NAMES if is_search(m) and any(m in r.methods() for r in runs)]
    curves = {m: method_curves(runs, m) for m in methods}
    has_curve = any(len(cv.test_n) for cv in curves.values())
    fig = Figure(figsize=(11.0 if has_curve else 6.4, 4.0))
    axes = fig.subplots(1, 2 if has_curve else 1, squeeze=False)[0]
    for m, cv in curves.items():
        name = label(m)
        if len(cv.dev):
            _band(axes[0], np.arange(1, cv.dev.shape[1] + 1), cv.dev, f"{name} ({len(cv.dev)} runs)")
        if has_curve and len(cv.test):
            _band(axes[1], cv.test_n, cv.test, f"{name} ({len(cv.test)} runs)")
    axes[0].set_ylabel(f"best dev {runs[0].objective} so far")
    if has_curve:
        ref = [method_test_score(r, HUMAN, runs[0].objective) for r in runs if HUMAN in r.methods()]
        ref = [v for v in ref if math.isfinite(v)]
        if ref:
            axes[1].axhline(float(np.mean(ref)), ls="--", color="0.4", label=f"{label(HUMAN)} (mean)")
        axes[1].set_ylabel(f"test {runs[0].objective} of the incumbent")
    for ax in axes:
        ax.set_xlabel("distinct instructions scored")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def answers_figure(by_answers: dict[int, list[Replay]], methods: list[str] | None = None):
    """Test score of the instruction each method kept against the black-box answers it spent: one study per number
    of answers allowed (``izkit compare --answers B``), mean over its runs with a bar of +- one standard error,
    methods side by side; the hand-written instruction, which spends no search, as a dashed line at its mean over every
    run."""
    from matplotlib.figure import Figure

    runs = [r for rs in by_answers.values() for r in rs]
    if not runs:
        raise ValueError("no finished run at any number of answers allowed")
    objective = runs[0].objective
    methods = methods or [m for m in NAMES if is_search(m) and any(m in r.methods() for r in runs)]
    allowed = sorted(by_answers)
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    dodge = 0.015 * max(allowed)  # methods side by side at each, so their error bars do not hide each other
    for i, m in enumerate(methods):
        scores = [[v for v in (method_test_score(r, m, objective) for r in by_answers[b] if m in r.methods())
                   if math.isfinite(v)] for b in allowed]
        x = [b + (i - (len(methods) - 1) / 2) * dodge for b, s in zip(allowed, scores) if s]
        if not x:
            continue
        mean = np.array([np.mean(s) for s in scores if s])
        se = np.array([np.std(s, ddof=1) / np.sqrt(len(s)) if len(s) > 1 else 0.0 for s in scores if s])
        ax.errorbar(x, mean, yerr=se, marker="o", capsize=3,
                    label=f"{label(m)} ({'/'.join(str(len(s)) for s in scores)} runs)")
    pairs = {(task_of(r), r.config["seed"]): r for r in runs if HUMAN in r.methods()}  # the same at any number allowed
    ref = [v for v in (method_test_score(r, HUMAN, objective) for r in pairs.values()) if math.isfinite(v)]
    if ref:
        ax.axhline(float(np.mean(ref)), ls="--", color="0.4", label=f"{label(HUMAN)} (mean)")
    ax.set_xticks(allowed)
    ax.set_xlim(min(allowed) - (len(methods) + 1) * dodge, max(allowed) + (len(methods) + 1) * dodge)
    ax.set_xlabel("black-box answers spent on dev-side examples, per method")
    ax.set_ylabel(f"test {objective} of the kept instruction")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3)
    fig.tight_layout()
    return fig
