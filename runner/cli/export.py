"""``runner export``: a run's dataset with each variant's outputs added (no API).

Also home of :data:`segment_option`, the ``--segment-column`` option shared by ``runner run``
and ``runner report``.
"""

from __future__ import annotations

from pathlib import Path

import click

from runner.cli.app import main
from runner.cli.run_options import options_of

segment_option = options_of("segment_columns")


@main.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--to",
    "to",
    type=click.Path(dir_okay=True, path_type=Path),
    help="Where the export goes (default OUT/export.<format>).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv", "jsonl"]),
    help="Output format (default: from --to's extension, else parquet).",
)
@click.option(
    "--variant",
    "variants",
    multiple=True,
    help="Export only these variants, in this order (repeatable; default: all of the run's).",
)
@click.option(
    "--max-file-rows",
    type=click.IntRange(min=1),
    metavar="N",
    help="Past N rows, write a directory of part files of at most N rows each.",
)
@click.option("--overwrite", is_flag=True, help="Replace the --to file or folder if it exists.")
@click.option(
    "--allow-incomplete",
    is_flag=True,
    help="Export a run that is not complete (its rows without an outcome get status missing).",
)
@click.option(
    "--export-prefix",
    "prefix",
    default="",
    metavar="PREFIX",
    help="Put PREFIX in front of every added column (when the dataset has one of their names).",
)
@click.option(
    "--csv-raw",
    is_flag=True,
    help="Write CSV cells that start with = + - @ as they are (by default they get a leading ' "
    "so a spreadsheet cannot run them as formulas).",
)
def export(
    out: Path,
    to: Path | None,
    fmt: str | None,
    variants: tuple[str, ...],
    max_file_rows: int | None,
    overwrite: bool,
    allow_incomplete: bool,
    prefix: str,
    csv_raw: bool,
) -> None:
    """Write the dataset of run OUT again, every original column and type in its own order,
    plus per variant output, status, error_type and error_message (status missing for a row
    with no outcome) and the scores the run has (score, judge_score, their reasons and
    errors). One variant: plain names; several: <column>_<variant>.

    The dataset is read again and refused if it changed since the run. Refused too: a --to
    that is a dataset file or lies inside OUT, an existing --to without --overwrite, and a
    run that is not complete without --allow-incomplete. In CSV, a text cell that starts with
    = + - @, a tab or a carriage return gets a leading ' unless --csv-raw.

    \b
    Example:
      runner export reports/backfill --to tickets_with_summary.parquet
    """
    from runner.errors import ConfigError
    from runner.export import FORMATS, ExportFormat, export_run, format_of
    from runner.store import RunDir

    try:
        chosen: ExportFormat = FORMATS[FORMATS.index(fmt)] if fmt else format_of(to)
    except ConfigError as exc:
        raise ConfigError(f"{exc}, or pass --format") from None
    with RunDir(out).locked():  # not while a run writes its results
        path = export_run(
            out,
            to,
            format=chosen,
            variants=variants or None,
            max_file_rows=max_file_rows,
            overwrite=overwrite,
            allow_incomplete=allow_incomplete,
            prefix=prefix,
            csv_raw=csv_raw,
            warn=lambda line: click.echo(f"warning: {line}", err=True),
        )
    click.echo(f"exported: {path}")
