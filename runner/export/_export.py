"""``runner export``: the run's dataset again, row for row, with each variant's answer added.

The original files are read again (and refused, naming the file, if they changed since the
run) and streamed in their own order with every column and type they have; each row gets,
per variant, ``output``, ``status``, ``error_type`` and ``error_message`` (and ``reasoning``
when the run streamed), then the row's scores where the run has them: ``score``,
``score_reason``, ``score_error``, ``judge_score``, ``judge_reason``, ``judge_error`` (read
through :func:`runner.store._results.scan_scored`). With one variant the columns keep those plain
names; with several they are ``<column>_<variant>``; ``prefix`` goes in front of every one.
A row with no outcome (an interrupted run, a sample) gets nulls and the status ``missing``.
With ``--repeat`` the first repeat (0) is exported.

Nothing an export does can hurt data (:mod:`runner.export._target`): a target that is a file
of the dataset or lies inside ``OUT`` is refused, an existing one unless ``overwrite``, and a
run that is not ``complete`` unless ``allow_incomplete``; the checks come before anything is
written, and the export is renamed into place only when whole.

Memory does not grow with the run: outcomes are looked up through an external hash join
(:mod:`runner.store._buckets`), the dataset is read a batch at a time, and the export is
written a batch at a time (:mod:`runner.export._writers`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from runner.config import RunConfig
from runner.dataset import Dataset, dataset_changes, id_strings, open_dataset, read_batches, show
from runner.errors import ConfigError, InputError, ResultsDirError
from runner.export._target import (
    JOIN_SCRATCH_PREFIX,
    check_export_target,
    mark_scratch,
    remove_export_scratch,
    scratch_prefix,
)
from runner.export._writers import FORMATS, ExportFormat, ExportSink
from runner.store import (
    DEFAULT_MEMORY,
    MISSING,
    RESULT_STAGES,
    Manifest,
    MemoryPlan,
    OutcomeJoin,
    RunDir,
    RunStatus,
    count_missing,
    join_outcomes,
    scan_scored,
    under_lock,
)

__all__ = [
    "FIELDS",
    "MISSING",
    "SCORE_FIELDS",
    "ExportFormat",
    "check_export_columns",
    "check_export_target",
    "default_target",
    "export_columns",
    "export_run",
    "remove_export_scratch",
    "run_dataset_files",
]

#: Outcome columns every export carries, per variant; ``reasoning`` is added for streamed runs.
FIELDS: Final = ("output", "status", "error_type", "error_message")
#: Score columns an export carries, per variant, where the run's scored outcomes have them.
SCORE_FIELDS: Final = (
    "score", "score_reason", "score_error", "judge_score", "judge_reason", "judge_error",
)  # fmt: skip


def default_target(out_dir: Path, fmt: ExportFormat) -> Path:
    """Where an export goes without ``--to``: ``OUT/export.<format>``."""
    return RunDir(out_dir).export(fmt)


@under_lock
def export_run(
    out_dir: Path,
    to: Path | None = None,
    *,
    format: ExportFormat = "parquet",
    variants: Sequence[str] | None = None,
    max_file_rows: int | None = None,
    overwrite: bool = False,
    allow_incomplete: bool = False,
    prefix: str = "",
    csv_raw: bool = False,
    warn: Callable[[str], None] | None = None,
    memory: MemoryPlan = DEFAULT_MEMORY,
) -> Path:
    """Write the dataset of run ``out_dir`` with its outcomes to ``to``; return the path.

    ``variants`` picks and orders the variants exported (default: the run's). With
    ``max_file_rows`` and more rows than that, ``to`` is a directory of ``part-NNNNN`` files.
    ``prefix`` goes in front of every added column; ``csv_raw`` writes CSV text cells that
    start like a formula as they are (see :mod:`runner.export._writers`). ``memory`` sizes the
    outcome join's buckets and the batches read and written (the export is the same under any
    plan).

    Refused with exit 2, before anything is written: a target :func:`check_export_target`
    refuses (``overwrite`` allows an existing one), a run that is not ``complete`` (naming how
    many rows would be ``missing``) unless ``allow_incomplete`` (then ``warn`` hears one line
    with that count), an added column the dataset already has (:func:`check_export_columns`),
    an unknown variant or format (:class:`ConfigError`), a dataset changed since the run
    (:class:`InputError`). Scratch left by a killed export of the run is removed first. Takes
    no lock: the caller holds the run directory's (``runner export``, or ``runner run``).
    """
    if format not in FORMATS:
        raise ConfigError(f"--format {format!r}: use one of {', '.join(FORMATS)}")
    rundir = RunDir(out_dir)
    manifest = rundir.read_manifest()
    target = to if to is not None else default_target(out_dir, format)
    specs = [str(spec) for spec in manifest.config.get("dataset") or ()]
    check_export_target(
        out_dir, target, dataset_files=run_dataset_files(manifest), overwrite=overwrite,
        dataset_specs=specs,
    )  # fmt: skip
    unfinished = manifest.unfinished_stage(RESULT_STAGES)
    if unfinished is not None and not allow_incomplete:
        raise ConfigError(
            f"run {out_dir} was killed in its {unfinished} stage: the export would lack what "
            "that stage writes (its judge's scores); resume the run first, or pass "
            "--allow-incomplete"
        )
    outcomes = scan_scored(out_dir)
    chosen = _variants(manifest, variants)
    dataset = _run_dataset(manifest)
    check_export_target(
        out_dir, target, dataset_files=dataset.files, overwrite=overwrite, dataset_specs=specs
    )
    present = set(outcomes.collect_schema().names())
    streamed = ("reasoning",) if manifest.config.get("stream") else ()
    fields = (*FIELDS, *streamed, *(f for f in SCORE_FIELDS if f in present))
    names = export_columns(dataset.columns, chosen, fields, prefix=prefix)
    remove_export_scratch(out_dir, target)
    as_directory = max_file_rows is not None and dataset.num_rows > max_file_rows
    with tempfile.TemporaryDirectory(dir=rundir.root, prefix=JOIN_SCRATCH_PREFIX) as scratch:
        joined = join_outcomes(
            outcomes,
            (id_array for _, id_array in _batches(dataset, memory, id_only=True)),
            variants=chosen,
            fields=fields,
            scratch=Path(scratch),
            memory=memory,
        )
        if manifest.status is not RunStatus.COMPLETE:
            _incomplete(
                out_dir, manifest.status, count_missing(joined), dataset, allow_incomplete, warn
            )
        added = _added_schema(joined, names)
        schema = pa.schema([*dataset.schema, *added])
        sink = ExportSink(
            target,
            format,
            schema,
            max_file_rows=max_file_rows,
            as_directory=as_directory,
            overwrite=overwrite,
            csv_raw=csv_raw,
            prefix=scratch_prefix(target),
        )
        try:
            mark_scratch(sink.scratch, out_dir)
            merged = joined.in_order()
            for batch, _ in _batches(dataset, memory, id_only=False):
                outcomes_batch = merged.take(batch.num_rows)
                renamed = outcomes_batch.rename(names).select(list(names.values()))
                extra = renamed.to_arrow().cast(added)
                table = pa.Table.from_batches([batch])
                for column in extra.column_names:
                    table = table.append_column(column, extra.column(column))
                sink.write(table.cast(schema))
        except BaseException:
            sink.abort()
            raise
        return sink.commit()


def _incomplete(
    out_dir: Path,
    status: RunStatus,
    missing: int,
    dataset: Dataset,
    allow: bool,
    warn: Callable[[str], None] | None,
) -> None:
    rows = f"{missing:,} of {dataset.num_rows:,} row{'s' if dataset.num_rows != 1 else ''}"
    if not allow:
        raise ConfigError(
            f"run {out_dir} is {status.value}, not complete: {rows} would be exported with "
            "status missing; resume the run first, or pass --allow-incomplete"
        )
    if warn is not None:
        warn(f"run {out_dir} is {status.value}: {rows} exported with status missing")


def _added_schema(joined: OutcomeJoin, names: dict[str, str]) -> pa.Schema:
    """The added columns' types: text as ``string``, numbers (scores) as they are."""
    stored = pq.read_schema(joined.buckets[0])
    fields = []
    for column, name in names.items():
        kind = stored.field(column).type
        textual = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        fields.append(pa.field(name, pa.string() if textual or pa.types.is_null(kind) else kind))
    return pa.schema(fields)


def run_dataset_files(manifest: Manifest) -> list[Path]:
    """The dataset files a run's manifest names (what an export must never write over)."""
    files = [Path(str(f)) for f in manifest.dataset.get("files") or []]
    return [*files, *(Path(f) for f in manifest.fingerprint.files)]


def export_columns(
    dataset_columns: Sequence[str],
    variants: Sequence[str],
    fields: Sequence[str],
    *,
    prefix: str = "",
) -> dict[str, str]:
    """Joined column (``field@@index``) → export name: ``<prefix><field>`` with one variant,
    else ``<prefix><field>_<variant>``; suffixed anyway when a plain name is taken by the
    dataset. A name the dataset already has is a :class:`ConfigError` naming it and
    ``--export-prefix``."""
    taken = set(dataset_columns)
    plain = len(variants) == 1 and not taken & {prefix + f for f in fields}
    names = {
        f"{f}@@{i}": prefix + f if plain else f"{prefix}{f}_{v}"
        for i, v in enumerate(variants)
        for f in fields
    }
    clash = [name for name in names.values() if name in taken]
    if clash:
        listed = ", ".join(clash)
        raise ConfigError(
            f"the dataset already has the column{'s' if len(clash) > 1 else ''} {listed}, "
            "which the export adds; pass --export-prefix PREFIX to name the added columns "
            "PREFIX<column> (e.g. --export-prefix run_)"
        )
    return names


def check_export_columns(
    dataset_columns: Sequence[str],
    variants: Sequence[str],
    *,
    prefix: str = "",
    extra: Sequence[str] = (),
) -> None:
    """Refuse, before the first call, an export whose added columns the dataset already has.

    Checks the columns of :data:`FIELDS` plus ``extra`` (pass ``("reasoning",
    *SCORE_FIELDS)`` to cover everything a run could add: checking more fields than the export
    will carry never lets a clash through). Raises :class:`ConfigError` (exit 2) naming the
    column and ``--export-prefix PREFIX`` as the way out.
    """
    export_columns(dataset_columns, variants, (*FIELDS, *extra), prefix=prefix)


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


def _batches(
    dataset: Dataset, memory: MemoryPlan, *, id_only: bool
) -> Iterator[tuple[pa.RecordBatch, pa.Array]]:
    """The dataset's rows in order, each batch with its row ids as the run made them."""
    columns: Sequence[str]
    if id_only:
        columns = [dataset.id_column] if dataset.id_column else [dataset.columns[0]]
    else:
        columns = dataset.columns
    blocks = dict(dataset.block_sizes)
    size = memory.export_batch_rows
    position = 0
    for path in dataset.files:
        read = read_batches(path, dataset.format, dataset.schema, columns, size, blocks)
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
