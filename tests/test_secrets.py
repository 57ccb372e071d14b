"""Secrets: the API key is used (the fake server checks it) but written nowhere; the model server binds to loopback.

Each run here talks to tests/fault_server.py with ``api_key`` set, so a request without the sentinel key in its
``Authorization`` header would get a 401 and fail the run. Afterwards every file the run wrote (record, figures, the
answer cache and its sqlite companions) and everything it printed or logged is searched for the key, its random
core (a masked key shows part of it), and its base64 forms (HTTP basic auth, a dumped header).
"""

from __future__ import annotations

import base64
import inspect
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from fault_server import KINDS, FaultServer

from izkit import cli
from izkit.blackbox import BlackBoxError
from izkit.cache import AnswerCache
from izkit.config import Config
from izkit.loop import Run
from izkit.pipeline import Pipeline
from izkit.replay import replay
from izkit.tasks import load_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CORE = "5e7c1a9f03b2d4e6"
SENTINEL = f"sk-izkit-SENTINEL-{CORE}"
FORMS = [SENTINEL, CORE] + [base64.b64encode(s.encode()).decode() for s in (SENTINEL, f"Bearer {SENTINEL}",
                                                                            f":{SENTINEL}")]
TASK = load_task("antonyms")
GOLD = {e.input: e.answers[0] for e in TASK.induce + TASK.execute}
FAULTS = tuple(k for k in KINDS if k != "hang")  # every fault but the slow one: error paths log and retry


def assert_no_secret(text: str | bytes, where: object) -> None:
    data = text.encode() if isinstance(text, str) else text
    for form in FORMS:
        assert form.encode() not in data, f"the API key ({form[:12]}...) leaked into {where}"


def walk(*folders: Path) -> list[Path]:
    """Every file under the folders, not following links (the model folder is linked into the cache)."""
    files = []
    for folder in folders:
        for root, _dirs, names in os.walk(folder, followlinks=False):
            files += [Path(root) / n for n in names if not (Path(root) / n).is_symlink()]
    return files


@pytest.fixture
def cache_dir(tmp_path, monkeypatch, embedded):
    """IZKIT_CACHE in tmp_path, with the embedded model linked in so it is found (and not converted again)."""
    import izkit.models

    model_dir = izkit.models.embedded_model_dir()
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / model_dir.name).symlink_to(model_dir, target_is_directory=True)
    monkeypatch.setenv("IZKIT_CACHE", str(folder))
    monkeypatch.setattr(izkit.models, "embedded_model_dir", lambda rebuild=False: model_dir)  # in process: loaded
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    return folder


def test_a_run_that_fails_and_resumes_writes_and_logs_no_key(cache_dir, tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)  # everything: ours, the SDK's, the HTTP client's
    out = tmp_path / "run"
    gone = FaultServer(GOLD, api_key=SENTINEL, gone_after=7)
    with gone:
        cfg = Config.quick(task="antonyms", blackbox="openai", blackbox_model="fake", base_url=gone.base_url,
                           objective="accuracy", request_timeout=2.0, max_retries=1, baselines=(),
                           device="cpu").with_instructions(4)
        run = Run(cfg, out, progress=False)
        with pytest.raises(BlackBoxError) as info:
            run.execute()
    assert gone.unauthorized == 0 and len(gone.answered) == 7  # the key was sent, and it was the right one
    assert_no_secret(str(info.value), "the error message")
    assert_no_secret("".join(traceback.format_exception(info.value)), "the traceback")
    with FaultServer(GOLD, api_key=SENTINEL, rate=0.2, kinds=FAULTS, seed=2, port=gone.port) as back:
        pipeline = Pipeline.from_config(cfg)
        pipeline.blackbox.backoff = 0.05
        resumed = Run(cfg, out, resume=True, progress=False, pipeline=pipeline)
        result = resumed.execute()
        figures = replay(result.record_path).save_figures(out)
    assert back.unauthorized == 0 and back.answered and sum(back.faults.values()) > 0
    assert isinstance(resumed.pipeline.blackbox.cache, AnswerCache)
    assert resumed.pipeline.blackbox.cache.path.parent == cache_dir  # the default cache, in IZKIT_CACHE

    files = walk(out, cache_dir)
    names = {p.name for p in files}
    assert {"record.jsonl", "answers.sqlite", "best_so_far.png", "kernels.png"} <= names, names
    assert all(p in files for p in figures)
    for p in files:
        assert_no_secret(p.read_bytes(), p)
    assert_no_secret(caplog.text, "the logs")
    assert any("retry" in r.getMessage() for r in caplog.records)  # the error paths did log
    captured = capfd.readouterr()
    assert_no_secret(captured.out + captured.err, "stdout/stderr")
    assert_no_secret(repr(vars(resumed.pipeline.blackbox)) + repr(result), "the objects")


def test_the_cli_writes_prints_and_logs_no_key(cache_dir, tmp_path):
    out = tmp_path / "run"
    izkit = Path(sys.executable).parent / "izkit"
    with FaultServer(GOLD, api_key=SENTINEL, rate=0.2, kinds=FAULTS, seed=4, retry_after="0") as srv:
        proc = subprocess.run(
            [str(izkit), "-v", "run", "--quick", "--budget", "4", "--task", "antonyms", "--baselines", "none",
             "--blackbox", "openai", "--blackbox-model", "fake", "--base-url", srv.base_url, "--objective", "accuracy",
             "--device", "cpu", "--timeout", "5", "--out", str(out)],
            capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=240,
        )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert srv.unauthorized == 0 and srv.answered and sum(srv.faults.values()) > 0
    assert b"INFO" in proc.stderr and b"retry" in proc.stderr.lower()  # -v did log, error paths included
    assert_no_secret(proc.stdout, "stdout")
    assert_no_secret(proc.stderr, "stderr (with -v)")
    files = walk(out, cache_dir)
    assert {"record.jsonl", "answers.sqlite", "best_so_far.png"} <= {p.name for p in files}
    for p in files:
        assert_no_secret(p.read_bytes(), p)


# ----------------------------------------------------------------------------------------------------------------------
# The model server binds to loopback unless told otherwise


@pytest.fixture
def no_server(tmp_path, monkeypatch):
    """Popen records the command and refuses to start it; a model folder that needs no shadow copy."""
    import izkit.serving.serve

    from izkit.serving.serve import ServerError

    commands: list[list[str]] = []

    def fake_popen(cmd, *args, **kwargs):
        commands.append(list(cmd))
        raise ServerError("not started by the test")

    monkeypatch.setattr(izkit.serving.serve.subprocess, "Popen", fake_popen)
    monkeypatch.setenv("IZKIT_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "chat_template.jinja").write_text("{{ messages[0]['content'] }}")
    return folder, commands


def test_serve_help_and_defaults_bind_to_loopback(capsys):
    from izkit.serving.serve import LocalServer, main_serve

    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--help"])
    assert info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps the lines
    assert "--host HOST the address to bind (default: 127.0.0.1, loopback only;" in help_text
    assert cli.build_parser().parse_args(["serve"]).host == "127.0.0.1"
    assert inspect.signature(LocalServer).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(main_serve).parameters["host"].default == "127.0.0.1"


def test_serve_binds_127_0_0_1_and_warns_for_any_other_address(no_server, caplog, capsys):
    from izkit.serving.serve import LocalServer, ServerError

    folder, commands = no_server
    assert cli.main(["serve", "--model", str(folder)]) == 1  # the command line's default
    with caplog.at_level(logging.WARNING, logger="izkit.serving.serve"):
        with pytest.raises(ServerError):
            LocalServer(folder, log_path=folder / "log").start()
        assert not caplog.records  # loopback: no warning
        with pytest.raises(ServerError):
            LocalServer(folder, host="0.0.0.0", log_path=folder / "log").start()
    assert [c[c.index("--host") + 1] for c in commands] == ["127.0.0.1", "127.0.0.1", "0.0.0.0"]
    assert len(caplog.records) == 1 and "0.0.0.0" in caplog.text and "no authentication" in caplog.text
    assert "not started by the test" in capsys.readouterr().err
