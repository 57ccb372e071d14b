"""izkit.serving.serve owns its server: a signal to the process that started it, SIGKILL included, leaves no server behind.

Each test starts a parent process (a Python script with a LocalServer, ``izkit serve``, or a Jupyter kernel), sends it
a signal, and checks what a user would check by hand: every process the parent had started is gone (a zombie waiting
for init to reap it counts as gone) and the server's port is free. The parents are real processes and the signals real
signals; for speed the served program is mostly tests/fault_server.py run as a script (the same watcher, process group
and handlers as for ``transformers serve``); two tests run ``izkit serve`` with a real model, the embedded Gemma 3
270M.

SIGTERM, SIGHUP and SIGINT are checked the moment the parent has exited (the handlers stop the server first); SIGKILL
leaves the parent no say, so there the watcher gets a few seconds to notice and end the server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from izkit.serving.loopback import free_port

REPO = Path(__file__).resolve().parents[1]
FAULT_SERVER = Path(__file__).with_name("fault_server.py")
AFTER_KILL_S = 15.0  # how long the watcher may take to end a server whose parent was SIGKILLed

# A parent process: starts a LocalServer whose program is tests/fault_server.py, prints READY, waits to be signalled.
# argv: model folder, port, child kind (direct | wrapped | stubborn), grace seconds, SIGINT mode (default | lethal).
LIBRARY_PARENT = """
import signal, sys, threading
import izkit.serving.child
from izkit.serving.serve import LocalServer

folder, port, kind, grace, sigint = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
izkit.serving.child.STOP_GRACE_S = grace
if sigint == "lethal":
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as programs do that want Ctrl-C to end them without a traceback
FAKE = [sys.executable, {fault_server!r}, "--port", str(port)]


class FakeServer(LocalServer):
    def command(self):
        if kind == "wrapped":  # a shell that forks the real program and waits for it
            return ["/bin/sh", "-c", " ".join(FAKE) + "; exit $?"]
        return FAKE + (["--ignore-term"] if kind == "stubborn" else [])


server = FakeServer(folder, port=port, startup_timeout=60).start()
print("READY", server.pid, flush=True)
threading.Event().wait()
"""

# ``izkit serve`` (main_serve) with tests/fault_server.py in place of transformers serve. argv: folder, port.
SERVE_PARENT = """
import sys
import izkit.serving.serve

folder, port = sys.argv[1], int(sys.argv[2])
izkit.serving.serve.LocalServer.command = lambda self: [sys.executable, {fault_server!r}, "--port", str(self.port)]
sys.exit(izkit.serving.serve.main_serve(model=folder, port=port))
"""


# ----------------------------------------------------------------------------------------------------------------------
# Helpers: the process table, the port, a parent process


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, state) of every process, from /proc."""
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text(errors="replace")
            except OSError:
                continue
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            table[int(entry.name)] = (int(ppid), state)
    return table


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` (children, grandchildren, ...)."""
    table = _processes()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (ppid, state) in table.items() if ppid in frontier and state != "Z"} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (zombies, which hold no memory and no port, count as gone)."""
    table = _processes()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


def port_free(port: int) -> bool:
    """Nothing accepts connections on the port, and a new server could listen there."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as every server does: TIME_WAIT is no obstacle
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join([p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p] + [str(REPO)])
    return env


def _default_sigint() -> None:
    """In the parent, between fork and exec: SIGINT back to its default (a test run in the background of a shell
    inherits it ignored, and Python would then never turn it into KeyboardInterrupt), and SIGHUP too (a test run under
    ``nohup`` inherits it ignored, and izkit rightly keeps an ignored SIGHUP ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _ignored_sigint() -> None:
    """What a shell script does for ``izkit serve &`` (no job control): the job starts with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as in _default_sigint


class Parent:
    """A parent process started here; ``stop()`` kills whatever of its tree is left, so no test leaks processes."""

    def __init__(self, argv: list[str], log: Path, sigint_ignored: bool = False, **popen):
        self.log = log
        self.tmp = log.with_suffix(".tmp")  # the parent's TMPDIR: where a server's temporary log goes
        self.tmp.mkdir()
        self._f = open(log, "wb")
        sigint = _ignored_sigint if sigint_ignored else _default_sigint
        self.p = subprocess.Popen(argv, stdout=self._f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env={**_env(), "TMPDIR": str(self.tmp)}, cwd=REPO, preexec_fn=sigint, **popen)
        self.tree: set[int] = set()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_serving(self, port: int, timeout: float = 90.0) -> set[int]:
        """Wait until something answers on ``port``; returns (and remembers) the parent's descendants then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.p.poll() is None, f"the parent exited early (code {self.p.returncode}):\n{self.text()}"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            pytest.fail(f"nothing listened on port {port} within {timeout:.0f} s:\n{self.text()}")
        self.tree = descendants(self.p.pid)
        assert self.tree, "the server should be a descendant of the parent"
        return self.tree

    def wait_for(self, marker: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.text():
            assert time.monotonic() < deadline, f"{marker!r} not printed within {timeout:.0f} s:\n{self.text()}"
            time.sleep(0.05)

    def signal_and_wait(self, sig: int, timeout: float = 60.0) -> int:
        os.kill(self.p.pid, sig)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the parent did not exit within {timeout:.0f} s of {signal.Signals(sig).name}:\n{self.text()}")

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        for pid in alive(self.tree):  # only processes this parent started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._f.close()


def assert_all_gone(tree: set[int], port: int, parent: Parent, within: float = 0.0) -> None:
    """No process of ``tree`` runs, the port is free and no temporary server log is left, now or within ``within``
    seconds."""
    deadline = time.monotonic() + within
    while alive(tree) or not port_free(port) or list(parent.tmp.glob("izkit-serve-*.log")):
        if time.monotonic() >= deadline:
            left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    for pid in alive(tree) if Path(f"/proc/{pid}/cmdline").exists()}
            logs = [p.name for p in parent.tmp.glob("izkit-serve-*.log")]
            pytest.fail(f"left behind: processes {left}, port {port} free: {port_free(port)}, logs {logs}\n"
                        f"{parent.text()[-3000:]}")
        time.sleep(0.1)


@pytest.fixture
def model_folder(tmp_path):
    """A model folder LocalServer accepts as is (config.json and a chat template: no shadow copy)."""
    folder = tmp_path / "fake-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "chat_template.jinja").write_text("{{ messages[0]['content'] }}")
    return folder


@pytest.fixture
def parents(tmp_path):
    started: list[Parent] = []

    def start(script: str, *args: str, sigint_ignored: bool = False) -> Parent:
        path = tmp_path / f"parent{len(started)}.py"
        path.write_text(textwrap.dedent(script).format(fault_server=str(FAULT_SERVER)))
        p = Parent([sys.executable, str(path), *args], tmp_path / f"parent{len(started)}.log", sigint_ignored)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def _library_parent(parents, folder: Path, kind: str = "direct", grace: float = 5.0, sigint: str = "default"):
    port = free_port()
    parent = parents(LIBRARY_PARENT, str(folder), str(port), kind, str(grace), sigint)
    parent.wait_until_serving(port)
    parent.wait_for("READY", 60)
    return parent, port


# ----------------------------------------------------------------------------------------------------------------------
# LocalServer in a Python program


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_to_the_program_stops_its_server_before_the_program_ends(sig, parents, model_folder):
    # SIGINT: in a program that made Ctrl-C lethal (SIG_DFL); Python's own KeyboardInterrupt unwinds through `with`
    parent, port = _library_parent(parents, model_folder, sigint="lethal")
    code = parent.signal_and_wait(sig)
    assert code == -sig  # the program still ends the way the signal ends it
    assert_all_gone(parent.tree, port, parent)  # at once: the handler waited for the server


@pytest.mark.parametrize("kind", ["direct", "wrapped"])
def test_sigkill_of_the_program_ends_its_server(kind, parents, model_folder):
    # "wrapped": the server is a grandchild (a shell forked it), out of reach of a parent-death signal on the shell
    parent, port = _library_parent(parents, model_folder, kind=kind)
    assert parent.signal_and_wait(signal.SIGKILL) == -signal.SIGKILL
    assert_all_gone(parent.tree, port, parent, within=AFTER_KILL_S)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_a_server_that_ignores_sigterm_is_killed_after_the_grace_period(sig, parents, model_folder):
    parent, port = _library_parent(parents, model_folder, kind="stubborn", grace=1.0)
    started = time.monotonic()
    parent.signal_and_wait(sig)
    assert_all_gone(parent.tree, port, parent, within=AFTER_KILL_S)
    elapsed = time.monotonic() - started
    assert elapsed >= 1.0  # it was given its grace period first
    assert elapsed < 4.5  # and only that: the grace set in izkit.serving.child, not the default 5 s


@pytest.mark.parametrize(("script", "status"), [("exit 3", 3), ("kill -TERM $$", -signal.SIGTERM),
                                                 ("kill -KILL $$", -signal.SIGKILL)])
def test_the_watcher_exits_as_its_server_did_and_keeps_the_log_for_a_living_parent(script, status, tmp_path):
    from izkit.serving import child

    log = tmp_path / "izkit-serve-x.log"
    log.write_text("the server's last words\n")
    cmd = child.watched_command(["/bin/sh", "-c", script], grace=1.0, files=(str(log),))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, start_new_session=True)
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    assert log.read_text() == "the server's last words\n"  # its parent is alive: it may read why the server ended


def test_stop_removes_a_servers_files_only_in_the_process_that_registered_them(tmp_path):
    from izkit.serving import child

    log = tmp_path / "izkit-serve-x.log"
    for mine in (False, True):
        log.write_text("")
        proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
        child.register(proc, grace=1.0, files=(str(log),))
        if not mine:  # what a forked child of the registering process holds: its parent's server, its parent's log
            child.FILES[proc.pid] = (os.getpid() + 1, child.FILES[proc.pid][1])
        child.stop(proc)
        assert proc.poll() is not None
        assert log.exists() is not mine


def test_a_server_started_from_a_thread_outlives_the_thread(tmp_path, model_folder):
    # a parent-death signal set from izkit would fire when the starting *thread* ends; the server must not
    from izkit.serving.serve import LocalServer

    port = free_port()

    class FakeServer(LocalServer):
        def command(self):
            return [sys.executable, str(FAULT_SERVER), "--port", str(self.port)]

    box: list[LocalServer] = []
    t = threading.Thread(target=lambda: box.append(FakeServer(model_folder, port=port, startup_timeout=60).start()))
    t.start()
    t.join()
    server = box[0]
    try:
        time.sleep(1.0)  # more than the watcher's look at its parent
        assert server.alive()
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) == 0
    finally:
        server.stop()
    assert port_free(port) and not server.alive()


# ----------------------------------------------------------------------------------------------------------------------
# izkit serve


def _serve_parent(parents, folder: Path, sigint_ignored: bool = False):
    port = free_port()
    parent = parents(SERVE_PARENT, str(folder), str(port), sigint_ignored=sigint_ignored)
    parent.wait_until_serving(port)
    parent.wait_for("base_url=", 60)
    return parent, port


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_izkit_serve_stops_its_server_on_a_stop_signal(sig, parents, model_folder):
    # SIGINT as a shell script sends it to `izkit serve &`: the shell started izkit with SIGINT ignored
    parent, port = _serve_parent(parents, model_folder, sigint_ignored=(sig == signal.SIGINT))
    assert parent.signal_and_wait(sig, timeout=30) == 128 + sig
    assert_all_gone(parent.tree, port, parent)
    assert f"{signal.Signals(sig).name} received, stopping the server" in parent.text()


def test_izkit_serve_killed_leaves_no_server(parents, model_folder):
    parent, port = _serve_parent(parents, model_folder)
    parent.signal_and_wait(signal.SIGKILL)
    assert_all_gone(parent.tree, port, parent, within=AFTER_KILL_S)


def test_izkit_serve_under_nohup_keeps_serving_after_a_hangup(tmp_path, parents, model_folder):
    port = free_port()
    script = tmp_path / "nohup_parent.py"
    script.write_text(textwrap.dedent(SERVE_PARENT).format(fault_server=str(FAULT_SERVER)))
    parent = parents("import os, signal, sys\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
                     "os.execv(sys.executable, [sys.executable, sys.argv[1], *sys.argv[2:]])\n",
                     str(script), str(model_folder), str(port))
    parent.wait_until_serving(port)
    parent.wait_for("base_url=", 60)
    os.kill(parent.p.pid, signal.SIGHUP)
    time.sleep(1.0)
    assert parent.p.poll() is None and not port_free(port)  # still serving: nohup means it
    assert parent.signal_and_wait(signal.SIGTERM) == 128 + signal.SIGTERM
    assert_all_gone(parent.tree, port, parent)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_real_izkit_serve_leaves_no_transformers_serve_behind(sig, tmp_path):
    # the report, as a user runs it: `izkit serve --port P &`, then kill it
    izkit = Path(sys.executable).with_name("izkit")
    port = free_port()
    parent = Parent([str(izkit), "serve", "--model", "gemma-3-270m", "--port", str(port)], tmp_path / "serve.log")
    try:
        parent.wait_until_serving(port, timeout=300)
        assert any("transformers" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
                   for pid in alive(parent.tree))
        code = parent.signal_and_wait(sig)
        if sig == signal.SIGTERM:
            assert code == 128 + signal.SIGTERM
            assert_all_gone(parent.tree, port, parent)
        else:
            assert_all_gone(parent.tree, port, parent, within=AFTER_KILL_S)
    finally:
        parent.stop()


# ----------------------------------------------------------------------------------------------------------------------
# A Jupyter kernel


NOTEBOOK_CELL = """
import sys
from izkit.serving.serve import LocalServer

class FakeServer(LocalServer):
    def command(self):
        return [sys.executable, {fault_server!r}, "--port", str(self.port)]

server = FakeServer({folder!r}, port={port}, startup_timeout=60).start()
"""


@pytest.fixture
def kernel(tmp_path):
    jupyter_client = pytest.importorskip("jupyter_client")
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(env=_env(), cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    yield km, kc
    kc.stop_channels()
    if km.is_alive():
        km.shutdown_kernel(now=True)


def _run_cell(kc, code: str) -> None:
    reply = kc.execute_interactive(code, timeout=120, output_hook=lambda msg: None)
    assert reply["content"]["status"] == "ok", reply["content"]


def test_a_notebook_kernel_restart_leaves_no_server_behind(kernel, model_folder):
    km, kc = kernel
    port = free_port()
    _run_cell(kc, textwrap.dedent(NOTEBOOK_CELL).format(fault_server=str(FAULT_SERVER), folder=str(model_folder),
                                                        port=port))
    tree = descendants(km.provisioner.process.pid)
    try:
        assert tree and not port_free(port)
        km.interrupt_kernel()  # an interrupt (the stop button) is not a restart: the server stays
        time.sleep(1.0)
        assert not port_free(port) and alive(tree) == tree
        km.restart_kernel(now=True)  # what "Restart kernel" does when the kernel is busy or stuck: SIGKILL
        deadline = time.monotonic() + AFTER_KILL_S
        while (alive(tree) or not port_free(port)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(tree) and port_free(port), f"left behind after the restart: {alive(tree)}"
    finally:
        for pid in alive(tree):  # only what the old kernel started
            os.kill(pid, signal.SIGKILL)
