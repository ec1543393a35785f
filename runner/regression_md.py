"""The markdown of a gated comparison, fit for a CI job summary (``regression.md``,
``gate.md``): the verdict, warnings, the gate table, verdict sentences, the metrics, and a
few regressed rows as examples. Pure: frames and dicts in, text out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from runner.gates import RegressionReport
from runner.wording import format_p, score_sentence, test_name

#: Regressed rows regression.md shows as examples, and how much of each output.
EXAMPLE_ROWS: Final = 5
EXAMPLE_CHARS: Final = 80


@dataclass(frozen=True, slots=True)
class RegressedRows:
    """A few rows the candidate did worse on than the baseline, and how many there are."""

    total: int
    rows: tuple[dict[str, Any], ...]


def regressed_rows(
    base: pl.DataFrame, cand: pl.DataFrame, metrics: pl.DataFrame, limit: int = EXAMPLE_ROWS
) -> RegressedRows:
    """Calls whose candidate answer did worse than the baseline's: an error where the baseline
    was ok, or a lower score. One pair of variants per row of ``metrics``
    (``baseline_variant``, ``variant``), matched on row id and repeat."""
    keys = ["row_id", "repeat"]
    columns = [*keys, "output", "status", "score"]
    found: list[pl.DataFrame] = []
    for b_variant, c_variant in metrics.select("baseline_variant", "variant").iter_rows():
        b = base.filter(pl.col("variant") == b_variant).select(columns)
        c = cand.filter(pl.col("variant") == c_variant).select(columns)
        joined = b.join(c, on=keys, suffix="_cand")
        worse = ((pl.col("status") == "ok") & (pl.col("status_cand") != "ok")) | (
            pl.col("score") > pl.col("score_cand")
        ).fill_null(False)
        found.append(
            joined.filter(worse).with_columns(
                pl.lit(b_variant).alias("baseline_variant"), pl.lit(c_variant).alias("variant")
            )
        )
    if not found:
        return RegressedRows(0, ())
    rows = pl.concat(found, how="diagonal_relaxed")
    return RegressedRows(rows.height, tuple(rows.head(limit).iter_rows(named=True)))


def regression_markdown(
    report: RegressionReport,
    baseline: Mapping[str, Any],
    candidate: Mapping[str, Any],
    score_label: str = "score",
    *,
    confidence: float = 0.95,
    title: str = "Regression check",
    examples: RegressedRows | None = None,
    report_path: Path | None = None,
) -> str:
    """A markdown summary of a gated comparison fit for a CI job summary; ends in a newline.

    ``examples`` adds a few regressed rows; ``report_path`` names the candidate's report.html.
    """
    verdict = "PASS" if report.passed else "FAIL"
    if baseline is candidate:
        scope = (
            f"Variants of run `{baseline['run_id']}` ({baseline['out_dir']}), calls matched on "
            f"row_id and repeat. Score: {score_label}."
        )
    else:
        scope = (
            f"Baseline `{baseline['run_id']}` ({baseline['out_dir']}) against candidate "
            f"`{candidate['run_id']}` ({candidate['out_dir']}), calls matched on row_id, "
            f"variant and repeat. Score: {score_label}."
        )
    if report_path is not None:
        scope += f" Full report: `{report_path}`"
    lines = [
        f"## {title}: {verdict}",
        "",
        scope,
        "",
        *_warnings(report, baseline, candidate),
        *_gate_table(report),
        "",
        "Error rates and scores change in percentage points (a drop is negative), p95 latency "
        "in percent of the baseline's (rows ok in both), agreement is the share of identical "
        "outputs, coverage the share of the baseline's calls with a partner. The interval "
        "beside each p-value comes from the same test, so they agree.",
        "",
        *_verdicts(report.metrics, score_label, confidence),
        "",
        *_metrics_table(report.metrics, confidence),
        *_examples(examples),
    ]
    return "\n".join(lines) + "\n"


def _examples(examples: RegressedRows | None) -> list[str]:
    if examples is None or not examples.total:
        return []
    lines = [
        "",
        f"### Regressed rows ({len(examples.rows)} of {examples.total:,})",
        "",
        "| row | variant | baseline answer | candidate answer |",
        "|---|---|---|---|",
    ]
    for r in examples.rows:
        ident = f"{r['row_id']}" + (f" #{r['repeat']}" if r["repeat"] else "")
        lines.append(
            f"| {_cell(ident)} | {_cell(_pair(r))} "
            f"| {_answer(r['output'], r['status'], r['score'])} "
            f"| {_answer(r['output_cand'], r['status_cand'], r['score_cand'])} |"
        )
    return lines


def _answer(output: str | None, status: str | None, score: float | None) -> str:
    text = " ".join((output or "").split())
    if len(text) > EXAMPLE_CHARS:
        text = text[: EXAMPLE_CHARS - 1] + "…"
    shown = f"`{_cell(text)}`" if text else "–"
    note = status if status != "ok" else "" if score is None else f"score {score:g}"
    return f"{shown} ({note})" if note else shown


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def _warnings(
    report: RegressionReport, baseline: Mapping[str, Any], candidate: Mapping[str, Any]
) -> list[str]:
    notes = []
    if baseline["dataset_fingerprint"] != candidate["dataset_fingerprint"]:
        notes.append("the two runs read different datasets (dataset fingerprints differ)")
    if baseline["deployment"] != candidate["deployment"]:
        notes.append(f"deployments differ: {baseline['deployment']} and {candidate['deployment']}")
    for prov in {id(baseline): baseline, id(candidate): candidate}.values():
        if prov.get("status") != "complete":
            notes.append(f"{prov['out_dir']} is not complete (status: {prov.get('status')})")
    if report.unmatched_baseline or report.unmatched_candidate:
        notes.append(
            f"unmatched calls: {report.unmatched_baseline:,} only in the baseline, "
            f"{report.unmatched_candidate:,} only in the candidate"
        )
    for side, variants in (
        ("baseline", report.only_in_baseline),
        ("candidate", report.only_in_candidate),
    ):
        if variants:
            notes.append(f"variants only in the {side}, not compared: {', '.join(variants)}")
    return [*(f"> **Note:** {n}" for n in notes), *([""] if notes else [])]


def _gate_table(report: RegressionReport) -> list[str]:
    if not report.gates:
        return ["No gate was set."]
    lines = [
        "| gate | variant | measured | limit | p | result |",
        "|---|---|---|---:|---:|---|",
    ]
    for g in report.gates:
        p = "" if g.p_value is None else format_p(g.p_value).removeprefix("p = ")
        result = ("pass" if g.passed else "**FAIL**") + (f" ({g.note})" if g.note else "")
        lines.append(
            f"| `{g.option}` | {g.variant} | {g.measured_text} | {g.limit_text} | {p} | {result} |"
        )
    return lines


def _verdicts(metrics: pl.DataFrame, label: str, confidence: float) -> list[str]:
    return [
        f"- {_pair(r)}: {score_sentence(r, label, confidence)}"
        for r in metrics.iter_rows(named=True)
    ]


def _pair(row: Mapping[str, Any]) -> str:
    base, cand = row["baseline_variant"], row["variant"]
    return cand if base == cand else f"{base} → {cand}"


def _metrics_table(metrics: pl.DataFrame, confidence: float) -> list[str]:
    lines = [
        f"| variant | pairs | coverage | score base → cand | Δ score [{confidence * 100:g} % CI] "
        "| test, p | error rate base → cand | p95 ms base → cand | identical outputs |",
        "|---|---:|---:|---|---|---|---|---|---:|",
    ]
    for r in metrics.iter_rows(named=True):
        lines.append(
            f"| {_pair(r)} | {r['pairs']} | {_pct(r['coverage'])} "
            f"| {_pct(r['baseline_score'])} → {_pct(r['candidate_score'])} "
            f"| {_diff_ci(r)} | {test_name(r['score_test'])}, {format_p(r['score_p_value'])} "
            f"| {_pct(r['baseline_error_rate'])} → {_pct(r['candidate_error_rate'])} "
            f"| {_num(r['baseline_latency_p95_ms'])} → {_num(r['candidate_latency_p95_ms'])} "
            f"| {_pct(r['identical_share'])} |"
        )
    return lines


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f} %"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def _diff_ci(row: Mapping[str, Any]) -> str:
    if row["score_diff"] is None:
        return "–"
    text = f"{row['score_diff'] * 100:+.1f}"
    if row["score_diff_ci_low"] is not None and row["score_diff_ci_high"] is not None:
        text += f" [{row['score_diff_ci_low'] * 100:+.1f}, {row['score_diff_ci_high'] * 100:+.1f}]"
    return text + " points"
