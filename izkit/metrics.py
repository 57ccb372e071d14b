"""Execution accuracy: the Instruction Induction benchmark's normalisation and per-task metrics.

InstructZero (paper step 3) scores the black box's answer to each dev example against the gold answers with the
benchmark's metric for that task (Honovich et al., 2022): exact match after normalisation by default; token F1 for
``common_concept`` and ``informal_to_formal``; the exact set of words for ``orthography_starts_with`` and
``taxonomy_animal``; "contains" for ``synonyms``. Answers are lists and any one of them counts (the best is taken).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

METRICS = ("em", "f1", "exact_set", "contains")

# The benchmark's per-task metric; every task not listed here uses exact match ("em").
METRIC_BY_TASK: dict[str, str] = {
    "common_concept": "f1",
    "informal_to_formal": "f1",
    "orthography_starts_with": "exact_set",
    "taxonomy_animal": "exact_set",
    "synonyms": "contains",
}

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_SENTENCE_TAG = re.compile(r"sentence [12]:", re.IGNORECASE)


def normalise(text: str) -> str:
    """The benchmark's normalisation, in its order.

    Drop ' and ' and the 'Sentence 1:'/'Sentence 2:' tags, keep the first line and the part before the first '.',
    lower-case, turn '-' into a space, strip punctuation, and collapse surrounding and repeated whitespace.
    """
    text = text.replace(" and ", " ")
    text = _SENTENCE_TAG.sub(" ", text)
    text = text.strip().split("\n")[0]
    text = text.split(".")[0]
    text = text.lower().replace("-", " ")
    text = text.translate(_PUNCTUATION)
    return " ".join(text.split())


def exact_match(prediction: str, answer: str) -> float:
    """1.0 when the normalised prediction equals the normalised answer."""
    return float(normalise(prediction) == normalise(answer))


def f1(prediction: str, answer: str) -> float:
    """Token F1 between the normalised prediction and answer (SQuAD-style, with repeated tokens counted)."""
    pred, gold = normalise(prediction).split(), normalise(answer).split()
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_set(prediction: str, answer: str) -> float:
    """1.0 when the prediction holds exactly the answer's set of words (order and repeats ignored)."""
    return float(set(normalise(prediction).split()) == set(normalise(answer).split()))


def contains(prediction: str, answer: str) -> float:
    """1.0 when the normalised answer appears in the normalised prediction as whole words."""
    gold = normalise(answer)
    if not gold:
        return 0.0
    return float(re.search(rf"(?:^| ){re.escape(gold)}(?: |$)", normalise(prediction)) is not None)


_FUNCTIONS: dict[str, Callable[[str, str], float]] = {
    "em": exact_match,
    "f1": f1,
    "exact_set": exact_set,
    "contains": contains,
}


def metric_for(task_name: str) -> str:
    """The benchmark's metric name for a task ("em" unless the task is in :data:`METRIC_BY_TASK`)."""
    return METRIC_BY_TASK.get(task_name, "em")


def score(metric: str, prediction: str, answers: str | Sequence[str]) -> float:
    """Score one prediction against the gold answers with a metric; any answer counts, so the best is taken.

    Args:
        metric: one of "em", "f1", "exact_set", "contains", or a task (anything with a ``metric`` attribute).
        prediction: the black box's raw answer.
        answers: one gold answer or a list of them.
    """
    metric = getattr(metric, "metric", metric)
    try:
        fn = _FUNCTIONS[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}") from None
    if isinstance(answers, str):
        answers = [answers]
    if not answers:
        raise ValueError("score() needs at least one gold answer")
    return max(fn(prediction, a) for a in answers)
