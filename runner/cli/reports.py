"""``runner report`` and ``runner compare``: reports and gates from run directories (no API)."""

from __future__ import annotations

from pathlib import Path

import click

from runner.cli.app import main

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


@main.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@score_option
@baseline_option
def report(out: Path, score: str | None, baseline_variant: str | None) -> None:
    """Rebuild every report of a run directory OUT from its results.parquet, without calling
    the API: summary, comparison and side-by-side Parquet files and report.html.

    Pass --score to score again with another scorer.
    """
    write_and_print_reports(out, score, baseline_variant)


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
