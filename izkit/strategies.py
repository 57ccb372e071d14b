"""How each method proposes a round's instructions: InstructZero's BO and the paper's baselines (sec. 4).

Every method is a small strategy with one call, ``propose(run, round, size) -> Proposal``: the soft prompts (or None)
and the ``size`` instructions to score this round, each one new to the method (one budget for every method: distinct
instructions scored). The loop (``izkit.loop``) records each proposal before scoring it, so a resumed run scores
exactly what it proposed.

- :class:`BayesOpt`: round 0 is a scrambled Sobol design in [-1, 1]^d; later rounds fit a GP on everything scored so
  far (eq. 9's coupled kernel for InstructZero, a plain Matern-5/2 for the ablation) and take expected improvement's
  maximisers (eq. 10), keeping those whose instruction is new.
- :class:`Uniform`: soft prompts drawn uniformly at random.
- :class:`APE`: instructions sampled from the generator with no soft prompt (APE's forward template).
- :class:`Manual`: one greedy instruction from the exemplars alone ("Manual (generator)" in tables).
- :class:`Reference`: the task's hand-written instruction, the paper's human reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from izkit.acquisition import optimize_acquisition, optimize_acquisition_from_incumbents
from izkit.generator import Sampling
from izkit.gp import diagnostics
from izkit.surrogate import SurrogateOptions, fit_gp


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


def new_instructions(instructions: list[str], seen: set[str], q: int) -> list[int]:
    """Which of the candidates (in preference order: best EI first) to score: the first q whose instruction is new.

    An instruction already scored, or written twice among the candidates, would spend an evaluation to learn nothing:
    the soft prompt -> instruction map is many-to-one. Repeats are never kept. Returns at most q indices, in order.
    """
    keep, taken = [], set(seen)
    for i, text in enumerate(instructions):
        if text not in taken and len(keep) < q:
            keep.append(i)
            taken.add(text)
    return keep


def fill_round(draw: Any, seen: set[str], size: int, screen: int, max_draws: int) -> Proposal:
    """Draw candidates until ``size`` new instructions are found, or ``max_draws`` candidates were drawn.

    ``draw(k, attempt, tried) -> (Z (k, d) or None, k instructions)`` gives k more candidates in preference order;
    ``tried`` (t, d) are the soft prompts drawn earlier this round. Every method spends its budget this way, so each
    scores the same number of distinct instructions (the budget of a fair comparison, DESIGN.md).
    """
    z_kept: list[list[float]] = []
    kept: list[str] = []
    tried: list[Any] = []
    drawn, attempt, taken, has_z = 0, 0, set(seen), True
    while len(kept) < size and drawn < max_draws:
        k = min((size - len(kept)) * screen, max_draws - drawn)
        Z, instructions = draw(k, attempt, torch.stack(tried) if tried else None)
        drawn, attempt = drawn + len(instructions), attempt + 1
        if Z is None:
            has_z = False
        else:
            tried.extend(Z)
        for i in new_instructions(instructions, taken, size - len(kept)):
            kept.append(instructions[i])
            taken.add(instructions[i])
            if Z is not None:
                z_kept.append(Z[i].tolist())
        if not instructions:
            break
    return Proposal(z_kept if has_z else None, kept, {"drawn": drawn, "new": len(kept), "attempts": attempt})


WIDEN_PASSES = 4  # BO passes over EI's maximisers (each spreading them further) before a round falls back to random


class BayesOpt:
    """Algorithm 1's proposals: Sobol points first, then expected improvement's maximisers (eq. 10) under the
    round's GP (eq. 9's coupled kernel, or a plain Matern-5/2), the best-ranked ones that write a new instruction.

    No evaluated soft prompt is proposed again: they, and the candidates tried earlier in the round, are excluded
    from the acquisition's optimisation. Each further pass asks for maximisers further apart (widening the search);
    after ``WIDEN_PASSES`` passes the rest of the round is drawn uniformly, and the proposal line counts those.
    """

    def __init__(self, method: str, coupled: bool):
        self.method, self.coupled = method, coupled

    def propose(self, run: Any, rnd: int, size: int) -> Proposal:
        cfg, gen = run.cfg, run.pipeline.generator
        evals = run.record.evals(self.method)
        seen = {e["instruction"] for e in evals}
        if rnd == 0:
            def draw(k: int, attempt: int, tried: Any) -> tuple[torch.Tensor, list[str]]:
                Z = sobol_design(k, cfg.d, cfg.seed + 7 * attempt)  # (k, d) a fresh scramble per attempt
                return Z, gen.generate(Z, run.pipeline.exemplars)
            return fill_round(draw, seen, size, 1, cfg.max_draws * size)
        gp = fit_gp(evals, coupled=self.coupled, similarity=cfg.similarity, seed=cfg.seed * 1000 + rnd,
                    options=SurrogateOptions.from_config(cfg))
        bounds = torch.stack([-torch.ones(cfg.d), torch.ones(cfg.d)]).double()  # (2, d): [-1, 1]^d
        evaluated = torch.tensor([e["z"] for e in evals], dtype=torch.float64)  # (m, d)
        acq_values: list[float] = []
        n_random = [0]

        def draw(k: int, attempt: int, tried: Any) -> tuple[torch.Tensor, list[str]]:
            exclude = evaluated if tried is None else torch.cat([evaluated, tried.double()])  # (e, d)
            if attempt == 0 and cfg.batch == "authors":  # one local search from each of the top-k evaluated points
                Z, acq = optimize_acquisition_from_incumbents(gp, bounds, q=k, exclude=exclude,
                                                              seed=cfg.seed * 1000 + rnd)  # (<= k, d)
                acq_values.extend(np.asarray(acq).tolist())
            elif attempt < WIDEN_PASSES:  # EI's maximisers, kept further apart from each other and the data each pass
                Z, acq = optimize_acquisition(gp, bounds, q=k, n_starts=cfg.acq_restarts,
                                              raw_samples=cfg.acq_raw_samples, exclude=exclude,
                                              seed=cfg.seed * 1000 + rnd + 100_000 * attempt,
                                              distinct_tol=min(1e-3 * 10**attempt, 0.25))  # (k, d)
                acq_values.extend(np.asarray(acq).tolist())
            else:  # EI has nothing new left near its maxima: uniform draws, counted on the proposal line
                stream = torch.Generator().manual_seed(cfg.seed * 1000 + rnd + 100_000 * attempt)
                Z = torch.rand(k, cfg.d, generator=stream, dtype=torch.float64) * 2 - 1  # (k, d)
                n_random[0] += k
            return Z, gen.generate(Z, run.pipeline.exemplars)

        prop = fill_round(draw, seen, size, cfg.screen, cfg.max_draws * size)
        prop.gp = {"log_marginal_likelihood": gp.log_marginal_likelihood,
                   "hyperparameters": {k: np.asarray(v).tolist() for k, v in gp.hyperparameters().items()},
                   "acquisition": acq_values, "diagnostics": diagnostics(gp, seed=cfg.seed * 1000 + rnd)}
        prop.facts["random"] = n_random[0]
        return prop


class Uniform:
    """Random search: soft prompts uniform in [-1, 1]^d (seeded per round), as many as it takes to find ``size``
    new instructions."""

    method = "uniform"

    def propose(self, run: Any, rnd: int, size: int) -> Proposal:
        cfg = run.cfg
        seen = {e["instruction"] for e in run.record.evals(self.method)}
        stream = torch.Generator().manual_seed((cfg.seed + 7919) * 1000 + rnd)

        def draw(k: int, attempt: int, tried: Any) -> tuple[torch.Tensor, list[str]]:
            Z = torch.rand(k, cfg.d, generator=stream, dtype=torch.float64) * 2 - 1  # (k, d)
            return Z, run.pipeline.generator.generate(Z, run.pipeline.exemplars)

        return fill_round(draw, seen, size, 1, cfg.max_draws * size)


class APE:
    """APE-style: instructions sampled (temperature, top-p) from the generator's plain forward template, as many as
    it takes to find ``size`` new ones."""

    method = "ape"

    def propose(self, run: Any, rnd: int, size: int) -> Proposal:
        seen = {e["instruction"] for e in run.record.evals(self.method)}

        def draw(k: int, attempt: int, tried: Any) -> tuple[None, list[str]]:
            sampling = Sampling(temperature=run.cfg.ape_temperature, seed=run.cfg.seed * 1000 + rnd + 100_000 * attempt)
            return None, run.pipeline.generator.generate_plain(run.pipeline.exemplars, n=k, sampling=sampling)

        return fill_round(draw, seen, size, 1, run.cfg.max_draws * size)


class Manual:
    """The generator's greedy instruction from the exemplars alone, no soft prompt: a single round of one."""

    method = "manual"

    def propose(self, run: Any, rnd: int, size: int) -> Proposal:
        return Proposal(None, run.pipeline.generator.generate_plain(run.pipeline.exemplars, n=1))


class Reference:
    """The task's hand-written instruction (its files' metadata), scored like the methods: the human reference."""

    method = "reference"

    def propose(self, run: Any, rnd: int, size: int) -> Proposal:
        return Proposal(None, [run.task.reference_instruction])


def strategy_for(method: str) -> Strategy:
    """The strategy object of a method name in ``izkit.config.METHODS``."""
    table = {"instructzero": lambda: BayesOpt("instructzero", coupled=True),
             "matern": lambda: BayesOpt("matern", coupled=False),
             "uniform": Uniform, "ape": APE, "manual": Manual, "reference": Reference}
    if method not in table:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(table)}")
    return table[method]()
