"""Write the student versions of the assignments: every solution replaced by a stub, deterministically.

The source notebooks ``notebooks/assignments/*.ipynb`` hold the solutions between nbgrader's markers::

    ### BEGIN SOLUTION
    ...the solution...
    ### END SOLUTION

This script writes ``notebooks/assignments/student/<same name>.ipynb`` with each marked region replaced, at the
marker's indentation, by nbgrader's stub (``# YOUR CODE HERE`` / ``raise NotImplementedError()``; in Markdown cells
``YOUR ANSWER HERE``), outputs and execution counts cleared, and a line under the title saying what to do. The same
sources always give the same bytes, and the markers stay nbgrader-compatible, so ``nbgrader generate_assignment``
works on the sources too.

    python notebooks/make_student_versions.py          # (re)write the student versions
    python notebooks/make_student_versions.py --check  # exit 1 if a committed student version is out of date
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "assignments"
STUDENT = SOURCES / "student"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
MARKDOWN_STUB = ["YOUR ANSWER HERE"]
BANNER = ("*Student version: each exercise below raises `NotImplementedError` until you replace that line with your "
          "code. Run the check cell after it to see what is right and what is not.*")


class MarkerError(ValueError):
    """Unbalanced or nested solution markers; the message names the notebook and the cell."""


def strip_solutions(source: str, stub: list[str], where: str) -> str:
    """Replace every BEGIN/END SOLUTION region of one cell's source with the stub, at the BEGIN line's indentation."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.split("\n"), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise MarkerError(f"{where}, line {number}: {BEGIN} inside another solution region")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + s for s in stub)
        elif marker == END:
            if not inside:
                raise MarkerError(f"{where}, line {number}: {END} without a {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: {BEGIN} without an {END}")
    return "\n".join(out)


def student_version(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """A copy of the source notebook with solutions stubbed, outputs cleared and the banner under the title."""
    nb = copy.deepcopy(nb)
    found = 0
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i}"
        if BEGIN in cell.source:
            found += 1
            cell.source = strip_solutions(cell.source, CODE_STUB if cell.cell_type == "code" else MARKDOWN_STUB, where)
        elif END in cell.source:
            raise MarkerError(f"{where}: {END} without a {BEGIN}")
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    if not found:
        raise MarkerError(f"{name}: no {BEGIN} marker; is this an assignment?")
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    title, _, rest = first.source.partition("\n")
    first.source = f"{title}\n\n{BANNER}\n{rest}" if rest else f"{title}\n\n{BANNER}"
    return nb


def render(source_path: Path) -> str:
    """The student version of one source notebook, as the exact text written to disk."""
    nb = nbformat.read(source_path, as_version=4)
    student = student_version(nb, source_path.name)
    nbformat.validate(student)
    text = nbformat.writes(student)
    return text if text.endswith("\n") else text + "\n"


def sources() -> list[Path]:
    return sorted(SOURCES.glob("*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that the student versions are up to date")
    args = parser.parse_args(argv)
    stale = []
    for src in sources():
        dest = STUDENT / src.name
        text = render(src)
        if args.check:
            if not dest.is_file() or dest.read_text() != text:
                stale.append(dest)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
        print(f"wrote {dest.relative_to(HERE.parent)}")
    extra = sorted(set(p.name for p in STUDENT.glob("*.ipynb")) - set(p.name for p in sources()))
    if extra:
        print(f"student versions without a source (delete them): {', '.join(extra)}", file=sys.stderr)
        return 1
    if stale:
        print("out of date (run python notebooks/make_student_versions.py): "
              + ", ".join(str(p.relative_to(HERE.parent)) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
