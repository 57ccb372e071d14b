"""A study's runs and their paired statistics: does InstructZero beat random search at the same spend?

A study is many (task, seed) runs of ``izkit compare``, one ``<task>-seed<k>/record.jsonl`` each, in one folder or
several (a live folder and its archive). This module finds the finished ones (:func:`finished_runs`), keeps them
with the code (:func:`archive`, the records without the answers' text) and compares two methods over them.

Every method of a (task, seed) run shares the task, seed, dev split and exemplars, so methods are compared pair by
pair: the per-pair difference ``d_i = score_A(i) - score_B(i)`` of their best instructions' test scores, summarised by
its mean, a Wilcoxon signed-rank test (two-sided; zero differences dropped, scipy's default) and a percentile
bootstrap confidence interval of the mean difference (:func:`paired`). Only records are read; no model is loaded.
The Markdown report and the figure built from these numbers are ``izkit.studies.study_report``'s.
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

from izkit.records import RECORD_NAME, RecordBusy, RecordError, RunRecord, locked_run, write_whole
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


STUDY_ENV = "IZKIT_STUDY"  # a folder holding the archived studies (study/, study-answers/) instead of bench/data/
_REPO_DATA = Path(__file__).resolve().parents[2] / "bench" / "data"  # the clone's bench/data/, when izkit runs from one


def archived_study(name: str = "study") -> Path:
    """The folder of an archived study that ships with the repository: ``bench/data/study`` (150 distinct
    instructions per method, the paper's allocation) or ``bench/data/study-answers`` (one folder per number of
    answers allowed).

    Looked for under ``$IZKIT_STUDY`` when it is set; else in the clone izkit runs from, then in the ``bench/data/``
    of the working folder or a folder above it (a notebook in a clone's notebooks/, with izkit installed from a
    wheel, which carries no records). A FileNotFoundError names where it looked and how to point at it.
    """
    if os.environ.get(STUDY_ENV):
        bases = [Path(os.environ[STUDY_ENV])]
    else:
        here = Path.cwd().resolve()
        bases = list(dict.fromkeys([_REPO_DATA, *(p / "bench" / "data" for p in [here, *here.parents])]))
    for base in bases:
        if (base / name).exists():  # a folder of records, or one archived file (ceiling.json)
            return base / name
    where = (f"${STUDY_ENV}={bases[0]}" if os.environ.get(STUDY_ENV) else
             f"izkit's clone ({_REPO_DATA}) or a bench/data/ in {Path.cwd()} or above")
    raise FileNotFoundError(f"the archived study {name!r} is not in {where}: set {STUDY_ENV} to a folder that holds "
                            f"{name}{'' if Path(name).suffix else '/'} (the repository's bench/data/ folder has it)")


def study_folders(folders: str | Path | Sequence[str | Path]) -> list[Path]:
    """One folder or several, as a list of paths."""
    return [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]


def finished_runs(folders: str | Path | Sequence[str | Path]) -> list[Replay]:
    """The finished runs under one folder or several (one ``<task>-seed<k>/record.jsonl`` each), in name order.

    A run found in more than one folder (a live study and its archive) is read from the first folder that holds it
    finished. Records are only read, never changed, so this is safe beside a ``compare`` that is still writing.
    """
    found: dict[str, Replay] = {}
    for folder in study_folders(folders):
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
    everything the report and the figure read (``izkit.studies.study_report``), the per-example scores (so the GPs can be
    refitted) and every line a resumed ``izkit compare`` reads back to skip a finished pair. A study is kept with the
    code this way when its run folders do not outlive the machine, and finished in a later sitting by copying the
    archive into the study folder. Each copy is written beside its target and renamed into place, so an interrupted
    archive leaves the old copy or the new one, never part of one. (A GP with the agreement similarity, eq. 8,
    compares predictions: it cannot be refitted from an archived record.)
    """
    paths = []
    for rep in runs:
        if not rep.record.done:
            raise ValueError(f"{rep.record.path}: the run is not finished; only finished runs are archived")
        target = Path(dest) / rep.record.path.parent.name / RECORD_NAME
        write_whole(target, "".join(json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n"
                                    for line in _slim(rep.record.lines)).encode())
        paths.append(target)
    return paths


def restore(archived: str | Path, out: str | Path) -> list[Path]:
    """Copy each archived record into ``out/<run>/record.jsonl`` where ``out`` lacks it or holds only an unfinished
    run of it, so that an ``izkit compare`` on ``out`` reads those pairs back instead of running them again (a study
    carried on in a later sitting or on another machine). An unfinished live record the archive replaces is kept
    beside it as ``record.unfinished-<n>.jsonl``; a finished live record is left as it is. Returns the copies made."""
    copied = []
    for rec in sorted(Path(archived).glob(f"*/{RECORD_NAME}")):
        target = Path(out) / rec.parent.name / RECORD_NAME
        if not target.exists():
            write_whole(target, rec.read_bytes())
            copied.append(target)
        elif not _finished(target) and _finished(rec):
            try:
                with locked_run(target.parent):  # not under a process that is still writing it
                    n = 1 + sum(1 for _ in target.parent.glob("record.unfinished-*.jsonl"))
                    os.replace(target, target.with_name(f"record.unfinished-{n}.jsonl"))  # set aside, not lost
                    write_whole(target, rec.read_bytes())
                    copied.append(target)
            except RecordBusy:
                continue
    return copied


def _finished(path: Path) -> bool:
    """Whether the record at ``path`` is a finished run (an unreadable one is not)."""
    try:
        return RunRecord.read(path).done
    except RecordError:
        return False


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
    """The test score of the instruction ``method`` kept in a run (nan if the run has none)."""
    return float(rep.test_scores(method).get(objective, math.nan))


def method_kept_score(rep: Replay, method: str, objective: str | None = None) -> float:
    """The score the method's kept instruction was kept on: the best dev score the search reached, or with halving
    the pick's mean on the last rung's examples (nan if it scored nothing)."""
    return float(rep.kept(method)["mean"]) if any(e["mean"] is not None for e in rep.evals(method)) else math.nan


def paired(runs: list[Replay], a: str, b: str, objective: str, tol: float = 1e-12,
           score=method_test_score) -> Paired:
    """A against B on every run that has both: ``score(run, method, objective)`` per pair (default: the test score
    of each one's best dev instruction; :func:`method_kept_score` compares the searches on what they optimised)."""
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


# ----------------------------------------------------------------------------------------------------------------------
# Pairs that nest in tasks: the seeds of one task share its examples, its hand-written instruction and how hard it is,
# so their differences are not independent. The task is the unit of evidence: average its seeds first, or resample
# tasks (then seeds within each task) in a bootstrap. Several tests at once: Holm's adjustment.


@dataclass
class ByTask:
    """A against B with each task's seeds averaged first: one paired difference per task."""

    a: str
    b: str
    groups: dict[str, np.ndarray]  # task -> (seeds,) A - B per (task, seed)
    p_value: float  # Wilcoxon signed-rank, two-sided, over the per-task means; nan when fewer than two are non-zero
    ci: tuple[float, float]  # two-stage bootstrap interval of the mean over tasks (tasks, then seeds within a task)
    tol: float = 1e-12  # a per-task mean within tol of 0 is a tie

    @property
    def diffs(self) -> np.ndarray:
        """(T,) the per-task mean differences, in the order of ``groups``."""
        return np.array([g.mean() for g in self.groups.values()])

    @property
    def mean(self) -> float:
        """The mean over tasks of the per-task mean difference (every task weighs the same)."""
        return float(self.diffs.mean()) if self.groups else math.nan

    @property
    def n_pairs(self) -> int:
        return sum(len(g) for g in self.groups.values())

    @property
    def wins(self) -> int:
        return int((self.diffs > self.tol).sum())

    @property
    def ties(self) -> int:
        return int((np.abs(self.diffs) <= self.tol).sum())

    @property
    def losses(self) -> int:
        return int((self.diffs < -self.tol).sum())


def task_groups(tasks: Sequence[str], values: Sequence[float]) -> dict[str, np.ndarray]:
    """Values (n,) grouped by their task (n,): ``{task: (seeds,) values}``, tasks in sorted order; nan values dropped
    (a pair where one method has no score), and a task left with none is dropped too."""
    if len(tasks) != len(values):
        raise ValueError(f"{len(tasks)} tasks for {len(values)} values")
    out: dict[str, list[float]] = {}
    for t, v in zip(tasks, values):
        if math.isfinite(v):
            out.setdefault(t, []).append(float(v))
    return {t: np.array(out[t]) for t in sorted(out)}


def nested_bootstrap_ci(groups: dict[str, np.ndarray], level: float = 0.95, n_boot: int = 10_000,
                        seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over tasks of each task's mean, resampling in two stages: the tasks
    with replacement, then each drawn task's seeds with replacement (seeded). Resampling the (task, seed) pairs as if
    they were independent would treat three seeds of one task as three tasks and give too narrow an interval."""
    names = list(groups)
    if not names:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    T = len(names)
    drawn = rng.integers(0, T, size=(n_boot, T))  # (n_boot, T) which task fills each slot
    stat = np.zeros(n_boot)  # (n_boot,) sum over slots of the drawn task's resampled seed mean
    for slot in range(T):
        for t, name in enumerate(names):
            g = np.asarray(groups[name], dtype=float)  # (k,) this task's seeds
            rows = np.flatnonzero(drawn[:, slot] == t)
            if len(rows):
                stat[rows] += g[rng.integers(0, len(g), size=(len(rows), len(g)))].mean(axis=1)
    stat /= T
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(stat, alpha)), float(np.quantile(stat, 1.0 - alpha))


def by_task(groups: dict[str, np.ndarray], a: str = "A", b: str = "B", tol: float = 1e-12) -> ByTask:
    """A - B per (task, seed), grouped by task, read as one difference per task: the Wilcoxon test over the per-task
    means and the two-stage bootstrap interval (:func:`nested_bootstrap_ci`)."""
    groups = {t: np.asarray(g, dtype=float) for t, g in groups.items() if len(g)}
    means = np.array([g.mean() for g in groups.values()])  # (T,)
    return ByTask(a, b, groups, wilcoxon_p(np.where(np.abs(means) <= tol, 0.0, means)), nested_bootstrap_ci(groups),
                  tol)


def paired_by_task(runs: list[Replay], a: str, b: str, objective: str, score=method_test_score) -> ByTask:
    """:func:`paired` with the task as the unit: A - B on every run that has both, grouped by the run's task."""
    tasks = [Path(r.config["task"]).stem for r in runs]
    diffs = [score(r, a, objective) - score(r, b, objective) for r in runs]  # nan where either has no score
    return by_task(task_groups(tasks, diffs), a, b)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of m p-values (Holm, 1979): the i-th smallest is multiplied by (m - i + 1), and
    the adjusted values are made non-decreasing in that order and capped at 1. Rejecting where the adjusted p is
    below alpha keeps the chance of any false rejection among the m tests at most alpha. A nan (no test was possible)
    stays nan and does not count in m."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    order = ok[np.argsort(p[ok], kind="stable")]  # indices of the finite p-values, smallest first
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


def evidence(p: float, alpha: float = 0.05) -> str:
    """A two-sided p-value in words, at level ``alpha``: "evidence of a difference" below it, "no evidence of a
    difference" otherwise (which is not evidence that there is none: the data may be too few to tell), "no test"
    for nan (every difference 0, or fewer than two)."""
    if not math.isfinite(p):
        return "no test"
    return "evidence of a difference" if p < alpha else "no evidence of a difference"


def borderline(ci: tuple[float, float], p: float, alpha: float = 0.05) -> str:
    """Where a difference's 95% interval and its test's p-value disagree, the words for it; "" where they agree.

    The two read the same data differently (an interval that resamples a few tasks, a rank test over them), so near
    the level one can exclude 0 while the other does not: "borderline: the interval excludes 0, the test does not
    reach alpha", or the reverse. Such a result is read as borderline, not as whichever reading one likes. "" as
    well where there is no test (p is nan)."""
    if not math.isfinite(p) or not all(math.isfinite(x) for x in ci):
        return ""
    excludes = ci[0] > 0 or ci[1] < 0
    if excludes and p >= alpha:
        return f"borderline: the interval excludes 0, the test does not reach {alpha:g}"
    if not excludes and p < alpha:
        return f"borderline: the test is below {alpha:g}, the interval does not exclude 0"
    return ""
