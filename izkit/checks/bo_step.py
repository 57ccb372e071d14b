"""Assignment 4: the student's BO step (fit a GP, maximise EI in the box, evaluate q new points), judged by EI.

A reference GP's expected improvement is the judge: the new points must beat nine in ten random points.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from izkit.acquisition import expected_improvement
from izkit.checks.common import CheckFailed, as_tensor, call, expect_shape, success
from izkit.gp import GaussianProcess, GPConfig
from izkit.kernels import DTYPE, Matern52


def _reference_gp(Z: Tensor, y: Tensor) -> GaussianProcess:
    return GaussianProcess(Matern52(Z.shape[1]), config=GPConfig(n_restarts=2, seed=0)).fit(Z, y)


def check_bo_step(fn: Callable[..., tuple[Tensor, Tensor]]) -> None:
    """Check ``fn(Z (m, d), y (m,), evaluate, bounds (2, d), q, seed) -> (Z_new (q, d), y_new (q,))``.

    One BO step: fit a GP to (Z, y), maximise expected improvement in the box, evaluate the q new points with
    ``evaluate(X (k, d)) -> (k,)`` and return them with their scores. The check uses a cheap toy objective and judges
    the points by their EI under a reference GP: they must beat nine in ten random points.
    """
    name, sig = "bo_step", "bo_step(Z, y, evaluate, bounds, q, seed)"
    n = 0
    for d, q, seed in ((2, 2, 0), (3, 1, 1)):
        center = torch.linspace(-0.5, 0.4, d, dtype=DTYPE)  # (d,) the toy optimum

        def f(X: Tensor) -> Tensor:
            return -((X - center) ** 2).sum(-1) + 0.3 * torch.sin(4 * X).sum(-1)  # (k,)

        bounds = torch.stack([-torch.ones(d), torch.ones(d)]).to(DTYPE)  # (2, d)
        Z = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed).draw(6, dtype=DTYPE) * 2 - 1  # (6, d)
        y = f(Z)  # (6,)
        Z0, y0 = Z.clone(), y.clone()
        calls: list[Tensor] = []

        def evaluate(X: Tensor) -> Tensor:
            X = torch.as_tensor(X, dtype=DTYPE)
            if X.ndim != 2 or X.shape[1] != d:
                raise CheckFailed(f"evaluate was called with shape {tuple(X.shape)}; it takes a batch (k, {d})")
            calls.append(X.detach().clone())
            return f(X)

        out = call(fn, name, sig, Z, y, evaluate, bounds, q, seed)
        if not isinstance(out, tuple) or len(out) != 2:
            raise CheckFailed(f"`{name}` should return a pair (Z_new, y_new): the new points and their scores; it "
                              f"returned {type(out).__name__}")
        Zn, yn = as_tensor(out[0], name), as_tensor(out[1], name)
        expect_shape(Zn, (q, d), name + " (Z_new)", f"q = {q}, d = {d}")
        expect_shape(yn, (q,), name + " (y_new)", f"q = {q}")
        n += 1
        if not (torch.equal(Z, Z0) and torch.equal(y, y0)):
            raise CheckFailed(f"`{name}` changed Z or y in place; leave the caller's data alone and return new "
                              "tensors.")
        if not calls:
            raise CheckFailed(f"`{name}` never called evaluate: the new points must be scored by the black box.")
        asked = torch.cat(calls)  # (k, d)
        if len(asked) != q:
            raise CheckFailed(f"`{name}` asked the black box about {len(asked)} points for q = {q}; each evaluation "
                              "is expensive, so ask about exactly the q new points, once.")
        n += 1
        if not bool(torch.allclose(yn, f(Zn), atol=1e-9)):
            raise CheckFailed("y_new does not hold the scores of Z_new: return what evaluate gave for those points, "
                              "in the same order.")
        n += 1
        if bool((Zn < bounds[0] - 1e-9).any() or (Zn > bounds[1] + 1e-9).any()):
            raise CheckFailed("some new points are outside the bounds: optimise the acquisition inside the box "
                              "(pass bounds to optimize_acquisition).")
        n += 1
        if bool((torch.cdist(Zn, Z).min(1).values < 1e-6).any()):
            raise CheckFailed("a new point repeats an evaluated one: a second evaluation there teaches the GP "
                              "nothing (pass exclude=Z to optimize_acquisition, or pick distinct points).")
        if q > 1 and bool((torch.pdist(Zn) < 1e-6).any()):
            raise CheckFailed("the batch holds the same point twice: the q points must be distinct.")
        n += 1
        gp = _reference_gp(Z, y)
        raw = torch.quasirandom.SobolEngine(d, scramble=True, seed=99).draw(512, dtype=DTYPE) * 2 - 1  # (512, d)
        with torch.no_grad():
            ei_raw = expected_improvement(*gp.predict(raw), y.max())  # (512,)
            ei_new = expected_improvement(*gp.predict(Zn), y.max())  # (q,)
        threshold = float(torch.quantile(ei_raw, 0.9))
        if float(ei_new.max()) < threshold:
            raise CheckFailed(
                f"the new points have less expected improvement ({float(ei_new.max()):.3g}) than nine in ten random "
                f"points ({threshold:.3g}). Did you maximise EI (not minimise it), fit the GP to y (not -y), and use "
                "the best observed y as the incumbent?"
            )
        n += 1
    success(name, n, "shapes, one evaluation per new point, scores returned, inside the box, distinct, high EI; "
                      "d = 2 with q = 2 and d = 3 with q = 1")
