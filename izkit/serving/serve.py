"""Serve a local model with an OpenAI-compatible API: a real black box ``f`` for InstructZero step 3.

The paper's black box is an API model (ChatGPT) that takes text and returns text. ``transformers serve`` gives the
same interface for a local model folder (``/v1/completions``, ``/v1/chat/completions``), so
:class:`izkit.blackbox.OpenAIBlackBox` scores instructions against it exactly as it would against a hosted API. With
``--continuous-batching`` the server batches concurrent requests.

    with LocalServer() as srv:                       # the default embedded model on a free loopback port
        box = OpenAIBlackBox(srv.model_id, base_url=srv.base_url, api="completions")
        result = box.score(instructions, dev)

The server runs in its own process group and is stopped (SIGTERM, then SIGKILL) on exit, also on error, and when the
object is garbage-collected or the interpreter exits. It binds to 127.0.0.1 unless told otherwise (a warning is logged
for any other address: the API has no authentication).

The server never outlives the process that started it. A watcher process (``izkit.serving.child``) sits between the two: it
ends the server within a fraction of a second of its parent's death, by any signal, SIGKILL included (a notebook
kernel restart, a test runner or a process manager killing Python). SIGTERM, SIGINT or SIGHUP whose default action is
still to end the process first stop every server, then end it as before; ``izkit serve`` handles all three and exits
only once the server is gone and its port is free.

Two things this module adds for a *base* model such as the embedded one:

- ``/v1/chat/completions`` needs a chat template, and a base model has none. The served folder is then a shadow copy
  (symlinks to the weights) with a plain template that joins the messages' text, so chat and completions see the same
  prompt. The shadow folder's path is stable, so the model id (and with it the answer cache) is the same each run.
- ``/v1/models`` scans the Hugging Face cache and fails where there is none; the server gets an empty one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Any

from izkit.serving import child
from izkit.serving.child import STOP_SIGNALS
from izkit.serving.loopback import HOST, LOOPBACK, free_port

logger = logging.getLogger(__name__)

PLAIN_CHAT_TEMPLATE = "{{ bos_token }}{% for message in messages %}{{ message['content'] }}{% endfor %}"
SHADOW_VERSION = 1  # bump when the shadow folder's layout changes
CB_NUM_BLOCKS = 64  # continuous batching's KV cache: 64 x 256 tokens, a bounded few hundred MB (see LocalServer)
CB_MAX_BATCH_TOKENS = 1024  # tokens per continuous-batching step: 8 prompts of 128 tokens at once


class ServerError(RuntimeError):
    """The server did not start or died; the message holds the tail of its log."""


def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    cfg = folder / "tokenizer_config.json"
    try:
        return bool(json.loads(cfg.read_text()).get("chat_template")) if cfg.is_file() else False
    except (OSError, ValueError):
        return False


def _shadow_with_chat_template(folder: Path) -> Path:
    """A stable folder of symlinks to ``folder``'s files plus :data:`PLAIN_CHAT_TEMPLATE` (built once, atomically)."""
    from izkit.models import cache_dir

    digest = hashlib.sha256(f"{SHADOW_VERSION}:{folder.resolve()}".encode()).hexdigest()[:12]
    target = cache_dir() / "served" / f"{folder.name}-{digest}"
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if target.is_dir() and all((target / p.name).exists() for p in files):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for p in files:
            (tmp / p.name).symlink_to(p.resolve())
        (tmp / "chat_template.jinja").write_text(PLAIN_CHAT_TEMPLATE)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def resolve_model_folder(model: str | os.PathLike | None) -> Path:
    """The folder to serve: the default embedded model's for None, an embedded model's for its short name (e.g.
    "gemma-3-270m"), else a local transformers folder (with config.json)."""
    from izkit.models import EMBEDDED_MODELS, embedded_model_dir, lookup

    if model is None:
        return embedded_model_dir()
    if lookup(str(model)) is not None:  # the default set, or an optional model (fetched by izkit prepare NAME)
        return embedded_model_dir(str(model))
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise ServerError(
            f"cannot serve {str(model)!r}: not a local folder nor an embedded model ({', '.join(EMBEDDED_MODELS)}). "
            f"LocalServer serves a model folder on this machine (config.json + weights), an embedded model by name, "
            f"or the default embedded model when model is None"
        )
    if not (folder / "config.json").is_file():
        raise ServerError(f"cannot serve {folder}: it has no config.json (not a transformers model folder)")
    return folder


def _transformers_cli() -> str:
    here = Path(sys.executable).parent / "transformers"
    if here.is_file():
        return str(here)
    found = shutil.which("transformers")
    if found is None:
        raise ServerError("the 'transformers' command was not found; pip install 'transformers[serving]'")
    return found


class LocalServer:
    """``transformers serve --continuous-batching`` for a local model folder, as a context manager.

    Args:
        model: None for the default embedded model, an embedded model's short name, or a local model folder.
        port: the port; None for a free one.
        host: the address to bind (default loopback; anything else is reachable from the network, with no auth).
        continuous_batching: batch concurrent requests (``--continuous-batching``).
        device: passed as ``--device`` (None: the server's default, "auto").
        startup_timeout: seconds to wait for ``/v1/models`` to answer.
        warmup: send one short greedy completion after start, so the first real request does not pay for the
            continuous-batching start-up (which also fixes greedy decoding as the shared default).
        log_path: where the server's output goes; None for a temporary file (removed on stop), "-" for this
            process's stdout/stderr (the CLI).
        env: extra environment variables for the server (e.g. ``{"OMP_NUM_THREADS": "1"}``).
        cb_num_blocks: the continuous-batching KV cache, in blocks of 256 tokens (``--cb-num-blocks``; 64: 16k
            tokens, hundreds of MB for the embedded models).
        cb_max_batch_tokens: tokens per continuous-batching step (``--cb-max-batch-tokens``); its buffers grow with
            it times the vocabulary (262k for Gemma).
            With both None transformers sizes them from free memory: on a CPU 60% of the machine's RAM. Measured
            here (Gemma 3 270M, 23 GB machine): about 12 GB resident, so two servers at once met the OOM killer; 64
            blocks and 1024 tokens: 3.1 GB, the same answers and the same speed (32 answers, 16 in flight).

    Attributes (after start): ``base_url`` (e.g. ``http://127.0.0.1:41234/v1``), ``model_id`` (the id to send in
    requests: the served folder's path), ``port``, ``pid`` (the process group's: the watcher's, whose child the
    server is).

    The server ends with this process, whatever ends it (see the module docstring): nothing to clean up by hand after
    a crash, a SIGKILL or a kernel restart.
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        port: int | None = None,
        host: str = HOST,
        continuous_batching: bool = True,
        device: str | None = None,
        startup_timeout: float = 180.0,
        warmup: bool = True,
        log_path: str | os.PathLike | None = None,
        env: dict[str, str] | None = None,
        cb_num_blocks: int | None = CB_NUM_BLOCKS,
        cb_max_batch_tokens: int | None = CB_MAX_BATCH_TOKENS,
    ) -> None:
        self.folder = resolve_model_folder(model)
        self.cb_num_blocks, self.cb_max_batch_tokens = cb_num_blocks, cb_max_batch_tokens
        self.host, self.port = host, port
        self.continuous_batching, self.device = continuous_batching, device
        self.startup_timeout, self.warmup = startup_timeout, warmup
        self._log_arg = log_path
        self.extra_env = dict(env or {})
        self.log_path: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.model_id: str = ""
        self.base_url: str = ""
        self._finalizer: weakref.finalize | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------------------

    def command(self) -> list[str]:
        """The ``transformers serve`` command line this server runs."""
        cmd = [_transformers_cli(), "serve", self.model_id, "--host", self.host, "--port", str(self.port)]
        cmd.append("--continuous-batching" if self.continuous_batching else "--no-continuous-batching")
        if self.continuous_batching and self.cb_num_blocks is not None:
            cmd += ["--cb-num-blocks", str(self.cb_num_blocks)]
        if self.continuous_batching and self.cb_max_batch_tokens is not None:
            cmd += ["--cb-max-batch-tokens", str(self.cb_max_batch_tokens)]
        if self.device is not None:
            cmd += ["--device", self.device]
        return cmd

    def start(self) -> LocalServer:
        """Start the server and wait until ``/v1/models`` answers; ServerError with the log's tail if it dies."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        served = self.folder if _has_chat_template(self.folder) else _shadow_with_chat_template(self.folder)
        self.model_id = str(served)
        self.port = self.port or free_port(self.host)
        url_host = f"[{self.host}]" if ":" in self.host else self.host
        self.base_url = f"http://{url_host}:{self.port}/v1"
        if self.host not in LOOPBACK:
            logger.warning(
                "binding the model server to %s: it is reachable from other machines and has no authentication; use "
                "host=%r unless you mean it",
                self.host, HOST,
            )
        env = {**os.environ, **self.extra_env}
        env.setdefault("HF_HUB_OFFLINE", "1")  # a local folder needs no hub
        if "HF_HUB_CACHE" not in env and "HF_HOME" not in env:
            from izkit.models import cache_dir

            empty_hub = cache_dir() / "serve-hf-hub"  # /v1/models scans the hub cache and fails where there is none
            empty_hub.mkdir(parents=True, exist_ok=True)
            env["HF_HUB_CACHE"] = str(empty_hub)
        if self._log_arg == "-":
            out: Any = None
        else:
            if self._log_arg is None:
                fd, name = tempfile.mkstemp(prefix="izkit-serve-", suffix=".log")
                os.close(fd)
                self.log_path = Path(name)
            else:
                self.log_path = Path(self._log_arg)
            out = open(self.log_path, "ab")
        logger.info("starting transformers serve for %s on %s (log: %s)", served, self.base_url, self.log_path or "-")
        own = (str(self.log_path),) if self._log_arg is None else ()  # a temporary log goes with the server, however
        # it ends (child.stop, or the watcher when izkit is gone)
        try:
            self.proc = subprocess.Popen(
                child.watched_command(self.command(), files=own),  # the watcher's grace: child.STOP_GRACE_S
                stdout=out,
                stderr=subprocess.STDOUT if out is not None else None,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a session and group of its own: stop() ends watcher, server and children
            )
        except BaseException:
            child.remove_files(own)  # no server to go with
            raise
        finally:
            if out is not None:
                out.close()
        child.register(self.proc, files=own)
        self._finalizer = weakref.finalize(self, child.stop, self.proc)
        try:
            self._wait_ready()
            if self.warmup:
                self._warmup()
        except BaseException:
            self.stop()
            raise
        logger.info("model server ready at %s (model id %s, pid %d)", self.base_url, self.model_id, self.proc.pid)
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"transformers serve exited with code {self.proc.returncode} before answering on {self.base_url}; "
                    f"last lines of its log:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ServerError(
                    f"transformers serve did not answer on {self.base_url}/models within {self.startup_timeout:.0f} s; "
                    f"last lines of its log:\n{self.log_tail()}"
                )
            time.sleep(0.5)

    def _warmup(self) -> None:
        body = json.dumps(
            {"model": self.model_id, "prompt": "Hello", "max_tokens": 1, "temperature": 0}
        ).encode()
        req = urllib.request.Request(
            self.base_url + "/completions", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.startup_timeout) as r:
                r.read()
        except (urllib.error.URLError, OSError) as err:
            raise ServerError(f"the warm-up request to {self.base_url} failed: {err}\n{self.log_tail()}") from err

    def stop(self) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL after ``izkit.serving.child.STOP_GRACE_S``) and remove its
        temporary log (``izkit.serving.child.stop``)."""
        if self.proc is not None:
            child.stop(self.proc)
            logger.info("model server on %s stopped", self.base_url)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process group's id: the watcher's pid (the server is its child, in the same group)."""
        return None if self.proc is None else self.proc.pid

    def log_tail(self, n: int = 30) -> str:
        """The last ``n`` lines of the server's log ('' when it logs to the console)."""
        if self.log_path is None or not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.alive() else "stopped"
        return f"LocalServer({str(self.folder)!r}, base_url={self.base_url or None!r}, {state})"


class _StopSignal(BaseException):
    """Raised by ``izkit serve``'s signal handler: unwinds to the code that stops the server."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def main_serve(
    model: str | os.PathLike | None = None,
    port: int | None = None,
    host: str = HOST,
    continuous_batching: bool = True,
    device: str | None = None,
) -> int:
    """``izkit serve``: run the server in the foreground until Ctrl-C or a stop signal; returns the exit code.

    Prints the base URL and model id to use with :class:`izkit.blackbox.OpenAIBlackBox`; the server's own log goes
    to this terminal. SIGTERM, SIGINT and SIGHUP stop the server (SIGTERM, then SIGKILL after the grace period) and
    return only once it is gone and its port is free, with the shell's code for the signal (128 + its number). SIGINT
    is handled even when the shell started izkit with it ignored (a background job of a script); SIGHUP is not when
    ignored (``nohup izkit serve`` keeps serving after a hang-up).
    """
    stopping: list[int] = []  # set once: a second signal while stopping changes nothing

    def on_signal(signum: int, frame: object) -> None:
        if not stopping:
            stopping.append(signum)
            raise _StopSignal(signum)

    server = LocalServer(
        model, port=port, host=host, continuous_batching=continuous_batching, device=device, warmup=False, log_path="-"
    )
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            if sig != signal.SIGHUP or signal.getsignal(sig) is not signal.SIG_IGN:
                previous[sig] = signal.signal(sig, on_signal)
    try:
        return _serve_in_foreground(server)
    except _StopSignal as stop:
        name = signal.Signals(stop.signum).name
        print(f"izkit: {name} received, stopping the server", file=sys.stderr, flush=True)
        return 128 + stop.signum
    finally:
        stopping.append(0)
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _serve_in_foreground(server: LocalServer) -> int:
    try:
        server.start()
        print(f"izkit: serving {server.model_id}", flush=True)
        print(f"izkit: base_url={server.base_url}  (OpenAIBlackBox(model_id, base_url=...); Ctrl-C stops)", flush=True)
        while server.alive():
            time.sleep(0.5)
        code = server.proc.returncode
        print(f"izkit: the model server exited by itself with code {code}", file=sys.stderr)
        return 128 - code if code < 0 else code or 1
    except ServerError as err:
        print(f"izkit: {err}", file=sys.stderr)
        return 1


