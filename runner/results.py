"""Durable result storage: the run directory, its manifest and its results file.

Layout of a run directory ``OUT``::

    OUT/manifest.json            what the run is and how far it got (written atomically)
    OUT/journal.jsonl            one JSON line per finished call (:mod:`runner.journal`)
    OUT/journal.rejected.jsonl   damaged journal lines set aside by recovery, if any
    OUT/results.parquet          the journal compacted: one row per (row_id, variant, repeat)
                                 (:mod:`runner.compaction`)

This module is the door to all three: it re-exports the journal and compaction names the rest
of the runner uses, and :func:`read_manifest` gives the manifest as plain JSON (for tools and
tests; the runner itself reads the typed :class:`runner.rundir.Manifest`).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from runner.compaction import compact
from runner.errors import ResultsDirError, StorageError
from runner.fsutil import describe_os_error
from runner.journal import (
    DoneKeys,
    Journal,
    JournalRecovery,
    cut_torn_tail,
    journal_schema,
    key_frame,
    key_hashes,
    read_done_keys,
    recover_journal,
    scan_journal,
)
from runner.rundir import JOURNAL, MANIFEST, REJECTED, RESULTS, RunDir
from runner.rundir import read_manifest_json as read_manifest

__all__ = [
    "JOURNAL",
    "MANIFEST",
    "REJECTED",
    "RESULTS",
    "DoneKeys",
    "Journal",
    "JournalRecovery",
    "compact",
    "cut_torn_tail",
    "journal_schema",
    "key_frame",
    "key_hashes",
    "read_done_keys",
    "read_manifest",
    "read_results",
    "recover_journal",
    "scan_scored",
    "scan_journal",
]


def read_results(out_dir: Path) -> pl.DataFrame:
    path = RunDir(out_dir).results
    if not path.exists():
        raise ResultsDirError(f"{path} does not exist; run the job first (or resume it)")
    try:
        return pl.read_parquet(path)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {describe_os_error(exc)}") from exc
    except pl.exceptions.PolarsError as exc:
        raise StorageError(f"cannot read {path}: it is not a readable Parquet file") from exc


def scan_scored(out_dir: Path) -> pl.LazyFrame:
    """``results.parquet`` with the run's score and judge columns beside it (``score``,
    ``score_error``, ``score_reason``, ``judge_score``, ``judge_reason``, ``judge_error``
    where present), one row per (row_id, variant, repeat). The one way to read a run's scored
    outcomes: where the scores are kept is this function's business."""
    path = RunDir(out_dir).results
    if not path.exists():
        raise ResultsDirError(f"{path} does not exist; run the job first (or resume it)")
    return pl.scan_parquet(path)
