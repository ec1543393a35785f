"""Compaction: the journal becomes ``results.parquet``, the last outcome per key in input order.

A journal of up to ``one_piece_bytes`` of its :class:`~runner.store._memory.MemoryPlan` is compacted
in one piece. A larger one is sorted in runs of ``run_rows`` outcomes in a ``.compact-*``
scratch directory, merged ``fan_in`` runs at a time, so memory stays about the same whatever the
size of the journal (in one piece, two million outcomes took 3.5 GB). Like every reader of the
journal it assumes :func:`runner.store._recovery.recover_journal` ran first.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from runner.errors import StorageError
from runner.records import KEY_COLUMNS
from runner.store._fsutil import atomic_path, describe_os_error
from runner.store._journal import (
    journal_pieces,
    journal_schema,
    parse_piece,
    parse_timestamps,
    unreadable_journal,
)
from runner.store._memory import DEFAULT_MEMORY, MemoryPlan
from runner.store._rundir import RunDir

#: The order of ``results.parquet``: numeric ids as numbers, then id, variant order, repeat.
_ORDER: Final = ("_num", "row_id", "_var", "repeat")
_HELPERS: Final = ("_seq", "_num", "_var")


def compact(
    out_dir: Path, variants: tuple[str, ...], *, memory: MemoryPlan = DEFAULT_MEMORY
) -> dict[str, int]:
    """Write ``results.parquet`` from the journal: last outcome per key, in input order.

    Returns counts by status; ``memory`` sets the sizes of the pieces, runs and merges (the
    file is the same under any plan). A journal line that cannot be parsed, or a file that
    cannot be read or written, raises StorageError naming the file; ``results.parquet`` is
    then left as it was.
    """
    rundir = RunDir(out_dir)
    journal, target = rundir.journal, rundir.results
    try:
        journal.touch()
        with atomic_path(target) as tmp:
            order = {v: i for i, v in enumerate(variants)}
            _compact_into(tmp, journal, out_dir, order, memory)
        rundir.scores.unlink(missing_ok=True)  # row for row with the results it replaced
        counts = pl.scan_parquet(target).group_by("status").len().collect().rows()
    except OSError as exc:
        where = exc.filename or journal
        raise StorageError(f"cannot compact {where}: {describe_os_error(exc)}") from exc
    except (pl.exceptions.PolarsError, pa.ArrowException) as exc:
        # Parse errors were turned into StorageError where the journal is read: what is left
        # comes from writing (polars reports a full disk as a ComputeError without errno).
        raise StorageError(f"cannot write {target}: {_first_line(exc)}") from exc
    return {str(status): int(n) for status, n in counts}


@contextlib.contextmanager
def _reading(journal: Path) -> Iterator[None]:
    """Parse errors of the journal become StorageError naming it."""
    try:
        yield
    except pl.exceptions.PolarsError as exc:
        raise unreadable_journal(journal, exc) from exc


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _compact_into(
    tmp: Path, journal: Path, out_dir: Path, order: dict[str, int], memory: MemoryPlan
) -> None:
    if journal.stat().st_size <= memory.one_piece_bytes:
        schema = journal_schema()
        with _reading(journal):  # a few MB: parsed and sorted in memory, then written
            pieces = [
                parse_piece(piece, schema) for piece in journal_pieces(journal, memory.piece_bytes)
            ]
            lines = pl.concat(pieces) if pieces else pl.DataFrame(schema=schema)
            frame = _ordered(parse_timestamps(lines.lazy()).with_row_index("_seq"), order)
            done = frame.sort(_ORDER, nulls_last=True).drop(_HELPERS).collect()
        _write(done, tmp, compression="zstd")
        return
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".compact-") as scratch:
        runs = _sorted_runs(journal, Path(scratch), order, memory)
        fan_in = memory.fan_in
        while len(runs) > fan_in:
            groups = [runs[i : i + fan_in] for i in range(0, len(runs), fan_in)]
            runs = [_merge(group, group[0].with_suffix(".m.parquet"), memory) for group in groups]
        _merge(runs, tmp, memory, final=True)


def _write(frame: pl.DataFrame, path: Path, **options: Any) -> None:
    """Write Parquet with pyarrow through our own handle: a full disk is then an OSError with
    its errno (polars gives a message without one), and the file is closed even so."""
    with open(path, "wb") as sink:
        pq.write_table(frame.to_arrow(), sink, **options)


def _ordered(frame: pl.LazyFrame, order: dict[str, int]) -> pl.LazyFrame:
    """The last outcome per key (highest ``_seq``), with the sort helper columns added."""
    return frame.unique(subset=list(KEY_COLUMNS), keep="last").with_columns(
        pl.col("row_id").cast(pl.Int64, strict=False).alias("_num"),
        pl.col("variant").replace_strict(order, default=len(order)).alias("_var"),
    )


def _sorted_runs(
    journal: Path, scratch: Path, order: dict[str, int], memory: MemoryPlan
) -> list[Path]:
    """Sort the journal into parquet runs; ``_seq`` is the line number in the journal."""
    runs: list[Path] = []
    frames: list[pl.DataFrame] = []
    seq = rows = 0

    def spill() -> None:
        with _reading(journal):
            frame = _ordered(parse_timestamps(pl.concat(frames).lazy()), order)
            run = frame.sort([*_ORDER, "_seq"], nulls_last=True).collect(engine="in-memory")
        runs.append(scratch / f"run-{len(runs):05d}.parquet")
        _write(
            run, runs[-1],
            compression="lz4", write_statistics=False, row_group_size=memory.run_group_rows,
        )  # fmt: skip
        frames.clear()

    schema = journal_schema()
    for piece in journal_pieces(journal, memory.piece_bytes):
        with _reading(journal):
            frame = parse_piece(piece, schema)
        frames.append(frame.with_row_index("_seq", offset=seq))
        seq += frame.height
        rows += frame.height
        if rows >= memory.run_rows:
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

    def __init__(self, path: Path, index: int, key_rows: int) -> None:
        self.path = path
        self.index = index
        self._key_rows = key_rows
        self._file = pq.ParquetFile(path)
        meta = self._file.metadata
        sizes = (meta.row_group(g).num_rows for g in range(meta.num_row_groups))
        self._starts = list(itertools.accumulate(sizes, initial=0))  # first row of each group
        self._next = 0  # the next row to take
        self._group: tuple[int, pl.DataFrame] | None = None

    def keys(self) -> Iterator[tuple[Any, ...]]:
        """``(sort key…, _seq, run)`` for every row, nulls of ``_num`` last like polars."""
        names = (*_ORDER, "_seq")
        for batch in pq.ParquetFile(self.path).iter_batches(self._key_rows, columns=list(names)):
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


def _merge(paths: list[Path], target: Path, memory: MemoryPlan, *, final: bool = False) -> Path:
    """Merge sorted runs into ``target``, keeping the last outcome (highest ``_seq``) per key;
    the ``final`` merge drops the sort helper columns.

    Only the keys pass through Python (a heap merge); the rows move in polars frames, taken
    from each run in order and gathered into the merged order a block at a time.
    """
    runs = [_Run(path, i, memory.merge_key_rows) for i, path in enumerate(paths)]
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
                sink, table.schema, compression="zstd" if final else "lz4",
                write_statistics=final,
            )  # fmt: skip
        writer.write_table(
            table, row_group_size=memory.write_rows if final else memory.run_group_rows
        )
        taken, kept = [0] * len(runs), []

    with open(target, "wb") as sink:
        try:
            for item in heapq.merge(*(run.keys() for run in runs)):
                key, run = item[:5], item[6]
                if key != last:
                    if held is not None:
                        kept.append(held)
                        if len(kept) >= memory.write_rows:
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
