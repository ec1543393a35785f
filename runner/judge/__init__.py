"""Judge deployments as graders: the judge calls of a run, the published answer formats
read, pointwise scores and pairwise verdicts written beside the results."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.judge._judge import (
        JudgeOptions,
        JudgeReport,
        KindReport,
        judge_run,
        pending_calls,
    )
    from runner.judge._parse import JudgeSpec, compile_pattern, parse_scale
    from runner.judge._passes import SendPass

# Names load on first use: the door costs nothing until a name is taken through it.
_EXPORTS = {
    "JudgeOptions": "runner.judge._judge",
    "JudgeReport": "runner.judge._judge",
    "JudgeSpec": "runner.judge._parse",
    "KindReport": "runner.judge._judge",
    "SendPass": "runner.judge._passes",
    "compile_pattern": "runner.judge._parse",
    "judge_run": "runner.judge._judge",
    "parse_scale": "runner.judge._parse",
    "pending_calls": "runner.judge._judge",
}


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else
    from runner import door_getattr

    __getattr__ = door_getattr(__name__, _EXPORTS)


__all__ = [
    "JudgeOptions",
    "JudgeReport",
    "JudgeSpec",
    "KindReport",
    "SendPass",
    "compile_pattern",
    "judge_run",
    "parse_scale",
    "pending_calls",
]
