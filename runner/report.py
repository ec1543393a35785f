"""Reports from a run directory: the I/O edge around :mod:`runner.compare`.

:func:`build_reports` reads ``OUT/results.parquet`` and ``OUT/manifest.json``, scores, and
writes, each atomically::

    OUT/results.parquet       the results with their ``score`` and ``score_error`` columns
    OUT/summary.parquet       one row per variant, with its top error types
    OUT/comparison.parquet    each variant against the baseline
    OUT/side_by_side.parquet  one row per row, every variant's answer
    OUT/report.html           all of it for people, one self-contained file

Gates (``runner compare``, ``runner gate``) live in :mod:`runner.regression`. Every file
carries the run's provenance (run id, config, dataset fingerprint, versions): the parquet
files as key-value metadata ``runner.provenance``, the HTML and markdown in words. The run's
manifest is read in one place, :func:`read_run_facts`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from runner import compare
from runner.compare import DEFAULT_OPTIONS, StatOptions
from runner.errors import ConfigError
from runner.fsutil import atomic_write_parquet, atomic_write_text
from runner.provenance import package_versions
from runner.records import RESULT_SCHEMA, STATUS_OK
from runner.report_html import render_report
from runner.results import RESULTS, read_manifest, read_results
from runner.scoring import (
    SCORE_COLUMN,
    SCORE_ERROR_COLUMN,
    missing_expected,
    parse_scorer,
    score_results,
)

if TYPE_CHECKING:
    from runner.gates import Gates, RegressionReport

SUMMARY: Final = "summary.parquet"
COMPARISON: Final = "comparison.parquet"
SIDE_BY_SIDE: Final = "side_by_side.parquet"
REPORT_HTML: Final = "report.html"

#: Parquet key-value metadata: the scorer spec behind the ``score`` column, and provenance.
SCORER_KEY: Final = b"runner.score"
PROVENANCE_KEY: Final = b"runner.provenance"

_REPORT_PACKAGES: Final = ("runner", "polars", "numpy", "scipy", "plotly")


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the reports need from a run's manifest."""

    out_dir: Path
    run_id: str | None
    status: str | None
    deployment: str | None
    variants: tuple[str, ...]
    repeat: int | None
    dataset_fingerprint: str | None
    started_at: str | None
    finished_at: str | None
    versions: Mapping[str, Any]
    config: Mapping[str, Any]


def read_run_facts(out_dir: Path) -> RunFacts:
    """The one place reports read ``OUT/manifest.json`` (:class:`ResultsDirError` if unusable)."""
    manifest = read_manifest(out_dir)
    config = manifest.get("config") or {}
    return RunFacts(
        out_dir=out_dir,
        run_id=manifest.get("run_id"),
        status=manifest.get("status"),
        deployment=config.get("deployment"),
        variants=tuple(str(v) for v in config.get("variants") or ()),
        repeat=config.get("repeat"),
        dataset_fingerprint=manifest.get("dataset_fingerprint"),
        started_at=manifest.get("started_at"),
        finished_at=manifest.get("finished_at"),
        versions=manifest.get("versions") or {},
        config=config,
    )


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where :func:`build_reports` wrote each file, and what it has to say about scoring."""

    results: Path
    summary: Path
    comparison: Path
    side_by_side: Path
    html: Path
    notes: tuple[str, ...] = ()
    """One line each, e.g. ``12 rows have no expected value: not scored``."""


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


@dataclass(frozen=True, slots=True)
class Scored:
    """A run's results with their scores, the scorer behind them, and notes on scoring."""

    results: pl.DataFrame
    scorer: str | None
    notes: tuple[str, ...] = ()


def build_reports(
    out_dir: Path,
    *,
    score: str | None = None,
    baseline: str | None = None,
    options: StatOptions = DEFAULT_OPTIONS,
) -> ReportPaths:
    """Score ``OUT/results.parquet`` (when ``score`` is given) and write every report of ``OUT``.

    Without ``score`` the ``score`` column already in the results is used, if any. Calls no
    API, so it can be run again at any time, with another scorer or baseline. A scorer that
    fails on a row leaves that row unscored with its ``score_error``; every report is written.
    """
    facts = read_run_facts(out_dir)
    scored = scored_results(out_dir, score)
    results, scorer = scored.results, scored.scorer
    variants = variant_order(results, facts)
    base = baseline_of(baseline, variants)
    prov = _provenance(facts, variants, base, scorer)
    paths = ReportPaths(
        results=out_dir / RESULTS,
        summary=out_dir / SUMMARY,
        comparison=out_dir / COMPARISON,
        side_by_side=out_dir / SIDE_BY_SIDE,
        html=out_dir / REPORT_HTML,
        notes=scored.notes,
    )
    if score is not None:
        _write_results(paths.results, results, scorer)
    summary = compare.summarize(results, variants=variants, options=options)
    comparison = compare.compare_variants(results, base, variants=variants, options=options)
    rows = compare.side_by_side(results, base, variants=variants)
    for path, frame in ((paths.summary, summary), (paths.comparison, comparison)):
        _write_frame(path, frame, prov)
    _write_frame(paths.side_by_side, rows, prov)
    label = score_label(scorer)
    verdicts = verdict_lines(comparison, score_label=label, confidence=options.confidence)
    html = render_report(
        provenance=prov.as_dict(),
        verdicts=verdicts,
        notes=scored.notes,
        summary=summary,
        comparison=comparison,
        side_by_side=rows,
        latency=_latency_boxes(results),
        score_label=label,
    )
    atomic_write_text(paths.html, html)
    return paths


def write_regression(
    base_dir: Path,
    cand_dir: Path,
    out_dir: Path,
    gates: Gates,
    **kwargs: Any,
) -> RegressionReport:
    """:func:`runner.regression.write_regression`, kept here for ``runner.write_regression``."""
    from runner.regression import write_regression as write

    return write(base_dir, cand_dir, out_dir, gates, **kwargs)


# ------------------------------------------------------------------------------- loading


def scored_results(out_dir: Path, score: str | None) -> Scored:
    """The results of ``out_dir``, scored with ``score`` or carrying their stored scores."""
    scorer = parse_scorer(score) if score is not None else None  # a bad spec fails first
    results = read_results(out_dir)
    if scorer is not None:
        scored = score_results(results, scorer)
        return Scored(
            scored, scorer.spec, _scoring_notes(scored, missing_expected(results, scorer))
        )
    if SCORE_COLUMN not in results.columns:
        results = results.with_columns(pl.lit(None, dtype=pl.Float64).alias(SCORE_COLUMN))
        return Scored(results, None)
    stored = _stored_scorer(out_dir / RESULTS)
    return Scored(results, stored, _scoring_notes(results, 0))


def _scoring_notes(results: pl.DataFrame, no_expected: int) -> tuple[str, ...]:
    notes = []
    if no_expected:
        notes.append(f"{no_expected:,} rows have no expected value: not scored")
    if SCORE_ERROR_COLUMN in results.columns:
        failed = results[SCORE_ERROR_COLUMN].drop_nulls()
        if failed.len():
            notes.append(
                f"the scorer failed on {failed.len():,} rows (score left empty; first: "
                f"{failed[0]}); see score_error in results.parquet"
            )
    return tuple(notes)


def _stored_scorer(path: Path) -> str | None:
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(SCORER_KEY)
    return raw.decode("utf-8") if raw else None


def variant_order(results: pl.DataFrame, facts: RunFacts) -> list[str]:
    """The run's ``--variant`` order, then any other variant found in the results."""
    present = compare.variants_of(results)
    configured = list(facts.variants)
    return [v for v in configured if v in present] + [v for v in present if v not in configured]


def baseline_of(baseline: str | None, variants: Sequence[str]) -> str:
    """``baseline`` checked against ``variants``, or the first variant when it is None."""
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
    facts: RunFacts, variants: Sequence[str], baseline: str, scorer: str | None
) -> Provenance:
    return Provenance(
        out_dir=str(facts.out_dir),
        run_id=facts.run_id,
        status=facts.status,
        deployment=facts.deployment,
        variants=tuple(variants),
        baseline=baseline,
        repeat=facts.repeat,
        dataset_fingerprint=facts.dataset_fingerprint,
        started_at=facts.started_at,
        finished_at=facts.finished_at,
        scorer=scorer,
        versions=facts.versions,
        config=facts.config,
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
        RESULT_SCHEMA.field(name)
        if name in RESULT_SCHEMA.names
        else _plain(table.schema.field(name))
        for name in table.column_names
    ]
    metadata = {SCORER_KEY: scorer.encode("utf-8")} if scorer else None
    atomic_write_parquet(path, table.cast(pa.schema(fields, metadata=metadata)))


def _plain(field: pa.Field) -> pa.Field:
    """polars writes large strings; the result columns are plain ones."""
    return field.with_type(pa.string()) if pa.types.is_large_string(field.type) else field


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


def score_label(scorer: str | None) -> str:
    """How reports name the score of ``scorer``: ``exact match``, ``score (mod:fn)``."""
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


_TESTS: Final = {
    "mcnemar_exact": "McNemar exact test",
    "paired_t": "paired t-test",
    "wilcoxon": "Wilcoxon signed-rank test",
}


def test_name(test: str | None) -> str:
    """How a sentence names the test behind a p-value."""
    return _TESTS.get(test or "", test or "no test")


def verdict_lines(
    comparison: pl.DataFrame, *, score_label: str = "score", confidence: float = 0.95
) -> list[str]:
    """One sentence per compared variant, its verdict in words first, e.g.

    ``candidate: better on exact match: +6.1 points, 95 % CI [+2.3, +9.8], paired t-test
    p = 0.002; p95 latency +140 ms``

    The word comes from :func:`runner.compare.score_verdict` at ``1 - confidence``, the rule
    gates use; the interval is the one that agrees with the named test.
    """
    return [_verdict(row, score_label, confidence) for row in comparison.iter_rows(named=True)]


def score_sentence(row: Mapping[str, Any], label: str, confidence: float) -> str:
    """``worse on exact match: -20.0 points, 95 % CI [-40.0, -5.0], McNemar exact test p = 0.012``
    from one row of paired metrics; ``no exact match to compare`` without scored pairs."""
    diff = row.get("score_diff")
    if diff is None:
        return f"no {label} to compare"
    p_value = row.get("score_p_value")
    word = compare.score_verdict(diff, p_value, 1.0 - confidence)
    text = f"{word} on {label}: {diff * 100:+.1f} points"
    low, high = row.get("score_diff_ci_low"), row.get("score_diff_ci_high")
    if low is not None and high is not None:
        text += f", {confidence * 100:g} % CI [{low * 100:+.1f}, {high * 100:+.1f}]"
    return f"{text}, {test_name(row.get('score_test'))} {format_p(p_value)}"


def _verdict(row: Mapping[str, Any], label: str, confidence: float) -> str:
    parts = [score_sentence(row, label, confidence)]
    if row["error_rate_diff"]:
        parts.append(
            f"error rate {row['error_rate_diff'] * 100:+.1f} points "
            f"({format_p(row['error_p_value'])})"
        )
    if row["latency_p95_diff_ms"] is not None:
        parts.append(f"p95 latency {row['latency_p95_diff_ms']:+.0f} ms")
    return f"{row['variant']}: " + "; ".join(parts)
