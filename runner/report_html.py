"""The self-contained ``report.html``: a report people read, in one file that opens offline.

It leads with the verdicts in words and numbers, then shows only the sections that have
something to say: the variants with human labels and units, charts (inline SVG drawn by
:mod:`runner.report_charts`), the errors with an example message, the comparison with the
baseline (and the judges' verdicts), segments, the changed rows with a word-level diff
(:mod:`runner.report_diff`), a filter and a search, and the provenance in the footer. Nothing
is loaded from the network; the one script is a few lines inline. All text from the results
is HTML-escaped: outputs are model text, and model text may contain markup.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any, Final

import polars as pl

from runner.console import error_line, pairwise_sentence
from runner.report_charts import CHART_CSS, errors_chart, latency_chart, score_chart
from runner.report_diff import word_diff

MAX_CHANGED_ROWS: Final = 200
"""Changed rows report.html shows (side_by_side.parquet has them all)."""
MAX_CELL_CHARS: Final = 600

_CSS: Final = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1d2330; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; }
.sub { color: #5b6475; }
.verdicts { list-style: none; padding: 0; }
.verdicts li { font-size: 1.05rem; margin: .4rem 0; padding: .5rem .8rem; border-radius: 6px;
               background: #f2f4f8; border-left: 5px solid #9aa3b5; }
.verdicts li.better { background: #eaf7ee; border-color: #2e8b57; }
.verdicts li.worse { background: #fdecec; border-color: #c0392b; }
.verdicts b { text-transform: uppercase; font-size: .85rem; letter-spacing: .03em; }
.notes li { color: #8a5300; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr));
          gap: 1.2rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: 13px; }
th, td { border: 1px solid #d8dce4; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #f2f4f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
th.num { text-align: right; }
td.text { white-space: pre-wrap; word-break: break-word; max-width: 420px; }
tr.regression td:first-child { border-left: 4px solid #c0392b; }
tr.improvement td:first-child { border-left: 4px solid #2e8b57; }
.tag { font-size: 11px; color: #5b6475; white-space: normal; }
.reason { font-size: 12px; color: #3c4657; background: #f6f7f9; padding: 2px 4px;
          margin-top: 4px; white-space: normal; }
ins { background: #d4f4dc; text-decoration: none; } del { background: #fbd5d5; }
.filters { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; margin: .5rem 0; }
.filters button { border: 1px solid #b9c0cc; background: #fff; padding: 3px 10px;
                  border-radius: 14px; cursor: pointer; font: inherit; }
.filters button.on { background: #1d2330; color: #fff; border-color: #1d2330; }
.filters input { padding: 3px 8px; min-width: 16rem; font: inherit; }
footer { margin-top: 3rem; padding-top: 1rem; border-top: 1px solid #d8dce4; color: #5b6475;
         font-size: 12px; }
footer table { width: auto; } pre { background: #f6f7f9; padding: .6rem; overflow-x: auto; }
"""

#: Filters and searches the changed rows; the counts it shows are the rows it leaves visible.
_SCRIPT: Final = """
(function () {
  var table = document.getElementById('changed-rows');
  if (!table) return;
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var buttons = document.querySelectorAll('[data-filter]');
  var search = document.getElementById('row-search');
  var count = document.getElementById('row-count');
  var kind = 'all';
  function apply() {
    var query = search.value.trim().toLowerCase(), shown = 0;
    rows.forEach(function (row) {
      var visible = (kind === 'all' || row.getAttribute('data-kind') === kind) &&
        (!query || row.textContent.toLowerCase().indexOf(query) >= 0);
      row.hidden = !visible;
      if (visible) shown += 1;
    });
    count.textContent = shown + ' of ' + rows.length + ' rows shown';
  }
  Array.prototype.forEach.call(buttons, function (button) {
    button.addEventListener('click', function () {
      kind = button.getAttribute('data-filter');
      Array.prototype.forEach.call(buttons, function (b) {
        b.classList.toggle('on', b === button);
      });
      apply();
    });
  });
  search.addEventListener('input', apply);
  apply();
})();
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

    Sections with nothing to say are left out: without ``comparison`` (one variant) or with no
    compared rows there is no comparison or changed-rows section; with nothing scored, no score
    chart; with no error, no errors chart or section. ``verdicts`` are the sentences of
    :func:`runner.report.verdict_lines`, one per row of ``comparison``. ``changed_rows`` holds
    only the rows to show (regressions first), with optional ``reason_<variant>`` (the
    pointwise judge's reason) and ``pairwise_<variant>`` / ``pairwise_reason_<variant>``
    columns; ``changed_total`` says how many there are in all.
    """
    variants = [str(v) for v in provenance["variants"]]
    rows = summary.to_dicts()
    compared = comparison is not None and comparison.height > 0
    title = f"Evaluation report: {provenance.get('deployment') or 'run'}"
    calls = sum(int(r["rows"]) for r in rows)
    body = [
        f"<header><h1>{escape(title)}</h1>",
        f'<p class="sub">{len(variants)} variant{"s" if len(variants) != 1 else ""} '
        f"({escape(', '.join(variants))}) · {calls:,} calls · baseline "
        f"{_code(provenance['baseline'])} · score: {escape(score_label)} · run "
        f"{_code(provenance.get('run_id'))}</p></header>",
        "<h2>Verdict</h2>",
        _lead(rows, comparison if compared else None, verdicts, score_label),
        _notes(notes),
        "<h2>Variants</h2>",
        _variants_table(rows, score_label),
    ]
    charts = [
        latency_chart(latency.to_dicts()),
        score_chart(rows, score_label),
        errors_chart(rows),
    ]
    if any(charts):
        body += ["<h2>Charts</h2>", '<div class="charts">' + "".join(charts) + "</div>"]
    if any(r.get("errors_by_type") for r in rows):
        body += ["<h2>Errors</h2>", _errors(rows)]
    if compared:
        assert comparison is not None
        body += [
            f"<h2>Against the baseline ({escape(str(provenance['baseline']))})</h2>",
            _comparison_table(comparison.to_dicts(), score_label),
        ]
    if summary_by_segment is not None and summary_by_segment.height:
        body += ["<h2>By segment</h2>", _segment_summary(summary_by_segment)]
    if compared and comparison_by_segment is not None and comparison_by_segment.height:
        body += [
            "<h2>Against the baseline, by segment</h2>",
            _segment_comparison(comparison_by_segment),
        ]
    if compared and changed_rows is not None:
        total = changed_rows.height if changed_total is None else changed_total
        body += ["<h2>Changed rows</h2>", _changed_rows(changed_rows, variants, total)]
    body.append(_footer(provenance))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}{CHART_CSS}</style></head>\n<body>\n"
        + "\n".join(part for part in body if part)
        + f"\n<script>{_SCRIPT}</script>\n</body></html>\n"
    )


# ------------------------------------------------------------------------------ the lead


def _lead(
    rows: Sequence[Mapping[str, Any]],
    comparison: pl.DataFrame | None,
    verdicts: Sequence[str],
    label: str,
) -> str:
    """The verdicts in words and numbers; with one variant, what it scored and how it ran."""
    items = []
    if comparison is not None:
        for row, sentence in zip(comparison.iter_rows(named=True), verdicts, strict=False):
            word = row.get("score_verdict") or "no score to compare"
            kind = {"better": "better", "worse": "worse"}.get(word, "same")
            variant, _, rest = sentence.partition(": ")
            text = f"<b>{escape(word)}</b> · {_code(variant)}: {escape(rest)}"
            judged = pairwise_sentence(row)
            if judged:
                text += f"<br>{escape(judged)}"
            items.append(f'<li class="{kind}">{text}</li>')
    else:
        for r in rows:
            parts = [f"{int(r['rows']):,} calls", f"{_pct(r['error_rate'])} errors"]
            if r.get("score_mean") is not None:
                parts.insert(0, f"{label} {_score_ci(r)}")
            if r.get("latency_p95_ms") is not None:
                parts.append(f"p95 latency {r['latency_p95_ms']:,.0f} ms")
            items.append(f'<li class="same">{_code(r["variant"])}: {escape("; ".join(parts))}</li>')
        items.append('<li class="same">One variant: nothing to compare it with.</li>')
    return '<ul class="verdicts">' + "".join(items) + "</ul>"


def _score_ci(row: Mapping[str, Any]) -> str:
    text = _pct(row["score_mean"])
    if row.get("score_ci_low") is not None and row.get("score_ci_high") is not None:
        text += f" [95 % CI {row['score_ci_low'] * 100:.1f}–{row['score_ci_high'] * 100:.1f}]"
    return text


# ------------------------------------------------------------------------------ tables


def _code(value: object) -> str:
    return f"<code>{escape(str(value))}</code>"


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    return '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>"


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def _points(value: float) -> str:
    return f"{value * 100:+.1f} pts"


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


Formatter = Callable[[Any], str]
Column = tuple[str, Callable[[Mapping[str, Any]], str | None]]


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


def _variants_table(rows: Sequence[Mapping[str, Any]], label: str) -> str:
    columns: list[Column] = [
        ("Variant", lambda r: str(r["variant"])),
        ("Calls", lambda r: f"{int(r['rows']):,}"),
        ("Errors", lambda r: f"{int(r['errors']):,} ({_pct(r['error_rate'])})"),
        ("Retries", lambda r: _opt(r.get("retries"), lambda v: f"{int(v):,}")),
        ("Latency p50, ms", lambda r: _opt(r.get("latency_p50_ms"), lambda v: f"{v:,.0f}")),
        ("Latency p95, ms", lambda r: _opt(r.get("latency_p95_ms"), lambda v: f"{v:,.0f}")),
        ("First token p50, ms", lambda r: _opt(r.get("ttft_p50_ms"), lambda v: f"{v:,.0f}")),
        ("Tokens per call", lambda r: _opt(r.get("tokens_mean"), lambda v: f"{v:,.0f}")),
        (f"{label}, % [95 % CI]", lambda r: None if r.get("score_mean") is None else _score_ci(r)),
        ("Scorer errors", lambda r: _opt(r.get("score_errors") or None, lambda v: f"{v:,}")),
        ("Judge score, %", lambda r: _opt(r.get("judge_score_mean"), _pct)),
        ("Judge errors", lambda r: _opt(r.get("judge_errors") or None, lambda v: f"{v:,}")),
        ("Judge agrees with score", lambda r: _opt(r.get("judge_agreement"), _pct)),
        ("Same answer on repeat", lambda r: _opt(r.get("consistency_rate"), _pct)),
    ]
    return _human_table(rows, columns)


def _comparison_table(rows: Sequence[Mapping[str, Any]], label: str) -> str:
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
        text = _pct(r["pairwise_win_rate"])
        if r.get("pairwise_win_rate_ci_low") is not None:
            text += (
                f" [{r['pairwise_win_rate_ci_low'] * 100:.1f}, "
                f"{r['pairwise_win_rate_ci_high'] * 100:.1f}]"
            )
        return text

    columns: list[Column] = [
        ("Variant", lambda r: str(r["variant"])),
        ("Pairs", lambda r: _opt(r.get("pairs"), lambda v: f"{v:,}")),
        ("Identical outputs", lambda r: _opt(r.get("identical_share"), _pct)),
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
        ("Judge consistent in both orders",
         lambda r: _opt(r.get("judge_position_consistency"), _pct)),
    ]  # fmt: skip
    return _human_table(rows, columns)


def _signed_points(value: float) -> str:
    return f"{value * 100:+.1f}"


def _signed(value: float) -> str:
    return f"{value:+,.0f}"


def _signed1(value: float) -> str:
    return f"{value:+,.1f}"


def _test(name: str | None) -> str:
    return {"mcnemar_exact": "McNemar", "paired_t": "paired t", "wilcoxon": "Wilcoxon"}.get(
        name or "", name or "no test"
    )


def _errors(rows: Sequence[Mapping[str, Any]]) -> str:
    """Per variant, its most frequent error types with a count, HTTP status and an example."""
    lines = []
    for r in rows:
        for e in r.get("errors_by_type") or []:
            status = "" if e.get("http_status") is None else str(e["http_status"])
            lines.append(
                f"<tr><td>{escape(str(r['variant']))}</td><td><code>{escape(str(e['error_type']))}"
                f'</code></td><td class="num">{int(e["count"]):,}</td><td class="num">{status}</td>'
                f'<td class="text" title="{escape(error_line(e))}">'
                f"{escape(_clip(e.get('example')) or '–')}</td></tr>"
            )
    return (
        "<table><thead><tr><th>Variant</th><th>Error type</th><th class=num>Calls</th>"
        "<th class=num>HTTP status</th><th>Example message</th></tr></thead><tbody>"
        + "".join(lines)
        + "</tbody></table>"
    )


def _clip(text: str | None) -> str:
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


# ------------------------------------------------------------------------- changed rows


def _changed_rows(shown: pl.DataFrame, variants: Sequence[str], total: int) -> str:
    changed = shown.filter(pl.col("changed") | pl.col("regression") | pl.col("improvement"))
    if not changed.height:
        return "<p>No row changed: every variant gave the baseline's output.</p>"
    kinds = [_kind(r) for r in changed.iter_rows(named=True)]
    counts = {k: kinds.count(k) for k in ("regression", "improvement")}
    buttons = (
        f'<button type="button" data-filter="regression">Regressions ({counts["regression"]:,})'
        f'</button><button type="button" data-filter="improvement">Improvements '
        f'({counts["improvement"]:,})</button><button type="button" data-filter="all" '
        f'class="on">All ({changed.height:,})</button>'
    )
    heads = "".join(
        f"<th>{escape(v)}{' (baseline)' if i == 0 else ''}</th>" for i, v in enumerate(variants)
    )
    rows = [_changed_row(row, variants) for row in changed.iter_rows(named=True)]
    return (
        f'<p class="sub">showing {changed.height:,} of {total:,} changed rows, regressions '
        "first; all rows are in side_by_side.parquet. Words a variant added to the baseline's "
        "answer are <ins>marked so</ins>, words it dropped <del>so</del>.</p>"
        f'<div class="filters">{buttons}<input type="search" id="row-search" '
        'placeholder="Search the rows…" aria-label="Search the changed rows">'
        '<span id="row-count" class="sub"></span></div>'
        f'<table id="changed-rows"><thead><tr><th>Row</th><th>Input</th><th>Expected</th>{heads}'
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


_PAIRWISE_WORDS: Final = {
    "win": "prefers this answer",
    "loss": "prefers the baseline's",
    "tie": "a tie",
}


def _pairwise_word(verdict: Any) -> str:
    return _PAIRWISE_WORDS.get(str(verdict), str(verdict))


def _kind(row: Mapping[str, Any]) -> str:
    return "regression" if row["regression"] else "improvement" if row["improvement"] else "changed"


def _changed_row(row: Mapping[str, Any], variants: Sequence[str]) -> str:
    kind = _kind(row)
    baseline_text = _clip(row[f"output_{variants[0]}"])
    cells = []
    for i, v in enumerate(variants):
        score, latency = row[f"score_{v}"], row[f"latency_ms_{v}"]
        tag = " · ".join(
            part
            for part in (
                row[f"status_{v}"] or "missing",
                "" if score is None else f"score {score:g}",
                "" if latency is None else f"{latency:,.0f} ms",
            )
            if part
        )
        text = _clip(row[f"output_{v}"])
        body = escape(text) if i == 0 else word_diff(baseline_text, text)
        extra = ""
        if row.get(f"reason_{v}"):
            extra += f'<div class="reason">judge: {escape(_clip(row[f"reason_{v}"]))}</div>'
        if row.get(f"pairwise_{v}"):
            why = row.get(f"pairwise_reason_{v}")
            word = _pairwise_word(row[f"pairwise_{v}"])
            extra += (
                f'<div class="reason">pairwise judge: {escape(word)}'
                + (f" — {escape(_clip(why))}" if why else "")
                + "</div>"
            )
        cells.append(f'<td class="text">{body}<div class="tag">{escape(tag)}</div>{extra}</td>')
    ident = f"{row['row_id']}" + (f" #{row['repeat']}" if row["repeat"] else "")
    return (
        f'<tr class="{kind}" data-kind="{kind}"><td>{escape(ident)}<div class="tag">{kind}'
        f'</div></td><td class="text">{escape(_clip(row["inputs"]))}</td>'
        f'<td class="text">{escape(_clip(row["expected"]))}</td>{"".join(cells)}</tr>'
    )


# ------------------------------------------------------------------------------ footer


def _footer(prov: Mapping[str, Any]) -> str:
    labels = (
        ("run_id", "Run"), ("status", "Status"), ("deployment", "Deployment"),
        ("variants", "Variants"), ("baseline", "Baseline"), ("repeat", "Calls per row"),
        ("dataset_fingerprint", "Dataset fingerprint"), ("started_at", "Started"),
        ("finished_at", "Finished"), ("scorer", "Scorer"), ("out_dir", "Run directory"),
        ("generated_at", "Report generated"),
    )  # fmt: skip
    items = "".join(
        f"<tr><th>{escape(label)}</th><td>{escape(_plain(prov.get(key)))}</td></tr>"
        for key, label in labels
    )
    details = json.dumps(
        {k: prov.get(k) for k in ("config", "versions", "report_versions")}, indent=2, default=str
    )
    return (
        f"<footer><h2>Provenance</h2><table>{items}</table><details><summary>configuration "
        f"and versions</summary><pre>{escape(details)}</pre></details></footer>"
    )


def _plain(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)
