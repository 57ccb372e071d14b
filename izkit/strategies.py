"""How each method proposes a round's instructions: InstructZero's BO and the paper's baselines (sec. 4).

Every method is a small strategy with one call, ``propose(run, round, size) -> Proposal``: the soft prompts (or None)
and the instructions to score this round. The loop (``izkit.loop``) records each proposal before scoring it, so a
resumed run scores exactly what it proposed.

- :class:`BayesOpt`: round 0 is a scrambled Sobol design in [-1, 1]^d; later rounds fit a GP on everything scored so
  far (eq. 9's coupled kernel for InstructZero, a plain Matern-5/2 for the ablation) and take expected improvement's
  maximisers (eq. 10), keeping those whose instruction is new.
- :class:`Uniform`: the same number of soft prompts drawn uniformly at random.
- :class:`APE`: instructions sampled from the generator with no soft prompt (APE's forward template).
- :class:`Manual`: one greedy instruction from the exemplars alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from izkit.acquisition import optimize_acquisition
from izkit.generator import Sampling
from izkit.surrogate import fit_gp


@dataclass
class Proposal:
    """A round's batch: soft prompts (n, d) as lists, or None for methods without one, and their instructions."""

    z: list[list[float]] | None
    instructions: list[str]
    facts: dict[str, Any] = field(default_factory=dict)  # kept on the record's proposal line
    gp: dict[str, Any] | None = None  # the round's fitted GP, for the record's gp line


class Strategy(Protocol):
    def propose(self, run: Any, rnd: int, size: int) -> Proposal: ...


def sobol_design(n: int, d: int, seed: int) -> torch.Tensor:
    """``n`` scrambled Sobol points in [-1, 1]^d, seeded: the initial design (paper: 25 points). Returns (n, d)."""
    engine = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed)
    return engine.draw(n, dtype=torch.float64) * 2 - 1


def screen_new_instructions(instructions: list[str], seen: set[str], q: int) -> list[int]:
    """Which q of the candidates (best EI first) to evaluate: the best whose instruction is new, in EI order.

    An instruction already scored (or written twice among the candidates) would spend a black-box evaluation to learn
    nothing: the soft prompt to instruction map is many-to-one. When fewer than q candidates are new, the batch is
    filled with the best of the rest (scored from the cache). Returns q candidate indices (fewer if there are fewer
    candidates), in EI order.
    """
    new, rest, taken = [], [], set(seen)
    for i, text in enumerate(instructions):
        if text not in taken:
            new.append(i)
            taken.add(text)
        else:
            rest.append(i)
    return sorted(new[:q] + rest[: max(q - len(new), 0)])


class BayesOpt:
    """Algorithm 1's proposals: Sobol points first, then the top EI maximisers of the round's GP (eq. 9 or Matern)."""

    def __init__(self, method: str, coupled: bool):
        self.method, self.coupled = method, coupled

    def propose(self, run: Any, rnd: int, size: int) -> Proposal:
        cfg = run.cfg
        if rnd == 0:
            Z = sobol_design(size, cfg.d, cfg.seed)  # (n_init, d)
            return Proposal(Z.tolist(), run.pipeline.generator.generate(Z, run.pipeline.exemplars))
        evals = run.record.evals(self.method)
        gp = fit_gp(evals, coupled=self.coupled, similarity=cfg.similarity, seed=cfg.seed * 1000 + rnd)
        bounds = torch.stack([-torch.ones(cfg.d), torch.ones(cfg.d)]).double()  # (2, d): [-1, 1]^d
        Z, acq = optimize_acquisition(gp, bounds, q=size * cfg.screen, n_starts=cfg.acq_restarts,
                                      raw_samples=cfg.acq_raw_samples, seed=cfg.seed * 1000 + rnd)  # (screen q, d)
        gp_line = {"log_marginal_likelihood": gp.log_marginal_likelihood,
                   "hyperparameters": {k: np.asarray(v).tolist() for k, v in gp.hyperparameters().items()},
                   "acquisition": acq}
        seen = {e["instruction"] for e in evals}
        instructions = run.pipeline.generator.generate(Z, run.pipeline.exemplars)
        keep = screen_new_instructions(instructions, seen, size)
        n_new = len({instructions[i] for i in keep} - seen)
        return Proposal(Z[keep].tolist(), [instructions[i] for i in keep], {"screened": len(Z), "new": n_new},
                        gp=gp_line)


class Uniform:
    """Random search: soft prompts uniform in [-1, 1]^d, one seeded stream sliced round by round."""

    method = "uniform"

    def propose(self, run: Any, rnd: int, size: int) -> Proposal:
        cfg = run.cfg
        gen = torch.Generator().manual_seed(cfg.seed + 7919)
        Z_all = torch.rand(cfg.budget, cfg.d, generator=gen, dtype=torch.float64) * 2 - 1  # (budget, d)
        start = sum(cfg.round_sizes[:rnd])
        Z = Z_all[start:start + size]  # (size, d)
        return Proposal(Z.tolist(), run.pipeline.generator.generate(Z, run.pipeline.exemplars))


class APE:
    """APE-style: instructions sampled (temperature, top-p) from the generator's plain forward template."""

    method = "ape"

    def propose(self, run: Any, rnd: int, size: int) -> Proposal:
        sampling = Sampling(temperature=run.cfg.ape_temperature, seed=run.cfg.seed * 1000 + rnd)
        return Proposal(None, run.pipeline.generator.generate_plain(run.pipeline.exemplars, n=size,
                                                                    sampling=sampling))


class Manual:
    """One greedy instruction from the exemplars alone, no soft prompt: a single round of one."""

    method = "manual"

    def propose(self, run: Any, rnd: int, size: int) -> Proposal:
        return Proposal(None, run.pipeline.generator.generate_plain(run.pipeline.exemplars, n=1))


def strategy_for(method: str) -> Strategy:
    """The strategy object of a method name in ``izkit.config.METHODS``."""
    table = {"instructzero": lambda: BayesOpt("instructzero", coupled=True),
             "matern": lambda: BayesOpt("matern", coupled=False),
             "uniform": Uniform, "ape": APE, "manual": Manual}
    if method not in table:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(table)}")
    return table[method]()
