"""Rate control: a ceiling on requests started per second, and concurrency that adapts to 429s.

:class:`RateLimiter` (``--rps``) is GCRA, the exact form of a token bucket: a request may start
once ``1 / rate`` has passed since the previous one's theoretical start, so any window of ``W``
seconds holds at most ``ceil(rate × W)`` starts (``burst - 1`` more with a burst allowance),
whatever the event loop does: a stall never releases a saved-up burst. The price of exactness
is that a late wake-up (timers fire up to a millisecond late) delays the next start too; the
achieved rate is ``rate / (1 + rate × lateness)``, within 1 % below 20 requests/s and 5 % at
100. Waiters queue on a lock, so only one sleeps on the clock at a time.

:class:`AdaptiveLimiter` (``--adaptive``) is AIMD, as in TCP congestion control: the live limit
on attempts in flight halves on a transient 429 and grows by one after a full window of
successes (as many as the limit), between 1 and the configured ``--concurrency``. Only 429s
from attempts that started after the last decrease count, so one burst of 429s from requests
already in flight halves the limit once, not once per request.

Both are driven by :class:`Limits`, which the pipeline holds around every attempt.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import anyio

from runner.run._counters import Counters

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: Live-limit changes an :class:`AdaptiveLimiter` remembers (the oldest are dropped).
TRACE_LIMIT: Final = 10_000


class RateLimiter:
    """At most ``rate`` request starts per second over any window (GCRA), ``burst`` at once.

    ``clock`` and ``sleep`` are injectable so tests can run on virtual time.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be a positive number, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._tat = -math.inf  # the theoretical arrival time of the next request
        self._lock = anyio.Lock()

    async def acquire(self) -> float:
        """Wait until this request may start; return that time on the limiter's clock."""
        async with self._lock:
            while True:
                now = self._clock()
                allowed = self._tat - self._tolerance
                if now >= allowed:
                    self._tat = max(self._tat, now) + self._interval
                    return now
                await self._sleep(allowed - now)


@dataclass(frozen=True, slots=True, eq=False)
class Ticket:
    """One attempt's hold on the adaptive limit; ``epoch`` is the limit's age when it began."""

    epoch: int


class AdaptiveLimiter:
    """AIMD concurrency: halve on a transient 429, +1 after a window of successes.

    The live limit stays within ``[1, maximum]``. ``trace`` records the limit after every
    change (the first entry is the starting limit), for tests and the manifest.
    """

    def __init__(self, maximum: int, *, counters: Counters | None = None) -> None:
        if maximum < 1:
            raise ValueError(f"maximum must be at least 1, got {maximum}")
        self.maximum = maximum
        self.limit = maximum
        self.minimum_seen = maximum
        self.decreases = 0
        self.increases = 0
        self.trace: deque[int] = deque([maximum], maxlen=TRACE_LIMIT)
        self._slots = anyio.CapacityLimiter(maximum)
        self._epoch = 0
        self._successes = 0
        self._counters = counters
        self._show()

    async def acquire(self) -> Ticket:
        """Wait until fewer attempts than the live limit are in flight."""
        ticket = Ticket(self._epoch)
        try:
            # A free slot is taken without a trip through the event loop (anyio's acquire
            # yields once even when it need not wait: a loop iteration per call).
            self._slots.acquire_on_behalf_of_nowait(ticket)
        except anyio.WouldBlock:
            await self._slots.acquire_on_behalf_of(ticket)
        return ticket

    def release(self, ticket: Ticket, *, throttled: bool = False, ok: bool = False) -> None:
        """End an attempt: ``throttled`` for a transient 429, ``ok`` for a success.

        Other failures (5xx, timeouts) say nothing about the rate limit and change nothing.
        """
        self._slots.release_on_behalf_of(ticket)
        if throttled:
            if ticket.epoch == self._epoch:  # started after the last decrease
                self._set(max(1, self.limit // 2))
                self.decreases += 1
        elif ok:
            self._successes += 1
            if self._successes >= self.limit and self.limit < self.maximum:
                self._set(self.limit + 1)
                self.increases += 1

    def _set(self, limit: int) -> None:
        self.limit = limit
        self._epoch += 1
        self._successes = 0
        self._slots.total_tokens = limit
        self.minimum_seen = min(self.minimum_seen, limit)
        self.trace.append(limit)
        self._show()

    def _show(self) -> None:
        if self._counters is not None:
            self._counters.concurrency = self.limit
            self._counters.min_concurrency = self.minimum_seen


class Limits:
    """The rate ceiling and the adaptive limit of one run; either may be absent."""

    def __init__(
        self, rate: RateLimiter | None = None, adaptive: AdaptiveLimiter | None = None
    ) -> None:
        self.rate = rate
        self.adaptive = adaptive

    @classmethod
    def for_run(
        cls, rps: float | None, adaptive: bool, concurrency: int, counters: Counters
    ) -> Limits:
        """The limits a run configuration asks for (``--rps``, ``--adaptive``)."""
        return cls(
            RateLimiter(rps) if rps is not None else None,
            AdaptiveLimiter(concurrency, counters=counters) if adaptive else None,
        )

    @property
    def active(self) -> bool:
        return self.rate is not None or self.adaptive is not None

    async def acquire(self) -> Ticket | None:
        """Before an attempt: a slot under the adaptive limit first, then a start time."""
        ticket = await self.adaptive.acquire() if self.adaptive is not None else None
        if self.rate is not None:
            try:
                await self.rate.acquire()
            except BaseException:
                if ticket is not None and self.adaptive is not None:
                    self.adaptive.release(ticket)
                raise
        return ticket

    def release(self, ticket: Ticket | None, *, throttled: bool = False, ok: bool = False) -> None:
        """After an attempt, with what it said about the server's limits."""
        if ticket is not None and self.adaptive is not None:
            self.adaptive.release(ticket, throttled=throttled, ok=ok)
