"""One sending session: every check before the first request, the pipeline of rows ×
variants × repeats through bounded workers, its limits and breaker, progress, the commit."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.run._counters import Counters
    from runner.run._job import arun_job, run_job
    from runner.run._preflight import (
        check_resume,
        check_segments,
        fingerprint_of,
        plan_run,
        resolve_api_key,
    )
    from runner.run._progress import Display, auto_display
    from runner.run._session import STOP_SIGNALS, RunResult

# Names load on first use: the door costs nothing until a name is taken through it.
_EXPORTS = {
    "Counters": "runner.run._counters",
    "Display": "runner.run._progress",
    "RunResult": "runner.run._session",
    "STOP_SIGNALS": "runner.run._session",
    "arun_job": "runner.run._job",
    "auto_display": "runner.run._progress",
    "check_resume": "runner.run._preflight",
    "check_segments": "runner.run._preflight",
    "fingerprint_of": "runner.run._preflight",
    "plan_run": "runner.run._preflight",
    "resolve_api_key": "runner.run._preflight",
    "run_job": "runner.run._job",
}


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else
    from runner import door_getattr

    __getattr__ = door_getattr(__name__, _EXPORTS)


__all__ = [
    "STOP_SIGNALS",
    "Counters",
    "Display",
    "RunResult",
    "arun_job",
    "auto_display",
    "check_resume",
    "check_segments",
    "fingerprint_of",
    "plan_run",
    "resolve_api_key",
    "run_job",
]
