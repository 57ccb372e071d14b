"""Resuming a run: what a run folder's record holds, what a run does with it, and with which settings exactly.

One home for the question: :func:`plan_run` is asked by every run (``izkit.loop.Run``, so ``izkit run``, ``izkit
compare``, its Ray fan-out and the course's notebooks alike) before anything is loaded, and :func:`settings_of` by
everything that reads a record back (the pipeline of a record, the replay's GP). The one rule, by what the record holds
(:func:`record_state`):

    absent, empty, headerless (nothing recorded)   start, with the config asked for (a partial header is removed);
                                                   ``izkit run --resume`` has no config but the record's: an error
    torn, unfinished (a header, no ``done`` line)  continue (a torn last line is cut off and re-done), if resuming
    finished (a ``done`` line)                     read back (no model is loaded), if resuming
    torn, unfinished or finished, not resuming     an error: the record would be overwritten

A recorded run continues only with the config it was made with:

- the settings in :data:`RESUME_MAY_CHANGE` may differ (how to reach the models and where answers are cached, not what
  the run is);
- a model left unnamed ("the default") is compared by the name the record holds for it, so a run made with another
  izkit version's default model is refused rather than continued with other models;
- a loopback endpoint is compared without its port (a restarted local server is the same black box);
- a served generator may move to another server, but a run does not switch between a served and an in-process one;
- a run keeps the number format (dtype) its models were loaded in, whatever this machine's default is now.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from izkit import __version__
from izkit.config import DTYPES, Config
from izkit.records import RECORD_NAME, RecordError, jsonable, read_lines

# Settings a resumed run may change: how to reach the models and where answers are cached, not what the run is.
RESUME_MAY_CHANGE = frozenset({"request_timeout", "max_retries", "device", "dtype", "answer_cache", "test_curve",
                               "generator_url"})
CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(Config))
# Settings added after records were archived -> what those records did (not necessarily today's default): a record
# without them reads as if it had them at these values (the study in bench/data/study was made before multi-fidelity
# selection and before the soft tokens could sit anywhere but right after BOS).
ADDED_LATER: dict[str, Any] = {"selection": "best", "answers": None, "halving_first": 5, "halving_eta": 3.0,
                               "halving_top": 100, "halving_ties": "first", "layout": "soft-first", "preimages": False,
                               "sampled": 0.0, "generator_url": None, "halving_singles": False}


# Settings renamed since records were archived: ``max_evals`` (``--budget`` as a cap on instructions) became
# ``answers`` (2026-12-07, issue 46: one name for the budget of black-box answers, always a number once made).
RENAMED = {"max_evals": "answers"}


def with_later_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A recorded config dict in today's names: the settings in :data:`ADDED_LATER` it lacks at what records made
    before them did, and a budget stated the old way (:data:`RENAMED`) as the answers it meant."""
    out = {**ADDED_LATER, **config}
    cap = out.pop("max_evals", None)  # instructions, each on n_dev examples
    if out.get("answers") is None and all(k in out for k in ("n_init", "n_rounds", "batch_size", "n_dev")):
        full = out["n_init"] + out["n_rounds"] * out["batch_size"]
        out["answers"] = min(full, cap if cap is not None else full) * out["n_dev"]
    return out


def settings_of(header: dict[str, Any]) -> Config:
    """The Config a record was made with (settings unknown to this izkit left out), in its recorded number format."""
    config = header.get("config") or {}
    return Config.from_dict(with_recorded_dtype({k: v for k, v in with_later_defaults(config).items()
                                                 if k in CONFIG_FIELDS}, header))


def with_recorded_dtype(settings: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    """``settings`` (a config dict) with the number format its record's models were loaded in, where they name none:
    a run read back or resumed keeps answering as it did, whatever this machine's default
    (izkit.models.default_dtype) is now."""
    gen = (header.get("models") or {}).get("generator")
    recorded = gen.get("dtype") if isinstance(gen, dict) else None  # fakes name their models by a plain string
    if settings.get("dtype") is None and recorded in DTYPES:
        return {**settings, "dtype": recorded}
    return settings


def recorded_default(header: dict[str, Any]) -> str | None:
    """The name of the generator a record's header says was loaded (None for fakes and older records)."""
    gen = (header.get("models") or {}).get("generator")
    return gen.get("name") if isinstance(gen, dict) else None


def with_model_names(config: dict[str, Any], default: str | None) -> dict[str, Any]:
    """A config dict whose unnamed models (None: "the default") carry the name they stood for, and whose endpoint is
    compared as the answer cache names it (a loopback server's port left out)."""
    out = dict(config)
    if out.get("base_url"):
        from izkit.blackbox.openai_compat import endpoint_id

        out["base_url"] = endpoint_id(out["base_url"], out.get("api", "chat"))
    if out.get("generator") is None and default is not None:
        out["generator"] = default
    if out.get("blackbox", "local") == "local" and out.get("blackbox_model") is None:
        from izkit.models import blackbox_default

        out["blackbox_model"] = blackbox_default(out.get("generator"), default)
    return out


def recorded_config(header: dict[str, Any]) -> dict[str, Any]:
    """A record's config with its default models named as the header's model ids say (what the run really used), and
    the settings added since it was written at their defaults."""
    config = header.get("config") or {}
    return with_model_names(with_later_defaults(config) if config else config, recorded_default(header))


def current_config(settings: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    """A config dict with its default models named as this izkit's default, where the record names its own."""
    from izkit.models import default_model

    return with_model_names(settings, default_model() if recorded_default(header) else None)


def check_same_config(path: Path, recorded: dict[str, Any], current: dict[str, Any],
                      ignore: frozenset[str] | set[str] = RESUME_MAY_CHANGE) -> None:
    """Raise unless a record's config matches the run that wants to resume it (fields in ``ignore`` may differ).

    The message names every field that differs; a field only one side has means another izkit version wrote the record.
    """
    if not isinstance(recorded, dict) or (not recorded and current):
        raise RecordError(f"{path}: the header holds no run config (not a run record, or one written by another izkit "
                          f"version); start a new run with --out")
    keys = [k for k in sorted(set(recorded) | set(current)) if k not in ignore]
    differ = [k for k in keys if jsonable(recorded.get(k)) != jsonable(current.get(k))]
    if not differ:
        return
    missing = [k for k in differ if k not in recorded]  # an older izkit wrote the record
    extra = [k for k in differ if k not in current]  # a newer one did
    if missing or extra:
        what = "; ".join(([f"it has no setting {', '.join(missing)}"] if missing else [])
                         + ([f"it has setting {', '.join(extra)}, unknown to this izkit"] if extra else []))
        raise RecordError(f"{path}: this record was written by another izkit version ({what}), so it cannot be "
                          f"checked against this run; finish it with the izkit version that wrote it, or start a new "
                          f"run with --out")
    was = ", ".join(f"{k}={recorded[k]!r}" for k in differ)
    asks = ", ".join(f"{k}={current[k]!r}" for k in differ)
    raise RecordError(f"{path}: this record was made with {was}, but the run asks for {asks}; resume with the same "
                      f"settings, or start a new run with --out")


def check_resumable(path: Path, header: dict[str, Any], cfg: Config) -> Config:
    """The config to continue a record with: ``cfg`` checked against the header, in the recorded number format
    (:func:`resumed_settings`, as a Config)."""
    return Config.from_dict(resumed_settings(path, header, dataclasses.asdict(cfg)))


def resumed_settings(path: Path, header: dict[str, Any], asked: dict[str, Any]) -> dict[str, Any]:
    """The settings to continue a record with: ``asked`` (a config dict) checked against the header, in the recorded
    number format.

    Raises :class:`RecordError` when the record was made with other settings, or with a default model that is no
    longer the default (resume it by naming that model).
    """
    from izkit.models import default_model

    name, now = recorded_default(header), default_model()
    if asked.get("generator") is None and (header.get("config") or {}).get("generator") is None and \
            name not in (None, now):
        raise RecordError(f"{path}: this run was made with the default model of its izkit version, {name!r}, and the "
                          f"default is now {now!r}; resume it with --generator {name}, or start a new run with --out")
    was = recorded_config(header).get("generator_url")
    if (was is None) != (asked.get("generator_url") is None):  # another server may take over; not in-process <-> served
        how = f"served at {was}" if was else "run in this process"
        raise RecordError(f"{path}: this run's generator was {how}; resume it the same way ("
                          f"{'--generator-url URL' if was else 'without --generator-url'}), since the other way "
                          f"decodes its remaining rounds with other numbers, or start a new run with --out")
    check_same_config(path, recorded_config(header), current_config(asked, header))
    return with_recorded_dtype(asked, header)


def with_flags(path: Path, header: dict[str, Any], task: str, flags: dict[str, Any]) -> dict[str, Any]:
    """The settings recorded in ``header``, for ``izkit run --resume --task TASK``: ``flags`` are the settings the
    command line set away from Config's defaults (:meth:`Config.changes`), and each must agree with the record,
    except those that may change on resume.

    A default model may be named by the name the record holds for it (``--generator gemma-3-270m``), and a local
    server's ``--base-url`` may name another loopback port (the same black box, restarted).
    """
    recorded = header.get("config") or {}
    recorded = with_later_defaults(recorded) if recorded else recorded
    unknown, missing = set(recorded) - CONFIG_FIELDS, CONFIG_FIELDS - set(recorded) - RESUME_MAY_CHANGE
    if unknown or missing:  # a setting added later that may change on resume takes its default
        extra = "; ".join(part for part in ("unknown: " + ", ".join(sorted(unknown)) if unknown else "",
                                            "missing: " + ", ".join(sorted(missing)) if missing else "") if part)
        raise RecordError(f"{path}: its header's config (settings {extra}) was not written by this izkit version "
                          f"({__version__}); start a new run with --out")
    if Path(task).stem != Path(recorded["task"]).stem:
        raise RecordError(f"{path}: this record is a run of task {recorded['task']!r}, not {task!r}")
    settings, mine = dict(recorded), recorded_config(header)  # mine: default models named, --generator NAME may name
    same_endpoint = recorded_config({"config": {**recorded, "base_url": flags.get("base_url")}})["base_url"]
    for key, value in flags.items():
        if key == "base_url" and value and same_endpoint == mine["base_url"]:
            settings[key] = value  # a restarted loopback server on another port
        elif jsonable(value) == jsonable(mine.get(key)) or key in RESUME_MAY_CHANGE:
            settings[key] = value  # names what the record stood for, or may change
        else:
            raise RecordError(f"{path}: this record was made with {key}={mine.get(key)!r}, but the flags ask for "
                              f"{key}={value!r}; resume with only --task and --resume, or start a new run with --out")
    return settings


# What a run folder's record holds (record_state), and what a run does with it (plan_run): the one rule.
ABSENT, EMPTY, HEADERLESS = "absent", "empty", "headerless"  # nothing recorded: no file, no bytes, no whole line
# A record with a header: torn (its last line cut off by a kill), unfinished (no done line) or finished.
TORN, UNFINISHED, FINISHED = "torn", "unfinished", "finished"
ACTIONS = {ABSENT: "start", EMPTY: "start", HEADERLESS: "start", TORN: "continue", UNFINISHED: "continue",
           FINISHED: "read back"}


def record_state(folder: str | os.PathLike) -> str:
    """What the record in a run folder holds: one of :data:`ACTIONS`' keys (a corrupt record raises
    :class:`RecordError` naming the line). Reads only; nothing is cut or written."""
    return _read(Path(folder) / RECORD_NAME)[0]


def _read(path: Path) -> tuple[str, dict[str, Any] | None]:
    """(the record's state, its header or None)."""
    if not path.is_file():
        return ABSENT, None
    size = path.stat().st_size
    if size == 0:
        return EMPTY, None
    lines, good = read_lines(path)
    if not lines:  # a kill while the header was being written
        return HEADERLESS, None
    if any(line.get("kind") == "done" for line in lines):
        return FINISHED, lines[0]
    return (TORN if good < size else UNFINISHED), lines[0]


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a run does with its folder: the record's state, the action the rule gives it, and the one config the run
    goes on with (the caller's for a start; for a recorded run, the record's, checked against what was asked),
    validated, with the objective it maximises."""

    folder: Path
    state: str  # absent, empty, headerless, torn, unfinished or finished (record_state)
    action: str  # what the rule does with such a record: "start", "continue" or "read back" (ACTIONS[state])
    config: Config
    objective: str  # config.resolved_objective()


def plan_run(folder: str | os.PathLike, cfg: Config, resume: bool = False,
             flags: dict[str, Any] | None = None) -> RunPlan:
    """The one rule for a run folder (the module docstring's table), asked once, before a run loads anything.

    Args:
        folder: the run folder; its record is ``folder / record.jsonl``.
        cfg: the config asked for (for ``flags``, only its task is read).
        resume: whether a recorded run here may be continued (or read back when finished); without it, a record with
            anything in it is an error rather than overwritten.
        flags: ``izkit run --resume``: the settings its command line set away from Config's defaults
            (:meth:`Config.changes`); the config is the record's, checked against them (:func:`with_flags`). With
            nothing recorded there is no config to resume, and that is an error.

    The config is built once, at the end, from the settings resolved as plain dicts, and validated there.
    """
    folder = Path(folder)
    path = folder / RECORD_NAME
    state, header = _read(path)
    settings = None
    if header is None:  # nothing recorded: starting is all resuming could do
        if resume and flags is not None:
            raise RecordError(f"{folder}: no run recorded there ({state} {RECORD_NAME}) to take the settings from; "
                              f"start the run with --out {folder} (nothing is lost)")
    elif not resume:
        raise RecordError(f"{path}: a record already exists; resume it with --resume {folder}")
    else:
        asked = with_flags(path, header, cfg.task, flags) if flags is not None else dataclasses.asdict(cfg)
        settings = resumed_settings(path, header, asked)
    config = cfg if settings is None else Config.from_dict(settings)
    config.validate()
    return RunPlan(folder, state, ACTIONS[state], config, config.resolved_objective())
