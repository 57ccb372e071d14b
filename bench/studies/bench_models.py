"""Which embedded model pair should be izkit's default, and which generator prompt (issue 13, points 2 and 5).

For generator g in {Gemma 3 270M, Qwen2.5-Coder-0.5B-Instruct} x black box f in {Gemma, Qwen}, on four project tasks
(induce split only: kappa = 5 exemplars and 20 dev examples, seed 0; the test split is never touched), with d = 10,
N = 5 soft tokens and the paper's uniform projection:

1. distinct instructions written by g from the same 100 scrambled Sobol soft prompts (generation does not depend on f);
2. how many of them beat the empty instruction ("") on dev accuracy under f (the first ``--cap`` distinct ones, in
   Sobol order, are scored when the whole grid does not fit the time);
3. the best dev accuracy among them, and the instruction;
4. seconds per 25 instructions (one batch of 25, as a BO round), seconds per 500 answers (accuracy, batched, no
   cache), resident memory after loading and at peak (``resource.getrusage``), with ``os.getloadavg()`` beside every
   timing (the machine is shared).

Point 5, the generator prompt: for g = Qwen, the plain completion prompt ("... The instruction was to") against
``chat=True`` (the tokenizer's chat template around the authors' "The instruction was to?"): distinct instructions from
the same soft prompts, wins over "" and best dev accuracy under f = Qwen, and degenerate instructions among the 100,
counted by :func:`degenerate` on the raw continuation (before the cleaner's repetition guard) and on the cleaned
instruction (after it). Also a hand-written instruction (the task file's ``reference_instruction``) against a nonsense
one, on dev, under both black boxes.

Each model configuration runs in its own child process, one after another (so peak RSS is per configuration and
never two models-heavy processes run at once): ``gemma`` (Gemma in both roles), ``qwen`` (Qwen in both roles, plain
and chat prompts, one copy), ``mixed`` (both loaded: Qwen scores Gemma's instructions, Gemma scores Qwen's). Children
write JSON to bench/out/models/; the parent writes the Markdown report.

    python -m bench.studies.bench_models                    # the measurement (about 35 min on two busy cores)
    python -m bench.studies.bench_models --cap 10           # score fewer distinct instructions per cell
    python -m bench.studies.bench_models --phase report     # rebuild bench/out/models.md from the JSON already written
    python -m bench.studies.bench_models --quick            # a smoke test: 8 soft prompts, 4 dev examples, 2 tasks

Prints Markdown tables and writes them to bench/out/models.md.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # the machine's two cores are shared with other people's tests
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP runtime

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from bench.common.paths import OUT_DIR, ROOT  # noqa: E402
from bench.common.report import emit  # noqa: E402

GEMMA, QWEN = "gemma-3-270m", "qwen2.5-coder-0.5b-instruct"
SHORT = {GEMMA: "Gemma 3 270M", QWEN: "Qwen2.5-Coder-0.5B-Instruct"}
TASKS = ("antonyms", "larger_animal", "sum", "first_word_letter")
NONSENSE = "make a list of all the animals in the zoo."  # the nonsense instruction, for every task
D, N_TOKENS, SEED, KAPPA = 10, 5, 0, 5
JSON_DIR = OUT_DIR / "models"
# what each child process does: the generator configurations it writes, and (black box, generator config) it scores
PHASES: dict[str, dict[str, Any]] = {
    "gemma": {"load": [GEMMA], "generate": ["gemma"], "score": [(GEMMA, "gemma")], "reference": [GEMMA]},
    "qwen": {"load": [QWEN], "generate": ["qwen", "qwen-chat"], "score": [(QWEN, "qwen"), (QWEN, "qwen-chat")],
             "reference": [QWEN]},
    "mixed": {"load": [GEMMA, QWEN], "generate": [], "score": [(QWEN, "gemma"), (GEMMA, "qwen")], "reference": []},
}
GEN_CONFIGS = {"gemma": (GEMMA, False), "qwen": (QWEN, False), "qwen-chat": (QWEN, True)}  # name -> (model, chat)


# ----------------------------------------------------------------------------------------------------------------------
# The degeneracy detector (independent of izkit's cleaner, so it can count what the cleaner's guard removes)

_LEAD = "the instruction was to"


def raw_instruction(raw: str) -> str:
    """The generator's raw continuation reduced as the cleaner would *without* its repetition guard: the first
    non-blank line, an echoed "The instruction was to" dropped, cut before an echoed Input:/Output:, then before the
    first sentence end ('.', '!' or '?' followed by a space)."""
    text = next((line.strip() for line in raw.splitlines() if line.strip()), "")
    bare = text.lstrip("\"'` ")
    if bare.lower().startswith(_LEAD):
        text = bare[len(_LEAD):].lstrip(" ?:")
    for marker in ("Input:", "Output:", "Instruction:"):
        if marker in text:
            text = text[: text.index(marker)]
    m = re.search(r"[.!?](?=\s)", text)
    return (text[: m.end()] if m else text).strip()


def degenerate(text: str) -> bool:
    """True for a looping instruction: some run of 1-4 words repeated 3+ times back to back ("be to be to be to"), or
    any two-word sequence occurring 3+ times anywhere in it. Words compared lower-case, without edge punctuation."""
    words = [w.strip("\"'`.,;:!?()[]").lower() for w in text.split()]
    words = [w for w in words if w]
    for n in range(1, 5):
        for i in range(len(words) - 3 * n + 1):
            if words[i : i + n] == words[i + n : i + 2 * n] == words[i + 2 * n : i + 3 * n]:
                return True
    bigrams = [tuple(words[i : i + 2]) for i in range(len(words) - 1)]
    return any(bigrams.count(b) >= 3 for b in set(bigrams))


# ----------------------------------------------------------------------------------------------------------------------
# Helpers


def rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def write_json(name: str, data: Any) -> None:
    JSON_DIR.mkdir(parents=True, exist_ok=True)
    tmp = JSON_DIR / f"{name}.json.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(JSON_DIR / f"{name}.json")


def read_json(name: str) -> Any:
    path = JSON_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def distinct(instructions: list[str]) -> list[str]:
    return list(dict.fromkeys(instructions))


def reference_instruction(task: Any) -> str:
    """The task file's hand-written instruction (data/sources/reference_instructions.tsv, written into metadata)."""
    meta = json.loads(Path(task.induce_path).read_text()).get("metadata", {})
    return meta.get("reference_instruction", "")


# ----------------------------------------------------------------------------------------------------------------------
# One child process: load its models, generate, score


def run_phase(phase: str, args: argparse.Namespace) -> None:
    import torch
    from tqdm.auto import tqdm

    torch.set_num_threads(1)
    from izkit.blackbox import LocalBlackBox
    from izkit.generator import RandomProjection, SoftPromptGenerator
    from izkit.models import load_causal_lm
    from izkit.strategies import sobol_design
    from izkit.tasks import load_task

    spec = PHASES[phase]
    info: dict[str, Any] = {"phase": phase, "rss_start_mib": rss_mib(), "loads": {}}
    models = {}
    for name in spec["load"]:
        t0, l0 = time.perf_counter(), load()
        models[name] = load_causal_lm(name, device="cpu")
        info["loads"][name] = {"seconds": time.perf_counter() - t0, "loadavg": [l0, load()]}
    info["rss_loaded_mib"] = rss_mib()
    tasks = {t: load_task(t) for t in args.tasks}
    splits = {t: tasks[t].splits(kappa=KAPPA, n_dev=args.n_dev, seed=SEED) for t in args.tasks}
    z = sobol_design(args.n_z, D, SEED)  # (n_z, d): the same soft prompts for every generator and task

    # -- generation ----------------------------------------------------------------------------------------------------
    for cfg in spec["generate"]:
        name, chat = GEN_CONFIGS[cfg]
        model, tok = models[name]
        hidden = int(model.get_input_embeddings().weight.shape[1])
        proj = RandomProjection(d=D, n_tokens=N_TOKENS, hidden_size=hidden, kind="uniform", seed=SEED)
        gen = SoftPromptGenerator(model, tok, proj, chat=chat, batch_size=args.n_z)
        out: dict[str, Any] = {"config": cfg, "model": name, "chat": chat, "n_z": args.n_z, "tasks": {}}
        for t in tqdm(args.tasks, desc=f"generate {cfg}", unit="task"):
            l0, t0 = load(), time.perf_counter()
            instr = gen.generate(z, splits[t].exemplars)  # one batch of n_z rows
            seconds = time.perf_counter() - t0
            raw = list(gen.last_raw)
            n_tok = [len(tok(r, add_special_tokens=False)["input_ids"]) for r in raw]
            out["tasks"][t] = {
                "instructions": instr, "raw": raw, "raw_tokens": n_tok, "seconds": seconds,
                "loadavg": [l0, load()], "prompt": gen.prompt_text(splits[t].exemplars),
            }
        # one batch of 25 (a BO round's size) on the first task: the per-25 timing, and a batch-invariance check
        t = args.tasks[0]
        n25 = min(25, args.n_z)
        l0, t0 = load(), time.perf_counter()
        first = gen.generate(z[:n25], splits[t].exemplars, batch_size=n25)
        out["batch25"] = {
            "task": t, "n": n25, "seconds": time.perf_counter() - t0, "loadavg": [l0, load()],
            "same_as_big_batch": sum(a == b for a, b in zip(first, out["tasks"][t]["instructions"][:n25])),
        }
        out["rss_mib"] = rss_mib()
        write_json(f"gen_{cfg}", out)

    # -- scoring -------------------------------------------------------------------------------------------------------
    for bb_name, cfg in spec["score"]:
        gen_data = read_json(f"gen_{cfg}")
        if gen_data is None:
            raise SystemExit(f"bench_models: {JSON_DIR}/gen_{cfg}.json is missing; run its phase first")
        model, tok = models[bb_name]
        bb = LocalBlackBox(model, tok, objective="accuracy", cache=None)
        out = {"blackbox": bb_name, "config": cfg, "cap": args.cap, "tasks": {}}
        for t in tqdm(args.tasks, desc=f"score {cfg} with {bb_name}", unit="task"):
            cand = distinct(gen_data["tasks"][t]["instructions"])[: args.cap]
            rows = [""] + cand  # the empty instruction first
            l0, t0 = load(), time.perf_counter()
            res = bb.score(rows, splits[t].dev, metric=tasks[t].metric, objective="accuracy")
            out["tasks"][t] = {
                "instructions": rows, "means": res.means.tolist(), "predictions": res.predictions,
                "answers": len(rows) * len(splits[t].dev), "seconds": time.perf_counter() - t0,
                "loadavg": [l0, load()],
            }
        out["rss_mib"] = rss_mib()
        write_json(f"score_{bb_name}_{cfg}", out)

    # -- hand-written vs nonsense --------------------------------------------------------------------------------------
    for bb_name in spec["reference"]:
        model, tok = models[bb_name]
        bb = LocalBlackBox(model, tok, objective="accuracy", cache=None)
        out = {"blackbox": bb_name, "tasks": {}}
        for t in tqdm(args.tasks, desc=f"reference with {bb_name}", unit="task"):
            rows = [reference_instruction(tasks[t]), NONSENSE]
            l0, t0 = load(), time.perf_counter()
            res = bb.score(rows, splits[t].dev, metric=tasks[t].metric, objective="accuracy")
            out["tasks"][t] = {"instructions": rows, "means": res.means.tolist(), "predictions": res.predictions,
                               "answers": 2 * len(splits[t].dev), "seconds": time.perf_counter() - t0,
                               "loadavg": [l0, load()]}
        write_json(f"reference_{bb_name}", out)

    info["rss_peak_mib"] = rss_mib()
    write_json(f"phase_{phase}", info)


# ----------------------------------------------------------------------------------------------------------------------
# The report


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def fmt_load(pairs: list[list[list[float]]]) -> str:
    """The 1-minute load averages seen at the start/end of the timed calls: 'min-max'."""
    ones = [p[0] for pair in pairs for p in pair]
    return f"{min(ones):.1f}-{max(ones):.1f}" if ones else "-"


def cell_summary(score: dict[str, Any], task: str) -> dict[str, Any]:
    c = score["tasks"][task]
    empty, means, rows = c["means"][0], c["means"][1:], c["instructions"][1:]
    best = max(range(len(means)), key=lambda i: (means[i], -i)) if means else None
    return {
        "empty": empty, "scored": len(means), "beat": sum(m > empty for m in means),
        "best": means[best] if best is not None else float("nan"), "best_instruction": rows[best] if best is not None else "",
    }


def quote(s: str, width: int = 90) -> str:
    s = s.replace("|", "\\|").replace("\n", " ")
    return f"'{s[:width]}{'...' if len(s) > width else ''}'"


def answers_rate(scores: list[dict[str, Any]]) -> tuple[float, str]:
    """Seconds per 500 answers over all scoring calls of one black box in one process, and their load range."""
    n = sum(c["answers"] for s in scores for c in s["tasks"].values())
    sec = sum(c["seconds"] for s in scores for c in s["tasks"].values())
    loads = [c["loadavg"] for s in scores for c in s["tasks"].values()]
    return (500 * sec / n if n else float("nan")), fmt_load(loads)


def report(args: argparse.Namespace, walls: dict[str, float]) -> str:
    gens = {cfg: read_json(f"gen_{cfg}") for cfg in GEN_CONFIGS}
    phases = {p: read_json(f"phase_{p}") for p in PHASES}
    tasks = [t for t in args.tasks if all(g is None or t in g["tasks"] for g in gens.values())]
    out: list[str] = ["# Which model pair and which generator prompt (bench/studies/bench_models.py)", ""]
    any_gen = next((g for g in gens.values() if g), None)
    n_z = any_gen["n_z"] if any_gen else args.n_z
    out.append(f"Tasks {', '.join(tasks)}; induce split only: kappa = {KAPPA} exemplars, {args.n_dev} dev examples, seed "
               f"{SEED}; d = {D}, N = {N_TOKENS}, uniform projection (seed {SEED}); the same {n_z} scrambled Sobol soft "
               f"prompts (izkit.strategies.sobol_design, seed {SEED}) for every generator and task; greedy; accuracy "
               f"= the task metric on the black box's first non-empty answer line; no answer cache. 'beat ''': "
               f"distinct instructions whose dev accuracy is strictly above the empty instruction's; at most the "
               f"first {args.cap} distinct instructions (Sobol order) are scored per cell. Load averages are "
               f"os.getloadavg()'s 1-minute value (2 cores, shared).")
    out.append("")

    # 1. the grid
    out += ["## 1. Generator x black box (dev accuracy)", ""]
    rows, agg_rows = [], []
    for g_cfg, g_name in (("gemma", GEMMA), ("qwen", QWEN)):
        for bb in (GEMMA, QWEN):
            s = read_json(f"score_{bb}_{g_cfg}")
            gen = gens[g_cfg]
            if s is None or gen is None:
                continue
            tot_d = tot_s = tot_b = 0
            bests = []
            for t in tasks:
                c = cell_summary(s, t)
                nd = len(distinct(gen["tasks"][t]["instructions"]))
                tot_d, tot_s, tot_b = tot_d + nd, tot_s + c["scored"], tot_b + c["beat"]
                bests.append(c["best"])
                rows.append([SHORT[g_name], SHORT[bb], t, f"{nd}/{n_z}", f"{c['beat']}/{c['scored']}",
                             f"{c['empty']:.2f}", f"{c['best']:.2f}", quote(c["best_instruction"], 70)])
            agg_rows.append([SHORT[g_name], SHORT[bb], f"{tot_d}/{n_z * len(tasks)}", f"{tot_b}/{tot_s}",
                             f"{sum(bests) / len(bests):.3f}"])
    out.append(table(["generator", "black box", "task", "distinct", "beat ''", "'' acc", "best dev acc",
                      "best instruction"], rows))
    out += ["", "Per pair, over the tasks:", ""]
    out.append(table(["generator", "black box", "distinct", "beat ''", "mean best dev acc"], agg_rows))
    out.append("")

    # 2. speed and memory
    out += ["## 2. Speed and memory (CPU, float32, 1 thread)", ""]
    rows = []
    for g_cfg, g_name in (("gemma", GEMMA), ("qwen", QWEN)):
        gen = gens[g_cfg]
        for bb in (GEMMA, QWEN):
            phase = "gemma" if g_name == bb == GEMMA else "qwen" if g_name == bb == QWEN else "mixed"
            ph = phases[phase]
            scores = [x for b, c in PHASES[phase]["score"] if b == bb and (x := read_json(f"score_{b}_{c}"))]
            if gen is None or ph is None:
                continue
            b25 = gen["batch25"]
            big = [gen["tasks"][t] for t in tasks]
            per25_big = 25 * sum(c["seconds"] for c in big) / (n_z * len(big))
            s500, l500 = answers_rate(scores)
            rows.append([SHORT[g_name], SHORT[bb], f"{b25['seconds']:.1f} ({b25['loadavg'][0][0]:.1f})",
                         f"{per25_big:.1f} ({fmt_load([c['loadavg'] for c in big])})", f"{s500:.1f} ({l500})",
                         f"{ph['rss_loaded_mib']:.0f}", f"{ph['rss_peak_mib']:.0f}", phase])
    out.append(table(["generator", "black box", "s / 25 instr, batch 25 (load)", f"s / 25 instr, batch {n_z} (load)",
                      "s / 500 answers (load)", "RSS loaded MiB", "RSS peak MiB", "process"], rows))
    out.append("")
    out.append("s / 25 instructions: the generator's time, the same whatever the black box (measured once per "
               "generator, in its own process). s / 500 answers: all of that black box's scoring calls in that "
               "process, accuracy objective, batched (LocalBlackBox's default batch of 256), no cache. RSS: "
               "ru_maxrss of the process after loading its models and at its end; 'mixed' holds both models, so "
               "its RSS is that of both cross pairs.")
    b25s = [f"{cfg}: {g['batch25']['same_as_big_batch']}/{g['batch25']['n']}" for cfg, g in gens.items() if g]
    out.append(f"Same instruction from the batch of 25 as from the batch of {n_z} (first task): {', '.join(b25s)}.")
    loads = [f"{p}: " + ", ".join(f"{m} {v['seconds']:.1f} s" for m, v in ph["loads"].items())
             for p, ph in phases.items() if ph]
    out.append(f"Model load times: {'; '.join(loads)}.")
    out.append("")

    # 3. the generator prompt
    out += ["## 3. Qwen generator: plain completion prompt vs chat=True (black box Qwen)", ""]
    rows = []
    for cfg in ("qwen", "qwen-chat"):
        gen, s = gens[cfg], read_json(f"score_{QWEN}_{cfg}")
        if gen is None or s is None:
            continue
        for t in tasks:
            g = gen["tasks"][t]
            c = cell_summary(s, t)
            before = sum(degenerate(raw_instruction(r)) for r in g["raw"])
            after = sum(degenerate(v) for v in g["instructions"])
            limit = sum(n >= 32 for n in g["raw_tokens"])
            stubs = sum(len(v.split()) <= 2 for v in g["instructions"])
            rows.append(["plain" if cfg == "qwen" else "chat", t, f"{len(distinct(g['instructions']))}/{n_z}",
                         f"{c['beat']}/{c['scored']}", f"{c['best']:.2f}", f"{before}/{n_z}", f"{after}/{n_z}",
                         f"{stubs}/{n_z}", f"{limit}/{n_z}", quote(c["best_instruction"], 60)])
    out.append(table(["prompt", "task", "distinct", "beat ''", "best dev acc", "degenerate before guard",
                      "after guard", "<= 2 words after", "hit 32 tokens", "best instruction"], rows))
    out.append("")
    out.append("Degenerate (this script's detector, independent of izkit's cleaner): a run of 1-4 words repeated 3+ "
               "times back to back, or a two-word sequence occurring 3+ times. 'Before guard': on the raw "
               "continuation reduced as the cleaner would without its repetition guard (first non-blank line, echoed "
               "lead dropped, cut at an echoed Input:/Output: and at the first sentence end); 'after guard': on "
               "izkit.cleaner.clean_instruction's output. '<= 2 words after': cleaned instructions of one or two "
               "words (what the guard leaves of a loop, e.g. 'be to'). 'hit 32 tokens': raw continuations that ran "
               "to the generator's max_new_tokens.")
    g = gens.get("gemma")
    if g:
        before = sum(degenerate(raw_instruction(r)) for t in tasks for r in g["tasks"][t]["raw"])
        after = sum(degenerate(v) for t in tasks for v in g["tasks"][t]["instructions"])
        out.append(f"For comparison, Gemma's plain prompt: degenerate {before} before / {after} after the guard, of "
                   f"{n_z * len(tasks)}.")
    out.append("")

    # 4. hand-written vs nonsense
    out += ["## 4. Hand-written vs nonsense instruction (dev accuracy)", ""]
    rows = []
    for bb in (QWEN, GEMMA):
        r = read_json(f"reference_{bb}")
        s = read_json(f"score_{bb}_{'qwen' if bb == QWEN else 'gemma'}")
        if r is None:
            continue
        for t in tasks:
            c = r["tasks"][t]
            empty = s["tasks"][t]["means"][0] if s else float("nan")
            rows.append([SHORT[bb], t, quote(c["instructions"][0], 60), f"{c['means'][0]:.2f}", f"{c['means'][1]:.2f}",
                         f"{empty:.2f}"])
    out.append(table(["black box", "task", "hand-written", "acc", f"nonsense {quote(NONSENSE)}", "'' acc"], rows))
    out.append("")

    # 5. samples
    out += ["## 5. Sample instructions (first 5 distinct, Sobol order, with dev accuracy)", ""]
    for cfg in ("gemma", "qwen", "qwen-chat"):
        gen = gens[cfg]
        if gen is None:
            continue
        for t in tasks:
            accs: dict[str, dict[str, float]] = {}
            for bb in (GEMMA, QWEN):
                s = read_json(f"score_{bb}_{cfg}")
                if s is not None:
                    accs[bb] = dict(zip(s["tasks"][t]["instructions"], s["tasks"][t]["means"]))
            items = []
            for v in distinct(gen["tasks"][t]["instructions"])[:5]:
                tag = ", ".join(f"{'G' if bb == GEMMA else 'Q'} {a[v]:.2f}" for bb, a in accs.items() if v in a)
                items.append(f"{quote(v, 100)} ({tag or 'not scored'})")
            out.append(f"- **{cfg}, {t}**: " + "; ".join(items))
    out.append("")
    # answers of the best Qwen/Qwen instruction on the first task, to see what the black box writes
    s = read_json(f"score_{QWEN}_qwen")
    if s:
        t = tasks[0]
        c = s["tasks"][t]
        i = 1 + max(range(len(c["means"]) - 1), key=lambda k: (c["means"][k + 1], -k))
        out.append(f"Qwen's answers on {t} under {quote(c['instructions'][i])}: "
                   + ", ".join(quote(p, 20) for p in c["predictions"][i][:10]) + "; under '': "
                   + ", ".join(quote(p, 20) for p in c["predictions"][0][:10]))
        out.append("")

    if walls:
        out.append("Wall time per process: " + ", ".join(f"{p} {w / 60:.1f} min" for p, w in walls.items())
                   + f"; total {sum(walls.values()) / 60:.1f} min.")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phase", choices=["all", "report", *PHASES], default="all")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--n-z", type=int, default=100, help="Sobol soft prompts per generator and task")
    ap.add_argument("--n-dev", type=int, default=20, help="dev examples (from the induce split)")
    ap.add_argument("--cap", type=int, default=15, help="distinct instructions scored per (generator, black box, task)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 8 soft prompts, 4 dev examples, cap 3, 2 tasks")
    args = ap.parse_args()
    if args.quick:
        args.n_z, args.n_dev, args.cap, args.tasks = 8, 4, 3, args.tasks[:2]
    if args.phase in PHASES:
        run_phase(args.phase, args)
        return 0
    walls: dict[str, float] = {}
    if args.phase == "all":
        for f in JSON_DIR.glob("*.json"):
            f.unlink()  # never report a previous run's cell as this run's
        from tqdm.auto import tqdm

        for phase in tqdm(list(PHASES), desc="phases", unit="process"):
            cmd = [sys.executable, "-m", __spec__.name, "--phase", phase, "--tasks", *args.tasks,
                   "--n-z", str(args.n_z),
                   "--n-dev", str(args.n_dev), "--cap", str(args.cap)]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=ROOT)
            walls[phase] = time.perf_counter() - t0
            print(f"bench_models: {phase} done in {walls[phase] / 60:.1f} min, load {load()}", file=sys.stderr)
        write_json("walls", walls)
    else:
        walls = read_json("walls") or {}
    emit(report(args, walls), "models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
