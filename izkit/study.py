"""A study's runs and their paired statistics: does InstructZero beat random search at the same budget?

A study is many (task, seed) runs of ``izkit compare``, one ``<task>-seed<k>/record.jsonl`` each, in one folder or
several (a live folder and its archive). This module finds the finished ones (:func:`finished_runs`), keeps them
with the code (:func:`archive`, the records without the answers' text) and compares two methods over them.

Every method of a (task, seed) run shares the task, seed, dev split and exemplars, so methods are compared pair by
pair: the per-pair difference ``d_i = score_A(i) - score_B(i)`` of their best instructions' test scores, summarised by
its mean, a Wilcoxon signed-rank test (two-sided; zero differences dropped, scipy's default) and a percentile
bootstrap confidence interval of the mean difference (:func:`paired`). Only records are read; no model is loaded.
The Markdown report and the figure built from these numbers are ``izkit.study_report``'s.
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


STUDY_ENV = "IZKIT_STUDY"  # a folder that holds the archived studies (study/, study-answers/), if not the clone's bench/
_REPO_BENCH = Path(__file__).resolve().parents[1] / "bench"  # present when izkit runs from a clone of the repository


def archived_study(name: str = "study") -> Path:
    """The folder of an archived study that ships with the repository: ``bench/study`` (150 distinct instructions per
    method, the paper's allocation) or ``bench/study-answers`` (at budgets of answers).

    Looked for under ``$IZKIT_STUDY`` when it is set, else in the clone's ``bench/``; a FileNotFoundError says how to
    point at it otherwise (izkit installed from a wheel carries no records).
    """
    base = Path(os.environ[STUDY_ENV]) if os.environ.get(STUDY_ENV) else _REPO_BENCH
    folder = base / name
    if not folder.is_dir():
        where = f"${STUDY_ENV}={base}" if os.environ.get(STUDY_ENV) else f"{base} (izkit is not running from a clone)"
        raise FileNotFoundError(f"the archived study {name!r} is not in {where}: set {STUDY_ENV} to a folder that holds "
                                f"{name}/ (the repository's bench/ folder has it)")
    return folder


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
    everything the report and the figure read (``izkit.study_report``), the per-example scores (so the GPs can be
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
