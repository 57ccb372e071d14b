"""Which number format should the embedded model run in on the CPU: float32, bfloat16, or int8 linears (issue 13, point 6)?

For each format, on the same machine in one run, with Qwen2.5-Coder-0.5B-Instruct (or ``--model``) in both roles, on
four project tasks' induce split (kappa = 5 exemplars, 20 dev examples, seed 0; never the test split):

1. generation: 32 Sobol soft prompts -> 32 instructions per task (one batched call, as a BO round): seconds, and how
   many instructions are the same as float32's;
2. scoring: the first 8 distinct float32 instructions per task x 20 dev examples (accuracy, batched, no cache):
   seconds, answers identical to float32's, and instructions whose dev accuracy differs from float32's.

Formats: ``float32`` (izkit's CPU default), ``bfloat16`` (``load_causal_lm(..., dtype="bfloat16")``; this machine's
CPU has AMX-BF16 and AVX512-BF16), ``int8`` (float32 with every ``nn.Linear`` replaced by
``torch.ao.quantization.quantize_dynamic``: int8 weights, activations quantised per batch).

    python -m bench.speed.bench_precision                  # about 10 minutes on two cores
    python -m bench.speed.bench_precision --threads 1      # one torch thread (beside other work)

Prints a Markdown table and writes it to bench/out/precision.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from bench.common.report import emit  # noqa: E402

from izkit.blackbox import LocalBlackBox  # noqa: E402
from izkit.generator import RandomProjection, SoftPromptGenerator  # noqa: E402
from izkit.models import clear_loaded, load_causal_lm  # noqa: E402
from izkit.strategies import sobol_design  # noqa: E402
from izkit.tasks import load_task  # noqa: E402

TASKS = ("antonyms", "larger_animal", "sum", "first_word_letter")
D, N_TOKENS, SEED, KAPPA, N_DEV = 10, 5, 0, 5, 20


def load(model: str, fmt: str):
    if fmt == "bfloat16":
        return load_causal_lm(model, device="cpu", dtype="bfloat16", cache=False)
    m, tok = load_causal_lm(model, device="cpu", dtype="float32", cache=False)
    if fmt == "int8":
        m = torch.ao.quantization.quantize_dynamic(m, {torch.nn.Linear}, dtype=torch.qint8)
    return m, tok


def measure(model: str, fmt: str, splits: dict, z, reference: dict | None) -> dict:
    m, tok = load(model, fmt)
    hidden = int(m.get_input_embeddings().weight.shape[1])
    proj = RandomProjection(d=D, n_tokens=N_TOKENS, hidden_size=hidden, kind="uniform", seed=SEED)
    gen = SoftPromptGenerator(m, tok, proj, batch_size=len(z))
    bb = LocalBlackBox(m, tok, objective="accuracy", cache=None)
    out = {"gen_s": 0.0, "score_s": 0.0, "same_instr": 0, "n_instr": 0, "same_ans": 0, "n_ans": 0, "acc_diff": 0,
           "n_scored": 0, "tasks": {}}
    for t, (sp, metric) in splits.items():
        t0 = time.perf_counter()
        instr = gen.generate(z, sp.exemplars)
        out["gen_s"] += time.perf_counter() - t0
        scored = reference["tasks"][t]["scored"] if reference else list(dict.fromkeys(instr))[:8]
        t0 = time.perf_counter()
        res = bb.score(scored, sp.dev, metric=metric)
        out["score_s"] += time.perf_counter() - t0
        out["tasks"][t] = {"instr": instr, "scored": scored, "pred": res.predictions, "means": res.means.tolist()}
        if reference:
            ref = reference["tasks"][t]
            out["same_instr"] += sum(a == b for a, b in zip(instr, ref["instr"]))
            out["n_instr"] += len(instr)
            for p, q in zip(res.predictions, ref["pred"]):
                out["same_ans"] += sum(a == b for a, b in zip(p, q))
                out["n_ans"] += len(p)
            out["acc_diff"] += sum(abs(a - b) > 1e-9 for a, b in zip(res.means.tolist(), ref["means"]))
            out["n_scored"] += len(scored)
    del m, gen, bb
    clear_loaded()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--formats", default="float32,bfloat16,int8")
    ap.add_argument("--n-z", type=int, default=32)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tasks = {t: load_task(t) for t in TASKS}
    splits = {t: (tasks[t].splits(kappa=KAPPA, n_dev=N_DEV, seed=SEED), tasks[t].metric) for t in TASKS}
    z = sobol_design(args.n_z, D, SEED)
    formats = args.formats.split(",")
    results, ref = {}, None
    for fmt in formats:
        results[fmt] = measure(args.model, fmt, splits, z, ref)
        ref = ref or results[fmt]
    base = results[formats[0]]
    lines = [f"{args.model}, {len(TASKS)} tasks x {args.n_z} soft prompts, 8 instructions x {N_DEV} dev answers per task, "
             f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}", "",
             f"| format | generation s | speed-up | instructions as {formats[0]} | scoring s | speed-up | "
             f"answers as {formats[0]} | dev accuracies changed |", "|---|---|---|---|---|---|---|---|"]
    for fmt, r in results.items():
        same_i = f"{r['same_instr']}/{r['n_instr']}" if r["n_instr"] else "(reference)"
        same_a = f"{r['same_ans']}/{r['n_ans']}" if r["n_ans"] else "(reference)"
        diff = f"{r['acc_diff']}/{r['n_scored']}" if r["n_scored"] else "(reference)"
        lines.append(f"| {fmt} | {r['gen_s']:.1f} | {base['gen_s'] / r['gen_s']:.2f}x | {same_i} | {r['score_s']:.1f} | "
                     f"{base['score_s'] / r['score_s']:.2f}x | {same_a} | {diff} |")
    emit("\n".join(lines), "precision")


if __name__ == "__main__":
    main()
