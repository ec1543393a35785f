"""The live counters of a run: plain numbers the pipeline writes and the displays read.

Kept apart from :mod:`runner.progress` so that the rate limits and the pipeline can count
without importing a terminal UI (rich).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from runner.records import STATUS_OK


@dataclass
class Counters:
    """What the pipeline has done so far; read by the displays and the manifest."""

    total: int = 0
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

    def record(self, status: str) -> None:
        self.done += 1
        if status == STATUS_OK:
            self.ok += 1
        else:
            self.errors += 1

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate
        remaining = max(0, self.total - self.done)
        eta = f"{remaining / rate:.0f}s" if rate > 0 else "?"
        return (
            f"{self.done}/{self.total} done, {rate:.1f}/s, {self.errors} errors, "
            f"{self.retries} retries, {self.in_flight}/{self.concurrency} in flight, ETA {eta}"
        )
