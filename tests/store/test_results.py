"""The journal and its compaction: torn lines, last-outcome-wins, done keys, atomic files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import polars as pl

from runner.records import RESULT_COLUMNS, Outcome
from runner.store._results import (
    JOURNAL,
    RESULTS,
    DoneKeys,
    Journal,
    compact,
    cut_torn_tail,
    key_frame,
    key_hashes,
    read_done_keys,
)


def outcome(row_id: str, variant: str = "a", status: str = "ok", repeat: int = 0) -> Outcome:
    return Outcome(
        run_id="r", row_id=row_id, variant=variant, deployment="d", repeat=repeat,
        status=status, output="out" if status == "ok" else None, reasoning=None, model="m",
        request_id=None, http_status=200 if status == "ok" else 502,
        error_type=None if status == "ok" else "http_502", error_message=None, attempts=1,
        latency_ms=1.0, total_ms=1.0, ttft_ms=None, prompt_tokens=1, completion_tokens=2,
        total_tokens=3, started_at="2026-11-25T10:00:00+00:00",
        finished_at="2026-11-25T10:00:01+00:00", inputs='{"q": "x"}', expected=None,
    )  # fmt: skip


def test_journal_lines_are_complete_json(tmp_path: Path) -> None:
    journal = Journal(tmp_path / JOURNAL)
    journal.append(outcome("1"))
    journal.append(outcome("2"))
    journal.close()
    lines = (tmp_path / JOURNAL).read_text().splitlines()
    assert [json.loads(line)["row_id"] for line in lines] == ["1", "2"]


def test_a_torn_last_line_is_cut(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL
    good = json.dumps({"row_id": "1"}) + "\n"
    path.write_text(good + '{"row_id": "2", "sta')
    assert cut_torn_tail(path) == len('{"row_id": "2", "sta')
    assert path.read_text() == good
    assert cut_torn_tail(path) == 0


def test_a_journal_with_only_a_torn_line_becomes_empty(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL
    path.write_text('{"row_id": "1"')
    cut_torn_tail(path)
    assert path.read_text() == ""


def test_compaction_keeps_the_last_outcome_per_key_in_input_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path / JOURNAL)
    for item in (
        outcome("10", "b"), outcome("2", "a", "error"), outcome("10", "a"),
        outcome("2", "b"), outcome("2", "a"),
    ):  # fmt: skip
        journal.append(item)
    journal.close()
    counts = compact(tmp_path, ("a", "b"))
    results = pl.read_parquet(tmp_path / RESULTS)
    assert counts == {"ok": 4}
    assert results.columns == list(RESULT_COLUMNS)
    assert results.select("row_id", "variant", "status").rows() == [
        ("2", "a", "ok"), ("2", "b", "ok"), ("10", "a", "ok"), ("10", "b", "ok"),
    ]  # fmt: skip
    assert results.schema["started_at"] == pl.Datetime("us", "UTC")


def test_compaction_of_an_empty_journal(tmp_path: Path) -> None:
    assert compact(tmp_path, ("a",)) == {}
    assert pl.read_parquet(tmp_path / RESULTS).height == 0


def test_done_keys_membership() -> None:
    done = DoneKeys(key_hashes(key_frame(["1", "2"], ["a", "a"], [0, 0])))
    probe = key_frame(["1", "2", "1", "3"], ["a", "a", "b", "a"], [0, 1, 0, 0])
    assert done.contains(probe).tolist() == [True, False, False, False]
    assert DoneKeys(key_hashes(key_frame([], [], []))).contains(probe).tolist() == [False] * 4


def test_read_done_keys_with_and_without_retry_errors(tmp_path: Path) -> None:
    journal = Journal(tmp_path / JOURNAL)
    journal.append(outcome("1"))
    journal.append(outcome("2", status="error"))
    journal.close()
    probe = key_frame(["1", "2"], ["a", "a"], [0, 0])
    assert read_done_keys(tmp_path, retry_errors=False).contains(probe).tolist() == [True, True]
    assert read_done_keys(tmp_path, retry_errors=True).contains(probe).tolist() == [True, False]


def test_unicode_outputs_survive_the_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / JOURNAL)
    journal.append(replace(outcome("1"), output="naïve — 東京 \n new line"))
    journal.close()
    compact(tmp_path, ("a",))
    assert pl.read_parquet(tmp_path / RESULTS)["output"][0] == "naïve — 東京 \n new line"
