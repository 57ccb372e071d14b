"""Soak: a small ``izkit compare`` through a server that fails 30% of its requests ends where a clean one ends.

Runs the same compare (default: antonyms and larger_animal x seeds 0 and 1, budget 8, ``--blackbox openai``) twice, as a
user would (the ``izkit`` command in a subprocess), each time against tests/fault_server.py on 127.0.0.1:

- clean: no faults;
- faulty: each POST fails with probability ``--rate`` (seeded), the kinds in turn: 429 with and without Retry-After,
  500, 503, a hang past the client's timeout, a dropped connection, truncated JSON, an answer with no choices.

By default the fault server answers itself, deterministically from the prompt (tests/fault_server.py: each instruction
gets its own accuracy), so any difference between the two compares is izkit's. ``--upstream`` puts ``--model`` behind
both (``transformers serve`` via LocalServer): real answers, much slower. The instructions come from ``--model``
(default the cheapest embedded model, Gemma 3 270M) in both compares. Each compare has an answer cache of its own
(``--cache``), so the faulty one can reuse nothing the clean one asked.

Checks that both compares used the same models (the records' headers), then that every record (evaluations,
proposals, GP fits, test scores; not wall times or cache hits) and the test table are identical, and reports the
faults injected and the wall-time ratio faulty / clean. Exit code 1 if anything differs.

    python -m bench.studies.bench_soak [--rate 0.3] [--budget 8] [--upstream] [--model NAME]

Prints a Markdown table and writes it to bench/out/bench_soak.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP runtime (also for the children)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from izkit.records import comparable_lines  # noqa: E402
from izkit.tasks import load_task  # noqa: E402
from tests.fault_server import FaultServer  # noqa: E402  (the repository's tests/, read from its root)

from bench.common.paths import ROOT as REPO  # noqa: E402
from bench.common.report import emit  # noqa: E402



def gold_answers(tasks: list[str]) -> dict[str, str]:
    """input -> first gold answer, over both splits of every task (an input in two tasks must agree)."""
    gold: dict[str, str] = {}
    for name in tasks:
        task = load_task(name)
        for ex in task.induce + task.execute:
            if gold.setdefault(ex.input, ex.answers[0]) != ex.answers[0]:
                raise ValueError(f"the input {ex.input!r} has different answers in {tasks}; soak tasks that share "
                                 f"no input")
    return gold


def comparable(record: Path) -> list[dict]:
    return comparable_lines(record)


def models_of(record: Path) -> dict:
    """The header's models: what generated the instructions and what answered them."""
    return json.loads(record.read_text().splitlines()[0]).get("models", {})


def table_without_times(path: Path) -> list[str]:
    """The compare's table.md, less its last column (minutes of work)."""
    return [line.rsplit("|", 2)[0] if line.startswith("|") else line for line in path.read_text().splitlines()]


def run_compare(args: argparse.Namespace, model: str, base_url: str, out: Path, cache: Path) -> float:
    """``izkit compare`` against ``base_url``; its wall time in seconds (raises with its output if it fails)."""
    izkit = Path(sys.executable).with_name("izkit")
    cmd = [str(izkit) if izkit.is_file() else sys.executable, *([] if izkit.is_file() else ["-m", "izkit.cli"]),
           "compare", "--tasks", args.tasks, "--seeds", args.seeds, "--quick", "--budget", str(args.budget),
           "--generator", args.model, "--blackbox", "openai", "--blackbox-model", model, "--base-url", base_url,
           "--device", "cpu",
           "--timeout", str(args.timeout), "--retries", str(args.retries), "--cache", str(cache), "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"izkit compare against {base_url} failed (code {done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default="antonyms,larger_animal", help="comma-separated tasks (sharing no input)")
    ap.add_argument("--seeds", default="0,1", help="comma-separated seeds")
    ap.add_argument("--budget", type=int, default=8, help="evaluations per method and run (quick: 4 + rounds of 4)")
    ap.add_argument("--rate", type=float, default=0.3, help="the share of POSTs that fail on the faulty server")
    ap.add_argument("--fault-seed", type=int, default=1, help="seeds which POSTs fail")
    ap.add_argument("--timeout", type=float, default=2.0, help="izkit's --timeout: seconds per request")
    ap.add_argument("--retries", type=int, default=3, help="izkit's --retries (each with the SDK's own 2)")
    ap.add_argument("--model", default="gemma-3-270m", help="the generator (and, with --upstream, the black box)")
    ap.add_argument("--upstream", action="store_true", help="--model behind both servers, served (slow)")
    ap.add_argument("--out", default=None, help="where the two compares go (default: a temporary folder)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out or tempfile.mkdtemp(prefix="izkit-soak-"))
    gold = gold_answers([t.strip() for t in args.tasks.split(",") if t.strip()])
    hang_s = 2 * args.timeout  # a hang holds its request past the client's timeout, then drops it

    with contextlib.ExitStack() as stack:
        model, upstream = "fake", None
        if args.upstream:
            from izkit.serving.serve import LocalServer

            real = stack.enter_context(LocalServer(args.model, startup_timeout=300, env={"OMP_NUM_THREADS": "1"}))
            model, upstream = real.model_id, real.base_url
        rows, seconds, servers = [], {}, {}
        for name, rate in (("clean", 0.0), ("faulty", args.rate)):
            srv = stack.enter_context(FaultServer(gold, rate=rate, seed=args.fault_seed, hang_s=hang_s,
                                                  upstream=upstream))
            seconds[name] = run_compare(args, model, srv.base_url, out / name, out / f"{name}.sqlite")
            servers[name] = srv
            faults = sum(srv.faults.values())
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(srv.faults.items())) or "-"
            rows.append([name, f"{rate:.0%}", str(srv.posts), str(faults), kinds, f"{seconds[name]:.0f}"])

    records = sorted(p.relative_to(out / "clean") for p in (out / "clean").rglob("record.jsonl"))
    missing = [str(r.parent) for r in records if not (out / "faulty" / r).is_file()]
    if missing:
        raise RuntimeError(f"the faulty compare has no record for {missing}; see {out}/faulty")
    other_models = [str(r.parent) for r in records if models_of(out / "clean" / r) != models_of(out / "faulty" / r)]
    if other_models:  # e.g. the default model changed between the two compares: nothing to compare
        raise RuntimeError(f"the two compares used different models in {other_models}; run the soak again")
    differ = [str(r.parent) for r in records if comparable(out / "clean" / r) != comparable(out / "faulty" / r)]
    same_table = table_without_times(out / "clean" / "table.md") == table_without_times(out / "faulty" / "table.md")
    n_evals = sum(1 for r in records for line in comparable(out / "clean" / r) if line["kind"] == "eval")
    ratio = seconds["faulty"] / seconds["clean"]

    header = ["server", "fault rate", "POSTs", "faults injected", "by kind", "wall s"]
    table = "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
                      + ["| " + " | ".join(r) + " |" for r in rows])
    verdict = ("identical: every record and the test table" if not differ and same_table else
               f"DIFFERENT: {', '.join(differ) or 'the test table'}")
    answerer = f"transformers serve ({model})" if args.upstream else "the fault server's deterministic answerer"
    text = (
        f"# bench_soak\n\n`izkit compare --tasks {args.tasks} --seeds {args.seeds} --quick --budget {args.budget} "
        f"--generator {args.model} --blackbox openai --timeout {args.timeout:g} --retries {args.retries}` against "
        f"tests/fault_server.py "
        f"(answers: {answerer}); {len(records)} runs, {n_evals} evaluations. Faulty vs clean: **{verdict}**; wall "
        f"time {seconds['faulty']:.0f} s vs {seconds['clean']:.0f} s, ratio **{ratio:.2f}x**.\n\n{table}\n\n"
        f"Records in {out}/.\n"
    )
    emit(text, "bench_soak")
    return 0 if not differ and same_table else 1


if __name__ == "__main__":
    sys.exit(main())
