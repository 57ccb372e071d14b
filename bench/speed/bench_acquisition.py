"""One BO round's acquisition pass, replayed from an archived record: a prediction with one w(X) against two.

``GaussianProcess.predict`` needs k(X, Z) and k(x, x); under eq. 9 both are built from w(X) = L^{-1} l(Z, X) and
S w(X). Until 2026-12-06 the two came from two kernel calls, each solving for w(X) and multiplying by S again;
``cross_train_diag`` computes them once. This refits the GP of each named round from the record (the same fit the
run did) and times the round's first acquisition pass both ways (the loop's settings: EI's top ``2 x batch``
maximisers from ``acq_restarts`` L-BFGS-B starts, the evaluated soft prompts excluded), interleaved, the fastest of
``--repeats`` kept. The values agree to rounding, but multistart L-BFGS-B is chaotic in the last bits of a gradient:
the two ways end at other maximisers, so the table also prints the best log-EI each found and how many of the
returned points coincide.

    python -m bench.speed.bench_acquisition              # antonyms seed 0 at 3,000 answers, rounds 4, 10, 17
    python -m bench.speed.bench_acquisition RECORD --rounds 12 --repeats 3

Prints a markdown table and writes it to bench/out/bench_acquisition.md.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import torch

from izkit.replay import replay
from izkit.strategies import EIBatch, Round
from izkit.studies.study import archived_study

from bench.common.before import two_call_prediction
from bench.common.report import emit

DEFAULT = Path("3000") / "antonyms-seed0" / "record.jsonl"  # under the archived study at 1000 and 3000 answers


class NoGeneration:
    """A generator that writes nothing, so that a pass times the acquisition alone."""

    @staticmethod
    def generate(Z, exemplars) -> list[str]:
        return [""] * len(Z)


def one_pass(gp, r: Round) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Seconds, points (q, d) and acquisition values (q,) of the round's first pass, izkit.strategies.EIBatch's own
    (``screen x size`` candidates, the config's batch rule, the evaluated soft prompts excluded)."""
    batch = EIBatch(gp, r)
    t = time.perf_counter()
    Z, _ = batch.draw(r.cfg.screen * r.size, 0, None)
    return time.perf_counter() - t, Z, torch.tensor(batch.acq_values)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("record", type=Path, nargs="?", help=f"default: the archived study-answers/{DEFAULT}")
    ap.add_argument("--rounds", default="4,10,17")
    ap.add_argument("--method", default="instructzero")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)  # what the loop gives the GP and the acquisition (izkit.gp.limit_threads)
    args.record = args.record or archived_study("study-answers") / DEFAULT
    rep = replay(args.record)
    lines = [f"{args.record.parent.name}, {args.method}: the first acquisition pass of a round, one torch thread, "
             f"fastest of {args.repeats}", "",
             "| round | m (GP points) | GP refit s | two calls s | one call s | ratio | best log-EI two / one | "
             "points in common |", "|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for rnd in [int(r) for r in args.rounds.split(",")]:
        t = time.perf_counter()
        gp = rep.gp(args.method, upto_round=rnd - 1)
        fit_s = time.perf_counter() - t
        r = rep.round(args.method, rnd, NoGeneration())
        best: dict[str, tuple[float, torch.Tensor, torch.Tensor]] = {}
        for _ in range(args.repeats):
            for name in ("two", "one"):
                with two_call_prediction() if name == "two" else contextlib.nullcontext():
                    s, Z, acq = one_pass(gp, r)
                if name not in best or s < best[name][0]:
                    best[name] = (s, Z, acq)
        (s2, Z2, a2), (s1, Z1, a1) = best["two"], best["one"]
        common = int((torch.cdist(Z2, Z1).min(1).values < 1e-6).sum())
        row = (f"| {rnd} | {len(gp.y_train_)} | {fit_s:.1f} | {s2:.1f} | {s1:.1f} | {s2 / s1:.2f}x | "
               f"{float(a2.max()):.3f} / {float(a1.max()):.3f} | {common} of {len(Z2)} |")
        lines.append(row)
        print(row, flush=True)
    emit("\n".join(lines), "bench_acquisition")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
