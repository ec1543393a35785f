"""Pure statistics over results: intervals, exact and paired tests, the per-variant
summary, the paired comparison, segments, the side-by-side table."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.stats._frames import (
        DEFAULT_OPTIONS,
        ENGINE,
        Results,
        StatOptions,
        baseline_of,
        lazy_results,
        scores_are_binary,
        variant_order,
        variants_of,
    )
    from runner.stats._judged import (
        PAIRWISE_METRICS,
        POSITION_BIAS_BELOW,
        judge_agreement,
        pairwise_metrics,
        position_bias_warning,
    )
    from runner.stats._paired import (
        compare_variants,
        metrics_frame,
        paired_metrics,
        pairs_of,
        score_verdict,
    )
    from runner.stats._segments import comparison_by_segment, summary_by_segment
    from runner.stats._side_by_side import (
        bucketed_side_by_side,
        in_side_by_side_order,
        side_by_side_flagged,
    )
    from runner.stats._stats import mcnemar_exact, wilson_interval
    from runner.stats._summary import latency_boxes, summarize
    from runner.stats._words import format_p, score_label, score_sentence, test_name, verdict_lines

# Names load on first use: the door costs nothing until a name is taken through it.
_EXPORTS = {
    "DEFAULT_OPTIONS": "runner.stats._frames",
    "ENGINE": "runner.stats._frames",
    "PAIRWISE_METRICS": "runner.stats._judged",
    "POSITION_BIAS_BELOW": "runner.stats._judged",
    "Results": "runner.stats._frames",
    "StatOptions": "runner.stats._frames",
    "baseline_of": "runner.stats._frames",
    "bucketed_side_by_side": "runner.stats._side_by_side",
    "compare_variants": "runner.stats._paired",
    "comparison_by_segment": "runner.stats._segments",
    "format_p": "runner.stats._words",
    "in_side_by_side_order": "runner.stats._side_by_side",
    "judge_agreement": "runner.stats._judged",
    "latency_boxes": "runner.stats._summary",
    "lazy_results": "runner.stats._frames",
    "mcnemar_exact": "runner.stats._stats",
    "metrics_frame": "runner.stats._paired",
    "paired_metrics": "runner.stats._paired",
    "pairs_of": "runner.stats._paired",
    "pairwise_metrics": "runner.stats._judged",
    "position_bias_warning": "runner.stats._judged",
    "score_label": "runner.stats._words",
    "score_sentence": "runner.stats._words",
    "score_verdict": "runner.stats._paired",
    "scores_are_binary": "runner.stats._frames",
    "side_by_side_flagged": "runner.stats._side_by_side",
    "summarize": "runner.stats._summary",
    "summary_by_segment": "runner.stats._segments",
    "test_name": "runner.stats._words",
    "variant_order": "runner.stats._frames",
    "variants_of": "runner.stats._frames",
    "verdict_lines": "runner.stats._words",
    "wilson_interval": "runner.stats._stats",
}


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else
    from runner import door_getattr

    __getattr__ = door_getattr(__name__, _EXPORTS)


__all__ = [
    "DEFAULT_OPTIONS",
    "ENGINE",
    "PAIRWISE_METRICS",
    "POSITION_BIAS_BELOW",
    "Results",
    "StatOptions",
    "baseline_of",
    "bucketed_side_by_side",
    "compare_variants",
    "comparison_by_segment",
    "format_p",
    "in_side_by_side_order",
    "judge_agreement",
    "latency_boxes",
    "lazy_results",
    "mcnemar_exact",
    "metrics_frame",
    "paired_metrics",
    "pairs_of",
    "pairwise_metrics",
    "position_bias_warning",
    "score_label",
    "score_sentence",
    "score_verdict",
    "scores_are_binary",
    "side_by_side_flagged",
    "summarize",
    "summary_by_segment",
    "test_name",
    "variant_order",
    "variants_of",
    "verdict_lines",
    "wilson_interval",
]
