"""What every notebook explorer is made of: the :class:`Explorer` handle, sliders, PNG figures, busy buttons, errors,
and :func:`redraw_on`, which recomputes an explorer's state and redraws its figure whenever one of its widgets moves.

An explorer is a few ipywidgets around one matplotlib Figure. The figure is drawn with the object-oriented API and
shown as PNG in an ``Image`` widget, so it works with the inline backend and needs no ``ipympl``. Sliders use
``continuous_update=False``: a callback runs once when the slider is released, not on every tick.
"""

from __future__ import annotations

import contextlib
import io
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as W
import numpy as np
from matplotlib.figure import Figure

SLIDER_LAYOUT = W.Layout(width="420px")
SLIDER_STYLE = {"description_width": "130px"}  # room for "best (incumbent)"


@dataclass
class Explorer:
    """An explorer's parts: widgets by name, the state its callbacks keep, the figure and where it is shown.

    Tests (and notebook cells) set a slider's ``.value`` or call a button's ``.click()`` and read ``.state``;
    ``.output`` holds what the callbacks printed and any error they met; a cell ending with the explorer shows ``.ui``.
    """

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


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes, for an ``Image`` widget."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def slider(description: str, value: float, lo: float, hi: float, step: float, fmt: str = ".2f") -> W.FloatSlider:
    """A linear slider that reports only on release."""
    return W.FloatSlider(value=value, min=lo, max=hi, step=step, description=description, readout_format=fmt,
                         continuous_update=False, layout=SLIDER_LAYOUT, style=SLIDER_STYLE)


def log_slider(description: str, value: float, lo_exp: float, hi_exp: float) -> W.FloatLogSlider:
    """A slider over [10^lo_exp, 10^hi_exp] on a log scale, for positive hyperparameters; value is clipped into it."""
    value = float(np.clip(value, 10.0**lo_exp, 10.0**hi_exp))
    return W.FloatLogSlider(value=value, base=10, min=lo_exp, max=hi_exp, step=0.02, description=description,
                            readout_format=".3g", continuous_update=False, layout=SLIDER_LAYOUT, style=SLIDER_STYLE)


@contextlib.contextmanager
def busy(button: W.Button, label: str) -> Iterator[None]:
    """Disable ``button`` and relabel it while slow work runs; give it back afterwards, even after an error."""
    idle = button.description
    button.disabled, button.description = True, label
    try:
        yield
    finally:
        button.disabled, button.description = False, idle


@contextlib.contextmanager
def errors_to(output: W.Output) -> Iterator[None]:
    """Run a callback's work inside ``output``; an error it raises is written there as text instead of escaping.

    In a live kernel ``with output:`` already shows the traceback there; headless (tests, scripts) it would escape
    into the widget's callback logger, so it is appended here, where the student and the tests both look.
    """
    try:
        with output:
            yield
    except Exception:  # noqa: BLE001 - whatever the model raised, show it under the explorer
        output.append_stderr(traceback.format_exc())


def redraw_on(widgets: Iterable[W.Widget], output: W.Output, compute: Callable[[], None], draw: Callable[[], None],
              held: Callable[[], bool] = lambda: False) -> Callable[[], None]:
    """Compute the state (and its readout) and draw the figure now, then again each time one of ``widgets`` changes
    value, an error there shown in ``output`` (:func:`errors_to`). Returns that update, for a button that moves several
    widgets at once: while ``held()`` is true a change does nothing, so the button calls the update once, after."""

    def update(_: object = None) -> None:
        if held():
            return
        with errors_to(output):
            compute()
            draw()

    for widget in widgets:
        widget.observe(update, names="value")
    compute()
    draw()
    return update
