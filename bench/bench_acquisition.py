"""One BO round's acquisition pass, replayed from an archived record: a prediction with one w(X) against two.

``GaussianProcess.predict`` needs k(X, Z) and k(x, x); under eq. 9 both are built from w(X) = L^{-1} l(Z, X) and
S w(X). Until 2026-12-06 the two came from two kernel calls, each solving for w(X) and multiplying by S again;
``cross_train_diag`` computes them once. This refits the GP of each named round from the record (the same fit the
run did) and times the round's first acquisition pass both ways (the loop's settings: EI's top ``2 x batch``
maximisers from ``acq_restarts`` L-BFGS-B starts, the evaluated soft prompts excluded), interleaved, the fastest of
``--repeats`` kept. The values agree to rounding, but multistart L-BFGS-B is chaotic in the last bits of a gradient:
the two ways end at other maximisers, so the table also prints the best log-EI each found and how many of the
returned points coincide.

    python bench/bench_acquisition.py                     # antonyms seed 0 at 3,000 answers, rounds 4, 10, 17
    python bench/bench_acquisition.py RECORD --rounds 12 --repeats 3

Prints a markdown table and writes it to bench/out/bench_acquisition.md.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import torch

from izkit.acquisition import optimize_acquisition
from izkit.replay import replay
from izkit.seeds import round_seed
from izkit.strategies import soft_evals

from _before import two_call_prediction

DEFAULT = Path(__file__).parent / "study-answers" / "3000" / "antonyms-seed0" / "record.jsonl"


def one_pass(gp, cfg, rnd: int, method: str, evaluated: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Seconds, points (q, d) and log-EI (q,) of the round's first EI pass, as izkit.strategies.EIBatch runs it."""
    bounds = torch.stack([-torch.ones(cfg.d), torch.ones(cfg.d)]).double()  # (2, d)
    q = cfg.screen * cfg.round_sizes[rnd]
    t = time.perf_counter()
    Z, acq = optimize_acquisition(gp, bounds, q=q, n_starts=cfg.acq_restarts, raw_samples=cfg.acq_raw_samples,
                                  exclude=evaluated, seed=round_seed(cfg.seed, method, rnd), distinct_tol=1e-3)
    return time.perf_counter() - t, Z, acq


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("record", type=Path, nargs="?", default=DEFAULT)
    ap.add_argument("--rounds", default="4,10,17")
    ap.add_argument("--method", default="instructzero")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)  # what the loop gives the GP and the acquisition (izkit.gp.limit_threads)
    rep = replay(args.record)
    cfg = rep.settings.for_method(args.method)
    lines = [f"{args.record.parent.name}, {args.method}: the first acquisition pass of a round, one torch thread, "
             f"fastest of {args.repeats}", "",
             "| round | m (GP points) | GP refit s | two calls s | one call s | ratio | best log-EI two / one | "
             "points in common |", "|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for rnd in [int(r) for r in args.rounds.split(",")]:
        t = time.perf_counter()
        gp = rep.gp(args.method, upto_round=rnd - 1)
        fit_s = time.perf_counter() - t
        evaluated = torch.tensor([e["z"] for e in soft_evals(rep.evals(args.method)) if e["round"] < rnd],
                                 dtype=torch.float64)  # (e, d)
        best: dict[str, tuple[float, torch.Tensor, torch.Tensor]] = {}
        for _ in range(args.repeats):
            for name in ("two", "one"):
                with two_call_prediction() if name == "two" else contextlib.nullcontext():
                    s, Z, acq = one_pass(gp, cfg, rnd, args.method, evaluated)
                if name not in best or s < best[name][0]:
                    best[name] = (s, Z, acq)
        (s2, Z2, a2), (s1, Z1, a1) = best["two"], best["one"]
        common = int((torch.cdist(Z2, Z1).min(1).values < 1e-6).sum())
        row = (f"| {rnd} | {len(gp.y_train_)} | {fit_s:.1f} | {s2:.1f} | {s1:.1f} | {s2 / s1:.2f}x | "
               f"{float(a2.max()):.3f} / {float(a1.max()):.3f} | {common} of {len(Z2)} |")
        lines.append(row)
        print(row, flush=True)
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_acquisition.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
