"""``runner run``'s options and the :class:`~runner.config.RunConfig` they build.

Every default comes from ``RunConfig`` itself (:func:`default`): the options show it, and a
config built in Python gets the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from runner.cli.reports import baseline_option, score_option
from runner.config import BASE_URL_ENV, DEFAULT_BASE_URL, RunConfig, parse_tag
from runner.errors import ConfigError

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
        segment_columns=tuple(params.get("segment_columns") or ()),
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


def export_format(to: Path | None) -> Any:
    """The format ``--export PATH`` names by its extension (checked before anything is sent)."""
    if to is None:
        return None
    from runner.export_writers import EXTENSIONS

    fmt = EXTENSIONS.get(to.suffix.lower().lstrip("."))
    if fmt is None:
        raise ConfigError(f"--export {to}: name a .parquet, .csv or .jsonl file")
    return fmt
