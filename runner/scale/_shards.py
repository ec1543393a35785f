"""The shards of one run, found and checked before they are merged.

``runner run … --shard I/N --out OUT`` writes ``OUT/shards/shard-I-of-N``: a complete run
directory (journal, results, manifest) for the rows whose id hashes to shard I
(:func:`runner.store.shard_of`). Before :func:`runner.scale._merge.merge_shards` writes
anything, the set is checked:

* every shard ``0 … N-1`` of one split is present, and each is ``complete``
  (:func:`load_shards`);
* they are one run: the same run id, dataset fingerprint and work config (the shard aside);
* every (row, variant, repeat) is in exactly one shard: each shard holds exactly the keys its
  rows hash to, as many as it planned, none twice (:func:`check_keys`).

Otherwise a :class:`~runner.errors.ShardsError` lists every problem found, with the shard and
how many results are missing or duplicated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl

from runner.errors import ResultsDirError, ShardsError
from runner.records import KEY_COLUMNS
from runner.store import (
    SHARDS_DIR,
    Manifest,
    RunDir,
    RunStatus,
    config_changes,
    shard_dir_name,
    shard_of,
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


def load_shards(out_dir: Path) -> list[Shard]:
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
        diff = config_changes(unsharded_work(r), unsharded_work(m))
        if diff:
            problems.append(f"{shard.label} ran with another configuration: {'; '.join(diff)}")
        stated = m.work.get("shard")
        if stated != [shard.index, shard.count]:
            problems.append(f"{shard.label}: its manifest says it is shard {stated}")
    return problems


def unsharded_work(manifest: Manifest) -> dict[str, Any]:
    return {**manifest.work, "shard": None}


def _raise_if(out_dir: Path, problems: list[str]) -> None:
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ShardsError(f"cannot merge the shards of {out_dir}; nothing was written:\n{lines}")


# ---------------------------------------------------------------------------------- keys


def check_keys(out_dir: Path, shards: list[Shard]) -> None:
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


__all__ = [
    "SHARD_DIR_PATTERN",
    "Shard",
    "check_keys",
    "find_shard_dirs",
    "load_shards",
    "unsharded_work",
]
