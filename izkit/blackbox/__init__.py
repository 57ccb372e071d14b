"""Black boxes for InstructZero step 3: score instructions by the answers of a model that only takes text.

- :mod:`izkit.blackbox.base`: results, the :class:`BlackBox` protocol and :class:`CachedBlackBox`, the shared cached,
  deduplicating ``score``;
- :mod:`izkit.blackbox.local`: :class:`LocalBlackBox`, an in-process transformers model, batched;
- :mod:`izkit.blackbox.openai_compat`: :class:`OpenAIBlackBox`, any OpenAI-compatible endpoint, concurrent;
- :mod:`izkit.blackbox.retry`: when to ask an endpoint again, and how long to wait.
"""

from izkit.blackbox.base import (
    ANSWER_PREFIX,
    ANSWER_RULE,
    DEFAULT_TEMPLATE,
    OBJECTIVES,
    BlackBox,
    BlackBoxError,
    CachedBlackBox,
    Job,
    ScoreResult,
    Usage,
    first_line,
)
from izkit.blackbox.local import LocalBlackBox
from izkit.blackbox.openai_compat import MalformedResponse, OpenAIBlackBox, endpoint_id

__all__ = [
    "ANSWER_PREFIX", "ANSWER_RULE", "DEFAULT_TEMPLATE", "OBJECTIVES", "BlackBox", "BlackBoxError", "CachedBlackBox",
    "Job", "LocalBlackBox", "MalformedResponse", "OpenAIBlackBox", "ScoreResult", "Usage", "endpoint_id", "first_line",
]
