"""Choosing the winner (notebook 9), in the archived study's records: the winner's curse the picks paid, and what
successive halving did in real runs.

- :func:`picks`: the dev score each method kept its instruction on, beside that instruction's test score, per run of a
  study (records only: ``izkit.studies.study.finished_runs``); :func:`curse_by_task`: their gap grouped by task.
- :func:`answers_studies`: the finished runs of the study at several numbers of answers allowed
  (``bench/data/study-answers/<answers>/``), by answers allowed; :func:`heldout_scores` and :func:`heldout_groups`:
  its picks judged on held-out induce examples; :func:`first_rung`: whether halving's first promotion ranked its
  candidates or tied them, and how what the tie order promoted did on the next rung.

The simulations live beside it: the curse in :mod:`izkit.studies.curse`, halving's allocation of the answers allowed in
:mod:`izkit.studies.allocation`; their names are re-exported here, where notebook 9 first found them.

No model is loaded; the test split is read only from records, for the picks the runs already made. The archived
studies are found when first read, by ``izkit.studies.study.archived_study`` (``$IZKIT_STUDY``, else the clone's
bench/data/).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from izkit.studies.allocation import (ANSWERS, DEV, EXAMPLES, SEARCHES, Allocation, at_answers, candidate_pool,
                              candidates_for, draw_allocations, halving_explorer, mean_se, rungs_text,
                              simulate_allocation)
from izkit.studies.curse import CURSE_MS, CURSE_NS, curse_draw, curse_explorer, curse_simulation, draw_curse
from izkit.replay import Replay
from izkit.studies.study import archived_study, finished_runs, method_test_score, task_groups


def __getattr__(name: str) -> Path:
    """``STUDY`` and ``STUDY_ANSWERS``: the archived studies' folders, looked up when read (PEP 562), so an izkit
    installed without the records says how to point at them (``$IZKIT_STUDY``) instead of naming a missing path."""
    if name in _ARCHIVED:
        return archived_study(_ARCHIVED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# The archived studies are found at call time by izkit.studies.study.archived_study ($IZKIT_STUDY, else bench/data/):
# ``winner.STUDY`` (bench/data/study: 150 distinct instructions per method, the paper's allocation) and
# ``winner.STUDY_ANSWERS`` (bench/data/study-answers: one folder per number of answers allowed) are looked up when read
# (``__getattr__`` above).
_ARCHIVED = {"STUDY": "study", "STUDY_ANSWERS": "study-answers"}
__all__ = [  # the records' analysis, and the simulations' names where notebook 9 first found them
    "ANSWERS", "CURSE_MS", "CURSE_NS", "DEV", "EXAMPLES", "SEARCHES", "Allocation", "FirstRung", "answers_studies",
    "at_answers", "candidate_pool", "candidates_for", "curse_by_task", "curse_draw", "curse_explorer",
    "curse_simulation", "draw_allocations", "draw_curse", "first_rung", "halving_explorer", "heldout_groups",
    "heldout_scores", "mean_se", "picks", "run_task", "rungs_text", "simulate_allocation", "study_runs"]


# ----------------------------------------------------------------------------------------------------------------------
# Recorded runs


def study_runs(folder: str | Path | None = None) -> list[Replay]:
    """The finished runs of a study folder (default: the archived study, ``archived_study("study")``); an error naming
    the folder when there is none."""
    folder = archived_study("study") if folder is None else folder
    runs = finished_runs(folder)
    if not runs:
        raise FileNotFoundError(f"{folder}: no finished run (<task>-seed<k>/record.jsonl); the archived study ships "
                                "with the repository in bench/data/study")
    return runs


def picks(runs: Sequence[Replay], methods: Sequence[str], objective: str | None = None
          ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per method, the dev score its kept instruction was kept on (n,) and that instruction's test score (n,), over
    the runs that have the method (a run without a test line for it is left out)."""
    out = {}
    for m in methods:
        dev, test = [], []
        for r in runs:
            if m not in r.methods():
                continue
            t, kept = method_test_score(r, m, objective or r.objective), r.kept(m)
            if math.isfinite(t) and kept is not None and kept["mean"] is not None:  # a run whose evals all failed
                dev.append(float(kept["mean"]))
                test.append(t)
        out[m] = (np.array(dev), np.array(test))
    return out


def curse_by_task(runs: Sequence[Replay], methods: Sequence[str], objective: str | None = None
                  ) -> dict[str, dict[str, np.ndarray]]:
    """Per method, the dev - test gap of its pick per (task, seed), grouped by task: ``{method: {task: (seeds,)}}``
    (the runs :func:`picks` keeps), so that an interval can resample tasks, then seeds (``nested_bootstrap_ci``)."""
    out = {}
    for m in methods:
        tasks, gaps = [], []
        for r in runs:
            if m not in r.methods():
                continue
            t, kept = method_test_score(r, m, objective or r.objective), r.kept(m)
            if math.isfinite(t) and kept is not None and kept["mean"] is not None:
                tasks.append(Path(r.config["task"]).stem)
                gaps.append(float(kept["mean"]) - t)
        out[m] = task_groups(tasks, gaps)
    return out


def answers_studies(folder: str | Path | None = None) -> dict[int, list[Replay]]:
    """The finished runs of the study at several numbers of answers allowed, by that number:
    ``folder/<answers>/<task>-seed<k>/record.jsonl``
    (default: the archived one, ``archived_study("study-answers")``, an error saying how to point at it when it is not
    found); numbers with no finished run (and a given folder that is missing) are left out."""
    folder = archived_study("study-answers") if folder is None else Path(folder)
    if not folder.is_dir():
        return {}
    found = {int(d.name): finished_runs(d) for d in sorted(folder.iterdir()) if d.is_dir() and d.name.isdigit()}
    return {b: runs for b, runs in sorted(found.items()) if runs}


def heldout_scores(answers: int, folder: str | Path | None = None) -> dict[str, dict[str, float]]:
    """The study at ``answers`` answers allowed, its picks judged on held-out induce examples
    (``bench/studies/study_heldout.py``): ``{"<task>-seed<k>": {method: accuracy, ..., "held_out": examples}}`` from
    ``folder/heldout-<answers>.json`` (default: the archived study at several numbers of answers allowed). A run with
    too few held-out examples carries only ``held_out``. These examples come after the 100 that halving's last rung
    used: no method saw them."""
    folder = archived_study("study-answers") if folder is None else Path(folder)
    path = folder / f"heldout-{answers}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no held-out reading at {answers} answers "
                                f"(python -m bench.studies.study_heldout --answers {answers} writes it)")
    return json.loads(path.read_text())


def run_task(name: str) -> str:
    """The task of a run folder's name: ``"larger_animal-seed0"`` -> ``"larger_animal"``."""
    return name.rsplit("-seed", 1)[0]


def heldout_groups(scores: dict[str, dict[str, float]], a: str, b: str) -> dict[str, np.ndarray]:
    """A - B on the held-out examples per (task, seed), grouped by task (:func:`izkit.studies.study.task_groups`); runs
    without both scores are left out."""
    names = [k for k, v in scores.items() if a in v and b in v]
    return task_groups([run_task(k) for k in names], [scores[k][a] - scores[k][b] for k in names])


@dataclass
class FirstRung:
    """What successive halving's first promotion did in a study's runs, for one method."""

    halvings: int  # runs with a first promotion
    boundary_tied: int  # runs whose promotion boundary fell inside a block of equal means (the tie order decided)
    all_tied: int  # runs whose candidates all had the same mean on the first rung's examples
    pool_round0: float  # share of the candidates that came from round 0 (the initial design)
    promoted_round0: float  # share of the promoted that came from round 0
    by_tie: float = math.nan  # share of the promoted that the tie order chose (their mean equals the boundary's)
    next_by_tie: float = math.nan  # their mean on the second rung's new examples
    next_above: float = math.nan  # the same for the promoted that stood above the boundary
    order_gaps: tuple[float, ...] = ()  # per halving whose tie order chose from both: later rounds - round 0, on
    # the second rung's new examples (does the order in which candidates were scored matter?)
    picks_by_tie: int = 0  # runs whose kept instruction was one the tie order promoted


def first_rung(runs: Sequence[Replay], method: str) -> FirstRung:
    """How successive halving's first promotion went for ``method`` (records only): whether the first rung's few
    examples ranked the candidates or tied them, how much of what went on came from round 0, and how the candidates
    the tie order promoted did on the second rung's new examples, against those promoted on their scores."""
    halvings = tied = all_tied = 0
    pool = [0, 0]  # [from round 0, all]
    promoted = [0, 0]
    nxt: dict[str, list[float]] = {"tie": [], "above": []}
    gaps = []
    picks = 0
    for r in runs:
        sel = r.record.find("selection", method=method)
        if sel is None or len(sel["members"]) < 2:
            continue
        first, k = sel["rungs"][0][0], sel["rungs"][1][1]
        rounds: dict[str, int] = {}
        means: dict[str, float] = {}
        for e in r.evals(method):
            if e["mean"] is not None and e["instruction"] not in rounds:
                rounds[e["instruction"]] = e["round"]
                means[e["instruction"]] = float(np.mean(e["scores"][:first]))
        m = np.array(list(means.values()))
        cut = np.sort(m)[::-1][k - 1]
        boundary_tied = (m == cut).sum() > k - (m > cut).sum()
        halvings += 1
        tied += int(boundary_tied)
        all_tied += int(np.all(m == m[0]))
        pool[0] += sum(v == 0 for v in rounds.values())
        pool[1] += len(rounds)
        promoted[0] += sum(rounds.get(t) == 0 for t in sel["members"][1])
        promoted[1] += len(sel["members"][1])
        second = {c["instruction"]: c["mean"] for c in r.record.of_kind("confirm", method=method)
                  if c["start"] == first and c["mean"] is not None}  # the second rung's new examples
        by_round: dict[bool, list[float]] = {False: [], True: []}  # tie-promoted, by "after round 0"
        picks += int(boundary_tied and means.get(sel["instruction"]) == cut)  # the selection line names the pick
        for t in sel["members"][1]:
            if t not in second:
                continue
            if boundary_tied and means[t] == cut:
                nxt["tie"].append(second[t])
                by_round[rounds[t] > 0].append(second[t])
            else:
                nxt["above"].append(second[t])
        if by_round[False] and by_round[True]:
            gaps.append(float(np.mean(by_round[True]) - np.mean(by_round[False])))
    mean = lambda xs: float(np.mean(xs)) if xs else math.nan  # noqa: E731
    return FirstRung(halvings, tied, all_tied, pool[0] / max(pool[1], 1), promoted[0] / max(promoted[1], 1),
                     mean([1.0] * len(nxt["tie"]) + [0.0] * len(nxt["above"])), mean(nxt["tie"]),
                     mean(nxt["above"]), tuple(gaps), picks)
