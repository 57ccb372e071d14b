"""Child processes that never outlive their parent: a watcher between izkit and a server it starts.

``watched_command(cmd)`` wraps a command so that it runs under this file as a script (``python -P child.py --watch
PARENT GRACE [--remove FILE]... -- CMD...``). The watcher is the leader of a new process group and runs the command as
its child in the same group; it ends the whole group (SIGTERM, then SIGKILL after a grace period) as soon as its
parent is gone, however the parent died (SIGKILL included: a notebook kernel restart, a test runner, a process
manager), and then removes the files that go with the server (its temporary log), which nobody is left to read.
``register(proc)`` also puts handlers in front of SIGTERM, SIGINT and SIGHUP whose default action is still to end the
process: they stop every registered group first (and remove its files), then end the process as the signal would have.

Only the standard library is imported here: the watcher runs with ``-P``, without izkit on its path.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time

logger = logging.getLogger(__name__)

# LocalServer starts ``python -P child.py --watch PARENT GRACE -- transformers serve ...`` in a new session; that
# watcher is the process group's leader and runs the server as its child in the same group. The watcher looks at its
# parent pid every WATCH_INTERVAL_S and ends the server (SIGTERM to the group, SIGKILL after the grace period) as soon
# as its parent is gone, however the parent died. Why not PR_SET_PDEATHSIG straight from izkit: it fires when the
# *thread* that started the child exits (a notebook widget's or a pool's thread would kill a healthy server), and a
# preexec_fn is unsafe in a process with threads (torch, the OpenAI event loop). The watcher itself is one thread, so
# it may give the server a parent-death signal (SIGKILL if the watcher is killed), and it ends the whole group, so a
# wrapper that forks the real server cannot leave it behind.

WATCH_INTERVAL_S = 0.2  # how often the watcher checks that its parent is still there
STOP_GRACE_S = 5.0  # SIGTERM -> SIGKILL delay, however a server is stopped (stop(), a signal, a dead parent)
WATCHER_KILL_S = 1.0  # how long the watcher waits after its SIGKILL before it reaps the server
STEP_IN_S = WATCHER_KILL_S + 2.0  # past the grace, what izkit gives the watcher before it kills the group itself
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

LIVE: dict[int, subprocess.Popen] = {}  # group id -> watcher, for every server this process runs (a forked child
# inherits the dict, but kill_group leaves alone what is not its own child)
HANDLED: set[int] = set()  # the signals whose handler this module installed
GRACE: dict[int, float] = {}  # group id -> its SIGTERM -> SIGKILL grace
FILES: dict[int, tuple[int, tuple[str, ...]]] = {}  # group id -> (the pid that registered it, the files removed
# once it is stopped: a temporary log); a forked child that inherits the dict leaves the files of its parent's servers


def leader_state(proc: subprocess.Popen) -> str:
    """"running", "exited" (a zombie: its pid, the group's id, is still reserved) or "reaped" (pid may be reused).

    Uses waitid with WNOWAIT, so nothing is reaped and no Popen lock is taken (safe inside a signal handler). Where
    there is no waitid (macOS), Popen.poll reaps at once: "exited" then means reaped a moment ago."""
    if not hasattr(os, "waitid"):
        return "running" if proc.poll() is None else "exited"
    if proc.returncode is not None:
        return "reaped"
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return "reaped"
    return "running" if info is None else "exited"


def wait_leader(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the leader to exit; True if it did."""
    deadline = time.monotonic() + timeout
    while leader_state(proc) == "running":
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM ``proc``'s process group, SIGKILL it if its leader is still up after ``grace`` (+ ``STEP_IN_S``)
    seconds, SIGKILL what outlived the leader, wait for the group to be empty; reap.

    The leader (the watcher) enforces the grace itself and reaps the server, so izkit steps in only past the watcher's
    own deadline: a server killed over the watcher's head would be left to init to reap. The leader is reaped only at
    the end: until then its pid, the group's id, cannot be given to another process. A leader that is not this
    process's child (already reaped, or started by the process this one was forked from) is left alone."""
    state = leader_state(proc)
    if state == "reaped":
        return
    if state == "running":
        signal_group(proc.pid, signal.SIGTERM)
        if not wait_leader(proc, grace + STEP_IN_S):
            logger.warning("the model server (process group %d) ignored SIGTERM for %.0f s: killing it", proc.pid,
                           grace + STEP_IN_S)
            signal_group(proc.pid, signal.SIGKILL)
            wait_leader(proc, grace)
    signal_group(proc.pid, signal.SIGKILL)  # stragglers of the group (a wrapper's children)
    deadline = time.monotonic() + WATCHER_KILL_S
    while group_members(proc.pid) and time.monotonic() < deadline:  # a zombie left to init counts as gone
        time.sleep(0.02)
    proc.poll()


def stop_all_then_die(signum: int, frame: object) -> None:
    """Handler put in front of a stop signal whose default action ends the process: stop every server, then die."""
    for proc in list(LIVE.values()):
        stop(proc)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)  # end as the signal would have ended us


def install_stop_handlers() -> None:
    """For each of SIGTERM, SIGINT, SIGHUP whose action is still the default (end the process): stop the servers
    first. Handlers the program set itself, Python's KeyboardInterrupt and ignored signals are left alone (the context
    manager, the finalizer at exit and the watcher cover those). Only the main thread can set handlers."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in STOP_SIGNALS:
        if sig not in HANDLED and signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, stop_all_then_die)
            HANDLED.add(sig)


def watched_command(cmd: list[str], grace: float | None = None, files: tuple[str, ...] = ()) -> list[str]:
    """``cmd`` run under the watcher: this file as a script (``-P``: its folder is not put on sys.path, so keep this
    module's top-level imports to the standard library). ``grace``: SIGTERM -> SIGKILL (default STOP_GRACE_S);
    ``files``: removed by the watcher once it has ended the server because its parent is gone."""
    grace = STOP_GRACE_S if grace is None else grace
    remove = [a for f in files for a in ("--remove", os.fspath(f))]
    return [sys.executable, "-P", os.path.abspath(__file__), "--watch", str(os.getpid()), str(grace), *remove, "--",
            *cmd]


def remove_files(files: tuple[str, ...]) -> None:
    """Remove each file that is still there; warn about one that cannot be removed."""
    for f in files:
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass
        except OSError as err:
            logger.warning("could not remove %s: %s", f, err)


def group_members(pgid: int) -> list[int] | None:
    """The live (non-zombie) processes of group ``pgid``, from /proc; None where there is no /proc."""
    if not os.path.isdir("/proc/self"):
        return None
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def end_child_and_group(child: subprocess.Popen, grace: float) -> None:
    """In the watcher: SIGTERM the child and everything else in this group, SIGKILL what is left after ``grace``."""
    me = os.getpid()

    def others() -> list[int]:
        child.poll()
        # no group of its own (started without a new session): the child only, never the caller's group
        members = group_members(os.getpgrp()) if os.getpgrp() == me else None
        if members is None:  # no /proc: the child is all we know of
            return [child.pid] if child.returncode is None else []
        return [p for p in members if p != me]

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, WATCHER_KILL_S)):
        for pid in others():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while others() and time.monotonic() < deadline:
            time.sleep(0.05)
    child.wait()


def watch(parent: int, grace: float, cmd: list[str], files: tuple[str, ...] = ()) -> int:
    """The watcher's main: run ``cmd``; end it and its group when ``parent`` is gone or a stop signal arrives, and
    remove ``files`` if the parent is gone.

    Exits the way the child exited (its code, or the same signal), so the parent sees the server's own status."""
    stop: list[int] = []
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, frame: stop.append(signum))
    if os.getppid() != parent:
        logger.warning("izkit watcher: the process that started the model server (pid %d) is already gone", parent)
        remove_files(files)
        return 1
    me = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

    def die_with_watcher() -> None:  # in the child, between fork and exec (this process has one thread)
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != me:  # the watcher died before the prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    try:
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=die_with_watcher)
    except OSError as err:
        logger.error("izkit watcher: cannot start %s: %s", cmd[0], err)
        return 127
    reason = ""
    while child.poll() is None and not reason:
        if stop:
            reason = f"{signal.Signals(stop[0]).name} received"
        elif os.getppid() != parent:
            reason = f"the process that started it (pid {parent}) is gone"
        else:
            time.sleep(WATCH_INTERVAL_S)
    if reason:
        logger.warning("izkit watcher: stopping the model server (pid %d): %s", child.pid, reason)
    end_child_and_group(child, grace)
    if os.getppid() != parent:  # nobody is left to read the server's log
        remove_files(files)
    if child.returncode < 0:  # died of a signal: die of the same one
        if -child.returncode not in (signal.SIGKILL, signal.SIGSTOP):  # those two have no handler to reset
            signal.signal(-child.returncode, signal.SIG_DFL)
        os.kill(me, -child.returncode)
    return child.returncode


def main(argv: list[str]) -> int:
    """``child.py --watch PARENT GRACE [--remove FILE]... -- CMD...`` (see :func:`watched_command`)."""
    files, rest = [], argv[3:]
    while len(rest) >= 2 and rest[0] == "--remove":
        files.append(rest[1])
        rest = rest[2:]
    if len(argv) < 3 or argv[0] != "--watch" or len(rest) < 2 or rest[0] != "--":
        print("usage: child.py --watch PARENT_PID GRACE_S [--remove FILE]... -- COMMAND...", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return watch(int(argv[1]), float(argv[2]), rest[1:], tuple(files))


def stop(proc: subprocess.Popen, grace: float | None = None) -> None:
    """Stop one watched group, remove its files and forget it (``grace``: SIGTERM -> SIGKILL; default the one it was
    registered with, else STOP_GRACE_S)."""
    kill_group(proc, GRACE.get(proc.pid, STOP_GRACE_S) if grace is None else grace)
    owner, files = FILES.pop(proc.pid, (0, ()))
    if owner == os.getpid():
        remove_files(files)
    LIVE.pop(proc.pid, None)
    GRACE.pop(proc.pid, None)


def register(proc: subprocess.Popen, grace: float | None = None, files: tuple[str, ...] = ()) -> None:
    """Remember a watched group so a stop signal to this process ends it first (``grace``: SIGTERM -> SIGKILL,
    default STOP_GRACE_S; ``files``: removed once it is stopped, by :func:`stop` or that signal)."""
    LIVE[proc.pid] = proc
    GRACE[proc.pid] = STOP_GRACE_S if grace is None else grace
    FILES[proc.pid] = (os.getpid(), tuple(os.fspath(f) for f in files))
    install_stop_handlers()


if __name__ == "__main__":  # the watcher (see watched_command)
    sys.exit(main(sys.argv[1:]))
