"""Summaries, variant comparisons and side by side on hand-built frames."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from runner.errors import ConfigError
from runner.stats import _paired as paired_module
from runner.stats import _stats as stats
from runner.stats._compare import (
    COMPARISON_SCHEMA,
    StatOptions,
    compare_variants,
    latency_boxes,
    pairs_of,
    score_verdict,
    side_by_side,
    summarize,
)
from runner.store._memory import MemoryPlan
from tests.reports_helpers import frame, paired, row, with_scores

ERRORS_BY_TYPE = pl.List(
    pl.Struct(
        {"error_type": pl.String, "count": pl.Int64, "http_status": pl.Int32, "example": pl.String}
    )
)


def _summary_input() -> pl.DataFrame:
    rows = [
        row("r1", "a", "xx", expected="e", latency_ms=100, total_tokens=10),
        row("r2", "a", "xxxx", expected="e", latency_ms=200, total_tokens=20),
        row("r3", "a", "x", expected="e", latency_ms=300, total_tokens=30),
        row("r4", "a", status="error", error_type="http_502", attempts=3),
        row("r1", "b", "yyy", expected="e", latency_ms=400, ttft_ms=50, attempts=2),
        row("r2", "b", status="error", error_type="timeout", attempts=4),
        row("r3", "b", status="error", error_type="http_502", attempts=4),
        row("r4", "b", status="error", error_type="timeout", attempts=4),
    ]
    return with_scores(frame(rows), [1, 0, 1, None, 1, None, None, None])


def _error(error_type: str, count: int) -> dict[str, object]:
    return {"error_type": error_type, "count": count, "http_status": 502, "example": "bad gateway"}


def test_summary_per_variant_worked_by_hand() -> None:
    """Latency percentiles interpolate linearly: p90 of 100/200/300 is 200 + 0.8·100."""
    wilson_a, wilson_b = stats.wilson_interval(2, 3), stats.wilson_interval(1, 1)
    expected = pl.DataFrame(
        {
            "variant": ["a", "b"],
            "rows": [4, 4],
            "ok": [3, 1],
            "errors": [1, 3],
            "error_rate": [0.25, 0.75],
            "errors_by_type": [
                [_error("http_502", 1)],
                [_error("timeout", 2), _error("http_502", 1)],
            ],
            "retries": [2, 10],
            "latency_mean_ms": [200.0, 400.0],
            "latency_p50_ms": [200.0, 400.0],
            "latency_p90_ms": [280.0, 400.0],
            "latency_p95_ms": [290.0, 400.0],
            "latency_p99_ms": [298.0, 400.0],
            # Every call, errors included (their total_ms defaults to 100 here).
            "total_p50_ms": [150.0, 100.0],
            "total_p95_ms": [285.0, 355.0],
            "ttft_p50_ms": [None, 50.0],
            "ttft_p95_ms": [None, 50.0],
            "tokens_mean": [20.0, None],
            "tokens_total": [60, None],
            "output_chars_mean": [7 / 3, 3.0],
            "scored": [3, 1],
            "score_errors": [0, 0],
            "score_mean": [2 / 3, 1.0],
            "score_ci_low": [wilson_a[0], wilson_b[0]],
            "score_ci_high": [wilson_a[1], wilson_b[1]],
            "score_ci_method": ["wilson", "wilson"],
            "consistency_rows": [None, None],
            "consistency_rate": [None, None],
        },
        schema_overrides={
            "errors_by_type": ERRORS_BY_TYPE,
            "ttft_p50_ms": pl.Float64,
            "ttft_p95_ms": pl.Float64,
            "tokens_mean": pl.Float64,
            "consistency_rows": pl.Int64,
            "consistency_rate": pl.Float64,
        },
    )
    assert_frame_equal(summarize(_summary_input()), expected)


def test_summary_follows_the_given_variant_order() -> None:
    summary = summarize(_summary_input(), variants=["b", "a"])
    assert summary["variant"].to_list() == ["b", "a"]


def test_summary_without_scores_has_null_score_columns() -> None:
    results = _summary_input().drop("score")
    summary = summarize(results)
    assert summary["scored"].to_list() == [0, 0]
    assert summary["score_mean"].null_count() == 2
    assert summary["score_ci_method"].null_count() == 2


def test_graded_scores_get_a_bootstrap_interval() -> None:
    results = with_scores(
        frame([row(f"r{i}", "a", "o", expected="e") for i in range(4)]), [0.5, 0.25, 1.0, 0.75]
    )
    summary = summarize(results)
    assert summary["score_ci_method"].to_list() == ["bootstrap"]
    low, high = summary.select("score_ci_low", "score_ci_high").row(0)
    assert (low, high) == stats.bootstrap_mean_ci([0.5, 0.25, 1.0, 0.75])


def test_consistency_is_the_share_of_repeated_rows_whose_outputs_agree() -> None:
    """r1 agrees over 3 repeats, r2 does not; r3 has one ok repeat only and does not count."""
    rows = [
        *(row("r1", "a", "same", repeat=k) for k in range(3)),
        row("r2", "a", "one", repeat=0),
        row("r2", "a", "two", repeat=1),
        row("r3", "a", "x", repeat=0),
        row("r3", "a", status="error", repeat=1),
    ]
    summary = summarize(frame(rows))
    assert summary.select("consistency_rows", "consistency_rate").row(0) == (2, 0.5)


# ----------------------------------------------------------------------- compare_variants

BINARY_PAIRS = (
    [1.0] * 10 + [0.0] * 2 + [1.0] * 5 + [0.0] * 3,
    [0.0] * 10 + [1.0] * 2 + [1.0] * 5 + [0.0] * 3,
)


def test_binary_scores_use_mcnemar_exact() -> None:
    """10 rows lost and 2 won: p = 158/4096; the mean falls from 15/20 to 7/20."""
    comparison = compare_variants(paired(*BINARY_PAIRS), "base")
    expected = pl.DataFrame(
        {
            "baseline": ["base"],
            "variant": ["cand"],
            "scored_pairs": [20],
            "wins": [2],
            "losses": [10],
            "ties": [8],
            "baseline_score": [0.75],
            "candidate_score": [0.35],
            "score_test": ["mcnemar_exact"],
            "score_p_value": [158 / 4096],
        }
    )
    assert_frame_equal(comparison.select(expected.columns), expected)
    assert comparison["score_diff"][0] == pytest.approx(-0.4)


def test_binary_score_difference_interval_is_the_exact_mcnemar_interval() -> None:
    comparison = compare_variants(paired(*BINARY_PAIRS), "base")
    low, high = stats.mcnemar_diff_ci(10, 2, 20)
    assert comparison.select("score_diff_ci_low", "score_diff_ci_high").row(0) == (low, high)
    assert comparison["score_diff_ci_method"][0] == "clopper_pearson_discordant"
    assert low < -0.4 < high < 0
    assert comparison["score_verdict"][0] == "worse"


def test_twenty_pairs_four_lost_the_interval_and_the_verdict_agree_with_mcnemar() -> None:
    """The reported contradiction: 20 pairs, 4 lost and none won, a 20-point drop with
    McNemar p = 0.125. The interval must now include 0 and the verdict must not say worse."""
    base, cand = [1.0] * 20, [0.0] * 4 + [1.0] * 16
    row_ = compare_variants(paired(base, cand), "base").row(0, named=True)
    assert row_["score_diff"] == pytest.approx(-0.2)
    assert row_["score_p_value"] == pytest.approx(0.125)
    assert row_["score_diff_ci_low"] < -0.2  # the estimate inside, not on an edge
    assert row_["score_diff_ci_low"] < 0 < row_["score_diff_ci_high"]
    assert row_["score_verdict"] == "no significant difference"


def test_the_interval_excludes_zero_exactly_when_mcnemar_rejects() -> None:
    """Over every split of up to 20 discordant pairs among 40 pairs."""
    for discordant in range(21):
        for won in range(discordant + 1):
            lost = discordant - won
            low, high = stats.mcnemar_diff_ci(lost, won, 40)
            rejects = stats.mcnemar_exact(lost, won) < 0.05
            assert (low > 0 or high < 0) == rejects, (lost, won)


def test_score_verdict_reads_the_p_value_and_the_sign() -> None:
    assert score_verdict(-0.2, 0.01, 0.05) == "worse"
    assert score_verdict(0.1, 0.01, 0.05) == "better"
    assert score_verdict(-0.2, 0.125, 0.05) == "no significant difference"
    assert score_verdict(None, None, 0.05) is None


def test_graded_scores_use_the_paired_t_test_and_its_interval_by_default() -> None:
    base, cand = [0.2, 0.4, 0.5, 0.1, 0.3], [0.3, 0.6, 0.8, 0.5, 0.8]
    comparison = compare_variants(paired(base, cand), "base")
    # Equal to the last few bits only: numpy's sums vary in the last bit with the arrays'
    # alignment in memory (the comparison's arrays come from polars), so compare to 1e-12.
    test, p_value, method = comparison.select(
        "score_test", "score_p_value", "score_diff_ci_method"
    ).row(0)
    assert (test, method) == ("paired_t", "paired_t")
    assert p_value == pytest.approx(stats.paired_t_test(base, cand), rel=1e-12)
    low_high = comparison.select("score_diff_ci_low", "score_diff_ci_high").row(0)
    assert low_high == pytest.approx(stats.paired_t_ci(base, cand), rel=1e-12)


def test_wilcoxon_can_be_chosen_and_then_no_interval_is_claimed() -> None:
    """The signed-rank test has no interval on the mean difference, so none is shown."""
    base, cand = [0.2, 0.4, 0.5, 0.1, 0.3], [0.3, 0.6, 0.8, 0.5, 0.8]
    options = StatOptions(graded_test="wilcoxon")
    wilcoxon = compare_variants(paired(base, cand), "base", options=options)
    assert wilcoxon.select("score_test", "score_p_value").row(0) == ("wilcoxon", 0.0625)
    assert wilcoxon.select("score_diff_ci_low", "score_diff_ci_high").row(0) == (None, None)


def test_error_rates_compare_with_mcnemar_on_the_error_indicators() -> None:
    """Baseline fails r0, r1; candidate r1 to r4: discordant 1 and 3, p = 2·5/16."""
    base = [None, None, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    cand = [1.0, None, None, None, None, 1.0, 1.0, 1.0, 1.0, 1.0]
    comparison = compare_variants(paired(base, cand), "base")
    assert comparison.select(
        "pairs", "both_ok", "baseline_error_rate", "candidate_error_rate", "error_test"
    ).row(0) == (10, 5, 0.2, 0.4, "mcnemar_exact")
    assert comparison["error_rate_diff"][0] == pytest.approx(0.2)
    assert comparison["error_p_value"][0] == pytest.approx(10 / 16)


def _timed(
    latencies: Sequence[float], variant: str, tokens: int, outputs: Sequence[str]
) -> list[dict[str, Any]]:
    return [
        row(f"r{i}", variant, out, latency_ms=ms, total_tokens=tokens)
        for i, (ms, out) in enumerate(zip(latencies, outputs, strict=True))
    ]


def test_latency_tokens_and_agreement_on_rows_ok_in_both() -> None:
    """Nearest-rank p50 of 4 values is the 2nd, p95 the 4th; 3 of 4 outputs are identical."""
    rows = [
        *_timed([100, 200, 300, 400], "base", 10, ["a", "b", "c", "d"]),
        *_timed([150, 250, 350, 450], "cand", 15, ["a", "b", "c", "D"]),
    ]
    comparison = compare_variants(frame(rows), "base")
    expected = pl.DataFrame(
        {
            "identical_share": [0.75],
            "baseline_latency_p50_ms": [200.0],
            "candidate_latency_p50_ms": [250.0],
            "latency_p50_diff_ms": [50.0],
            "baseline_latency_p95_ms": [400.0],
            "candidate_latency_p95_ms": [450.0],
            "latency_p95_diff_ms": [50.0],
            "p95_latency_increase_pct": [12.5],
            "tokens_mean_diff": [5.0],
            "scored_pairs": [0],
            "score_diff": [None],
            "score_test": [None],
        },
        schema_overrides={"score_diff": pl.Float64, "score_test": pl.String},
    )
    assert_frame_equal(comparison.select(expected.columns), expected)
    low, high = comparison.select("latency_p50_diff_ci_low", "latency_p50_diff_ci_high").row(0)
    assert low <= 50.0 <= high


def test_comparison_has_one_row_per_candidate_and_a_fixed_schema() -> None:
    results = pl.concat([paired([1.0], [0.0]), paired([1.0], [1.0], names=("base", "third"))])
    comparison = compare_variants(results, "base")
    assert comparison["variant"].to_list() == ["cand", "third"]
    assert dict(comparison.schema) == {
        "baseline": pl.String(),
        "variant": pl.String(),
        **COMPARISON_SCHEMA,
    }


def test_summary_keeps_the_top_error_types_with_status_and_a_cut_example() -> None:
    long = "Deployment not found: " + "x" * 500
    rows = [
        *(row(f"n{i}", "v", status="error", error_type="http_404", http_status=404,
              error_message=long) for i in range(3)),
        row("t1", "v", status="error", error_type="timeout", error_message="read timed out"),
        *(row(f"k{i}", "v", status="error", error_type=f"kind{i}") for i in range(5)),
        row("ok", "v", "fine"),
    ]  # fmt: skip
    errors = summarize(frame(rows))["errors_by_type"][0].to_list()
    assert len(errors) == 5
    assert errors[0] == {
        "error_type": "http_404", "count": 3, "http_status": 404, "example": long[:200],
    }  # fmt: skip
    assert errors[1]["error_type"] == "kind0"  # ties by name after the most frequent


def test_one_variant_gives_an_empty_comparison() -> None:
    comparison = compare_variants(frame([row("r1", "only", "x")]), "only")
    assert comparison.height == 0
    assert "score_p_value" in comparison.columns


def test_unknown_baseline_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="baseline variant 'nope'"):
        compare_variants(paired([1.0], [1.0]), "nope")


# ---------------------------------------------------------------------------- side by side


def test_side_by_side_puts_regressions_first() -> None:
    """r2 and r5 regress (wrong answer, error), r3 improves, r4 changes, r1 stays."""
    Side = tuple[str | None, float | None]  # (output, score); None = error
    cases: dict[str, tuple[Side, Side]] = {  # row: (base, cand)
        "r1": (("A", 1.0), ("A", 1.0)),
        "r2": (("B", 1.0), ("b?", 0.0)),
        "r3": (("c?", 0.0), ("C", 1.0)),
        "r4": (("D", 1.0), ("D.", 1.0)),
        "r5": (("E", 1.0), (None, None)),
    }
    rows: list[dict[str, Any]] = []
    scores: list[float | None] = []
    for variant, side in (("base", 0), ("cand", 1)):
        for row_id, case in cases.items():
            output, score = case[side]
            status = "ok" if output is not None else "error"
            rows.append(row(row_id, variant, output, expected=row_id, status=status, latency_ms=10))
            scores.append(score)
    table = side_by_side(with_scores(frame(rows), scores), "base")
    order = ["r2", "r5", "r3", "r4", "r1"]
    expected = pl.DataFrame(
        {
            "row_id": order,
            "repeat": pl.Series([0] * 5, dtype=pl.Int32),
            "inputs": [f'{{"q": "{r}"}}' for r in order],
            "expected": order,
            "output_base": [cases[r][0][0] for r in order],
            "status_base": ["ok"] * 5,
            "score_base": [cases[r][0][1] for r in order],
            "latency_ms_base": [10.0] * 5,
            "output_cand": [cases[r][1][0] for r in order],
            "status_cand": ["ok", "error", "ok", "ok", "ok"],
            "score_cand": [cases[r][1][1] for r in order],
            "latency_ms_cand": [10.0, None, 10.0, 10.0, 10.0],
            "changed": [True, True, True, True, False],
            "regression": [True, True, False, False, False],
            "improvement": [False, False, True, False, False],
        }
    )
    assert_frame_equal(table, expected)


def _many_rows() -> pl.DataFrame:
    """Two variants over 300 rows with errors, missing latencies and spread-out numbers."""
    rows = []
    for variant, shift in (("a", 0.0), ("b", 7.5)):
        for i in range(300):
            status = "error" if i % 13 == 0 else "ok"
            latency = None if i % 17 == 0 else (i * 37 % 101) * 3.25 + shift
            ttft = None if i % 5 else i * 0.5 + shift
            rows.append(
                row(f"r{i}", variant, "x" * (i % 9), status=status, latency_ms=latency,
                    ttft_ms=ttft, total_tokens=i % 11, attempts=1 + i % 3)
            )  # fmt: skip
    return frame(rows)


def test_summary_numbers_equal_one_group_by_over_every_row() -> None:
    """Quantiles taken a column and a variant at a time equal polars' own group-by quantile."""
    results = _many_rows()
    latency = pl.col("latency_ms").filter(pl.col("status") == "ok")
    ttft = pl.col("ttft_ms").filter(pl.col("status") == "ok")
    tokens = pl.col("total_tokens").filter(pl.col("status") == "ok")
    expected = (
        results.group_by("variant", maintain_order=True)
        .agg(
            latency.mean().alias("latency_mean_ms"),
            *[latency.quantile(q, "linear").alias(f"latency_p{p}_ms") for p, q in
              ((50, 0.5), (90, 0.9), (95, 0.95), (99, 0.99))],
            pl.col("total_ms").quantile(0.5, "linear").alias("total_p50_ms"),
            pl.col("total_ms").quantile(0.95, "linear").alias("total_p95_ms"),
            ttft.quantile(0.5, "linear").alias("ttft_p50_ms"),
            ttft.quantile(0.95, "linear").alias("ttft_p95_ms"),
            tokens.mean().alias("tokens_mean"),
            tokens.sum().cast(pl.Int64).alias("tokens_total"),
            (pl.col("attempts") - 1).sum().cast(pl.Int64).alias("retries"),
        )
    )  # fmt: skip
    assert_frame_equal(summarize(results).select(expected.columns), expected)


def test_a_pairing_holds_no_text() -> None:
    """Outputs are paired as one equality flag; calls as ok flags; only numbers besides."""
    results = frame(
        [
            row("r0", "base", "same", latency_ms=1.0),
            row("r0", "cand", "same"),
            row("r1", "base", "one", latency_ms=2.0),
            row("r1", "cand", "two"),
            row("r2", "base", status="error"),
            row("r2", "cand", "three"),
        ]
    )
    pairs = pairs_of(results, results, "base", "cand")
    assert pl.String not in pairs.schema.dtypes()
    ordered = pairs.sort("b_latency_ms", nulls_last=True)
    assert ordered["same_output"].to_list() == [True, False, False]
    assert ordered["b_ok"].to_list() == [True, True, False]
    assert ordered["c_ok"].to_list() == [True, True, True]


def test_latency_boxes_are_linear_quantiles_of_ok_calls_per_variant() -> None:
    rows = [
        *(row(f"r{i}", "a", latency_ms=ms) for i, ms in enumerate([100, 200, 300, 400, 500])),
        row("r9", "a", status="error"),
        row("r0", "b", latency_ms=50.0),
    ]
    boxes = latency_boxes(frame(rows))
    expected = pl.DataFrame(
        {
            "variant": ["a", "b"],
            "p5": [120.0, 50.0],
            "q1": [200.0, 50.0],
            "median": [300.0, 50.0],
            "q3": [400.0, 50.0],
            "p95": [480.0, 50.0],
            "mean": [300.0, 50.0],
        }
    )
    assert_frame_equal(boxes, expected)


def test_a_pairing_made_in_parts_gives_the_same_comparison() -> None:
    """Row ids split by hash into parts joined one at a time lose and double no pair."""
    results = _many_rows().with_columns(
        score=pl.when(pl.col("status") == "ok").then(pl.col("total_tokens") % 2).cast(pl.Float64)
    )
    whole = compare_variants(results, "a")
    parts = MemoryPlan(pair_part_rows=40)
    assert paired_module.pairs_of(results, results, "a", "b", memory=parts).height == 300
    assert_frame_equal(compare_variants(results, "a", memory=parts), whole)
