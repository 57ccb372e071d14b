"""nbgrader grades the assignments as the teacher's page says: in a temporary copy of the course,
``nbgrader generate_assignment`` writes each released notebook, then ``nbgrader autograde`` gives the solutions full
marks and the released stubs zero, with the "not implemented yet" hint in the first graded cell.

Runs nbgrader's own command line (the venv's ``nbgrader``), in fast mode (``IZKIT_FAST=1``); the demos that load a
model are skipped while nbgrader grades (``NBGRADER_EXECUTION``), so no model is loaded. Set
``IZKIT_SKIP_NOTEBOOKS=1`` to skip the executions (the release checks still run).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
COURSE = REPO / "notebooks" / "assignments"
ASSIGNMENTS = sorted(p.name for p in (COURSE / "source").iterdir() if p.is_dir())
POINTS = {"a1_matern52": 6, "a2_coupled_kernel": 8, "a3_expected_improvement": 10, "a4_bo_step": 14,
          "a5_bo_vs_random": 10, "a6_successive_halving": 14}  # the grading table in notebooks/teacher/assignments.md
BIN = Path(sys.executable).parent  # nbgrader and alembic (which nbgrader runs) live beside this interpreter


def nbgrader(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run([str(BIN / "nbgrader"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    pytest.importorskip("nbgrader", reason="nbgrader is in the dev extras: bash setup.sh installs it")
    runs = tmp_path_factory.mktemp("runs")
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", IZKIT_FAST="1",
                IZKIT_RUNS=str(runs), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
                MPLBACKEND="module://matplotlib_inline.backend_inline")


@pytest.fixture(scope="module")
def released(tmp_path_factory, env) -> Path:
    """A copy of the course root with every assignment generated into release/."""
    root = tmp_path_factory.mktemp("course")
    shutil.copy(COURSE / "nbgrader_config.py", root)
    shutil.copytree(COURSE / "source", root / "source")
    for name in ASSIGNMENTS:
        nbgrader("generate_assignment", name, "--force", cwd=root, env=env)
    return root


@pytest.fixture(scope="module")
def graded(released, env) -> dict[str, dict[str, tuple[float, float]]]:
    """Autograde the solutions (student "solution") and the released stubs (student "stub"); their scores."""
    if os.environ.get("IZKIT_SKIP_NOTEBOOKS") == "1":
        pytest.skip("IZKIT_SKIP_NOTEBOOKS=1")
    from nbgrader.api import Gradebook

    for name in ASSIGNMENTS:
        for student, folder in (("solution", "source"), ("stub", "release")):
            dest = released / "submitted" / student / name
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(released / folder / name / f"{name}.ipynb", dest)
        nbgrader("autograde", name, cwd=released, env=env)
    scores: dict[str, dict[str, tuple[float, float]]] = {}
    with Gradebook(f"sqlite:///{released / 'gradebook.db'}") as gb:
        for name in ASSIGNMENTS:
            for student in ("solution", "stub"):
                sub = gb.find_submission(name, student)
                scores.setdefault(name, {})[student] = (float(sub.score), float(sub.max_score))
    return scores


def test_the_six_assignments_and_their_points():
    assert ASSIGNMENTS == sorted(POINTS)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_strips_solutions_and_hidden_tests(released, name):
    source = nbformat.read(COURSE / "source" / name / f"{name}.ipynb", as_version=4)
    release = nbformat.read(released / "release" / name / f"{name}.ipynb", as_version=4)
    text = "\n".join(c.source for c in release.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    assert "HIDDEN TESTS" in "\n".join(c.source for c in source.cells), f"{name} has no hidden tests"
    n_solutions = sum(c.source.count("### BEGIN SOLUTION") for c in source.cells)
    assert text.count("raise NotImplementedError()") == n_solutions
    inside = False
    for c in source.cells:  # no line of a solution reaches the release (beyond short or shared ones)
        for line in c.source.split("\n"):
            if "BEGIN SOLUTION" in line:
                inside = True
            elif "END SOLUTION" in line:
                inside = False
            elif inside and len(line.strip()) > 30 and not line.strip().startswith(('"""', "def ", "#")):
                assert line.strip() not in text, f"{name}: solution line in the release: {line.strip()}"
    grade = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert sum(c.metadata["nbgrader"]["points"] for c in grade) == POINTS[name]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solutions_get_full_marks(graded, name):
    score, max_score = graded[name]["solution"]
    assert max_score == POINTS[name], f"{name}: max score {max_score}, the teacher's table says {POINTS[name]}"
    assert score == max_score, f"{name}: the solution scored {score} of {max_score}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_released_stubs_get_zero_with_the_hint(graded, released, name):
    score, max_score = graded[name]["stub"]
    assert max_score == POINTS[name]
    assert score == 0, f"{name}: the released stub scored {score} of {max_score}"
    nb = nbformat.read(released / "autograded" / "stub" / name / f"{name}.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    errors = [o for o in first.outputs if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "CheckFailed", f"{name}: the first graded cell did not fail a check"
    assert "not implemented yet" in errors[0]["evalue"] and "NotImplementedError" in errors[0]["evalue"]
    assert re.search(r"check_\w+\(", first.source)
