"""izkit.course.checks: right answers pass with one success line; the usual slips fail with a hint that names the slip."""

from __future__ import annotations

import math

import pytest
import torch

from izkit.course import checks
from izkit.acquisition import expected_improvement, log_expected_improvement
from izkit.kernels import matern52

SQRT5 = math.sqrt(5.0)


def fails_with(check, fn, *words: str) -> str:
    """Run the check on fn, demand a failure, and that its message holds every word (case-insensitive)."""
    with pytest.raises(AssertionError) as info:
        check(fn)
    msg = str(info.value)
    for w in words:
        assert w.lower() in msg.lower(), f"{w!r} not in the hint: {msg}"
    return msg


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------------------------------------------- Matern


def good_matern(X1, X2, ls):
    A, B = X1 / ls, X2 / ls
    r = torch.cdist(A, B)
    return (1 + SQRT5 * r + 5 / 3 * r**2) * torch.exp(-SQRT5 * r)


def test_a_handwritten_matern_passes_every_part_and_hidden_seed(capsys):
    checks.check_matern52(good_matern)
    for part in ("values", "gradients"):
        for seed in (0, 1, 2):
            checks.check_matern52(good_matern, part=part, seed=seed)
    out = capsys.readouterr().out
    assert out.count("✓ matern52") == 7


def test_izkit_own_implementation_is_refused_by_every_check():
    """Importing the answer key passes nothing: izkit's function itself, a wrapper around it, a module alias."""
    import izkit.kernels as K
    from izkit import selection

    def wraps(X1, X2, ls):
        return matern52(X1, X2, ls)

    def via_alias(X1, X2, ls):
        return K.matern52(X1, X2, ls)

    def via_helper(X1, X2, ls):
        return wraps(X1, X2, ls)

    for fn in (matern52, wraps, via_alias, via_helper):
        fails_with(checks.check_matern52, fn, "izkit's own implementation", "izkit.kernels")
    fails_with(checks.check_ei, expected_improvement, "izkit's own implementation")
    fails_with(checks.check_log_ei, log_expected_improvement, "izkit's own implementation")
    fails_with(checks.check_halving_rungs, selection.halving_rungs, "izkit's own implementation")
    fails_with(checks.check_most_candidates, selection.most_candidates, "izkit's own implementation")
    fails_with(checks.check_promote, lambda members, means, k: [members[j] for j in selection.top_k(means, k)],
               "izkit's own implementation", "izkit.selection")
    fails_with(checks.check_successive_halving, izkit_halving, "izkit's own implementation")


@pytest.mark.parametrize("fn, words", [
    (stub, ["not implemented", "NotImplementedError"]),
    (lambda X1, X2, ls: good_matern(X1, X2, ls).T, ["transposed"]),
    (lambda X1, X2, ls: 2 * good_matern(X1, X2, ls), ["factor of 2"]),
    (lambda X1, X2, ls: good_matern(X1, X2, ls**2), ["lengthscale squared"]),
    (lambda X1, X2, ls: good_matern(X1, X2, ls[0]), ["first lengthscale"]),
    (lambda X1, X2, ls: (1 + math.sqrt(3) * torch.cdist(X1 / ls, X2 / ls))
     * torch.exp(-math.sqrt(3) * torch.cdist(X1 / ls, X2 / ls)), ["Matern-3/2"]),
    (lambda X1, X2, ls: None, ["return"]),
    (lambda X1, X2, ls: good_matern(X1, X2, ls).detach().numpy(), ["autograd"]),
])
def test_matern_slips_get_named(fn, words):
    fails_with(checks.check_matern52, fn, *words)


def test_matern_nan_gradient_at_r0_is_named():
    def sqrt_of_zero(X1, X2, ls):
        A, B = X1 / ls, X2 / ls
        r = ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1).sqrt()  # d sqrt / d r2 = inf at 0
        return (1 + SQRT5 * r + 5 / 3 * r**2) * torch.exp(-SQRT5 * r)

    fails_with(checks.check_matern52, sqrt_of_zero, "r = 0", "clamp")


def test_a_crash_names_the_error_and_the_call():
    def crashes(X1, X2, ls):
        return X1 @ X2  # shapes do not match
    fails_with(checks.check_matern52, crashes, "RuntimeError", "matern52(X1, X2, lengthscale)")


# ----------------------------------------------------------------------------------------------- coupled kernel


def good_coupled(X1, X2, Z, S, ls, jitter=0.0):
    C = torch.linalg.cholesky(good_matern(Z, Z, ls) + jitter * torch.eye(len(Z), dtype=torch.float64))
    W1 = torch.cholesky_solve(good_matern(Z, X1, ls), C)
    W2 = torch.cholesky_solve(good_matern(Z, X2, ls), C)
    return W1.T @ S @ W2


def test_coupled_solution_with_and_without_the_authors_jitter_passes_and_izkit_kernel_is_refused(capsys):
    from izkit.kernels import InstructionCoupledKernel, PrecomputedSimilarity

    for seed in (0, 1):
        checks.check_coupled_kernel(good_coupled, seed=seed)
        checks.check_coupled_kernel(lambda *a: good_coupled(*a, jitter=1e-4), seed=seed)  # the authors' code
    fails_with(checks.check_coupled_kernel, lambda *a: good_coupled(*a, jitter=1e-1), "K(Z, Z)")

    def via_izkit(X1, X2, Z, S, ls):
        k = InstructionCoupledKernel(Z.shape[1], PrecomputedSimilarity(), latent="fixed", latent_lengthscale=ls)
        k.set_train(Z, S)
        theta = torch.cat([ls.log(), torch.zeros(1, dtype=torch.float64)])  # outputscale 1
        return k(theta, X1, X2)

    fails_with(checks.check_coupled_kernel, via_izkit, "izkit's own implementation")
    assert capsys.readouterr().out.count("✓ coupled_kernel") == 4


@pytest.mark.parametrize("fn, words", [
    (stub, ["not implemented"]),
    (lambda X1, X2, Z, S, ls: good_matern(X1, Z, ls) @ S @ good_matern(Z, X2, ls), ["left out L^{-1}"]),
    (lambda X1, X2, Z, S, ls: good_matern(X1, Z, ls) @ S @ torch.linalg.solve(good_matern(Z, Z, ls),
                                                                            good_matern(Z, X2, ls)),
     ["one side"]),
    (lambda X1, X2, Z, S, ls: good_coupled(X1, X2, Z, torch.eye(len(Z), dtype=torch.float64), ls),
     ["S is missing"]),
    (lambda X1, X2, Z, S, ls: 3 * good_coupled(X1, X2, Z, S, ls), ["factor of 3"]),
])
def test_coupled_slips_get_named(fn, words):
    fails_with(checks.check_coupled_kernel, fn, *words)


# ---------------------------------------------------------------------------------------------------------- EI


def good_ei(mean, var, best):
    sigma = var.clamp_min(1e-12).sqrt()
    u = (mean - best) / sigma
    phi = torch.exp(-0.5 * u**2) / math.sqrt(2 * math.pi)
    Phi = 0.5 * torch.erfc(-u / math.sqrt(2))
    return sigma * (phi + u * Phi)


def test_ei_solutions_pass(capsys):
    checks.check_ei(good_ei)
    checks.check_ei(good_ei, seed=1)
    assert capsys.readouterr().out.count("✓ ei") == 2


@pytest.mark.parametrize("fn, words", [
    (stub, ["not implemented"]),
    (lambda m, v, b: good_ei(m, v.clamp_min(1e-12) ** 2, b), ["variance", "standard deviation"]),
    (lambda m, v, b: good_ei(-m, v, -b), ["minimisation"]),
    (lambda m, v, b: good_ei(m, v, b) / v.clamp_min(1e-12).sqrt(), ["sigma"]),
    (lambda m, v, b: 2 * good_ei(m, v, b), ["factor"]),
    (lambda m, v, b: good_ei(m, v, b)[:, None], ["flat vector"]),
])
def test_ei_slips_get_named(fn, words):
    fails_with(checks.check_ei, fn, *words)


def test_ei_without_a_variance_floor_is_caught():
    def no_floor(mean, var, best):
        sigma = var.sqrt()
        u = (mean - best) / sigma
        return sigma * (torch.exp(-0.5 * u**2) / math.sqrt(2 * math.pi) + u * 0.5 * torch.erfc(-u / math.sqrt(2)))
    fails_with(checks.check_ei, no_floor, "var = 0", "clamp_min")


def good_log_ei(mean, var, best):
    sigma = var.clamp_min(1e-12).sqrt()
    u = (mean - best) / sigma
    c = 0.5 * math.log(2 * math.pi)
    um = u.clamp_min(-1.0)
    mid = torch.log(torch.exp(-0.5 * um**2 - c) + um * 0.5 * torch.erfc(-um / math.sqrt(2)))
    ut = u.clamp(-1000.0, -1.0)
    tail = -0.5 * ut**2 - c + torch.log1p(ut * math.sqrt(math.pi / 2) * torch.special.erfcx(-ut / math.sqrt(2)))
    uf = u.clamp_max(-1000.0)
    far = -0.5 * uf**2 - c - 2 * torch.log(-uf) + torch.log1p(-3 / uf**2)
    return torch.where(u > -1, mid, torch.where(u >= -1000, tail, far)) + sigma.log()


def test_log_ei_solution_passes_and_naive_log_fails_in_the_tail(capsys):
    checks.check_log_ei(good_log_ei)
    checks.check_log_ei(good_log_ei, seed=1)
    assert capsys.readouterr().out.count("✓ log_ei") == 2
    fails_with(checks.check_log_ei, lambda m, v, b: torch.log(good_ei(m, v, b)), "-inf", "erfcx")
    fails_with(checks.check_log_ei, good_ei, "EI itself")
    fails_with(checks.check_log_ei, stub, "not implemented")


# ----------------------------------------------------------------------------------------------------- BO step


def good_posterior(X, Z, y, kernel, noise):
    ybar = y.mean()
    C = torch.linalg.cholesky(kernel(Z, Z) + noise * torch.eye(len(Z), dtype=torch.float64))
    Kzx = kernel(Z, X)
    mean = ybar + Kzx.T @ torch.cholesky_solve((y - ybar)[:, None], C)[:, 0]
    V = torch.linalg.solve_triangular(C, Kzx, upper=False)
    return mean, (kernel(X, X).diagonal() - V.pow(2).sum(0)).clamp_min(0.0)


def good_bo_step(Z, F, evaluate, bounds, q=1, seed=0, lengthscale=None, s_lengthscale=None, noise=1e-3,
                 sign=1.0, pick=None):
    """The a4 solution on the helpers above (a student's own a1-a3); sign=-1 minimises EI; pick(order, X) chooses."""
    y = F.mean(1)
    S = good_matern(F, F, s_lengthscale)

    def kernel(A, B):
        return good_coupled(A, B, Z, S, lengthscale, jitter=1e-4)

    lo, hi = bounds
    X = lo + (hi - lo) * torch.quasirandom.SobolEngine(Z.shape[1], scramble=True, seed=seed).draw(
        1024, dtype=torch.float64)
    with torch.no_grad():
        a = good_ei(*good_posterior(X, Z, y, kernel, noise), y.max())
    order = torch.argsort(sign * a, descending=True)
    idx = pick(order, X) if pick else [int(i) for i in order if torch.cdist(X[i][None], Z).min() > 1e-6][:q]
    return X[idx], evaluate(X[idx])


def test_gp_posterior_solution_passes_and_slips_get_named(capsys):
    checks.check_gp_posterior(good_posterior)
    checks.check_gp_posterior(good_posterior, seed=1)
    assert capsys.readouterr().out.count("✓ gp_posterior") == 2
    fails_with(checks.check_gp_posterior, stub, "not implemented")
    fails_with(checks.check_gp_posterior, lambda X, Z, y, k, s: good_posterior(X, Z, y - y.mean(), k, s),
               "prior mean back")
    fails_with(checks.check_gp_posterior,
               lambda X, Z, y, k, s: (k(Z, X).T @ torch.linalg.solve(k(Z, Z) + s * torch.eye(len(Z)), y),
                                      good_posterior(X, Z, y, k, s)[1]), "zero prior mean")
    fails_with(checks.check_gp_posterior, lambda X, Z, y, k, s: (good_posterior(X, Z, y, k, s)[0],
                                                                 good_posterior(X, Z, y, k, s)[1] + s),
               "added the noise to the variance")
    fails_with(checks.check_gp_posterior, lambda X, Z, y, k, s: (good_posterior(X, Z, y, k, s)[0],
                                                                 k(X, X).diagonal()), "prior's")


def test_bo_step_solution_passes_and_izkit_is_refused(capsys):
    from izkit.acquisition import optimize_acquisition
    from izkit.gp import GaussianProcess, GPConfig
    from izkit.kernels import Matern52

    checks.check_bo_step(good_bo_step)
    checks.check_bo_step(good_bo_step, seed=1)
    assert capsys.readouterr().out.count("✓ bo_step") == 2

    def with_izkit(Z, F, evaluate, bounds, q=1, seed=0, lengthscale=None, s_lengthscale=None, noise=1e-3):
        gp = GaussianProcess(Matern52(Z.shape[1]), config=GPConfig(seed=seed)).fit(Z, F.mean(1))
        Z_new, _ = optimize_acquisition(gp, bounds, q=q, n_starts=8, raw_samples=256, seed=seed, exclude=Z)
        return Z_new, evaluate(Z_new)

    fails_with(checks.check_bo_step, with_izkit, "izkit's own implementation")


def test_bo_step_slips_get_named():
    fails_with(checks.check_bo_step, stub, "not implemented")

    def random_points(Z, F, evaluate, bounds, q=1, seed=0, *hp):
        X = torch.rand(q, Z.shape[1], generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 2 - 1
        return X, evaluate(X)

    def best_then_random(Z, F, evaluate, bounds, q=1, seed=0, *hp):  # only the first member is a good point
        def pick(order, X):
            return [int(order[0])] + [int(i) for i in order[-(q - 1):]] if q > 1 else [int(order[0])]
        return good_bo_step(Z, F, evaluate, bounds, q, seed, *hp, pick=pick)

    def minimises(Z, F, evaluate, bounds, q=1, seed=0, *hp):
        return good_bo_step(Z, F, evaluate, bounds, q, seed, *hp, sign=-1.0)

    def no_evaluate(Z, F, evaluate, bounds, q=1, seed=0, *hp):
        X = Z[:q] * 0.5
        return X, torch.zeros(q, F.shape[1], dtype=torch.float64)

    def twice(Z, F, evaluate, bounds, q=1, seed=0, *hp):
        X, v = good_bo_step(Z, F, evaluate, bounds, q, seed, *hp)
        evaluate(X)
        return X, v

    def repeats(Z, F, evaluate, bounds, q=1, seed=0, *hp):
        X = Z[torch.argsort(F.mean(1), descending=True)[:q]].clone()
        return X, evaluate(X)

    def same_twice(Z, F, evaluate, bounds, q=1, seed=0, *hp):
        X, _ = good_bo_step(Z, F, lambda X: X, bounds, 1, seed, *hp)
        X = X.repeat(q, 1)
        return X, evaluate(X)

    fails_with(checks.check_bo_step, random_points, "nine in ten random points")
    fails_with(checks.check_bo_step, best_then_random, "every member of the batch", "point 1")
    fails_with(checks.check_bo_step, minimises, "minimise")
    fails_with(checks.check_bo_step, no_evaluate, "never called evaluate")
    fails_with(checks.check_bo_step, twice, "exactly the q new points")
    fails_with(checks.check_bo_step, repeats, "repeats an evaluated one")
    fails_with(checks.check_bo_step, same_twice, "same point twice")


# ------------------------------------------------------------------------------------------ BO vs random search


def good_best_test_score(evals):
    best = max(range(len(evals)), key=lambda i: (evals[i]["dev"], -i))  # the first of equal dev scores
    return evals[best]["test"]


def good_bo_vs_random(bo, rs, test=None):
    from scipy.stats import wilcoxon

    partner = {(r["task"], r["seed"]): r for r in rs}
    if {(r["task"], r["seed"]) for r in bo} != set(partner) or len(bo) != len(rs):
        raise ValueError("the runs do not pair up by (task, seed)")
    diffs = []
    for r in bo:
        other = partner[(r["task"], r["seed"])]
        if r["distinct"] != other["distinct"]:
            raise ValueError(f"unequal distinct instructions on {r['task']} seed {r['seed']}")
        diffs.append(r["test"] - other["test"])
    nz = [d for d in diffs if d != 0]
    p = (test or (lambda d: float(wilcoxon(d).pvalue)))(nz)
    return {"n": len(diffs), "mean_diff": sum(diffs) / len(diffs), "wins": sum(d > 0 for d in diffs),
            "ties": sum(d == 0 for d in diffs), "losses": sum(d < 0 for d in diffs), "p_value": p}


def test_bo_vs_random_solutions_pass(capsys):
    from izkit.course.checks.bo_vs_random import _sign_test_p

    checks.check_best_test_score(good_best_test_score)
    checks.check_bo_vs_random(good_bo_vs_random)
    checks.check_bo_vs_random(lambda bo, rs: good_bo_vs_random(bo, rs, test=_sign_test_p))  # the sign test is fine
    out = capsys.readouterr().out
    assert "✓ best_test_score" in out and out.count("✓ bo_vs_random") == 2


def test_best_test_score_slips_get_named():
    fails_with(checks.check_best_test_score, stub, "not implemented")
    fails_with(checks.check_best_test_score, lambda ev: max(e["test"] for e in ev), "choosing on the test split")
    fails_with(checks.check_best_test_score, lambda ev: max(reversed(ev), key=lambda e: e["dev"])["test"],
               "keep the first")
    fails_with(checks.check_best_test_score, lambda ev: max(e["dev"] for e in ev), "return the test score")


def test_bo_vs_random_slips_get_named():
    from scipy.stats import mannwhitneyu, wilcoxon

    fails_with(checks.check_bo_vs_random, stub, "not implemented")

    def unpaired(bo, rs):
        out = good_bo_vs_random(bo, rs)
        out["p_value"] = float(mannwhitneyu([r["test"] for r in bo], [r["test"] for r in rs]).pvalue)
        return out

    def by_position(bo, rs):
        d = [a["test"] - b["test"] for a, b in zip(bo, rs)]
        return {"n": len(d), "mean_diff": sum(d) / len(d), "wins": sum(x > 0 for x in d),
                "ties": sum(x == 0 for x in d), "losses": sum(x < 0 for x in d), "p_value": 0.01}

    def no_distinct_check(bo, rs):
        return good_bo_vs_random([{**r, "distinct": 0} for r in bo], [{**r, "distinct": 0} for r in rs])

    def one_sided(bo, rs):
        return good_bo_vs_random(bo, rs, test=lambda d: float(wilcoxon(d, alternative="greater").pvalue))

    def reversed_sign(bo, rs):
        return good_bo_vs_random(rs, bo)

    fails_with(checks.check_bo_vs_random, unpaired, "unpaired test")
    fails_with(checks.check_bo_vs_random, by_position, "by their (task, seed), not by position")
    fails_with(checks.check_bo_vs_random, no_distinct_check, "unequal numbers of distinct instructions")
    fails_with(checks.check_bo_vs_random, one_sided, "one-sided")
    fails_with(checks.check_bo_vs_random, reversed_sign, "wrong sign")


# ------------------------------------------------------------------------------------- successive halving (a6)


def good_halving_rungs(n, first, eta, top):
    rungs = [(first, n)]
    while rungs[-1][0] < top and rungs[-1][1] > 1:
        e, c = rungs[-1]
        rungs.append((min(top, math.ceil(e * eta)), math.ceil(c / eta)))
    return rungs


def good_answers_spent(rungs):
    spent, below = 0, 0
    for e, c in rungs:
        spent, below = spent + c * (e - below), e
    return spent


def good_most_candidates(allowed, first, eta, top):
    n = 0
    while good_answers_spent(good_halving_rungs(n + 1, first, eta, top)) <= allowed:
        n += 1
    return n


def good_promote(members, means, k):
    return [members[j] for j in sorted(range(len(members)), key=lambda j: -means[j])[:k]]


def halving_with(promote=good_promote, start_at=None, judge_from=None, pick_from=None, final_tie_later=False):
    """A student's successive_halving, right by default; each argument swaps in one slip."""
    import numpy as np

    def successive_halving(score, rungs):
        members = list(range(rungs[0][1]))
        seen = {i: np.empty(0) for i in members}
        below, means, first_means = 0, None, None
        for r, (e, n) in enumerate(rungs):
            if r:
                members = promote(members, means, n)
            start = below if start_at is None else start_at(below)
            new = np.asarray(score(members, start, e), dtype=float)
            for row, i in zip(new, members):
                seen[i] = np.concatenate([seen[i], row])[-e:]  # (a slip that asks again keeps the last e)
            lo = 0 if judge_from is None else judge_from(below)
            means = np.array([seen[i][lo:].mean() for i in members])
            if r == 0:
                first_means = means
            below = e
        if pick_from == "first":
            best = good_promote(list(range(rungs[0][1])), first_means, 1)[0]
        elif final_tie_later:
            best = members[max(range(len(members)), key=lambda j: (means[j], j))]
        else:
            best = promote(members, means, 1)[0]
        return best, float(seen[best].mean())

    return successive_halving


def izkit_halving(score, rungs):
    from izkit.selection import Rung, successive_halving

    out = successive_halving(score, [Rung(e, c) for e, c in rungs])
    return out.pick, out.means[-1][out.pick]


def test_successive_halving_solutions_pass_with_any_tie_rule(capsys):
    import numpy as np

    for seed in (0, 1):
        checks.check_halving_rungs(good_halving_rungs, seed=seed)
        checks.check_answers_spent(good_answers_spent, seed=seed)
        checks.check_most_candidates(good_most_candidates, seed=seed)
        checks.check_promote(good_promote, seed=seed)
        checks.check_successive_halving(halving_with(), seed=seed)
    # a tie rule is a convention, not correctness: the later of equal means, or the lower id, pass too
    later = lambda m, v, k: [m[j] for j in np.argsort(v, kind="stable")[::-1][:k]]  # noqa: E731
    by_id = lambda m, v, k: [i for _, i in sorted(zip(-v, m))][:k]  # noqa: E731
    for promote in (later, by_id):
        checks.check_promote(promote)
        checks.check_successive_halving(halving_with(promote=promote))
    checks.check_successive_halving(halving_with(final_tie_later=True))
    out = capsys.readouterr().out
    for name, count in (("halving_rungs", 2), ("answers_spent", 2), ("most_candidates", 2), ("promote", 4),
                        ("successive_halving", 5)):
        assert out.count(f"✓ {name}:") == count, out


def test_the_slip_variants_agree_with_izkit_where_they_should():
    """The check names slips by rerunning halving with one rule changed; unchanged, that rerun is izkit's."""
    from izkit.course.checks.halving_loop import _scenarios, _variant
    from izkit.selection import Rung, successive_halving

    for _, table, rungs in _scenarios():
        ref = successive_halving(lambda c, a, b: table[c, a:b], [Rung(e, c) for e, c in rungs])
        assert _variant(table, rungs) == ([set(m) for m in ref.members], ref.pick)
    # and each built scenario shows its slip: the slip's pick (or members) differs from the right one
    scen = {what: (table, rungs) for what, table, rungs in _scenarios()}
    table, rungs = scen["a lucky first rung"]
    assert _variant(table, rungs, pick="first")[1] != _variant(table, rungs)[1]
    assert _variant(table, rungs, pick="anywhere")[1] != _variant(table, rungs)[1]
    assert _variant(table, rungs, ties="later")[0] != _variant(table, rungs)[0]
    table, rungs = scen["a strong start"]
    assert _variant(table, rungs, pick="new")[1] != _variant(table, rungs)[1]


def test_halving_rungs_slips_get_named():
    def rungs_with(cap=True, down=False, past_one=False, short=False, add=False):
        def halving_rungs(n, first, eta, top):
            rungs = [(first, n)]
            while rungs[-1][0] < top and (rungs[-1][1] > 1 or past_one):
                e, c = rungs[-1]
                e_next = e + first * eta if add else math.ceil(e * eta)
                if short and e_next > top:
                    break
                rungs.append((min(top, e_next) if cap else e_next, c // eta if down else math.ceil(c / eta)))
            return rungs
        return halving_rungs

    assert rungs_with()(27, 5, 3, 100) == good_halving_rungs(27, 5, 3, 100)
    fails_with(checks.check_halving_rungs, stub, "not implemented", "NotImplementedError")
    fails_with(checks.check_halving_rungs, lambda *a: None, "return")
    fails_with(checks.check_halving_rungs, lambda *a: [(c, e) for e, c in good_halving_rungs(*a)], "other way round")
    fails_with(checks.check_halving_rungs, rungs_with(down=True), "rounded down", "ceil")
    fails_with(checks.check_halving_rungs, rungs_with(cap=False), "past top = 100", "overspending")
    fails_with(checks.check_halving_rungs, rungs_with(short=True), "you stopped at 45 examples", "top = 100")
    fails_with(checks.check_halving_rungs, rungs_with(past_one=True), "one candidate left", "Stop")
    fails_with(checks.check_halving_rungs, rungs_with(add=True), "eta = 3 times the examples")


def test_answers_spent_slips_get_named():
    fails_with(checks.check_answers_spent, stub, "not implemented")
    fails_with(checks.check_answers_spent, lambda rungs: sum(e * c for e, c in rungs), "paid again", "overspends")
    fails_with(checks.check_answers_spent,
               lambda rungs: rungs[0][0] * rungs[0][1] + sum(rungs[r - 1][1] * (rungs[r][0] - rungs[r - 1][0])
                                                             for r in range(1, len(rungs))),
               "only the n_r promoted")
    fails_with(checks.check_answers_spent, lambda rungs: good_answers_spent(rungs) - rungs[0][0] * rungs[0][1],
               "left rung 0 out")
    fails_with(checks.check_answers_spent, lambda rungs: None, "return")


def test_most_candidates_slips_get_named():
    def one_too_many(allowed, first, eta, top):
        n = 0
        while good_answers_spent(good_halving_rungs(max(n, 1), first, eta, top)) <= allowed:
            n += 1
        return n  # the first n that overspends

    fails_with(checks.check_most_candidates, stub, "not implemented")
    fails_with(checks.check_most_candidates, one_too_many, "more than the", "allowed", "overspends")
    fails_with(checks.check_most_candidates, lambda b, f, eta, top: max(0, good_most_candidates(b, f, eta, top) - 1),
               "one more fits", "off-by-one")
    fails_with(checks.check_most_candidates, lambda b, f, eta, top: b // f, "only rung 0", "overspends")


def test_promote_slips_get_named():
    import numpy as np

    def unstable(members, means, k):  # right on a few members, equal means shuffled on many: an unstable sort
        if len(members) <= 16:
            return good_promote(members, means, k)
        order = sorted(range(len(members)), key=lambda j: (-means[j], (j * 7919) % 101))
        return [members[j] for j in order[:k]]

    fails_with(checks.check_promote, stub, "not implemented")
    fails_with(checks.check_promote, lambda m, v, k: sorted(range(len(m)), key=lambda j: -v[j])[:k],
               "positions", "members[j]")
    fails_with(checks.check_promote, lambda m, v, k: [m[j] for j in np.argsort(v, kind="stable")[:k]], "worst first")
    checks.check_promote(unstable)  # equal means in any order pass
    fails_with(checks.check_promote, lambda m, v, k: [m[j] for j in sorted(range(len(m)), key=lambda j: -v[j])[1:k + 1]],
               "highest means")
    fails_with(checks.check_promote, lambda m, v, k: sorted(good_promote(m, v, k), key=lambda i: v[m.index(i)]),
               "not best first")
    fails_with(checks.check_promote, lambda m, v, k: good_promote(m, v, k + 1), "exactly k")


def test_successive_halving_slips_get_named():
    import numpy as np

    def unpaired(score, rungs):  # each candidate on its own window of examples
        def own_window(cands, start, stop):
            rows = []
            for i in cands:
                shift = (i * 3) % (rungs[-1][0] - stop + 1)
                rows.append(score([i], start + shift, stop + shift)[0])
            return np.array(rows).reshape(len(cands), stop - start)
        return halving_with()(own_window, rungs)

    fails_with(checks.check_successive_halving, stub, "not implemented")
    fails_with(checks.check_successive_halving, unpaired, "unpaired level", "same examples")
    fails_with(checks.check_successive_halving, halving_with(start_at=lambda below: 0), "paid again", "overspends")
    fails_with(checks.check_successive_halving, halving_with(pick_from="first"), "first level", "LAST rung")
    fails_with(checks.check_successive_halving,
               halving_with(promote=lambda m, v, k: [m[j] for j in np.argsort(v, kind="stable")[:k]]),
               "rung 1's members", "best")
    fails_with(checks.check_successive_halving, halving_with(judge_from=lambda below: below),
               "new examples only")
    fails_with(checks.check_successive_halving, lambda score, rungs: halving_with()(score, rungs)[0],
               "pair (pick, estimate)")


def test_successive_halving_estimate_and_a_bad_call_are_named():
    import numpy as np

    def new_only_estimate(score, rungs):
        log = []

        def spy(c, a, b):
            out = score(c, a, b)
            log.append((list(c), a, b, np.asarray(out)))
            return out

        pick, _ = halving_with()(spy, rungs)
        c, a, b, out = log[-1]
        return pick, float(out[c.index(pick)].mean())

    fails_with(checks.check_successive_halving, new_only_estimate, "estimate", "new examples only")
    fails_with(checks.check_successive_halving, lambda score, rungs: (score(3, 0, rungs[0][0]), 0),
               "ndarray as the pick", "whole number")
    fails_with(checks.check_successive_halving, lambda score, rungs: score([0], 0, 10 ** 6),
               "0 <= start <= stop")


# ------------------------------------------------------------------------------------------------------ layout


def test_the_notebooks_import_paths_and_one_exception_type():
    """The assignments import each check from izkit.course.checks; every check fails with CheckFailed, an AssertionError."""
    from izkit.course.checks import (CheckFailed, check_answers_spent, check_best_test_score, check_bo_step,
                              check_bo_vs_random, check_coupled_kernel, check_ei, check_gp_posterior,
                              check_halving_rungs, check_log_ei, check_matern52, check_most_candidates, check_promote,
                              check_score_similarity, check_successive_halving)

    assert issubclass(CheckFailed, AssertionError)
    for check in (check_matern52, check_score_similarity, check_coupled_kernel, check_ei, check_log_ei,
                  check_gp_posterior, check_bo_step, check_best_test_score, check_bo_vs_random, check_halving_rungs,
                  check_answers_spent, check_most_candidates, check_promote, check_successive_halving):
        with pytest.raises(CheckFailed, match="not implemented yet"):
            check(stub)


def test_score_similarity_passes_and_slips_get_named(capsys):
    checks.check_score_similarity(lambda F, s: good_matern(F, F, s))
    checks.check_score_similarity(lambda F, s: good_matern(F, F, s), seed=1)
    assert capsys.readouterr().out.count("✓ score_similarity") == 2
    fails_with(checks.check_score_similarity, lambda F, s: good_matern(F.T, F.T, s), "compares examples")
    fails_with(checks.check_score_similarity, lambda F, s: good_matern(F, F, s**2), "squared")
    fails_with(checks.check_score_similarity, lambda F, s: matern52(F, F, s), "izkit's own implementation")
