"""Compacting a journal larger than one run: sorted runs merged give the same results file."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from runner.records import STATUS_ERROR, STATUS_OK, Outcome
from runner.store._memory import MemoryPlan
from runner.store._results import JOURNAL, RESULTS, Journal, compact

VARIANTS = ("baseline", "candidate", "other")


def outcome(row_id: str, variant: str, repeat: int, status: str, seq: int) -> Outcome:
    return Outcome(
        run_id="r-test", row_id=row_id, variant=variant, deployment="d", repeat=repeat,
        status=status, output=f"answer {seq}", reasoning=None, model="m",
        request_id=f"req_{seq}", http_status=200 if status == STATUS_OK else 502,
        error_type=None if status == STATUS_OK else "http_502", error_message=None,
        attempts=1, latency_ms=float(seq), total_ms=float(seq) + 1, ttft_ms=None,
        prompt_tokens=3, completion_tokens=5, total_tokens=8,
        started_at="2026-01-01T00:00:00+00:00",
        finished_at=f"2026-01-01T00:00:{seq % 60:02d}+00:00",
        inputs='{"text": "x"}', expected=None,
    )  # fmt: skip


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    """A shuffled journal of numeric and text ids, repeats, and keys written up to 3 times
    (an error, then a retry on resume) so duplicates fall in different runs."""
    rng = random.Random(7)
    keys = [
        (row_id, variant, repeat)
        for row_id in [str(i) for i in range(300)] + [f"t{i}" for i in range(150)]
        for variant in VARIANTS
        for repeat in range(2)
    ]
    lines = [(key, STATUS_OK) for key in keys]
    lines += [(key, STATUS_ERROR) for key in rng.sample(keys, 400)]
    rng.shuffle(lines)
    lines += [(key, STATUS_OK) for key in rng.sample(keys, 200)]  # later outcomes win
    out = tmp_path / "run"
    out.mkdir()
    journal = Journal(out / JOURNAL)
    for seq, ((row_id, variant, repeat), status) in enumerate(lines):
        journal.append(outcome(row_id, variant, repeat, status, seq))
    journal.close()
    return out


#: Sizes that turn this small journal into 3 merge passes over pieces of ~15 lines.
SMALL_RUNS = MemoryPlan(
    one_piece_bytes=10_000,
    piece_bytes=10_000,
    run_rows=40,
    fan_in=4,
    run_group_rows=16,
    merge_key_rows=8,
    write_rows=100,
)


def test_merged_runs_equal_one_piece(journal_dir: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    shutil.copytree(journal_dir, whole)
    counts_whole = compact(whole, VARIANTS)

    counts_runs = compact(journal_dir, VARIANTS, memory=SMALL_RUNS)

    assert (journal_dir / JOURNAL).stat().st_size > 50 * 10_000  # many pieces, runs, passes
    assert pq.ParquetFile(journal_dir / RESULTS).metadata.num_row_groups > 1  # merged
    assert counts_runs == counts_whole
    assert_frame_equal(pl.read_parquet(journal_dir / RESULTS), pl.read_parquet(whole / RESULTS))
    assert not list(journal_dir.glob(".compact-*"))  # the runs are cleaned up


def test_merged_runs_keep_the_last_outcome_in_input_order(journal_dir: Path) -> None:
    compact(journal_dir, VARIANTS, memory=SMALL_RUNS)
    frame = pl.read_parquet(journal_dir / RESULTS)
    journal = pl.read_ndjson(journal_dir / JOURNAL).with_row_index("seq")
    last = journal.group_by("row_id", "variant", "repeat").agg(pl.col("seq").max())
    assert frame.height == last.height == 450 * 3 * 2
    assert sorted(frame["request_id"]) == sorted(f"req_{seq}" for seq in last["seq"])
    ids = frame["row_id"].unique(maintain_order=True).to_list()
    assert ids[:3] == ["0", "1", "2"] and ids[299] == "299" and ids[300:303] == ["t0", "t1", "t10"]
    assert (
        frame["variant"].head(6).to_list() == ["baseline"] * 2 + ["candidate"] * 2 + ["other"] * 2
    )
