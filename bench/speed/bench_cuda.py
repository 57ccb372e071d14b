"""The CUDA path, checked on a lent GPU: izkit's generator, black box and a whole run on ``cuda``, beside the CPU.

No model weights can travel to a lent GPU machine (it reaches no hub, and a call carries 64 MiB), so the check runs
the default model's architecture (its config) with seeded random weights and its real tokenizer. Random weights
write nonsense, so this checks the machinery and the speed, not the quality of instructions:

1. exactness on CUDA in float32: one batched generation pass gives the instructions of one-by-one calls (for each
   layout), and the black box's batched answers are the answers of one-by-one calls;
2. CPU against CUDA in float32: the share of soft prompts whose instruction is the same token for token (rounding
   differs between the two, so this is reported, not asserted);
3. speed in bfloat16, CUDA beside this machine's CPU in one run: seconds per candidate for passes of 64 soft prompts
   (each layout) and black-box answers per second (batches of 256);
4. a whole ``izkit run`` on CUDA (InstructZero with halving and the uniform baseline with few answers allowed), then
   the same command with ``--resume``, which must find the run finished and change nothing.

    python -m bench.speed.bench_cuda --make-folder .gpu/qwen   # here: the default model's config and tokenizer
    python -m bench.speed.bench_cuda --folder .gpu/qwen        # on the GPU machine (about 3 minutes)
    python -m bench.speed.bench_cuda --folder .gpu/qwen --parts 1,4  # exactness and the whole run only
    python -m bench.speed.bench_cuda --folder .gpu/qwen --tiny --device cpu  # a smoke test of this script without a GPU

Prints markdown and writes it to bench/out/bench_cuda.md (or to ``--out``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP runtime

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from izkit.blackbox.local import LocalBlackBox  # noqa: E402
from izkit.generator import LAYOUTS, RandomProjection, SoftPromptGenerator  # noqa: E402
from izkit.models import embedded_model_dir, load_causal_lm  # noqa: E402
from izkit.strategies import sobol_design  # noqa: E402
from izkit.tasks import load_task  # noqa: E402

from bench.common.paths import OUT_DIR, ROOT  # noqa: E402

CARRIED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
lines: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)
    lines.append(text)


def make_folder(dst: Path) -> None:
    """Copy the default embedded model's config and tokenizer (no weights) into ``dst``, to carry to a GPU machine."""
    src = embedded_model_dir()
    dst.mkdir(parents=True, exist_ok=True)
    for name in CARRIED:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    print(f"wrote {dst}: {', '.join(sorted(p.name for p in dst.iterdir()))}")


def random_model(folder: Path, dst: Path, tiny: bool, seed: int = 0) -> Path:
    """A model folder with ``folder``'s config and tokenizer and seeded random weights (``tiny``: 2 narrow layers)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(folder)
    if tiny:
        config.num_hidden_layers, config.hidden_size, config.intermediate_size = 2, 64, 128
        config.num_attention_heads, config.num_key_value_heads = 4, 2
        config.layer_types = config.layer_types[:2] if getattr(config, "layer_types", None) else None
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dst)
    for name in CARRIED:
        if name != "config.json" and (folder / name).is_file():
            shutil.copy2(folder / name, dst / name)
    return dst


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def generator_for(model, tok, layout: str) -> SoftPromptGenerator:
    projection = RandomProjection.for_model(model, seed=0)
    return SoftPromptGenerator(model, tok, projection, layout=layout, max_new_tokens=24, batch_size=64)


def check_exactness(path: Path, device: str, exemplars, examples) -> bool:
    """Part 1: batched == one by one, on ``device`` in float32."""
    model, tok = load_causal_lm(str(path), device=device, dtype=torch.float32)
    z = sobol_design(8, 10, 0)
    ok = True
    say(f"## 1. Exactness on {device}, float32 (8 soft prompts; 8 instructions x 4 examples)\n")
    say("| what | batched == one by one |")
    say("|---|---|")
    for layout in LAYOUTS:  # the raw continuations, token for token (random weights' are often cleaned away)
        gen = generator_for(model, tok, layout)
        gen.generate(z, exemplars, progress=False)
        batched = list(gen.last_raw)
        single = []
        for i in range(len(z)):
            gen.generate(z[i : i + 1], exemplars, progress=False)
            single += gen.last_raw
        same = sum(a == b for a, b in zip(batched, single))
        ok &= same == len(z) and all(batched)
        say(f"| generation, layout {layout}: raw continuations | {same} of {len(z)} ({sum(map(bool, batched))} "
            f"non-empty) |")
    instructions = [f"{text[:40]} {i}" for i, text in enumerate(batched)]  # distinct, whatever the weights wrote
    bb = LocalBlackBox(model, tok, cache=None)
    together = bb.score(instructions, examples).predictions
    apart = [[bb.score([v], [e]).predictions[0][0] for e in examples] for v in instructions]
    same = sum(a == b for row_a, row_b in zip(together, apart) for a, b in zip(row_a, row_b))
    n = len(instructions) * len(examples)
    ok &= same == n
    say(f"| black-box answers | {same} of {n} ({sum(bool(a) for row in together for a in row)} non-empty) |")
    say(f"\nsample raw continuations (random weights): {json.dumps(batched[:2])}\n")
    return ok


def cpu_vs_device(path: Path, device: str, exemplars) -> None:
    """Part 2: the share of instructions that CPU and ``device`` write alike in float32."""
    z = sobol_design(16, 10, 1)
    out = {}
    for dev in ("cpu", device):
        model, tok = load_causal_lm(str(path), device=dev, dtype=torch.float32)
        gen = generator_for(model, tok, "soft-first")
        gen.generate(z, exemplars, progress=False)
        out[dev] = list(gen.last_raw)
    same = sum(a == b for a, b in zip(out["cpu"], out[device]))
    say(f"## 2. CPU against {device}, float32\n\n{same} of {len(z)} raw continuations the same token for token.\n")


def time_it(fn, device: str, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls (after one warm-up), in seconds."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def speed(path: Path, devices: list[str], exemplars, examples, repeats: int) -> None:
    """Part 3: generation and scoring speed in bfloat16 on each device, side by side."""
    z = sobol_design(64, 10, 2)
    rows = {}
    for dev in devices:
        model, tok = load_causal_lm(str(path), device=dev, dtype=torch.bfloat16)
        for layout in LAYOUTS:
            gen = generator_for(model, tok, layout)
            rows[(dev, f"generation, {layout}: s per candidate (passes of 64)")] = time_it(
                lambda: gen.generate(z, exemplars, progress=False), dev, repeats) / len(z)
        bb = LocalBlackBox(model, tok, cache=None)
        instructions = [f"instruction number {i}: answer the question" for i in range(16)]
        n = len(instructions) * len(examples)
        rows[(dev, "black box: answers per second (batches of 256)")] = n / time_it(
            lambda: bb.score(instructions, examples), dev, repeats)
    say("## 3. Speed, bfloat16 (fastest of %d timings each, after a warm-up)\n" % repeats)
    say("| what | " + " | ".join(devices) + " | ratio |")
    say("|---|" + "---|" * (len(devices) + 1))
    for what in dict.fromkeys(w for _, w in rows):
        vals = [rows[(d, what)] for d in devices]
        ratio = vals[0] / vals[-1] if "per candidate" in what else vals[-1] / vals[0]
        say(f"| {what} | " + " | ".join(f"{v:.4g}" for v in vals) + f" | {ratio:.1f}x |")
    say()


def whole_run(path: Path, device: str, out: Path, answers: int) -> bool:
    """Part 4: ``izkit run`` on ``device``, then ``--resume`` of the finished run."""
    run = out / "run"
    base = [sys.executable, "-m", "izkit.cli", "run", "--task", "antonyms", "--generator", str(path),
            "--device", device, "--selection", "halving", "--answers", str(answers), "--baselines", "uniform",
            "--no-cache"]
    t = time.perf_counter()
    first = subprocess.run([*base, "--out", str(run)], cwd=ROOT, capture_output=True, text=True)
    took = time.perf_counter() - t
    record = run / "record.jsonl"
    before = record.read_bytes() if record.is_file() else b""
    again = subprocess.run([*base, "--resume", str(run)], cwd=ROOT, capture_output=True, text=True)
    after = record.read_bytes() if record.is_file() else b""
    ok = first.returncode == 0 and again.returncode == 0 and before == after and before != b""
    say(f"## 4. A whole run on {device} ({answers} answers, InstructZero + Uniform)\n")
    say(f"run: exit {first.returncode} in {took:.0f} s; resume: exit {again.returncode}; record unchanged by the "
        f"resume: {before == after and before != b''}\n")
    if not ok:
        say("```\n" + (first.stderr[-3000:] + "\n" + again.stderr[-3000:]).strip() + "\n```\n")
    else:
        say("```\n" + first.stdout.strip()[-1500:] + "\n```\n")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--make-folder", type=Path, help="write the default model's config and tokenizer here, and stop")
    ap.add_argument("--folder", type=Path, help="a folder made by --make-folder")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="2 narrow layers instead of the full architecture")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--answers", type=int, default=400)
    ap.add_argument("--parts", default="1,2,3,4", help="which parts to run (default all)")
    ap.add_argument("--skip-cpu", action="store_true", help="part 3 on the device alone")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="where bench_cuda.md goes")
    ap.add_argument("--scratch", type=Path, default=None, help="where the random model, the cache and the run go "
                    "(default: a temporary folder, removed at the end)")
    args = ap.parse_args()
    if args.make_folder:
        make_folder(args.make_folder)
        return 0
    if args.folder is None:
        ap.error("give --folder (made by --make-folder) or --make-folder")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="izkit-bench-cuda-") as tmp:
        return run_all(args, Path(args.scratch or tmp))


def run_all(args: argparse.Namespace, scratch: Path) -> int:
    os.environ.setdefault("IZKIT_CACHE", str(scratch / "izkit-cache"))
    path = random_model(args.folder, scratch / "random-model", args.tiny)
    if args.device.startswith("cuda"):
        say(f"{torch.cuda.get_device_name()}; torch {torch.__version__}; {torch.get_num_threads()} CPU threads\n")
    task = load_task("antonyms")
    exemplars, examples = list(task.induce[:5]), list(task.induce[5:9])
    parts, ok = set(args.parts.split(",")), True
    if "1" in parts:
        ok &= check_exactness(path, args.device, exemplars, examples)
    if "2" in parts and args.device != "cpu":
        cpu_vs_device(path, args.device, exemplars)
    devices = [args.device] if args.skip_cpu or args.device == "cpu" else ["cpu", args.device]
    if "3" in parts:
        speed(path, devices, exemplars, examples * 8, args.repeats)
    if "4" in parts:
        ok &= whole_run(path, args.device, scratch, args.answers)
    say(f"**{'all checks passed' if ok else 'A CHECK FAILED'}**")
    (args.out / "bench_cuda.md").write_text("\n".join(lines) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
