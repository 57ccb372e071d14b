"""The course: what the notebooks and assignments use beyond the method itself.

- :mod:`izkit.course.runs`: the two runs the course makes (notebooks 1 and 7) and the archived run notebooks 5, 6, 8
  and 9 read back; its names are importable from here (``from izkit.course import archived_run``);
- :mod:`izkit.course.widgets`: every interactive explorer, in one place to import from (the explorers themselves:
  :mod:`~izkit.course.explorer`, :mod:`~izkit.course.soft_prompt_explorer`, :mod:`~izkit.course.gp_explorers`,
  :mod:`~izkit.course.text_explorers`; notebook 9's simulations live with the studies, :mod:`izkit.studies.curse` and
  :mod:`izkit.studies.allocation`);
- :mod:`izkit.course.checks`: the assignments' friendly checks.

Nothing is imported until it is asked for, so ``import izkit.course.checks`` loads no run machinery.
"""

from __future__ import annotations

from typing import Any

_RUNS = ("TASK", "COURSE_RUNS", "BASELINES_07", "NOTEBOOK_07_INSTRUCTIONS", "fast_mode", "course_config",
         "course_folder", "archived_run")
__all__ = list(_RUNS)


def __getattr__(name: str) -> Any:
    """The runs' names (PEP 562), read from :mod:`izkit.course.runs` when first asked for."""
    if name in _RUNS:
        from izkit.course import runs

        return getattr(runs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
