"""Durable result storage: the run directory, its manifest and its results file.

Layout of a run directory ``OUT``::

    OUT/manifest.json            what the run is and how far it got (written atomically)
    OUT/journal.jsonl            one JSON line per finished call (:mod:`runner.store._journal`)
    OUT/journal.rejected.jsonl   damaged journal lines set aside by recovery, if any
    OUT/results.parquet          the journal compacted: one row per (row_id, variant, repeat)
                                 (:mod:`runner.store._compaction`)

This module is the door to all three: it re-exports the journal and compaction names the rest
of the runner uses, and :func:`read_manifest` gives the manifest as plain JSON (for tools and
tests; the runner itself reads the typed :class:`runner.store._manifest.Manifest`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import polars as pl
import pyarrow.parquet as pq

from runner.errors import ResultsDirError, StorageError
from runner.records import KEY_COLUMNS
from runner.store._compaction import compact
from runner.store._fsutil import describe_os_error
from runner.store._journal import (
    DoneKeys,
    Journal,
    cut_torn_tail,
    journal_schema,
    key_frame,
    key_hashes,
    read_done_keys,
    scan_journal,
)
from runner.store._manifest import MANIFEST
from runner.store._manifest import read_manifest_json as read_manifest
from runner.store._recovery import JournalRecovery, recover_journal
from runner.store._rundir import JOURNAL, REJECTED, RESULTS, RunDir

__all__ = [
    "JOURNAL",
    "MANIFEST",
    "REJECTED",
    "RESULTS",
    "SCORE_COLUMNS",
    "DoneKeys",
    "Journal",
    "JournalRecovery",
    "compact",
    "cut_torn_tail",
    "iter_scored_batches",
    "journal_schema",
    "key_frame",
    "key_hashes",
    "read_done_keys",
    "read_manifest",
    "read_results",
    "recover_journal",
    "scan_journal",
    "scan_scored",
]


def read_results(out_dir: Path) -> pl.DataFrame:
    """A run's outcomes, one row per (row_id, variant, repeat), with their scores and judge
    verdicts beside them (:func:`scan_scored`), as a polars DataFrame."""
    path = RunDir(out_dir).results
    if not path.exists():
        raise ResultsDirError(f"{path} does not exist; run the job first (or resume it)")
    try:
        return scan_scored(out_dir).collect()
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {describe_os_error(exc)}") from exc
    except pl.exceptions.PolarsError as exc:
        raise StorageError(f"cannot read {path}: it is not a readable Parquet file") from exc


def scan_scored(out_dir: Path) -> pl.LazyFrame:
    """``results.parquet`` with the run's score and judge columns beside it (``score``,
    ``score_error``, ``score_reason``, ``judge_score``, ``judge_reason``, ``judge_error``
    where present), one row per (row_id, variant, repeat). The one way to read a run's scored
    outcomes: only compaction and merge write ``results.parquet``; the scores live in
    ``scores.parquet`` (row for row with it) and the judge's verdicts in ``judgements.parquet``
    (by key).

    Without a deterministic scorer's file, a pointwise judge's score is the run's score
    (``score``, ``score_reason``); with one, the judge's is ``judge_score``/``judge_reason``.
    """
    rundir = RunDir(out_dir)
    if not rundir.results.exists():
        raise ResultsDirError(f"{rundir.results} does not exist; run the job first (or resume it)")
    frame = pl.scan_parquet(rundir.results)
    if rundir.scores.exists():
        scores = pl.scan_parquet(rundir.scores)
        stale = [c for c in scores.collect_schema().names() if c in frame.collect_schema()]
        frame = pl.concat([frame.drop(stale), scores], how="horizontal")
    if rundir.judgements.exists():
        judged = pl.scan_parquet(rundir.judgements)
        if "score" not in frame.collect_schema().names():
            judged = judged.rename({"judge_score": "score", "judge_reason": "score_reason"})
        frame = frame.join(judged, on=list(KEY_COLUMNS), how="left", maintain_order="left")
    return frame


def iter_scored_batches(
    out_dir: Path, columns: Sequence[str], batch_size: int
) -> Iterator[pl.DataFrame]:
    """The ``columns`` of :func:`scan_scored`, a batch of ``batch_size`` rows at a time (or
    fewer at a row group's end), in file order, never all in memory: ``results.parquet``
    and ``scores.parquet`` are read in step. Judge columns are not offered here."""
    rundir = RunDir(out_dir)
    source = pq.ParquetFile(rundir.results, pre_buffer=False)
    own = [c for c in columns if c in source.schema_arrow.names and c not in SCORE_COLUMNS]
    scored = [c for c in columns if c in SCORE_COLUMNS]
    if not rundir.scores.exists():
        own += [c for c in scored if c in source.schema_arrow.names]
        scored = []
    extra = _ScoreReader(rundir.scores, scored) if scored else None
    try:
        for batch in source.iter_batches(batch_size=batch_size, columns=own, use_threads=False):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            if extra is not None:
                frame = pl.concat([frame, extra.take(frame.height)], how="horizontal")
            yield frame
    finally:
        source.close()
        if extra is not None:
            extra.close()


#: The columns of ``scores.parquet``.
SCORE_COLUMNS: Final = ("score", "score_error")


class _ScoreReader:
    """``scores.parquet`` handed out ``n`` rows at a time, whatever its batches' sizes."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self._file = pq.ParquetFile(path, pre_buffer=False)
        self._batches = self._file.iter_batches(columns=list(columns), use_threads=False)
        self._held: list[pl.DataFrame] = []
        self._rows = 0

    def take(self, n: int) -> pl.DataFrame:
        while self._rows < n:
            frame = pl.from_arrow(next(self._batches))
            assert isinstance(frame, pl.DataFrame)
            self._held.append(frame)
            self._rows += frame.height
        whole = pl.concat(self._held) if len(self._held) > 1 else self._held[0]
        head, rest = whole.head(n), whole.slice(n)
        self._held, self._rows = [rest], rest.height
        return head

    def close(self) -> None:
        self._file.close()
