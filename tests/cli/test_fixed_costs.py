"""Fixed costs of a run: what is imported before the first request, and the live bar that
only a terminal pays for."""

from __future__ import annotations

import io
import subprocess
import sys

from rich.console import Console

from runner.run._counters import Counters
from runner.run._progress import PlainDisplay, RichDisplay, auto_display

# What the console script loads before a run's first request (runner.entry.main's own setting
# included), then the display a run in CI gets.
RUN_PATH = """
import io, sys
sys.modules.setdefault("httpx._main", None)
import runner.cli.run, runner.run._job, runner.run._pipeline, runner.run._progress
runner.run._progress.auto_display(io.StringIO())
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_a_run_outside_a_terminal_imports_no_report_or_terminal_library_before_sending() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", RUN_PATH], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "polars" in loaded and "aiohttp" in loaded  # the probe does see the run's imports
    for late in ("rich", "scipy", "plotly", "pygments", "ray"):
        assert late not in loaded, late


def test_the_terminal_bar_shows_done_total_and_errors() -> None:
    screen = io.StringIO()
    display = RichDisplay(Console(file=screen, force_terminal=True, width=120))
    counters = Counters(total=10)
    display.start(counters)
    for status in ("ok", "ok", "error"):
        counters.record(status)
    display.stop()
    text = screen.getvalue()
    assert "3/10" in text and "err 1" in text


def test_auto_display_is_plain_lines_outside_a_terminal() -> None:
    assert isinstance(auto_display(io.StringIO()), PlainDisplay)
