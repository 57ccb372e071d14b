"""Where the careful pick's draws go (issue 47): per method, candidates drawn per new instruction in the archived
answers study, and what the extra draws wrote, read from the records alone (no model).

Every round draws candidates until it has its size in instructions the method has not scored; the proposal line keeps
the drawn candidates that wrote a known instruction (its ``preimages``). Each such candidate is either a repeat of an
instruction scored in an earlier round (the generator's reachable set saturating where the search looks) or of one
drawn earlier in the same round. Uniform draws its soft prompts at random, so its rate is what saturation alone costs;
a BO's excess over it is what its batch's concentration costs.

    python -m bench.studies.study_repeats                 # both budgets of bench/data/study-answers
    python -m bench.studies.study_repeats --answers 3000

Prints Markdown and writes it to bench/out/study_repeats.md.
"""

from __future__ import annotations

import argparse
import collections
import json

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--answers", default="1000,3000", help="which budgets of the answers study")
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
    emit("\n".join(lines), "study_repeats")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
