"""Assignment 5: is BO better than random search here? Pick on dev, pair the runs, test the paired differences.

Two student functions, each checked on small made-up studies built to catch one slip apiece:

- ``best_test_score(evals)``: the test score of the instruction that is best on **dev** (ties: the first); a function
  that picks by test, or by the last of equal dev scores, is named;
- ``bo_vs_random(bo, rs)``: per (task, seed) pair, the difference ``d_i = test_BO(i) - test_RS(i)``; its mean, the
  wins / ties / losses and a two-sided paired p-value. Any valid paired test passes (Wilcoxon signed-rank, exact or
  normal approximation; the paired t-test; the sign test; a paired permutation or bootstrap test); the reference is
  scipy's Wilcoxon signed-rank test with zero differences dropped. The p-value is judged on three made-up studies: BO
  a little better on almost every pair (every paired test is below 0.1, unpaired ones about 0.7), BO worse on every
  pair (a two-sided test is small, a one-sided "BO is better" test near 1) and no effect (every paired test above
  0.3). It must refuse pairs that scored different numbers of distinct instructions, and runs that do not pair up.
  An unpaired test (Mann-Whitney, Welch's t), a one-sided p or pairs matched by position instead of by (task, seed)
  is named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from izkit.course.checks.common import CheckFailed, call, refuse_izkit, success

OWN = ("izkit.studies.compare", "izkit.studies.study", "izkit.studies.study_report", "izkit.studies.winner", "izkit.loop", "izkit.replay",
       "izkit.records")


def _sign_test_p(diffs: list[float]) -> float:
    """Two-sided exact sign test: P(a count at least as far from n/2 as the wins, under Binomial(n, 1/2))."""
    nz = [d for d in diffs if d != 0]
    n, k = len(nz), sum(d > 0 for d in nz)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


def _wilcoxon_p(diffs: list[float]) -> float:
    from scipy.stats import wilcoxon

    nz = [d for d in diffs if d != 0]
    return float(wilcoxon(nz).pvalue) if len(nz) >= 1 else 1.0


def _ttest_p(diffs: list[float]) -> float:
    from scipy.stats import ttest_1samp

    return float(ttest_1samp(diffs, 0.0).pvalue)


PAIRED_MAX = 0.1  # every valid paired test (Wilcoxon exact or normal, paired t, sign, permutation, bootstrap) of the
#                   first made-up study gives p below this; its unpaired tests give about 0.7
NULL_MIN = 0.3  # ... and of the study with no effect, p above this


def _unpaired_ps(a: list[float], b: list[float]) -> list[float]:
    from scipy.stats import mannwhitneyu, ttest_ind

    return [float(mannwhitneyu(a, b, alternative="two-sided").pvalue), float(ttest_ind(a, b, equal_var=False).pvalue)]


def check_best_test_score(fn: Callable[[list[dict[str, Any]]], float], seed: int = 0) -> None:
    """Check ``fn(evals) -> float``: evals are dicts with ``instruction``, ``dev`` and ``test``; return the test score
    of the instruction with the highest dev score (the first of equal ones, as izkit's loop). ``seed`` 1 and up put
    a poor instruction first (the graders' hidden case)."""
    name, sig = "best_test_score", "best_test_score(evals)"
    refuse_izkit(fn, name, OWN)
    evals = [{"instruction": "say it louder", "dev": 0.05, "test": 0.07}] * bool(seed) + [{"instruction": "repeat the word", "dev": 0.10, "test": 0.12},
             {"instruction": "give the opposite", "dev": 0.55, "test": 0.48},
             {"instruction": "write an antonym", "dev": 0.40, "test": 0.61},  # best on test: the slip's pick
             {"instruction": "say the reverse", "dev": 0.55, "test": 0.30}]  # ties the dev best, later
    got = call(fn, name, sig, [dict(e) for e in evals])
    if got is None:
        raise CheckFailed(f"`{name}` returned None: did you forget the `return` statement?")
    try:
        got = float(got)
    except (TypeError, ValueError):
        raise CheckFailed(f"`{name}` returned a {type(got).__name__}; it should return one number (a test score)") \
            from None
    if math.isclose(got, 0.61):
        raise CheckFailed("you returned the best *test* score (0.61): that is choosing on the test split, which makes "
                          "any method look better than it is. Pick the instruction by its dev score, then report "
                          "that instruction's test score.")
    if math.isclose(got, 0.30):
        raise CheckFailed("two instructions tie on dev (0.55); you kept the later one. Keep the first, as izkit's "
                          "loop does, so the rule is the same for every method.")
    if math.isclose(got, 0.55):
        raise CheckFailed("you returned the best *dev* score (0.55); return the test score of that instruction.")
    if not math.isclose(got, 0.48):
        raise CheckFailed(f"expected 0.48 (the test score of the dev best, 'give the opposite'), got {got:.3g}")
    success(name, 4, "picks on dev, keeps the first of equal dev scores, reports that instruction's test score")


def _study(diffs: list[float], base: list[float], distinct: int = 50) -> tuple[list[dict], list[dict]]:
    """BO and RS runs on pairs (task, seed): RS scores ``base``, BO ``base + diffs``; listed in different orders."""
    keys = [(t, s) for t in ("antonyms", "sum", "larger_animal", "negation") for s in (0, 1, 2)][: len(diffs)]
    bo = [{"task": t, "seed": s, "distinct": distinct, "test": round(b + d, 6)} for (t, s), b, d in
          zip(keys, base, diffs)]
    rs = [{"task": t, "seed": s, "distinct": distinct, "test": b} for (t, s), b in zip(keys, base)]
    return bo, list(reversed(rs))  # pair by (task, seed), never by position


def check_bo_vs_random(fn: Callable[[list[dict], list[dict]], dict[str, Any]], seed: int = 0) -> None:
    """Check ``fn(bo, rs) -> {"n", "mean_diff", "wins", "ties", "losses", "p_value"}``.

    ``bo`` and ``rs`` are lists of runs, dicts with ``task``, ``seed``, ``distinct`` (distinct instructions scored)
    and ``test`` (the test score of the run's dev-best instruction). Pairs are matched by (task, seed); a pair with
    unequal ``distinct``, or a run with no partner, must raise ``ValueError``. ``seed`` 1 and up scale the
    differences and shuffle the pairs (the graders' hidden cases).
    """
    name, sig = "bo_vs_random", "bo_vs_random(bo, rs)"
    refuse_izkit(fn, name, OWN)
    # BO a little better on every pair, but the pairs differ a lot from each other: paired tests see it, unpaired don't
    scale = 1 + 0.2 * seed
    diffs = [round(scale * x, 6) for x in (0.05, 0.04, 0.06, 0.03, 0.05, 0.07, 0.04, 0.0, 0.05, -0.02)]
    base = [0.10, 0.80, 0.45, 0.20, 0.65, 0.30, 0.90, 0.55, 0.15, 0.70]
    base = base[seed % 10:] + base[:seed % 10]
    bo, rs = _study(diffs, base)
    out = call(fn, name, sig, [dict(r) for r in bo], [dict(r) for r in rs])
    if not isinstance(out, dict):
        raise CheckFailed(f"`{name}` should return a dict with n, mean_diff, wins, ties, losses, p_value; it returned "
                          f"{type(out).__name__}")
    missing = [k for k in ("n", "mean_diff", "wins", "ties", "losses", "p_value") if k not in out]
    if missing:
        raise CheckFailed(f"the dict `{name}` returned has no {', '.join(missing)}")
    n = 1
    if int(out["n"]) != len(diffs):
        raise CheckFailed(f"n = {out['n']}, but there are {len(diffs)} (task, seed) pairs")
    true_mean = sum(diffs) / len(diffs)
    if not math.isclose(float(out["mean_diff"]), true_mean, abs_tol=1e-6):
        if math.isclose(float(out["mean_diff"]), -true_mean, abs_tol=1e-6):
            raise CheckFailed("mean_diff has the wrong sign: it is BO minus random search (positive: BO better)")
        raise CheckFailed(f"mean_diff = {float(out['mean_diff']):.4f}, expected {true_mean:.4f}: the mean of "
                          "test_BO - test_RS over the pairs matched by (task, seed).")
    n += 1
    counts = (int(out["wins"]), int(out["ties"]), int(out["losses"]))
    if counts != (8, 1, 1):
        raise CheckFailed(f"wins / ties / losses = {counts}, expected (8, 1, 1). Match the runs by their (task, seed), "
                          "not by position (bo and rs do not come in the same order); a tie is a difference of "
                          "exactly 0.")
    n += 1
    p = float(out["p_value"])
    wil, sign = _wilcoxon_p(diffs), _sign_test_p(diffs)
    unpaired = _unpaired_ps([r["test"] for r in bo], [r["test"] for r in _study(diffs, base)[1]])
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise CheckFailed(f"p_value = {p!r} is not a probability")
    if p > PAIRED_MAX:
        if any(math.isclose(p, u, rel_tol=1e-3) for u in unpaired) or p > 0.5:
            raise CheckFailed(f"p_value = {p:.3g} looks like an unpaired test's (Mann-Whitney {unpaired[0]:.3g}, "
                              f"Welch's t {unpaired[1]:.3g}): it compares the two piles of scores and ignores that "
                              f"each pair shares its task and seed. Test the paired differences instead (the "
                              f"reference, Wilcoxon signed-rank: {wil:.3g}; sign test: {sign:.3g}).")
        raise CheckFailed(f"p_value = {p:.3g}, but every paired test of these differences (8 of 9 non-zero ones "
                          f"positive) gives less than {PAIRED_MAX}: the reference, Wilcoxon signed-rank, {wil:.3g}; "
                          f"the sign test {sign:.3g}. Test the differences d_i, not the scores.")
    n += 1
    # BO worse on every pair: a two-sided paired test is small; a one-sided "BO better" test is near 1
    worse = [-0.06, -0.03, -0.05, -0.08, -0.02, -0.04, -0.05, -0.07]
    bo4, rs4 = _study(worse, base[:8])
    p4 = float(call(fn, name, sig, [dict(r) for r in bo4], [dict(r) for r in rs4])["p_value"])
    if p4 > PAIRED_MAX:
        one_sided = "It is one-sided (it only asks whether BO is better). " if p4 > 0.5 else ""
        raise CheckFailed(f"when BO is worse on every one of 8 pairs your p_value is {p4:.3g}; a two-sided paired "
                          f"test gives {_wilcoxon_p(worse):.3g} (Wilcoxon). {one_sided}Report the two-sided p: a "
                          "difference in either direction counts.")
    # no effect: differences of both signs; every valid paired test gives a large p
    null = [0.05, -0.04, 0.02, -0.06, 0.03, -0.01, 0.04, -0.05, 0.0, -0.02]
    bo5, rs5 = _study(null, base)
    p5 = float(call(fn, name, sig, [dict(r) for r in bo5], [dict(r) for r in rs5])["p_value"])
    seen = [b["test"] - r["test"] for b, r in zip(bo5, reversed(rs5))]  # the differences as the student sees them
    halves = [f(x) / 2 for f in (_wilcoxon_p, _ttest_p, _sign_test_p) for x in (null, seen)]
    if any(math.isclose(p5, h, rel_tol=1e-3) for h in halves):
        raise CheckFailed(f"with differences of both signs your p_value is {p5:.3g}, half the two-sided one: "
                          "report the two-sided p (we did not know in advance that BO could only be better).")
    if p5 < NULL_MIN:
        raise CheckFailed(f"with differences of both signs and no consistent direction your p_value is {p5:.3g}; "
                          f"every paired test gives more than {NULL_MIN} (Wilcoxon {_wilcoxon_p(null):.3g}, paired t "
                          f"{_ttest_p(null):.3g}). Is it a p-value of the differences d_i, two-sided?")
    n += 1
    bo2, rs2 = _study([0.1, 0.1, 0.1], [0.2, 0.3, 0.4])
    bo2[1]["distinct"] = 41  # BO scored fewer distinct instructions on one pair
    try:
        fn([dict(r) for r in bo2], [dict(r) for r in rs2])
    except ValueError:
        pass
    except Exception as err:  # noqa: BLE001
        raise CheckFailed(f"with unequal distinct instructions `{name}` raised {type(err).__name__}: {err}; raise "
                          "ValueError") from err
    else:
        raise CheckFailed("a pair scored unequal numbers of distinct instructions (BO 41, random search 50) and "
                          f"`{name}` compared them anyway: the method that scores more instructions gets more chances. "
                          "Raise ValueError naming the pair.")
    n += 1
    bo3, rs3 = _study([0.1, 0.1, 0.1], [0.2, 0.3, 0.4])
    try:
        fn([dict(r) for r in bo3], [dict(r) for r in rs3[:2]])
    except ValueError:
        pass
    except Exception as err:  # noqa: BLE001
        raise CheckFailed(f"with a BO run that has no partner `{name}` raised {type(err).__name__}: {err}; raise "
                          "ValueError") from err
    else:
        raise CheckFailed(f"one BO run had no random-search run on the same (task, seed), and `{name}` went on: "
                          "raise ValueError naming the unpaired run.")
    n += 1
    success(name, n, "pairs by (task, seed), mean and sign of the difference, wins / ties / losses, a paired "
                      "two-sided p-value, refuses unequal numbers of distinct instructions and unpaired runs")
