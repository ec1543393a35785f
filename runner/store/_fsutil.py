"""Atomic file writes: a reader sees the old file or the whole new one, never half of one.

Each write goes to a temporary file ``.<name>.<random>.tmp`` in the same directory (created
``O_EXCL | O_NOFOLLOW``, and opened again only ``O_NOFOLLOW``), is flushed
to disk, then renamed over the target; the directory is flushed too so the rename survives a
power loss. The new file gets the mode an ordinary ``open`` would give it (``0o666`` less the
umask). Any ``OSError`` on the way (disk full, read-only file system, I/O error) becomes one
:class:`~runner.errors.StorageError` naming the target, and the temporary file is removed.

A process killed mid-write leaves its temporary file behind; :func:`remove_stale_temps`
removes those, and the ``.compact-*`` and ``.export-*`` scratch directories of an interrupted
compaction or export.
"""

from __future__ import annotations

import contextlib
import errno as errnos
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Final

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from runner.errors import ResultsDirError, StorageError

#: Our own leftovers: the atomic writer's temporary files and the compaction's scratch dirs.
_TEMP_FILE: Final = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")
_SCRATCH_DIR: Final = re.compile(r"^\.(compact|export)-.+$")


def describe_os_error(exc: OSError) -> str:
    """The cause of an ``OSError`` in a few words, without its path (callers name the file)."""
    if exc.errno is not None and exc.errno in errnos.errorcode:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__


def current_umask() -> int:
    """The process umask, read from ``/proc`` where it can be (no global change, no race);
    elsewhere set and restored at once with ``os.umask``."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def open_no_follow(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that never follows a symlink at ``path`` (``O_NOFOLLOW``): a link there is
    :class:`ResultsDirError` (exit 2) naming the file, as writing through it would change a
    file elsewhere. Any other ``OSError`` passes through for the caller to name."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errnos.ELOOP:
            raise ResultsDirError(
                f"{path} is a symbolic link; the runner never writes through a link (it could "
                "change a file outside the run directory). Remove the link, then try again"
            ) from exc
        raise


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
    """Yield a temporary path; on success it is flushed and renamed to ``target``.

    An ``OSError`` raised here or by the body becomes :class:`StorageError` naming ``target``;
    the temporary file never outlives the block.
    """
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            os.fchmod(fd, 0o666 & ~current_umask())
        finally:
            os.close(fd)
        yield tmp
        fd = open_no_follow(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)  # over a symlink at target: replaces the link, not its file
        fsync_dir(target.parent)
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {describe_os_error(exc)}") from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


def atomic_write(target: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write ``target`` atomically through ``write(fh)`` on a binary file handle."""
    with atomic_path(target) as tmp, _open_temp(tmp) as fh:
        write(fh)


def _open_temp(tmp: Path) -> IO[bytes]:
    """The atomic writer's temporary file (made ``O_EXCL | O_NOFOLLOW`` by ``mkstemp``), opened
    again for writing without following a link."""
    return os.fdopen(open_no_follow(tmp, os.O_WRONLY | os.O_TRUNC), "wb")


def atomic_write_text(target: Path, text: str) -> None:
    atomic_write(target, lambda fh: fh.write(text.encode("utf-8")))


def atomic_write_json(target: Path, value: Any) -> None:
    atomic_write_text(target, json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")


def atomic_write_parquet(target: Path, frame: pl.DataFrame | pa.Table) -> None:
    """Write a polars frame or Arrow table to Parquet atomically (zstd)."""
    table = frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame
    # Through our own file object: on a full disk pyarrow raises without closing a file it
    # opened itself, and the open temp file keeps the space (and the mount) busy.
    with atomic_path(target) as tmp, _open_temp(tmp) as fh:
        pq.write_table(table, fh, compression="zstd")


def remove_stale_temps(directory: Path) -> list[Path]:
    """Remove the leftovers of a killed writer in ``directory``; return what was removed.

    Only our own names: regular files ``.<name>.<random>.tmp`` (the atomic writer's) and
    directories ``.compact-*`` (a compaction's scratch space) and ``.export-*`` (an export's
    outcome join, :mod:`runner.export._target`); never a symlink, never anything
    else. Call it only while holding the run directory's lock, so no writer is live.
    """
    removed: list[Path] = []
    try:
        entries = sorted(directory.iterdir())
    except FileNotFoundError:
        return removed
    except OSError as exc:
        raise StorageError(f"cannot list {directory}: {describe_os_error(exc)}") from exc
    for entry in entries:
        try:
            mode = entry.lstat().st_mode
            if stat.S_ISREG(mode) and _TEMP_FILE.match(entry.name):
                entry.unlink()
            elif stat.S_ISDIR(mode) and _SCRATCH_DIR.match(entry.name):
                shutil.rmtree(entry)
            else:
                continue
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError(f"cannot remove {entry}: {describe_os_error(exc)}") from exc
        removed.append(entry)
    return removed
