"""izkit.records: lines are appended and read back, a torn last line is dropped, a corrupt one is named."""

import json
import os

import pytest

from izkit.records import RecordError, RunRecord, read_lines


@pytest.fixture()
def rec(tmp_path):
    r = RunRecord.create(tmp_path / "record.jsonl", {"config": {"task": "sum", "seed": 0}})
    for i in range(3):
        r.append({"kind": "eval", "method": "instructzero", "round": 0, "index": i, "mean": float(i)})
    return r


def test_round_trip_and_flush(rec):
    lines, good = read_lines(rec.path)  # a second reader sees every line at once: each append is flushed
    assert [ln["kind"] for ln in lines] == ["header", "eval", "eval", "eval"]
    assert good == rec.path.stat().st_size
    assert [e["index"] for e in RunRecord.open(rec.path).evals("instructzero")] == [0, 1, 2]


def test_nan_and_inf_are_written_as_null(rec):
    rec.append({"kind": "eval", "method": "x", "mean": float("nan"), "scores": [1.0, float("inf")]})
    last = json.loads(rec.path.read_text().splitlines()[-1])
    assert last["mean"] is None and last["scores"] == [1.0, None]


@pytest.mark.parametrize("tail", ['{"kind": "eval", "me', '{"kind": "eval"}', "garbage\n"])
def test_torn_last_line_is_dropped_and_cut_off(rec, tail):
    size = rec.path.stat().st_size
    with open(rec.path, "a") as f:
        f.write(tail)
    reopened = RunRecord.open(rec.path)
    assert len(reopened.lines) == 4
    assert rec.path.stat().st_size == size  # the torn tail is cut before anything new is appended
    reopened.append({"kind": "done"})
    assert RunRecord.open(rec.path).done


def test_corrupt_line_in_the_middle_is_named(rec):
    lines = rec.path.read_text().splitlines()
    lines[2] = '{"kind": "eval", "index": 1,,}'
    rec.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordError, match=r"record\.jsonl, line 3: corrupt record line"):
        RunRecord.open(rec.path)


def test_record_must_start_with_header(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"kind": "eval"}\n')
    with pytest.raises(RecordError, match="line 1: a record must start with a header"):
        read_lines(p)


def test_create_refuses_to_overwrite(rec):
    with pytest.raises(RecordError, match="already exists; resume it with --resume"):
        RunRecord.create(rec.path, {"config": {}})


def test_missing_record(tmp_path):
    with pytest.raises(RecordError, match="no run record here"):
        RunRecord.open(tmp_path / "nope.jsonl")


def test_comparable_lines_drop_the_header_and_what_differs_between_two_runs(tmp_path):
    from izkit.records import RunRecord, comparable_lines

    a, b = (RunRecord.create(tmp_path / n / "record.jsonl", {"config": {"base_url": n}}) for n in ("a", "b"))
    for rec, t in ((a, 1.0), (b, 9.0)):
        rec.append({"kind": "eval", "mean": 0.5, "seconds": t, "cache_hit": t > 5, "nested": [{"seconds": t}]})
    assert comparable_lines(a.path) == comparable_lines(b.path) == [{"kind": "eval", "mean": 0.5, "nested": [{}]}]
    b.append({"kind": "done"})
    assert comparable_lines(a.path) != comparable_lines(b.path)


def _hold_lock(folder):
    """Another process that takes the run folder's lock and keeps it until its stdin closes."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import sys; from izkit.records import locked_run\n"
                              f"with locked_run({str(folder)!r}): print('locked', flush=True); sys.stdin.read()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


def test_a_run_folder_is_locked_by_one_process_and_freed_when_it_ends(tmp_path):
    import subprocess
    import sys

    from izkit.records import RecordBusy, locked_run

    with locked_run(tmp_path):
        with locked_run(tmp_path):  # re-entrant within a process (execute holds it while search takes it again)
            pass
        other = subprocess.run([sys.executable, "-c", "from izkit.records import locked_run\n"
                                f"with locked_run({str(tmp_path)!r}): pass"], capture_output=True, text=True)
        assert other.returncode != 0 and "RecordBusy" in other.stderr  # the outer `with` still holds it
    child = _hold_lock(tmp_path)  # released when the outermost `with` ended
    try:
        with pytest.raises(RecordBusy, match=f"another process \\(pid {child.pid}\\) is writing this run"):
            with locked_run(tmp_path):
                pass
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    with locked_run(tmp_path):  # the kernel dropped the lock with the process: nothing stale is left
        pass


def test_a_file_system_without_locks_warns_and_runs_unlocked(tmp_path, monkeypatch):
    import errno
    import os

    import izkit.records as records

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(records.fcntl, "flock", no_locks)
    with pytest.warns(RuntimeWarning, match="cannot lock the run folder"):
        with records.locked_run(tmp_path):
            assert records._HELD[tmp_path.resolve()][0] == -1  # unlocked, and known to be
    assert tmp_path.resolve() not in records._HELD  # nothing to close


def test_a_whole_write_that_fails_leaves_the_old_file_and_no_piece_beside_it(tmp_path, monkeypatch):
    from izkit.records import write_whole

    path = tmp_path / "archive" / "record.jsonl"
    write_whole(path, b"old\n")
    real_fsync = os.fsync

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_whole(path, b"new\n")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert path.read_bytes() == b"old\n" and sorted(p.name for p in path.parent.iterdir()) == ["record.jsonl"]
    write_whole(path, b"new\n")
    assert path.read_bytes() == b"new\n" and len(list(path.parent.iterdir())) == 1
