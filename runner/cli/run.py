"""``runner run``: parse the options, build an :class:`~runner.experiment.Experiment`, run it
through the library (:func:`~runner.experiment.run_experiment`), print, exit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from runner.cli.app import main
from runner.cli.console import cli_hooks, finish, resume_command
from runner.cli.run_options import RUN_PARAMS, options_of
from runner.errors import ConfigError


class _KeepArgs(click.Command):
    """Keeps the raw arguments, so an interrupted run can print its exact resume command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["run_args"] = list(args)
        return super().parse_args(ctx, args)


@main.command(cls=_KeepArgs)
@options_of(*RUN_PARAMS)
def run(**params: Any) -> None:
    """Invoke every row of DATASET against each --variant and record every outcome; then
    judge, export, report and gate, as the options say. OUT is locked from start to end;
    an interrupted run prints the command that resumes it where it stopped.

    DATASET is one or more CSV, Parquet or JSONL files, directories or globs. The API key
    is read from $FETCH_HIVE_API_KEY only.

    \b
    Example:
      runner run runner/data/tickets.csv -d support-reply -v baseline -v candidate \\
          --concurrency 32 --experiment nightly --tag team=support --out reports/nightly
    """
    ctx = click.get_current_context()
    params = with_experiment_file(ctx, params)
    try:
        run_with(params, ctx.meta["run_args"])
    except ConfigError as error:
        file, taken = ctx.meta.get("experiment_file", (None, ()))
        if file is None:
            raise
        raise ConfigError(file.said_of_the_file(str(error), taken)) from None


def with_experiment_file(ctx: click.Context, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the experiment file's values (``--config``) for every option the user
    did not give on the command line (or through its environment variable)."""
    from click.core import ParameterSource

    from runner.experiment import load_experiment

    path = params.get("config_file")
    if path is None:
        return params
    merged = dict(params)
    typed = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    file = load_experiment(path)
    taken = {name for name in file.params if ctx.get_parameter_source(name) not in typed}
    merged.update({name: file.params[name] for name in taken})
    ctx.meta["experiment_file"] = (file, taken)  # a refused value is then said of the file
    return merged


def run_with(params: dict[str, Any], run_args: list[str]) -> None:
    """``runner run`` with its parameters resolved (file and command line merged)."""
    from runner.experiment import (
        api_key_from_env,
        experiment_from_params,
        plan_experiment,
        run_experiment,
    )

    experiment = experiment_from_params(params)
    if params.get("dry_run"):
        plan = plan_experiment(experiment, api_key_from_env())
        click.echo(plan.describe(experiment.out_dir))
        return
    hooks = cli_hooks(resume_command(run_args, experiment.out_dir))
    finish(run_experiment(experiment, hooks=hooks))


@main.command("_finish", hidden=True)
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("lock_fd", type=int)
def finish_command(out: Path, lock_fd: int) -> None:
    """The last stages of a large run, in a fresh process that took over OUT's lock through
    the descriptor LOCK_FD (see runner.experiment._send)."""
    from runner.experiment import continue_experiment

    finish(continue_experiment(out, lock_fd, cli_hooks(None)))
