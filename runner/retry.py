"""The retry policy: what is retryable, how long to wait, when to give up.

The decision is a pure function of one failed attempt (:func:`decide`), tested over the whole
table of the protocol page. The waiting is tenacity's, always bounded by elapsed time, with
exponential backoff and full jitter, and ``Retry-After`` honoured.

A transient 429 (not the daily cap) says the server is busy, not that the call is broken: it
is retried for as long as the elapsed-time budget lasts, and does not count against
``max_attempts``, which bounds every other retryable failure. Its wait is ``Retry-After`` plus
up to ``initial`` seconds of jitter (a ``Retry-After: 0`` too), so that the calls a cap turned
away do not all come back at the same instant.
"""

from __future__ import annotations

import email.utils
import enum
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import anyio
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from runner.errors import AttemptError

T = TypeVar("T")


class Decision(enum.Enum):
    RETRY = "retry"
    """Transient: try again after a backoff."""
    FAIL = "fail"
    """Permanent for this call: record the error as the call's outcome."""
    ABORT = "abort"
    """Every call would fail the same way (auth, credit, daily cap): stop the run."""


#: Error types raised by the client for failures below HTTP, all transient.
TRANSIENT_TYPES = frozenset(
    {"timeout", "connect_error", "network_error", "stream_cut", "stream_error", "invalid_response"}
)

DAILY_CAP_CODE = "api_rate_limit_exceeded"


def decide_status(status: int, code: str | None = None) -> Decision:
    """Classify an HTTP error status (and the body's error code) per the protocol table."""
    if status in (401, 402):
        return Decision.ABORT
    if status == 429:
        return Decision.ABORT if code == DAILY_CAP_CODE else Decision.RETRY
    if status == 408 or status >= 500:
        return Decision.RETRY
    return Decision.FAIL


def decide(error: AttemptError) -> Decision:
    """Classify one failed attempt."""
    if error.http_status is not None and error.http_status != 200:
        return decide_status(error.http_status, error.code)
    if error.error_type in TRANSIENT_TYPES:
        return Decision.RETRY
    return Decision.FAIL


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, AttemptError) and decide(error) is Decision.RETRY


def is_throttled(error: BaseException | None) -> bool:
    """A transient 429 (a concurrency or throughput cap), not the daily plan cap."""
    return (
        isinstance(error, AttemptError)
        and error.http_status == 429
        and decide(error) is Decision.RETRY
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_seconds(
    attempt: int,
    *,
    initial: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Full-jitter exponential backoff after failed attempt number ``attempt`` (1-based).

    A ``Retry-After`` from the server is a floor (the server knows best), the cap a ceiling.
    """
    ceiling = min(cap, initial * (2 ** min(attempt - 1, 64)))
    wait = (rng or random).uniform(0.0, ceiling)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return min(wait, cap)


def throttled_backoff_seconds(
    attempt: int,
    *,
    initial: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """The wait after a transient 429: ``Retry-After`` plus up to ``initial`` of jitter.

    Without a ``Retry-After`` it is the usual full-jitter exponential backoff. The cap holds.
    """
    if retry_after is None:
        return backoff_seconds(attempt, initial=initial, cap=cap, rng=rng)
    return min(cap, retry_after + (rng or random).uniform(0.0, initial))


class _Stop:
    """Tenacity's stop condition for one call: a budget of time, and of non-429 failures.

    Stateful (it counts the failures it is shown): :meth:`RetryPolicy.retrying` builds one
    per call. Tenacity consults it once per retryable failure, with the coming wait known.
    """

    def __init__(self, max_attempts: int, max_elapsed: float, clock: Callable[[], float]) -> None:
        self._max_attempts = max_attempts
        self._max_elapsed = max_elapsed
        self._clock = clock
        self._start = clock()
        self._counted = 0

    def __call__(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        if not is_throttled(error):
            self._counted += 1
            if self._counted >= self._max_attempts:
                return True
        # Stop before a wait that would end past the budget (tenacity's stop_before_delay).
        return self._clock() - self._start + state.upcoming_sleep >= self._max_elapsed


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one call is retried. ``sleep`` and ``clock`` are injectable so tests can remove the
    waiting or run on virtual time.

    ``max_attempts`` bounds the attempts of a call, except that transient 429s do not count;
    ``max_elapsed`` (seconds) bounds every call: no wait is started that would end past it.
    """

    max_attempts: int = 4
    initial: float = 0.5
    cap: float = 30.0
    max_elapsed: float = 600.0
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    clock: Callable[[], float] = time.monotonic

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = error.retry_after if isinstance(error, AttemptError) else None
        backoff = throttled_backoff_seconds if is_throttled(error) else backoff_seconds
        return backoff(
            state.attempt_number, initial=self.initial, cap=self.cap, retry_after=retry_after
        )

    def retrying(
        self,
        before_sleep: Callable[[RetryCallState], Awaitable[None] | None] | None = None,
    ) -> AsyncRetrying:
        """A fresh tenacity controller for one call, bounded by attempts and elapsed time."""
        return AsyncRetrying(
            stop=_Stop(self.max_attempts, self.max_elapsed, self.clock),
            wait=self._wait,
            retry=retry_if_exception(is_retryable),
            reraise=True,
            sleep=self.sleep,
            before_sleep=before_sleep,
        )


async def no_sleep(_seconds: float) -> None:
    """A ``sleep`` for tests: retries happen at once."""
