"""Any OpenAI-compatible endpoint as the black box ``f`` of InstructZero step 3, through the official ``openai`` SDK.

Requests run concurrently (an asyncio semaphore); a request that fails for a passing reason is retried with backoff
(:mod:`izkit.blackbox.retry`), and every answer goes to the cache the moment it arrives, so a failed call loses
nothing already answered. The answer is the first non-empty line of the completion (no ``stop`` is sent: a stop at
"\\n" would cut an answer that opens with a newline to nothing). The API key is read from the environment at each
call and handed to the SDK only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse, urlunparse

from izkit.blackbox.base import (
    ANSWER_PREFIX,
    ANSWER_RULE,
    DEFAULT_TEMPLATE,
    BlackBoxError,
    CachedBlackBox,
    Job,
    Store,
    Usage,
    check_objective,
    check_template,
    first_line,
)
from izkit.blackbox.retry import RetriesExhausted, call_with_retries, is_retryable_status
from izkit.cache import AnswerCache, resolve_cache
from izkit.serving.loopback import LOOPBACK

logger = logging.getLogger(__name__)



class MalformedResponse(Exception):
    """An HTTP 200 whose body is no completion (cut-off JSON, no ``choices``): retried like a 5xx."""


def endpoint_id(base_url: str, api: str) -> str:
    """The endpoint's identity in cache keys: the URL, with a loopback server's port left out.

    A model served on this machine is identified by its model id, not by the port it happened to get, so a re-run
    against a freshly started local server reuses the cache.
    """
    u = urlparse(base_url)
    if (u.hostname or "") in LOOPBACK:
        u = u._replace(netloc="loopback")
    return f"{api}:{urlunparse(u).rstrip('/')}"


def run_sync(make_coro: Callable[[], Any]) -> Any:
    """Run a coroutine to completion from sync code, also where an event loop already runs (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="izkit-openai") as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


def _is_retryable(err: BaseException) -> bool:
    """The SDK's errors mapped onto the retry policy: connection errors and timeouts, 429 and 5xx, garbled 200s."""
    import openai

    if isinstance(err, openai.APIStatusError):
        return is_retryable_status(err.status_code)
    return isinstance(err, (openai.APIConnectionError, openai.APIResponseValidationError, MalformedResponse))


class OpenAIBlackBox(CachedBlackBox):
    """An OpenAI-compatible endpoint as the black box, through the official ``openai`` SDK (``AsyncOpenAI``).

    Args:
        model: the model id the endpoint serves.
        base_url: the API root (e.g. ``http://127.0.0.1:8000/v1``); default ``$OPENAI_BASE_URL`` or OpenAI's.
        api: "chat" (``/chat/completions``, the prompt as one user message) or "completions" (``/completions``).
        objective: "accuracy", or "loglik" (completions only: needs ``echo=True`` with ``logprobs``).
        template: the black-box prompt, with ``{instruction}`` and ``{input}``.
        max_tokens: longest completion; the answer is its first non-empty line.
        concurrency: requests in flight at once.
        max_retries: our own retries of a request after the SDK's retries are used up, on 429, 5xx, timeouts,
            connection errors and malformed answers; other errors are raised at once.
        sdk_retries: the SDK's own retries per attempt (it honours ``Retry-After``).
        timeout: seconds per request.
        backoff: the first wait in seconds, doubled per retry (:func:`izkit.blackbox.retry.retry_delay`).
        cache: an AnswerCache, a path, "default" (``cache_dir()/answers.sqlite``) or None.
        api_key_env: the environment variable holding the key, read at each ``score`` call and passed to the SDK
            only: never stored on this object, in cache keys, results or logs. Without it, "EMPTY" is sent (local
            servers need no key).

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
        check_objective(objective)
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
        check_template(template)
        self.model_id = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.api, self.objective, self.template = api, objective, template
        self.max_tokens, self.concurrency = max_tokens, concurrency
        self.max_retries, self.sdk_retries, self.timeout, self.backoff = max_retries, sdk_retries, timeout, backoff
        self.cache = resolve_cache(cache)
        self.api_key_env = api_key_env  # the variable's *name*; its value is read when needed and not kept
        self.endpoint_id = endpoint_id(self.base_url, api)

    def __repr__(self) -> str:
        return (
            f"OpenAIBlackBox(model={self.model_id!r}, base_url={self.base_url!r}, api={self.api!r}, "
            f"objective={self.objective!r}, concurrency={self.concurrency})"
        )

    def decoding(self, objective: str) -> dict[str, Any]:
        if objective == "loglik":
            return {"answer_prefix": ANSWER_PREFIX, "echo": True}
        return {"temperature": 0, "max_tokens": self.max_tokens, "answer_rule": ANSWER_RULE}

    def answer(self, objective: str, jobs: list[Job], store: Store, usage: Usage) -> None:
        prompts = [self.format_prompt(j.instruction, j.input) for j in jobs]
        golds = [j.gold for j in jobs]
        run_sync(lambda: self._answer_async(objective, prompts, golds, store, usage))

    async def _answer_async(
        self, objective: str, prompts: list[str], golds: list[str], store: Store, usage: Usage
    ) -> None:
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
        """One question, retried on passing failures; a refusal (another 4xx) or the last failure is a BlackBoxError."""
        import openai

        def log_retry(n: int, err: BaseException, delay: float) -> None:
            logger.info("request to %s failed (%s); retry %d in %.2f s", self.base_url, _short(err), n, delay)

        try:
            return await call_with_retries(
                lambda: self._request_once(client, objective, prompt, gold, usage),
                _is_retryable, self.max_retries, self.backoff, on_retry=log_retry,
            )
        except RetriesExhausted as err:
            raise BlackBoxError(
                f"{self.base_url} did not answer for model {self.model_id!r} after {err.attempts} attempts "
                f"(each with up to {self.sdk_retries} SDK retries); last error: {_short(err.last)}. Answers received "
                f"before the failure are in the cache{'' if self.cache is None else ' ' + str(self.cache.path)}."
            ) from err.last
        except openai.APIStatusError as err:  # not retryable: the request itself is refused
            raise BlackBoxError(
                f"{self.base_url} refused the request (HTTP {err.status_code}) for model {self.model_id!r}: "
                f"{_short(err)}"
            ) from err

    async def _request_once(
        self, client: Any, objective: str, prompt: str, gold: str, usage: Usage
    ) -> dict[str, Any]:
        try:
            if objective == "loglik":
                resp = await client.completions.create(
                    model=self.model_id, prompt=prompt + gold, max_tokens=0, echo=True, logprobs=1, temperature=0
                )
                value = self._parse_loglik(resp, len(prompt))
            elif self.api == "chat":
                resp = await client.chat.completions.create(
                    model=self.model_id, messages=[{"role": "user", "content": prompt}], max_tokens=self.max_tokens,
                    temperature=0,
                )
                value = {"prediction": first_line(_first_choice(resp).message.content or "")}
            else:
                resp = await client.completions.create(
                    model=self.model_id, prompt=prompt, max_tokens=self.max_tokens, temperature=0
                )
                value = {"prediction": first_line(_first_choice(resp).text or "")}
        except json.JSONDecodeError as err:  # the SDK parses the body of a 200 as JSON
            raise MalformedResponse(f"HTTP 200 with a body that is not valid JSON ({err})") from err
        usage.requests += 1
        if resp.usage is not None:
            usage.prompt_tokens += resp.usage.prompt_tokens or 0
            usage.completion_tokens += resp.usage.completion_tokens or 0
        return value

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
