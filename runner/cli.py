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
        click.option("--shard", metavar="I/N", help="Process only shard I of N (0-based)."),
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


def print_run_summary(result: RunResult) -> None:
    from runner.summary import print_summary

    print_summary(result.out_dir)


class _KeepArgs(click.Command):
    """Keeps the raw arguments, so an interrupted run can print its exact resume command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["run_args"] = list(args)
        return super().parse_args(ctx, args)


@main.command(cls=_KeepArgs)
@run_options
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
        result = execute_run(config, click.get_current_context().meta["run_args"])
    except RunInterrupted as exc:
        click.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    except RunnerError as exc:
        _fail(exc)
    print_run_summary(result)


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
    except RunnerError as exc:
        _fail(exc)
    print_run_summary(result)
