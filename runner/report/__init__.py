"""The reports of a run, rendered: the Parquet summaries, report.html, the console table
and the sentences that say what the numbers mean. Imports no sending code."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.report._baseline_section import refresh_baseline_section
    from runner.report._console import pairwise_sentence, summary_table
    from runner.report._report import ReportPaths, build_reports

# Names load on first use: the door costs nothing until a name is taken through it.
_EXPORTS = {
    "ReportPaths": "runner.report._report",
    "build_reports": "runner.report._report",
    "pairwise_sentence": "runner.report._console",
    "refresh_baseline_section": "runner.report._baseline_section",
    "summary_table": "runner.report._console",
}


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else
    from runner import door_getattr

    __getattr__ = door_getattr(__name__, _EXPORTS)


__all__ = [
    "ReportPaths",
    "build_reports",
    "pairwise_sentence",
    "refresh_baseline_section",
    "summary_table",
]
