"""Assignment 4: the student's GP posterior and BO step, built from their own Matern (a1), eq. 9 kernel (a2) and EI (a3).

- ``gp_posterior(X, Z, y, kernel, noise) -> (mean, var)``: a GP's posterior at X for any kernel, against a reference
  written here (constant prior mean ``y.mean()``, Gaussian noise of variance ``noise``; ``var`` is the latent
  function's variance, without the noise). Named: a zero prior mean, the noise added to ``var``, a standard deviation
  taken for the noise variance, the prior variance returned.
- ``bo_step(Z, F, evaluate, bounds, q, seed, lengthscale, s_lengthscale, noise) -> (Z_new, F_new)``: one round of
  InstructZero with fixed hyperparameters: S = Matern-5/2 on the score vectors F (the authors' code), the eq. 9 kernel
  on the soft prompts, the posterior, EI over the best score, q new points in the box, evaluated once. The judge is a
  reference posterior's EI: **every** member of the batch must beat nine in ten random points.

Both refuse izkit's own GP, kernels and acquisition: the point of the assignment is that the step runs on the
student's functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from izkit.course.checks.common import CheckFailed, as_tensor, call, expect_finite, expect_shape, refuse_izkit, seeded, success
from izkit.kernels import DTYPE, matern52

OWN = ("izkit.kernels", "izkit.gp", "izkit.acquisition", "izkit.surrogate", "izkit.loop", "izkit.strategies")


def reference_posterior(X: Tensor, Z: Tensor, y: Tensor, kernel: Callable[[Tensor, Tensor], Tensor],
                        noise: float) -> tuple[Tensor, Tensor]:
    """R&W Alg. 2.1 with a constant prior mean ybar: mean (n,), latent variance (n,)."""
    ybar = y.mean()
    C = torch.linalg.cholesky(kernel(Z, Z) + noise * torch.eye(len(Z), dtype=DTYPE))  # (m, m)
    Kzx = kernel(Z, X)  # (m, n)
    mean = ybar + Kzx.T @ torch.cholesky_solve((y - ybar)[:, None], C)[:, 0]  # (n,)
    V = torch.linalg.solve_triangular(C, Kzx, upper=False)  # (m, n)
    var = kernel(X, X).diagonal() - (V**2).sum(0)  # (n,)
    return mean, var.clamp_min(0.0)


def reference_coupled(Z: Tensor, S: Tensor, ls: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    """Eq. 9 as a kernel(A, B): l(A, Z) L^{-1} S L^{-1} l(Z, B)."""
    C = torch.linalg.cholesky(matern52(Z, Z, ls))  # (m, m)

    def k(A: Tensor, B: Tensor) -> Tensor:
        return torch.cholesky_solve(matern52(Z, A, ls), C).T @ S @ torch.cholesky_solve(matern52(Z, B, ls), C)

    return k


def reference_ei(mean: Tensor, var: Tensor, best: Tensor) -> Tensor:
    sd = var.clamp_min(1e-12).sqrt()
    u = (mean - best) / sd
    return sd * (torch.exp(-0.5 * u**2) / math.sqrt(2 * math.pi) + u * 0.5 * torch.erfc(-u / math.sqrt(2)))


# ------------------------------------------------------------------------------------------- 4.1 gp_posterior


def check_gp_posterior(fn: Callable[..., tuple[Tensor, Tensor]], seed: int = 0) -> None:
    """Check ``fn(X (n, d), Z (m, d), y (m,), kernel, noise) -> (mean (n,), var (n,))`` against R&W Alg. 2.1 with a
    constant prior mean ``y.mean()``. ``seed`` draws other inputs (0: the visible test; others: hidden ones)."""
    name, sig = "gp_posterior", "gp_posterior(X, Z, y, kernel, noise)"
    refuse_izkit(fn, name, OWN)
    g = seeded(40 + seed)
    n = 0
    d = 2 + seed % 2
    Z = torch.rand(7, d, generator=g, dtype=DTYPE) * 2 - 1  # (7, d)
    y = 0.5 + 0.3 * torch.sin(3 * Z).sum(-1)  # (7,) scores around 0.5: a zero prior mean would show
    X = torch.rand(9, d, generator=g, dtype=DTYPE) * 2 - 1  # (9, d)
    ls = torch.full((d,), 0.7, dtype=DTYPE)
    F = torch.rand(7, 5, generator=g, dtype=DTYPE)  # (7, 5) score vectors for a coupled kernel
    kernels = {"a Matern-5/2 kernel": lambda A, B: matern52(A, B, ls),
               "the eq. 9 kernel": reference_coupled(Z, matern52(F, F, torch.tensor([1.0], dtype=DTYPE)), ls)}
    for what, kernel in kernels.items():
        for noise in (1e-2, 1e-6):
            out = call(fn, name, sig, X, Z, y, kernel, noise)
            if not isinstance(out, tuple) or len(out) != 2:
                raise CheckFailed(f"`{name}` should return a pair (mean, var); it returned {type(out).__name__}")
            mean, var = as_tensor(out[0], name), as_tensor(out[1], name)
            expect_shape(mean, (9,), name + " (mean)", f"X (9, {d})")
            expect_shape(var, (9,), name + " (var)", f"X (9, {d})")
            expect_finite(mean, name, "in the mean", "Solve with a Cholesky factor of K(Z, Z) + noise I.")
            expect_finite(var, name, "in the variance", "Solve with a Cholesky factor of K(Z, Z) + noise I.")
            rm, rv = reference_posterior(X, Z, y, kernel, noise)
            where = f"with {what} and noise = {noise:g}"
            if not bool(torch.allclose(mean, rm, rtol=1e-5, atol=1e-7)):
                zero_mean, _ = reference_posterior(X, Z, y - y.mean(), kernel, noise)
                if bool(torch.allclose(mean, zero_mean, rtol=1e-5, atol=1e-7)):
                    raise CheckFailed(f"{where}, your mean is the posterior of y - mean(y) without adding the prior "
                                      "mean back: mean(x) = ybar + k(x, Z) (K + noise I)^-1 (y - ybar).")
                if bool(torch.allclose(mean, kernel(Z, X).T @ torch.linalg.solve(
                        kernel(Z, Z) + noise * torch.eye(7, dtype=DTYPE), y), rtol=1e-5, atol=1e-7)):
                    raise CheckFailed(f"{where}, your mean uses a zero prior mean: far from the data it falls to 0, "
                                      "not to the scores' level. Use the constant prior mean ybar = y.mean(): "
                                      "mean(x) = ybar + k(x, Z) (K + noise I)^-1 (y - ybar).")
                if math.isclose(noise, 1e-2) and bool(torch.allclose(
                        mean, reference_posterior(X, Z, y, kernel, noise**2)[0], rtol=1e-5, atol=1e-7)):
                    raise CheckFailed(f"{where}, you squared the noise: `noise` is already a variance; add it to the "
                                      "diagonal as it is.")
                raise CheckFailed(f"{where}, the posterior mean is wrong: yours {mean[:3].tolist()}..., expected "
                                  f"{rm[:3].tolist()}...")
            if not bool(torch.allclose(var.clamp_min(0), rv, rtol=1e-4, atol=1e-7)):
                if bool(torch.allclose(var, rv + noise, rtol=1e-4, atol=1e-7)):
                    raise CheckFailed(f"{where}, you added the noise to the variance: that is the variance of a new "
                                      "noisy score, not of the function. EI needs the function's: leave the noise "
                                      "out of var.")
                if bool(torch.allclose(var, kernel(X, X).diagonal(), rtol=1e-4, atol=1e-7)):
                    raise CheckFailed(f"{where}, your variance is the prior's k(x, x): subtract what the data "
                                      "explain, k(x, Z) (K + noise I)^-1 k(Z, x).")
                raise CheckFailed(f"{where}, the posterior variance is wrong: yours {var[:3].tolist()}..., expected "
                                  f"{rv[:3].tolist()}...")
            n += 2
    success(name, n, "mean and variance for a Matern and an eq. 9 kernel, two noise levels, the prior mean ybar")


# ----------------------------------------------------------------------------------------------- 4.2 bo_step


def toy_scores(X: Tensor, n_examples: int = 6) -> Tensor:
    """A cheap stand-in for the black box: (k, d) soft prompts -> (k, n_examples) per-example scores in (0, 1)."""
    d = X.shape[1]
    shift = torch.linspace(-0.2, 0.2, n_examples, dtype=DTYPE)  # (E,) each example likes a slightly other place
    center = torch.linspace(-0.5, 0.4, d, dtype=DTYPE)  # (d,)
    dist2 = ((X[:, None, :] - center - shift[None, :, None]) ** 2).sum(-1)  # (k, E)
    return torch.sigmoid(3 - 6 * dist2 + torch.sin(4 * X).sum(-1, keepdim=True))  # (k, E)


def check_bo_step(fn: Callable[..., tuple[Tensor, Tensor]], seed: int = 0) -> None:
    """Check ``fn(Z (m, d), F (m, E), evaluate, bounds (2, d), q, seed, lengthscale, s_lengthscale, noise)
    -> (Z_new (q, d), F_new (q, E))``: one BO round on the student's own kernel and EI.

    ``evaluate(X (k, d)) -> (k, E)`` is a cheap toy black box. The new points are judged by a reference posterior's
    EI with the same hyperparameters: every one of the q must beat nine in ten random points. ``seed`` draws other
    cases (0: the visible test; others: hidden ones).
    """
    name = "bo_step"
    sig = "bo_step(Z, F, evaluate, bounds, q, seed, lengthscale, s_lengthscale, noise)"
    refuse_izkit(fn, name, OWN)
    n = 0
    for d, q, run in ((2, 3, 0), (3, 2, 1)):
        run = run + 2 * seed
        bounds = torch.stack([-torch.ones(d), torch.ones(d)]).to(DTYPE)  # (2, d)
        Z = torch.quasirandom.SobolEngine(d, scramble=True, seed=run).draw(6, dtype=DTYPE) * 2 - 1  # (6, d)
        F = toy_scores(Z)  # (6, E)
        Z0, F0 = Z.clone(), F.clone()
        ls, sls, noise = torch.full((d,), 0.6, dtype=DTYPE), torch.tensor([0.5], dtype=DTYPE), 1e-3
        calls: list[Tensor] = []

        def evaluate(X: Tensor) -> Tensor:
            X = torch.as_tensor(X, dtype=DTYPE)
            if X.ndim != 2 or X.shape[1] != d:
                raise CheckFailed(f"evaluate was called with shape {tuple(X.shape)}; it takes a batch (k, {d})")
            calls.append(X.detach().clone())
            return toy_scores(X)

        out = call(fn, name, sig, Z, F, evaluate, bounds, q, run, ls, sls, noise)
        if not isinstance(out, tuple) or len(out) != 2:
            raise CheckFailed(f"`{name}` should return a pair (Z_new, F_new): the new points and their score "
                              f"vectors; it returned {type(out).__name__}")
        Zn, Fn = as_tensor(out[0], name), as_tensor(out[1], name)
        expect_shape(Zn, (q, d), name + " (Z_new)", f"q = {q}, d = {d}")
        expect_shape(Fn, (q, F.shape[1]), name + " (F_new)", f"q = {q} points, {F.shape[1]} examples each")
        n += 1
        if not (torch.equal(Z, Z0) and torch.equal(F, F0)):
            raise CheckFailed(f"`{name}` changed Z or F in place; leave the caller's data alone and return new "
                              "tensors.")
        if not calls:
            raise CheckFailed(f"`{name}` never called evaluate: the new points must be scored by the black box.")
        asked = torch.cat(calls)  # (k, d)
        if len(asked) != q:
            raise CheckFailed(f"`{name}` asked the black box about {len(asked)} points for q = {q}; each evaluation "
                              "is expensive, so ask about exactly the q new points, once.")
        n += 1
        if not bool(torch.allclose(Fn, toy_scores(Zn), atol=1e-9)):
            raise CheckFailed("F_new does not hold the score vectors of Z_new: return what evaluate gave for those "
                              "points, in the same order.")
        n += 1
        if bool((Zn < bounds[0] - 1e-9).any() or (Zn > bounds[1] + 1e-9).any()):
            raise CheckFailed("some new points are outside the bounds: search for the maximiser inside the box.")
        n += 1
        if bool((torch.cdist(Zn, Z).min(1).values < 1e-6).any()):
            raise CheckFailed("a new point repeats an evaluated one: a second evaluation there teaches the GP "
                              "nothing (leave the evaluated points out of the candidates).")
        if bool((torch.pdist(Zn) < 1e-6).any()):
            raise CheckFailed("the batch holds the same point twice: the q points must be distinct.")
        n += 1
        y = F.mean(1)  # (6,)
        kernel = reference_coupled(Z, matern52(F, F, sls), ls)
        raw = torch.quasirandom.SobolEngine(d, scramble=True, seed=99 + run).draw(512, dtype=DTYPE) * 2 - 1
        with torch.no_grad():
            ei_raw = reference_ei(*reference_posterior(raw, Z, y, kernel, noise), y.max())  # (512,)
            ei_new = reference_ei(*reference_posterior(Zn, Z, y, kernel, noise), y.max())  # (q,)
        threshold = float(torch.quantile(ei_raw, 0.9))
        low = [i for i in range(q) if float(ei_new[i]) < threshold]
        if low:
            if len(low) == q and float(ei_new.max()) <= float(torch.quantile(ei_raw, 0.1)):
                raise CheckFailed(f"every new point has less expected improvement than nine in ten random points "
                                  f"(threshold {threshold:.3g}); they sit among the lowest: did you minimise EI (or "
                                  "take the worst candidates)?")
            which = ", ".join(f"point {i} (EI {float(ei_new[i]):.3g})" for i in low)
            raise CheckFailed(
                f"d = {d}, q = {q}: {which} of the batch has less expected improvement than nine in ten random points "
                f"(threshold {threshold:.3g}). Every member of the batch must be a high-EI point, not only the "
                "first. Did you compute S from F with your matern52 and s_lengthscale, the eq. 9 kernel with "
                "lengthscale, the posterior with noise, and EI over the best mean score y.max()?")
        n += 1
    success(name, n, "shapes, one evaluation of the q new points, score vectors returned, inside the box, distinct, "
                     "every member of the batch high in EI; d = 2 with q = 3 and d = 3 with q = 2")
