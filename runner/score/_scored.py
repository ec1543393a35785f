"""A run's results, scored: in memory (:func:`scored_results`, what the gates compare) or into
``OUT/scores.parquet`` (:func:`score_file`, what the reports read).

Scoring a run writes ``scores.parquet`` a batch at a time, row for row with
``results.parquet`` (never rewritten), with the scorer's spec in its Parquet metadata
(:data:`SCORER_KEY`), so a later report knows how it was scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from runner import stats as compare
from runner.errors import ResultsDirError, StorageError
from runner.records import RESULT_SCHEMA
from runner.score._scoring import (
    SCORE_COLUMN,
    SCORE_ERROR_COLUMN,
    Scorer,
    missing_expected,
    parse_scorer,
    score_results,
)
from runner.store import (
    DEFAULT_MEMORY,
    JUDGE_KEY,
    SCORER_KEY,
    MemoryPlan,
    RunDir,
    atomic_path,
    read_results,
    scan_scored,
)


@dataclass(frozen=True, slots=True)
class Scored:
    """A run's results with their scores, the scorer behind them, and notes on scoring."""

    results: pl.DataFrame
    scorer: str | None
    notes: tuple[str, ...] = ()


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
    return Scored(results, stored_scorer(out_dir), _scoring_notes(results, 0))


def _scoring_notes(results: pl.DataFrame | pl.LazyFrame, no_expected: int) -> tuple[str, ...]:
    notes = []
    if no_expected:
        notes.append(f"{no_expected:,} rows have no expected value: not scored")
    lf = results.lazy()
    if SCORE_ERROR_COLUMN in lf.collect_schema().names():
        failed = pl.col(SCORE_ERROR_COLUMN).drop_nulls()
        row = lf.select(failed.len().alias("n"), failed.first().alias("first")).collect(
            engine=compare.ENGINE
        )
        if row["n"][0]:
            notes.append(
                f"the scorer failed on {row['n'][0]:,} rows (score left empty; first: "
                f"{row['first'][0]}); see score_error in results.parquet"
            )
    return tuple(notes)


def score_file(
    out_dir: Path, score: str | None, *, memory: MemoryPlan = DEFAULT_MEMORY
) -> tuple[str | None, tuple[str, ...]]:
    """Score the run's results when ``score`` is given, into ``OUT/scores.parquet`` (streamed:
    the results are never all in memory, and ``results.parquet`` is never rewritten); return
    the scorer behind the run's score column and the scoring notes.

    A built-in scorer (a polars expression of the output and expected value) that already
    scored the run, by the spec stored in ``scores.parquet``, leaves it as it is: it would
    write the same scores. A scorer from a module is always run again: its code may have
    changed. Scored ``memory.score_rows`` rows at a time, a row group of ``scores.parquet``
    each.
    """
    scorer = parse_scorer(score) if score is not None else None  # a bad spec fails first
    rundir = RunDir(out_dir)
    path, target = rundir.results, rundir.scores
    if not path.exists():
        raise ResultsDirError(f"{path} does not exist; run the job first (or resume it)")
    if scorer is None:
        if SCORE_COLUMN not in scan_scored(out_dir).collect_schema().names():
            return None, ()
        return stored_scorer(out_dir), _scoring_notes(scan_scored(out_dir), 0)
    if target.exists() and scorer.expr is not None and _stored_scorer(target) == scorer.spec:
        no_expected = _missing_expected(path, scorer, memory.score_rows)
        return scorer.spec, _scoring_notes(scan_scored(out_dir), no_expected)
    schema = _results_schema(
        score_results(scan_results(path).head(0), scorer)
        .select(SCORE_COLUMN, SCORE_ERROR_COLUMN)
        .collect()
        .to_arrow()
        .schema,
        scorer.spec,
    )
    no_expected = 0
    # pyarrow reads the file a batch at a time and each batch is scored on its own: the
    # streaming engine's collect_batches ran ahead of the writer (0.7 GB at 2 M rows).
    # Small batches, no read-ahead, no reader threads and the pool released after each batch:
    # 425 -> 255 MB at 2 M rows (BENCHMARKS.md).
    source = pq.ParquetFile(path, pre_buffer=False)
    pool = pa.default_memory_pool()
    try:
        with atomic_path(target) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as out:
            for batch in source.iter_batches(batch_size=memory.score_rows, use_threads=False):
                frame = pl.from_arrow(batch)
                assert isinstance(frame, pl.DataFrame)
                no_expected += missing_expected(frame, scorer)
                scored = score_results(frame, scorer).select(SCORE_COLUMN, SCORE_ERROR_COLUMN)
                out.write_table(scored.to_arrow().cast(schema))
                del batch, frame, scored
                pool.release_unused()
    except (pl.exceptions.PolarsError, pa.ArrowException) as exc:
        raise StorageError(f"cannot write {target}: {exc}") from exc
    finally:
        source.close()
    return scorer.spec, _scoring_notes(scan_scored(out_dir), no_expected)


def stored_scorer(out_dir: Path) -> str | None:
    """The scorer behind the run's ``score`` column: the one that wrote ``scores.parquet``,
    else the pointwise judge (``judge grader:v1``), else one an older runner stored in
    ``results.parquet``; None when the run has no score."""
    rundir = RunDir(out_dir)
    if rundir.scores.exists():
        return _stored_scorer(rundir.scores)
    if rundir.judgements.exists():
        raw = (pq.read_schema(rundir.judgements).metadata or {}).get(JUDGE_KEY)
        return raw.decode("utf-8") if raw else "judge"
    return _stored_scorer(rundir.results) if rundir.results.exists() else None


def _missing_expected(path: Path, scorer: Scorer, batch_rows: int) -> int:
    """:func:`missing_expected` over the file, a batch of two columns at a time."""
    if not scorer.needs_expected:
        return 0
    source = pq.ParquetFile(path, pre_buffer=False)
    try:
        total = 0
        batches = source.iter_batches(
            batch_size=batch_rows, columns=["status", "expected"], use_threads=False
        )
        for batch in batches:
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            total += missing_expected(frame, scorer)
        return total
    finally:
        source.close()


def _results_schema(schema: pa.Schema, scorer: str | None) -> pa.Schema:
    """The result schema's own types for its columns (plain strings for the others), and the
    scorer in the metadata."""
    fields = [
        RESULT_SCHEMA.field(field.name) if field.name in RESULT_SCHEMA.names else plain_field(field)
        for field in schema
    ]
    metadata = {SCORER_KEY: scorer.encode("utf-8")} if scorer else None
    return pa.schema(fields, metadata=metadata)


def _stored_scorer(path: Path) -> str | None:
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(SCORER_KEY)
    return raw.decode("utf-8") if raw else None


def scan_results(path: Path) -> pl.LazyFrame:
    if not path.exists():
        raise ResultsDirError(f"{path} does not exist; run the job first (or resume it)")
    return pl.scan_parquet(path)


def plain_field(field: pa.Field) -> pa.Field:
    """polars writes large strings and string views; the result columns are plain strings."""
    if pa.types.is_large_string(field.type) or pa.types.is_string_view(field.type):
        return field.with_type(pa.string())
    return field
