"""Interactive explorers for the notebooks (ipywidgets 8 + matplotlib), each drivable headless for tests.

- :func:`soft_prompt_explorer`: move a soft prompt ``z`` on a 2-D plane through the best soft prompt of a recorded run
  (PCA or random orthonormal directions) or coordinate by coordinate; the run's GP gives the mean and uncertainty of
  ``H(z)`` at once (paper eq. 9 kernel, or a plain Matern-5/2 for comparison); a button generates the instruction at
  ``z`` (paper step 2, eq. 2) and another scores it on the dev set (step 3). Slow work happens only on a click.
- :func:`kernel_explorer`: lengthscale, outputscale and noise sliders over a GP fitted to 1-D data; the title shows
  the log marginal likelihood (Rasmussen & Williams eq. 2.30) so the fitted values can be seen to be its maximum.
- :func:`ei_explorer`: incumbent ("best") and exploration (``xi``) sliders over expected improvement (paper eq. 10)
  on a 1-D GP, with its maximiser marked.

Each builder returns an :class:`Explorer`: ``.widgets`` (name -> widget), ``.state`` (what the callbacks computed),
``.figure`` (the matplotlib Figure, redrawn in place), ``.image`` (the widget showing it as PNG), ``.output`` (where
callbacks report errors) and ``.ui`` (the layout; a notebook cell that ends with the explorer displays it). Tests set a
slider's ``.value`` or call a button's ``.click()`` and read ``.state``. Sliders use ``continuous_update=False``, so a
callback runs once when the slider is released, not on every tick. Figures are drawn with the object-oriented API and
shown as PNG in an ``Image`` widget: they work with the inline backend, and ``ipympl`` is not needed.
"""

from __future__ import annotations

import html
import io
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as W
import numpy as np
import torch
from matplotlib.figure import Figure

from izkit.acquisition import expected_improvement, log_expected_improvement
from izkit.gp import GaussianProcess, GPConfig
from izkit.kernels import DTYPE, Matern52, matern52

GenerateFn = Callable[[torch.Tensor], str]  # z (1, d) -> instruction
ScoreFn = Callable[[str], float]  # instruction -> mean dev score

SLIDER_LAYOUT = W.Layout(width="420px")
SLIDER_STYLE = {"description_width": "110px"}


@dataclass
class Explorer:
    """An explorer's parts: widgets by name, the state its callbacks keep, the figure and where it is shown."""

    widgets: dict[str, W.Widget]
    state: dict[str, Any]
    figure: Figure
    image: W.Image
    output: W.Output
    ui: W.Widget
    redraw: Callable[[], None] = field(repr=False)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.ui)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _slider(description: str, value: float, lo: float, hi: float, step: float, fmt: str = ".2f") -> W.FloatSlider:
    return W.FloatSlider(value=value, min=lo, max=hi, step=step, description=description, readout_format=fmt,
                         continuous_update=False, layout=SLIDER_LAYOUT, style=SLIDER_STYLE)


def _log_slider(description: str, value: float, lo_exp: float, hi_exp: float) -> W.FloatLogSlider:
    value = float(np.clip(value, 10.0**lo_exp, 10.0**hi_exp))
    return W.FloatLogSlider(value=value, base=10, min=lo_exp, max=hi_exp, step=0.02, description=description,
                            readout_format=".3g", continuous_update=False, layout=SLIDER_LAYOUT, style=SLIDER_STYLE)


# ------------------------------------------------------------------------------------------- soft-prompt explorer


class ReplayModels:
    """Generate and score instructions for a recorded run, loading its models on first use (not when built).

    Rebuilds what the run used from its header: the generator with the same random projection ``A`` (same seed and
    kind), the same exemplars, and the same black box, objective, metric and dev split.
    """

    def __init__(self, replay: Any) -> None:
        self.replay = replay
        self._models: Any = None
        self._splits: Any = None
        self._task: Any = None

    def _load(self) -> Any:
        if self._models is None:
            import dataclasses

            from izkit.instructzero import Config, _Models
            from izkit.tasks import load_task

            names = {f.name for f in dataclasses.fields(Config)}
            cfg = Config.from_dict({k: v for k, v in self.replay.config.items() if k in names})
            self._task = load_task(cfg.task, root=cfg.root)
            self._splits = self._task.splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed)
            self._models = _Models(cfg, self._splits, self._task, self.replay.objective)
        return self._models

    def generate(self, z: torch.Tensor) -> str:
        """The instruction the run's generator writes for one soft prompt z (1, d) (clipped to [-1, 1])."""
        m = self._load()
        return m.generator.generate(torch.as_tensor(z, dtype=torch.float32).clamp(-1, 1), m.exemplars)[0]

    def score(self, instruction: str) -> float:
        """The instruction's mean dev score under the run's objective."""
        m = self._load()
        res = m.blackbox.score([instruction], self._splits.dev, metric=m.metric, objective=self.replay.objective)
        return float(res.means[0])


def plane_directions(Z: np.ndarray, kind: str = "pca", seed: int = 0) -> np.ndarray:
    """Two orthonormal directions (2, d) in soft-prompt space: the top principal directions of Z (m, d), or random."""
    d = Z.shape[1]
    if kind not in ("pca", "random"):
        raise ValueError(f"directions must be 'pca' or 'random', got {kind!r}")
    if kind == "pca" and len(Z) >= 3:
        _, _, vt = np.linalg.svd(Z - Z.mean(0, keepdims=True), full_matrices=True)  # vt (d, d)
        return vt[:2]
    g = np.random.default_rng(seed)
    q, _ = np.linalg.qr(g.standard_normal((d, 2)))  # (d, 2) orthonormal columns
    return q.T


def projected_scores(evals: Sequence[Mapping[str, Any]], direction: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """A 1-D view of a run: each soft prompt's coordinate along ``direction`` (default: the first principal
    direction), and its dev score. Returns (t (m,), y (m,)), sorted by t. Other directions still vary: expect noise."""
    rows = [e for e in evals if e.get("z") is not None and e.get("mean") is not None]
    Z = np.array([e["z"] for e in rows], dtype=float)  # (m, d)
    y = np.array([e["mean"] for e in rows], dtype=float)  # (m,)
    u = plane_directions(Z, "pca")[0] if direction is None else np.asarray(direction, dtype=float)  # (d,)
    t = (Z - Z.mean(0)) @ u  # (m,)
    order = np.argsort(t)
    return t[order], y[order]


def soft_prompt_explorer(
    run: Any,
    generate: GenerateFn | None = None,
    score: ScoreFn | None = None,
    *,
    method: str = "instructzero",
    mode: str = "plane",
    directions: str = "pca",
    span: float | None = None,
    grid: int = 41,
    gps: Mapping[str, GaussianProcess] | None = None,
    seed: int = 0,
) -> Explorer:
    """Explore the soft prompts of a recorded run around its best one.

    Args:
        run: a :class:`izkit.instructzero.Replay`, or a run folder / record path to replay.
        generate: z (1, d) -> instruction; default: the run's own generator (loaded on the first click).
        score: instruction -> mean dev score; default: the run's own black box and objective. ``None`` together with
            ``generate=None`` means "use the run's models"; pass ``score=False`` to hide scoring.
        method: whose evaluations and GP to show ("instructzero" or "matern").
        mode: "plane": two sliders (a, b) give ``z = z_best + a u + b v``; "coords": one slider per coordinate.
        directions: "pca" (the top two principal directions of the evaluated soft prompts) or "random".
        span: the plane's sliders run over [-span, span]; default: wide enough to show every evaluated soft prompt's
            projection (at least 1, at most 4).
        grid: grid points per side of the plane's maps.
        gps: GPs to choose from by name; default: the run's GP (coupled kernel, eq. 9, for "instructzero") and a
            plain Matern-5/2 GP on the same data (fitted when first chosen).
        seed: seeds the random directions.

    The GP maps are computed once per GP (instant afterwards); generation and scoring run only on a button click.
    """
    from izkit.instructzero import fit_gp, replay as _replay

    rep = _replay(run) if isinstance(run, (str, os.PathLike)) else run
    evals = [e for e in rep.evals(method) if e.get("z") is not None and e.get("mean") is not None]
    if len(evals) < 2:
        raise ValueError(f"the run has {len(evals)} scored soft prompts for {method!r}; the explorer needs two or more")
    if mode not in ("plane", "coords"):
        raise ValueError(f"mode must be 'plane' or 'coords', got {mode!r}")
    Z = np.array([e["z"] for e in evals], dtype=float)  # (m, d)
    y = np.array([e["mean"] for e in evals], dtype=float)  # (m,)
    d = Z.shape[1]
    best = max(evals, key=lambda e: e["mean"])
    z_best = np.asarray(best["z"], dtype=float)  # (d,)
    objective = rep.objective
    if generate is None and score is None:
        models = ReplayModels(rep)
        generate, score = models.generate, models.score
    score_fn = score if callable(score) else None

    # GPs by name: fitted lazily, predictions cached per GP
    coupled_name = "coupled (eq. 9)" if method == "instructzero" else "plain Matern-5/2"
    makers: dict[str, Callable[[], GaussianProcess]] = {}
    if gps is not None:
        makers = {k: (lambda g=g: g) for k, g in gps.items()}
    else:
        makers[coupled_name] = lambda: rep.gp(method)
        if method == "instructzero":
            makers["plain Matern-5/2"] = lambda: fit_gp(evals, coupled=False, seed=seed)
    fitted: dict[str, GaussianProcess] = {}

    def gp_named(name: str) -> GaussianProcess:
        if name not in fitted:
            fitted[name] = makers[name]()
        return fitted[name]

    def predict(name: str, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gp = gp_named(name)  # fitted outside no_grad: the fit needs gradients
        with torch.no_grad():
            mean, var = gp.predict(torch.as_tensor(X, dtype=DTYPE))  # (n,), (n,)
        return mean.numpy(), var.clamp_min(0).sqrt().numpy()

    U = plane_directions(Z, directions, seed)  # (2, d)
    if span is None:
        reach = float(np.abs((Z - z_best) @ U.T).max())  # how far the evaluated points project on the plane
        span = float(np.clip(np.ceil(10 * 1.1 * reach) / 10, 1.0, 4.0))
    ticks = np.linspace(-span, span, grid)  # (g,)
    A, B = np.meshgrid(ticks, ticks)  # (g, g) each
    plane = z_best + A.reshape(-1, 1) * U[0] + B.reshape(-1, 1) * U[1]  # (g*g, d)
    inside = (np.abs(plane) <= 1.0).all(1).reshape(grid, grid)  # (g, g)
    maps: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def plane_maps(name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in maps:
            mean, sd = predict(name, plane)
            maps[name] = (mean.reshape(grid, grid), sd.reshape(grid, grid))
        return maps[name]

    # widgets
    w: dict[str, W.Widget] = {}
    if mode == "plane":
        w["a"] = _slider("a (direction 1)", 0.0, -span, span, span / 50)
        w["b"] = _slider("b (direction 2)", 0.0, -span, span, span / 50)
        coord_sliders: list[W.FloatSlider] = []
    else:
        coord_sliders = [_slider(f"z[{i}]", float(z_best[i]), -1.0, 1.0, 0.02) for i in range(d)]
        for i, s in enumerate(coord_sliders):
            w[f"z{i}"] = s
    w["gp"] = W.ToggleButtons(options=list(makers), description="GP kernel", style={"description_width": "70px"})
    w["generate"] = W.Button(description="Generate instruction", button_style="primary", icon="pencil",
                             layout=W.Layout(width="190px"))
    w["score"] = W.Button(description="Score on dev", icon="check", disabled=True, layout=W.Layout(width="140px"))
    if score_fn is None:
        w["score"].layout.display = "none"
    w["reset"] = W.Button(description="Back to the best", icon="home", layout=W.Layout(width="150px"))
    w["readout"] = W.HTML()
    w["instruction"] = W.HTML()
    w["best"] = W.HTML(f"<b>Best of the run</b> ({objective} on dev {best['mean']:.3f}): "
                       f"<i>{html.escape(best['instruction'])}</i>")
    image, output = W.Image(format="png"), W.Output()
    fig = Figure(figsize=(10.5, 4.2) if mode == "plane" else (7.5, 3.6))

    state: dict[str, Any] = {
        "z": z_best.copy(), "a": 0.0, "b": 0.0, "gp": w["gp"].value, "mean": None, "sd": None,
        "instruction": None, "instruction_z": None, "score": None, "n_generate": 0, "n_score": 0,
        "inside_box": True, "last_coord": 0, "directions": U, "z_best": z_best, "n_redraws": 0,
    }

    def current_z() -> np.ndarray:
        if mode == "plane":
            return z_best + state["a"] * U[0] + state["b"] * U[1]
        return np.array([s.value for s in coord_sliders], dtype=float)

    def show_instruction() -> None:
        if state["instruction"] is None:
            text = "<i>Press <b>Generate instruction</b> to run the generator at this soft prompt (a few seconds).</i>"
        else:
            stale = not np.allclose(state["instruction_z"], state["z"])
            text = f"<b>Instruction</b>: {html.escape(state['instruction'])}"
            if state["score"] is not None:
                text += f"<br><b>Score</b> ({objective} on dev): {state['score']:.3f}"
            if stale:
                text += "<br><span style='color:#a05000'>(for an earlier soft prompt; press Generate again)</span>"
        w["instruction"].value = text

    def update_readout() -> None:
        z = current_z()
        mean, sd = predict(state["gp"], z[None])
        state.update(z=z, mean=float(mean[0]), sd=float(sd[0]), inside_box=bool((np.abs(z) <= 1.0).all()))
        box = "" if state["inside_box"] else " <span style='color:#a05000'>(outside [-1, 1]^d: generation " \
                                              "clips it to the box)</span>"
        w["readout"].value = (f"<b>z</b> = [{', '.join(f'{v:+.2f}' for v in z)}]{box}<br>"
                              f"<b>GP</b> ({state['gp']}): mean {state['mean']:.3f}, sd {state['sd']:.3f} "
                              f"({objective})")

    def draw() -> None:
        fig.clear()
        name = state["gp"]
        if mode == "plane":
            mean, sd = plane_maps(name)
            P = (Z - z_best) @ U.T  # (m, 2) evaluated points projected on the plane
            axes = fig.subplots(1, 2)
            for ax, vals, title, cmap in ((axes[0], mean, "GP mean", "viridis"),
                                          (axes[1], sd, "GP standard deviation", "magma")):
                im = ax.imshow(vals, origin="lower", extent=(-span, span, -span, span), cmap=cmap, aspect="auto")
                fig.colorbar(im, ax=ax, label=f"{title.split()[1]} of {objective}" if title == "GP mean"
                             else f"sd of {objective}")
                fade = np.zeros((grid, grid, 4))  # (g, g, RGBA) white veil over the points outside the box
                fade[~inside] = (1.0, 1.0, 1.0, 0.55)
                ax.imshow(fade, origin="lower", extent=(-span, span, -span, span), aspect="auto")
                if (~inside).any() and inside.any():
                    ax.contour(A, B, inside.astype(float), levels=[0.5], colors="0.3", linewidths=0.8,
                               linestyles="--")
                ax.scatter(P[:, 0], P[:, 1], s=14, c="white", edgecolors="k", linewidths=0.4,
                           label="evaluated (projected)")
                ax.scatter([0], [0], marker="*", s=180, c="C3", edgecolors="k", linewidths=0.6, label="best")
                ax.scatter([state["a"]], [state["b"]], marker="X", s=110, c="C1", edgecolors="k", linewidths=0.6,
                           label="current z")
                ax.set_xlim(-span, span)
                ax.set_ylim(-span, span)
                ax.set_xlabel(f"a ({directions} direction 1)")
                ax.set_title(f"{title} ({name})", fontsize=10)
            axes[0].set_ylabel(f"b ({directions} direction 2)")
            handles, labels = axes[0].get_legend_handles_labels()
            fig.legend(handles, labels, loc="lower left", ncols=3, fontsize=8, frameon=False)
            fig.text(0.99, 0.015, "faded, beyond the dashed line: outside the box [-1, 1]^d (generation clips z to it)",
                     ha="right", fontsize=8, color="0.35")
        else:
            i = state["last_coord"]
            t = np.linspace(-1, 1, 121)  # (121,)
            X = np.repeat(current_z()[None], len(t), 0)  # (121, d)
            X[:, i] = t
            mean, sd = predict(name, X)
            ax = fig.subplots()
            ax.fill_between(t, mean - 2 * sd, mean + 2 * sd, color="C0", alpha=0.2, label="mean ± 2 sd")
            ax.plot(t, mean, color="C0", lw=2, label="GP mean")
            ax.scatter(Z[:, i], y, s=12, c="0.5", label="evaluated (other coordinates differ)")
            ax.axvline(state["z"][i], color="C1", lw=1.5, label="current z")
            ax.set_xlabel(f"z[{i}] (the other coordinates held at the current z)")
            ax.set_ylabel(f"{objective} on dev")
            ax.set_title(f"A slice through the current soft prompt along z[{i}] ({name})", fontsize=10)
            ax.legend(fontsize=7, loc="best")
        fig.tight_layout(rect=(0, 0.06, 1, 1) if mode == "plane" else None)
        image.value = _png(fig)
        state["n_redraws"] += 1

    def on_move(change: dict[str, Any]) -> None:
        owner = change["owner"]
        if mode == "plane":
            state["a"], state["b"] = float(w["a"].value), float(w["b"].value)
        else:
            state["last_coord"] = coord_sliders.index(owner)
        with output:
            update_readout()
            show_instruction()
            draw()

    def on_gp(change: dict[str, Any]) -> None:
        state["gp"] = change["new"]
        with output:
            update_readout()
            draw()

    def on_generate(_: W.Button) -> None:
        w["generate"].disabled = True
        w["generate"].description = "Generating..."
        try:
            with output:
                z = torch.as_tensor(np.clip(state["z"], -1.0, 1.0)[None], dtype=DTYPE)  # (1, d)
                state["instruction"] = generate(z)
                state["instruction_z"] = state["z"].copy()
                state["score"] = None
                state["n_generate"] += 1
                w["score"].disabled = score_fn is None
                show_instruction()
        finally:
            w["generate"].disabled = False
            w["generate"].description = "Generate instruction"

    def on_score(_: W.Button) -> None:
        if state["instruction"] is None or score_fn is None:
            return
        w["score"].disabled = True
        w["score"].description = "Scoring..."
        try:
            with output:
                state["score"] = float(score_fn(state["instruction"]))
                state["n_score"] += 1
                show_instruction()
        finally:
            w["score"].disabled = False
            w["score"].description = "Score on dev"

    def on_reset(_: W.Button) -> None:
        if mode == "plane":
            with w["a"].hold_trait_notifications(), w["b"].hold_trait_notifications():
                w["a"].value, w["b"].value = 0.0, 0.0
            state["a"] = state["b"] = 0.0
        else:
            for s, v in zip(coord_sliders, z_best):
                s.unobserve(on_move, names="value")
                s.value = float(v)
                s.observe(on_move, names="value")
        with output:
            update_readout()
            show_instruction()
            draw()

    for s in ([w["a"], w["b"]] if mode == "plane" else coord_sliders):
        s.observe(on_move, names="value")
    w["gp"].observe(on_gp, names="value")
    w["generate"].on_click(on_generate)
    w["score"].on_click(on_score)
    w["reset"].on_click(on_reset)
    if generate is None:
        w["generate"].layout.display = "none"

    update_readout()
    show_instruction()
    draw()
    sliders = W.VBox([w["a"], w["b"]]) if mode == "plane" else W.GridBox(
        coord_sliders, layout=W.Layout(grid_template_columns="repeat(2, 430px)"))
    ui = W.VBox([
        w["best"], W.HBox([sliders, W.VBox([w["gp"], w["reset"]])]), w["readout"],
        W.HBox([w["generate"], w["score"]]), w["instruction"], image, output,
    ])
    return Explorer(w, state, fig, image, output, ui, draw)


# ------------------------------------------------------------------------------------------------ kernel explorer


def toy_1d(n: int = 8, noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy observations of a smooth 1-D function on [0, 1]: (x (n,), y (n,)), seeded."""
    g = np.random.default_rng(seed)
    x = np.sort(g.uniform(0.0, 1.0, n))  # (n,)
    y = np.sin(6.0 * x) + 0.5 * np.cos(14.0 * x) + noise * g.standard_normal(n)  # (n,)
    return x, y


def _fit_1d(x: np.ndarray, y: np.ndarray, standardize: bool, seed: int) -> GaussianProcess:
    X = torch.as_tensor(np.asarray(x, dtype=float)[:, None], dtype=DTYPE)  # (n, 1)
    cfg = GPConfig(standardize=standardize, lengthscale_prior=None, seed=seed)
    return GaussianProcess(Matern52(1), config=cfg).fit(X, torch.as_tensor(np.asarray(y, dtype=float)))


def _grid_for(x: np.ndarray, n: int) -> np.ndarray:
    lo, hi = float(np.min(x)), float(np.max(x))
    pad = 0.15 * max(hi - lo, 1e-3)
    return np.linspace(lo - pad, hi + pad, n)


def kernel_explorer(x: np.ndarray | None = None, y: np.ndarray | None = None, *, grid: int = 200,
                    seed: int = 0, xlabel: str = "x", ylabel: str = "y") -> Explorer:
    """Lengthscale, outputscale and noise sliders over a Matern-5/2 GP on 1-D data (x (n,), y (n,)).

    The sliders start at the maximum-likelihood fit (``izkit.gp.GaussianProcess.fit``, no prior, y not
    standardised so the sliders are in y's units); "Fit" goes back there. The left panel is the posterior
    (Rasmussen & Williams Alg. 2.1), the right one the kernel k(0, r) against distance; the title gives the log
    marginal likelihood (R&W eq. 2.30). Default data: :func:`toy_1d`.
    """
    if x is None or y is None:
        x, y = toy_1d(seed=seed)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    gp = _fit_1d(x, y, standardize=False, seed=seed)
    fit = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in gp.hyperparameters().items()}
    X = torch.as_tensor(x[:, None], dtype=DTYPE)  # (n, 1)
    Y = torch.as_tensor(y, dtype=DTYPE)  # (n,)
    t = _grid_for(x, grid)  # (grid,)
    T = torch.as_tensor(t[:, None], dtype=DTYPE)  # (grid, 1)

    w: dict[str, W.Widget] = {
        "lengthscale": _log_slider("lengthscale", fit["lengthscale"], -2.5, 1.0),
        "outputscale": _log_slider("outputscale", fit["outputscale"], -3.0, 2.0),
        "noise": _log_slider("noise variance", fit["noise"], -4.0, 0.5),
        "fit": W.Button(description="Fit (max likelihood)", icon="bullseye", layout=W.Layout(width="190px")),
        "readout": W.HTML(),
    }
    image, output = W.Image(format="png"), W.Output()
    fig = Figure(figsize=(10.0, 3.8))
    state: dict[str, Any] = {"fitted": dict(fit), "n_redraws": 0}

    def compute() -> None:
        ls, s, nz = (float(w[k].value) for k in ("lengthscale", "outputscale", "noise"))
        theta = torch.tensor([np.log(ls), np.log(s), np.log(nz)], dtype=DTYPE)  # (3,) log space, as the GP keeps it
        g = GaussianProcess(Matern52(1), config=GPConfig(standardize=False, lengthscale_prior=None))
        g.fit(X, Y, theta=theta)
        with torch.no_grad():
            mean, var = g.predict(T)
        state.update(lengthscale=ls, outputscale=s, noise=nz, lml=g.log_marginal_likelihood,
                     mean=mean.numpy(), sd=var.sqrt().numpy(), gp=g)
        w["readout"].value = (f"log marginal likelihood <b>{g.log_marginal_likelihood:.3f}</b> "
                              f"(at the fit: {gp.log_marginal_likelihood:.3f})")

    def draw() -> None:
        fig.clear()
        ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
        m, sd = state["mean"], state["sd"]
        ax.fill_between(t, m - 2 * sd, m + 2 * sd, color="C0", alpha=0.2, label="mean ± 2 sd (f)")
        ax.plot(t, m, color="C0", lw=2, label="posterior mean")
        ax.scatter(x, y, color="k", s=22, zorder=3, label="data")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"posterior; log marginal likelihood {state['lml']:.2f}", fontsize=10)
        ax.legend(fontsize=8, loc="best")
        r = np.linspace(0, 3 * max(state["lengthscale"], 1e-3), 200)  # (200,)
        ls = torch.tensor([state["lengthscale"]], dtype=DTYPE)  # (1,)
        k = state["outputscale"] * matern52(torch.zeros(1, 1, dtype=DTYPE), torch.as_tensor(r[:, None]), ls)[0]
        k = k.numpy()  # (200,) k(0, r)
        ax2.plot(r, k, color="C2", lw=2)
        ax2.axvline(state["lengthscale"], color="0.5", ls=":", lw=1)
        ax2.text(state["lengthscale"], 0.95 * k.max(), " lengthscale", fontsize=8, color="0.35", va="top")
        ax2.set_xlabel("distance |x - x'|")
        ax2.set_ylabel("k(x, x')")
        ax2.set_title("the kernel: outputscale x Matern-5/2", fontsize=10)
        fig.tight_layout()
        image.value = _png(fig)
        state["n_redraws"] += 1

    def on_change(_: dict[str, Any]) -> None:
        if state.get("holding"):
            return
        with output:
            compute()
            draw()

    def on_fit(_: W.Button) -> None:
        state["holding"] = True
        try:
            for k in ("lengthscale", "outputscale", "noise"):
                w[k].value = fit[k]
        finally:
            state["holding"] = False
        on_change({})

    for k in ("lengthscale", "outputscale", "noise"):
        w[k].observe(on_change, names="value")
    w["fit"].on_click(on_fit)
    compute()
    draw()
    ui = W.VBox([W.HBox([W.VBox([w["lengthscale"], w["outputscale"], w["noise"]]), w["fit"]]), w["readout"], image,
                 output])
    return Explorer(w, state, fig, image, output, ui, draw)


# ---------------------------------------------------------------------------------------------------- EI explorer


def ei_explorer(x: np.ndarray | None = None, y: np.ndarray | None = None, *, grid: int = 400, seed: int = 0,
                xlabel: str = "x", ylabel: str = "y") -> Explorer:
    """Incumbent and exploration sliders over expected improvement (paper eq. 10) on a 1-D GP fitted to (x, y).

    ``EI(x) = expected_improvement(mean(x), var(x), best + xi)``: raising "best" or ``xi`` asks for more improvement
    and moves the maximiser towards uncertain places. The maximiser on the grid is marked on both panels. A checkbox
    switches to log-EI (``izkit.acquisition.log_expected_improvement``). Default data: :func:`toy_1d`.
    """
    if x is None or y is None:
        x, y = toy_1d(seed=seed)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    gp = _fit_1d(x, y, standardize=True, seed=seed)
    t = _grid_for(x, grid)  # (grid,)
    with torch.no_grad():
        mean, var = gp.predict(torch.as_tensor(t[:, None], dtype=DTYPE))  # (grid,), (grid,)
    sd = var.clamp_min(0).sqrt()
    span = float(np.ptp(y)) or 1.0
    w: dict[str, W.Widget] = {
        "best": _slider("best (incumbent)", float(y.max()), float(y.min()) - 0.5 * span, float(y.max()) + span,
                        span / 100, ".3f"),
        "xi": _slider("xi (exploration)", 0.0, 0.0, span, span / 100, ".3f"),
        "log": W.Checkbox(value=False, description="log-EI", indent=False),
        "readout": W.HTML(),
    }
    image, output = W.Image(format="png"), W.Output()
    fig = Figure(figsize=(8.0, 5.2))
    state: dict[str, Any] = {"n_redraws": 0}

    def compute() -> None:
        target = torch.tensor(float(w["best"].value) + float(w["xi"].value), dtype=DTYPE)
        with torch.no_grad():
            ei = expected_improvement(mean, var, target)  # (grid,)
            log_ei = log_expected_improvement(mean, var, target)  # (grid,)
        i = int(torch.argmax(log_ei))  # the same argmax, without ties where EI underflows to 0
        state.update(best=float(w["best"].value), xi=float(w["xi"].value), ei=ei.numpy(), log_ei=log_ei.numpy(),
                     x_max=float(t[i]), ei_max=float(ei[i]), log_ei_max=float(log_ei[i]))
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
        vals = state["log_ei"] if w["log"].value else state["ei"]
        ax2.plot(t, vals, color="C1", lw=2)
        ax2.scatter([state["x_max"]], [state["log_ei_max"] if w["log"].value else state["ei_max"]], marker="*",
                    s=160, color="C1", edgecolors="k", zorder=3, label=f"maximiser x = {state['x_max']:.3f}")
        ax2.set_ylabel("log EI" if w["log"].value else "EI")
        ax2.set_xlabel(xlabel)
        ax2.legend(fontsize=8, loc="best")
        fig.tight_layout()
        image.value = _png(fig)
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
