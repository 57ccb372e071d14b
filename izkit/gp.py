"""Exact Gaussian-process regression for InstructZero, fitted by scipy L-BFGS-B on the log marginal likelihood.

The dev score ``H(z)`` of soft prompt ``z`` is modelled as ``y = f(z) + eps``, ``f ~ GP(0, k)``, ``eps ~ N(0, noise)``
on standardised ``y`` (paper section 3: a GP with the instruction-coupled kernel of eq. 9; with ``kernel=Matern52`` it is
the plain GP of the ablation). The hyperparameters (kernel's log-space ``theta`` plus the log noise variance, one flat
vector with bounds) maximise

    log p(y | Z, theta) + log prior(theta)            (Rasmussen & Williams eq. 2.30, Alg 2.1)

with a Gamma(3, 6) prior on every lengthscale (concentration 3, rate 6: the authors' code's setting; as gpytorch's
``GammaPrior(3.0, 6.0)``, a density on the lengthscale itself, no log-Jacobian), switchable off. The objective
``theta -> (value, grad)`` has autograd gradients and goes to ``scipy.optimize.minimize(method="L-BFGS-B", jac=True,
bounds=...)`` from several seeded starts; the best run wins. The first start is the kernel's initial guess and the others
are uniform draws inside the bounds, drawn one at a time, so more restarts never give a lower fitted objective. Past
``GPConfig.max_fit_points`` points theta is fitted on a seeded random subset of them (each step is O(m^3)).

y is standardised internally (mean, std with ddof=1, as BoTorch's ``Standardize``; std 1 for one point or constant
y), so ``noise_`` and ``log_marginal_likelihood_`` are in standardised units; ``predict`` answers on the original scale.

For the coupled kernel, l's lengthscales do not enter the marginal likelihood (on the evaluated points K = S, see
``izkit.kernels``). With ``latent="plain_gp"`` (the default) ``fit`` first fits a plain Matern-5/2 GP on (Z, y), keeps it
as ``latent_gp_`` and pins l's lengthscales to that GP's.

The GP is an estimator in scikit-learn's sense: ``fit`` never changes the kernel it was given. It fits a deep copy,
``kernel_``, which holds the training inputs and the instruction data; the fitted state has names ending in ``_``.
``GPConfig`` has exploration options for eq. 9, all off by default: kernel inputs scaled to the unit cube
(``input_bounds``), a known observation-noise variance on y's own scale (``noise_var_y``, e.g. p(1 - p)/n_dev for a dev
accuracy over n_dev examples, see ``mean_noise_variance``); the kernels have two more (``ScoreMatern52(standardize=)``,
``InstructionCoupledKernel(residual=True)``). ``diagnostics`` reports, per fit, how far S couples different
instructions and how much posterior spread is left at random soft prompts.

Numerics: a Cholesky helper adds growing jitter when a factorisation fails and then raises ``NotPSDError`` saying what
to change; NaN/inf inputs raise ``ValueError`` naming the rows. Float64 throughout.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

from izkit.kernels import (DTYPE, InstructionCoupledKernel, Kernel, KernelParts, Matern52, NotPSDError,
                           PrecomputedSimilarity, robust_cholesky)

try:  # optional: installed with scipy's usual companions (scikit-learn, BoTorch); without it BLAS threads are left alone
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

log = logging.getLogger(__name__)

LOG_2PI = math.log(2.0 * math.pi)
DIAGNOSTICS_STREAM = 7919  # added to diagnostics' seed, so its random z are not a loop's own seeded draws


class ConvergenceWarning(UserWarning):
    """L-BFGS-B stopped before convergence in the best restart of a GP fit (as scikit-learn's of the same name)."""


@contextlib.contextmanager
def limit_threads(n: int | None) -> Iterator[None]:
    """Run a block with n torch intra-op threads and n BLAS threads (scipy's OpenBLAS), then restore both.

    The matrices here are small (m up to a few hundred) and scipy's L-BFGS-B works on short vectors: extra threads
    gain nothing and their wake-ups cost a lot on a busy machine (see bench/README.md). n = None leaves the process
    settings alone.
    """
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    blas = threadpool_limits(limits=n, user_api="blas") if threadpool_limits is not None else contextlib.nullcontext()
    try:
        with blas:
            yield
    finally:
        torch.set_num_threads(old)


@dataclass
class GPConfig:
    noise: float | None = None  # fixed noise variance in standardised units; None = fitted
    noise_bounds: tuple[float, float] = (1e-4, 10.0)  # fitted noise variance bounds (standardised units; BoTorch's 1e-4)
    noise_init: float = 1e-2  # first start of the fitted noise variance
    lengthscale_prior: tuple[float, float] | None = (3.0, 6.0)  # Gamma(concentration, rate) on lengthscales; None = off
    n_restarts: int = 5  # L-BFGS-B runs: kernel.initial(), then uniform draws inside the bounds
    seed: int = 0  # seeds the restart draws
    maxiter: int = 500  # L-BFGS-B iterations per run
    standardize: bool = True  # fit on (y - mean) / std; predictions come back on the original scale
    threads: int | None = 1  # torch and BLAS threads while fitting (see limit_threads); None = leave as set
    # exploration options for eq. 9 (izkit.kernels), all off by default
    input_bounds: tuple[float, float] | Sequence | None = None  # (lo, hi) or (2, d): kernels see (z - lo) / (hi - lo)
    noise_var_y: float | Sequence[float] | Tensor | None = None  # known noise variance on y's scale, () or (m,); fixed
    fit_extra_noise: bool = False  # with noise_var_y: also fit a homoscedastic noise on top (noise_bounds)
    max_fit_points: int | None = 512  # more points: theta from a seeded random subset this size; None = all


def gamma_log_prior(log_ls: Tensor, concentration: float, rate: float) -> Tensor:
    """sum_i log Gamma(l_i; a, b) with l = exp(log_ls) (k,): a log b - lgamma(a) + (a - 1) log l - b l."""
    a, b = concentration, rate
    return (a * math.log(b) - math.lgamma(a) + (a - 1.0) * log_ls - b * log_ls.exp()).sum()  # ()


def check_finite(name: str, X: Tensor) -> None:
    """ValueError naming the rows of X (m, ...) that hold NaN or inf."""
    bad = ~torch.isfinite(X.reshape(X.shape[0], -1)).all(-1)  # (m,)
    if bool(bad.any()):
        rows = bad.nonzero().flatten().tolist()
        raise ValueError(f"{name} has NaN/inf in rows {rows}: drop or fix those evaluations before fitting")


def mean_noise_variance(scores: Tensor, floor: float | None = None) -> Tensor:
    """Variance of each dev score that is a mean over n per-example scores (m, n): per-row variance (ddof 0) / n, (m,).

    For accuracy (0/1 scores) this is p(1 - p) / n. The floor (default: one hit in n, (n - 1) / n^3) keeps the many
    all-0 or all-1 rows of a small dev set from counting as exact. Pass it as ``GPConfig(noise_var_y=...)``.
    """
    n = scores.shape[1]
    var = scores.to(DTYPE).var(dim=1, unbiased=False) / n  # (m,)
    return var.clamp_min((n - 1) / n**3 if floor is None else floor)


class GaussianProcess:
    """Exact GP with a kernel from ``izkit.kernels``. ``fit(Z, y, instr)``, then ``predict(X) -> (mean, var)``.

    ``kernel`` is the kernel given, never changed. Fitted attributes, all ending in ``_`` (scikit-learn's rule):

    - ``kernel_`` the fitted copy of the kernel (l's lengthscales pinned, training data set); ``kernel_parts_`` its
      pieces at the fit by name (``izkit.kernels.KernelParts``: lengthscale, outputscale, S, ...);
    - ``theta_`` (p,) the fitted kernel + log-noise vector; ``converged_``; ``latent_gp_`` (the plain GP that set l);
    - ``Z_train_`` (m, d), ``y_train_`` (m,), ``instr_train_``; ``y_mean_``, ``y_std_`` (how y was standardised) and
      ``ys_`` (m,) the standardised targets;
    - ``noise_`` (standardised units, of a new observation), ``noise_train_`` (m,) the noise variances used
      (standardised), ``noise_variance_`` (y's scale); ``log_marginal_likelihood_`` (standardised y, prior excluded),
      ``log_prior_value_``; ``y_best_`` the incumbent.
    """

    def __init__(self, kernel: Kernel, *, config: GPConfig | None = None) -> None:
        self.kernel = kernel
        self.config = config or GPConfig()  # kept as given: every setting of the fit is here
        if self.config.noise is not None and self.config.noise_var_y is not None:
            raise ValueError("give the noise either standardised (noise) or on y's scale (noise_var_y), not both")
        self.kernel_: Kernel | None = None  # the fitted copy of kernel
        self.latent_gp_: GaussianProcess | None = None  # the plain GP that set l (latent="plain_gp")
        self.theta_: Tensor | None = None  # (p,) fitted hyperparameters
        self.converged_: bool | None = None  # L-BFGS-B converged in the best restart (None: theta was given)

    # ---------------------------------------------------------------------------------------------- hyperparameters
    @property
    def _k(self) -> Kernel:
        """The kernel whose hyperparameters are fitted: the fitted copy once data is set, else the given kernel."""
        return self.kernel if self.kernel_ is None else self.kernel_

    @property
    def fit_noise(self) -> bool:
        cfg = self.config
        return cfg.noise is None and (cfg.noise_var_y is None or cfg.fit_extra_noise)

    @property
    def n_params(self) -> int:
        return self._k.n_params + int(self.fit_noise)

    def bounds(self) -> Tensor:
        """(p, 2) log-space bounds: the kernel's, then the log noise variance's (when fitted)."""
        b = self._k.bounds()  # (p_k, 2)
        if self.fit_noise:
            lo, hi = self.config.noise_bounds
            b = torch.cat([b, torch.tensor([[math.log(lo), math.log(hi)]], dtype=DTYPE)])
        return b

    def initial(self) -> Tensor:
        t = self._k.initial()  # (p_k,)
        if self.fit_noise:
            t = torch.cat([t, torch.tensor([math.log(self.config.noise_init)], dtype=DTYPE)])
        b = self.bounds()
        return torch.maximum(torch.minimum(t, b[:, 1]), b[:, 0])  # (p,) clipped into the bounds

    def _noise(self, theta: Tensor) -> Tensor:
        """Noise variance, standardised: () homoscedastic, or (m,) with a per-point known noise."""
        if self.config.noise_var_y is None:
            return theta[-1].exp() if self.fit_noise else torch.tensor(self.config.noise, dtype=DTYPE)
        return (self._known_noise + theta[-1].exp()) if self.fit_noise else self._known_noise  # (m,)

    def log_prior(self, theta: Tensor) -> Tensor:
        """Gamma prior on every log-lengthscale entry of theta (p,); 0 when switched off."""
        if self.config.lengthscale_prior is None:
            return torch.zeros((), dtype=DTYPE)
        mask = self._k.lengthscale_mask()  # (p_k,)
        return gamma_log_prior(theta[: self._k.n_params][mask], *self.config.lengthscale_prior)

    # ------------------------------------------------------------------------------------------------------- data
    def _to_kernel(self, X: Tensor) -> Tensor:
        """The kernels' inputs: X itself, or X mapped from input_bounds to the unit cube, (n, d)."""
        if self.config.input_bounds is None:
            return X
        b = torch.as_tensor(self.config.input_bounds, dtype=DTYPE)  # (2,) or (2, d)
        return (X - b[0]) / (b[1] - b[0])  # (n, d)

    def _set_data(self, Z: Tensor, y: Tensor, instr: Tensor | None, kernel: Kernel | None = None) -> None:
        """Check and keep the data; ``kernel_`` becomes ``kernel`` (default: a fresh copy of the given kernel)."""
        Z = torch.as_tensor(Z, dtype=DTYPE)  # (m, d)
        y = torch.as_tensor(y, dtype=DTYPE).reshape(-1)  # (m,)
        if Z.ndim != 2 or Z.shape[0] != y.shape[0] or Z.shape[0] == 0:
            raise ValueError(f"need Z (m, d) and y (m,) with m >= 1, got {tuple(Z.shape)} and {tuple(y.shape)}")
        check_finite("Z", Z)
        check_finite("y", y[:, None])
        if instr is not None:
            instr = torch.as_tensor(instr)
            if instr.is_floating_point():
                check_finite("instr", instr)
        m = y.shape[0]
        self.y_mean_ = y.mean() if self.config.standardize else torch.zeros((), dtype=DTYPE)  # ()
        std = y.std() if (self.config.standardize and m > 1) else torch.ones((), dtype=DTYPE)  # () ddof = 1
        self.y_std_ = std if std > 1e-8 else torch.ones((), dtype=DTYPE)  # constant y: no scaling
        self.Z_train_, self.y_train_, self.instr_train_ = Z, y, instr
        self.ys_ = (y - self.y_mean_) / self.y_std_  # (m,) standardised targets
        if self.config.noise_var_y is not None:
            known = torch.as_tensor(self.config.noise_var_y, dtype=DTYPE)  # () or (m,) on y's scale
            if known.ndim and known.shape != (m,):
                raise ValueError(f"noise_var_y must be a number or one variance per point ({m},), "
                                 f"got {tuple(known.shape)}")
            self._known_noise = known.expand(m) / self.y_std_**2  # (m,) standardised
        self.kernel_ = copy.deepcopy(self.kernel) if kernel is None else kernel
        self.kernel_.set_train(self._to_kernel(Z), instr)

    # ------------------------------------------------------------------------------------- marginal likelihood
    def _factor(self, theta: Tensor) -> tuple[dict, Tensor, Tensor, Tensor]:
        """Kernel parts, Cholesky factor C of K + noise I (m, m), alpha (m,), and log p(y | Z, theta) ()."""
        parts = self.kernel_.parts(theta[: self.kernel_.n_params])
        K = self.kernel_.gram_train(parts)  # (m, m)
        m = K.shape[0]
        noise = self._noise(theta)  # () or (m,)
        Ky = K + (torch.diag(noise) if noise.ndim else noise * torch.eye(m, dtype=DTYPE))  # (m, m)
        C = robust_cholesky(Ky, what="training covariance K + noise I")  # (m, m) Alg 2.1 line 2: L = cholesky(K + s2 I)
        alpha = torch.cholesky_solve(self.ys_[:, None], C)[:, 0]  # (m,) line 3: alpha = L^T \ (L \ y)
        lml = -0.5 * self.ys_ @ alpha - C.diagonal().log().sum() - 0.5 * m * LOG_2PI  # () line 7
        return parts, C, alpha, lml

    def log_marginal_likelihood_at(self, theta: Tensor) -> Tensor:
        """log p(y_standardised | Z, theta), differentiable in theta (p,). Data must be set by fit."""
        return self._factor(theta)[3]

    def objective(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Negative log posterior (up to a constant) and its gradient, for scipy."""
        t = torch.as_tensor(theta, dtype=DTYPE).clone().requires_grad_(True)  # (p,)
        loss = -(self.log_marginal_likelihood_at(t) + self.log_prior(t))  # ()
        (grad,) = torch.autograd.grad(loss, t)
        return float(loss.detach()), grad.numpy().copy()

    # ------------------------------------------------------------------------------------------------------- fit
    def fit(
        self,
        Z: Tensor,
        y: Tensor,
        instr: Tensor | None = None,
        *,
        theta: Tensor | None = None,
    ) -> GaussianProcess:
        """Fit the hyperparameters to Z (m, d), y (m,); instr is what the coupled kernel builds S from.

        instr: per-example score vectors (m, n) for ``ScoreMatern52``, prediction codes (m, n) for
        ``PredictionAgreement``, S (m, m) for ``PrecomputedSimilarity``; ignored by ``Matern52``.
        theta: use these hyperparameters (p,) as they are instead of optimising (e.g. to copy another model's).
        Warns ``ConvergenceWarning`` when L-BFGS-B stops early in the best restart (raise ``GPConfig.maxiter``).
        """
        cfg = self.config
        kernel = copy.deepcopy(self.kernel)  # the fit's own kernel: the caller's is never changed
        self.latent_gp_, self.converged_, sub = None, None, None
        with limit_threads(cfg.threads):
            if theta is None and cfg.max_fit_points is not None and len(Z) > cfg.max_fit_points:
                sub = self._fit_subset(Z, y, instr)  # O(m^3) per step: a big m costs minutes
                kernel, theta = copy.deepcopy(sub.kernel_), sub.theta_  # l pinned on the subset, if latent
            elif isinstance(kernel, InstructionCoupledKernel) and kernel.latent == "plain_gp" and theta is None:
                self._fit_latent(kernel, Z, y)
            self._set_data(Z, y, instr, kernel)
            if theta is None:
                theta = self._optimise(max(cfg.n_restarts, 1), cfg.seed)
            self._condition(torch.as_tensor(theta, dtype=DTYPE).detach())
        if sub is not None:
            self.latent_gp_, self.converged_ = sub.latent_gp_, sub.converged_
        return self

    def _fit_subset(self, Z: Tensor, y: Tensor, instr: Tensor | None) -> GaussianProcess:
        """This GP fitted on ``max_fit_points`` seeded random rows: its theta serves all m points (subset of data)."""
        gen = torch.Generator().manual_seed(self.config.seed)
        rows = torch.randperm(len(Z), generator=gen)[: self.config.max_fit_points].sort()[0]  # (cap,) in given order
        pairwise = isinstance(getattr(self.kernel, "similarity", None), PrecomputedSimilarity)  # instr is S (m, m)
        instr, known = (None if v is None else torch.as_tensor(v) for v in (instr, self.config.noise_var_y))
        instr = None if instr is None else instr[rows][:, rows] if pairwise else instr[rows]
        known = known[rows] if known is not None and known.ndim else self.config.noise_var_y  # a number stays
        config = replace(self.config, max_fit_points=None, noise_var_y=known)
        Z_sub, y_sub = torch.as_tensor(Z)[rows], torch.as_tensor(y)[rows]  # (cap, d), (cap,)
        return GaussianProcess(self.kernel, config=config).fit(Z_sub, y_sub, instr)

    def _fit_latent(self, kernel: InstructionCoupledKernel, Z: Tensor, y: Tensor) -> None:
        """latent="plain_gp": l's lengthscales from the marginal likelihood of a plain Matern-5/2 GP on (Z, y)."""
        plain = Matern52(kernel.d, ard=kernel.n_ls == kernel.d, lengthscale_bounds=kernel.lengthscale_bounds)
        self.latent_gp_ = GaussianProcess(plain, config=self.config).fit(Z, y)
        kernel.fix_latent(self.latent_gp_.theta_[: plain.n_ls].exp())

    def _optimise(self, n_restarts: int, seed: int) -> Tensor:
        b = self.bounds()  # (p, 2)
        gen = torch.Generator().manual_seed(seed)
        best, best_f, errors = None, math.inf, []
        for r in range(n_restarts):
            u = torch.rand(self.n_params, generator=gen, dtype=DTYPE)  # (p,) drawn every run: nested sequences
            x0 = self.initial() if r == 0 else b[:, 0] + u * (b[:, 1] - b[:, 0])  # (p,)
            try:
                res = minimize(self.objective, x0.numpy(), jac=True, method="L-BFGS-B",
                               bounds=b.numpy(), options={"maxiter": self.config.maxiter})
            except NotPSDError as e:
                errors.append(e)
                log.debug("restart %d failed: %s", r, e)
                continue
            log.debug("restart %d: -log posterior %.6g (%s)", r, res.fun, res.message)
            if np.isfinite(res.fun) and res.fun < best_f:
                best, best_f = res, float(res.fun)
        if best is None:
            raise errors[-1] if errors else NotPSDError("every restart of the GP fit gave a non-finite objective")
        self.converged_ = bool(best.success)
        if not best.success:
            warnings.warn(f"the GP fit's best L-BFGS-B run did not converge ({best.message}, {best.nit} iterations): "
                          "raise GPConfig.maxiter or n_restarts", ConvergenceWarning, stacklevel=3)
        return torch.as_tensor(best.x, dtype=DTYPE).clamp(b[:, 0], b[:, 1])  # (p,)

    @torch.no_grad()
    def _condition(self, theta: Tensor) -> None:
        """Cache what predictions need at the fitted theta (p,): kernel parts, C, alpha."""
        self.theta_ = theta
        self._parts, self._C, self._alpha, lml = self._factor(theta)
        self.log_marginal_likelihood_ = float(lml)
        self.log_prior_value_ = float(self.log_prior(theta))
        noise = self._noise(theta)  # () or (m,)
        self.noise_train_ = noise.expand(len(self.y_train_)).clone()  # (m,)
        self.noise_ = float(noise.mean())  # a new point's noise: the homoscedastic value, or the known noises' mean

    def _fitted(self) -> None:
        if self.theta_ is None:
            raise RuntimeError("call fit first")

    # ---------------------------------------------------------------------------------------------------- predict
    def predict(self, X: Tensor, observation_noise: bool = False) -> tuple[Tensor, Tensor]:
        """Posterior mean (q,) and variance (q,) of f at X (q, d) on y's original scale; differentiable in X."""
        self._fitted()
        Xk = self._to_kernel(X)  # (q, d)
        kx, kxx = self.kernel_.cross_train_diag(self._parts, Xk)  # (q, m), (q,)
        mean = kx @ self._alpha  # (q,) Alg 2.1 line 4: f* = k*^T alpha
        v = torch.linalg.solve_triangular(self._C, kx.T, upper=False)  # (m, q) line 5: v = L \ k*
        var = (kxx - (v * v).sum(0)).clamp_min(0.0)  # (q,) line 6: V = k** - v^T v
        if observation_noise:
            var = var + self.noise_
        return self.y_mean_ + self.y_std_ * mean, self.y_std_**2 * var

    def posterior_cov(self, X1: Tensor, X2: Tensor) -> Tensor:
        """Posterior covariance of f between X1 (n1, d) and X2 (n2, d), (n1, n2), original scale."""
        self._fitted()
        X1, X2 = self._to_kernel(X1), self._to_kernel(X2)
        v1 = torch.linalg.solve_triangular(self._C, self.kernel_.cross_train(self._parts, X1).T, upper=False)  # (m, n1)
        v2 = torch.linalg.solve_triangular(self._C, self.kernel_.cross_train(self._parts, X2).T, upper=False)  # (m, n2)
        return self.y_std_**2 * (self.kernel_.cross(self._parts, X1, X2) - v1.T @ v2)  # (n1, n2)

    def prior_variance(self, X: Tensor) -> Tensor:
        """Prior variance k(x, x) (q,) at X (q, d), y's original scale: for eq. 9 y_std^2 s w(x)^T S w(x)."""
        self._fitted()
        return self.y_std_**2 * self.kernel_.diag(self._parts, self._to_kernel(X))

    @torch.no_grad()
    def kernel_matrices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """L = l(Z, Z), s S and K = k(Z, Z) (eq. 9 the long way, through L^{-1}), each (m, m), of a coupled GP.

        Standardised units (kernel scale). Without the residual K = s S up to jitter; with it K = s S + s_r L.
        """
        self._fitted()
        k = self.kernel_
        if not isinstance(k, InstructionCoupledKernel):
            raise TypeError(f"kernel_matrices needs an InstructionCoupledKernel GP, this one has {type(k).__name__}")
        L = k.latent_gram(self._parts)  # (m, m)
        K = k.cross(self._parts, k.Z, k.Z)  # (m, m)
        return L.numpy().copy(), (self._parts["s"] * self._parts["S"]).numpy(), K.numpy()

    @property
    def noise_variance_(self) -> float:
        """Fitted observation-noise variance on y's original scale."""
        return self.noise_ * float(self.y_std_) ** 2

    @property
    def y_best_(self) -> Tensor:
        """Best observed y (original scale), the incumbent for expected improvement."""
        return self.y_train_.max()

    @property
    def kernel_parts_(self) -> KernelParts:
        """The fitted kernel's pieces by name, natural scale: lengthscale, outputscale, and for eq. 9 S and the rest."""
        self._fitted()
        return self.kernel_.named_parts(self.theta_[: self.kernel_.n_params], self._parts.get("S"))  # S built once

    def hyperparameters(self) -> dict[str, Tensor | float]:
        """Fitted hyperparameters by name (natural scale, S left out), for display and the run record's gp lines."""
        p = self.kernel_parts_
        ls = "latent_lengthscale" if isinstance(self.kernel_, InstructionCoupledKernel) else "lengthscale"
        out = {ls: p.lengthscale, "outputscale": p.outputscale,
               "similarity_lengthscale": p.similarity_lengthscale, "residual_outputscale": p.residual_outputscale}
        return {k: v for k, v in out.items() if v is not None} | {"noise": self.noise_}


def _quantiles(name: str, x: Tensor, qs: tuple[float, ...] = (0.5, 0.9, 0.99)) -> dict[str, float]:
    if x.numel() == 0:
        return {f"{name}_q{round(100 * q)}": math.nan for q in qs} | {f"{name}_max": math.nan}
    vals = torch.quantile(x, torch.tensor(qs, dtype=x.dtype))  # (len(qs),)
    return {f"{name}_q{round(100 * q)}": float(v) for q, v in zip(qs, vals)} | {f"{name}_max": float(x.max())}


@torch.no_grad()
def diagnostics(gp: GaussianProcess, n: int = 256, seed: int = 0, bounds: Tensor | None = None) -> dict[str, float]:
    """How much a fitted GP can explore, for logging per BO round (plain floats, JSON-ready; gp is not changed).

    ``S_offdiag_*``: quantiles of S's off-diagonal entries (coupled kernel only; near 0 means S is the identity and
    the coupling says only "same instruction, same score"). ``sd_ratio_*`` / ``prior_sd_ratio_*``: posterior / prior
    sd of f at n uniform random z in bounds (2, d) (default [-1, 1]^d), over y's sd (near 0: EI only exploits).
    """
    gp._fitted()
    d = gp.Z_train_.shape[1]
    b = torch.tensor([[-1.0] * d, [1.0] * d], dtype=DTYPE) if bounds is None else torch.as_tensor(bounds, dtype=DTYPE)
    gen = torch.Generator().manual_seed(DIAGNOSTICS_STREAM + seed)  # a stream of its own: not the draws of Z
    X = b[0] + (b[1] - b[0]) * torch.rand(n, d, generator=gen, dtype=DTYPE)  # (n, d)
    sd_y = float(gp.y_train_.std()) if len(gp.y_train_) > 1 else math.nan  # y's own sd (original scale)
    sd_y = sd_y if sd_y > 1e-12 else math.nan
    out = {"m": float(len(gp.y_train_)), "noise": gp.noise_, "noise_variance": gp.noise_variance_}
    if isinstance(gp.kernel_, InstructionCoupledKernel):
        S = gp.kernel_parts_.S  # (m, m)
        out |= _quantiles("S_offdiag", S[~torch.eye(len(S), dtype=torch.bool)])
    out |= _quantiles("sd_ratio", gp.predict(X)[1].sqrt() / sd_y)
    out |= _quantiles("prior_sd_ratio", gp.prior_variance(X).sqrt() / sd_y)
    return out
