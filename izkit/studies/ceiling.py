"""What the generator can write: the best instruction a pool of candidates holds, picked and judged on spare examples.

A search can only keep an instruction its generator writes. The ceiling of a generator and prompt on a task is read
off a pool drawn without any search, then picked the way a careful search would pick, on examples no run reads:

    pool     N soft prompts, the paper's initial design (scrambled Sobol points in [-1, 1]^d through the run's
             projection A), each decoded greedily; or N instructions sampled with APE's forward template
    pick     every distinct instruction scored on the first ``pick_on`` spare induce examples; the best mean kept
             (ties: the first written)
    judge    the pick, and the hand-written instruction, scored on the next ``judge_on`` spare induce examples

The spare induce examples are those a run's splits leave out (neither exemplars nor dev, ``Task.spare_induce``), so
the pick is honest about the winner's curse and the test split is never read. :func:`ceiling` returns the numbers of
one (task, generator, prompt, pool); ``bench/studies/bench_ceiling.py`` tabulates them over tasks, and notebook 9
reads the archived table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from izkit.cleaner import EMPTY_PLACEHOLDER
from izkit.config import Config
from izkit.generator import Sampling
from izkit.tasks import load_task

POOLS = ("soft", "sampled")  # N greedy soft-prompted instructions, or N samples of APE's template


@dataclass
class Ceiling:
    """One pool's ceiling on one task (see the module docstring); scores are means on the named examples."""

    task: str
    pool: str  # "soft" or "sampled"
    drawn: int  # candidates written
    distinct: list[str]  # the distinct instructions, placeholders left out, in the order written
    placeholders: int  # candidates the cleaner turned into its placeholder (a loop, or nothing)
    pick: str  # the best distinct instruction on the pick examples
    pick_on: int
    pick_mean: float  # its mean on the pick examples (biased upwards: the winner's curse)
    judge_on: int
    judged: float  # its mean on the judge examples: the ceiling
    reference: str | None = None  # the task's hand-written instruction
    reference_judged: float = float("nan")  # on the same judge examples
    seconds_per_candidate: float = float("nan")
    screen: list[float] = field(default_factory=list)  # every distinct instruction's mean on the pick examples

    @property
    def gap(self) -> float:
        """The ceiling minus the hand-written instruction's score on the same examples (negative: it falls short)."""
        return self.judged - self.reference_judged


def draw_pool(cfg: Config, pipeline: Any, pool: str, n: int) -> list[str]:
    """``n`` candidates from the run's generator: ``"soft"``, greedy from ``n`` Sobol soft prompts (the design a run
    starts from, seeded by ``cfg.seed``); ``"sampled"``, sampled with APE's template at ``cfg.ape_temperature``."""
    from izkit.seeds import design_seed
    from izkit.strategies import sobol_design

    if pool == "soft":
        return pipeline.generator.generate(sobol_design(n, cfg.d, design_seed(cfg.seed, 0)), pipeline.exemplars)
    if pool == "sampled":
        sampling = Sampling(temperature=cfg.ape_temperature, seed=design_seed(cfg.seed, 0))
        return pipeline.generator.generate_ape(pipeline.exemplars, n=n, sampling=sampling)
    raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")


def pick_and_judge(candidates: list[str], blackbox: Any, metric: str, pick_examples: Any, judge_examples: Any
                   ) -> tuple[list[str], np.ndarray, int, float]:
    """The distinct candidates (placeholders out), their means on ``pick_examples`` (n,), the index of the best
    (ties: the first) and its mean on ``judge_examples``."""
    distinct = list(dict.fromkeys(c for c in candidates if c != EMPTY_PLACEHOLDER))
    if not distinct:
        return [], np.zeros(0), -1, float("nan")
    screen = np.asarray(blackbox.score(distinct, pick_examples, metric).means, dtype=float)  # (n,)
    best = int(np.argmax(screen))  # the first of equal means
    judged = float(blackbox.score([distinct[best]], judge_examples, metric).means[0])
    return distinct, screen, best, judged


def ceiling(cfg: Config, pool: str = "soft", n: int = 100, pick_on: int = 20, judge_on: int = 50,
            pipeline: Any = None) -> Ceiling:
    """The ceiling of ``cfg``'s generator and prompt (``generator``, ``generator_prompt``, ``layout``) on
    ``cfg.task``: ``n`` candidates from ``pool``, picked on ``pick_on`` spare induce examples, judged on the next
    ``judge_on`` (a ValueError when the task has too few). ``pipeline`` may be given (loaded once for many tasks)."""
    from izkit.pipeline import Pipeline

    task = load_task(cfg.task, root=cfg.root)
    spare = task.spare_induce(cfg.kappa, cfg.n_dev, cfg.seed)
    if len(spare) < pick_on + judge_on:
        raise ValueError(f"{task.induce_path}: {len(spare)} spare induce examples, fewer than pick_on + judge_on = "
                         f"{pick_on} + {judge_on}")
    picks, judges = spare[:pick_on], spare[pick_on: pick_on + judge_on]
    splits = task.splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed)
    pipeline = pipeline or Pipeline.from_config(cfg, splits, task.metric)
    t = time.perf_counter()
    drawn = draw_pool(cfg, pipeline, pool, n)
    per = (time.perf_counter() - t) / max(len(drawn), 1)
    distinct, screen, best, judged = pick_and_judge(drawn, pipeline.blackbox, task.metric, picks, judges)
    ref = task.reference_instruction or None
    ref_judged = (float(pipeline.blackbox.score([ref], judges, task.metric).means[0]) if ref else float("nan"))
    return Ceiling(task.name, pool, len(drawn), distinct, sum(c == EMPTY_PLACEHOLDER for c in drawn),
                   distinct[best] if best >= 0 else "", pick_on, float(screen[best]) if best >= 0 else float("nan"),
                   judge_on, judged, ref, ref_judged, per, screen.tolist())
