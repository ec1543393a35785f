"""``runner export``: a run's dataset with each variant's outputs added (no API).

Also home of :data:`segment_option`, the ``--segment-column`` option shared by ``runner run``
and ``runner report``.
"""

from __future__ import annotations

from pathlib import Path

import click

from runner.cli.app import main

segment_option = click.option(
    "--segment-column",
    "segment_columns",
    multiple=True,
    metavar="COL",
    help="Break the summary and comparison down by this metadata or input column "
    "(repeatable): summary_by_segment.parquet, comparison_by_segment.parquet and report.html.",
)


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
def export(
    out: Path,
    to: Path | None,
    fmt: str | None,
    variants: tuple[str, ...],
    max_file_rows: int | None,
) -> None:
    """Write the dataset of run OUT again, every original column and type in its own order,
    plus per variant output, status, error_type and error_message (status missing for a row
    with no outcome). One variant: plain names; several: <column>_<variant>.

    The dataset is read again and refused if it changed since the run.

    \b
    Example:
      runner export reports/backfill --to tickets_with_summary.parquet
    """
    from runner.errors import ConfigError
    from runner.export import export_run
    from runner.export_writers import EXTENSIONS, FORMATS, ExportFormat, format_of
    from runner.rundir import RunDir

    if fmt is not None:
        chosen: ExportFormat = FORMATS[FORMATS.index(fmt)]
    elif (
        to is not None and to.suffix and to.suffix.lower().lstrip(".") not in (*EXTENSIONS, "json")
    ):
        raise ConfigError(f"--to {to}: name a .parquet, .csv or .jsonl file, or pass --format")
    else:
        chosen = format_of(to) if to is not None else "parquet"
    with RunDir(out).locked():  # not while a run writes its results
        path = export_run(
            out,
            to,
            format=chosen,
            variants=variants or None,
            max_file_rows=max_file_rows,
        )
    click.echo(f"exported: {path}")
