"""The 1-D GP explorers of notebooks 4 and 6: kernel hyperparameters against the likelihood, and expected improvement.

- :func:`kernel_explorer`: lengthscale, outputscale and noise sliders over a Matern-5/2 GP; the title shows the log
  marginal likelihood (Rasmussen & Williams eq. 2.30), so the fitted values can be seen to be its maximum.
- :func:`ei_explorer`: incumbent ("best") and exploration (``xi``) sliders over expected improvement (paper eq. 10),
  with its maximiser marked.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from izkit.acquisition import expected_improvement, log_expected_improvement
from izkit.explorer import Explorer, log_slider, png, slider
from izkit.gp import GaussianProcess, GPConfig
from izkit.kernels import DTYPE, Matern52, matern52

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

    def on_change(_: dict[str, Any]) -> None:
        if state["holding"]:  # "Fit" is moving all three sliders: redraw once, after the last
            return
        with output:
            compute()
            draw()

    def on_fit(_: W.Button) -> None:
        state["holding"] = True
        try:
            for k in HYPERPARAMETERS:
                w[k].value = fit[k]
        finally:
            state["holding"] = False
        on_change({})

    for k in HYPERPARAMETERS:
        w[k].observe(on_change, names="value")
    w["fit"].on_click(on_fit)
    compute()
    draw()
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

    def on_change(_: dict[str, Any]) -> None:
        with output:
            compute()
            draw()

    for k in ("best", "xi", "log"):
        w[k].observe(on_change, names="value")
    compute()
    draw()
    ui = W.VBox([W.HBox([W.VBox([w["best"], w["xi"]]), w["log"]]), w["readout"], image, output])
    return Explorer(w, state, fig, image, output, ui, draw)
