"""``runner baseline accept RUN`` and ``runner baseline show FOLDER``: the baseline a nightly
folder of runs gives, and a run accepted as one (see :mod:`runner.gates._baseline`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from runner.cli.app import main


@main.group()
def baseline() -> None:
    """Which run of a folder of nightly runs is the baseline, and why."""


@baseline.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
def accept(run: Path) -> None:
    """Accept run RUN as a baseline although its own gate failed (e.g. after a deliberate
    change): the next night in its folder may be compared with it.

    \b
    Example:
      runner baseline accept reports/nightly/2025-06-03
    """
    from runner.gates import accept_baseline

    manifest = accept_baseline(run)
    verdict = (manifest.gate or {}).get("verdict")
    click.echo(f"accepted {run} as a baseline (its own gate verdict: {verdict})")


@baseline.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--candidate",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The run to pick a baseline for (default: a run starting now, of any deployment).",
)
@click.option(
    "--deployment", help="Only runs of this deployment (default: the candidate's, if given)."
)
def show(folder: Path, candidate: Path | None, deployment: str | None) -> None:
    """Print which run of FOLDER a nightly comparison would pick as its baseline, and why
    each newer run was skipped. Exit 1 when there is none. FOLDER may also be one run
    directory: --compare-with then pins it as the baseline, as it is.

    \b
    Example:
      runner baseline show reports/nightly
    """
    from runner.errors import GateFailed
    from runner.gates import Candidate, pick_baseline, pinned_baseline
    from runner.store import RunDir

    tonight = Candidate(None, datetime.now(UTC), None)
    if candidate is not None:
        tonight = Candidate.of_run(candidate)
    if deployment is not None:
        tonight = Candidate(tonight.out_dir, tonight.started_at, deployment)
    if RunDir(folder).has_manifest():
        pick = pinned_baseline(folder, tonight)
    else:
        pick = pick_baseline(folder, tonight)
    for line in pick.lines():
        click.echo(line)
    if pick.chosen is None:
        raise GateFailed(f"{folder} holds no eligible baseline")
