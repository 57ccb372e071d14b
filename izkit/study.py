"""Paired statistics over a study's (task, seed) runs: does InstructZero beat random search at the same budget?

Every method of a (task, seed) run shares the task, seed, dev split and exemplars, so methods are compared pair by
pair: the per-pair difference ``d_i = score_A(i) - score_B(i)`` of their best instructions' test scores, summarised by
its mean, a Wilcoxon signed-rank test (two-sided; zero differences dropped, scipy's default) and a percentile
bootstrap confidence interval of the mean difference. Only records are read; no model is loaded.

    izkit summary runs/study          # the Markdown report; or summarise(Path("runs/study")) here
    izkit summary runs/study bench/study --archive bench/study   # with an archive of earlier sittings, kept up to date
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from izkit.compare import mean_sd
from izkit.config import METHOD_NAMES, METHODS
from izkit.records import RECORD_NAME
from izkit.replay import Replay, replay


@dataclass
class Paired:
    """A against B over n (task, seed) pairs."""

    a: str
    b: str
    diffs: np.ndarray  # (n,) A - B per pair
    wins: int
    ties: int
    losses: int
    p_value: float  # Wilcoxon signed-rank, two-sided; nan when every difference is 0 or n < 2
    ci: tuple[float, float]  # bootstrap interval of the mean difference

    @property
    def mean(self) -> float:
        return float(self.diffs.mean()) if len(self.diffs) else math.nan


def _as_list(folders: str | Path | Sequence[str | Path]) -> list[Path]:
    return [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]


def finished_runs(folders: str | Path | Sequence[str | Path]) -> list[Replay]:
    """The finished runs under one folder or several (one ``<task>-seed<k>/record.jsonl`` each), in name order.

    A run found in more than one folder (a live study and its archive) is read from the first folder that holds it
    finished. Records are only read, never changed, so this is safe beside a ``compare`` that is still writing.
    """
    found: dict[str, Replay] = {}
    for folder in _as_list(folders):
        for path in sorted(folder.glob(f"*/{RECORD_NAME}")):
            if path.parent.name not in found and (rep := replay(path)).record.done:
                found[path.parent.name] = rep
    return [found[name] for name in sorted(found)]


def _slim(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A finished record's lines without the answers' text (``predictions``) and without each proposal's soft prompts
    where the eval lines hold the very same ones (in a finished run they all do: every proposed index is scored)."""
    scored = {(e["method"], e["round"], e["index"]): e.get("z") for e in lines if e.get("kind") == "eval"}
    out = []
    for line in lines:
        line = {k: v for k, v in line.items() if k != "predictions"}
        if line.get("kind") == "proposal" and line.get("z") is not None and all(
                scored.get((line["method"], line["round"], i), "missing") == z for i, z in enumerate(line["z"])):
            del line["z"]
        out.append(line)
    return out


def archive(runs: list[Replay], dest: str | Path) -> list[Path]:
    """Copy each finished run's record to ``dest/<run>/record.jsonl`` without what repeats or is never summarised.

    Left out: the answers' text and the proposals' soft prompts that the eval lines repeat (:func:`_slim`). Kept:
    everything :func:`summarise` and the figure read, the per-example scores (so the GPs can be refitted) and every
    line a resumed ``izkit compare`` reads back to skip a finished pair. A study is kept with the code this way when
    its run folders do not outlive the machine, and finished in a later sitting by copying the archive into the study
    folder. Each copy is written beside its target and renamed into place, so an interrupted archive leaves the old
    copy or the new one, never part of one. (A GP with the agreement similarity, eq. 8, compares predictions: it
    cannot be refitted from an archived record.)
    """
    paths = []
    for rep in runs:
        if not rep.record.done:
            raise ValueError(f"{rep.record.path}: the run is not finished; only finished runs are archived")
        target = Path(dest) / rep.record.path.parent.name / RECORD_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{RECORD_NAME}.{os.getpid()}.tmp")
        tmp.write_text("".join(json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n"
                               for line in _slim(rep.record.lines)))
        os.replace(tmp, target)
        paths.append(target)
    return paths


def bootstrap_ci(diffs: np.ndarray, level: float = 0.95, n_boot: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (n,), resampling pairs with replacement (seeded)."""
    diffs = np.asarray(diffs, dtype=float)
    if len(diffs) == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), size=(n_boot, len(diffs)))].mean(axis=1)  # (n_boot,)
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


def wilcoxon_p(diffs: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of ``diffs`` (n,); nan when fewer than two are non-zero."""
    from scipy.stats import wilcoxon

    diffs = np.asarray(diffs, dtype=float)
    if np.count_nonzero(diffs) < 2:
        return math.nan
    return float(wilcoxon(diffs, zero_method="wilcox", alternative="two-sided").pvalue)


def method_test_score(rep: Replay, method: str, objective: str) -> float:
    """The test score of ``method``'s best dev instruction in a run (nan if the run has none)."""
    return float(rep.test_scores(method).get(objective, math.nan))


def method_dev_best(rep: Replay, method: str, objective: str | None = None) -> float:
    """The best dev score the method reached in a run: what the search optimised (nan if it scored nothing)."""
    return float(rep.best(method)["mean"]) if any(e["mean"] is not None for e in rep.evals(method)) else math.nan


def paired(runs: list[Replay], a: str, b: str, objective: str, tol: float = 1e-12,
           score=method_test_score) -> Paired:
    """A against B on every run that has both: ``score(run, method, objective)`` per pair (default: the test score
    of each one's best dev instruction; :func:`method_dev_best` compares the searches on what they optimised)."""
    pairs = [(score(r, a, objective), score(r, b, objective)) for r in runs]
    diffs = np.array([x - y for x, y in pairs if math.isfinite(x) and math.isfinite(y)])  # (n,)
    return Paired(a, b, diffs, int((diffs > tol).sum()), int((np.abs(diffs) <= tol).sum()), int((diffs < -tol).sum()),
                  wilcoxon_p(diffs), bootstrap_ci(diffs))


def distinct_evaluations(rep: Replay, method: str) -> int:
    """How many distinct instructions the method scored on dev in a run."""
    return len({e["instruction"] for e in rep.evals(method)})


def repeated_soft_prompts(rep: Replay, method: str) -> int:
    """Evaluations of ``method`` whose soft prompt z was evaluated before in the run (exact repeats)."""
    seen: set[tuple[float, ...]] = set()
    repeats = 0
    for e in rep.evals(method):
        if e.get("z") is None:
            continue
        key = tuple(float(v) for v in e["z"])
        repeats += key in seen
        seen.add(key)
    return repeats


def summarise(folders: str | Path | Sequence[str | Path], objective: str | None = None) -> str:
    """The Markdown report of a study (one folder, or several read as one: :func:`finished_runs`): per-task test
    scores, distinct evaluations, and paired tests."""
    runs = finished_runs(folders)
    folder = " + ".join(str(f) for f in _as_list(folders))
    if not runs:
        raise ValueError(f"{folder}: no finished run (no */{RECORD_NAME} with a done line)")
    objective = objective or runs[0].objective
    methods = [m for m in METHODS if any(m in r.methods() for r in runs)]
    tasks = list(dict.fromkeys(Path(r.config["task"]).stem for r in runs))
    names = [METHOD_NAMES.get(m, m) for m in methods]
    lines = [f"{len(runs)} finished runs in {folder}; test {objective} of each method's best dev instruction "
             f"(mean +- sd over seeds)", "", "| task | " + " | ".join(names) + " | seeds |",
             "|---|" + "---|" * (len(methods) + 1)]
    for task in tasks:
        rs = [r for r in runs if Path(r.config["task"]).stem == task]
        cells = [mean_sd([v for v in (method_test_score(r, m, objective) for r in rs) if math.isfinite(v)])
                 for m in methods]
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {len(rs)} |")
    lines += ["", "Distinct instructions scored on dev per run (mean, min-max): " + ", ".join(
        f"{METHOD_NAMES.get(m, m)} {np.mean(c):.1f} ({min(c)}-{max(c)})"
        for m in methods for c in [[distinct_evaluations(r, m) for r in runs if m in r.methods()]])
        + "; soft prompts evaluated twice: " + ", ".join(
        f"{METHOD_NAMES.get(m, m)} {sum(repeated_soft_prompts(r, m) for r in runs)}" for m in methods
        if m not in ("manual", "reference")) + ".", ""]
    per_run = [(r.record.work_seconds() / 60, [r.record.work_seconds(m) / 60 for m in methods]) for r in runs]
    lines += ["Recorded work per (task, seed) run, model loading excluded: "
              f"{np.mean([w for w, _ in per_run]):.1f} min (min-max {min(w for w, _ in per_run):.1f}-"
              f"{max(w for w, _ in per_run):.1f}); per method (mean): " + ", ".join(
                  f"{name} {np.mean([ws[i] for _, ws in per_run]):.1f}" for i, name in enumerate(names)) + ".", ""]
    if "reference" in methods:
        per_task = [(np.nanmean([method_test_score(r, "instructzero", objective) for r in rs]),
                     np.nanmean([method_test_score(r, "reference", objective) for r in rs]))
                    for task in tasks for rs in [[r for r in runs if Path(r.config["task"]).stem == task]]]
        at_least = sum(a >= b - 1e-9 for a, b in per_task)  # means of equal scores can differ in the last bit
        lines += [f"InstructZero's mean test {objective} is at least the hand-written instruction's on {at_least} of "
                  f"{len(per_task)} tasks.", ""]
    lines += ["Per (task, seed): test " + objective + " of each method's best dev instruction, and InstructZero's "
              "paired difference from Uniform", "", "| task | seed | " + " | ".join(names) + " | IZ - Uniform |",
              "|---|---|" + "---|" * (len(methods) + 1)]
    for r in runs:
        scores = {m: method_test_score(r, m, objective) for m in methods}
        diff = scores.get("instructzero", math.nan) - scores.get("uniform", math.nan)
        lines.append(f"| {Path(r.config['task']).stem} | {r.config['seed']} | "
                     + " | ".join(f"{scores[m]:.3f}" for m in methods) + f" | {diff:+.3f} |")
    lines += [""]
    lines += curve_table(runs, [m for m in methods if m not in ("manual", "reference")])
    shown = [m for m in ("instructzero", "uniform") if m in methods]
    lines += ["The best dev instruction per run (cut at 90 characters)", "",
              "| task | seed | " + " | ".join(METHOD_NAMES[m] for m in shown) + " |", "|---|---|" + "---|" * len(shown)]
    for r in runs:
        lines.append(f"| {Path(r.config['task']).stem} | {r.config['seed']} | "
                     + " | ".join(_cut(r.best(m)["instruction"]) if r.evals(m) else "-" for m in shown) + " |")
    lines += [""]
    lines += ["| A - B, paired over (task, seed) | n | mean | 95% bootstrap CI | A better / tie / worse | Wilcoxon p |",
              "|---|---|---|---|---|---|"]
    for b in [m for m in methods if m != "instructzero"]:
        lines.append(_paired_row(paired(runs, "instructzero", b, objective)))
    searched = [m for m in methods if m not in ("instructzero", "manual", "reference")]
    if searched:
        lines += ["", f"The same on the best dev {objective} each search reached (what it optimised, on "
                  f"{runs[0].config.get('n_dev', '?')}-example dev sets; biased upwards, equally for equal budgets)", "",
                  "| A - B, paired over (task, seed) | n | mean | 95% bootstrap CI | A better / tie / worse | Wilcoxon p |",
                  "|---|---|---|---|---|---|"]
        lines += [_paired_row(paired(runs, "instructzero", b, objective, score=method_dev_best)) for b in searched]
    return "\n".join(lines)


def _paired_row(pr: Paired) -> str:
    return (f"| {METHOD_NAMES.get(pr.a, pr.a)} - {METHOD_NAMES.get(pr.b, pr.b)} | {len(pr.diffs)} | {pr.mean:+.3f} | "
            f"[{pr.ci[0]:+.3f}, {pr.ci[1]:+.3f}] | {pr.wins} / {pr.ties} / {pr.losses} | {pr.p_value:.3g} |")


def curve_table(runs: list[Replay], methods: list[str]) -> list[str]:
    """The study figure's numbers as Markdown lines: after each round (its distinct count), the mean over runs of
    the best dev score so far and, where recorded (``--test-curve``), of the incumbent's test score."""
    rows: dict[str, list[str]] = {}
    for m in methods:
        curves = [c for c in (best_so_far(r, m) for r in runs if m in r.methods()) if len(c)]
        pts = [p for p in (test_curve(r, m) for r in runs if m in r.methods()) if len(p[0])]
        if not curves or not pts:
            continue
        k = min(len(p[0]) for p in pts)
        n = np.mean([p[0][:k] for p in pts], axis=0).astype(int)  # (k,) equal budgets: the same counts in every run
        n = n[n <= min(len(c) for c in curves)]
        dev = np.mean([c[n - 1] for c in curves], axis=0)  # (k,)
        test = np.nanmean([p[1][:len(n)] for p in pts], axis=0)  # (k,)
        rows[METHOD_NAMES.get(m, m)] = [f"{d:.3f} / {t:.3f}" for d, t in zip(dev, test)]
        counts = n
    if not rows:
        return []
    return (["Best dev so far / test of the incumbent, mean over runs, after n distinct instructions", "",
             "| method | " + " | ".join(f"n = {c}" for c in counts) + " |", "|---|" + "---|" * len(counts)]
            + [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows.items()] + [""])


def _cut(text: str, width: int = 90) -> str:
    """One table cell: quoted, newlines and pipes escaped, cut at ``width`` characters."""
    text = " ".join(text.split()).replace("|", "\\|")
    return "'" + (text if len(text) <= width else text[:width - 1] + "…") + "'"


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

    methods = methods or [m for m in METHODS if m not in ("manual", "reference") and any(m in r.methods() for r in runs)]
    has_curve = any(len(test_curve(r, m)[0]) for r in runs for m in methods)
    fig = Figure(figsize=(11.0 if has_curve else 6.4, 4.0))
    axes = fig.subplots(1, 2 if has_curve else 1, squeeze=False)[0]
    for m in methods:
        curves = [c for c in (best_so_far(r, m) for r in runs if m in r.methods()) if len(c)]
        if curves:
            n = min(len(c) for c in curves)
            _band(axes[0], np.arange(1, n + 1), np.stack([c[:n] for c in curves]),
                  f"{METHOD_NAMES.get(m, m)} ({len(curves)} runs)")
        if has_curve:
            pts = [test_curve(r, m) for r in runs if m in r.methods()]
            pts = [p for p in pts if len(p[0])]
            if pts:
                k = min(len(p[0]) for p in pts)
                x = np.mean([p[0][:k] for p in pts], axis=0)  # (k,) distinct counts (equal budgets: the same)
                _band(axes[1], x, np.stack([p[1][:k] for p in pts]), f"{METHOD_NAMES.get(m, m)} ({len(pts)} runs)")
    axes[0].set_ylabel(f"best dev {runs[0].objective} so far")
    if has_curve:
        ref = [method_test_score(r, "reference", runs[0].objective) for r in runs if "reference" in r.methods()]
        ref = [v for v in ref if math.isfinite(v)]
        if ref:
            axes[1].axhline(float(np.mean(ref)), ls="--", color="0.4", label=f"{METHOD_NAMES['reference']} (mean)")
        axes[1].set_ylabel(f"test {runs[0].objective} of the incumbent")
    for ax in axes:
        ax.set_xlabel("distinct instructions scored")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig
