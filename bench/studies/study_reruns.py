"""The same (task, seed) pairs run in two sittings: how far re-running a pair moves each method's test score.

The second sitting's per-pair table is read from bench/RESULTS.md as committed at cd7fb1f (its records were lost with
its machine); this sitting's from the study's records (a live folder, its archive, or both). No model is loaded.

    python -m bench.studies.study_reruns runs/study bench/data/study

Prints a markdown table and writes it to bench/out/study_reruns.md.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import numpy as np

from izkit.studies.study import finished_runs, method_test_score

from bench.common.paths import ROOT
from bench.common.report import emit

SECOND_SITTING = "cd7fb1f"
METHODS = ["instructzero", "matern", "uniform", "ape", "reference"]


def second_sitting() -> dict[tuple[str, int], list[float]]:
    """(task, seed) -> test scores of METHODS, from the per-pair table of RESULTS.md at SECOND_SITTING."""
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{SECOND_SITTING}:bench/RESULTS.md"],
                          capture_output=True, text=True, check=True).stdout
    table = text.split("Per (task, seed): test accuracy")[1].split("Best dev so far")[0]
    rows = (re.match(r"\| (\S+) \| (\d) \|((?: [\d.]+ \|){5})", line) for line in table.splitlines())
    return {(m[1], int(m[2])): [float(v) for v in m[3].split("|")[:-1]] for m in rows if m}


def main(folders: list[str]) -> None:
    old = second_sitting()
    rows, same, ref_same, dd = [], 0, 0, []
    for rep in finished_runs(folders):
        key = (Path(rep.config["task"]).stem, rep.config["seed"])
        if key not in old:
            continue
        new = [method_test_score(rep, m, "accuracy") for m in METHODS]
        same += sum(abs(a - b) < 1e-3 for a, b in zip(new[:4], old[key][:4]))
        ref_same += abs(new[4] - old[key][4]) < 1e-3
        dd.append((new[0] - new[2]) - (old[key][0] - old[key][2]))
        rows.append(f"| {key[0]} | {key[1]} | " + " | ".join(f"{o:.3f} → {n:.3f}" for o, n in zip(old[key], new)) + " |")
    lines = ["| task | seed | InstructZero | BO (plain Matern) | Uniform | APE-style | Hand-written |",
             "|---|---|---|---|---|---|---|", *rows, "",
             f"{same} of {4 * len(rows)} (pair, searching method) test scores the same as in the second sitting; the "
             f"hand-written instruction's in {ref_same} of {len(rows)} pairs.", "",
             f"InstructZero - Uniform per pair moved by {np.mean(np.abs(dd)):.3f} on average (largest "
             f"{np.max(np.abs(dd)):.3f}); its mean over these pairs by {np.mean(dd):+.3f}."]
    emit("\n".join(lines), "study_reruns")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", default=["runs/study", "bench/data/study"],
                    help="study folders, read as one (default: runs/study bench/data/study)")
    main(ap.parse_args().folders)
