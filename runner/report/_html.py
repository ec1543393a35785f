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


# ------------------------------------------------------------ compared with the baseline

#: Around the section :func:`with_baseline_section` puts into (or takes out of) a report.
_BASELINE_START: Final = "<!-- runner:baseline -->"
_BASELINE_END: Final = "<!-- /runner:baseline -->"


def baseline_section(
    comparison: Mapping[str, Any],
    metrics: pl.DataFrame,
    rows: pl.DataFrame,
    counts: Mapping[str, Any],
) -> str:
    """The "Compared with the baseline" section of a run compared with another run: the
    baseline's path and date, the verdict in words, each gate's measured value and limit,
    each pairing's score, and the changed rows side by side, regressions first.

    ``comparison`` is the provenance ``runner.gates._regression.write_regression`` keeps in
    ``regression.parquet`` (``baseline``, ``candidate``, ``gate_results``, ``passed``,
    ``gates_set``, ``picked``); ``metrics`` that file's rows; ``rows`` and ``counts`` the
    changed rows it keeps and how many of each kind there are."""
    base, cand = comparison.get("baseline") or {}, comparison.get("candidate") or {}
    results = list(comparison.get("gate_results") or [])
    failed = [g for g in results if not g.get("passed")]
    if not comparison.get("gates_set") and not results:
        word, kind = "no gate set", "same"
        sentence = "No gate was set: the comparison is shown for information."
    elif failed:
        word, kind = "fail", "worse"
        sentence = f"FAIL: {len(failed)} of {len(results)} gates failed. " + "; ".join(
            str(g.get("described", "")) for g in failed
        )
    else:
        word, kind = "pass", "better"
        sentence = f"PASS: all {len(results)} gates passed against the baseline."
    label = str(comparison.get("score_label") or "score")
    parts = [
        f"<h2>Compared with the baseline: {escape(word.upper())}</h2>",
        f'<p class="sub">Baseline run {code(base.get("out_dir"))} (run '
        f"{code(base.get('run_id'))}, finished {escape(_when(base.get('finished_at')))}); "
        f"this run {code(cand.get('out_dir'))}; compared "
        f"{escape(_plain(comparison.get('compared_at')))}; score: {escape(label)}.</p>",
        f'<ul class="verdicts"><li class="{kind}">{escape(sentence)}</li></ul>',
    ]
    picked = [str(line) for line in comparison.get("picked") or []]
    if picked:
        parts.append(
            '<ul class="notes">' + "".join(f"<li>{escape(p)}</li>" for p in picked) + "</ul>"
        )
    if results:
        parts.append(_gates_table(results))
    if metrics.height:
        parts.append(_pairings_table(metrics))
    parts.append(_compared_rows(rows, counts))
    return "\n".join(parts)


def with_baseline_section(html: str, section: str | None) -> str:
    """``html`` (a report.html) with its baseline section replaced by ``section``, put right
    after the header; taken out when ``section`` is None."""
    start, end = html.find(_BASELINE_START), html.find(_BASELINE_END)
    if start >= 0 and end > start:
        html = html[:start] + html[end + len(_BASELINE_END) :].removeprefix("\n")
    if section is None:
        return html
    block = f'{_BASELINE_START}\n<section id="baseline">{section}</section>\n{_BASELINE_END}\n'
    anchor = html.find("</header>")
    at = anchor + len("</header>\n") if anchor >= 0 else html.find("<body>\n") + len("<body>\n")
    return html[:at] + block + html[at:]


def _gates_table(results: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for g in results:
        p = g.get("p_value")
        result = "pass" if g.get("passed") else "FAIL"
        if g.get("note"):
            result += f" ({g['note']})"
        rows.append(
            f'<tr class="{"" if g.get("passed") else "regression"}"><td>{code(g.get("option"))}'
            f"</td><td>{escape(str(g.get('variant')))}</td>"
            f'<td class="num">{escape(str(g.get("measured")))}</td>'
            f'<td class="num">{escape(str(g.get("limit")))}</td>'
            f'<td class="num">{"" if p is None else f"{p:.3g}"}</td><td>{escape(result)}</td></tr>'
        )
    return (
        '<table><thead><tr><th>Gate</th><th>Variant</th><th class="num">Measured</th>'
        '<th class="num">Limit</th><th class="num">p</th><th>Result</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def _pairings_table(metrics: pl.DataFrame) -> str:
    rows = []
    for r in metrics.iter_rows(named=True):
        pair = (
            r["variant"]
            if r["baseline_variant"] == r["variant"]
            else (f"{r['baseline_variant']} → {r['variant']}")
        )
        diff = r.get("score_diff")
        rows.append(
            f'<tr><td>{code(pair)}</td><td class="num">{int(r.get("pairs") or 0):,}</td>'
            f'<td class="num">{_share(r.get("baseline_score"))} → '
            f"{_share(r.get('candidate_score'))}</td>"
            f'<td class="num">{"–" if diff is None else f"{diff * 100:+.1f} points"}</td>'
            f'<td class="num">{_share(r.get("baseline_error_rate"))} → '
            f"{_share(r.get('candidate_error_rate'))}</td></tr>"
        )
    return (
        '<table><thead><tr><th>Variant</th><th class="num">Pairs</th>'
        '<th class="num">Score baseline → tonight</th><th class="num">Change</th>'
        '<th class="num">Errors baseline → tonight</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def _when(text: object) -> str:
    """An ISO time from a manifest as ``2025-06-03 02:10:00 UTC`` (as given if unreadable)."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return _plain(text)
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _share(value: float | None) -> str:
    return "–" if value is None else pct(value)


def _compared_rows(rows: pl.DataFrame, counts: Mapping[str, Any]) -> str:
    total = int(counts.get("changed") or rows.height)
    if not rows.height:
        return "<p>No row changed against the baseline.</p>"
    body = []
    for r in rows.iter_rows(named=True):
        ident = f"{r['row_id']}" + (f" #{r['repeat']}" if r.get("repeat") else "")
        pair = (
            r["variant"]
            if r["baseline_variant"] == r["variant"]
            else (f"{r['baseline_variant']} → {r['variant']}")
        )
        before = clip(r["output_baseline"])
        body.append(
            f'<tr class="{r["kind"]}"><td>{escape(ident)}<div class="tag">{escape(r["kind"])}'
            f' · {escape(pair)}</div></td><td class="text">{escape(clip(r["inputs"]))}</td>'
            f'<td class="text">{escape(clip(r["expected"]))}</td>'
            f'<td class="text">{escape(before)}'
            f"{_tag(r['status_baseline'], r['score_baseline'])}</td>"
            f'<td class="text">{word_diff(before, clip(r["output"]))}'
            f"{_tag(r['status'], r['score'])}</td></tr>"
        )
    return (
        f'<p class="sub">showing {rows.height:,} of {total:,} changed rows '
        f"({int(counts.get('regressions') or 0):,} regressions, "
        f"{int(counts.get('improvements') or 0):,} improvements), regressions first. Words "
        "tonight's answer added are <ins>marked so</ins>, words it dropped <del>so</del>.</p>"
        '<table id="baseline-rows"><thead><tr><th>Row</th><th>Input</th><th>Expected</th>'
        "<th>Baseline's answer</th><th>Tonight's answer</th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )


def _tag(status: str | None, score: float | None) -> str:
    text = " · ".join(
        p for p in (status or "missing", "" if score is None else f"score {score:g}") if p
    )
    return f'<div class="tag">{escape(text)}</div>'
