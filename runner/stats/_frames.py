"""The results table as the report queries see it: a lazy scan on polars' streaming engine.

Shared by :mod:`runner.stats._summary`, :mod:`runner.stats._paired`,
:mod:`runner.stats._side_by_side` and
:mod:`runner.stats._segments` (all re-exported by :mod:`runner.stats._compare`): the engine, the
keys that
pair two variants' calls, the variants present, whether scores are binary, and the options of
the statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import polars as pl

from runner.errors import ConfigError
from runner.records import STATUS_OK
from runner.stats import _stats as stats

Results = pl.DataFrame | pl.LazyFrame
GradedTest = Literal["t", "wilcoxon"]

PAIR_KEYS: Final = ("row_id", "repeat")
OK: Final = pl.col("status") == STATUS_OK
OUTPUT_HASH_SEED: Final = 5
"""Outputs are compared by a 64-bit hash of their text, so no query holds the texts."""

#: The polars engine of every query here: streaming, so a scan of results.parquet is read in
#: pieces and only the columns a query names are loaded.
ENGINE: Final = "streaming"


@dataclass(frozen=True, slots=True)
class StatOptions:
    """How intervals and tests are computed; the defaults are what reports use."""

    confidence: float = 0.95
    resamples: int = stats.DEFAULT_RESAMPLES
    seed: int = stats.DEFAULT_SEED
    graded_test: GradedTest = "t"


DEFAULT_OPTIONS: Final = StatOptions()


def lazy_results(results: Results) -> pl.LazyFrame:
    """``results`` as a LazyFrame that has ``score`` and ``score_error`` columns (null when
    the results carry none)."""
    lf = results.lazy()
    names = lf.collect_schema().names()
    if "score" not in names:
        lf = lf.with_columns(pl.lit(None, dtype=pl.Float64).alias("score"))
    if "score_error" not in names:
        lf = lf.with_columns(pl.lit(None, dtype=pl.String).alias("score_error"))
    return lf


def variants_of(results: Results) -> list[str]:
    """The variants in ``results``, in order of first appearance."""
    col = (
        results.lazy().select(pl.col("variant").unique(maintain_order=True)).collect(engine=ENGINE)
    )
    return [str(v) for v in col["variant"]]


def variant_order(results: Results, variants: Sequence[str] | None) -> list[str]:
    """The variants to report, in order: those of ``variants`` (a run's ``--variant`` order)
    found in ``results``, then any other variant of ``results`` in order of appearance; with
    ``variants`` None, the variants of ``results`` in order of appearance."""
    present = variants_of(results)
    if variants is None:
        return present
    given = list(dict.fromkeys(variants))
    return [v for v in given if v in present] + [v for v in present if v not in given]


def baseline_of(baseline: str | None, variants: Sequence[str]) -> str:
    """``baseline`` checked against ``variants``, or the first variant when it is None."""
    if not variants:
        raise ConfigError("the results hold no rows: nothing to report")
    if baseline is None:
        return variants[0]
    if baseline not in variants:
        raise ConfigError(
            f"--baseline-variant {baseline!r} is not in the results; "
            f"variants: {', '.join(variants)}"
        )
    return baseline


def scores_are_binary(results: Results) -> bool:
    """True when there are scores and every one of them is 0 or 1."""
    score = pl.col("score").drop_nulls()
    row = (
        lazy_results(results)
        .select(score.len().alias("n"), score.is_in([0.0, 1.0]).all().alias("binary"))
        .collect(engine=ENGINE)
    )
    return bool(row["n"][0] > 0 and row["binary"][0])


def output_hash() -> pl.Expr:
    """The output as a 64-bit hash: equal outputs, equal hashes."""
    return pl.col("output").hash(seed=OUTPUT_HASH_SEED)


def column_of(lf: pl.LazyFrame, variant: str, column: str, *, ok_only: bool) -> pl.Series:
    """One column of one variant's calls (of its ok calls with ``ok_only``), nulls dropped.

    A query per variant and column: a group-by quantile over every variant held all the
    columns it named whole (0.2 GB per column at 2 M rows); one column of one variant is 8 MB.
    """
    keep = pl.col("variant") == variant
    values = lf.filter(keep & OK if ok_only else keep).select(pl.col(column).drop_nulls())
    return values.collect(engine=ENGINE).to_series()


def nan_to_none(value: float | None) -> float | None:
    """``None`` for a missing or NaN value, else the value as a float."""
    return None if value is None or math.isnan(value) else float(value)
