"""The assignments' nbgrader sources: real nbgrader cell metadata (so that ``nbgrader generate_assignment`` accepts
them), solutions only in solution cells, checks only in locked cells, hidden tests only in graded ones, points that
match each notebook's own grading table, and a header and a summary. (tests/test_nbgrader.py releases and grades them
with nbgrader itself; tests/test_notebooks.py runs the solutions top to bottom.)"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
COURSE = REPO / "notebooks" / "assignments"
SOURCES = sorted((COURSE / "source").glob("*/*.ipynb"))
CHECKS = {"a1_matern52": ["check_matern52", "check_matern52"],  # values, then gradients
          "a2_coupled_kernel": ["check_score_similarity", "check_coupled_kernel"],
          "a3_expected_improvement": ["check_ei", "check_log_ei"],
          "a4_bo_step": ["check_gp_posterior", "check_bo_step"],
          "a5_bo_vs_random": ["check_best_test_score", "check_bo_vs_random"],
          "a6_successive_halving": ["check_halving_rungs", "check_answers_spent", "check_most_candidates",
                                    "check_promote", "check_successive_halving"]}


def _name(p: Path) -> str:
    return p.stem


def test_six_assignments_in_nbgraders_layout():
    assert [p.stem for p in SOURCES] == sorted(CHECKS)
    for p in SOURCES:
        assert p.parent.name == p.stem, f"{p}: nbgrader wants source/<assignment>/<notebook>.ipynb"
    assert (COURSE / "nbgrader_config.py").is_file()
    ignored = (COURSE / ".gitignore").read_text().split()
    for written in ("release/", "submitted/", "autograded/", "feedback/", "gradebook.db"):
        assert written in ignored
    assert not (COURSE / "student").exists() and not list(COURSE.glob("*.ipynb")), "the old layout is gone"


@pytest.mark.parametrize("src", SOURCES, ids=_name)
def test_nbgrader_metadata_is_valid(src):
    pytest.importorskip("nbgrader", reason="nbgrader is in the dev extras: bash setup.sh installs it")
    from nbgrader.nbgraderformat import MetadataValidator

    nb = nbformat.read(src, as_version=4)
    MetadataValidator().validate_nb(nb)  # raises on a grade cell without points, a duplicate grade_id, ...
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids))
    for c in nb.cells:
        meta = c.metadata.get("nbgrader")
        assert set(c.metadata) <= {"nbgrader"}, f"{src.name}: other cell metadata {set(c.metadata)}"
        if meta is not None:
            assert meta["schema_version"] == 3
            assert set(meta) <= {"grade", "solution", "locked", "points", "grade_id", "schema_version"}


@pytest.mark.parametrize("src", SOURCES, ids=_name)
def test_solutions_checks_and_hidden_tests_sit_in_the_right_cells(src):
    nb = nbformat.read(src, as_version=4)
    graded_checks = []
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if "### BEGIN SOLUTION" in c.source:
            assert meta.get("solution") and not meta.get("grade"), f"{src.name}: a solution outside a solution cell"
            assert c.source.count("### BEGIN SOLUTION") == c.source.count("### END SOLUTION")
        if "HIDDEN TESTS" in c.source:
            assert meta.get("grade") and meta.get("locked"), f"{src.name}: hidden tests outside a graded cell"
            assert c.source.count("### BEGIN HIDDEN TESTS") == c.source.count("### END HIDDEN TESTS") == 1
        if c.cell_type == "code" and re.search(r"\bcheck_\w+\(", c.source):
            assert meta.get("locked"), f"{src.name}: a check in a cell the student can edit:\n{c.source}"
            if meta.get("grade"):
                assert meta["points"] > 0
                graded_checks += re.findall(r"\b(check_\w+)\(", c.source.split("### BEGIN HIDDEN TESTS")[0])
    assert graded_checks == CHECKS[src.stem], f"{src.name}: graded checks {graded_checks}"


@pytest.mark.parametrize("src", SOURCES, ids=_name)
def test_header_table_summary_and_points_agree(src):
    nb = nbformat.read(src, as_version=4)
    head = nb.cells[0].source
    assert re.match(r"# A\d · ", head), "the title: '# A<n> · Title'"
    for part in ("**You will:**", "**Before this:**", "**Time:**", "**How it is graded**"):
        assert part in head, f"{src.name}: the header lacks {part}"
    total = int(re.search(r"\*\*total\*\* \| \*\*(\d+)\*\*", head).group(1))
    points = sum(c.metadata.get("nbgrader", {}).get("points", 0) for c in nb.cells)
    assert points == total, f"{src.name}: the cells carry {points} points, the table says {total}"
    rows = [int(m) for m in re.findall(r"^\| [\d.]+ [^|]*\|[^|]*\| (\d+) \|$", head, flags=re.M)]
    assert sum(rows) == total
    assert nb.cells[-1].source.startswith("## Summary") and nb.cells[-1].source.count("\n- ") == 3
    text = "\n".join(c.source for c in nb.cells)
    assert "bench/out/" not in text.replace("it writes `bench/out/selection.md`", ""), "a git-ignored file"


def test_a4_runs_on_the_students_own_functions():
    """The chain a1 -> a4: a4's solution cells bring in matern52, score_similarity, coupled_kernel and ei, and its
    BO step uses them, not izkit's."""
    nb = nbformat.read(COURSE / "source" / "a4_bo_step" / "a4_bo_step.ipynb", as_version=4)
    pasted = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "a4_paste")
    for fn in ("def matern52", "def score_similarity", "def coupled_kernel", "def ei"):
        assert fn in pasted
    step = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "a4_bo_step")
    for call in ("score_similarity(", "coupled_kernel(", "gp_posterior(", "ei("):
        assert call in step
    assert "izkit" not in step
