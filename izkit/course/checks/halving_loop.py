"""Assignment 6, exercise 6.5: the whole successive-halving loop, against :mod:`izkit.selection`.

``successive_halving(score, rungs) -> (pick, estimate)``. The check's scorer records every question the student's
loop asks, so it names an unpaired level (candidates of one rung scored on different examples), paying again for
examples already seen, spending more or fewer answers than the rungs cost, promoting the wrong candidates (a worse
one over a better one, by the new examples only; how equal means are ordered is a convention and is not graded),
picking on the first level (or among all candidates, or by the last
rung's new examples only) instead of the best of the last rung, and an estimate that is not the pick's mean. The
schedule, its cost and the promotion step (6.1-6.4) are checked in :mod:`izkit.course.checks.successive_halving`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from izkit.course.checks.common import CheckFailed, call, refuse_izkit, success
from izkit.course.checks.successive_halving import Pairs, schedule_cost, ranked, reference_rungs, whole_number


# -------------------------------------------------------------------------------------- 6.5 successive_halving


class _Misuse(Exception):
    """The student called the check's scorer in a way it does not take."""


class _Scorer:
    """``score(candidates, start, stop) -> (len(candidates), stop - start)`` from a fixed 0/1 table; logs each ask."""

    def __init__(self, table: np.ndarray):
        self.table = table
        self.log: list[tuple[tuple[int, ...], int, int]] = []

    def __call__(self, candidates: Any, start: Any, stop: Any) -> np.ndarray:
        try:
            cands = np.atleast_1d(np.asarray(list(candidates) if isinstance(candidates, (range, set)) else
                                             candidates))
            ok = cands.ndim == 1 and (cands.size == 0 or np.all(cands == np.round(cands.astype(float))))
        except Exception:  # noqa: BLE001
            ok = False
        if not ok:
            raise _Misuse(f"score was called with candidates = {candidates!r}; it takes a list of candidate ids "
                          "(ints), e.g. score([0, 3, 5], start, stop)")
        ids = [int(c) for c in cands.tolist()]
        n, top = self.table.shape
        if any(not 0 <= i < n for i in ids):
            raise _Misuse(f"score was called with candidates {ids}; the candidates are 0 .. {n - 1} "
                          "(rungs[0] has n_0 of them)")
        if int(start) != start or int(stop) != stop or not 0 <= start <= stop <= top:
            raise _Misuse(f"score was called with start = {start}, stop = {stop}; it scores examples[start:stop] "
                          f"with 0 <= start <= stop <= {top} (the last rung's examples)")
        self.log.append((tuple(ids), int(start), int(stop)))
        return self.table[ids, int(start):int(stop)].copy()


def _variant(table: np.ndarray, rungs: Pairs, ties: str = "first", promote_by: str = "all",
             pick: str = "last") -> tuple[list[set[int]], int]:
    """Successive halving with one rule changed, to name a slip: (each rung's members, the pick).

    ties: "first" (right), "later", "id"; promote_by: "all" (right: the mean over the first e_(r-1) examples) or
    "new" (over the rung's new examples only); pick: "last" (right), "first" (best on rung 0 of all candidates),
    "new" (best of the last rung by its new examples only), "anywhere" (best of all candidates by the mean of
    whatever each one saw).
    """
    members = list(range(rungs[0][1]))
    sets, reached, below = [], {}, 0
    means = np.empty(0)
    for r, (e, n) in enumerate(rungs):
        if r:
            members = ranked(members, means, n, ties)
        for i in members:
            reached[i] = e
        sets.append(set(members))
        lo = below if promote_by == "new" else 0
        means = np.array([table[i, lo:e].mean() for i in members])
        last_below, below = below, e
    if pick == "first":
        everyone = list(range(rungs[0][1]))
        return sets, ranked(everyone, np.array([table[i, :rungs[0][0]].mean() for i in everyone]), 1, ties)[0]
    if pick == "anywhere":
        everyone = list(range(rungs[0][1]))
        return sets, ranked(everyone, np.array([table[i, :reached[i]].mean() for i in everyone]), 1, ties)[0]
    lo = last_below if pick == "new" else 0
    return sets, ranked(members, np.array([table[i, lo:below].mean() for i in members]), 1, ties)[0]


def _scenarios(seed: int = 0) -> list[tuple[str, np.ndarray, Pairs]]:
    """(what it is, the 0/1 table (n_0, e_R), the rungs): made-up cases, each built so that one slip shows."""
    out = []

    def rows(*r: str) -> np.ndarray:
        return np.array([[float(ch) for ch in row.replace(" ", "").ljust(12, "0")] for row in r])  # (len(r), 12)

    two = [(4, 4), (12, 2)]  # 4 candidates on 4 examples, the best 2 on 12
    # candidate 0 is lucky on the first 4 examples; 1 and 2 tie there, 1 goes on (listed first) and is better on 12
    out.append(("a lucky first rung", rows("1111 00000000", "1110 11111000", "0111 00000000", "0000"), two))
    # candidate 0 is better over all 12 examples, candidate 1 only on the 8 new ones
    out.append(("a strong start", rows("1111 11000000", "1000 11110000", "0000", "0000"), two))
    # 1 is promoted first (better on rung 0); 0 and 1 tie on all 12: the pick is 1, the one scored first
    out.append(("a tie on the last rung (1 promoted first)",
                rows("1100 11111100", "1110 11110100", "1000", "0000"), two))
    # 0 and 1 tie on all 12 and 0 was promoted first: the pick is 0, not the later one
    out.append(("a tie on the last rung (0 promoted first)",
                rows("1110 11110100", "1100 11111100", "1000", "0000"), two))
    rng = np.random.default_rng(2016 + seed)
    for n, first, eta, top in ((27, 5, 3, 100), (150, 2, 3, 100)):
        p = rng.beta(2, 3, size=n)  # (n,) true accuracies
        table = (rng.random((n, top)) < p[:, None]).astype(float)  # (n, top) coin flips
        out.append((f"{n} random candidates, rungs {reference_rungs(n, first, eta, top)}", table,
                    reference_rungs(n, first, eta, top)))
    out.append(("the paper's allocation (one rung)", (rng.random((150, 20)) < rng.beta(2, 3, size=(150, 1)))
                .astype(float), [(20, 150)]))
    return out


def _seen(log: list[tuple[tuple[int, ...], int, int]], shape: tuple[int, int]) -> np.ndarray:
    """How often each (candidate, example) was asked for."""
    count = np.zeros(shape, dtype=int)
    for ids, a, b in log:
        if ids and b > a:
            np.add.at(count, (np.array(ids)[:, None], np.arange(a, b)[None, :]), 1)
    return count


def _spans(row: np.ndarray) -> str:
    """The examples a 0/1 row marks, as ranges: '0..5, 12..20' (stop excluded)."""
    idx = np.flatnonzero(row)
    if not len(idx):
        return "none"
    parts, start = [], idx[0]
    for a, b in zip(idx[:-1], idx[1:]):
        if b != a + 1:
            parts.append(f"{start}..{a + 1}")
            start = b
    parts.append(f"{start}..{idx[-1] + 1}")
    return ", ".join(parts)


def _audit(log: list, table: np.ndarray, rungs: Pairs, what: str) -> None:
    """Name a scoring slip from the scorer's log: paying twice, an unpaired level, the wrong number of answers."""
    count = _seen(log, table.shape)
    where = f"On {what}"
    seen = count > 0
    for i, row in enumerate(seen):
        m = int(row.sum())
        if m and not row[:m].all():
            raise CheckFailed(f"{where}, candidate {i} was scored on examples {_spans(row)}, not on the first "
                              f"{m}: an unpaired level. Every candidate of a rung must be scored on the same "
                              "examples, the first e_r, so that their means compare like with like; call score with "
                              "the same start and stop for all of the rung's members.")
    if (count > 1).any():
        i, j = map(int, np.argwhere(count > 1)[0])
        extra = int((count - 1).clip(min=0).sum())
        raise CheckFailed(f"{where}, you paid again for examples a candidate already had: candidate {i} was asked "
                          f"about example {j} {int(count[i, j])} times ({extra} answers paid twice in all). That "
                          "overspends the answers allowed. Keep each candidate's scores from the rungs below and ask "
                          "only for the rung's new examples, score(members, e_(r-1), e_r).")
    lengths = seen.sum(1)
    ends = [e for e, _ in rungs]
    odd = [(i, int(m)) for i, m in enumerate(lengths) if m and m not in ends]
    if odd:
        i, m = odd[0]
        raise CheckFailed(f"{where}, candidate {i} was scored on the first {m} examples, but the rungs end at "
                          f"{ends}: each rung r scores its members on examples e_(r-1) .. e_r, so a candidate that "
                          "reached rung r has seen exactly the first e_r.")
    spent, cost = int(count.sum()), schedule_cost(rungs)
    for r, (e, n) in enumerate(rungs):
        got = int((lengths >= e).sum())
        if got != n:
            raise CheckFailed(f"{where}, {got} candidates were scored on rung {r}'s examples (the first {e}); "
                              f"the rung has n_{r} = {n}: promote exactly the rung's number of candidates. You "
                              f"asked for {spent} answers; the rungs cost {cost}"
                              f"{' (overspending)' if spent > cost else ''}.")


def check_successive_halving(fn: Callable[[Callable, Pairs], tuple[int, float]], seed: int = 0) -> None:
    """Check ``fn(score, rungs) -> (pick, estimate)``: successive halving over the rungs, against
    :func:`izkit.selection.successive_halving`.

    ``rungs`` is a list of ``(e_r, n_r)``; the candidates are ``0 .. n_0 - 1``; ``score(candidates, start, stop)``
    returns their 0/1 scores on examples ``start .. stop``, shape ``(len(candidates), stop - start)``. Every member
    of a rung is scored on the same examples, each rung extends the one below, a promoted candidate pays only for
    the new examples; the pick is the best of the last rung by its mean over the first ``e_R`` examples (ties: the
    one scored first, but any tie rule passes: it is a convention, not correctness), and ``estimate`` is that mean.
    The check's scorer records every question asked. ``seed`` 1 and up run other random cases (the hidden ones).
    """
    name, sig = "successive_halving", "successive_halving(score, rungs)"
    refuse_izkit(fn, name, ("izkit.selection",))
    n = 0
    for what, table, rungs in _scenarios(seed):
        score = _Scorer(table)
        try:
            out = call(fn, name, sig, score, [tuple(r) for r in rungs])
        except CheckFailed as err:
            if isinstance(err.__cause__, _Misuse):
                raise CheckFailed(f"On {what}: {err.__cause__}") from None
            raise
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise CheckFailed(f"`{name}` should return a pair (pick, estimate): the candidate kept and its mean over "
                              f"the last rung's examples; it returned {out!r:.80}")
        pick = whole_number(out[0], name, " as the pick")
        try:
            estimate = float(out[1])
        except (TypeError, ValueError):
            raise CheckFailed(f"`{name}` returned {out[1]!r} as the estimate; it should be a number (the pick's "
                              "mean)") from None
        _audit(score.log, table, rungs, what)
        lengths = _seen(score.log, table.shape).sum(1)
        got_sets = [set(np.flatnonzero(lengths >= e).tolist()) for e, _ in rungs]
        for r in range(1, len(rungs)):
            below, e_below = sorted(got_sets[r - 1]), rungs[r - 1][0]
            by = {i: float(table[i, :e_below].mean()) for i in below}
            kept, left = [by[i] for i in got_sets[r]], [by[i] for i in below if i not in got_sets[r]]
            if not left or min(kept) >= max(left):  # the best n_r of the rung below, whatever the tie rule
                continue
            want = sorted(ranked(below, np.array([by[i] for i in below]), rungs[r][1]))
            shown = (f"On {what}, rung {r}'s members are {sorted(got_sets[r])}; expected the best {rungs[r][1]} of "
                     f"rung {r - 1} by their means over the first {e_below} examples, e.g. {want}.")
            if _variant(table, rungs, promote_by="new")[0][: r + 1] == got_sets[: r + 1]:
                raise CheckFailed(f"{shown} You promoted by the means over rung {r - 1}'s new examples only; judge "
                                  "each candidate by its mean over all the examples of its rung, the first "
                                  f"{e_below}.")
            raise CheckFailed(f"{shown} Promote with promote(members, means, n_r), the means over the first e_(r-1) "
                              "examples.")
        n += 1
        e_last = rungs[-1][0]
        last = {i: float(table[i, :e_last].mean()) for i in got_sets[-1]}
        if pick not in last or last[pick] < max(last.values()):
            best = max(last.values())
            want = sorted(i for i in last if last[i] == best)
            shown = (f"On {what}, you kept candidate {pick}; expected the best of the last rung "
                     f"{sorted(got_sets[-1])} by its mean over the first {e_last} examples: "
                     f"{' or '.join(map(str, want))}.")
            if pick == _variant(table, rungs, pick="first")[1]:
                raise CheckFailed(f"{shown} You picked on the first level: candidate {pick} was the best on the "
                                  f"first {rungs[0][0]} examples, where luck counts most. The pick is the best "
                                  "candidate of the LAST rung, by its mean over all that rung's examples.")
            if pick not in last and pick == _variant(table, rungs, pick="anywhere")[1]:
                raise CheckFailed(f"{shown} You picked among all candidates by the mean of whatever each one saw; "
                                  f"candidate {pick} left early, with a mean over only a few examples. Pick among "
                                  "the last rung's members only, where every mean is over the same examples.")
            if pick == _variant(table, rungs, pick="new")[1]:
                raise CheckFailed(f"{shown} You picked by the means over the last rung's new examples only; use "
                                  f"the mean over all its examples, the first {e_last}.")
            raise CheckFailed(shown)
        n += 1
        right = last[pick]
        if not math.isclose(estimate, right, abs_tol=1e-9):
            e_lo, e_hi = (rungs[-2][0] if len(rungs) > 1 else 0), e_last
            hint = ""
            if len(rungs) > 1 and math.isclose(estimate, float(table[pick, e_lo:e_hi].mean()), abs_tol=1e-9):
                hint = f" That is its mean over the last rung's new examples only ({e_lo}..{e_hi}); use all {e_hi}."
            elif math.isclose(estimate, float(table[pick, :rungs[0][0]].mean()), abs_tol=1e-9):
                hint = f" That is its mean over the first {rungs[0][0]} examples only; use all {e_hi}."
            raise CheckFailed(f"On {what}, the estimate is {estimate:.4g}; expected {right:.4g}, candidate {pick}'s "
                              f"mean over the first {e_hi} examples.{hint}")
        n += 1
    success(name, n, "paired rungs that extend the one below, new examples paid once, the best ceil(n / eta) "
                     "promoted (any tie rule), the pick and its mean from the last rung")
