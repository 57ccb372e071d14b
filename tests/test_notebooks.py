"""The course notebooks and the assignment solutions run top to bottom in a fresh kernel, in fast mode.

Each notebook is executed with nbclient in its own folder, with ``IZKIT_FAST=1`` (fewer instructions and answers, same
code path), ``IZKIT_RUNS`` pointing at one temporary folder for the session (no notebook reads another's run; notebooks
5, 6, 8 and 9 read the archived study) and one BLAS/OpenMP thread unless the caller set ``OMP_NUM_THREADS`` (on a shared
2-core machine two threads made generation ten times slower than one). Per-notebook times go to
``bench/out/notebook_times.md``.
Set ``IZKIT_NB_FIGS=/some/dir`` to save every PNG the notebooks display there, and ``IZKIT_SKIP_NOTEBOOKS=1`` to skip
the executions (the cleanliness test still runs).

Run one notebook by hand: ``python tests/test_notebooks.py notebooks/03_zero_shot_scoring.ipynb``. Full mode by hand,
one notebook after another (raise the 15-minute cell limit for notebook 7's searches and assignment 5's study):
``IZKIT_FAST=0 OMP_NUM_THREADS=2 IZKIT_CELL_TIMEOUT=7200 python tests/test_notebooks.py notebooks/0*.ipynb``.
"""

from __future__ import annotations

import base64
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
COURSE = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((NOTEBOOKS / "assignments" / "source").glob("*/*.ipynb"))
TIMES_MD = REPO / "bench" / "out" / "notebook_times.md"
CELL_TIMEOUT = int(os.environ.get("IZKIT_CELL_TIMEOUT", "900"))  # seconds per cell (fast mode: the set takes minutes)
ALLOWED_NB_METADATA = {"kernelspec", "language_info"}

_times: dict[str, float] = {}


def execute(path: Path, figs: Path | None = None, timeout: int = CELL_TIMEOUT) -> tuple[nbformat.NotebookNode, float]:
    """Run a notebook top to bottom in a fresh python3 kernel in its own folder; return it and the seconds taken.

    The kernel inherits this process's environment (set IZKIT_FAST etc. before calling). PNG outputs are written to
    ``figs`` when given, named after the notebook and the cell.
    """
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    if figs is not None:
        figs.mkdir(parents=True, exist_ok=True)
        for i, cell in enumerate(nb.cells):
            k = 0
            for out in cell.get("outputs", []):
                png = out.get("data", {}).get("image/png")
                if png:
                    (figs / f"{path.stem}-cell{i:02d}-{k}.png").write_bytes(base64.b64decode(png))
                    k += 1
    return nb, seconds


def cell_text(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell printed (streams and plain-text results)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
    return "".join(parts)


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session", autouse=True)
def _report_times():
    yield
    if not _times:
        return
    TIMES_MD.parent.mkdir(parents=True, exist_ok=True)
    lines = ["| notebook | seconds (IZKIT_FAST=1) |", "|---|---|"]
    lines += [f"| {name} | {s:.0f} |" for name, s in _times.items()]
    lines.append(f"| **total** | **{sum(_times.values()):.0f}** |")
    TIMES_MD.write_text("Notebook run times in fast mode, fresh kernel each, on this machine.\n\n" + "\n".join(lines)
                        + "\n")
    sys.stdout.write("\n" + "\n".join(lines) + "\n")


@pytest.fixture()
def notebook_env(monkeypatch, runs_dir):
    if os.environ.get("IZKIT_SKIP_NOTEBOOKS") == "1":
        pytest.skip("IZKIT_SKIP_NOTEBOOKS=1")
    monkeypatch.setenv("IZKIT_FAST", "1")
    monkeypatch.setenv("IZKIT_RUNS", str(runs_dir))
    monkeypatch.delenv("IZKIT_MODEL", raising=False)  # the course runs on the project's default models
    monkeypatch.delenv("IZKIT_DTYPE", raising=False)  # ... in the machine's default number format
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    if "OMP_NUM_THREADS" not in os.environ:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
    figs = os.environ.get("IZKIT_NB_FIGS")
    return Path(figs) if figs else None


def _id(p: Path) -> str:
    return str(p.relative_to(NOTEBOOKS))


def test_there_is_a_course_and_assignments():
    assert len(COURSE) == 9, [p.name for p in COURSE]
    assert len(SOLUTIONS) >= 4, [p.name for p in SOLUTIONS]


@pytest.mark.parametrize("path", COURSE + SOLUTIONS, ids=_id)
def test_notebook_runs_top_to_bottom(path, notebook_env):
    nb, seconds = execute(path, figs=notebook_env)
    _times[_id(path)] = seconds
    if path in SOLUTIONS:  # every check cell printed its success line
        calls = [c for c in nb.cells if c.cell_type == "code" and re.search(r"\bcheck_\w+\(", c.source)]
        assert calls, f"{path.name} calls no izkit.course.checks function"
        for c in calls:
            n = len(re.findall(r"\bcheck_\w+\(", c.source))
            assert cell_text(c).count("✓") == n, f"{path.name}: a check did not pass:\n{c.source}\n{cell_text(c)}"


def test_python3_kernel_is_this_interpreter(notebook_env, tmp_path):
    """nbclient's "python3" kernel runs the interpreter that runs the tests (the venv's), not some other python."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import sys, izkit; print(sys.executable); print(izkit.__file__)"))
    path = tmp_path / "which.ipynb"
    nbformat.write(nb, path)
    out, _ = execute(path, timeout=120)
    exe, pkg = cell_text(out.cells[0]).split()
    assert Path(exe).resolve() == Path(sys.executable).resolve()
    assert Path(pkg).resolve().is_relative_to(REPO)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.rglob("*.ipynb")), ids=_id)
def test_committed_notebook_is_clean(path):
    """No outputs, no execution counts, no widget state or other kernel-specific metadata (an assignment source keeps
    nbgrader's cell metadata: what it grades and for how many points); the fast switch first."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert set(nb.metadata) <= ALLOWED_NB_METADATA, f"extra notebook metadata: {set(nb.metadata) - ALLOWED_NB_METADATA}"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    graded = path.is_relative_to(NOTEBOOKS / "assignments" / "source")  # nbgrader's sources: its cell metadata only
    for cell in nb.cells:
        extra = {k: v for k, v in cell.get("metadata", {}).items() if not (graded and k == "nbgrader")}
        assert not extra, f"cell {cell.get('id')} has metadata {extra}"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {cell.get('id')} has outputs"
            assert cell.execution_count is None, f"cell {cell.get('id')} has an execution count"
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert 'FAST = os.environ.get("IZKIT_FAST", "0") == "1"' in first.source, "the first code cell must read IZKIT_FAST"
    assert ".ipynb_checkpoints" not in str(path)


if __name__ == "__main__":  # run notebooks by hand, in fast mode unless IZKIT_FAST is set
    os.environ.setdefault("IZKIT_FAST", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("IZKIT_RUNS", tempfile.mkdtemp(prefix="izkit-runs-"))
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    figs_dir = Path(os.environ["IZKIT_NB_FIGS"]) if os.environ.get("IZKIT_NB_FIGS") else None
    for arg in sys.argv[1:]:
        _, secs = execute(Path(arg).resolve(), figs=figs_dir)
        print(f"{arg}: {secs:.0f} s")
