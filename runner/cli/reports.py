"""``runner report``, ``runner compare`` and ``runner gate``: reports and gates from run
directories (no API).

The gate options are shared: put :func:`gate_options` on a command, build :class:`Gates`
from its parameters with :func:`gates_from_params`, and call
:func:`runner.gates._regression.gate_run` (one run) or
:func:`runner.gates._regression.write_regression`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from runner.cli.app import main
from runner.cli.export import segment_option
from runner.cli.run_options import options_of
from runner.errors import ConfigError, GateFailed

if TYPE_CHECKING:
    from runner.gates import Gates, RegressionReport
    from runner.report import ReportPaths

F = TypeVar("F", bound=Callable[..., Any])

score_option = options_of("score")
baseline_option = options_of("baseline_variant")
allow_incomplete_option = click.option(
    "--allow-incomplete",
    is_flag=True,
    help="Gate on a run whose status is not complete (interrupted, aborted, running).",
)

#: The parameters :func:`gate_options` adds, by name.
GATE_PARAMS = (
    "max_error_rate_increase",
    "max_p95_latency_increase",
    "max_score_drop",
    "min_agreement",
    "require_significance",
    "min_coverage",
    "min_win_rate",
    "min_judge_consistency",
)


#: The gate limits, as options of one command (``compare``, ``gate``, ``run``).
gate_options = options_of(*GATE_PARAMS)


#: The parameters :func:`baseline_options` adds, by name.
BASELINE_PARAMS = ("allow_no_baseline", "allow_different_deployment")


#: What a comparison with a baseline may accept (``compare``, ``run --compare-with``).
baseline_options = options_of(*BASELINE_PARAMS)


def gates_from_params(params: Mapping[str, Any]) -> Gates:
    """The :class:`Gates` of a command's parsed :func:`gate_options` parameters."""
    from runner.gates import Gates

    return Gates(
        max_error_rate_increase=params.get("max_error_rate_increase"),
        max_p95_latency_increase_pct=params.get("max_p95_latency_increase"),
        max_score_drop_points=params.get("max_score_drop"),
        min_agreement=params.get("min_agreement"),
        require_significance=params.get("require_significance"),
        min_coverage=params.get("min_coverage"),
        min_win_rate=params.get("min_win_rate"),
        min_judge_consistency=params.get("min_judge_consistency"),
    )


def parse_variant_map(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("v1=v2", …)`` as ``{"v1": "v2"}``; a malformed or repeated pair is a ConfigError."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        base, sep, cand = pair.partition("=")
        base, cand = base.strip(), cand.strip()
        if not sep or not base or not cand:
            raise ConfigError(f"--variant-map {pair!r}: expected BASE=CAND, e.g. v1=v2")
        if base in mapping:
            raise ConfigError(f"--variant-map names baseline variant {base!r} twice")
        mapping[base] = cand
    return mapping


def print_gate(report: RegressionReport, markdown_path: Path) -> None:
    """Print the written markdown as it is (it ends in a newline), then fail on a failed gate."""
    click.echo(markdown_path.read_text(encoding="utf-8"), nl=False)
    report.raise_if_failed()


def write_and_print_reports(
    out_dir: Path, score: str | None, baseline: str | None, segments: tuple[str, ...] = ()
) -> None:
    """Build every report of ``out_dir`` and print the compact table, notes and verdicts."""
    from runner.report import build_reports

    paths = build_reports(out_dir, score=score, baseline=baseline, segments=segments)
    print_reports(paths)


def print_reports(paths: ReportPaths) -> None:
    """Print the compact table, notes and verdicts of the reports at ``paths``."""
    import polars as pl
    from rich.console import Console

    from runner.report import pairwise_sentence, summary_table
    from runner.score import stored_scorer
    from runner.stats import score_label, verdict_lines

    out_dir = paths.results.parent
    console = Console(highlight=False)
    console.print(summary_table(pl.read_parquet(paths.summary), title=f"results in {out_dir}"))
    for note in paths.notes:
        console.print(f"note: {note}", markup=False)
    if paths.comparison is None:  # one variant: nothing to compare, no verdict to print
        console.print(f"report: {paths.html}", markup=False)
        return
    comparison = pl.read_parquet(paths.comparison)
    label = score_label(stored_scorer(out_dir))
    lines = verdict_lines(comparison, score_label=label)
    for line, row in zip(lines, comparison.iter_rows(named=True), strict=True):
        console.print(line, markup=False, soft_wrap=True)
        judged = pairwise_sentence(row)
        if judged:
            console.print(f"{row['variant']}: {judged}", markup=False, soft_wrap=True)
    console.print(f"report: {paths.html}", markup=False)


@main.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@score_option
@baseline_option
@segment_option
def report(
    out: Path, score: str | None, baseline_variant: str | None, segment_columns: tuple[str, ...]
) -> None:
    """Rebuild every report of a run directory OUT from its results.parquet, without calling
    the API: summary, comparison and side-by-side Parquet files and report.html.

    Pass --score to score again with another scorer.
    """
    from runner.store import RunDir, remove_stale_temps

    rundir = RunDir(out)
    with rundir.locked():  # not while a run (or another report) writes the same files
        remove_stale_temps(rundir.root)
        write_and_print_reports(out, score, baseline_variant, segment_columns)


@main.command()
@click.argument("baseline_out", type=click.Path(path_type=Path))
@click.argument("candidate_out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where regression.parquet and regression.md go (default CANDIDATE_OUT).",
)
@click.option(
    "--variant-map",
    "variant_map",
    multiple=True,
    metavar="BASE=CAND",
    help="Pair baseline variant BASE with candidate variant CAND (repeatable); variants "
    "with equal names pair by themselves.",
)
@gate_options
@baseline_options
@allow_incomplete_option
@score_option
def compare(
    baseline_out: Path,
    candidate_out: Path,
    out: Path | None,
    variant_map: tuple[str, ...],
    allow_incomplete: bool,
    score: str | None,
    **params: Any,
) -> None:
    """Compare run CANDIDATE_OUT against run BASELINE_OUT, row by row and variant by variant,
    and gate on the result: exit 1 when a gate fails, 0 otherwise.

    BASELINE_OUT may also be a folder of runs: the most recent complete run in it (by the
    time it finished) other than CANDIDATE_OUT is the baseline, and is named.

    With any gate set, a variant without a counterpart fails (pair renamed variants with
    --variant-map), and so does a candidate missing any of the baseline's calls (see
    --min-coverage). A run that is not complete is refused unless --allow-incomplete.

    \b
    Nightly CI example:
      runner compare reports/nightly reports/nightly/tonight \\
          --max-score-drop 2 --max-error-rate-increase 1 --require-significance 0.05
      cat reports/nightly/tonight/regression.md >> "$GITHUB_STEP_SUMMARY"
    """
    from runner.gates import (
        compare_with_baseline,
        record_gate_verdict,
        resolve_baseline,
        write_regression,
    )
    from runner.report import refresh_baseline_section
    from runner.store import RunDir

    gates = gates_from_params(params)
    mapping = parse_variant_map(variant_map)
    if out is None or out.resolve() == candidate_out.resolve():
        rundir = RunDir(candidate_out)
        with rundir.locked():  # the verdict goes into the candidate's manifest
            verdict = compare_with_baseline(
                candidate_out,
                baseline_out,
                gates,
                allow_no_baseline=params["allow_no_baseline"],
                allow_different_deployment=params["allow_different_deployment"],
                variant_map=mapping,
                score=score,
                allow_incomplete=allow_incomplete,
                say=say,
            )
            record_gate_verdict(rundir, verdict.verdict, verdict.baseline)
            refresh_baseline_section(candidate_out)
        click.echo(verdict.markdown.read_text(encoding="utf-8"), nl=False)
        verdict.raise_if_failed()
        return
    # Written elsewhere: a look at two runs, which leaves the candidate's manifest alone.
    pick = resolve_baseline(
        baseline_out,
        candidate_out,
        allow_different_deployment=params["allow_different_deployment"],
    )
    for line in pick.lines():
        say(line)
    if pick.chosen is None:
        raise GateFailed(
            f"no baseline: {baseline_out} holds no eligible run other than {candidate_out}; "
            "nothing was compared"
        )
    out.mkdir(parents=True, exist_ok=True)
    result = write_regression(
        pick.chosen.out_dir,
        candidate_out,
        out,
        gates,
        score=score,
        variant_map=mapping,
        allow_incomplete=allow_incomplete,
        picked=pick.lines(),
    )
    print_gate(result, RunDir(out).regression_md)


def say(line: str) -> None:
    """One line on stderr, where the pick and other remarks of a comparison go."""
    click.echo(line, err=True)


@main.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@gate_options
@allow_incomplete_option
@score_option
@baseline_option
def gate(
    out: Path,
    allow_incomplete: bool,
    score: str | None,
    baseline_variant: str | None,
    **params: Any,
) -> None:
    """Gate each variant of run OUT against its baseline variant, row by row: write gate.md
    and gate.parquet into OUT, print the markdown, exit 1 when a gate fails, 0 otherwise.

    \b
    Example (an A/B inside one run):
      runner gate reports/ab --baseline-variant baseline --max-score-drop 2
    """
    from runner.gates import gate_run
    from runner.store import RunDir

    result = gate_run(
        out,
        gates_from_params(params),
        score=score,
        baseline=baseline_variant,
        allow_incomplete=allow_incomplete,
    )
    print_gate(result, RunDir(out).gate_md)
