"""Assignment 3: the student's expected improvement (paper eq. 10) and log-EI against :mod:`izkit.acquisition`.

The slips it names: variance for sd, minimisation, sigma missing, phi and Phi swapped, no variance floor, and a
log-EI that underflows to -inf in the tail.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from izkit.acquisition import expected_improvement, log_expected_improvement
from izkit.course.checks.common import (CheckFailed, as_tensor, call, close, constant_factor, expect_finite,
                                 expect_finite_gradient, expect_shape, refuse_izkit, seeded, success,
                                 worst)
from izkit.kernels import DTYPE


def _ei_inputs(seed: int, b: int = 64) -> tuple[Tensor, Tensor, Tensor]:
    g = seeded(seed)
    mean = torch.randn(b, generator=g, dtype=DTYPE)  # (b,)
    var = torch.rand(b, generator=g, dtype=DTYPE) * 2 + 0.05  # (b,)
    best = torch.tensor(0.3, dtype=DTYPE)  # ()
    return mean, var, best


def check_ei(fn: Callable[[Tensor, Tensor, Tensor], Tensor], seed: int = 0) -> None:
    """Check ``fn(mean (b,), var (b,), best ()) -> (b,)``: expected improvement for maximisation (paper eq. 10).

    ``u = (mean - best) / sigma``, ``EI = sigma * (phi(u) + u Phi(u))``, sigma = sqrt(var) with var floored.
    Reference: :func:`izkit.acquisition.expected_improvement`. ``seed`` draws other inputs (0: the visible test).
    """
    name, sig = "ei", "ei(mean, var, best)"
    refuse_izkit(fn, name, ("izkit.acquisition",))
    n = 0
    known = as_tensor(call(fn, name, sig, torch.tensor([-0.5], dtype=DTYPE), torch.tensor([1.0], dtype=DTYPE),
                             torch.tensor(0.0, dtype=DTYPE)), name)
    expect_shape(known, (1,), name, "one point")
    mean, var, best = _ei_inputs(3 + 10 * seed)
    out = as_tensor(call(fn, name, sig, mean, var, best), name)
    expect_shape(out, (64,), name, "mean (64,), var (64,)")
    n += 1
    ref = expected_improvement(mean, var, best)
    if abs(float(known[0]) - 0.19780) > 1e-4 or not close(out, ref, rtol=1e-6, atol=1e-10):
        sd = var.sqrt()
        u = (mean - best) / sd
        phi = torch.exp(-0.5 * u**2) / math.sqrt(2 * math.pi)
        Phi = 0.5 * torch.erfc(-u / math.sqrt(2))
        uv = (mean - best) / var
        um = (best - mean) / sd
        slips = [
            (var * (torch.exp(-0.5 * uv**2) / math.sqrt(2 * math.pi) + uv * 0.5 * torch.erfc(-uv / math.sqrt(2))),
             "You used the variance where the standard deviation belongs: sigma = sqrt(var)."),
            (sd * (torch.exp(-0.5 * um**2) / math.sqrt(2 * math.pi) + um * 0.5 * torch.erfc(-um / math.sqrt(2))),
             "This is EI for minimisation: InstructZero maximises the score, so u = (mean - best) / sigma."),
            (phi + u * Phi, "The factor sigma in front is missing: EI = sigma * (phi(u) + u * Phi(u))."),
            (sd * (phi - u * Phi), "The sign of the u * Phi(u) term is wrong: EI = sigma * (phi(u) + u * Phi(u))."),
            (sd * (phi + u * phi), "The second term uses the density phi(u) where it needs the cdf Phi(u)."),
            (sd * (Phi + u * phi), "phi and Phi are swapped: EI = sigma * (phi(u) + u * Phi(u)), with phi the "
                                   "density and Phi the cdf."),
        ]
        for alt, hint in slips:
            if close(out, alt, rtol=1e-5, atol=1e-9):
                raise CheckFailed(f"ei gives the wrong values. {hint}")
        c = constant_factor(out, ref)
        if c is not None:
            raise CheckFailed(f"ei is off by a constant factor of {c:.4g}: check the normal density "
                              "phi(u) = exp(-u^2 / 2) / sqrt(2 pi).")
        if abs(float(known[0]) - 0.19780) > 1e-4:
            raise CheckFailed(f"ei(mean=-0.5, var=1, best=0) should be about 0.19780, yours is {float(known[0]):.6g}.")
        raise CheckFailed(f"ei gives the wrong values: {worst(out, ref)}.")
    n += 2
    if bool((out < 0).any()):
        raise CheckFailed("ei returned negative values; an expected improvement is never negative.")
    n += 1

    zero = as_tensor(call(fn, name, sig, torch.tensor([1.0, -1.0], dtype=DTYPE), torch.zeros(2, dtype=DTYPE),
                            torch.tensor(0.0, dtype=DTYPE)), name)
    expect_finite(
        zero, name, "for var = 0 (a point the GP is certain about)",
        "Floor the variance before the square root, e.g. `var.clamp_min(1e-12)`, so that u stays finite.")
    if not bool(torch.allclose(zero, torch.tensor([1.0, 0.0], dtype=DTYPE), atol=1e-5)):
        raise CheckFailed(f"with var = 0, EI should be max(mean - best, 0) = [1, 0]; yours is {zero.tolist()}.")
    n += 1
    far = as_tensor(call(fn, name, sig, torch.tensor([-40.0, 40.0], dtype=DTYPE), torch.ones(2, dtype=DTYPE),
                           torch.tensor(0.0, dtype=DTYPE)), name)
    expect_finite(far, name, "for u = -40 or u = +40", "Use erfc for the normal cdf: Phi(u) = erfc(-u / sqrt2) / 2.")
    if abs(float(far[1]) - 40.0) > 1e-6 or float(far[0]) < 0:
        raise CheckFailed(f"at u = +40 EI should be 40 and at u = -40 about 0; yours gives {far.tolist()}.")
    n += 1
    expect_finite_gradient(
        fn, name, sig, lambda m: (m, var, best), mean, "with respect to the mean",
        "Use torch functions (torch.erfc, torch.exp) so gradients flow.")
    n += 1
    success(name, n, "known value 0.19780, values, sign convention, var = 0, far tails, gradients")


def check_log_ei(fn: Callable[[Tensor, Tensor, Tensor], Tensor], seed: int = 0) -> None:
    """Check ``fn(mean (b,), var (b,), best ()) -> (b,)``: log of expected improvement, finite far in the tail.

    Reference: :func:`izkit.acquisition.log_expected_improvement`; it must stay finite (and accurate) at u = -40,
    -1000 and beyond, where EI itself underflows to 0. ``seed`` draws other inputs (0: the visible test).
    """
    name, sig = "log_ei", "log_ei(mean, var, best)"
    refuse_izkit(fn, name, ("izkit.acquisition",))
    n = 0
    mean, var, best = _ei_inputs(4 + 10 * seed)
    out = as_tensor(call(fn, name, sig, mean, var, best), name)
    expect_shape(out, (64,), name, "mean (64,), var (64,)")
    n += 1
    ref = log_expected_improvement(mean, var, best)
    if not close(out, ref, rtol=1e-6, atol=1e-8):
        if close(out, expected_improvement(mean, var, best), rtol=1e-5, atol=1e-8):
            raise CheckFailed("log_ei returns EI itself; return its logarithm.")
        raise CheckFailed(f"log_ei gives the wrong values where EI is moderate: {worst(out, ref)}.")
    n += 1

    u = torch.tensor([-5.0, -10.0, -40.0, -100.0, -1000.0, -1e4], dtype=DTYPE)  # (6,) scaled improvement
    if seed:
        u = u * (1 + 0.37 * seed / (1 + seed))  # other points of the tail for the hidden test
    tail = as_tensor(call(fn, name, sig, u, torch.ones(6, dtype=DTYPE), torch.tensor(0.0, dtype=DTYPE)), name)
    expect_shape(tail, (6,), name, "six points in the tail")
    if not bool(torch.isfinite(tail).all()):
        first = float(u[~torch.isfinite(tail)][0])
        kind = "NaN" if bool(torch.isnan(tail).any()) else "-inf"
        raise CheckFailed(
            f"log_ei gave {kind} at u = {first:g}. There EI itself is below the smallest float64 (EI(-40) ~ 1e-351), "
            "so log(ei(u)) underflows. For u <= -1 write ei(u) = phi(u) * (1 - |u| sqrt(pi/2) erfcx(|u| / sqrt2)) and "
            "take logs term by term: log phi(u) = -u^2/2 - log sqrt(2 pi), and the bracket with log1p/erfcx "
            "(torch.special.erfcx). Far out (u < -1000) the bracket is about 1/u^2."
        )
    n += 1
    tref = log_expected_improvement(u, torch.ones(6, dtype=DTYPE), torch.tensor(0.0, dtype=DTYPE))
    if not close(tail, tref, rtol=1e-4, atol=1e-6):
        raise CheckFailed(f"log_ei is finite in the tail but inaccurate: {worst(tail, tref)} (u = "
                          f"{u.tolist()}). Compare with log phi(u) + log(1 - |u| sqrt(pi/2) erfcx(|u|/sqrt2)).")
    n += 1
    if not bool((tail[1:] < tail[:-1]).all()):
        raise CheckFailed("log_ei should fall as u moves further into the tail (u = -5, -10, -40, ...), and yours "
                          "does not.")
    n += 1
    expect_finite_gradient(
        fn, name, sig, lambda m: (m, torch.ones(6, dtype=DTYPE), torch.tensor(0.0, dtype=DTYPE)), u,
        "in the tail (u down to -1e4)",
        "torch.where evaluates both branches, and an inf/NaN in the branch not taken still poisons the "
        "gradient: clamp each branch's input to its own range before computing it.")
    n += 1
    success(name, n, "values, finite and accurate down to u = -1e4, monotone, gradients in the tail")
