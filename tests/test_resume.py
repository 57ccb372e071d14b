"""izkit.resume: the one place that says whether a record may be continued with a config, and with which settings."""

from __future__ import annotations

import dataclasses

import pytest

from izkit.config import Config
from izkit.records import RecordError, RunRecord
from izkit.resume import (RESUME_MAY_CHANGE, check_resumable, check_same_config, plan_run, recorded_config,
                          settings_of, with_recorded_dtype)


def resumed_with_flags(out, task: str, asked: Config) -> Config:
    """The config ``izkit run --task TASK --resume OUT`` goes on with, for flags that make ``asked``."""
    assert asked.task == task
    return plan_run(out, asked, resume=True, flags=asked.changes()).config


def header(cfg: Config, generator: str | None = "gemma-3-270m", dtype: str = "float32") -> dict:
    models = {"generator": {"name": generator, "dtype": dtype}} if generator else {}
    return {"kind": "header", "config": cfg.to_dict(), "models": models}


def record(tmp_path, cfg: Config, **kw) -> RunRecord:
    return RunRecord.create(tmp_path / "record.jsonl", {k: v for k, v in header(cfg, **kw).items() if k != "kind"})


def test_check_same_config_names_the_field(tmp_path):
    check_same_config(tmp_path, {"seed": 0, "out": "a"}, {"seed": 0, "out": "b"}, ignore={"out"})
    with pytest.raises(RecordError, match=r"made with seed=0, but the run asks for seed=1"):
        check_same_config(tmp_path, {"seed": 0}, {"seed": 1}, ignore=set())
    with pytest.raises(RecordError, match="it has setting later_setting, unknown to this izkit"):
        check_same_config(tmp_path, {"seed": 0, "later_setting": 1}, {"seed": 0})


def test_only_how_to_reach_the_models_may_change_on_resume(tmp_path):
    cfg = Config.quick("antonyms", generator="gemma-3-270m")
    h = header(cfg)
    assert check_resumable(tmp_path, h, dataclasses.replace(cfg, request_timeout=5.0, answer_cache=None)).dtype == \
        "float32"  # the recorded number format where none is asked for
    assert {"request_timeout", "max_retries", "device", "dtype", "answer_cache"} <= RESUME_MAY_CHANGE
    with pytest.raises(RecordError, match="made with n_dev=5, but the run asks for n_dev=6"):
        check_resumable(tmp_path, h, dataclasses.replace(cfg, n_dev=6))


def test_a_served_generator_may_move_to_another_server_but_not_into_the_process(tmp_path):
    served = Config.quick("antonyms", generator="gemma-3-270m", generator_url="http://gpu-a:8000/v1")
    check_resumable(tmp_path, header(served), dataclasses.replace(served, generator_url="http://gpu-b:8000/v1"))
    with pytest.raises(RecordError, match=r"generator was served at http://gpu-a:8000/v1; resume it the same way "
                                          r"\(--generator-url URL\)"):
        check_resumable(tmp_path, header(served), dataclasses.replace(served, generator_url=None))
    local = dataclasses.replace(served, generator_url=None)
    with pytest.raises(RecordError, match=r"generator was run in this process; resume it the same way \(without "
                                          r"--generator-url\)"):
        check_resumable(tmp_path, header(local), served)


def test_an_unnamed_default_model_is_compared_by_the_name_the_record_holds(tmp_path, monkeypatch):
    import izkit.models

    cfg = Config.quick("antonyms")  # generator None: "the default"
    assert recorded_config(header(cfg))["generator"] == "gemma-3-270m" == recorded_config(header(cfg))["blackbox_model"]
    monkeypatch.setattr(izkit.models, "default_model", lambda: "gemma-3-270m")
    check_resumable(tmp_path, header(cfg), cfg)
    monkeypatch.setattr(izkit.models, "default_model", lambda: "qwen2.5-coder-0.5b-instruct")
    with pytest.raises(RecordError, match="resume it with --generator gemma-3-270m"):
        check_resumable(tmp_path, header(cfg), cfg)
    check_resumable(tmp_path, header(cfg), dataclasses.replace(cfg, generator="gemma-3-270m"))  # named: fine


def test_a_record_is_read_back_in_its_number_format_and_without_later_settings():
    cfg = Config.quick("antonyms", seed=2)
    h = header(cfg, dtype="bfloat16")
    h["config"]["a_later_setting"] = True
    back = settings_of(h)
    assert back == dataclasses.replace(cfg, dtype="bfloat16")
    assert with_recorded_dtype({**cfg.to_dict(), "dtype": "float32"}, h)["dtype"] == "float32"  # asked wins
    assert settings_of({"config": cfg.to_dict(), "models": {"generator": "fake"}}) == cfg  # fakes name no dtype


def test_run_resume_takes_the_record_and_checks_only_what_was_asked(tmp_path):
    cfg = Config.quick("antonyms", seed=3, baselines=("uniform",))
    record(tmp_path, cfg)
    cfg = dataclasses.replace(cfg, dtype="float32")  # in the number format the record's models were loaded in
    assert resumed_with_flags(tmp_path, "antonyms", Config(task="antonyms")) == cfg  # nothing asked: the record's
    assert resumed_with_flags(tmp_path, "antonyms", Config(task="antonyms", seed=3)) == cfg  # agreeing: fine
    assert resumed_with_flags(tmp_path, "antonyms", Config(task="antonyms", max_retries=9)).max_retries == 9
    with pytest.raises(RecordError, match="made with seed=3, but the flags ask for seed=4"):
        resumed_with_flags(tmp_path, "antonyms", Config(task="antonyms", seed=4))
    with pytest.raises(RecordError, match="a run of task 'antonyms', not 'sum'"):
        resumed_with_flags(tmp_path, "sum", Config(task="sum"))
    with pytest.raises(RecordError, match="no run recorded there"):
        resumed_with_flags(tmp_path / "elsewhere", "antonyms", Config(task="antonyms"))


def test_a_record_made_before_halving_existed_resumes_with_the_papers_selection(tmp_path):
    from izkit.resume import ADDED_LATER

    cfg = Config.quick("antonyms", generator="gemma-3-270m", **ADDED_LATER)
    old = header(cfg)
    old["config"] = {k: v for k, v in old["config"].items() if k not in ADDED_LATER}  # as the archived study has it
    check_resumable(tmp_path, old, cfg)
    with pytest.raises(RecordError, match="made with selection='best', but the run asks for selection='halving'"):
        check_resumable(tmp_path, old, dataclasses.replace(cfg, selection="halving"))
    RunRecord.create(tmp_path / "record.jsonl", {k: v for k, v in old.items() if k != "kind"})
    back = resumed_with_flags(tmp_path, "antonyms", Config(task="antonyms"))
    assert back == dataclasses.replace(cfg, dtype="float32")


def test_settings_added_later_read_as_what_older_records_did_not_as_todays_defaults(tmp_path, monkeypatch):
    """A record without ``layout`` was made with the soft tokens right after BOS, whatever the default is now."""
    from izkit.resume import ADDED_LATER

    cfg = Config.quick("antonyms", generator="gemma-3-270m", layout="soft-first")
    old = header(cfg)
    del old["config"]["layout"]
    monkeypatch.setattr(Config, "layout", "before-cue")  # a later default
    assert settings_of(old).layout == ADDED_LATER["layout"] == "soft-first"
    check_resumable(tmp_path, old, cfg)
    with pytest.raises(RecordError, match="made with layout='soft-first', but the run asks for layout='before-cue'"):
        check_resumable(tmp_path, old, dataclasses.replace(cfg, layout="before-cue"))


def write_state(folder, state: str, cfg: Config) -> None:
    """A record in ``folder`` as a run leaves it in ``state`` (a fake's header: no model named)."""
    from izkit.resume import ABSENT, EMPTY, FINISHED, HEADERLESS, TORN, UNFINISHED

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "record.jsonl"
    head = '{"kind":"header","config":' + __import__("json").dumps(cfg.to_dict()) + "}\n"
    text = {ABSENT: None, EMPTY: "", HEADERLESS: head[:30], TORN: head + '{"kind":"eval","me',
            UNFINISHED: head + '{"kind":"gp"}\n', FINISHED: head + '{"kind":"done"}\n'}[state]
    if text is not None:
        path.write_text(text)


@pytest.mark.parametrize(("state", "action"), [("absent", "start"), ("empty", "start"), ("headerless", "start"),
                                               ("torn", "continue"), ("unfinished", "continue"),
                                               ("finished", "read back")])
def test_the_one_rule_by_what_the_record_holds(tmp_path, state, action):
    from izkit.resume import record_state

    cfg = Config.quick("antonyms")
    write_state(tmp_path, state, cfg)
    before = (tmp_path / "record.jsonl").read_bytes() if state != "absent" else None
    assert record_state(tmp_path) == state
    plan = plan_run(tmp_path, cfg, resume=True)
    assert (plan.state, plan.action, plan.config) == (state, action, cfg)
    if action == "start":
        assert plan_run(tmp_path, cfg, resume=False).action == "start"  # nothing recorded: nothing overwritten
        if state != "absent":  # izkit run --resume has no config without a record
            with pytest.raises(RecordError, match="no run recorded there"):
                plan_run(tmp_path, Config(task="antonyms"), resume=True, flags={})
    else:
        with pytest.raises(RecordError, match="already exists; resume it with --resume"):
            plan_run(tmp_path, cfg, resume=False)
        assert plan_run(tmp_path, Config(task="antonyms"), resume=True, flags={}).config == cfg
        with pytest.raises(RecordError, match="made with seed=0, but the run asks for seed=1"):
            plan_run(tmp_path, dataclasses.replace(cfg, seed=1), resume=True)
    after = (tmp_path / "record.jsonl").read_bytes() if state != "absent" else None
    assert after == before  # the plan only looks


def test_a_corrupt_record_is_an_error_naming_the_line(tmp_path):
    (tmp_path / "record.jsonl").write_text('{"kind":"header","config":{}}\nnot json\n{"kind":"done"}\n')
    with pytest.raises(RecordError, match="line 2: corrupt record line"):
        plan_run(tmp_path, Config.quick("antonyms"), resume=True)


def test_a_budget_recorded_as_max_evals_reads_as_the_answers_it_meant(tmp_path):
    """Records made before 2026-12-07 state ``--budget 6`` as ``max_evals`` (a cap on instructions) and ``answers``
    as None: they read, resume and compare as today's ``answers`` = 6 x n_dev, with the same rounds."""
    cfg = Config.quick("antonyms", generator="gemma-3-270m", selection="best").with_instructions(6)
    old = header(cfg)
    old["config"] = {**{k: v for k, v in old["config"].items() if k != "answers"}, "max_evals": 6, "answers": None}
    back = settings_of(old)
    assert (back.answers, back.candidates, back.round_sizes) == (30, 6, [4, 2]) == (cfg.answers, cfg.candidates,
                                                                                   cfg.round_sizes)
    check_resumable(tmp_path, old, cfg)
    with pytest.raises(RecordError, match="made with answers=30, n_rounds=1, but the run asks for answers=60"):
        check_resumable(tmp_path, old, Config.quick("antonyms", generator="gemma-3-270m", selection="best"))
    del old["config"]["max_evals"]  # no cap: the paper's spend of the recorded design
    assert settings_of(old).answers == (4 + 1 * 4) * 5  # n_init + n_rounds x batch_size as recorded
