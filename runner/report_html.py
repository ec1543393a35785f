"""The self-contained ``report.html``: verdicts, charts, tables and provenance in one file.

plotly.js is inlined once in ``<head>``, so the file opens offline and loads nothing from
the network; every figure only calls ``Plotly.newPlot``. All text from the results is
HTML-escaped: outputs are model text, and model text may contain markup.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any, Final

import plotly.graph_objects as go
import plotly.offline
import polars as pl

from runner.console import error_line

MAX_CHANGED_ROWS: Final = 200
"""Changed rows report.html shows (side_by_side.parquet has them all)."""
MAX_CELL_CHARS: Final = 600

_CSS: Final = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1d2330; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; }
.sub { color: #5b6475; }
.verdicts li { font-size: 1.05rem; margin: .3rem 0; }
.notes li { color: #8a5300; }
/* auto-fill, not auto-fit: each chart is drawn as its cell is parsed, and auto-fit would
   give the first cell the whole row while its siblings do not exist yet. */
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr));
          gap: 1rem; }
.charts > div { min-width: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: 13px; }
th, td { border: 1px solid #d8dce4; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #f2f4f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.text { white-space: pre-wrap; word-break: break-word; max-width: 420px; }
tr.regression { background: #fdecec; } tr.improvement { background: #eaf7ee; }
.tag { font-size: 11px; color: #5b6475; }
pre { background: #f6f7f9; padding: .6rem; overflow-x: auto; }
"""


def render_report(
    *,
    provenance: Mapping[str, Any],
    verdicts: Sequence[str],
    summary: pl.DataFrame,
    comparison: pl.DataFrame | None,
    changed_rows: pl.DataFrame | None,
    latency: pl.DataFrame,
    score_label: str,
    changed_total: int | None = None,
    notes: Sequence[str] = (),
    summary_by_segment: pl.DataFrame | None = None,
    comparison_by_segment: pl.DataFrame | None = None,
) -> str:
    """The whole report as one HTML document.

    Sections with nothing to say are left out: without ``comparison`` (one variant) there is
    no verdict, comparison or changed-rows section; with nothing scored, no score chart.
    ``changed_rows`` holds only the rows to show (regressions first); ``changed_total``
    says how many there are in all.
    """
    variants = [str(v) for v in provenance["variants"]]
    scored = summary.filter(pl.col("score_mean").is_not_null()).height > 0
    charts = [_figure_html(_latency_figure(latency), "chart-latency")]
    if scored:
        charts.append(_figure_html(_score_figure(summary, score_label), "chart-score"))
    charts.append(_figure_html(_errors_figure(summary), "chart-errors"))
    title = f"Evaluation report: {provenance.get('deployment') or 'run'}"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">run {_code(provenance.get("run_id"))} · baseline '
        f"{_code(provenance['baseline'])} · score: {escape(score_label)} · generated "
        f"{escape(str(provenance.get('generated_at')))}</p>",
    ]
    if comparison is not None:
        body += ["<h2>Verdict</h2>", _verdicts(verdicts)]
    body += [
        _notes(notes),
        '<h2>Charts</h2><div class="charts">' + "".join(charts) + "</div>",
        "<h2>Variants</h2>",
        _table(summary.drop("errors_by_type"), _SUMMARY_FORMATS),
        "<h2>Errors</h2>",
        _errors(summary),
    ]
    if comparison is not None:
        body += ["<h2>Against the baseline</h2>", _table(comparison, _COMPARISON_FORMATS)]
    if summary_by_segment is not None:
        body += ["<h2>By segment</h2>", _segment_summary(summary_by_segment)]
    if comparison_by_segment is not None:
        body += [
            "<h2>Against the baseline, by segment</h2>",
            _segment_comparison(comparison_by_segment),
        ]
    if changed_rows is not None:
        total = changed_rows.height if changed_total is None else changed_total
        body += ["<h2>Changed rows</h2>", _changed_rows(changed_rows, variants, total)]
    body += ["<h2>Provenance</h2>", _provenance(provenance)]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style>"
        f"<script>{plotly.offline.get_plotlyjs()}</script></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


# ------------------------------------------------------------------------------- charts


def _figure_html(fig: go.Figure, div_id: str) -> str:
    fig.update_layout(margin={"l": 50, "r": 20, "t": 50, "b": 40}, template="plotly_white")
    html: str = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        default_height="360px",
        config={"displaylogo": False, "responsive": True},
    )
    return f"<div>{html}</div>"


def _latency_figure(latency: pl.DataFrame) -> go.Figure:
    """Box plots from precomputed quantiles: a million rows become five numbers each."""
    fig = go.Figure()
    for row in latency.iter_rows(named=True):
        if row["median"] is None:
            continue
        fig.add_trace(
            go.Box(
                name=row["variant"],
                x=[row["variant"]],
                q1=[row["q1"]],
                median=[row["median"]],
                q3=[row["q3"]],
                lowerfence=[row["p5"]],
                upperfence=[row["p95"]],
                mean=[row["mean"]],
                boxpoints=False,
            )
        )
    fig.update_layout(
        title="Latency, ms",
        yaxis_title="ok calls: quartiles, whiskers p5–p95",
        showlegend=False,
    )
    return fig


def _score_figure(summary: pl.DataFrame, label: str) -> go.Figure:
    scored = summary.filter(pl.col("score_mean").is_not_null())
    mean = (scored["score_mean"] * 100).to_list()
    low = (scored["score_ci_low"] * 100).to_list()
    high = (scored["score_ci_high"] * 100).to_list()
    fig = go.Figure(
        go.Scatter(
            x=scored["variant"].to_list(),
            y=mean,
            mode="markers",
            marker={"size": 12},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [h - m for h, m in zip(high, mean, strict=True)],
                "arrayminus": [m - lo for m, lo in zip(mean, low, strict=True)],
            },
        )
    )
    title = f"{label}, %" if scored.height else f"{label}: nothing scored"
    fig.update_layout(title=title, yaxis={"rangemode": "tozero", "title": "mean, 95 % CI"})
    return fig


def _errors_figure(summary: pl.DataFrame) -> go.Figure:
    counts = (
        summary.select("variant", "errors_by_type")
        .explode("errors_by_type")
        .unnest("errors_by_type")
        .drop_nulls("error_type")
    )
    fig = go.Figure()
    variants = summary["variant"].to_list()
    for (error_type,), group in counts.group_by("error_type", maintain_order=True):
        by_variant = dict(zip(group["variant"], group["count"], strict=True))
        fig.add_trace(
            go.Bar(name=str(error_type), x=variants, y=[by_variant.get(v, 0) for v in variants])
        )
    if not counts.height:
        fig.add_trace(go.Bar(name="none", x=variants, y=[0] * len(variants)))
    fig.update_layout(
        title="Errors by type" if counts.height else "Errors: none",
        barmode="stack",
        yaxis_title="calls",
        showlegend=bool(counts.height),
    )
    return fig


# ------------------------------------------------------------------------------- tables


def _code(value: object) -> str:
    return f"<code>{escape(str(value))}</code>"


def _verdicts(verdicts: Sequence[str]) -> str:
    if not verdicts:
        return "<p>Only one variant: nothing to compare.</p>"
    return '<ul class="verdicts">' + "".join(f"<li>{escape(v)}</li>" for v in verdicts) + "</ul>"


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    return '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>"


def _errors(summary: pl.DataFrame) -> str:
    """Per variant, its most frequent error types with a count, HTTP status and example."""
    items = []
    for variant, errors in summary.select("variant", "errors_by_type").iter_rows():
        if not errors:
            continue
        lines = "".join(f"<li>{escape(error_line(e))}</li>" for e in errors)
        items.append(f'<h3>{escape(str(variant))}</h3><ul class="errors">{lines}</ul>')
    return "".join(items) or "<p>No call ended in an error.</p>"


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def _points(value: float) -> str:
    return f"{value * 100:+.1f} pts"


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _number(value: float) -> str:
    return f"{value:,.2f}"


Formatter = Callable[[Any], str]

_SUMMARY_FORMATS: Final[dict[str, Formatter]] = {
    "error_rate": _pct,
    "score_mean": _pct,
    "score_ci_low": _pct,
    "score_ci_high": _pct,
    "consistency_rate": _pct,
}
_COMPARISON_FORMATS: Final[dict[str, Formatter]] = {
    "identical_share": _pct,
    "baseline_score": _pct,
    "candidate_score": _pct,
    "score_diff": _points,
    "score_diff_ci_low": _points,
    "score_diff_ci_high": _points,
    "score_p_value": _p,
    "error_p_value": _p,
    "baseline_error_rate": _pct,
    "candidate_error_rate": _pct,
    "error_rate_diff": _points,
    "p95_latency_increase_pct": lambda v: f"{v:+.1f} %",
    "tokens_mean_diff": lambda v: f"{v:+,.1f}",
}


def _format_for(name: str, formats: Mapping[str, Formatter]) -> Formatter | None:
    if name in formats:
        return formats[name]
    return _ms if "latency" in name or "ttft" in name else None


def _cell(value: Any, fmt: Formatter | None) -> str:
    if value is None:
        return '<td class="num">–</td>'
    if fmt is not None:
        return f'<td class="num">{escape(fmt(value))}</td>'
    if isinstance(value, float):
        return f'<td class="num">{escape(_number(value))}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    return f"<td>{escape(str(value))}</td>"


def _table(frame: pl.DataFrame, formats: Mapping[str, Formatter]) -> str:
    """A frame transposed: one column per variant reads better than 30 columns across."""
    first = frame.columns[0] if "variant" not in frame.columns else "variant"
    heads = "".join(f"<th>{escape(str(v))}</th>" for v in frame[first].to_list())
    rows = []
    for name in frame.columns:
        if name == first:
            continue
        fmt = _format_for(name, formats)
        cells = "".join(_cell(v, fmt) for v in frame[name].to_list())
        rows.append(f"<tr><th>{escape(name)}</th>{cells}</tr>")
    return f"<table><tr><th></th>{heads}</tr>{''.join(rows)}</table>"


def _clip(text: str | None) -> str:
    if text is None:
        return ""
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + " …"


def _changed_rows(shown: pl.DataFrame, variants: Sequence[str], total: int) -> str:
    changed = shown.filter(pl.col("changed") | pl.col("regression") | pl.col("improvement"))
    if not changed.height:
        return "<p>No row changed: every variant gave the baseline's output.</p>"
    heads = "".join(f"<th>{escape(v)}</th>" for v in variants)
    rows = [_changed_row(row, variants) for row in changed.iter_rows(named=True)]
    note = f"showing {changed.height:,} of {total:,} changed rows"
    return (
        f'<p class="sub">{note}, regressions first; all rows are in side_by_side.parquet.</p>'
        f"<table><tr><th>row</th><th>inputs</th><th>expected</th>{heads}</tr>"
        + "".join(rows)
        + "</table>"
    )


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


def _segment_summary(frame: pl.DataFrame) -> str:
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
            _maybe(r["error_rate"], _pct),
            _maybe(r["latency_p50_ms"], _ms),
            _maybe(r["latency_p95_ms"], _ms),
            _score_with_ci(r, "score_mean", "score_ci_low", "score_ci_high", _pct),
        )
        for r in frame.iter_rows(named=True)
    ]
    return _rows_table(heads, rows)


def _segment_comparison(frame: pl.DataFrame) -> str:
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


def _changed_row(row: Mapping[str, Any], variants: Sequence[str]) -> str:
    kind = "regression" if row["regression"] else "improvement" if row["improvement"] else ""
    cells = []
    for v in variants:
        score = row[f"score_{v}"]
        latency = row[f"latency_ms_{v}"]
        tag = " · ".join(
            part
            for part in (
                row[f"status_{v}"] or "missing",
                "" if score is None else f"score {score:g}",
                "" if latency is None else f"{latency:,.0f} ms",
            )
            if part
        )
        cells.append(
            f'<td class="text">{escape(_clip(row[f"output_{v}"]))}'
            f'<div class="tag">{escape(tag)}</div></td>'
        )
    ident = f"{row['row_id']}" + (f" #{row['repeat']}" if row["repeat"] else "")
    return (
        f'<tr class="{kind}"><td>{escape(ident)}</td>'
        f'<td class="text">{escape(_clip(row["inputs"]))}</td>'
        f'<td class="text">{escape(_clip(row["expected"]))}</td>{"".join(cells)}</tr>'
    )


def _provenance(prov: Mapping[str, Any]) -> str:
    keys = ("run_id", "status", "deployment", "variants", "baseline", "repeat",
            "dataset_fingerprint", "started_at", "finished_at", "scorer", "out_dir")  # fmt: skip
    items = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(_plain(prov.get(k)))}</td></tr>" for k in keys
    )
    details = json.dumps(
        {k: prov.get(k) for k in ("config", "versions", "report_versions")}, indent=2, default=str
    )
    return (
        f"<table>{items}</table><details><summary>config and versions</summary>"
        f"<pre>{escape(details)}</pre></details>"
    )


def _plain(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)
