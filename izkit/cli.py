"""The ``izkit`` command line: list tasks, prepare the embedded model, serve it, and run InstructZero.

    izkit tasks                      # the tasks in data/ (or $IZKIT_DATA) with sizes and metric
    izkit prepare                    # convert the embedded model once (set-up does this)
    izkit run --task antonyms        # the main job on the embedded default
    izkit serve                      # an OpenAI-compatible server for a local model, on 127.0.0.1
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from izkit import __version__


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
    from izkit.models import embedded_model_dir

    folder = embedded_model_dir(rebuild=args.rebuild)
    print(f"embedded model ready in {folder}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from izkit.serve import main_serve

    return main_serve(model=args.model, port=args.port, host=args.host)


def _cmd_run(args: argparse.Namespace) -> int:
    from izkit.instructzero import main_run

    return main_run(args)


def _cmd_compare(args: argparse.Namespace) -> int:
    from izkit.instructzero import main_compare

    return main_compare(args)


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget", type=int, default=None, help="black-box evaluations in all (paper: 150 = 25 + 5 x 25)")
    p.add_argument("--quick", action="store_true", help="the quick preset: a tiny budget for a first look")
    p.add_argument("--generator", default=None, metavar="PATH_OR_ID",
                   help="the open model that writes instructions (default: the embedded Gemma 3 270M)")
    p.add_argument("--blackbox", choices=["local", "openai"], default="local",
                   help="local: a model in this process; openai: any OpenAI-compatible endpoint")
    p.add_argument("--blackbox-model", default=None,
                   help="local: a model folder or id (default: the generator's model); openai: the model name")
    p.add_argument("--base-url", default=None, help="the OpenAI-compatible endpoint (default: OpenAI itself)")
    p.add_argument("--objective", choices=["accuracy", "loglik"], default=None,
                   help="what BO maximises (default: loglik for a local black box, accuracy for an API)")
    p.add_argument("--baselines", default="manual",
                   help="comma-separated baselines to run beside InstructZero with the same budget: uniform, ape, "
                        "manual, matern, or none (default: manual; the paper's comparison is uniform,ape,manual)")
    p.add_argument("--screen", type=int, default=2,
                   help="EI candidates generated per batch slot; the batch keeps the best with new instructions "
                        "(1: the paper's plain top-q EI)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request to an OpenAI-compatible black box")
    p.add_argument("--retries", type=int, default=3,
                   help="retries of a failed black-box request (429, 5xx, timeout), after the SDK's own")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--root", default=None, help="a folder of tasks (induce/ and execute/) instead of data/")


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

    p = sub.add_parser("prepare", help="convert the embedded model to safetensors once (about 40 s)")
    p.add_argument("--rebuild", action="store_true", help="convert again even if the cache is valid")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("serve", help="serve a local model with an OpenAI-compatible API (transformers serve)")
    p.add_argument("--model", default=None, help="a local model folder (default: the embedded model)")
    p.add_argument("--port", type=int, default=None, help="the port (default: a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to bind (default: 127.0.0.1, loopback only; any other address is reachable "
                        "from the network, with no authentication)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("run", help="run InstructZero on one task (the main job)")
    p.add_argument("--task", required=True, help="a task name (see `izkit tasks`) or the path of its induce file")
    p.add_argument("--seed", type=int, default=0, help="seeds the splits, the projection and the BO")
    p.add_argument("--out", default=None, help="where the record and figures go (default: runs/<task>-<time>/)")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the interrupted run in DIR")
    _add_run_flags(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("compare", help="run the methods on many tasks and seeds; write a Markdown table")
    p.add_argument("--tasks", required=True, help="comma-separated task names")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--out", default=None, help="where the table, figure and records go (default: runs/compare-<time>/)")
    _add_run_flags(p)
    p.set_defaults(func=_cmd_compare)
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
