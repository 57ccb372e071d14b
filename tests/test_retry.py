"""Tests for izkit.blackbox.retry: the backoff schedule, which HTTP statuses are retried, and the retry loop,
on fake calls and a fake clock (no server, no SDK)."""

from __future__ import annotations

import asyncio

import pytest

from izkit.blackbox.retry import (
    JITTER,
    MAX_DELAY,
    RetriesExhausted,
    call_with_retries,
    is_retryable_status,
    retry_delay,
)


class Passing(Exception):
    """A failure worth another try."""


class Final(Exception):
    """A failure that no retry can fix."""


def test_the_delay_doubles_per_retry_up_to_the_cap():
    no_jitter = lambda: 0.0  # noqa: E731
    assert [retry_delay(a, 0.5, rng=no_jitter) for a in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    assert MAX_DELAY == 20.0 and retry_delay(2, 1.0, cap=3.0, rng=no_jitter) == 3.0


def test_jitter_stretches_a_delay_by_up_to_a_quarter():
    assert JITTER == 0.25
    assert retry_delay(1, 0.5, rng=lambda: 0.5) == pytest.approx(1.0 * 1.125)
    assert retry_delay(10, 0.5, rng=lambda: 0.999999) == pytest.approx(20.0 * 1.25, rel=1e-5)  # after the cap


@pytest.mark.parametrize("status, retry", [(429, True), (500, True), (502, True), (503, True), (504, True),
                                           (400, False), (401, False), (403, False), (404, False), (422, False)])
def test_rate_limits_and_server_errors_are_retried_other_client_errors_are_final(status, retry):
    assert is_retryable_status(status) is retry


def attempts(outcomes: list):
    """A call that raises or returns the next outcome each time, and a fake sleep that records its waits."""
    calls: list[int] = []
    waits: list[float] = []

    async def call():
        calls.append(1)
        out = outcomes[len(calls) - 1]
        if isinstance(out, BaseException):
            raise out
        return out

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return call, sleep, calls, waits


def retry(call, sleep, max_retries=3, **kw):
    return asyncio.run(call_with_retries(call, lambda e: isinstance(e, Passing), max_retries, 0.5, sleep=sleep,
                                         rng=lambda: 0.0, **kw))


def test_passing_failures_are_retried_after_the_backoff():
    call, sleep, calls, waits = attempts([Passing("1"), Passing("2"), "answer"])
    told: list[tuple[int, str, float]] = []
    assert retry(call, sleep, on_retry=lambda n, err, d: told.append((n, str(err), d))) == "answer"
    assert len(calls) == 3 and waits == [0.5, 1.0]
    assert told == [(1, "1", 0.5), (2, "2", 1.0)]


def test_a_final_error_is_raised_at_once():
    call, sleep, calls, waits = attempts([Passing("1"), Final("no"), "never"])
    with pytest.raises(Final, match="no"):
        retry(call, sleep)
    assert len(calls) == 2 and waits == [0.5]


def test_when_every_attempt_fails_the_last_error_is_named():
    call, sleep, calls, waits = attempts([Passing(str(i)) for i in range(4)])
    with pytest.raises(RetriesExhausted) as info:
        retry(call, sleep, max_retries=3)
    assert len(calls) == 4 and waits == [0.5, 1.0, 2.0]  # no wait after the last attempt
    assert info.value.attempts == 4 and str(info.value.last) == "3" and info.value.__cause__ is info.value.last


def test_no_retries_means_one_attempt():
    call, sleep, calls, waits = attempts([Passing("only")])
    with pytest.raises(RetriesExhausted):
        retry(call, sleep, max_retries=0)
    assert len(calls) == 1 and waits == []
