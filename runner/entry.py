"""The ``runner`` console script: Ctrl-C while the program is still loading is exit 130 and
one line, like any other interrupt, never a traceback; and once a command is over, the process
ends without waiting for the interpreter's clean-up.

That clean-up (freeing every module and object, C extensions' finalizers: polars, pyarrow,
scipy) took 0.33–0.67 s after a run had finished all its work (BENCHMARKS.md, issue 14). It
saves nothing a run needs: every file the CLI writes is flushed, synced and closed before the
command returns (the journal's ``close`` syncs it; ``fsutil.atomic_path`` syncs every other
file before its rename). So after the command, :func:`exit_now` does what the interpreter does
first at exit, in its order: waits for the other non-daemon threads (``threading._shutdown``,
which the interpreter itself calls), runs the ``atexit`` handlers (logging, Ray's shutdown,
``weakref.finalize``), flushes the standard streams; then checks that no regular file is still
open for writing, and only then calls ``os._exit``. Where it cannot check (no ``/proc``) or a
file is still open, the process exits the ordinary way. The library never does this: only this
console script.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import stat
import sys
import threading
from pathlib import Path
from typing import Final, NoReturn

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR

#: polars' allocator (jemalloc, read under this prefixed name) keeps freed pages for 10 s by
#: default, so a report's peak RSS held every intermediate frame: returning them at once
#: brought the reports of 1,000,000 rows × 2 from 414 to 354 MB (BENCHMARKS.md, issue 11).
POLARS_ALLOCATOR: Final = ("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")


def tune_allocators() -> None:
    """Ask polars' allocator to give freed memory back at once, unless the user set it. Read
    when polars loads, so only the console script does it, before any import of polars."""
    name, value = POLARS_ALLOCATOR
    os.environ.setdefault(name, value)


def main() -> None:
    tune_allocators()
    # httpx imports its own command-line client at import time whenever click is installed
    # (rich's syntax highlighting and pygments with it): 60–80 ms before the first request,
    # for a client the runner never runs. A None entry makes that one import fail, which httpx
    # expects (it then defines a stub ``httpx.main``). Only here, in the console script.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    try:
        from runner.cli import main as cli
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted; nothing was done\n")
        sys.exit(130)
    try:
        cli()
        code = 0
    except SystemExit as exc:
        code = exit_code(exc)
    exit_now(code)


def exit_code(exc: SystemExit) -> int:
    """The status ``sys.exit(exc.code)`` would give, printing a text code as Python does."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` without the interpreter's clean-up, when that is safe."""
    join_threads = getattr(threading, "_shutdown", None)
    if join_threads is None:  # not CPython as we know it: the ordinary exit
        sys.exit(code)
    join_threads()  # as at exit: thread-pool atexit hooks, then every non-daemon thread joined
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe or stream: nothing more can be said, and the exit is the same.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    if not safe_to_skip_cleanup():
        sys.exit(code)
    os._exit(code)


def safe_to_skip_cleanup() -> bool:
    """Whether the interpreter's clean-up has nothing left to write: no regular file (beyond
    stdin, stdout and stderr) is open for writing, as ``/proc/self`` tells."""
    writable = files_open_for_writing()
    return writable is not None and not writable


def files_open_for_writing() -> list[str] | None:
    """Regular files this process holds open for writing (fd 3 and up), from ``/proc``;
    None where ``/proc/self`` cannot tell."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except (OSError, ValueError):
        return None
    found = []
    for fd in fds:
        if fd < 3:
            continue
        try:
            info = Path(f"/proc/self/fdinfo/{fd}").read_text()
            mode = os.fstat(fd).st_mode
            where = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        flags = next((ln.split()[1] for ln in info.splitlines() if ln.startswith("flags:")), "0")
        if stat.S_ISREG(mode) and int(flags, 8) & _WRITE_FLAGS:
            found.append(where)
    return found
