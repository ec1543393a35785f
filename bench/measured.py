"""Run one command and write its own resource usage, measured from a small parent.

    python bench/measured.py USAGE_JSON -- COMMAND ARGS…

Linux starts a child's peak RSS (``ru_maxrss`` from ``wait4``) at its parent's peak: the child
shares or copies the parent's memory until it execs, and exec records that image's high-water
mark. ``bench/run.py`` imports polars and builds datasets, so a runner it started directly was
measured at no less than the bench's own peak (up to ~400 MB). This launcher imports only the
standard library; the command's figures are its own. Standard streams are inherited; the exit
status is the command's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def main() -> int:
    usage_path, separator, *command = sys.argv[1:]
    if separator != "--" or not command:
        raise SystemExit("usage: measured.py USAGE_JSON -- COMMAND ARGS…")
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    with open(usage_path, "w") as out:
        json.dump(
            {"pid": proc.pid, "code": code, "utime": usage.ru_utime, "stime": usage.ru_stime,
             "maxrss_kb": usage.ru_maxrss},
            out,
        )  # fmt: skip
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
