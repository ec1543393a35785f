"""``runner run``'s options; :func:`runner.experiment.experiment_from_params` builds the
:class:`~runner.experiment.Experiment` they describe.

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
from runner.config import BASE_URL_ENV, DEFAULT_BASE_URL, RunConfig
from runner.experiment import FRESH_PROCESS_FROM

F = TypeVar("F", bound=Callable[..., Any])

_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


def default(name: str) -> Any:
    """RunConfig's default for a field: the one place defaults live (options show them)."""
    return _FIELDS[name].default


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
        click.option("--compare-with", type=click.Path(path_type=Path),
                     metavar="FOLDER|RUN",
                     help="When the run ends, compare it with a baseline and apply the gate "
                     "options to that comparison: regression.md in --out, exit 1 when a gate "
                     "fails. FOLDER: a folder of past runs (the latest complete one that "
                     "finished before this run started, of the same deployment, that did not "
                     "fail its own gates); RUN: one run directory, pinned. A path that does "
                     "not exist is exit 2; a folder with no eligible run is exit 1 unless "
                     "--allow-no-baseline."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


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


def stage_options(func: F) -> F:
    """The options of the stages after sending that no other command shares."""
    options = [
        click.option("--no-report", is_flag=True,
                     help="Write no reports at the end (a backfill); 'runner report OUT' writes "
                     "them later. Gates and the error budget still apply."),
        click.option("--export", "export_to", type=click.Path(path_type=Path), metavar="PATH",
                     help="When the run ends, write the dataset plus its outputs and scores to "
                     "PATH, as 'runner export OUT --to PATH' does (format from the extension: "
                     ".parquet, .csv, .jsonl). Checked before the first call: never a file of "
                     "the dataset, never inside --out, never an existing path without "
                     "--overwrite."),
        click.option("--overwrite", is_flag=True,
                     help="With --export: replace PATH if it exists."),
        click.option("--export-prefix", metavar="PREFIX",
                     help="With --export: name the added columns PREFIX<column> (when the "
                     "dataset already has a column named like one of them)."),
        click.option("--csv-raw", is_flag=True,
                     help="With --export to .csv: write cells that start with = + - @ as they "
                     "are (by default they get a leading ' so a spreadsheet cannot run them)."),
        click.option("--fresh-process-from", type=int, default=FRESH_PROCESS_FROM,
                     show_default=True, metavar="CALLS",
                     help="Runs of at least CALLS calls compact, judge, export and report in a "
                     "fresh process that takes over the lock (the sending heap is not kept "
                     "under the reports: a 1,000,000 x 2 run stays under 300 MB). 0: never."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func
