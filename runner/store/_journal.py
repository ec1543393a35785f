"""The journal ``OUT/journal.jsonl``: one JSON line per finished call, written and read
(its repair is :mod:`runner.store._recovery`).

An outcome counts as done once its journal line is written: one ``write`` to a file opened
``O_APPEND`` (completed if the kernel takes only part of it), so it is in the kernel's page
cache and a ``kill -9`` cannot take it back. A background flush calls ``fsync`` every few
seconds against power loss.

A crash or a full disk can leave a torn last line, and a damaged disk a bad line anywhere.
:func:`runner.store._recovery.recover_journal` is the one repair, run once before anything
reads the journal: it cuts a torn tail and sets bad lines aside in ``journal.rejected.jsonl``.
The readers here and in :mod:`runner.store._compaction` assume it ran; they skip an
unterminated last line (never a committed outcome) and turn any other unreadable line into
:class:`~runner.errors.StorageError`.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import orjson
import polars as pl

from runner.errors import StorageError
from runner.records import (
    KEY_COLUMNS,
    RESULT_COLUMNS,
    RESULT_SCHEMA,
    STATUS_OK,
    JsonScalar,
    Outcome,
)
from runner.store._fsutil import describe_os_error, open_no_follow
from runner.store._memory import DEFAULT_MEMORY, MemoryPlan
from runner.store._rundir import RunDir

TIMESTAMPS: Final = ("started_at", "finished_at")
#: For the rare record orjson refuses even with its strings scrubbed (an integer past 64 bits).
_FALLBACK_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
#: The columns a line cannot do without.
REQUIRED: Final = (*KEY_COLUMNS, "status")


def _schema() -> dict[str, pl.DataType]:
    schema = dict(pl.from_arrow(RESULT_SCHEMA.empty_table()).schema)  # type: ignore[union-attr]
    for name in TIMESTAMPS:
        schema[name] = pl.String()
    return schema


SCHEMA: Final = _schema()


def encode_line(outcome: Outcome) -> bytes:
    """One journal line, ``\n`` included: the outcome's fields in ``RESULT_COLUMNS`` order.

    orjson writes what the stdlib encoder with ``ensure_ascii=False`` and separators
    ``(",", ":")`` writes (UTF-8, no spaces, ``"`` ``\\`` and control characters escaped)
    in a fifth of the time (BENCHMARKS.md, issue 14). ``Outcome`` is a dataclass whose fields
    are the result columns in order, so it is encoded without building a dict.

    A string that is not valid Unicode (a lone surrogate, which a JSON answer can spell as
    ``\\ud800``) is written with U+FFFD in its place, as every reader of the journal would
    refuse it.
    """
    try:
        return orjson.dumps(outcome, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        record = {name: _valid_text(getattr(outcome, name)) for name in RESULT_COLUMNS}
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        return (_FALLBACK_JSON.encode(record) + "\n").encode("utf-8")


def _valid_text(value: JsonScalar) -> JsonScalar:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


def journal_fragment(name: str, value: JsonScalar) -> bytes:
    """How a journal line spells ``"name": value``, byte for byte (the journal's own encoder):
    lines can be counted by it without parsing them. A JSON string escapes its quotes, so the
    fragment cannot occur inside a value."""
    return orjson.dumps(name) + b":" + orjson.dumps(value)


def journal_schema() -> dict[str, pl.DataType]:
    """The polars schema of a journal line (timestamps still ISO strings)."""
    return dict(SCHEMA)


def key_frame(
    row_ids: Iterable[str], variants: Iterable[str], repeats: Iterable[int]
) -> pl.DataFrame:
    return pl.DataFrame(
        {"row_id": list(row_ids), "variant": list(variants), "repeat": list(repeats)},
        schema={"row_id": pl.String(), "variant": pl.String(), "repeat": pl.Int32()},
    )


def key_hashes(keys: pl.DataFrame) -> npt.NDArray[np.uint64]:
    """64-bit hashes of key rows; equal keys hash equal within one process."""
    return keys.select(KEY_COLUMNS).hash_rows(seed=0x5EED).to_numpy()


class DoneKeys:
    """The keys a resumed run must not send again, as a sorted array of 64-bit hashes.

    Eight bytes a key, so millions of keys fit in a few tens of MB. Two different keys share a
    hash with odds of about n² / 2⁶⁵ (10⁻⁷ for two million keys).
    """

    def __init__(self, hashes: npt.NDArray[np.uint64]) -> None:
        self._hashes = np.sort(hashes)

    def __len__(self) -> int:
        return int(self._hashes.size)

    def contains(self, keys: pl.DataFrame) -> npt.NDArray[np.bool_]:
        """A boolean mask over ``keys`` rows: True where the key is done."""
        if self._hashes.size == 0 or keys.height == 0:
            return np.zeros(keys.height, dtype=bool)
        probe = key_hashes(keys)
        where = np.searchsorted(self._hashes, probe)
        where[where >= self._hashes.size] = 0
        found: npt.NDArray[np.bool_] = self._hashes[where] == probe
        return found


class Journal:
    """Appends outcomes to ``journal.jsonl``, one ``write`` per outcome.

    Opening does not recover the journal (call :func:`recover_journal` first, once); it only
    cuts a torn last line, so that the first new line cannot be glued onto it. The journal and
    the rejected lines are opened ``O_NOFOLLOW``: a symlink in their place is refused
    (:class:`~runner.errors.ResultsDirError`), never written through.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            cut_torn_tail(path)
            self._fd = open_no_follow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        except OSError as exc:
            raise self._error(exc) from exc
        self.appended = 0

    def append(self, outcome: Outcome) -> None:
        data = memoryview(encode_line(outcome))
        try:
            while data:  # a full disk or a signal can make the kernel take only a part
                data = data[os.write(self._fd, data) :]
        except OSError as exc:
            raise self._error(exc) from exc
        self.appended += 1

    def sync(self) -> None:
        """Flush to disk; safe to call from a worker thread."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise self._error(exc) from exc

    def close(self) -> None:
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            os.fsync(fd)
        except OSError as exc:
            raise self._error(exc) from exc
        finally:
            os.close(fd)

    def _error(self, exc: OSError) -> StorageError:
        return StorageError(f"cannot write {self.path}: {describe_os_error(exc)}")


def cut_torn_tail(path: Path) -> int:
    """Cut a torn last line (from a crash mid-write); return the bytes removed."""
    try:
        fd = open_no_follow(path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    with os.fdopen(fd, "rb+") as fh:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0
        pos = size
        while pos > 0:
            start = max(0, pos - (1 << 16))
            fh.seek(start)
            chunk = fh.read(pos - start)
            if pos == size and chunk.endswith(b"\n"):
                return 0
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            pos = start
        else:
            keep = 0
        fh.truncate(keep)
        os.fsync(fh.fileno())
        return size - keep


def journal_pieces(path: Path, size: int) -> Iterator[bytes]:
    """The journal in pieces of about ``size`` bytes, each ending at a line end.

    An unterminated last line is left out: it is a torn write, never a committed outcome.
    """
    with open(path, "rb") as fh:
        rest = b""
        while block := fh.read(size):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            rest = block[cut:]
            if cut:
                yield block[:cut]


def parse_piece(piece: bytes, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Journal lines as a frame (timestamps still strings); polars errors pass through."""
    return pl.read_ndjson(io.BytesIO(piece), schema=schema)


def scan_journal(path: Path) -> pl.LazyFrame:
    """The journal as a lazy frame with the results schema (timestamps parsed)."""
    return parse_timestamps(pl.scan_ndjson(path, schema=SCHEMA))


def parse_timestamps(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Journal timestamps (ISO strings) as UTC datetimes, as ``results.parquet`` holds them."""
    return frame.with_columns(
        pl.col(name).str.to_datetime(time_unit="us", time_zone="UTC") for name in TIMESTAMPS
    )


def read_done_keys(
    out_dir: Path, *, retry_errors: bool, memory: MemoryPlan = DEFAULT_MEMORY
) -> DoneKeys:
    """Keys with a final outcome in the journal; with ``retry_errors`` only those that are ok.

    Assumes :func:`recover_journal` ran; a line it would have set aside raises StorageError.
    """
    path = RunDir(out_dir).journal
    schema = {name: SCHEMA[name] for name in REQUIRED}
    hashes = [np.empty(0, dtype=np.uint64)]
    # Piece by piece, only the key columns: the whole journal at once took 1.5 GB for two
    # million outcomes; this holds one piece and 8 bytes a key.
    try:
        if not path.exists():
            return DoneKeys(hashes[0])
        for piece in journal_pieces(path, memory.piece_bytes):
            keys = parse_piece(piece, schema).drop_nulls()
            if retry_errors:
                keys = keys.filter(pl.col("status") == STATUS_OK)
            hashes.append(key_hashes(keys))
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {describe_os_error(exc)}") from exc
    except pl.exceptions.PolarsError as exc:
        raise unreadable_journal(path, exc) from exc
    return DoneKeys(np.concatenate(hashes))


def unreadable_journal(path: Path, exc: Exception) -> StorageError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StorageError(f"cannot read {path}: a line is damaged ({first[:200]})")
