"""Writing an export a batch at a time: Parquet row groups, CSV or JSON Lines, and a directory
of numbered files once a file would pass ``max_file_rows``.

Nothing here holds more than the batch it is given. Errors of the disk become
:class:`~runner.errors.StorageError` naming the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final, Literal

import polars as pl
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from runner.errors import ConfigError, StorageError
from runner.fsutil import current_umask, describe_os_error, fsync_dir
from runner.values import json_values

ExportFormat = Literal["parquet", "csv", "jsonl"]
FORMATS: Final[tuple[ExportFormat, ...]] = ("parquet", "csv", "jsonl")


#: The export format each file extension names.
EXTENSIONS: Final[dict[str, ExportFormat]] = {
    "parquet": "parquet", "csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl",
}  # fmt: skip


def format_of(path: Path) -> ExportFormat:
    """The format a path's extension names (``.parquet``, ``.csv``, ``.jsonl``/``.ndjson``;
    ``.json`` is read as JSON lines); anything else is Parquet."""
    suffix = path.suffix.lower().lstrip(".")
    return EXTENSIONS.get(suffix, "jsonl" if suffix == "json" else "parquet")


class _File:
    """One output file of one format, written batch by batch."""

    def __init__(self, path: Path, fmt: ExportFormat, schema: pa.Schema) -> None:
        self.path = path
        self.fmt = fmt
        self.rows = 0
        self._parquet: pq.ParquetWriter | None = None
        self._csv: pcsv.CSVWriter | None = None
        self._fh: IO[bytes] = open(path, "wb")  # noqa: SIM115 (closed in close())
        if fmt == "parquet":
            self._parquet = pq.ParquetWriter(self._fh, schema, compression="zstd")
        elif fmt == "csv":
            self._csv = pcsv.CSVWriter(self._fh, _csv_schema(schema))

    def write(self, table: pa.Table) -> None:
        if self._parquet is not None:
            self._parquet.write_table(table)
        elif self._csv is not None:
            self._csv.write_table(_csv_table(table))
        else:
            frame = pl.from_arrow(table)
            assert isinstance(frame, pl.DataFrame)
            frame.write_ndjson(self._fh)
        self.rows += table.num_rows

    def close(self) -> None:
        try:
            if self._parquet is not None:
                self._parquet.close()
            elif self._csv is not None:
                self._csv.close()
            self._fh.flush()
            os.fsync(self._fh.fileno())
        finally:
            self._fh.close()


def _nested(type_: pa.DataType) -> bool:
    return bool(pa.types.is_nested(type_) or pa.types.is_dictionary(type_))


def _csv_schema(schema: pa.Schema) -> pa.Schema:
    """CSV has no lists or structs: those columns are written as JSON text."""
    return pa.schema(
        [f.with_type(pa.string()) if _nested(f.type) else f for f in schema],
        metadata=schema.metadata,
    )


def _csv_table(table: pa.Table) -> pa.Table:
    for i, field in enumerate(table.schema):
        if _nested(field.type):
            values = json_values(table.column(i).combine_chunks())
            text = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
            table = table.set_column(i, field.name, pa.array(text, pa.string()))
    return table


class ExportSink:
    """The export target: one file, or a directory of ``part-NNNNN.<ext>`` files of at most
    ``max_file_rows`` rows each. Written under a temporary name and moved into place by
    :meth:`commit`, so a failed export leaves no half file behind."""

    def __init__(
        self,
        target: Path,
        fmt: ExportFormat,
        schema: pa.Schema,
        *,
        max_file_rows: int | None,
        as_directory: bool,
    ) -> None:
        if max_file_rows is not None and max_file_rows < 1:
            raise ConfigError(f"--max-file-rows must be at least 1, got {max_file_rows}")
        self.target = target
        self.fmt = fmt
        self.schema = schema
        self.max_file_rows = max_file_rows
        self.as_directory = as_directory
        if as_directory and target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise ConfigError(f"--to {target} exists and is not an empty directory")
        if not as_directory and target.is_dir():
            raise ConfigError(f"--to {target} is a directory; name a file")
        with _storage(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            )
        self._file: _File | None = None
        self._parts = 0

    def _next_file(self) -> _File:
        if not self.as_directory:
            path = self._tmp / self.target.name
        else:
            path = self._tmp / f"part-{self._parts:05d}.{self.fmt}"
        self._parts += 1
        return _File(path, self.fmt, self.schema)

    def write(self, table: pa.Table) -> None:
        """Append ``table``'s rows, starting a new part whenever one is full."""
        with _storage(self.target):
            while table.num_rows:
                if self._file is None:
                    self._file = self._next_file()
                room = table.num_rows
                if self.as_directory and self.max_file_rows is not None:
                    room = min(room, self.max_file_rows - self._file.rows)
                self._file.write(table.slice(0, room))
                table = table.slice(room)
                if self.as_directory and self._file.rows == self.max_file_rows:
                    self._file.close()
                    self._file = None

    def commit(self) -> Path:
        """Close the last file and move the export to its target."""
        with _storage(self.target):
            if self._file is None and self._parts == 0:
                self._file = self._next_file()  # no rows: still a (header-only) file
            if self._file is not None:
                self._file.close()
                self._file = None
            mode = 0o666 & ~current_umask()
            for path in self._tmp.iterdir():
                path.chmod(mode)
            if self.as_directory:
                self._tmp.chmod(0o777 & ~current_umask())
                if self.target.exists():
                    self.target.rmdir()  # checked empty when the sink was made
                os.replace(self._tmp, self.target)
            else:
                os.replace(self._tmp / self.target.name, self.target)
                self._tmp.rmdir()
            fsync_dir(self.target.parent)
        return self.target

    def abort(self) -> None:
        """Forget everything written so far."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        shutil.rmtree(self._tmp, ignore_errors=True)


@contextlib.contextmanager
def _storage(target: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {describe_os_error(exc)}") from exc
