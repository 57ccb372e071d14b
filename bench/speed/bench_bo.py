"""One Bayesian-optimisation step, izkit vs BoTorch, with the instruction-coupled kernel (paper eq. 9) on both sides.

    python -m bench.speed.bench_bo            # m = 25, 50, 100, 150, 200, 500
    python -m bench.speed.bench_bo --quick    # m = 25, 50 only
    python -m bench.speed.bench_bo --m 150 --repeats 1

BoTorch is the stack the paper used (SingleTaskGP + fit_gpytorch_mll + optimize_acqf with LogExpectedImprovement); it is
an optional extra: ``pip install -e .[bench]``. Its side gets a small gpytorch kernel written here for eq. 9 (the
latent and the instruction Matern-5/2 kernels with Gamma(3, 6) lengthscale priors, as in the authors' code).

Synthetic data: d = 10 soft prompts in [-1, 1]^10, 20 binary per-example scores from a smooth hidden function of z
(y = their mean). A step = fit + acquisition optimisation giving a batch of 25 (izkit: optimize_acquisition(q=25);
BoTorch: optimize_acqf(q=1, return_best_only=False), top 25), the same restarts and raw samples on both sides.

Acquisition quality is compared under one acquisition function: izkit's fitted hyperparameters are copied into a second
BoTorch model, BoTorch's optimiser runs on it, and both batches are scored by izkit's log-EI (BoTorch's LogEI on the
same points agrees, reported as "acq agree").

Targets: at m = 150 izkit's step no slower than BoTorch's (aim: half); izkit's best log-EI >= BoTorch's - 1e-3.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings

import torch

from izkit.acquisition import make_acquisition, optimize_acquisition
from izkit.gp import GaussianProcess, limit_threads
from izkit.kernels import DTYPE, InstructionCoupledKernel, ScoreMatern52

from bench.common.report import emit

MISSING = None  # the reference stack's first missing module, if any: said after --help, not before
try:
    import gpytorch
    from botorch.acquisition import LogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.optim import optimize_acqf
    from gpytorch.constraints import GreaterThan
    from gpytorch.likelihoods import GaussianLikelihood
    from gpytorch.priors import GammaPrior
    from linear_operator.utils.cholesky import psd_safe_cholesky
except ImportError as e:  # pragma: no cover - depends on the optional extra
    MISSING = e.name

D, N_EX, Q = 10, 20, 25  # soft-prompt dimension, examples per score vector, batch size (paper)
RESTARTS, RAW = 32, 1024  # multi-start L-BFGS-B runs and Sobol raw samples, the same on both sides
TOL = 1e-3  # "at least BoTorch's minus a small tolerance", in log-EI units


# ------------------------------------------------------------------------------------------------------------ data
def synthetic(m: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Z (m, D) in [-1, 1]^D, binary scores F (m, N_EX) from a smooth hidden function, y = F.mean(1) (m,)."""
    g = torch.Generator().manual_seed(1234)  # the hidden function is the same for every m
    W = torch.randn(3, D, generator=g, dtype=DTYPE) * 0.8  # (3, D) frequencies of the hidden function
    phase = torch.rand(3, generator=g, dtype=DTYPE) * 2 * math.pi  # (3,)
    V = torch.randn(N_EX, D, generator=g, dtype=DTYPE)  # (N_EX, D) per-example perturbation directions
    thresholds = torch.linspace(-1.2, 1.2, N_EX, dtype=DTYPE)  # (N_EX,) example difficulty
    Z = torch.rand(m, D, generator=torch.Generator().manual_seed(seed + m), dtype=DTYPE) * 2 - 1  # (m, D)
    h = torch.cos(Z @ W.T + phase).sum(-1) / math.sqrt(3)  # (m,) hidden quality
    per_example = h[:, None] + 0.3 * torch.sin(Z @ V.T)  # (m, N_EX)
    F = (per_example > thresholds).to(DTYPE)  # (m, N_EX)
    return Z, F, F.mean(1)


# --------------------------------------------------------------------------------------------- BoTorch's eq. 9 kernel
class CoupledKernel(gpytorch.kernels.Kernel):
    """Eq. 9 for gpytorch: k(x1, x2) = l(x1, Z) L^{-1} S L^{-1} l(Z, x2), S = Matern-5/2 on the score vectors F."""

    def __init__(self, Z: torch.Tensor, F: torch.Tensor) -> None:
        super().__init__()
        matern = gpytorch.kernels.MaternKernel
        self.latent = matern(nu=2.5, ard_num_dims=Z.shape[-1], lengthscale_prior=GammaPrior(3.0, 6.0))  # l on z
        self.instr = matern(nu=2.5, ard_num_dims=F.shape[-1], lengthscale_prior=GammaPrior(3.0, 6.0))  # S on scores
        self.register_buffer("Z", Z)  # (m, D) evaluated soft prompts
        self.register_buffer("F", F)  # (m, N_EX) their score vectors

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        batch = torch.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
        Z = self.Z.expand(*batch, *self.Z.shape)  # (..., m, D)
        C = psd_safe_cholesky(self.latent.forward(self.Z, self.Z))  # (m, m) L = C C^T
        C = C.expand(*batch, *C.shape)
        S = self.instr.forward(self.F, self.F)  # (m, m)
        A1 = torch.cholesky_solve(self.latent.forward(Z, x1.expand(*batch, *x1.shape[-2:])), C)  # (..., m, n1)
        A2 = torch.cholesky_solve(self.latent.forward(Z, x2.expand(*batch, *x2.shape[-2:])), C)  # (..., m, n2)
        if diag:
            return ((S @ A1) * A2).sum(-2)  # (..., n)
        return A1.transpose(-1, -2) @ S @ A2  # (..., n1, n2)


def botorch_model(Z, F, y, likelihood=None) -> SingleTaskGP:
    covar = gpytorch.kernels.ScaleKernel(CoupledKernel(Z, F))
    return SingleTaskGP(Z, y[:, None], likelihood=likelihood, covar_module=covar, outcome_transform=Standardize(m=1))


def copy_izkit_into(gp: GaussianProcess, Z, F, y) -> SingleTaskGP:
    """A BoTorch model with izkit's fitted hyperparameters (same acquisition function on both sides)."""
    lik = GaussianLikelihood(noise_constraint=GreaterThan(1e-8)).to(DTYPE)  # izkit's noise may sit below 1e-4
    model = botorch_model(Z, F, y, lik)
    hp = gp.hyperparameters()
    ck = model.covar_module.base_kernel
    ck.latent.lengthscale = hp["latent_lengthscale"]
    ck.instr.lengthscale = hp["similarity_lengthscale"]
    model.covar_module.outputscale = hp["outputscale"]
    model.likelihood.noise = max(hp["noise"], 1e-8)
    model.mean_module.constant.data.zero_()  # izkit: zero mean on standardised y
    model.eval()
    return model


# ------------------------------------------------------------------------------------------------------------ steps
def izkit_step(Z, F, y, bounds):
    t0 = time.perf_counter()
    gp = GaussianProcess(InstructionCoupledKernel(D, ScoreMatern52(N_EX))).fit(Z, y, F)
    t1 = time.perf_counter()
    X, vals = optimize_acquisition(gp, bounds, q=Q, n_starts=RESTARTS, raw_samples=RAW, seed=0)
    t2 = time.perf_counter()
    return gp, X, vals, t1 - t0, t2 - t1


def botorch_optimise(model, y, bounds):
    acqf = LogExpectedImprovement(model, best_f=y.max())
    cand, vals = optimize_acqf(acqf, bounds, q=1, num_restarts=RESTARTS, raw_samples=RAW, return_best_only=False,
                               options={"seed": 0})  # (RESTARTS, 1, D), (RESTARTS,)
    top = torch.argsort(vals, descending=True)[:Q]
    return cand[top, 0, :], vals[top]  # (Q, D), (Q,)


def botorch_step(Z, F, y, bounds):
    t0 = time.perf_counter()
    model = botorch_model(Z, F, y)
    fit_gpytorch_mll(gpytorch.mlls.ExactMarginalLogLikelihood(model.likelihood, model))
    t1 = time.perf_counter()
    X, vals = botorch_optimise(model, y, bounds)
    t2 = time.perf_counter()
    return model, X, vals, t1 - t0, t2 - t1


def distinct(X: torch.Tensor, vals: torch.Tensor, tol: float = TOL) -> torch.Tensor:
    """The values (k,) of the distinct points of X (n, D), best first; points within tol (box-normalised) count once."""
    kept: list[int] = []
    for i in torch.argsort(vals, descending=True).tolist():
        if all(float((X[i] - X[k]).abs().max()) > tol * 2 for k in kept):  # box width 2
            kept.append(i)
    return vals[kept]


def run(m: int, repeats: int, as_shipped: bool) -> dict:
    Z, F, y = synthetic(m)
    bounds = torch.tensor([[-1.0] * D, [1.0] * D], dtype=DTYPE)  # (2, D)
    iz, bo = [], []
    for _ in range(repeats):  # alternate the sides so that load on the machine hits both alike
        iz.append(izkit_step(Z, F, y, bounds))  # izkit runs its loops with 1 torch + 1 BLAS thread (its default)
        with limit_threads(1):  # BoTorch under the same thread limits
            bo.append(botorch_step(Z, F, y, bounds))
    shipped = botorch_step(Z, F, y, bounds)[3:] if as_shipped else (math.nan, math.nan)  # BoTorch, default threads
    gp, X_iz, v_iz = iz[-1][:3]
    X_bo_own = bo[-1][1]

    # same acquisition function: BoTorch's optimiser on a model holding izkit's hyperparameters
    shared = copy_izkit_into(gp, Z, F, y)
    with limit_threads(1):
        X_bo, _ = botorch_optimise(shared, y, bounds)
    acq = make_acquisition(gp)  # izkit's log-EI
    with torch.no_grad():
        a_iz, a_bo = acq(X_iz), acq(X_bo)  # (Q,), (Q,)
        mean, var = gp.predict(X_iz)  # (Q,), (Q,)
        ref = LogExpectedImprovement(shared, best_f=y.max())(X_iz[:, None, :])  # (Q,) BoTorch's LogEI, same points
        above = var > 1e-8 * gp.y_std_**2  # gpytorch floors the variance at 1e-10, izkit at 1e-12: compare above both
        rel = (ref - a_iz).abs() / a_iz.abs().clamp_min(1.0)  # (Q,) relative: log-EI reaches -1e6 far from the data
        agree = float(rel[above].max()) if bool(above.any()) else math.nan
        finite = all(bool(torch.isfinite(t).all()) for t in (v_iz, a_bo, mean, var, X_bo_own)) and math.isfinite(
            gp.log_marginal_likelihood_)
    d_iz, d_bo = distinct(X_iz, a_iz), distinct(X_bo, a_bo)  # (k_iz,), (k_bo,) best first
    k = min(len(d_iz), len(d_bo))
    med = lambda rows, i: statistics.median(r[i] for r in rows)  # noqa: E731
    return {
        "m": m, "iz_fit": med(iz, 3), "iz_acq": med(iz, 4), "iz": statistics.median(r[3] + r[4] for r in iz),
        "bo_fit": med(bo, 3), "bo_acq": med(bo, 4), "bo": statistics.median(r[3] + r[4] for r in bo),
        "shipped": sum(shipped), "best_iz": float(a_iz.max()), "best_bo": float(a_bo.max()),
        "top_iz": float(d_iz[:k].mean()), "top_bo": float(d_bo[:k].mean()), "distinct_iz": len(d_iz),
        "distinct_bo": len(d_bo), "agree": agree, "finite": finite,
    }


def slope(rows: list[dict], key: str) -> float:
    """Least-squares exponent b in time ~ m^b."""
    xs = [math.log(r["m"]) for r in rows]
    ys = [math.log(r[key]) for r in rows]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((a - mx) * (b - my) for a, b in zip(xs, ys)) / sum((a - mx) ** 2 for a in xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only m = 25, 50")
    ap.add_argument("--m", type=int, nargs="*", help="the m values to run (default 25 50 100 150 200 500)")
    ap.add_argument("--repeats", type=int, default=3, help="steps per side for m <= 200 (median); m > 200 runs once")
    ap.add_argument("--no-as-shipped", action="store_true",
                    help="skip BoTorch with its default threads (slow on a busy machine; never run for m > 200)")
    args = ap.parse_args()
    if MISSING:
        sys.exit(f"bench_bo.py needs BoTorch, the reference stack (missing: {MISSING}). "
                 "Install it with: pip install -e .[bench]")
    ms = args.m or ([25, 50] if args.quick else [25, 50, 100, 150, 200, 500])
    warnings.filterwarnings("ignore")  # BoTorch warns that [-1, 1]^D is not the unit cube; both sides see the same box

    import botorch

    rows = []
    for m in ms:
        rows.append(run(m, args.repeats if m <= 200 else 1, m <= 200 and not args.no_as_shipped))
        r = rows[-1]
        print(f"m = {m}: izkit {r['iz']:.2f} s, BoTorch {r['bo']:.2f} s (as shipped: {r['shipped']:.2f} s)",
              file=sys.stderr, flush=True)

    lines = [
        f"One BO step (fit + batch of {Q}), coupled kernel eq. 9 with S = Matern-5/2 on {N_EX} binary scores, d = {D}.",
        f"torch {torch.__version__}, botorch {botorch.__version__}, gpytorch {gpytorch.__version__}, "
        f"{torch.get_num_threads()} torch threads by default; {RESTARTS} L-BFGS-B starts and {RAW} Sobol raw samples "
        "on both sides. izkit fit: 5 restarts + a plain GP for l (latent='plain_gp'); BoTorch fit: fit_gpytorch_mll "
        "defaults (1 start).",
        "Times in seconds, median of the repeats. izkit runs with 1 torch + 1 BLAS thread (its default); 'BoTorch' "
        "runs under the same limits, 'BoTorch as shipped' with the process defaults (one run, m <= 200 only).",
        "log-EI: both batches scored by izkit's log-EI under izkit's fitted hyperparameters, BoTorch's optimiser run on "
        "a copy of them. 'top-k mean': mean log-EI of each side's k best distinct points (points closer than 1e-3 of the "
        "box count once), k = the smaller distinct count. 'acq agree' = max relative |BoTorch LogEI - izkit log-EI| on "
        "izkit's batch where the variance is above both floors (gpytorch 1e-10, izkit 1e-12).",
        "",
        "| m | izkit fit | izkit acq | izkit step | BoTorch fit | BoTorch acq | BoTorch step | BoTorch / izkit "
        "| BoTorch as shipped | best log-EI izkit | best log-EI BoTorch | top-k mean izkit | top-k mean BoTorch "
        "| distinct of 25 izkit / BoTorch | acq agree | all finite |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    shipped = lambda r: "skipped" if math.isnan(r["shipped"]) else f"{r['shipped']:.2f}"  # noqa: E731
    for r in rows:
        lines.append(
            f"| {r['m']} | {r['iz_fit']:.2f} | {r['iz_acq']:.2f} | {r['iz']:.2f} | {r['bo_fit']:.2f} | {r['bo_acq']:.2f} "
            f"| {r['bo']:.2f} | {r['bo'] / r['iz']:.1f}x | {shipped(r)} | {r['best_iz']:.4f} | {r['best_bo']:.4f} "
            f"| {r['top_iz']:.4g} | {r['top_bo']:.4g} | {r['distinct_iz']} / {r['distinct_bo']} | {r['agree']:.1e} "
            f"| {r['finite']} |"
        )
    if len(rows) > 1:
        lines.append(f"\ngrowth with m (least squares, step time ~ m^b): izkit b = {slope(rows, 'iz'):.2f}, "
                     f"BoTorch b = {slope(rows, 'bo'):.2f}")
    target = [r for r in rows if r["m"] == 150]
    if target:
        r = target[0]
        lines.append(f"\ntarget m = 150: izkit step {r['iz']:.2f} s vs BoTorch {r['bo']:.2f} s (same threads) -> "
                     f"{'met' if r['iz'] <= r['bo'] else 'MISSED'} (no slower), "
                     f"{'met' if r['iz'] <= r['bo'] / 2 else 'missed'} (aim: half)")
    ok = all(r["best_iz"] >= r["best_bo"] - TOL for r in rows)
    lines.append(f"target acquisition: izkit's best log-EI >= BoTorch's - {TOL} at every m -> {'met' if ok else 'MISSED'}")
    lines.append(f"NaN/inf check up to m = {max(ms)}: {'clean' if all(r['finite'] for r in rows) else 'NON-FINITE VALUES'}")
    text = "\n".join(lines)
    emit(text, "bo")


if __name__ == "__main__":
    main()
