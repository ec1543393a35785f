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

import bisect
import heapq
import io
import itertools
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow.parquet as pq

from runner.errors import ResultsDirError
from runner.fsutil import atomic_path, atomic_write_json
from runner.records import KEY_COLUMNS, RESULT_COLUMNS, RESULT_SCHEMA, STATUS_OK, Outcome

MANIFEST: Final = "manifest.json"
JOURNAL: Final = "journal.jsonl"
RESULTS: Final = "results.parquet"

_TIMESTAMPS = ("started_at", "finished_at")
#: One encoder for every journal line (json.dumps with options builds one per call).
_LINE_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


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
        line = _LINE_JSON.encode({name: getattr(outcome, name) for name in RESULT_COLUMNS})
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
    return _parsed_timestamps(pl.scan_ndjson(path, schema=journal_schema()))


def _parsed_timestamps(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.with_columns(
        pl.col(name).str.to_datetime(time_unit="us", time_zone="UTC") for name in _TIMESTAMPS
    )


def read_done_keys(out_dir: Path, *, retry_errors: bool) -> DoneKeys:
    """Keys with a final outcome in the journal; with ``retry_errors`` only those that are ok."""
    path = out_dir / JOURNAL
    if not path.exists() or path.stat().st_size == 0:
        return DoneKeys(np.empty(0, dtype=np.uint64))
    # Piece by piece, only the key columns: the whole journal at once took 1.5 GB for two
    # million outcomes; this holds one piece and 8 bytes a key.
    full = journal_schema()
    schema = {name: full[name] for name in (*KEY_COLUMNS, "status")}
    hashes = [np.empty(0, dtype=np.uint64)]
    for piece in _journal_pieces(path, _PIECE_BYTES):
        keys = pl.read_ndjson(io.BytesIO(piece), schema=schema)
        if retry_errors:
            keys = keys.filter(pl.col("status") == STATUS_OK)
        hashes.append(key_hashes(keys))
    return DoneKeys(np.concatenate(hashes))


def compact(out_dir: Path, variants: tuple[str, ...]) -> dict[str, int]:
    """Write ``results.parquet`` from the journal: last outcome per key, in input order.

    A journal of up to :data:`ONE_PIECE_BYTES` is compacted in one piece. A larger one is
    sorted in runs of :data:`RUN_ROWS` outcomes, merged :data:`FAN_IN` runs at a time, so
    memory stays about the same whatever the size of the journal (in one piece, two million
    outcomes took 3.5 GB). Returns counts by status.
    """
    journal = out_dir / JOURNAL
    target = out_dir / RESULTS
    if not journal.exists():
        journal.touch()
    order = {v: i for i, v in enumerate(variants)}
    with atomic_path(target) as tmp:
        if journal.stat().st_size <= ONE_PIECE_BYTES:
            frame = _ordered(scan_journal(journal).with_row_index("_seq"), order)
            frame = frame.sort(_ORDER, nulls_last=True).drop(_HELPERS)
            frame.sink_parquet(tmp, compression="zstd")
        else:
            with tempfile.TemporaryDirectory(dir=out_dir, prefix=".compact-") as scratch:
                runs = _sorted_runs(journal, Path(scratch), order)
                while len(runs) > FAN_IN:
                    groups = [runs[i : i + FAN_IN] for i in range(0, len(runs), FAN_IN)]
                    runs = [_merge(group, group[0].with_suffix(".m.parquet")) for group in groups]
                _merge(runs, tmp, final=True)
    counts = pl.scan_parquet(target).group_by("status").len().collect().rows()
    return {str(status): int(n) for status, n in counts}


#: A journal up to this size is compacted in one piece.
ONE_PIECE_BYTES: Final = 4 * 1024 * 1024
#: Outcomes sorted in memory at a time into one run, and runs merged at a time.
RUN_ROWS: Final = 16_384
FAN_IN: Final = 16
#: Journal bytes parsed at a time (polars needs about ten times this while parsing).
_PIECE_BYTES: Final = 2 * 1024 * 1024
#: Rows of a run read at a time while merging (its row groups: small enough to hold one per
#: run, large enough that the files' metadata stays small), keys handed to Python at a time,
#: and rows gathered and written at a time.
_GROUP_ROWS: Final = 8192
_KEY_ROWS: Final = 1024
_WRITE_ROWS: Final = 16_384
#: The order of ``results.parquet``: numeric ids as numbers, then id, variant order, repeat.
_ORDER: Final = ("_num", "row_id", "_var", "repeat")
_HELPERS: Final = ("_seq", "_num", "_var")


def _ordered(frame: pl.LazyFrame, order: dict[str, int]) -> pl.LazyFrame:
    """The last outcome per key (highest ``_seq``), with the sort helper columns added."""
    return frame.unique(subset=list(KEY_COLUMNS), keep="last").with_columns(
        pl.col("row_id").cast(pl.Int64, strict=False).alias("_num"),
        pl.col("variant").replace_strict(order, default=len(order)).alias("_var"),
    )


def _journal_pieces(path: Path, size: int) -> Iterator[bytes]:
    """The journal in pieces of about ``size`` bytes, each ending at a line end."""
    with open(path, "rb") as fh:
        rest = b""
        while block := fh.read(size):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            rest = block[cut:]
            if cut:
                yield block[:cut]
        if rest.strip():
            yield rest


def _sorted_runs(journal: Path, scratch: Path, order: dict[str, int]) -> list[Path]:
    """Sort the journal into parquet runs; ``_seq`` is the line number in the journal."""
    runs: list[Path] = []
    frames: list[pl.DataFrame] = []
    seq = rows = 0

    def spill() -> None:
        frame = _ordered(_parsed_timestamps(pl.concat(frames).lazy()), order)
        runs.append(scratch / f"run-{len(runs):05d}.parquet")
        frame.sort([*_ORDER, "_seq"], nulls_last=True).collect(engine="in-memory").write_parquet(
            runs[-1], compression="lz4", statistics=False, row_group_size=_GROUP_ROWS
        )
        frames.clear()

    for piece in _journal_pieces(journal, _PIECE_BYTES):
        frame = pl.read_ndjson(io.BytesIO(piece), schema=journal_schema())
        frames.append(frame.with_row_index("_seq", offset=seq))
        seq += frame.height
        rows += frame.height
        if rows >= RUN_ROWS:
            spill()
            rows = 0
    if frames:
        spill()
    return runs


class _Run:
    """One sorted run being merged: its keys in order, and its rows taken in order.

    Keys and rows are read apart: a reader over every column of a file holds a few MB of
    buffers, one over the five key columns far less; rows are read a row group at a time.
    """

    def __init__(self, path: Path, index: int) -> None:
        self.path = path
        self.index = index
        self._file = pq.ParquetFile(path)
        meta = self._file.metadata
        sizes = (meta.row_group(g).num_rows for g in range(meta.num_row_groups))
        self._starts = list(itertools.accumulate(sizes, initial=0))  # first row of each group
        self._next = 0  # the next row to take
        self._group: tuple[int, pl.DataFrame] | None = None

    def keys(self) -> Iterator[tuple[Any, ...]]:
        """``(sort key…, _seq, run)`` for every row, nulls of ``_num`` last like polars."""
        names = (*_ORDER, "_seq")
        for batch in pq.ParquetFile(self.path).iter_batches(_KEY_ROWS, columns=list(names)):
            columns = [batch.column(name).to_pylist() for name in names]
            for num, row_id, var, repeat, seq in zip(*columns, strict=True):
                yield (num is None, num or 0, row_id, var, repeat, seq, self.index)

    def take(self, n: int) -> list[pl.DataFrame]:
        """The next ``n`` rows."""
        pieces = []
        while n:
            g = bisect.bisect_right(self._starts, self._next) - 1
            if self._group is None or self._group[0] != g:
                self._group = (g, pl.DataFrame(pl.from_arrow(self._file.read_row_group(g))))
            piece = self._group[1].slice(self._next - self._starts[g], n)
            pieces.append(piece)
            n -= piece.height
            self._next += piece.height
        return pieces


def _merge(paths: list[Path], target: Path, *, final: bool = False) -> Path:
    """Merge sorted runs into ``target``, keeping the last outcome (highest ``_seq``) per key;
    the ``final`` merge drops the sort helper columns.

    Only the keys pass through Python (a heap merge); the rows move in polars frames, taken
    from each run in order and gathered into the merged order a block at a time.
    """
    runs = [_Run(path, i) for i, path in enumerate(paths)]
    taken = [0] * len(runs)  # rows of each run in the current block
    kept: list[tuple[int, int]] = []  # (run, row within that run's part of the block)
    writer: pq.ParquetWriter | None = None
    last: tuple[Any, ...] | None = None
    held: tuple[int, int] | None = None  # the newest outcome so far of the key ``last``

    def flush() -> None:
        nonlocal writer, taken, kept
        pieces: list[pl.DataFrame] = []
        start = [0] * len(runs)
        for run, n in zip(runs, taken, strict=True):
            start[run.index] = sum(piece.height for piece in pieces)
            pieces += run.take(n)
        block = pl.concat(pieces)[[start[run] + row for run, row in kept]]
        table = (block.drop(_HELPERS) if final else block).to_arrow()
        if writer is None:
            writer = pq.ParquetWriter(
                target, table.schema, compression="zstd" if final else "lz4",
                write_statistics=final,
            )  # fmt: skip
        writer.write_table(table, row_group_size=_WRITE_ROWS if final else _GROUP_ROWS)
        taken, kept = [0] * len(runs), []

    try:
        for item in heapq.merge(*(run.keys() for run in runs)):
            key, run = item[:5], item[6]
            if key != last:
                if held is not None:
                    kept.append(held)
                    if len(kept) >= _WRITE_ROWS:
                        flush()
                last = key
            held = (run, taken[run])
            taken[run] += 1
        if held is not None:
            kept.append(held)
            flush()
    finally:
        if writer is not None:
            writer.close()
    if not final:
        for path in paths:
            path.unlink()  # merged: free the scratch space as we go
    return target


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
