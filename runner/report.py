"""Reports from a run directory: the I/O edge around :mod:`runner.compare`.

:func:`build_reports` reads ``OUT/results.parquet`` and ``OUT/manifest.json``, scores, and
writes, each atomically::

    OUT/results.parquet       the results with their ``score`` column (when scored)
    OUT/summary.parquet       one row per variant
    OUT/comparison.parquet    each variant against the baseline
    OUT/side_by_side.parquet  one row per row, every variant's answer
    OUT/report.html           all of it for people, one self-contained file

:func:`write_regression` compares two run directories for ``runner compare``. Every file
carries the run's provenance (run id, config, dataset fingerprint, versions): the parquet
files as key-value metadata ``runner.provenance``, the HTML and markdown in words.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from rich.table import Table

from runner import compare
from runner.compare import DEFAULT_OPTIONS, Gates, RegressionReport, StatOptions
from runner.errors import ConfigError
from runner.fsutil import atomic_write_parquet, atomic_write_text
from runner.provenance import package_versions
from runner.records import RESULT_SCHEMA, STATUS_OK
from runner.report_html import render_report
from runner.results import RESULTS, read_manifest, read_results
from runner.scoring import SCORE_COLUMN, parse_scorer, score_results

SUMMARY: Final = "summary.parquet"
COMPARISON: Final = "comparison.parquet"
SIDE_BY_SIDE: Final = "side_by_side.parquet"
REPORT_HTML: Final = "report.html"
REGRESSION: Final = "regression.parquet"
REGRESSION_MD: Final = "regression.md"

#: Parquet key-value metadata: the scorer spec behind the ``score`` column, and provenance.
SCORER_KEY: Final = b"runner.score"
PROVENANCE_KEY: Final = b"runner.provenance"

_REPORT_PACKAGES: Final = ("runner", "polars", "numpy", "scipy", "plotly")


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where :func:`build_reports` wrote each file."""

    results: Path
    summary: Path
    comparison: Path
    side_by_side: Path
    html: Path


@dataclass(frozen=True, slots=True)
class Provenance:
    """What a report was built from: the run's manifest, the scorer, and when and with what."""

    out_dir: str
    run_id: str | None
    status: str | None
    deployment: str | None
    variants: tuple[str, ...]
    baseline: str
    repeat: int | None
    dataset_fingerprint: str | None
    started_at: str | None
    finished_at: str | None
    scorer: str | None
    versions: Mapping[str, Any]
    config: Mapping[str, Any]
    report_versions: Mapping[str, str]
    generated_at: str

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def build_reports(
    out_dir: Path,
    *,
    score: str | None = None,
    baseline: str | None = None,
    options: StatOptions = DEFAULT_OPTIONS,
) -> ReportPaths:
    """Score ``OUT/results.parquet`` (when ``score`` is given) and write every report of ``OUT``.

    Without ``score`` the ``score`` column already in the results is used, if any. Calls no
    API, so it can be run again at any time, with another scorer or baseline.
    """
    manifest = read_manifest(out_dir)
    results, scorer = _scored(out_dir, score)
    variants = _variant_order(results, manifest)
    base = _baseline(baseline, variants)
    prov = _provenance(out_dir, manifest, variants, base, scorer)
    paths = ReportPaths(
        results=out_dir / RESULTS,
        summary=out_dir / SUMMARY,
        comparison=out_dir / COMPARISON,
        side_by_side=out_dir / SIDE_BY_SIDE,
        html=out_dir / REPORT_HTML,
    )
    if score is not None:
        _write_results(paths.results, results, scorer)
    summary = compare.summarize(results, variants=variants, options=options)
    comparison = compare.compare_variants(results, base, variants=variants, options=options)
    rows = compare.side_by_side(results, base, variants=variants)
    for path, frame in ((paths.summary, summary), (paths.comparison, comparison)):
        _write_frame(path, frame, prov)
    _write_frame(paths.side_by_side, rows, prov)
    label = _score_label(scorer)
    verdicts = verdict_lines(comparison, score_label=label, confidence=options.confidence)
    html = render_report(
        provenance=prov.as_dict(),
        verdicts=verdicts,
        summary=summary,
        comparison=comparison,
        side_by_side=rows,
        latency=_latency_boxes(results),
        score_label=label,
    )
    atomic_write_text(paths.html, html)
    return paths


# ------------------------------------------------------------------------------- loading


def _scored(out_dir: Path, score: str | None) -> tuple[pl.DataFrame, str | None]:
    """The results, scored with ``score`` or carrying their stored scores; and the scorer."""
    scorer = parse_scorer(score) if score is not None else None  # a bad spec fails first
    results = read_results(out_dir)
    if scorer is not None:
        return score_results(results, scorer), scorer.spec
    if SCORE_COLUMN in results.columns:
        return results, _stored_scorer(out_dir / RESULTS)
    return results.with_columns(pl.lit(None, dtype=pl.Float64).alias(SCORE_COLUMN)), None


def _stored_scorer(path: Path) -> str | None:
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(SCORER_KEY)
    return raw.decode("utf-8") if raw else None


def _variant_order(results: pl.DataFrame, manifest: Mapping[str, Any]) -> list[str]:
    """The run's ``--variant`` order, then any other variant found in the results."""
    present = compare.variants_of(results)
    configured = [str(v) for v in (manifest.get("config") or {}).get("variants", [])]
    return [v for v in configured if v in present] + [v for v in present if v not in configured]


def _baseline(baseline: str | None, variants: Sequence[str]) -> str:
    if not variants:
        raise ConfigError("the results hold no rows: nothing to report")
    if baseline is None:
        return variants[0]
    if baseline not in variants:
        raise ConfigError(
            f"--baseline-variant {baseline!r} is not in the results; "
            f"variants: {', '.join(variants)}"
        )
    return baseline


def _provenance(
    out_dir: Path,
    manifest: Mapping[str, Any],
    variants: Sequence[str],
    baseline: str,
    scorer: str | None,
) -> Provenance:
    config = manifest.get("config") or {}
    return Provenance(
        out_dir=str(out_dir),
        run_id=manifest.get("run_id"),
        status=manifest.get("status"),
        deployment=config.get("deployment"),
        variants=tuple(variants),
        baseline=baseline,
        repeat=config.get("repeat"),
        dataset_fingerprint=manifest.get("dataset_fingerprint"),
        started_at=manifest.get("started_at"),
        finished_at=manifest.get("finished_at"),
        scorer=scorer,
        versions=manifest.get("versions") or {},
        config=config,
        report_versions=_report_versions(),
        generated_at=f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
    )


def _report_versions() -> dict[str, str]:
    return package_versions(_REPORT_PACKAGES)


# ------------------------------------------------------------------------------- writing


def _write_results(path: Path, results: pl.DataFrame, scorer: str | None) -> None:
    """Rewrite ``results.parquet`` with its score column, keeping the result schema's types."""
    table = results.to_arrow()
    fields = [
        RESULT_SCHEMA.field(name) if name in RESULT_SCHEMA.names else table.schema.field(name)
        for name in table.column_names
    ]
    metadata = {SCORER_KEY: scorer.encode("utf-8")} if scorer else None
    atomic_write_parquet(path, table.cast(pa.schema(fields, metadata=metadata)))


def _write_frame(path: Path, frame: pl.DataFrame, prov: Provenance) -> None:
    table = frame.to_arrow()
    provenance = json.dumps(prov.as_dict(), default=str).encode("utf-8")
    atomic_write_parquet(path, table.replace_schema_metadata({PROVENANCE_KEY: provenance}))


def _latency_boxes(results: pl.DataFrame) -> pl.DataFrame:
    """Per variant, the five numbers of a latency box plot (ok rows), whiskers at p5 and p95."""
    latency = pl.col("latency_ms").filter(pl.col("status") == STATUS_OK)
    quantiles = {"p5": 0.05, "q1": 0.25, "median": 0.5, "q3": 0.75, "p95": 0.95}
    return (
        results.lazy()
        .group_by("variant", maintain_order=True)
        .agg(
            *[latency.quantile(q, "linear").alias(name) for name, q in quantiles.items()],
            latency.mean().alias("mean"),
        )
        .collect()
    )


# ------------------------------------------------------------------------------- wording


_LABELS: Final = {
    "exact": "exact match",
    "normalized": "normalized match",
    "contains": "contains expected",
    "json": "JSON match",
    "number": "numeric match",
}


def _score_label(scorer: str | None) -> str:
    if scorer is None:
        return "score"
    if scorer in _LABELS:
        return _LABELS[scorer]
    head = scorer.split(":", 1)[0]
    return {"regex": "regex match", "number": "numeric match"}.get(head, f"score ({scorer})")


def format_p(p: float | None) -> str:
    """``p = 0.039``, ``p < 0.001``, or ``p n/a``."""
    if p is None or math.isnan(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict_lines(
    comparison: pl.DataFrame, *, score_label: str = "score", confidence: float = 0.95
) -> list[str]:
    """One headline per compared variant, e.g.

    ``candidate: +6.1 points exact match, 95 % CI [+2.3, +9.8], p = 0.002; p95 latency +140 ms``
    """
    return [_verdict(row, score_label, confidence) for row in comparison.iter_rows(named=True)]


def _verdict(row: Mapping[str, Any], label: str, confidence: float) -> str:
    parts = []
    if row["score_diff"] is not None:
        low, high = row["score_diff_ci_low"] * 100, row["score_diff_ci_high"] * 100
        parts.append(
            f"{row['score_diff'] * 100:+.1f} points {label}, {confidence * 100:g} % CI "
            f"[{low:+.1f}, {high:+.1f}], {format_p(row['score_p_value'])}"
        )
    else:
        parts.append(f"no {label} to compare")
    if row["error_rate_diff"]:
        parts.append(
            f"error rate {row['error_rate_diff'] * 100:+.1f} points "
            f"({format_p(row['error_p_value'])})"
        )
    if row["latency_p95_diff_ms"] is not None:
        parts.append(f"p95 latency {row['latency_p95_diff_ms']:+.0f} ms")
    return f"{row['variant']}: " + "; ".join(parts)


def summary_table(summary: pl.DataFrame, *, title: str | None = None) -> Table:
    """The compact per-variant table printed at the end of a run (rich)."""
    table = Table(title=title)
    heads = ("variant", "rows", "errors", "p50 ms", "p95 ms", "tokens", "score [95 % CI]")
    for head in heads:
        table.add_column(head, justify="left" if head == "variant" else "right")
    for row in summary.iter_rows(named=True):
        table.add_row(
            row["variant"],
            str(row["rows"]),
            f"{row['errors']} ({row['error_rate'] * 100:.1f} %)",
            _num(row["latency_p50_ms"], ".0f"),
            _num(row["latency_p95_ms"], ".0f"),
            _num(row["tokens_mean"], ".0f"),
            _score_cell(row),
        )
    return table


def _num(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _score_cell(row: Mapping[str, Any]) -> str:
    if row["score_mean"] is None:
        return "–"
    text = f"{row['score_mean'] * 100:.1f}"
    if row["score_ci_low"] is not None:
        text += f" [{row['score_ci_low'] * 100:.1f}, {row['score_ci_high'] * 100:.1f}]"
    return text


# ---------------------------------------------------------------------------- regression


def write_regression(
    base_dir: Path,
    cand_dir: Path,
    out_dir: Path,
    gates: Gates,
    *,
    score: str | None = None,
    options: StatOptions = DEFAULT_OPTIONS,
) -> RegressionReport:
    """Compare two run directories, write ``regression.parquet`` and ``regression.md``.

    With ``score`` both runs are scored afresh (in memory; their files are left alone);
    without it the scores stored by ``runner report`` are used, and must come from one scorer.
    The caller decides the exit code, e.g. with :meth:`RegressionReport.raise_if_failed`.
    """
    base_results, base_scorer = _scored(base_dir, score)
    cand_results, cand_scorer = _scored(cand_dir, score)
    if base_scorer != cand_scorer:
        raise ConfigError(
            f"the runs were scored differently ({base_scorer or 'not scored'} in {base_dir}, "
            f"{cand_scorer or 'not scored'} in {cand_dir}); pass --score to score both alike"
        )
    report = compare.compare_runs(base_results, cand_results, gates, options=options)
    base_prov = _run_provenance(base_dir, base_scorer)
    cand_prov = _run_provenance(cand_dir, cand_scorer)
    provenance = {"baseline": base_prov, "candidate": cand_prov, "gates": gates}
    table = report.metrics.to_arrow().replace_schema_metadata(
        {PROVENANCE_KEY: json.dumps(provenance, default=_jsonable).encode("utf-8")}
    )
    atomic_write_parquet(out_dir / REGRESSION, table)
    markdown = regression_markdown(report, base_prov, cand_prov, _score_label(base_scorer))
    atomic_write_text(out_dir / REGRESSION_MD, markdown)
    return report


def _jsonable(value: object) -> object:
    if isinstance(value, Gates):
        return {name: getattr(value, name) for name in value.__slots__}
    return str(value)


def _run_provenance(out_dir: Path, scorer: str | None) -> dict[str, Any]:
    manifest = read_manifest(out_dir)
    return {
        "out_dir": str(out_dir),
        "run_id": manifest.get("run_id"),
        "deployment": (manifest.get("config") or {}).get("deployment"),
        "dataset_fingerprint": manifest.get("dataset_fingerprint"),
        "finished_at": manifest.get("finished_at"),
        "versions": manifest.get("versions") or {},
        "scorer": scorer,
    }


def regression_markdown(
    report: RegressionReport,
    baseline: Mapping[str, Any],
    candidate: Mapping[str, Any],
    score_label: str = "score",
) -> str:
    """A markdown summary of ``runner compare`` fit for a CI job summary."""
    verdict = "PASS" if report.passed else "FAIL"
    lines = [
        f"## Regression check: {verdict}",
        "",
        f"Baseline `{baseline['run_id']}` ({baseline['out_dir']}) against candidate "
        f"`{candidate['run_id']}` ({candidate['out_dir']}), rows matched on row_id, variant "
        f"and repeat. Score: {score_label}.",
        "",
        *_warnings(report, baseline, candidate),
        *_gate_table(report),
        "",
        "Error rates and scores change in percentage points, p95 latency in percent of the "
        "baseline's (rows ok in both runs), agreement is the share of identical outputs.",
        "",
        *_metrics_table(report.metrics),
    ]
    return "\n".join(lines) + "\n"


def _warnings(
    report: RegressionReport, baseline: Mapping[str, Any], candidate: Mapping[str, Any]
) -> list[str]:
    notes = []
    if baseline["dataset_fingerprint"] != candidate["dataset_fingerprint"]:
        notes.append("the two runs read different datasets (dataset fingerprints differ)")
    if baseline["deployment"] != candidate["deployment"]:
        notes.append(f"deployments differ: {baseline['deployment']} and {candidate['deployment']}")
    if report.unmatched_baseline or report.unmatched_candidate:
        notes.append(
            f"unmatched result rows: {report.unmatched_baseline} only in the baseline, "
            f"{report.unmatched_candidate} only in the candidate"
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


def _metrics_table(metrics: pl.DataFrame) -> list[str]:
    lines = [
        "| variant | pairs | score base → cand | Δ score [95 % CI] | test, p "
        "| error rate base → cand | p95 ms base → cand | identical outputs |",
        "|---|---:|---|---|---|---|---|---:|",
    ]
    for r in metrics.iter_rows(named=True):
        lines.append(
            f"| {r['variant']} | {r['pairs']} "
            f"| {_pct(r['baseline_score'])} → {_pct(r['candidate_score'])} "
            f"| {_diff_ci(r)} | {r['score_test'] or '–'}, {format_p(r['score_p_value'])} "
            f"| {_pct(r['baseline_error_rate'])} → {_pct(r['candidate_error_rate'])} "
            f"| {_num(r['baseline_latency_p95_ms'], '.0f')} → "
            f"{_num(r['candidate_latency_p95_ms'], '.0f')} "
            f"| {_pct(r['identical_share'])} |"
        )
    return lines


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f} %"


def _diff_ci(row: Mapping[str, Any]) -> str:
    if row["score_diff"] is None:
        return "–"
    return (
        f"{row['score_diff'] * 100:+.1f} [{row['score_diff_ci_low'] * 100:+.1f}, "
        f"{row['score_diff_ci_high'] * 100:+.1f}] points"
    )
