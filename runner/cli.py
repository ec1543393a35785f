"""The command line: parse, build a config, call the library, map errors to exit codes.

Exit codes: 0 complete; 1 a gate failed or shards do not merge; 2 bad usage or input (nothing
was sent); 3 the run was aborted early by the API (auth, credit, daily cap); 130 interrupted.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from runner.config import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, RunConfig, parse_tag
from runner.errors import ConfigError, RunInterrupted, RunnerError
from runner.job import RunResult, run_job
from runner.progress import auto_display

F = TypeVar("F", bound=Callable[..., Any])


def _fail(error: RunnerError) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(error.exit_code)


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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    """


score_option = click.option(
    "--score",
    metavar="SCORER",
    help="How outputs are scored against --expected-column: exact, normalized, contains, "
    "regex:PATTERN, json, number, or module:function (default exact when there is an "
    "expected column).",
)
baseline_option = click.option(
    "--baseline-variant", help="The variant others are compared with (default: the first)."
)


def run_options(func: F) -> F:
    options = [
        click.argument("dataset", nargs=-1, required=True),
        click.option("--deployment", "-d", required=True, help="Prompt deployment name."),
        click.option(
            "--variant", "-v", "variants", multiple=True, required=True,
            help="Deployment variant to invoke for every row; repeat for an A/B comparison. "
            "The first is the baseline.",
        ),
        click.option(
            "--out", "-o", type=click.Path(path_type=Path), default=None,
            help="Output directory (default reports/<deployment>-<time>). Must be empty "
            "unless --resume.",
        ),
        click.option("--concurrency", "-c", type=int, default=16, show_default=True,
                     help="Requests in flight at most, retries included."),
        click.option("--repeat", type=int, default=1, show_default=True,
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
        click.option("--format", "input_format", default="auto", show_default=True,
                     type=click.Choice(["auto", "csv", "parquet", "jsonl"])),
        click.option("--base-url", envvar=BASE_URL_ENV, default=DEFAULT_BASE_URL,
                     show_default=True, help=f"API base URL (also ${BASE_URL_ENV})."),
        click.option("--stream/--no-stream", default=False, show_default=True,
                     help="Stream answers (SSE); records time to first token."),
        click.option("--max-attempts", type=int, default=4, show_default=True,
                     help="Attempts per call for transient failures (502, 429, 5xx, "
                     "timeouts, broken streams)."),
        click.option("--timeout", type=float, default=120.0, show_default=True,
                     help="Seconds per attempt."),
        click.option("--rps", type=float, help="Ceiling on requests started per second."),
        click.option("--adaptive", is_flag=True,
                     help="Halve concurrency on transient 429s and grow it back slowly."),
        click.option("--user", help="Optional 'user' field of every request."),
        click.option("--resume", is_flag=True,
                     help="Continue the run in --out; finished calls are not sent again."),
        click.option("--retry-errors", is_flag=True,
                     help="With --resume: send again the calls that ended in an error."),
        click.option("--grace-period", type=float, default=10.0, show_default=True,
                     help="Seconds requests in flight may finish after Ctrl-C."),
        click.option("--shard", metavar="I/N", help="Process only shard I of N (0-based), "
                     "into OUT/shards/shard-I-of-N; combine them with 'runner merge OUT'."),
        click.option("--run-id", help="Run id of a new run (default: random; for shards, "
                     "derived from the dataset and config so every shard agrees)."),
        score_option,
        baseline_option,
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def build_config(params: dict[str, Any]) -> RunConfig:
    """A ``RunConfig`` from the parsed ``run`` options."""
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
        resume_command=resume,
    )


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


def write_and_print_reports(out_dir: Path, score: str | None, baseline: str | None) -> None:
    """Build every report of ``out_dir`` and print the compact table and the verdicts."""
    import polars as pl
    from rich.console import Console

    from runner.report import build_reports, summary_table, verdict_lines

    paths = build_reports(out_dir, score=score, baseline=baseline)
    console = Console(highlight=False)
    console.print(summary_table(pl.read_parquet(paths.summary), title=f"results in {out_dir}"))
    for line in verdict_lines(pl.read_parquet(paths.comparison)):
        console.print(line)
    console.print(f"report: {paths.html}")


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
def run(**params: Any) -> None:
    """Invoke every row of DATASET against each --variant and record every outcome.

    DATASET is one or more CSV, Parquet or JSONL files, directories or globs. The API key
    is read from $FETCH_HIVE_API_KEY only.

    \b
    Example:
      runner run datasets/tickets.csv -d support-reply -v baseline -v candidate \\
          --concurrency 32 --experiment nightly --tag team=support --out reports/nightly
    """
    try:
        config = build_config(params)
        if params["score"]:
            from runner.scoring import parse_scorer

            parse_scorer(params["score"])  # a bad scorer is found before the first request
        run_args = click.get_current_context().meta["run_args"]
        if params["executor"] == "ray":
            result = execute_on_ray(config, params, run_args)
        else:
            result = execute_run(config, run_args)
        write_and_print_reports(
            result.out_dir, _default_score(config, params["score"]), params["baseline_variant"]
        )
    except RunInterrupted as exc:
        click.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    except RunnerError as exc:
        _fail(exc)


@main.command()
@click.option("--port", type=int, default=8787, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback only.")
@click.option("--latency-ms", type=float, default=50.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND=RATE",
    help="Inject a fault on a share of first attempts, e.g. http_502=0.1; repeatable.",
)
@click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path),
              help="JSON file with SimulatorConfig fields.")  # fmt: skip
def simulate(
    port: int,
    host: str,
    latency_ms: float,
    seed: int,
    faults: tuple[str, ...],
    config_file: Path | None,
) -> None:
    """Serve a faithful fake of the Fetch Hive invoke API on 127.0.0.1 (no key needed).

    Point a run at it with --base-url http://127.0.0.1:PORT/v1.
    """
    import json

    from runner.simulator import SimulatorConfig, serve_forever

    try:
        values: dict[str, Any] = {"latency_ms": latency_ms, "seed": seed}
        if config_file is not None:
            values.update(json.loads(config_file.read_text()))
        fault_map = dict(values.get("faults", {}))
        for item in faults:
            kind, rate = parse_tag(item)
            fault_map[kind] = float(rate)
        values["faults"] = fault_map
        sim_config = SimulatorConfig.from_mapping(values)
    except (ValueError, RunnerError) as exc:
        _fail(ConfigError(f"simulator: {exc}"))
    serve_forever(
        sim_config,
        host=host,
        port=port,
        ready=lambda url: click.echo(f"simulator listening on {url}", err=True),
    )


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@score_option
@baseline_option
def merge(out: Path, score: str | None, baseline_variant: str | None) -> None:
    """Check the shards in OUT/shards and merge them into OUT: results, manifest, reports.

    Every shard of the split must be complete and every (row, variant, repeat) must be in
    exactly one shard; otherwise it says which shard and how many results are missing or
    duplicated, writes nothing and exits 1. Scoring is as for 'run': give the shards' --score.
    """
    from runner.merge import merge_shards

    try:
        merged = merge_shards(out)
        click.echo(
            f"merged {merged.shards} shards of run {merged.run_id}: "
            f"{sum(merged.counts.values())} results in {out}",
            err=True,
        )
        expected = merged.manifest["config"].get("expected_column")
        write_and_print_reports(out, score or ("exact" if expected else None), baseline_variant)
    except RunnerError as exc:
        _fail(exc)


@main.command()
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("reports/demo"), show_default=True
)
@click.option("--rows", type=int, default=200, show_default=True)
def demo(out: Path, rows: int) -> None:
    """Run two variants over the sample dataset on the built-in simulator, with streaming
    and injected 502s, and print a per-variant summary. Needs no API key and no network."""
    from runner.demo import run_demo

    try:
        result = run_demo(out, rows=rows)
        write_and_print_reports(result.out_dir, "contains", None)
    except RunnerError as exc:
        _fail(exc)


@main.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@score_option
@baseline_option
def report(out: Path, score: str | None, baseline_variant: str | None) -> None:
    """Rebuild every report of a run directory OUT from its results.parquet, without calling
    the API: summary, comparison and side-by-side Parquet files and report.html.

    Pass --score to score again with another scorer.
    """
    try:
        write_and_print_reports(out, score, baseline_variant)
    except RunnerError as exc:
        _fail(exc)


@main.command()
@click.argument("baseline_out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("candidate_out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where regression.parquet and regression.md go (default CANDIDATE_OUT).",
)
@click.option(
    "--max-error-rate-increase",
    type=float,
    metavar="POINTS",
    help="Fail if a variant's error rate rises by more than POINTS percentage points.",
)
@click.option(
    "--max-p95-latency-increase",
    type=float,
    metavar="PERCENT",
    help="Fail if a variant's p95 latency rises by more than PERCENT %.",
)
@click.option(
    "--max-score-drop",
    type=float,
    metavar="POINTS",
    help="Fail if a variant's mean score falls by more than POINTS points (0-100).",
)
@click.option(
    "--min-agreement",
    type=float,
    metavar="SHARE",
    help="Fail if fewer than SHARE (0-1) of outputs are identical to the baseline run.",
)
@click.option(
    "--require-significance",
    type=float,
    metavar="ALPHA",
    help="Score and error gates fail only when the change is significant at ALPHA.",
)
@score_option
def compare(
    baseline_out: Path,
    candidate_out: Path,
    out: Path | None,
    max_error_rate_increase: float | None,
    max_p95_latency_increase: float | None,
    max_score_drop: float | None,
    min_agreement: float | None,
    require_significance: float | None,
    score: str | None,
) -> None:
    """Compare run CANDIDATE_OUT against run BASELINE_OUT, row by row and variant by variant,
    and gate on the result: exit 1 when a gate fails, 0 otherwise.

    \b
    Nightly CI example:
      runner compare reports/last-night reports/tonight \\
          --max-score-drop 2 --max-error-rate-increase 1 --require-significance 0.05
      cat reports/tonight/regression.md >> "$GITHUB_STEP_SUMMARY"
    """
    from runner.compare import Gates
    from runner.report import write_regression

    try:
        gates = Gates(
            max_error_rate_increase=max_error_rate_increase,
            max_p95_latency_increase_pct=max_p95_latency_increase,
            max_score_drop_points=max_score_drop,
            min_agreement=min_agreement,
            require_significance=require_significance,
        )
        target = out or candidate_out
        target.mkdir(parents=True, exist_ok=True)
        result = write_regression(baseline_out, candidate_out, target, gates, score=score)
        click.echo((target / "regression.md").read_text(encoding="utf-8"))
        result.raise_if_failed()
    except RunnerError as exc:
        _fail(exc)
