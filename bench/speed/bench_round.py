"""One recorded BO round, replayed: where its seconds go, with the machine as it is now.

A study record's per-round ``seconds`` are the wall time of a process that shared the machine; this replays one
round of one method from an archived record (the same GP refit, the same seeded EI passes, the same generator) and
splits its time into the GP fit, the acquisition's optimisation and generation, beside what the record says. It
checks that the replay wrote the instructions the record holds, so the figures are of the same work.

    python -m bench.speed.bench_round bench/data/study-answers/3000/antonyms-seed0/record.jsonl --round 12 --before

Records made before 2026-12-06 were proposed with a prediction that built k(X, Z) and k(x, x) in two kernel calls
and generated in passes of 32 rows; one call gives the same values but other last bits of the gradient, and
multistart L-BFGS-B then ends at other maximisers (bench/speed/bench_acquisition.py), and a pass's rows change
bfloat16's rounding. ``--before`` restores both (bench/common/before.py, the old code path kept to be measured), so
that such a record replays to the instructions it holds.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import torch

import izkit.strategies as strategies
from izkit.pipeline import Pipeline
from izkit.replay import replay
from izkit.strategies import strategy_for

from bench.common.before import BATCH_SIZE, two_call_prediction
from bench.common.report import emit


def timed(fn, bucket: dict[str, float], name: str):
    """fn, adding the seconds of every call to bucket[name]."""
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            bucket[name] = bucket.get(name, 0.0) + time.perf_counter() - t
    return wrapper


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("record", type=Path)
    ap.add_argument("--round", type=int, default=12)
    ap.add_argument("--method", default="instructzero")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--before", action="store_true", help="records made before 2026-12-06: two-call prediction, "
                    "passes of 32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rep = replay(args.record)
    rec, m, rnd = rep.record, args.method, args.round
    pipe, _ = Pipeline.from_record(rec.header)
    r = rep.round(m, rnd, pipe.generator, pipe.exemplars)  # the round as the loop gave it to the strategy
    spent: dict[str, float] = {}
    pipe.generator.generate = timed(pipe.generator.generate, spent, "generation")
    strategies.optimize_acquisition = timed(strategies.optimize_acquisition, spent, "acquisition")
    strategy = strategy_for(m)
    strategy.fit = timed(strategy.fit, spent, "GP fit")
    t = time.perf_counter()
    if args.before:
        pipe.generator.batch_size = BATCH_SIZE
    with two_call_prediction() if args.before else contextlib.nullcontext():
        prop = strategy.propose(r)
    total = time.perf_counter() - t
    line = rec.find("proposal", method=m, round=rnd)
    lines = [f"| {args.record.parent.name} {m} round {rnd} | seconds | recorded |", "|---|---|---|",
             f"| whole proposal ({prop.facts['drawn']} drawn, {prop.facts['attempts']} passes) | {total:.1f} | "
             f"{line['seconds']:.1f} ({line['drawn']} drawn) |"]
    lines += [f"| {name} | {s:.1f} | |" for name, s in spent.items()]
    same = prop.instructions == line["instructions"]
    emit("\n".join(lines + ["", f"same instructions as recorded: {same}"]), "bench_round")
    return 0 if same else 1  # other instructions: the seconds are not of the recorded work


if __name__ == "__main__":
    raise SystemExit(main())
