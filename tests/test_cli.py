"""The izkit command line: every command's --help, the tasks table, flag errors, and tiny real runs."""

from __future__ import annotations

import json

import pytest

from izkit import __version__
from izkit.cli import build_parser, main
from izkit.config import Config



def resumed(args, out) -> Config:
    """The one config ``izkit run --resume OUT`` goes on with, for these parsed flags (izkit.resume.plan_run)."""
    from izkit.cli import config_from_args
    from izkit.resume import plan_run

    return plan_run(out, cfg := config_from_args(args, args.task), resume=True, flags=cfg.changes()).config


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"izkit {__version__}"


@pytest.mark.parametrize("command", ["tasks", "prepare", "serve", "run", "compare", "summary"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0 and "usage: izkit " + command in capsys.readouterr().out


def test_tasks_lists_sizes_and_metric(capsys):
    assert main(["tasks"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[1:]}
    assert len(rows) >= 12
    assert rows["synonyms"][2] == "contains" and rows["taxonomy_animal"][2] == "exact_set"
    assert int(rows["antonyms"][0]) >= 100 and int(rows["antonyms"][1]) >= 50


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--task", "antonyms", "--objective", "bleu"], "invalid choice: 'bleu'"),
    (["run", "--task", "antonyms", "--blackbox", "remote"], "invalid choice: 'remote'"),
    (["run", "--task", "antonyms", "--budget", "many"], "invalid int value: 'many'"),
    (["run"], "the following arguments are required: --task"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_flags_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_errors_from_the_library_are_one_line(capsys, tmp_path):
    assert main(["run", "--task", "antonym", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("izkit run: error: no task named 'antonym'") and "did you mean antonyms" in err
    assert main(["run", "--task", "antonyms", "--baselines", "random", "--out", str(tmp_path)]) == 2
    assert "unknown baseline 'random'" in capsys.readouterr().err
    assert main(["compare", "--tasks", "antonyms", "--seeds", "a,b"]) == 2
    assert "--seeds must be comma-separated integers" in capsys.readouterr().err


def test_run_flags_reach_the_config():
    from izkit.cli import config_from_args

    args = build_parser().parse_args(["run", "--task", "sum", "--budget", "60", "--seed", "3", "--objective",
                                      "accuracy", "--blackbox", "openai", "--blackbox-model", "gpt-x",
                                      "--base-url", "http://127.0.0.1:9/v1", "--baselines", "uniform,ape",
                                      "--screen", "1", "--timeout", "5", "--retries", "0", "--generator-prompt", "chat",
                                      "--batch", "authors", "--gp-inputs", "unit", "--score-standardize", "global",
                                      "--gp-noise", "known", "--residual", "--max-draws", "4", "--layout",
                                      "before-cue"])
    cfg = config_from_args(args, args.task)
    assert (cfg.seed, cfg.objective, cfg.blackbox, cfg.blackbox_model) == (3, "accuracy", "openai", "gpt-x")
    assert cfg.base_url == "http://127.0.0.1:9/v1" and cfg.baselines == ("uniform", "ape")
    assert cfg.answers == 60 * 20 and cfg.selection == "halving"  # --budget: the paper's spend for 60
    parse = lambda *f: config_from_args(build_parser().parse_args(["run", "--task", "sum", *f]), "sum")  # noqa
    paper = parse("--budget", "60", "--paper")
    assert (paper.selection, paper.preimages, paper.candidates, paper.round_sizes) == ("best", False, 60, [25, 25, 10])
    assert parse("--no-preimages").preimages is False and parse("--answers", "900", "--paper").candidates == 45
    assert (cfg.screen, cfg.request_timeout, cfg.max_retries) == (1, 5.0, 0)
    assert (cfg.generator_prompt, cfg.batch, cfg.gp_inputs, cfg.score_standardize, cfg.gp_noise, cfg.residual,
            cfg.max_draws, cfg.layout) == ("chat", "authors", "unit", "global", "known", True, 4, "before-cue")
    quick = config_from_args(build_parser().parse_args(["run", "--task", "sum", "--quick", "--baselines", "none"]),
                             "sum")
    assert quick.candidates < 20 and quick.baselines == ()
    with pytest.raises(ValueError, match="not both"):  # the answers, stated one way
        parse("--budget", "60", "--answers", "900")


def test_every_choice_of_the_config_has_a_flag_that_offers_it():
    """Each setting in config.CHOICES is a flag of izkit run and izkit compare, offering its values (None, "not given",
    is the flag left out, or "none" where a None value can be asked for), and reaching the config as given."""
    import argparse

    from izkit.cli import config_from_args
    from izkit.config import CHOICES

    for command in ("run", "compare"):
        parser = build_parser()._subparsers._group_actions[0].choices[command]
        offered = {a.dest: a.choices for a in parser._actions if isinstance(a, argparse._StoreAction) and a.choices}
        for name, allowed in CHOICES.items():
            named = [c for c in allowed if c is not None]
            assert name in offered, f"izkit {command} has no flag for {name}"
            assert [c for c in offered[name] if c != "none"] == named, (command, name, offered[name])
    for name, allowed in CHOICES.items():
        value = [c for c in allowed if c is not None][-1]
        args = build_parser().parse_args(["run", "--task", "sum", f"--{name.replace('_', '-')}", str(value),
                                          "--blackbox-model", "m"])  # a valid config: --blackbox openai names one
        assert getattr(config_from_args(args, "sum"), name) == value, name


def test_the_help_texts_read_their_defaults_from_the_config(monkeypatch, capsys):
    from izkit.config import Config

    monkeypatch.setattr(Config, "n_init", 7)  # another paper: 7 + 5 x 25 instructions
    monkeypatch.setattr(Config, "batch", "authors")
    monkeypatch.setattr(Config, "sampled", 0.25)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "132 = 7 + 5 x 25, 2640 answers" in text and "132 x 20 = 2640" in text
    assert "(default authors)" in text and "(default 0.25: the paper's pool)" in text


def test_cache_flags_reach_the_config_and_may_change_on_resume(tmp_path, capsys):
    from izkit.cache import default_cache_path
    from izkit.cli import config_from_args

    def cfg(*flags):
        return config_from_args(build_parser().parse_args(["run", "--task", "sum", "--quick", *flags]), "sum")

    assert cfg().answer_cache == "default"
    assert cfg("--no-cache").answer_cache is None
    assert cfg("--cache", str(tmp_path / "a.sqlite")).answer_cache == str(tmp_path / "a.sqlite")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--task", "sum", "--no-cache", "--cache", "x.sqlite"])
    assert "not allowed with argument" in capsys.readouterr().err

    from conftest import make_fake_pipeline
    from izkit.loop import Run

    Run(cfg("--cache", str(tmp_path / "a.sqlite")), tmp_path / "run", progress=False,
        pipeline=make_fake_pipeline()).execute()
    args = lambda *f: build_parser().parse_args(["run", "--task", "sum", "--resume", str(tmp_path / "run"), *f])  # noqa
    assert resumed(args(), tmp_path / "run").answer_cache == str(tmp_path / "a.sqlite")  # the record's
    assert resumed(args("--no-cache"), tmp_path / "run").answer_cache is None  # may change on resume
    assert resumed(args("--cache", "b.sqlite"), tmp_path / "run").answer_cache == "b.sqlite"
    from izkit.cli import describe_cache

    assert describe_cache("default") == str(default_cache_path()) and describe_cache(None).startswith("none")


def test_run_resume_and_compare_for_real(tmp_path, capsys, embedded):
    out = tmp_path / "run"
    argv = ["run", "--task", "antonyms", "--quick", "--budget", "3", "--out", str(out), "--device", "cpu",
            "--cache", str(tmp_path / "answers.sqlite")]
    assert main(argv) == 0
    assert (tmp_path / "answers.sqlite").is_file()  # the answers went to the cache the flag names
    printed = capsys.readouterr().out
    assert "optimised: accuracy on dev" in printed and "InstructZero" in printed
    assert "Manual (generator)" in printed and "Hand-written" in printed  # the default baselines, by their names
    assert {p.name for p in out.iterdir()} >= {"record.jsonl", "best_so_far.png", "soft_prompts.png"}
    n_lines = len((out / "record.jsonl").read_text().splitlines())
    assert main(["run", "--task", "antonyms", "--resume", str(out), "--device", "cpu"]) == 0  # finished: nothing to do
    assert len((out / "record.jsonl").read_text().splitlines()) == n_lines
    assert f"answer cache: {tmp_path / 'answers.sqlite'}" in capsys.readouterr().err  # the resumed run says which

    cmp_out = tmp_path / "cmp"
    assert main(["compare", "--tasks", "antonyms,sum", "--seeds", "0", "--quick", "--budget", "2",
                 "--baselines", "none", "--out", str(cmp_out), "--device", "cpu"]) == 0
    table = (cmp_out / "table.md").read_text()
    assert table.startswith("Test accuracy") and "| antonyms |" in table and "| sum |" in table
    assert (cmp_out / "compare.png").is_file()
    header = json.loads((cmp_out / "sum-seed0" / "record.jsonl").read_text().splitlines()[0])
    assert header["config"]["task"] == "sum"


def test_prepare_converts_every_embedded_model(monkeypatch, capsys, tmp_path):
    from izkit import models

    monkeypatch.setattr(models, "embedded_model_dir", lambda name=None, rebuild=False: tmp_path / f"{name}-{rebuild}")
    assert main(["prepare", "--rebuild"]) == 0
    out = capsys.readouterr().out
    for name in models.EMBEDDED_MODELS:
        assert f"embedded model {name} ready in {tmp_path / (name + '-True')}" in out


def test_compare_archives_each_pair_as_it_finishes_and_a_later_sitting_reads_them_back(tmp_path, monkeypatch, capsys):
    from conftest import make_fake_pipeline
    import izkit.studies.study
    from izkit.pipeline import Pipeline

    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, *a, **k: make_fake_pipeline()))
    archived = []
    real_archive = izkit.studies.study.archive
    monkeypatch.setattr(izkit.studies.study, "archive", lambda runs, dest: archived.append(
        [r.record.path.parent.name for r in runs]) or real_archive(runs, dest))
    argv = lambda out: ["compare", "--tasks", "antonyms,sum", "--seeds", "0", "--quick", "--objective",  # noqa: E731
                        "loglik", "--baselines", "uniform", "--no-cache", "--out", str(out),
                        "--archive", str(tmp_path / "archive")]
    assert main(argv(tmp_path / "first")) == 0
    assert archived == [["antonyms-seed0"], ["sum-seed0"]]  # one pair at a time, as each one finished
    table = (tmp_path / "first" / "table.md").read_text()
    for name in ("antonyms-seed0", "sum-seed0"):
        lines = (tmp_path / "archive" / name / "record.jsonl").read_text()
        assert '"kind":"done"' in lines and '"predictions"' not in lines  # finished, without the answers' text

    def no_models(cls, *a, **k):
        raise AssertionError("a pair in the archive was run again")

    monkeypatch.setattr(Pipeline, "from_config", classmethod(no_models))
    capsys.readouterr()
    assert main(argv(tmp_path / "second")) == 0  # another machine, the same archive: read back with no model
    assert "2 archived runs copied" in capsys.readouterr().out
    assert (tmp_path / "second" / "table.md").read_text() == table
