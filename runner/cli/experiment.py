"""``runner init`` (a commented starter experiment file) and ``runner rerun`` (a past run's job
again, with exactly its configuration)."""

from __future__ import annotations

import shlex
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


def run_params_of(out: Path, new_out: Path, ctx: click.Context) -> tuple[dict[str, Any], Path]:
    """The ``run`` parameters that repeat run ``out`` into ``new_out``, and the experiment file
    they come from (``OUT/experiment.toml``; written from the manifest for a run that has none).

    The manifest's configuration is the authority for every run option; the experiment file
    adds what the manifest does not hold (scorer, judges, gates, ``compare_with``, segments).
    """
    from runner.cli.run import run, with_experiment_file
    from runner.experiment import experiment_toml
    from runner.store import RunDir, atomic_write_text

    manifest = RunDir(out).read_manifest()
    config = manifest.config
    if not config.get("dataset"):
        raise ConfigError(f"{out}/manifest.json holds no run configuration to repeat")
    kept = RunDir(out).experiment
    if not kept.exists():
        click.echo(
            f"rerun: {out} has no {kept.name} (an older run); its manifest's configuration "
            f"is written there (no scorer, judge or gate options)",
            err=True,
        )
        atomic_write_text(kept, experiment_toml(manifest_params(config), header="from manifest"))
    args = ["--config", str(kept), "--out", str(new_out)]
    with run.make_context("run", list(args), parent=ctx) as sub:
        params = with_experiment_file(sub, dict(sub.params))
    params.update(manifest_params(config))
    params.update(out=new_out, resume=False, retry_errors=False, dry_run=False, run_id=None)
    return params, kept


def manifest_params(config: dict[str, Any]) -> dict[str, Any]:
    """``run``'s parameters of a manifest's run configuration."""
    params = {name: config[name] for name in _FROM_MANIFEST if name in config}
    for name in ("variants", "input_columns", "metadata_columns"):
        if name in params:
            params[name] = tuple(params[name] or ())
    params["dataset"] = tuple(config["dataset"])
    params["tags"] = tuple(f"{k}={v}" for k, v in (config.get("tags") or {}).items())
    shard = config.get("shard")
    params["shard"] = f"{shard[0]}/{shard[1]}" if shard else None
    return params


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

    target = new_out or out.parent / f"{out.name}-rerun-{datetime.now():%Y%m%d-%H%M%S}"
    params, kept = run_params_of(out, target, click.get_current_context())
    click.echo(f"rerun: the job of {out} into {target}", err=True)
    run_with(params, ["--config", str(kept), "--out", str(target)])
