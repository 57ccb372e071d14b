"""SIGKILL the real ``izkit run`` at six points and resume it each time: it must end where an uninterrupted run ends.

The killed run and an uninterrupted reference run (same seed, run alongside) each get an empty answer cache of their
own ($IZKIT_CACHE, with the embedded model linked in), so the reference computes every answer itself and the killed run
can only match it if resuming recomputes nothing differently. The kills are placed by watching the record grow (plus a
seeded random delay), so they land in different phases: model load, round-0 generation, a BO round (GP fit,
acquisition, scoring), InstructZero's successive halving (the default selection: its confirm lines), the Uniform
baseline's scoring (after each of these two the last record line is also torn, as a kill in the middle of a write
leaves it), and the scoring of the test split.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from izkit.config import Config

REPO = Path(__file__).resolve().parents[1]
SEED = 20240607  # places the kills
QUICK = Config.quick("antonyms")  # the quick preset with the default selection: halving over 60 answers
CANDIDATES = QUICK.candidates  # distinct instructions per method (15: rounds of 4, 4, 4, 3)
METHODS = ("instructzero", "uniform")
RUN = ["run", "--task", "antonyms", "--quick", "--baselines", "uniform", "--seed", "0", "--device", "cpu"]
RESUME = ["run", "--task", "antonyms", "--resume"]  # what izkit prints after a failure: the config is the record's
POLL_S = 0.05


def _izkit() -> list[str]:
    script = Path(sys.executable).with_name("izkit")  # the installed entry point, as a user runs it
    return [str(script)] if script.is_file() else [sys.executable, "-m", "izkit.cli"]


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(IZKIT_CACHE=str(cache), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE",
               HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _fresh_cache(path: Path) -> Path:
    """An empty izkit cache folder that shares the converted embedded model (a link, not a 40 s conversion)."""
    from izkit.models import DEFAULT_MODEL, embedded_model_dir

    path.mkdir()
    (path / DEFAULT_MODEL).symlink_to(embedded_model_dir(), target_is_directory=True)
    return path


class Proc:
    """One ``izkit run`` process, its output in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path):
        self.log = log
        self._f = open(log, "wb")
        self.p = subprocess.Popen(_izkit() + argv, env=env, cwd=REPO, stdout=self._f, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        self.started = time.monotonic()

    def kill(self) -> int:
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGKILL)  # only this process: it was started here
        code = self.p.wait()
        self._f.close()
        return code

    def tail(self) -> str:
        if not self._f.closed:  # after kill() the log is closed, and everything is in it
            self._f.flush()
        return self.log.read_text(errors="replace")[-3000:]

    def wait_for_output(self, marker: str, timeout: float) -> bool:
        """Wait until the process has printed marker (True), or timeout seconds have passed (False)."""
        deadline = time.monotonic() + timeout
        while marker not in self.log.read_text(errors="replace"):
            if time.monotonic() > deadline or self.p.poll() is not None:
                return False
            time.sleep(POLL_S)
        return True


def _complete_lines(record: Path) -> list[dict]:
    """The record's newline-terminated lines (a line being written is left out)."""
    try:
        raw = record.read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for piece in raw.split(b"\n")[:-1]:
        try:
            out.append(json.loads(piece))
        except ValueError:
            pass  # a line torn on purpose earlier is cut off by the next resume
    return out


def _kinds(record: Path) -> Counter:
    return Counter(line.get("kind") for line in _complete_lines(record))


def _kill_when(proc: Proc, record: Path, ready, delay: float, what: str, timeout: float = 300.0) -> Counter:
    """Wait until ready(kinds of the record's lines) holds, wait delay seconds more, SIGKILL; return the kinds."""
    deadline = time.monotonic() + timeout
    while not ready(_kinds(record)):
        if proc.p.poll() is not None:
            pytest.fail(f"izkit ended (exit {proc.p.returncode}) before the kill {what}:\n{proc.tail()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for the kill {what}:\n{proc.tail()}")
        time.sleep(POLL_S)
    time.sleep(delay)
    code = proc.kill()
    assert code == -signal.SIGKILL, f"the kill {what} did not land (exit {code}):\n{proc.tail()}"
    return _kinds(record)


def _tear_last_line(record: Path) -> None:
    """Cut the last line in half and drop its newline: what a kill in the middle of a write leaves behind."""
    raw = record.read_bytes()
    last = raw[:-1].rsplit(b"\n", 1)[-1]
    record.write_bytes(raw[: len(raw) - 1 - len(last) // 2])


def _evals(lines: list[dict]) -> dict[tuple, dict]:
    return {(e["method"], e["round"], e["index"]): e for e in lines if e.get("kind") == "eval"}


def _outcome(lines: list[dict]) -> dict:
    """What a run found: every evaluation, each method's best on dev, the test scores."""
    evals = _evals(lines)
    best = {}
    for m in METHODS:
        es = [e for k, e in evals.items() if k[0] == m and e["mean"] is not None]
        top = max(es, key=lambda e: e["mean"])
        best[m] = (top["instruction"], top["mean"])
    tests = {(t["method"], t["objective"]): (t["instruction"], t["mean"]) for t in lines if t.get("kind") == "test"}
    picks = {s["method"]: (s["instruction"], s["mean"], s["answers"]) for s in lines if s.get("kind") == "selection"}
    confirms = {(c["method"], c["instruction"], c["start"], c["stop"]): c["scores"] for c in lines
                if c.get("kind") == "confirm"}
    return {"evals": {k: (e["instruction"], e["mean"]) for k, e in evals.items()}, "best": best, "test": tests,
            "picks": picks, "confirms": confirms}


def _same(a, b) -> bool:
    """Equal, floats to 1e-9 relative: the answers come from the same model on the same examples in both runs."""
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def test_sigkill_at_six_points_then_resume_ends_like_an_uninterrupted_run(tmp_path):
    rng = random.Random(SEED)
    logs = tmp_path / "logs"
    logs.mkdir()
    ref_out, out = tmp_path / "ref", tmp_path / "killed"
    record = out / "record.jsonl"
    env_ref, env_kill = _env(_fresh_cache(tmp_path / "cache-ref")), _env(_fresh_cache(tmp_path / "cache-killed"))
    ref = Proc(RUN + ["--out", str(ref_out)], env_ref, logs / "ref.log")  # alongside: the machine has two cores
    procs = [ref]
    t0 = time.monotonic()
    try:
        # 1. model load: killed once transformers starts loading the weights, before the header is written
        first = Proc(RUN + ["--out", str(out)], env_kill, logs / "kill1.log")
        procs.append(first)
        loading = first.wait_for_output("Loading weights", timeout=60)  # else: killed after a minute, wherever it is
        kinds = _kill_when(first, record, lambda k: True, rng.uniform(0.0, 0.2), "during model load")
        snapshots = [_evals(_complete_lines(record))]
        plan = [  # (what, ready(kinds of record lines), delay after ready, tear the last line afterwards)
            ("after the header (round-0 generation)", lambda k: k["header"] >= 1, rng.uniform(0.0, 1.5), False),
            ("in a BO round", lambda k, n=rng.randint(5, 10): k["eval"] >= n, rng.uniform(0.0, 1.5), False),
            ("in InstructZero's halving", lambda k, n=rng.randint(1, 3): k["confirm"] >= n, rng.uniform(0.0, 0.3),
             True),
            ("in the Uniform baseline", lambda k, n=rng.randint(CANDIDATES + 2, CANDIDATES + 10): k["eval"] >= n,
             rng.uniform(0.0, 0.5), True),
            ("in the test split", lambda k, n=rng.randint(1, 3): k["test"] >= n, rng.uniform(0.0, 0.3), False),
        ]
        landed = ["during model load" + ("" if loading else " (no 'Loading weights' seen)")
                  + ("" if kinds["header"] else ", before the header")]
        for what, ready, delay, tear in plan:
            resume = record.exists()  # killed before the header: nothing to resume, start again as a user would
            proc = Proc(RESUME + [str(out)] if resume else RUN + ["--out", str(out)], env_kill,
                        logs / f"kill{len(landed) + 1}.log")
            procs.append(proc)
            kinds = _kill_when(proc, record, ready, delay, what)
            if tear:
                _tear_last_line(record)
            snapshots.append(_evals(_complete_lines(record)))
            landed.append(f"{what}: {dict(kinds)}")
        final = Proc(RESUME + [str(out)], env_kill, logs / "final.log")
        procs.append(final)
        assert final.p.wait(timeout=300) == 0, final.tail()
        assert ref.p.wait(timeout=300) == 0, ref.tail()
    finally:
        for p in procs:
            p.kill()
    seconds = time.monotonic() - t0

    lines = _complete_lines(record)
    assert len(lines) == len(record.read_text().splitlines())  # no torn or corrupt line is left in the record
    assert [ln["kind"] for ln in lines].count("header") == 1 and lines[0]["kind"] == "header"
    assert lines[-1]["kind"] == "done"
    keys = [(e["method"], e["round"], e["index"]) for e in lines if e["kind"] == "eval"]
    assert len(keys) == len(set(keys)), "an evaluation was recorded twice"
    assert Counter(k[0] for k in keys) == {m: CANDIDATES for m in METHODS}
    proposals = [(p["method"], p["round"]) for p in lines if p["kind"] == "proposal"]
    assert len(proposals) == len(set(proposals)), "a batch was proposed twice"
    fits = [(g["method"], g["round"]) for g in lines if g["kind"] == "gp"]
    assert sorted(fits) == [("instructzero", r) for r in range(1, len(QUICK.round_sizes))], \
        "a GP fit is missing or recorded twice"
    picks = [s["method"] for s in lines if s["kind"] == "selection"]
    assert sorted(picks) == sorted(METHODS), "a halving's pick is missing or recorded twice"
    tests = [(t["method"], t["objective"]) for t in lines if t["kind"] == "test"]
    assert len(tests) == len(set(tests)) == 2 * len(METHODS)  # loglik and accuracy, once each

    final_evals = _evals(lines)  # nothing finished before a kill is lost or changed
    lost = [k for snap in snapshots for k, e in snap.items() if k not in final_evals or final_evals[k] != e]
    assert not lost, f"evaluations lost or rewritten after a kill: {lost}"

    ref_lines = _complete_lines(ref_out / "record.jsonl")
    got, want = _outcome(lines), _outcome(ref_lines)
    assert got["evals"].keys() == want["evals"].keys()
    diff = {k: (got["evals"][k], v) for k, v in want["evals"].items() if not _same(got["evals"][k], v)}
    assert not diff, f"resumed and uninterrupted runs differ: {diff}"
    assert _same(got["best"], want["best"]), (got["best"], want["best"])
    assert _same(got["test"], want["test"]), (got["test"], want["test"])
    assert _same(got["picks"], want["picks"]) and _same(got["confirms"], want["confirms"]), "halving differs"

    hits = [sum(1 for e in ls if e["kind"] == "eval" and e["cache_hit"]) for ls in (lines, ref_lines)]
    print(f"\n{len(landed)} kills survived in {seconds:.0f} s; {len(lost)} evaluations lost; {hits[0] - hits[1]} "
          f"more answers read from the cache than the uninterrupted run read (work done before a kill, not yet "
          f"recorded);\n  " + "\n  ".join(landed))
