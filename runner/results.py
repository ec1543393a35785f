"""Durable result storage: an append-only journal, compacted into ``results.parquet``.

Layout of a run directory ``OUT``::

    OUT/manifest.json     what the run is and how far it got (written atomically)
    OUT/journal.jsonl     one JSON line per finished call, appended as each call finishes
    OUT/results.parquet   the journal compacted: one row per (row_id, variant, repeat)

An outcome counts as done once its journal line is written: one ``write`` to a file opened
``O_APPEND``, so it is in the kernel's page cache and a ``kill -9`` cannot take it back. A
background flush calls ``fsync`` every few seconds against power loss. A crash can leave at most
a torn last line, which is cut off when the journal is opened again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from runner.errors import ResultsDirError
from runner.fsutil import atomic_path, atomic_write_json
from runner.records import KEY_COLUMNS, RESULT_COLUMNS, RESULT_SCHEMA, STATUS_OK, Outcome

MANIFEST: Final = "manifest.json"
JOURNAL: Final = "journal.jsonl"
RESULTS: Final = "results.parquet"

_TIMESTAMPS = ("started_at", "finished_at")


def journal_schema() -> dict[str, pl.DataType]:
    """The polars schema of a journal line (timestamps still ISO strings)."""
    schema = dict(pl.from_arrow(RESULT_SCHEMA.empty_table()).schema)  # type: ignore[union-attr]
    for name in _TIMESTAMPS:
        schema[name] = pl.String()
    return schema


def key_frame(
    row_ids: Iterable[str], variants: Iterable[str], repeats: Iterable[int]
) -> pl.DataFrame:
    return pl.DataFrame(
        {"row_id": list(row_ids), "variant": list(variants), "repeat": list(repeats)},
        schema={"row_id": pl.String(), "variant": pl.String(), "repeat": pl.Int32()},
    )


def key_hashes(keys: pl.DataFrame) -> npt.NDArray[np.uint64]:
    """64-bit hashes of key rows; equal keys hash equal within one process."""
    return keys.select(KEY_COLUMNS).hash_rows(seed=0x5EED).to_numpy()


class DoneKeys:
    """The keys a resumed run must not send again, as a sorted array of 64-bit hashes.

    Eight bytes a key, so millions of keys fit in a few tens of MB. Two different keys share a
    hash with odds of about n² / 2⁶⁵ (10⁻⁷ for two million keys).
    """

    def __init__(self, hashes: npt.NDArray[np.uint64]) -> None:
        self._hashes = np.sort(hashes)

    def __len__(self) -> int:
        return int(self._hashes.size)

    def contains(self, keys: pl.DataFrame) -> npt.NDArray[np.bool_]:
        """A boolean mask over ``keys`` rows: True where the key is done."""
        if self._hashes.size == 0 or keys.height == 0:
            return np.zeros(keys.height, dtype=bool)
        probe = key_hashes(keys)
        where = np.searchsorted(self._hashes, probe)
        where[where >= self._hashes.size] = 0
        found: npt.NDArray[np.bool_] = self._hashes[where] == probe
        return found


def repair_journal(path: Path) -> int:
    """Cut a torn last line (from a crash mid-write); return the bytes removed."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as fh:
        tail = min(size, 1 << 16)
        pos = size
        while pos > 0:
            start = max(0, pos - tail)
            fh.seek(start)
            chunk = fh.read(pos - start)
            if pos == size and chunk.endswith(b"\n"):
                return 0
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                fh.truncate(keep)
                return size - keep
            pos = start
        fh.truncate(0)
        return size


class Journal:
    """Appends outcomes to ``journal.jsonl``, one ``write`` per outcome."""

    def __init__(self, path: Path) -> None:
        repair_journal(path)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.appended = 0

    def append(self, outcome: Outcome) -> None:
        line = json.dumps(
            {name: getattr(outcome, name) for name in RESULT_COLUMNS},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        os.write(self._fd, (line + "\n").encode("utf-8"))
        self.appended += 1

    def sync(self) -> None:
        """Flush to disk; safe to call from a worker thread."""
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


def scan_journal(path: Path) -> pl.LazyFrame:
    """The journal as a lazy frame with the results schema (timestamps parsed)."""
    frame = pl.scan_ndjson(path, schema=journal_schema())
    return frame.with_columns(
        pl.col(name).str.to_datetime(time_unit="us", time_zone="UTC") for name in _TIMESTAMPS
    )


def read_done_keys(out_dir: Path, *, retry_errors: bool) -> DoneKeys:
    """Keys with a final outcome in the journal; with ``retry_errors`` only those that are ok."""
    path = out_dir / JOURNAL
    if not path.exists() or path.stat().st_size == 0:
        return DoneKeys(np.empty(0, dtype=np.uint64))
    frame = pl.scan_ndjson(path, schema=journal_schema()).select(*KEY_COLUMNS, "status")
    if retry_errors:
        frame = frame.filter(pl.col("status") == STATUS_OK)
    keys = frame.select(KEY_COLUMNS).collect()
    return DoneKeys(key_hashes(keys))


def compact(out_dir: Path, variants: tuple[str, ...]) -> dict[str, int]:
    """Write ``results.parquet`` from the journal: last outcome per key, in input order.

    Returns counts by status.
    """
    journal = out_dir / JOURNAL
    target = out_dir / RESULTS
    if not journal.exists():
        journal.touch()
    order = {v: i for i, v in enumerate(variants)}
    frame = (
        scan_journal(journal)
        .with_row_index("_seq")
        .unique(subset=list(KEY_COLUMNS), keep="last")
        .with_columns(
            pl.col("row_id").cast(pl.Int64, strict=False).alias("_num"),
            pl.col("variant").replace_strict(order, default=len(order)).alias("_var"),
        )
        .sort(["_num", "row_id", "_var", "repeat"], nulls_last=True)
        .drop("_seq", "_num", "_var")
    )
    with atomic_path(target) as tmp:
        frame.sink_parquet(tmp, compression="zstd")
    counts = pl.scan_parquet(target).group_by("status").len().collect().rows()
    return {str(status): int(n) for status, n in counts}


def read_results(out_dir: Path) -> pl.DataFrame:
    path = out_dir / RESULTS
    if not path.exists():
        raise ResultsDirError(f"{path} does not exist; run the job first (or resume it)")
    return pl.read_parquet(path)


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
