"""Pure polars: the summary and the comparison broken down by segment (``--segment-column``).

A segment column is a metadata column (the ``metadata`` JSON object of ``results.parquet``)
or an input column (the ``inputs`` JSON object), looked up in that order; its value, as text,
names the segment (``(none)`` when the row has none). Per segment and variant:

* :func:`summary_by_segment`: calls, errors and error rate, latency p50/p95 of ok calls, the
  mean score over rows with the interval ``summary.parquet`` uses (Wilson when every row's
  score is 0 or 1, a bootstrap over per-row means otherwise; with ``--repeat`` a row's score
  is the mean of its repeats, so repeats never narrow it);
* :func:`comparison_by_segment`: each variant against the baseline on the rows of that
  segment, with every paired metric of :func:`runner.stats._compare.paired_metrics` (the score
  difference with the interval of its test, the error rate difference, latency differences).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import polars as pl

from runner.errors import ConfigError
from runner.records import STATUS_ERROR, STATUS_OK
from runner.stats import _stats as stats
from runner.stats._frames import DEFAULT_OPTIONS, ENGINE, StatOptions, scores_are_binary
from runner.stats._paired import is_repeated, metrics_frame, paired, paired_metrics

#: Distinct values a segment column may have: a breakdown is for a few groups, not for ids.
MAX_SEGMENTS: Final = 200
NO_VALUE: Final = "(none)"
SEGMENT_HEAD: Final[dict[str, pl.DataType]] = {
    "segment_column": pl.String(),
    "segment": pl.String(),
}


def segment_value(column: str, names: Sequence[str]) -> pl.Expr:
    """The text of ``column`` for each result row: from ``metadata`` first, then ``inputs``."""
    path = "$." + _json_path_key(column)
    sources = [
        pl.col(src).str.json_path_match(path) for src in ("metadata", "inputs") if src in names
    ]
    if not sources:
        return pl.lit(NO_VALUE)
    return pl.coalesce(*sources).fill_null(NO_VALUE)


def _json_path_key(column: str) -> str:
    if column.replace("_", "").isalnum():
        return column
    escaped = column.replace("\\", "\\\\").replace("'", "\\'")
    return f"['{escaped}']"


def with_segment(lf: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """``lf`` with a ``segment`` column for ``column``; a ConfigError if no row has it or it
    has more than :data:`MAX_SEGMENTS` values."""
    names = lf.collect_schema().names()
    out = lf.with_columns(segment_value(column, names).alias("segment"))
    counts = out.select(
        pl.col("segment").n_unique().alias("n"), (pl.col("segment") != NO_VALUE).any().alias("any")
    ).collect(engine=ENGINE)
    if not counts["any"][0]:
        raise ConfigError(
            f"--segment-column {column!r}: no result row has it as a metadata or input column"
        )
    if counts["n"][0] > MAX_SEGMENTS:
        raise ConfigError(
            f"--segment-column {column!r} has {counts['n'][0]:,} distinct values; a segment "
            f"column may have at most {MAX_SEGMENTS}"
        )
    return out


SUMMARY_BY_SEGMENT_COLUMNS: Final = (
    "segment_column", "segment", "variant", "rows", "errors", "error_rate",
    "latency_p50_ms", "latency_p95_ms", "scored", "score_mean", "score_ci_low",
    "score_ci_high", "score_ci_method",
)  # fmt: skip


def summary_by_segment(
    results: pl.LazyFrame,
    columns: Sequence[str],
    *,
    variants: Sequence[str],
    options: StatOptions = DEFAULT_OPTIONS,
) -> pl.DataFrame:
    """One row per segment column, segment and variant (segments sorted, variants in order)."""
    binary = scores_are_binary(results)
    repeated = is_repeated(results)
    frames = [
        _summary_of(with_segment(results, c), c, variants, binary, repeated, options)
        for c in columns
    ]
    if not frames:
        return pl.DataFrame(schema=dict.fromkeys(SUMMARY_BY_SEGMENT_COLUMNS, pl.String))
    return pl.concat(frames, how="vertical")


def _summary_of(
    lf: pl.LazyFrame,
    column: str,
    variants: Sequence[str],
    binary: bool,
    repeated: bool,
    options: StatOptions,
) -> pl.DataFrame:
    latency = pl.col("latency_ms").filter(pl.col("status") == STATUS_OK)
    order = {v: i for i, v in enumerate(variants)}
    calls = lf.group_by("segment", "variant").agg(
        pl.len().cast(pl.Int64).alias("rows"),
        (pl.col("status") == STATUS_ERROR).sum().cast(pl.Int64).alias("errors"),
        latency.quantile(0.5, "linear").alias("latency_p50_ms"),
        latency.quantile(0.95, "linear").alias("latency_p95_ms"),
        pl.col("score").count().cast(pl.Int64).alias("scored"),
    )
    # The score is a statistic of rows: a row's score is the mean of its scored repeats.
    if repeated:
        lf = lf.group_by("segment", "variant", "row_id").agg(pl.col("score").mean())
    score = pl.col("score").drop_nulls()
    scores = lf.group_by("segment", "variant").agg(
        score.mean().alias("score_mean"),
        score.len().alias("_n"),
        score.sum().alias("_total"),
        score.is_in([0.0, 1.0]).all().alias("_zero_one"),
        # The values are held only when a bootstrap may need them.
        *([score.alias("_scores")] if repeated or not binary else []),
    )
    frame = (
        calls.join(scores, on=["segment", "variant"], how="left")
        .with_columns(
            pl.lit(column).alias("segment_column"),
            (pl.col("errors") / pl.col("rows")).alias("error_rate"),
            pl.col("variant").replace_strict(order, default=len(order)).alias("_order"),
        )
        .sort("segment", "_order")
        .collect(engine=ENGINE)
    )
    lows, highs, methods = [], [], []
    for row in frame.iter_rows(named=True):
        low, high, method = _interval(row, binary, options)
        lows.append(low)
        highs.append(high)
        methods.append(method)
    frame = frame.with_columns(
        pl.Series("score_ci_low", lows, dtype=pl.Float64),
        pl.Series("score_ci_high", highs, dtype=pl.Float64),
        pl.Series("score_ci_method", methods, dtype=pl.String),
    )
    return frame.select(SUMMARY_BY_SEGMENT_COLUMNS)


def _interval(
    row: dict[str, object], binary: bool, options: StatOptions
) -> tuple[float | None, float | None, str | None]:
    """Wilson over rows when every row's score is 0 or 1, else a bootstrap over rows."""
    n, total = row["_n"], row["_total"]
    if not isinstance(n, int) or not n or not isinstance(total, float):
        return None, None, None
    if binary and row["_zero_one"]:
        low, high = stats.wilson_interval(round(total), n, confidence=options.confidence)
        return _finite(low), _finite(high), "wilson"
    values = row["_scores"]
    assert isinstance(values, list)
    low, high = stats.bootstrap_mean_ci(
        values, confidence=options.confidence, resamples=options.resamples, seed=options.seed
    )
    return _finite(low), _finite(high), "bootstrap"


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def comparison_by_segment(
    results: pl.LazyFrame,
    columns: Sequence[str],
    baseline: str,
    *,
    variants: Sequence[str],
    options: StatOptions = DEFAULT_OPTIONS,
) -> pl.DataFrame:
    """One row per segment column, segment and variant other than ``baseline``: the paired
    metrics of the rows of that segment (the baseline's row decides a pair's segment), with
    the row as the unit as in ``comparison.parquet``."""
    binary = scores_are_binary(results)
    head = {**SEGMENT_HEAD, "baseline": pl.String(), "variant": pl.String()}
    rows = []
    for column in columns:
        lf = with_segment(results, column)
        for variant in variants:
            if variant == baseline:
                continue
            pairs = _pairs(lf, baseline, variant)
            for (segment,), group in sorted(pairs.group_by("segment"), key=lambda g: str(g[0][0])):
                metrics = paired_metrics(group, binary, options)
                rows.append(
                    {
                        "segment_column": column,
                        "segment": segment,
                        "baseline": baseline,
                        "variant": variant,
                        **metrics,
                    }
                )
    return metrics_frame(rows, head)


def _pairs(lf: pl.LazyFrame, baseline: str, variant: str) -> pl.DataFrame:
    return paired(lf, lf, baseline, variant, ("segment",))
