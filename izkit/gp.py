"""Exact Gaussian-process regression for InstructZero, fitted by scipy L-BFGS-B on the log marginal likelihood.

The dev score ``H(z)`` of soft prompt ``z`` is modelled as ``y = f(z) + eps``, ``f ~ GP(0, k)``, ``eps ~ N(0, noise)``
on standardised ``y`` (paper section 3: a GP with the instruction-coupled kernel of eq. 9; with ``kernel=Matern52`` it is
the plain GP of the ablation). The hyperparameters (kernel's log-space ``theta`` plus the log noise variance, one flat
vector with bounds) maximise

    log p(y | Z, theta) + log prior(theta)            (Rasmussen & Williams eq. 2.30, Alg 2.1)

with a Gamma(3, 6) prior on every lengthscale (concentration 3, rate 6: the paper's setting; as gpytorch's
``GammaPrior(3.0, 6.0)``, a density on the lengthscale itself, no log-Jacobian), switchable off. The objective
``theta -> (value, grad)`` has autograd gradients and goes to ``scipy.optimize.minimize(method="L-BFGS-B", jac=True,
bounds=...)`` from several seeded starts; the best run wins. The first start is the kernel's initial guess and the others
are uniform draws inside the bounds, drawn one at a time, so more restarts never give a lower fitted objective.

y is standardised internally (mean, std with ddof=1, as BoTorch's ``Standardize``; std 1 for one point or constant
y), so ``noise`` and ``log_marginal_likelihood`` are in standardised units; ``predict`` answers on the original scale.

For the coupled kernel, l's lengthscales do not enter the marginal likelihood (on the evaluated points K = S, see
``izkit.kernels``). With ``latent="plain_gp"`` (the default) ``fit`` first fits a plain Matern-5/2 GP on (Z, y), keeps it
as ``latent_gp`` and pins l's lengthscales to that GP's.

Numerics: a Cholesky helper adds growing jitter when a factorisation fails and then raises ``NotPSDError`` saying what
to change; NaN/inf inputs raise ``ValueError`` naming the rows. Float64 throughout.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

from izkit.kernels import DTYPE, InstructionCoupledKernel, Kernel, Matern52, NotPSDError, robust_cholesky

try:  # optional: installed with scipy's usual companions (scikit-learn, BoTorch); without it BLAS threads are left alone
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

log = logging.getLogger(__name__)

LOG_2PI = math.log(2.0 * math.pi)


@contextlib.contextmanager
def limit_threads(n: int | None) -> Iterator[None]:
    """Run a block with n torch intra-op threads and n BLAS threads (scipy's OpenBLAS), then restore both.

    The matrices here are small (m up to a few hundred) and scipy's L-BFGS-B works on short vectors: extra threads
    gain nothing and their wake-ups cost a lot on a busy machine (measured: a fit at m = 150 on a shared 2-core box
    took 8.4 s with the defaults and 1.2 s with one thread). n = None leaves the process settings alone.
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


class GaussianProcess:
    """Exact GP with a kernel from ``izkit.kernels``. ``fit(Z, y, instr)``, then ``predict(X) -> (mean, var)``.

    Fitted attributes: ``theta`` (p,) kernel + log-noise vector, ``noise`` (standardised units),
    ``log_marginal_likelihood`` (standardised y, prior excluded), ``log_prior``, ``y_mean``, ``y_std``, ``Z``, ``y``.
    """

    def __init__(self, kernel: Kernel, noise: float | None = None, config: GPConfig | None = None) -> None:
        self.kernel = kernel
        self.config = config or GPConfig()
        if noise is not None:
            self.config = replace(self.config, noise=noise)
        self.latent_gp: GaussianProcess | None = None  # the plain GP that set l (latent="plain_gp")
        self.theta: Tensor | None = None  # (p,) fitted hyperparameters

    # ---------------------------------------------------------------------------------------------- hyperparameters
    @property
    def fit_noise(self) -> bool:
        return self.config.noise is None

    @property
    def n_params(self) -> int:
        return self.kernel.n_params + int(self.fit_noise)

    def bounds(self) -> Tensor:
        """(p, 2) log-space bounds: the kernel's, then the log noise variance's (when fitted)."""
        b = self.kernel.bounds()  # (p_k, 2)
        if self.fit_noise:
            lo, hi = self.config.noise_bounds
            b = torch.cat([b, torch.tensor([[math.log(lo), math.log(hi)]], dtype=DTYPE)])
        return b

    def initial(self) -> Tensor:
        t = self.kernel.initial()  # (p_k,)
        if self.fit_noise:
            t = torch.cat([t, torch.tensor([math.log(self.config.noise_init)], dtype=DTYPE)])
        b = self.bounds()
        return torch.maximum(torch.minimum(t, b[:, 1]), b[:, 0])  # (p,) clipped into the bounds

    def _noise(self, theta: Tensor) -> Tensor:
        return theta[-1].exp() if self.fit_noise else torch.tensor(self.config.noise, dtype=DTYPE)

    def log_prior(self, theta: Tensor) -> Tensor:
        """Gamma prior on every log-lengthscale entry of theta (p,); 0 when switched off."""
        if self.config.lengthscale_prior is None:
            return torch.zeros((), dtype=DTYPE)
        mask = self.kernel.lengthscale_mask()  # (p_k,)
        return gamma_log_prior(theta[: self.kernel.n_params][mask], *self.config.lengthscale_prior)

    # ------------------------------------------------------------------------------------------------------- data
    def _set_data(self, Z: Tensor, y: Tensor, instr: Tensor | None) -> None:
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
        self.y_mean = y.mean() if self.config.standardize else torch.zeros((), dtype=DTYPE)  # ()
        std = y.std() if (self.config.standardize and m > 1) else torch.ones((), dtype=DTYPE)  # () ddof = 1
        self.y_std = std if std > 1e-8 else torch.ones((), dtype=DTYPE)  # constant y: no scaling
        self.Z, self.y = Z, y
        self.ys = (y - self.y_mean) / self.y_std  # (m,) standardised targets
        self.kernel.set_train(Z, instr)

    # ------------------------------------------------------------------------------------- marginal likelihood
    def _factor(self, theta: Tensor) -> tuple[dict, Tensor, Tensor, Tensor]:
        """Kernel parts, Cholesky factor C of K + noise I (m, m), alpha (m,), and log p(y | Z, theta) ()."""
        parts = self.kernel.parts(theta[: self.kernel.n_params])
        K = self.kernel.gram_train(parts)  # (m, m)
        m = K.shape[0]
        Ky = K + self._noise(theta) * torch.eye(m, dtype=DTYPE)  # (m, m)
        C = robust_cholesky(Ky, what="training covariance K + noise I")  # (m, m) Alg 2.1 line 2: L = cholesky(K + s2 I)
        alpha = torch.cholesky_solve(self.ys[:, None], C)[:, 0]  # (m,) line 3: alpha = L^T \ (L \ y)
        lml = -0.5 * self.ys @ alpha - C.diagonal().log().sum() - 0.5 * m * LOG_2PI  # () line 7
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
        n_restarts: int | None = None,
        seed: int | None = None,
    ) -> GaussianProcess:
        """Fit the hyperparameters to Z (m, d), y (m,); instr is what the coupled kernel builds S from.

        instr: per-example score vectors (m, n) for ``ScoreMatern52``, prediction codes (m, n) for
        ``PredictionAgreement``, S (m, m) for ``PrecomputedSimilarity``; ignored by ``Matern52``.
        theta: use these hyperparameters (p,) as they are instead of optimising (e.g. to copy another model's).
        """
        cfg = self.config
        n_restarts = cfg.n_restarts if n_restarts is None else n_restarts
        seed = cfg.seed if seed is None else seed
        with limit_threads(cfg.threads):
            if (isinstance(self.kernel, InstructionCoupledKernel) and self.kernel.latent == "plain_gp"
                    and theta is None):
                self._fit_latent(Z, y, n_restarts, seed)
            self._set_data(Z, y, instr)
            if theta is None:
                theta = self._optimise(max(n_restarts, 1), seed)
            self._condition(torch.as_tensor(theta, dtype=DTYPE).detach())
        return self

    def _fit_latent(self, Z: Tensor, y: Tensor, n_restarts: int, seed: int) -> None:
        """latent="plain_gp": l's lengthscales from the marginal likelihood of a plain Matern-5/2 GP on (Z, y)."""
        k = self.kernel
        plain = Matern52(k.d, ard=k.n_ls == k.d, lengthscale_bounds=k.lengthscale_bounds)
        self.latent_gp = GaussianProcess(plain, config=self.config).fit(Z, y, n_restarts=n_restarts, seed=seed)
        k.fix_latent(self.latent_gp.theta[: plain.n_ls].exp())

    def _optimise(self, n_restarts: int, seed: int) -> Tensor:
        b = self.bounds()  # (p, 2)
        gen = torch.Generator().manual_seed(seed)
        best_x, best_f, errors = None, math.inf, []
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
                best_x, best_f = res.x, float(res.fun)
        if best_x is None:
            raise errors[-1] if errors else NotPSDError("every restart of the GP fit gave a non-finite objective")
        return torch.as_tensor(best_x, dtype=DTYPE).clamp(b[:, 0], b[:, 1])  # (p,)

    @torch.no_grad()
    def _condition(self, theta: Tensor) -> None:
        """Cache what predictions need at the fitted theta (p,): kernel parts, C, alpha."""
        self.theta = theta
        self._parts, self._C, self._alpha, lml = self._factor(theta)
        self.log_marginal_likelihood = float(lml)
        self.log_prior_value = float(self.log_prior(theta))
        self.noise = float(self._noise(theta))

    # ---------------------------------------------------------------------------------------------------- predict
    def predict(self, X: Tensor, observation_noise: bool = False) -> tuple[Tensor, Tensor]:
        """Posterior mean (q,) and variance (q,) of f at X (q, d) on y's original scale; differentiable in X."""
        if self.theta is None:
            raise RuntimeError("call fit first")
        kx = self.kernel.cross_train(self._parts, X)  # (q, m)
        mean = kx @ self._alpha  # (q,) Alg 2.1 line 4: f* = k*^T alpha
        v = torch.linalg.solve_triangular(self._C, kx.T, upper=False)  # (m, q) line 5: v = L \ k*
        var = (self.kernel.diag(self._parts, X) - (v * v).sum(0)).clamp_min(0.0)  # (q,) line 6: V = k** - v^T v
        if observation_noise:
            var = var + self.noise
        return self.y_mean + self.y_std * mean, self.y_std**2 * var

    def posterior_cov(self, X1: Tensor, X2: Tensor) -> Tensor:
        """Posterior covariance of f between X1 (n1, d) and X2 (n2, d), (n1, n2), original scale."""
        v1 = torch.linalg.solve_triangular(self._C, self.kernel.cross_train(self._parts, X1).T, upper=False)  # (m, n1)
        v2 = torch.linalg.solve_triangular(self._C, self.kernel.cross_train(self._parts, X2).T, upper=False)  # (m, n2)
        return self.y_std**2 * (self.kernel.cross(self._parts, X1, X2) - v1.T @ v2)  # (n1, n2)

    @property
    def noise_variance(self) -> float:
        """Fitted observation-noise variance on y's original scale."""
        return self.noise * float(self.y_std) ** 2

    @property
    def y_best(self) -> Tensor:
        """Best observed y (original scale), the incumbent for expected improvement."""
        return self.y.max()

    def hyperparameters(self) -> dict[str, Tensor | float]:
        """Fitted hyperparameters by name (natural scale), for display."""
        out: dict[str, Tensor | float] = dict(self.kernel.describe(self.theta[: self.kernel.n_params]))
        out["noise"] = self.noise
        return out
