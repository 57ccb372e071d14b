"""What every black box shares: InstructZero step 3 (Chen et al., ICML 2024, sec. 3.1, eq. 1).

The black-box LLM ``f`` answers each dev example zero-shot with the template
``Instruction: v\\n\\nInput: x\\n\\nOutput:``; each answer is scored against the gold answers, giving the per-example
score vector of instruction ``v`` (the instruction-coupled kernel needs it, paper eq. 8-9) and its mean ``H(v)``,
the value Bayesian optimisation maximises (eq. 1). Two objectives:

- ``"accuracy"``: the task metric (:func:`izkit.metrics.score`) on the black box's greedy answer, its first
  non-empty line (:func:`first_line`), as in the paper;
- ``"loglik"``: the mean per-token log-likelihood of the gold answer ``answers[0]`` given the prompt (higher is
  better), which separates instructions when a small model's accuracy is near zero for all of them.

:class:`CachedBlackBox` holds the part every black box shares: it dedupes (instruction, input) questions, reads and
writes the :class:`izkit.cache.AnswerCache`, asks the subclass only for the misses and assembles the
:class:`ScoreResult`.
"""

from __future__ import annotations

import abc
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from izkit.cache import AnswerCache
from izkit.metrics import score as metric_score

DEFAULT_TEMPLATE = "Instruction: {instruction}\n\nInput: {input}\n\nOutput:"  # the paper's black-box prompt
OBJECTIVES = ("accuracy", "loglik")
ANSWER_PREFIX = " "  # put between the prompt (ending in "Output:") and the gold answer for "loglik"
# How an answer is read from the model's text, part of every "accuracy" cache key. 1: the text before the first
# newline (an answer that opened with a newline was empty); 2: the first non-empty line.
ANSWER_RULE = 2


class BlackBoxError(RuntimeError):
    """A black box could not answer; the message names the endpoint and the last error."""


def first_line(text: str) -> str:
    """The answer in a model's text: its first line that is not blank, stripped ("" when there is none)."""
    return next((line.strip() for line in re.split(r"[\r\n]", text) if line.strip()), "")


def check_template(template: str) -> None:
    """A black-box prompt must hold both ``{instruction}`` and ``{input}``."""
    if "{instruction}" not in template or "{input}" not in template:
        raise ValueError(f"template must contain '{{instruction}}' and '{{input}}', got {template!r}")


def check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


# ----------------------------------------------------------------------------------------------------------------------
# Results


@dataclass
class Usage:
    """What one ``score`` call cost.

    ``requests`` counts model calls actually made (local: batched passes; OpenAI: HTTP requests that returned an
    answer, the SDK's internal retries not counted). ``cache_hits`` counts answers read from the cache instead. For
    "loglik", ``completion_tokens`` counts the gold-answer tokens that were scored.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    cache_hits: int = 0
    seconds: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{k: getattr(self, k) + getattr(other, k) for k in asdict(self)})


@dataclass
class ScoreResult:
    """Scores of I instructions on E examples under one objective.

    ``scores[i, j]`` is example j's score under instruction i: the task metric (accuracy) or the mean per-token
    log-likelihood of the gold answer (loglik). ``predictions[i][j]`` is the one-line answer; for "loglik" it is the
    empty string (the likelihood needs no answer, and generating one would double the cost).
    """

    objective: str  # "accuracy" or "loglik": which quantity these scores are
    instructions: list[str]
    scores: np.ndarray  # (I, E)
    predictions: list[list[str]]  # I lists of E answers
    means: np.ndarray  # (I,) H(v): the mean over examples
    usage: Usage = field(default_factory=Usage)
    metric: str | None = None  # the task metric used for "accuracy"; None for "loglik"
    model: str = ""  # the black box's model id

    def best(self) -> tuple[str, float]:
        """The instruction with the highest mean, and that mean."""
        i = int(np.argmax(self.means))
        return self.instructions[i], float(self.means[i])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for run records)."""
        return {
            "objective": self.objective,
            "metric": self.metric,
            "model": self.model,
            "instructions": list(self.instructions),
            "scores": self.scores.tolist(),
            "predictions": [list(p) for p in self.predictions],
            "means": self.means.tolist(),
            "usage": asdict(self.usage),
        }


@runtime_checkable
class BlackBox(Protocol):
    """Anything that scores instructions on examples (InstructZero step 3)."""

    objective: str

    def score(
        self, instructions: list[str], examples: Sequence[Any], metric: str = "em", objective: str | None = None
    ) -> ScoreResult: ...


class Job(NamedTuple):
    """One question for the black box."""

    instruction: str
    input: str
    gold: str  # for "loglik": the continuation to score (" " + answers[0]); "" for "accuracy"


Store = Callable[[int, dict[str, Any]], None]  # store(k, value): job k is answered


# ----------------------------------------------------------------------------------------------------------------------
# The shared part: deduplication, the cache, assembling the result


class CachedBlackBox(abc.ABC):
    """Dedupe (instruction, input) questions, read the cache, have the misses answered, assemble the result.

    Subclasses set ``model_id``, ``endpoint_id``, ``template``, ``objective`` and ``cache``, and implement
    :meth:`decoding` (what, besides the prompt, decides an answer: it goes into the cache key) and :meth:`answer`.
    """

    model_id: str
    endpoint_id: str
    template: str
    objective: str
    cache: AnswerCache | None

    @abc.abstractmethod
    def decoding(self, objective: str) -> dict[str, Any]:
        """The settings that decide an answer under ``objective``, for the cache key."""

    @abc.abstractmethod
    def answer(self, objective: str, jobs: list[Job], store: Store, usage: Usage) -> None:
        """Answer the jobs; call ``store(k, value)`` as soon as job k is answered (it goes to the cache at once).

        A value is ``{"prediction": str}`` for "accuracy" and ``{"loglik": float, ...}`` for "loglik".
        """

    def format_prompt(self, instruction: str, input: str) -> str:
        return self.template.format(instruction=instruction, input=input)

    def cache_key(self, objective: str, instruction: str, input: str, gold: str | None) -> str:
        """The cache key of one question: everything that decides its answer."""
        return AnswerCache.key(
            model=self.model_id,
            endpoint=self.endpoint_id,
            template=self.template,
            instruction=instruction,
            input=input,
            decoding=self.decoding(objective),
            objective=objective,
            answer=gold,
        )

    def score(
        self,
        instructions: list[str],
        examples: Sequence[Any],
        metric: str = "em",
        objective: str | None = None,
    ) -> ScoreResult:
        """Score each instruction on each example (step 3); see the module docstring for the objectives.

        Args:
            instructions: I instructions (duplicates are answered once).
            examples: E examples (``input``, ``answers``); "loglik" scores ``answers[0]``.
            metric: the task metric for "accuracy" ("em", "f1", "exact_set", "contains").
            objective: "accuracy" or "loglik"; default the black box's own.
        """
        objective = objective or self.objective
        check_objective(objective)
        if isinstance(instructions, str):
            raise TypeError("instructions must be a list of strings, got a single string; wrap it in a list")
        instructions, examples = list(instructions), list(examples)
        if not instructions or not examples:
            raise ValueError(
                f"need at least one instruction and one example, got {len(instructions)} and {len(examples)}"
            )
        t0 = time.perf_counter()
        usage = Usage()

        keys: dict[tuple[str, int], str] = {}  # (instruction, example index) -> key
        jobs: dict[str, Job] = {}  # key -> what to ask, one per distinct question
        for v in dict.fromkeys(instructions):
            for j, ex in enumerate(examples):
                gold = ex.answers[0] if objective == "loglik" else None
                k = self.cache_key(objective, v, ex.input, gold)
                keys[(v, j)] = k
                jobs.setdefault(k, Job(v, ex.input, ANSWER_PREFIX + gold if gold is not None else ""))
        values: dict[str, dict[str, Any]] = self.cache.get_many(jobs) if self.cache is not None else {}
        usage.cache_hits = len(values)
        todo = [k for k in jobs if k not in values]

        def store(idx: int, value: dict[str, Any]) -> None:
            values[todo[idx]] = value
            if self.cache is not None:
                self.cache.put(todo[idx], value)  # at once: a failure later in the call loses nothing answered

        if todo:
            self.answer(objective, [jobs[k] for k in todo], store, usage)
        usage.seconds = time.perf_counter() - t0

        scores = np.zeros((len(instructions), len(examples)))  # (I, E)
        predictions: list[list[str]] = []
        for i, v in enumerate(instructions):
            row: list[str] = []
            for j, ex in enumerate(examples):
                value = values[keys[(v, j)]]
                if objective == "loglik":
                    scores[i, j] = value["loglik"]
                    row.append("")
                else:
                    scores[i, j] = metric_score(metric, value["prediction"], ex.answers)
                    row.append(value["prediction"])
            predictions.append(row)
        return ScoreResult(
            objective=objective,
            instructions=instructions,
            scores=scores,
            predictions=predictions,
            means=scores.mean(axis=1),  # (I,)
            usage=usage,
            metric=metric if objective == "accuracy" else None,
            model=self.model_id,
        )
