"""Stop a run that cannot succeed; ride out a short outage without failing rows.

Two patterns tell that every further call would fail the same way:

* **Not found.** A 404 answers a deployment or variant that does not exist. After ``threshold``
  calls in a row end in 404 (over all variants, or for one variant, with no success of it in
  between) the run is aborted with the server's own message.
* **Unreachable.** Connection refused, DNS or TLS failure, a reset, or an attempt timing out.
  After ``threshold`` such attempts in a row with no success in between, the breaker *opens*:
  no new attempt starts; one probe at a time is let through, after a growing pause. A probe
  that gets any HTTP answer closes the breaker and sending resumes; when nothing has answered
  for ``max_outage`` seconds since it opened, the run is aborted. Attempts that fail this way
  while the breaker is open do not count against a call's ``--max-attempts``: an outage
  slows a run, it does not turn its rows into errors.

The state machine is plain and synchronous (:meth:`Breaker.failed`, :meth:`Breaker.succeeded`,
:meth:`Breaker.gate`); :meth:`Breaker.admit` is the only place that waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from runner.errors import AttemptError

#: Failures below HTTP that say the API cannot be reached at all.
UNREACHABLE_TYPES = frozenset({"connect_error", "timeout", "network_error"})

#: Pauses between probes while the breaker is open: doubling from the first to the last.
FIRST_PROBE_PAUSE = 0.5
LONGEST_PROBE_PAUSE = 8.0


def threshold_for(concurrency: int) -> int:
    """Failures in a row that trip the breaker: the requests in flight, between 2 and 10.

    A typo'd deployment is then stopped within ``2 × concurrency`` calls: ``threshold``
    answered, and at most ``concurrency - 1`` more already on their way.
    """
    return max(2, min(concurrency, 10))


def is_unreachable(error: AttemptError) -> bool:
    return error.http_status is None and error.error_type in UNREACHABLE_TYPES


@dataclass
class Breaker:
    """Watches attempts and outcomes; decides to pause, resume or give up."""

    threshold: int
    max_outage: float
    clock: Callable[[], float] = time.monotonic
    abort_reason: str | None = None
    """Set once the run must stop; the pipeline aborts with it."""
    _unreachable: int = 0
    _open_since: float | None = None
    _next_probe: float = 0.0
    _pause: float = FIRST_PROBE_PAUSE
    _probing: bool = False
    _changed: anyio.Event | None = None
    _not_found: int = 0
    _not_found_by_variant: dict[str, int] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self._open_since is not None

    # -- attempts ---------------------------------------------------------------------------

    async def admit(self) -> bool:
        """Wait until an attempt may start; True when it is the open breaker's probe."""
        while self._open_since is not None and self.abort_reason is None:
            now = self.clock()
            if not self._probing and now >= self._next_probe:
                self._probing = True
                return True
            if self._changed is None:
                self._changed = anyio.Event()
            changed = self._changed
            wait = self._next_probe - now if not self._probing else None
            with anyio.move_on_after(wait if wait is not None else float("inf")):
                await changed.wait()
        return False

    def succeeded(self, probe: bool = False) -> None:
        """An attempt got an HTTP answer (any answer: the API is there)."""
        self._unreachable = 0
        if probe:
            self._probing = False
        if self._open_since is not None:
            self._open_since = None
            self._pause = FIRST_PROBE_PAUSE
            self._wake()

    def failed(self, error: AttemptError, probe: bool = False) -> bool:
        """Record a failed attempt. True when it failed for the outage: the caller waits at
        :meth:`admit` and tries again without counting the attempt."""
        if not is_unreachable(error):
            self.succeeded(probe)  # the server answered; the retry policy takes it from here
            return False
        if probe:
            self._probing = False
        now = self.clock()
        if self._open_since is None:
            self._unreachable += 1
            if self._unreachable < self.threshold:
                return False
            self._open_since, self._next_probe = now, now + FIRST_PROBE_PAUSE
            self._wake()
            return True
        if now - self._open_since >= self.max_outage:
            self.abort_reason = (
                f"the API cannot be reached ({error.message}); nothing answered for "
                f"{now - self._open_since:.0f} s after {self.threshold} attempts in a row failed "
                "(--max-outage)"
            )
        elif probe:
            self._next_probe = now + self._pause
            self._pause = min(self._pause * 2, LONGEST_PROBE_PAUSE)
        self._wake()
        return True

    # -- outcomes ---------------------------------------------------------------------------

    def outcome(self, variant: str, error: AttemptError | None, deployment: str) -> None:
        """Record a call's final outcome (``error`` None when it ended ok)."""
        if error is None:
            self._not_found = 0
            self._not_found_by_variant[variant] = 0
            return
        if error.http_status != 404:
            return
        self._not_found += 1
        streak = self._not_found_by_variant.get(variant, 0) + 1
        self._not_found_by_variant[variant] = streak
        if max(self._not_found, streak) >= self.threshold and self.abort_reason is None:
            self.abort_reason = (
                f"deployment {deployment!r} variant {variant!r}: HTTP 404: {error.message} "
                f"({max(self._not_found, streak)} calls in a row); check --deployment and "
                "--variant against the Fetch Hive dashboard"
            )

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None
