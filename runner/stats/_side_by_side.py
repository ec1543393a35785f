"""One row per row with every variant's answer (``side_by_side.parquet``), flagged and
ordered: regressions first, then improvements, then other changes.

:func:`side_by_side` is the whole table in memory (:func:`side_by_side_flagged` then
:func:`in_side_by_side_order`). The reports build the same rows from ``results.parquet`` in
bounded memory with :func:`bucketed_side_by_side`, the pattern of :mod:`runner.store._buckets`:

1. the results are streamed into ``K`` bucket files by a hash of ``row_id`` (every call of a
   row lands in one bucket), each result tagged with its position in the file;
2. each bucket is flagged alone by :func:`side_by_side_flagged` and written sorted by its
   report key, ``rank * rows + position of the row's first result``;
3. the report keys of all rows (8 bytes a row) are sorted once, which says which rows each
   output batch holds; :meth:`BucketedSideBySide.batches` merges the ``K`` sorted buckets
   into that order, holding one small row group per bucket.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl
import pyarrow.parquet as pq

from runner.errors import ConfigError
from runner.records import STATUS_ERROR
from runner.stats._frames import ENGINE, PAIR_KEYS, Results, lazy_results, variants_of
from runner.store import (
    DEFAULT_MEMORY,
    BucketWriters,
    MemoryPlan,
    RunDir,
    SortedBucket,
    bucket_count,
    bucket_of,
    iter_scored_batches,
)


def side_by_side(
    results: Results, baseline: str, *, variants: Sequence[str] | None = None
) -> pl.DataFrame:
    """One row per ``(row_id, repeat)`` with every variant's output, status, score and latency.

    Columns ``output_<variant>``, ``status_<variant>``, ``score_<variant>`` and
    ``latency_ms_<variant>`` follow ``inputs`` and ``expected``. ``changed`` is set when any
    variant's output or status differs from the baseline's; ``regression`` when a variant
    scored below the baseline or errored where the baseline was scored; ``improvement`` the
    other way round. Regressions come first, then improvements, then other changes, each in
    the order of the results.
    """
    flagged = side_by_side_flagged(results, baseline, variants=variants).collect(engine=ENGINE)
    return in_side_by_side_order(flagged.lazy()).collect(engine=ENGINE)


_FIELDS: Final = ("output", "status", "score", "latency_ms")

SIDE_BY_SIDE_RANK: Final = "_rank"
"""A helper column of :func:`side_by_side_flagged`: 0 for the rows shown first, 7 last."""


def side_by_side_flagged(
    results: Results,
    baseline: str,
    *,
    variants: Sequence[str] | None = None,
    carry: Sequence[str] = (),
) -> pl.LazyFrame:
    """The rows of :func:`side_by_side` in the order of the results, with their flags and a
    :data:`SIDE_BY_SIDE_RANK` column; :func:`in_side_by_side_order` puts them in order.
    ``carry`` names columns of the results kept from each row's first result. ``variants``
    are taken as given, present or not: each bucket of :func:`bucketed_side_by_side` must
    have the same columns."""
    lf = lazy_results(results)
    order = list(variants) if variants is not None else variants_of(results)
    if baseline not in order:
        raise ConfigError(f"baseline variant {baseline!r} is not in the results ({order})")
    frame = lf.select(*PAIR_KEYS, *carry, "inputs", "expected").unique(
        PAIR_KEYS, keep="first", maintain_order=True
    )
    fields = _FIELDS
    for v in order:
        arm = lf.filter(pl.col("variant") == v).select(
            *PAIR_KEYS, *[pl.col(f).alias(f"{f}_{v}") for f in fields]
        )
        frame = frame.join(arm, on=PAIR_KEYS, how="left", maintain_order="left")
    candidates = [v for v in order if v != baseline] or [baseline]
    flags = {
        "changed": pl.any_horizontal(_changed(baseline, v) for v in candidates),
        "regression": pl.any_horizontal(_worse(baseline, v) for v in candidates),
        "improvement": pl.any_horizontal(_worse(v, baseline) for v in candidates),
    }
    flagged = frame.with_columns(**{k: e.fill_null(False) for k, e in flags.items()})
    rank = (
        (~pl.col("regression")).cast(pl.Int8) * 4
        + (~pl.col("improvement")).cast(pl.Int8) * 2
        + (~pl.col("changed")).cast(pl.Int8)
    )
    return flagged.with_columns(rank.alias(SIDE_BY_SIDE_RANK))


def in_side_by_side_order(flagged: pl.LazyFrame) -> pl.LazyFrame:
    """Regressions first, then improvements, then other changes, each in the results' order.

    Eight order-keeping filtered passes instead of a sort: over a file on disk each pass
    streams, so no pass holds the table (a sort would)."""
    rank = pl.col(SIDE_BY_SIDE_RANK)
    parts = [flagged.filter(rank == r) for r in range(8)]
    return pl.concat(parts, how="vertical").drop(SIDE_BY_SIDE_RANK)


def _changed(baseline: str, variant: str) -> pl.Expr:
    return pl.col(f"output_{variant}").ne_missing(pl.col(f"output_{baseline}")) | pl.col(
        f"status_{variant}"
    ).ne_missing(pl.col(f"status_{baseline}"))


def _worse(reference: str, variant: str) -> pl.Expr:
    """``variant`` did worse than ``reference`` on this row."""
    ref_score, score = pl.col(f"score_{reference}"), pl.col(f"score_{variant}")
    errored = pl.col(f"status_{variant}") == STATUS_ERROR
    return ref_score.is_not_null() & (errored | (score < ref_score)).fill_null(False)


# ------------------------------------------------------------------ bounded memory, on disk

#: The columns of the results a side-by-side table reads.
_READ: Final = (*PAIR_KEYS, "variant", "inputs", "expected", *_FIELDS)
_POS: Final = "_pos"
_KEY: Final = "_key"
_UNCHANGED: Final = 7


@dataclass(frozen=True, slots=True)
class BucketedSideBySide:
    """The side-by-side rows in flagged buckets on disk, ready to be read in report order."""

    buckets: tuple[Path, ...]
    keys: pl.Series
    """Every row's report key, sorted: the report order."""
    changed: int
    """Rows changed, regressed or improved: the first ``changed`` rows of the report order."""
    memory: MemoryPlan = DEFAULT_MEMORY
    """The plan the buckets were written with (their row groups are read back by it)."""

    @property
    def height(self) -> int:
        return self.keys.len()

    def batches(self, size: int) -> Iterator[pl.DataFrame]:
        """The rows in report order, ``size`` at a time, with the columns of
        :func:`side_by_side`."""
        rows = self.memory.bucket_group_rows
        readers = [SortedBucket(path, key=_KEY, batch_rows=rows) for path in self.buckets]
        for start in range(0, self.height, size):
            end = min(start + size, self.height)
            bound = self.keys[end] if end < self.height else self.keys[-1] + 1
            parts = [p for p in (r.take_below(bound) for r in readers) if p.height]
            frame = pl.concat(parts, how="vertical")
            if frame.height != end - start:  # every key is in exactly one bucket
                raise AssertionError(f"side by side lost rows {start}..{end}")
            yield frame.sort(_KEY, maintain_order=True).drop(_KEY, SIDE_BY_SIDE_RANK)


def bucketed_side_by_side(
    out_dir: Path,
    baseline: str,
    *,
    variants: Sequence[str],
    scratch: Path,
    memory: MemoryPlan = DEFAULT_MEMORY,
) -> BucketedSideBySide:
    """Steps 1–3 of the module docstring over the run's scored results; ``scratch`` must be
    an empty directory that outlives the returned object's reading. ``memory`` sizes the
    buckets (by ``results.parquet``), the reads and the buckets' row groups."""
    if baseline not in variants:
        raise ConfigError(f"baseline variant {baseline!r} is not in the results ({variants})")
    results = RunDir(out_dir).results
    k = bucket_count(results, _READ, memory)
    rows = pq.read_metadata(results).num_rows
    parts = _bucket_results(out_dir, k, scratch, memory.side_by_side_read_rows)
    buckets, keys = [], []
    for b, path in enumerate(parts):
        flagged = (
            side_by_side_flagged(pl.read_parquet(path), baseline, variants=variants, carry=(_POS,))
            .with_columns(
                (pl.col(SIDE_BY_SIDE_RANK).cast(pl.Int64) * rows + pl.col(_POS)).alias(_KEY)
            )
            .drop(_POS)
            .sort(_KEY, maintain_order=True)
            .collect()
        )
        path.unlink()
        joined = scratch / f"flagged-{b}.parquet"
        pq.write_table(flagged.to_arrow(), joined, row_group_size=memory.bucket_group_rows)
        keys.append(flagged.select(_KEY, SIDE_BY_SIDE_RANK))
        buckets.append(joined)
        del flagged
    every = pl.concat(keys, how="vertical")
    changed = int((every[SIDE_BY_SIDE_RANK] != _UNCHANGED).sum())
    return BucketedSideBySide(tuple(buckets), every[_KEY].sort(), changed, memory)


def _bucket_results(out_dir: Path, k: int, scratch: Path, read_rows: int) -> list[Path]:
    """Step 1: the results' columns of a side-by-side table, with their position in the
    file, into ``k`` bucket files by a hash of ``row_id``."""
    writers = BucketWriters(scratch, "sbs", k, fast=True)
    position = 0
    empty = None
    for frame in iter_scored_batches(out_dir, _READ, read_rows):
        frame = (
            lazy_results(frame)
            .select(
                pl.int_range(position, position + frame.height, dtype=pl.Int64).alias(_POS),
                *_READ,
            )
            .collect()
        )
        position += frame.height
        empty = empty or frame.to_arrow().schema
        writers.write(frame.with_columns(bucket_of(pl.col("row_id"), k)))
    if empty is None:
        head = lazy_results(pl.scan_parquet(RunDir(out_dir).results)).head(0)
        empty = head.select(pl.lit(0, pl.Int64).alias(_POS), *_READ).collect().to_arrow().schema
    return writers.close(empty)
