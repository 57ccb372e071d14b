"""izkit.checks: right answers pass with one success line; the usual slips fail with a hint that names the slip."""

from __future__ import annotations

import math

import pytest
import torch

from izkit import checks
from izkit.acquisition import expected_improvement, log_expected_improvement, optimize_acquisition
from izkit.gp import GaussianProcess, GPConfig
from izkit.kernels import Matern52, matern52

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


def test_matern_reference_and_a_handwritten_solution_pass(capsys):
    checks.check_matern52(matern52)
    checks.check_matern52(good_matern)
    out = capsys.readouterr().out
    assert out.count("✓ matern52") == 2


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


def good_coupled(X1, X2, Z, S, ls):
    C = torch.linalg.cholesky(matern52(Z, Z, ls))
    W1 = torch.cholesky_solve(matern52(Z, X1, ls), C)
    W2 = torch.cholesky_solve(matern52(Z, X2, ls), C)
    return W1.T @ S @ W2


def test_coupled_solution_and_izkit_kernel_pass(capsys):
    from izkit.kernels import InstructionCoupledKernel, PrecomputedSimilarity

    checks.check_coupled_kernel(good_coupled)

    def via_izkit(X1, X2, Z, S, ls):
        k = InstructionCoupledKernel(Z.shape[1], PrecomputedSimilarity(), latent="fixed", latent_lengthscale=ls)
        k.set_train(Z, S)
        theta = torch.cat([ls.log(), torch.zeros(1, dtype=torch.float64)])  # outputscale 1
        return k(theta, X1, X2)

    checks.check_coupled_kernel(via_izkit)
    assert capsys.readouterr().out.count("✓ coupled_kernel") == 2


@pytest.mark.parametrize("fn, words", [
    (stub, ["not implemented"]),
    (lambda X1, X2, Z, S, ls: matern52(X1, Z, ls) @ S @ matern52(Z, X2, ls), ["left out L^{-1}"]),
    (lambda X1, X2, Z, S, ls: matern52(X1, Z, ls) @ S @ torch.linalg.solve(matern52(Z, Z, ls), matern52(Z, X2, ls)),
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
    checks.check_ei(expected_improvement)
    checks.check_ei(good_ei)
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


def test_log_ei_reference_passes_and_naive_log_fails_in_the_tail(capsys):
    checks.check_log_ei(log_expected_improvement)
    assert "✓ log_ei" in capsys.readouterr().out
    fails_with(checks.check_log_ei, lambda m, v, b: torch.log(good_ei(m, v, b)), "-inf", "erfcx")
    fails_with(checks.check_log_ei, good_ei, "EI itself")
    fails_with(checks.check_log_ei, stub, "not implemented")


# ----------------------------------------------------------------------------------------------------- BO step


def good_bo_step(Z, y, evaluate, bounds, q=1, seed=0):
    gp = GaussianProcess(Matern52(Z.shape[1]), config=GPConfig(seed=seed)).fit(Z, y)
    Z_new, _ = optimize_acquisition(gp, bounds, q=q, n_starts=8, raw_samples=256, seed=seed, exclude=Z)
    return Z_new, evaluate(Z_new)


def test_bo_step_solution_passes(capsys):
    checks.check_bo_step(good_bo_step)
    assert "✓ bo_step" in capsys.readouterr().out


def test_bo_step_slips_get_named():
    fails_with(checks.check_bo_step, stub, "not implemented")

    def random_points(Z, y, evaluate, bounds, q=1, seed=0):
        X = torch.rand(q, Z.shape[1], generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 2 - 1
        return X, evaluate(X)

    def minimises(Z, y, evaluate, bounds, q=1, seed=0):
        return good_bo_step(Z, -y, lambda X: -evaluate(X), bounds, q, seed)

    def no_evaluate(Z, y, evaluate, bounds, q=1, seed=0):
        X = Z[:q] * 0.5
        return X, torch.zeros(q, dtype=torch.float64)

    def twice(Z, y, evaluate, bounds, q=1, seed=0):
        X, v = good_bo_step(Z, y, evaluate, bounds, q, seed)
        evaluate(X)
        return X, v

    def repeats(Z, y, evaluate, bounds, q=1, seed=0):
        X = Z[torch.argsort(y, descending=True)[:q]].clone()
        return X, evaluate(X)

    fails_with(checks.check_bo_step, random_points, "nine in ten random points")
    fails_with(checks.check_bo_step, minimises, "scores of Z_new")
    fails_with(checks.check_bo_step, no_evaluate, "never called evaluate")
    fails_with(checks.check_bo_step, twice, "exactly the q new points")
    fails_with(checks.check_bo_step, repeats, "repeats an evaluated one")


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
            raise ValueError(f"unequal budgets on {r['task']} seed {r['seed']}")
        diffs.append(r["test"] - other["test"])
    nz = [d for d in diffs if d != 0]
    p = (test or (lambda d: float(wilcoxon(d).pvalue)))(nz)
    return {"n": len(diffs), "mean_diff": sum(diffs) / len(diffs), "wins": sum(d > 0 for d in diffs),
            "ties": sum(d == 0 for d in diffs), "losses": sum(d < 0 for d in diffs), "p_value": p}


def test_bo_vs_random_solutions_pass(capsys):
    from izkit.checks.bo_vs_random import _sign_test_p

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

    def no_budget_check(bo, rs):
        return good_bo_vs_random([{**r, "distinct": 0} for r in bo], [{**r, "distinct": 0} for r in rs])

    def one_sided(bo, rs):
        return good_bo_vs_random(bo, rs, test=lambda d: float(wilcoxon(d, alternative="greater").pvalue))

    def reversed_sign(bo, rs):
        return good_bo_vs_random(rs, bo)

    fails_with(checks.check_bo_vs_random, unpaired, "unpaired test")
    fails_with(checks.check_bo_vs_random, by_position, "by their (task, seed), not by position")
    fails_with(checks.check_bo_vs_random, no_budget_check, "unequal distinct budgets")
    fails_with(checks.check_bo_vs_random, one_sided, "one-sided")
    fails_with(checks.check_bo_vs_random, reversed_sign, "wrong sign")


# ------------------------------------------------------------------------------------------------------ layout


def test_the_notebooks_import_paths_and_one_exception_type():
    """The assignments import each check from izkit.checks; every check fails with CheckFailed, an AssertionError."""
    from izkit.checks import (CheckFailed, check_best_test_score, check_bo_step, check_bo_vs_random,
                              check_coupled_kernel, check_ei, check_log_ei, check_matern52)

    assert issubclass(CheckFailed, AssertionError)
    for check in (check_matern52, check_coupled_kernel, check_ei, check_log_ei, check_bo_step, check_best_test_score,
                  check_bo_vs_random):
        with pytest.raises(CheckFailed, match="not implemented yet"):
            check(stub)
