"""izkit.gp: marginal likelihood, fit (L-BFGS-B, restarts, bounds, prior), prediction, numerics, the estimator
contract (fit never changes its kernel), accessors, exploration options, diagnostics, gpytorch checks."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch

from izkit.gp import ConvergenceWarning, GaussianProcess, GPConfig, diagnostics, mean_noise_variance
from izkit.kernels import (
    DTYPE,
    InstructionCoupledKernel,
    Matern52,
    NotPSDError,
    PrecomputedSimilarity,
    PredictionAgreement,
    ScoreMatern52,
    matern52,
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
    gp = GaussianProcess(InstructionCoupledKernel(D, ScoreMatern52(N), latent="prior"),
                         config=GPConfig(n_restarts=2)).fit(Z, y, F)
    assert torch.allclose(gp.hyperparameters()["latent_lengthscale"], torch.full((D,), 1 / 3, dtype=DTYPE), atol=1e-4)


def test_plain_gp_latent_mode_pins_l_to_a_plain_gp():
    Z, y, F = make_data()
    gp = GaussianProcess(InstructionCoupledKernel(D, ScoreMatern52(N)), config=GPConfig(n_restarts=2)).fit(Z, y, F)
    assert gp.latent_gp_ is not None and isinstance(gp.latent_gp_.kernel, Matern52)
    plain_ls = gp.latent_gp_.hyperparameters()["lengthscale"]
    assert torch.allclose(gp.hyperparameters()["latent_lengthscale"], plain_ls)


# ------------------------------------------------------------------------------------------------------------- fit


@pytest.mark.parametrize("prior", [(3.0, 6.0), None])
def test_more_restarts_never_lower_the_fitted_objective(prior):
    Z, y, F = make_data(m=16)
    values = []
    for r in (1, 2, 4):
        gp = GaussianProcess(Matern52(D), config=GPConfig(n_restarts=r, seed=3, lengthscale_prior=prior)).fit(Z, y)
        values.append(gp.log_marginal_likelihood_ + gp.log_prior_value_)
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
    gp = GaussianProcess(k, config=GPConfig(n_restarts=2)).fit(Z, y, instr)
    b = gp.bounds()
    assert bool(((gp.theta_ >= b[:, 0] - 1e-12) & (gp.theta_ <= b[:, 1] + 1e-12)).all())
    assert math.isfinite(gp.log_marginal_likelihood_)
    mean, var = gp.predict(Z)
    assert float((mean - y).abs().max()) < 0.1 * float(y.std())  # close to the data...
    Xq = torch.rand(7, D, generator=torch.Generator().manual_seed(1), dtype=DTYPE) * 2 - 1
    mean_q, var_q = gp.predict(Xq)
    assert mean_q.shape == (7,) and bool((var_q >= 0).all()) and bool(torch.isfinite(mean_q).all())


def test_predictions_on_the_original_scale():
    """Standardisation is internal: an affine change of y moves the predictions with it."""
    Z, y, _ = make_data()
    Xq = torch.rand(5, D, generator=torch.Generator().manual_seed(2), dtype=DTYPE) * 2 - 1
    gp1 = GaussianProcess(Matern52(D), config=GPConfig(n_restarts=1)).fit(Z, y)
    gp2 = GaussianProcess(Matern52(D)).fit(Z, 100.0 * y - 7.0, theta=gp1.theta_)
    m1, v1 = gp1.predict(Xq)
    m2, v2 = gp2.predict(Xq)
    assert torch.allclose(m2, 100.0 * m1 - 7.0) and torch.allclose(v2, 1e4 * v1)
    assert gp2.log_marginal_likelihood_ == pytest.approx(gp1.log_marginal_likelihood_)


# -------------------------------------------------------------------------------------------------------- numerics


def test_duplicates_constant_single_and_ill_conditioned_do_not_crash(caplog):
    Z, y, F = make_data(m=8)
    Zd, yd, Fd = torch.cat([Z, Z[:3]]), torch.cat([y, y[:3]]), torch.cat([F, F[:3]])  # duplicate points
    for k, instr in ((Matern52(D), None), (InstructionCoupledKernel(D, ScoreMatern52(N)), Fd)):
        gp = GaussianProcess(k, config=GPConfig(n_restarts=2)).fit(Zd, yd, instr)
        assert math.isfinite(gp.log_marginal_likelihood_)
    const = GaussianProcess(Matern52(D), config=GPConfig(n_restarts=2)).fit(Z, torch.full((8,), 0.4, dtype=DTYPE))
    assert torch.allclose(const.predict(Z[:2])[0], torch.full((2,), 0.4, dtype=DTYPE))
    single = GaussianProcess(InstructionCoupledKernel(D, ScoreMatern52(N))).fit(Z[:1], y[:1], F[:1])
    assert torch.isfinite(single.predict(Z)[1]).all()
    # singular / ill-conditioned: exact and near (1e-9 apart) duplicates, long lengthscales, no noise at all
    theta = torch.tensor([2.0] * D + [0.0], dtype=DTYPE)
    for Zi in (torch.cat([Z, Z]), torch.cat([Z, Z + 1e-9])):
        with caplog.at_level("DEBUG", logger="izkit.kernels"):
            gp = GaussianProcess(Matern52(D), config=GPConfig(noise=0.0)).fit(Zi, torch.cat([y, y]), theta=theta)
        assert "needed jitter" in caplog.text  # the growing-jitter path ran
        assert torch.allclose(gp.predict(Z)[0], y, atol=1e-6)
        caplog.clear()


def test_impossible_case_raises_clear_error():
    Z, y, _ = make_data(m=2)
    S = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=DTYPE)  # symmetric but indefinite: no GP has this covariance
    gp = GaussianProcess(InstructionCoupledKernel(D, PrecomputedSimilarity()),
                         config=GPConfig(noise=1e-6, n_restarts=2))
    with pytest.raises(NotPSDError, match="similarity S is symmetric positive semi-definite"):
        gp.fit(Z, y, S)


@pytest.mark.parametrize("where", ["y", "Z"])
def test_nan_inputs_name_the_rows(where):
    Z, y, _ = make_data(m=6)
    if where == "y":
        y[2] = float("nan")
    else:
        Z[4, 1] = float("inf")
    with pytest.raises(ValueError, match=rf"{where} has NaN/inf in rows \[{2 if where == 'y' else 4}\]"):
        GaussianProcess(Matern52(D)).fit(Z, y)


# ------------------------------------------------------------------------------------------- estimator contract


def _rand(m: int, d: int, seed: int) -> torch.Tensor:
    return torch.rand(m, d, generator=torch.Generator().manual_seed(seed), dtype=DTYPE) * 2 - 1


@pytest.mark.parametrize("kind", ["matern", "coupled"])
def test_fit_never_changes_the_kernel_it_was_given(kind):
    """Two GPs sharing one kernel object predict with their own data (before: the second fit overwrote the first's)."""
    Z1, y1, F1 = make_data(seed=0)
    Z2, y2, F2 = make_data(seed=1)  # same m, other data
    make = (lambda: Matern52(D)) if kind == "matern" else (lambda: InstructionCoupledKernel(D, ScoreMatern52(N)))
    shared = make()
    gp1 = GaussianProcess(shared, config=GPConfig(n_restarts=2)).fit(Z1, y1, F1)
    gp2 = GaussianProcess(shared, config=GPConfig(n_restarts=2)).fit(Z2, y2, F2)
    alone = GaussianProcess(make(), config=GPConfig(n_restarts=2)).fit(Z1, y1, F1)  # as if the kernel was never shared
    Xq = _rand(6, D, seed=3)
    for a, b in zip(gp1.predict(Xq), alone.predict(Xq)):
        assert torch.allclose(a, b)
    assert torch.allclose(gp1.predict(Z1)[0], alone.predict(Z1)[0])
    assert not torch.allclose(gp1.predict(Xq)[0], gp2.predict(Xq)[0])
    assert shared.Z is None and getattr(shared, "fixed_latent", None) is None  # untouched: no data, l not pinned
    assert gp1.kernel is shared and gp1.kernel_ is not shared and gp1.kernel_ is not gp2.kernel_


PINNED = {  # log marginal likelihood, posterior mean (3,) and variance (3,) at _rand(3, D, seed=9)
    "matern": (-4.495657051102494, [0.248846296, 0.0017151045, -0.0261481811],
               [6.94981957e-3, 1.57987814e-2, 1.97066214e-2]),
    "coupled": (40.350666355869606, [0.2518642901, -0.0173809922, -0.0486535833],
                [2.06574535e-5, 1.27451425e-5, 2.4572471e-5]),
}


@pytest.mark.parametrize("kind, lml, mean, var", [(k, *v) for k, v in PINNED.items()])
def test_default_fit_gives_the_values_it_gave_before_the_estimator_rewrite(kind, lml, mean, var):
    """Pinned from the code before fit copied its kernel: default settings, so a seeded loop run is unchanged."""
    Z, y, F = make_data()
    k = Matern52(D) if kind == "matern" else InstructionCoupledKernel(D, ScoreMatern52(N))
    gp = GaussianProcess(k, config=GPConfig(n_restarts=2)).fit(Z, y, F)
    m, v = gp.predict(_rand(3, D, seed=9))
    assert gp.log_marginal_likelihood_ == pytest.approx(lml, rel=1e-8)
    assert m.tolist() == pytest.approx(mean, abs=1e-9) and v.tolist() == pytest.approx(var, rel=1e-6)


def test_fitted_state_by_name():
    Z, y, F = make_data()
    gp = GaussianProcess(InstructionCoupledKernel(D, ScoreMatern52(N)), config=GPConfig(n_restarts=2)).fit(Z, y, F)
    assert torch.equal(gp.Z_train_, Z) and torch.equal(gp.y_train_, y) and torch.equal(gp.instr_train_, F)
    for old in ("theta", "Z", "y", "latent_gp", "noise", "log_marginal_likelihood", "log_prior_value", "y_mean",
                "y_std", "ys", "noise_variance", "y_best"):  # one name per thing: no aliases, fitted state ends in _
        assert not hasattr(gp, old), old
    for name in ("kernel_", "theta_", "latent_gp_", "noise_", "log_marginal_likelihood_", "log_prior_value_",
                 "y_mean_", "y_std_", "ys_", "noise_variance_", "y_best_", "kernel_parts_"):
        assert getattr(gp, name) is not None, name
    assert torch.allclose(gp.ys_, (y - y.mean()) / y.std()) and float(gp.y_best_) == float(y.max())
    assert torch.equal(gp.kernel_.Z, Z) and gp.kernel_.fixed_latent is not None
    assert gp.converged_ is True and gp.noise_train_.shape == (M,)
    assert GaussianProcess(Matern52(D)).fit(Z, y, theta=gp.latent_gp_.theta_).converged_ is None  # not optimised


def test_convergence_warning_when_lbfgsb_stops_early():
    Z, y, _ = make_data()
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        gp = GaussianProcess(Matern52(D), config=GPConfig(n_restarts=2, maxiter=1)).fit(Z, y)
    assert gp.converged_ is False
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the default maxiter converges here: no warning
        assert GaussianProcess(Matern52(D), config=GPConfig(n_restarts=2)).fit(Z, y).converged_


# --------------------------------------------------------------------------------------------------- accessors


def test_kernel_matrices_and_prior_variance_of_a_coupled_gp():
    Z, y, F = make_data()
    gp = GaussianProcess(InstructionCoupledKernel(D, ScoreMatern52(N)), config=GPConfig(n_restarts=2)).fit(Z, y, F)
    L, sS, K = gp.kernel_matrices()
    hp = gp.hyperparameters()
    assert isinstance(L, np.ndarray) and L.shape == sS.shape == K.shape == (M, M)
    np.testing.assert_allclose(L, matern52(Z, Z, hp["latent_lengthscale"]).numpy(), atol=1e-12)
    np.testing.assert_allclose(K, sS, atol=1e-6)  # eq. 9 on the evaluated points: K = s S
    np.testing.assert_allclose(np.diag(sS), float(hp["outputscale"]), rtol=1e-12)
    p = gp.kernel_parts_  # the same pieces by name
    np.testing.assert_allclose(sS, (p.outputscale * p.S).numpy(), rtol=1e-12)
    assert torch.equal(p.lengthscale, hp["latent_lengthscale"]) and p.residual_outputscale is None
    assert torch.equal(p.similarity_lengthscale, hp["similarity_lengthscale"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.S = None
    s_y = float(gp.y_std_) ** 2 * float(hp["outputscale"])
    assert torch.allclose(gp.prior_variance(Z), torch.full((M,), s_y, dtype=DTYPE))  # w(z_i) = e_i, S_ii = 1
    assert float(gp.prior_variance(torch.full((1, D), 30.0, dtype=DTYPE))) < 1e-10 * s_y  # eq. 9: none far away
    with pytest.raises(TypeError, match="InstructionCoupledKernel"):
        GaussianProcess(Matern52(D), config=GPConfig(n_restarts=1)).fit(Z, y).kernel_matrices()
    plain = GaussianProcess(Matern52(D), config=GPConfig(n_restarts=1)).fit(Z, y)
    s_p = float(plain.y_std_) ** 2 * float(plain.hyperparameters()["outputscale"])
    assert plain.kernel_parts_.S is None
    assert float(plain.kernel_parts_.outputscale) == float(plain.hyperparameters()["outputscale"])
    assert torch.allclose(plain.prior_variance(_rand(4, D, seed=4)), torch.full((4,), s_p, dtype=DTYPE))


# ----------------------------------------------------------------------------------------- exploration options


@pytest.mark.parametrize("kind", ["matern", "coupled"])
def test_input_bounds_is_fitting_on_the_unit_cube(kind):
    """input_bounds=(-1, 1) gives the same GP as feeding (z + 1) / 2 by hand (the latent plain GP included)."""
    Z, y, F = make_data()
    make = (lambda: Matern52(D)) if kind == "matern" else (lambda: InstructionCoupledKernel(D, ScoreMatern52(N)))
    scaled = GaussianProcess(make(), config=GPConfig(n_restarts=2, input_bounds=(-1.0, 1.0))).fit(Z, y, F)
    by_hand = GaussianProcess(make(), config=GPConfig(n_restarts=2)).fit((Z + 1) / 2, y, F)
    default = GaussianProcess(make(), config=GPConfig(n_restarts=2)).fit(Z, y, F)
    assert torch.allclose(scaled.theta_, by_hand.theta_, atol=1e-6)
    assert torch.equal(scaled.Z_train_, Z)  # the GP keeps the caller's units; only the kernels see the cube
    Xq = _rand(6, D, seed=5)
    for a, b in zip(scaled.predict(Xq), by_hand.predict((Xq + 1) / 2)):
        assert torch.allclose(a, b, atol=1e-8)
    per_dim = torch.tensor([[-1.0] * D, [1.0] * D], dtype=DTYPE)  # (2, d) bounds give the same
    same = GaussianProcess(make(), config=GPConfig(input_bounds=per_dim)).fit(Z, y, F, theta=scaled.theta_)
    assert torch.allclose(same.predict(Xq)[0], scaled.predict(Xq)[0])
    assert not torch.allclose(scaled.theta_, default.theta_, atol=1e-3)  # the option changes the fit


def test_known_noise_on_y_scale():
    Z, y, F = make_data()
    c = 0.004
    known = GaussianProcess(Matern52(D), config=GPConfig(n_restarts=2, noise_var_y=c)).fit(Z, y)
    std = GaussianProcess(Matern52(D), config=GPConfig(noise=c / float(y.std()) ** 2, n_restarts=2)).fit(Z, y)
    assert known.noise_ == pytest.approx(std.noise_) and known.noise_variance_ == pytest.approx(c)
    assert torch.allclose(known.theta_, std.theta_) and known.n_params == Matern52(D).n_params  # nothing fitted
    # per-point noise: (m,) on y's scale; the posterior mean is K (K + diag)^-1 y in standardised units
    v = mean_noise_variance(F)  # (m,) p(1 - p) / n, floored
    p = F.mean(1)
    assert torch.allclose(v, (p * (1 - p) / N).clamp_min((N - 1) / N**3))
    gp = GaussianProcess(Matern52(D), config=GPConfig(n_restarts=2, noise_var_y=v)).fit(Z, y)
    assert torch.allclose(gp.noise_train_, v / y.std() ** 2)
    K = gp.kernel_(gp.theta_, Z, Z)  # (m, m)
    ys = (y - y.mean()) / y.std()
    ref = y.mean() + y.std() * K @ torch.linalg.solve(K + torch.diag(v / y.std() ** 2), ys)
    assert torch.allclose(gp.predict(Z)[0], ref, atol=1e-8)
    extra = GaussianProcess(Matern52(D), config=GPConfig(n_restarts=2, noise_var_y=v, fit_extra_noise=True)).fit(Z, y)
    assert extra.n_params == gp.n_params + 1 and bool((extra.noise_train_ > gp.noise_train_).all())
    with pytest.raises(ValueError, match="not both"):
        GaussianProcess(Matern52(D), config=GPConfig(noise=0.1, noise_var_y=0.1))
    with pytest.raises(ValueError, match="one variance per point"):
        GaussianProcess(Matern52(D), config=GPConfig(noise_var_y=v[:5])).fit(Z, y)


def test_residual_term_gives_prior_variance_back_far_from_the_data():
    Z, y, F = make_data()
    k = InstructionCoupledKernel(D, ScoreMatern52(N), latent="prior", residual=True)
    gp = GaussianProcess(k)
    gp._set_data(Z, y, F)
    b = gp.bounds().numpy()
    theta = b[:, 0] + (b[:, 1] - b[:, 0]) * np.random.default_rng(1).uniform(0.35, 0.55, len(b))
    fd_check(gp, theta)  # the residual's gradient (and l's, which now enters the likelihood) is right
    # S = I, the case the issue measured (S between different instructions about 0): y is smooth in z, so the
    # likelihood wants the residual, and eq. 9 alone has no prior variance far from Z
    eye = torch.eye(M, dtype=DTYPE)
    fitted = GaussianProcess(InstructionCoupledKernel(D, PrecomputedSimilarity(), residual=True)).fit(Z, y, eye)
    plain_eq9 = GaussianProcess(InstructionCoupledKernel(D, PrecomputedSimilarity())).fit(Z, y, eye)
    far = torch.full((1, D), 30.0, dtype=DTYPE)
    s_r = float(fitted.hyperparameters()["residual_outputscale"])
    assert float(fitted.prior_variance(far)) == pytest.approx(float(fitted.y_std_) ** 2 * s_r)
    assert float(fitted.predict(far)[1]) == pytest.approx(float(fitted.y_std_) ** 2 * s_r, rel=1e-6)
    assert float(plain_eq9.predict(far)[1]) < 1e-10 and s_r > 1e-3
    L, sS, K = fitted.kernel_matrices()
    np.testing.assert_allclose(K, sS + s_r * L, atol=1e-6)


def test_diagnostics_are_pure_and_say_how_much_is_left_to_explore():
    Z, y, F = make_data()
    gp = GaussianProcess(InstructionCoupledKernel(D, ScoreMatern52(N)), config=GPConfig(n_restarts=2)).fit(Z, y, F)
    Xq = _rand(5, D, seed=6)
    before = gp.predict(Xq)
    d1, d2 = diagnostics(gp, n=64, seed=0), diagnostics(gp, n=64, seed=0)
    assert d1 == d2 and all(isinstance(v, float) for v in d1.values())
    for a, b in zip(before, gp.predict(Xq)):
        assert torch.equal(a, b)
    S = gp.kernel_parts_.S  # (m, m)
    off = S[~torch.eye(M, dtype=torch.bool)]
    assert d1["S_offdiag_max"] == pytest.approx(float(off.max())) and d1["m"] == M
    assert d1["S_offdiag_q50"] <= d1["S_offdiag_q90"] <= d1["S_offdiag_q99"] <= d1["S_offdiag_max"]
    X = torch.rand(64, D, generator=torch.Generator().manual_seed(7919), dtype=DTYPE) * 2 - 1  # its stream
    ratio = gp.predict(X)[1].sqrt() / y.std()
    assert d1["sd_ratio_max"] == pytest.approx(float(ratio.max()))
    plain = diagnostics(GaussianProcess(Matern52(D), config=GPConfig(n_restarts=1)).fit(Z, y), n=64)
    assert "S_offdiag_max" not in plain and plain["prior_sd_ratio_max"] > 0.5


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
    model, lik = _gpytorch_model(Z, gp.ys_)  # gpytorch sees izkit's standardised y (mean, std with ddof=1)
    model.covar_module.base_kernel.lengthscale = ls
    model.covar_module.outputscale = s
    lik.noise = noise
    model.train(), lik.train()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(lik, model)
    with torch.no_grad():
        ref_lml = float(mll(model(Z), gp.ys_)) * len(y)  # gpytorch divides by n
    assert gp.log_marginal_likelihood_ == pytest.approx(ref_lml, rel=1e-6)
    model.eval(), lik.eval()
    Xq = torch.rand(9, D, generator=torch.Generator().manual_seed(5), dtype=DTYPE) * 2 - 1
    with torch.no_grad():
        post = model(Xq)
        ref_mean = gp.y_mean_ + gp.y_std_ * post.mean  # back to y's original scale
        ref_var = gp.y_std_**2 * post.variance
    mean, var = gp.predict(Xq)
    assert torch.allclose(mean, ref_mean, rtol=1e-6) and torch.allclose(var, ref_var, rtol=1e-6)


def test_fitted_likelihood_not_lower_than_gpytorch_adam_fit():
    Z, y, _ = make_data()
    gp = GaussianProcess(Matern52(D), config=GPConfig(n_restarts=3, lengthscale_prior=None)).fit(Z, y)
    torch.manual_seed(0)
    model, lik = _gpytorch_model(Z, gp.ys_)
    model.train(), lik.train()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(lik, model)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(150):
        opt.zero_grad()
        loss = -mll(model(Z), gp.ys_)
        loss.backward()
        opt.step()
    with torch.no_grad():
        ref_lml = float(mll(model(Z), gp.ys_)) * len(y)
    assert gp.log_marginal_likelihood_ >= ref_lml - 1e-3 * abs(ref_lml)


# ------------------------------------------------------------------------------------ many points: a subset's theta


@pytest.mark.parametrize("kind", ["matern", "coupled_latent", "precomputed", "known_noise"])
def test_past_max_fit_points_theta_comes_from_a_seeded_subset_and_the_posterior_uses_every_point(kind):
    Z, y, F = make_data(m=40)
    cap, config = 15, GPConfig(max_fit_points=15, n_restarts=2, seed=3)
    instr = F
    if kind == "matern":
        kernel = Matern52(D)
    elif kind == "coupled_latent":
        kernel = InstructionCoupledKernel(D, ScoreMatern52(N), latent="plain_gp")
    elif kind == "precomputed":
        kernel, instr = InstructionCoupledKernel(D, PrecomputedSimilarity(), latent="prior"), F @ F.T / N + torch.eye(40)
    else:
        kernel, config = Matern52(D), dataclasses.replace(config, noise_var_y=mean_noise_variance(F))
    given = (Z.clone(), y.clone(), instr.clone())
    gp = GaussianProcess(kernel, config=config).fit(Z, y, instr)
    rows = torch.randperm(40, generator=torch.Generator().manual_seed(3))[:cap].sort()[0]
    sub_instr = instr[rows][:, rows] if kind == "precomputed" else instr[rows]
    sub_config = dataclasses.replace(config, max_fit_points=None, noise_var_y=None if config.noise_var_y is None
                                     else config.noise_var_y[rows])
    sub = GaussianProcess(kernel, config=sub_config).fit(Z[rows], y[rows], sub_instr)
    assert torch.equal(gp.theta_, sub.theta_)  # the hyperparameters of the subset
    assert len(gp.y_train_) == 40 and torch.equal(gp.Z_train_, Z)  # the posterior conditions on all 40
    assert torch.allclose(gp.predict(Z)[0], y, atol=0.15)  # and so passes near every point, not only the subset's
    if kind == "coupled_latent":
        assert len(gp.latent_gp_.y_train_) == cap  # l pinned by a plain GP on the same subset
    assert all(torch.equal(a, b) for a, b in zip(given, (Z, y, instr)))  # nothing given was changed
    full = GaussianProcess(kernel, config=dataclasses.replace(config, max_fit_points=40)).fit(Z, y, instr)
    none = GaussianProcess(kernel, config=dataclasses.replace(config, max_fit_points=None)).fit(Z, y, instr)
    assert torch.equal(full.theta_, none.theta_)  # at or under the cap, the fit is the one it always was
