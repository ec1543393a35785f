"""How the statistics are said: score labels, p-values, test names, verdict sentences. Pure
(the reports, the console and the gates' markdown say them the same way)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import polars as pl

from runner.stats import _compare as compare

_LABELS: Final = {
    "exact": "exact match",
    "normalized": "normalized match",
    "contains": "contains expected",
    "json": "JSON match",
    "number": "numeric match",
}


def score_label(scorer: str | None) -> str:
    """How reports name the score of ``scorer``: ``exact match``, ``score (mod:fn)``."""
    if scorer is None:
        return "score"
    if scorer in _LABELS:
        return _LABELS[scorer]
    head = scorer.split(":", 1)[0]
    return {"regex": "regex match", "number": "numeric match"}.get(head, f"score ({scorer})")


def format_p(p: float | None) -> str:
    """``p = 0.039``, ``p < 0.001``, or ``p n/a``."""
    if p is None or math.isnan(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


_TESTS: Final = {
    "mcnemar_exact": "McNemar exact test",
    "paired_t": "paired t-test",
    "wilcoxon": "Wilcoxon signed-rank test",
}


def test_name(test: str | None) -> str:
    """How a sentence names the test behind a p-value."""
    return _TESTS.get(test or "", test or "no test")


def verdict_lines(
    comparison: pl.DataFrame, *, score_label: str = "score", confidence: float = 0.95
) -> list[str]:
    """One sentence per compared variant, its verdict in words first, e.g.

    ``candidate: better on exact match: +6.1 points, 95 % CI [+2.3, +9.8], paired t-test
    p = 0.002; p95 latency +140 ms``

    The word comes from :func:`runner.stats._compare.score_verdict` at ``1 - confidence``, the rule
    gates use; the interval is the one that agrees with the named test.
    """
    return [_verdict(row, score_label, confidence) for row in comparison.iter_rows(named=True)]


def score_sentence(row: Mapping[str, Any], label: str, confidence: float) -> str:
    """``worse on exact match: -20.0 points, 95 % CI [-40.0, -5.0], McNemar exact test p = 0.012``
    from one row of paired metrics; ``no exact match to compare`` without scored pairs."""
    diff = row.get("score_diff")
    if diff is None:
        return f"no {label} to compare"
    p_value = row.get("score_p_value")
    word = compare.score_verdict(diff, p_value, 1.0 - confidence)
    text = f"{word} on {label}: {diff * 100:+.1f} points"
    low, high = row.get("score_diff_ci_low"), row.get("score_diff_ci_high")
    if low is not None and high is not None:
        text += f", {confidence * 100:g} % CI [{low * 100:+.1f}, {high * 100:+.1f}]"
    return f"{text}, {test_name(row.get('score_test'))} {format_p(p_value)}"


def _verdict(row: Mapping[str, Any], label: str, confidence: float) -> str:
    parts = [score_sentence(row, label, confidence)]
    if row["error_rate_diff"]:
        parts.append(
            f"error rate {row['error_rate_diff'] * 100:+.1f} points "
            f"({format_p(row['error_p_value'])})"
        )
    if row["latency_p95_diff_ms"] is not None:
        parts.append(f"p95 latency {row['latency_p95_diff_ms']:+.0f} ms")
    return f"{row['variant']}: " + "; ".join(parts)
