"""Assignment 6: successive halving with a fixed number of black-box answers allowed, against :mod:`izkit.selection`.

Five student functions, each checked against izkit's reference on cases built to catch one slip apiece:

- ``halving_rungs(n, first, eta, top) -> [(e_0, n_0), (e_1, n_1), ...]``: the schedule. Named: the promoted number
  rounded down, a last rung past ``top`` (answers not allowed), stopping short of ``top``, going on
  after one candidate is left, examples that do not grow ``eta``-fold, (candidates, examples) swapped;
- ``answers_spent(rungs) -> int``: ``sum_r n_r (e_r - e_{r-1})``. Named: paying again for the examples a promoted
  candidate already saw (``sum_r n_r e_r``), paying for the candidates that were not promoted, leaving rung 0 out;
- ``most_candidates(allowed, first, eta, top) -> int``: the most candidates whose halving fits in ``allowed``
  answers. Named: a schedule that costs more than allowed, one candidate short;
- ``promote(members, means, k) -> list``: the ``k`` best, best first. Any order among equal means passes (a tie
  rule is a convention, not correctness; izkit's own is "the one scored first"). Named: positions instead of ids,
  worst first, too many or too few, a candidate promoted over a better one;
- ``successive_halving(score, rungs) -> (pick, estimate)``: the whole loop, checked in :mod:`izkit.course.checks.halving_loop`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from izkit.course.checks.common import CheckFailed, call, refuse_izkit, success
from izkit.selection import Rung, answers, halving_rungs, most_candidates, top_k

Pairs = list[tuple[int, int]]


# ------------------------------------------------------------------------------------------------------- helpers


def whole_number(x: Any, name: str, what: str) -> int:
    """A whole number from the student's result, or a message saying what came back instead."""
    if x is None:
        raise CheckFailed(f"`{name}` returned None{what}: did you forget the `return` statement?")
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise CheckFailed(f"`{name}` returned a {type(x).__name__}{what}; it should be a whole number") from None
    if not math.isfinite(v) or v != int(v):
        raise CheckFailed(f"`{name}` returned {x!r}{what}, which is not a whole number: answers, examples and "
                          "candidates are counts (round up with `math.ceil`)")
    return int(v)


def _pairs(out: Any, name: str) -> Pairs:
    """The student's schedule as (examples, candidates) pairs (izkit's Rung objects are accepted too)."""
    if out is None:
        raise CheckFailed(f"`{name}` returned None: did you forget the `return` statement?")
    if isinstance(out, (str, bytes)) or not hasattr(out, "__iter__"):
        raise CheckFailed(f"`{name}` should return a list of (examples, candidates) pairs; it returned a "
                          f"{type(out).__name__}")
    pairs = []
    for r in out:
        if hasattr(r, "examples") and hasattr(r, "candidates"):
            r = (r.examples, r.candidates)
        try:
            e, c = r
        except (TypeError, ValueError):
            raise CheckFailed(f"`{name}` should return a list of (examples, candidates) pairs, one per rung; one "
                              f"of its items is {r!r}") from None
        pairs.append((whole_number(e, name, " as a number of examples"), whole_number(c, name, " as a number of candidates")))
    if not pairs:
        raise CheckFailed(f"`{name}` returned no rung at all: rung 0, every candidate on the first `first` "
                          "examples, is always there")
    return pairs


def reference_rungs(n: int, first: int, eta: float, top: int) -> Pairs:
    return [(r.examples, r.candidates) for r in halving_rungs(n, first, eta, top)]


def schedule_cost(rungs: Sequence[tuple[int, int]]) -> int:
    return answers([Rung(e, c) for e, c in rungs])


# ------------------------------------------------------------------------------------------- 6.1 halving_rungs


def check_halving_rungs(fn: Callable[[int, int, float, int], Pairs], seed: int = 0) -> None:
    """Check ``fn(n, first, eta, top) -> [(e_0, n_0), ...]`` against :func:`izkit.selection.halving_rungs`:
    ``(first, n)``, then ``e_r = min(top, ceil(eta e_{r-1}))`` and ``n_r = ceil(n_{r-1} / eta)`` until ``e_r = top``
    or ``n_r = 1``."""
    refuse_izkit(fn, "halving_rungs", ("izkit.selection",))
    name, sig = "halving_rungs", "halving_rungs(n, first, eta, top)"
    cases = [(27, 5, 3, 100), (28, 5, 3, 100), (2, 5, 3, 100), (10, 20, 2, 20), (150, 2, 3, 100), (1, 5, 3, 100),
             (200, 5, 4, 100), (60, 10, 2, 35)]
    if seed:  # the graders' hidden cases
        r = np.random.default_rng(seed)
        cases = [(int(r.integers(2, 400)), int(r.integers(1, 8)), int(r.integers(2, 5)), int(r.integers(20, 120)))
                 for _ in range(6)]
    for n_cand, first, eta, top in cases:
        args = f"halving_rungs({n_cand}, {first}, {eta}, {top})"
        got, ref = _pairs(call(fn, name, sig, n_cand, first, eta, top), name), reference_rungs(n_cand, first, eta, top)
        if got == ref:
            continue
        shown = f"{args} returned {got}; expected {ref}."
        if [(c, e) for e, c in got] == ref:
            raise CheckFailed(f"{shown} Each pair is (examples, candidates): you have them the other way round.")
        if got[0] != (first, n_cand):
            raise CheckFailed(f"{shown} Rung 0 is every candidate on the first `first` examples: ({first}, "
                              f"{n_cand}).")
        for r in range(1, len(got)):
            (e0, c0), (e, c) = got[r - 1], got[r]
            if c0 == 1:
                raise CheckFailed(f"{shown} Rung {r - 1} has one candidate left: it is the pick, and more rungs "
                                  "spend answers on it without changing anything. Stop when one candidate is left.")
            if e > top:
                raise CheckFailed(f"{shown} Rung {r} asks for {e} examples, past top = {top}: those are answers "
                                  f"that are not allowed (overspending). The last rung is exactly top: "
                                  f"e_r = min(top, ceil(eta * e_(r-1))).")
            if e != min(top, math.ceil(e0 * eta)):
                raise CheckFailed(f"{shown} Rung {r} should have eta = {eta} times the examples of rung {r - 1} "
                                  f"(capped at top): min({top}, ceil({eta} * {e0})) = "
                                  f"{min(top, math.ceil(e0 * eta))}, not {e}.")
            if c == c0 // eta and c != math.ceil(c0 / eta):
                raise CheckFailed(f"{shown} Rung {r} keeps {c} of {c0} candidates: you rounded down. Promote "
                                  f"ceil(n / eta) = {math.ceil(c0 / eta)} (izkit's rule), so that no rung is left "
                                  "empty.")
            if c != math.ceil(c0 / eta):
                raise CheckFailed(f"{shown} Rung {r} should keep the best ceil({c0} / {eta}) = "
                                  f"{math.ceil(c0 / eta)} of rung {r - 1}'s {c0} candidates, not {c}.")
        e, c = got[-1]
        if e < top and c > 1:
            raise CheckFailed(f"{shown} You stopped at {e} examples with {c} candidates left. Go on until the last "
                              f"rung has exactly top = {top} examples (cap the last step at top rather than stopping "
                              "before it), or until one candidate is left.")
        raise CheckFailed(shown)
    success(name, len(cases), "rung 0 is (first, n); eta times the examples, ceil(n / eta) of the candidates; the "
                              "last rung exactly at top, or one candidate left")


# -------------------------------------------------------------------------------------------- 6.2 answers_spent


def check_answers_spent(fn: Callable[[Pairs], int], seed: int = 0) -> None:
    """Check ``fn(rungs) -> int``, the black-box answers a schedule costs: ``sum_r n_r (e_r - e_{r-1})``,
    ``e_{-1} = 0`` (each rung's examples extend the one below, so a promoted candidate pays only for the new ones)."""
    refuse_izkit(fn, "answers_spent", ("izkit.selection",))
    name, sig = "answers_spent", "answers_spent(rungs)"
    cases = [reference_rungs(27, 5, 3, 100), [(20, 150)], reference_rungs(150, 2, 3, 100), [(4, 4), (12, 2)],
             reference_rungs(216, 5, 3, 100)]
    if seed:  # the graders' hidden cases
        r = np.random.default_rng(seed)
        cases = [reference_rungs(int(r.integers(2, 400)), int(r.integers(1, 8)), int(r.integers(2, 5)),
                                 int(r.integers(20, 120))) for _ in range(6)]
    for rungs in cases:
        got = whole_number(call(fn, name, sig, [tuple(r) for r in rungs]), name, "")
        ref = schedule_cost(rungs)
        if got == ref:
            continue
        shown = f"answers_spent({rungs}) returned {got}; expected {ref}."
        again = sum(c * e for e, c in rungs)
        unpromoted = rungs[0][0] * rungs[0][1] + sum(rungs[r - 1][1] * (rungs[r][0] - rungs[r - 1][0])
                                                     for r in range(1, len(rungs)))
        no_rung0 = ref - rungs[0][0] * rungs[0][1]
        if got == again:
            raise CheckFailed(f"{shown} You paid again for the examples a promoted candidate already saw (n_r * e_r "
                              "per rung): that overspends. Each rung's examples extend the one below, so "
                              "a candidate on rung r pays only for the new examples: n_r * (e_r - e_(r-1)).")
        if got == unpromoted:
            raise CheckFailed(f"{shown} You paid rung r's new examples for all n_(r-1) candidates of the rung below; "
                              "only the n_r promoted ones are scored on them.")
        if got == no_rung0:
            raise CheckFailed(f"{shown} You left rung 0 out: all n_0 candidates on the first e_0 examples cost "
                              f"n_0 * e_0 = {rungs[0][1]} * {rungs[0][0]} answers too.")
        raise CheckFailed(f"{shown} The cost is sum over rungs of n_r * (e_r - e_(r-1)), with e_(-1) = 0.")
    success(name, len(cases), "each rung pays n_r (e_r - e_(r-1)): new examples only, promoted candidates only, "
                              "rung 0 included")


# ------------------------------------------------------------------------------------------ 6.3 most_candidates


def check_most_candidates(fn: Callable[[int, int, float, int], int], seed: int = 0) -> None:
    """Check ``fn(allowed, first, eta, top) -> int``: the most candidates n whose ``halving_rungs(n, ...)`` costs at
    most ``allowed`` answers (0 when not even one fits), against :func:`izkit.selection.most_candidates`."""
    refuse_izkit(fn, "most_candidates", ("izkit.selection",))
    name, sig = "most_candidates", "most_candidates(allowed, first, eta, top)"
    cases = [(3000, 20, 2, 20), (3000, 5, 3, 100), (1000, 5, 3, 100), (3000, 2, 3, 100), (3, 5, 3, 100),
             (5, 5, 3, 100), (700, 10, 2, 35)]
    if seed:  # the graders' hidden cases
        r = np.random.default_rng(seed)
        cases = [(int(r.integers(50, 4000)), int(r.integers(1, 8)), int(r.integers(2, 5)), int(r.integers(20, 120)))
                 for _ in range(4)]
    for allowed, first, eta, top in cases:
        got = whole_number(call(fn, name, sig, allowed, first, eta, top), name, "")
        ref = most_candidates(allowed, first, eta, top)
        if got == ref:
            continue
        shown = f"most_candidates({allowed}, {first}, {eta}, {top}) returned {got}; expected {ref}."
        if got > ref and got == allowed // first:
            raise CheckFailed(f"{shown} {got} = allowed // first counts only rung 0's answers; the promoted "
                              "candidates' new examples cost answers too (use answers_spent): that overspends.")
        if got > ref:
            cost = schedule_cost(reference_rungs(got, first, eta, top))
            raise CheckFailed(f"{shown} {got} candidates cost {cost} answers, more than the {allowed} allowed: "
                              f"that schedule overspends. Return the largest n whose schedule costs at most "
                              f"allowed{' (0 when not even one candidate fits)' if ref == 0 else ''}.")
        nxt = schedule_cost(reference_rungs(got + 1, first, eta, top))
        raise CheckFailed(f"{shown} {got + 1} candidates cost only {nxt} answers, within the {allowed} allowed: "
                          f"one more fits{' (an off-by-one at the end of your search?)' if got == ref - 1 else ''}.")
    success(name, len(cases), "the largest n whose schedule costs at most allowed, 0 when none fits")


# ------------------------------------------------------------------------------------------------ 6.4 promote


def valid_top(got: list[int], members: list[int], means: np.ndarray, k: int) -> bool:
    """Whether ``got`` is k distinct members, best first, none of them worse than a member left out (any tie rule)."""
    if len(got) != k or len(set(got)) != k or not set(got) <= set(members):
        return False
    pos = {m: j for j, m in enumerate(members)}
    mg = [float(means[pos[i]]) for i in got]
    left = [float(means[j]) for j, m in enumerate(members) if m not in set(got)]
    return all(a >= b for a, b in zip(mg, mg[1:])) and (not left or min(mg) >= max(left))


def ranked(members: list[int], means: np.ndarray, k: int, ties: str = "first") -> list[int]:
    """The k best members, best first, with ties to the first listed ("first"), the later ("later") or the lower id
    ("id"); "worst" is the k worst first."""
    keys = {"first": lambda j: (-means[j], j), "later": lambda j: (-means[j], -j),
            "id": lambda j: (-means[j], members[j]), "worst": lambda j: (means[j], j)}[ties]
    return [members[j] for j in sorted(range(len(members)), key=keys)[:k]]


def check_promote(fn: Callable[[list[int], np.ndarray, int], list[int]], seed: int = 0) -> None:
    """Check ``fn(members, means, k) -> list``: ``k`` members with the highest means, best first. ``means[j]`` is the
    mean of ``members[j]``. Of equal means any order passes (izkit's :func:`izkit.selection.top_k` puts the one listed
    first, the one scored first, first; a tie rule is a convention, so it is not graded)."""
    name, sig = "promote", "promote(members, means, k)"
    refuse_izkit(fn, name, ("izkit.selection",))
    rng = np.random.default_rng(6)
    many = rng.integers(0, 6, size=300) / 5  # (300,) means on 5 examples: ties everywhere
    cases = [(list(range(6)), np.array([0.4, 0.8, 0.6, 0.8, 0.2, 0.6]), 3),
             ([4, 1, 6, 3], np.array([0.5, 0.5, 0.9, 0.5]), 2),
             ([3, 1, 4, 0, 2], np.array([0.2, 0.6, 0.6, 0.2, 0.4]), 5),
             (list(range(300)), many, 100),
             ([int(i) for i in rng.permutation(300)], many, 100),
             ([9], np.array([0.3]), 1)]
    if seed:  # the graders' hidden cases
        r = np.random.default_rng(seed)
        cases = [([int(i) for i in r.permutation(40)], r.integers(0, 4, size=40) / 3, int(k)) for k in (1, 7, 40)]
    for members, means, k in cases:
        arg_members, arg_means = list(members), means.copy()
        out = call(fn, name, sig, arg_members, arg_means, k)
        if out is None:
            raise CheckFailed(f"`{name}` returned None: did you forget the `return` statement?")
        try:
            got = [whole_number(i, name, " as a candidate") for i in out]
        except TypeError:
            raise CheckFailed(f"`{name}` should return a list of candidates; it returned {type(out).__name__}") \
                from None
        ref = [members[j] for j in top_k(means, k)]
        if valid_top(got, members, means, k):
            continue
        short = len(members) <= 8
        shown = (f"promote({members}, {means.tolist()}, {k}) returned {got}; expected {ref} (or the same with equal "
                 "means in another order)." if short else
                 f"On {len(members)} members with many equal means (k = {k}) your result is not k of the best, "
                 "best first.")
        if len(got) != k:
            raise CheckFailed(f"{shown} Return exactly k = {k} candidates.")
        positions = top_k(means, k)
        if got == positions and members != list(range(len(members))):
            raise CheckFailed(f"{shown} Those are positions in `members`; return the candidates themselves, "
                              "members[j].")
        if set(got) - set(members) or len(set(got)) != k:
            raise CheckFailed(f"{shown} Return k different candidates, all from `members`.")
        if got == ranked(members, means, k, "worst"):
            raise CheckFailed(f"{shown} You returned the worst first: promote the highest means, best first.")
        got_means = [float(means[members.index(i)]) for i in got]
        if sorted(got_means, reverse=True) == sorted(means[top_k(means, k)].tolist(), reverse=True):
            raise CheckFailed(f"{shown} You have the right candidates but not best first: sort by the mean, "
                              "highest first.")
        if arg_members != members or not np.array_equal(arg_means, means):
            raise CheckFailed(f"{shown} (`{name}` also changed its inputs in place: leave them alone.)")
        raise CheckFailed(f"{shown} Return k members with the highest means, best first.")
    success(name, len(cases), "the k highest means, best first, candidates not positions (any order of equal "
                              "means)")
