"""The reports of a run, rendered: the Parquet summaries, report.html, the console table
and the sentences that say what the numbers mean. Imports no sending code."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.report._baseline_section import refresh_baseline_section
    from runner.report._console import pairwise_sentence, summary_table
    from runner.report._inputs import (
        Scored,
        baseline_of,
        scored_results,
        stored_scorer,
    )
    from runner.report._report import ReportPaths, build_reports
    from runner.report._wording import (
        format_p,
        score_label,
        score_sentence,
        test_name,
        verdict_lines,
    )

# Names load on first use: the door costs nothing until a name is taken through it.
_EXPORTS = {
    "ReportPaths": "runner.report._report",
    "Scored": "runner.report._inputs",
    "baseline_of": "runner.report._inputs",
    "refresh_baseline_section": "runner.report._baseline_section",
    "build_reports": "runner.report._report",
    "format_p": "runner.report._wording",
    "pairwise_sentence": "runner.report._console",
    "score_label": "runner.report._wording",
    "score_sentence": "runner.report._wording",
    "scored_results": "runner.report._inputs",
    "stored_scorer": "runner.report._inputs",
    "summary_table": "runner.report._console",
    "test_name": "runner.report._wording",
    "verdict_lines": "runner.report._wording",
}


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else
    from runner import door_getattr

    __getattr__ = door_getattr(__name__, _EXPORTS)


__all__ = [
    "ReportPaths",
    "Scored",
    "baseline_of",
    "build_reports",
    "format_p",
    "pairwise_sentence",
    "refresh_baseline_section",
    "score_label",
    "score_sentence",
    "scored_results",
    "stored_scorer",
    "summary_table",
    "test_name",
    "verdict_lines",
]
