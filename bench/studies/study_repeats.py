"""Where the careful pick's draws go (issue 47): per method, candidates drawn per new instruction in the archived
answers study, and what the extra draws wrote, read from the records alone (no model).

Every round draws candidates until it has its size in instructions the method has not scored; the proposal line keeps
the drawn candidates that wrote a known instruction (its ``preimages``). Each such candidate is either a repeat of an
instruction scored in an earlier round (the generator's reachable set saturating where the search looks) or of one
drawn earlier in the same round. Uniform draws its soft prompts at random, so its rate is what saturation alone costs;
a BO's excess over it is what its batch's concentration costs.

A second table asks whether a repeat could be told before decoding, from the run's own soft prompts: for every
candidate drawn after round 0 (those kept, read from the eval lines, and the preimages), the distance to the nearest
soft prompt drawn in an earlier round of the same method, and whether the candidate wrote that neighbour's
instruction or any instruction scored before. If repeats sat close to known soft prompts, keeping EI's batch a radius
away from them (preimages as exclusions) would skip them.

    python -m bench.studies.study_repeats                 # both numbers of answers of bench/data/study-answers
    python -m bench.studies.study_repeats --answers 3000

Prints Markdown and writes it to bench/out/study_repeats.md.
"""

from __future__ import annotations

import argparse
import collections
import json

import numpy as np

from bench.common.report import emit
from izkit.methods import SEARCHES, label
from izkit.studies.study import archived_study


def tally(record: str) -> dict[str, collections.Counter]:
    """Per method: candidates drawn, new instructions, repeats of an earlier round's and of this round's."""
    out: dict[str, collections.Counter] = {}
    scored: dict[str, set[str]] = collections.defaultdict(set)
    for line in map(json.loads, open(record)):
        if line.get("kind") != "proposal" or line["method"] not in SEARCHES:
            continue
        c = out.setdefault(line["method"], collections.Counter())
        known = scored[line["method"]]
        pre = line.get("preimages") or {}
        for text in pre.get("instructions", []) if isinstance(pre, dict) else []:
            c["earlier" if text in known else "same round"] += 1
        c["drawn"] += line.get("drawn", len(line["instructions"]))
        c["new"] += line.get("new", len(line["instructions"]))
        c["rounds"] += 1
        known |= set(line["instructions"])
    return out


RADII = (0.05, 0.1, 0.2, 0.5)  # Euclidean, in the soft prompts' box [-1, 1]^d (d = 10: its diagonal is 6.3)


def neighbours(record: str) -> dict[str, list[tuple[float, bool, bool]]]:
    """Per BO or random search: (distance to the nearest earlier round's soft prompt, wrote that one's instruction,
    wrote an instruction scored in an earlier round) for every candidate drawn after round 0."""
    lines = [json.loads(line) for line in open(record)]
    kept: dict[tuple[str, int], list[tuple[list[float], str]]] = collections.defaultdict(list)
    for e in lines:
        if e.get("kind") == "eval" and e.get("z") is not None:
            kept[e["method"], e["round"]].append((e["z"], e["instruction"]))
    out: dict[str, list[tuple[float, bool, bool]]] = collections.defaultdict(list)
    known: dict[str, list[tuple[list[float], str]]] = collections.defaultdict(list)
    scored: dict[str, set[str]] = collections.defaultdict(set)
    for line in lines:
        if line.get("kind") != "proposal" or line["method"] not in SEARCHES:
            continue
        m, pre = line["method"], line.get("preimages") or {}
        drawn = kept[m, line["round"]] + list(zip(pre.get("z", []), pre.get("instructions", [])))
        if known[m] and line["round"] > 0:
            Z = np.asarray([z for z, _ in known[m]])  # (k, d)
            for z, text in drawn:
                dist = np.linalg.norm(Z - np.asarray(z), axis=1)  # (k,)
                j = int(dist.argmin())
                out[m].append((float(dist[j]), known[m][j][1] == text, text in scored[m]))
        known[m] += drawn
        scored[m] |= set(line["instructions"])
    return out


def neighbour_lines(records: list[str], answers: str) -> list[str]:
    """The second table (module docstring) over ``records``."""
    pooled: dict[str, list[tuple[float, bool, bool]]] = collections.defaultdict(list)
    for r in records:
        for m, rows in neighbours(r).items():
            pooled[m] += rows
    lines = [f"### {answers} answers: could a repeat be told from the nearest earlier soft prompt?", "",
             "| method | draws after round 0 | repeats of an earlier round | median distance to the nearest |"
             + "".join(f" within {r}: share / writes its instruction / repeats / of all repeats |" for r in RADII),
             "|---|---|---|---|" + "---|" * len(RADII)]
    for m in SEARCHES:
        if m not in pooled:
            continue
        a = np.asarray(pooled[m], dtype=float)  # (n, 3)
        row = f"| {label(m)} | {len(a):,} | {a[:, 2].mean():.2f} | {np.median(a[:, 0]):.2f} |"
        for r in RADII:
            w = a[:, 0] < r
            row += (f" {w.mean():.2f} / {a[w, 1].mean():.2f} / {a[w, 2].mean():.2f} / "
                    f"{a[w, 2].sum() / max(a[:, 2].sum(), 1):.2f} |" if w.any() else " 0.00 / - / - / 0.00 |")
        lines.append(row)
    return lines + [""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--answers", default="1000,3000", help="which answers allowed of the answers study")
    args = ap.parse_args()
    lines = []
    for answers in args.answers.split(","):
        folder = archived_study("study-answers") / answers
        records = sorted(str(p) for p in folder.glob("*/record.jsonl"))
        total: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for r in records:
            for m, c in tally(r).items():
                total[m] += c
        lines += [f"## {answers} answers: {len(records)} (task, seed) pairs of bench/data/study-answers", "",
                  "| method | rounds | drawn | new | drawn per new | repeats of an earlier round | of the same round |"
                  " other (no preimage kept: APE's repeats, placeholders) |", "|---|---|---|---|---|---|---|---|"]
        for m in SEARCHES:
            c = total.get(m)
            if not c:
                continue
            other = c["drawn"] - c["new"] - c["earlier"] - c["same round"]
            lines.append(f"| {label(m)} | {c['rounds']} | {c['drawn']:,} | {c['new']:,} | {c['drawn'] / c['new']:.2f} "
                         f"| {c['earlier']:,} | {c['same round']:,} | {other:,} |")
        lines.append("")
        lines += neighbour_lines(records, answers)
    emit("\n".join(lines), "study_repeats")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
