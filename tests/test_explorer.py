"""redraw_on (izkit.course.explorer): the one update every slider explorer runs when a widget moves."""

import ipywidgets as W

from izkit.course.explorer import redraw_on


def _counting(fail_at: int | None = None):
    calls = {"compute": 0, "draw": 0}

    def compute() -> None:
        calls["compute"] += 1
        if calls["compute"] == fail_at:
            raise RuntimeError("no such candidate")

    def draw() -> None:
        calls["draw"] += 1

    return calls, compute, draw


def test_redraw_on_draws_now_and_once_per_change_of_any_widget():
    a, b, out = W.IntSlider(value=1), W.IntSlider(value=1), W.Output()
    calls, compute, draw = _counting()
    redraw_on([a, b], out, compute, draw)
    assert calls == {"compute": 1, "draw": 1}
    a.value, b.value = 2, 3
    assert calls == {"compute": 3, "draw": 3}


def test_an_error_in_the_update_lands_in_the_output_and_the_figure_is_not_redrawn():
    a, out = W.IntSlider(value=1), W.Output()
    calls, compute, draw = _counting(fail_at=2)
    redraw_on([a], out, compute, draw)
    a.value = 2  # must not raise: a student's slider move shows the error under the explorer
    assert calls["draw"] == 1
    assert "no such candidate" in "".join(o.get("text", "") for o in out.outputs)


def test_held_changes_wait_for_the_returned_update():
    a, b, out = W.IntSlider(value=1), W.IntSlider(value=1), W.Output()
    calls, compute, draw = _counting()
    holding = {"on": False}
    update = redraw_on([a, b], out, compute, draw, held=lambda: holding["on"])
    holding["on"] = True
    a.value, b.value = 5, 6
    holding["on"] = False
    assert calls["draw"] == 1
    update()
    assert calls == {"compute": 2, "draw": 2}
