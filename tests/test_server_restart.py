"""A run survives its server going away and coming back: a real ``transformers serve``, killed mid-run, restarted.

The story a user lives through, with the embedded Gemma 3 270M (the cheapest model) as the generator and, served by
LocalServer, as the black box:

1. ``izkit run --blackbox openai --base-url A`` (the quick preset) is going; the server at A dies (SIGKILL to its
   process group, as the OOM killer or a crash would end it);
2. the run stops with its clear error (the endpoint "did not answer") and prints the resume command;
3. the server is started again with the same model, on another port B;
4. ``izkit run --resume DIR --base-url B`` finishes the run.

The finished record must equal, line for line, that of an uninterrupted run against a server that never went away
(ignoring wall times and cache hits). Each run has an answer cache of its own (``--cache``), so the uninterrupted run
computes every answer itself, and the interrupted run can only match it if nothing was lost or asked differently.
Greedy decoding on one server process is deterministic, and a loopback port is not part of an answer's cache key.

Wall time: two server starts and about two runs of 7 evaluations; 3-4 minutes on two quiet cores, twice that when
other jobs share them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from izkit.records import comparable_lines
from izkit.serving.serve import LocalServer

REPO = Path(__file__).resolve().parents[1]
MODEL = "gemma-3-270m"  # the cheapest embedded model, as generator and (served) black box
INSTRUCTIONS = 7  # --budget 7: the quick preset's 4 initial evaluations and one BO round of 3, each on 5 dev examples
# the server dies once the run's cache holds round 0's 20 answers and 2 of round 1's 15: with 8 requests in flight
# (the black box's concurrency) the other 13 cannot all be in before the kill lands
KILL_AT_ANSWERS = 4 * 5 + 2


def _izkit() -> list[str]:
    script = Path(sys.executable).with_name("izkit")  # the installed entry point, as a user runs it
    return [str(script)] if script.is_file() else [sys.executable, "-m", "izkit.cli"]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1",
               PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p] + [str(REPO)])
    return env


def run_args(model_id: str, base_url: str, out: Path, cache: Path) -> list[str]:
    return ["run", "--task", "antonyms", "--quick", "--budget", str(INSTRUCTIONS), "--paper", "--seed", "0",
            "--baselines", "none", "--device", "cpu", "--generator", MODEL, "--blackbox", "openai", "--blackbox-model",
            model_id, "--base-url", base_url, "--timeout", "60", "--retries", "1", "--cache", str(cache), "--out",
            str(out)]


def answers_in(cache: Path) -> int:
    """How many answers the run's cache holds so far (it is written the moment each answer arrives)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=1.0)) as db:
            return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    except sqlite3.Error:  # not created yet, or busy for a moment
        return 0


def evals_in(record: Path) -> int:
    """How many evaluations the record holds so far (a line being written is not counted)."""
    if not record.is_file():
        return 0
    n = 0
    for line in record.read_text(errors="replace").splitlines():
        try:
            n += json.loads(line).get("kind") == "eval"
        except ValueError:
            pass
    return n


def comparable(record: Path) -> list[dict]:
    return comparable_lines(record)


def _server() -> LocalServer:
    # one torch thread: the server shares two cores with the run's generator
    return LocalServer(MODEL, startup_timeout=300, env={"OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def first_server():
    with _server() as srv:
        yield srv


def test_a_run_survives_its_server_being_killed_and_restarted_on_another_port(first_server, tmp_path):
    srv = first_server
    env = _env()

    # an uninterrupted run: what the interrupted one must end as
    ref = subprocess.run(_izkit() + run_args(srv.model_id, srv.base_url, tmp_path / "ref", tmp_path / "ref.sqlite"),
                         env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert ref.returncode == 0, ref.stderr[-3000:]
    reference = comparable(tmp_path / "ref" / "record.jsonl")
    assert any(line["kind"] == "test" for line in reference) and any(line["kind"] == "done" for line in reference)

    # the same run, whose server is killed while it scores the BO round (its answers half in)
    out, cache = tmp_path / "run", tmp_path / "run.sqlite"
    log = open(tmp_path / "run.log", "w+")
    run = subprocess.Popen(_izkit() + run_args(srv.model_id, srv.base_url, out, cache), env=env, cwd=REPO,
                           stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 600
        while answers_in(cache) < KILL_AT_ANSWERS:
            assert run.poll() is None, f"the run ended before the kill:\n{Path(log.name).read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the run made too little progress to be interrupted"
            time.sleep(0.05)
        os.killpg(srv.pid, signal.SIGKILL)  # the whole server, at once: no goodbye to the open requests
        code = run.wait(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    output = Path(log.name).read_text()
    assert code != 0, output[-3000:]
    assert f"{srv.base_url} did not answer" in output, output[-3000:]  # the clear error, naming the endpoint
    assert f"izkit run --task antonyms --resume {out}" in output, output[-3000:]  # and the way on
    assert 4 <= evals_in(out / "record.jsonl") < 7  # round 0 is kept; round 1 was cut short
    assert KILL_AT_ANSWERS <= answers_in(cache) < 4 * 5 + 3 * 5  # and so are the answers it had received

    # the same model served again, on another port; the run resumed against it
    with _server() as back:
        assert back.model_id == srv.model_id and back.base_url != srv.base_url
        resumed = subprocess.run(_izkit() + ["run", "--task", "antonyms", "--resume", str(out),
                                             "--base-url", back.base_url],
                                 env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    finished = comparable(out / "record.jsonl")
    evals = [line for line in finished if line["kind"] == "eval"]
    assert evals == [line for line in reference if line["kind"] == "eval"]  # every instruction and score
    tests = [line for line in finished if line["kind"] == "test"]
    assert tests == [line for line in reference if line["kind"] == "test"]  # the held-out scores
    assert finished == reference  # and everything else: proposals, GP fits, the end
