"""The compact per-variant table printed at the end of every run."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from runner.records import STATUS_ERROR, STATUS_OK
from runner.results import RESULTS


def variant_summary(results: pl.LazyFrame) -> pl.DataFrame:
    """Rows, errors, retries and latency percentiles per variant (ok rows for latency)."""
    ok_latency = pl.col("latency_ms").filter(pl.col("status") == STATUS_OK)
    return (
        results.group_by("variant", maintain_order=True)
        .agg(
            pl.len().alias("rows"),
            (pl.col("status") == STATUS_OK).sum().alias("ok"),
            (pl.col("status") == STATUS_ERROR).sum().alias("errors"),
            (pl.col("attempts") - 1).clip(lower_bound=0).sum().alias("retries"),
            ok_latency.quantile(0.5, "linear").alias("p50_ms"),
            ok_latency.quantile(0.95, "linear").alias("p95_ms"),
        )
        .collect()
    )


def print_summary(out_dir: Path, console: Console | None = None) -> None:
    frame = variant_summary(pl.scan_parquet(out_dir / RESULTS))
    table = Table(title=f"results in {out_dir}")
    for name in ("variant", "rows", "ok", "errors", "retries", "p50 ms", "p95 ms"):
        table.add_column(name, justify="left" if name == "variant" else "right")
    for row in frame.iter_rows(named=True):
        table.add_row(
            row["variant"], str(row["rows"]), str(row["ok"]), str(row["errors"]),
            str(row["retries"]), _ms(row["p50_ms"]), _ms(row["p95_ms"]),
        )  # fmt: skip
    (console or Console()).print(table)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
