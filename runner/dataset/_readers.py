"""Streaming one CSV, JSON Lines or Parquet file as Arrow record batches.

Each format has its own streaming reader. ``pyarrow.dataset`` was measured and set aside: its
Parquet scan decodes whole row groups (1.6 GB for a file written as one 4-million-row group,
against 0.2 GB here) and its CSV scan reads ahead without bound when the consumer is slower
than the disk (0.6 GB against 0.16 GB for an 800 MB file).

CSV and JSON are parsed in blocks, and pyarrow refuses a row that straddles a whole block
("straddling object … increase block size?"). The readers here start with a modest block and
double it each time that happens, up to :data:`MAX_ROW_BYTES`: any row up to that size is read,
and a row too long for it is refused naming its file and line (:func:`row_too_long`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pj
import pyarrow.parquet as pq

from runner.dataset._files import Format, show
from runner.dataset._row_errors import explain, row_too_long
from runner.errors import InputError

__all__ = ["MAX_ROW_BYTES", "BlockSizes", "inferred_schema", "read_batches", "reading"]

MAX_ROW_BYTES: Final = 64 << 20
"""The longest row (bytes, line end included) a CSV or JSON Lines file may hold.

Rows up to this size are always read; the parse block never grows past it, so a reader holds
at most a few blocks of this size. A row longer than this is refused, unless it happens to fit
the two blocks it spans (pyarrow reads such a row rather than fail)."""

FIRST_BLOCK: Final = 1 << 20
"""The parse block a CSV or JSON file is first read with (pyarrow's own default)."""

BlockSizes = dict[Path, int]
"""The parse block each CSV or JSON file turned out to need, grown in place as files are read,
so that a second pass over a file starts with the block the first pass settled on."""

_STRADDLES: Final = "straddling object straddles"
_EMPTY_BLOCK: Final = "Empty CSV file or block"

# Prompt datasets are full of multi-line quoted text.
_CSV_PARSE: Final = pcsv.ParseOptions(newlines_in_values=True)


def _csv_read(block: int) -> pcsv.ReadOptions:
    # pyarrow numbers the rows in its parse errors only when it parses on one thread; on 1M
    # rows that measured no slower than threaded parsing.
    return pcsv.ReadOptions(use_threads=False, block_size=block)


def read_batches(
    path: Path,
    fmt: Format,
    schema: pa.Schema,
    columns: Sequence[str],
    batch_size: int,
    blocks: BlockSizes,
) -> Iterator[pa.RecordBatch]:
    """Stream ``columns`` of one file in record batches of at most ``batch_size`` rows."""
    with reading(path, fmt, schema):
        if fmt == "parquet":
            batches = _parquet_batches(path, schema, columns, batch_size)
        elif fmt == "csv":
            batches = _csv_batches(path, schema, columns, blocks)
        else:
            batches = _json_batches(path, schema, columns, blocks)
        for batch in batches:
            # CSV and JSON batches are parse blocks of any length; cut them down to size.
            for start in range(0, batch.num_rows, batch_size):
                yield batch.slice(start, batch_size)


def inferred_schema(path: Path, fmt: Format, blocks: BlockSizes) -> pa.Schema:
    """The file's own schema; CSV and JSON infer theirs from the first parse block."""
    if fmt == "parquet":
        return pq.read_schema(path)

    while True:
        block = _block(path, blocks)
        try:
            if fmt == "csv":
                reader = pcsv.open_csv(
                    path, read_options=_csv_read(block), parse_options=_CSV_PARSE
                )
            else:
                reader = pj.open_json(path, read_options=pj.ReadOptions(block_size=block))
            with reader:
                return reader.schema
        except pa.ArrowInvalid as exc:
            _grow(path, fmt, blocks, block, exc)


@contextlib.contextmanager
def reading(path: Path, fmt: Format, schema: pa.Schema | None = None) -> Iterator[None]:
    """Turn pyarrow's and the OS's errors about one file into an :class:`InputError`."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"{show(path)}: cannot read the file: {exc}") from exc
    except pa.ArrowException as exc:
        raise InputError(f"{show(path)}: {explain(str(exc), path, fmt, schema)}") from exc


def _csv_batches(
    path: Path, schema: pa.Schema, columns: Sequence[str], blocks: BlockSizes
) -> Iterator[pa.RecordBatch]:
    convert = pcsv.ConvertOptions(
        column_types=dict.fromkeys(schema.names, pa.string()), include_columns=list(columns)
    )

    def open_reader(block: int) -> pa.RecordBatchReader:
        return pcsv.open_csv(
            path, read_options=_csv_read(block), parse_options=_CSV_PARSE, convert_options=convert
        )

    return _growing_batches(path, "csv", blocks, open_reader)


def _json_batches(
    path: Path, schema: pa.Schema, columns: Sequence[str], blocks: BlockSizes
) -> Iterator[pa.RecordBatch]:
    # A key that first appears after the first parse block is not in the inferred schema; an
    # error here beats dropping it silently. JSON is parsed whole anyway, so project after.
    parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")

    def open_reader(block: int) -> pa.RecordBatchReader:
        read = pj.ReadOptions(block_size=block)
        return pj.open_json(path, read_options=read, parse_options=parse)

    for batch in _growing_batches(path, "jsonl", blocks, open_reader):
        yield batch.select(list(columns))


def _parquet_batches(
    path: Path, schema: pa.Schema, columns: Sequence[str], batch_size: int
) -> Iterator[pa.RecordBatch]:
    target = pa.schema([schema.field(name) for name in columns])
    with pq.ParquetFile(path) as file:
        for batch in file.iter_batches(batch_size=batch_size, columns=list(columns)):
            # Files of one dataset may differ in width (int32 here, int64 there).
            yield batch if batch.schema.equals(target) else batch.cast(target)


def _growing_batches(
    path: Path,
    fmt: Format,
    blocks: BlockSizes,
    open_reader: Callable[[int], pa.RecordBatchReader],
) -> Iterator[pa.RecordBatch]:
    """The reader's batches, reopened with a doubled block whenever a row straddles one.

    A reopened reader parses the file again from its start and skips the rows already
    yielded: rows parse the same whatever the block, and pyarrow cannot start mid-file.
    """
    done = 0  # rows yielded so far
    while True:
        block = _block(path, blocks)
        try:
            with open_reader(block) as reader:
                for batch in _skip(reader, done):
                    yield batch
                    done += batch.num_rows
            return
        except pa.ArrowInvalid as exc:
            _grow(path, fmt, blocks, block, exc)


def _block(path: Path, blocks: BlockSizes) -> int:
    return blocks.get(path, min(FIRST_BLOCK, MAX_ROW_BYTES))


def _grow(path: Path, fmt: Format, blocks: BlockSizes, block: int, exc: pa.ArrowInvalid) -> None:
    """Double the file's block after a straddling row; raise ``exc`` if it was another error,
    and the error naming the long row if the block is already :data:`MAX_ROW_BYTES`."""
    message = str(exc)
    # A CSV header longer than the block reads as an empty first block.
    header_cut = _EMPTY_BLOCK in message and path.stat().st_size > block
    if _STRADDLES not in message and not header_cut:
        raise exc
    if block >= MAX_ROW_BYTES:
        raise row_too_long(path, fmt, MAX_ROW_BYTES) from None
    blocks[path] = min(block * 2, MAX_ROW_BYTES)


def _skip(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """``batches`` without their first ``rows`` rows."""
    for batch in batches:
        if rows >= batch.num_rows:
            rows -= batch.num_rows
            continue
        yield batch.slice(rows) if rows else batch
        rows = 0
