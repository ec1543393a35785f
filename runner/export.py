"""``runner export``: the run's dataset again, row for row, with each variant's answer added.

The original files are read again (and refused, naming the file, if they changed since the
run) and streamed in their own order with every column and type they have; each row gets,
per variant, ``output``, ``status``, ``error_type`` and ``error_message`` (and ``reasoning``
when the run streamed). With one variant the columns keep those plain names; with several
they are ``<column>_<variant>``. A row with no outcome (an interrupted run, a sample) gets
nulls and the status ``missing``. With ``--repeat`` the first repeat (0) is exported.

Memory does not grow with the run: outcomes are looked up through an external hash join
(:mod:`runner.outcome_join`), the dataset is read a batch at a time, and the export is
written a batch at a time (:mod:`runner.export_writers`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import pyarrow as pa

from runner.config import RunConfig
from runner.dataset_checks import id_strings
from runner.dataset_files import show
from runner.errors import ConfigError, InputError, ResultsDirError
from runner.export_writers import FORMATS, ExportFormat, ExportSink
from runner.inputs import Dataset, dataset_changes, open_dataset
from runner.outcome_join import MISSING, join_outcomes
from runner.readers import read_batches
from runner.rundir import Manifest, RunDir

__all__ = ["MISSING", "ExportFormat", "default_target", "export_columns", "export_run"]

#: Outcome columns every export carries, per variant; ``reasoning`` is added for streamed runs.
FIELDS: Final = ("output", "status", "error_type", "error_message")
BATCH_ROWS: Final = 16_384


def default_target(out_dir: Path, fmt: ExportFormat) -> Path:
    """Where an export goes without ``--to``: ``OUT/export.<format>``."""
    return RunDir(out_dir).export(fmt)


def export_run(
    out_dir: Path,
    to: Path | None = None,
    *,
    format: ExportFormat = "parquet",
    variants: Sequence[str] | None = None,
    max_file_rows: int | None = None,
) -> Path:
    """Write the dataset of run ``out_dir`` with its outcomes to ``to``; return the path.

    ``variants`` picks and orders the variants exported (default: the run's). With
    ``max_file_rows`` and more rows than that, ``to`` is a directory of ``part-NNNNN`` files.
    Raises :class:`InputError` (exit 2) naming the file when the dataset changed since the
    run, :class:`ConfigError` for an unknown variant or format. Takes no lock: the caller
    holds the run directory's (``runner export``, or ``runner run`` itself).
    """
    if format not in FORMATS:
        raise ConfigError(f"--format {format!r}: use one of {', '.join(FORMATS)}")
    rundir = RunDir(out_dir)
    manifest = rundir.read_manifest()
    if not rundir.results.exists():
        raise ResultsDirError(f"{rundir.results} does not exist; run the job first (or resume)")
    chosen = _variants(manifest, variants)
    dataset = _run_dataset(manifest)
    fields = (*FIELDS, "reasoning") if manifest.config.get("stream") else FIELDS
    names = export_columns(dataset.columns, chosen, fields)
    target = to if to is not None else default_target(out_dir, format)
    schema = pa.schema([*dataset.schema, *(pa.field(name, pa.string()) for name in names.values())])
    as_directory = max_file_rows is not None and dataset.num_rows > max_file_rows
    sink = ExportSink(
        target, format, schema, max_file_rows=max_file_rows, as_directory=as_directory
    )
    try:
        with tempfile.TemporaryDirectory(dir=sink.target.parent, prefix=".export-") as scratch:
            joined = join_outcomes(
                rundir.results,
                (id_array for _, id_array in _batches(dataset, id_only=True)),
                variants=chosen,
                fields=fields,
                scratch=Path(scratch),
            )
            merged = joined.in_order()
            for batch, _ in _batches(dataset, id_only=False):
                outcomes = merged.take(batch.num_rows)
                renamed = outcomes.rename(names).select(list(names.values()))
                extra = renamed.to_arrow().cast(
                    pa.schema([pa.field(n, pa.string()) for n in names.values()])
                )
                table = pa.Table.from_batches([batch])
                for column in extra.column_names:
                    table = table.append_column(column, extra.column(column))
                sink.write(table.cast(schema))
    except BaseException:
        sink.abort()
        raise
    return sink.commit()


def export_columns(
    dataset_columns: Sequence[str], variants: Sequence[str], fields: Sequence[str]
) -> dict[str, str]:
    """Joined column (``field@@index``) → export name: plain with one variant, else
    ``<field>_<variant>``; suffixed anyway when a plain name is taken by the dataset."""
    taken = set(dataset_columns)
    plain = len(variants) == 1 and not taken & set(fields)
    names = {
        f"{f}@@{i}": f if plain else f"{f}_{v}" for i, v in enumerate(variants) for f in fields
    }
    clash = sorted(taken & set(names.values()))
    if clash:
        raise ConfigError(
            f"the dataset already has column(s) {', '.join(clash)}; the export cannot add them"
        )
    return names


def _variants(manifest: Manifest, chosen: Sequence[str] | None) -> list[str]:
    run_variants = manifest.variants
    if not chosen:
        return run_variants
    unknown = [v for v in chosen if v not in run_variants]
    if unknown:
        raise ConfigError(
            f"--variant {unknown[0]!r} is not a variant of this run; "
            f"variants: {', '.join(run_variants)}"
        )
    return list(dict.fromkeys(chosen))


def _run_dataset(manifest: Manifest) -> Dataset:
    """The run's dataset, opened as the run opened it, refused if its files changed."""
    try:
        config = RunConfig.from_mapping(manifest.config)
    except ConfigError as exc:
        raise ResultsDirError(f"the manifest's configuration cannot be used: {exc}") from exc
    dataset = open_dataset(config)
    old = manifest.fingerprint.files
    if old:
        changes = dataset_changes(old, dataset.file_fingerprints)
        # Run from another directory the same files show other paths: the bytes decide.
        if changes and sorted(old.values()) != sorted(dataset.file_fingerprints.values()):
            raise InputError(
                f"the dataset changed since the run ({'; '.join(changes)}); export needs the "
                "data the run read"
            )
    elif manifest.fingerprint.dataset and manifest.fingerprint.dataset != dataset.fingerprint:
        raise InputError(
            f"the dataset changed since the run ({', '.join(show(p) for p in dataset.files)}); "
            "export needs the data the run read"
        )
    return dataset


def _batches(dataset: Dataset, *, id_only: bool) -> Iterator[tuple[pa.RecordBatch, pa.Array]]:
    """The dataset's rows in order, each batch with its row ids as the run made them."""
    columns: Sequence[str]
    if id_only:
        columns = [dataset.id_column] if dataset.id_column else [dataset.columns[0]]
    else:
        columns = dataset.columns
    blocks = dict(dataset.block_sizes)
    position = 0
    for path in dataset.files:
        read = read_batches(path, dataset.format, dataset.schema, columns, BATCH_ROWS, blocks)
        for batch in read:
            take = min(batch.num_rows, dataset.num_rows - position)
            if take <= 0:
                return
            batch = batch.slice(0, take)
            if dataset.id_column is None:
                ids = pa.array([str(position + i) for i in range(take)], pa.string())
            else:
                ids = id_strings(batch.column(dataset.id_column))
            yield batch, ids
            position += take
        if position >= dataset.num_rows:
            return
