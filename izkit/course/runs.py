"""The course's runs: the configs of the two runs the course makes (notebooks 1 and 7), where they are kept, and the
archived study's runs that the notebooks after them read back without a model.

Notebooks 1 and 7 run InstructZero as the paper allocates its answers (Chen et al., ICML 2024, Algorithm 1): every
instruction is scored on the ``n_dev`` dev examples and the best on dev is kept; no successive halving and no
preimages (izkit's extensions, taught in notebook 9). ``course_config`` gives each notebook's config and
``course_folder`` its run folder:

    cfg = course_config("notebook-01", fast=FAST)      # Config.quick(...).as_paper(): the paper's allocation, small
    out = course_folder("notebook-01", RUNS, FAST)     # RUNS / "notebook-01", or "notebook-01-fast"

The runs live in ``$IZKIT_RUNS`` (default ``../runs``: beside the notebooks folder), one folder per run:
``notebook-01``, or ``notebook-01-fast`` in fast mode (``$IZKIT_FAST=1``: fewer instructions, the same code path). The
black box is the embedded model unless ``$IZKIT_BASE_URL`` and ``$IZKIT_BLACKBOX_MODEL`` name a server, as in every
notebook (``izkit.config.blackbox_from_env``).

No notebook reads another notebook's run: notebooks 5, 6 and 8 read one run of the archived study with
``archived_run`` (a paper-allocation record committed with the project), so what they show never depends on which
notebooks a student ran before, and they load no model to get it.
"""

from __future__ import annotations

import os
from pathlib import Path

from izkit.config import Config, blackbox_from_env
from izkit.records import RECORD_NAME
from izkit.replay import Replay, replay
from izkit.studies.study import archived_study

TASK = "larger_animal"  # the course's task: which of two animals is larger
COURSE_RUNS = ("notebook-01", "notebook-07")  # the runs the course makes
BASELINES_07 = ("matern", "uniform", "ape", "manual", "reference")  # notebook 7: the paper's baselines and two more
NOTEBOOK_07_INSTRUCTIONS = 50  # distinct instructions per method in notebook 7: a third of the paper's 150, so the
#                                run takes minutes on two CPU cores (each one scored on the 20 dev examples)


def fast_mode() -> bool:
    """Whether the course runs in fast mode: ``$IZKIT_FAST`` is "1" (CI sets it)."""
    return os.environ.get("IZKIT_FAST", "0") == "1"


def course_config(name: str = "notebook-01", fast: bool | None = None) -> Config:
    """The config of a course run, always in the paper's allocation (``Config.as_paper``).

    notebook-01: ``Config.quick`` on the course's task with the paper's 20 dev examples, 4 + 2 x 4 instructions, each
    scored on all 20, the best on dev kept. notebook-07: the paper's search (25 Sobol soft prompts, rounds of 25) at
    50 distinct instructions per method, InstructZero and every baseline alike. Fast mode (both): 3 + 1 x 3
    instructions on 5 dev examples.
    """
    fast = fast_mode() if fast is None else fast
    server = blackbox_from_env()
    small = dict(n_init=3, n_rounds=1, batch_size=3)  # fast mode: 6 instructions, a first round and one more
    if name == "notebook-01":
        if fast:
            return Config.quick(TASK, **small, **server).as_paper()
        return Config.quick(TASK, n_dev=20, **server).as_paper()
    if name == "notebook-07":
        if fast:
            return Config.quick(TASK, **small, baselines=BASELINES_07, **server).as_paper()
        return Config(TASK, baselines=BASELINES_07, **server).as_paper().with_instructions(NOTEBOOK_07_INSTRUCTIONS)
    raise ValueError(f"no course run is named {name!r}; choose from {', '.join(COURSE_RUNS)}")


def course_folder(name: str = "notebook-01", runs: str | os.PathLike | None = None, fast: bool | None = None) -> Path:
    """The folder of a course run: ``runs/name``, or ``runs/name-fast`` in fast mode (runs: default ``$IZKIT_RUNS``)."""
    runs = Path(os.environ.get("IZKIT_RUNS", "../runs")) if runs is None else Path(runs)
    return runs / (f"{name}-fast" if (fast_mode() if fast is None else fast) else name)


def archived_run(task: str = TASK, seed: int = 0) -> Replay:
    """One (task, seed) run of the archived study (``izkit.studies.study.archived_study``), read back with no model: every
    method spent 150 distinct instructions, each scored on the 20 dev examples (the paper's allocation), so its
    InstructZero rows carry 20-entry score vectors. Notebooks 5, 6, 8 and 9 study the course's task from it."""
    folder = archived_study("study") / f"{task}-seed{seed}"
    if not (folder / RECORD_NAME).exists():
        raise FileNotFoundError(f"{folder}: no archived record for task {task!r}, seed {seed}")
    return replay(folder)
