"""Saying where a file is broken: pyarrow's parse errors turned into file, line, row and column.

pyarrow counts CSV records from the header and JSON rows from the start of a parse block, and
names columns by number; the messages here count data rows from 1 within each file (a CSV
header is not a row), lines from 1 (a CSV header is line 1), and name columns.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from runner.dataset._files import Format, show
from runner.dataset._values import is_text
from runner.errors import InputError

__all__ = ["explain", "first_long_record", "row_too_long"]

_CHUNK: Final = 1 << 20


def explain(message: str, path: Path, fmt: Format, schema: pa.Schema | None) -> str:
    """pyarrow's ``message`` about ``path``, said with data rows, lines and column names."""
    if fmt == "csv":
        return _explain_csv(message, schema)
    if fmt == "jsonl":
        located = _locate_json_problem(path, schema)
        if located is not None:
            return located
        # pyarrow's "in row N" counts from the start of a parse block, not of the file.
        return re.sub(r" in row \d+", "", message)
    return message


def row_too_long(path: Path, fmt: Format, limit: int) -> InputError:
    """The error for a file holding a row longer than ``limit`` bytes, naming its line."""
    size = _size_text(limit)
    found = first_long_record(path, limit, quoted=fmt == "csv")
    if found is None:  # the file changed since the reader gave up on it
        return InputError(f"{show(path)}: a row is longer than {size}, the most a row may hold")
    line, row = found
    if fmt != "csv":
        at = f"line {line}"
    else:
        at = f"line {line} ({'the header' if row == 0 else f'row {row}'})"
    return InputError(
        f"{show(path)}, {at}: the row is longer than {size}, the most a row may hold "
        "(runner.dataset._readers.MAX_ROW_BYTES); split or shorten it"
    )


def first_long_record(path: Path, limit: int, *, quoted: bool) -> tuple[int, int] | None:
    """``(line, record)`` where the first record of more than ``limit`` bytes starts, or None.

    Lines count from 1; records count from 0, so that for a CSV (``quoted``: a newline inside
    double quotes does not end a record) the header is record 0 and data rows count from 1,
    and for JSON Lines the record is the 0-based line. Reads the file in chunks: a long row
    is never held whole.
    """
    line = start_line = 1
    record = size = 0
    in_quotes = False
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            pieces = chunk.split(b"\n")
            for index, piece in enumerate(pieces):
                ends = index < len(pieces) - 1  # else the line goes on in the next chunk
                size += len(piece) + ends
                if quoted and piece.count(b'"') % 2:
                    in_quotes = not in_quotes
                if size > limit:
                    return start_line, record
                if not ends:
                    continue
                line += 1
                if not in_quotes:
                    start_line, record, size = line, record + 1, 0
    return None


def _size_text(size: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


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
            if schema is not None:
                problem = _misfit(value, schema)
                if problem:
                    return f"line {number}: {problem}"
    return None


def _misfit(record: dict[str, Any], schema: pa.Schema) -> str | None:
    """Why one JSON object does not fit ``schema``, or None when it does."""
    for key, item in record.items():
        if key not in schema.names:
            return (
                f"key {key!r} is not among the columns inferred from the file's first rows; "
                "add it (even as null) to the first row"
            )
        type_ = schema.field(key).type
        if not _json_fits(item, type_):
            return (
                f"key {key!r} holds {json.dumps(item)[:60]}, but the file's first rows make "
                f"it {type_}"
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
