"""The course as a student sees it: every notebook run in JupyterLab, in a real (headless) browser.

A JupyterLab server is started on 127.0.0.1 (a free port, a random token, ``--no-browser``) over a temporary folder
holding copies of the course notebooks, with the course's environment: ``IZKIT_FAST=1``, one ``IZKIT_RUNS`` folder for
the whole module (no notebook reads another's run), one OpenMP thread unless the caller set ``OMP_NUM_THREADS``, and
the project's default model and number format (``IZKIT_MODEL`` and ``IZKIT_DTYPE`` removed), as in test_notebooks.
Debian's Chromium, driven by Selenium through the system chromedriver, opens each notebook, clicks Run > Run All Cells,
waits until the kernel is idle and no cell shows ``[*]``, saves it (File > Save Notebook) and fails on any traceback,
any widget that did not render ("Error displaying widget", "Failed to load model class", a widget shown as plain text)
or any error output in the saved file. Then it does what a student does to each explorer (``EXPLORERS``): drags the
first slider of the walk in z (notebook 2), eq. 9 in one dimension (5), the soft-prompt explorer (8), the winner's
curse and the halving explorer (9), types an instruction into notebook 3's box, and checks that each figure is redrawn.
The first two tests check the checks on tiny generated notebooks (a slider from a front-end version JupyterLab does
not have, a traceback; a clean page with a working slider and a working text box), with no model.

Outputs, in bench/out/browser/ (git-ignored): one full-height screenshot per notebook (``01_tour.png`` ...), the
JupyterLab log and ``report.md`` (seconds per notebook, the slowest cells, every stderr output that was not an error).

Run it alone: ``.venv/bin/python -m pytest tests/test_browser.py`` (one notebook: ``-k 04_``). Needs ``apt-get install chromium chromium-driver`` (``.ci/run`` installs
them); without them the tests are skipped, except under ``CI``, where a missing browser fails.
``IZKIT_SKIP_NOTEBOOKS=1`` skips them all, as it skips the notebook executions of test_notebooks.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from browser_util import Lab, LabPage, browser_missing, cell_seconds, descendants, end_processes, start_chromium

REPO = Path(__file__).resolve().parents[1]
COURSE = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
OUT = REPO / "bench" / "out" / "browser"
# What a student does to each notebook's explorers, and the figure must follow: (CSS class of the explorer's box, or
# None for the first explorer of the notebook, and "slide" its first slider or "type" an instruction into its text box).
EXPLORERS = {
    "02_": [("izkit-walk-explorer", "slide")],         # the straight walk in z
    "03_": [("izkit-instruction-box", "type")],        # an instruction typed in, its score drawn
    "05_": [("izkit-eq9-explorer", "slide")],          # eq. 9 in one dimension
    "08_": [(None, "slide")],                          # the soft-prompt explorer
    "09_": [("izkit-curse-explorer", "slide"),         # the winner's curse
            ("izkit-halving-explorer", "slide")],      # successive halving's allocation
}
TYPED = "Write the opposite of the word."  # what the browser types into notebook 3's instruction box
NOTEBOOK_TIMEOUT = 1800  # seconds for one notebook's Run All; fast mode takes a few minutes at most on one thread

_report: dict[str, dict] = {}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def browser_ready():
    if os.environ.get("IZKIT_SKIP_NOTEBOOKS") == "1":
        pytest.skip("IZKIT_SKIP_NOTEBOOKS=1")
    missing = browser_missing()
    if missing:
        why = (f"no browser to test the notebooks in: missing {', '.join(missing)} "
               "(apt-get install chromium chromium-driver)")
        if _in_ci():
            pytest.fail(f"{why}; CI must run the browser test")
        pytest.skip(why)


def course_env(runs: Path) -> dict[str, str]:
    """The environment the kernels inherit: what test_notebooks sets for its nbclient runs."""
    env = dict(os.environ)
    env.update(IZKIT_FAST="1", IZKIT_RUNS=str(runs), MPLBACKEND="module://matplotlib_inline.backend_inline")
    env.pop("IZKIT_MODEL", None)  # the course runs on the project's default models ...
    env.pop("IZKIT_DTYPE", None)  # ... in the machine's default number format
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


@pytest.fixture(scope="module")
def lab(browser_ready, tmp_path_factory):
    base = tmp_path_factory.mktemp("browser")
    root = base / "root"
    root.mkdir()
    for nb in COURSE:
        shutil.copy(nb, root / nb.name)
    server = Lab(root, base / "state", course_env(base / "runs"), OUT / "jupyterlab.log").start()
    yield server
    left = server.stop()
    assert not left, f"processes outlived JupyterLab and had to be killed: {left}"


@pytest.fixture(scope="module")
def page(lab, tmp_path_factory):
    base = tmp_path_factory.mktemp("chromium")
    driver = start_chromium(base / "profile", base / "chromedriver.log")
    yield LabPage(driver, lab)
    tree = descendants(driver.service.process.pid) | {driver.service.process.pid}
    driver.quit()
    left = end_processes(tree)
    assert not left, f"browser processes outlived driver.quit() and had to be killed: {left}"


@pytest.fixture(scope="module", autouse=True)
def _write_report():
    yield
    if not _report:
        return
    lines = ["Notebooks run in JupyterLab in headless Chromium (tests/test_browser.py), IZKIT_FAST=1.", "",
             "| notebook | seconds (open + Run All) | screenshot height (px) |", "|---|---|---|"]
    lines += [f"| {name} | {r['seconds']:.0f} | {r['height']} |" for name, r in _report.items()]
    lines.append(f"| **total** | **{sum(r['seconds'] for r in _report.values()):.0f}** | |")
    for name, r in _report.items():
        lines += ["", f"## {name}", "", "slowest cells: " + ", ".join(f"cell {i} {s:.1f} s (`{src}`)"
                                                                    for i, s, src in r["cells"][:5])]
        if r["answered"]:
            lines.append(f"dialogs answered: {r['answered']}")
        if r["console"]:
            lines += ["", "browser console errors:", ""] + [f"- `{m}`" for m in r["console"]]
        for i, text in r["stderr"]:
            lines += ["", f"stderr of cell {i} ({len(text.splitlines())} lines):", "", "```",
                      "\n".join(text.splitlines()[:15]), "```"]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.md").write_text("\n".join(lines) + "\n")


def run_in_browser(page: LabPage, saved: Path, timeout: float) -> tuple[list[str], float]:
    """Open a notebook, run all its cells and save it; return what went wrong on the page and the seconds taken."""
    t0 = time.perf_counter()
    page.open(saved.name)
    page.run_all()
    page.wait_until_done(timeout)
    seconds = time.perf_counter() - t0
    page.save()
    return page.problems(saved), seconds


def tiny_notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nbformat.write(nb, path)
    return path


# A slider whose front end would be a version JupyterLab does not have: what a front-end version mismatch looks like.
WIDGET_FROM_THE_FUTURE = '''\
import ipywidgets as W
from traitlets import Unicode

class FromTheFuture(W.IntSlider):
    _model_module_version = Unicode("9.9.9").tag(sync=True)
    _view_module_version = Unicode("9.9.9").tag(sync=True)

FromTheFuture(description="broken")'''

# A slider that redraws a matplotlib figure in an Image widget when released, as the course's explorers do.
SLIDER_AND_IMAGE = '''\
import io
import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np

def png(freq):
    fig, ax = plt.subplots(figsize=(4, 2))
    x = np.linspace(0, 1, 200)
    ax.plot(x, np.sin(2 * np.pi * freq * x))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()

freq = W.FloatSlider(value=1.0, min=0.5, max=5.0, step=0.1, description="frequency", continuous_update=False)
image = W.Image(value=png(freq.value), format="png")
freq.observe(lambda change: setattr(image, "value", png(change["new"])), names="value")
W.VBox([freq, image])'''

# A text box that redraws its figure when Enter is pressed, in a box with a CSS class, as notebook 3's explorer does.
TEXT_AND_IMAGE = '''\
import io
import ipywidgets as W
import matplotlib.pyplot as plt

def text_png(text):
    fig, ax = plt.subplots(figsize=(4, 2))
    ax.bar([0], [len(text)])
    ax.set_title(text or "(empty)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()

text_box = W.Text(value="", continuous_update=False)
text_image = W.Image(value=text_png(""), format="png")
text_box.observe(lambda change: setattr(text_image, "value", text_png(change["new"])), names="value")
ui = W.VBox([text_box, text_image])
ui.add_class("tiny-text-explorer")
ui'''


def test_the_checks_catch_a_widget_that_cannot_render_and_a_traceback(lab, page):
    saved = tiny_notebook(lab.root / "broken_widget.ipynb", "print('hello')", "import ipywidgets as W\nW.IntSlider()",
                          WIDGET_FROM_THE_FUTURE, "raise ValueError('a deliberate error')")
    try:
        problems, _ = run_in_browser(page, saved, 300)
        page.screenshot(OUT / "check_broken_widget.png")
    finally:
        lab.shutdown_kernels()
    text = "\n".join(problems)
    assert "Failed to load model class 'IntSliderModel'" in text, problems
    assert "cell 2: a widget that failed to render" in text, problems
    assert "ValueError: a deliberate error" in text, problems
    assert not [p for p in problems if p.startswith(("cell 0", "cell 1"))], problems  # a print, a working slider


def test_the_checks_pass_a_clean_page_and_see_a_slider_and_a_text_box_redraw(lab, page):
    saved = tiny_notebook(lab.root / "clean_widget.ipynb", "print('hello')",
                          "import warnings\nwarnings.warn('a warning is not an error')", SLIDER_AND_IMAGE,
                          TEXT_AND_IMAGE)
    try:
        problems, _ = run_in_browser(page, saved, 300)
        assert problems == []
        assert [i for i, _ in page.stderr_texts()] == [1], page.stderr_texts()  # reported, not failed
        cell = page.explorer_cell()
        assert cell is not None, "the slider and its image did not render"
        moved = page.drag_slider(cell)
        assert moved["after"]["readout"] != moved["before"]["readout"], moved["after"]["readout"]
        assert moved["after"]["png"] != moved["before"]["png"], "the image was not redrawn after the slider moved"
        assert page.explorer_cell("no-such-explorer") is None
        box = page.explorer_cell("tiny-text-explorer")
        assert box is not None, "the text box and its image did not render"
        typed = page.submit_text(box, "typed by the browser")
        assert typed["after"]["png"] != typed["before"]["png"], "the image was not redrawn after Enter"
        assert page.problems(saved) == []
    finally:
        lab.shutdown_kernels()


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.stem)
def test_course_notebook_runs_in_jupyterlab(path, lab, page):
    saved = lab.root / path.name
    shot = OUT / f"{path.stem}.png"
    shot.unlink(missing_ok=True)
    try:
        problems, seconds = run_in_browser(page, saved, NOTEBOOK_TIMEOUT)
        height = page.screenshot(shot)
        _report[path.name] = {"seconds": seconds, "height": height, "cells": cell_seconds(saved),
                              "stderr": page.stderr_texts(), "answered": list(page.answered),
                              "console": page.console_errors()}
        page.answered.clear()
        for css, action in next((v for k, v in EXPLORERS.items() if path.name.startswith(k)), []):
            root = page.explorer_cell(css)
            assert root is not None, f"{path.name} shows no explorer {css or '(a slider and its figure)'}"
            if action == "type":
                moved = page.submit_text(root, TYPED)
            else:
                moved = page.drag_slider(root)
                assert moved["after"]["readout"] != moved["before"]["readout"], f"{css}: the slider did not move"
            assert moved["after"]["png"] != moved["before"]["png"], (
                f"{path.name}: the figure of {css or 'the first explorer'} did not change after the student's {action}")
            page.screenshot(OUT / f"{path.stem}-after-{css or 'explorer'}.png")
            problems += [p for p in page.problems() if p not in problems]
        assert not problems, f"{path.name} in JupyterLab:\n\n" + "\n\n".join(problems)
    except Exception:
        if not shot.exists():  # what the page looked like when it went wrong
            try:
                page.screenshot(OUT / f"{path.stem}-failed.png")
            except Exception:  # noqa: BLE001 (the original error matters more)
                pass
        raise
    finally:
        lab.shutdown_kernels()
