"""The ``runner`` command group, and the one place where errors become exit codes.

====  ==========================================================================================
code  meaning
====  ==========================================================================================
0     success: the run completed within its error budget, the gates passed
1     a regression gate failed, or shards do not merge
2     bad usage or input; nothing was sent
3     the API refused the run: key, credit, daily cap, deployment or variant not found,
      unreachable; finished work is committed and resumable
4     the run completed, but a variant's error rows are over ``--max-error-rate``
5     a local file could not be written or read (disk full, I/O); finished work is committed
130   interrupted (Ctrl-C, SIGTERM, SIGHUP); finished work is committed and resumable
70    an internal error (a bug): one line, and please report it
====  ==========================================================================================
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from runner.config import api_key_from_env
from runner.errors import RunInterrupted, RunnerError
from runner.terminal import terminal_safe

#: Exit code of an unexpected internal error (EX_SOFTWARE): never a traceback.
INTERNAL_ERROR = 70
INTERRUPTED = 130


def fail(error: RunnerError) -> NoReturn:
    """Print ``error`` as one line on stderr and exit with its code (its text may quote a
    server: control characters are removed, :func:`runner.terminal.terminal_safe`)."""
    if isinstance(error, RunInterrupted):
        click.echo(terminal_safe(str(error)), err=True)
    else:
        click.echo(f"error: {terminal_safe(str(error))}", err=True)
    sys.exit(error.exit_code)


class Commands(click.Group):
    """A group whose commands never end in a traceback: a ``RunnerError`` is one line and
    its exit code, Ctrl-C outside a run is exit 130, anything else an internal error (70)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RunnerError as exc:
            fail(exc)
        except KeyboardInterrupt:
            click.echo("\ninterrupted; nothing more was done", err=True)
            sys.exit(INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:  # the last guard: a bug must still be one clear line
            first = (str(exc).strip().splitlines() or [""])[0]  # never a multi-line plan dump
            click.echo(
                f"internal error: {type(exc).__name__}: {terminal_safe(_redacted(first))} "
                "(this is a bug in runner; please report it with the command you ran)",
                err=True,
            )
            sys.exit(INTERNAL_ERROR)


def _redacted(text: str) -> str:
    key = (api_key_from_env() or "").strip()
    return text.replace(key, "[REDACTED]") if key else text


@click.group(
    cls=Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="runner")
def main() -> None:
    """Evaluate Fetch Hive prompt deployments over a dataset, durably and in parallel.

    \b
    Quick start (no API key, no network):
      runner demo
    A real run:
      export FETCH_HIVE_API_KEY=fhk_...
      runner run tickets.parquet --deployment support-reply \\
          --variant baseline --variant candidate --out reports/nightly

    \b
    Exit codes: 0 success; 1 a gate failed; 2 bad usage or input (nothing sent);
    3 the API refused the run; 4 over the error budget; 5 a local file could not be
    written; 130 interrupted (resumable).
    """
