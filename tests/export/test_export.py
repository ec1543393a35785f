"""``runner export``: the dataset back, every column and type in its order, plus the answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from runner.errors import ConfigError, InputError
from runner.export._export import export_run
from runner.export._target import PARTS_MARK
from runner.store import _buckets as outcome_join
from runner.store._memory import MemoryPlan
from tests import export_helpers
from tests.export_helpers import export_cli
from tests.fakes import ok_response

IDS = [42, 7, 1000, 3, 15, 8, 99, 1]
FAILING = {7, 99}  # the API answers 400 for these ids


@pytest.fixture
def table() -> pl.DataFrame:
    """An integer id out of order, a datetime, a list column and nulls."""
    n = len(IDS)
    return pl.DataFrame(
        {
            "id": pl.Series(IDS, dtype=pl.Int64),
            "question": [f"question {i}" for i in IDS],
            "asked_at": [datetime(2025, 3, 1 + i, 12, 30) for i in range(n)],
            "tags": [["a", "b"], [], None, ["c"], ["d", "e", "f"], ["g"], None, ["h"]],
            "note": [None if i % 3 == 0 else f"note {i}" for i in range(n)],
            "score": [None if i == 2 else i * 0.5 for i in range(n)],
        }
    )


def respond(body: dict[str, Any], attempt: int) -> httpx.Response:
    if int(body["metadata"]["row_id"]) in FAILING:
        return httpx.Response(400, json={"error": {"message": "prompt too long"}})
    return ok_response(body)


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    """Run ``variants`` over a dataset into ``tmp_path/out``, answered by :func:`respond`."""

    def make(dataset: Path, *variants: str, **overrides: Any) -> Path:
        out = tmp_path / "out"
        return export_helpers.make_run(dataset, out, *variants, respond=respond, **overrides)

    return make


@pytest.fixture
def parquet_run(tmp_path: Path, table: pl.DataFrame, make_run: Callable[..., Path]) -> Path:
    path = tmp_path / "data.parquet"
    table.write_parquet(path)
    return make_run(path, "short", "long", id_column="id")


def answer(variant: str, i: int) -> str:
    return f"{variant}:{json.dumps({'question': f'question {i}'})}"


def test_a_parquet_round_trip_keeps_every_column_and_type_and_adds_each_variant(
    tmp_path: Path, table: pl.DataFrame, parquet_run: Path
) -> None:
    path = export_run(parquet_run, tmp_path / "filled.parquet")
    out = pl.read_parquet(path)
    assert_frame_equal(out.select(table.columns), table)
    fields = ("output", "status", "error_type", "error_message")
    added = [f"{f}_{v}" for v in ("short", "long") for f in fields]
    assert out.columns == [*table.columns, *added]
    for v in ("short", "long"):
        assert out[f"status_{v}"].to_list() == ["error" if i in FAILING else "ok" for i in IDS]
        assert out[f"output_{v}"].to_list() == [None if i in FAILING else answer(v, i) for i in IDS]
        errors = out.filter(pl.col(f"status_{v}") == "error")
        assert errors[f"error_type_{v}"].to_list() == ["http_400", "http_400"]
        assert errors[f"error_message_{v}"].str.contains("prompt too long").all()


def test_one_variant_gets_plain_column_names(
    tmp_path: Path, table: pl.DataFrame, make_run: Callable[..., Path]
) -> None:
    path = tmp_path / "data.parquet"
    table.write_parquet(path)
    out_dir = make_run(path, "only", id_column="id")
    out = pl.read_parquet(export_run(out_dir, tmp_path / "x.parquet"))
    assert out.columns == [*table.columns, "output", "status", "error_type", "error_message"]


def test_a_row_without_outcome_gets_nulls_and_status_missing(
    tmp_path: Path, table: pl.DataFrame, parquet_run: Path
) -> None:
    results = pl.read_parquet(parquet_run / "results.parquet")
    lost = results.filter(~((pl.col("row_id") == "1000") & (pl.col("variant") == "long")))
    lost.write_parquet(parquet_run / "results.parquet")
    out = pl.read_parquet(export_run(parquet_run, tmp_path / "x.parquet"))
    row = out.filter(pl.col("id") == 1000).row(0, named=True)
    assert row["status_long"] == "missing" and row["output_long"] is None
    assert row["status_short"] == "ok" and row["output_short"] == answer("short", 1000)


def test_the_export_is_the_same_when_the_join_runs_in_many_buckets(
    tmp_path: Path, parquet_run: Path
) -> None:
    one = pl.read_parquet(export_run(parquet_run, tmp_path / "one.parquet"))
    small = MemoryPlan(bucket_bytes=64, bucket_group_rows=2, bucket_read_rows=3)
    results = parquet_run / "results.parquet"
    assert outcome_join.bucket_count(results, ["row_id", "output"], small) > 3
    many = pl.read_parquet(export_run(parquet_run, tmp_path / "many.parquet", memory=small))
    assert_frame_equal(many, one)


def test_export_streams_parquet_row_groups_and_splits_into_part_files(
    tmp_path: Path, parquet_run: Path
) -> None:
    threes = MemoryPlan(export_batch_rows=3)
    single = export_run(parquet_run, tmp_path / "single.parquet", memory=threes)
    assert pq.ParquetFile(single).metadata.num_row_groups == 3  # 8 rows in batches of 3
    parts = export_run(parquet_run, tmp_path / "parts", max_file_rows=5, memory=threes)
    names = sorted(p.name for p in parts.glob("*.parquet"))
    assert names == ["part-00000.parquet", "part-00001.parquet"]
    assert (parts / PARTS_MARK).is_file()  # the mark that lets --overwrite replace the folder
    assert [pq.read_metadata(parts / n).num_rows for n in names] == [5, 3]
    assert_frame_equal(pl.read_parquet(parts / "*.parquet"), pl.read_parquet(single))


def test_csv_export_of_a_csv_run_without_id_column_keeps_the_rows_in_order(
    tmp_path: Path, make_run: Callable[..., Path]
) -> None:
    source = tmp_path / "data.csv"
    source.write_text("question,region\nq0,eu\nq1,\nq2,us\n", encoding="utf-8")
    out_dir = make_run(source, "v")
    path = export_run(out_dir, tmp_path / "filled.csv", format="csv")
    out = pl.read_csv(path, infer_schema=False)
    assert out["question"].to_list() == ["q0", "q1", "q2"]
    assert out["region"].to_list() == ["eu", "", "us"]  # CSV values are text, kept as read
    assert out["output"].to_list() == [
        f"v:{json.dumps({'question': q})}" for q in ("q0", "q1", "q2")
    ]
    assert out["status"].to_list() == ["ok"] * 3


def test_csv_export_writes_list_columns_as_json(tmp_path: Path, parquet_run: Path) -> None:
    out = pl.read_csv(export_run(parquet_run, tmp_path / "x.csv", format="csv"))
    assert out["tags"].to_list()[:3] == ['["a", "b"]', "[]", None]
    assert out["id"].to_list() == IDS


def test_jsonl_export_has_one_object_per_row_in_dataset_order(
    tmp_path: Path, parquet_run: Path
) -> None:
    path = export_run(parquet_run, tmp_path / "x.jsonl", format="jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == IDS
    assert lines[0]["tags"] == ["a", "b"]
    assert lines[1]["status_short"] == "error"
    assert lines[0]["output_long"] == answer("long", 42)


def test_only_the_chosen_variants_are_exported(tmp_path: Path, parquet_run: Path) -> None:
    out = pl.read_parquet(export_run(parquet_run, tmp_path / "x.parquet", variants=["long"]))
    assert "output_short" not in out.columns and "output" in out.columns
    with pytest.raises(ConfigError, match="'nope' is not a variant of this run"):
        export_run(parquet_run, tmp_path / "y.parquet", variants=["nope"])


def test_a_changed_dataset_is_refused_naming_the_file(
    tmp_path: Path, table: pl.DataFrame, parquet_run: Path
) -> None:
    table.head(5).write_parquet(tmp_path / "data.parquet")
    with pytest.raises(InputError, match=r"changed: .*data\.parquet"):
        export_run(parquet_run, tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_runner_export_command_writes_and_refuses_with_exit_2(
    tmp_path: Path, table: pl.DataFrame, parquet_run: Path
) -> None:
    target = tmp_path / "cli.csv"
    ok = export_cli(parquet_run, "--to", target)
    assert ok.exit_code == 0, ok.output
    assert pl.read_csv(target)["status_long"].to_list()[:2] == ["ok", "error"]
    table.head(3).write_parquet(tmp_path / "data.parquet")
    refused = export_cli(parquet_run)
    assert refused.exit_code == 2
    assert "data.parquet" in refused.output and "Traceback" not in refused.output
    assert not (parquet_run / "export.parquet").exists()


def test_an_unknown_extension_is_refused_before_anything_is_written(
    tmp_path: Path, parquet_run: Path
) -> None:
    target = tmp_path / "sheet.xlsx"
    refused = export_cli(parquet_run, "--to", target)
    assert refused.exit_code == 2, refused.output
    assert "sheet.xlsx" in refused.output and "--format" in refused.output
    assert not target.exists()
    forced = export_cli(parquet_run, "--to", target, "--format", "csv")
    assert forced.exit_code == 0, forced.output
    assert pl.read_csv(target).height > 0


def test_default_target_is_inside_out(parquet_run: Path) -> None:
    assert export_run(parquet_run) == parquet_run / "export.parquet"


def test_buckets_are_bounded_in_rows_even_when_the_file_holds_the_columns_in_a_few_bytes(
    tmp_path: Path,
) -> None:
    """A repeated output is dictionary-encoded: tiny on disk, 16 bytes a row or more in memory."""
    results = tmp_path / "results.parquet"
    rows = 5_000
    pl.DataFrame(
        {"row_id": [str(i % 50) for i in range(rows)], "output": ["the same answer"] * rows}
    ).write_parquet(results)
    on_disk = pq.ParquetFile(results).metadata.row_group(0).total_byte_size
    plan = MemoryPlan(bucket_rows=1_000)
    assert on_disk < plan.bucket_bytes  # the bytes alone would ask for one bucket
    assert outcome_join.bucket_count(results, ["row_id", "output"], plan) == 5
