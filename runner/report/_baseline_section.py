"""The "Compared with the baseline" section of ``report.html``: a run compared with another
run (``runner compare``, a nightly's baseline), put into the report after its header
(:func:`with_baseline_section`) or taken out again.

The section is drawn from the files the comparison left in ``OUT`` (``regression.parquet``
and ``regression_rows.parquet``, :func:`comparison_section`): :func:`build_reports` puts it
into every report.html it writes, and :func:`refresh_baseline_section` puts a new comparison
into the report.html already there (or takes a forgotten one out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any, Final

import polars as pl

from runner.report._diff import word_diff
from runner.report._tables import clip, code, pct, plain
from runner.store import RunDir, atomic_write_text, read_provenance

#: Around the section :func:`with_baseline_section` puts into (or takes out of) a report.
_BASELINE_START: Final = "<!-- runner:baseline -->"
_BASELINE_END: Final = "<!-- /runner:baseline -->"


def comparison_section(out_dir: Path) -> str | None:
    """The section of the last comparison written into ``out_dir``; None when there is none
    (or it was written by a version that kept no gate results)."""
    rundir = RunDir(out_dir)
    metrics_path, rows_path = rundir.regression_parquet, rundir.regression_rows
    if not (metrics_path.exists() and rows_path.exists()):
        return None
    comparison = read_provenance(metrics_path)
    if comparison.get("gate_results") is None:
        return None
    metrics, rows = pl.read_parquet(metrics_path), pl.read_parquet(rows_path)
    return baseline_section(comparison, metrics, rows, read_provenance(rows_path))


def refresh_baseline_section(out_dir: Path) -> bool:
    """Put the last comparison of ``out_dir`` into its ``report.html`` (replacing an older
    one), or take the section out when there is no comparison; True when it is there. Call it
    after a comparison is written (``runner.gates.write_regression``) or forgotten."""
    rundir = RunDir(out_dir)
    if not rundir.report_html.exists():
        return False
    section = comparison_section(out_dir)
    html = rundir.report_html.read_text(encoding="utf-8")
    updated = with_baseline_section(html, section)
    if updated != html:
        atomic_write_text(rundir.report_html, updated)
    return section is not None


def baseline_section(
    comparison: Mapping[str, Any],
    metrics: pl.DataFrame,
    rows: pl.DataFrame,
    counts: Mapping[str, Any],
) -> str:
    """The "Compared with the baseline" section of a run compared with another run: the
    baseline's path and date, the verdict in words, each gate's measured value and limit,
    each pairing's score, and the changed rows side by side, regressions first.

    ``comparison`` is the provenance ``runner.gates.write_regression`` keeps in
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
        f"{escape(plain(comparison.get('compared_at')))}; score: {escape(label)}.</p>",
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
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return plain(text)
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
