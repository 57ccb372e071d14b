"""A study fanned out on Ray: each (task, seed) of an ``izkit compare`` is one Ray task on some node of a cluster.

``compare_on_ray(cfg, tasks, seeds, out, address)`` runs what :func:`izkit.studies.compare.compare` runs, with the same
records in the same folders (``out/<task>-seed<seed>/record.jsonl``), so ``izkit summary`` and ``--archive`` read a
Ray study as they read any other. Each pair is a Ray task that declares its resources (``cpus``, and ``gpus`` where
the models go on a GPU); Ray gives a task of ``cpus`` CPUs as many OpenMP threads, so a 2-core node runs two one-CPU
pairs side by side rather than two two-thread processes fighting over its cores.

Records travel with the tasks both ways, so a cluster need not share a file system: the driver sends a pair's record
as it stands (nothing, a partial one or a finished one), the worker writes it into its own ``out`` where that has
nothing recorded, goes on by the rule of every run (:func:`izkit.resume.plan_run`), and sends the record back when
the pair is finished; the driver writes it where its own copy differs. Where the nodes do share ``out``, both copies
are the same file and nothing is written twice. A pair that raises sends back its record as far as it got
(:class:`Failed`), so what was done reaches the driver and the same command resumes it; a worker that dies is retried
by Ray (``max_retries``) and resumes from the record it had written; the folder's lock
(:func:`izkit.records.locked_run`) still keeps two writers off one record: a pair that another process is running is
tried again once the others are done.

Without an address a local Ray instance starts on this machine with its CPUs; ``address="auto"`` joins the cluster
that ``ray start --head`` began here, and ``ray://host:10001`` a remote one. Ray is an optional dependency
(``pip install ray``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from izkit.studies.compare import pair_folder, run_pair
from izkit.config import PAIR_CPUS, PAIR_GPUS, Config
from izkit.loop import RunResult
from izkit.records import RECORD_NAME, RecordBusy, locked_run, write_whole
from izkit.resume import ACTIONS, record_state

BUSY = "busy"  # what a worker returns for a pair that another process holds


@dataclasses.dataclass(frozen=True)
class Failed:
    """What a worker returns for a pair that raised: its record as far as it got (empty if none) and the error."""

    record: bytes
    error: str


def compare_on_ray(cfg: Config, tasks: list[str], seeds: list[int], out: str | os.PathLike,
                   address: str | None = None, cpus: float = PAIR_CPUS, gpus: float = PAIR_GPUS,
                   progress: bool = True, poll_seconds: float = 10.0, max_retries: int = 2,
                   on_finished: Callable[[RunResult], Any] | None = None) -> list[RunResult]:
    """Every (task, seed) as a Ray task; returns the runs in :func:`izkit.studies.compare.compare`'s order (seed-major).

    Args:
        cfg: the study's config (its task and seed are replaced per pair).
        tasks, seeds: the pairs, submitted seed-major, so that a study stopped early still covers every task.
        out: the study folder, on the driver (and on every node, where they share it).
        address: a Ray cluster to join ("auto", "ray://host:port"); None starts a local one, or uses the Ray this
            process is already connected to.
        cpus, gpus: what each pair declares to Ray's scheduler (gpus > 0: the models go on the GPU Ray assigns).
        progress: a progress bar over finished pairs.
        poll_seconds: how long to wait before trying again a pair that another process holds.
        max_retries: times Ray reruns a pair whose worker process died (it resumes from its record).
        on_finished: called with each pair's result as soon as it is back on the driver, in the order they finish.
    """
    if cpus <= 0 or gpus < 0:
        raise ValueError(f"each pair needs cpus > 0 and gpus >= 0, got cpus={cpus}, gpus={gpus}")
    ray = _ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=progress)
    elif address is not None:
        raise ValueError(f"this process is already connected to Ray; cannot also join {address!r}")
    out = Path(out).resolve()
    pairs = [(task, seed) for seed in seeds for task in tasks]
    remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=max_retries)(pair_on_worker)
    if gpus > 0 and cfg.device is None:
        cfg = dataclasses.replace(cfg, device="cuda")  # the GPU Ray gives the task (it sets CUDA_VISIBLE_DEVICES)

    def submit(task: str, seed: int) -> Any:
        path = pair_folder(out, task, seed) / RECORD_NAME
        sent = path.read_bytes() if path.exists() else b""
        return remote.remote(cfg, task, seed, str(out), sent)

    pending = {submit(task, seed): (task, seed) for task, seed in pairs}
    results: dict[tuple[str, int], RunResult] = {}
    failed: dict[tuple[str, int], BaseException] = {}
    bar = _bar(len(pairs)) if progress else None
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        task, seed = pending.pop(ref)
        try:
            back = ray.get(ref)
            if back == BUSY:  # another process is writing this record: wait, then try again
                time.sleep(poll_seconds)
                pending[submit(task, seed)] = (task, seed)
                continue
            if isinstance(back, Failed):  # what was done comes home before the error is reported
                if back.record:
                    _write_back(pair_folder(out, task, seed) / RECORD_NAME, back.record)
                raise RuntimeError(back.error)
            _write_back(pair_folder(out, task, seed) / RECORD_NAME, back)
            results[task, seed] = run_pair(cfg, task, seed, out, progress=False)  # read back: no model is loaded
            if on_finished is not None:
                on_finished(results[task, seed])
        except Exception as err:  # noqa: BLE001 (a failed pair, or its archiving, must not lose the others)
            failed[task, seed] = err
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if failed:
        names = ", ".join(f"{t} seed {s}" for t, s in failed)
        first = next(iter(failed.values()))
        raise RuntimeError(f"{len(failed)} of {len(pairs)} pairs failed on Ray ({names}); their records in {out} keep "
                           f"what was done, and the same command resumes them. The first error: {first}") from first
    return [results[p] for p in pairs]


def pair_on_worker(cfg: Config, task: str, seed: int, out: str, sent: bytes) -> bytes | str | Failed:
    """On a Ray worker: the driver's record written where this node has nothing recorded, the pair run (or resumed,
    or read back), and the finished record returned; :data:`BUSY` where another process holds it;
    :class:`Failed`, with the record as far as it got, where the pair raised."""
    folder = pair_folder(Path(out), task, seed)
    path = folder / RECORD_NAME
    try:
        with locked_run(folder):  # no other process writes the record between the look and the run
            if sent and ACTIONS[record_state(folder)] == "start":  # nothing recorded here: not the driver's folder
                write_whole(path, sent)
            run_pair(cfg, task, seed, Path(out), progress=False)
    except RecordBusy:
        return BUSY
    except Exception as err:  # noqa: BLE001 (sent back with the partial record; the driver reports it)
        return Failed(path.read_bytes() if path.exists() else b"", f"{type(err).__name__}: {err}")
    return path.read_bytes()


def _write_back(path: Path, record: bytes) -> None:
    """The finished record where the driver's copy lacks or differs from it (written whole, then moved in place)."""
    if not path.exists() or path.read_bytes() != record:
        write_whole(path, record)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError("--ray needs Ray: pip install ray (izkit is tested with ray 2.60)") from None
    return ray


def _bar(total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="pairs", unit="pair")
