"""The tables of ``report.html``: variants, comparison, errors and segments, with human
labels and units. Every value from the results is HTML-escaped."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any, Final

import polars as pl

from runner.report._console import error_line
from runner.stats import position_bias_warning

MAX_CELL_CHARS: Final = 600
"""A table cell or an output is cut after this many characters."""


def code(value: object) -> str:
    return f"<code>{escape(str(value))}</code>"


def notes_list(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    return '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>"


def plain(value: object) -> str:
    """A provenance value as text: ``–`` for none, a list joined by commas."""
    if value is None:
        return "–"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


Formatter = Callable[[Any], str]
Column = tuple[str, Callable[[Mapping[str, Any]], str | None]]


def _number(spec: str, *, scale: float = 1.0, unit: str = "") -> Formatter:
    """A formatter of numbers: ``value * scale`` in the format ``spec``, then ``unit``."""

    def format_number(value: float) -> str:
        return f"{value * scale:{spec}}{unit}"

    return format_number


pct = _number(".1f", scale=100, unit=" %")
_points = _number("+.1f", scale=100, unit=" pts")
_signed_points = _number("+.1f", scale=100)
_ms = _number(",.1f")
_signed = _number("+,.0f")
_signed1 = _number("+,.1f")


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _human_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """One row per variant; a column that has no value in any row is left out."""
    cells = [[get(r) for _, get in columns] for r in rows]
    keep = [i for i in range(len(columns)) if any(c[i] is not None for c in cells)]
    head = "".join(
        f"<th{'' if i == 0 else ' class=num'}>{escape(columns[i][0])}</th>" for i in keep
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(c[i] or '–')}</td>"
            if i == 0
            else f'<td class="num">{escape(c[i] or "–")}</td>'
            for i in keep
        )
        + "</tr>"
        for c in cells
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _opt(value: Any, fmt: Formatter) -> str | None:
    return None if value is None else fmt(value)


def variants_table(rows: Sequence[Mapping[str, Any]], label: str) -> str:
    columns: list[Column] = [
        ("Variant", lambda r: str(r["variant"])),
        ("Calls", lambda r: f"{int(r['rows']):,}"),
        ("Errors", lambda r: f"{int(r['errors']):,} ({pct(r['error_rate'])})"),
        ("Retries", lambda r: _opt(r.get("retries"), lambda v: f"{int(v):,}")),
        ("Latency p50, ms", lambda r: _opt(r.get("latency_p50_ms"), lambda v: f"{v:,.0f}")),
        ("Latency p95, ms", lambda r: _opt(r.get("latency_p95_ms"), lambda v: f"{v:,.0f}")),
        ("First token p50, ms", lambda r: _opt(r.get("ttft_p50_ms"), lambda v: f"{v:,.0f}")),
        ("Tokens per call", lambda r: _opt(r.get("tokens_mean"), lambda v: f"{v:,.0f}")),
        (f"{label}, % [95 % CI]", lambda r: None if r.get("score_mean") is None else score_ci(r)),
        ("Scorer errors", lambda r: _opt(r.get("score_errors") or None, lambda v: f"{v:,}")),
        ("Judge score, %", lambda r: _opt(r.get("judge_score_mean"), pct)),
        ("Judge errors", lambda r: _opt(r.get("judge_errors") or None, lambda v: f"{v:,}")),
        ("Judge agrees with score", lambda r: _opt(r.get("judge_agreement"), pct)),
        ("Same answer on repeat", lambda r: _opt(r.get("consistency_rate"), pct)),
    ]
    return _human_table(rows, columns)


def comparison_table(rows: Sequence[Mapping[str, Any]], label: str) -> str:
    def score(r: Mapping[str, Any]) -> str | None:
        if r.get("score_diff") is None:
            return None
        text = f"{r['score_diff'] * 100:+.1f}"
        if r.get("score_diff_ci_low") is not None and r.get("score_diff_ci_high") is not None:
            text += f" [{r['score_diff_ci_low'] * 100:+.1f}, {r['score_diff_ci_high'] * 100:+.1f}]"
        return text

    def win_rate(r: Mapping[str, Any]) -> str | None:
        if r.get("pairwise_win_rate") is None:
            return None
        text = pct(r["pairwise_win_rate"])
        if r.get("pairwise_win_rate_ci_low") is not None:
            text += (
                f" [{r['pairwise_win_rate_ci_low'] * 100:.1f}, "
                f"{r['pairwise_win_rate_ci_high'] * 100:.1f}]"
            )
        return text

    columns: list[Column] = [
        ("Variant", lambda r: str(r["variant"])),
        ("Pairs", lambda r: _opt(r.get("pairs"), lambda v: f"{v:,}")),
        ("Identical outputs", lambda r: _opt(r.get("identical_share"), pct)),
        (f"{label}: base → variant, %", lambda r: None if r.get("baseline_score") is None
         else f"{r['baseline_score'] * 100:.1f} → {r['candidate_score'] * 100:.1f}"),
        ("Δ score, points [95 % CI]", score),
        ("p (score)", lambda r: None if r.get("score_p_value") is None
         else f"{_p(r['score_p_value'])} ({_test(r.get('score_test'))})"),
        ("Δ error rate, points", lambda r: _opt(r.get("error_rate_diff"), _signed_points)),
        ("Δ p95 latency, ms", lambda r: _opt(r.get("latency_p95_diff_ms"), _signed)),
        ("Δ p95 latency, %", lambda r: _opt(r.get("p95_latency_increase_pct"), _signed1)),
        ("Δ tokens per call", lambda r: _opt(r.get("tokens_mean_diff"), _signed1)),
        ("Judge: wins / losses / ties", lambda r: None if r.get("pairwise_pairs") is None
         else f"{r['pairwise_wins']} / {r['pairwise_losses']} / {r['pairwise_ties']}"),
        ("Judge win rate [95 % CI]", win_rate),
        ("Judge consistent in both orders", _consistency),
        ("Judge: pairs left out unread", lambda r: _opt(r.get("pairwise_unread"), str)),
    ]  # fmt: skip
    return _human_table(rows, columns)


def _consistency(row: Mapping[str, Any]) -> str | None:
    """The judge's position consistency, with the warning when it prefers a position."""
    value = row.get("judge_position_consistency")
    if value is None:
        return None
    warning = position_bias_warning(value)
    return pct(value) + ("" if warning is None else f" ⚠ {warning}")


def _test(name: str | None) -> str:
    return {"mcnemar_exact": "McNemar", "paired_t": "paired t", "wilcoxon": "Wilcoxon"}.get(
        name or "", name or "no test"
    )


def errors(rows: Sequence[Mapping[str, Any]]) -> str:
    """Per variant, its most frequent error types with a count, HTTP status and an example."""
    lines = []
    for r in rows:
        for e in r.get("errors_by_type") or []:
            status = "" if e.get("http_status") is None else str(e["http_status"])
            lines.append(
                f"<tr><td>{escape(str(r['variant']))}</td><td><code>{escape(str(e['error_type']))}"
                f'</code></td><td class="num">{int(e["count"]):,}</td><td class="num">{status}</td>'
                f'<td class="text" title="{escape(error_line(e))}">'
                f"{escape(clip(e.get('example')) or '–')}</td></tr>"
            )
    return (
        "<table><thead><tr><th>Variant</th><th>Error type</th><th class=num>Calls</th>"
        "<th class=num>HTTP status</th><th>Example message</th></tr></thead><tbody>"
        + "".join(lines)
        + "</tbody></table>"
    )


def clip(text: str | None) -> str:
    if text is None:
        return ""
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + " …"


# ------------------------------------------------------------------------------ segments


def _score_with_ci(row: Mapping[str, Any], mean: str, low: str, high: str, fmt: Formatter) -> str:
    if row.get(mean) is None:
        return "–"
    text = fmt(row[mean])
    if row.get(low) is not None and row.get(high) is not None:
        text += f" [{fmt(row[low])}, {fmt(row[high])}]"
    return text


def _rows_table(heads: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in heads)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _maybe(value: Any, fmt: Formatter) -> str:
    return "–" if value is None else fmt(value)


def segment_summary(frame: pl.DataFrame) -> str:
    """Per segment and variant: calls, error rate, latency and the score with its interval."""
    heads = (
        "column",
        "segment",
        "variant",
        "calls",
        "error rate",
        "p50 ms",
        "p95 ms",
        "score [CI]",
    )
    rows = [
        (
            str(r["segment_column"]),
            str(r["segment"]),
            str(r["variant"]),
            f"{r['rows']:,}",
            _maybe(r["error_rate"], pct),
            _maybe(r["latency_p50_ms"], _ms),
            _maybe(r["latency_p95_ms"], _ms),
            _score_with_ci(r, "score_mean", "score_ci_low", "score_ci_high", pct),
        )
        for r in frame.iter_rows(named=True)
    ]
    return _rows_table(heads, rows)


def segment_comparison(frame: pl.DataFrame) -> str:
    """Per segment and variant: the score difference with its interval and p-value, the error
    rate difference and the p95 latency difference, against the baseline."""
    heads = ("column", "segment", "variant", "pairs", "score diff [CI]", "p", "error rate diff",
             "p95 latency diff ms")  # fmt: skip
    rows = [
        (
            str(r["segment_column"]),
            str(r["segment"]),
            str(r["variant"]),
            f"{r['pairs']:,}",
            _score_with_ci(r, "score_diff", "score_diff_ci_low", "score_diff_ci_high", _points),
            _maybe(r["score_p_value"], _p),
            _maybe(r["error_rate_diff"], _points),
            _maybe(r["latency_p95_diff_ms"], lambda v: f"{v:+,.1f}"),
        )
        for r in frame.iter_rows(named=True)
    ]
    return _rows_table(heads, rows)


def score_ci(row: Mapping[str, Any]) -> str:
    text = pct(row["score_mean"])
    if row.get("score_ci_low") is not None and row.get("score_ci_high") is not None:
        text += f" [95 % CI {row['score_ci_low'] * 100:.1f}–{row['score_ci_high'] * 100:.1f}]"
    return text
