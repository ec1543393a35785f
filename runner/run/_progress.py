"""The ways a run's live counters are shown: a rich bar, plain lines, or nothing.

:class:`~runner.run._counters.Counters` itself lives in :mod:`runner.run._counters` (no rich
import);
it is re-exported here for the callers that import it from this module.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

from runner.run._counters import Counters

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

__all__ = ["Counters", "Display", "PlainDisplay", "RichDisplay", "auto_display"]


class Display:
    """Shows counters; the base class shows nothing (library use, tests)."""

    def start(self, counters: Counters) -> None:
        self.counters = counters

    def tick(self) -> None:
        """Called about twice a second while the run goes."""

    def stop(self) -> None:
        pass


class PlainDisplay(Display):
    """One progress line every ``every`` seconds, for logs and CI."""

    def __init__(self, stream: TextIO | None = None, every: float = 5.0) -> None:
        self._stream = stream or sys.stderr
        self._every = every
        self._last = 0.0

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            print(f"{self.counters.phase}: {self.counters.line()}", file=self._stream, flush=True)

    def stop(self) -> None:
        print(f"{self.counters.phase}: {self.counters.line()}", file=self._stream, flush=True)


class RichDisplay(Display):
    """A live bar on a terminal: done/total, rate, errors, retries, and the smoothed ETA of
    :meth:`Counters.eta` (rich's own estimate jumps while the first calls come back)."""

    def __init__(self, console: Console | None = None) -> None:
        # Imported here: a run in CI (no terminal) never pays for rich's import.
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            console=console or Console(stderr=True),
            refresh_per_second=4,
        )
        self._task: TaskID | None = None

    def start(self, counters: Counters) -> None:
        super().start(counters)
        self._progress.start()
        self._task = self._progress.add_task(counters.phase, total=counters.total, info="", eta="?")

    def tick(self) -> None:
        if self._task is None:
            return
        c = self.counters
        info = (
            f"{c.rate:6.1f}/s  err {c.errors}  retry {c.retries}  "
            f"in flight {c.in_flight}/{c.concurrency}"
        )
        self._progress.update(
            self._task, completed=c.done, total=c.total, info=info, eta=c.eta_text()
        )

    def stop(self) -> None:
        self.tick()
        self._progress.stop()


def auto_display(stream: TextIO | None = None) -> Display:
    """A rich bar on a terminal, plain lines elsewhere."""
    stream = stream or sys.stderr
    return RichDisplay() if stream.isatty() else PlainDisplay(stream)
