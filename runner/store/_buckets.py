"""Each dataset row's outcomes, looked up from ``results.parquet`` in bounded memory.

The dataset and the results need not share an order (results are sorted by id, the dataset is
in the user's order), so this is an external hash join, restored to the dataset's order:

1. the wanted outcomes (``repeat`` 0 of the chosen variants, only the columns asked for) are
   streamed out of the run's scored outcomes (:func:`runner.store._results.scan_scored`, written
   once to a scratch file) into ``K`` bucket files by a hash of ``row_id``;
2. the dataset's row ids, with their positions, go into the same ``K`` buckets;
3. each bucket is joined alone (a ``K``-th of the data in memory) and written sorted by
   position, in small row groups;
4. :meth:`InOrder.take` merges the ``K`` sorted buckets back into dataset order, one
   slice of positions at a time, holding one small row group per bucket.

``K`` grows with the size of the results (``bucket_bytes`` and ``bucket_rows`` of the
:class:`~runner.store._memory.MemoryPlan`), so memory stays flat whatever the run's size. A row
without an outcome for a variant gets nulls and the status :data:`MISSING`. Each field keeps its
type (``score`` is a number); a field the outcomes lack is a column of null text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from runner.store._memory import DEFAULT_MEMORY, MemoryPlan

MISSING: Final = "missing"

_SEED: Final = 11


@dataclass(frozen=True, slots=True)
class OutcomeJoin:
    """Joined buckets on disk, ready to be read back in dataset order."""

    buckets: tuple[Path, ...]
    columns: tuple[str, ...]
    """Joined columns, named ``<field>@@<variant index>`` (renamed by the caller)."""
    memory: MemoryPlan = DEFAULT_MEMORY
    """The plan the buckets were written with (their row groups are read back by it)."""

    def in_order(self) -> InOrder:
        """A reader handing out the outcome columns of consecutive dataset batches."""
        rows = self.memory.bucket_group_rows
        return InOrder([SortedBucket(path, batch_rows=rows) for path in self.buckets])


class InOrder:
    """Step 4: the joined buckets merged back into dataset order, one batch at a time."""

    def __init__(self, readers: list[SortedBucket]) -> None:
        self._readers = readers
        self._start = 0

    def take(self, size: int) -> pl.DataFrame:
        """The outcome columns of the next ``size`` dataset rows, in their order."""
        end = self._start + size
        parts = [p for p in (r.take_below(end) for r in self._readers) if p.height]
        frame = pl.concat(parts, how="vertical") if parts else pl.DataFrame()
        if frame.height != size:  # every position is in exactly one bucket
            raise AssertionError(f"outcome join lost rows {self._start}..{end}")
        self._start = end
        return frame.sort("_pos").drop("_pos")


def bucket_count(results: Path, columns: Sequence[str], memory: MemoryPlan = DEFAULT_MEMORY) -> int:
    """How many buckets keep each one under ``memory.bucket_bytes`` and ``memory.bucket_rows``
    (by the file's metadata)."""
    meta = pq.ParquetFile(results).metadata
    wanted = set(columns)
    size = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            column = group.column(c)
            if column.path_in_schema in wanted:
                size += column.total_uncompressed_size
    rows: int = meta.num_rows
    return max(1, math.ceil(size / memory.bucket_bytes), math.ceil(rows / memory.bucket_rows))


def join_outcomes(
    outcomes: pl.LazyFrame,
    ids: Iterable[pa.Array],
    *,
    variants: Sequence[str],
    fields: Sequence[str],
    scratch: Path,
    memory: MemoryPlan = DEFAULT_MEMORY,
) -> OutcomeJoin:
    """Steps 1–3: bucket the outcomes (one row per ``row_id``, ``variant``, ``repeat``) and the
    dataset's ids (string arrays, one per batch, in dataset order), then join each bucket.
    ``scratch`` must be an empty directory; ``memory`` sizes the buckets and reads."""
    results = _wanted(outcomes, variants, fields, scratch)
    k = bucket_count(results, ("row_id", *fields), memory)
    res_paths = _bucket_results(results, scratch, k, memory.bucket_read_rows)
    results.unlink()
    key_paths = _bucket_ids(ids, scratch, k)
    columns = tuple(f"{f}@@{i}" for i in range(len(variants)) for f in fields)
    joined = []
    for b in range(k):
        path = scratch / f"joined-{b}.parquet"
        frame = _join_bucket(key_paths[b], res_paths[b], variants, fields)
        pq.write_table(frame.to_arrow(), path, row_group_size=memory.bucket_group_rows)
        res_paths[b].unlink()
        key_paths[b].unlink()
        joined.append(path)
    return OutcomeJoin(tuple(joined), columns, memory)


def count_missing(join: OutcomeJoin) -> int:
    """Dataset rows that lack an outcome of at least one variant (status :data:`MISSING`)."""
    statuses = [c for c in join.columns if c.startswith("status@@")]
    if not statuses:
        return 0
    lacking = pl.any_horizontal(pl.col(c) == MISSING for c in statuses)
    total = 0
    for path in join.buckets:  # a bucket at a time, only the status columns
        frame = pl.scan_parquet(path).select(lacking.sum()).collect()
        total += int(frame.item() or 0)
    return total


def _wanted(
    outcomes: pl.LazyFrame, variants: Sequence[str], fields: Sequence[str], scratch: Path
) -> Path:
    """The outcomes the export needs, streamed into one scratch Parquet file."""
    names = set(outcomes.collect_schema().names())
    path = scratch / "outcomes.parquet"
    wanted = (pl.col("repeat") == 0) & pl.col("variant").is_in(list(variants))
    present = [pl.col(f) for f in fields if f in names]
    absent = [pl.lit(None, dtype=pl.String).alias(f) for f in fields if f not in names]
    outcomes.filter(wanted).select(
        pl.col("row_id").cast(pl.String), pl.col("variant").cast(pl.String), *present, *absent
    ).sink_parquet(path)
    return path


def bucket_of(row_id: pl.Expr, k: int) -> pl.Expr:
    return (row_id.hash(seed=_SEED) % k).cast(pl.Int64).alias("_bucket")


class BucketWriters:
    """One Parquet writer per bucket, opened on first use; ``fast`` writes scratch files read
    once (no compression, no dictionary, no statistics: half the time)."""

    def __init__(self, scratch: Path, stem: str, k: int, *, fast: bool = False) -> None:
        self.paths = [scratch / f"{stem}-{b}.parquet" for b in range(k)]
        self._open: dict[int, pq.ParquetWriter] = {}
        self._schema: pa.Schema | None = None
        self._options: dict[str, object] = (
            {"compression": "none", "use_dictionary": False, "write_statistics": False}
            if fast
            else {}
        )

    def write(self, frame: pl.DataFrame) -> None:
        for (bucket,), part in frame.partition_by("_bucket", as_dict=True).items():
            table = part.drop("_bucket").to_arrow()
            if self._schema is None:
                self._schema = table.schema
            b = int(bucket)
            if b not in self._open:
                self._open[b] = pq.ParquetWriter(self.paths[b], self._schema, **self._options)
            self._open[b].write_table(table.cast(self._schema))

    def close(self, empty: pa.Schema) -> list[Path]:
        for writer in self._open.values():
            writer.close()
        for b, path in enumerate(self.paths):
            if b not in self._open:  # a bucket nothing hashed to
                pq.write_table(empty.empty_table(), path)
        return self.paths


def _bucket_results(results: Path, scratch: Path, k: int, read_rows: int) -> list[Path]:
    writers = BucketWriters(scratch, "results", k)
    source = pq.ParquetFile(results)
    for batch in source.iter_batches(batch_size=read_rows):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        writers.write(frame.with_columns(bucket_of(pl.col("row_id"), k)))
    return writers.close(source.schema_arrow)


def _bucket_ids(ids: Iterable[pa.Array], scratch: Path, k: int) -> list[Path]:
    writers = BucketWriters(scratch, "ids", k)
    position = 0
    for array in ids:
        frame = pl.DataFrame(
            {
                "_pos": pl.int_range(position, position + len(array), eager=True),
                "row_id": pl.Series("row_id", array.cast(pa.string())),
            }
        )
        position += len(array)
        writers.write(frame.with_columns(bucket_of(pl.col("row_id"), k)))
    empty = pl.DataFrame(schema={"_pos": pl.Int64, "row_id": pl.String}).to_arrow().schema
    return writers.close(empty)


def _join_bucket(
    keys_path: Path, results_path: Path, variants: Sequence[str], fields: Sequence[str]
) -> pl.DataFrame:
    keys = pl.read_parquet(keys_path)
    results = pl.read_parquet(results_path)
    frame = keys
    for i, variant in enumerate(variants):
        arm = results.filter(pl.col("variant") == variant).select(
            "row_id", *[pl.col(f).alias(f"{f}@@{i}") for f in fields]
        )
        frame = frame.join(arm, on="row_id", how="left")
        if "status" in fields:
            frame = frame.with_columns(pl.col(f"status@@{i}").fill_null(MISSING))
    return frame.drop("row_id").sort("_pos")


class SortedBucket:
    """A bucket file sorted by its ``key`` column, read in that order ``batch_rows`` rows (a
    row group as the bucket was written) at a time."""

    def __init__(self, path: Path, key: str = "_pos", *, batch_rows: int) -> None:
        self._batches = pq.ParquetFile(path, pre_buffer=False).iter_batches(
            batch_size=batch_rows, use_threads=False
        )
        self._key = key
        self._buffer: pl.DataFrame | None = None
        self._done = False

    def _fill(self) -> None:
        batch = next(self._batches, None)
        if batch is None:
            self._done = True
            return
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        self._buffer = frame if self._buffer is None else pl.concat([self._buffer, frame])

    def take_below(self, end: int) -> pl.DataFrame:
        """The rows with ``key < end`` not taken yet."""
        key = self._key
        while not self._done and (
            self._buffer is None or not self._buffer.height or self._buffer[key][-1] < end
        ):
            self._fill()
        if self._buffer is None:
            return pl.DataFrame()
        cut = int(self._buffer[key].search_sorted(end, side="left"))
        taken, self._buffer = self._buffer.head(cut), self._buffer.slice(cut)
        return taken
