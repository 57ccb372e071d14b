"""Every random stream of a run, derived in one place from (seed, method, round, attempt).

A run is reproducible because each random choice draws from a stream whose seed is a fixed function of where it is
made: the run's seed, the method, the round and the attempt (a round's further pass when its first candidates
repeat known instructions). The strategies (``izkit.strategies``) and the replay of a record (``izkit.replay``) both
ask here, so a replayed GP is fitted with the very restarts that proposed the round.

    round_seed(seed, method, round, attempt)  = (seed + METHOD_OFFSET[method]) * ROUND_STRIDE
                                                + round + ATTEMPT_STRIDE * attempt
    design_seed(seed, attempt)                = seed + DESIGN_STRIDE * attempt        (the Sobol design, round 0)
    ties_seed(seed, method)                   = round_seed(seed, method, TIES_ROUND)  (halving's random tie order)

The strides keep the streams of different rounds and passes apart for any run seed below 100 and round below 1000;
the numbers are those the project's pinned records were made with, so old records replay as they ran.
"""

from __future__ import annotations

from izkit.methods import TABLE

ROUND_STRIDE = 1000  # one run seed's rounds: seed * 1000 + round
ATTEMPT_STRIDE = 100_000  # a round's further passes, far from every round of every run seed below 100
DESIGN_STRIDE = 7  # the initial Sobol design's re-scrambles, one per pass
TIES_ROUND = 999  # the stream that orders ties at halving's promotions: a round no run reaches
METHOD_OFFSET = {m.name: m.seed_offset for m in TABLE}  # izkit.methods: Uniform's draws apart from BO's (paired)


def round_seed(seed: int, method: str, rnd: int, attempt: int = 0) -> int:
    """The seed of a (method, round, attempt) stream: GP restarts, acquisition starts, sampling, random draws."""
    return (seed + METHOD_OFFSET.get(method, 0)) * ROUND_STRIDE + rnd + ATTEMPT_STRIDE * attempt


def design_seed(seed: int, attempt: int = 0) -> int:
    """The scramble seed of the initial Sobol design (round 0), the same for both BO methods of a run (paired)."""
    return seed + DESIGN_STRIDE * attempt


def ties_seed(seed: int, method: str) -> int:
    """The seed of the random order that breaks ties at successive halving's promotions (``--halving-ties random``)."""
    return round_seed(seed, method, TIES_ROUND)
