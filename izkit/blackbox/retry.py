"""When to ask a black box again, and how long to wait first: exponential backoff with jitter.

A request that failed for a passing reason (rate limit, server error, timeout, dropped connection, a garbled reply)
is retried after ``backoff * 2^attempt`` seconds, capped, and stretched by a random fraction so that many clients do
not come back in step. Nothing here knows an SDK: the caller says which errors are worth retrying.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

MAX_DELAY = 20.0  # seconds: the longest wait before jitter
JITTER = 0.25  # each wait is stretched by up to this fraction


class RetriesExhausted(Exception):
    """Every attempt failed with a retryable error; ``last`` is the final one."""

    def __init__(self, last: BaseException, attempts: int) -> None:
        super().__init__(f"{attempts} attempts failed; last error: {last!r}")
        self.last, self.attempts = last, attempts


def retry_delay(
    attempt: int, backoff: float, cap: float = MAX_DELAY, rng: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before retry ``attempt + 1`` (attempt 0 is the first retry): ``min(backoff * 2^attempt, cap)``
    times ``1 + JITTER * u`` with ``u = rng()`` in [0, 1)."""
    return min(backoff * 2.0**attempt, cap) * (1.0 + JITTER * rng())


def is_retryable_status(status: int) -> bool:
    """HTTP statuses worth another try: 429 (rate limited) and 5xx (the server's fault); any other 4xx is final."""
    return status == 429 or status >= 500


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    is_retryable: Callable[[BaseException], bool],
    max_retries: int,
    backoff: float,
    cap: float = MAX_DELAY,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
) -> T:
    """``await call()``, retried up to ``max_retries`` times while it fails with an error ``is_retryable`` accepts.

    An error it does not accept is raised at once. ``on_retry(n, err, delay)`` is told before retry n (from 1). When
    every attempt failed, :class:`RetriesExhausted` is raised from the last error.
    """
    last: BaseException | None = None
    for attempt in range(max_retries + 1):
        try:
            return await call()
        except Exception as err:
            if not is_retryable(err):
                raise
            last = err
        if attempt < max_retries:
            delay = retry_delay(attempt, backoff, cap, rng)
            if on_retry is not None:
                on_retry(attempt + 1, last, delay)
            await sleep(delay)
    assert last is not None
    raise RetriesExhausted(last, max_retries + 1) from last
