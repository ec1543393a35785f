"""Reports from a run directory: the I/O edge around :mod:`runner.stats._compare`.

:func:`build_reports` reads ``OUT/results.parquet`` and ``OUT/manifest.json``, scores, and
writes, each atomically::

    OUT/results.parquet       the results with their ``score`` and ``score_error`` columns
    OUT/summary.parquet       one row per variant, with its top error types
    OUT/comparison.parquet    each variant against the baseline (two variants or more)
    OUT/side_by_side.parquet  one row per row, every variant's answer (likewise)
    OUT/report.html           all of it for people, one self-contained file

Gates (``runner compare``, ``runner gate``) live in :mod:`runner.gates._regression`. Every file
carries the run's provenance (run id, config, dataset fingerprint, versions): the parquet
files as key-value metadata (``runner.store.with_provenance``), the HTML and markdown in words.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from runner import stats as compare
from runner import stats as segments
from runner.errors import StorageError
from runner.report._baseline_section import comparison_section, with_baseline_section
from runner.report._html import MAX_CHANGED_ROWS, render_report
from runner.score import plain_field, score_file
from runner.stats import (
    DEFAULT_OPTIONS,
    StatOptions,
    baseline_of,
    bucketed_side_by_side,
    score_label,
    verdict_lines,
)
from runner.store import (
    DEFAULT_MEMORY,
    MemoryPlan,
    Provenance,
    RunDir,
    atomic_path,
    atomic_write_parquet,
    atomic_write_text,
    describe_os_error,
    package_versions,
    scan_scored,
    under_lock,
    with_provenance,
)

_REPORT_PACKAGES: Final = ("runner", "polars", "numpy", "scipy")


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where :func:`build_reports` wrote each file, and what it has to say about scoring.

    With one variant there is nothing to compare or set side by side: ``comparison`` and
    ``side_by_side`` are ``None`` and neither file is left in ``OUT`` (one left by an earlier
    report of more variants is removed). Without segments the ``*_by_segment`` paths are
    ``None``.
    """

    results: Path
    summary: Path
    comparison: Path | None
    side_by_side: Path | None
    html: Path
    notes: tuple[str, ...] = ()
    """One line each, e.g. ``12 rows have no expected value: not scored``."""
    summary_by_segment: Path | None = None
    comparison_by_segment: Path | None = None


@under_lock
def build_reports(
    out_dir: Path,
    *,
    score: str | None = None,
    baseline: str | None = None,
    options: StatOptions = DEFAULT_OPTIONS,
    segments: Sequence[str] = (),
    memory: MemoryPlan = DEFAULT_MEMORY,
) -> ReportPaths:
    """Score ``OUT/results.parquet`` (when ``score`` is given) and write every report of ``OUT``.

    Without ``score`` the ``score`` column already in the results is used, if any. Calls no
    API, so it can be run again at any time, with another scorer or baseline. A scorer that
    fails on a row leaves that row unscored with its ``score_error``; every report is written.
    ``segments`` (metadata or input columns) adds ``summary_by_segment.parquet`` and
    ``comparison_by_segment.parquet`` and their tables in ``report.html``.

    Memory does not grow with the run: every query scans ``results.parquet`` lazily with the
    columns it needs on the streaming engine, outputs are compared by hash, side_by_side is
    written by streaming sinks, and the HTML collects only the rows it shows. ``memory`` sets
    the size of those pieces (rescoring batches, pairing parts, side-by-side buckets); the
    files are the same under any plan.
    """
    rundir = RunDir(out_dir)
    facts = rundir.provenance()
    scorer, notes = score_file(out_dir, score, memory=memory)
    results = compare.lazy_results(scan_scored(out_dir))
    variants = compare.variant_order(results, facts.variants)
    base = baseline_of(baseline, variants)
    prov = facts.for_report(
        variants, base, scorer,
        report_versions=package_versions(_REPORT_PACKAGES),
        generated_at=f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
    )  # fmt: skip
    several = len(variants) > 1
    summary = compare.summarize(results, variants=variants, options=options)
    comparison = (
        compare.compare_variants(results, base, variants=variants, options=options, memory=memory)
        if several
        else compare.metrics_frame([], {"baseline": pl.String(), "variant": pl.String()})
    )
    summary, comparison = _with_judges(rundir, results, summary, comparison)
    _write_frame(rundir.summary, summary, prov)
    shown, changed_total = pl.DataFrame(), 0
    if several:
        _write_frame(rundir.comparison, comparison, prov)
        shown, changed_total = _write_side_by_side(rundir, results, base, variants, prov, memory)
    else:
        for stale in (rundir.comparison, rundir.side_by_side):  # left by an earlier report
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
    by_segment = _segment_reports(rundir, results, segments, base, variants, options, prov)
    label = score_label(scorer)
    html = render_report(
        provenance=prov.as_dict(),
        verdicts=verdict_lines(comparison, score_label=label, confidence=options.confidence),
        notes=notes,
        summary=summary,
        comparison=comparison if several else None,
        changed_rows=_with_reasons(rundir, results, shown, base) if several else None,
        changed_total=changed_total,
        latency=compare.latency_boxes(results),
        score_label=label,
        summary_by_segment=by_segment[0] if by_segment else None,
        comparison_by_segment=by_segment[1] if by_segment and several else None,
    )
    html = with_baseline_section(html, comparison_section(out_dir))  # a comparison made before
    atomic_write_text(rundir.report_html, html)
    return ReportPaths(
        results=rundir.results,
        summary=rundir.summary,
        comparison=rundir.comparison if several else None,
        side_by_side=rundir.side_by_side if several else None,
        html=rundir.report_html,
        notes=notes,
        summary_by_segment=rundir.summary_by_segment if by_segment else None,
        comparison_by_segment=rundir.comparison_by_segment if by_segment else None,
    )


def _with_judges(
    rundir: RunDir, results: pl.LazyFrame, summary: pl.DataFrame, comparison: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What the judges said, next to the rest: the pairwise result in the comparison; a
    second (judge) score, its agreement with the deterministic one and judge errors in the
    summary."""
    from runner.stats import judge_agreement, pairwise_metrics

    names = results.collect_schema().names()
    if "judge_error" in names:
        errors = results.group_by("variant").agg(
            pl.col("judge_error").is_not_null().sum().cast(pl.Int64).alias("judge_errors")
        )
        summary = summary.join(errors.collect(), on="variant", how="left", maintain_order="left")
    if "judge_score" in names:
        judged = results.group_by("variant").agg(
            pl.col("judge_score").count().cast(pl.Int64).alias("judge_scored"),
            pl.col("judge_score").mean().alias("judge_score_mean"),
        )
        summary = summary.join(judged.collect(), on="variant", how="left", maintain_order="left")
        both = results.select("variant", "score", "judge_score").collect()
        agreement = judge_agreement(both, "score", "judge_score")
        summary = summary.join(agreement, on="variant", how="left", maintain_order="left")
    if rundir.pairwise.exists() and comparison.height:
        metrics = pairwise_metrics(pl.read_parquet(rundir.pairwise))
        comparison = comparison.join(metrics, on="variant", how="left", maintain_order="left")
    return summary, comparison


def _with_reasons(
    rundir: RunDir, results: pl.LazyFrame, shown: pl.DataFrame, baseline: str
) -> pl.DataFrame:
    """The changed rows to show, with what the judges said of each answer: the pointwise
    judge's reason (``reason_<variant>``) and the pairwise verdict and reason of each candidate
    against the baseline (``pairwise_<variant>``, ``pairwise_reason_<variant>``)."""
    if not shown.height:
        return shown
    keys = ["row_id", "repeat"]
    wanted = shown.select(pl.col("row_id"), pl.col("repeat").cast(pl.Int64))
    names = results.collect_schema().names()
    column = next((c for c in ("judge_reason", "score_reason") if c in names), None)
    out = shown.with_columns(pl.col("repeat").cast(pl.Int64))
    if column is not None:
        reasons = (
            results.select("row_id", pl.col("repeat").cast(pl.Int64), "variant", column)
            .join(wanted.lazy(), on=keys, how="semi")
            .collect(engine=compare.ENGINE)
        )
        for (variant,), group in reasons.group_by("variant"):
            out = out.join(
                group.select(*keys, pl.col(column).alias(f"reason_{variant}")),
                on=keys, how="left", maintain_order="left",
            )  # fmt: skip
    if rundir.pairwise.exists():
        pairwise = pl.read_parquet(rundir.pairwise).with_columns(pl.col("repeat").cast(pl.Int64))
        pairwise = pairwise.filter(pl.col("baseline") == baseline).join(wanted, on=keys, how="semi")
        for (variant,), group in pairwise.group_by("variant"):
            out = out.join(
                group.select(
                    *keys,
                    pl.col("verdict").alias(f"pairwise_{variant}"),
                    pl.coalesce("reason_AB", "reason_BA").alias(f"pairwise_reason_{variant}"),
                ),
                on=keys, how="left", maintain_order="left",
            )  # fmt: skip
    return out


def _write_side_by_side(
    rundir: RunDir,
    results: pl.LazyFrame,
    baseline: str,
    variants: Sequence[str],
    prov: Provenance,
    memory: MemoryPlan,
) -> tuple[pl.DataFrame, int]:
    """Stream side_by_side.parquet to disk; return the first changed rows and their number.

    The rows are joined and flagged a bucket of row ids at a time and merged into their
    report order (:func:`runner.stats._side_by_side.bucketed_side_by_side`): no step holds the
    table. The changed rows come first in that order, so the ones the HTML shows are the
    first rows written.
    """
    empty = compare.in_side_by_side_order(
        compare.side_by_side_flagged(results.head(0), baseline, variants=variants)
    )
    schema = with_provenance(
        pa.schema([plain_field(f) for f in empty.collect().to_arrow().schema]), prov
    )
    shown: list[pl.DataFrame] = []
    target = rundir.side_by_side
    # ".compact-*": the scratch name remove_stale_temps clears after a killed writer.
    try:
        with tempfile.TemporaryDirectory(dir=rundir.root, prefix=".compact-sbs-") as scratch:
            table = bucketed_side_by_side(
                rundir.root, baseline, variants=variants, scratch=Path(scratch), memory=memory
            )
            wanted = min(MAX_CHANGED_ROWS, table.changed)
            with (
                atomic_path(target) as tmp,
                pq.ParquetWriter(tmp, schema, compression="zstd") as out,
            ):
                taken = 0
                for batch in table.batches(memory.side_by_side_write_rows):
                    out.write_table(batch.to_arrow().cast(schema))
                    if taken < wanted:
                        shown.append(batch.head(wanted - taken))
                        taken += shown[-1].height
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {describe_os_error(exc)}") from exc
    except (pl.exceptions.PolarsError, pa.ArrowException) as exc:
        raise StorageError(f"cannot write {target}: {exc}") from exc
    rows = pl.concat(shown, how="vertical") if shown else empty.collect()
    return rows, table.changed


def _segment_reports(
    rundir: RunDir,
    results: pl.LazyFrame,
    columns: Sequence[str],
    baseline: str,
    variants: Sequence[str],
    options: StatOptions,
    prov: Provenance,
) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    if not columns:
        return None
    columns = list(dict.fromkeys(columns))
    summary = segments.summary_by_segment(results, columns, variants=variants, options=options)
    comparison = segments.comparison_by_segment(
        results, columns, baseline, variants=variants, options=options
    )
    _write_frame(rundir.summary_by_segment, summary, prov)
    _write_frame(rundir.comparison_by_segment, comparison, prov)
    return summary, comparison


# ------------------------------------------------------------------------------- writing


def _write_frame(path: Path, frame: pl.DataFrame, prov: Provenance) -> None:
    atomic_write_parquet(path, with_provenance(frame.to_arrow(), prov))
