"""The text explorers of notebooks 2 and 3: a straight walk in z and the instructions it writes; an instruction typed
in and its score on the dev examples.

- :func:`walk_explorer`: a slider ``t`` in [0, 1] moves along the straight line ``z(t) = z0 + t (z1 - z0)`` between
  two soft prompts in ``[-1, 1]^d``; a strip shows which instruction each step of the walk writes (InstructZero step 2,
  paper eq. 2), with the current ``t`` marked and its instruction written out. The walk is decoded once, in one batched
  generator call, when the explorer is built: moving the slider only redraws.
- :func:`instruction_box`: a text box (Enter submits) and the per-example scores of the typed instruction on the dev
  examples, with their mean (``H(v)``, paper eq. 1), beside fixed reference instructions (InstructZero step 3). Each
  instruction is scored once; the black box's own answer cache keeps the answers across sessions too.

Both return an :class:`izkit.course.explorer.Explorer`, drivable headless: set the slider's or the text box's ``.value`` and
read ``.state``. The first control of each is the one a student moves (the browser test drives it), and each top
container carries a CSS class (``izkit-walk-explorer``, ``izkit-instruction-box``) so a page can find it.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as W
import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

from izkit.course.explorer import SLIDER_LAYOUT, SLIDER_STYLE, Explorer, errors_to, png, redraw_on

WALK_CSS = "izkit-walk-explorer"
BOX_CSS = "izkit-instruction-box"
N_COLOURS = 20  # tab20: instructions beyond the 20th reuse a colour (their number still tells them apart)


def _short(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis; the empty string shown as such."""
    text = " ".join(text.split())
    if not text:
        return "(empty)"
    return text if len(text) <= width else text[: width - 1] + "…"


# ------------------------------------------------------------------------------------------------------ walk in z


def walk_points(z0: Any, z1: Any, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The walk's parameters t (steps,) evenly in [0, 1] and its soft prompts (steps, d) on the line from z0 to z1."""
    a = np.asarray(z0, dtype=np.float64).reshape(-1)  # (d,)
    b = np.asarray(z1, dtype=np.float64).reshape(-1)  # (d,)
    if a.shape != b.shape:
        raise ValueError(f"z0 and z1 must have the same length, got {a.shape[0]} and {b.shape[0]}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or max(np.abs(a).max(), np.abs(b).max()) > 1.0:
        raise ValueError("z0 and z1 must lie in the box [-1, 1]^d (then every point between them does too)")
    if steps < 2:
        raise ValueError(f"a walk needs at least 2 steps (its two ends), got {steps}")
    t = np.linspace(0.0, 1.0, steps)  # (steps,)
    return t, a + t[:, None] * (b - a)  # (steps,), (steps, d)


def walk_explorer(generator: Any, exemplars: Sequence[Any], z0: Any, z1: Any, steps: int = 17,
                  t: float = 0.0) -> Explorer:
    """A slider ``t`` along the straight line from ``z0`` to ``z1`` and the instruction written at each step.

    Args:
        generator: a :class:`izkit.generator.SoftPromptGenerator` (anything with ``generate(z (B, d), exemplars)``).
        exemplars: the demos the generator induces from.
        z0, z1: the two soft prompts (d,), in [-1, 1]^d.
        steps: points on the walk, ends included; all are decoded up front in one batched call.
        t: where the slider starts.

    ``state``: ``t`` (the walk's parameter at the slider), ``step`` (its index), ``instruction`` (written there),
    ``walk`` (the instruction at every step), ``distinct`` (each instruction once, in order of appearance), ``codes``
    (steps,) (which distinct instruction each step wrote), ``line`` (steps, d), ``n_redraws``.
    """
    t_grid, line = walk_points(z0, z1, steps)
    walk = list(generator.generate(torch.as_tensor(line), exemplars))  # one batched call: (steps,) instructions
    if len(walk) != steps:
        raise ValueError(f"the generator returned {len(walk)} instructions for {steps} soft prompts")
    distinct = list(dict.fromkeys(walk))
    codes = np.array([distinct.index(v) for v in walk])  # (steps,)
    flips = int(np.sum(codes[1:] != codes[:-1]))  # how often the instruction changes between neighbouring steps
    length = float(np.linalg.norm(line[-1] - line[0]))  # Euclidean length of the walk in z units

    dt = 1.0 / (steps - 1)
    w: dict[str, W.Widget] = {
        # the step is the walk's: every slider position is a decoded soft prompt
        "t": W.FloatSlider(value=float(np.clip(round(t / dt) * dt, 0.0, 1.0)), min=0.0, max=1.0, step=dt,
                           description="t (along the walk)", readout_format=".3f", continuous_update=False,
                           layout=SLIDER_LAYOUT, style=SLIDER_STYLE),
        "readout": W.HTML(),
    }
    image, output = W.Image(format="png"), W.Output()
    fig = Figure(figsize=(9.0, 2.9))
    state: dict[str, Any] = {"walk": walk, "distinct": distinct, "codes": codes, "line": line, "t_grid": t_grid,
                             "flips": flips, "n_redraws": 0}

    def compute() -> None:
        i = int(np.clip(round(float(w["t"].value) / dt), 0, steps - 1))
        state.update(t=float(t_grid[i]), step=i, instruction=walk[i], code=int(codes[i]))
        w["readout"].value = (f"t = {t_grid[i]:.3f}, step {i} of {steps - 1}: instruction <b>[{codes[i]}]</b> "
                              f"{html.escape(walk[i]) or '<i>(empty)</i>'}")

    def draw() -> None:
        fig.clear()
        ax, ax_text = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1.0, 1.1]})
        ax.scatter(t_grid, np.zeros(steps), c=codes % N_COLOURS, cmap="tab20", vmin=0, vmax=N_COLOURS - 1, s=300,
                   marker="s", zorder=2)
        for ti, c in zip(t_grid, codes):
            ax.text(ti, 0, str(c), ha="center", va="center", color="white", fontsize=9, weight="bold", zorder=3)
        for k in np.flatnonzero(codes[1:] != codes[:-1]):  # a flip lies between steps k and k + 1
            ax.axvline((t_grid[k] + t_grid[k + 1]) / 2, color="0.6", lw=0.8, ls=":", zorder=1)
        ax.plot([state["t"]], [0.62], marker="v", color="k", ms=11, zorder=4)
        ax.set_ylim(-0.8, 0.9)
        ax.set_xlim(-0.04, 1.04)
        ax.set_yticks([])
        ax.set_xlabel("t   (z = z0 + t (z1 - z0))", fontsize=9)
        ax.set_title(f"{len(distinct)} distinct instruction(s) along the walk, {flips} change(s) between "
                     f"neighbouring steps; walk length |z1 - z0| = {length:.2f}", fontsize=10)
        ax_text.axis("off")
        shown = textwrap.fill(state["instruction"] or "(empty)", width=95, max_lines=3, placeholder=" …")
        ax_text.scatter([0.012], [0.83], marker="s", s=220, transform=ax_text.transAxes, clip_on=False,
                        color=colormaps["tab20"](state["code"] % N_COLOURS))
        ax_text.text(0.012, 0.83, str(state["code"]), ha="center", va="center", color="white", fontsize=9,
                     weight="bold", transform=ax_text.transAxes)
        ax_text.text(0.04, 0.83, f"at t = {state['t']:.3f} (step {state['step']} of {steps - 1}) the generator "
                     f"writes instruction [{state['code']}]:", fontsize=10, weight="bold", va="center",
                     transform=ax_text.transAxes)
        ax_text.text(0.04, 0.6, shown, fontsize=10, va="top", family="monospace", transform=ax_text.transAxes)
        fig.tight_layout()
        image.value = png(fig)
        state["n_redraws"] += 1

    redraw_on([w["t"]], output, compute, draw)
    ui = W.VBox([w["t"], w["readout"], image, output])
    ui.add_class(WALK_CSS)
    return Explorer(w, state, fig, image, output, ui, draw)


# ------------------------------------------------------------------------------------------------ instruction box


def instruction_box(blackbox: Any, examples: Sequence[Any], metric: str = "em",
                    references: Mapping[str, str] | None = None, value: str = "", objective: str = "accuracy",
                    keep: int = 4) -> Explorer:
    """Type an instruction, press Enter, see its score on ``examples`` beside fixed reference instructions.

    Args:
        blackbox: the black box ``f`` (e.g. :class:`izkit.blackbox.LocalBlackBox`), anything with
            ``score(instructions, examples, metric=, objective=)`` returning a :class:`izkit.blackbox.ScoreResult`.
        examples: the dev examples to score on (E of them).
        metric: the task's metric for "accuracy".
        references: label -> instruction, drawn below the typed ones, e.g. ``{"hand-written": ..., "empty": ""}``.
        value: the text box's first instruction (scored when the box is built).
        objective: "accuracy" (the paper's) or "loglik".
        keep: how many typed instructions the figure keeps, the latest on top.

    ``state``: ``latest`` (the instruction last submitted), ``scored`` (instruction -> (scores (E,), answers)),
    ``tries`` (the typed instructions, latest last), ``n_scored`` (black-box calls made), ``n_redraws``.
    """
    examples = list(examples)
    refs = dict(references or {})
    w: dict[str, W.Widget] = {
        "instruction": W.Text(value=value, description="instruction", placeholder="type an instruction, press Enter",
                              continuous_update=False, layout=W.Layout(width="720px"),
                              style={"description_width": "80px"}),
        "readout": W.HTML(),
        "answers": W.HTML(),
    }
    image, output = W.Image(format="png"), W.Output()
    fig = Figure(figsize=(10.0, 0.42 * (keep + len(refs)) + 1.7))
    state: dict[str, Any] = {"scored": {}, "tries": [], "latest": None, "n_scored": 0, "n_redraws": 0}

    def score_new(instructions: list[str]) -> None:
        """Score the instructions not scored yet, in one black-box call."""
        todo = [v for v in dict.fromkeys(instructions) if v not in state["scored"]]
        if not todo:
            return
        result = blackbox.score(todo, examples, metric=metric, objective=objective)
        state["n_scored"] += 1
        for v, s, p in zip(todo, np.asarray(result.scores, dtype=float), result.predictions):
            state["scored"][v] = (s, list(p))

    def submit(text: str) -> None:
        v = text.strip()
        score_new([v, *refs.values()])
        if v in state["tries"]:
            state["tries"].remove(v)
        state["tries"] = (state["tries"] + [v])[-keep:]
        state["latest"] = v
        scores = state["scored"][v][0]
        state["mean"] = float(scores.mean())
        ref_text = ", ".join(f"{k} {state['scored'][r][0].mean():.2f}" for k, r in refs.items())
        w["readout"].value = (f"mean {objective} of <b>{html.escape(_short(v, 80))}</b> on {len(examples)} dev "
                              f"examples: <b>{state['mean']:.2f}</b>" + (f" (references: {ref_text})" if refs else ""))
        answers = state["scored"][v][1]
        rows = "".join(f"<tr><td>{html.escape(ex.input)}</td><td>{html.escape(str(ex.answers[0]))}</td>"
                       f"<td>{html.escape(a) if a else ('<i>(none)</i>' if objective == 'accuracy' else '')}</td>"
                       f"<td>{s:.2f}</td></tr>" for ex, a, s in zip(examples, answers, scores))
        w["answers"].value = ("<table><tr><th>input</th><th>gold</th><th>its answer</th><th>score</th></tr>"
                              f"{rows}</table>")

    def draw() -> None:
        fig.clear()
        ax, ax_bar = fig.subplots(1, 2, gridspec_kw={"width_ratios": [max(len(examples), 3), 4]})
        labels, grid, colours = [], [], []
        for v in reversed(state["tries"]):  # the latest on top
            mark = "▶ " if v == state["latest"] else "   "
            labels.append(mark + _short(v, 42))
            grid.append(state["scored"][v][0])
            colours.append("C0" if v == state["latest"] else "0.6")
        for k, r in refs.items():
            labels.append(f"{k}: {_short(r, 30)}" if r else f"{k}: (no instruction)")
            grid.append(state["scored"][r][0])
            colours.append("C1")
        g = np.vstack(grid)  # (rows, E)
        if objective == "accuracy":
            im = ax.imshow(g, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
        else:
            im = ax.imshow(g, cmap="viridis", aspect="auto")
        for (r, c), s in np.ndenumerate(g):
            ax.text(c, r, f"{s:.2g}" if objective != "accuracy" or s not in (0.0, 1.0) else ("✓" if s else "✗"),
                    ha="center", va="center", fontsize=8, color="k")
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xticks(range(len(examples)), [_short(ex.input, 12) for ex in examples], rotation=40, ha="right",
                      fontsize=8)
        ax.set_xlabel("dev example")
        ax.set_title(f"per-example {objective}", fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
        means = g.mean(axis=1)  # (rows,)
        y = np.arange(len(means))
        ax_bar.barh(y, means, color=colours)
        lo = 0.0 if objective == "accuracy" else min(0.0, float(means.min()) * 1.1)
        hi = 1.0 if objective == "accuracy" else max(0.0, float(means.max()) * 1.1)
        for yi, m in zip(y, means):  # the value at the panel's right edge, clear of the bars
            ax_bar.text(1.02, yi, f"{m:.2f}", va="center", fontsize=9, transform=ax_bar.get_yaxis_transform())
        ax_bar.set_xlim(lo, hi)
        ax_bar.set_ylim(len(means) - 0.5, -0.5)
        ax_bar.set_yticks([])
        ax_bar.set_xlabel(f"mean {objective} on {len(examples)} dev examples")
        ax_bar.set_title("mean H(v); blue: latest, orange: references", fontsize=10)
        fig.tight_layout()
        image.value = png(fig)
        state["n_redraws"] += 1

    def on_submit(change: dict[str, Any]) -> None:
        box = w["instruction"]
        with errors_to(output):
            box.disabled = True
            w["readout"].value = f"scoring <i>{html.escape(_short(str(change['new']), 80))}</i> …"
            try:
                submit(str(change["new"]))
                draw()
            finally:
                box.disabled = False

    w["instruction"].observe(on_submit, names="value")
    with errors_to(output):
        submit(value)
        draw()
    ui = W.VBox([w["instruction"], w["readout"], image, w["answers"], output])
    ui.add_class(BOX_CSS)
    return Explorer(w, state, fig, image, output, ui, draw)
