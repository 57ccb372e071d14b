"""izkit.gp: marginal likelihood, fit (L-BFGS-B, restarts, bounds, prior), prediction, numerics, gpytorch checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from izkit.gp import GaussianProcess, GPConfig
from izkit.kernels import (
    DTYPE,
    InstructionCoupledKernel,
    Matern52,
    NotPSDError,
    PrecomputedSimilarity,
    PredictionAgreement,
    ScoreMatern52,
)

D, M, N = 3, 24, 10  # soft-prompt dimension, evaluated points, examples per score vector


def make_data(m: int = M, d: int = D, n: int = N, seed: int = 0):
    """Soft prompts in [-1, 1]^d, binary per-example scores from a smooth hidden function, y = their mean."""
    g = torch.Generator().manual_seed(seed)
    Z = torch.rand(m, d, generator=g, dtype=DTYPE) * 2 - 1  # (m, d)
    h = torch.sin(2.0 * Z[:, 0]) + Z[:, 1:].sum(-1) * 0.5  # (m,) hidden quality
    thresholds = torch.linspace(-1.0, 1.0, n, dtype=DTYPE)  # (n,) example difficulty
    F = (h[:, None] > thresholds).to(DTYPE)  # (m, n)
    return Z, F.mean(1), F


def fd_check(gp: GaussianProcess, theta: np.ndarray, eps: float = 1e-6) -> None:
    """The autograd gradient of the objective matches central finite differences."""
    _, grad = gp.objective(theta)
    fd = np.array([(gp.objective(theta + eps * e)[0] - gp.objective(theta - eps * e)[0]) / (2 * eps)
                   for e in np.eye(len(theta))])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------- objective & gradients


@pytest.mark.parametrize("kernel", ["matern", "coupled_scores"])
def test_objective_gradient_matches_finite_differences(kernel):
    Z, y, F = make_data()
    k = Matern52(D) if kernel == "matern" else InstructionCoupledKernel(D, ScoreMatern52(N), latent="prior")
    gp = GaussianProcess(k)
    gp._set_data(Z, y, F)
    b = gp.bounds().numpy()
    rng = np.random.default_rng(0)
    theta = b[:, 0] + (b[:, 1] - b[:, 0]) * rng.uniform(0.35, 0.55, len(b))  # away from the extremes
    fd_check(gp, theta)


def test_coupled_likelihood_has_no_gradient_in_latent_lengthscales():
    """K = S on the evaluated points, so only the prior moves l's lengthscales (see izkit.kernels)."""
    Z, y, F = make_data()
    gp = GaussianProcess(InstructionCoupledKernel(D, ScoreMatern52(N), latent="prior"),
                         config=GPConfig(lengthscale_prior=None))
    gp._set_data(Z, y, F)
    _, grad = gp.objective(gp.initial().numpy())
    assert np.abs(grad[:D]).max() == 0.0 and np.abs(grad[D:]).max() > 1e-3
    # with the prior on, "prior" mode puts them on the Gamma(3, 6) mode (a - 1) / b = 1/3
    gp = GaussianProcess(InstructionCoupledKernel(D, ScoreMatern52(N), latent="prior")).fit(Z, y, F, n_restarts=2)
    assert torch.allclose(gp.hyperparameters()["latent_lengthscale"], torch.full((D,), 1 / 3, dtype=DTYPE), atol=1e-4)


def test_plain_gp_latent_mode_pins_l_to_a_plain_gp():
    Z, y, F = make_data()
    gp = GaussianProcess(InstructionCoupledKernel(D, ScoreMatern52(N))).fit(Z, y, F, n_restarts=2)
    assert gp.latent_gp is not None and isinstance(gp.latent_gp.kernel, Matern52)
    plain_ls = gp.latent_gp.hyperparameters()["lengthscale"]
    assert torch.allclose(gp.hyperparameters()["latent_lengthscale"], plain_ls)


# ------------------------------------------------------------------------------------------------------------- fit


@pytest.mark.parametrize("prior", [(3.0, 6.0), None])
def test_more_restarts_never_lower_the_fitted_objective(prior):
    Z, y, F = make_data(m=16)
    values = []
    for r in (1, 2, 4):
        gp = GaussianProcess(Matern52(D), config=GPConfig(lengthscale_prior=prior)).fit(Z, y, n_restarts=r, seed=3)
        values.append(gp.log_marginal_likelihood + gp.log_prior_value)
    assert values[0] <= values[1] + 1e-9 and values[1] <= values[2] + 1e-9


@pytest.mark.parametrize("kernel", ["matern", "coupled_scores", "coupled_agreement"])
def test_fit_inside_bounds_and_interpolates(kernel):
    Z, y, F = make_data()
    if kernel == "matern":
        k, instr = Matern52(D), None
    elif kernel == "coupled_scores":
        k, instr = InstructionCoupledKernel(D, ScoreMatern52(N)), F
    else:
        k, instr = InstructionCoupledKernel(D, PredictionAgreement()), F.long()
    gp = GaussianProcess(k).fit(Z, y, instr, n_restarts=2)
    b = gp.bounds()
    assert bool(((gp.theta >= b[:, 0] - 1e-12) & (gp.theta <= b[:, 1] + 1e-12)).all())
    assert math.isfinite(gp.log_marginal_likelihood)
    mean, var = gp.predict(Z)
    assert float((mean - y).abs().max()) < 0.1 * float(y.std())  # close to the data...
    Xq = torch.rand(7, D, dtype=DTYPE) * 2 - 1
    mean_q, var_q = gp.predict(Xq)
    assert mean_q.shape == (7,) and bool((var_q >= 0).all()) and bool(torch.isfinite(mean_q).all())


def test_predictions_on_the_original_scale():
    """Standardisation is internal: an affine change of y moves the predictions with it."""
    Z, y, _ = make_data()
    Xq = torch.rand(5, D, dtype=DTYPE) * 2 - 1
    gp1 = GaussianProcess(Matern52(D)).fit(Z, y, n_restarts=1)
    gp2 = GaussianProcess(Matern52(D)).fit(Z, 100.0 * y - 7.0, theta=gp1.theta)
    m1, v1 = gp1.predict(Xq)
    m2, v2 = gp2.predict(Xq)
    assert torch.allclose(m2, 100.0 * m1 - 7.0) and torch.allclose(v2, 1e4 * v1)
    assert gp2.log_marginal_likelihood == pytest.approx(gp1.log_marginal_likelihood)


# -------------------------------------------------------------------------------------------------------- numerics


def test_duplicates_constant_single_and_ill_conditioned_do_not_crash(caplog):
    Z, y, F = make_data(m=8)
    Zd, yd, Fd = torch.cat([Z, Z[:3]]), torch.cat([y, y[:3]]), torch.cat([F, F[:3]])  # duplicate points
    for k, instr in ((Matern52(D), None), (InstructionCoupledKernel(D, ScoreMatern52(N)), Fd)):
        gp = GaussianProcess(k).fit(Zd, yd, instr, n_restarts=2)
        assert math.isfinite(gp.log_marginal_likelihood)
    const = GaussianProcess(Matern52(D)).fit(Z, torch.full((8,), 0.4, dtype=DTYPE), n_restarts=2)
    assert torch.allclose(const.predict(Z[:2])[0], torch.full((2,), 0.4, dtype=DTYPE))
    single = GaussianProcess(InstructionCoupledKernel(D, ScoreMatern52(N))).fit(Z[:1], y[:1], F[:1])
    assert torch.isfinite(single.predict(Z)[1]).all()
    # singular / ill-conditioned: exact and near (1e-9 apart) duplicates, long lengthscales, no noise at all
    theta = torch.tensor([2.0] * D + [0.0], dtype=DTYPE)
    for Zi in (torch.cat([Z, Z]), torch.cat([Z, Z + 1e-9])):
        with caplog.at_level("DEBUG", logger="izkit.kernels"):
            gp = GaussianProcess(Matern52(D), noise=0.0).fit(Zi, torch.cat([y, y]), theta=theta)
        assert "needed jitter" in caplog.text  # the growing-jitter path ran
        assert torch.allclose(gp.predict(Z)[0], y, atol=1e-6)
        caplog.clear()


def test_impossible_case_raises_clear_error():
    Z, y, _ = make_data(m=2)
    S = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=DTYPE)  # symmetric but indefinite: no GP has this covariance
    gp = GaussianProcess(InstructionCoupledKernel(D, PrecomputedSimilarity()), noise=1e-6)
    with pytest.raises(NotPSDError, match="similarity S is symmetric positive semi-definite"):
        gp.fit(Z, y, S, n_restarts=2)


@pytest.mark.parametrize("where", ["y", "Z"])
def test_nan_inputs_name_the_rows(where):
    Z, y, _ = make_data(m=6)
    if where == "y":
        y[2] = float("nan")
    else:
        Z[4, 1] = float("inf")
    with pytest.raises(ValueError, match=rf"{where} has NaN/inf in rows \[{2 if where == 'y' else 4}\]"):
        GaussianProcess(Matern52(D)).fit(Z, y)


# ------------------------------------------------------------------------------------------- gpytorch cross-checks

gpytorch = pytest.importorskip("gpytorch")


class _ExactGP(gpytorch.models.ExactGP):
    def __init__(self, X, y, likelihood):
        super().__init__(X, y, likelihood)
        self.mean_module = gpytorch.means.ZeroMean()  # izkit: zero mean on standardised y
        matern = gpytorch.kernels.MaternKernel(nu=2.5, ard_num_dims=X.shape[-1])
        self.covar_module = gpytorch.kernels.ScaleKernel(matern)

    def forward(self, X):
        return gpytorch.distributions.MultivariateNormal(self.mean_module(X), self.covar_module(X))


def _gpytorch_model(Z, ys):
    lik = gpytorch.likelihoods.GaussianLikelihood().double()
    return _ExactGP(Z, ys, lik).double(), lik


def test_same_hyperparameters_same_likelihood_and_posterior_as_gpytorch():
    Z, y, _ = make_data()
    ls, s, noise = torch.tensor([0.4, 0.9, 1.7], dtype=DTYPE), 1.3, 0.05
    theta = torch.cat([ls.log(), torch.tensor([math.log(s), math.log(noise)], dtype=DTYPE)])
    gp = GaussianProcess(Matern52(D)).fit(Z, y, theta=theta)
    model, lik = _gpytorch_model(Z, gp.ys)  # gpytorch sees izkit's standardised y (mean, std with ddof=1)
    model.covar_module.base_kernel.lengthscale = ls
    model.covar_module.outputscale = s
    lik.noise = noise
    model.train(), lik.train()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(lik, model)
    with torch.no_grad():
        ref_lml = float(mll(model(Z), gp.ys)) * len(y)  # gpytorch divides by n
    assert gp.log_marginal_likelihood == pytest.approx(ref_lml, rel=1e-6)
    model.eval(), lik.eval()
    Xq = torch.rand(9, D, generator=torch.Generator().manual_seed(5), dtype=DTYPE) * 2 - 1
    with torch.no_grad():
        post = model(Xq)
        ref_mean = gp.y_mean + gp.y_std * post.mean  # back to y's original scale
        ref_var = gp.y_std**2 * post.variance
    mean, var = gp.predict(Xq)
    assert torch.allclose(mean, ref_mean, rtol=1e-6) and torch.allclose(var, ref_var, rtol=1e-6)


def test_fitted_likelihood_not_lower_than_gpytorch_adam_fit():
    Z, y, _ = make_data()
    gp = GaussianProcess(Matern52(D), config=GPConfig(lengthscale_prior=None)).fit(Z, y, n_restarts=3)
    torch.manual_seed(0)
    model, lik = _gpytorch_model(Z, gp.ys)
    model.train(), lik.train()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(lik, model)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(150):
        opt.zero_grad()
        loss = -mll(model(Z), gp.ys)
        loss.backward()
        opt.step()
    with torch.no_grad():
        ref_lml = float(mll(model(Z), gp.ys)) * len(y)
    assert gp.log_marginal_likelihood >= ref_lml - 1e-3 * abs(ref_lml)
