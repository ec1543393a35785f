"""Reading the dataset: CSV, Parquet or JSON Lines files as a stream of :class:`Row` batches.

:func:`open_dataset` resolves the files (:mod:`runner.dataset._files`), settles one schema and
the role of every column (:mod:`runner.dataset._columns`), then makes one streamed pass over the
(limited) data that keeps only a 64-bit hash per row id (:mod:`runner.dataset._checks`), so
that everything that can be checked is checked before the first request: missing files, parse
errors anywhere, rows too long, unknown columns, non-scalar metadata, missing and duplicate
ids. :meth:`Dataset.iter_batches` then streams the rows in bounded batches
(:mod:`runner.dataset._readers`); no file is ever held in memory whole. A CSV or JSON Lines row may
hold
up to :data:`runner.dataset._readers.MAX_ROW_BYTES` (64 MiB).

Values are made JSON-safe once, here at the boundary, by :mod:`runner.dataset._values`.

Row numbers in messages count data rows from 1 within each file; a CSV header is not a row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from runner.config import RunConfig
from runner.dataset._checks import check_ids, id_strings, scan
from runner.dataset._columns import Roles, dataset_schema, used_columns
from runner.dataset._files import Format, detect_format, resolve_files, show, where
from runner.dataset._fingerprints import dataset_changes, fingerprints
from runner.dataset._readers import BlockSizes, read_batches
from runner.dataset._values import NotJsonSafe, json_values
from runner.errors import InputError
from runner.records import Row

__all__ = ["Dataset", "Format", "dataset_changes", "detect_format", "open_dataset"]


@dataclass(frozen=True, slots=True)
class Dataset:
    """A validated dataset: its files, the role of each column, and a way to stream its rows."""

    files: tuple[Path, ...]
    """Resolved paths, sorted."""
    format: Format
    columns: tuple[str, ...]
    """Every column of the files, in the order of the first file."""
    id_column: str | None
    """Where row ids come from; ``None`` means the row's 0-based position is its id."""
    input_columns: tuple[str, ...]
    metadata_columns: tuple[str, ...]
    expected_column: str | None
    num_rows: int
    """Rows that :meth:`iter_batches` yields, after ``--limit``."""
    fingerprint: str
    """blake2b (hex) over the files' relative names and bytes and the format."""
    schema: pa.Schema = field(repr=False, compare=False)
    """The Arrow schema every file is read with (all strings for CSV)."""
    file_fingerprints: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """Each file's path as messages show it → blake2b (hex) of its bytes; compare two with
    :func:`dataset_changes`."""
    block_sizes: BlockSizes = field(default_factory=dict, repr=False, compare=False)
    """The parse block each CSV or JSON file needed when it was validated (long rows)."""

    def iter_batches(self, batch_size: int = 4096) -> Iterator[list[Row]]:
        """Yield the rows in file order, in lists of at most ``batch_size`` rows."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        columns = used_columns(
            self.id_column, self.input_columns, self.metadata_columns, self.expected_column
        )
        blocks = dict(self.block_sizes)
        position = 0
        for path in self.files:
            file_row = 0
            for batch in read_batches(path, self.format, self.schema, columns, batch_size, blocks):
                take = min(batch.num_rows, self.num_rows - position)
                if take <= 0:
                    return
                yield _rows(self, path, batch.slice(0, take), position, file_row)
                position += take
                file_row += take
            if position >= self.num_rows:
                return


def open_dataset(config: RunConfig) -> Dataset:
    """Resolve, read and validate the dataset of ``config``; raise before any request is sent.

    Raises :class:`InputError` for problems of the data and :class:`ConfigError` for options
    that name columns the files do not have.
    """
    files = resolve_files(config.dataset, config.input_format)
    fmt: Format = detect_format(files) if config.input_format == "auto" else config.input_format
    blocks: BlockSizes = {}
    schema = dataset_schema(files, fmt, blocks)
    roles = Roles.pick(config, schema, where(files))
    counts, id_stats = scan(files, fmt, schema, roles, config.limit, blocks)
    num_rows = sum(counts)
    if num_rows == 0:
        raise InputError(f"{where(files)}: the dataset has no rows")
    if roles.id_column is not None and id_stats is not None:
        check_ids(files, fmt, schema, roles.id_column, counts, id_stats, blocks)
    combined, per_file = fingerprints(files, fmt)
    return Dataset(
        files=files,
        format=fmt,
        columns=tuple(schema.names),
        id_column=roles.id_column,
        input_columns=roles.inputs,
        metadata_columns=roles.metadata,
        expected_column=roles.expected,
        num_rows=num_rows,
        fingerprint=combined,
        schema=schema,
        file_fingerprints=per_file,
        block_sizes=blocks,
    )


def _rows(
    dataset: Dataset, path: Path, batch: pa.RecordBatch, position: int, file_row: int
) -> list[Row]:
    """Turn one record batch into rows; ``position`` and ``file_row`` are its first row's."""
    n = batch.num_rows
    if dataset.id_column is None:
        ids: list[Any] = [str(position + i) for i in range(n)]
    else:
        ids = id_strings(batch.column(dataset.id_column)).to_pylist()
        if None in ids:
            row = file_row + ids.index(None) + 1
            raise InputError(
                f"{show(path)}, row {row}: no id; did the file change since it was opened?"
            )
    wanted = {*dataset.input_columns, *dataset.metadata_columns}
    if dataset.expected_column is not None:
        wanted.add(dataset.expected_column)
    values = {name: _json_values(batch.column(name), path, name, file_row) for name in wanted}
    inputs = [(name, values[name]) for name in dataset.input_columns]
    metadata = [(name, values[name]) for name in dataset.metadata_columns]
    expected = (
        values[dataset.expected_column] if dataset.expected_column is not None else [None] * n
    )
    return [
        Row(
            row_id=ids[i],
            inputs={name: column[i] for name, column in inputs},
            metadata={name: column[i] for name, column in metadata},
            expected=expected[i],
        )
        for i in range(n)
    ]


def _json_values(array: pa.Array, path: Path, column: str, file_row: int) -> list[Any]:
    """The column's values as JSON-safe Python values, or an error naming file, row, column."""
    try:
        return json_values(array)
    except NotJsonSafe as exc:
        raise InputError(
            f"{show(path)}, row {file_row + exc.index + 1}: column {column!r} holds "
            f"{exc.kind}, which has no JSON form"
        ) from None
