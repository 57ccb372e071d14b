"""Figures of a run, drawn from its record alone (no model needed), with matplotlib.

- :func:`best_so_far`: best dev score against black-box evaluations, every method on one axis;
- :func:`top_quantile_per_round`: the mean of the top 15% scores of each round (as the paper's Figure 5);
- :func:`soft_prompt_map`: the evaluated soft prompts in 2-D (PCA) coloured by score, the best of each round marked
  (as the paper's Figure 6);
- :func:`kernel_heatmaps`: ``L = l(Z, Z)``, the instruction similarity ``S`` and the coupled kernel ``K`` (paper eq. 9).

Each function takes what the record holds and returns the matplotlib Figure; none shows or saves it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from izkit.methods import BY_NAME, COLORS, label

Evals = Sequence[Mapping[str, Any]]  # eval lines of a record: method, round, z, instruction, mean, ...

METHOD_COLORS = COLORS  # one colour per method in every figure (izkit.methods); the name older cells import


def _by_method(evals: Evals) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for e in evals:
        out.setdefault(e["method"], []).append(e)
    return out


def _score(e: Mapping[str, Any]) -> float:
    return float("nan") if e.get("mean") is None else float(e["mean"])


def best_so_far(evals: Evals, objective: str = "", ax: plt.Axes | None = None) -> Figure:
    """Best search score so far against the black-box answers the search has spent, one line per method.

    An evaluation costs one answer per example it was scored on (``len(e["scores"])``): 20 with the paper's allocation,
    2 while a search with halving runs (whose later answers go to the promoted few, and are not on this axis). A
    single instruction (hand-written, manual) is a dotted level drawn over the searches, its examples in the legend."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6.4, 4.0))
    for method, rows in _by_method(evals).items():
        y = np.fmax.accumulate(np.array([_score(e) for e in rows]))  # (n,)
        x = np.cumsum([len(e.get("scores") or ()) or 1 for e in rows])  # (n,) answers spent after each evaluation
        name, color = label(method), COLORS.get(method)
        if len(y) == 1:  # above the searches' lines: under halving it often sits on one (0.5 on 2 examples)
            n = len(rows[0].get("scores") or ())
            ax.axhline(y[0], ls=":", lw=2.0, color=color or "grey", zorder=6,
                       label=f"{name} (on {n} examples)" if n else name)
        else:
            ls, lw, z = BY_NAME[method].line if method in BY_NAME else ("-", 1.6, 3)
            ax.step(np.r_[x, x[-1] + 1], np.r_[y, y[-1]], where="post", color=color, ls=ls, lw=lw, zorder=z,
                    label=name)
    ax.set_xlabel("black-box answers spent by the search")
    ax.set_ylabel(f"best search score so far ({objective})" if objective else "best search score so far")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def top_quantile_per_round(evals: Evals, method: str = "instructzero", quantile: float = 0.15,
                           objective: str = "") -> Figure:
    """Mean of the top ``quantile`` of scores in each round of one method (the paper's Figure 5)."""
    rows = [e for e in evals if e["method"] == method]
    rounds = sorted({int(e["round"]) for e in rows})
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    tops, alls = [], []
    for r in rounds:
        s = np.sort([_score(e) for e in rows if int(e["round"]) == r])[::-1]  # (n_r,) descending
        k = max(1, int(np.ceil(quantile * len(s))))
        tops.append(np.nanmean(s[:k]))
        alls.append(s)
    ax.boxplot(alls, positions=rounds, widths=0.5, showfliers=False, patch_artist=True,
               boxprops={"facecolor": "#dde6f0", "edgecolor": "#7a8a9a"}, medianprops={"color": "#7a8a9a"})
    ax.plot(rounds, tops, "o-", color="C3", lw=2, label=f"mean of the top {quantile:.0%}")
    ax.set_xticks(rounds, [("init" if r == 0 else str(r)) for r in rounds])
    ax.set_xlabel("round (init = Sobol points)")
    ax.set_ylabel(f"dev score ({objective})" if objective else "dev score")
    ax.set_title(f"{label(method)}: scores per round")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def pca_2d(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project points onto their first two principal components; returns (coords (n, 2), explained ratio (2,))."""
    Zc = Z - Z.mean(axis=0, keepdims=True)  # (n, d)
    _, s, vt = np.linalg.svd(Zc, full_matrices=False)  # s (min(n, d),), vt (min(n, d), d)
    var = s**2 / max((s**2).sum(), 1e-300)
    coords = Zc @ vt[:2].T  # (n, 2)
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
        var = np.pad(var, (0, 2 - len(var)))
    return coords, var[:2]


def soft_prompt_map(evals: Evals, method: str = "instructzero", objective: str = "") -> Figure:
    """The soft prompts of one method in 2-D (PCA), coloured by dev score; the best of each round is marked."""
    rows = [e for e in evals if e["method"] == method and e.get("z") is not None]
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    if len(rows) < 2:
        ax.text(0.5, 0.5, "fewer than two soft prompts to show", ha="center", va="center", transform=ax.transAxes)
        return fig
    Z = np.array([e["z"] for e in rows], dtype=float)  # (n, d)
    y = np.array([_score(e) for e in rows])  # (n,)
    rounds = np.array([int(e["round"]) for e in rows])  # (n,)
    xy, var = pca_2d(Z)  # (n, 2)
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=y, cmap="viridis", s=28, edgecolors="none")
    fig.colorbar(sc, ax=ax, label=f"dev score ({objective})" if objective else "dev score")
    near = 0.02 * float(np.ptp(xy, axis=0).max() or 1.0)  # best points closer than this share one star and label
    stars: list[tuple[np.ndarray, list[str]]] = []
    for r in np.unique(rounds):
        idx = np.where(rounds == r)[0]
        b = idx[np.nanargmax(y[idx])] if np.isfinite(y[idx]).any() else idx[0]
        name = "init" if r == 0 else f"r{r}"
        hit = next((s for s in stars if np.abs(s[0] - xy[b]).max() <= near), None)
        if hit is None:
            stars.append((xy[b], [name]))
        else:
            hit[1].append(name)
    right = xy[:, 0].max() - 0.15 * float(np.ptp(xy[:, 0]) or 1.0)  # labels near the right edge go to the left
    for (px, py), names in stars:
        ax.scatter(px, py, marker="*", s=220, color="C3", edgecolors="k", linewidths=0.6, zorder=3)
        left = px > right
        ax.annotate(", ".join(names), (px, py), textcoords="offset points", xytext=(-8 if left else 6, 6),
                    ha="right" if left else "left", fontsize=9)
    ax.set_xlabel(f"PC 1 ({var[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({var[1]:.0%} of variance)")
    ax.set_title(f"{label(method)}: soft prompts (star: best of each round)")
    fig.tight_layout()
    return fig


def kernel_heatmaps(L: np.ndarray, S: np.ndarray, K: np.ndarray, order: np.ndarray | None = None) -> Figure:
    """Heatmaps of ``L = l(Z, Z)``, ``S`` and ``K`` (paper eq. 9); ``order`` permutes the points (e.g. by score)."""
    mats = [np.asarray(m, dtype=float) for m in (L, S, K)]  # each (m, m)
    if order is not None:
        mats = [m[np.ix_(order, order)] for m in mats]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.9))
    titles = ["L = l(Z, Z): soft prompts", "S: instruction similarity", "K = l L^-1 S L^-1 l (eq. 9)"]
    for ax, m, title in zip(axes, mats, titles):
        im = ax.imshow(m, cmap="magma", interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("evaluation")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    axes[0].set_ylabel("evaluation")
    fig.tight_layout()
    return fig
