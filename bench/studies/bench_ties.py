"""Ties on dev accuracy: does the gold answer's log-likelihood pick a better instruction than "the first one scored"?

With 20 dev examples many instructions tie at the best dev accuracy (issue 14, point 3). For every run folder given
(records of ``izkit run``/``compare`` or of bench/studies/bench_exploration.py), for each method with two or more
instructions tied at its best dev accuracy, on dev data only (never the test split):

- the tied instructions' dev log-likelihood of the gold answers (the same 20 dev examples; one loglik pass, no
  generation);
- their accuracy on up to 50 induce examples that are neither exemplars nor dev ("fresh dev");
- the fresh-dev accuracy of the pick of each rule: the first scored (izkit's rule), the latest scored (the authors'),
  the highest dev loglik, and the mean over the tied set (a random pick).

    python -m bench.studies.bench_ties bench/out/exploration        # every record under the folder
    python -m bench.studies.bench_ties runs/study

Prints a Markdown table and writes bench/out/ties.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from bench.common.report import emit  # noqa: E402

from izkit.config import Config  # noqa: E402
from izkit.pipeline import Pipeline  # noqa: E402
from izkit.records import RECORD_NAME, RunRecord  # noqa: E402
from izkit.studies.study import bootstrap_ci, wilcoxon_p  # noqa: E402
from izkit.tasks import load_task  # noqa: E402

N_FRESH = 50


def fresh_dev(task, cfg: Config) -> tuple:
    """Up to N_FRESH induce examples that the run's exemplars and dev set do not use (never the test split)."""
    return task.spare_induce(cfg.kappa, cfg.n_dev, cfg.seed, limit=N_FRESH)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+")
    args = ap.parse_args()
    rows, picks = [], {"first": [], "latest": [], "loglik": [], "mean": []}
    blackbox = None
    records = [(folder, path) for folder in args.folders for path in sorted(Path(folder).rglob(RECORD_NAME))]
    for folder, path in tqdm(records, desc="records", unit="run"):
        rec = RunRecord.read(path)  # read only: a study may still be writing beside it
        if rec.header.get("objective") != "accuracy":
            continue
        cfg = Config.from_dict(rec.header["config"])
        if blackbox is None:
            blackbox = Pipeline.from_config(cfg).blackbox  # one model for every record (the default pair)
        task = load_task(cfg.task, root=cfg.root)
        sp = task.splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed)
        for method in dict.fromkeys(e["method"] for e in rec.evals()):
            evals = [e for e in rec.evals(method) if e["mean"] is not None]
            if not evals:
                continue
            top = max(e["mean"] for e in evals)
            tied = list(dict.fromkeys(e["instruction"] for e in evals if e["mean"] == top))
            if len(tied) < 2:
                continue
            ll = blackbox.score(tied, sp.dev, metric=task.metric, objective="loglik").means
            fresh = blackbox.score(tied, fresh_dev(task, cfg), metric=task.metric, objective="accuracy").means
            f = dict(zip(tied, fresh))
            picks["first"].append(f[tied[0]])
            picks["latest"].append(f[tied[-1]])
            picks["loglik"].append(f[tied[int(np.argmax(ll))]])
            picks["mean"].append(float(np.mean(fresh)))
            rows.append(f"| {path.parent.relative_to(folder)} | {method} | {len(tied)} at {top:.2f} | "
                        f"{f[tied[0]]:.2f} | {f[tied[-1]]:.2f} | {f[tied[int(np.argmax(ll))]]:.2f} | "
                        f"{np.mean(fresh):.2f} |")
    n = len(picks["first"])
    better = sum(a > b for a, b in zip(picks["loglik"], picks["first"]))
    worse = sum(a < b for a, b in zip(picks["loglik"], picks["first"]))
    lines = [f"Ties at the best dev accuracy, {n} (run, method) cases; fresh dev = accuracy on up to {N_FRESH} unused "
             "induce examples", "", "| run | method | tied | first | latest | max dev loglik | tied mean |",
             "|---|---|---|---|---|---|---|", *rows, "",
             "| rule | mean fresh-dev accuracy of its pick |", "|---|---|"]
    lines += [f"| {k} | {np.mean(v):.3f} |" for k, v in picks.items() if v]
    lines.append(f"\nloglik tie-break against first-scored: better in {better}, worse in {worse}, equal in "
                 f"{n - better - worse} of {n} cases")
    if n:
        for rule in ("loglik", "latest"):
            d = np.array(picks[rule]) - np.array(picks["first"])
            lo, hi = bootstrap_ci(d)
            lines.append(f"{rule} - first, paired over the {n} cases: mean {d.mean():+.4f}, 95% bootstrap CI "
                         f"[{lo:+.4f}, {hi:+.4f}], Wilcoxon p = {wilcoxon_p(d):.3g}")
    emit("\n".join(lines), "ties")


if __name__ == "__main__":
    main()
