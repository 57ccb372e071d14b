"""Assignment 1: the student's Matern-5/2 kernel against :func:`izkit.kernels.matern52` (R&W eq. 4.17).

The slips it names: Matern-3/2, RBF, r for r^2, the lengthscale squared, inverted or shared, a constant factor,
a transposed result, NaN or an infinite gradient at r = 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from izkit.course.checks.common import (CheckFailed, as_tensor, call, close, constant_factor, expect_finite,
                                 expect_finite_gradient, expect_shape, refuse_izkit, seeded, success, worst)
from izkit.kernels import DTYPE, matern52

SQRT3, SQRT5 = math.sqrt(3.0), math.sqrt(5.0)


def _matern(X1: Tensor, X2: Tensor, ls: Tensor, nu: str = "5/2") -> Tensor:
    """Other kernels a slip can turn the Matern-5/2 into, to name the slip."""
    r = torch.cdist(X1 / ls, X2 / ls)  # (n1, n2)
    if nu == "3/2":
        return (1 + SQRT3 * r) * torch.exp(-SQRT3 * r)
    if nu == "rbf":
        return torch.exp(-0.5 * r**2)
    if nu == "r2":  # the middle term with r instead of r^2
        return (1 + SQRT5 * r + 5.0 / 3.0 * r) * torch.exp(-SQRT5 * r)
    raise ValueError(nu)


def check_matern52(fn: Callable[[Tensor, Tensor, Tensor], Tensor], part: str = "all", seed: int = 0) -> None:
    """Check ``fn(X1 (n1, d), X2 (n2, d), lengthscale (d,) or (1,)) -> (n1, n2)``, the unit-outputscale Matern-5/2.

    Reference: :func:`izkit.kernels.matern52`, ``(1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r)`` with
    ``r = |(x - x') / lengthscale|`` (Rasmussen & Williams eq. 4.17). Raises ``AssertionError`` with a hint when wrong.
    ``part``: "values" (shapes, k(x, x) = 1, symmetry, ARD values), "gradients" (a finite gradient at r = 0) or
    "all"; ``seed`` draws other inputs (seed 0 is the visible test, other seeds the graders' hidden ones).
    """
    name, sig = "matern52", "matern52(X1, X2, lengthscale)"
    if part not in ("all", "values", "gradients"):
        raise ValueError(f"part is 'all', 'values' or 'gradients', not {part!r}")
    refuse_izkit(fn, name, ("izkit.kernels", "izkit.gp", "izkit.surrogate"))
    g = seeded(seed)
    d = 3 + seed % 3  # the hidden cases use other dimensions too
    X1 = torch.rand(5, d, generator=g, dtype=DTYPE) * 2 - 1  # (5, d)
    X2 = torch.rand(4, d, generator=g, dtype=DTYPE) * 2 - 1  # (4, d)
    ls = torch.rand(d, generator=g, dtype=DTYPE) * 1.7 + 0.3  # (d,) ARD, one lengthscale per dimension
    ls[:3] = torch.tensor([0.3, 0.8, 2.0], dtype=DTYPE)
    n = 0
    if part == "gradients":
        expect_finite_gradient(
            fn, name, sig, lambda x: (x, x, ls), X1, "at r = 0 (matern52(X, X), differentiated in X)",
            "The gradient of sqrt at 0 is infinite: take the square root of the squared distance clamped to a "
            "tiny positive number (`r2.clamp_min(1e-30).sqrt()`). (torch.cdist is fine too.)")
        expect_finite_gradient(
            fn, name, sig, lambda s: (X1, X2, s), ls, "with respect to the lengthscales",
            "Divide the inputs by the lengthscale with torch operations so gradients reach it.")
        success(name, 2, "a finite gradient at r = 0 and with respect to the lengthscales")
        return

    out = as_tensor(call(fn, name, sig, X1, X2, ls), name)
    expect_shape(out, (5, 4), name, f"X1 (5, {d}), X2 (4, {d})")
    n += 1
    expect_finite(out, name, "for ordinary inputs", "Look for a division by zero or a log/sqrt of a negative number.")
    n += 1

    K = as_tensor(call(fn, name, sig, X1, X1, ls), name)  # (5, 5)
    expect_finite(
        K, name, "on the diagonal of matern52(X, X) (r = 0)",
        "At r = 0 the distance is exactly zero: compute r from the squared distance clamped to a tiny positive "
        "number, e.g. `r2.clamp_min(1e-30).sqrt()`, and never divide by r.")
    if not bool(torch.allclose(K.diagonal(), torch.ones(5, dtype=DTYPE), atol=1e-6)):
        c = float(K.diagonal()[0])
        if bool(torch.allclose(K.diagonal(), torch.full((5,), c, dtype=DTYPE))) and c > 0:
            raise CheckFailed(f"k(x, x) is {c:.4g} instead of 1: the result is off by a constant factor of {c:.4g}. "
                              "This kernel has unit outputscale: no constant goes in front.")
        raise CheckFailed(
            f"k(x, x) should be 1 (r = 0, unit outputscale), but the diagonal of matern52(X, X) is "
            f"{K.diagonal().numpy().round(4).tolist()}. Check the polynomial (1 + sqrt5 r + 5/3 r^2) and that "
            "exp(-sqrt5 r) uses the same r."
        )
    n += 1
    if not bool(torch.allclose(K, K.T, atol=1e-10)):
        raise CheckFailed("matern52(X, X) is not symmetric: k(x, x') must equal k(x', x). Do you scale X1 and X2 "
                          "by the same lengthscales, and compute |x - x'| (not x - x')?")
    n += 1

    ref = matern52(X1, X2, ls)  # (5, 4)
    if not close(out, ref):
        slips = [
            (_matern(X1, X2, ls, "3/2"), "This is the Matern-3/2 kernel (sqrt(3)); Matern-5/2 uses sqrt(5) and an "
                                         "extra 5/3 r^2 term."),
            (_matern(X1, X2, ls, "rbf"), "This is the squared-exponential (RBF) kernel, not Matern-5/2."),
            (_matern(X1, X2, ls, "r2"), "The third term should be 5/3 * r**2 (r squared), not 5/3 * r."),
            (matern52(X1, X2, ls**2), "You divided by the lengthscale squared; divide each coordinate by the "
                                       "lengthscale itself (r = |(x - x') / l|)."),
            (matern52(X1, X2, ls.mean().expand(d)), "You used one lengthscale for every dimension (ARD means one per "
                                                    "dimension: divide coordinate i by lengthscale[i])."),
            (matern52(X1, X2, ls[:1].expand(d)), "Only the first lengthscale was used: divide coordinate i by "
                                                 "lengthscale[i] (broadcasting X / lengthscale does this)."),
            (matern52(X1, X2, 1 / ls), "You multiplied by the lengthscale; divide by it."),
        ]
        for alt, hint in slips:
            if close(out, alt, rtol=1e-5, atol=1e-8):
                raise CheckFailed(f"matern52 gives the wrong values. {hint}")
        c = constant_factor(out, ref)
        if c is not None:
            raise CheckFailed(f"matern52 is off by a constant factor of {c:.4g}: the kernel has unit outputscale, so "
                              "k(x, x) = 1 and no constant goes in front.")
        raise CheckFailed(f"matern52 gives the wrong values: {worst(out, ref)}. Compare term by term with "
                          "(1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r).")
    n += 1

    iso = as_tensor(call(fn, name, sig, X1, X2, torch.tensor([0.5], dtype=DTYPE)), name)
    if not close(iso, matern52(X1, X2, torch.tensor([0.5], dtype=DTYPE))):
        raise CheckFailed("with one shared lengthscale of shape (1,) the values are wrong: make sure X / lengthscale "
                          "broadcasts for a (1,) lengthscale as well as a (d,) one.")
    n += 1
    one = as_tensor(call(fn, name, sig, X1[:1], X2[:1], ls), name)
    expect_shape(one, (1, 1), name, f"a single pair of points (1, {d}), (1, {d})")
    n += 1
    if part == "values":
        success(name, n, "shape, k(x, x) = 1, symmetry, ARD lengthscales, values")
        return

    expect_finite_gradient(
        fn, name, sig, lambda x: (x, x, ls), X1, "at r = 0 (matern52(X, X), differentiated in X)",
        "The gradient of sqrt at 0 is infinite: take the square root of the squared distance clamped to a "
        "tiny positive number (`r2.clamp_min(1e-30).sqrt()`), as izkit.kernels.matern52 does. "
        "(torch.cdist is fine too.)")
    n += 1
    success(name, n, "shape, r = 0, symmetry, ARD lengthscales, values, gradients")
