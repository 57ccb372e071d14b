"""Run records: one JSONL file per run, appended and flushed as the run goes, read back to resume or replay.

Line kinds (each a JSON object with a ``kind`` field):

- ``header``: the config (seed included), model ids, objective, metric, task files and izkit version; always the
  first line;
- ``proposal``: a batch of soft prompts and the instructions they produced, written before they are scored, so a
  resumed run scores exactly the same instructions instead of proposing anew;
- ``eval``: one scored instruction: method, round, index, soft prompt, instruction, per-example scores, predictions,
  mean, seconds, cache hit;
- ``confirm``: with halving selection, one instruction's scores on a rung's further examples (dev, then spare induce);
- ``selection``: with halving, the pick, its mean on the last rung, each rung's members and the answers spent;
- ``gp``: the fitted hyperparameters and log marginal likelihood of a round;
- ``test``: the held-out score of a method's best instruction, for one objective;
- ``test_curve``: with ``--test-curve``, a round's incumbent and its held-out score (never read by the search);
- ``done``: the run finished.

A line cut off by a kill (the last line with no newline, or not valid JSON) is dropped on reading and re-done; an invalid
line anywhere before the last is corruption and an error that names the line.

One process writes a run folder at a time: :func:`locked_run` takes the folder's ``.lock`` (an advisory ``flock``, which
the kernel drops when the process ends, so a killed run leaves none behind); a second process gets
:class:`RecordBusy` naming the first one's pid instead of two writers interleaving lines in one record.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None

RECORD_NAME = "record.jsonl"


class RecordError(ValueError):
    """A record cannot be read or does not fit the run; the message names the file, line or field."""


def write_whole(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` beside it first and rename it into place, so a reader (or an interrupted writer)
    sees the old file or the new one, never part of one; the folder is made if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # on disk before it replaces the old file, as append() makes each line durable
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a write that failed (a full disk) leaves no piece beside the record


class RecordBusy(RecordError):
    """Another process is writing the run in this folder (it holds the folder's lock)."""


LOCK_NAME = ".lock"
_HELD: dict[Path, list[int]] = {}  # the run folders this process has locked: folder -> [descriptor, depth]


@contextmanager
def locked_run(folder: str | os.PathLike) -> Iterator[None]:
    """``with locked_run(folder):`` holds the run folder's lock, or raises :class:`RecordBusy` naming the process
    that holds it.

    Re-entrant within a process (``Run.execute`` holds it while ``Run.search`` takes it again; a notebook's second Run
    on the same folder is not blocked by its first); released when the outermost ``with`` ends, or by the kernel when
    the process ends (a killed run leaves no stale lock).
    """
    folder = Path(folder).resolve()
    if fcntl is None:  # no flock on this platform
        yield
        return
    if folder not in _HELD:
        _HELD[folder] = [_acquire(folder), 0]
    _HELD[folder][1] += 1
    try:
        yield
    finally:
        _HELD[folder][1] -= 1
        if _HELD[folder][1] == 0:
            fd = _HELD.pop(folder)[0]
            if fd >= 0:
                os.close(fd)  # closing the descriptor drops the flock


def _acquire(folder: Path) -> int:
    """The descriptor of the folder's flocked lock file (-1 where the file system has no locks, with a warning)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RecordBusy(f"{folder}: another process (pid {holder}) is writing this run; let it finish or stop it, "
                         f"then resume") from None
    except OSError as err:  # a file system without flock (some network mounts): run unlocked, and say so
        os.close(fd)
        warnings.warn(f"{folder}: cannot lock the run folder ({err.strerror or err}); make sure no other process "
                      f"writes this run", RuntimeWarning, stacklevel=4)
        return -1
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def jsonable(value: Any) -> Any:
    """JSON-safe: NaN and inf become None (json would write invalid tokens), tuples become lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy / torch
        return jsonable(value.tolist())
    return value


def read_lines(path: str | os.PathLike) -> tuple[list[dict[str, Any]], int]:
    """Read a record; return its lines and the byte length of the valid part (a torn last line is left out).

    The last line is torn when it has no newline (a kill mid-write) or is not a valid record line; it is dropped.
    Any earlier invalid line is corruption: a RecordError naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{path}: no run record here")
    pieces = path.read_bytes().split(b"\n")  # the piece after the last newline is b"" when the file ends cleanly
    lines: list[dict[str, Any]] = []
    good_bytes = 0
    for number, raw in enumerate(pieces[:-1], start=1):  # newline-terminated lines only
        try:
            obj = json.loads(raw) if raw.strip() else None
            if obj is not None and (not isinstance(obj, dict) or "kind" not in obj):
                raise ValueError("not a record line")
        except ValueError as err:
            if number == len(pieces) - 1 and not pieces[-1]:
                break  # the last line: torn, drop it and re-do that work
            raise RecordError(f"{path}, line {number}: corrupt record line ({err}); fix or delete that line") from None
        if obj is not None:
            lines.append(obj)
        good_bytes += len(raw) + 1
    if lines and lines[0].get("kind") != "header":
        raise RecordError(f"{path}, line 1: a record must start with a header line, found kind {lines[0]['kind']!r}")
    return lines, good_bytes


@dataclass
class RunRecord:
    """An open record: append lines (each flushed to disk at once) and look up what was done before."""

    path: Path
    lines: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(cls, path: str | os.PathLike, header: dict[str, Any]) -> RunRecord:
        """A new record holding ``header``; never written over an existing file (izkit.resume.plan_run says whether
        a run starts, continues or reads back the record in its folder)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            open(path, "x").close()  # made here and now, or not at all: no header appended to another run's lines
        except FileExistsError:
            raise RecordError(f"{path}: a record already exists; resume it with --resume {path.parent}") from None
        rec = cls(path)
        rec.append({"kind": "header", **header})
        return rec

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunRecord:
        """Open an existing record to continue it; a torn last line is cut off the file first."""
        path = Path(path)
        lines, good = read_lines(path)
        if not lines:
            raise RecordError(f"{path}: the record is empty (not even a header): the run was stopped before it "
                              f"wrote anything; start it again with --out {path.parent} (nothing is lost)")
        if good < path.stat().st_size:
            with open(path, "r+b") as f:  # drop the torn tail so new lines start on a line of their own
                f.truncate(good)
        return cls(path, lines)

    @classmethod
    def read(cls, path: str | os.PathLike) -> RunRecord:
        """Read a record without changing it (a torn last line is left out, not cut off the file): for readers of a
        run that another process may still be writing, such as ``izkit summary`` beside a live ``izkit compare``."""
        path = Path(path)
        lines, _ = read_lines(path)
        if not lines:
            raise RecordError(f"{path}: the record is empty (not even a header)")
        return cls(path, lines)

    @property
    def header(self) -> dict[str, Any]:
        return self.lines[0]

    def append(self, line: dict[str, Any]) -> None:
        line = jsonable(line)
        text = json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        self.lines.append(line)

    def of_kind(self, kind: str, **match: Any) -> Iterator[dict[str, Any]]:
        for line in self.lines:
            if line.get("kind") == kind and all(line.get(k) == v for k, v in match.items()):
                yield line

    def evals(self, method: str | None = None) -> list[dict[str, Any]]:
        """The evaluation lines, of one method or all, in the order they were written."""
        return [e for e in self.of_kind("eval") if method is None or e["method"] == method]

    def work_seconds(self, method: str | None = None) -> float:
        """The time the recorded work took (proposals, evaluations, test scoring), of one method or all, summed over
        every session that added to the record; model loading is not recorded work."""
        kinds = ("proposal", "eval", "confirm", "test", "test_curve")
        return sum(line.get("seconds", 0.0) for kind in kinds for line in self.of_kind(kind)
                   if method is None or line.get("method") == method)

    def answers(self, method: str | None = None) -> int:
        """Black-box answers spent on dev-side examples (search evaluations and halving's confirmations), of one
        method or all: one per instruction and example, what an API bills."""
        return sum(len(line.get("scores") or ()) for kind in ("eval", "confirm") for line in self.of_kind(kind)
                   if method is None or line.get("method") == method)

    def find(self, kind: str, **match: Any) -> dict[str, Any] | None:
        return next(self.of_kind(kind, **match), None)

    def kept(self, method: str) -> dict[str, Any] | None:
        """The line of the instruction ``method`` kept, with the mean it was kept on: halving's ``selection`` line
        where the run chose by successive halving, else the eval line of the best dev mean (ties go to the one
        evaluated first; the authors' code keeps the latest); the first eval line if none has a score; None before
        any. The test split scores this instruction (izkit.loop), and every report names it (izkit.replay)."""
        picked = self.find("selection", method=method)
        if picked is not None:
            return picked
        evals = self.evals(method)
        scored = [e for e in evals if e["mean"] is not None and math.isfinite(e["mean"])]
        return max(scored, key=lambda e: e["mean"]) if scored else next(iter(evals), None)

    @property
    def done(self) -> bool:
        return self.find("done") is not None


VOLATILE = frozenset({"seconds", "cache_hit", "cache_hits", "time", "started", "finished", "elapsed", "wall_seconds",
                      "work_seconds", "created", "izkit_version", "requests", "usage"})  # differ between two runs


def comparable_lines(path: str | os.PathLike, volatile: frozenset[str] = VOLATILE) -> list[dict[str, Any]]:
    """A record's lines without its header (it names the URL and cache) and without what differs between two runs of
    the same config (times, cache hits, request counts), at any depth: two such lists are equal when the runs agree."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in volatile}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    lines, _ = read_lines(path)
    return [strip(line) for line in lines if line.get("kind") != "header"]
