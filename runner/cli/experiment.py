"""``runner init`` (a commented starter experiment file) and ``runner rerun`` (a past run's job
again, with exactly its configuration)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from runner.cli.app import main
from runner.errors import ConfigError

#: The ``run`` parameters set from the run's manifest (the configuration the run really used).
_FROM_MANIFEST = (
    "deployment", "variants", "input_format", "id_column", "input_columns",
    "metadata_columns", "expected_column", "limit", "sample", "seed", "repeat", "experiment",
    "user", "base_url", "stream", "concurrency", "max_attempts", "timeout", "rps", "adaptive",
    "max_outage", "max_error_rate", "max_response_bytes", "grace_period",
)  # fmt: skip


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), default="eval.toml")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def init(file: Path, force: bool) -> None:
    """Write a commented starter experiment file FILE (default eval.toml) for
    'runner run --config FILE': every common option, explained."""
    from runner.experiment import STARTER
    from runner.store import atomic_write_text

    if file.exists() and not force:
        raise ConfigError(f"{file} exists; pass --force to replace it")
    atomic_write_text(file, STARTER)
    click.echo(f"wrote {file}; edit it, then: runner run --config {shlex.quote(str(file))}")


def run_params_of(out: Path, new_out: Path, ctx: click.Context) -> dict[str, Any]:
    """The ``run`` parameters that repeat run ``out`` into ``new_out``: ``OUT/experiment.toml``
    with the manifest's configuration over it, or the manifest's alone for a run that has no
    experiment file (no scorer, judge or gate options).

    The manifest's configuration is the authority for every run option; the experiment file
    adds what the manifest does not hold (scorer, judges, gates, ``compare_with``, segments).
    A dataset the manifest holds as given on a command line (a relative path) is taken with
    an absolute path: the experiment file's, else the files the run read (the manifest lists
    them), so the job runs again from any working directory. Nothing is written into ``out``
    (another process may hold it, still sending): it is only read.
    """
    from runner.cli.run import run, with_experiment_file
    from runner.store import RunDir

    rundir = RunDir(out)
    manifest = rundir.read_manifest()
    config = manifest.config
    if not config.get("dataset"):
        raise ConfigError(f"{out}/manifest.json holds no run configuration to repeat")
    kept = rundir.experiment
    args = ["--out", str(new_out)]
    if kept.exists():
        args = ["--config", str(kept), *args]
    else:
        click.echo(
            f"rerun: {out} has no {kept.name} (a run from before the runner kept one); the "
            "job is repeated from its manifest's configuration (no scorer, judge or gate "
            "options)",
            err=True,
        )
    with run.make_context("run", list(args), parent=ctx) as sub:
        params = with_experiment_file(sub, dict(sub.params))
    from_manifest = manifest_params(config, manifest.dataset.get("files"))
    if params.get("dataset") and not _all_absolute(config["dataset"]):
        del from_manifest["dataset"]  # the experiment file's: the same, with absolute paths
    params.update(from_manifest)
    params.update(out=new_out, resume=False, retry_errors=False, dry_run=False, run_id=None)
    return params


def manifest_params(config: dict[str, Any], files: Sequence[str] | None = None) -> dict[str, Any]:
    """``run``'s parameters of a manifest's run configuration. A dataset given with a relative
    path (relative to a working directory the manifest does not record) becomes ``files``,
    the absolute paths of the files the run read (``manifest.dataset["files"]``), when given."""
    params = {name: config[name] for name in _FROM_MANIFEST if name in config}
    for name in ("variants", "input_columns", "metadata_columns"):
        if name in params:
            params[name] = tuple(params[name] or ())
    dataset = tuple(config["dataset"])
    if not _all_absolute(dataset) and files and _all_absolute(files):
        dataset = tuple(files)
    params["dataset"] = dataset
    params["tags"] = tuple(f"{k}={v}" for k, v in (config.get("tags") or {}).items())
    shard = config.get("shard")
    params["shard"] = f"{shard[0]}/{shard[1]}" if shard else None
    return params


def _all_absolute(paths: Sequence[str]) -> bool:
    return all(os.path.isabs(os.path.expanduser(p)) for p in paths)


@main.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    "new_out",
    type=click.Path(path_type=Path),
    help="Where the new run goes (default: OUT-rerun-YYYYMMDD-HHMMSS next to OUT).",
)
def rerun(out: Path, new_out: Path | None) -> None:
    """Run again the job of run OUT, with exactly its configuration (dataset, deployment,
    variants, columns, limits, scorer, judges, gates), into a new directory.

    \b
    Example:
      runner rerun reports/nightly/2024-05-31-020000 --out reports/retry
    """
    from runner.cli.run import run_with
    from runner.experiment import fill_placeholders
    from runner.store import RunDir

    now = datetime.now()
    if new_out is None:
        target = out.parent / f"{out.name}-rerun-{now:%Y%m%d-%H%M%S}"
    else:
        target = Path(fill_placeholders(str(new_out), now, "--out"))
    params = run_params_of(out, target, click.get_current_context())
    click.echo(f"rerun: the job of {out} into {target}", err=True)
    # The new run writes its experiment file before its first call: that file resumes it.
    run_with(params, ["--config", str(RunDir(target).experiment), "--out", str(target)])
