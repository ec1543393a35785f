"""Writing an export a batch at a time: Parquet row groups, CSV or JSON Lines, and a directory
of numbered files once a file would pass ``max_file_rows``.

Nothing here holds more than the batch it is given. Errors of the disk become
:class:`~runner.errors.StorageError` naming the file.

A CSV file is opened by spreadsheets, which run a cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return as a formula (quoting does not stop them), so a model's
answer could read and send away the cells beside it. Every text cell of a CSV the runner
writes that starts so gets a leading ``'`` (the OWASP rule, :func:`defuse_csv_text`) unless
``csv_raw``. Parquet and JSON Lines are written as they are.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from runner.dataset import EXTENSIONS, Format, json_values
from runner.errors import ConfigError, StorageError
from runner.export._target import PARTS_MARK
from runner.store import current_umask, describe_os_error, fsync_dir

ExportFormat = Format
FORMATS: Final[tuple[ExportFormat, ...]] = ("parquet", "csv", "jsonl")


def format_of(path: Path | None, option: str = "--to") -> ExportFormat:
    """The format an export target's extension names, by the table datasets are read with
    (``.parquet``/``.pq``, ``.csv``, ``.jsonl``/``.ndjson``/``.json``); no target or no
    extension: Parquet. Another extension is a :class:`ConfigError` naming ``option``."""
    if path is None or not path.suffix:
        return "parquet"
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"{option} {path}: cannot tell the format from the extension {path.suffix!r}; "
            "name a .parquet, .csv or .jsonl file"
        )
    return fmt


class _File:
    """One output file of one format, written batch by batch."""

    def __init__(
        self, path: Path, fmt: ExportFormat, schema: pa.Schema, *, csv_raw: bool = False
    ) -> None:
        self.path = path
        self.fmt = fmt
        self.rows = 0
        self._csv_raw = csv_raw
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
            self._csv.write_table(_csv_table(table, raw=self._csv_raw))
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


def _csv_table(table: pa.Table, *, raw: bool) -> pa.Table:
    for i, field in enumerate(table.schema):
        if _nested(field.type):
            values = json_values(table.column(i).combine_chunks())
            text = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
            table = table.set_column(i, field.name, pa.array(text, pa.string()))
    return table if raw else defuse_csv_table(table)


#: The first characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_START: Final = "=+-@\t\r"
_FORMULA_PATTERN: Final = "^[=+\\-@\t\r]"


def defuse_csv_text(text: str) -> str:
    """``text`` with a leading ``'`` when it starts like a formula (``=``, ``+``, ``-``, ``@``,
    a tab or a carriage return), else as it is."""
    return "'" + text if text[:1] and text[0] in FORMULA_START else text


def defuse_csv_table(table: pa.Table) -> pa.Table:
    """Every text column of ``table`` through :func:`defuse_csv_text`, computed by Arrow."""
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            column = table.column(i)
            risky = pc.match_substring_regex(column, _FORMULA_PATTERN)
            quote, none = pa.scalar("'", field.type), pa.scalar("", field.type)
            quoted = pc.binary_join_element_wise(quote, column, none)
            table = table.set_column(i, field, pc.if_else(risky, quoted, column))
    return table


class ExportSink:
    """The export target: one file, or a directory of ``part-NNNNN.<ext>`` files of at most
    ``max_file_rows`` rows each.

    Written inside a temporary folder beside the target (:attr:`scratch`, named
    ``<prefix><random>``) and renamed into place by :meth:`commit`: a file target is the old
    file or the whole new one, never half of one. An existing target is refused unless
    ``overwrite``; a folder replaced by :meth:`commit` is first moved into the scratch folder,
    which is removed last.
    """

    def __init__(
        self,
        target: Path,
        fmt: ExportFormat,
        schema: pa.Schema,
        *,
        max_file_rows: int | None,
        as_directory: bool,
        overwrite: bool = False,
        csv_raw: bool = False,
        prefix: str | None = None,
    ) -> None:
        if max_file_rows is not None and max_file_rows < 1:
            raise ConfigError(f"--max-file-rows must be at least 1, got {max_file_rows}")
        self.target = target
        self.fmt = fmt
        self.schema = schema
        self.max_file_rows = max_file_rows
        self.as_directory = as_directory
        self.overwrite = overwrite
        self.csv_raw = csv_raw
        if not overwrite and (target.exists() or target.is_symlink()):
            raise ConfigError(f"--to {target} exists; pass --overwrite to replace it")
        with _storage(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            self.scratch = Path(
                tempfile.mkdtemp(prefix=prefix or f".{target.name}.", dir=target.parent)
            )
            self._new = self.scratch / ("parts" if as_directory else target.name)
            if as_directory:
                self._new.mkdir()
                (self._new / PARTS_MARK).write_text(_PARTS_NOTE, encoding="utf-8")
        self._file: _File | None = None
        self._parts = 0

    def _next_file(self) -> _File:
        if not self.as_directory:
            path = self._new
        else:
            path = self._new / f"part-{self._parts:05d}.{self.fmt}"
        self._parts += 1
        return _File(path, self.fmt, self.schema, csv_raw=self.csv_raw)

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
            if self.as_directory:
                for path in self._new.iterdir():
                    path.chmod(mode)
                self._new.chmod(0o777 & ~current_umask())
            else:
                self._new.chmod(mode)
            if not self.overwrite and (self.target.exists() or self.target.is_symlink()):
                raise ConfigError(f"--to {self.target} appeared while exporting; not replaced")
            present = self.target.exists() or self.target.is_symlink()
            target_is_dir = self.target.is_dir() and not self.target.is_symlink()
            if present and (self.as_directory or target_is_dir):
                # rename(2) replaces a file by a file, not a folder: the old one goes aside.
                os.replace(self.target, self.scratch / "old")
            os.replace(self._new, self.target)
            fsync_dir(self.target.parent)
        shutil.rmtree(self.scratch, ignore_errors=True)
        return self.target

    def abort(self) -> None:
        """Forget everything written so far."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


_PARTS_NOTE: Final = (
    "runner export wrote the part files of this folder; runner export --overwrite may replace it\n"
)


@contextlib.contextmanager
def _storage(target: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {describe_os_error(exc)}") from exc
