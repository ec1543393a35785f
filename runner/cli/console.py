"""How the CLI drives an experiment: the hooks that print, the resume command, the exit."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import click

from runner.cli.app import fail
from runner.experiment import ExperimentResult, Hooks


def resume_command(run_args: list[str], out_dir: Path) -> str:
    """The exact command that resumes a run started with ``runner run RUN_ARGS``: the same
    arguments, ``--out`` the directory this run really writes to (its ``{date}`` filled in)."""
    args, skip = [], False
    for arg in run_args:
        if skip:
            skip = False
        elif arg in ("--out", "-o"):
            skip = True
        elif not (arg == "--resume" or arg.startswith("--out=")):
            args.append(arg)
    return shlex.join(["runner", "run", *args, "--out", str(out_dir), "--resume"])


def resume_command_of(args: list[str]) -> str:
    return shlex.join(["runner", *args])


def quitter(resume: str | None) -> Callable[[], None]:
    """A second Ctrl-C: the manifest already says ``interrupted``; say how to resume, then
    leave at once."""

    def quit_now() -> None:
        if resume:
            with contextlib.suppress(OSError, ValueError):
                print(f"interrupted; resume with: {resume}", file=sys.stderr, flush=True)
        os._exit(130)

    return quit_now


def say(line: str) -> None:
    click.echo(line, err=True)


def show_gate(markdown: Path) -> None:
    """Print a gate's markdown verdict as it is written (it ends in a newline)."""
    click.echo(markdown.read_text(encoding="utf-8"), nl=False)


def cli_hooks(resume: str | None) -> Hooks:
    """Hooks that print, handle signals, and replace this process with a fresh one."""
    from runner.cli.reports import print_reports
    from runner.run import auto_display

    return Hooks(
        display=auto_display(),
        say=say,
        show_reports=print_reports,
        show_gate=show_gate,
        handle_signals=True,
        quit_now=quitter(resume),
        resume_command=resume,
        replace_process=True,
    )


def finish(result: ExperimentResult) -> None:
    """Exit as the result says: its error's one line and exit code, or return (exit 0)."""
    if result.error is not None:
        fail(result.error)
    if result.exit_code:
        _exit(result.exit_code)


def _exit(code: int) -> NoReturn:
    raise SystemExit(code)
