"""One row per variant (``summary.parquet``): counts, errors, retries, latency, tokens,
output length, score with its interval, and consistency across repeats.

Memory does not grow with the run: counts, sums and means are one streaming group-by over
per-row columns; each quantile is taken from one column of one variant at a time (a
group-by quantile holds every column it names); outputs are measured, or compared by hash,
inside the scan, never collected. A variant's score interval describes one arm and gives no
verdict.

Counts (``rows``, ``ok``, ``scored`` …) and latency quantiles describe calls. The score is
a statistic of rows: with ``--repeat`` a row's score is the mean of its scored repeats, and
``score_mean`` and its interval are over rows, so repeats never narrow it. The interval is
Wilson when every row's score is 0 or 1 (0/1 scores, and repeats that agree), a bootstrap
over per-row means otherwise. What repeats add is ``consistency_rate``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import polars as pl

from runner.records import STATUS_ERROR
from runner.stats import _stats as stats
from runner.stats._frames import (
    DEFAULT_OPTIONS,
    ENGINE,
    OK,
    Results,
    StatOptions,
    column_of,
    lazy_results,
    nan_to_none,
    output_hash,
    scores_are_binary,
    variant_order,
)
from runner.stats._paired import is_repeated

LATENCY_QUANTILES: Final = (0.5, 0.9, 0.95, 0.99)

TOP_ERRORS: Final = 5
"""Error types kept per variant in ``summary.parquet``, most frequent first."""
EXAMPLE_CHARS: Final = 200
"""An example error message is cut to this many characters."""

ERROR_FIELDS: Final = pl.Struct(
    {"error_type": pl.String, "count": pl.Int64, "http_status": pl.Int32, "example": pl.String}
)
"""One error type of one variant: how often, its most frequent HTTP status, one message."""
_ERRORS_BY_TYPE: Final = pl.List(ERROR_FIELDS)

SUMMARY_COLUMNS: Final = (
    "variant", "rows", "ok", "errors", "error_rate", "errors_by_type", "retries",
    "latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms",
    "total_p50_ms", "total_p95_ms", "ttft_p50_ms", "ttft_p95_ms", "tokens_mean", "tokens_total",
    "output_chars_mean",
    "scored", "score_errors", "score_mean", "score_ci_low", "score_ci_high", "score_ci_method",
    "consistency_rows", "consistency_rate",
)  # fmt: skip

#: (column, quantiles, ok calls only, name prefix) of the quantiles in the summary. The whole
#: call (``total_ms``, every attempt and backoff) counts for every call; the last attempt's
#: latency and the time to first token for ok calls.
_QUANTILES: Final = (
    ("latency_ms", LATENCY_QUANTILES, True, "latency"),
    ("total_ms", (0.5, 0.95), False, "total"),
    ("ttft_ms", (0.5, 0.95), True, "ttft"),
)


def summarize(
    results: Results,
    *,
    variants: Sequence[str] | None = None,
    options: StatOptions = DEFAULT_OPTIONS,
) -> pl.DataFrame:
    """One row per variant: counts, errors, retries, latency, tokens, score and consistency."""
    lf = lazy_results(results)
    order = variant_order(results, variants)
    repeated = is_repeated(lf)
    frame = (
        pl.DataFrame({"variant": order}, schema={"variant": pl.String})
        .lazy()
        .join(_counts(lf), on="variant", how="left", maintain_order="left")
        .join(_quantiles(lf, order), on="variant", how="left", maintain_order="left")
        .join(_errors_by_type(lf), on="variant", how="left", maintain_order="left")
        .join(_consistency(lf, repeated), on="variant", how="left", maintain_order="left")
        .with_columns(
            (pl.col("errors") / pl.col("rows")).alias("error_rate"),
            pl.col("errors_by_type").fill_null(pl.lit([], dtype=_ERRORS_BY_TYPE)),
        )
        .collect(engine=ENGINE)
    )
    binary = scores_are_binary(lf)
    frame = frame.with_columns(**_score_intervals(lf, frame, options, binary, repeated))
    return frame.select(SUMMARY_COLUMNS)


def _counts(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Counts, sums and means per variant, collected: one streaming pass over per-row values
    (an ok-only value is null on other rows, which every aggregation here skips)."""
    per_row = lf.select(
        "variant",
        OK.alias("_ok"),
        (pl.col("status") == STATUS_ERROR).alias("_error"),
        (pl.col("attempts") - 1).clip(lower_bound=0).alias("_retries"),
        pl.when(OK).then(pl.col("latency_ms")).alias("_latency"),
        pl.when(OK).then(pl.col("total_tokens")).alias("_tokens"),
        pl.when(OK).then(pl.col("output").str.len_chars()).alias("_chars"),
        "score",
        "score_error",
    )
    counts = (
        per_row.group_by("variant")
        .agg(
            pl.len().cast(pl.Int64).alias("rows"),
            pl.col("_ok").sum().cast(pl.Int64).alias("ok"),
            pl.col("_error").sum().cast(pl.Int64).alias("errors"),
            pl.col("_retries").sum().cast(pl.Int64).alias("retries"),
            pl.col("_latency").mean().alias("latency_mean_ms"),
            pl.col("_tokens").mean().alias("tokens_mean"),
            pl.col("_tokens").sum().cast(pl.Int64).alias("tokens_total"),
            pl.col("_tokens").count().alias("_tokens_n"),
            pl.col("_chars").mean().alias("output_chars_mean"),
            pl.col("score").count().cast(pl.Int64).alias("scored"),
            pl.col("score_error").count().cast(pl.Int64).alias("score_errors"),
            pl.col("score").mean().alias("score_mean"),
        )
        .collect(engine=ENGINE)
    )
    # A sum over no tokens at all is unknown, not zero.
    tokens_total = pl.when(pl.col("_tokens_n") > 0).then(pl.col("tokens_total"))
    return counts.lazy().with_columns(tokens_total.alias("tokens_total")).drop("_tokens_n")


def _quantiles(lf: pl.LazyFrame, order: Sequence[str]) -> pl.LazyFrame:
    """The latency quantiles of each variant, one column of one variant in memory at a time."""
    rows: dict[str, list[object]] = {"variant": list(order)}
    for column, quantiles, ok_only, prefix in _QUANTILES:
        for q in quantiles:
            rows[f"{prefix}_p{round(q * 100)}_ms"] = []
        for variant in order:
            values = column_of(lf, variant, column, ok_only=ok_only)
            for q in quantiles:
                rows[f"{prefix}_p{round(q * 100)}_ms"].append(values.quantile(q, "linear"))
            del values
    schema = {name: pl.Float64 for name in rows} | {"variant": pl.String}
    return pl.DataFrame(rows, schema=schema).lazy()


def _errors_by_type(lf: pl.LazyFrame) -> pl.LazyFrame:
    """The :data:`TOP_ERRORS` most frequent error types per variant, each with an example."""
    message = pl.col("error_message").drop_nulls()
    counts = (
        lf.filter(pl.col("status") == STATUS_ERROR)
        .group_by("variant", pl.col("error_type").fill_null("unknown"))
        .agg(
            pl.len().cast(pl.Int64).alias("count"),
            pl.col("http_status").drop_nulls().mode().sort().first().cast(pl.Int32),
            message.first().str.slice(0, EXAMPLE_CHARS).alias("example"),
        )
        .sort(["count", "error_type"], descending=[True, False])
    )
    return counts.group_by("variant", maintain_order=True).agg(
        pl.struct("error_type", "count", "http_status", "example")
        .head(TOP_ERRORS)
        .alias("errors_by_type")
    )


def _consistency(lf: pl.LazyFrame, repeated: bool) -> pl.LazyFrame:
    """Among rows with two or more ok repeats, the share whose outputs are all identical
    (compared by hash: the texts are never held)."""
    # Without --repeat there is nothing to agree; the filter skips a group-by over every row.
    per_row = (
        lf.filter(OK & repeated)
        .group_by("variant", "row_id")
        .agg(pl.len().alias("n"), output_hash().n_unique().alias("distinct"))
        .filter(pl.col("n") >= 2)
    )
    return per_row.group_by("variant").agg(
        pl.len().cast(pl.Int64).alias("consistency_rows"),
        (pl.col("distinct") == 1).mean().alias("consistency_rate"),
    )


def _score_intervals(
    lf: pl.LazyFrame, frame: pl.DataFrame, options: StatOptions, binary: bool, repeated: bool
) -> dict[str, pl.Series]:
    """Per variant, the mean score over rows and its interval over rows."""
    means: list[float | None] = []
    lows: list[float | None] = []
    highs: list[float | None] = []
    methods: list[str | None] = []
    for variant, scored in frame.select("variant", "scored").iter_rows():
        mean, low, high, method = math.nan, math.nan, math.nan, None
        if scored:
            mean, low, high, method = _row_score_interval(lf, variant, options, binary, repeated)
        means.append(nan_to_none(mean))
        lows.append(nan_to_none(low))
        highs.append(nan_to_none(high))
        methods.append(method)
    return {
        "score_mean": pl.Series(means, dtype=pl.Float64),
        "score_ci_low": pl.Series(lows, dtype=pl.Float64),
        "score_ci_high": pl.Series(highs, dtype=pl.Float64),
        "score_ci_method": pl.Series(methods, dtype=pl.String),
    }


def row_scores(lf: pl.LazyFrame, variant: str, *, repeated: bool) -> pl.LazyFrame:
    """One ``score`` per scored row of ``variant``: the mean of its scored repeats (without
    repeats, its one call's score; no group-by)."""
    calls = lf.filter(pl.col("variant") == variant)
    if repeated:
        calls = calls.group_by("row_id").agg(pl.col("score").mean())
    return calls.select(pl.col("score").drop_nulls())


def _row_score_interval(
    lf: pl.LazyFrame, variant: str, options: StatOptions, binary: bool, repeated: bool
) -> tuple[float, float, float, str]:
    """The mean of a variant's per-row scores and its interval: Wilson over rows when every
    row is 0 or 1, else a bootstrap over the per-row means (collected only then)."""
    scores = row_scores(lf, variant, repeated=repeated)
    score = pl.col("score")
    n, total, zero_one = (
        scores.select(
            score.len().alias("n"),
            score.sum().alias("total"),
            score.is_in([0.0, 1.0]).all().alias("zero_one"),
        )
        .collect(engine=ENGINE)
        .row(0)
    )
    if binary and zero_one:
        successes = round(total)
        low, high = stats.wilson_interval(successes, n, confidence=options.confidence)
        return successes / n, low, high, "wilson"
    values = scores.collect(engine=ENGINE).to_series().to_numpy()
    low, high = stats.bootstrap_mean_ci(
        values, confidence=options.confidence, resamples=options.resamples, seed=options.seed
    )
    return float(values.mean()), low, high, "bootstrap"


def latency_boxes(results: Results, variants: Sequence[str] | None = None) -> pl.DataFrame:
    """Per variant, the five numbers of a latency box plot (ok calls), whiskers at p5 and
    p95, and the mean: one variant's latencies in memory at a time."""
    lf = lazy_results(results)
    quantiles = {"p5": 0.05, "q1": 0.25, "median": 0.5, "q3": 0.75, "p95": 0.95}
    rows = []
    for variant in variant_order(lf, variants):
        values = column_of(lf, variant, "latency_ms", ok_only=True)
        row: dict[str, object] = {"variant": variant}
        row |= {name: values.quantile(q, "linear") for name, q in quantiles.items()}
        rows.append(row | {"mean": values.mean()})
    schema = {"variant": pl.String, **dict.fromkeys([*quantiles, "mean"], pl.Float64)}
    return pl.DataFrame(rows, schema=schema, orient="row")
