"""Statistics that repeats cannot inflate: the row, never the call, is the unit of every
test, interval and gate (issue 20, point 3), on hand-built frames."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from runner.gates._gates import Gates
from runner.gates._pairing import compare_runs, gate_variants
from runner.stats import _stats as stats
from runner.stats._compare import compare_variants, pairs_of, summarize
from runner.stats._segments import comparison_by_segment, summary_by_segment
from tests.reports_helpers import frame, row

Scores = Sequence[Sequence[float | None]]
"""Per row, the scores of its repeats; ``None`` marks a failed call."""


def repeated(
    arms: Mapping[str, Scores], *, latency: float = 100.0, segment: bool = False
) -> pl.DataFrame:
    """A results frame: per variant, rows r0, r1, … with one call per listed repeat."""
    rows, scores = [], []
    for variant, per_row in arms.items():
        for i, repeats in enumerate(per_row):
            for k, score in enumerate(repeats):
                status = "ok" if score is not None else "error"
                inputs = {"q": f"r{i}", "kind": "even" if i % 2 == 0 else "odd"}
                rows.append(
                    row(f"r{i}", variant, f"{variant}-{score}", expected="x", status=status,
                        repeat=k, latency_ms=latency + i, inputs=inputs if segment else None)
                )  # fmt: skip
                scores.append(score)
    return frame(rows).with_columns(pl.Series("score", scores, dtype=pl.Float64))


def times(n: int, per_row: Sequence[float | None]) -> list[list[float | None]]:
    """Each row's one outcome repeated ``n`` times: a deterministic model."""
    return [[value] * n for value in per_row]


#: The issue's case: 40 rows, the candidate loses 4 the baseline got right and wins none.
BASE_40 = [1.0] * 36 + [0.0] * 4
CAND_40 = [0.0] * 4 + [1.0] * 32 + [0.0] * 4


def deterministic(n: int, base: Sequence[float | None] = BASE_40,
                  cand: Sequence[float | None] = CAND_40) -> pl.DataFrame:  # fmt: skip
    return repeated({"base": times(n, base), "cand": times(n, cand)})


# --------------------------------------------------------------- a deterministic model


def test_three_repeats_of_a_deterministic_model_give_the_comparison_of_one() -> None:
    """McNemar p = 0.125 on 40 rows stays 0.125 with three repeats: every column equal."""
    once = compare_variants(deterministic(1), "base")
    thrice = compare_variants(deterministic(3), "base")
    assert once.select("pairs", "score_test", "score_p_value").row(0) == (
        40, "mcnemar_exact", pytest.approx(0.125, rel=1e-12),
    )  # fmt: skip
    assert_frame_equal(thrice, once, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)


def test_three_repeats_of_a_deterministic_model_leave_the_summary_interval_alone() -> None:
    """Wilson over 40 rows, not 120 calls; the repeats show up as consistency only."""
    columns = ["score_mean", "score_ci_low", "score_ci_high", "score_ci_method"]
    once, thrice = summarize(deterministic(1)), summarize(deterministic(3))
    assert_frame_equal(thrice.select(columns), once.select(columns), rel_tol=1e-12)
    low, high = stats.wilson_interval(36, 40)
    assert once.select("score_ci_low", "score_ci_high").row(0) == pytest.approx((low, high))
    assert thrice.select("consistency_rows", "consistency_rate").row(0) == (40, 1.0)


def test_a_significance_gate_does_not_flip_with_repeats() -> None:
    """The issue's flip: --require-significance 0.05 passed at one repeat and failed at three."""
    gates = Gates(max_score_drop_points=2.0, require_significance=0.05)
    for n in (1, 3):
        report = gate_variants(deterministic(n), "base", gates)
        assert report.passed, (n, report.gates)
        assert report.metrics["score_p_value"][0] == pytest.approx(0.125, rel=1e-12)


def test_deterministic_failures_keep_mcnemar_on_the_error_rate() -> None:
    """A row failing on every repeat is one failed row, as with one repeat."""
    base = [1.0] * 10
    cand = [None, None, None] + [1.0] * 7
    once = compare_variants(deterministic(1, base, cand), "base")
    thrice = compare_variants(deterministic(3, base, cand), "base")
    columns = ["pairs", "both_ok", "candidate_error_rate", "error_test", "error_p_value"]
    assert once.select(columns).row(0) == (10, 7, 0.3, "mcnemar_exact", pytest.approx(0.25))
    assert_frame_equal(thrice.select(columns), once.select(columns), rel_tol=1e-12)


def test_a_baseline_run_of_one_repeat_pairs_with_a_candidate_run_of_three() -> None:
    """Run against run (runner compare, the nightly gate): rows pair whatever the repeats,
    the p-value is that of one repeat each, and no call counts as unmatched."""
    base_run = repeated({"v": times(1, BASE_40)})
    cand_once = repeated({"v": times(1, CAND_40)})
    cand_thrice = repeated({"v": times(3, CAND_40)})
    gates = Gates(max_score_drop_points=2.0, require_significance=0.05)
    once = compare_runs(base_run, cand_once, gates)
    thrice = compare_runs(base_run, cand_thrice, gates)
    assert once.passed and thrice.passed
    assert thrice.metrics.select("pairs", "coverage", "score_test").row(0) == (
        40, 1.0, "mcnemar_exact",
    )  # fmt: skip
    assert thrice.metrics["score_p_value"][0] == pytest.approx(0.125, rel=1e-12)
    assert (thrice.unmatched_baseline, thrice.unmatched_candidate) == (0, 0)


def test_coverage_counts_baseline_calls_whose_row_has_a_partner() -> None:
    """Three repeats of 10 rows against 4 of them: 12 of 30 baseline calls have a partner."""
    base_run = repeated({"v": times(3, [1.0] * 10)})
    cand_run = repeated({"v": times(1, [1.0] * 4)})
    report = compare_runs(base_run, cand_run, Gates(max_score_drop_points=2.0))
    assert not report.passed
    assert report.metrics.select("pairs", "baseline_calls", "coverage").row(0) == (4, 30, 0.4)
    assert report.unmatched_baseline == 18
    coverage = next(g for g in report.gates if g.gate == "min_coverage")
    assert "12 of 30 baseline calls have a partner" in coverage.describe()


def test_segments_are_not_inflated_by_repeats() -> None:
    """The breakdown by segment takes rows as its unit too."""
    once = repeated({"base": times(1, BASE_40), "cand": times(1, CAND_40)}, segment=True)
    thrice = repeated({"base": times(3, BASE_40), "cand": times(3, CAND_40)}, segment=True)
    by = ["kind"]
    summary_columns = ["segment", "variant", "score_mean", "score_ci_low", "score_ci_high"]
    summary_once = summary_by_segment(once.lazy(), by, variants=["base", "cand"])
    summary_thrice = summary_by_segment(thrice.lazy(), by, variants=["base", "cand"])
    assert_frame_equal(
        summary_thrice.select(summary_columns), summary_once.select(summary_columns),
        rel_tol=1e-12,
    )  # fmt: skip
    compare_once = comparison_by_segment(once.lazy(), by, "base", variants=["base", "cand"])
    compare_thrice = comparison_by_segment(thrice.lazy(), by, "base", variants=["base", "cand"])
    assert_frame_equal(compare_thrice, compare_once, check_exact=False, rel_tol=1e-12)


def test_a_pairing_holds_one_line_per_row() -> None:
    pairs = pairs_of(deterministic(3), deterministic(1), "base", "base")
    assert pairs.height == 40
    assert (pairs["b_calls"].to_list(), pairs["c_calls"].to_list()) == ([3] * 40, [1] * 40)
    assert pairs["same_output"].all()


# ------------------------------------------------------------------ repeats that disagree


#: 0/1 scores whose repeats disagree on some rows: per-row means 2/3 and 1/3 appear.
BASE_MIXED = [[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0],
              [1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]  # fmt: skip
CAND_MIXED = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0],
              [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 1.0]]  # fmt: skip


def _row_means(per_row: Scores) -> np.ndarray:
    return np.array([np.mean([s for s in r if s is not None]) for r in per_row])


def test_repeats_that_disagree_use_the_paired_t_test_on_per_row_means_and_say_so() -> None:
    comparison = compare_variants(repeated({"base": BASE_MIXED, "cand": CAND_MIXED}), "base")
    b, c = _row_means(BASE_MIXED), _row_means(CAND_MIXED)
    result = comparison.row(0, named=True)
    assert (result["score_test"], result["score_diff_ci_method"]) == ("paired_t", "paired_t")
    assert result["pairs"] == result["scored_pairs"] == 8
    assert result["score_p_value"] == pytest.approx(stats.paired_t_test(b, c), rel=1e-12)
    assert (result["score_diff_ci_low"], result["score_diff_ci_high"]) == pytest.approx(
        stats.paired_t_ci(b, c), rel=1e-12
    )
    assert result["score_diff"] == pytest.approx(float(c.mean() - b.mean()), rel=1e-12)


def test_repeats_that_disagree_get_a_bootstrap_over_per_row_means_in_the_summary() -> None:
    summary = summarize(repeated({"base": BASE_MIXED}))
    means = _row_means(BASE_MIXED)
    assert summary.select("scored", "score_ci_method").row(0) == (24, "bootstrap")
    assert summary["score_mean"][0] == pytest.approx(float(means.mean()), rel=1e-12)
    interval = summary.select("score_ci_low", "score_ci_high").row(0)
    assert interval == pytest.approx(stats.bootstrap_mean_ci(means), rel=1e-12)
    assert summary.select("consistency_rows", "consistency_rate").row(0) == (8, 5 / 8)


def test_a_row_whose_repeats_disagree_has_no_output_to_agree_with() -> None:
    """Agreement counts a row when every repeat of both arms gave the same answer: r0, r2,
    r4, r6 and r7 agree on every repeat, the others do not."""
    results = repeated({"base": BASE_MIXED})
    pairs = pairs_of(results, results, "base", "base")
    assert pairs.height == 8
    assert pairs["same_output"].sum() == 5


def test_a_row_mean_skips_the_repeats_the_scorer_could_not_score() -> None:
    """r0 scores 1 and 0 and fails once: its score is 1/2, not 1/3."""
    results = repeated({"base": [[1.0, 0.0, None], [1.0, 1.0, 1.0]], "cand": times(3, [1, 1])})
    comparison = compare_variants(results, "base")
    assert comparison["baseline_score"][0] == pytest.approx(0.75)
    assert comparison["score_test"][0] == "paired_t"


def test_errors_that_come_and_go_across_repeats_use_the_paired_t_test_on_error_shares() -> None:
    base = [[1.0, 1.0, 1.0]] * 6
    cand: Scores = [[None, 1.0, 1.0], [None, None, 1.0], [1.0, 1.0, 1.0], [None, 1.0, 1.0],
                    [1.0, 1.0, 1.0], [None, None, None]]  # fmt: skip
    comparison = compare_variants(repeated({"base": base, "cand": cand}), "base")
    shares = np.array([1 / 3, 2 / 3, 0.0, 1 / 3, 0.0, 1.0])
    result = comparison.row(0, named=True)
    assert result["error_test"] == "paired_t"
    assert result["candidate_error_rate"] == pytest.approx(shares.mean(), rel=1e-12)
    assert result["error_p_value"] == pytest.approx(
        stats.paired_t_test(np.zeros(6), shares), rel=1e-12
    )
