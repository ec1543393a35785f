"""The error budget of a run: the share of error rows a variant may have for the run to pass.

Row errors are data (each is a result row with its error), but a nightly job or a backfill
whose rows mostly failed must not report success. :func:`check_error_budget` reads the
results and raises :class:`~runner.errors.ErrorBudgetExceeded` (exit 4) naming every variant
over ``max_error_rate`` with its error rate and its most frequent errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl

from runner.errors import ErrorBudgetExceeded
from runner.records import STATUS_ERROR

#: Most frequent errors named per variant, and the length an example message is cut to.
TOP_ERRORS: Final = 3
MESSAGE_CHARS: Final = 160


def error_rates(results: Path) -> pl.DataFrame:
    """Per variant: ``rows``, ``errors``, ``error_rate``, in order of first appearance."""
    return (
        pl.scan_parquet(results)
        .group_by("variant", maintain_order=True)
        .agg(
            pl.len().alias("rows"),
            (pl.col("status") == STATUS_ERROR).sum().alias("errors"),
        )
        .with_columns((pl.col("errors") / pl.col("rows")).alias("error_rate"))
        .collect()
    )


def top_errors(results: Path, variant: str, most: int = TOP_ERRORS) -> list[str]:
    """``http_404 ×300 (HTTP 404): Deployment not found``, most frequent first."""
    groups = (
        pl.scan_parquet(results)
        .filter((pl.col("variant") == variant) & (pl.col("status") == STATUS_ERROR))
        .group_by(pl.col("error_type").fill_null("unknown"))
        .agg(
            pl.len().alias("n"),
            pl.col("http_status").drop_nulls().first().alias("http_status"),
            pl.col("error_message").drop_nulls().first().alias("message"),
        )
        .sort(["n", "error_type"], descending=[True, False])
        .head(most)
        .collect()
    )
    lines = []
    for error_type, n, status, message in groups.iter_rows():
        http = f" (HTTP {status})" if status is not None else ""
        text = " ".join(str(message or "").split())
        if len(text) > MESSAGE_CHARS:
            text = text[: MESSAGE_CHARS - 1] + "…"
        lines.append(f"{error_type} ×{n}{http}: {text or 'no message'}")
    return lines


def check_error_budget(
    results: Path, max_error_rate: float, *, written: str = "every report is written"
) -> None:
    """Raise :class:`ErrorBudgetExceeded` when any variant's error rate is above the budget."""
    rates = error_rates(results).filter(pl.col("error_rate") > max_error_rate)
    if rates.height == 0:
        return
    lines = [
        f"{variant}: {errors} of {rows} calls ended in an error ({rate:.1%}, above "
        f"--max-error-rate {max_error_rate:g}); " + "; ".join(top_errors(results, variant))
        for variant, rows, errors, rate in rates.iter_rows()
    ]
    raise ErrorBudgetExceeded(
        f"the run completed, but with too many error rows ({written}):\n  " + "\n  ".join(lines)
    )
