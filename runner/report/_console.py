"""What a terminal shows of a run's reports: the compact per-variant table (rich), its error
lines and the pairwise judge's verdict in words.

The table fits 80 columns (the width rich assumes when the output is piped): variant names
and numbers are never cut; a score's interval goes on a second line of its cell, and the top
errors are printed under the table rather than in a column of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import polars as pl
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from runner.stats import position_bias_warning
from runner.terminal import terminal_safe

#: Error types shown per variant, and how much of each example message.
CONSOLE_ERRORS: Final = 3
CONSOLE_MESSAGE_CHARS: Final = 80


def _judge_cell(row: dict[str, Any]) -> str:
    mean, agreement = row.get("judge_score_mean"), row.get("judge_agreement")
    top = "–" if mean is None else f"{mean * 100:.1f}"
    return f"{top}\n{'–' if agreement is None else f'{agreement * 100:.0f} %'}"


def summary_table(summary: pl.DataFrame, *, title: str | None = None) -> Group:
    """The compact per-variant table printed at the end of a run, then the top error types.

    Every number column is as wide as its widest cell, so numbers are never cut; the variant
    column takes the rest, and a name too long for it wraps onto a second line instead of
    being cut."""
    heads: tuple[str, ...] = ("calls", "errors", "p50 ms", "p95 ms", "tokens", "score\n[95 % CI]")
    judged = (
        "judge_score_mean" in summary.columns and summary["judge_score_mean"].is_not_null().any()
    )
    if judged:  # a judge beside a deterministic score: its mean, and how often they agree
        heads += ("judge\nagrees",)
    cells: list[tuple[str, ...]] = []
    errors: list[str] = []
    for row in summary.iter_rows(named=True):
        cells.append(
            (
                f"{row['rows']:,}",
                f"{row['errors']:,} ({row['error_rate'] * 100:.1f} %)",
                _num(row["latency_p50_ms"], ",.0f"),
                _num(row["latency_p95_ms"], ",.0f"),
                _num(row["tokens_mean"], ",.0f"),
                _score_cell(row),
                *((_judge_cell(row),) if judged else ()),
            )
        )
        for e in (row["errors_by_type"] or [])[:CONSOLE_ERRORS]:
            errors.append(f"{row['variant']}: {error_line(e, CONSOLE_MESSAGE_CHARS)}")
    # SIMPLE_HEAD draws a blank divider between columns: with one space of padding on the
    # left only, columns sit two spaces apart.
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 0, 0, 1),
        title_justify="left",
    )
    table.add_column("variant", overflow="fold", min_width=7)
    for i, head in enumerate(heads):
        widest = max(
            len(line) for text in (head, *(c[i] for c in cells)) for line in text.split("\n")
        )
        table.add_column(head, justify="right", no_wrap=True, min_width=widest)
    for row, numbers in zip(summary.iter_rows(named=True), cells, strict=True):
        table.add_row(row["variant"], *numbers)
    lines = [Text(line, overflow="fold") for line in errors]
    return Group(table, *([Text("top errors:"), *lines] if lines else []))


def error_line(error: Mapping[str, Any], max_chars: int | None = None) -> str:
    """``http_404 ×300 (HTTP 404): Deployment not found`` from one ``errors_by_type`` entry.
    The example is the server's text: its control characters are removed (:func:`terminal_safe`)."""
    text = f"{terminal_safe(str(error['error_type']))} ×{error['count']:,}"
    if error.get("http_status") is not None:
        text += f" (HTTP {error['http_status']})"
    example = terminal_safe(error.get("example") or "")
    if example:
        if max_chars is not None and len(example) > max_chars:
            example = example[: max_chars - 1] + "…"
        text += f": {example}"
    return text


def pairwise_sentence(row: Mapping[str, Any], alpha: float = 0.05) -> str:
    """The pairwise judge's verdict on one compared variant, in words then numbers, e.g.

    ``pairwise judge prefers candidate: 34 wins, 10 losses, 6 ties in 50 rows; win rate
    74.0 % (95 % CI 60.4–84.1), sign test p < 0.001; consistent in both orders in 92.0 %``

    Empty when no pairwise judge ran. The preference is named only when the sign test rejects
    at ``alpha``."""
    pairs = row.get("pairwise_pairs")
    if not pairs:
        return ""
    wins, losses, ties = row["pairwise_wins"], row["pairwise_losses"], row["pairwise_ties"]
    p = row.get("pairwise_p_value")
    if p is not None and p < alpha and wins != losses:
        word = f"prefers {row['variant'] if wins > losses else row.get('baseline', 'the baseline')}"
    else:
        word = "finds no clear preference"
    # rows: with --repeat a row's verdicts count once (runner.stats.pairwise_metrics)
    text = f"pairwise judge {word}: {wins} wins, {losses} losses, {ties} ties in {pairs} rows"
    if row.get("pairwise_win_rate") is not None:
        text += f"; win rate {row['pairwise_win_rate'] * 100:.1f} %"
        low, high = row.get("pairwise_win_rate_ci_low"), row.get("pairwise_win_rate_ci_high")
        if low is not None and high is not None:
            text += f" (95 % CI {low * 100:.1f}–{high * 100:.1f})"
    if p is not None:
        text += ", sign test " + ("p < 0.001" if p < 0.001 else f"p = {p:.3f}")
    if row.get("pairwise_unread"):
        text += f"; {row['pairwise_unread']} pairs left out (no verdict read)"
    consistency = row.get("judge_position_consistency")
    if consistency is not None:
        text += f"; consistent in both orders in {consistency * 100:.1f} %"
    warning = position_bias_warning(consistency)
    if warning is not None:
        text += f". Warning: {warning}"
    return text


def _num(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _score_cell(row: Mapping[str, Any]) -> str:
    if row["score_mean"] is None:
        text = "–"
    else:
        text = f"{row['score_mean'] * 100:.1f}"
        if row["score_ci_low"] is not None:
            text += f"\n[{row['score_ci_low'] * 100:.1f}, {row['score_ci_high'] * 100:.1f}]"
    if row.get("score_errors"):
        text += f"\n{row['score_errors']} scorer errors"
    return text
