"""Specification of long rows: CSV and JSONL rows of megabytes are read whole, up to a limit."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner.config import RunConfig
from runner.dataset import _readers as readers
from runner.dataset._dataset import Dataset, open_dataset
from runner.dataset._row_errors import first_long_record
from runner.errors import InputError
from runner.records import Row

# Commas, escaped quotes, newlines and non-ASCII text: everything a CSV parser must carry.
PIECE = 'word, "quoted" é\n'
BIG = (PIECE * (3_000_000 // len(PIECE) + 1))[:3_000_000]  # 3 million characters


def open_(path: Path) -> Dataset:
    config = RunConfig(
        dataset=(str(path),), out_dir=path.parent / "out", deployment="d", variants=("v",)
    )
    return open_dataset(config)


def rows(dataset: Dataset) -> list[Row]:
    return [row for batch in dataset.iter_batches(batch_size=2) for row in batch]


def write_csv(path: Path, records: list[dict[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return path


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


#: Each format's writer, by the file's suffix.
WRITERS: dict[str, Callable[[Path, list[dict[str, str]]], Path]] = {
    "csv": write_csv,
    "jsonl": write_jsonl,
}


def records_with(big: str, at: int, total: int = 6) -> list[dict[str, str]]:
    """``total`` small records, the one at index ``at`` holding ``big`` as its question."""
    return [{"id": str(i), "q": big if i == at else f"question {i}"} for i in range(total)]


def expected_rows(records: list[dict[str, str]]) -> list[Row]:
    return [Row(r["id"], {"q": r["q"]}) for r in records]


@pytest.mark.parametrize("at", [0, 3], ids=["first row", "middle row"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_value_of_3_mb_is_read_intact(tmp_path: Path, fmt: str, at: int) -> None:
    """A 3 MB CSV cell or JSONL string value comes through equal, and the rows around it too."""
    records = records_with(BIG, at)
    dataset = open_(WRITERS[fmt](tmp_path / f"d.{fmt}", records))
    assert dataset.num_rows == 6
    assert rows(dataset) == expected_rows(records)


def test_long_rows_keep_duplicate_ids_found(tmp_path: Path) -> None:
    """Validation past a long row still sees every id: a repeat after it is named."""
    records = [*records_with(BIG, 1), {"id": "0", "q": "again"}]
    with pytest.raises(InputError) as info:
        open_(write_csv(tmp_path / "d.csv", records))
    assert "'0' ×2 (rows 1, 7)" in str(info.value)


LIMIT = 256 * 1024


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """Rows may hold at most 256 KiB, so that a row over the limit is quick to write."""
    monkeypatch.setattr(readers, "MAX_ROW_BYTES", LIMIT)
    return LIMIT


@pytest.mark.parametrize(
    ("fmt", "where"), [("csv", "line 6 (row 5)"), ("jsonl", "line 5:")], ids=["csv", "jsonl"]
)
def test_a_row_over_the_limit_names_file_line_and_limit(
    tmp_path: Path, small_limit: int, fmt: str, where: str
) -> None:
    """A row over the limit is an InputError naming the file, its line (a CSV row's number
    too) and the limit."""
    path = WRITERS[fmt](tmp_path / f"d.{fmt}", records_with("x" * (4 * small_limit), at=4))
    with pytest.raises(InputError) as info:
        open_(path)
    message = str(info.value)
    assert f"d.{fmt}" in message and where in message and "256 KiB" in message


def test_csv_row_of_many_short_lines_over_the_limit_names_its_first_line(
    tmp_path: Path, small_limit: int
) -> None:
    """A quoted cell of many short lines counts as one row: the error names where it starts."""
    cell = "short line\n" * (4 * small_limit // 11)
    path = write_csv(tmp_path / "d.csv", records_with(cell, at=2))
    with pytest.raises(InputError) as info:
        open_(path)
    assert "line 4 (row 3)" in str(info.value)


def test_csv_header_over_the_limit_is_named_as_the_header(tmp_path: Path, small_limit: int) -> None:
    """A header line over the limit is named as line 1, the header, not as a data row."""
    path = tmp_path / "d.csv"
    path.write_text(",".join(f"column_{i}" for i in range(small_limit // 5)) + "\n")
    with pytest.raises(InputError) as info:
        open_(path)
    assert "line 1 (the header)" in str(info.value)


def test_csv_header_longer_than_the_first_block_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A header wider than the first parse block grows the block like any long row."""
    monkeypatch.setattr(readers, "FIRST_BLOCK", 16 * 1024)
    names = [f"column_{i}" for i in range(2000)]  # about 24 KiB of header
    path = tmp_path / "d.csv"
    path.write_text(",".join(["id", *names]) + "\n" + ",".join(["r1", *names]) + "\n")
    assert rows(open_(path)) == [Row("r1", dict(zip(names, names, strict=True)))]


@pytest.mark.parametrize("name", ["d.csv", "d.jsonl"])
def test_row_of_exactly_the_limit_is_read(tmp_path: Path, small_limit: int, name: str) -> None:
    """A row of exactly the limit, line end included, is read whole."""
    path = tmp_path / name
    write = write_csv if name == "d.csv" else write_jsonl
    overhead = len(write(path, records_with("", at=2)).read_bytes().splitlines(True)[-4])
    records = records_with("y" * (small_limit - overhead), at=2)
    longest = max(map(len, write(path, records).read_bytes().splitlines(True)))
    assert longest == small_limit
    assert rows(open_(path)) == expected_rows(records)


def test_first_long_record_counts_lines_and_csv_records(tmp_path: Path) -> None:
    """The locator skips quoted newlines for CSV: line where the record starts, and its index."""
    path = tmp_path / "d.csv"
    path.write_bytes(b'id,q\n1,"a\nb"\n2,' + b"z" * 50 + b"\n3,c\n")
    assert first_long_record(path, 40, quoted=True) == (4, 2)
    assert first_long_record(path, 40, quoted=False) == (4, 3)
    assert first_long_record(path, 100, quoted=True) is None
