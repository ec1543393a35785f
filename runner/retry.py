"""The retry policy: what is retryable, how long to wait, when to give up.

The decision is a pure function of one failed attempt (:func:`decide`), tested over the whole
table of the protocol page. The waiting is tenacity's, always bounded by attempts *and* by
elapsed time, with exponential backoff and full jitter, and ``Retry-After`` honoured.
"""

from __future__ import annotations

import email.utils
import enum
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import anyio
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)

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
    ceiling = min(cap, initial * (2 ** (attempt - 1)))
    wait = (rng or random).uniform(0.0, ceiling)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return min(wait, cap)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one call is retried. ``sleep`` is injectable so tests can remove the waiting."""

    max_attempts: int = 4
    initial: float = 0.5
    cap: float = 30.0
    max_elapsed: float = 600.0
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = error.retry_after if isinstance(error, AttemptError) else None
        return backoff_seconds(
            state.attempt_number, initial=self.initial, cap=self.cap, retry_after=retry_after
        )

    def retrying(
        self,
        before_sleep: Callable[[RetryCallState], Awaitable[None] | None] | None = None,
    ) -> AsyncRetrying:
        """A fresh tenacity controller bounded by attempts and by elapsed time."""
        return AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts) | stop_before_delay(self.max_elapsed),
            wait=self._wait,
            retry=retry_if_exception(is_retryable),
            reraise=True,
            sleep=self.sleep,
            before_sleep=before_sleep,
        )


async def no_sleep(_seconds: float) -> None:
    """A ``sleep`` for tests: retries happen at once."""
