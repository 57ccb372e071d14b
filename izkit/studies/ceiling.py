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
one (task, generator, prompt, pool); ``bench/studies/bench_ceiling.py`` tabulates them over tasks into
``bench/data/ceiling.json``, which :func:`archived_ceilings` reads back and :func:`ceiling_figure` draws (notebook 9).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from izkit.cleaner import EMPTY_PLACEHOLDER
from izkit.config import Config
from izkit.generator import Sampling
from izkit.tasks import load_task

POOLS = ("soft", "sampled")  # N greedy soft-prompted instructions, or N samples of APE's template
ARCHIVE = "ceiling.json"  # in bench/data/: "generator|prompt|pool|task|seed" -> a Ceiling's fields


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
    generator: str = ""  # the generator's name and prompt (izkit.prompts), as the archive's key names them
    prompt: str = ""

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


def archived_ceilings(path: str | Path | None = None) -> list[Ceiling]:
    """Every ceiling ``bench/studies/bench_ceiling.py`` archived (``path``, default ``bench/data/ceiling.json`` found
    as the archived studies are: izkit.studies.study.archived_study), in the archive's order."""
    from izkit.studies.study import archived_study

    store = json.loads(Path(path or archived_study(ARCHIVE)).read_text())
    names = {f.name for f in fields(Ceiling)}
    out = []
    for key, value in store.items():
        generator, prompt, *_ = key.split("|")
        out.append(Ceiling(**{k: v for k, v in value.items() if k in names - {"generator", "prompt"}},
                           generator=generator, prompt=prompt))
    return out


def ceiling_figure(ceilings: Sequence[Ceiling], generator: str | None = None, prompt: str | None = None) -> Any:
    """Per task, each pool's ceiling against the hand-written instruction on the same judge examples, for one
    generator and prompt (default: the first archived): what a search with that generator could at best keep."""
    import matplotlib.pyplot as plt

    generator = generator or ceilings[0].generator
    prompt = prompt or next(c.prompt for c in ceilings if c.generator == generator)
    mine = [c for c in ceilings if (c.generator, c.prompt) == (generator, prompt)]
    tasks = list(dict.fromkeys(c.task for c in mine))
    pools = [p for p in POOLS if any(c.pool == p for c in mine)]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(tasks) + 1.6))
    height = 0.8 / (len(pools) + 1)
    for k, pool in enumerate(pools):
        got = {c.task: c.judged for c in mine if c.pool == pool}
        ax.barh([i + k * height for i in range(len(tasks))], [got.get(t, np.nan) for t in tasks], height,
                label=f"ceiling: {'soft prompts' if pool == 'soft' else 'APE-style samples'}")
    ref = {c.task: c.reference_judged for c in mine}
    ax.barh([i + len(pools) * height for i in range(len(tasks))], [ref[t] for t in tasks], height, color="0.55",
            label="hand-written instruction")
    ax.set_yticks([i + height * len(pools) / 2 for i in range(len(tasks))], tasks)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"accuracy on {mine[0].judge_on} spare induce examples (the pick made on {mine[0].pick_on} others)")
    ax.set_title(f"What {generator} can write\n({prompt} prompt, {mine[0].drawn} candidates a pool)", pad=24)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(pools) + 1, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
