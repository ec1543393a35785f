"""Reading the dataset: CSV, Parquet or JSON Lines files as a stream of :class:`Row` batches.

:func:`open_dataset` resolves the files, settles one schema and the role of every column, then
makes one streamed pass over the (limited) data that keeps only a 64-bit hash per row id, so
that everything that can be checked is checked before the first request: missing files, parse
errors anywhere, unknown columns, non-scalar metadata, missing and duplicate ids.
:meth:`Dataset.iter_batches` then streams the rows in bounded batches; no file is ever held in
memory whole.

Values are made JSON-safe once, here at the boundary, by :mod:`runner.values`.

Row numbers in messages count data rows from 1 within each file; a CSV header is not a row.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pj
import pyarrow.parquet as pq

from runner.config import RunConfig
from runner.errors import ConfigError, InputError
from runner.records import Row
from runner.values import NotJsonSafe, is_text, json_values

__all__ = ["Dataset", "Format", "detect_format", "open_dataset"]

Format = Literal["csv", "parquet", "jsonl"]

_EXTENSIONS: Final[dict[str, Format]] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_DEFAULT_ID: Final = "id"
_MAX_EXAMPLES: Final = 5
_HASH_CHUNK: Final = 1 << 20


# --------------------------------------------------------------------------- the public door


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

    def iter_batches(self, batch_size: int = 4096) -> Iterator[list[Row]]:
        """Yield the rows in file order, in lists of at most ``batch_size`` rows."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        columns = _used_columns(
            self.id_column, self.input_columns, self.metadata_columns, self.expected_column
        )
        position = 0
        for path in self.files:
            file_row = 0
            for batch in _read_batches(path, self.format, self.schema, columns, batch_size):
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
    files = _resolve_files(config.dataset, config.input_format)
    fmt: Format = detect_format(files) if config.input_format == "auto" else config.input_format
    schema = _dataset_schema(files, fmt)
    roles = _Roles.pick(config, schema, _where(files))
    counts, id_stats = _scan(files, fmt, schema, roles, config.limit)
    num_rows = sum(counts)
    if num_rows == 0:
        raise InputError(f"{_where(files)}: the dataset has no rows")
    if roles.id_column is not None and id_stats is not None:
        _check_ids(files, fmt, schema, roles.id_column, counts, id_stats)
    return Dataset(
        files=files,
        format=fmt,
        columns=tuple(schema.names),
        id_column=roles.id_column,
        input_columns=roles.inputs,
        metadata_columns=roles.metadata,
        expected_column=roles.expected,
        num_rows=num_rows,
        fingerprint=_fingerprint(files, fmt),
        schema=schema,
    )


def detect_format(paths: Iterable[Path | str]) -> Format:
    """The one format of ``paths``, told by their extensions; raise if unknown or mixed."""
    seen: dict[Format, Path] = {}
    for path in map(Path, paths):
        fmt = _EXTENSIONS.get(path.suffix.lower())
        if fmt is None:
            raise InputError(
                f"{_show(path)}: cannot tell the format from the extension {path.suffix!r}; "
                f"use one of {', '.join(_EXTENSIONS)} or pass --input-format"
            )
        seen.setdefault(fmt, path)
    if len(seen) > 1:
        examples = ", ".join(f"{_show(p)} ({f})" for f, p in seen.items())
        raise InputError(f"the dataset mixes formats: {examples}; use files of one format")
    if not seen:
        raise InputError("no dataset files given")
    return next(iter(seen))


# --------------------------------------------------------------------------- finding files


def _resolve_files(specs: Sequence[str], input_format: str) -> tuple[Path, ...]:
    """Expand files, directories and globs into one sorted tuple of readable files."""
    found: dict[Path, None] = {}  # insertion-ordered set: a file named twice is read once
    for spec in specs:
        for path in _expand(spec, input_format):
            found.setdefault(path.resolve(), None)
    files = tuple(sorted(found))
    for path in files:
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise InputError(f"{_show(path)}: cannot read the file: {exc.strerror}") from exc
    return files


def _expand(spec: str, input_format: str) -> list[Path]:
    spec = os.path.expanduser(spec)
    if any(char in spec for char in "*?["):
        matches = [Path(p) for p in sorted(glob.glob(spec, recursive=True))]
        files = [p for p in matches if p.is_file()]
        if not files:
            raise InputError(f"{spec}: no files match this pattern")
        return files
    path = Path(spec)
    if path.is_dir():
        return _directory_files(path, input_format)
    if not path.exists():
        raise InputError(f"{spec}: no such file or directory")
    return [path]


def _directory_files(directory: Path, input_format: str) -> list[Path]:
    """Data files under ``directory``, skipping hidden and ``_``-prefixed entries (``_SUCCESS``)."""
    files = []
    for path in sorted(directory.rglob("*")):
        parts = path.relative_to(directory).parts
        if not path.is_file() or any(part.startswith((".", "_")) for part in parts):
            continue
        fmt = _EXTENSIONS.get(path.suffix.lower())
        if fmt is not None and input_format in ("auto", fmt):
            files.append(path)
    if not files:
        kind = "data" if input_format == "auto" else input_format
        raise InputError(
            f"{_show(directory)}: the directory holds no {kind} files "
            f"(looked for {', '.join(_EXTENSIONS)})"
        )
    return files


# --------------------------------------------------------------------------- one schema


def _dataset_schema(files: Sequence[Path], fmt: Format) -> pa.Schema:
    """The schema all files are read with: same columns everywhere, types unified."""
    schemas = [_file_schema(path, fmt) for path in files]
    first = schemas[0]
    for path, schema in zip(files[1:], schemas[1:], strict=True):
        if set(schema.names) != set(first.names):
            missing = sorted(set(first.names) - set(schema.names))
            extra = sorted(set(schema.names) - set(first.names))
            raise InputError(
                f"{_show(path)}: its columns differ from {_show(files[0])}'s "
                f"(missing: {', '.join(missing) or 'none'}; extra: {', '.join(extra) or 'none'})"
            )
    try:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
        raise InputError(f"{_where(files)}: the files' column types disagree: {exc}") from exc
    # Keep the first file's column order (unify_schemas already does), without file metadata.
    return pa.schema(list(unified))


def _file_schema(path: Path, fmt: Format) -> pa.Schema:
    with _reading(path, fmt):
        inferred = _inferred_schema(path, fmt)
    names = list(inferred.names)
    if not names:
        raise InputError(f"{_show(path)}: the file has no columns; is it empty?")
    dupes = sorted({name for name in names if names.count(name) > 1})
    if dupes:
        raise InputError(f"{_show(path)}: duplicate column name(s): {', '.join(dupes)}")
    if fmt == "csv":
        # Every CSV column is text: ids like "007" keep their zeros, nothing is guessed.
        return pa.schema([(name, pa.string()) for name in names])
    if fmt == "jsonl":
        # pyarrow turns ISO-looking strings into timestamps (and drops a "Z"); keep the text.
        return pa.schema([f.with_type(_timestamps_as_strings(f.type)) for f in inferred])
    return pa.schema(list(inferred))


def _timestamps_as_strings(type_: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(type_):
        return pa.string()
    if pa.types.is_struct(type_):
        return pa.struct([f.with_type(_timestamps_as_strings(f.type)) for f in type_])
    if pa.types.is_list(type_):
        return pa.list_(type_.value_field.with_type(_timestamps_as_strings(type_.value_type)))
    return type_


# --------------------------------------------------------------------------- column roles


@dataclass(frozen=True, slots=True)
class _Roles:
    id_column: str | None
    inputs: tuple[str, ...]
    metadata: tuple[str, ...]
    expected: str | None

    @classmethod
    def pick(cls, config: RunConfig, schema: pa.Schema, where: str) -> _Roles:
        names = list(schema.names)

        def known(option: str, columns: Iterable[str | None]) -> None:
            unknown = [c for c in columns if c is not None and c not in names]
            if unknown:
                raise ConfigError(
                    f"{where}: {option} names unknown column(s) {', '.join(map(repr, unknown))}; "
                    f"available columns: {', '.join(names)}"
                )

        known("--id-column", [config.id_column])
        known("--input-column", config.input_columns)
        known("--metadata-column", config.metadata_columns)
        known("--expected-column", [config.expected_column])
        id_column = config.id_column or (_DEFAULT_ID if _DEFAULT_ID in names else None)
        inputs = config.input_columns or tuple(
            name
            for name in names
            if name not in (id_column, config.expected_column)
            and name not in config.metadata_columns
        )
        if not inputs:
            raise InputError(
                f"{where}: no input columns left (columns: {', '.join(names)}; id: {id_column}, "
                f"expected: {config.expected_column}, metadata: "
                f"{', '.join(config.metadata_columns) or 'none'}); pass --input-column"
            )
        roles = cls(id_column, tuple(inputs), config.metadata_columns, config.expected_column)
        roles.check_types(schema, where)
        return roles

    @property
    def used(self) -> list[str]:
        return _used_columns(self.id_column, self.inputs, self.metadata, self.expected)

    def check_types(self, schema: pa.Schema, where: str) -> None:
        if self.id_column is not None:
            type_ = schema.field(self.id_column).type
            if not _is_id_type(type_):
                raise InputError(
                    f"{where}: id column {self.id_column!r} has type {type_}; "
                    "ids must be strings or numbers"
                )
        for name in self.metadata:
            type_ = schema.field(name).type
            if not _is_scalar(type_):
                raise InputError(
                    f"{where}: metadata column {name!r} has type {type_}; the API accepts only "
                    "flat scalar metadata (string, number, boolean or null)"
                )
        for name in {*self.inputs, *self.metadata, *([self.expected] if self.expected else [])}:
            problem = _unsupported(schema.field(name).type)
            if problem:
                raise InputError(f"{where}: column {name!r} {problem}")


def _is_id_type(type_: pa.DataType) -> bool:
    if pa.types.is_dictionary(type_):
        return _is_id_type(type_.value_type)
    return bool(
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_string_view(type_)
        or pa.types.is_integer(type_)
        or pa.types.is_floating(type_)
    )


def _is_scalar(type_: pa.DataType) -> bool:
    if pa.types.is_dictionary(type_):
        return _is_scalar(type_.value_type)
    return not pa.types.is_nested(type_)


def _unsupported(type_: pa.DataType) -> str | None:
    """Why values of ``type_`` cannot be sent as JSON, or ``None`` when they can."""
    if (
        pa.types.is_binary(type_)
        or pa.types.is_large_binary(type_)
        or pa.types.is_fixed_size_binary(type_)
        or pa.types.is_binary_view(type_)
    ):
        return f"holds bytes ({type_}); decode it to text or leave the column out"
    if pa.types.is_interval(type_) or pa.types.is_union(type_):
        return f"has type {type_}, which has no JSON form"
    if pa.types.is_dictionary(type_):
        return _unsupported(type_.value_type)
    if pa.types.is_map(type_):
        return _unsupported(type_.key_type) or _unsupported(type_.item_type)
    for index in range(type_.num_fields if pa.types.is_nested(type_) else 0):
        problem = _unsupported(type_.field(index).type)
        if problem:
            return problem
    return None


def _used_columns(
    id_column: str | None, inputs: Iterable[str], metadata: Iterable[str], expected: str | None
) -> list[str]:
    """The columns a run reads, each once, in a stable order."""
    columns = [id_column, *inputs, *metadata, expected]
    return list(dict.fromkeys(c for c in columns if c is not None))


# --------------------------------------------------------------------------- reading


# Prompt datasets are full of multi-line quoted text.
_CSV_PARSE: Final = pcsv.ParseOptions(newlines_in_values=True)
# pyarrow numbers the rows in its parse errors only when it parses on one thread; on 1M rows
# that measured no slower than threaded parsing.
_CSV_READ: Final = pcsv.ReadOptions(use_threads=False)


def _read_batches(
    path: Path, fmt: Format, schema: pa.Schema, columns: Sequence[str], batch_size: int
) -> Iterator[pa.RecordBatch]:
    """Stream ``columns`` of one file in record batches of at most ``batch_size`` rows.

    Each format has its own streaming reader. ``pyarrow.dataset`` was measured and set aside:
    its Parquet scan decodes whole row groups (1.6 GB for a file written as one 4-million-row
    group, against 0.2 GB here) and its CSV scan reads ahead without bound when the consumer is
    slower than the disk (0.6 GB against 0.16 GB for an 800 MB file).
    """
    with _reading(path, fmt, schema):
        for batch in _READERS[fmt](path, schema, columns, batch_size):
            # CSV and JSON batches are parse blocks of any length; cut them down to size.
            for start in range(0, batch.num_rows, batch_size):
                yield batch.slice(start, batch_size)


def _csv_batches(
    path: Path, schema: pa.Schema, columns: Sequence[str], batch_size: int
) -> Iterator[pa.RecordBatch]:
    convert = pcsv.ConvertOptions(
        column_types=dict.fromkeys(schema.names, pa.string()), include_columns=list(columns)
    )
    with pcsv.open_csv(
        path, read_options=_CSV_READ, parse_options=_CSV_PARSE, convert_options=convert
    ) as reader:
        yield from reader


def _json_batches(
    path: Path, schema: pa.Schema, columns: Sequence[str], batch_size: int
) -> Iterator[pa.RecordBatch]:
    # A key that first appears after the first parse block is not in the inferred schema; an
    # error here beats dropping it silently. JSON is parsed whole anyway, so project after.
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    with pj.open_json(path, parse_options=options) as reader:
        for batch in reader:
            yield batch.select(list(columns))


def _parquet_batches(
    path: Path, schema: pa.Schema, columns: Sequence[str], batch_size: int
) -> Iterator[pa.RecordBatch]:
    target = pa.schema([schema.field(name) for name in columns])
    with pq.ParquetFile(path) as file:
        for batch in file.iter_batches(batch_size=batch_size, columns=list(columns)):
            # Files of one dataset may differ in width (int32 here, int64 there).
            yield batch if batch.schema.equals(target) else batch.cast(target)


_READERS: Final = {"csv": _csv_batches, "jsonl": _json_batches, "parquet": _parquet_batches}


def _inferred_schema(path: Path, fmt: Format) -> pa.Schema:
    """The file's own schema; CSV and JSON infer theirs from the first parse block."""
    if fmt == "parquet":
        return pq.read_schema(path)
    if fmt == "csv":
        reader = pcsv.open_csv(path, read_options=_CSV_READ, parse_options=_CSV_PARSE)
    else:
        reader = pj.open_json(path)
    with reader:
        return reader.schema


@contextlib.contextmanager
def _reading(path: Path, fmt: Format, schema: pa.Schema | None = None) -> Iterator[None]:
    """Turn pyarrow's and the OS's errors about one file into an :class:`InputError`."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"{_show(path)}: cannot read the file: {exc}") from exc
    except pa.ArrowException as exc:
        raise InputError(f"{_show(path)}: {_explain(str(exc), path, fmt, schema)}") from exc


def _explain(message: str, path: Path, fmt: Format, schema: pa.Schema | None) -> str:
    if fmt == "csv":
        return _explain_csv(message, schema)
    if fmt == "jsonl":
        where = _locate_json_problem(path, schema)
        if where is not None:
            return where
        # pyarrow's "in row N" counts from the start of a parse block, not of the file.
        return re.sub(r" in row \d+", "", message)
    return message


def _explain_csv(message: str, schema: pa.Schema | None) -> str:
    """Say pyarrow's record numbers (header = 1) as data rows, and column numbers as names."""
    message = re.sub(r"Row #(\d+)", lambda m: f"row {int(m[1]) - 1}", message)
    if schema is not None:

        def name(match: re.Match[str]) -> str:
            index = int(match[1])
            return f"column {schema.names[index]!r}" if index < len(schema) else match[0]

        message = re.sub(r"In CSV column #(\d+)", name, message)
    return message


def _locate_json_problem(path: Path, schema: pa.Schema | None) -> str | None:
    """The first line of a JSONL file that is not an object fitting ``schema``, described."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                return f"line {number}: not valid JSON ({exc.msg})"
            if not isinstance(value, dict):
                return f"line {number}: not a JSON object"
            if schema is None:
                continue
            for key, item in value.items():
                if key not in schema.names:
                    return (
                        f"line {number}: key {key!r} is not among the columns inferred from "
                        "the file's first rows; add it (even as null) to the first row"
                    )
                type_ = schema.field(key).type
                if not _json_fits(item, type_):
                    return (
                        f"line {number}: key {key!r} holds {json.dumps(item)[:60]}, but the file's "
                        f"first rows make it {type_}"
                    )
    return None


def _json_fits(value: Any, type_: pa.DataType) -> bool:
    """Whether a parsed JSON value can be read as Arrow ``type_`` (what pyarrow checks)."""
    if value is None:
        return True
    if is_text(type_):
        return isinstance(value, str)
    if pa.types.is_boolean(type_):
        return isinstance(value, bool)
    if pa.types.is_integer(type_):
        return isinstance(value, int) and not isinstance(value, bool)
    if pa.types.is_floating(type_):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return isinstance(value, list) and all(_json_fits(v, type_.value_type) for v in value)
    if pa.types.is_struct(type_):
        fields = {f.name: f.type for f in type_}
        return isinstance(value, dict) and all(
            k in fields and _json_fits(v, fields[k]) for k, v in value.items()
        )
    return not pa.types.is_null(type_)


# --------------------------------------------------------------------------- validation pass


_SCAN_BATCH: Final = 64 * 1024


class _IdStats:
    """What the validation pass keeps of the ids: a 64-bit hash each, and the missing ones.

    Hashes cost 8 bytes a row whatever the ids' length, so 10 million UUIDs stay small; the
    ids themselves are read again only when two hashes are equal (:func:`_check_repeats`).
    """

    def __init__(self) -> None:
        self.hashes: list[pl.Series] = []
        self.missing = 0
        self.missing_at: list[str] = []

    def add(self, file: str, ids: pa.Array, first_row: int) -> None:
        self.hashes.append(pl.Series(values=ids).hash(seed=0))
        if ids.null_count:
            self.missing += ids.null_count
            room = _MAX_EXAMPLES - len(self.missing_at)
            rows = pc.indices_nonzero(pc.is_null(ids))[:room].to_pylist()
            self.missing_at.extend(f"{file}row {first_row + i + 1}" for i in rows)

    def may_repeat(self) -> bool:
        hashes = pl.concat(self.hashes)
        return bool(hashes.n_unique() < len(hashes))


def _scan(
    files: Sequence[Path], fmt: Format, schema: pa.Schema, roles: _Roles, limit: int | None
) -> tuple[list[int], _IdStats | None]:
    """Read the (limited) dataset once: the rows of each file, and what the ids need.

    CSV and JSON are read in full (every used column for CSV, every column for JSON) because a
    bad line or bad UTF-8 only shows when its column is decoded; Parquet validates its own
    structure, so only the id column is read, or nothing when rows are ids by position.
    """
    counts: list[int] = []
    stats = _IdStats() if roles.id_column is not None else None
    remaining = limit if limit is not None else math.inf
    for path in files:
        count = 0
        if remaining <= 0:  # files past the limit are never read, so not judged either
            counts.append(0)
            continue
        for batch in _validation_batches(path, fmt, schema, roles):
            take = int(min(batch.num_rows, remaining - count))
            if stats is not None:
                ids = _id_strings(batch.column(roles.id_column).slice(0, take))
                stats.add(_label(files, path), ids, count)
            count += take
            if count >= remaining:
                break
        counts.append(count)
        remaining -= count
    return counts, stats


def _validation_batches(
    path: Path, fmt: Format, schema: pa.Schema, roles: _Roles
) -> Iterator[pa.RecordBatch]:
    if fmt != "parquet":
        return _read_batches(path, fmt, schema, roles.used, _SCAN_BATCH)
    if roles.id_column is not None:
        return _read_batches(path, fmt, schema, [roles.id_column], _SCAN_BATCH)
    with _reading(path, fmt):
        num_rows = pq.read_metadata(path).num_rows
    # The footer has the row count; a batch of that many nulls stands in for the rows.
    return iter([pa.record_batch([pa.nulls(num_rows)], names=["_"])])


def _id_strings(array: pa.Array) -> pa.Array:
    """Ids as strings (``7``, not ``7.0``); null where the id is null, NaN or empty."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_floating(array.type):
        array = pc.if_else(pc.is_nan(array), pa.scalar(None, array.type), array)
    text = pc.cast(array, pa.string())
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _check_ids(
    files: Sequence[Path],
    fmt: Format,
    schema: pa.Schema,
    column: str,
    counts: Sequence[int],
    stats: _IdStats,
) -> None:
    where = f"{_where(files)}: column {column!r}"
    if stats.missing:
        raise InputError(
            f"{where}: {stats.missing} row(s) have no id (null or empty): "
            + ", ".join(stats.missing_at)
        )
    if stats.may_repeat():
        _check_repeats(files, fmt, schema, column, counts, where)


def _check_repeats(
    files: Sequence[Path],
    fmt: Format,
    schema: pa.Schema,
    column: str,
    counts: Sequence[int],
    where: str,
) -> None:
    """Count the ids exactly, and name the first repeated ones with the rows they are on."""
    per_file = [
        _read_ids(path, fmt, schema, column, count)
        for path, count in zip(files, counts, strict=True)
    ]
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
        f"{where}: {len(repeated)} id(s) occur more than once: {'; '.join(examples)}"
        + (f"; and {more} more" if more else "")
        + ". Row ids must be unique; pick another column with --id-column"
    )


def _read_ids(
    path: Path, fmt: Format, schema: pa.Schema, column: str, count: int
) -> pa.ChunkedArray:
    chunks, seen = [], 0
    if count:
        for batch in _read_batches(path, fmt, schema, [column], _SCAN_BATCH):
            chunks.append(_id_strings(batch.column(column).slice(0, count - seen)))
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
            found.append(f"{_label(files, path)}row{plural} {', '.join(rows)}")
            shown += len(rows)
    return "; ".join(found)


def _label(files: Sequence[Path], path: Path) -> str:
    """How a location names its file after a message has named the dataset: by the path
    below the dataset's root, or not at all when there is one file."""
    return f"{path.relative_to(_root(files)).as_posix()} " if len(files) > 1 else ""


# --------------------------------------------------------------------------- JSON-safe rows


def _rows(
    dataset: Dataset, path: Path, batch: pa.RecordBatch, position: int, file_row: int
) -> list[Row]:
    """Turn one record batch into rows; ``position`` and ``file_row`` are its first row's."""
    n = batch.num_rows
    if dataset.id_column is None:
        ids: list[Any] = [str(position + i) for i in range(n)]
    else:
        ids = _id_strings(batch.column(dataset.id_column)).to_pylist()
        if None in ids:
            row = file_row + ids.index(None) + 1
            raise InputError(
                f"{_show(path)}, row {row}: no id; did the file change since it was opened?"
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
            f"{_show(path)}, row {file_row + exc.index + 1}: column {column!r} holds "
            f"{exc.kind}, which has no JSON form"
        ) from None


# --------------------------------------------------------------------------- provenance


def _fingerprint(files: Sequence[Path], fmt: Format) -> str:
    """blake2b over the format and each file's name (relative to their root) and bytes."""
    digest = hashlib.blake2b(digest_size=32)
    digest.update(f"runner-dataset-v1\0{fmt}\0".encode())
    root = _root(files)
    for path in files:
        name = path.relative_to(root).as_posix().encode()
        # Lengths first, so that no two different file lists can hash the same stream.
        digest.update(len(name).to_bytes(8, "big") + name)
        try:
            digest.update(path.stat().st_size.to_bytes(8, "big"))
            with open(path, "rb") as fh:
                while chunk := fh.read(_HASH_CHUNK):
                    digest.update(chunk)
        except OSError as exc:
            raise InputError(f"{_show(path)}: cannot read the file: {exc.strerror}") from exc
    return digest.hexdigest()


def _root(files: Sequence[Path]) -> Path:
    return Path(os.path.commonpath([path.parent for path in files]))


def _show(path: Path) -> str:
    """A path as the user most likely typed it: relative to the working directory if inside."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _where(files: Sequence[Path]) -> str:
    more = len(files) - 1
    return _show(files[0]) + (f" (and {more} more file{'s' if more > 1 else ''})" if more else "")
