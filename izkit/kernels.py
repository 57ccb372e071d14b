"""Kernels for InstructZero's Gaussian process: Matern-5/2 (ARD), instruction similarities and the coupled kernel.

The instruction-coupled kernel is InstructZero's eq. 9 (Chen et al., ICML 2024):

    k(z, z') = l(z, Z) L^{-1} S L^{-1} l(Z, z'),        L = l(Z, Z),

with ``Z`` (m, d) the soft prompts evaluated so far, ``l`` a Matern-5/2 ARD kernel on soft prompts and ``S`` (m, m) the
similarity of the m instructions they produced. Two choices of ``S`` are offered:

* ``ScoreMatern52``: a Matern-5/2 kernel on the per-example score vectors (what the authors' code does); it has its own
  lengthscales, fitted with the GP, and can standardise the score vectors first (``standardize=``);
* ``PredictionAgreement``: the expected agreement of two instructions' predictions, paper eq. 8,
  ``S_ij = mean_e sim(pred_i[e], pred_j[e])``; no hyperparameters.

``PrecomputedSimilarity`` takes any ``S`` the caller has built. ``S`` is only ever needed on the evaluated points.

Reading eq. 9 as a feature model: with ``w(z) = L^{-1} l(Z, z)`` (m,), the kriging weights of ``l``, it is
``k(z, z') = w(z)^T S w(z')``. At an evaluated point ``w(z_i) = e_i``, so **on the evaluated points K = S whatever l's
lengthscales are**. Three consequences:

1. The marginal likelihood of the training data does not depend on ``l``'s hyperparameters (only the lengthscale prior
   does), so they must be set another way. ``InstructionCoupledKernel(latent=...)`` offers three:
   ``"plain_gp"`` (default): fit ``l`` by the marginal likelihood of a plain Matern-5/2 GP on ``(Z, y)`` and keep its
   lengthscales fixed while the rest is fitted. Our choice, because off the evaluated points the coupled GP's mean is
   ``l(z, Z) L^{-1} (S-smoothed training values)``, a kernel interpolation with ``l``, and a plain GP's evidence is the
   natural way to choose an interpolator's lengthscales: it learns which soft-prompt directions matter.
   ``"prior"``: leave them to the Gamma lengthscale prior alone (they land on its mode, (a - 1) / b = 1/3 for the authors'
   Gamma(3, 6)); this is what the authors' gpytorch code effectively does. With the prior switched off they stay where
   they start. ``"fixed"``: use the lengthscales the caller gives.
2. ``k`` has rank at most m: the latent values at the evaluated points carry everything. The posterior variance anywhere
   is at most ``noise * |w(z)|^2``, and ``w(z) -> 0`` far from the data, so the prior and posterior variance vanish far
   from ``Z`` (unlike a stationary kernel, whose prior variance stays at the outputscale). With the score-vector ``S``
   the mean score y is a function of the score vector, so the fitted noise sits at its lower bound, and expected
   improvement peaks beside the best evaluated points, where the weights w(z) grow and the mean can overshoot (notebook
   6, section 4): the BO loop passes its evaluated soft prompts as ``optimize_acquisition(exclude=...)``, which keeps a
   batch off them; ``residual=True`` adds a stationary term ``s_r l(z, z')`` that gives prior variance back.
3. ``l``'s outputscale cancels (``l -> c l`` gives ``L^{-1} -> L^{-1} / c``): eq. 9 has one outputscale, in front of S.

Every kernel keeps its hyperparameters as one flat vector ``theta`` in log space with ``bounds()`` (p, 2), evaluated by
``kernel(theta, X1, X2) -> (n1, n2)``; ``named_parts(theta)`` gives its pieces by name (``KernelParts``). Everything is
float64. Solves use Cholesky factors, never an inverse; ``robust_cholesky`` adds growing jitter only when a
factorisation fails (after BoTorch's ``_ensure_psd_with_jitter``). A kernel holds its training data (``set_train``);
``GaussianProcess.fit`` sets it on a copy, never on the caller's.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

log = logging.getLogger(__name__)

DTYPE = torch.float64
SQRT5 = math.sqrt(5.0)


class NotPSDError(RuntimeError):
    """A covariance matrix stayed non-positive-definite after the jitter retries."""


def robust_cholesky(A: Tensor, max_tries: int = 6, base_jitter: float = 1e-10, what: str = "covariance") -> Tensor:
    """Lower Cholesky factor of the symmetric matrix ``A`` (n, n), adding jitter only if the plain factorisation fails.

    Jitter ``base_jitter * 10^k * mean(diag A)`` for k = 0 .. max_tries - 1 (relative, so it does not depend on the scale
    of ``A``). The jitter is a constant: gradients flow through ``A`` as usual.
    """
    n = A.shape[-1]
    if not bool(torch.isfinite(A).all()):
        raise NotPSDError(f"the {what} matrix ({n}, {n}) has NaN/inf entries: check the inputs for NaN/inf and the "
                          "hyperparameters for overflow (tighten the bounds)")
    L, info = torch.linalg.cholesky_ex(A)  # (n, n), info 0 on success
    if int(info) == 0:
        return L
    scale = A.detach().diagonal().abs().mean().clamp_min(1e-300)  # () typical diagonal size
    eye = torch.eye(n, dtype=A.dtype, device=A.device)  # (n, n)
    for k in range(max_tries):
        jitter = base_jitter * 10.0**k * scale
        L, info = torch.linalg.cholesky_ex(A + jitter * eye)  # (n, n)
        if int(info) == 0:
            log.debug("cholesky of the %s matrix (%d, %d) needed jitter %.1e", what, n, n, float(jitter))
            return L
    raise NotPSDError(f"the {what} matrix ({n}, {n}) is not positive definite even with jitter {float(jitter):.1e} "
                      f"({max_tries} tries). To fix: check that the similarity S is symmetric positive semi-definite, "
                      "remove or merge duplicate points, raise the noise (or its lower bound), or pass a larger "
                      "max_tries")


def _center(X1: Tensor, X2: Tensor) -> tuple[Tensor, Tensor]:
    """Shift both inputs by X2's mean: the squared distances below then lose fewer digits to cancellation."""
    c = X2.mean(0, keepdim=True)  # (1, d)
    return X1 - c, X2 - c


def matern52(X1: Tensor, X2: Tensor, lengthscale: Tensor) -> Tensor:
    """Unit-outputscale Matern-5/2, Rasmussen & Williams eq. 4.17 with nu = 5/2: (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r).

    X1 (n1, d), X2 (n2, d), lengthscale (d,) or (1,); returns (n1, n2). Differentiable in all three (also at r = 0,
    where the gradient is zero: the kernel is flat there as a function of r)."""
    A, B = _center(X1 / lengthscale, X2 / lengthscale)  # (n1, d), (n2, d) scaled inputs
    r2 = (A * A).sum(-1, keepdim=True) + (B * B).sum(-1) - 2.0 * A @ B.T  # (n1, n2) squared distances
    r = r2.clamp_min(1e-30).sqrt()  # (n1, n2)
    return (1.0 + SQRT5 * r + (5.0 / 3.0) * r2.clamp_min(0.0)) * torch.exp(-SQRT5 * r)  # (n1, n2)


@dataclass(frozen=True)
class KernelParts:
    """A kernel's pieces at one theta by name, natural scale: ``kernel.named_parts(theta)``, or a fitted GP's
    ``gp.kernel_parts_``. The last three are eq. 9's (None for a plain Matern-5/2, and when not used)."""

    lengthscale: Tensor  # (n_ls,) the Matern-5/2's lengthscales; in eq. 9 those of l on soft prompts
    outputscale: Tensor  # () s
    S: Tensor | None = None  # (m, m) similarity of the evaluated instructions
    similarity_lengthscale: Tensor | None = None  # ScoreMatern52's lengthscales on score vectors
    residual_outputscale: Tensor | None = None  # s_r of residual=True


def _log_bounds(lo: float, hi: float, n: int) -> Tensor:
    return torch.tensor([[math.log(lo), math.log(hi)]], dtype=DTYPE).repeat(n, 1)  # (n, 2)


class Matern52:
    """ARD Matern-5/2 kernel ``s * matern52(x, x'; lengthscales)``. theta = [log lengthscales (d or 1), log s]."""

    def __init__(self, d: int, ard: bool = True, lengthscale_bounds: tuple[float, float] = (1e-2, 1e3),
                 outputscale_bounds: tuple[float, float] = (1e-3, 1e3), lengthscale: float = 1.0,
                 outputscale: float = 1.0) -> None:
        self.d = d
        self.n_ls = d if ard else 1  # number of lengthscales
        self.n_params = self.n_ls + 1
        self.lengthscale_bounds = lengthscale_bounds
        self.outputscale_bounds = outputscale_bounds
        self.init = (lengthscale, outputscale)
        self.Z: Tensor | None = None  # (m, d) training inputs, set by set_train

    def bounds(self) -> Tensor:
        """(p, 2) lower/upper bounds of theta (log space)."""
        return torch.cat([_log_bounds(*self.lengthscale_bounds, self.n_ls), _log_bounds(*self.outputscale_bounds, 1)])

    def initial(self) -> Tensor:
        """(p,) first starting point of the fit."""
        ls, s = self.init
        return torch.tensor([math.log(ls)] * self.n_ls + [math.log(s)], dtype=DTYPE)

    def lengthscale_mask(self) -> Tensor:
        """(p,) bool: the entries that are log-lengthscales (the ones the Gamma prior applies to)."""
        return torch.arange(self.n_params) < self.n_ls

    def named_parts(self, theta: Tensor, S: Tensor | None = None) -> KernelParts:
        """The hyperparameters at theta (p,) by name, natural scale (``S`` is eq. 9's; a plain kernel has none)."""
        return KernelParts(theta[: self.n_ls].exp(), theta[self.n_ls].exp())

    def set_train(self, Z: Tensor, instr: Tensor | None = None) -> None:
        """Remember the training inputs Z (m, d); a plain kernel needs no per-instruction data."""
        self.Z = Z

    def parts(self, theta: Tensor) -> dict[str, Tensor]:
        """What depends on theta alone, computed once per theta."""
        return {"ls": theta[: self.n_ls].exp(), "s": theta[self.n_ls].exp()}

    def cross(self, parts: dict[str, Tensor], X1: Tensor, X2: Tensor) -> Tensor:
        return parts["s"] * matern52(X1, X2, parts["ls"])  # (n1, n2)

    def diag(self, parts: dict[str, Tensor], X: Tensor) -> Tensor:
        return parts["s"].expand(X.shape[0])  # (n,) k(x, x) = s

    def gram_train(self, parts: dict[str, Tensor]) -> Tensor:
        """(m, m) covariance of the training points."""
        return self.cross(parts, self.Z, self.Z)

    def cross_train(self, parts: dict[str, Tensor], X: Tensor) -> Tensor:
        """(n, m) covariance between X (n, d) and the training points."""
        return self.cross(parts, X, self.Z)

    def cross_train_diag(self, parts: dict[str, Tensor], X: Tensor) -> tuple[Tensor, Tensor]:
        return self.cross_train(parts, X), self.diag(parts, X)  # (n, m), (n,): what a prediction needs

    def __call__(self, theta: Tensor, X1: Tensor, X2: Tensor) -> Tensor:
        return self.cross(self.parts(theta), X1, X2)  # (n1, n2)


# ---------------------------------------------------------------------------------------------------------- similarity


STANDARDIZE_MODES = (None, "column", "global")


def _spread(F: Tensor, dim: int | None) -> Tensor:
    """Standard deviation (ddof = 1) of F along dim (all entries for None); 1 where it is 0 or undefined."""
    if (F.numel() if dim is None else F.shape[dim]) < 2:
        return torch.ones((), dtype=F.dtype)
    sd = F.std() if dim is None else F.std(dim=dim)  # () or (n,)
    return torch.where(sd > 1e-8, sd, torch.ones_like(sd))


class ScoreMatern52:
    """S = unit-outputscale Matern-5/2 on per-example score vectors (the authors' code). instr: scores (m, n).

    theta_S = log lengthscales (n if ard else 1); the Gamma prior applies to them as to any lengthscale.
    standardize: None (default, the raw scores), "column" (each example's scores to mean 0, sd 1 over the m
    instructions) or "global" (all entries together), done once on the data, so that S's lengthscales and their
    Gamma prior act on scores in units of their own spread, not in nats or accuracy points.
    """

    def __init__(self, n: int, ard: bool = True, lengthscale_bounds: tuple[float, float] = (1e-2, 1e3),
                 lengthscale: float = 1.0, standardize: str | None = None) -> None:
        if standardize not in STANDARDIZE_MODES:
            raise ValueError(f"standardize must be one of {STANDARDIZE_MODES}, got {standardize!r}")
        self.n = n
        self.n_params = n if ard else 1
        self.lengthscale_bounds = lengthscale_bounds
        self.init = lengthscale
        self.standardize = standardize

    def bounds(self) -> Tensor:
        return _log_bounds(*self.lengthscale_bounds, self.n_params)  # (p_S, 2)

    def initial(self) -> Tensor:
        return torch.full((self.n_params,), math.log(self.init), dtype=DTYPE)  # (p_S,)

    def lengthscale_mask(self) -> Tensor:
        return torch.ones(self.n_params, dtype=torch.bool)  # (p_S,)

    def check(self, instr: Tensor, m: int) -> Tensor:
        """The score vectors (m, n) as float64, standardised if asked."""
        if instr is None or instr.ndim != 2 or instr.shape != (m, self.n):
            raise ValueError(f"ScoreMatern52 needs per-example score vectors of shape ({m}, {self.n}), got "
                             f"{None if instr is None else tuple(instr.shape)}")
        F = instr.to(DTYPE)  # (m, n)
        if self.standardize == "column":
            F = (F - F.mean(0)) / _spread(F, 0)  # (m, n) every example: mean 0, sd 1 over the instructions
        elif self.standardize == "global":
            F = (F - F.mean()) / _spread(F, None)  # (m, n) one shift and scale for all entries
        return F

    def __call__(self, theta_s: Tensor, F: Tensor) -> Tensor:
        return matern52(F, F, theta_s.exp())  # (m, m)


class _NoParams:
    """A similarity without hyperparameters: S is computed once, in ``check``."""

    n_params = 0

    def bounds(self) -> Tensor:
        return torch.zeros(0, 2, dtype=DTYPE)  # (0, 2)

    def initial(self) -> Tensor:
        return torch.zeros(0, dtype=DTYPE)  # (0,)

    def lengthscale_mask(self) -> Tensor:
        return torch.zeros(0, dtype=torch.bool)  # (0,)

    def __call__(self, theta_s: Tensor, S: Tensor) -> Tensor:
        return S  # (m, m)


class PredictionAgreement(_NoParams):
    """S_ij = mean_e sim(pred_i[e], pred_j[e]): the expected agreement of two instructions' predictions (paper eq. 8).

    instr is either integer prediction codes (m, n) (the caller maps each normalised prediction string to an int) or an
    already computed per-example similarity (m, m, n). ``sim(a, b)`` maps broadcast codes (m, 1, n), (1, m, n) to values
    (m, m, n); the default is equality, which makes S an average of co-occurrence matrices and hence PSD (a custom sim
    must keep S PSD). No hyperparameters.
    """

    def __init__(self, sim: Callable[[Tensor, Tensor], Tensor] | None = None) -> None:
        self.sim = sim

    def check(self, instr: Tensor, m: int) -> Tensor:
        ok = instr is not None and instr.ndim in (2, 3) and instr.shape[0] == m
        if not ok or (instr.ndim == 3 and instr.shape[1] != m):
            raise ValueError(f"PredictionAgreement needs prediction codes ({m}, n) or per-example similarities "
                             f"({m}, {m}, n), got {None if instr is None else tuple(instr.shape)}")
        if instr.ndim == 3:
            return instr.to(DTYPE).mean(-1)  # (m, m)
        sim = self.sim or (lambda a, b: (a == b).to(DTYPE))
        return sim(instr[:, None, :], instr[None, :, :]).to(DTYPE).mean(-1)  # (m, m) eq. 8


class PrecomputedSimilarity(_NoParams):
    """S given by the caller: instr is S itself (m, m), symmetric PSD (ideally with unit diagonal)."""

    def check(self, instr: Tensor, m: int) -> Tensor:
        if instr is None or tuple(instr.shape) != (m, m):
            raise ValueError(f"PrecomputedSimilarity needs S of shape ({m}, {m}), got "
                             f"{None if instr is None else tuple(instr.shape)}")
        S = instr.to(DTYPE)  # (m, m)
        if not torch.allclose(S, S.T, atol=1e-10):
            raise ValueError("S must be symmetric")
        return S


Similarity = ScoreMatern52 | PredictionAgreement | PrecomputedSimilarity

# -------------------------------------------------------------------------------------------------- eq. 9 coupled kernel

LATENT_MODES = ("plain_gp", "prior", "fixed")


class InstructionCoupledKernel:
    """k(z, z') = s * l(z, Z) L^{-1} S L^{-1} l(Z, z'), paper eq. 9. theta = [log l-lengthscales, theta_S, log s].

    ``set_train(Z, instr)`` gives the evaluated soft prompts Z (m, d) and what ``similarity`` builds S from: scores
    (m, n) for ``ScoreMatern52``, prediction codes (m, n) for ``PredictionAgreement``, S (m, m) for
    ``PrecomputedSimilarity``. ``latent`` says how l's lengthscales are set (see the module docstring):
    "plain_gp" (default, done by ``GaussianProcess.fit``), "prior", or "fixed" (give ``latent_lengthscale``).

    ``residual=True`` adds a stationary term beside eq. 9, ``k + s_r * l(z, z')`` with l's lengthscales and its own
    fitted outputscale s_r (theta gains a last entry, log s_r): eq. 9 alone has rank m and no prior variance away from
    Z; the residual gives s_r back there. Off by default.
    """

    def __init__(self, d: int, similarity: Similarity, latent: str = "plain_gp",
                 latent_lengthscale: float | Tensor | None = None, ard: bool = True,
                 lengthscale_bounds: tuple[float, float] = (1e-2, 1e3),
                 outputscale_bounds: tuple[float, float] = (1e-3, 1e3),
                 lengthscale: float = 1.0, outputscale: float = 1.0, residual: bool = False,
                 residual_bounds: tuple[float, float] = (1e-4, 1e2), residual_init: float = 0.1) -> None:
        if latent not in LATENT_MODES:
            raise ValueError(f"latent must be one of {LATENT_MODES}, got {latent!r}")
        if latent == "fixed" and latent_lengthscale is None:
            raise ValueError('latent="fixed" needs latent_lengthscale')
        self.d = d
        self.similarity = similarity
        self.latent = latent
        self.residual = residual
        self.n_ls = d if ard else 1  # number of l's lengthscales
        self.n_params = self.n_ls + similarity.n_params + 1 + int(residual)
        self._sl = slice(self.n_ls, self.n_ls + similarity.n_params)  # theta_S's entries
        self._i_s = self.n_ls + similarity.n_params  # index of log s; log s_r follows it when residual
        self.lengthscale_bounds = lengthscale_bounds
        self.outputscale_bounds = outputscale_bounds
        self.residual_bounds = residual_bounds
        self.init = (lengthscale, outputscale)
        self.residual_init = residual_init
        self.fixed_latent: Tensor | None = None  # (n_ls,) l's lengthscales when they are not fitted here
        if latent_lengthscale is not None:
            self.fix_latent(torch.as_tensor(latent_lengthscale, dtype=DTYPE))
        self.Z: Tensor | None = None  # (m, d) evaluated soft prompts
        self.instr: Tensor | None = None  # checked per-instruction data: scores (m, n) or S (m, m)

    def fix_latent(self, lengthscale: Tensor) -> None:
        """Pin l's lengthscales (n_ls,) or (): their bounds collapse to the value, so the fit leaves them alone."""
        self.fixed_latent = lengthscale.to(DTYPE).expand(self.n_ls).clone()  # (n_ls,)

    def bounds(self) -> Tensor:
        ls = _log_bounds(*self.lengthscale_bounds, self.n_ls)  # (n_ls, 2)
        if self.fixed_latent is not None:
            ls = self.fixed_latent.log()[:, None].repeat(1, 2)  # (n_ls, 2) lower = upper
        b = [ls, self.similarity.bounds(), _log_bounds(*self.outputscale_bounds, 1)]
        if self.residual:
            b.append(_log_bounds(*self.residual_bounds, 1))
        return torch.cat(b)  # (p, 2)

    def initial(self) -> Tensor:
        ls, s = self.init
        lat = self.fixed_latent.log() if self.fixed_latent is not None else torch.full((self.n_ls,), math.log(ls))
        t = [lat.to(DTYPE), self.similarity.initial(), torch.tensor([math.log(s)], dtype=DTYPE)]
        if self.residual:
            t.append(torch.tensor([math.log(self.residual_init)], dtype=DTYPE))
        return torch.cat(t)  # (p,)

    def lengthscale_mask(self) -> Tensor:
        return torch.cat([torch.ones(self.n_ls, dtype=torch.bool), self.similarity.lengthscale_mask(),
                          torch.zeros(1 + int(self.residual), dtype=torch.bool)])  # (p,)

    def named_parts(self, theta: Tensor, S: Tensor | None = None) -> KernelParts:
        """l's lengthscales, s, S (m, m) of the training instructions (``S``: built at theta already), S's ls, s_r."""
        S = S if S is not None or self.instr is None else self.similarity(theta[self._sl], self.instr)
        return KernelParts(theta[: self.n_ls].exp(), theta[self._i_s].exp(), S,
                           theta[self._sl].exp() if self.similarity.n_params else None,
                           theta[self._i_s + 1].exp() if self.residual else None)

    def set_train(self, Z: Tensor, instr: Tensor | None = None) -> None:
        """Z (m, d) evaluated soft prompts; instr the data S is built from (see the class docstring)."""
        self.Z = Z
        self.instr = self.similarity.check(instr, Z.shape[0])

    def parts(self, theta: Tensor) -> dict[str, Tensor]:
        """Per-theta pieces of eq. 9: l's lengthscales, the similarity S, the outputscale s (and s_r).

        L = l(Z, Z) and its Cholesky factor are added on first use (``latent_gram``, ``weights``): without the
        residual the fit never needs them, because the training covariance is s * S.
        """
        S = self.similarity(theta[self._sl], self.instr)  # (m, m)
        out = {"ls": theta[: self.n_ls].exp(), "S": S, "s": theta[self._i_s].exp()}
        if self.residual:
            out["s_r"] = theta[self._i_s + 1].exp()
        return out

    def latent_gram(self, parts: dict[str, Tensor]) -> Tensor:
        """L = l(Z, Z) (m, m), the unit-outputscale latent Matern-5/2 on the evaluated points, cached in parts."""
        if "L" not in parts:
            parts["L"] = matern52(self.Z, self.Z, parts["ls"])  # (m, m)
        return parts["L"]

    def weights(self, parts: dict[str, Tensor], X: Tensor) -> Tensor:
        """w(X) = L^{-1} l(Z, X) (m, n): l's kriging weights, so that eq. 9 reads k(x, x') = s w(x)^T S w(x')."""
        if "C_L" not in parts:
            parts["C_L"] = robust_cholesky(self.latent_gram(parts), what="latent l(Z, Z)")  # (m, m) L = C_L C_L^T
        return torch.cholesky_solve(matern52(self.Z, X, parts["ls"]), parts["C_L"])  # (m, n)

    def cross(self, parts: dict[str, Tensor], X1: Tensor, X2: Tensor) -> Tensor:
        """Eq. 9 literally: s * l(X1, Z) L^{-1} S L^{-1} l(Z, X2) (+ s_r l(X1, X2)), (n1, n2)."""
        W1, W2 = self.weights(parts, X1), self.weights(parts, X2)  # (m, n1), (m, n2)
        K = parts["s"] * W1.T @ parts["S"] @ W2  # (n1, n2)
        if self.residual:
            K = K + parts["s_r"] * matern52(X1, X2, parts["ls"])
        return K

    def diag(self, parts: dict[str, Tensor], X: Tensor) -> Tensor:
        return self.cross_train_diag(parts, X)[1]  # (n,) k(x, x) = s w(x)^T S w(x) (+ s_r, as l(x, x) = 1)

    def gram_train(self, parts: dict[str, Tensor]) -> Tensor:
        """(m, m) covariance of the evaluated points: s * S exactly (in eq. 9 L^{-1} l(Z, Z) = I cancels), + s_r L.

        Using the identity rather than the round trip through L keeps an ill-conditioned L from leaking into the
        likelihood; ``kernel(theta, Z, Z)`` computes the round trip and agrees up to jitter (tested).
        """
        K = parts["s"] * parts["S"]  # (m, m)
        if self.residual:
            K = K + parts["s_r"] * self.latent_gram(parts)
        return K

    def cross_train(self, parts: dict[str, Tensor], X: Tensor) -> Tensor:
        """(n, m) k(X, Z) = s w(X)^T S (the right-hand L^{-1} L = I cancelled as in gram_train), + s_r l(X, Z)."""
        return self.cross_train_diag(parts, X)[0]

    def cross_train_diag(self, parts: dict[str, Tensor], X: Tensor) -> tuple[Tensor, Tensor]:
        """``cross_train`` (n, m) and ``diag`` (n,) at X (n, d) from one w(X) and one S w(X), what a prediction needs:
        the solves and the (m, m) product are its bulk, so asking for both at once costs half of two calls."""
        W = self.weights(parts, X)  # (m, n)
        SW = parts["S"] @ W  # (m, n)
        K = parts["s"] * SW.T  # (n, m)
        k = parts["s"] * (SW * W).sum(0)  # (n,)
        if self.residual:
            K = K + parts["s_r"] * matern52(X, self.Z, parts["ls"])
            k = k + parts["s_r"]
        return K, k

    def __call__(self, theta: Tensor, X1: Tensor, X2: Tensor) -> Tensor:
        return self.cross(self.parts(theta), X1, X2)  # (n1, n2)


Kernel = Matern52 | InstructionCoupledKernel
