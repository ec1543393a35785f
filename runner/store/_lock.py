"""The lock of a run directory: ``flock`` on ``OUT/.runner.lock``, held by one process.

:meth:`runner.store._rundir.RunDir.locked` and :meth:`~runner.store._rundir.RunDir.adopted`
are the doors; the lock keeps a little disk space in reserve (:class:`RunLock`) so a run that
fills the disk can still write its last manifest.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

from runner.errors import ResultsDirError, RunDirLocked
from runner.store._fsutil import describe_os_error
from runner.store._manifest import now_iso

if TYPE_CHECKING:
    from runner.store._rundir import RunDir


@contextlib.contextmanager
def hold_lock(run_dir: RunDir) -> Iterator[RunLock]:
    """Hold the run directory's exclusive lock for the ``with`` block.

    The lock is ``flock`` on ``OUT/.runner.lock``: released by the kernel when the process
    ends in any way (kill -9 included), so a stale lock cannot outlive its holder. Creating
    the lock file is also the check that ``OUT`` is writable. A second process gets
    :class:`RunDirLocked` (exit 2) naming the holder's host and pid. A symlink in place
    of one of the runner's files is refused first (:meth:`RunDir.check_no_symlinks`), and the lock
    file is opened ``O_NOFOLLOW``.

    Re-entrant within a process: while this process holds OUT's lock (an experiment that
    runs its stages, or a fresh process that adopted it, :func:`adopt_lock`), ``hold_lock``
    yields that lock again, so every library operation can take the lock itself.
    """
    held = _HELD.get(_lock_key(run_dir.root))
    if held is not None:
        yield held
        return
    run_dir.check_no_symlinks()  # before anything in OUT is read or written
    try:
        fd = os.open(run_dir.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ResultsDirError(
                f"{run_dir.lock_path} is a symbolic link; remove it, then try again"
            ) from exc
        raise ResultsDirError(
            f"--out {run_dir.root} is not writable: {describe_os_error(exc)}"
        ) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RunDirLocked(
                f"{run_dir.root} is in use by another runner ({_holder(fd)}); wait for it to "
                "end or stop it, then try again"
            ) from exc
        except OSError as exc:
            raise ResultsDirError(
                f"--out {run_dir.root} cannot be locked: {describe_os_error(exc)}"
            ) from exc
        holder = json.dumps(
            {"host": socket.gethostname(), "pid": os.getpid(), "since": now_iso()}
        ).encode("utf-8")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder, 0)
        except OSError as exc:
            raise ResultsDirError(
                f"--out {run_dir.root} is not writable: {describe_os_error(exc)}"
            ) from exc
        lock = RunLock(fd, len(holder))
        _HELD[_lock_key(run_dir.root)] = lock
        try:
            yield lock
        finally:
            del _HELD[_lock_key(run_dir.root)]
            lock.release_reserve()  # the reserve is for a session, not for the disk's life
    finally:
        os.close(fd)  # closing the descriptor releases the flock


@contextlib.contextmanager
def adopt_lock(run_dir: RunDir, fd: int) -> Iterator[RunLock]:
    """Hold OUT's lock through ``fd``, a descriptor of ``OUT/.runner.lock`` inherited from
    the process that locked it and then replaced itself (or started this one): the lock
    passes from one process to the next without a moment in which it is free. Refused
    (:class:`ResultsDirError`) when ``fd`` is not that file or does not hold its lock."""
    try:
        same = os.path.samestat(os.fstat(fd), os.stat(run_dir.lock_path, follow_symlinks=False))
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours already: a no-op
    except BlockingIOError:
        same = False
    except OSError as exc:
        raise ResultsDirError(
            f"{run_dir.root}: no lock to take over ({describe_os_error(exc)})"
        ) from exc
    if not same:
        raise ResultsDirError(f"{run_dir.root}: descriptor {fd} does not hold its lock")
    lock = RunLock(fd, len(os.pread(fd, 4096, 0).split(b"\0")[0]), reserve=False)
    _HELD[_lock_key(run_dir.root)] = lock
    try:
        yield lock
    finally:
        del _HELD[_lock_key(run_dir.root)]
        lock.release_reserve()  # the reserve the first process took, at the run's end
        os.close(fd)


#: The run directories this process holds the lock of, by real path (see :func:`hold_lock`).
_HELD: Final[dict[str, RunLock]] = {}


def _lock_key(root: Path) -> str:
    return os.path.realpath(root)


class RunLock:
    """The held lock, and a little disk space it keeps in reserve.

    The lock file is grown to :data:`RESERVE_BYTES` of allocated space; when the disk fills up
    during a run, :meth:`release_reserve` gives that space back, so the manifest can still say
    ``interrupted`` and name the cause.
    """

    def __init__(self, fd: int, holder_bytes: int, *, reserve: bool = True) -> None:
        self._fd = fd
        self._holder_bytes = holder_bytes
        if reserve:
            with contextlib.suppress(OSError):  # no reserve where the file system cannot
                os.posix_fallocate(fd, holder_bytes, RESERVE_BYTES)

    @property
    def fd(self) -> int:
        """The descriptor that holds the lock (for :meth:`RunDir.adopted` in a next process)."""
        return self._fd

    def release_reserve(self) -> None:
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._holder_bytes)


#: Disk space held in the lock file for the last manifest of a run that filled the disk.
RESERVE_BYTES: Final = 256 * 1024


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).rstrip(b"\0") or b"{}")  # the reserve is zeros
        return f"host {info['host']}, pid {info['pid']}, since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
