"""The ``runner`` console script: Ctrl-C while the program is still loading is exit 130 and
one line, like any other interrupt, never a traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from runner.cli import main as cli
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted; nothing was done\n")
        sys.exit(130)
    cli()
