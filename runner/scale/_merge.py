"""Merge the shards of one run into the run itself, as if it had been one process.

``runner run … --shard I/N --out OUT`` writes ``OUT/shards/shard-I-of-N``: a complete run
directory (journal, results, manifest) for the rows whose id hashes to shard I
(:func:`runner.run._pipeline.shard_of`). :func:`merge_shards` checks the set and only then writes
``OUT/results.parquet`` and ``OUT/manifest.json``, each atomically. It checks that:

* every shard ``0 … N-1`` of one split is present, and each is ``complete``;
* they are one run: the same run id, dataset fingerprint and work config (the shard aside);
* every (row, variant, repeat) is in exactly one shard: each shard holds exactly the keys its
  rows hash to, as many as it planned, none twice.

Otherwise it raises :class:`~runner.errors.ShardsError` listing every problem it found, with
the shard and how many results are missing or duplicated, and writes nothing.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl

from runner.errors import ResultsDirError, ShardsError
from runner.records import KEY_COLUMNS, RESULT_COLUMNS
from runner.store import (
    SHARDS_DIR,
    Fingerprint,
    Manifest,
    RunDir,
    RunStatus,
    atomic_path,
    config_changes,
    now_iso,
    shard_dir_name,
    shard_of,
    versions,
    work_fingerprint,
)

#: A shard directory's name; the numbers may be zero-padded.
SHARD_DIR_PATTERN: Final = re.compile(r"^shard-(\d+)-of-(\d+)$")


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard directory and its manifest."""

    index: int
    count: int
    path: Path
    manifest: Manifest = field(repr=False)

    @property
    def label(self) -> str:
        return f"shard {self.index} of {self.count} ({self.path})"

    @property
    def planned(self) -> int:
        return self.manifest.planned or 0

    @property
    def dir(self) -> RunDir:
        return RunDir(self.path)


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
    shards = _load(out_dir)
    _check_keys(out_dir, shards)
    return _write(out_dir, shards)


# ------------------------------------------------------------------------------- finding


def find_shard_dirs(out_dir: Path) -> dict[tuple[int, int], Path]:
    """Shard directories under ``out_dir/shards`` by ``(index, count)``; empty when none."""
    root = out_dir / SHARDS_DIR
    if not root.is_dir():
        return {}
    found: dict[tuple[int, int], Path] = {}
    for path in sorted(root.iterdir()):
        match = SHARD_DIR_PATTERN.match(path.name)
        if match and path.is_dir():
            found[(int(match[1]), int(match[2]))] = path
    return found


def _split(out_dir: Path) -> tuple[int, dict[tuple[int, int], Path]]:
    """The one split (N) in ``out_dir``, or a ShardsError that says why there is none."""
    if RunDir(out_dir).journal.exists():
        raise ShardsError(
            f"{out_dir} holds an unsharded run (it has a journal.jsonl); merging shards there "
            "would replace its results"
        )
    found = find_shard_dirs(out_dir)
    if not found:
        raise ShardsError(
            f"{out_dir / SHARDS_DIR} holds no shard directory (shard-I-of-N): nothing to merge. "
            f"Shards are written by: runner run … --shard I/N --out {out_dir}"
        )
    counts = sorted({count for _, count in found})
    if len(counts) > 1:
        raise ShardsError(
            f"{out_dir / SHARDS_DIR} mixes splits into {' and '.join(map(str, counts))} shards; "
            "one run is split one way: remove the directories of the other split"
        )
    return counts[0], found


def _load(out_dir: Path) -> list[Shard]:
    """Every shard of the split, read and checked for completeness and sameness."""
    count, found = _split(out_dir)
    problems = [
        f"{path.name} is not a shard of a {count}-way split (index {index} is not below {count})"
        for (index, _), path in sorted(found.items())
        if index >= count
    ]
    shards: list[Shard] = []
    missing: list[int] = []
    for index in range(count):
        path = found.get((index, count))
        if path is None:
            missing.append(index)
            continue
        try:
            shards.append(Shard(index, count, path, RunDir(path).read_manifest()))
        except ResultsDirError as exc:
            problems.append(f"shard {index} of {count}: {exc}")
    problems += [p for p in map(_status_problem, shards) if p is not None]
    problems += _sameness_problems(shards)
    if missing:
        problems.insert(0, _missing_problem(out_dir, missing, count, shards, clean=not problems))
    _raise_if(out_dir, problems)
    return shards


def _missing_problem(
    out_dir: Path, missing: list[int], count: int, shards: list[Shard], *, clean: bool
) -> str:
    names = ", ".join(str(out_dir / SHARDS_DIR / shard_dir_name(i, count)) for i in missing)
    which = ", ".join(map(str, missing))
    text = f"shard(s) {which} of {count} missing: no {names}"
    expected = _expected_calls(shards[0].manifest) if shards else None
    if clean and expected is not None:  # the present shards' plans are exact only when complete
        have = sum(shard.planned for shard in shards)
        text += f"; {expected - have} of the run's {expected} calls are in no shard"
    return text


def _expected_calls(manifest: Manifest) -> int | None:
    """Calls the whole run asks for: rows × variants × repeats, from a shard's manifest."""
    rows = manifest.dataset.get("num_rows")
    work = manifest.work
    if rows is None or not work.get("variants"):
        return None
    return int(rows) * len(work["variants"]) * int(work.get("repeat", 1))


def _status_problem(shard: Shard) -> str | None:
    status = shard.manifest.status
    planned = shard.manifest.planned
    if status is RunStatus.COMPLETE and planned is not None:
        return None
    done = _journal_lines(shard.dir.journal)
    progress = f"{done} of {planned} calls done" if planned else f"{done} calls done so far"
    return (
        f"{shard.label} is {status.value}: {progress}; finish it with "
        f"runner run … --shard {shard.index}/{shard.count} --resume"
    )


def _journal_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def _sameness_problems(shards: list[Shard]) -> list[str]:
    """Each shard against the first: one run id, one dataset, one work config, its own index."""
    if not shards:
        return []
    ref = shards[0]
    problems = []
    for shard in shards:
        m, r = shard.manifest, ref.manifest
        if m.run_id != r.run_id:
            problems.append(
                f"{shard.label} belongs to run {m.run_id}, shard {ref.index} to run {r.run_id}"
            )
        old, new = r.fingerprint.dataset, m.fingerprint.dataset
        if old != new:
            problems.append(f"{shard.label} ran on another dataset (fingerprint {new}, not {old})")
        diff = config_changes(_unsharded_work(r), _unsharded_work(m))
        if diff:
            problems.append(f"{shard.label} ran with another configuration: {'; '.join(diff)}")
        stated = m.work.get("shard")
        if stated != [shard.index, shard.count]:
            problems.append(f"{shard.label}: its manifest says it is shard {stated}")
    return problems


def _unsharded_work(manifest: Manifest) -> dict[str, Any]:
    return {**manifest.work, "shard": None}


def _raise_if(out_dir: Path, problems: list[str]) -> None:
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ShardsError(f"cannot merge the shards of {out_dir}; nothing was written:\n{lines}")


# ---------------------------------------------------------------------------------- keys


def _check_keys(out_dir: Path, shards: list[Shard]) -> None:
    """Every key in exactly one shard: the shard its row hashes to, as many as it planned."""
    problems: list[str] = []
    strays: list[pl.DataFrame] = []
    for shard in shards:
        path = shard.dir.results
        if not path.exists():
            problems.append(f"{shard.label} has no {path.name}")
            continue
        keys = _with_owner(pl.read_parquet(path, columns=list(KEY_COLUMNS)), shard)
        problems += _count_problems(shard, keys)
        strays.append(keys.filter(pl.col("owner") != shard.index))
    if strays:
        problems += _stray_problems(pl.concat(strays), shards)
    _raise_if(out_dir, problems)


def _with_owner(keys: pl.DataFrame, shard: Shard) -> pl.DataFrame:
    """Key rows with ``owner`` (the shard the row hashes to) and ``found_in`` (this shard)."""
    row_ids = keys["row_id"].unique().to_list()
    owners = pl.DataFrame(
        {"row_id": row_ids, "owner": [shard_of(r, shard.count) for r in row_ids]},
        schema={"row_id": pl.String(), "owner": pl.Int64()},
    )
    return keys.join(owners, on="row_id", how="left").with_columns(
        pl.lit(shard.index, dtype=pl.Int64).alias("found_in")
    )


def _count_problems(shard: Shard, keys: pl.DataFrame) -> list[str]:
    problems = []
    twice = keys.height - keys.select(KEY_COLUMNS).n_unique()
    if twice:
        problems.append(f"{shard.label} holds {twice} result(s) for a key it already has")
    own = keys.filter(pl.col("owner") == shard.index).select(KEY_COLUMNS).n_unique()
    if own < shard.planned:
        problems.append(
            f"{shard.label}: {shard.planned - own} of its {shard.planned} planned results "
            "are missing"
        )
    elif own > shard.planned:
        problems.append(
            f"{shard.label}: {own - shard.planned} result(s) more than the {shard.planned} "
            "it planned"
        )
    return problems


def _stray_problems(strays: pl.DataFrame, shards: list[Shard]) -> list[str]:
    """Results found in a shard their row does not hash to: duplicates, or misplaced."""
    by_index = {shard.index: shard for shard in shards}
    problems = []
    for (found_in, owner), group in strays.group_by("found_in", "owner", maintain_order=True):
        home = by_index[int(owner)]
        twins = (
            pl.scan_parquet(home.dir.results)
            .select(KEY_COLUMNS)
            .join(group.lazy().select(KEY_COLUMNS), on=list(KEY_COLUMNS), how="semi")
            .collect()
        )
        label = by_index[int(found_in)].label
        if twins.height:
            problems.append(
                f"{label}: {twins.height} result(s) duplicate keys of shard {owner}, "
                f"e.g. {_example(twins.row(0, named=True))}"
            )
        if group.height > twins.height:
            problems.append(
                f"{label}: {group.height - twins.height} result(s) belong to shard {owner} "
                f"(their rows hash there) and are not in it, e.g. "
                f"{_example(group.row(0, named=True))}"
            )
    return problems


def _example(key: dict[str, Any]) -> str:
    return f"row_id={key['row_id']!r} variant={key['variant']!r} repeat={key['repeat']}"


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
    work = _unsharded_work(ref)
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
