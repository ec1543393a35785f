"""What a terminal shows of a run's reports: the compact per-variant table (rich)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import polars as pl
from rich.table import Table

#: Error types shown per variant, and how much of each example message.
CONSOLE_ERRORS: Final = 3
CONSOLE_MESSAGE_CHARS: Final = 80


def summary_table(summary: pl.DataFrame, *, title: str | None = None) -> Table:
    """The compact per-variant table printed at the end of a run, with the top error types."""
    table = Table(title=title)
    heads = ("variant", "rows", "errors", "p50 ms", "p95 ms", "tokens", "score [95 % CI]")
    for head in heads:
        table.add_column(head, justify="left" if head == "variant" else "right")
    table.add_column("top errors", justify="left", overflow="fold")
    for row in summary.iter_rows(named=True):
        table.add_row(
            row["variant"],
            str(row["rows"]),
            f"{row['errors']} ({row['error_rate'] * 100:.1f} %)",
            _num(row["latency_p50_ms"], ".0f"),
            _num(row["latency_p95_ms"], ".0f"),
            _num(row["tokens_mean"], ".0f"),
            _score_cell(row),
            "\n".join(
                error_line(e, CONSOLE_MESSAGE_CHARS)
                for e in (row["errors_by_type"] or [])[:CONSOLE_ERRORS]
            )
            or "–",
        )
    return table


def error_line(error: Mapping[str, Any], max_chars: int | None = None) -> str:
    """``http_404 ×300 (HTTP 404): Deployment not found`` from one ``errors_by_type`` entry."""
    text = f"{error['error_type']} ×{error['count']:,}"
    if error.get("http_status") is not None:
        text += f" (HTTP {error['http_status']})"
    example = error.get("example")
    if example:
        if max_chars is not None and len(example) > max_chars:
            example = example[: max_chars - 1] + "…"
        text += f": {example}"
    return text


def _num(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _score_cell(row: Mapping[str, Any]) -> str:
    if row["score_mean"] is None:
        text = "–"
    else:
        text = f"{row['score_mean'] * 100:.1f}"
        if row["score_ci_low"] is not None:
            text += f" [{row['score_ci_low'] * 100:.1f}, {row['score_ci_high'] * 100:.1f}]"
    if row.get("score_errors"):
        text += f"\n{row['score_errors']} scorer errors"
    return text
