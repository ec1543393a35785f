"""Specification of dataset fingerprints: one for the whole dataset, one per file, and changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runner.config import RunConfig
from runner.dataset._dataset import Dataset, dataset_changes, open_dataset


def open_(spec: str | Path) -> Dataset:
    config = RunConfig(dataset=(str(spec),), out_dir=Path("out"), deployment="d", variants=("v",))
    return open_dataset(config)


def write_part(path: Path, ids: list[str]) -> None:
    pq.write_table(pa.table({"id": ids, "q": ["x"] * len(ids)}), path)


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``data/part-0.parquet`` … ``part-2.parquet``, with the working directory above ``data``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for index in range(3):
        write_part(tmp_path / "data" / f"part-{index}.parquet", [f"{index}-a", f"{index}-b"])
    return tmp_path / "data"


def test_each_file_has_the_blake2b_of_its_bytes_under_its_path_below_the_root(
    parts: Path,
) -> None:
    """file_fingerprints maps each file's path below the dataset's root to blake2b-256 of its
    bytes: the same keys from any working directory (a shard pod, a resume)."""
    dataset = open_("data")
    assert dataset.file_fingerprints == open_(str(parts.resolve())).file_fingerprints
    assert dataset.file_fingerprints == {
        f"part-{i}.parquet": hashlib.blake2b(
            (parts / f"part-{i}.parquet").read_bytes(), digest_size=32
        ).hexdigest()
        for i in range(3)
    }


def test_combined_fingerprint_is_computed_as_before(parts: Path) -> None:
    """The dataset fingerprint still covers the format and each relative name, size and bytes."""
    digest = hashlib.blake2b(digest_size=32)
    digest.update(b"runner-dataset-v1\0parquet\0")
    for path in sorted(parts.iterdir()):
        name = path.name.encode()
        data = path.read_bytes()
        digest.update(len(name).to_bytes(8, "big") + name + len(data).to_bytes(8, "big") + data)
    assert open_("data").fingerprint == digest.hexdigest()


def test_changes_name_the_changed_added_and_missing_files(parts: Path) -> None:
    """One file rewritten, one added, one removed: a line for each, and none for the rest."""
    old = open_("data").file_fingerprints
    write_part(parts / "part-1.parquet", ["1-a", "1-changed"])
    write_part(parts / "part-3.parquet", ["3-a"])
    (parts / "part-0.parquet").unlink()
    new = open_("data").file_fingerprints
    assert dataset_changes(old, new) == [
        "changed: part-1.parquet",
        "added: part-3.parquet",
        "missing: part-0.parquet",
    ]


def test_the_same_files_give_no_changes(parts: Path) -> None:
    """Opening an untouched dataset twice gives equal digests and no change lines."""
    assert dataset_changes(open_("data").file_fingerprints, open_("data").file_fingerprints) == []


def test_changes_are_grouped_by_kind_and_sorted_by_path() -> None:
    """Changed files come first, then added, then missing; each group in path order."""
    old = {"b": "1", "a": "1", "z": "1", "y": "1", "same": "1"}
    new = {"b": "2", "a": "2", "d": "1", "c": "1", "same": "1"}
    assert dataset_changes(old, new) == [
        "changed: a",
        "changed: b",
        "added: c",
        "added: d",
        "missing: y",
        "missing: z",
    ]
