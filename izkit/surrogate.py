"""The GP of a BO round, built from a run record's evaluation lines (paper sec. 3.2, eq. 9).

``fit_gp(evals)`` turns the scored soft prompts of one method into a fitted :class:`izkit.gp.GaussianProcess`: with
the instruction-coupled kernel (eq. 9), whose S is a Matern-5/2 kernel on the per-example score vectors (the authors'
code) or the expected agreement of the instructions' predictions (eq. 8); or a plain Matern-5/2 on z for the
"does the coupling help?" ablation. The loop, the replay of a record and the widgets all fit their GPs here.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch

from izkit.config import Config
from izkit.gp import GaussianProcess, GPConfig, mean_noise_variance
from izkit.kernels import InstructionCoupledKernel, Matern52, PredictionAgreement, ScoreMatern52
from izkit.metrics import normalise

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SurrogateOptions:
    """How the round's GP is built; the defaults are a run's (izkit.config.Config: the authors'). Why eq. 9 explores so
    little and what each option changes: notebook 5 (section 6) and bench/RESULTS.md ("Exploration with eq. 9")."""

    inputs: str = Config.gp_inputs  # "raw": z in [-1, 1]^d as it is; "unit": the kernels see (z + 1) / 2 in the cube
    score_standardize: str | None = Config.score_standardize  # S on score vectors standardised per "column" or "global"
    noise: str = Config.gp_noise  # "fitted" (floor 1e-4); "known": each dev mean's variance, var(per-example) / n_dev
    residual: bool = Config.residual  # add a stationary s_r l(z, z') beside eq. 9, s_r fitted

    @classmethod
    def from_config(cls, cfg: Any) -> SurrogateOptions:
        """The options a Config (or a record header's config dict) names; absent ones keep their defaults."""
        get = cfg.get if isinstance(cfg, dict) else (lambda k, d: getattr(cfg, k, d))
        return cls(get("gp_inputs", cls.inputs), get("score_standardize", cls.score_standardize),
                   get("gp_noise", cls.noise), bool(get("residual", cls.residual)))


def fit_gp(evals: list[dict[str, Any]], coupled: bool = True, similarity: str = Config.similarity,
           seed: int = Config.seed, options: SurrogateOptions | None = None) -> GaussianProcess:
    """The GP of a BO round, from record lines: the instruction-coupled kernel (eq. 9) or a plain Matern-5/2.

    similarity "matern" puts a Matern-5/2 kernel on the per-example score vectors (the authors' code); "agreement"
    uses the expected agreement of the instructions' predictions (eq. 8), which needs the accuracy objective.
    """
    opt = options or SurrogateOptions()
    evals = finite_evals(evals)
    Z = torch.tensor([e["z"] for e in evals], dtype=torch.float64)  # (m, d)
    y = torch.tensor([e["mean"] for e in evals], dtype=torch.float64)  # (m,)
    H = torch.tensor([e["scores"] for e in evals], dtype=torch.float64)  # (m, n_dev) per-example scores
    d = Z.shape[1]
    config = GPConfig(seed=seed, input_bounds=(-1.0, 1.0) if opt.inputs == "unit" else None,
                      noise_var_y=mean_noise_variance(H) if opt.noise == "known" else None)
    if not coupled:
        return GaussianProcess(Matern52(d), config=config).fit(Z, y)
    if similarity == "agreement":
        preds = [e["predictions"] for e in evals]
        if all(p == "" for row in preds for p in row):
            raise ValueError("similarity 'agreement' (eq. 8) compares predictions, and this record has none "
                             "(the loglik objective makes no answers); use objective 'accuracy' or similarity 'matern'")
        kernel = InstructionCoupledKernel(d, PredictionAgreement(), residual=opt.residual)
        instr = prediction_codes(preds)
    else:
        kernel = InstructionCoupledKernel(d, ScoreMatern52(H.shape[1], standardize=opt.score_standardize),
                                          residual=opt.residual)
        instr = H
    return GaussianProcess(kernel, config=config).fit(Z, y, instr)


def preimage_evals(evals: list[dict[str, Any]], preimages: list[tuple[list[float], str]]) -> list[dict[str, Any]]:
    """PRESTO's preimage sharing (Tang et al., 2024): the soft prompt -> instruction map is many-to-one, so a soft
    prompt that wrote an instruction already scored has that score without an answer spent. Each preimage
    ``(z, instruction)`` becomes a copy of its instruction's eval line with its own ``z`` (marked ``preimage``); those
    whose instruction has no eval line are left out."""
    by_text = {e["instruction"]: e for e in evals}
    return [{**by_text[text], "z": list(z), "preimage": True} for z, text in preimages if text in by_text]


def proposal_preimages(proposals: list[dict[str, Any]], before: int) -> list[tuple[list[float], str]]:
    """The ``(z, instruction)`` preimages that the proposal lines of rounds before ``before`` recorded, in order."""
    out: list[tuple[list[float], str]] = []
    for p in proposals:
        pre = p.get("preimages") or {}  # records made before preimages were kept have none
        if p["round"] < before:
            out += list(zip(pre.get("z", ()), pre.get("instructions", ())))
    return out


def prediction_codes(predictions: list[list[str]]) -> torch.Tensor:
    """Map normalised predictions to integer codes (m, n), per example, for the agreement similarity (eq. 8)."""
    table: dict[str, int] = {}
    return torch.tensor([[table.setdefault(normalise(p), len(table)) for p in row] for row in predictions])


def finite_evals(evals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The evaluations whose mean and per-example scores are all finite (a NaN is written to a record as null).

    The others are left out of the GP with a warning naming them; none left is a ValueError.
    """
    def ok(e: dict[str, Any]) -> bool:
        vals = [e["mean"], *e["scores"]]
        return all(v is not None and math.isfinite(v) for v in vals)

    bad = [e for e in evals if not ok(e)]
    if bad:
        names = ", ".join(f"({e['method']}, round {e['round']}, index {e['index']})" for e in bad[:5])
        if len(bad) == len(evals):
            raise ValueError(f"every evaluation has a NaN/inf score (e.g. {names}); the GP has nothing to fit")
        logger.warning("%d evaluation(s) with a NaN/inf score left out of the GP: %s", len(bad), names)
    return [e for e in evals if ok(e)]
