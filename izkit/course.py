"""The course's shared runs: the run notebook 1 makes (and notebook 7's), read back by the notebooks after them.

Notebooks 5, 6 and 8 study a real run without loading a model. A student may open them before notebook 1, so each asks
for the run with ``course_run``: when its record is missing or unfinished the run is made (or finished) here, with
exactly the config its notebook uses (``course_config``), and it comes back as a :class:`izkit.replay.Replay`.

    rep = course_run("notebook-01", runs=RUNS, fast=FAST)                        # notebook 1's run, made if need be
    rep = course_run("notebook-01", runs=RUNS, fast=FAST, prefer="notebook-07")  # notebook 7's if it is finished

The runs live in ``$IZKIT_RUNS`` (default ``../runs``: beside the notebooks folder), one folder per run:
``notebook-01``, or ``notebook-01-fast`` in fast mode (``$IZKIT_FAST=1``: smaller budgets, the same code path). The
black box is the embedded model unless ``$IZKIT_BASE_URL`` and ``$IZKIT_BLACKBOX_MODEL`` name a server, as in every
notebook (``izkit.config.blackbox_from_env``).
"""

from __future__ import annotations

import os
from pathlib import Path

from izkit.config import Config, blackbox_from_env
from izkit.loop import run
from izkit.records import RECORD_NAME, RecordError, RunRecord
from izkit.replay import Replay, replay
from izkit.study import archived_study

TASK = "larger_animal"  # the course's task: which of two animals is larger
COURSE_RUNS = ("notebook-01", "notebook-07")  # the runs a later notebook may ask for
BASELINES_07 = ("paper", "matern", "uniform", "ape", "manual", "reference")  # notebook 7 runs every baseline


def fast_mode() -> bool:
    """Whether the course runs in fast mode: ``$IZKIT_FAST`` is "1" (CI sets it)."""
    return os.environ.get("IZKIT_FAST", "0") == "1"


def course_config(name: str = "notebook-01", fast: bool | None = None) -> Config:
    """The config of a course run. notebook-01: ``Config.quick`` on the course's task (the answers of 4 + 2 x 4
    instructions on 5 dev examples); notebook-07: the default settings and every baseline, the paper's allocation
    among them, at the answers of 50 instructions on 20 dev examples (1,000). Fast mode: the answers of 3 + 1 x 3.
    """
    fast = fast_mode() if fast is None else fast
    server = blackbox_from_env()
    small = dict(n_init=3, n_rounds=1, batch_size=3)
    if name == "notebook-01":
        return Config.quick(TASK, **small, **server) if fast else Config.quick(TASK, **server)
    if name == "notebook-07":
        if fast:
            return Config.quick(TASK, **small, baselines=BASELINES_07, **server)
        return Config(TASK, baselines=BASELINES_07, **server).with_budget(50)  # 1,000 answers: a third of the paper's
    raise ValueError(f"no course run is named {name!r}; choose from {', '.join(COURSE_RUNS)}")


def course_folder(name: str = "notebook-01", runs: str | os.PathLike | None = None, fast: bool | None = None) -> Path:
    """The folder of a course run: ``runs/name``, or ``runs/name-fast`` in fast mode (runs: default ``$IZKIT_RUNS``)."""
    runs = Path(os.environ.get("IZKIT_RUNS", "../runs")) if runs is None else Path(runs)
    return runs / (f"{name}-fast" if (fast_mode() if fast is None else fast) else name)


def finished(folder: str | os.PathLike) -> bool:
    """Whether the run in folder has a record that reached its end (the ``done`` line)."""
    path = Path(folder) / RECORD_NAME
    try:
        return path.exists() and RunRecord.read(path).done
    except RecordError:  # an empty record: the run was stopped before it wrote anything
        return False


def archived_run(task: str = TASK, seed: int = 0) -> Replay:
    """One (task, seed) run of the archived study (``izkit.study.archived_study``), read back with no model: every
    method spent 150 distinct instructions, each scored on the 20 dev examples (the paper's allocation), so its
    InstructZero rows carry 20-entry score vectors. Notebooks 5 and 6 study the course's task from it."""
    folder = archived_study("study") / f"{task}-seed{seed}"
    if not (folder / RECORD_NAME).exists():
        raise FileNotFoundError(f"{folder}: no archived record for task {task!r}, seed {seed}")
    return replay(folder)


def course_run(name: str = "notebook-01", runs: str | os.PathLike | None = None, fast: bool | None = None,
               prefer: str | None = None) -> Replay:
    """A course run read back from its record, made first if its record is missing, or finished if it is unfinished.

    prefer: another course run to take instead when it is already finished (nothing is made for it), e.g. notebook
    8 takes notebook 7's run with its baselines when there is one, and notebook 1's otherwise.
    """
    fast = fast_mode() if fast is None else fast
    if prefer is not None and finished(course_folder(prefer, runs, fast)):
        name = prefer
    out = course_folder(name, runs, fast)
    if not finished(out):
        record = out / RECORD_NAME
        run(course_config(name, fast), out, resume=record.exists() and record.stat().st_size > 0)
    return replay(out)
