"""The live counters of a run: plain numbers the pipeline writes and the displays read.

Kept apart from :mod:`runner.run._progress` so that the rate limits and the pipeline can count
without importing a terminal UI (rich).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Final

from runner.records import STATUS_OK

#: Seconds over which the ETA's rate forgets the past (an exponential moving average), and
#: the least time between two samples of it.
ETA_TIME_CONSTANT: Final = 20.0
ETA_SAMPLE_SECONDS: Final = 1.0
#: Completions needed before any ETA is shown (fewer when the run is smaller than 50 times it).
ETA_MIN_DONE: Final = 20


@dataclass
class Counters:
    """What the pipeline has done so far; read by the displays and the manifest."""

    total: int = 0
    phase: str = "run"
    """What is being sent: ``run`` (the dataset's calls), ``judge`` or ``pairwise``."""
    done: int = 0
    ok: int = 0
    errors: int = 0
    retries: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    attempts: int = 0
    concurrency: int = 0
    """The live limit on requests in flight (``--adaptive`` lowers it on 429s)."""
    min_concurrency: int = 0
    """The lowest the live limit went."""
    started: float = field(default_factory=time.monotonic)
    first_done_at: float | None = None
    """When the first call finished: the rate is measured from there, not from the start, so
    the first calls' latency does not make the early ETAs far too long."""
    smoothed_rate: float | None = None
    _sample: tuple[float, int] | None = field(default=None, repr=False)

    def record(self, status: str, now: float | None = None) -> None:
        if self.first_done_at is None:
            self.first_done_at = time.monotonic() if now is None else now
        self.done += 1
        if status == STATUS_OK:
            self.ok += 1
        else:
            self.errors += 1

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at a smoothed rate; None while there is too little to go on.

        The rate starts as the average since the first completion once ``ETA_MIN_DONE`` calls
        are done, then follows the recent rate through an exponential moving average (time
        constant ``ETA_TIME_CONSTANT``), sampled at most once a second: a burst or a stall of
        a few seconds moves the estimate a little, not by a factor of ten."""
        now = time.monotonic() if now is None else now
        remaining = max(0, self.total - self.done)
        if remaining == 0:
            return 0.0
        enough = max(2, min(ETA_MIN_DONE, self.total // 50))
        if self.first_done_at is None or self.done < enough or now <= self.first_done_at:
            return None
        if self._sample is None or self.smoothed_rate is None:
            self.smoothed_rate = (self.done - 1) / (now - self.first_done_at)
            self._sample = (now, self.done)
        else:
            then, done_then = self._sample
            if now - then >= ETA_SAMPLE_SECONDS:
                recent = (self.done - done_then) / (now - then)
                weight = 1.0 - math.exp(-(now - then) / ETA_TIME_CONSTANT)
                self.smoothed_rate += weight * (recent - self.smoothed_rate)
                self._sample = (now, self.done)
        return remaining / self.smoothed_rate if self.smoothed_rate > 0 else None

    def eta_text(self, now: float | None = None) -> str:
        """The ETA as ``42s``, ``3m05s`` or ``?``."""
        seconds = self.eta(now)
        if seconds is None:
            return "?"
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"

    def line(self) -> str:
        rate = self.rate
        eta = self.eta_text()
        return (
            f"{self.done}/{self.total} done, {rate:.1f}/s, {self.errors} errors, "
            f"{self.retries} retries, {self.in_flight}/{self.concurrency} in flight, ETA {eta}"
        )
