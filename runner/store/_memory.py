"""How much the stages after sending hold at a time: one :class:`MemoryPlan`, passed in.

Compaction, the outcome join of the export, the reports' rescoring, pairing and side-by-side
table all work in bounded pieces so that memory does not grow with the run. The sizes of those
pieces are the fields of :class:`MemoryPlan`; :data:`DEFAULT_MEMORY` holds the values measured
in ``BENCHMARKS.md``. The functions that use them take ``memory: MemoryPlan = DEFAULT_MEMORY``
(a keyword, passed down as :class:`runner.stats._compare.StatOptions` is), so a test asks for tiny
pieces to reach the many-piece paths with a few rows, and production never changes.

Every field trades memory against time (or files): larger pieces go faster and hold more. None
changes a result: the same run gives the same files under any plan.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from runner.errors import ConfigError

__all__ = ["DEFAULT_MEMORY", "MemoryPlan"]

_MIB: Final = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryPlan:
    """The piece sizes of every bounded-memory step after sending; see each field.

    Built with keywords only; every field must be a positive ``int`` (``fan_in`` at least 2),
    checked when built
    (:class:`~runner.errors.ConfigError`).
    """

    # ------------------------------------------------------------- journal and compaction

    piece_bytes: int = 2 * _MIB
    """Journal bytes parsed at a time, by recovery, resume and compaction. polars needs about
    ten times this while parsing; smaller pieces mean more parser calls. Reading the journal
    piece by piece instead of whole took resume state from 1.5 GB to 8 bytes a key at two
    million outcomes."""

    one_piece_bytes: int = 4 * _MIB
    """A journal up to this size is compacted in one piece, in memory (fast, no scratch
    files); a larger one is sorted in runs and merged. In one piece two million outcomes took
    3.5 GB."""

    run_rows: int = 16_384
    """Outcomes sorted in memory into one run of a large compaction: more rows hold more, fewer
    make more runs (and merge passes)."""

    fan_in: int = 16
    """Runs merged at a time: each open run holds one row group of ``run_group_rows`` and a
    batch of ``merge_key_rows`` keys, so memory grows with it; fewer means more merge passes
    over the disk (BENCHMARKS.md: runs merged 16 at a time, compaction ~200 MB at any size)."""

    run_group_rows: int = 8192
    """Rows per row group of a sorted run, and so rows of each run held while merging: small
    enough to hold one per run, large enough that the runs' metadata stays small."""

    merge_key_rows: int = 1024
    """Sort keys of a run handed to Python (the heap merge) at a time."""

    write_rows: int = 16_384
    """Rows gathered into merged order and written at a time, and the row group size of the
    compacted ``results.parquet``."""

    # ---------------------------------------------------- bucketed joins (export, reports)

    bucket_bytes: int = 32 * _MIB
    """Uncompressed bytes (by the file's metadata) of results per bucket of a hash join: more
    buckets hold less each and write more scratch files."""

    bucket_rows: int = 128 * 1024
    """Results per bucket of a hash join. Both bounds count: a dictionary-encoded column is far
    smaller in the file than in memory (BENCHMARKS.md, issue 11: 2 M results read as 4 MB and
    were joined in one 0.6 GB bucket; bounded in rows, the export of 1 M x 2 fell from 882 to
    380 MB)."""

    bucket_group_rows: int = 1024
    """Rows per row group of a joined or flagged bucket, and rows of each bucket held while
    the buckets are merged back into order (one such group per bucket)."""

    bucket_read_rows: int = 65_536
    """Rows of the wanted outcomes read at a time while bucketing them for the export."""

    side_by_side_read_rows: int = 32_768
    """Rows of the results read at a time while bucketing the side-by-side table
    (BENCHMARKS.md, issue 11: 16 Ki-row reads saved 16 MB at 1 M x 2 but took the bucketing
    from 2.5 to 3.4 s, so 32 Ki stayed)."""

    side_by_side_write_rows: int = 16_384
    """Rows of ``side_by_side.parquet`` merged into report order and written at a time."""

    # --------------------------------------------------------------- scoring, pairing, export

    score_rows: int = 16_384
    """Rows of ``results.parquet`` scored and written to ``scores.parquet`` at a time (a row
    group each). BENCHMARKS.md, issue 11: with small batches and no read-ahead rescoring at
    1 M x 2 fell from 427 to 258 MB."""

    pair_part_rows: int = 250_000
    """Baseline calls paired at a time: the join of two arms holds both whole, so a larger
    pairing is made in parts of row ids by hash (BENCHMARKS.md, issue 11: 0.25 GB less at
    2 M results)."""

    export_batch_rows: int = 16_384
    """Dataset rows read, joined with their outcomes and written at a time by an export (a row
    group of a Parquet export each)."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if type(value) is not int or value < 1:
                raise ConfigError(f"MemoryPlan.{field.name} must be a positive int, not {value!r}")
        if self.fan_in < 2:
            raise ConfigError(f"MemoryPlan.fan_in must be at least 2, not {self.fan_in}")


DEFAULT_MEMORY: Final = MemoryPlan()
"""The plan production runs with: the values measured in ``BENCHMARKS.md``."""
