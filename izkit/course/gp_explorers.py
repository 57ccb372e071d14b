"""The 1-D GP explorers of notebooks 4 and 6: kernel hyperparameters against the likelihood, and expected improvement.

- :func:`kernel_explorer`: lengthscale, outputscale and noise sliders over a Matern-5/2 GP; the title shows the log
  marginal likelihood (Rasmussen & Williams eq. 2.30), so the fitted values can be seen to be its maximum.
- :func:`ei_explorer`: incumbent ("best") and exploration (``xi``) sliders over expected improvement (paper eq. 10),
  with its maximiser marked.
- :func:`eq9_explorer` (notebook 5): the instruction-coupled kernel (paper eq. 9) in one dimension. Sliders for the
  latent Matern lengthscale of ``l``, the lengthscale of ``S`` on the score vectors (how alike two instructions must
  score to count as similar) and the noise; the figure shows eq. 9's prior sd, its posterior mean and sd, ``S``, and
  a plain Matern-5/2 GP on the same data for contrast.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from izkit.acquisition import expected_improvement, log_expected_improvement
from izkit.course.explorer import Explorer, log_slider, png, redraw_on, slider
from izkit.gp import GaussianProcess, GPConfig
from izkit.kernels import DTYPE, InstructionCoupledKernel, Matern52, PrecomputedSimilarity, matern52

HYPERPARAMETERS = ("lengthscale", "outputscale", "noise")  # the kernel explorer's sliders, in GPConfig's theta order


def toy_1d(n: int = 8, noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy observations of a smooth 1-D function on [0, 1]: (x (n,), y (n,)), seeded."""
    g = np.random.default_rng(seed)
    x = np.sort(g.uniform(0.0, 1.0, n))  # (n,)
    y = np.sin(6.0 * x) + 0.5 * np.cos(14.0 * x) + noise * g.standard_normal(n)  # (n,)
    return x, y


def fit_1d(x: np.ndarray, y: np.ndarray, standardize: bool, seed: int, theta: torch.Tensor | None = None
           ) -> GaussianProcess:
    """A Matern-5/2 GP on 1-D data, no lengthscale prior: fitted by maximum likelihood, or at the given log theta."""
    X = torch.as_tensor(np.asarray(x, dtype=float)[:, None], dtype=DTYPE)  # (n, 1)
    cfg = GPConfig(standardize=standardize, lengthscale_prior=None, seed=seed)
    return GaussianProcess(Matern52(1), config=cfg).fit(X, torch.as_tensor(np.asarray(y, dtype=float)), theta=theta)


def grid_for(x: np.ndarray, n: int) -> np.ndarray:
    """n points (n,) covering the data with a 15% margin on each side."""
    lo, hi = float(np.min(x)), float(np.max(x))
    pad = 0.15 * max(hi - lo, 1e-3)
    return np.linspace(lo - pad, hi + pad, n)


def predict_on(gp: GaussianProcess, t: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean (n,) and variance (n,) of f on the grid t (n,)."""
    with torch.no_grad():
        return gp.predict(torch.as_tensor(t[:, None], dtype=DTYPE))


def data_arrays(x: np.ndarray | None, y: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The data to explore as float arrays; default :func:`toy_1d`."""
    if x is None or y is None:
        x, y = toy_1d(seed=seed)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


# ------------------------------------------------------------------------------------------------ kernel explorer


def draw_posterior(ax: Axes, t: np.ndarray, mean: np.ndarray, sd: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
    """The posterior mean and a 2-sd band of f on the grid t, with the data."""
    ax.fill_between(t, mean - 2 * sd, mean + 2 * sd, color="C0", alpha=0.2, label="mean ± 2 sd (f)")
    ax.plot(t, mean, color="C0", lw=2, label="posterior mean")
    ax.scatter(x, y, color="k", s=22, zorder=3, label="data")


def draw_kernel_profile(ax: Axes, lengthscale: float, outputscale: float) -> None:
    """``outputscale * k(0, r)`` against the distance r, with the lengthscale marked."""
    r = np.linspace(0, 3 * max(lengthscale, 1e-3), 200)  # (200,)
    ls = torch.tensor([lengthscale], dtype=DTYPE)  # (1,)
    k = (outputscale * matern52(torch.zeros(1, 1, dtype=DTYPE), torch.as_tensor(r[:, None]), ls)[0]).numpy()  # (200,)
    ax.plot(r, k, color="C2", lw=2)
    ax.axvline(lengthscale, color="0.5", ls=":", lw=1)
    ax.text(lengthscale, 0.95 * k.max(), " lengthscale", fontsize=8, color="0.35", va="top")
    ax.set_xlabel("distance |x - x'|")
    ax.set_ylabel("k(x, x')")
    ax.set_title("the kernel: outputscale x Matern-5/2", fontsize=10)


def kernel_explorer(x: np.ndarray | None = None, y: np.ndarray | None = None, *, grid: int = 200,
                    seed: int = 0, xlabel: str = "x", ylabel: str = "y") -> Explorer:
    """Lengthscale, outputscale and noise sliders over a Matern-5/2 GP on 1-D data (x (n,), y (n,)).

    The sliders start at the maximum-likelihood fit (y not standardised, so they are in y's units) and "Fit" goes back
    there. Left: the posterior (R&W Alg. 2.1); right: the kernel against distance; the title: the log marginal
    likelihood (R&W eq. 2.30). Default data: :func:`toy_1d`.
    """
    x, y = data_arrays(x, y, seed)
    best = fit_1d(x, y, standardize=False, seed=seed)
    fit = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in best.hyperparameters().items()}
    t = grid_for(x, grid)  # (grid,)
    w: dict[str, W.Widget] = {
        "lengthscale": log_slider("lengthscale", fit["lengthscale"], -2.5, 1.0),
        "outputscale": log_slider("outputscale", fit["outputscale"], -3.0, 2.0),
        "noise": log_slider("noise variance", fit["noise"], -4.0, 0.5),
        "fit": W.Button(description="Fit (max likelihood)", icon="bullseye", layout=W.Layout(width="190px")),
        "readout": W.HTML(),
    }
    image, output = W.Image(format="png"), W.Output()
    fig = Figure(figsize=(10.0, 3.8))
    state: dict[str, Any] = {"fitted": dict(fit), "n_redraws": 0, "holding": False}

    def compute() -> None:
        """Condition the GP on the data at the sliders' hyperparameters (no optimisation)."""
        ls, s, nz = (float(w[k].value) for k in HYPERPARAMETERS)
        theta = torch.tensor([np.log(ls), np.log(s), np.log(nz)], dtype=DTYPE)  # (3,) log space, as the GP keeps it
        g = fit_1d(x, y, standardize=False, seed=seed, theta=theta)
        mean, var = predict_on(g, t)
        state.update(lengthscale=ls, outputscale=s, noise=nz, lml=g.log_marginal_likelihood_,
                     mean=mean.numpy(), sd=var.sqrt().numpy(), gp=g)
        w["readout"].value = (f"log marginal likelihood <b>{g.log_marginal_likelihood_:.3f}</b> "
                              f"(at the fit: {best.log_marginal_likelihood_:.3f})")

    def draw() -> None:
        fig.clear()
        ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
        draw_posterior(ax, t, state["mean"], state["sd"], x, y)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"posterior; log marginal likelihood {state['lml']:.2f}", fontsize=10)
        ax.legend(fontsize=8, loc="best")
        draw_kernel_profile(ax2, state["lengthscale"], state["outputscale"])
        fig.tight_layout()
        image.value = png(fig)
        state["n_redraws"] += 1

    # "Fit" moves all three sliders: held meanwhile, so the figure is redrawn once, after the last
    update = redraw_on([w[k] for k in HYPERPARAMETERS], output, compute, draw, held=lambda: state["holding"])

    def on_fit(_: W.Button) -> None:
        state["holding"] = True
        try:
            for k in HYPERPARAMETERS:
                w[k].value = fit[k]
        finally:
            state["holding"] = False
        update()

    w["fit"].on_click(on_fit)
    sliders = W.VBox([w[k] for k in HYPERPARAMETERS])
    ui = W.VBox([W.HBox([sliders, w["fit"]]), w["readout"], image, output])
    return Explorer(w, state, fig, image, output, ui, draw)


# ---------------------------------------------------------------------------------------------------- EI explorer


def ei_explorer(x: np.ndarray | None = None, y: np.ndarray | None = None, *, grid: int = 400, seed: int = 0,
                xlabel: str = "x", ylabel: str = "y") -> Explorer:
    """Incumbent and exploration sliders over expected improvement (paper eq. 10) on a 1-D GP fitted to (x, y).

    ``EI(x) = expected_improvement(mean(x), var(x), best + xi)``: raising "best" or ``xi`` asks for more improvement
    and moves the maximiser towards uncertain places. A checkbox switches to log-EI. Default data: :func:`toy_1d`.
    """
    x, y = data_arrays(x, y, seed)
    t = grid_for(x, grid)  # (grid,)
    mean, var = predict_on(fit_1d(x, y, standardize=True, seed=seed), t)  # (grid,), (grid,)
    sd = var.clamp_min(0).sqrt()  # (grid,)
    span = float(np.ptp(y)) or 1.0
    w: dict[str, W.Widget] = {
        "best": slider("best (incumbent)", float(y.max()), float(y.min()) - 0.5 * span, float(y.max()) + span,
                       span / 100, ".3f"),
        "xi": slider("xi (exploration)", 0.0, 0.0, span, span / 100, ".3f"),
        "log": W.Checkbox(value=False, description="log-EI", indent=False),
        "readout": W.HTML(),
    }
    image, output = W.Image(format="png"), W.Output()
    fig = Figure(figsize=(8.0, 5.2))
    state: dict[str, Any] = {"n_redraws": 0}

    def compute() -> None:
        """EI and log-EI over the grid for the incumbent best + xi, and their maximiser."""
        best, xi = float(w["best"].value), float(w["xi"].value)
        target = torch.tensor(best + xi, dtype=DTYPE)
        with torch.no_grad():
            ei = expected_improvement(mean, var, target)  # (grid,)
            log_ei = log_expected_improvement(mean, var, target)  # (grid,)
        i = int(torch.argmax(log_ei))  # the same argmax, without ties where EI underflows to 0
        state.update(best=best, xi=xi, ei=ei.numpy(), log_ei=log_ei.numpy(), x_max=float(t[i]), ei_max=float(ei[i]),
                     log_ei_max=float(log_ei[i]))
        w["readout"].value = (f"maximiser x = <b>{state['x_max']:.3f}</b>; EI there {state['ei_max']:.3g} "
                              f"(log-EI {state['log_ei_max']:.2f})")

    def draw() -> None:
        fig.clear()
        ax, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1.4, 1]})
        ax.fill_between(t, (mean - 2 * sd).numpy(), (mean + 2 * sd).numpy(), color="C0", alpha=0.2,
                        label="mean ± 2 sd")
        ax.plot(t, mean.numpy(), color="C0", lw=2, label="GP mean")
        ax.scatter(x, y, color="k", s=22, zorder=3, label="data")
        ax.axhline(state["best"], color="C3", ls="--", lw=1.2, label="best (incumbent)")
        if state["xi"] > 0:
            ax.axhline(state["best"] + state["xi"], color="C3", ls=":", lw=1.2, label="best + xi")
        ax.axvline(state["x_max"], color="C1", lw=1.5)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8, loc="best", ncols=2)
        ax.set_title("GP posterior and expected improvement (maximiser in orange)", fontsize=10)
        log = bool(w["log"].value)
        ax2.plot(t, state["log_ei"] if log else state["ei"], color="C1", lw=2)
        ax2.scatter([state["x_max"]], [state["log_ei_max"] if log else state["ei_max"]], marker="*", s=160,
                    color="C1", edgecolors="k", zorder=3, label=f"maximiser x = {state['x_max']:.3f}")
        ax2.set_ylabel("log EI" if log else "EI")
        ax2.ticklabel_format(axis="y", useOffset=False)  # an offset label ("1e-7+1.6e-3") cannot be read
        ax2.set_xlabel(xlabel)
        ax2.legend(fontsize=8, loc="best")
        fig.tight_layout()
        image.value = png(fig)
        state["n_redraws"] += 1

    redraw_on([w[k] for k in ("best", "xi", "log")], output, compute, draw)
    ui = W.VBox([W.HBox([W.VBox([w["best"], w["xi"]]), w["log"]]), w["readout"], image, output])
    return Explorer(w, state, fig, image, output, ui, draw)


# --------------------------------------------------------------------------------------------------- eq. 9 explorer

EQ9_SLIDERS = ("latent_lengthscale", "similarity_lengthscale", "noise")  # the eq. 9 explorer's sliders, in order


def toy_eq9() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Six soft prompts on a line and the 0/1 score vectors (6, 10) of the instructions they wrote, with labels.

    A and A' wrote the same instruction (equal score vectors) from far-apart soft prompts; B scores like A but for
    one example; C is right on other examples; D is almost always wrong; E is the best.
    """
    z = np.array([-0.75, -0.4, 0.0, 0.35, 0.6, 0.85])  # (6,)
    scores = np.array([[1, 1, 1, 1, 1, 1, 1, 0, 0, 0],  # A
                       [1, 1, 1, 1, 1, 1, 0, 0, 0, 0],  # B: A but for one example
                       [0, 0, 0, 0, 1, 1, 1, 1, 1, 0],  # C: right on other examples
                       [1, 1, 1, 1, 1, 1, 1, 0, 0, 0],  # A': A's instruction again
                       [0, 0, 0, 0, 0, 0, 0, 0, 0, 1],  # D
                       [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]],  # E
                      dtype=float)  # (6, 10)
    return z, scores, ["A", "B", "C", "A'", "D", "E"]


def coupled_1d(z: np.ndarray, y: np.ndarray, S: torch.Tensor, latent_lengthscale: float, noise: float
               ) -> GaussianProcess:
    """Eq. 9 on 1-D soft prompts z (m,) with a given S (m, m), conditioned (no fit) at outputscale 1 (standardised y),
    l's lengthscale and the noise variance (standardised units)."""
    Z = torch.as_tensor(np.asarray(z, dtype=float)[:, None], dtype=DTYPE)  # (m, 1)
    kernel = InstructionCoupledKernel(1, PrecomputedSimilarity(), latent="fixed", latent_lengthscale=latent_lengthscale)
    theta = torch.tensor([np.log(latent_lengthscale), 0.0], dtype=DTYPE)  # (2,) log l-lengthscale, log s
    gp = GaussianProcess(kernel, config=GPConfig(noise=noise, lengthscale_prior=None))
    return gp.fit(Z, torch.as_tensor(y, dtype=DTYPE), S, theta=theta)


def plain_1d(z: np.ndarray, y: np.ndarray, lengthscale: float, noise: float) -> GaussianProcess:
    """A plain Matern-5/2 GP on the same data, same lengthscale, outputscale 1 and noise (standardised y), no fit."""
    Z = torch.as_tensor(np.asarray(z, dtype=float)[:, None], dtype=DTYPE)  # (m, 1)
    theta = torch.tensor([np.log(lengthscale), 0.0], dtype=DTYPE)  # (2,) log lengthscale, log s
    gp = GaussianProcess(Matern52(1), config=GPConfig(noise=noise, lengthscale_prior=None))
    return gp.fit(Z, torch.as_tensor(y, dtype=DTYPE), theta=theta)


def eq9_explorer(z: np.ndarray | None = None, scores: np.ndarray | None = None, labels: list[str] | None = None, *,
                 grid: int = 400, xlabel: str = "z (a 1-D soft prompt)") -> Explorer:
    """The instruction-coupled kernel (paper eq. 9) in one dimension: ``k(z, z') = s l(z, Z) L^-1 S L^-1 l(Z, z')``.

    z (m,): evaluated soft prompts; scores (m, n): their instructions' per-example scores (y = the row means);
    default :func:`toy_eq9`. ``S = matern52(scores, scores, S-lengthscale)``, as the authors' code builds it; ``l`` is
    a Matern-5/2 with the latent lengthscale. Sliders (they act on release): the latent lengthscale, the S
    lengthscale (small: S is the identity but for equal score vectors; large: every instruction alike) and the noise
    variance (a share of y's variance: y is standardised, outputscale s = 1). A checkbox adds a plain Matern-5/2 GP
    with the same lengthscale and noise. ``state`` holds S, ``K`` (eq. 9 computed the long way on the data, over s:
    equal to S up to jitter), the curves drawn, and the number of redraws.
    """
    if z is None or scores is None:
        z, scores, labels = toy_eq9()
    z, F = np.asarray(z, dtype=float), np.asarray(scores, dtype=float)  # (m,), (m, n)
    if F.ndim != 2 or F.shape[0] != z.shape[0]:
        raise ValueError(f"scores must be (m, n) with one row per soft prompt, got {F.shape} for {z.shape[0]} points")
    labels = list(labels) if labels is not None else [str(i + 1) for i in range(len(z))]
    y = F.mean(1)  # (m,) each instruction's mean score
    Ft = torch.as_tensor(F, dtype=DTYPE)  # (m, n)
    lo, hi = min(float(z.min()), -1.0), max(float(z.max()), 1.0)
    t = np.linspace(lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo), grid)  # (grid,) wider than the box: where k fades
    tt = torch.as_tensor(t[:, None], dtype=DTYPE)  # (grid, 1)
    w: dict[str, W.Widget] = {
        "latent_lengthscale": log_slider("l lengthscale (z)", 0.3, -1.5, 0.3),
        "similarity_lengthscale": log_slider("S lengthscale", 1.0, -1.0, 1.5),
        "noise": log_slider("noise / var(y)", 1e-3, -5.0, -0.3),
        "plain": W.Checkbox(value=True, description="plain Matern GP for contrast", indent=False),
        "readout": W.HTML(),
    }
    image, output = W.Image(format="png"), W.Output()
    fig = Figure(figsize=(11.0, 5.6))
    state: dict[str, Any] = {"n_redraws": 0}

    def compute() -> None:
        """S from the score vectors, eq. 9 conditioned on the data, and the curves on the grid."""
        ls, ls_s, nz = (float(w[k].value) for k in EQ9_SLIDERS)
        S = matern52(Ft, Ft, torch.tensor([ls_s], dtype=DTYPE))  # (m, m) the authors' S on score vectors
        gp = coupled_1d(z, y, S, ls, nz)
        plain = plain_1d(z, y, ls, nz)
        Zt = gp.Z_train_  # (m, 1)
        with torch.no_grad():
            K = torch.as_tensor(gp.kernel_matrices()[2]) / gp.kernel_parts_.outputscale  # (m, m) eq. 9 via L^-1, / s
            mean, var = gp.predict(tt)  # (grid,), (grid,)
            prior = gp.prior_variance(tt)  # (grid,) s w(z)^T S w(z), y's scale
            pm, pv = plain.predict(tt)  # (grid,), (grid,)
            sd_data = gp.predict(Zt)[1].sqrt()  # (m,) posterior sd at the evaluated points
        off = S[~torch.eye(len(S), dtype=torch.bool)]  # (m (m - 1),)
        state.update(latent_lengthscale=ls, similarity_lengthscale=ls_s, noise=nz, S=S.numpy(), K=K.numpy(),
                     K_err=float((K - S).abs().max()), mean=mean.numpy(), sd=var.sqrt().numpy(),
                     prior_sd=prior.sqrt().numpy(), plain_mean=pm.numpy(), plain_sd=pv.sqrt().numpy(),
                     sd_y=float(gp.y_std_), sd_data_max=float(sd_data.max()),
                     S_offdiag_median=float(off.median()) if off.numel() else float("nan"))
        w["readout"].value = (f"sd(y) = {state['sd_y']:.3f}; on the data: prior sd = sd(y) (k(z_i, z_i) = s S_ii), "
                              f"posterior sd at most <b>{state['sd_data_max']:.3g}</b>; "
                              f"max |K − S| = {state['K_err']:.1e}; median off-diagonal S = "
                              f"<b>{state['S_offdiag_median']:.2f}</b>")

    def draw() -> None:
        fig.clear()
        gs = fig.add_gridspec(2, 2, width_ratios=[2.6, 1], height_ratios=[1.5, 1])
        ax, ax2, ax3 = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[1, 0]), fig.add_subplot(gs[:, 1])
        mean, sd = state["mean"], state["sd"]
        ax.fill_between(t, mean - 2 * sd, mean + 2 * sd, color="C0", alpha=0.25, label="eq. 9 mean ± 2 sd")
        ax.plot(t, mean, color="C0", lw=2.5, label="eq. 9 posterior mean")
        if w["plain"].value:  # drawn on top: with little noise both means are the same interpolation (notebook 5)
            pm, ps = state["plain_mean"], state["plain_sd"]
            ax.plot(t, pm, color="C1", lw=1.3, ls="--", label="plain Matern mean")
            ax.plot(t, pm + 2 * ps, color="C1", lw=0.8, ls=":")
            ax.plot(t, pm - 2 * ps, color="C1", lw=0.8, ls=":", label="plain ± 2 sd")
        ax.scatter(z, y, color="k", s=28, zorder=3, label="evaluated")
        for zi, yi, name in zip(z, y, labels):
            ax.annotate(name, (zi, yi), textcoords="offset points", xytext=(3, 6), fontsize=9)
        ax.axvspan(-1, 1, color="0.93", zorder=0)
        ax.set_ylabel("mean score y")
        ax.set_title("posterior (grey: the box [-1, 1])", fontsize=10)
        ax.legend(fontsize=7, loc="lower left", ncols=2)
        ax2.plot(t, state["prior_sd"], color="C2", lw=2, label="eq. 9 prior sd  √k(z, z)")
        ax2.plot(t, sd, color="C0", lw=2, label="eq. 9 posterior sd")
        if w["plain"].value:
            ax2.axhline(state["sd_y"], color="C1", lw=1.2, ls="--", label="plain prior sd")
            ax2.plot(t, state["plain_sd"], color="C1", lw=1.2, ls=":", label="plain posterior sd")
        for zi in z:
            ax2.axvline(zi, color="0.75", lw=0.6, zorder=0)
        ax2.axvspan(-1, 1, color="0.93", zorder=0)
        ax2.set_xlabel(xlabel)
        ax2.set_ylabel("sd")
        ax2.legend(fontsize=7, loc="upper left", ncols=2)
        ax2.set_title("prior and posterior sd (grey lines: the evaluated z)", fontsize=10)
        im = ax3.imshow(state["S"], vmin=0, vmax=1, cmap="viridis")
        ax3.set_xticks(range(len(labels)), labels, fontsize=8)
        ax3.set_yticks(range(len(labels)), labels, fontsize=8)
        for i in range(len(labels)):
            for j in range(len(labels)):
                v = state["S"][i, j]
                ax3.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="k" if v > 0.6 else "w")
        ax3.set_title(f"S on the score vectors\n(lengthscale {state['similarity_lengthscale']:.3g})", fontsize=10)
        fig.colorbar(im, ax=ax3, fraction=0.046, pad=0.04)
        fig.tight_layout()
        image.value = png(fig)
        state["n_redraws"] += 1

    redraw_on([w[k] for k in (*EQ9_SLIDERS, "plain")], output, compute, draw)
    ui = W.VBox([W.HBox([W.VBox([w[k] for k in EQ9_SLIDERS]), w["plain"]]), w["readout"], image, output])
    ui.add_class("izkit-eq9-explorer")
    return Explorer(w, state, fig, image, output, ui, draw)
