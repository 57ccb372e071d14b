"""Expected improvement and its multi-start optimisation over the soft-prompt box (InstructZero, paper step 5).

Maximisation convention: a higher score is better. With the posterior mean ``mu`` and standard deviation ``sigma`` at z
and the best observed score ``best``, expected improvement (Jones et al. 1998; paper eq. 10) is

    u = (mu - best) / sigma,      ei(u) = phi(u) + u Phi(u),      EI = sigma * ei(u).

``log_expected_improvement`` stays finite far in the tail: for u <= -1 it writes
``ei(u) = phi(u) (1 - |u| sqrt(pi/2) erfcx(|u| / sqrt2))`` and takes logs term by term, and for u < -1000 it uses the
asymptotic series ``1 - |u| sqrt(pi/2) erfcx(|u| / sqrt2) = u^-2 (1 - 3 u^-2 + 15 u^-4 - ...)`` (as BoTorch's
``LogExpectedImprovement``, written from the formulas). The variance is floored at ``min_var`` before the square root.

``optimize_acquisition`` scores scrambled Sobol points in the box, starts L-BFGS-B from the best of them plus the best
observed points, and optimises all starts at once: the starts are concatenated into one flat vector whose objective is
the sum of their acquisition values (separable, so one batched torch call per scipy iteration gives every start's value
and gradient). The top ``q`` distinct points among the optimised points, the starts and the raw samples are returned
(the paper's batch of 25 is the top 25 by EI), so the result is never worse than the best raw sample. A second batch rule,
``"kriging_believer"``, picks the q points one at a time, each time shrinking the variance as if the previous picks had
been observed at their posterior mean. (With the coupled kernel and little noise the posterior variance is already
tiny everywhere, see ``izkit.kernels``, so the fantasies change little and the distinctness rule does most of the work.)
Points passed as ``exclude`` (the evaluated soft prompts) are never returned.

``optimize_acquisition_from_incumbents`` is izkit's version of the batch rule the authors' code means: one local search
from each of the q best evaluated points, one candidate each, so a batch spreads over q incumbents (their code runs
CMA-ES, sigma0 = 0.8, but as written starts every run from the first evaluated point; here a CMA-ES-like first
generation around each incumbent picks the start of an L-BFGS-B run).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor
from torch.quasirandom import SobolEngine

from izkit.gp import GaussianProcess, limit_threads
from izkit.kernels import DTYPE, robust_cholesky

log = logging.getLogger(__name__)

INV_SQRT2 = 1.0 / math.sqrt(2.0)
LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
LOG_SQRT_PI_2 = 0.5 * math.log(math.pi / 2.0)
TAIL = -1000.0  # below this u, log-EI uses the asymptotic series


def _phi(u: Tensor) -> Tensor:
    return torch.exp(-0.5 * u * u - LOG_SQRT_2PI)  # standard normal density


def _Phi(u: Tensor) -> Tensor:
    return 0.5 * torch.special.erfc(-u * INV_SQRT2)  # standard normal cdf


def ei_of_u(u: Tensor) -> Tensor:
    """ei(u) = phi(u) + u Phi(u), the EI of a unit-variance Gaussian over best = 0 at mean u."""
    return (_phi(u) + u * _Phi(u)).clamp_min(0.0)


def _log1mexp(a: Tensor) -> Tensor:
    """log(1 - exp(a)) for a < 0, accurate on both sides of -log 2 (Maechler 2012)."""
    return torch.where(a > -math.log(2.0), torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(a)))


def log_ei_of_u(u: Tensor) -> Tensor:
    """log ei(u), finite for every finite u. Each branch sees only inputs inside its own range (safe gradients)."""
    u_mid = u.clamp_min(-1.0)  # u > -1: ei(u) >= ei(-1) = 0.083, direct log is exact
    direct = torch.log(ei_of_u(u_mid))
    u_tail = u.clamp(TAIL, -1.0)  # -1000 <= u <= -1: log phi(u) + log(1 - |u| sqrt(pi/2) erfcx(|u|/sqrt2))
    log_x = torch.log(-u_tail) + torch.log(torch.special.erfcx(-u_tail * INV_SQRT2)) + LOG_SQRT_PI_2
    tail = -0.5 * u_tail**2 - LOG_SQRT_2PI + _log1mexp(log_x)
    u_far = u.clamp_max(TAIL)  # u < -1000: 1 - x = u^-2 (1 - 3 u^-2 + 15 u^-4)
    inv2 = u_far**-2
    far = -0.5 * u_far**2 - LOG_SQRT_2PI + torch.log(inv2) + torch.log1p(-3.0 * inv2 + 15.0 * inv2**2)
    return torch.where(u > -1.0, direct, torch.where(u >= TAIL, tail, far))


def expected_improvement(mean: Tensor, var: Tensor, best: float | Tensor, min_var: float = 1e-12) -> Tensor:
    """EI = sigma * ei((mean - best) / sigma) for mean, var (b,), maximisation. Returns (b,)."""
    sigma = var.clamp_min(min_var).sqrt()  # (b,)
    return sigma * ei_of_u((mean - best) / sigma)  # (b,)


def log_expected_improvement(mean: Tensor, var: Tensor, best: float | Tensor, min_var: float = 1e-12) -> Tensor:
    """log EI, finite far in the tail (u = -40 and beyond). mean, var (b,) -> (b,)."""
    sigma = var.clamp_min(min_var).sqrt()  # (b,)
    return log_ei_of_u((mean - best) / sigma) + sigma.log()  # (b,)


ACQUISITIONS = {"log_ei": log_expected_improvement, "ei": expected_improvement}

Acquisition = Callable[[Tensor], Tensor]  # X (b, d) -> values (b,)


def make_acquisition(gp: GaussianProcess, acquisition: str = "log_ei", best: float | Tensor | None = None,
                     min_var: float = 1e-12) -> Acquisition:
    """X (b, d) -> acquisition values (b,) under the fitted gp; best defaults to the best observed y."""
    fn = ACQUISITIONS[acquisition]
    best = gp.y_best_ if best is None else torch.as_tensor(best, dtype=DTYPE)

    def acq(X: Tensor) -> Tensor:
        mean, var = gp.predict(X)  # (b,), (b,)
        return fn(mean, var, best, min_var)

    return acq


def _fantasy_acquisition(gp: GaussianProcess, picked: Tensor, acquisition: str, best: Tensor,
                         min_var: float) -> Acquisition:
    """Kriging believer: the variance after observing picked (f, d) at its posterior mean (the mean is unchanged)."""
    fn = ACQUISITIONS[acquisition]
    Sigma = gp.posterior_cov(picked, picked) + gp.noise_variance_ * torch.eye(len(picked), dtype=DTYPE)  # (f, f)
    C = robust_cholesky(Sigma, what="fantasy covariance")  # (f, f)

    def acq(X: Tensor) -> Tensor:
        mean, var = gp.predict(X)  # (b,), (b,)
        v = torch.linalg.solve_triangular(C, gp.posterior_cov(picked, X), upper=False)  # (f, b)
        return fn(mean, (var - (v * v).sum(0)).clamp_min(0.0), best, min_var)

    return acq


@torch.no_grad()
def _evaluate(acq: Acquisition, X: Tensor, chunk: int = 2048) -> Tensor:
    """acq on X (n, d) in chunks; NaN becomes -inf so it never wins. Returns (n,)."""
    vals = torch.cat([acq(X[i : i + chunk]) for i in range(0, len(X), chunk)])  # (n,)
    return torch.nan_to_num(vals, nan=-math.inf)


def _lbfgsb_multistart(acq: Acquisition, starts: Tensor, lo: Tensor, hi: Tensor, maxiter: int) -> Tensor:
    """Maximise acq from every start (B, d) at once: one flat vector, objective -sum_b acq(x_b), jac by autograd."""
    B, d = starts.shape

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        X = torch.from_numpy(x).view(B, d).requires_grad_(True)  # (B, d)
        vals = acq(X)  # (B,)
        loss = -vals.sum()  # () separable: the gradient of block b is -d acq(x_b) / d x_b
        (grad,) = torch.autograd.grad(loss, X)
        if not bool(torch.isfinite(loss)):
            return 1e300, np.zeros_like(x)  # lets the line search back off
        return float(loss.detach()), grad.reshape(-1).numpy().copy()

    bounds = np.stack([lo.repeat(B).numpy(), hi.repeat(B).numpy()], axis=1)  # (B d, 2)
    res = minimize(objective, starts.reshape(-1).numpy(), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": maxiter})
    log.debug("multistart L-BFGS-B: %d starts, %d iterations, %s", B, res.nit, res.message)
    return torch.from_numpy(res.x).view(B, d).clamp(lo, hi)  # (B, d)


def _top_distinct(X: Tensor, vals: Tensor, q: int, scale: Tensor, tol: float, taken: Tensor) -> tuple[Tensor, Tensor]:
    """Greedy over X (n, d): best first, skipping any point within tol (max-norm, box-normalised) of one kept or taken.

    taken (t, d): points chosen earlier or excluded by the caller.
    """
    order = torch.argsort(vals, descending=True)  # (n,)
    kept: list[int] = []
    for i in order.tolist():
        near = torch.cat([X[kept], taken])  # (k + t, d)
        if len(near) and bool((((near - X[i]) / scale).abs().amax(-1) <= tol).any()):
            continue
        kept.append(i)
        if len(kept) == q:
            break
    idx = torch.tensor(kept, dtype=torch.long)
    return X[idx], vals[idx]  # (q, d), (q,)


def _box(bounds: Tensor) -> tuple[Tensor, Tensor]:
    bounds = torch.as_tensor(bounds, dtype=DTYPE)  # (2, d)
    if bounds.ndim != 2 or bounds.shape[0] != 2 or not bool((bounds[1] > bounds[0]).all()):
        raise ValueError("bounds must be (2, d) with lower < upper in every dimension")
    return bounds[0], bounds[1]  # (d,), (d,)


def optimize_acquisition(
    gp: GaussianProcess,
    bounds: Tensor,
    q: int = 1,
    *,
    n_starts: int,
    raw_samples: int,
    seed: int = 0,
    acquisition: str = "log_ei",
    best: float | Tensor | None = None,
    n_observed_starts: int = 5,
    maxiter: int = 200,
    distinct_tol: float = 1e-3,
    rule: str = "top_q",
    exclude: Tensor | None = None,
    min_var: float = 1e-12,
    threads: int | None = 1,
) -> tuple[Tensor, Tensor]:
    """The q best distinct maximisers of the acquisition in the box bounds (2, d): (q, d) points, (q,) values.

    acquisition: "log_ei" (default: stable gradients far from the incumbent) or "ei". Starts: the best
    ``n_starts - n_observed_starts`` of ``raw_samples`` scrambled Sobol points (seeded) plus the ``n_observed_starts``
    best evaluated points (a run passes its config's ``acq_restarts`` and ``acq_raw_samples``: izkit.config). rule: the batch
    rule, "top_q" (one multi-start run, the top q distinct points, as the paper) or "kriging_believer" (q sequential runs, the variance shrunk by the earlier picks, each pick distinct from them).
    Points count as distinct when they differ by more than ``distinct_tol`` of the box width in some coordinate;
    ``exclude`` (e, d), e.g. ``gp.Z_train_``, lists points the batch must also be distinct from: no returned point lies
    within ``distinct_tol`` of one (with 0, none equals one); fewer than q come back, with a warning, if the pool runs
    out. The values returned are the plain (not fantasy-conditioned) acquisition at the returned points. threads:
    torch and BLAS threads meanwhile (see ``izkit.gp.limit_threads``; None leaves them alone).
    """
    lo, hi = _box(bounds)  # (d,), (d,)
    d = lo.shape[0]
    if rule not in ("top_q", "kriging_believer"):
        raise ValueError(f"rule must be 'top_q' or 'kriging_believer', got {rule!r}")
    best_t = gp.y_best_ if best is None else torch.as_tensor(best, dtype=DTYPE)
    acq = make_acquisition(gp, acquisition, best_t, min_var)
    exclude = torch.zeros(0, d, dtype=DTYPE) if exclude is None else torch.as_tensor(exclude, dtype=DTYPE)  # (e, d)

    sobol = SobolEngine(d, scramble=True, seed=seed)
    raw = lo + (hi - lo) * sobol.draw(raw_samples, dtype=DTYPE)  # (raw_samples, d)
    k_obs = min(n_observed_starts, len(gp.y_train_), n_starts)
    observed = gp.Z_train_[torch.argsort(gp.y_train_, descending=True)[:k_obs]].clamp(lo, hi)  # (k_obs, d)

    def one_run(a: Acquisition, q_run: int, taken: Tensor) -> tuple[Tensor, Tensor]:
        raw_vals = _evaluate(a, raw)  # (raw_samples,)
        top_raw = raw[torch.argsort(raw_vals, descending=True)[: max(n_starts - k_obs, 0)]]
        starts = torch.cat([top_raw, observed])  # (n_starts, d)
        X_opt = _lbfgsb_multistart(a, starts, lo, hi, maxiter)  # (n_starts, d)
        pool = torch.cat([X_opt, starts, raw])  # (n_pool, d)
        pool_vals = torch.cat([_evaluate(a, X_opt), _evaluate(a, starts), raw_vals])  # (n_pool,)
        return _top_distinct(pool, pool_vals, q_run, hi - lo, distinct_tol, taken)

    with limit_threads(threads):
        if rule == "top_q":
            X, _ = one_run(acq, q, exclude)  # (q, d)
        else:
            picks = torch.zeros(0, d, dtype=DTYPE)  # (f, d) the believer's picks so far
            for _ in range(q):
                a = acq if len(picks) == 0 else _fantasy_acquisition(gp, picks, acquisition, best_t, min_var)
                x, _ = one_run(a, 1, torch.cat([exclude, picks]))
                picks = torch.cat([picks, x])
            X = picks  # (q, d)
        if len(X) < q:
            log.warning("only %d distinct points for q = %d: raise raw_samples or lower distinct_tol", len(X), q)
        return X, _evaluate(acq, X)


def optimize_acquisition_from_incumbents(
    gp: GaussianProcess,
    bounds: Tensor,
    q: int,
    seed: int = 0,
    *,
    sigma: float = 0.4,
    population: int = 50,
    acquisition: str = "log_ei",
    best: float | Tensor | None = None,
    maxiter: int = 200,
    distinct_tol: float = 1e-3,
    exclude: Tensor | None = None,
    min_var: float = 1e-12,
    threads: int | None = 1,
) -> tuple[Tensor, Tensor]:
    """izkit's version of the batch rule the authors' code means: one candidate from a local search around each of
    the q best evaluated points.

    The authors' code means to start one CMA-ES run from each of the 25 best evaluated points; as written
    (``torch.argsort(-1 * y_train)`` on a tensor of shape (n, 1) sorts along its axis of length 1), every run starts
    from the first evaluated point, so its batch gathers around that one start (notebook 01's table of departures).
    This function does what was meant, with a local search of its own instead of CMA-ES.

    For each incumbent (best y first, distinct points only): ``population`` points z_i + sigma (hi - lo) N(0, I),
    clipped to the box (sigma = 0.4 of the box width is CMA-ES's sigma0 = 0.8 on [-1, 1]^d), the best of them by the
    acquisition starts L-BFGS-B, and the best of the optimised point and the population that is distinct from every
    evaluated point, every ``exclude`` point and the earlier candidates is kept. Returns (k, d) points, (k,) values,
    k <= q, in incumbent order; an evaluated point is never returned.
    """
    lo, hi = _box(bounds)  # (d,), (d,)
    d = lo.shape[0]
    best_t = gp.y_best_ if best is None else torch.as_tensor(best, dtype=DTYPE)
    acq = make_acquisition(gp, acquisition, best_t, min_var)
    Z = gp.Z_train_  # (m, d)
    taken = Z if exclude is None else torch.cat([Z, torch.as_tensor(exclude, dtype=DTYPE)])  # (t, d) never returned
    scale = hi - lo  # (d,)
    order = torch.argsort(gp.y_train_, descending=True)  # (m,)
    inc, _ = _top_distinct(Z[order].clamp(lo, hi), gp.y_train_[order], q, scale, distinct_tol,
                           torch.zeros(0, d, dtype=DTYPE))  # (k, d) the incumbents, best first
    k = len(inc)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(k, population, d, generator=gen, dtype=DTYPE)  # (k, P, d)
    pop = torch.maximum(torch.minimum(inc[:, None, :] + sigma * scale * noise, hi), lo)  # (k, P, d)
    with limit_threads(threads):
        pop_vals = _evaluate(acq, pop.reshape(-1, d)).view(k, population)  # (k, P)
        starts = pop[torch.arange(k), pop_vals.argmax(1)]  # (k, d) the best of each incumbent's population
        X_opt = _lbfgsb_multistart(acq, starts, lo, hi, maxiter)  # (k, d)
        opt_vals = _evaluate(acq, X_opt)  # (k,)
        picks = torch.zeros(0, d, dtype=DTYPE)  # (j, d)
        for i in range(k):
            pool = torch.cat([X_opt[i : i + 1], pop[i]])  # (1 + P, d)
            x, _ = _top_distinct(pool, torch.cat([opt_vals[i : i + 1], pop_vals[i]]), 1, scale, distinct_tol,
                                 torch.cat([taken, picks]))
            picks = torch.cat([picks, x])
        if len(picks) < k:
            log.warning("%d of %d incumbents gave no new point: raise population or sigma", k - len(picks), k)
        return picks, _evaluate(acq, picks)
