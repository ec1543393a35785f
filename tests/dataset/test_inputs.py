"""Specification of runner.dataset._dataset: reading CSV, Parquet and JSONL datasets as batches of
rows."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runner.config import RunConfig
from runner.dataset._dataset import Dataset, detect_format, open_dataset
from runner.dataset._fingerprints import fingerprint
from runner.errors import ConfigError, InputError
from runner.records import Row

# --------------------------------------------------------------------------- helpers

TABLE = {
    "id": ["a", "b", "c"],
    "question": ["What?", "Why?", "How?"],
    "topic": ["x", "y", "z"],
}


def config(*paths: Path | str, **options: Any) -> RunConfig:
    return RunConfig(
        dataset=tuple(str(p) for p in paths),
        out_dir=Path(paths[0]).parent / "out",  # never written: inputs only read
        deployment="support-reply",
        variants=("baseline",),
        **options,
    )


def open_(*paths: Path | str, **options: Any) -> Dataset:
    return open_dataset(config(*paths, **options))


def rows(dataset: Dataset, batch_size: int = 4096) -> list[Row]:
    return [row for batch in dataset.iter_batches(batch_size) for row in batch]


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_parquet(path: Path, data: dict[str, Any] | pa.Table) -> Path:
    pq.write_table(data if isinstance(data, pa.Table) else pa.table(data), path)
    return path


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_table(path: Path, data: dict[str, list[Any]]) -> Path:
    """Write ``data`` in the format that ``path``'s extension names."""
    if path.suffix == ".parquet":
        return write_parquet(path, data)
    records = [dict(zip(data, values, strict=True)) for values in zip(*data.values(), strict=True)]
    if path.suffix == ".jsonl":
        return write_jsonl(path, records)
    lines = [",".join(data)] + [",".join(str(v) for v in r.values()) for r in records]
    return write_csv(path, "\n".join(lines) + "\n")


def error_of(*paths: Path | str, **options: Any) -> str:
    with pytest.raises(InputError) as info:
        open_(*paths, **options)
    return str(info.value)


FORMATS = ["data.csv", "data.parquet", "data.jsonl"]


# --------------------------------------------------------------------------- reading rows


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_round_trips_its_rows(tmp_path: Path, name: str) -> None:
    """Every format yields the same rows: id from `id`, the other columns as inputs."""
    dataset = open_(write_table(tmp_path / name, TABLE))
    assert rows(dataset) == [
        Row("a", {"question": "What?", "topic": "x"}),
        Row("b", {"question": "Why?", "topic": "y"}),
        Row("c", {"question": "How?", "topic": "z"}),
    ]
    assert dataset.format == name.split(".")[1]
    assert dataset.columns == ("id", "question", "topic")
    assert dataset.num_rows == 3


def test_csv_keeps_leading_zeros(tmp_path: Path) -> None:
    """CSV columns are read as text, so ids and values like "007" keep their zeros."""
    dataset = open_(write_csv(tmp_path / "d.csv", "id,code\n007,0042\n8,1.50\n"))
    assert rows(dataset) == [Row("007", {"code": "0042"}), Row("8", {"code": "1.50"})]


def test_csv_empty_field_is_an_empty_string(tmp_path: Path) -> None:
    """An empty CSV field stays "" rather than becoming null."""
    dataset = open_(write_csv(tmp_path / "d.csv", "id,a,b\n1,,NULL\n"))
    assert rows(dataset) == [Row("1", {"a": "", "b": "NULL"})]


def test_csv_quoted_values_may_span_lines(tmp_path: Path) -> None:
    """A quoted CSV field may hold newlines and commas."""
    dataset = open_(write_csv(tmp_path / "d.csv", 'id,text\n1,"line one\nline two, still"\n'))
    assert rows(dataset) == [Row("1", {"text": "line one\nline two, still"})]


def test_csv_byte_order_mark_is_not_part_of_a_column_name(tmp_path: Path) -> None:
    """A spreadsheet's UTF-8 BOM does not hide the `id` column."""
    path = tmp_path / "d.csv"
    path.write_bytes("\ufeffid,q\r\n1,x\r\n".encode())
    assert rows(open_(path)) == [Row("1", {"q": "x"})]


def test_without_id_column_the_position_is_the_id(tmp_path: Path) -> None:
    """Without an `id` column, a row's id is its 0-based position, counted across files."""
    write_parquet(tmp_path / "a.parquet", {"q": ["x", "y"]})
    write_parquet(tmp_path / "b.parquet", {"q": ["z"]})
    dataset = open_(tmp_path)
    assert dataset.id_column is None
    assert [row.row_id for row in rows(dataset)] == ["0", "1", "2"]


def test_id_column_option_picks_the_id(tmp_path: Path) -> None:
    """--id-column overrides the default `id` column, which then becomes an input."""
    path = write_csv(tmp_path / "d.csv", "id,key,q\n1,k1,x\n2,k2,y\n")
    dataset = open_(path, id_column="key")
    assert rows(dataset) == [Row("k1", {"id": "1", "q": "x"}), Row("k2", {"id": "2", "q": "y"})]


@pytest.mark.parametrize("type_", [pa.int64(), pa.float64()], ids=str)
def test_numeric_ids_render_without_a_decimal_point(tmp_path: Path, type_: pa.DataType) -> None:
    """Integer and integral float ids become "7", not "7.0"."""
    table = pa.table({"id": pa.array([7, 12], type_), "q": ["x", "y"]})
    path = write_parquet(tmp_path / "d.parquet", table)
    assert [row.row_id for row in rows(open_(path))] == ["7", "12"]


def test_inputs_are_the_columns_not_used_otherwise(tmp_path: Path) -> None:
    """Id, expected and metadata columns are kept out of the inputs by default."""
    path = write_csv(tmp_path / "d.csv", "id,q,context,team,gold\n1,x,c,ops,yes\n")
    dataset = open_(path, metadata_columns=("team",), expected_column="gold")
    assert dataset.input_columns == ("q", "context")
    assert rows(dataset) == [
        Row("1", {"q": "x", "context": "c"}, metadata={"team": "ops"}, expected="yes")
    ]


def test_input_columns_option_selects_the_inputs(tmp_path: Path) -> None:
    """--input-column sends only the named columns."""
    path = write_csv(tmp_path / "d.csv", "id,q,context,notes\n1,x,c,n\n")
    dataset = open_(path, input_columns=("context",))
    assert rows(dataset) == [Row("1", {"context": "c"})]


def test_metadata_and_expected_keep_their_python_types(tmp_path: Path) -> None:
    """Metadata and expected values come through typed (not stringified) from Parquet."""
    path = write_parquet(
        tmp_path / "d.parquet",
        {"q": ["x"], "priority": [3], "urgent": [True], "score": [0.5], "label": [1]},
    )
    dataset = open_(path, metadata_columns=("priority", "urgent", "score"), expected_column="label")
    [row] = rows(dataset)
    assert row.metadata == {"priority": 3, "urgent": True, "score": 0.5}
    assert row.expected == 1
    assert row.inputs == {"q": "x"}


def test_a_directory_reads_its_parquet_files_in_sorted_order(tmp_path: Path) -> None:
    """A directory means every data file inside it, sorted; hidden and _-files are skipped."""
    folder = tmp_path / "parts"
    (folder / "sub").mkdir(parents=True)
    write_parquet(folder / "b.parquet", {"id": ["b1"], "q": ["x"]})
    write_parquet(folder / "a.parquet", {"id": ["a1"], "q": ["x"]})
    write_parquet(folder / "sub" / "c.parquet", {"id": ["c1"], "q": ["x"]})
    (folder / "_SUCCESS").write_text("")
    (folder / ".a.parquet.crc").write_text("junk")
    dataset = open_(folder)
    assert [p.name for p in dataset.files] == ["a.parquet", "b.parquet", "c.parquet"]
    assert [row.row_id for row in rows(dataset)] == ["a1", "b1", "c1"]


def test_a_glob_reads_the_matching_parquet_files_sorted(tmp_path: Path) -> None:
    """A glob pattern means the files it matches, sorted."""
    for name in ("part-2.parquet", "part-1.parquet", "other.parquet"):
        write_parquet(tmp_path / name, {"id": [name], "q": ["x"]})
    dataset = open_(tmp_path / "part-*.parquet")
    assert [row.row_id for row in rows(dataset)] == ["part-1.parquet", "part-2.parquet"]


def test_files_may_differ_in_numeric_width(tmp_path: Path) -> None:
    """An int32 column in one file and int64 in another read as one int64 column."""
    write_parquet(tmp_path / "a.parquet", {"id": pa.array([1], pa.int32()), "n": [1]})
    write_parquet(tmp_path / "b.parquet", {"id": pa.array([2], pa.int64()), "n": [2]})
    assert rows(open_(tmp_path)) == [Row("1", {"n": 1}), Row("2", {"n": 2})]


def test_limit_takes_only_the_first_rows(tmp_path: Path) -> None:
    """--limit N counts and yields only the first N rows, across file boundaries."""
    write_parquet(tmp_path / "a.parquet", {"id": ["1", "2"], "q": ["x", "x"]})
    write_parquet(tmp_path / "b.parquet", {"id": ["3", "4"], "q": ["x", "x"]})
    dataset = open_(tmp_path, limit=3)
    assert dataset.num_rows == 3
    assert [row.row_id for row in rows(dataset, batch_size=2)] == ["1", "2", "3"]


def test_limit_leaves_later_rows_unvalidated(tmp_path: Path) -> None:
    """A duplicate id after the limit is not an error: those rows are never sent."""
    path = write_parquet(tmp_path / "d.parquet", {"id": ["1", "2", "1"], "q": ["x"] * 3})
    assert open_(path, limit=2).num_rows == 2


def test_limit_leaves_later_files_unread(tmp_path: Path) -> None:
    """Rows of files past the limit are not read, so bad text there stops nothing."""
    write_csv(tmp_path / "a.csv", "id,q\n1,x\n")
    (tmp_path / "b.csv").write_bytes(b"id,q\n2,\xff\n")
    assert [row.row_id for row in rows(open_(tmp_path, limit=1))] == ["1"]


@pytest.mark.parametrize("name", FORMATS)
def test_batches_hold_at_most_batch_size_rows(tmp_path: Path, name: str) -> None:
    """iter_batches yields lists of at most batch_size rows, in order, none empty."""
    data = {"id": [str(i) for i in range(10)], "q": ["x"] * 10}
    dataset = open_(write_table(tmp_path / name, data))
    batches = list(dataset.iter_batches(batch_size=3))
    assert [len(batch) for batch in batches] == [3, 3, 3, 1]
    assert [row.row_id for batch in batches for row in batch] == data["id"]


# --------------------------------------------------------------------------- JSON-safe values


def test_values_are_made_json_safe(tmp_path: Path) -> None:
    """Dates become ISO text, decimals floats, NaN and inf None, nested values lists/dicts."""
    table = pa.table(
        {
            "day": [dt.date(2026, 1, 2)],
            "at": pa.array([dt.datetime(2026, 1, 2, 3, 4, 5)], pa.timestamp("us", "UTC")),
            "at_ns": pa.array([1_767_323_045_123_456_789], pa.timestamp("ns")),
            "clock": [dt.time(10, 30)],
            "price": pa.array([Decimal("1.25")], pa.decimal128(5, 2)),
            "nan": [math.nan],
            "inf": [math.inf],
            "nested": [{"tags": ["a", "b"], "when": dt.date(2026, 1, 2)}],
            "scores": pa.array([[("k", 1.0)]], pa.map_(pa.string(), pa.float64())),
        }
    )
    [row] = rows(open_(write_parquet(tmp_path / "d.parquet", table)))
    assert row.inputs == {
        "day": "2026-01-02",
        "at": "2026-01-02T03:04:05+00:00",
        "at_ns": "2026-01-02T03:04:05.123456",
        "clock": "10:30:00",
        "price": 1.25,
        "nan": None,
        "inf": None,
        "nested": {"tags": ["a", "b"], "when": "2026-01-02"},
        "scores": {"k": 1.0},
    }
    json.dumps(row.inputs, allow_nan=False)


def test_jsonl_date_like_strings_stay_as_written(tmp_path: Path) -> None:
    """JSONL strings that look like timestamps are not reparsed (and keep their "Z")."""
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": 1, "at": "2026-01-02T03:04:05Z"}])
    assert rows(open_(path)) == [Row("1", {"at": "2026-01-02T03:04:05Z"})]


def test_jsonl_objects_stay_objects(tmp_path: Path) -> None:
    """Inputs may be JSON objects and arrays; they come through as dicts and lists."""
    record = {"id": "r1", "ticket": {"subject": "Hi", "lines": [1, 2]}}
    path = write_jsonl(tmp_path / "d.jsonl", [record])
    assert rows(open_(path)) == [Row("r1", {"ticket": {"subject": "Hi", "lines": [1, 2]}})]


def test_bytes_columns_are_refused(tmp_path: Path) -> None:
    """A binary column cannot be sent as JSON: an error names the file and column."""
    path = write_parquet(tmp_path / "d.parquet", {"id": ["1"], "blob": [b"\x00\x01"]})
    message = error_of(path)
    assert "d.parquet" in message and "'blob'" in message and "bytes" in message


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "csv"),
        ("a.CSV", "csv"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.json", "jsonl"),
    ],
)
def test_format_is_detected_by_extension(name: str, expected: str) -> None:
    """`auto` picks the format from the file extension."""
    assert detect_format([Path(name)]) == expected


def test_unknown_extension_is_an_error_naming_the_file(tmp_path: Path) -> None:
    """A file whose extension says nothing stops the run, naming it."""
    path = write_csv(tmp_path / "data.txt", "id,q\n1,x\n")
    assert "data.txt" in error_of(path)


def test_mixed_formats_are_an_error(tmp_path: Path) -> None:
    """One dataset, one format: CSV next to Parquet is refused, naming both."""
    write_csv(tmp_path / "a.csv", "id,q\n1,x\n")
    write_parquet(tmp_path / "b.parquet", {"id": ["2"], "q": ["x"]})
    message = error_of(tmp_path)
    assert "a.csv" in message and "b.parquet" in message


def test_explicit_format_reads_any_extension(tmp_path: Path) -> None:
    """--input-format overrides the extension."""
    path = write_csv(tmp_path / "data.txt", "id,q\n1,x\n")
    assert rows(open_(path, input_format="csv")) == [Row("1", {"q": "x"})]


# --------------------------------------------------------------------------- validation


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    """A path that does not exist is named in the error."""
    assert "nope.csv" in error_of(tmp_path / "nope.csv")


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    """A file that cannot be opened (here a link to nowhere, which fails even for root)."""
    path = tmp_path / "d.csv"
    path.symlink_to(tmp_path / "gone" / "d.csv")
    assert "d.csv" in error_of(path)


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    """A directory with no data files is an error naming it."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("no data here")
    assert "empty" in error_of(tmp_path / "empty")


def test_glob_matching_nothing_is_an_error(tmp_path: Path) -> None:
    """A pattern that matches no file is an error naming the pattern."""
    assert "*.parquet" in error_of(tmp_path / "*.parquet")


def test_files_with_different_columns_are_an_error(tmp_path: Path) -> None:
    """All files of a dataset must have the same columns."""
    write_parquet(tmp_path / "a.parquet", {"id": ["1"], "q": ["x"]})
    write_parquet(tmp_path / "b.parquet", {"id": ["2"], "question": ["x"]})
    message = error_of(tmp_path)
    assert "b.parquet" in message and "question" in message


def test_zero_byte_file_is_an_error(tmp_path: Path) -> None:
    """An empty file is named in the error."""
    (tmp_path / "d.csv").write_text("")
    assert "d.csv" in error_of(tmp_path / "d.csv")


def test_corrupt_parquet_is_an_error(tmp_path: Path) -> None:
    """A file that is not Parquet is named in the error."""
    (tmp_path / "d.parquet").write_bytes(b"this is not parquet at all")
    assert "d.parquet" in error_of(tmp_path / "d.parquet")


def test_malformed_csv_line_is_found_before_the_first_request(tmp_path: Path) -> None:
    """A bad CSV record deep in the file (past the first parse block) is named by row."""
    lines = ["id,q"] + [f"{i},question number {i}" for i in range(100_000)]
    lines[80_000] = "79999,one,too many"
    path = write_csv(tmp_path / "d.csv", "\n".join(lines) + "\n")
    message = error_of(path)
    assert "d.csv" in message and "row 80000" in message and "Expected 2 columns" in message


def test_invalid_utf8_in_csv_is_found_before_the_first_request(tmp_path: Path) -> None:
    """Bad UTF-8 in an input column deep in the file is named with its column and row."""
    lines = [b"id,q"] + [b"%d,question %d" % (i, i) for i in range(100_000)]
    lines[90_000] = b"89999,\xff\xfe"
    path = tmp_path / "d.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    message = error_of(path)
    assert "d.csv" in message and "column 'q'" in message and "row 90000" in message


def test_bad_json_line_is_found_before_the_first_request(tmp_path: Path) -> None:
    """A broken JSONL line deep in the file is named by its line number."""
    lines = [json.dumps({"id": i, "q": f"question {i}"}) for i in range(100_000)]
    lines[70_000] = '{"id": 70000, "q": '
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n")
    message = error_of(path)
    assert "d.jsonl" in message and "line 70001" in message and "not valid JSON" in message


def test_bad_json_first_line_is_an_error(tmp_path: Path) -> None:
    """A JSONL file that is broken from the start is named with its line."""
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": 1, "q": "x"}\nnot json\n')
    message = error_of(path)
    assert "d.jsonl" in message and "line 2" in message


def test_json_key_first_seen_late_is_an_error(tmp_path: Path) -> None:
    """A key absent from the first rows would be dropped silently; it is an error instead."""
    records: list[dict[str, Any]] = [{"id": i, "q": f"question {i}"} for i in range(100_000)]
    records[60_000]["context"] = "late"
    message = error_of(write_jsonl(tmp_path / "d.jsonl", records))
    assert "line 60001" in message and "'context'" in message


def test_json_type_change_late_is_an_error(tmp_path: Path) -> None:
    """A value whose type contradicts the first rows is named by line and key."""
    records: list[dict[str, Any]] = [{"id": i, "n": i} for i in range(100_000)]
    records[60_000]["n"] = "sixty thousand"
    message = error_of(write_jsonl(tmp_path / "d.jsonl", records))
    assert "line 60001" in message and "'n'" in message


def test_empty_dataset_is_an_error(tmp_path: Path) -> None:
    """A dataset without rows (a CSV with only a header) is an error."""
    message = error_of(write_csv(tmp_path / "d.csv", "id,q\n"))
    assert "d.csv" in message and "no rows" in message


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("id_column", "key"),
        ("input_columns", ("question",)),
        ("metadata_columns", ("team",)),
        ("expected_column", "gold"),
    ],
)
def test_unknown_column_option_lists_the_columns(tmp_path: Path, option: str, value: Any) -> None:
    """An option that names a missing column is a ConfigError listing the real columns."""
    path = write_csv(tmp_path / "d.csv", "id,q,notes\n1,x,n\n")
    with pytest.raises(ConfigError) as info:
        open_(path, **{option: value})
    message = str(info.value)
    assert "d.csv" in message and "id, q, notes" in message
    assert repr(value if isinstance(value, str) else value[0]) in message


def test_duplicate_ids_are_named_with_their_rows(tmp_path: Path) -> None:
    """Repeated ids are an error naming up to five of them, their rows, and how many."""
    ids = [f"r{i}" for i in range(7)] * 2 + ["unique"]
    path = write_parquet(tmp_path / "d.parquet", {"id": ids, "q": ["x"] * len(ids)})
    message = error_of(path)
    assert "7 id(s) occur more than once" in message
    assert "d.parquet" in message and "'r0' ×2 (rows 1, 8)" in message
    assert "'r4'" in message and "'r5'" not in message and "and 2 more" in message


def test_duplicate_ids_across_files_name_both_files(tmp_path: Path) -> None:
    """An id repeated in two files is reported with a row in each."""
    write_csv(tmp_path / "a.csv", "id,q\n1,x\n2,y\n")
    write_csv(tmp_path / "b.csv", "id,q\n3,x\n2,y\n")
    message = error_of(tmp_path)
    assert "'2' ×2" in message and "a.csv row 2" in message and "b.csv row 2" in message


def test_null_ids_are_named_with_their_rows(tmp_path: Path) -> None:
    """Rows without an id are an error naming the file and rows."""
    path = write_parquet(tmp_path / "d.parquet", {"id": ["1", None, "3"], "q": ["x"] * 3})
    message = error_of(path)
    assert "d.parquet" in message and "1 row(s) have no id" in message and "row 2" in message


def test_empty_csv_ids_count_as_missing(tmp_path: Path) -> None:
    """An empty id field in a CSV is a missing id, not the id ""."""
    message = error_of(write_csv(tmp_path / "d.csv", "id,q\n1,x\n,y\n"))
    assert "d.csv" in message and "no id" in message and "row 2" in message


@pytest.mark.parametrize("values", [[["a", "b"]], [{"k": "v"}]], ids=["list", "struct"])
def test_non_scalar_metadata_column_is_an_error(tmp_path: Path, values: list[Any]) -> None:
    """The API takes only flat metadata: a list or struct column is refused by name."""
    path = write_parquet(tmp_path / "d.parquet", {"id": ["1"], "q": ["x"], "tags": values})
    message = error_of(path, metadata_columns=("tags",))
    assert "d.parquet" in message and "metadata column 'tags'" in message


def test_no_input_columns_left_is_an_error(tmp_path: Path) -> None:
    """A dataset whose every column has another role has nothing to send."""
    path = write_csv(tmp_path / "d.csv", "id,gold\n1,yes\n")
    assert "no input columns" in error_of(path, expected_column="gold")


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_is_stable_for_the_same_data(tmp_path: Path) -> None:
    """The same files give the same fingerprint, wherever the folder lives."""
    (tmp_path / "one").mkdir()
    write_parquet(tmp_path / "one" / "d.parquet", TABLE)
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    first = open_(tmp_path / "one").fingerprint
    assert first == open_(tmp_path / "one").fingerprint
    assert first == open_(tmp_path / "two").fingerprint
    assert len(first) == 64 and int(first, 16) >= 0


def test_fingerprint_changes_with_content_and_name(tmp_path: Path) -> None:
    """One changed byte or a renamed file gives another fingerprint."""
    path = write_csv(tmp_path / "d.csv", "id,q\n1,x\n")
    original = open_(path).fingerprint
    write_csv(path, "id,q\n1,y\n")
    changed = open_(path).fingerprint
    renamed = open_(path.rename(tmp_path / "e.csv")).fingerprint
    assert len({original, changed, renamed}) == 3


def test_fingerprint_covers_the_format(tmp_path: Path) -> None:
    """The same bytes read as another format are another dataset."""
    path = write_jsonl(tmp_path / "d.txt", [{"id": 1, "q": "x"}])
    assert fingerprint([path], "csv") != fingerprint([path], "jsonl")
