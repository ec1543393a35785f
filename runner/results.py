"""Durable result storage: the run directory, its manifest and its results file.

Layout of a run directory ``OUT``::

    OUT/manifest.json            what the run is and how far it got (written atomically)
    OUT/journal.jsonl            one JSON line per finished call (:mod:`runner.journal`)
    OUT/journal.rejected.jsonl   damaged journal lines set aside by recovery, if any
    OUT/results.parquet          the journal compacted: one row per (row_id, variant, repeat)
                                 (:mod:`runner.compaction`)

This module is the door to all three: it re-exports the journal and compaction names the rest
of the runner uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import polars as pl

from runner.compaction import RESULTS, compact
from runner.errors import ResultsDirError, StorageError
from runner.fsutil import atomic_write_json, describe_os_error
from runner.journal import (
    JOURNAL,
    REJECTED,
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
    "scan_journal",
    "write_manifest",
]

MANIFEST: Final = "manifest.json"


def read_results(out_dir: Path) -> pl.DataFrame:
    path = out_dir / RESULTS
    if not path.exists():
        raise ResultsDirError(f"{path} does not exist; run the job first (or resume it)")
    try:
        return pl.read_parquet(path)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {describe_os_error(exc)}") from exc
    except pl.exceptions.PolarsError as exc:
        raise StorageError(f"cannot read {path}: it is not a readable Parquet file") from exc


def read_manifest(out_dir: Path) -> dict[str, Any]:
    path = out_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ResultsDirError(f"{out_dir} has no {MANIFEST}: it is not a runner output") from exc
    except (OSError, ValueError) as exc:
        raise ResultsDirError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ResultsDirError(f"{path} is not a JSON object")
    return data


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    atomic_write_json(out_dir / MANIFEST, manifest)
