"""How each method proposes a round's instructions: InstructZero's BO and the paper's baselines (sec. 4).

Every method is a small strategy with one call, ``propose(round) -> Proposal``. A :class:`Round` holds what a round
needs and nothing else (the settings, the generator and its exemplars, the method's evaluations so far, the size);
the proposal is the soft prompts (or None) and ``size`` instructions, each new to the method (every method scores
as many distinct instructions). The loop (``izkit.loop``) records each proposal before scoring it, so a
resumed run scores exactly what it proposed. Each strategy says its ``kind``: a ``"search"`` spends its answers over
rounds; a ``"single"`` instruction is one round of one (no best-so-far curve, nothing to spend).

- :class:`BayesOpt`: round 0 is a scrambled Sobol design in [-1, 1]^d; later rounds fit a GP on everything scored so
  far (eq. 9's coupled kernel for InstructZero, a plain Matern-5/2 for the ablation) and take expected improvement's
  maximisers (eq. 10), keeping those whose instruction is new (Algorithm 1, steps 7-8).
- :class:`Uniform`: soft prompts drawn uniformly at random.
- :class:`APE`: instructions sampled from the generator with no soft prompt, with APE's forward template.
- :class:`Manual`: one greedy instruction from the exemplars alone ("Manual (generator)" in tables).
- :class:`Reference`: the task's hand-written instruction, the paper's human reference.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from izkit.acquisition import optimize_acquisition, optimize_acquisition_from_incumbents
from izkit.config import Config
from izkit.generator import Sampling
from izkit.gp import GaussianProcess, diagnostics
from izkit.methods import method as method_row
from izkit.seeds import design_seed, round_seed
from izkit.surrogate import SurrogateOptions, fit_gp, preimage_evals


@dataclass(frozen=True)
class Round:
    """What one round of one method needs: no more. The loop builds it; tests build it from fakes."""

    method: str
    rnd: int  # 0: the initial design
    size: int  # new instructions to propose
    cfg: Config  # the run's settings (seed, d, screen, max_draws, the surrogate's options ...)
    generator: Any  # generate(Z, exemplars) and generate_plain(...): izkit.generator.SoftPromptGenerator or a fake
    exemplars: Any  # the kappa demos the generator reads
    evals: list[dict[str, Any]]  # the method's eval lines so far (izkit.records), in the order they were written
    reference_instruction: str | None = None  # the task's hand-written instruction, where its files have one
    preimages: list[tuple[list[float], str]] = field(default_factory=list)  # earlier rounds' (z, instruction) drawn
    #                                                                        and not kept, their instruction scored
    drawn: int = 0  # candidates the method drew in its earlier rounds

    @property
    def seen(self) -> set[str]:
        """The instructions the method has scored: a proposal never repeats one."""
        return {e["instruction"] for e in self.evals}

    def seed(self, attempt: int = 0) -> int:
        """This (method, round, attempt)'s stream seed (izkit.seeds)."""
        return round_seed(self.cfg.seed, self.method, self.rnd, attempt)

    def draw_cap(self, size: int | None = None) -> int:
        """Candidates this round may draw for ``size`` new instructions (default: its own): ``cfg.max_draws`` per
        instruction over the whole search, so a round may use what earlier rounds saved (never fewer than ``size``).
        A round that finds fewer is short, and izkit.loop stops a halving search there."""
        size = self.size if size is None else size
        return max(size, math.floor(self.cfg.max_draws * (len(self.evals) + size)) - self.drawn)


@dataclass
class Proposal:
    """A round's batch: soft prompts (n, d) as lists, or None for methods without one, and their instructions."""

    z: list[list[float]] | None
    instructions: list[str]
    facts: dict[str, Any] = field(default_factory=dict)  # kept on the record's proposal line
    gp: dict[str, Any] | None = None  # the round's fitted GP, for the record's gp line


class Strategy(Protocol):
    kind: ClassVar[str]  # "search" (rounds over its answers) or "single" (one instruction)
    needs_reference: ClassVar[bool]  # True: only on tasks whose files carry a hand-written instruction

    def propose(self, r: Round) -> Proposal: ...


# (k, attempt, tried (t, d) or None) -> (Z (k, d) or None, k instructions): k more candidates, best first
Draw = Callable[[int, int, Any], tuple[Any, list[str]]]


def sobol_design(n: int, d: int, seed: int) -> torch.Tensor:
    """``n`` scrambled Sobol points in [-1, 1]^d, seeded: the initial design (paper: 25 points). Returns (n, d)."""
    engine = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed)
    return engine.draw(n, dtype=torch.float64) * 2 - 1


def uniform_box(k: int, d: int, stream: torch.Generator) -> torch.Tensor:
    """``k`` soft prompts uniform in [-1, 1]^d from a seeded stream. Returns (k, d)."""
    return torch.rand(k, d, generator=stream, dtype=torch.float64) * 2 - 1


def drawn_before(proposals: list[dict[str, Any]], rnd: int) -> int:
    """Candidates a method's proposal lines of rounds before ``rnd`` drew (sampled ones included): ``Round.drawn``."""
    return sum(p.get("drawn", 0) + p.get("sampled_drawn", 0) for p in proposals if p["round"] < rnd)


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


def fill_round(draw: Draw, seen: set[str], size: int, screen: int, max_draws: int) -> Proposal:
    """Draw candidates until ``size`` new instructions are found, or ``max_draws`` candidates were drawn.

    ``draw(k, attempt, tried)`` gives k more candidates in preference order; ``tried`` (t, d) are the soft prompts
    drawn earlier this round. Every method spends its answers this way, so each scores the same number of distinct
    instructions (a fair comparison: repeats count the same for every method). The soft prompts drawn
    and not kept whose instruction is scored all the same (before, or in this round) are the proposal's
    ``preimages``: PRESTO's free data for the GP (``--preimages``; izkit.surrogate.preimage_evals).
    """
    z_kept: list[list[float]] = []
    kept: list[str] = []
    tried: list[Any] = []
    others: list[tuple[list[float], str]] = []  # drawn, not kept: (soft prompt, the instruction it wrote)
    drawn, attempt, taken, has_z = 0, 0, set(seen), True
    while len(kept) < size and drawn < max_draws:
        k = min((size - len(kept)) * screen, max_draws - drawn)
        Z, instructions = draw(k, attempt, torch.stack(tried) if tried else None)
        drawn, attempt = drawn + len(instructions), attempt + 1
        if Z is None:
            has_z = False
        else:
            tried.extend(Z)
        keep = new_instructions(instructions, taken, size - len(kept))
        for i in keep:
            kept.append(instructions[i])
            taken.add(instructions[i])
            if Z is not None:
                z_kept.append(Z[i].tolist())
        if Z is not None:
            others += [(Z[i].tolist(), text) for i, text in enumerate(instructions) if i not in keep]
        if not instructions:
            break
    facts: dict[str, Any] = {"drawn": drawn, "new": len(kept), "attempts": attempt}
    if len(kept) < size:
        facts["short"] = True  # the draws ran out first: a halving search stops after this round (izkit.loop)
    shared = [(z, text) for z, text in others if text in taken]
    if has_z and shared:  # the preimages: soft prompts whose instruction is scored (now or before) without them
        facts["preimages"] = {"z": [z for z, _ in shared], "instructions": [t for _, t in shared]}
    return Proposal(z_kept if has_z else None, kept, facts)


WIDEN_PASSES = 4  # BO passes over EI's maximisers (each spreading them further) before a round falls back to random


class BayesOpt:
    """Algorithm 1's proposals: Sobol points first, then expected improvement's maximisers (eq. 10) under the
    round's GP (eq. 9's coupled kernel, or a plain Matern-5/2), the best-ranked ones that write a new instruction.

    No evaluated soft prompt is proposed again: they, and the candidates tried earlier in the round, are excluded
    from the acquisition's optimisation. Each further pass asks for maximisers further apart (widening the search);
    after ``WIDEN_PASSES`` passes the rest of the round is drawn uniformly, and the proposal line counts those.
    """

    kind, needs_reference = "search", False

    def __init__(self, method: str, coupled: bool):
        self.method, self.coupled = method, coupled

    def propose(self, r: Round) -> Proposal:
        if r.rnd == 0:
            return self.initial_design(r)
        gp = self.fit(r.evals, r.cfg, r.rnd, r.preimages)  # step 7: the GP on everything scored so far
        batch = EIBatch(gp, r)  # step 8: EI's maximisers, then the new instructions among them
        prop = fill_round(batch.draw, r.seen, r.size, r.cfg.screen, r.draw_cap())
        prop.gp = {"log_marginal_likelihood": gp.log_marginal_likelihood_,
                   "hyperparameters": {k: np.asarray(v).tolist() for k, v in gp.hyperparameters().items()},
                   "acquisition": batch.acq_values, "diagnostics": diagnostics(gp, seed=r.seed())}
        prop.facts["random"] = batch.n_random
        return prop

    def initial_design(self, r: Round) -> Proposal:
        """Round 0: scrambled Sobol points, a fresh scramble for each further pass (the same for both BOs)."""
        def draw(k: int, attempt: int, tried: Any) -> tuple[torch.Tensor, list[str]]:
            Z = sobol_design(k, r.cfg.d, design_seed(r.cfg.seed, attempt))  # (k, d)
            return Z, r.generator.generate(Z, r.exemplars)

        return fill_round(draw, r.seen, r.size, 1, r.draw_cap())

    def fit(self, evals: list[dict[str, Any]], cfg: Config, rnd: int,
            preimages: list[tuple[list[float], str]] = ()) -> GaussianProcess:
        """The GP that proposes round ``rnd`` from the evaluations before it that have a soft prompt: eq. 9's kernel
        or a plain Matern-5/2; with ``cfg.preimages``, also from the soft prompts that wrote an instruction scored
        without them (PRESTO), a sampled one included."""
        data = soft_evals(evals) + (preimage_evals(evals, preimages) if cfg.preimages else [])
        return fit_gp(data, coupled=self.coupled, similarity=cfg.similarity,
                      seed=round_seed(cfg.seed, self.method, rnd), options=SurrogateOptions.from_config(cfg))


class EIBatch:
    """The candidates of one BO round, pass after pass (eq. 10): EI's maximisers, spread further apart each pass.

    The first pass is the batch rule the config names (EI's top maximisers, or the authors' one local search per
    top evaluated point); passes up to ``WIDEN_PASSES`` keep maximisers further from each other and the data; later
    ones draw uniformly (``n_random`` counts them). ``acq_values`` collects the acquisition values for the record.
    """

    def __init__(self, gp: GaussianProcess, r: Round):
        self.gp, self.r = gp, r
        self.bounds = torch.stack([-torch.ones(r.cfg.d), torch.ones(r.cfg.d)]).double()  # (2, d): [-1, 1]^d
        self.evaluated = torch.tensor([e["z"] for e in soft_evals(r.evals)], dtype=torch.float64)  # (m, d)
        self.acq_values: list[float] = []
        self.n_random = 0

    def draw(self, k: int, attempt: int, tried: Any) -> tuple[torch.Tensor, list[str]]:
        cfg, seed = self.r.cfg, self.r.seed(attempt)
        exclude = self.evaluated if tried is None else torch.cat([self.evaluated, tried.double()])  # (e, d)
        if attempt == 0 and cfg.batch == "authors":  # one local search from each of the top-k evaluated points
            Z, acq = optimize_acquisition_from_incumbents(self.gp, self.bounds, q=k, exclude=exclude, seed=seed)
            self.acq_values.extend(np.asarray(acq).tolist())
        elif attempt < WIDEN_PASSES:  # EI's maximisers, kept further apart from each other and the data each pass
            Z, acq = optimize_acquisition(self.gp, self.bounds, q=k, n_starts=cfg.acq_restarts,
                                          raw_samples=cfg.acq_raw_samples, exclude=exclude, seed=seed,
                                          distinct_tol=min(1e-3 * 10**attempt, 0.25))  # (k, d)
            self.acq_values.extend(np.asarray(acq).tolist())
        else:  # EI has nothing new left near its maxima: uniform draws, counted on the proposal line
            Z = uniform_box(k, cfg.d, torch.Generator().manual_seed(seed))  # (k, d)
            self.n_random += k
        return Z, self.r.generator.generate(Z, self.r.exemplars)


class Uniform:
    """Random search: soft prompts uniform in [-1, 1]^d (one seeded stream per round), as many as it takes to find
    ``size`` new instructions."""

    kind, needs_reference = "search", False

    def propose(self, r: Round) -> Proposal:
        stream = torch.Generator().manual_seed(r.seed())

        def draw(k: int, attempt: int, tried: Any) -> tuple[torch.Tensor, list[str]]:
            Z = uniform_box(k, r.cfg.d, stream)  # (k, d)
            return Z, r.generator.generate(Z, r.exemplars)

        return fill_round(draw, r.seen, r.size, 1, r.draw_cap())


class APE:
    """APE-style: instructions sampled (temperature, top-p) from the generator with APE's forward template (Zhou et
    al., 2023) and no soft prompt, as many as it takes to find ``size`` new ones."""

    kind, needs_reference = "search", False

    def propose(self, r: Round) -> Proposal:
        return self.sample(r, r.seen, r.size)

    @staticmethod
    def sample(r: Round, seen: set[str], size: int) -> Proposal:
        """``size`` sampled instructions new to ``seen``, from this round's seeded streams (one per attempt)."""
        def draw(k: int, attempt: int, tried: Any) -> tuple[None, list[str]]:
            sampling = Sampling(temperature=r.cfg.ape_temperature, seed=r.seed(attempt))
            return None, r.generator.generate_ape(r.exemplars, n=k, sampling=sampling)

        return fill_round(draw, seen, size, 1, r.draw_cap(size))


class Mixed:
    """A soft-prompt search (InstructZero, plain Matern BO or Uniform) with a mixed pool: of each round's ``size``
    new instructions, the share ``cfg.sampled`` is sampled APE-style (no soft prompt), the rest is the search's own
    proposal. Both halves go through the same scoring and selection; the GP sees only the soft-prompted ones."""

    kind, needs_reference = "search", False

    def __init__(self, inner: Strategy):
        self.inner = inner

    def propose(self, r: Round) -> Proposal:
        n_sampled = math.floor(r.size * r.cfg.sampled + 0.5)
        own = (self.inner.propose(dataclasses.replace(r, size=r.size - n_sampled)) if r.size > n_sampled
               else Proposal([], []))
        sampled = APE.sample(r, r.seen | set(own.instructions), n_sampled)
        z = list(own.z or []) + [None] * len(sampled.instructions)  # a sampled instruction has no soft prompt
        facts = {**own.facts, "sampled": len(sampled.instructions), "sampled_drawn": sampled.facts["drawn"]}
        return Proposal(z, own.instructions + sampled.instructions, facts, own.gp)


def soft_evals(evals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The evaluations that have a soft prompt (a mixed pool's sampled instructions have none): what a GP sees."""
    return [e for e in evals if e.get("z") is not None]


class Manual:
    """The generator's greedy instruction from the exemplars alone, no soft prompt: a single round of one."""

    kind, needs_reference = "single", False

    def propose(self, r: Round) -> Proposal:
        return Proposal(None, r.generator.generate_plain(r.exemplars, n=1))


class Reference:
    """The task's hand-written instruction (its files' metadata), scored like the methods: the human reference."""

    kind, needs_reference = "single", True

    def propose(self, r: Round) -> Proposal:
        if not r.reference_instruction:
            raise ValueError("this task has no reference_instruction in its metadata: no hand-written row")
        return Proposal(None, [r.reference_instruction])


def strategy_for(method: str, cfg: Config | None = None) -> Strategy:
    """The strategy object of a method in the methods' table (``izkit.methods``, which says how to make it); given the
    run's settings, a soft-prompt search with ``cfg.sampled > 0`` draws from a mixed pool (:class:`Mixed`)."""
    row = method_row(method)  # a ValueError names the methods there are
    made = globals()[row.strategy]
    strategy = made(row.name, row.coupled) if row.coupled is not None else made()
    if cfg is not None and cfg.sampled > 0 and row.soft_prompts and row.is_search:
        return Mixed(strategy)
    return strategy


def is_search(method: str) -> bool:
    """Whether a method spends its answers over rounds (a search), not one fixed instruction (Manual, Reference)."""
    return method_row(method).is_search
