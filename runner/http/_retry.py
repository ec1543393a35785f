"""The retry policy: what is retryable, how long to wait, when to give up.

The decision is a pure function of one failed attempt (:func:`decide`), tested over the whole
table of the protocol page; :meth:`RetryPolicy.run` is the loop around one call, bounded by
attempts and by elapsed time, with exponential backoff and full jitter, and ``Retry-After``
honoured. The loop is the runner's own, not tenacity's: tenacity's controller cost about 20 µs
of CPU per call even when the first attempt succeeds, an eighth of a whole run's CPU per request
(BENCHMARKS.md, "Dependencies re-decided"), and every decision it made was already one of the
functions below.

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
    throttled: bool = False,
    rng: random.Random | None = None,
) -> float:
    """The wait after failed attempt number ``attempt`` (1-based); the cap is a ceiling.

    Full-jitter exponential backoff, with a server's ``Retry-After`` as a floor (the server
    knows best). After a ``throttled`` 429 that names a ``Retry-After`` the wait is that plus
    up to ``initial`` of jitter: the exponent says nothing about when a quota comes back.
    """
    jitter = rng or random
    if throttled and retry_after is not None:
        return min(cap, retry_after + jitter.uniform(0.0, initial))
    ceiling = min(cap, initial * (2 ** min(attempt - 1, 64)))
    wait = jitter.uniform(0.0, ceiling)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return min(wait, cap)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one call is retried, bounded by attempts *and* elapsed time.

    ``max_attempts`` bounds the attempts of a call, except that transient 429s do not count;
    ``max_elapsed`` (seconds) bounds every call: no wait is started that would end past it.
    ``waiting`` off is stamina's testing mode (:meth:`without_waiting`): the same decisions and
    the same computed waits, none of them waited; a skipped wait still counts as elapsed time,
    so the elapsed bound ends a call exactly where the waits would have ended it.
    """

    max_attempts: int = 4
    initial: float = 0.5
    cap: float = 30.0
    max_elapsed: float = 600.0
    waiting: bool = True

    @classmethod
    def without_waiting(
        cls,
        *,
        max_attempts: int = 4,
        initial: float = 0.5,
        cap: float = 30.0,
        max_elapsed: float = 600.0,
    ) -> RetryPolicy:
        """The same policy with every backoff skipped: for tests, and dry runs of a plan."""
        return cls(max_attempts, initial, cap, max_elapsed, waiting=False)

    def next_wait(
        self, error: AttemptError, *, attempt: int, counted: int, elapsed: float
    ) -> float | None:
        """The wait before another attempt, or None: the call ends with ``error``.

        ``attempt`` numbers this failed attempt (1-based, 429s included: the backoff's
        exponent); ``counted`` is how many of the call's failures count against
        ``max_attempts``, this one included; ``elapsed`` is the call's time so far.
        """
        if decide(error) is not Decision.RETRY:
            return None
        throttled = is_throttled(error)
        if not throttled and counted >= self.max_attempts:
            return None
        wait = backoff_seconds(
            attempt,
            initial=self.initial,
            cap=self.cap,
            retry_after=error.retry_after,
            throttled=throttled,
        )
        return None if elapsed + wait >= self.max_elapsed else wait

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        on_retry: Callable[[float], None] | None = None,
        cut_short: anyio.Event | None = None,
    ) -> T:
        """Run ``attempt`` until it succeeds or the policy gives up (the last error is raised).

        ``on_retry(wait)`` is told of each retry before its wait; ``cut_short`` ends a wait
        early once set (a stopping run: the next attempt is then the caller's to refuse).
        Any exception other than :class:`AttemptError` passes straight through.
        """
        started = time.monotonic()
        skipped = 0.0  # waits not waited (testing mode), still counted as elapsed
        failed = counted = 0
        while True:
            try:
                return await attempt()
            except AttemptError as error:
                failed += 1
                counted += not is_throttled(error)
                elapsed = time.monotonic() - started + skipped
                wait = self.next_wait(error, attempt=failed, counted=counted, elapsed=elapsed)
                if wait is None:
                    raise
            if on_retry is not None:
                on_retry(wait)
            if not self.waiting:
                skipped += wait
            elif cut_short is None:
                await anyio.sleep(wait)
            else:
                with anyio.move_on_after(wait):
                    await cut_short.wait()
