"""Tasks in the Instruction Induction format, and the splits InstructZero uses.

A task is two JSON files, one per split: ``induce`` (instructions are induced from it: the kappa exemplars and the dev
set are drawn from it) and ``execute`` (held out: the test set). Each file is
``{"metadata": {"num_examples": N}, "examples": {"1": {...}, ..., "N": {...}}}``. Most tasks hold ``input`` and
``output``; four layouts differ (Honovich et al., 2022):

- ``cause_and_effect``: ``cause`` and ``effect``; the input is both sentences in a (seeded) random order as
  ``Sentence 1: .. Sentence 2: ..`` and the answer is the cause;
- ``common_concept``: ``items`` and ``all_common_concepts``;
- ``rhymes``: ``input`` and ``other_rhymes``;
- ``translation_*``: ``input`` and ``possible_translations``.

Answers are lists: any one counts. Tasks are found by name in the project's ``data/`` folder, in the folders named by
``$IZKIT_DATA`` (separated by ``os.pathsep``), or under a ``root`` given by the caller, which may be laid out as
``induce/`` + ``execute/``, ``raw/induce/`` + ``raw/execute/`` (the benchmark's clone) or ``data/raw/...``.
"""

from __future__ import annotations

import difflib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from izkit.config import Config
from izkit.metrics import metric_for

DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # the project's own tasks (see data/README.md)
DATA_ENV = "IZKIT_DATA"
SPLIT_DIRS = ("", "raw", "data/raw")  # where induce/ and execute/ may sit below a root


class TaskError(ValueError):
    """A task file is missing or malformed; the message names the file and the key at fault."""


@dataclass(frozen=True)
class Example:
    """One example: the input text and the gold answers (any one counts; ``answers[0]`` is shown in demos)."""

    input: str
    answers: tuple[str, ...]

    @property
    def output(self) -> str:
        return self.answers[0]


@dataclass(frozen=True)
class Splits:
    """What one InstructZero run uses of a task."""

    exemplars: tuple[Example, ...]  # the kappa demos the generator reads (paper: kappa = 5)
    dev: tuple[Example, ...]  # scored for every instruction (paper: 20)
    test: tuple[Example, ...]  # the held-out report (paper: at most 100)


@dataclass(frozen=True)
class Task:
    """A task: both splits, the metric that scores it, and the files it came from."""

    name: str
    induce: tuple[Example, ...]
    execute: tuple[Example, ...]
    metric: str
    induce_path: Path
    execute_path: Path
    reference_instruction: str | None = None  # a hand-written instruction (metadata), scored beside the methods

    def splits(self, kappa: int = Config.kappa, n_dev: int = Config.n_dev, n_test: int = Config.n_test,
               seed: int = Config.seed) -> Splits:
        """Draw ``kappa`` exemplars and ``n_dev`` dev examples from ``induce`` (disjoint, seeded); test is ``execute``.
        The defaults are a run's (izkit.config.Config).

        The test set is the whole ``execute`` split when it has at most ``n_test`` examples, else a seeded sample.
        """
        if kappa < 1 or n_dev < 1 or n_test < 1:
            raise ValueError(f"kappa, n_dev and n_test must be positive, got {kappa}, {n_dev}, {n_test}")
        if len(self.induce) < kappa + n_dev:
            raise TaskError(
                f"{self.induce_path}: the induce split has {len(self.induce)} examples, fewer than "
                f"kappa + dev = {kappa} + {n_dev}; use a smaller kappa or dev set"
            )
        rng = random.Random(f"{self.name}:{seed}")
        order = rng.sample(range(len(self.induce)), kappa + n_dev)
        exemplars = tuple(self.induce[i] for i in order[:kappa])
        dev = tuple(self.induce[i] for i in order[kappa:])
        test = self.execute
        if len(test) > n_test:
            test = tuple(test[i] for i in sorted(rng.sample(range(len(test)), n_test)))
        return Splits(exemplars=exemplars, dev=dev, test=test)

    def spare_induce(self, kappa: int = 5, n_dev: int = 20, seed: int = 0, limit: int | None = None
                     ) -> tuple[Example, ...]:
        """The induce examples that :meth:`splits` with these settings leaves out (neither exemplars nor dev), in file
        order, at most ``limit``: a second dev set for choosing settings without touching the test split."""
        rng = random.Random(f"{self.name}:{seed}")
        used = set(rng.sample(range(len(self.induce)), kappa + n_dev))  # the same draw as splits()
        spare = tuple(e for i, e in enumerate(self.induce) if i not in used)
        return spare if limit is None else spare[:limit]


@dataclass(frozen=True)
class TaskInfo:
    """A line of :func:`list_tasks`."""

    name: str
    n_induce: int
    n_execute: int
    metric: str
    root: Path


def _roots(root: str | os.PathLike | None) -> list[Path]:
    if root is not None:
        return [Path(root).expanduser()]
    roots = [Path(p).expanduser() for p in os.environ.get(DATA_ENV, "").split(os.pathsep) if p]
    return roots + [DATA_DIR]


def _split_dir(root: Path, split: str) -> Path | None:
    for sub in SPLIT_DIRS:
        d = root / sub / split
        if d.is_dir():
            return d
    return None


def list_tasks(root: str | os.PathLike | None = None) -> list[TaskInfo]:
    """The tasks that can be loaded by name (from ``root``, else ``$IZKIT_DATA`` and ``data/``), sorted by name."""
    found: dict[str, TaskInfo] = {}
    for r in _roots(root):
        induce = _split_dir(r, "induce")
        if induce is None:
            continue
        for f in sorted(induce.glob("*.json")):
            if f.stem in found or not (induce.parent / "execute" / f.name).is_file():
                continue
            try:
                n_induce = _read(f)["metadata"]["num_examples"]
                n_execute = _read(induce.parent / "execute" / f.name)["metadata"]["num_examples"]
            except (TaskError, KeyError, TypeError):
                n_induce = n_execute = -1  # listed, so the user sees it; loading it will say what is wrong
            found[f.stem] = TaskInfo(f.stem, n_induce, n_execute, metric_for(f.stem), r)
    return [found[k] for k in sorted(found)]


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TaskError(f"{path}: task file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise TaskError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason}); save the file as UTF-8") from None
    if not text.strip():
        raise TaskError(f"{path}: the file is empty; expected a JSON object with 'metadata' and 'examples'")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise TaskError(f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    if not isinstance(data, dict):
        raise TaskError(f"{path}: expected a JSON object with 'metadata' and 'examples', got {type(data).__name__}")
    return data


def _answers(value: Any, path: Path, key: str, field: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(a, str) for a in items):
        raise TaskError(f"{path}: example {key!r}: field {field!r} must be a string or a non-empty list of strings")
    return tuple(items)


def _example(raw: Any, path: Path, key: str, task: str) -> Example:
    """One raw example in any of the benchmark's layouts -> Example."""
    if not isinstance(raw, dict):
        raise TaskError(f"{path}: example {key!r} must be an object, got {type(raw).__name__}")

    def need(field: str) -> Any:
        if field not in raw:
            raise TaskError(f"{path}: example {key!r} has no field {field!r} (it has: {', '.join(sorted(raw))})")
        return raw[field]

    if "cause" in raw or "effect" in raw:  # cause_and_effect
        cause, effect = need("cause"), need("effect")
        first, second = (cause, effect) if random.Random(f"{task}:{key}").random() < 0.5 else (effect, cause)
        return Example(f"Sentence 1: {first} Sentence 2: {second}", (cause,))
    if "items" in raw:  # common_concept
        items = need("items")
        if not isinstance(items, list) or not items:
            raise TaskError(f"{path}: example {key!r}: field 'items' must be a non-empty list")
        return Example(", ".join(map(str, items)), _answers(need("all_common_concepts"), path, key, "all_common_concepts"))
    text = need("input")
    if not isinstance(text, str):
        raise TaskError(f"{path}: example {key!r}: field 'input' must be a string")
    for field in ("other_rhymes", "possible_translations"):  # rhymes, translation_*
        if field in raw:
            return Example(text, _answers(raw[field], path, key, field))
    return Example(text, _answers(need("output"), path, key, "output"))


def read_split(path: str | os.PathLike, task: str | None = None) -> tuple[Example, ...]:
    """Read one split file and check its layout; errors name the file and the key at fault."""
    path = Path(path)
    task = task or path.stem
    data = _read(path)
    if "examples" not in data:
        raise TaskError(f"{path}: missing the 'examples' key (found: {', '.join(sorted(data)) or 'nothing'})")
    examples = data["examples"]
    if not isinstance(examples, dict):
        raise TaskError(f"{path}: 'examples' must be an object keyed '1'..'N', got {type(examples).__name__}")
    if not examples:
        raise TaskError(f"{path}: the split is empty ('examples' has no entries)")
    expected = [str(i) for i in range(1, len(examples) + 1)]
    if list(examples) != expected:
        bad = next((k for k, e in zip(examples, expected) if k != e), None)
        first_wrong = bad if bad is not None else list(examples)[-1]
        raise TaskError(
            f"{path}: keys of 'examples' must run '1'..'{len(examples)}' in order; key {first_wrong!r} is out of place"
        )
    declared = data.get("metadata", {}).get("num_examples") if isinstance(data.get("metadata"), dict) else None
    if declared is not None and (isinstance(declared, bool) or not isinstance(declared, int)):
        raise TaskError(f"{path}: metadata.num_examples must be a whole number, got {declared!r}")
    if declared is not None and declared != len(examples):
        raise TaskError(f"{path}: metadata.num_examples says {declared} but 'examples' has {len(examples)}")
    return tuple(_example(raw, path, key, task) for key, raw in examples.items())


def _find(name: str, root: str | os.PathLike | None) -> tuple[Path, Path]:
    for r in _roots(root):
        induce = _split_dir(r, "induce")
        if induce is not None and (induce / f"{name}.json").is_file():
            return induce / f"{name}.json", induce.parent / "execute" / f"{name}.json"
    known = [t.name for t in list_tasks(root)]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known tasks: {', '.join(known) or 'none'}"
    where = ", ".join(str(r) for r in _roots(root))
    raise TaskError(f"no task named {name!r} in {where}{hint}")


def load_task(name_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Task:
    """Load a task by name (from ``root``, ``$IZKIT_DATA`` or ``data/``) or from the path of its induce file.

    Given ``.../induce/NAME.json`` the execute file is ``.../execute/NAME.json``.
    """
    text = str(name_or_path)
    if text.endswith(".json") or os.sep in text:
        induce_path = Path(text).expanduser()
        if not induce_path.is_file():
            raise TaskError(f"{induce_path}: task file not found")
        if induce_path.parent.name != "induce":
            raise TaskError(f"{induce_path}: expected the induce file of a task, in a folder named 'induce'")
        execute_path = induce_path.parent.parent / "execute" / induce_path.name
        name = induce_path.stem
    else:
        name = text
        induce_path, execute_path = _find(name, root)
    induce = read_split(induce_path, name)
    execute = read_split(execute_path, name)
    return Task(name, induce, execute, metric_for(name), induce_path, execute_path, reference_instruction(induce_path))


def reference_instruction(path: Path) -> str | None:
    """The hand-written instruction in a split file's metadata (``reference_instruction``), or None if it has none."""
    meta = _read(path).get("metadata")
    value = meta.get("reference_instruction") if isinstance(meta, dict) else None
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise TaskError(f"{path}: metadata.reference_instruction must be a non-empty string, got {value!r}")
    return value
