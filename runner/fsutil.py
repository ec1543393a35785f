"""Atomic file writes: a reader sees the old file or the whole new one, never half of one.

Each write goes to a temporary file in the same directory, is flushed to disk, then renamed
over the target; the directory is flushed too so the rename survives a power loss.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq


def fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk (no-op where the platform cannot)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path; on success it is flushed and renamed to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(target: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write ``target`` atomically through ``write(fh)`` on a binary file handle."""
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        write(fh)


def atomic_write_text(target: Path, text: str) -> None:
    atomic_write(target, lambda fh: fh.write(text.encode("utf-8")))


def atomic_write_json(target: Path, value: Any) -> None:
    atomic_write_text(target, json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")


def atomic_write_parquet(target: Path, frame: pl.DataFrame | pa.Table) -> None:
    """Write a polars frame or Arrow table to Parquet atomically (zstd)."""
    table = frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd")
