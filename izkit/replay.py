"""A run read back from its record with no model loaded: evaluations, best instructions, refitted GPs, figures.

    rep = replay("runs/antonyms-20261201-120000")
    rep.best()                       # the eval line of InstructZero's best instruction on dev
    rep.gp(upto_round=2)             # the GP that proposed round 3 (eq. 9), refitted from the record
    rep.figures()                    # every figure of the run (izkit.plots)
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from izkit.config import Config
from izkit.methods import METHOD
from izkit.records import RECORD_NAME, RunRecord
from izkit.resume import settings_of
from izkit.strategies import BayesOpt, Round, drawn_before, strategy_for
from izkit.surrogate import proposal_preimages


@dataclass
class Replay:
    """A finished (or interrupted) run read back from its record."""

    record: RunRecord

    @property
    def config(self) -> dict[str, Any]:
        return self.record.header["config"]

    @property
    def settings(self) -> Config:
        """The run's settings as a Config (what the strategies and the pipeline read)."""
        return settings_of(self.record.header)

    @property
    def objective(self) -> str:
        return self.record.header["objective"]

    def evals(self, method: str | None = None) -> list[dict[str, Any]]:
        return self.record.evals(method)

    def methods(self) -> list[str]:
        return list(dict.fromkeys(e["method"] for e in self.record.evals()))

    def best(self, method: str = "instructzero") -> dict[str, Any]:
        """The eval line of the method's best instruction on dev."""
        evals = [e for e in self.evals(method) if e["mean"] is not None]
        return max(evals, key=lambda e: e["mean"])

    def kept(self, method: str = "instructzero") -> dict[str, Any]:
        """The instruction the run kept for ``method`` and the mean it was kept on: halving's pick (its ``selection``
        line, judged on the last rung's examples) where the run chose by successive halving, else :meth:`best`
        (:meth:`izkit.records.RunRecord.kept`, the rule the run's test scoring followed)."""
        return self.record.kept(method)

    def test_scores(self, method: str = "instructzero") -> dict[str, float]:
        return {t["objective"]: t["mean"] for t in self.record.of_kind("test", method=method)}

    def gp(self, method: str = "instructzero", upto_round: int | None = None) -> Any:
        """Refit the GP of ``method`` on its evaluations up to (and including) ``upto_round`` (default: all): for a BO
        method the GP that proposed the next round, with its seeded restarts; for another search (Uniform), a plain
        Matern-5/2 GP on its soft prompts."""
        evals = [e for e in self.evals(method) if upto_round is None or e["round"] <= upto_round]
        rnd = max(e["round"] for e in evals) + 1
        bo = strategy_for(method)
        if not isinstance(bo, BayesOpt):
            bo = BayesOpt(method, coupled=False)
        return bo.fit(evals, self.settings, rnd,
                      proposal_preimages(list(self.record.of_kind("proposal", method=method)), rnd))

    def kernel_matrices(self, gp: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``L = l(Z, Z)``, ``S`` and ``K`` (eq. 9) of a fitted coupled GP (default: the run's InstructZero GP)."""
        return (gp if gp is not None else self.gp()).kernel_matrices()

    def figures(self) -> dict[str, Any]:
        """Every figure of the run, drawn from the record (see izkit.plots)."""
        from izkit import plots

        evals, obj = self.evals(), self.objective
        figs = {"best_so_far": plots.best_so_far(evals, obj),
                "rounds": plots.top_quantile_per_round(evals, objective=obj),
                "soft_prompts": plots.soft_prompt_map(evals, objective=obj)}
        if len(self.evals(METHOD)) >= 2:
            L, S, K = self.kernel_matrices()
            order = np.argsort([-(e["mean"] if e["mean"] is not None else -np.inf) for e in self.evals(METHOD)])
            figs["kernels"] = plots.kernel_heatmaps(L, S, K, order=order)
        return figs

    def save_figures(self, out: str | os.PathLike) -> list[Path]:
        """Draw every figure (no model needed) and save each as ``out/<name>.png``."""
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        paths = []
        for name, fig in self.figures().items():
            paths.append(Path(out) / f"{name}.png")
            fig.savefig(paths[-1], dpi=110)
            plt.close(fig)
        return paths

    def round(self, method: str, rnd: int, generator: Any = None, exemplars: Any = None,
              reference_instruction: str | None = None) -> Round:
        """What ``method``'s strategy saw at round ``rnd`` of this run, as the loop gave it (``Run`` builds its
        rounds the same way): the round's size and settings, its evaluations of earlier rounds and the preimages
        drawn before; the generator and exemplars are the caller's (a pipeline rebuilt from the record, or none)."""
        cfg = self.settings.for_method(method)
        proposals = list(self.record.of_kind("proposal", method=method))
        return Round(method, rnd, cfg.round_sizes[rnd], cfg, generator, exemplars,
                     [e for e in self.evals(method) if e["round"] < rnd], reference_instruction,
                     proposal_preimages(proposals, rnd), drawn_before(proposals, rnd))


def replay(path: str | os.PathLike) -> Replay:
    """Read a run back from its record (a run folder or the record file itself); no model is loaded, and the file is
    left as it is (a run still being written may be replayed as far as it has got)."""
    path = Path(path)
    return Replay(RunRecord.read(path / RECORD_NAME if path.is_dir() else path))
