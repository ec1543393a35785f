"""The retry decision over the protocol table, Retry-After parsing, and bounded backoff."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import anyio
import pytest

from runner.errors import AttemptError
from runner.http._retry import (
    Decision,
    RetryPolicy,
    backoff_seconds,
    decide,
    decide_status,
    is_throttled,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, None, Decision.FAIL),
        (401, None, Decision.ABORT),
        (402, "insufficient_hosted_llm_credits", Decision.ABORT),
        (403, None, Decision.FAIL),
        (404, None, Decision.FAIL),
        (422, "validation_error", Decision.FAIL),
        (429, "too_many_requests", Decision.RETRY),
        (429, None, Decision.RETRY),
        (429, "api_rate_limit_exceeded", Decision.ABORT),
        (408, None, Decision.RETRY),
        (500, "internal_server_error", Decision.RETRY),
        (502, None, Decision.RETRY),
        (503, None, Decision.RETRY),
        (504, None, Decision.RETRY),
    ],
)
def test_decide_status_follows_the_protocol_table(
    status: int, code: str | None, expected: Decision
) -> None:
    assert decide_status(status, code) is expected


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("timeout", Decision.RETRY),
        ("connect_error", Decision.RETRY),
        ("network_error", Decision.RETRY),
        ("stream_cut", Decision.RETRY),
        ("stream_error", Decision.RETRY),
        ("invalid_response", Decision.RETRY),
        ("response_too_large", Decision.FAIL),
        ("something_else", Decision.FAIL),
    ],
)
def test_decide_network_failures(error_type: str, expected: Decision) -> None:
    assert decide(AttemptError(error_type, "x")) is expected


def test_decide_uses_status_over_type() -> None:
    assert decide(AttemptError("http_404", "nope", http_status=404)) is Decision.FAIL
    assert decide(AttemptError("http_502", "bad gateway", http_status=502)) is Decision.RETRY


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("1.5") == 1.5


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)


def test_retry_after_in_the_past_or_garbage() -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    past = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    rng = random.Random(1)
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)):
        waits = [backoff_seconds(attempt, initial=0.5, cap=30, rng=rng) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # jitter spreads over the whole range
        assert min(waits) < ceiling * 0.2


def test_backoff_is_capped() -> None:
    rng = random.Random(2)
    assert all(backoff_seconds(20, initial=1, cap=5, rng=rng) <= 5 for _ in range(100))


def test_retry_after_is_a_floor_but_the_cap_still_holds() -> None:
    assert backoff_seconds(1, initial=0.1, cap=30, retry_after=3) >= 3
    assert backoff_seconds(1, initial=0.1, cap=2, retry_after=60) == 2


def _run_policy(
    policy: RetryPolicy, errors: list[AttemptError | None], waits: list[float] | None = None
) -> tuple[int, object]:
    """Run a scripted call through the policy: (attempts made, "ok" or the error raised)."""
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        error = errors[min(calls, len(errors) - 1)]
        calls += 1
        if error is not None:
            raise error
        return "ok"

    async def main() -> object:
        try:
            return await policy.run(attempt, on_retry=None if waits is None else waits.append)
        except AttemptError as exc:
            return exc

    result = anyio.run(main)
    return calls, result


def test_policy_retries_transient_until_success() -> None:
    policy = RetryPolicy.without_waiting(max_attempts=4)
    err = AttemptError("http_502", "bad", http_status=502)
    calls, result = _run_policy(policy, [err, err, None])
    assert (calls, result) == (3, "ok")


def test_policy_is_bounded_by_attempts() -> None:
    policy = RetryPolicy.without_waiting(max_attempts=3)
    err = AttemptError("http_503", "down", http_status=503)
    calls, result = _run_policy(policy, [err])
    assert calls == 3
    assert result is err


def test_policy_never_retries_permanent_errors() -> None:
    policy = RetryPolicy.without_waiting(max_attempts=5)
    for status in (400, 401, 402, 404, 422):
        err = AttemptError(f"http_{status}", "no", http_status=status)
        calls, result = _run_policy(policy, [err])
        assert (calls, result) == (1, err)


def test_policy_is_bounded_by_elapsed_time() -> None:
    """With a 0.05 s budget and 1 s backoffs, no second attempt is started."""
    slept: list[float] = []
    policy = RetryPolicy.without_waiting(max_attempts=10, initial=1.0, cap=1.0, max_elapsed=0.05)
    err = AttemptError("http_502", "bad", http_status=502, retry_after=1.0)
    calls, result = _run_policy(policy, [err], slept)
    assert calls == 1
    assert result is err
    assert slept == []


# --- 429: a concurrency cap is waited out within the elapsed budget -------------------------


def throttled(retry_after: float | None = 0.0) -> AttemptError:
    return AttemptError(
        "http_429",
        "concurrency",
        http_status=429,
        code="too_many_requests",
        retry_after=retry_after,
    )


DAILY_CAP = AttemptError("http_429", "daily", http_status=429, code="api_rate_limit_exceeded")
BAD_GATEWAY = AttemptError("http_502", "bad", http_status=502)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (throttled(), True),
        (AttemptError("http_429", "x", http_status=429), True),
        (DAILY_CAP, False),
        (BAD_GATEWAY, False),
        (AttemptError("timeout", "slow"), False),
        (None, False),
    ],
)
def test_is_throttled_means_a_transient_429_only(
    error: AttemptError | None, expected: bool
) -> None:
    assert is_throttled(error) is expected


def test_a_429_is_retried_past_max_attempts_until_it_clears() -> None:
    """Ten 429s in a row do not exhaust a 3-attempt policy; the eleventh attempt succeeds."""
    policy = RetryPolicy.without_waiting(max_attempts=3, max_elapsed=60)
    calls, result = _run_policy(policy, [throttled()] * 10 + [None])
    assert (calls, result) == (11, "ok")


def test_a_429_that_never_clears_stops_at_the_elapsed_budget() -> None:
    """No wait is started that would end past max_elapsed; the last 429 is the outcome.

    Without waiting, the skipped waits still count as elapsed: the call ends where it would."""
    waits: list[float] = []
    policy = RetryPolicy.without_waiting(max_attempts=3, initial=0.5, cap=30, max_elapsed=10)
    error = throttled(retry_after=1.0)
    calls, result = _run_policy(policy, [error], waits)
    assert result is error
    assert sum(waits) < 10
    assert calls == len(waits) + 1
    assert calls > 3  # past max_attempts
    assert sum(waits) + 1.0 + 0.5 > 10  # stopped only when one more wait might not fit


def test_other_retryable_failures_keep_the_attempt_bound_between_429s() -> None:
    """429, 502, 429, 502, 429, 502: the third 502 ends a 3-attempt call."""
    policy = RetryPolicy.without_waiting(max_attempts=3, max_elapsed=600)
    calls, result = _run_policy(policy, [throttled(), BAD_GATEWAY] * 5)
    assert calls == 6
    assert result is BAD_GATEWAY


def test_the_daily_cap_is_not_retried() -> None:
    policy = RetryPolicy.without_waiting(max_attempts=5)
    calls, result = _run_policy(policy, [DAILY_CAP])
    assert (calls, result) == (1, DAILY_CAP)
    assert decide(DAILY_CAP) is Decision.ABORT


def throttled_waits(attempt: int, *, retry_after: float | None, seed: int) -> list[float]:
    """200 seeded draws of the wait before retrying the ``attempt``-th 429 (initial 0.5 s,
    cap 30 s)."""
    rng = random.Random(seed)
    return [
        backoff_seconds(
            attempt, initial=0.5, cap=30, retry_after=retry_after, throttled=True, rng=rng
        )
        for _ in range(200)
    ]


def test_a_429_with_retry_after_zero_still_waits_a_jittered_moment() -> None:
    """Retry-After: 0 gives waits spread over [0, initial], not a stampede at 0."""
    waits = throttled_waits(1, retry_after=0.0, seed=3)
    assert all(0.0 <= w <= 0.5 for w in waits)
    assert max(waits) > 0.4
    assert min(waits) < 0.1
    assert len(set(waits)) > 150


def test_a_429_waits_its_retry_after_plus_jitter_under_the_cap() -> None:
    waits = throttled_waits(7, retry_after=2.0, seed=4)
    assert all(2.0 <= w <= 2.5 for w in waits)
    assert max(waits) > 2.4
    assert backoff_seconds(1, initial=0.5, cap=3, retry_after=60.0, throttled=True) == 3


def test_a_429_without_retry_after_backs_off_exponentially() -> None:
    waits = throttled_waits(4, retry_after=None, seed=5)
    assert all(0 <= w <= 4.0 for w in waits)
    assert max(waits) > 3.2


def test_the_policy_sleeps_the_jittered_429_wait() -> None:
    """Through the policy, Retry-After: 0 waits are positive, small and not all equal."""
    waits: list[float] = []
    policy = RetryPolicy.without_waiting(initial=0.5, max_elapsed=600)
    _run_policy(policy, [throttled(retry_after=0.0)] * 20 + [None], waits)
    assert len(waits) == 20
    assert all(0.0 <= w <= 0.5 for w in waits)
    assert len(set(waits)) > 1


def test_the_policy_backs_off_under_a_doubling_ceiling() -> None:
    """Through the loop, the n-th wait of a failing call is at most initial * 2**(n-1)."""
    waits: list[float] = []
    policy = RetryPolicy.without_waiting(max_attempts=7, initial=0.5, cap=30)
    calls, result = _run_policy(policy, [BAD_GATEWAY], waits)
    assert (calls, result) == (7, BAD_GATEWAY)
    assert len(waits) == 6
    assert all(0.0 <= w <= 0.5 * 2**n for n, w in enumerate(waits))


def test_retry_after_is_a_floor_through_the_policy() -> None:
    waits: list[float] = []
    error = AttemptError("http_503", "down", http_status=503, retry_after=4.0)
    _run_policy(RetryPolicy.without_waiting(max_attempts=3, initial=0.1), [error], waits)
    assert waits == [4.0, 4.0]


def test_a_waiting_policy_waits_and_one_without_waiting_does_not() -> None:
    """The switch removes the waiting only: both make the same attempts to the same end."""
    error = AttemptError("http_503", "down", http_status=503, retry_after=0.05)
    script = [error, error, None]
    t0 = time.perf_counter()
    waited = _run_policy(RetryPolicy(max_attempts=3, initial=0.01), script)
    waiting_took = time.perf_counter() - t0
    t0 = time.perf_counter()
    skipped = _run_policy(RetryPolicy.without_waiting(max_attempts=3, initial=0.01), script)
    assert waited == skipped == (3, "ok")
    assert waiting_took >= 0.1  # two waits of at least Retry-After
    assert time.perf_counter() - t0 < waiting_took


def test_cut_short_ends_a_wait_at_once() -> None:
    """A stopping run does not sit out a 30 s backoff: the next attempt comes straight away."""
    error = AttemptError("http_503", "down", http_status=503, retry_after=30.0)
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise error
        return "ok"

    async def main() -> str:
        stop = anyio.Event()
        stop.set()
        with anyio.fail_after(10):
            return await RetryPolicy(initial=0.1).run(attempt, cut_short=stop)

    assert anyio.run(main) == "ok"
    assert calls == 2
