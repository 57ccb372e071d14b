"""The package's layout rules (issue "a house a teacher can read"): small files, imports that flow one way.

- no file in izkit/ is over 450 lines;
- no import cycle among izkit's modules, counting imports inside functions;
- no module of izkit/, bench/ or the notebooks uses a private name (``_x``) of another izkit module;
- bench/ has no top-level script, and its README names every script with its command;
- no module compares method names: it asks izkit.methods, the one table of methods;
- the library never imports the command line;
- every way to run (``izkit run``, ``izkit compare``, a Ray worker, the course's ``run``) resumes a record by the one
  rule of ``izkit.resume.plan_run``, checked by running each on a record in each state;
- following ``izkit run``'s settings from ``cli._cmd_run`` goes back into a file it had left at most 3 times.
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


def _method_name_comparisons(tree: ast.AST, names: set[str], allowed: set[str]) -> list[str]:
    """``x == "uniform"``, ``m in ("instructzero", "paper")``, ``"reference" in methods``: a literal method name
    (one that is not also a value of another setting, in ``allowed``) on either side of a comparison."""
    def literals(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return [v for e in node.elts for v in literals(e)]
        return []

    return [f"line {node.lineno}: {v!r}" for node in ast.walk(tree) if isinstance(node, ast.Compare)
            for side in [node.left, *node.comparators] for v in literals(side) if v in names and v not in allowed]


def test_no_module_compares_method_names_it_asks_the_methods_table():
    """A method's facts live in izkit.methods; code asks a row (``method(m).is_search``, ``.coupled``) or the table's
    named rows (``HUMAN``, ``RANDOM``) instead of comparing names, so a new method is one new row."""
    from izkit.config import CHOICES
    from izkit.methods import NAMES

    allowed = {v for values in CHOICES.values() for v in values if isinstance(v, str)}  # "uniform": a projection too
    found = {name: _method_name_comparisons(ast.parse(path.read_text()), set(NAMES), allowed)
             for name, path in _modules().items() if name != "izkit.methods"}
    assert {k: v for k, v in found.items() if v} == {}
    planted = ast.parse('if method in ("instructzero", "paper") or "reference" in methods: pass')
    assert _method_name_comparisons(planted, set(NAMES), allowed) == ["line 1: 'instructzero'", "line 1: 'paper'",
                                                                      "line 1: 'reference'"]


def test_the_library_never_imports_the_command_line():
    importers = sorted(m for m, deps in _graph().items() if "izkit.cli" in deps)
    assert importers == [], importers




def test_no_module_uses_a_private_name_of_another_izkit_module():
    bad = []
    for name, path in list(_modules().items()) + [(str(p.relative_to(ROOT)), p)
                                                  for p in sorted((ROOT / "bench").rglob("*.py"))]:
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


def test_bench_keeps_its_scripts_in_folders_and_its_readme_lists_every_one():
    """bench/ has no top-level script (only the package's __init__), and bench/README.md names every script under
    speed/ and studies/ with the command that runs it."""
    bench = ROOT / "bench"
    assert sorted(p.name for p in bench.glob("*.py")) == ["__init__.py"]
    readme = (bench / "README.md").read_text()
    scripts = [p for folder in ("speed", "studies") for p in sorted((bench / folder).glob("*.py"))
               if p.name != "__init__.py"]
    assert len(scripts) >= 20
    missing = [str(p.relative_to(ROOT)) for p in scripts
               if f"`{p.name}`" not in readme or f"python -m bench.{p.parent.name}.{p.stem}" not in readme]
    assert not missing, f"not in bench/README.md (name and command): {missing}"


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


# -- one rule for resuming, by behaviour: every entry point given a record in each state does what izkit.resume says --

FLAGS = ["--quick", "--baselines", "uniform", "--objective", "loglik", "--selection", "best", "--no-preimages",
         "--no-cache"]  # a small paper-allocation run the fake pipeline plays in a second or two
STATES = ("absent", "empty", "headerless", "torn", "unfinished", "finished")
ENTRY_POINTS = ("izkit run --out", "izkit run --resume", "izkit compare", "ray worker", "course")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(config, bytes of the finished record) of the run every entry point is asked to make."""
    from conftest import make_fake_pipeline
    from izkit.cli import build_parser, config_from_args
    from izkit.loop import Run

    cfg = config_from_args(build_parser().parse_args(["run", "--task", "antonyms", *FLAGS]), "antonyms")
    out = tmp_path_factory.mktemp("reference")
    Run(cfg, out, progress=False, pipeline=make_fake_pipeline()).execute()
    return cfg, (out / "record.jsonl").read_bytes()


def _leave(folder: Path, state: str, record: bytes) -> None:
    """The record a run killed in ``state`` leaves in ``folder``."""
    lines = record.splitlines(keepends=True)
    kept = b"".join(lines[: len(lines) // 2])  # a header and some rounds, as a kill half way leaves them
    body = {"empty": b"", "headerless": lines[0][:40], "torn": kept + lines[len(lines) // 2][:25],
            "unfinished": kept, "finished": record}
    folder.mkdir(parents=True, exist_ok=True)
    if state in body:
        (folder / "record.jsonl").write_bytes(body[state])


def _call(entry: str, cfg, root: Path) -> tuple[Path, int]:
    """Run ``entry`` on the run folder it uses under ``root``: (that folder, 0 or the CLI's exit status)."""
    from izkit.cli import main
    from izkit.studies.compare import pair_folder
    from izkit.studies.fanout import BUSY, Failed, pair_on_worker
    from izkit.loop import run

    pair = pair_folder(root, cfg.task, cfg.seed)
    if entry == "izkit run --out":
        return pair, main(["run", "--task", cfg.task, *FLAGS, "--out", str(pair)])
    if entry == "izkit run --resume":
        return pair, main(["run", "--task", cfg.task, "--resume", str(pair)])
    if entry == "izkit compare":
        return pair, main(["compare", "--tasks", cfg.task, "--seeds", str(cfg.seed), *FLAGS, "--out", str(root)])
    if entry == "ray worker":  # what a Ray task runs, with the driver's copy of the record (a shared folder)
        sent = (pair / "record.jsonl").read_bytes() if (pair / "record.jsonl").exists() else b""
        back = pair_on_worker(cfg, cfg.task, cfg.seed, str(root), sent)
        return pair, 2 if isinstance(back, Failed) or back == BUSY else 0
    run(cfg, pair, resume=(pair / "record.jsonl").exists(), progress=False)  # as notebooks 01 and 07 run theirs
    return pair, 0


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_resumes_by_the_one_rule(entry, state, reference, tmp_path, monkeypatch, capsys):
    """Nothing recorded (absent, empty, headerless): the run starts anew and ends as an uninterrupted run ends
    (``izkit run --resume`` alone refuses: it has no settings but the record's). A torn or unfinished record is
    continued to that same end; a finished one is read back untouched with no model loaded. A new ``izkit run --out``
    never writes over a record that holds anything."""
    from conftest import make_fake_pipeline
    from izkit.pipeline import Pipeline
    from izkit.records import comparable_lines
    from izkit.resume import ACTIONS

    cfg, record = reference
    loaded = []
    monkeypatch.setattr(Pipeline, "from_config",
                        classmethod(lambda cls, *a, **k: loaded.append(1) or make_fake_pipeline()))
    _leave(tmp_path / "antonyms-seed0", state, record)
    before = (tmp_path / "antonyms-seed0" / "record.jsonl").read_bytes() if state != "absent" else None
    action = ACTIONS[state]
    refused = {"izkit run --out": action != "start",  # a new run never writes over a recorded one
               "izkit run --resume": action == "start"}.get(entry, False)  # no record to take the settings from
    folder, status = _call(entry, cfg, tmp_path)
    path = folder / "record.jsonl"
    if refused:
        assert status == 2, capsys.readouterr()
        assert (path.read_bytes() if path.exists() else None) == before  # left as it was
        return
    assert status == 0, capsys.readouterr()
    reference_path = tmp_path / "reference.jsonl"
    reference_path.write_bytes(record)
    assert comparable_lines(path) == comparable_lines(reference_path)  # the end an uninterrupted run reaches
    if action == "read back":
        assert path.read_bytes() == record and not loaded  # untouched, no model
    else:
        assert loaded  # the models were needed: the run did work


def test_runs_are_run_from_loop_py_only():
    """Nothing imports back into loop.py to resume, and the resume rule does not import the loop."""
    assert "izkit.loop" not in _graph()["izkit.resume"]
    taken = {n for name, path in _modules().items()
             for target, names in _imports(ast.parse(path.read_text()), name, path.name == "__init__.py")
             if target == "izkit.loop" for n in names}
    assert taken <= {"run", "Run", "RunResult", "MethodResult"}, taken  # runs are run from loop.py; nothing else


def test_old_import_paths_name_the_modules_that_moved():
    """izkit.widgets, izkit.checks.matern, izkit.serve ... import as the very module at its new place (one object, so
    a patch through either name reaches it); a name that never existed still fails."""
    import importlib

    import izkit

    for old, new in izkit.MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
    assert importlib.import_module("izkit.checks.matern") is importlib.import_module("izkit.course.checks.matern")
    assert izkit.moved_to("izkit.checks.matern") == "izkit.course.checks.matern" and izkit.moved_to("izkit.gp") is None
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("izkit.widgetz")
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert not set(top) & {m.rpartition(".")[2] for m in izkit.MOVED}, "a moved module is back at the top level"


def _files_the_settings_pass_through(argv: list[str], returns: bool = False) -> list[str]:
    """The izkit files, in call order (a file once while calls stay in it), of every function ``izkit run argv`` hands
    its settings to: the parsed flags, a Config, a config dict or record header, the plan or the Run. The run's own
    work (``Run.execute``) and its report (``summary``, ``save_figures``) count as one call each. With ``returns``,
    also the file control goes back to when such a function returns to its nearest such caller (the finer reading)."""
    import argparse
    import os
    import sys

    from izkit.cli import main
    from izkit.config import Config

    root, inside, files, stack = str(PACKAGE), [0], [], []

    def settings(frame) -> bool:
        code = frame.f_code
        args = (frame.f_locals.get(n) for n in code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
        return any(isinstance(v, (argparse.Namespace, Config)) or type(v).__name__ in ("RunPlan", "Run")
                   or (isinstance(v, dict) and ("task" in v or "config" in v)) for v in args)

    def note(frame) -> None:
        name = os.path.relpath(frame.f_code.co_filename, root)
        if not files or files[-1] != name:
            files.append(name)

    def profile(frame, event, arg) -> None:
        if not frame.f_code.co_filename.startswith(root):
            return
        if event == "call":
            if inside[0]:
                inside[0] += 1
                return
            stack.append((frame, settings(frame)))
            if stack[-1][1]:
                note(frame)
            inside[0] = frame.f_code.co_name in ("execute", "summary", "save_figures")
        elif event == "return":
            if inside[0]:
                inside[0] -= 1
                if inside[0]:
                    return
            if stack and stack[-1][0] is frame:
                stack.pop()
                back = next((f for f, handed in reversed(stack) if handed), None)
                if returns and back is not None:
                    note(back)

    sys.setprofile(profile)
    try:
        assert main(argv) == 0
    finally:
        sys.setprofile(None)
    while returns and files[-1:] == ["cli.py"]:
        files.pop()  # the last return, to the command line, goes back to no further work
    return files


def test_following_a_runs_settings_goes_back_into_a_file_at_most_three_times(tmp_path, monkeypatch):
    """``izkit run`` and ``izkit run --resume``: flags -> Config (config.py) -> the plan (resume.py, the record read and
    the one Config built at its end) -> the run (loop.py); a function that builds, rebuilds or re-checks the settings
    in another file shows up as another return (the call-order reading before this change: 3 and 11). The finer reading
    also counts each return to a caller in another file, and is held at today's count so that it cannot grow."""
    from conftest import make_fake_pipeline

    from izkit.pipeline import Pipeline

    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, *a, **k: make_fake_pipeline()))
    for returns, limits in ((False, (3, 3)), (True, (10, 14))):
        # the finer reading, every return to a caller counted: 12 and 28 before issue 46, 10 and 14 now (cli, config,
        # resume and loop are separate one-concept modules, and each call of a Config method from another is two moves)
        out = str(tmp_path / f"run-{returns}")
        for argv, limit in zip((["run", "--task", "antonyms", "--quick", "--no-cache", "--out", out],
                                ["run", "--task", "antonyms", "--no-cache", "--resume", out]), limits):
            files = _files_the_settings_pass_through(argv, returns)
            assert files[0] == "cli.py" and "resume.py" in files and "loop.py" in files, files
            assert sum(f in files[:i] for i, f in enumerate(files)) <= limit, " -> ".join(files)
