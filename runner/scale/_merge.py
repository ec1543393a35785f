"""Merge the shards of one run into the run itself, as if it had been one process.

:func:`merge_shards` checks the set of shards in ``OUT/shards`` (:mod:`runner.scale._shards`:
every shard present and complete, one run, every key in exactly one shard) and only then
writes ``OUT/results.parquet`` and ``OUT/manifest.json``, each atomically. A set that fails a
check raises :class:`~runner.errors.ShardsError` listing every problem, and nothing is written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from runner.records import RESULT_COLUMNS
from runner.scale._shards import Shard, check_keys, load_shards, unsharded_work
from runner.store import (
    Fingerprint,
    Manifest,
    RunDir,
    RunStatus,
    atomic_path,
    now_iso,
    versions,
    work_fingerprint,
)


@dataclass(frozen=True, slots=True)
class MergeReport:
    """What :func:`merge_shards` wrote into ``out_dir``."""

    out_dir: Path
    run_id: str
    shards: int
    counts: dict[str, int]
    planned: int
    manifest: Manifest = field(repr=False)


def merge_shards(out_dir: Path) -> MergeReport:
    """Verify the shards in ``out_dir/shards`` and merge them into ``out_dir``.

    Raises :class:`ShardsError` (nothing written) when the set is incomplete or inconsistent.
    """
    shards = load_shards(out_dir)
    check_keys(out_dir, shards)
    return _write(out_dir, shards)


# ------------------------------------------------------------------------------- writing


def _write(out_dir: Path, shards: list[Shard]) -> MergeReport:
    """``results.parquet`` then ``manifest.json``, each atomically; a merge can be redone."""
    rundir = RunDir(out_dir)
    variants = tuple(shards[0].manifest.work.get("variants") or ())
    frame = _in_run_order(
        pl.concat(pl.scan_parquet(s.dir.results).select(RESULT_COLUMNS) for s in shards),
        variants,
    )
    with atomic_path(rundir.results) as tmp:
        frame.sink_parquet(tmp, compression="zstd")
    rows = pl.scan_parquet(rundir.results).group_by("status").len().collect().rows()
    counts = {str(status): int(n) for status, n in rows}
    manifest = merged_manifest(out_dir, shards, counts)
    rundir.write_manifest(manifest)
    return MergeReport(
        out_dir, manifest.run_id, len(shards), counts, manifest.planned or 0, manifest
    )


def _in_run_order(frame: pl.LazyFrame, variants: tuple[str, ...]) -> pl.LazyFrame:
    """The order :func:`runner.store._compaction.compact` gives one run: numeric ids, then
    variants."""
    order = {v: i for i, v in enumerate(variants)}
    return (
        frame.with_columns(
            pl.col("row_id").cast(pl.Int64, strict=False).alias("_num"),
            pl.col("variant").replace_strict(order, default=len(order)).alias("_var"),
        )
        .sort(["_num", "row_id", "_var", "repeat"], nulls_last=True)
        .drop("_num", "_var")
    )


def merged_manifest(out_dir: Path, shards: list[Shard], counts: dict[str, int]) -> Manifest:
    """The manifest of the whole run: shard 0's, unsharded, with every shard's sessions."""
    ref = shards[0].manifest
    work = unsharded_work(ref)
    sessions = [
        dataclasses.replace(s, shard=sh.index) for sh in shards for s in sh.manifest.sessions
    ]
    return Manifest(
        run_id=ref.run_id,
        status=RunStatus.COMPLETE,
        created_at=min(shard.manifest.created_at for shard in shards),
        config=_run_config(out_dir, shards),
        work=work,
        # The fingerprint of the unsharded config: what one process would have recorded.
        fingerprint=Fingerprint(
            dataset=ref.fingerprint.dataset,
            config=work_fingerprint(work),
            files=dict(ref.fingerprint.files),
        ),
        dataset=dict(ref.dataset),
        sessions=sessions,
        counts={"ok": counts.get("ok", 0), "error": counts.get("error", 0)},
        planned=sum(shard.planned for shard in shards),
        finished_at=max(shard.manifest.finished_at or "" for shard in shards),
        versions=versions(),
        shards=[_shard_entry(out_dir, shard) for shard in shards],
        merged_at=now_iso(),
    )


def _run_config(out_dir: Path, shards: list[Shard]) -> dict[str, Any]:
    """Shard 0's config as one run's: its limits are the sums of the shards' limits, since
    that is how many requests the whole run had in flight, and how fast it could start them."""
    configs = [shard.manifest.config for shard in shards]
    rates = [c.get("rps") for c in configs]
    return {
        **configs[0],
        "out_dir": str(out_dir),
        "shard": None,
        "resume": False,
        "retry_errors": False,
        "concurrency": sum(int(c["concurrency"]) for c in configs),
        "rps": sum(rates) if all(r is not None for r in rates) else None,
    }


def _shard_entry(out_dir: Path, shard: Shard) -> dict[str, Any]:
    m = shard.manifest
    return {
        "index": shard.index,
        "count": shard.count,
        "dir": str(shard.path.relative_to(out_dir)),
        "planned": shard.planned,
        "counts": m.counts,
        "created_at": m.created_at,
        "finished_at": m.finished_at,
        "sessions": len(m.sessions),
        "versions": m.versions,
    }


__all__ = ["MergeReport", "merge_shards", "merged_manifest"]
