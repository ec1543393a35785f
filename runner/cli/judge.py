"""``runner judge``, and the judge options ``runner run`` shares: deployments as graders."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from runner.cli.app import main
from runner.config import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, parse_tag

F = TypeVar("F", bound=Callable[..., Any])

JUDGE_PARAMS = ("judge", "pairwise_judge", "judge_vars", "judge_scale")


def judge_options(func: F) -> F:
    """The judge options, shared by ``run`` and ``judge``."""
    options = [
        click.option("--judge", metavar="DEPLOYMENT:VARIANT",
                     help="Score every ok answer with this judge deployment (pointwise). Its "
                     "prompt gets input, output, expected and the --judge-var values; it answers "
                     "a JSON object with a numeric score (and a reason), or a last line SCORE: N."),
        click.option("--pairwise-judge", metavar="DEPLOYMENT:VARIANT",
                     help="Compare each candidate with the baseline row by row with this judge, "
                     "in both orders (input, output_a, output_b, expected); it answers a JSON "
                     "object with winner A, B or tie, or a last line WINNER: A|B|TIE."),
        click.option("--judge-var", "judge_vars", multiple=True, metavar="NAME=VALUE",
                     help="One more prompt input of every judge call (a rubric, say); repeatable."),
        click.option("--judge-scale", metavar="MIN-MAX",
                     help="The pointwise judge's scale (e.g. 1-10), mapped onto 0-1 "
                     "(default: scores are already in 0-1)."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def judge_options_from_params(
    params: Mapping[str, Any], *, keep_score: bool, base_url: str | None
) -> Any:
    """The :class:`~runner.judge.JudgeOptions` of parsed judge options, or None when no judge
    was asked for. ``keep_score``: a deterministic --score owns the ``score`` column."""
    if not params.get("judge") and not params.get("pairwise_judge"):
        return None
    from runner.judge import JudgeOptions
    from runner.judge_parse import JudgeSpec, parse_scale

    return JudgeOptions(
        pointwise=JudgeSpec.parse(params["judge"], "--judge") if params.get("judge") else None,
        pairwise=(
            JudgeSpec.parse(params["pairwise_judge"], "--pairwise-judge")
            if params.get("pairwise_judge")
            else None
        ),
        variables=dict(parse_tag(v) for v in params.get("judge_vars") or ()),
        scale=parse_scale(params.get("judge_scale")),
        keep_score=keep_score,
        baseline=params.get("baseline_variant"),
        base_url=base_url,
    )


def run_judges(out: Path, options: Any) -> None:
    """Judge ``out`` with ``options`` (from :func:`judge_options_from_params`), say what it
    cost, and hold judge calls to the run's error budget like any call."""
    from runner.budget import check_error_budget
    from runner.judge import judge_run
    from runner.progress import auto_display
    from runner.rundir import RunDir

    report = judge_run(
        out, options, api_key=os.environ.get(API_KEY_ENV) or None, display=auto_display()
    )
    for kind, sent in report.sent.items():
        unparsed = report.unparsed.get(kind, 0)
        note = f"; {unparsed} answers did not parse (null score, judge_error)" if unparsed else ""
        click.echo(f"{kind} judge: {sent} calls sent{note}", err=True)
    budget = RunDir(out).read_manifest().config.get("max_error_rate", 0.05)
    for kind in report.sent:
        for path in sorted(RunDir(out).judges(kind).glob("pass-*")):
            if path.is_dir() and RunDir(path).results.exists():
                check_error_budget(RunDir(path).results, float(budget))


@main.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@judge_options
@click.option("--base-url", envvar=BASE_URL_ENV, default=DEFAULT_BASE_URL, show_default=True,
              help=f"API base URL of the judge calls (also ${BASE_URL_ENV}).")  # fmt: skip
@click.option("--score", metavar="SCORER",
              help="A deterministic scorer that keeps the score column; the judge's score goes "
              "to judge_score.")  # fmt: skip
@click.option("--baseline-variant", help="The variant candidates are compared with.")
def judge(out: Path, base_url: str, score: str | None, **params: Any) -> None:
    """Judge the answers of an existing (complete) run OUT with judge deployments, then
    rebuild its reports. Judge calls are journaled like any call: running it again sends only
    what is missing, and nothing when every judgement is there.

    \b
    Example:
      runner judge reports/nightly --judge grader:v2 --judge-var rubric="polite, correct"
    """
    from runner.cli.reports import write_and_print_reports

    options = judge_options_from_params(params, keep_score=score is not None, base_url=base_url)
    if options is None:
        raise click.UsageError("give --judge DEPLOYMENT:VARIANT, --pairwise-judge, or both")
    run_judges(out, options)
    write_and_print_reports(out, score, params.get("baseline_variant"))
