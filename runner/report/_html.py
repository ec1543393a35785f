"""The self-contained ``report.html``: a report people read, in one file that opens offline.

It leads with the verdicts in words and numbers, then shows only the sections that have
something to say: the variants with human labels and units, charts (inline SVG drawn by
:mod:`runner.report._charts`), the errors with an example message, the comparison with the
baseline (and the judges' verdicts), segments, the changed rows with a word-level diff
(:mod:`runner.report._diff`), a filter and a search, and the provenance in the footer. Nothing
is loaded from the network; the one script is a few lines inline. All text from the results
is HTML-escaped: outputs are model text, and model text may contain markup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, Final

import polars as pl

from runner.report._charts import CHART_CSS, errors_chart, latency_chart, score_chart
from runner.report._console import pairwise_sentence
from runner.report._diff import word_diff
from runner.report._tables import (
    clip,
    code,
    comparison_table,
    errors,
    notes_list,
    pct,
    plain,
    score_ci,
    segment_comparison,
    segment_summary,
    variants_table,
)

MAX_CHANGED_ROWS: Final = 200
"""Changed rows report.html shows (side_by_side.parquet has them all)."""

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
        f"{code(provenance['baseline'])} · score: {escape(score_label)} · run "
        f"{code(provenance.get('run_id'))}</p></header>",
        "<h2>Verdict</h2>",
        _lead(rows, comparison if compared else None, verdicts, score_label),
        notes_list(notes),
        "<h2>Variants</h2>",
        variants_table(rows, score_label),
    ]
    charts = [
        latency_chart(latency.to_dicts()),
        score_chart(rows, score_label),
        errors_chart(rows),
    ]
    if any(charts):
        body += ["<h2>Charts</h2>", '<div class="charts">' + "".join(charts) + "</div>"]
    if any(r.get("errors_by_type") for r in rows):
        body += ["<h2>Errors</h2>", errors(rows)]
    if compared:
        assert comparison is not None
        body += [
            f"<h2>Against the baseline ({escape(str(provenance['baseline']))})</h2>",
            comparison_table(comparison.to_dicts(), score_label),
        ]
    if summary_by_segment is not None and summary_by_segment.height:
        body += ["<h2>By segment</h2>", segment_summary(summary_by_segment)]
    if compared and comparison_by_segment is not None and comparison_by_segment.height:
        body += [
            "<h2>Against the baseline, by segment</h2>",
            segment_comparison(comparison_by_segment),
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
            text = f"<b>{escape(word)}</b> · {code(variant)}: {escape(rest)}"
            judged = pairwise_sentence(row)
            if judged:
                text += f"<br>{escape(judged)}"
            items.append(f'<li class="{kind}">{text}</li>')
    else:
        for r in rows:
            parts = [f"{int(r['rows']):,} calls", f"{pct(r['error_rate'])} errors"]
            if r.get("score_mean") is not None:
                parts.insert(0, f"{label} {score_ci(r)}")
            if r.get("latency_p95_ms") is not None:
                parts.append(f"p95 latency {r['latency_p95_ms']:,.0f} ms")
            items.append(f'<li class="same">{code(r["variant"])}: {escape("; ".join(parts))}</li>')
        items.append('<li class="same">One variant: nothing to compare it with.</li>')
    return '<ul class="verdicts">' + "".join(items) + "</ul>"


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
    baseline_text = clip(row[f"output_{variants[0]}"])
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
        text = clip(row[f"output_{v}"])
        body = escape(text) if i == 0 else word_diff(baseline_text, text)
        extra = ""
        if row.get(f"reason_{v}"):
            extra += f'<div class="reason">judge: {escape(clip(row[f"reason_{v}"]))}</div>'
        if row.get(f"pairwise_{v}"):
            why = row.get(f"pairwise_reason_{v}")
            word = _pairwise_word(row[f"pairwise_{v}"])
            extra += (
                f'<div class="reason">pairwise judge: {escape(word)}'
                + (f" — {escape(clip(why))}" if why else "")
                + "</div>"
            )
        cells.append(f'<td class="text">{body}<div class="tag">{escape(tag)}</div>{extra}</td>')
    ident = f"{row['row_id']}" + (f" #{row['repeat']}" if row["repeat"] else "")
    return (
        f'<tr class="{kind}" data-kind="{kind}"><td>{escape(ident)}<div class="tag">{kind}'
        f'</div></td><td class="text">{escape(clip(row["inputs"]))}</td>'
        f'<td class="text">{escape(clip(row["expected"]))}</td>{"".join(cells)}</tr>'
    )


# ------------------------------------------------------------------------------ footer


def _footer(prov: Mapping[str, Any]) -> str:
    labels = (
        ("run_id", "Run"), ("status", "Status"), ("deployment", "Deployment"),
        ("variants", "Variants"), ("baseline", "Baseline"),
        ("repeat", "Calls per row and variant (--repeat)"),
        ("dataset_fingerprint", "Dataset fingerprint"), ("started_at", "Started"),
        ("finished_at", "Finished"), ("scorer", "Scorer"), ("out_dir", "Run directory"),
        ("generated_at", "Report generated"),
    )  # fmt: skip
    items = "".join(
        f"<tr><th>{escape(label)}</th><td>{escape(plain(prov.get(key)))}</td></tr>"
        for key, label in labels
    )
    details = json.dumps(
        {k: prov.get(k) for k in ("config", "versions", "report_versions")}, indent=2, default=str
    )
    return (
        f"<footer><h2>Provenance</h2><table>{items}</table><details><summary>configuration "
        f"and versions</summary><pre>{escape(details)}</pre></details></footer>"
    )
