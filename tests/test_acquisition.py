"""izkit.acquisition: EI and log-EI helpers (known values, tail, gradients) and the multi-start optimiser."""

from __future__ import annotations

import math

import pytest
import torch
from torch.quasirandom import SobolEngine

from izkit.acquisition import (
    _evaluate,
    ei_of_u,
    expected_improvement,
    log_ei_of_u,
    log_expected_improvement,
    make_acquisition,
    optimize_acquisition,
    optimize_acquisition_from_incumbents,
)
from izkit.gp import GaussianProcess, GPConfig
from izkit.kernels import DTYPE, InstructionCoupledKernel, Matern52, ScoreMatern52

D, M, N = 3, 20, 10


def t(*x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=DTYPE)


# ------------------------------------------------------------------------------------------------------- EI helpers


def test_ei_known_value():
    assert float(expected_improvement(t(-0.5), t(1.0), 0.0)) == pytest.approx(0.19780, abs=1e-5)
    assert float(log_expected_improvement(t(-0.5), t(1.0), 0.0)) == pytest.approx(math.log(0.197797), abs=1e-5)


def test_ei_non_negative_and_increasing_in_the_mean():
    mean = torch.linspace(-10.0, 5.0, 301, dtype=DTYPE)
    for var in (1e-6, 0.3, 4.0):
        ei = expected_improvement(mean, torch.full_like(mean, var), 0.5)
        assert bool((ei >= 0).all())
        assert bool((ei[1:] >= ei[:-1]).all())  # non-decreasing everywhere...
        pos = ei > 1e-300
        assert bool((ei[1:][pos[1:]] > ei[:-1][pos[1:]]).all())  # ... and strictly where it is representable


def test_ei_variance_floor():
    ei = expected_improvement(t(1.0, -1.0), t(0.0, -1e-9), 0.0)  # zero and (numerically) negative variance
    assert torch.allclose(ei, t(1.0, 0.0), atol=1e-6) and bool(torch.isfinite(ei).all())


def test_log_ei_matches_log_ei_where_both_finite():
    u = torch.linspace(-25.0, 8.0, 661, dtype=DTYPE)
    assert torch.allclose(log_ei_of_u(u), torch.log(ei_of_u(u)), rtol=1e-8, atol=1e-10)
    mean, var = torch.linspace(-3, 3, 50, dtype=DTYPE), torch.linspace(0.01, 2, 50, dtype=DTYPE)
    assert torch.allclose(log_expected_improvement(mean, var, 0.7), expected_improvement(mean, var, 0.7).log())


def test_log_ei_finite_far_in_the_tail():
    assert float(ei_of_u(t(-40.0))) == 0.0  # plain EI underflows ...
    u = t(-40.0, -999.0, -1000.0, -1001.0, -1e5).requires_grad_(True)
    v = log_ei_of_u(u)
    # ... log-EI does not. Reference: log(phi(u) + u Phi(u)) in 60-digit arithmetic (mpmath)
    assert float(v[0].detach()) == pytest.approx(-808.29856835662, rel=1e-12)
    assert bool(torch.isfinite(v).all()) and bool((v[1:] < v[:-1]).all())
    (g,) = torch.autograd.grad(v.sum(), u)
    assert bool(torch.isfinite(g).all()) and bool((g > 0).all())
    # continuous across the branch boundaries at u = -1 and u = -1000
    for b in (-1.0, -1000.0):
        lo, hi = log_ei_of_u(t(b - 1e-9)), log_ei_of_u(t(b + 1e-9))
        assert float((hi - lo).abs()) < 1e-5


def test_log_ei_gradcheck_across_branches():
    u = t(-1500.0, -60.0, -3.0, -1.0 - 1e-3, -0.2, 2.0).requires_grad_(True)
    assert torch.autograd.gradcheck(log_ei_of_u, (u,))


# ------------------------------------------------------------------------------------------------------- optimiser


def fitted(kind: str) -> GaussianProcess:
    g = torch.Generator().manual_seed(0)
    Z = torch.rand(M, D, generator=g, dtype=DTYPE) * 2 - 1  # (M, D)
    h = torch.sin(2 * Z[:, 0]) + 0.5 * Z[:, 1]  # (M,)
    F = (h[:, None] > torch.linspace(-1, 1, N, dtype=DTYPE)).to(DTYPE)  # (M, N)
    cfg = GPConfig(lengthscale_prior=None, n_restarts=2)  # smoother fits than the Gamma(3, 6) mode: a richer surface
    k = Matern52(D) if kind == "matern" else InstructionCoupledKernel(D, ScoreMatern52(N))
    return GaussianProcess(k, config=cfg).fit(Z, F.mean(1), F)


BOUNDS = torch.tensor([[-1.0, -1.0, -0.5], [1.0, 1.0, 2.0]], dtype=DTYPE)  # (2, D), not a cube on purpose


@pytest.mark.parametrize("kind", ["matern", "coupled"])
def test_optimiser_inside_bounds_and_not_worse_than_raw_samples(kind):
    gp = fitted(kind)
    X, vals = optimize_acquisition(gp, BOUNDS, q=1, n_starts=8, raw_samples=256, seed=1)
    assert X.shape == (1, D) and vals.shape == (1,)
    assert bool(((X >= BOUNDS[0]) & (X <= BOUNDS[1])).all())
    acq = make_acquisition(gp)
    raw = BOUNDS[0] + (BOUNDS[1] - BOUNDS[0]) * SobolEngine(D, scramble=True, seed=1).draw(256, dtype=DTYPE)
    assert float(vals[0]) >= float(_evaluate(acq, raw).max()) - 1e-12
    assert float(vals[0]) >= float(_evaluate(acq, gp.Z_train_.clamp(BOUNDS[0], BOUNDS[1])).max()) - 1e-12
    assert torch.allclose(vals, _evaluate(acq, X))  # the values are the acquisition at the points


def test_optimiser_improves_on_its_starts():
    gp = fitted("matern")
    acq = make_acquisition(gp)
    X, vals = optimize_acquisition(gp, BOUNDS, q=1, n_starts=4, raw_samples=64, seed=2)
    raw = BOUNDS[0] + (BOUNDS[1] - BOUNDS[0]) * SobolEngine(D, scramble=True, seed=2).draw(64, dtype=DTYPE)
    assert float(vals[0]) > float(_evaluate(acq, raw).max()) + 1e-6  # gradient steps went somewhere better


@pytest.mark.parametrize("rule", ["top_q", "kriging_believer"])
def test_q_distinct_points(rule):
    gp = fitted("coupled")
    q, tol = 6, 1e-3
    X, vals = optimize_acquisition(gp, BOUNDS, q=q, n_starts=8, raw_samples=128, seed=0, rule=rule,
                                   distinct_tol=tol)
    assert X.shape == (q, D) and vals.shape == (q,) and bool(torch.isfinite(vals).all())
    assert bool(((X >= BOUNDS[0]) & (X <= BOUNDS[1])).all())
    gaps = ((X[:, None, :] - X[None, :, :]) / (BOUNDS[1] - BOUNDS[0])).abs().amax(-1)  # (q, q) box-normalised
    assert float(gaps[~torch.eye(q, dtype=torch.bool)].min()) > tol
    if rule == "top_q":
        assert bool((vals[1:] <= vals[:-1]).all())  # top q, best first


def test_ei_and_log_ei_pick_the_same_kind_of_point():
    gp = fitted("matern")
    X_log, _ = optimize_acquisition(gp, BOUNDS, n_starts=8, raw_samples=256, seed=3)
    X_ei, v_ei = optimize_acquisition(gp, BOUNDS, n_starts=8, raw_samples=256, seed=3, acquisition="ei")
    ei = make_acquisition(gp, "ei")
    assert float(ei(X_log)[0]) == pytest.approx(float(v_ei[0]), rel=1e-3)


def box_gaps(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """(n, k) max-norm distances between X (n, D) and Y (k, D), in units of the box width."""
    return ((X[:, None, :] - Y[None, :, :]) / (BOUNDS[1] - BOUNDS[0])).abs().amax(-1)


def test_exclude_keeps_the_batch_away_from_given_points():
    gp = fitted("coupled")
    tol = 0.05
    X, vals = optimize_acquisition(gp, BOUNDS, q=4, n_starts=8, raw_samples=128, seed=0, exclude=gp.Z_train_,
                                   distinct_tol=tol)
    assert X.shape == (4, D) and float(box_gaps(X, gp.Z_train_).min()) > tol


@pytest.mark.parametrize("rule", ["top_q", "kriging_believer"])
def test_exclude_never_returns_an_excluded_point(rule):
    """The evaluated points and every raw Sobol sample excluded: only genuinely new points come back."""
    gp = fitted("coupled")
    raw = BOUNDS[0] + (BOUNDS[1] - BOUNDS[0]) * SobolEngine(D, scramble=True, seed=0).draw(128, dtype=DTYPE)
    for tol in (0.0, 1e-3):
        excl = torch.cat([gp.Z_train_, raw])  # (M + 128, D): the observed starts and the whole raw pool
        X, vals = optimize_acquisition(gp, BOUNDS, q=3, n_starts=8, raw_samples=128, seed=0, exclude=excl,
                                       distinct_tol=tol, rule=rule)
        assert len(X) >= 1 and bool(torch.isfinite(vals).all())
        assert float(box_gaps(X, excl).min()) > tol  # with tol 0: no returned point equals an excluded one


def test_authors_batch_rule_one_new_candidate_per_incumbent():
    gp = fitted("coupled")
    q = 6
    X, vals = optimize_acquisition_from_incumbents(gp, BOUNDS, q=q, seed=0, population=16)
    assert X.shape == (q, D) and vals.shape == (q,) and bool(torch.isfinite(vals).all())
    assert bool(((X >= BOUNDS[0]) & (X <= BOUNDS[1])).all())
    assert float(box_gaps(X, gp.Z_train_).min()) > 1e-3  # never an evaluated point
    assert float(box_gaps(X, X)[~torch.eye(q, dtype=torch.bool)].min()) > 1e-3  # one distinct candidate each
    assert torch.allclose(vals, _evaluate(make_acquisition(gp), X))
    X2, _ = optimize_acquisition_from_incumbents(gp, BOUNDS, q=q, seed=0, population=16)
    assert torch.equal(X, X2)  # seeded
    # small sigma: each candidate stays near its own incumbent (best evaluated first), so the batch spreads over them
    Xs, _ = optimize_acquisition_from_incumbents(gp, BOUNDS, q=q, seed=1, sigma=0.01, population=16, maxiter=0)
    near = box_gaps(Xs, gp.Z_train_).argmin(1)  # (q,) each candidate's nearest evaluated point
    assert len(set(near.tolist())) == q  # a different one each
    top_q = gp.y_train_.sort(descending=True).values[:q]
    assert torch.equal(gp.y_train_[near].sort().values, top_q.sort().values)  # the top q
    # the evaluated points and exclude are both kept off; q above m gives at most one per distinct evaluated point
    Xe, _ = optimize_acquisition_from_incumbents(gp, BOUNDS, q=q, seed=0, population=16, exclude=X)
    assert float(box_gaps(Xe, torch.cat([gp.Z_train_, X])).min()) > 1e-3
    Xa, _ = optimize_acquisition_from_incumbents(gp, BOUNDS, q=M + 5, seed=0, population=8)
    assert len(Xa) <= M


def test_bad_arguments():
    gp = fitted("matern")
    with pytest.raises(ValueError, match="lower < upper"):
        optimize_acquisition(gp, BOUNDS.flip(0), n_starts=8, raw_samples=64)
    with pytest.raises(ValueError, match="rule"):
        optimize_acquisition(gp, BOUNDS, n_starts=8, raw_samples=64, rule="thompson")
    with pytest.raises(ValueError, match="lower < upper"):
        optimize_acquisition_from_incumbents(gp, BOUNDS.flip(0), q=3)
