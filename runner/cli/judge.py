"""``runner judge``, and the judge options ``runner run`` shares: deployments as graders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from runner.cli.app import main
from runner.cli.run_options import options_of
from runner.config import BASE_URL_ENV
from runner.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

JUDGE_PARAMS = (
    "judge", "pairwise_judge", "judge_vars", "judge_scale", "judge_pattern", "pairwise_pattern",
    "max_judge_error_rate",
)  # fmt: skip


#: The judge options, shared by ``run`` and ``judge`` (declared in the experiment's table).
judge_options = options_of(*JUDGE_PARAMS)


@main.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@judge_options
@click.option(
    "--base-url",
    envvar=BASE_URL_ENV,
    help=f"API base URL of the judge calls (default: the run's; also ${BASE_URL_ENV}).",
)
@click.option("--score", metavar="SCORER",
              help="A deterministic scorer that keeps the score column; the judge's score goes "
              "to judge_score.")  # fmt: skip
@click.option("--baseline-variant", help="The variant candidates are compared with.")
@click.option(
    "--retry-errors",
    is_flag=True,
    help="Send again the judge calls that ended in an error (HTTP errors, timeouts).",
)
def judge(out: Path, **params: Any) -> None:
    """Judge the answers of run OUT (every call sent) with judge deployments, then rebuild
    its reports and apply its gates, as the end of 'runner run' does. Judge calls are
    journaled like any call: running it again sends only what is missing, and nothing when
    every judgement is there.

    \b
    Example:
      runner judge reports/nightly --judge grader:v2 --judge-var rubric="polite, correct"
    """
    from runner.cli.console import cli_hooks, finish, resume_command_of
    from runner.experiment import experiment_from_params, run_experiment
    from runner.store import RunDir

    if not params.get("judge") and not params.get("pairwise_judge"):
        raise click.UsageError("give --judge DEPLOYMENT:VARIANT, --pairwise-judge, or both")
    manifest = RunDir(out).read_manifest()
    if not manifest.sending_done:
        with RunDir(out).locked():  # a runner still sending holds it: say so, not "resume"
            pass
        raise ConfigError(
            f"{out} is {manifest.status.value}: not every call was sent; resume it first "
            f"({manifest.resume_command or 'runner run … --resume'})"
        )
    run_params = run_params_of_run(out)
    given = {k: v for k, v in params.items() if v not in (None, (), False)}
    run_params.update(given)
    if params["score"] is None and params.get("judge"):
        run_params["score"] = None  # the judge's score is the score
    run_params.update(resume=True, retry_errors=params["retry_errors"], out=out)
    experiment = experiment_from_params(run_params)
    resume = resume_command_of(["judge", str(out), *_args_of(given)])
    finish(run_experiment(experiment, hooks=cli_hooks(resume)))


def run_params_of_run(out: Path) -> dict[str, Any]:
    """``run``'s parameters of run ``out``: its experiment file, else its manifest's config."""
    from runner.cli.experiment import manifest_params
    from runner.experiment import load_experiment
    from runner.store import RunDir

    rundir = RunDir(out)
    if rundir.experiment.exists():
        return dict(load_experiment(rundir.experiment).params)
    manifest = rundir.read_manifest()
    return manifest_params(manifest.config, manifest.dataset.get("files"))


def _args_of(params: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for name, value in params.items():
        flag = "--" + name.replace("_", "-").removesuffix("s" if name == "judge_vars" else "")
        if value is True:
            args.append(flag)
        elif isinstance(value, tuple):
            for item in value:
                args += [flag, str(item)]
        else:
            args += [flag, str(value)]
    return args
