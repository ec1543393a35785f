"""The command line: parse, build a config, call the library, map errors to exit codes.

One module per family of commands: :mod:`~runner.cli.run` (``run``),
:mod:`~runner.cli.reports` (``report``, ``compare``, ``gate``), :mod:`~runner.cli.judge`
(``judge``), :mod:`~runner.cli.experiment` (``init``, ``rerun``), :mod:`~runner.cli.export`
(``export``), :mod:`~runner.cli.baseline` (``baseline accept``, ``baseline show``),
:mod:`~runner.cli.tools` (``simulate``, ``demo``, ``merge``). Every command runs
through :class:`~runner.cli.app.Commands`, the one place where an error becomes one line and an
exit code; the codes are listed in :mod:`runner.cli.app`.
"""

from __future__ import annotations

from runner.cli import baseline, experiment, export, judge, reports, run, tools
from runner.cli.app import main

__all__ = ["baseline", "experiment", "export", "judge", "main", "reports", "run", "tools"]
