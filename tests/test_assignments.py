"""The assignments: student versions are exactly what the script writes, hold no solution code, and run up to their
first exercise, whose check then fails with a friendly "not implemented yet" message. (The solution notebooks are run
top to bottom, every check passing, by tests/test_notebooks.py.)"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "notebooks" / "make_student_versions.py"
SOURCES = sorted((REPO / "notebooks" / "assignments").glob("*.ipynb"))
STUDENT = REPO / "notebooks" / "assignments" / "student"


def _load_script():
    spec = importlib.util.spec_from_file_location("make_student_versions", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


msv = _load_script()


def _name(p: Path) -> str:
    return p.stem


def test_six_assignments_with_the_expected_exercises():
    names = {p.stem for p in SOURCES}
    assert {"a1_matern52", "a2_coupled_kernel", "a3_expected_improvement", "a4_bo_step", "a5_bo_vs_random",
            "a6_successive_halving"} <= names
    text = "".join(p.read_text() for p in SOURCES)
    for check in ("check_matern52", "check_coupled_kernel", "check_ei", "check_log_ei", "check_bo_step",
                  "check_best_test_score", "check_bo_vs_random", "check_halving_rungs", "check_answers_spent",
                  "check_most_candidates", "check_promote", "check_successive_halving"):
        assert f"{check}(" in text


@pytest.mark.parametrize("src", SOURCES, ids=_name)
def test_committed_student_version_is_exactly_what_the_script_writes(src):
    dest = STUDENT / src.name
    assert dest.is_file(), f"missing {dest}: run python notebooks/make_student_versions.py"
    assert dest.read_text() == msv.render(src), f"{dest} is stale: run python notebooks/make_student_versions.py"


def test_script_check_mode_agrees(capsys):
    assert msv.main(["--check"]) == 0
    assert sorted(p.name for p in STUDENT.glob("*.ipynb")) == sorted(p.name for p in SOURCES)


# Renders the given sources with the script at argv[1] in a fresh interpreter; prints {name: text} as JSON.
RENDER_IN_A_FRESH_PROCESS = """
import importlib.util, json, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("make_student_versions", sys.argv[1])
msv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(msv)
print(json.dumps({p.name: msv.render(p) for p in map(Path, sys.argv[2:])}))
"""


def _render_elsewhere(hash_seed: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    done = subprocess.run([sys.executable, "-c", RENDER_IN_A_FRESH_PROCESS, str(SCRIPT), *map(str, SOURCES)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_rendering_gives_the_same_bytes_in_every_process():
    """The script's promise: the same sources always give the same bytes, so a student version changes only when its
    source does. Rendering twice in one process could not show otherwise (same hash seed, same state); two fresh
    interpreters with other hash seeds, run later, must write what this one writes."""
    here = {p.name: msv.render(p) for p in SOURCES}
    for hash_seed in ("1", "2"):
        assert _render_elsewhere(hash_seed) == here, f"PYTHONHASHSEED={hash_seed} renders other bytes"


def _solution_lines(source: str) -> set[str]:
    inside, lines = False, set()
    for line in source.split("\n"):
        if line.strip() == msv.BEGIN:
            inside = True
        elif line.strip() == msv.END:
            inside = False
        elif inside and len(line.strip()) > 12:
            lines.add(line.strip())
    return lines


@pytest.mark.parametrize("src", SOURCES, ids=_name)
def test_student_version_holds_stubs_and_no_solution_code(src):
    source_nb = nbformat.read(src, as_version=4)
    student_nb = nbformat.read(STUDENT / src.name, as_version=4)
    assert len(student_nb.cells) == len(source_nb.cells)
    student_text = "\n".join(c.source for c in student_nb.cells)
    assert msv.BEGIN not in student_text and msv.END not in student_text
    solution = set().union(*(_solution_lines(c.source) for c in source_nb.cells))
    assert solution, f"{src.name} has no solution region"
    outside = {ln.strip() for c in source_nb.cells for ln in msv.strip_solutions(c.source, [], "x").split("\n")}
    leaked = {ln for ln in solution - outside if ln in student_text}
    assert not leaked, f"solution lines in the student version: {leaked}"
    n_regions = sum(c.source.count(msv.BEGIN) for c in source_nb.cells)
    assert student_text.count("raise NotImplementedError()") == n_regions
    assert "Student version" in student_nb.cells[0].source


def test_stubs_keep_the_indentation_and_bad_markers_are_named():
    src = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    assert msv.strip_solutions(src, msv.CODE_STUB, "nb") == (
        "def f(x):\n    '''doc'''\n    # YOUR CODE HERE\n    raise NotImplementedError()\n")
    with pytest.raises(msv.MarkerError, match="without an"):
        msv.strip_solutions("### BEGIN SOLUTION\nx = 1\n", msv.CODE_STUB, "nb, cell 3")
    with pytest.raises(msv.MarkerError, match="without a"):
        msv.strip_solutions("x = 1\n### END SOLUTION\n", msv.CODE_STUB, "nb, cell 3")
    with pytest.raises(msv.MarkerError, match="inside another"):
        msv.strip_solutions("### BEGIN SOLUTION\n### BEGIN SOLUTION\n", msv.CODE_STUB, "nb, cell 3")


@pytest.mark.parametrize("src", SOURCES, ids=_name)
def test_student_version_runs_to_its_first_check_and_that_check_fails_kindly(src, monkeypatch, tmp_path):
    if os.environ.get("IZKIT_SKIP_NOTEBOOKS") == "1":
        pytest.skip("IZKIT_SKIP_NOTEBOOKS=1")
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("IZKIT_FAST", "1")
    monkeypatch.setenv("IZKIT_RUNS", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    path = STUDENT / src.name
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    with pytest.raises(CellExecutionError) as info:
        client.execute()
    failed = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
              and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    first_check = next(i for i, c in enumerate(nb.cells)
                       if c.cell_type == "code" and re.search(r"\bcheck_\w+\(", c.source))
    assert failed == [first_check], f"expected the first check cell ({first_check}) to fail, got {failed}"
    error = next(o for o in nb.cells[first_check].outputs if o.get("output_type") == "error")
    assert error["ename"] == "CheckFailed"
    assert "not implemented yet" in error["evalue"] and "NotImplementedError" in error["evalue"]
    assert "not implemented yet" in str(info.value)
