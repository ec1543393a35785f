"""``runner run``: its options, the config they build, and the run itself."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Final, NoReturn

import click

from runner.budget import check_error_budget
from runner.cli.app import main
from runner.cli.export import segment_option
from runner.cli.judge import judge_options, judge_options_from_params, run_judges
from runner.cli.reports import (
    gate_options,
    gates_from_params,
    print_gate,
    write_and_print_reports,
)
from runner.cli.run_options import build_config, executor_options, export_format, run_options
from runner.config import API_KEY_ENV, RunConfig
from runner.errors import ErrorBudgetExceeded, GateFailed, StorageError
from runner.job import RunResult, run_job
from runner.progress import auto_display
from runner.rundir import RunDir


def resume_command(run_args: list[str], out_dir: Path) -> str:
    """The exact command that resumes a run started with ``runner run RUN_ARGS``."""
    args = [a for a in run_args if a != "--resume"]
    if not any(a in ("--out", "-o") or a.startswith("--out=") for a in args):
        args += ["--out", str(out_dir)]
    return shlex.join(["runner", "run", *args, "--resume"])


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
    for name, value in load_experiment(path).params.items():
        if ctx.get_parameter_source(name) not in typed:
            merged[name] = value
    return merged


def execute_run(config: RunConfig, run_args: list[str]) -> RunResult:
    """Run a job with a terminal display; errors propagate to the caller."""
    resume = resume_command(run_args, config.out_dir)
    return run_job(
        config,
        api_key=os.environ.get(API_KEY_ENV) or None,
        display=auto_display(),
        handle_signals=True,
        resume_command=resume,
        quit_now=quit_now,
        defer_from=finish_apart_from(),
    )


def quit_now() -> None:
    """A second Ctrl-C: the manifest already says ``interrupted``; leave at once."""
    os._exit(130)


def execute_on_ray(config: RunConfig, params: dict[str, Any], run_args: list[str]) -> RunResult:
    """Run a job as Ray tasks with a terminal display; errors propagate to the caller."""
    from runner.ray_executor import RayOptions, run_on_ray

    options = RayOptions(address=params["ray_address"], tasks=params["ray_tasks"])
    return run_on_ray(
        config,
        api_key=os.environ.get(API_KEY_ENV) or None,
        options=options,
        display=auto_display(),
        resume_command=resume_command(run_args, config.out_dir),
    )


def _default_score(config: RunConfig, score: str | None) -> str | None:
    return score or ("exact" if config.expected_column else None)


class _KeepArgs(click.Command):
    """Keeps the raw arguments, so an interrupted run can print its exact resume command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["run_args"] = list(args)
        return super().parse_args(ctx, args)


@main.command(cls=_KeepArgs)
@run_options
@executor_options
@judge_options
@gate_options
@segment_option
@click.option(
    "--no-report",
    is_flag=True,
    help="Write no reports at the end (a backfill); 'runner report OUT' writes them "
    "later. Gates and the error budget still apply.",
)
@click.option(
    "--export",
    "export_to",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="When the run ends, write the dataset plus its outputs to PATH, as "
    "'runner export OUT --to PATH' does (format from the extension: .parquet, .csv, "
    ".jsonl).",
)
def run(**params: Any) -> None:
    """Invoke every row of DATASET against each --variant and record every outcome.

    DATASET is one or more CSV, Parquet or JSONL files, directories or globs. The API key
    is read from $FETCH_HIVE_API_KEY only.

    \b
    Example:
      runner run runner/data/tickets.csv -d support-reply -v baseline -v candidate \\
          --concurrency 32 --experiment nightly --tag team=support --out reports/nightly
    """
    ctx = click.get_current_context()
    run_with(with_experiment_file(ctx, params), ctx.meta["run_args"])


def run_with(params: dict[str, Any], run_args: list[str]) -> None:
    """``runner run`` with its parameters resolved (file and command line merged)."""
    config = build_config(params)
    # Bad judge, export or gate options are bad input: exit 2 now, before anything is sent.
    judge_options_from_params(params, keep_score=False, base_url=None)
    export_format(params["export_to"])
    gates_from_params(params)
    if params["score"]:
        from runner.scoring import parse_scorer

        parse_scorer(params["score"])  # a bad scorer is found before the first request
    if params["dry_run"]:
        from runner.preflight import plan_run

        plan = plan_run(config, os.environ.get(API_KEY_ENV) or None)
        click.echo(plan.describe(str(config.run_dir)))
        return
    if params["executor"] == "ray":
        result = execute_on_ray(config, params, run_args)
    else:
        result = execute_run(config, run_args)
    if not result.compacted or sum(result.counts.values()) >= finish_apart_from():
        _finish_in_a_fresh_process(result.out_dir, params)
    finish(result.out_dir, config, params)


#: From this many calls on, the end of a run runs in fresh processes that replace this one
#: (``exec``): one compacts the journal, the next judges, exports, reports and gates, so no
#: phase's memory stacks on another's heap. At 1,000,000 rows × 2: sending 208 MB, compaction
#: 294, reports 311, the whole run 297 (BENCHMARKS.md, issue 11). Below it, the half second of
#: imports a fresh process costs weighs more than the memory.
#: ``RUNNER_FINISH_APART_FROM`` overrides it (tests).
FINISH_APART_FROM: Final = 200_000


def finish_apart_from() -> int:
    return int(os.environ.get("RUNNER_FINISH_APART_FROM") or FINISH_APART_FROM)


def _finish_in_a_fresh_process(out: Path, params: dict[str, Any]) -> NoReturn:
    """Replace this process with ``runner _finish OUT PARAMS`` (same stdout, stderr, exit code).
    Every file of the run is closed and synced and its lock released when this is called; the
    fresh process takes the lock again to compact the journal."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    encoded = json.dumps(params, default=str)
    os.execv(sys.executable, [sys.executable, "-m", "runner", "_finish", str(out), encoded])


@main.command("_finish", hidden=True)
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("encoded")
def finish_command(out: Path, encoded: str) -> None:
    """The end of a large run, in a fresh process (see FINISH_APART_FROM): compaction, then
    (in another fresh process: compaction's heap would stay under the reports) the rest."""
    from runner.finishing import finish_deferred

    try:
        params = json.loads(encoded)
    except ValueError as exc:
        raise click.BadParameter(
            "not the JSON that 'runner run' passes", param_hint="ENCODED"
        ) from exc
    if finish_deferred(out, say=lambda line: click.echo(line, err=True)):
        _finish_in_a_fresh_process(out, params)
    for name in ("export_to", "compare_with"):
        if params.get(name) is not None:
            params[name] = Path(params[name])
    params["segment_columns"] = tuple(params.get("segment_columns") or ())
    manifest = RunDir(out).read_manifest()
    config = RunConfig.from_mapping({**manifest.config, "resume": False, "retry_errors": False})
    finish(out, config, params)


def finish(out: Path, config: RunConfig, params: dict[str, Any]) -> None:
    """What a completed run does last: keep its options, judge, export, report, gate, and
    hold it to its error budget (the exit code)."""
    _keep_experiment(out, config, params)
    judges = judge_options_from_params(params, keep_score=bool(params["score"]), base_url=None)
    score = _default_score(config, params["score"])
    if judges is not None:
        run_judges(out, judges)
        if judges.pointwise is not None and not params["score"]:
            score = None  # the judge's score is the run's score, already in results.parquet
    if params["export_to"] is not None:
        _export(out, params["export_to"])
    if not params["no_report"]:
        try:
            write_and_print_reports(
                out, score, params["baseline_variant"], params["segment_columns"]
            )
        except StorageError as exc:
            raise StorageError(
                f"{exc}. The run itself is complete; build its reports later with: "
                f"runner report {shlex.quote(str(out))}"
            ) from exc
    _judge_the_run(out, config, params)  # --no-report skips reports, never gates or the budget


def _keep_experiment(out: Path, config: RunConfig, params: dict[str, Any]) -> None:
    """Write the run's resolved options into OUT as an experiment file: ``runner rerun OUT``
    (or ``runner run --config OUT/experiment.toml``) runs exactly this job again."""
    from runner.experiment import experiment_toml
    from runner.fsutil import atomic_write_text

    resolved = {**params, "out": config.out_dir, "dataset": config.dataset}
    header = (
        f"The resolved options of run {config.out_dir} (written by runner run).\n"
        "Run it again with: runner rerun " + shlex.quote(str(out))
    )
    atomic_write_text(RunDir(out).experiment, experiment_toml(resolved, header=header))


def _export(out: Path, to: Path) -> None:
    from runner.export import export_run

    written = export_run(out, to, format=export_format(to))
    click.echo(f"exported the dataset with its outputs to {written}", err=True)


def _judge_the_run(out: Path, config: RunConfig, params: dict[str, Any]) -> None:
    """The exit code of a completed run: over the error budget is 4 (the run itself cannot be
    trusted), else a failed gate is 1, else 0. Both are printed when both apply.

    With ``--compare-with FOLDER`` the gates apply to the run against the latest complete run
    in FOLDER (regression.md); otherwise to each variant against the baseline variant
    (gate.md)."""
    from runner.regression import gate_run
    from runner.rundir import RunDir

    failed_gate: GateFailed | None = None
    gates = gates_from_params(params)
    try:
        if params.get("compare_with") is not None:
            _compare_with_latest(out, params["compare_with"], gates)
        elif gates.limits_set:
            report = gate_run(out, gates, baseline=params["baseline_variant"])
            print_gate(report, RunDir(out).gate_md)
    except GateFailed as exc:
        failed_gate = exc
    try:
        check_error_budget(RunDir(out).results, config.max_error_rate)
    except ErrorBudgetExceeded as exc:
        if failed_gate is not None:
            click.echo(f"error: {failed_gate}", err=True)
        raise exc from None
    if failed_gate is not None:
        raise failed_gate


def _compare_with_latest(out: Path, folder: Path, gates: Any) -> None:
    """Compare run ``out`` with the latest other complete run in ``folder``; print the gate
    (GateFailed when one fails). The first run of a job has nothing to compare with."""
    from runner.regression import latest_complete_run, write_regression

    previous = latest_complete_run(folder, exclude=out)
    if previous is None:
        click.echo(
            f"compare: no earlier complete run in {folder}; nothing to compare with yet",
            err=True,
        )
        return
    click.echo(f"compare: baseline {previous.describe()}", err=True)
    report = write_regression(previous.out_dir, out, out, gates)
    print_gate(report, RunDir(out).regression_md)
