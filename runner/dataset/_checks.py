"""The validation pass: one streamed read that counts rows and checks ids before any request.

Only a 64-bit hash is kept per row id, so that missing and repeated ids are found in bounded
memory; the ids themselves are read again only when two hashes are equal, to name the repeated
ids and the rows they are on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from runner.dataset._columns import Roles
from runner.dataset._files import Format, label, where
from runner.dataset._readers import BlockSizes, read_batches, reading
from runner.errors import InputError

__all__ = ["IdStats", "check_ids", "id_strings", "scan"]

_MAX_EXAMPLES: Final = 5
_SCAN_BATCH: Final = 64 * 1024


class IdStats:
    """What the validation pass keeps of the ids: a 64-bit hash each, and the missing ones.

    Hashes cost 8 bytes a row whatever the ids' length, so 10 million UUIDs stay small; the
    ids themselves are read again only when two hashes are equal (:func:`_check_repeats`).
    """

    def __init__(self) -> None:
        self.hashes: list[pl.Series] = []
        self.missing = 0
        self.missing_at: list[str] = []

    def add(self, file: str, ids: pa.Array, first_row: int) -> None:
        """Keep the hashes of ``ids`` (of ``file``, from 0-based row ``first_row``)."""
        self.hashes.append(pl.Series(values=ids).hash(seed=0))
        if ids.null_count:
            self.missing += ids.null_count
            room = _MAX_EXAMPLES - len(self.missing_at)
            rows = pc.indices_nonzero(pc.is_null(ids))[:room].to_pylist()
            self.missing_at.extend(f"{file}row {first_row + i + 1}" for i in rows)

    def may_repeat(self) -> bool:
        """Whether two ids may be equal (two hashes are)."""
        hashes = pl.concat(self.hashes)
        return bool(hashes.n_unique() < len(hashes))


def scan(
    files: Sequence[Path],
    fmt: Format,
    schema: pa.Schema,
    roles: Roles,
    limit: int | None,
    blocks: BlockSizes,
) -> tuple[list[int], IdStats | None]:
    """Read the (limited) dataset once: the rows of each file, and what the ids need.

    CSV and JSON are read in full (every used column for CSV, every column for JSON) because a
    bad line or bad UTF-8 only shows when its column is decoded; Parquet validates its own
    structure, so only the id column is read, or nothing when rows are ids by position.
    """
    counts: list[int] = []
    stats = IdStats() if roles.id_column is not None else None
    remaining = limit if limit is not None else math.inf
    for path in files:
        count = 0
        if remaining <= 0:  # files past the limit are never read, so not judged either
            counts.append(0)
            continue
        for batch in _validation_batches(path, fmt, schema, roles, blocks):
            take = int(min(batch.num_rows, remaining - count))
            if stats is not None and roles.id_column is not None:
                ids = id_strings(batch.column(roles.id_column).slice(0, take))
                stats.add(label(files, path), ids, count)
            count += take
            if count >= remaining:
                break
        counts.append(count)
        remaining -= count
    return counts, stats


def _validation_batches(
    path: Path, fmt: Format, schema: pa.Schema, roles: Roles, blocks: BlockSizes
) -> Iterator[pa.RecordBatch]:
    if fmt != "parquet":
        return read_batches(path, fmt, schema, roles.used, _SCAN_BATCH, blocks)
    if roles.id_column is not None:
        return read_batches(path, fmt, schema, [roles.id_column], _SCAN_BATCH, blocks)
    with reading(path, fmt):
        num_rows = pq.read_metadata(path).num_rows
    # The footer has the row count; a batch of that many nulls stands in for the rows.
    return iter([pa.record_batch([pa.nulls(num_rows)], names=["_"])])


def id_strings(array: pa.Array) -> pa.Array:
    """Ids as strings (``7``, not ``7.0``); null where the id is null, NaN or empty."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_floating(array.type):
        array = pc.if_else(pc.is_nan(array), pa.scalar(None, array.type), array)
    text = pc.cast(array, pa.string())
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def check_ids(
    files: Sequence[Path],
    fmt: Format,
    schema: pa.Schema,
    column: str,
    counts: Sequence[int],
    stats: IdStats,
    blocks: BlockSizes,
) -> None:
    """Raise if an id is missing or repeated in the first ``counts`` rows of each file."""
    at = f"{where(files)}: column {column!r}"
    if stats.missing:
        raise InputError(
            f"{at}: {stats.missing} row(s) have no id (null or empty): "
            + ", ".join(stats.missing_at)
        )
    if stats.may_repeat():
        per_file = [
            _read_ids(path, fmt, schema, column, count, blocks)
            for path, count in zip(files, counts, strict=True)
        ]
        _check_repeats(files, per_file, at)


def _check_repeats(files: Sequence[Path], per_file: Sequence[pa.ChunkedArray], at: str) -> None:
    """Count the ids exactly, and name the first repeated ones with the rows they are on."""
    everything = pa.chunked_array([c for ids in per_file for c in ids.chunks], pa.string())
    counted = pc.value_counts(everything)  # in order of first appearance
    repeated = pc.filter(counted, pc.greater(counted.field("counts"), 1))
    if not len(repeated):
        return  # the hashes collided; the ids are distinct
    examples = []
    for item in repeated[:_MAX_EXAMPLES].to_pylist():
        rows = _rows_where(files, [pc.equal(ids, item["values"]) for ids in per_file])
        examples.append(f"{item['values']!r} ×{item['counts']} ({rows})")
    more = len(repeated) - len(examples)
    raise InputError(
        f"{at}: {len(repeated)} id(s) occur more than once: {'; '.join(examples)}"
        + (f"; and {more} more" if more else "")
        + ". Row ids must be unique; pick another column with --id-column"
    )


def _read_ids(
    path: Path, fmt: Format, schema: pa.Schema, column: str, count: int, blocks: BlockSizes
) -> pa.ChunkedArray:
    chunks, seen = [], 0
    if count:
        for batch in read_batches(path, fmt, schema, [column], _SCAN_BATCH, blocks):
            chunks.append(id_strings(batch.column(column).slice(0, count - seen)))
            seen += min(batch.num_rows, count - seen)
            if seen >= count:
                break
    return pa.chunked_array(chunks, type=pa.string())


def _rows_where(files: Sequence[Path], masks: Sequence[pa.ChunkedArray], most: int = 3) -> str:
    """Where ``masks`` are true, as ``a.csv rows 3, 9; b.csv row 1``: ``most`` rows at most."""
    found: list[str] = []
    shown = 0
    for path, mask in zip(files, masks, strict=True):
        indices = pc.indices_nonzero(mask) if len(mask) else pa.array([], pa.uint64())
        rows = [str(i + 1) for i in indices[: most - shown].to_pylist()]
        if rows:
            plural = "s" if len(rows) > 1 else ""
            found.append(f"{label(files, path)}row{plural} {', '.join(rows)}")
            shown += len(rows)
    return "; ".join(found)
