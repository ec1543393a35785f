"""``runner run``: its options, the config they build, and the run itself."""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from runner.budget import check_error_budget
from runner.cli.app import main
from runner.cli.export import segment_option
from runner.cli.judge import judge_options, judge_options_from_params, run_judges
from runner.cli.reports import (
    baseline_option,
    gate_options,
    gates_from_params,
    print_gate,
    score_option,
    write_and_print_reports,
)
from runner.config import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, RunConfig, parse_tag
from runner.errors import ConfigError, ErrorBudgetExceeded, GateFailed, StorageError
from runner.job import RunResult, run_job
from runner.progress import auto_display
from runner.rundir import RunDir

F = TypeVar("F", bound=Callable[..., Any])

_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


def default(name: str) -> Any:
    """RunConfig's default for a field: the one place defaults live (options show them)."""
    return _FIELDS[name].default


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    index, sep, count = text.partition("/")
    try:
        if not sep:
            raise ValueError
        return int(index), int(count)
    except ValueError:
        raise ConfigError(f"--shard {text!r} is not I/N (for example 0/4)") from None


def resume_command(run_args: list[str], out_dir: Path) -> str:
    """The exact command that resumes a run started with ``runner run RUN_ARGS``."""
    args = [a for a in run_args if a != "--resume"]
    if not any(a in ("--out", "-o") or a.startswith("--out=") for a in args):
        args += ["--out", str(out_dir)]
    return shlex.join(["runner", "run", *args, "--resume"])


def run_options(func: F) -> F:
    options = [
        click.argument("dataset", nargs=-1),
        click.option("--config", "config_file", type=click.Path(path_type=Path),
                     metavar="FILE",
                     help="An experiment file (TOML; 'runner init' writes a starter): every "
                     "option of run as a key. Options on the command line override it."),
        click.option("--deployment", "-d", help="Prompt deployment name."),
        click.option(
            "--variant", "-v", "variants", multiple=True,
            help="Deployment variant to invoke for every row; repeat for an A/B comparison. "
            "The first is the baseline.",
        ),
        click.option(
            "--out", "-o", type=click.Path(path_type=Path), default=None,
            help="Output directory (default reports/<deployment>-<time>). Must be empty "
            "unless --resume.",
        ),
        click.option("--concurrency", "-c", type=int, default=default("concurrency"),
                     show_default=True,
                     help="Requests in flight at most, retries included."),
        click.option("--repeat", type=int, default=default("repeat"),
                     show_default=True,
                     help="Calls per (row, variant), to measure consistency."),
        click.option("--experiment", help="Experiment name, sent as metadata 'experiment'."),
        click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE",
                     help="Metadata tag on every call; repeatable."),
        click.option("--id-column", help="Column with a stable row id (default: 'id' if "
                     "present, else the row position)."),
        click.option("--input-column", "input_columns", multiple=True,
                     help="Column sent as a prompt input; repeatable (default: all others)."),
        click.option("--metadata-column", "metadata_columns", multiple=True,
                     help="Column sent as per-row metadata; repeatable."),
        click.option("--expected-column", help="Column with the expected answer, for scoring."),
        click.option("--limit", type=int, help="Only the first N rows."),
        click.option("--sample", type=int, metavar="N",
                     help="Only a random sample of N rows, chosen by a hash of the row id and "
                     "--seed: the same rows on every machine, shard and resume."),
        click.option("--seed", type=int, default=default("seed"), show_default=True,
                     help="The seed of --sample."),
        click.option("--dry-run", is_flag=True,
                     help="Make every check a run makes, then print the rows, variants and "
                     "calls it would send (with --resume, the calls still to send). Sends "
                     "nothing and writes nothing."),
        click.option("--format", "input_format", default=default("input_format"),
                     show_default=True,
                     type=click.Choice(["auto", "csv", "parquet", "jsonl"])),
        click.option("--base-url", envvar=BASE_URL_ENV, default=DEFAULT_BASE_URL,
                     show_default=True, help=f"API base URL (also ${BASE_URL_ENV})."),
        click.option("--stream/--no-stream", default=default("stream"), show_default=True,
                     help="Stream answers (SSE); records time to first token."),
        click.option("--max-attempts", type=int, default=default("max_attempts"),
                     show_default=True,
                     help="Attempts per call for transient failures (502, 5xx, timeouts, broken "
                     "streams). A 429 concurrency cap is retried within the call's time budget "
                     "instead: it slows the run, it does not fail rows."),
        click.option("--timeout", type=float, default=default("timeout"), show_default=True,
                     help="Seconds per attempt, first byte to last."),
        click.option("--rps", type=float, help="Ceiling on requests started per second."),
        click.option("--adaptive/--no-adaptive", default=default("adaptive"),
                     show_default=True,
                     help="Halve concurrency on transient 429s and grow it back slowly."),
        click.option("--max-outage", type=float, default=default("max_outage"),
                     show_default=True, metavar="SECONDS",
                     help="When the API cannot be reached (refused, DNS, TLS, every attempt "
                     "timing out), pause and probe for up to this long before giving up "
                     "(exit 3). A 404 for the deployment or variant stops the run at once."),
        click.option("--max-error-rate", type=float, default=default("max_error_rate"),
                     show_default=True, metavar="SHARE",
                     help="Largest share (0-1) of error rows per variant. Above it the run "
                     "still writes every report, then exits 4. 1 accepts any."),
        click.option("--max-response-bytes", type=int, default=default("max_response_bytes"),
                     show_default=True, metavar="BYTES",
                     help="Largest answer kept; a bigger one becomes an error row "
                     "(response_too_large), never buffered whole."),
        click.option("--user", help="Optional 'user' field of every request."),
        click.option("--resume", is_flag=True,
                     help="Continue the run in --out; finished calls are not sent again."),
        click.option("--retry-errors", is_flag=True,
                     help="With --resume: send again the calls that ended in an error."),
        click.option("--grace-period", type=float, default=default("grace_period"),
                     show_default=True, help="Seconds requests in flight may finish after "
                     "Ctrl-C, SIGTERM or SIGHUP."),
        click.option("--shard", metavar="I/N", help="Process only shard I of N (0-based), "
                     "into OUT/shards/shard-I-of-N; combine them with 'runner merge OUT'."),
        click.option("--run-id", help="Run id of a new run (default: random; for shards, "
                     "derived from the dataset and config so every shard agrees)."),
        score_option,
        baseline_option,
        click.option("--compare-with", type=click.Path(file_okay=False, path_type=Path),
                     metavar="FOLDER",
                     help="When the run ends, compare it with the latest complete run in FOLDER "
                     "(a folder of past runs, e.g. last night's) and apply the gate options to "
                     "that comparison: regression.md in --out, exit 1 when a gate fails."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


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


def build_config(params: dict[str, Any]) -> RunConfig:
    """A ``RunConfig`` from the parsed ``run`` options."""
    if not params["dataset"]:
        raise ConfigError(
            "no dataset given: name it on the command line or as dataset in the --config file"
        )
    out = params["out"]
    if out is None:
        from datetime import datetime

        out = Path("reports") / f"{params['deployment']}-{datetime.now():%Y%m%d-%H%M%S}"
    return RunConfig(
        dataset=tuple(params["dataset"]),
        out_dir=out,
        deployment=params["deployment"],
        variants=tuple(params["variants"]),
        input_format=params["input_format"],
        id_column=params["id_column"],
        input_columns=tuple(params["input_columns"]),
        metadata_columns=tuple(params["metadata_columns"]),
        expected_column=params["expected_column"],
        limit=params["limit"],
        sample=params["sample"],
        seed=params["seed"],
        repeat=params["repeat"],
        experiment=params["experiment"],
        tags=dict(parse_tag(t) for t in params["tags"]),
        user=params["user"],
        base_url=params["base_url"],
        stream=params["stream"],
        concurrency=params["concurrency"],
        max_attempts=params["max_attempts"],
        timeout=params["timeout"],
        rps=params["rps"],
        adaptive=params["adaptive"],
        max_outage=params["max_outage"],
        max_error_rate=params["max_error_rate"],
        max_response_bytes=params["max_response_bytes"],
        grace_period=params["grace_period"],
        resume=params["resume"],
        retry_errors=params["retry_errors"],
        shard=_parse_shard(params["shard"]),
        run_id=params.get("run_id"),
    )


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
    )


def quit_now() -> None:
    """A second Ctrl-C: the manifest already says ``interrupted``; leave at once."""
    os._exit(130)


def executor_options(func: F) -> F:
    options = [
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
                     show_default=True, help="local: this process. ray: shards as Ray tasks "
                     "(needs runner[ray]), merged into --out at the end."),
        click.option("--ray-address", help="Ray cluster to run on (default: $RAY_ADDRESS, "
                     "else a cluster started with 'ray start', else a new local one)."),
        click.option("--ray-tasks", type=int, default=4, show_default=True,
                     help="Shards, one Ray task each, sharing --concurrency and --rps."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


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
    "later. The error budget still applies.",
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
    judge_options_from_params(params, keep_score=False, base_url=None)  # bad options: exit 2 now
    export_format(params["export_to"])
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
    _keep_experiment(result.out_dir, config, params)
    judges = judge_options_from_params(params, keep_score=bool(params["score"]), base_url=None)
    score = _default_score(config, params["score"])
    if judges is not None:
        run_judges(result.out_dir, judges)
        if judges.pointwise is not None and not params["score"]:
            score = None  # the judge's score is the run's score, already in results.parquet
    if params["export_to"] is not None:
        _export(result.out_dir, params["export_to"])
    if params["no_report"]:
        check_error_budget(RunDir(result.out_dir).results, config.max_error_rate)
        return
    try:
        write_and_print_reports(
            result.out_dir, score, params["baseline_variant"], params["segment_columns"]
        )
    except StorageError as exc:
        raise StorageError(
            f"{exc}. The run itself is complete; build its reports later with: "
            f"runner report {shlex.quote(str(result.out_dir))}"
        ) from exc
    _judge_the_run(result, config, params)


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


def export_format(to: Path | None) -> Any:
    """The format ``--export PATH`` names by its extension (checked before anything is sent)."""
    if to is None:
        return None
    suffix = to.suffix.lower().lstrip(".")
    fmt = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}.get(suffix)
    if fmt is None:
        raise ConfigError(f"--export {to}: name a .parquet, .csv or .jsonl file")
    return fmt


def _export(out: Path, to: Path) -> None:
    from runner.export import export_run

    written = export_run(out, to, format=export_format(to))
    click.echo(f"exported the dataset with its outputs to {written}", err=True)


def _judge_the_run(result: RunResult, config: RunConfig, params: dict[str, Any]) -> None:
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
            _compare_with_latest(result.out_dir, params["compare_with"], gates)
        elif gates.limits_set:
            report = gate_run(result.out_dir, gates, baseline=params["baseline_variant"])
            print_gate(report, RunDir(result.out_dir).gate_md)
    except GateFailed as exc:
        failed_gate = exc
    try:
        check_error_budget(RunDir(result.out_dir).results, config.max_error_rate)
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
