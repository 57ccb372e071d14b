"""Friendly checks for the assignments: compare a student's function with izkit's reference on random inputs.

Each ``check_*`` function calls the student's function on seeded random inputs and on the edge cases that catch the
usual slips, then either prints one success line or raises ``AssertionError`` with a hint in plain words: the wrong
shape, a transposed result, a kernel that is not symmetric, a result off by a constant factor, NaN at r = 0, -inf far
in the tail of log-EI, and so on. A stub that still raises ``NotImplementedError`` gets its own message.

- :func:`check_matern52`: ``matern52(X1, X2, lengthscale)`` against :func:`izkit.kernels.matern52` (R&W eq. 4.17);
- :func:`check_coupled_kernel`: ``coupled_kernel(X1, X2, Z, S, lengthscale)`` against paper eq. 9
  (:class:`izkit.kernels.InstructionCoupledKernel`);
- :func:`check_ei`: ``ei(mean, var, best)`` against :func:`izkit.acquisition.expected_improvement` (paper eq. 10);
- :func:`check_log_ei`: ``log_ei(mean, var, best)`` against :func:`izkit.acquisition.log_expected_improvement`;
- :func:`check_bo_step`: ``bo_step(Z, y, evaluate, bounds, q, seed)``, judged by a reference GP's expected improvement.

The success line is the only output (``print``); everything else is an exception. Inputs are float64 torch tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from izkit.acquisition import expected_improvement, log_expected_improvement
from izkit.gp import GaussianProcess, GPConfig
from izkit.kernels import DTYPE, Matern52, matern52

SQRT3, SQRT5 = math.sqrt(3.0), math.sqrt(5.0)


class CheckFailed(AssertionError):
    """A check found a mistake; the message says what is wrong and what to look at."""


# ---------------------------------------------------------------------------------------------------------- helpers


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _call(fn: Callable[..., Any], name: str, signature: str, *args: Any) -> Any:
    """Call the student's function; turn a stub or a crash into a message that says so."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise CheckFailed(
            f"`{name}` is not implemented yet (it still raises NotImplementedError). Replace the "
            f"`raise NotImplementedError` line with your code, run that cell, then run this check again."
        ) from None
    except Exception as err:  # noqa: BLE001 - any crash becomes a hint
        raise CheckFailed(f"`{name}` raised {type(err).__name__}: {err}\n  It was called as {signature}.") from err


def _as_tensor(out: Any, name: str) -> Tensor:
    if out is None:
        raise CheckFailed(f"`{name}` returned None: did you forget the `return` statement?")
    if isinstance(out, tuple):
        raise CheckFailed(f"`{name}` returned a tuple of {len(out)} things; it should return one tensor")
    try:
        return torch.as_tensor(out).to(DTYPE)
    except Exception as err:  # noqa: BLE001
        raise CheckFailed(f"`{name}` returned a {type(out).__name__}, which is not a tensor or an array") from err


def _shape(out: Tensor, expected: tuple[int, ...], name: str, what: str) -> None:
    got = tuple(out.shape)
    if got == expected:
        return
    hint = ""
    if len(expected) == 2 and got == expected[::-1]:
        hint = " It is transposed: rows should follow the first argument (X1), columns the second (X2)."
    elif len(expected) == 1 and got in ((expected[0], 1), (1, expected[0])):
        hint = " Return a flat vector: drop the extra dimension (e.g. `.squeeze(-1)`, or sum over the right axis)."
    elif len(got) == 0:
        hint = " You returned a single number: did you sum or average over the points by mistake?"
    raise CheckFailed(f"`{name}` returned shape {got} for {what}; expected {expected}.{hint}")


def _finite(out: Tensor, name: str, where: str, hint: str) -> None:
    if not bool(torch.isfinite(out).all()):
        bad = "NaN" if bool(torch.isnan(out).any()) else "inf"
        raise CheckFailed(f"`{name}` gave {bad} {where}. {hint}")


def _close(a: Tensor, b: Tensor, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=rtol, atol=atol))


def _constant_factor(got: Tensor, ref: Tensor) -> float | None:
    """The c with got = c * ref, when there is one (and it is not 1)."""
    mask = ref.abs() > 1e-6
    if not bool(mask.any()):
        return None
    ratio = got[mask] / ref[mask]
    c = float(ratio.mean())
    if bool(torch.allclose(ratio, torch.full_like(ratio, c), rtol=1e-5, atol=1e-8)) and abs(c - 1.0) > 1e-6:
        return c
    return None


def _worst(got: Tensor, ref: Tensor) -> str:
    i = int((got - ref).abs().flatten().argmax())
    return f"the largest difference is at entry {i}: yours {float(got.flatten()[i]):.6g}, expected " \
           f"{float(ref.flatten()[i]):.6g}"


def _success(name: str, n: int, covered: str) -> None:
    print(f"✓ {name}: all {n} checks passed ({covered}).")


def _grad_finite(fn: Callable[..., Any], name: str, signature: str, make_args: Callable[[Tensor], tuple],
                 x: Tensor, where: str, hint: str) -> None:
    """Differentiate sum(fn(*make_args(x))) with respect to x; demand a graph and a finite gradient."""
    x = x.clone().requires_grad_(True)
    out = _call(fn, name, signature, *make_args(x))
    if not isinstance(out, Tensor) or not out.requires_grad:
        raise CheckFailed(
            f"`{name}` breaks the autograd graph: its output does not depend on its input through torch operations "
            "(did you convert to numpy or call `.item()`/`.detach()`?). Use torch functions throughout, so that "
            "L-BFGS-B can get gradients."
        )
    (g,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    if g is None:
        raise CheckFailed(f"`{name}`'s output does not depend on its input {where}")
    _finite(g, name, f"in its gradient {where}", hint)


# ------------------------------------------------------------------------------------------------------ Matern-5/2


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


def check_matern52(fn: Callable[[Tensor, Tensor, Tensor], Tensor]) -> None:
    """Check ``fn(X1 (n1, d), X2 (n2, d), lengthscale (d,) or (1,)) -> (n1, n2)``, the unit-outputscale Matern-5/2.

    Reference: :func:`izkit.kernels.matern52`, ``(1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r)`` with
    ``r = |(x - x') / lengthscale|`` (Rasmussen & Williams eq. 4.17). Raises ``AssertionError`` with a hint when wrong.
    """
    name, sig = "matern52", "matern52(X1, X2, lengthscale)"
    g = _gen(0)
    X1 = torch.rand(5, 3, generator=g, dtype=DTYPE) * 2 - 1  # (5, 3)
    X2 = torch.rand(4, 3, generator=g, dtype=DTYPE) * 2 - 1  # (4, 3)
    ls = torch.tensor([0.3, 0.8, 2.0], dtype=DTYPE)  # (3,) ARD
    n = 0

    out = _as_tensor(_call(fn, name, sig, X1, X2, ls), name)
    _shape(out, (5, 4), name, "X1 (5, 3), X2 (4, 3)")
    n += 1
    _finite(out, name, "for ordinary inputs", "Look for a division by zero or a log/sqrt of a negative number.")
    n += 1

    K = _as_tensor(_call(fn, name, sig, X1, X1, ls), name)  # (5, 5)
    _finite(K, name, "on the diagonal of matern52(X, X) (r = 0)",
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
    if not _close(out, ref):
        slips = [
            (_matern(X1, X2, ls, "3/2"), "This is the Matern-3/2 kernel (sqrt(3)); Matern-5/2 uses sqrt(5) and an "
                                         "extra 5/3 r^2 term."),
            (_matern(X1, X2, ls, "rbf"), "This is the squared-exponential (RBF) kernel, not Matern-5/2."),
            (_matern(X1, X2, ls, "r2"), "The third term should be 5/3 * r**2 (r squared), not 5/3 * r."),
            (matern52(X1, X2, ls**2), "You divided by the lengthscale squared; divide each coordinate by the "
                                       "lengthscale itself (r = |(x - x') / l|)."),
            (matern52(X1, X2, ls.mean().expand(3)), "You used one lengthscale for every dimension (ARD means one per "
                                                    "dimension: divide coordinate i by lengthscale[i])."),
            (matern52(X1, X2, ls[:1].expand(3)), "Only the first lengthscale was used: divide coordinate i by "
                                                 "lengthscale[i] (broadcasting X / lengthscale does this)."),
            (matern52(X1, X2, 1 / ls), "You multiplied by the lengthscale; divide by it."),
        ]
        for alt, hint in slips:
            if _close(out, alt, rtol=1e-5, atol=1e-8):
                raise CheckFailed(f"matern52 gives the wrong values. {hint}")
        c = _constant_factor(out, ref)
        if c is not None:
            raise CheckFailed(f"matern52 is off by a constant factor of {c:.4g}: the kernel has unit outputscale, so "
                              "k(x, x) = 1 and no constant goes in front.")
        raise CheckFailed(f"matern52 gives the wrong values: {_worst(out, ref)}. Compare term by term with "
                          "(1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r).")
    n += 1

    iso = _as_tensor(_call(fn, name, sig, X1, X2, torch.tensor([0.5], dtype=DTYPE)), name)
    if not _close(iso, matern52(X1, X2, torch.tensor([0.5], dtype=DTYPE))):
        raise CheckFailed("with one shared lengthscale of shape (1,) the values are wrong: make sure X / lengthscale "
                          "broadcasts for a (1,) lengthscale as well as a (d,) one.")
    n += 1
    one = _as_tensor(_call(fn, name, sig, X1[:1], X2[:1], ls), name)
    _shape(one, (1, 1), name, "a single pair of points (1, 3), (1, 3)")
    n += 1

    _grad_finite(fn, name, sig, lambda x: (x, x, ls), X1, "at r = 0 (matern52(X, X), differentiated in X)",
                 "The gradient of sqrt at 0 is infinite: take the square root of the squared distance clamped to a "
                 "tiny positive number (`r2.clamp_min(1e-30).sqrt()`), as izkit.kernels.matern52 does. "
                 "(torch.cdist is fine too.)")
    n += 1
    _success(name, n, "shape, r = 0, symmetry, ARD lengthscales, values, gradients")


# ---------------------------------------------------------------------------------------------- coupled kernel


def _reference_coupled(X1: Tensor, X2: Tensor, Z: Tensor, S: Tensor, ls: Tensor) -> Tensor:
    """Eq. 9: l(X1, Z) L^{-1} S L^{-1} l(Z, X2) with L = l(Z, Z), by Cholesky solves."""
    C = torch.linalg.cholesky(matern52(Z, Z, ls))  # (m, m)
    W1 = torch.cholesky_solve(matern52(Z, X1, ls), C)  # (m, n1) L^{-1} l(Z, X1)
    W2 = torch.cholesky_solve(matern52(Z, X2, ls), C)  # (m, n2)
    return W1.T @ S @ W2  # (n1, n2)


def _similarity(m: int, seed: int) -> Tensor:
    """A realistic S (m, m): Matern-5/2 on random per-example score vectors, unit diagonal, PSD."""
    F = torch.rand(m, 8, generator=_gen(seed), dtype=DTYPE).round()  # (m, 8) 0/1 scores
    return matern52(F, F, torch.tensor([2.0], dtype=DTYPE))


def check_coupled_kernel(fn: Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]) -> None:
    """Check ``fn(X1 (n1, d), X2 (n2, d), Z (m, d), S (m, m), lengthscale (d,)) -> (n1, n2)``, paper eq. 9.

    ``k(x, x') = l(x, Z) L^{-1} S L^{-1} l(Z, x')`` with ``l`` the unit Matern-5/2 (``izkit.kernels.matern52``) and
    ``L = l(Z, Z)``. Raises ``AssertionError`` with a hint when wrong.
    """
    name, sig = "coupled_kernel", "coupled_kernel(X1, X2, Z, S, lengthscale)"
    g = _gen(1)
    Z = torch.rand(6, 2, generator=g, dtype=DTYPE) * 2 - 1  # (6, 2) evaluated soft prompts
    S = _similarity(6, 2)  # (6, 6)
    ls = torch.tensor([0.6, 0.9], dtype=DTYPE)  # (2,)
    X1 = torch.rand(4, 2, generator=g, dtype=DTYPE) * 2 - 1  # (4, 2)
    X2 = torch.rand(3, 2, generator=g, dtype=DTYPE) * 2 - 1  # (3, 2)
    n = 0

    out = _as_tensor(_call(fn, name, sig, X1, X2, Z, S, ls), name)
    _shape(out, (4, 3), name, "X1 (4, 2), X2 (3, 2), Z (6, 2)")
    _finite(out, name, "for ordinary inputs", "Solve with a Cholesky factor of L = l(Z, Z) (torch.linalg.cholesky, "
                                              "torch.cholesky_solve) rather than forming an inverse.")
    n += 1

    KZ = _as_tensor(_call(fn, name, sig, Z, Z, Z, S, ls), name)  # (6, 6)
    _shape(KZ, (6, 6), name, "X1 = X2 = Z (6, 2)")
    if not bool(torch.allclose(KZ, S, atol=1e-6)):
        lZ = matern52(Z, Z, ls)
        slips = [
            (lZ @ S @ lZ, "You left out L^{-1}: eq. 9 is l(x, Z) L^{-1} S L^{-1} l(Z, x'), with a solve against "
                          "L = l(Z, Z) on both sides."),
            (S @ lZ, "Only one side is multiplied by L^{-1}: eq. 9 needs L^{-1} on both sides of S."),
            (lZ @ S, "Only one side is multiplied by L^{-1}: eq. 9 needs L^{-1} on both sides of S."),
            (lZ, "The result does not depend on S: eq. 9 puts the instruction similarity S in the middle."),
            (torch.eye(6, dtype=DTYPE), "K(Z, Z) is the identity: S is missing from the middle of eq. 9."),
        ]
        for alt, hint in slips:
            if _close(KZ, alt, rtol=1e-5, atol=1e-8):
                raise CheckFailed(f"on the evaluated points K(Z, Z) should equal S exactly, and yours does not. {hint}")
        c = _constant_factor(KZ, S)
        if c is not None:
            raise CheckFailed(f"K(Z, Z) is {c:.4g} * S: on the evaluated points eq. 9 gives K = S exactly, so the "
                              f"result is off by a constant factor of {c:.4g}.")
        raise CheckFailed(
            "on the evaluated points eq. 9 gives K(Z, Z) = S exactly (L^{-1} l(Z, Z) = I), but yours differs from S by "
            f"up to {float((KZ - S).abs().max()):.3g}. Check the order of the products: w(x) = L^{-1} l(Z, x) is "
            "(m, n), and k = w(x1)^T S w(x2)."
        )
    n += 1

    K11 = _as_tensor(_call(fn, name, sig, X1, X1, Z, S, ls), name)
    if not bool(torch.allclose(K11, K11.T, atol=1e-8)):
        raise CheckFailed("coupled_kernel(X, X, ...) is not symmetric: use the same weights w(x) = L^{-1} l(Z, x) "
                          "on both sides of S.")
    n += 1
    if float(torch.linalg.eigvalsh(0.5 * (K11 + K11.T)).min()) < -1e-8:
        raise CheckFailed("coupled_kernel(X, X, ...) is not positive semi-definite, so it is not a valid kernel. "
                          "Is S in the middle, between the two weight matrices?")
    n += 1

    ref = _reference_coupled(X1, X2, Z, S, ls)  # (4, 3)
    if not _close(out, ref, rtol=1e-5, atol=1e-8):
        if _close(out, _reference_coupled(X1, X2, Z, S, ls**2), rtol=1e-5, atol=1e-8):
            raise CheckFailed("the lengthscales enter squared: pass them to matern52 as they are.")
        c = _constant_factor(out, ref)
        if c is not None:
            raise CheckFailed(f"coupled_kernel is off by a constant factor of {c:.4g}: eq. 9 has no constant in front.")
        raise CheckFailed(f"coupled_kernel gives the wrong values away from Z: {_worst(out, ref)}. Build l(X, Z) with "
                          "the same lengthscales as L = l(Z, Z).")
    n += 1

    far = torch.full((1, 2), 25.0, dtype=DTYPE)  # (1, 2) far outside the data
    kfar = _as_tensor(_call(fn, name, sig, far, far, Z, S, ls), name)
    _finite(kfar, name, "far from the data", "Far from Z every l(x, Z) underflows to 0 and k(x, x) should be 0.")
    n += 1

    _grad_finite(fn, name, sig, lambda x: (x, x, Z, S, ls), X1, "with respect to X",
                 "Use torch operations (cholesky, cholesky_solve, @) so gradients reach X.")
    n += 1
    _success(name, n, "shape, K(Z, Z) = S, symmetry, positive semi-definite, values off the data, gradients")


# ------------------------------------------------------------------------------------------ expected improvement


def _ei_inputs(seed: int, b: int = 64) -> tuple[Tensor, Tensor, Tensor]:
    g = _gen(seed)
    mean = torch.randn(b, generator=g, dtype=DTYPE)  # (b,)
    var = torch.rand(b, generator=g, dtype=DTYPE) * 2 + 0.05  # (b,)
    best = torch.tensor(0.3, dtype=DTYPE)  # ()
    return mean, var, best


def check_ei(fn: Callable[[Tensor, Tensor, Tensor], Tensor]) -> None:
    """Check ``fn(mean (b,), var (b,), best ()) -> (b,)``: expected improvement for maximisation (paper eq. 10).

    ``u = (mean - best) / sigma``, ``EI = sigma * (phi(u) + u Phi(u))``, sigma = sqrt(var) with var floored.
    Reference: :func:`izkit.acquisition.expected_improvement`.
    """
    name, sig = "ei", "ei(mean, var, best)"
    n = 0
    known = _as_tensor(_call(fn, name, sig, torch.tensor([-0.5], dtype=DTYPE), torch.tensor([1.0], dtype=DTYPE),
                             torch.tensor(0.0, dtype=DTYPE)), name)
    _shape(known, (1,), name, "one point")
    mean, var, best = _ei_inputs(3)
    out = _as_tensor(_call(fn, name, sig, mean, var, best), name)
    _shape(out, (64,), name, "mean (64,), var (64,)")
    n += 1
    ref = expected_improvement(mean, var, best)
    if abs(float(known[0]) - 0.19780) > 1e-4 or not _close(out, ref, rtol=1e-6, atol=1e-10):
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
            if _close(out, alt, rtol=1e-5, atol=1e-9):
                raise CheckFailed(f"ei gives the wrong values. {hint}")
        c = _constant_factor(out, ref)
        if c is not None:
            raise CheckFailed(f"ei is off by a constant factor of {c:.4g}: check the normal density "
                              "phi(u) = exp(-u^2 / 2) / sqrt(2 pi).")
        if abs(float(known[0]) - 0.19780) > 1e-4:
            raise CheckFailed(f"ei(mean=-0.5, var=1, best=0) should be about 0.19780, yours is {float(known[0]):.6g}.")
        raise CheckFailed(f"ei gives the wrong values: {_worst(out, ref)}.")
    n += 2
    if bool((out < 0).any()):
        raise CheckFailed("ei returned negative values; an expected improvement is never negative.")
    n += 1

    zero = _as_tensor(_call(fn, name, sig, torch.tensor([1.0, -1.0], dtype=DTYPE), torch.zeros(2, dtype=DTYPE),
                            torch.tensor(0.0, dtype=DTYPE)), name)
    _finite(zero, name, "for var = 0 (a point the GP is certain about)",
            "Floor the variance before the square root, e.g. `var.clamp_min(1e-12)`, so that u stays finite.")
    if not bool(torch.allclose(zero, torch.tensor([1.0, 0.0], dtype=DTYPE), atol=1e-5)):
        raise CheckFailed(f"with var = 0, EI should be max(mean - best, 0) = [1, 0]; yours is {zero.tolist()}.")
    n += 1
    far = _as_tensor(_call(fn, name, sig, torch.tensor([-40.0, 40.0], dtype=DTYPE), torch.ones(2, dtype=DTYPE),
                           torch.tensor(0.0, dtype=DTYPE)), name)
    _finite(far, name, "for u = -40 or u = +40", "Use erfc for the normal cdf: Phi(u) = erfc(-u / sqrt2) / 2.")
    if abs(float(far[1]) - 40.0) > 1e-6 or float(far[0]) < 0:
        raise CheckFailed(f"at u = +40 EI should be 40 and at u = -40 about 0; yours gives {far.tolist()}.")
    n += 1
    _grad_finite(fn, name, sig, lambda m: (m, var, best), mean, "with respect to the mean",
                 "Use torch functions (torch.erfc, torch.exp) so gradients flow.")
    n += 1
    _success(name, n, "known value 0.19780, values, sign convention, var = 0, far tails, gradients")


def check_log_ei(fn: Callable[[Tensor, Tensor, Tensor], Tensor]) -> None:
    """Check ``fn(mean (b,), var (b,), best ()) -> (b,)``: log of expected improvement, finite far in the tail.

    Reference: :func:`izkit.acquisition.log_expected_improvement`; it must stay finite (and accurate) at u = -40,
    -1000 and beyond, where EI itself underflows to 0.
    """
    name, sig = "log_ei", "log_ei(mean, var, best)"
    n = 0
    mean, var, best = _ei_inputs(4)
    out = _as_tensor(_call(fn, name, sig, mean, var, best), name)
    _shape(out, (64,), name, "mean (64,), var (64,)")
    n += 1
    ref = log_expected_improvement(mean, var, best)
    if not _close(out, ref, rtol=1e-6, atol=1e-8):
        if _close(out, expected_improvement(mean, var, best), rtol=1e-5, atol=1e-8):
            raise CheckFailed("log_ei returns EI itself; return its logarithm.")
        raise CheckFailed(f"log_ei gives the wrong values where EI is moderate: {_worst(out, ref)}.")
    n += 1

    u = torch.tensor([-5.0, -10.0, -40.0, -100.0, -1000.0, -1e4], dtype=DTYPE)  # (6,) scaled improvement
    tail = _as_tensor(_call(fn, name, sig, u, torch.ones(6, dtype=DTYPE), torch.tensor(0.0, dtype=DTYPE)), name)
    _shape(tail, (6,), name, "six points in the tail")
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
    if not _close(tail, tref, rtol=1e-4, atol=1e-6):
        raise CheckFailed(f"log_ei is finite in the tail but inaccurate: {_worst(tail, tref)} (u = "
                          f"{u.tolist()}). Compare with log phi(u) + log(1 - |u| sqrt(pi/2) erfcx(|u|/sqrt2)).")
    n += 1
    if not bool((tail[1:] < tail[:-1]).all()):
        raise CheckFailed("log_ei should fall as u moves further into the tail (u = -5, -10, -40, ...), and yours "
                          "does not.")
    n += 1
    _grad_finite(fn, name, sig, lambda m: (m, torch.ones(6, dtype=DTYPE), torch.tensor(0.0, dtype=DTYPE)), u,
                 "in the tail (u down to -1e4)",
                 "torch.where evaluates both branches, and an inf/NaN in the branch not taken still poisons the "
                 "gradient: clamp each branch's input to its own range before computing it.")
    n += 1
    _success(name, n, "values, finite and accurate down to u = -1e4, monotone, gradients in the tail")


# --------------------------------------------------------------------------------------------------- a BO step


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

        out = _call(fn, name, sig, Z, y, evaluate, bounds, q, seed)
        if not isinstance(out, tuple) or len(out) != 2:
            raise CheckFailed(f"`{name}` should return a pair (Z_new, y_new): the new points and their scores; it "
                              f"returned {type(out).__name__}")
        Zn, yn = _as_tensor(out[0], name), _as_tensor(out[1], name)
        _shape(Zn, (q, d), name + " (Z_new)", f"q = {q}, d = {d}")
        _shape(yn, (q,), name + " (y_new)", f"q = {q}")
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
    _success(name, n, "shapes, one evaluation per new point, scores returned, inside the box, distinct, high EI; "
                      "d = 2 with q = 2 and d = 3 with q = 1")

