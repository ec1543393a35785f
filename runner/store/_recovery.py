"""The journal's one repair, :func:`recover_journal`: run once before anything reads it, it cuts
a torn last line (a crash mid-write) and sets bad lines aside in ``journal.rejected.jsonl``, so
each of their calls is sent again.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl
import pyarrow as pa
import pyarrow.json as pa_json

from runner.errors import StorageError
from runner.records import RESULT_SCHEMA
from runner.store._fsutil import atomic_path, describe_os_error, open_no_follow
from runner.store._journal import (
    REQUIRED,
    SCHEMA,
    TIMESTAMPS,
    cut_torn_tail,
    journal_pieces,
    parse_piece,
)
from runner.store._memory import DEFAULT_MEMORY, MemoryPlan
from runner.store._rundir import REJECTED, RunDir

#: The type each required column must have in the JSON itself.
REQUIRED_ARROW: Final = pa.schema([RESULT_SCHEMA.field(name) for name in REQUIRED])
_STRICT_KEYS: Final = pa_json.ParseOptions(
    explicit_schema=REQUIRED_ARROW, unexpected_field_behavior="ignore"
)


@dataclass(frozen=True)
class JournalRecovery:
    """What :func:`recover_journal` repaired; nothing when the journal was clean."""

    path: Path
    torn_bytes: int = 0
    rejected_lines: tuple[int, ...] = ()  # 1-based, in the journal as it was
    rejected_path: Path | None = None

    def messages(self) -> list[str]:
        """One line for a person per fact repaired."""
        name = self.path.name
        said = []
        if self.torn_bytes:
            said.append(
                f"{name}: its last line was cut short by a crash ({self.torn_bytes} "
                f"byte{'s' if self.torn_bytes != 1 else ''} removed); its call will be sent again"
            )
        where = self.rejected_path.name if self.rejected_path else REJECTED
        said += [
            f"{name}: line {n} was damaged; set aside in {where}, its call will be sent again"
            for n in self.rejected_lines
        ]
        return said


def recover_journal(path: Path, *, memory: MemoryPlan = DEFAULT_MEMORY) -> JournalRecovery:
    """Cut a torn last line, and set every bad line aside in ``journal.rejected.jsonl``.

    A bad line is one that is not a JSON object, lacks ``row_id``/``variant``/``repeat``/
    ``status`` or has one of the wrong JSON type, or that polars cannot read with
    :func:`journal_schema` (timestamps included). Bad lines are appended to the rejected file
    as ``{"line": N, "text": raw}``, then the journal is rewritten without them atomically.
    Idempotent; a clean journal is read once, a ``memory.piece_bytes`` piece at a time, and
    not rewritten.
    """
    try:
        torn = cut_torn_tail(path)
        size = memory.piece_bytes
        bad = _bad_line_numbers(path, size) if path.exists() else []
        rejected = RunDir(path.parent).rejected if bad else None
        if rejected is not None:
            _set_aside(path, rejected, frozenset(bad), size)
    except OSError as exc:
        raise StorageError(f"cannot recover {path}: {describe_os_error(exc)}") from exc
    return JournalRecovery(path, torn, tuple(bad), rejected)


def _bad_line_numbers(path: Path, size: int) -> list[int]:
    """1-based numbers of the lines that are not valid journal lines (memory: one piece)."""
    bad: list[int] = []
    first = 1
    for piece in journal_pieces(path, size):
        lines = _lines(piece)
        if not _valid(lines):
            bad += _bisect_bad(lines, first)
        first += len(lines)
    return bad


def _bisect_bad(lines: list[bytes], first: int) -> list[int]:
    """The bad lines among ``lines`` (numbered from ``first``), halving to find them."""
    if len(lines) == 1:
        return [] if _valid(lines) else [first]
    half = len(lines) // 2
    found = []
    for part, start in ((lines[:half], first), (lines[half:], first + half)):
        if not _valid(part):
            found += _bisect_bad(part, start)
    return found


def _valid(lines: list[bytes]) -> bool:
    """Whether every one of ``lines`` is a valid journal line."""
    piece = b"".join(lines)
    # Small blocks parse in parallel; no line may be longer than a block.
    blocks = pa_json.ReadOptions(block_size=max(1 << 16, max(map(len, lines)) + 1))
    try:
        frame = parse_piece(piece, SCHEMA)
        strict = pa_json.read_json(
            io.BytesIO(piece), read_options=blocks, parse_options=_STRICT_KEYS
        )
    except (pl.exceptions.PolarsError, pa.ArrowException):
        return False
    if frame.height != len(lines) or strict.num_rows != len(lines):  # blank lines are skipped
        return False
    if frame.select(REQUIRED).null_count().sum_horizontal().item():
        return False
    parsed = frame.select(
        pl.col(name).str.to_datetime(time_unit="us", time_zone="UTC", strict=False).is_null()
        & pl.col(name).is_not_null()
        for name in TIMESTAMPS
    )
    return not parsed.sum().sum_horizontal().item()


def _set_aside(path: Path, rejected: Path, bad: frozenset[int], size: int) -> None:
    """Append the ``bad`` lines to ``rejected`` and rewrite the journal without them.

    The rejected file is on disk before the new journal replaces the old one: a crash in
    between can repeat a rejected line there, never lose one.
    """
    appended = open_no_follow(rejected, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(appended, "ab") as out, atomic_path(path) as tmp, open(tmp, "wb") as keep:
        number = 0
        for piece in journal_pieces(path, size):
            for line in _lines(piece):
                number += 1
                if number not in bad:
                    keep.write(line)
                    continue
                text = line[:-1].decode("utf-8", errors="replace")
                record = json.dumps({"line": number, "text": text}, ensure_ascii=False)
                out.write((record + "\n").encode("utf-8"))
        out.flush()
        os.fsync(out.fileno())


def _lines(piece: bytes) -> list[bytes]:
    """The lines of a piece, each with its ``\\n`` (split on ``\\n`` only, as polars does)."""
    return [line + b"\n" for line in piece.split(b"\n")[:-1]]
