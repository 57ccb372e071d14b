"""The package's layout rules (issue "a house a teacher can read"): small files, imports that flow one way.

- no file in izkit/ is over 450 lines;
- no import cycle among izkit's modules, counting imports inside functions;
- no module of izkit/, bench/ or the notebooks uses a private name (``_x``) of another izkit module;
- the library never imports the command line.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "izkit"
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    """izkit module name -> file, packages as their __init__."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """(imported izkit module, names taken from it) for every import statement, also inside functions."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("izkit")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: resolve against this module's package
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            if base.startswith("izkit"):
                found.append((base, [a.name for a in node.names]))
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps = set()
        for target, names in _imports(ast.parse(path.read_text()), name, path.name == "__init__.py"):
            for cand in [f"{target}.{n}" for n in names] + [target]:  # `from izkit import plots` names a module
                if cand in mods and cand != name:
                    deps.add(cand)
                    break
        graph[name] = deps
    return graph


def test_no_file_in_the_package_is_over_450_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"


def test_no_import_cycle_inside_izkit():
    graph = _graph()
    # a package __init__ that re-exports its submodules is not a cycle with them
    graph = {m: {d for d in deps if not d.startswith(m + ".") and not m.startswith(d + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(d):] + [d]))
            if d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_the_library_never_imports_the_command_line():
    importers = sorted(m for m, deps in _graph().items() if "izkit.cli" in deps)
    assert importers == [], importers




def test_no_module_uses_a_private_name_of_another_izkit_module():
    bad = []
    for name, path in list(_modules().items()) + [(str(p.relative_to(ROOT)), p)
                                                  for p in sorted((ROOT / "bench").glob("*.py"))]:
        for target, names in _imports(ast.parse(path.read_text()), name, path.name == "__init__.py"):
            if target != name and not target.startswith(name + "."):
                bad += [f"{name}: {target}.{n}" for n in names if n.startswith("_") and n != "__version__"]
    for nb in sorted((ROOT / "notebooks").rglob("*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
        code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
        for target, names in _imports(ast.parse(code), "notebook", False):
            bad += [f"{nb.name}: {target}.{n}" for n in names if n.startswith("_") and n != "__version__"]
        for node in ast.walk(ast.parse(code)):  # gp._parts and the like: attributes private to izkit objects
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                bad.append(f"{nb.name}: .{node.attr}")
    assert not bad, bad


def test_no_strategy_takes_the_whole_run():
    """A strategy sees a Round (settings, generator, exemplars, its evaluations), never the loop's Run."""
    path = PACKAGE / "strategies.py"
    tree = ast.parse(path.read_text())
    imported = {t for t, _ in _imports(tree, "izkit.strategies", False)}
    assert "izkit.loop" not in imported
    proposers = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "propose"]
    assert len(proposers) >= 6  # the protocol and each method's strategy
    for fn in proposers:
        params = [a for a in fn.args.args if a.arg != "self"]
        assert [ast.unparse(a.annotation) for a in params] == ["Round"], f"line {fn.lineno}: propose takes {params}"


def test_resuming_is_answered_in_one_module():
    """The resume rules live in izkit.resume alone, and nothing imports back into loop.py to resume."""
    for name, path in _modules().items():
        text = path.read_text()
        for word in ("RESUME_MAY_CHANGE =", "def check_same_config", "def with_recorded_dtype", "def recorded_config",
                     "def check_resumable"):
            assert name == "izkit.resume" or word not in text, f"{name} defines {word!r}: that belongs to izkit.resume"
    assert "izkit.loop" not in _graph()["izkit.resume"]
    taken = {n for name, path in _modules().items()
             for target, names in _imports(ast.parse(path.read_text()), name, path.name == "__init__.py")
             if target == "izkit.loop" for n in names}
    assert taken <= {"run", "Run", "RunResult", "MethodResult"}, taken  # runs are run from loop.py; nothing else
