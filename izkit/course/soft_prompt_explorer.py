"""The soft-prompt explorer: move a soft prompt z around the best one of a recorded run and read the run's GP there.

    mode "plane":  z = z_best + a u + b v     u, v: the top principal directions of the evaluated Z, or random
    mode "coords": z = (z_1, ..., z_d)        one slider per coordinate

Releasing a slider shows the GP's mean and sd of H(z) (the coupled kernel of paper eq. 9, or a plain Matern-5/2 to
compare) and redraws; a button writes the instruction at z (paper step 2, eq. 2) and another scores it on dev (step 3).
Only the buttons run a model. The pieces, top to bottom: :class:`ReplayModels` (the run's models, loaded on the first
click), :func:`plane_directions`, :class:`Plane`, :class:`GPChoice`, and :class:`SoftPromptExplorer` (widgets, one
method per callback, drawing), which :func:`soft_prompt_explorer` builds.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as W
import numpy as np
import torch
from matplotlib.figure import Figure

from izkit.course.explorer import Explorer, busy, errors_to, png, slider
from izkit.gp import GaussianProcess
from izkit.kernels import DTYPE
from izkit.methods import BY_NAME
from izkit.pipeline import Pipeline
from izkit.replay import Replay, replay
from izkit.surrogate import fit_gp

GenerateFn = Callable[[torch.Tensor], str]  # z (1, d) -> instruction
ScoreFn = Callable[[str], float]  # instruction -> mean dev score

WARN = "<span style='color:#a05000'>{}</span>"  # the colour of "this is not what you think" notes


class ReplayModels:
    """Generate and score instructions with the models a recorded run used, loaded on first use (not when built).

    :meth:`izkit.pipeline.Pipeline.from_record` rebuilds them from the record's header: the same projection A,
    exemplars, black box, metric and dev split; an instruction written here is the one the run would have written if
    the generator's decoding has not changed since the record was made (notebook 8 says how to check).
    """

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.pipeline: Pipeline | None = None
        self.splits: Any = None

    def load(self) -> Pipeline:
        """The run's pipeline, built on the first call."""
        if self.pipeline is None:
            self.pipeline, self.splits = Pipeline.from_record(self.replay.record.header)
        return self.pipeline

    def generate(self, z: torch.Tensor) -> str:
        """The instruction the run's generator writes for one soft prompt z (1, d), clipped to [-1, 1]."""
        p = self.load()
        return p.generator.generate(torch.as_tensor(z, dtype=torch.float32).clamp(-1, 1), p.exemplars)[0]

    def score(self, instruction: str) -> float:
        """The instruction's mean dev score under the run's objective."""
        p = self.load()
        res = p.blackbox.score([instruction], self.splits.dev, metric=p.metric, objective=self.replay.objective)
        return float(res.means[0])


def scored_evals(evals: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The evaluations that have a soft prompt and a score (the manual and APE baselines have no z)."""
    return [e for e in evals if e.get("z") is not None and e.get("mean") is not None]


def plane_directions(Z: np.ndarray, kind: str = "pca", seed: int = 0) -> np.ndarray:
    """Two orthonormal directions (2, d) in soft-prompt space: the top principal directions of Z (m, d), or random."""
    if kind not in ("pca", "random"):
        raise ValueError(f"directions must be 'pca' or 'random', got {kind!r}")
    if kind == "pca" and len(Z) >= 3:
        _, _, vt = np.linalg.svd(Z - Z.mean(0, keepdims=True), full_matrices=True)  # vt (d, d)
        return vt[:2]
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((Z.shape[1], 2)))  # (d, 2) orthonormal columns
    return q.T


def projected_scores(evals: Sequence[Mapping[str, Any]], direction: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """A 1-D view of a run: each soft prompt's coordinate along ``direction`` (default: the first principal
    direction) and its dev score, (t (m,), y (m,)) sorted by t. The other directions still vary: expect noise."""
    rows = scored_evals(evals)
    Z = np.array([e["z"] for e in rows], dtype=float)  # (m, d)
    y = np.array([e["mean"] for e in rows], dtype=float)  # (m,)
    u = plane_directions(Z, "pca")[0] if direction is None else np.asarray(direction, dtype=float)  # (d,)
    t = (Z - Z.mean(0)) @ u  # (m,)
    order = np.argsort(t)
    return t[order], y[order]


class Plane:
    """The plane ``z_best + a u + b v`` with a, b in [-span, span], and a grid x grid lattice on it for the maps."""

    def __init__(self, z_best: np.ndarray, U: np.ndarray, span: float, grid: int) -> None:
        self.z_best, self.U, self.span, self.grid = z_best, U, span, grid  # (d,), (2, d)
        ticks = np.linspace(-span, span, grid)  # (g,)
        self.A, self.B = np.meshgrid(ticks, ticks)  # (g, g) each
        self.points = self.at(self.A.reshape(-1, 1), self.B.reshape(-1, 1))  # (g*g, d)
        self.inside = (np.abs(self.points) <= 1.0).all(1).reshape(grid, grid)  # (g, g) inside the box [-1, 1]^d

    @staticmethod
    def span_for(Z: np.ndarray, z_best: np.ndarray, U: np.ndarray) -> float:
        """A span that shows every evaluated soft prompt's projection with a margin, rounded up, within [1, 4]."""
        reach = float(np.abs((Z - z_best) @ U.T).max())  # how far the evaluated points project on the plane
        return float(np.clip(np.ceil(10 * 1.1 * reach) / 10, 1.0, 4.0))

    def at(self, a: Any, b: Any) -> np.ndarray:
        """The soft prompt(s) at plane coordinates (a, b)."""
        return self.z_best + a * self.U[0] + b * self.U[1]

    def project(self, Z: np.ndarray) -> np.ndarray:
        """Plane coordinates (m, 2) of soft prompts Z (m, d)."""
        return (Z - self.z_best) @ self.U.T  # (m, 2)


class GPChoice:
    """GPs to choose from by name, each fitted on first use; predictions come back as numpy (mean, sd)."""

    def __init__(self, makers: Mapping[str, Callable[[], GaussianProcess]]) -> None:
        self.makers = dict(makers)
        self.fitted: dict[str, GaussianProcess] = {}

    @classmethod
    def given(cls, gps: Mapping[str, GaussianProcess]) -> GPChoice:
        """GPs fitted elsewhere, by name."""
        return cls({name: (lambda gp=gp: gp) for name, gp in gps.items()})

    @classmethod
    def for_run(cls, rep: Replay, method: str, evals: list[Mapping[str, Any]], seed: int) -> GPChoice:
        """The run's own GP (eq. 9 for InstructZero) and, beside InstructZero's, a plain Matern-5/2 on the same data."""
        if not (method in BY_NAME and BY_NAME[method].is_method):  # InstructZero (either allocation): eq. 9's GP
            return cls({"plain Matern-5/2": lambda: rep.gp(method)})
        return cls({"coupled (eq. 9)": lambda: rep.gp(method),
                    "plain Matern-5/2": lambda: fit_gp(list(evals), coupled=False, seed=seed)})

    @property
    def names(self) -> list[str]:
        return list(self.makers)

    def gp(self, name: str) -> GaussianProcess:
        if name not in self.fitted:
            self.fitted[name] = self.makers[name]()  # outside no_grad: the fit needs gradients
        return self.fitted[name]

    def predict(self, name: str, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean (n,) and sd (n,) of H at soft prompts X (n, d)."""
        gp = self.gp(name)
        with torch.no_grad():
            mean, var = gp.predict(torch.as_tensor(X, dtype=DTYPE))  # (n,), (n,)
        return mean.numpy(), var.clamp_min(0).sqrt().numpy()


class SoftPromptExplorer:
    """The explorer's pieces: the run's scored soft prompts, the GPs, the plane, the widgets and one method per
    callback. :meth:`explorer` hands out the :class:`izkit.course.explorer.Explorer` the notebooks and tests drive."""

    def __init__(self, rep: Replay, generate: GenerateFn | None, score: ScoreFn | None, *, method: str, mode: str,
                 directions: str, span: float | None, grid: int, gps: Mapping[str, GaussianProcess] | None,
                 seed: int) -> None:
        evals = scored_evals(rep.evals(method))
        if len(evals) < 2:
            raise ValueError(f"the run has {len(evals)} scored soft prompts for {method!r}; the explorer needs two or "
                             "more")
        if mode not in ("plane", "coords"):
            raise ValueError(f"mode must be 'plane' or 'coords', got {mode!r}")
        self.mode, self.directions, self.objective = mode, directions, rep.objective
        self.generate_fn, self.score_fn = generate, score
        self.Z = np.array([e["z"] for e in evals], dtype=float)  # (m, d)
        self.y = np.array([e["mean"] for e in evals], dtype=float)  # (m,)
        self.best = max(evals, key=lambda e: e["mean"])
        z_best = np.asarray(self.best["z"], dtype=float)  # (d,)
        U = plane_directions(self.Z, directions, seed)  # (2, d)
        self.plane = Plane(z_best, U, Plane.span_for(self.Z, z_best, U) if span is None else span, grid)
        self.gps = GPChoice.given(gps) if gps is not None else GPChoice.for_run(rep, method, evals, seed)
        self.maps: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # GP name -> (mean, sd) on the plane, (g, g) each
        self.figure = Figure(figsize=(10.5, 4.2) if mode == "plane" else (7.5, 3.6))
        self.image, self.output = W.Image(format="png"), W.Output()
        self.w = self.make_widgets()
        self.coords = [self.w[f"z{i}"] for i in range(len(z_best))] if mode == "coords" else []
        self.state: dict[str, Any] = {
            "z": z_best.copy(), "a": 0.0, "b": 0.0, "gp": self.w["gp"].value, "mean": None, "sd": None,
            "instruction": None, "instruction_z": None, "score": None, "n_generate": 0, "n_score": 0,
            "inside_box": True, "last_coord": 0, "directions": U, "z_best": z_best, "n_redraws": 0,
        }
        self.connect()
        self.refresh()

    # -- widgets ------------------------------------------------------------------------------------------------------

    def make_widgets(self) -> dict[str, W.Widget]:
        span, z_best = self.plane.span, self.plane.z_best
        w: dict[str, W.Widget] = {}
        if self.mode == "plane":
            w["a"] = slider("a (direction 1)", 0.0, -span, span, span / 50)
            w["b"] = slider("b (direction 2)", 0.0, -span, span, span / 50)
        else:
            w.update({f"z{i}": slider(f"z[{i}]", float(v), -1.0, 1.0, 0.02) for i, v in enumerate(z_best)})
        w["gp"] = W.ToggleButtons(options=self.gps.names, description="GP kernel", style={"description_width": "70px"})
        w["generate"] = W.Button(description="Generate instruction", button_style="primary", icon="pencil",
                                 layout=W.Layout(width="190px"))
        w["score"] = W.Button(description="Score on dev", icon="check", disabled=True, layout=W.Layout(width="140px"))
        w["reset"] = W.Button(description="Back to the best", icon="home", layout=W.Layout(width="150px"))
        w["readout"], w["instruction"] = W.HTML(), W.HTML()
        w["best"] = W.HTML(f"<b>Best of the run</b> ({self.objective} on dev {self.best['mean']:.3f}): "
                           f"<i>{html.escape(self.best['instruction'])}</i>")
        if self.generate_fn is None:
            w["generate"].layout.display = "none"
        if self.score_fn is None:
            w["score"].layout.display = "none"
        return w

    def sliders(self) -> list[W.FloatSlider]:
        return [self.w["a"], self.w["b"]] if self.mode == "plane" else self.coords

    def connect(self) -> None:
        for s in self.sliders():
            s.observe(self.on_move, names="value")
        self.w["gp"].observe(self.on_gp, names="value")
        self.w["generate"].on_click(self.on_generate)
        self.w["score"].on_click(self.on_score)
        self.w["reset"].on_click(self.on_reset)

    def layout(self) -> W.Widget:
        w = self.w
        if self.mode == "plane":
            controls = W.HBox([W.VBox(self.sliders()), W.VBox([w["gp"], w["reset"]])])
        else:  # ten sliders: the toggles above them, and as many columns of sliders as the page has room for
            grid = W.GridBox(self.coords, layout=W.Layout(grid_template_columns="repeat(auto-fill, minmax(430px, 1fr))"))
            controls = W.VBox([W.HBox([w["gp"], w["reset"]]), grid])
        return W.VBox([w["best"], controls, w["readout"], W.HBox([w["generate"], w["score"]]), w["instruction"],
                       self.image, self.output])

    def explorer(self) -> Explorer:
        return Explorer(self.w, self.state, self.figure, self.image, self.output, self.layout(), self.draw)

    # -- callbacks ----------------------------------------------------------------------------------------------------

    def on_move(self, change: dict[str, Any]) -> None:
        """A slider was released: new z, new GP readout, redraw. Never generates."""
        if self.mode == "plane":
            self.state["a"], self.state["b"] = float(self.w["a"].value), float(self.w["b"].value)
        else:
            self.state["last_coord"] = self.coords.index(change["owner"])
        with self.output:
            self.refresh()

    def on_gp(self, change: dict[str, Any]) -> None:
        self.state["gp"] = change["new"]
        with self.output:
            self.update_readout()
            self.draw()

    def on_generate(self, _: W.Button) -> None:
        """Write the instruction at the current z (clipped into the box), a few seconds with a real model."""
        st = self.state
        with busy(self.w["generate"], "Generating..."), errors_to(self.output):
            z = torch.as_tensor(np.clip(st["z"], -1.0, 1.0)[None], dtype=DTYPE)  # (1, d)
            st["instruction"] = self.generate_fn(z)
            st.update(instruction_z=st["z"].copy(), score=None, n_generate=st["n_generate"] + 1)
            self.w["score"].disabled = self.score_fn is None
            self.show_instruction()

    def on_score(self, _: W.Button) -> None:
        """Score the instruction last generated on the run's dev split."""
        st = self.state
        if st["instruction"] is None or self.score_fn is None:
            return
        with busy(self.w["score"], "Scoring..."), errors_to(self.output):
            st["score"] = float(self.score_fn(st["instruction"]))
            st["n_score"] += 1
            self.show_instruction()

    def on_reset(self, _: W.Button) -> None:
        """Back to the best soft prompt: the sliders are set quietly, then one refresh rather than one per slider."""
        home = [0.0, 0.0] if self.mode == "plane" else self.plane.z_best
        for s, v in zip(self.sliders(), home):
            s.unobserve(self.on_move, names="value")
            s.value = float(v)
            s.observe(self.on_move, names="value")
        self.state["a"] = self.state["b"] = 0.0
        with self.output:
            self.refresh()

    # -- readouts -----------------------------------------------------------------------------------------------------

    def current_z(self) -> np.ndarray:
        if self.mode == "plane":
            return self.plane.at(self.state["a"], self.state["b"])
        return np.array([s.value for s in self.coords], dtype=float)

    def refresh(self) -> None:
        self.update_readout()
        self.show_instruction()
        self.draw()

    def update_readout(self) -> None:
        """The GP's mean and sd of H at the current z."""
        st, z = self.state, self.current_z()
        mean, sd = self.gps.predict(st["gp"], z[None])
        st.update(z=z, mean=float(mean[0]), sd=float(sd[0]), inside_box=bool((np.abs(z) <= 1.0).all()))
        outside = "(outside [-1, 1]^d, where the generator refuses z: Generate clips z into the box first)"
        box = "" if st["inside_box"] else " " + WARN.format(outside)
        self.w["readout"].value = (f"<b>z</b> = [{', '.join(f'{v:+.2f}' for v in z)}]{box}<br>"
                                   f"<b>GP</b> ({st['gp']}): mean {st['mean']:.3f}, sd {st['sd']:.3f} "
                                   f"({self.objective})")

    def show_instruction(self) -> None:
        """The instruction last generated and its score, flagged when it was written for an earlier z."""
        st = self.state
        if st["instruction"] is None:
            text = "<i>Press <b>Generate instruction</b> to run the generator at this soft prompt (a few seconds).</i>"
        else:
            text = f"<b>Instruction</b>: {html.escape(st['instruction'])}"
            if st["score"] is not None:
                text += f"<br><b>Score</b> ({self.objective} on dev): {st['score']:.3f}"
            if not np.allclose(st["instruction_z"], st["z"]):
                text += "<br>" + WARN.format("(for an earlier soft prompt; press Generate again)")
        self.w["instruction"].value = text

    # -- drawing ------------------------------------------------------------------------------------------------------

    def draw(self) -> None:
        self.figure.clear()
        if self.mode == "plane":
            self.draw_plane(self.state["gp"])
            self.figure.tight_layout(rect=(0, 0.06, 1, 1))
        else:
            self.draw_slice(self.state["gp"])
            self.figure.tight_layout()
        self.image.value = png(self.figure)
        self.state["n_redraws"] += 1

    def plane_maps(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The GP's mean and sd over the plane's grid, (g, g) each, computed once per GP."""
        if name not in self.maps:
            g = self.plane.grid
            mean, sd = self.gps.predict(name, self.plane.points)  # (g*g,) each
            self.maps[name] = (mean.reshape(g, g), sd.reshape(g, g))
        return self.maps[name]

    def draw_plane(self, name: str) -> None:
        """Two maps over the plane, GP mean and sd, with the evaluated points projected, the best and the current z."""
        fig, plane, s = self.figure, self.plane, self.plane.span
        extent = (-s, s, -s, s)
        mean, sd = self.plane_maps(name)
        P = plane.project(self.Z)  # (m, 2)
        fade = np.zeros((plane.grid, plane.grid, 4))  # (g, g, RGBA) a white veil over the grid outside the box
        fade[~plane.inside] = (1.0, 1.0, 1.0, 0.55)
        axes = fig.subplots(1, 2)
        panels = ((axes[0], mean, "GP mean", "viridis", f"mean of {self.objective}"),
                  (axes[1], sd, "GP standard deviation", "magma", f"sd of {self.objective}"))
        for ax, vals, title, cmap, label in panels:
            fig.colorbar(ax.imshow(vals, origin="lower", extent=extent, cmap=cmap, aspect="auto"), ax=ax, label=label)
            ax.imshow(fade, origin="lower", extent=extent, aspect="auto")
            if (~plane.inside).any() and plane.inside.any():
                ax.contour(plane.A, plane.B, plane.inside.astype(float), levels=[0.5], colors="0.3", linewidths=0.8,
                           linestyles="--")
            ax.scatter(P[:, 0], P[:, 1], s=14, c="white", edgecolors="k", linewidths=0.4, label="evaluated (projected)")
            ax.scatter([0], [0], marker="*", s=180, c="C3", edgecolors="k", linewidths=0.6, label="best")
            ax.scatter([self.state["a"]], [self.state["b"]], marker="X", s=110, c="C1", edgecolors="k",
                       linewidths=0.6, label="current z")
            ax.set_xlim(-s, s)
            ax.set_ylim(-s, s)
            ax.set_xlabel(f"a ({self.directions} direction 1)")
            ax.set_title(f"{title} ({name})", fontsize=10)
        axes[0].set_ylabel(f"b ({self.directions} direction 2)")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower left", ncols=3, fontsize=8, frameon=False)
        fig.text(0.99, 0.015, "faded, beyond the dashed line: outside the box [-1, 1]^d (the explorer clips z into it "
                 "before generating)",
                 ha="right", fontsize=8, color="0.35")

    def draw_slice(self, name: str) -> None:
        """The GP along the coordinate last moved, the others held at the current z."""
        i, z = self.state["last_coord"], self.current_z()
        t = np.linspace(-1, 1, 121)  # (121,)
        X = np.repeat(z[None], len(t), 0)  # (121, d)
        X[:, i] = t
        mean, sd = self.gps.predict(name, X)  # (121,) each
        ax = self.figure.subplots()
        ax.fill_between(t, mean - 2 * sd, mean + 2 * sd, color="C0", alpha=0.2, label="mean ± 2 sd")
        ax.plot(t, mean, color="C0", lw=2, label="GP mean")
        ax.scatter(self.Z[:, i], self.y, s=12, c="0.5", label="evaluated (other coordinates differ)")
        ax.axvline(z[i], color="C1", lw=1.5, label="current z")
        ax.set_xlabel(f"z[{i}] (the other coordinates held at the current z)")
        ax.set_ylabel(f"{self.objective} on dev")
        ax.set_title(f"A slice through the current soft prompt along z[{i}] ({name})", fontsize=10)
        ax.legend(fontsize=7, loc="best")


def soft_prompt_explorer(
    run: Replay | str | os.PathLike,
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
        run: a :class:`izkit.replay.Replay`, or a run folder / record path to replay.
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
        seed: seeds the random directions and the plain GP's restarts.
    """
    rep = replay(run) if isinstance(run, (str, os.PathLike)) else run
    if generate is None and score is None:
        models = ReplayModels(rep)
        generate, score = models.generate, models.score
    score_fn = score if callable(score) else None
    return SoftPromptExplorer(rep, generate, score_fn, method=method, mode=mode, directions=directions, span=span,
                              grid=grid, gps=gps, seed=seed).explorer()
