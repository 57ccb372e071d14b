"""izkit: a Jupyter-first teaching toolkit for InstructZero (Chen et al., ICML 2024).

Soft prompts on an open-source LLM generate instructions, a black-box LLM scores them zero-shot, and Bayesian
optimisation with the instruction-coupled kernel (paper eq. 9) proposes better soft prompts.

The method is the top level: tasks, metrics, generator, decoding, cleaner, blackbox/, kernels, gp, acquisition,
surrogate, selection, and the loop that runs them (config, methods, strategies, loop, records, resume, replay).
What serves it is grouped by purpose: ``izkit.course`` (the notebooks' runs, explorers, widgets and the assignments'
checks), ``izkit.studies`` (compare, fan-out, statistics, reports, the winner's analysis) and ``izkit.serving``
(servers, the watcher process, a remote generator). Modules that lived at the top level before 2026-12-07 import
under their old names too (:data:`MOVED`): ``import izkit.widgets`` is ``izkit.course.widgets``.
"""

import importlib
import importlib.abc
import importlib.util
import sys
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("izkit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

MOVED = {  # old module -> where it lives now (a package moved whole takes its submodules along)
    **{f"izkit.{m}": f"izkit.course.{m}" for m in
       ("explorer", "soft_prompt_explorer", "gp_explorers", "text_explorers", "widgets", "checks")},
    **{f"izkit.{m}": f"izkit.studies.{m}" for m in
       ("compare", "fanout", "study", "study_report", "winner", "curse", "allocation")},
    **{f"izkit.{m}": f"izkit.serving.{m}" for m in ("serve", "child", "remote", "loopback")},
}


def moved_to(name: str) -> str | None:
    """The module an old import path now names (``izkit.checks.matern`` -> ``izkit.course.checks.matern``), or None."""
    for old, new in MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return None


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old path as the module it moved to: the same module object under both names, so a patch through
    either reaches it."""

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001 (importlib's signature)
        return importlib.util.spec_from_loader(name, self) if moved_to(name) else None

    def create_module(self, spec):  # noqa: ANN001
        return importlib.import_module(moved_to(spec.name))

    def exec_module(self, module) -> None:  # noqa: ANN001
        pass  # already executed under its new name


if not any(isinstance(f, _OldPaths) for f in sys.meta_path):
    sys.meta_path.insert(0, _OldPaths())  # before the path finder, which would load a second copy of a submodule

__all__ = ["MOVED", "__version__", "moved_to"]
