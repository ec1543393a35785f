"""Segments: the summary and comparison broken down by a metadata or input column."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from runner.errors import ConfigError
from runner.report._report import build_reports
from runner.stats import _stats as stats
from tests.reports_helpers import frame, row, write_run

# Row i: region eu for i < 6, us after; tier from the inputs.
REGION = ["eu"] * 6 + ["us"] * 4
BASE_RIGHT = [1, 1, 1, 0, 1, 1, 1, 1, 0, 0]
CAND_RIGHT = [1, 1, 0, 0, 1, None, 1, 1, 1, 1]  # None: an error


def results() -> pl.DataFrame:
    rows = []
    for variant, right in (("base", BASE_RIGHT), ("cand", CAND_RIGHT)):
        for i, ok in enumerate(right):
            status = "error" if ok is None else "ok"
            rows.append(
                row(
                    f"r{i}",
                    variant,
                    "Paris" if ok else "Rome",
                    expected="Paris",
                    status=status,
                    latency_ms=100.0 + 10 * i,
                    inputs={"q": f"q{i}", "tier": "gold" if i % 2 else "free"},
                )
            )
    out = frame(rows)
    metadata = [json.dumps({"region": REGION[int(r[1:])]}) for r in out["row_id"]]
    return out.with_columns(pl.Series("metadata", metadata, dtype=pl.String))


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run", results(), variants=["base", "cand"])


def test_summary_by_segment_matches_a_hand_computation(out: Path) -> None:
    paths = build_reports(out, score="exact", segments=("region",))
    assert paths.summary_by_segment is not None
    table = pl.read_parquet(paths.summary_by_segment)
    assert table.select("segment", "variant").rows() == [
        ("eu", "base"), ("eu", "cand"), ("us", "base"), ("us", "cand")
    ]  # fmt: skip
    eu_cand = table.row(1, named=True)
    # eu rows r0..r5 of cand: right, right, wrong, wrong, right, error
    assert (eu_cand["rows"], eu_cand["errors"]) == (6, 1)
    assert eu_cand["error_rate"] == pytest.approx(1 / 6)
    assert eu_cand["scored"] == 5 and eu_cand["score_mean"] == pytest.approx(3 / 5)
    low, high = stats.wilson_interval(3, 5)
    assert (eu_cand["score_ci_low"], eu_cand["score_ci_high"]) == pytest.approx((low, high))
    assert eu_cand["score_ci_method"] == "wilson"
    # ok latencies of r0..r4: 100, 110, 120, 130, 140 -> median 120, p95 138 (linear)
    assert eu_cand["latency_p50_ms"] == pytest.approx(120.0)
    assert eu_cand["latency_p95_ms"] == pytest.approx(138.0)


def test_comparison_by_segment_matches_a_hand_computation(out: Path) -> None:
    paths = build_reports(out, score="exact", segments=("region",))
    assert paths.comparison_by_segment is not None
    table = pl.read_parquet(paths.comparison_by_segment)
    us = table.filter(pl.col("segment") == "us").row(0, named=True)
    # us rows r6..r9: base right, right, wrong, wrong; cand all right: two wins, no loss
    assert (us["pairs"], us["scored_pairs"], us["wins"], us["losses"]) == (4, 4, 2, 0)
    assert us["score_diff"] == pytest.approx(0.5)
    assert us["score_p_value"] == pytest.approx(stats.mcnemar_exact(0, 2))
    eu = table.filter(pl.col("segment") == "eu").row(0, named=True)
    # eu: r2 lost; r5 errored in cand (unscored); error rate 0 -> 1/6
    assert (eu["pairs"], eu["scored_pairs"], eu["wins"], eu["losses"]) == (6, 5, 0, 1)
    assert eu["error_rate_diff"] == pytest.approx(1 / 6)


def test_an_input_column_can_be_a_segment_and_the_html_shows_it(out: Path) -> None:
    paths = build_reports(out, score="exact", segments=("tier",))
    assert paths.summary_by_segment is not None
    table = pl.read_parquet(paths.summary_by_segment)
    assert sorted(set(table["segment"])) == ["free", "gold"]
    assert table.filter(pl.col("variant") == "base")["rows"].to_list() == [5, 5]
    html = paths.html.read_text(encoding="utf-8")
    assert "<h2>By segment</h2>" in html and "<h2>Against the baseline, by segment</h2>" in html


def test_an_unknown_segment_column_is_a_config_error(out: Path) -> None:
    with pytest.raises(ConfigError, match=r"'colour'.*no result row has it"):
        build_reports(out, segments=("colour",))


def test_without_segments_no_segment_files_are_written(out: Path) -> None:
    paths = build_reports(out)
    assert paths.summary_by_segment is None
    assert not (out / "summary_by_segment.parquet").exists()
