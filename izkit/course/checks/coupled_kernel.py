"""Assignment 2: the student's instruction-coupled kernel against paper eq. 9, k = l(x, Z) L^{-1} S L^{-1} l(Z, x').

The slips it names: L^{-1} left out or on one side only, S missing, squared lengthscales, a constant factor; it
also checks K(Z, Z) = S, symmetry, positive semi-definiteness and finite values far from the data. A jitter on L's
diagonal up to 1e-3 is accepted: **the authors' code** inverts ``L + 1e-4 I``, so with it K(Z, Z) is only close to S.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from izkit.course.checks.common import (CheckFailed, as_tensor, call, close, constant_factor, expect_finite,
                                 expect_finite_gradient, expect_shape, refuse_izkit, seeded, success, worst)
from izkit.kernels import DTYPE, matern52


MAX_JITTER = 1e-3  # the largest jitter on L's diagonal accepted (the authors' code adds 1e-4)


def _reference_coupled(X1: Tensor, X2: Tensor, Z: Tensor, S: Tensor, ls: Tensor, jitter: float = 0.0) -> Tensor:
    """Eq. 9: l(X1, Z) L^{-1} S L^{-1} l(Z, X2) with L = l(Z, Z) (+ jitter I), by Cholesky solves."""
    C = torch.linalg.cholesky(matern52(Z, Z, ls) + jitter * torch.eye(len(Z), dtype=DTYPE))  # (m, m)
    W1 = torch.cholesky_solve(matern52(Z, X1, ls), C)  # (m, n1) L^{-1} l(Z, X1)
    W2 = torch.cholesky_solve(matern52(Z, X2, ls), C)  # (m, n2)
    return W1.T @ S @ W2  # (n1, n2)


def _similarity(m: int, seed: int) -> Tensor:
    """A realistic S (m, m): Matern-5/2 on random per-example score vectors, unit diagonal, PSD."""
    F = torch.rand(m, 8, generator=seeded(seed), dtype=DTYPE).round()  # (m, 8) 0/1 scores
    return matern52(F, F, torch.tensor([2.0], dtype=DTYPE))


def within_jitter(out: Tensor, X1: Tensor, X2: Tensor, Z: Tensor, S: Tensor, ls: Tensor) -> bool:
    """Eq. 9 up to a jitter in [0, MAX_JITTER] on L's diagonal: between the exact result and the one with the
    largest jitter, entry by entry (to first order in the jitter the result moves on a straight line)."""
    exact, far = _reference_coupled(X1, X2, Z, S, ls), _reference_coupled(X1, X2, Z, S, ls, MAX_JITTER)
    slack = 1e-6 + 0.1 * (far - exact).abs()
    return out.shape == exact.shape and bool(((out >= torch.minimum(exact, far) - slack)
                                              & (out <= torch.maximum(exact, far) + slack)).all())


def check_coupled_kernel(fn: Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor], seed: int = 0) -> None:
    """Check ``fn(X1 (n1, d), X2 (n2, d), Z (m, d), S (m, m), lengthscale (d,)) -> (n1, n2)``, paper eq. 9.

    ``k(x, x') = l(x, Z) L^{-1} S L^{-1} l(Z, x')`` with ``l`` the unit Matern-5/2 and ``L = l(Z, Z)`` (a jitter up to
    1e-3 on L's diagonal is accepted). ``seed`` draws other inputs (0: the visible test; others: hidden ones).
    Raises ``AssertionError`` with a hint when wrong.
    """
    name, sig = "coupled_kernel", "coupled_kernel(X1, X2, Z, S, lengthscale)"
    refuse_izkit(fn, name, ("izkit.kernels", "izkit.gp", "izkit.surrogate"))
    g = seeded(1 + seed)
    Z = torch.rand(6, 2, generator=g, dtype=DTYPE) * 2 - 1  # (6, 2) evaluated soft prompts
    S = _similarity(6, 2 + seed)  # (6, 6)
    ls = torch.tensor([0.6, 0.9], dtype=DTYPE)  # (2,)
    X1 = torch.rand(4, 2, generator=g, dtype=DTYPE) * 2 - 1  # (4, 2)
    X2 = torch.rand(3, 2, generator=g, dtype=DTYPE) * 2 - 1  # (3, 2)
    n = 0

    out = as_tensor(call(fn, name, sig, X1, X2, Z, S, ls), name)
    expect_shape(out, (4, 3), name, "X1 (4, 2), X2 (3, 2), Z (6, 2)")
    expect_finite(
        out, name, "for ordinary inputs", "Solve with a Cholesky factor of L = l(Z, Z) (torch.linalg.cholesky, "
        "torch.cholesky_solve) rather than forming an inverse.")
    n += 1

    KZ = as_tensor(call(fn, name, sig, Z, Z, Z, S, ls), name)  # (6, 6)
    expect_shape(KZ, (6, 6), name, "X1 = X2 = Z (6, 2)")
    if not within_jitter(KZ, Z, Z, Z, S, ls):
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
            if close(KZ, alt, rtol=1e-5, atol=1e-8):
                raise CheckFailed(f"on the evaluated points K(Z, Z) should equal S, and yours does not. {hint}")
        c = constant_factor(KZ, S)
        if c is not None:
            raise CheckFailed(f"K(Z, Z) is {c:.4g} * S: on the evaluated points eq. 9 gives K = S, so the "
                              f"result is off by a constant factor of {c:.4g}.")
        raise CheckFailed(
            "on the evaluated points eq. 9 gives K(Z, Z) = S (L^{-1} l(Z, Z) = I; a jitter up to 1e-3 on L's "
            f"diagonal is allowed), but yours differs from S by up to {float((KZ - S).abs().max()):.3g}. Check the "
            "order of the products: w(x) = L^{-1} l(Z, x) is (m, n), and k = w(x1)^T S w(x2)."
        )
    n += 1

    K11 = as_tensor(call(fn, name, sig, X1, X1, Z, S, ls), name)
    if not bool(torch.allclose(K11, K11.T, atol=1e-8)):
        raise CheckFailed("coupled_kernel(X, X, ...) is not symmetric: use the same weights w(x) = L^{-1} l(Z, x) "
                          "on both sides of S.")
    n += 1
    if float(torch.linalg.eigvalsh(0.5 * (K11 + K11.T)).min()) < -1e-8:
        raise CheckFailed("coupled_kernel(X, X, ...) is not positive semi-definite, so it is not a valid kernel. "
                          "Is S in the middle, between the two weight matrices?")
    n += 1

    ref = _reference_coupled(X1, X2, Z, S, ls)  # (4, 3)
    if not within_jitter(out, X1, X2, Z, S, ls):
        if close(out, _reference_coupled(X1, X2, Z, S, ls**2), rtol=1e-5, atol=1e-8):
            raise CheckFailed("the lengthscales enter squared: pass them to matern52 as they are.")
        c = constant_factor(out, ref)
        if c is not None:
            raise CheckFailed(f"coupled_kernel is off by a constant factor of {c:.4g}: eq. 9 has no constant in front.")
        raise CheckFailed(f"coupled_kernel gives the wrong values away from Z: {worst(out, ref)}. Build l(X, Z) with "
                          "the same lengthscales as L = l(Z, Z).")
    n += 1

    far = torch.full((1, 2), 25.0, dtype=DTYPE)  # (1, 2) far outside the data
    kfar = as_tensor(call(fn, name, sig, far, far, Z, S, ls), name)
    expect_finite(kfar, name, "far from the data", "Far from Z every l(x, Z) underflows to 0 and k(x, x) should be 0.")
    n += 1

    expect_finite_gradient(
        fn, name, sig, lambda x: (x, x, Z, S, ls), X1, "with respect to X",
        "Use torch operations (cholesky, cholesky_solve, @) so gradients reach X.")
    n += 1
    success(name, n, "shape, K(Z, Z) = S (up to a jitter on L), symmetry, positive semi-definite, values off the data, gradients")


def check_score_similarity(fn: Callable[[Tensor, Tensor], Tensor], seed: int = 0) -> None:
    """Check ``fn(F (m, E), s_lengthscale (1,)) -> S (m, m)``: the Matern-5/2 between the instructions' per-example
    score vectors (the rows of F), as the authors' code builds S. ``seed`` draws other inputs (0: the visible test)."""
    name, sig = "score_similarity", "score_similarity(F, s_lengthscale)"
    refuse_izkit(fn, name, ("izkit.kernels", "izkit.gp", "izkit.surrogate"))
    g = seeded(20 + seed)
    n = 0
    for m, E in ((5, 8), (3, 20)):
        F = torch.rand(m, E, generator=g, dtype=DTYPE).round()  # (m, E) 0/1 scores
        F[1] = F[0]  # two instructions that answer alike
        sls = torch.tensor([1.5], dtype=DTYPE)
        S = as_tensor(call(fn, name, sig, F, sls), name)
        if tuple(S.shape) == (E, E) and m != E:
            raise CheckFailed(f"`{name}` returned shape {(E, E)}: that compares examples, not instructions. S is "
                              f"(m, m), one row per instruction: the kernel between the rows of F.")
        expect_shape(S, (m, m), name, f"F ({m}, {E})")
        n += 1
        ref = matern52(F, F, sls)  # (m, m)
        if not close(S, ref, rtol=1e-6, atol=1e-9):
            if close(S, matern52(F, F, sls**2), rtol=1e-6, atol=1e-9):
                raise CheckFailed("the lengthscale enters squared: pass it to matern52 as it is.")
            raise CheckFailed(f"`{name}` gives the wrong values: {worst(S, ref)}. S[i, j] is your matern52 between "
                              "F[i] and F[j] with the given lengthscale.")
        n += 1
    success(name, n, "shape (m, m), the Matern-5/2 between score vectors, 1 where two instructions answer alike")
