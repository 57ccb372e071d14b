"""Black-box scoring of instructions: InstructZero step 3 (Chen et al., ICML 2024, sec. 3.1, eq. 1).

The black-box LLM ``f`` answers each dev example zero-shot with the template
``Instruction: v\\n\\nInput: x\\n\\nOutput:``; each answer is scored against the gold answers, giving the per-example
score vector of instruction ``v`` (the instruction-coupled kernel needs it, paper eq. 8-9) and its mean ``H(v)``,
the value Bayesian optimisation maximises (eq. 1). Two objectives:

- ``"accuracy"``: the task metric (:func:`izkit.metrics.score`) on the black box's greedy one-line answer, as in the
  paper;
- ``"loglik"``: the mean per-token log-likelihood of the gold answer ``answers[0]`` given the prompt (higher is
  better): a finer-grained score that separates instructions when a small model's accuracy is near zero for all of
  them. Only a local model, or a completions endpoint that echoes prompt log-probabilities, can give it.

Every :class:`ScoreResult` names the objective it holds. Black boxes:

- :class:`LocalBlackBox`: an in-process transformers model, batched across instructions x examples;
- :class:`OpenAIBlackBox`: any OpenAI-compatible endpoint through the official ``openai`` SDK, concurrent requests.

Both keep answers in an :class:`izkit.cache.AnswerCache`, so nothing is asked twice, across calls and runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable
from urllib.parse import urlparse, urlunparse

import numpy as np
import torch

from izkit.cache import AnswerCache, resolve_cache
from izkit.generator import decode, kv, newline_token_ids

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "Instruction: {instruction}\n\nInput: {input}\n\nOutput:"  # the paper's black-box prompt
OBJECTIVES = ("accuracy", "loglik")
ANSWER_PREFIX = " "  # put between the prompt (ending in "Output:") and the gold answer for "loglik"


class BlackBoxError(RuntimeError):
    """A black box could not answer; the message names the endpoint and the last error."""


class MalformedResponse(Exception):
    """An HTTP 200 whose body is no completion (cut-off JSON, no ``choices``): retried like a 5xx."""


# ----------------------------------------------------------------------------------------------------------------------
# Results


@dataclass
class Usage:
    """What one ``score`` call cost.

    ``requests`` counts model calls actually made (local: batched forward/generate calls; OpenAI: HTTP requests that
    returned an answer, the SDK's internal retries not counted). ``cache_hits`` counts answers read from the cache
    instead. For "loglik", ``completion_tokens`` counts the gold-answer tokens that were scored.
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
    log-likelihood of the gold answer (loglik). ``predictions[i][j]`` is the raw one-line answer; for "loglik" it is
    the empty string (the likelihood needs no answer, and generating one would double the cost).
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


def first_line(text: str) -> str:
    """The answer: the text before the first newline, stripped (what ``stop="\\n"`` gives on an OpenAI endpoint)."""
    return text.split("\n", 1)[0].strip()


# ----------------------------------------------------------------------------------------------------------------------
# The shared part: deduplication, the cache, assembling the result


class _CachedBlackBox:
    """Shared logic: dedupe (instruction, input) pairs, read the cache, compute the misses, assemble the result.

    Subclasses set ``model_id``, ``endpoint_id``, ``template``, ``objective`` and implement :meth:`_answer`.
    """

    model_id: str
    endpoint_id: str
    template: str
    objective: str
    cache: AnswerCache | None

    def _decoding(self, objective: str) -> dict[str, Any]:
        raise NotImplementedError

    def _answer(
        self, objective: str, jobs: list[Job], store: Callable[[int, dict[str, Any]], None], usage: Usage
    ) -> None:
        """Answer the jobs; call ``store(k, value)`` as soon as job k is answered (it goes to the cache at once)."""
        raise NotImplementedError

    def format_prompt(self, instruction: str, input: str) -> str:
        return self.template.format(instruction=instruction, input=input)

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
        from izkit.metrics import score as metric_score

        objective = objective or self.objective
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if isinstance(instructions, str):
            raise TypeError("instructions must be a list of strings, got a single string; wrap it in a list")
        instructions = list(instructions)
        examples = list(examples)
        if not instructions or not examples:
            raise ValueError(
                f"need at least one instruction and one example, got {len(instructions)} and {len(examples)}"
            )
        t0 = time.perf_counter()
        usage = Usage()
        decoding = self._decoding(objective)

        # one job per distinct (instruction, input[, gold]) key
        keys: dict[tuple[str, int], str] = {}
        jobs: dict[str, Job] = {}  # key -> what to ask
        for v in dict.fromkeys(instructions):
            for j, ex in enumerate(examples):
                gold = ex.answers[0] if objective == "loglik" else None
                k = AnswerCache.key(
                    model=self.model_id,
                    endpoint=self.endpoint_id,
                    template=self.template,
                    instruction=v,
                    input=ex.input,
                    decoding=decoding,
                    objective=objective,
                    answer=gold,
                )
                keys[(v, j)] = k
                jobs.setdefault(k, Job(v, ex.input, ANSWER_PREFIX + gold if gold is not None else ""))
        values: dict[str, dict[str, Any]] = self.cache.get_many(jobs) if self.cache is not None else {}
        usage.cache_hits = len(values)
        todo = [k for k in jobs if k not in values]
        if todo:
            pending: dict[str, dict[str, Any]] = {}

            def store(idx: int, value: dict[str, Any]) -> None:
                pending[todo[idx]] = value
                if self.cache is not None:
                    self.cache.put(todo[idx], value)

            try:
                self._answer(objective, [jobs[k] for k in todo], store, usage)
            finally:
                values.update(pending)
                usage.seconds = time.perf_counter() - t0
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


# ----------------------------------------------------------------------------------------------------------------------
# A local model, in process


class LocalBlackBox(_CachedBlackBox):
    """An in-process transformers model as the black box, batched across instructions x examples.

    Args:
        model, tokenizer: a causal LM and its tokenizer (e.g. :func:`izkit.models.load_causal_lm`).
        objective: the default objective, "accuracy" or "loglik".
        template: the black-box prompt, with ``{instruction}`` and ``{input}``.
        max_new_tokens: longest answer (the longest gold answer in the bundled tasks is 12 tokens); generation also
            stops at EOS and at any token holding a newline.
        batch_size: answers per batch. Jobs are grouped by instruction, then by length, so a batch holds few
            prompt prefixes and little padding.
        cache: an AnswerCache, a path, "default" (``cache_dir()/answers.sqlite``) or None (no cache).

    Three things make a batch cheap:

    - the prompt prefix ``<bos>Instruction: v\n\nInput:`` is the same for all examples of an instruction: it runs
      through the model once per batch and its KV cache is shared by the rows (about half the prompt tokens);
    - accuracy: greedy decoding where a row that has stopped (EOS or any newline token) leaves the batch
      (:func:`izkit.generator.decode`), with the LM head only at the last position;
    - loglik: one forward pass over ``suffix + " " + answer`` with the LM head only at the positions that predict
      answer tokens (a boolean ``logits_to_keep``): Gemma's vocabulary has 262k entries, so the full-sequence LM head
      would cost more than the rest of the model.

    ``stats`` counts the work done (tokens through the model, LM-head rows), for FLOP estimates.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        objective: str = "accuracy",
        template: str = DEFAULT_TEMPLATE,
        max_new_tokens: int = 16,
        batch_size: int = 256,
        cache: AnswerCache | str | os.PathLike | None = "default",
    ) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if "{instruction}" not in template or "{input}" not in template:
            raise ValueError(f"template must contain '{{instruction}}' and '{{input}}', got {template!r}")
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError(f"batch_size and max_new_tokens must be positive, got {batch_size}, {max_new_tokens}")
        self.model, self.tokenizer = model, tokenizer
        self.objective, self.template = objective, template
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.cache = resolve_cache(cache)
        info = getattr(model, "izkit_info", None)
        if info is not None:
            self.model_id = f"{info.name}|{info.dtype}"
        else:
            self.model_id = f"{getattr(model.config, '_name_or_path', type(model).__name__)}|{model.dtype}"
        self.endpoint_id = "local-transformers"

        eos = tokenizer.eos_token_id
        eos = list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
        self._stop_ids = sorted(set(eos + newline_token_ids(tokenizer)))  # stop at EOS or any token with a newline
        self._stop_mask = torch.zeros(len(tokenizer), dtype=torch.bool)  # (V,)
        self._stop_mask[self._stop_ids] = True
        self._pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.stats = {"tokens": 0, "logit_positions": 0}  # work done: tokens through the model, LM-head rows

    def _decoding(self, objective: str) -> dict[str, Any]:
        if objective == "loglik":
            return {"answer_prefix": ANSWER_PREFIX}
        return {"greedy": True, "max_new_tokens": self.max_new_tokens, "stop": "newline"}

    @property
    def _device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    def _split(self, jobs: list[Job]) -> list[tuple[tuple[int, ...], list[int]]]:
        """Each job's prompt as token ids (shared prefix, suffix), exactly as the whole prompt tokenises.

        The prefix is the template up to ``{input}`` with the instruction filled in (``<bos>Instruction: v\n\nInput:``):
        the same for every example of an instruction, so its KV cache is computed once per batch. Where the split
        would tokenise differently from the whole prompt, the prefix is just the first token.
        """
        tok = self.tokenizer
        head, tail = self.template.split("{input}", 1)
        shareable = "{instruction}" in head and "{instruction}" not in tail
        prompts = [self.format_prompt(j.instruction, j.input) for j in jobs]
        full = tok(prompts)["input_ids"]
        heads = [head.format(instruction=j.instruction).rstrip() if shareable else "" for j in jobs]
        uniq = list(dict.fromkeys(heads))
        head_ids = dict(zip(uniq, tok(uniq)["input_ids"])) if shareable else {}
        rests = [p[len(h) :] for p, h in zip(prompts, heads)]
        rest_ids = tok(rests, add_special_tokens=False)["input_ids"]
        out = []
        for f, h, r in zip(full, heads, rest_ids):
            pre = head_ids.get(h)
            if not (pre is not None and pre + r == f and pre):
                pre, r = f[:1], f[1:]  # fallback: share only the first token (BOS)
            if not r:
                pre, r = pre[:-1], pre[-1:]  # the suffix must hold the position that predicts what follows
            out.append((tuple(pre), r))
        return out

    def _batches(self, parts: list[tuple[tuple[int, ...], list[int]]], extra: list[int]) -> list[list[int]]:
        """Batches of job indices, grouped by prefix (so prefixes are shared) and by length within a group."""
        order = sorted(range(len(parts)), key=lambda k: (parts[k][0], len(parts[k][1]) + extra[k]))
        return [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]

    def _prefill_prefixes(self, prefixes: list[tuple[int, ...]]) -> tuple[Any, torch.Tensor]:
        """Run each row's prefix through the model once per distinct prefix; return the KV cache expanded to rows.

        Returns:
            (cache holding (b, P) tokens per row, its (b, P) attention mask with the padding on the left).
        """
        from transformers import DynamicCache

        uniq = list(dict.fromkeys(prefixes))
        width = max(len(p) for p in uniq)
        cache = DynamicCache(config=self.model.config)
        if width == 0:  # nothing to share (a one-token prompt)
            return cache, torch.zeros((len(prefixes), 0), dtype=torch.long, device=self._device)
        ids = torch.full((len(uniq), width), self._pad, dtype=torch.long)  # (G, P)
        mask = torch.zeros((len(uniq), width), dtype=torch.long)  # (G, P)
        for g, p in enumerate(uniq):
            ids[g, width - len(p) :] = torch.tensor(p)
            mask[g, width - len(p) :] = 1
        ids, mask = ids.to(self._device), mask.to(self._device)
        self.model.base_model(  # the decoder only: no logits are needed here
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            use_cache=True,
            **kv(self.model.base_model, cache),
        )
        rows = torch.tensor([uniq.index(p) for p in prefixes], device=self._device)  # (b,) row -> prefix
        for layer in cache.layers:
            layer.batch_select_indices(rows)  # (G, ...) -> (b, ...): rows of one prefix share its keys and values
        self.stats["tokens"] += int(mask.sum())
        return cache, mask[rows]

    def _answer(self, objective, jobs, store, usage) -> None:
        parts = self._split(jobs)
        golds = None
        if objective == "loglik":
            golds = self.tokenizer([j.gold for j in jobs], add_special_tokens=False)["input_ids"]
            for k, g in enumerate(golds):
                if not g:
                    raise ValueError(f"the gold answer {jobs[k].gold!r} has no tokens; loglik needs a non-empty answer")
        extra = [len(g) for g in golds] if golds is not None else [0] * len(jobs)
        for batch in self._batches(parts, extra):
            with torch.inference_mode():
                cache, past_mask = self._prefill_prefixes([parts[k][0] for k in batch])  # (b, P)
                if objective == "loglik":
                    self._loglik_batch(batch, parts, golds, cache, past_mask, store, usage)
                else:
                    self._generate_batch(batch, parts, cache, past_mask, store, usage)
            usage.requests += 1
            usage.prompt_tokens += sum(len(parts[k][0]) + len(parts[k][1]) for k in batch)

    def _suffix_batch(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(x) for x in seqs)
        ids = torch.full((len(seqs), width), self._pad, dtype=torch.long)  # (b, T) left-padded
        mask = torch.zeros((len(seqs), width), dtype=torch.long)  # (b, T)
        for r, x in enumerate(seqs):
            ids[r, width - len(x) :] = torch.tensor(x, dtype=torch.long)
            mask[r, width - len(x) :] = 1
        return ids.to(self._device), mask.to(self._device)

    def _generate_batch(self, batch, parts, cache, past_mask, store, usage: Usage) -> None:
        ids, mask = self._suffix_batch([parts[k][1] for k in batch])  # (b, T), (b, T)
        rows = decode(
            self.model, mask, self.max_new_tokens, self._stop_mask, input_ids=ids, past_key_values=cache,
            past_mask=past_mask,
        )
        self.stats["tokens"] += int(mask.sum()) + sum(len(r) - 1 for r in rows)
        self.stats["logit_positions"] += sum(len(r) for r in rows)
        for k, row in zip(batch, rows):
            usage.completion_tokens += len(row)
            store(k, {"prediction": first_line(self.tokenizer.decode(row, skip_special_tokens=True))})

    def _loglik_batch(self, batch, parts, golds, cache, past_mask, store, usage: Usage) -> None:
        ids, mask = self._suffix_batch([parts[k][1] + golds[k] for k in batch])  # (b, T), (b, T) suffix + answer
        width = ids.shape[1]
        keep = torch.zeros_like(mask, dtype=torch.bool)  # (b, T) positions that predict an answer token
        targets: list[int] = []
        for r, k in enumerate(batch):
            n_a = len(golds[k])
            keep[r, width - n_a - 1 : width - 1] = True  # position t predicts token t + 1; the answer ends the row
            targets.extend(golds[k])
        full_mask = torch.cat([past_mask, mask], dim=1)  # (b, P + T)
        logits = self.model(
            input_ids=ids,
            attention_mask=full_mask,
            position_ids=(full_mask.cumsum(-1) - 1).clamp(min=0)[:, -width:],
            use_cache=True,
            **kv(self.model, cache),
            logits_to_keep=keep,
        ).logits  # (n, V): the LM head only at the n kept positions, row by row
        logp = torch.log_softmax(logits.reshape(-1, logits.shape[-1]).float(), dim=-1)  # (n, V)
        tgt = torch.tensor(targets, device=logp.device)  # (n,)
        token_logp = logp.gather(1, tgt[:, None])[:, 0].cpu()  # (n,)
        self.stats["tokens"] += int(mask.sum())
        self.stats["logit_positions"] += len(targets)
        start = 0
        for k in batch:
            n_a = len(golds[k])
            usage.completion_tokens += n_a
            store(k, {"loglik": float(token_logp[start : start + n_a].mean()), "n_tokens": n_a})
            start += n_a


# ----------------------------------------------------------------------------------------------------------------------
# Any OpenAI-compatible endpoint


_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _endpoint_id(base_url: str, api: str) -> str:
    """The endpoint's identity in cache keys: the URL, with a loopback server's port left out.

    A model served on this machine is identified by its model id (the folder it serves), not by the port it happened
    to get, so a re-run against a freshly started local server reuses the cache.
    """
    u = urlparse(base_url)
    if (u.hostname or "") in _LOOPBACK:
        u = u._replace(netloc="loopback")
    return f"{api}:{urlunparse(u).rstrip('/')}"


def _run_sync(make_coro: Callable[[], Any]) -> Any:
    """Run a coroutine to completion from sync code, also where an event loop already runs (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="izkit-openai") as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


class OpenAIBlackBox(_CachedBlackBox):
    """An OpenAI-compatible endpoint as the black box, through the official ``openai`` SDK (``AsyncOpenAI``).

    Args:
        model: the model id the endpoint serves.
        base_url: the API root (e.g. ``http://127.0.0.1:8000/v1``); default ``$OPENAI_BASE_URL`` or OpenAI's.
        api: "chat" (``/chat/completions``, the prompt as one user message) or "completions" (``/completions``).
        objective: "accuracy", or "loglik" (completions only: needs ``echo=True`` with ``logprobs``).
        template: the black-box prompt, with ``{instruction}`` and ``{input}``.
        max_tokens: longest answer; ``stop="\\n"`` is sent too, and the answer is cut at the first newline anyway
            (some servers ignore ``stop``).
        concurrency: requests in flight at once (an asyncio semaphore).
        max_retries: our own retries of a request after the SDK's retries are used up, on 429, 5xx, timeouts and
            connection errors, with exponential backoff and jitter; other errors are raised at once.
        sdk_retries: the SDK's own retries per attempt (it honours ``Retry-After``).
        timeout: seconds per request.
        backoff: the first backoff in seconds; doubled per retry, capped at 20 s.
        cache: an AnswerCache, a path, "default" (``cache_dir()/answers.sqlite``) or None.
        api_key_env: the environment variable holding the key, read at each ``score`` call and passed to the SDK
            only: it is never stored on this object, in cache keys, results or logs. Without it, "EMPTY" is sent
            (local servers need no key).

    If a request still fails after all retries, :class:`BlackBoxError` names the endpoint and the last error; every
    answer received before (also in that call) is already in the cache, so a re-run asks only for the rest.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api: str = "chat",
        objective: str = "accuracy",
        template: str = DEFAULT_TEMPLATE,
        max_tokens: int = 16,
        concurrency: int = 8,
        max_retries: int = 3,
        sdk_retries: int = 2,
        timeout: float = 60.0,
        backoff: float = 0.5,
        cache: AnswerCache | str | os.PathLike | None = "default",
        api_key_env: str = "OPENAI_API_KEY",
    ) -> None:
        if api not in ("chat", "completions"):
            raise ValueError(f"api must be 'chat' or 'completions', got {api!r}")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if objective == "loglik" and api == "chat":
            raise ValueError(
                "objective='loglik' needs the completions endpoint (echo=True with logprobs): use api='completions', "
                "or objective='accuracy' with api='chat'"
            )
        if concurrency < 1 or max_retries < 0 or sdk_retries < 0:
            raise ValueError(
                f"concurrency must be >= 1 and retries >= 0, got concurrency={concurrency}, "
                f"max_retries={max_retries}, sdk_retries={sdk_retries}"
            )
        if "{instruction}" not in template or "{input}" not in template:
            raise ValueError(f"template must contain '{{instruction}}' and '{{input}}', got {template!r}")
        self.model_id = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.api, self.objective, self.template = api, objective, template
        self.max_tokens, self.concurrency = max_tokens, concurrency
        self.max_retries, self.sdk_retries, self.timeout, self.backoff = max_retries, sdk_retries, timeout, backoff
        self.cache = resolve_cache(cache)
        self.api_key_env = api_key_env  # the variable's *name*; its value is read when needed and not kept
        self.endpoint_id = _endpoint_id(self.base_url, api)

    def __repr__(self) -> str:
        return (
            f"OpenAIBlackBox(model={self.model_id!r}, base_url={self.base_url!r}, api={self.api!r}, "
            f"objective={self.objective!r}, concurrency={self.concurrency})"
        )

    def _decoding(self, objective: str) -> dict[str, Any]:
        if objective == "loglik":
            return {"answer_prefix": ANSWER_PREFIX, "echo": True}
        return {"temperature": 0, "max_tokens": self.max_tokens, "stop": "\n"}

    def _answer(self, objective, jobs, store, usage) -> None:
        prompts = [self.format_prompt(j.instruction, j.input) for j in jobs]
        golds = [j.gold for j in jobs]
        _run_sync(lambda: self._answer_async(objective, prompts, golds, store, usage))

    async def _answer_async(self, objective, prompts, golds, store, usage: Usage) -> None:
        from openai import AsyncOpenAI

        client = AsyncOpenAI(
            api_key=os.environ.get(self.api_key_env) or "EMPTY",
            base_url=self.base_url,
            max_retries=self.sdk_retries,
            timeout=self.timeout,
        )
        sem = asyncio.Semaphore(self.concurrency)
        failed = asyncio.Event()  # set at the first request that fails for good: the rest are not started

        async def one(k: int) -> None:
            async with sem:
                if failed.is_set():
                    return
                try:
                    value = await self._request(client, objective, prompts[k], golds[k], usage)
                except BaseException:
                    failed.set()
                    raise
                store(k, value)

        async with client:
            order = list(range(len(prompts)))
            if objective == "loglik" and order:
                await one(order.pop(0))  # one probe first: fails fast where the endpoint has no logprobs
            results = await asyncio.gather(*(one(k) for k in order), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def _request(self, client: Any, objective: str, prompt: str, gold: str, usage: Usage) -> dict[str, Any]:
        import openai

        last: BaseException | None = None
        for attempt in range(self.max_retries + 1):
            try:
                if objective == "loglik":
                    resp = await client.completions.create(
                        model=self.model_id, prompt=prompt + gold, max_tokens=0, echo=True, logprobs=1, temperature=0
                    )
                    value = self._parse_loglik(resp, len(prompt))
                elif self.api == "chat":
                    resp = await client.chat.completions.create(
                        model=self.model_id,
                        messages=[{"role": "user", "content": prompt}],
                        max_tokens=self.max_tokens,
                        temperature=0,
                        stop=["\n"],
                    )
                    value = {"prediction": first_line(_first_choice(resp).message.content or "")}
                else:
                    resp = await client.completions.create(
                        model=self.model_id, prompt=prompt, max_tokens=self.max_tokens, temperature=0, stop=["\n"]
                    )
                    value = {"prediction": first_line(_first_choice(resp).text or "")}
                usage.requests += 1
                if resp.usage is not None:
                    usage.prompt_tokens += resp.usage.prompt_tokens or 0
                    usage.completion_tokens += resp.usage.completion_tokens or 0
                return value
            except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as err:
                last = err  # APITimeoutError is an APIConnectionError
            except json.JSONDecodeError as err:  # the SDK parses the body of a 200 as JSON
                last = MalformedResponse(f"HTTP 200 with a body that is not valid JSON ({err})")
            except (MalformedResponse, openai.APIResponseValidationError) as err:
                last = err
            except openai.APIStatusError as err:
                if err.status_code < 500 and err.status_code != 429:
                    raise BlackBoxError(
                        f"{self.base_url} refused the request (HTTP {err.status_code}) for model {self.model_id!r}: "
                        f"{_short(err)}"
                    ) from err
                last = err
            if attempt < self.max_retries:
                delay = min(self.backoff * 2.0**attempt, 20.0) * (1.0 + 0.25 * random.random())
                logger.info(
                    "request to %s failed (%s); retry %d in %.2f s", self.base_url, _short(last), attempt + 1, delay
                )
                await asyncio.sleep(delay)
        raise BlackBoxError(
            f"{self.base_url} did not answer for model {self.model_id!r} after {self.max_retries + 1} attempts "
            f"(each with up to {self.sdk_retries} SDK retries); last error: {_short(last)}. Answers received before "
            f"the failure are in the cache{'' if self.cache is None else ' ' + str(self.cache.path)}."
        ) from last

    def _parse_loglik(self, resp: Any, n_prompt_chars: int) -> dict[str, Any]:
        lp = _first_choice(resp).logprobs
        tokens = getattr(lp, "tokens", None) if lp is not None else None
        offsets = getattr(lp, "text_offset", None) if lp is not None else None
        values = getattr(lp, "token_logprobs", None) if lp is not None else None
        if not tokens or not offsets or not values:
            raise BlackBoxError(
                f"the endpoint {self.base_url} (model {self.model_id!r}) cannot give log-likelihoods: its completions "
                f"answer has no prompt logprobs for echo=True, logprobs=1. Use objective='accuracy' with this "
                f"endpoint, or a LocalBlackBox for 'loglik'."
            )
        answer = [
            v for t, o, v in zip(tokens, offsets, values) if o + len(t) > n_prompt_chars and v is not None
        ]  # tokens that reach into the gold answer
        if not answer:
            raise BlackBoxError(f"{self.base_url}: no log-probabilities came back for the answer tokens")
        return {"loglik": float(sum(answer) / len(answer)), "n_tokens": len(answer)}


def _first_choice(resp: Any) -> Any:
    """``resp.choices[0]``, or MalformedResponse when the answer has no choices (or is no completion at all)."""
    choices = getattr(resp, "choices", None)
    if not choices:
        raise MalformedResponse(f"HTTP 200 with no choices in the answer: {str(resp)[:200]}")
    return choices[0]


def _short(err: BaseException | None, limit: int = 300) -> str:
    text = f"{type(err).__name__}: {err}" if err is not None else "unknown error"
    return text if len(text) <= limit else text[:limit] + "..."

