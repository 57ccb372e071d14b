"""The pipeline of a run: generator g, black box f, the exemplars g reads and the metric f is scored by.

    z --(A, step 1)--> soft tokens --(g, step 2, eq. 2)--> instruction v --(f, step 3, eq. 1)--> scores on dev

:class:`Pipeline` is the one seam between the loop and the models: the loop (``izkit.loop``), the widgets and the
benchmarks build one with :meth:`Pipeline.from_config` (models loaded from the config's names) or
:meth:`Pipeline.from_record` (the models a recorded run used), and tests build one from fakes.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from izkit.config import Config
from izkit.prompts import PROMPTS
from izkit.tasks import Splits, load_task

logger = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """What a run needs of the models.

    ``generator`` has ``generate(Z, exemplars) -> list[str]`` and ``generate_plain(exemplars, n, sampling)`` / ``generate_ape(...)``
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
        """Load the config's generator and black box (one model copy when both roles name the same model; an unnamed
        black box is izkit.models.blackbox_default's)."""
        from izkit.blackbox import LocalBlackBox, OpenAIBlackBox
        from izkit.generator import RandomProjection, SoftPromptGenerator
        from izkit.models import blackbox_default, load_causal_lm

        if splits is None or metric is None:
            task = load_task(cfg.task, root=cfg.root)
            splits = splits or task.splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed)
            metric = metric or task.metric
        objective = objective or cfg.resolved_objective()
        remote = None
        if cfg.generator_url:  # the generator is served elsewhere: its tokenizer and embedding table alone here
            from izkit.models import load_input_embeddings
            from izkit.serving.remote import RemoteDecoder

            model, tokenizer = load_input_embeddings(cfg.generator, dtype=cfg.dtype)
            remote = RemoteDecoder(cfg.generator_url, timeout=cfg.request_timeout, max_retries=cfg.max_retries)
        else:
            model, tokenizer = load_causal_lm(cfg.generator, device=cfg.device, dtype=cfg.dtype)
        projection = RandomProjection.for_model(model, d=cfg.d, n_tokens=cfg.n_tokens, kind=cfg.projection,
                                                seed=cfg.seed)
        template, chat = PROMPTS[cfg.generator_prompt]
        generator = SoftPromptGenerator(model, tokenizer, projection, template=template, chat=chat,
                                        layout=cfg.layout, remote=remote)
        if cfg.blackbox == "local":
            if remote is not None and cfg.blackbox_model is None:
                logger.warning("the generator is served at %s, but the black box is local and defaults to the "
                               "generator's model, so the whole of %s is loaded here; pass --blackbox openai (or "
                               "--blackbox-model) to keep it off this machine", cfg.generator_url,
                               cfg.generator or "the default model")
            judge = cfg.blackbox_model or blackbox_default(cfg.generator)  # None: the default model
            bb_model, bb_tok = ((model, tokenizer) if judge == cfg.generator and remote is None
                                else load_causal_lm(judge, device=cfg.device, dtype=cfg.dtype))
            blackbox = LocalBlackBox(bb_model, bb_tok, objective=objective, cache=cfg.answer_cache)
        else:
            blackbox = OpenAIBlackBox(cfg.blackbox_model, base_url=cfg.base_url, api=cfg.api, objective=objective,
                                      timeout=cfg.request_timeout, max_retries=cfg.max_retries,
                                      cache=cfg.answer_cache)
        ids = {"generator": dataclasses.asdict(model.izkit_info), "blackbox": blackbox.model_id}
        if remote is not None:
            ids["generator"]["served_at"] = cfg.generator_url
            ids["generator"]["served_model"] = remote.model  # what the server says it decodes with
        return cls(generator, blackbox, splits.exemplars, metric, ids)

    @classmethod
    def from_record(cls, header: dict[str, Any]) -> tuple[Pipeline, Splits]:
        """The pipeline a recorded run used, rebuilt from its header (same projection A, exemplars and black box),
        and the run's splits."""
        from izkit.resume import settings_of

        cfg = settings_of(header)
        task = load_task(cfg.task, root=cfg.root)
        splits = task.splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed)
        return cls.from_config(cfg, splits, task.metric, header.get("objective")), splits

