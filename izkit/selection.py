"""Choosing the winner with the black-box answers allowed: successive halving over nested, paired example sets.

A run pays for answers (one instruction on one example), not for instructions. Scoring every candidate on the same
20 dev examples and keeping the best one has a winner's curse: the best of many noisy means is best partly by luck.
Successive halving (Jamieson & Talwalkar, 2016; used for prompts by TRIPLE, NeurIPS 2024, and inside Hyperband by
HbBoPs, ICML 2025) spends few answers on every candidate and many on the few that stay ahead:

    rung 0:  all n candidates scored on the first e_0 examples
    rung r:  the best ceil(n_{r-1} / eta) of rung r-1, scored on examples e_{r-1} .. e_r  (so on the first e_r in all)
    pick:    the best candidate of the last rung, by its mean over the first e_R examples

Every candidate of a rung has seen the same examples (a paired comparison), each rung's examples extend the one
below, and ties go to the candidate scored first (the loop's rule) unless another order is given (``--halving-ties``).
The examples come from the induce split (dev, then the spare induce examples), never the test split: the caller
decides which, this file sees only score matrices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Rung:
    """One level of successive halving: how many candidates reach it and on how many examples each is judged."""

    examples: int  # e_r: the candidates here have been scored on the first e_r examples
    candidates: int  # n_r


def halving_rungs(n_candidates: int, first: int, eta: float, top: int) -> list[Rung]:
    """The rungs for ``n_candidates``: ``first`` examples each, then ``eta`` times more examples for the best
    ``1/eta`` of them, rung after rung, until ``top`` examples (the last rung, reached exactly) or one candidate.

    ``halving_rungs(27, 5, 3, 100)`` is 27 at 5 examples, 9 at 15, 3 at 45, 1 at 100.
    """
    if n_candidates < 1 or first < 1 or top < first or not eta > 1:
        raise ValueError(f"need n_candidates >= 1, 1 <= first <= top and eta > 1; got {n_candidates}, {first}, "
                         f"{top}, {eta}")
    rungs = [Rung(first, n_candidates)]
    while rungs[-1].examples < top and rungs[-1].candidates > 1:
        last = rungs[-1]
        rungs.append(Rung(min(top, math.ceil(last.examples * eta)), math.ceil(last.candidates / eta)))
    return rungs  # one candidate left before ``top``: it is the pick, and more answers on it would not change that


def answers(rungs: Sequence[Rung]) -> int:
    """Black-box answers the rungs cost: ``sum_r n_r (e_r - e_{r-1})``, since each rung's examples extend the last."""
    spent, below = 0, 0
    for rung in rungs:
        spent += rung.candidates * (rung.examples - below)
        below = rung.examples
    return spent


def most_candidates(allowed: int, first: int, eta: float, top: int) -> int:
    """The most candidates whose successive halving fits in ``allowed`` answers (0 when not even one fits)."""
    lo, hi = 0, max(1, allowed // first)  # answers grow with n; n * first <= allowed bounds it
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if answers(halving_rungs(mid, first, eta, top)) <= allowed:
            lo = mid
        else:
            hi = mid - 1
    return lo


def widest_first(n_candidates: int, allowed: int, first: int, eta: float, top: int) -> int:
    """The most examples (from ``first`` up to ``top``) the first rung can give ``n_candidates`` with the later rungs
    still within ``allowed`` answers: where a search found fewer candidates than the answers were planned for, the
    answers left widen every rung instead of going unspent. ``first`` when no wider rung fits."""
    fits = [e for e in range(first, top + 1) if answers(halving_rungs(n_candidates, e, eta, top)) <= allowed]
    return max(fits, default=first)


def top_k(means: np.ndarray, k: int, rank: Sequence[float] | None = None) -> list[int]:
    """Indices of the ``k`` highest means, best first; equal means go by ``rank`` (lower first), by default their
    order (the earlier-scored wins)."""
    order = sorted(range(len(means)), key=lambda i: (-means[i], 0 if rank is None else rank[i]))  # stable
    return order[:k]


# score(candidates, start, stop) -> (len(candidates), stop - start) per-example scores on examples[start:stop]
Scorer = Callable[[list[int], int, int], np.ndarray]


@dataclass
class Halving:
    """What successive halving did: the pick, each rung's members and their means, and the answers it spent."""

    pick: int  # the candidate kept: best of the last rung
    members: list[list[int]]  # per rung, the candidates scored there, best of the rung below first
    means: list[dict[int, float]]  # per rung, candidate -> mean over the rung's examples
    answers: int  # black-box answers asked for
    scores: dict[int, np.ndarray] = field(default_factory=dict)  # candidate -> its per-example scores, all rungs


def successive_halving(score: Scorer, rungs: Sequence[Rung], known: dict[int, np.ndarray] | None = None,
                       ties: Sequence[float] | None = None) -> Halving:
    """Run the rungs: score the members of each on the rung's new examples, promote the best, pick from the last.

    ``known`` holds per-example scores a candidate already has on the first examples (e.g. the search scored every
    candidate on the first e_0 examples as it went): they are reused, never asked for again. Candidates are
    ``0 .. rungs[0].candidates - 1``. ``ties[i]`` orders candidate i among equal means at every promotion and at
    the pick (lower first); None: the earlier-scored first. On few examples whole rungs tie, so this order decides.
    """
    have = {i: np.asarray(s, dtype=float) for i, s in (known or {}).items()}
    members = list(range(rungs[0].candidates))
    out = Halving(pick=-1, members=[], means=[], answers=0, scores=have)
    for r, rung in enumerate(rungs):
        if r:
            rank = None if ties is None else [ties[i] for i in members]
            members = [members[j] for j in top_k(np.array([out.means[-1][i] for i in members]), rung.candidates, rank)]
        starts = {i: len(have.get(i, ())) for i in members}
        for start in sorted(set(starts.values())):
            if start >= rung.examples:
                continue
            group = [i for i in members if starts[i] == start]  # the same new examples for all of them: paired
            new = np.asarray(score(group, start, rung.examples), dtype=float)  # (len(group), e_r - start)
            if new.shape != (len(group), rung.examples - start):
                raise ValueError(f"the scorer returned shape {new.shape} for {len(group)} candidates on examples "
                                 f"{start}..{rung.examples}")
            out.answers += new.size
            for row, i in enumerate(group):
                have[i] = np.concatenate([have.get(i, np.empty(0))[:start], new[row]])
        out.members.append(members)
        out.means.append({i: float(have[i][: rung.examples].mean()) for i in members})
    rank = None if ties is None else [ties[i] for i in members]
    out.pick = members[top_k(np.array([out.means[-1][i] for i in members]), 1, rank)[0]]
    return out
