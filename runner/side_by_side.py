"""One row per row with every variant's answer (``side_by_side.parquet``), flagged and
ordered: regressions first, then improvements, then other changes.

:func:`side_by_side_flagged` and :func:`in_side_by_side_order` are the two halves the
reports stream to disk (:mod:`runner.report`); :func:`side_by_side` collects both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import polars as pl

from runner.errors import ConfigError
from runner.records import STATUS_ERROR
from runner.result_frames import ENGINE, PAIR_KEYS, Results, lazy_results, variant_order


def side_by_side(
    results: Results, baseline: str, *, variants: Sequence[str] | None = None
) -> pl.DataFrame:
    """One row per ``(row_id, repeat)`` with every variant's output, status, score and latency.

    Columns ``output_<variant>``, ``status_<variant>``, ``score_<variant>`` and
    ``latency_ms_<variant>`` follow ``inputs`` and ``expected``. ``changed`` is set when any
    variant's output or status differs from the baseline's; ``regression`` when a variant
    scored below the baseline or errored where the baseline was scored; ``improvement`` the
    other way round. Regressions come first, then improvements, then other changes, each in
    the order of the results.
    """
    flagged = side_by_side_flagged(results, baseline, variants=variants).collect(engine=ENGINE)
    return in_side_by_side_order(flagged.lazy()).collect(engine=ENGINE)


SIDE_BY_SIDE_RANK: Final = "_rank"
"""A helper column of :func:`side_by_side_flagged`: 0 for the rows shown first, 7 last."""


def side_by_side_flagged(
    results: Results, baseline: str, *, variants: Sequence[str] | None = None
) -> pl.LazyFrame:
    """The rows of :func:`side_by_side` in the order of the results, with their flags and a
    :data:`SIDE_BY_SIDE_RANK` column; :func:`in_side_by_side_order` puts them in order."""
    lf = lazy_results(results)
    order = variant_order(results, variants)
    if baseline not in order:
        raise ConfigError(f"baseline variant {baseline!r} is not in the results ({order})")
    frame = lf.select(*PAIR_KEYS, "inputs", "expected").unique(
        PAIR_KEYS, keep="first", maintain_order=True
    )
    fields = ("output", "status", "score", "latency_ms")
    for v in order:
        arm = lf.filter(pl.col("variant") == v).select(
            *PAIR_KEYS, *[pl.col(f).alias(f"{f}_{v}") for f in fields]
        )
        frame = frame.join(arm, on=PAIR_KEYS, how="left", maintain_order="left")
    candidates = [v for v in order if v != baseline] or [baseline]
    flags = {
        "changed": pl.any_horizontal(_changed(baseline, v) for v in candidates),
        "regression": pl.any_horizontal(_worse(baseline, v) for v in candidates),
        "improvement": pl.any_horizontal(_worse(v, baseline) for v in candidates),
    }
    flagged = frame.with_columns(**{k: e.fill_null(False) for k, e in flags.items()})
    rank = (
        (~pl.col("regression")).cast(pl.Int8) * 4
        + (~pl.col("improvement")).cast(pl.Int8) * 2
        + (~pl.col("changed")).cast(pl.Int8)
    )
    return flagged.with_columns(rank.alias(SIDE_BY_SIDE_RANK))


def in_side_by_side_order(flagged: pl.LazyFrame) -> pl.LazyFrame:
    """Regressions first, then improvements, then other changes, each in the results' order.

    Eight order-keeping filtered passes instead of a sort: over a file on disk each pass
    streams, so no pass holds the table (a sort would)."""
    rank = pl.col(SIDE_BY_SIDE_RANK)
    parts = [flagged.filter(rank == r) for r in range(8)]
    return pl.concat(parts, how="vertical").drop(SIDE_BY_SIDE_RANK)


def _changed(baseline: str, variant: str) -> pl.Expr:
    return pl.col(f"output_{variant}").ne_missing(pl.col(f"output_{baseline}")) | pl.col(
        f"status_{variant}"
    ).ne_missing(pl.col(f"status_{baseline}"))


def _worse(reference: str, variant: str) -> pl.Expr:
    """``variant`` did worse than ``reference`` on this row."""
    ref_score, score = pl.col(f"score_{reference}"), pl.col(f"score_{variant}")
    errored = pl.col(f"status_{variant}") == STATUS_ERROR
    return ref_score.is_not_null() & (errored | (score < ref_score)).fill_null(False)
