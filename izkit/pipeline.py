"""The pipeline of a run: generator g, black box f, the exemplars g reads and the metric f is scored by.

    z --(A, step 1)--> soft tokens --(g, step 2, eq. 2)--> instruction v --(f, step 3, eq. 1)--> scores on dev

:class:`Pipeline` is the one seam between the loop and the models: the loop (``izkit.loop``), the widgets and the
benchmarks build one with :meth:`Pipeline.from_config` (models loaded from the config's names) or
:meth:`Pipeline.from_record` (the models a recorded run used), and tests build one from fakes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from izkit.config import DTYPES, Config
from izkit.tasks import Splits, load_task


@dataclass
class Pipeline:
    """What a run needs of the models.

    ``generator`` has ``generate(Z, exemplars) -> list[str]`` and ``generate_plain(exemplars, n, sampling)``
    (:class:`izkit.generator.SoftPromptGenerator`); ``blackbox`` has ``score(instructions, examples, metric,
    objective) -> ScoreResult`` (:mod:`izkit.blackbox`); ``ids`` names both models in the run record's header.
    """

    generator: Any
    blackbox: Any
    exemplars: Any  # the kappa demos the generator reads (tasks.Splits.exemplars)
    metric: str  # the task metric for accuracy ("em", "f1", ...)
    ids: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Config, splits: Splits | None = None, metric: str | None = None,
                    objective: str | None = None) -> Pipeline:
        """Load the config's generator and black box (one model copy when both roles name the same model)."""
        from izkit.blackbox import LocalBlackBox, OpenAIBlackBox
        from izkit.generator import RandomProjection, SoftPromptGenerator
        from izkit.models import load_causal_lm

        if splits is None or metric is None:
            task = load_task(cfg.task, root=cfg.root)
            splits = splits or task.splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed)
            metric = metric or task.metric
        objective = objective or cfg.resolved_objective()
        model, tokenizer = load_causal_lm(cfg.generator, device=cfg.device, dtype=cfg.dtype)
        if cfg.projection == "normal":
            projection = RandomProjection.for_model(model, d=cfg.d, n_tokens=cfg.n_tokens, kind="normal",
                                                    seed=cfg.seed)
        else:
            projection = RandomProjection(cfg.d, cfg.n_tokens, model.config.hidden_size, kind="uniform",
                                          seed=cfg.seed)
        generator = SoftPromptGenerator(model, tokenizer, projection, chat=cfg.generator_prompt == "chat")
        if cfg.blackbox == "local":
            bb_model, bb_tok = ((model, tokenizer) if cfg.blackbox_model in (None, cfg.generator)
                                else load_causal_lm(cfg.blackbox_model, device=cfg.device, dtype=cfg.dtype))
            blackbox = LocalBlackBox(bb_model, bb_tok, objective=objective, cache=cfg.answer_cache)
        else:
            blackbox = OpenAIBlackBox(cfg.blackbox_model, base_url=cfg.base_url, api=cfg.api, objective=objective,
                                      timeout=cfg.request_timeout, max_retries=cfg.max_retries,
                                      cache=cfg.answer_cache)
        ids = {"generator": dataclasses.asdict(model.izkit_info), "blackbox": blackbox.model_id}
        return cls(generator, blackbox, splits.exemplars, metric, ids)

    @classmethod
    def from_record(cls, header: dict[str, Any]) -> tuple[Pipeline, Splits]:
        """The pipeline a recorded run used, rebuilt from its header (same projection A, exemplars and black box),
        and the run's splits."""
        names = {f.name for f in dataclasses.fields(Config)}
        cfg = Config.from_dict({k: v for k, v in header["config"].items() if k in names})
        cfg = with_recorded_dtype(cfg, header)
        task = load_task(cfg.task, root=cfg.root)
        splits = task.splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed)
        return cls.from_config(cfg, splits, task.metric, header.get("objective")), splits


def with_recorded_dtype(cfg: Config, header: dict[str, Any]) -> Config:
    """``cfg`` with the number format its record's models were loaded in, where ``cfg`` names none: a run read back
    or resumed keeps answering as it did, whatever this machine's default (izkit.models.default_dtype) is now."""
    gen = (header.get("models") or {}).get("generator")
    recorded = gen.get("dtype") if isinstance(gen, dict) else None  # fakes name their models by a plain string
    if cfg.dtype is None and recorded in DTYPES:
        return dataclasses.replace(cfg, dtype=recorded)
    return cfg
