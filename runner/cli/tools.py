"""``runner simulate``, ``runner demo`` and ``runner merge``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from runner.cli.app import fail, main
from runner.cli.reports import baseline_option, score_option, write_and_print_reports
from runner.config import parse_tag
from runner.errors import ConfigError, RunnerError


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
@click.option(
    "--judge-deployment",
    "judges",
    multiple=True,
    metavar="NAME=STYLE",
    help="Answer every variant of deployment NAME as a judge; STYLE is a published format "
    "(json, mtbench, prometheus, score_line, arena_hard, winner_line), a kind (garbage, "
    "biased) or KIND:FORMAT (biased:arena_hard); repeatable.",
)
@click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path),
              help="JSON file with SimulatorConfig fields.")  # fmt: skip
def simulate(
    port: int,
    host: str,
    latency_ms: float,
    seed: int,
    faults: tuple[str, ...],
    judges: tuple[str, ...],
    config_file: Path | None,
) -> None:
    """Serve a faithful fake of the Fetch Hive invoke API on 127.0.0.1 (no key needed).

    Point a run at it with --base-url http://127.0.0.1:PORT/v1. With --judge-deployment
    grader=mtbench, 'runner run ... --judge grader:v1 --judge-scale 1-10' is graded by a
    judge writing MT-Bench's "Rating: [[n]]"; pairwise calls get "[[A]]", "[[B]]" or "[[C]]".
    """
    import json

    from runner.simulator import SimulatorConfig, serve_forever

    try:
        values: dict[str, Any] = {"latency_ms": latency_ms, "seed": seed}
        if config_file is not None:
            values.update(json.loads(config_file.read_text()))
        fault_map = dict(values.get("faults", {}))
        for item in faults:
            kind, rate = parse_tag(item, "--fault")
            fault_map[kind] = float(rate)
        values["faults"] = fault_map
        judge_map = dict(values.get("judges", {}))
        for item in judges:
            name, sep, style = item.partition("=")
            if not sep or not name.strip():
                raise ConfigError(f"--judge-deployment {item!r} is not NAME=STYLE")
            judge_map[name.strip()] = style.strip()
        values["judges"] = judge_map
        sim_config = SimulatorConfig.from_mapping(values)
    except (ValueError, RunnerError) as exc:
        fail(ConfigError(f"simulator: {exc}"))
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
    from runner.scale import merge_shards

    merged = merge_shards(out)
    click.echo(
        f"merged {merged.shards} shards of run {merged.run_id}: "
        f"{sum(merged.counts.values())} results in {out}",
        err=True,
    )
    expected = merged.manifest.config.get("expected_column")
    write_and_print_reports(out, score or ("exact" if expected else None), baseline_variant)


@main.command()
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("reports/demo"), show_default=True
)
@click.option("--rows", type=int, default=200, show_default=True)
def demo(out: Path, rows: int) -> None:
    """Run two variants over the sample dataset on the built-in simulator, with streaming
    and injected 502s, and print a per-variant summary. Needs no API key and no network."""
    from runner.cli.console import cli_hooks, finish
    from runner.experiment import run_demo

    finish(run_demo(out, rows=rows, hooks=cli_hooks(None)))
