"""Helpers for the shard and Ray tests (imported, not a pytest conftest): CLI
arguments against a simulator, and the check that a merged run equals a single run."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from runner.records import KEY_COLUMNS
from runner.report._report import build_reports
from runner.store._results import read_manifest, read_results
from runner.store._rundir import RunDir

#: What must not depend on how the run was split (timings, request ids and attempts may).
SAME_COLUMNS = (
    "row_id", "variant", "repeat", "deployment", "status", "output",
    "error_type", "http_status", "inputs", "expected", "total_tokens",
)  # fmt: skip


def run_args(base_url: str, dataset: Path, out: Path, *extra: str) -> list[str]:
    """A sharded run's command. The simulator seeds permanent 422s on about 5 % of the calls
    (error rows the merge must carry), so the error budget is opened: a shard's share may
    exceed 5 % by chance."""
    return [
        "run", str(dataset), "--deployment", "support-reply", "--variant", "baseline",
        "--variant", "candidate", "--expected-column", "expected", "--base-url", base_url,
        "--out", str(out), "--max-error-rate", "1", *extra,
    ]  # fmt: skip


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


def journal_lines(run_dir: Path) -> int:
    path = run_dir / "journal.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def comparable(out: Path) -> pl.DataFrame:
    return read_results(out).select(SAME_COLUMNS)


def assert_same_run(merged: Path, single: Path) -> None:
    """One result per key, and the same outputs, statuses, counts and summary as ``single``."""
    results = read_results(merged)
    assert results.select(KEY_COLUMNS).is_unique().all()
    assert results["run_id"].n_unique() == 1
    assert_frame_equal(comparable(merged), comparable(single))
    got, want = read_manifest(merged), read_manifest(single)
    assert got["status"] == want["status"] == "complete"
    assert got["counts"] == want["counts"]
    assert got["planned"] == want["planned"] == results.height
    assert got["fingerprint"] == want["fingerprint"]
    assert_frame_equal(_summary(merged), _summary(single))


def _summary(out: Path) -> pl.DataFrame:
    if not RunDir(out).summary.exists():
        build_reports(out)
    summary = pl.read_parquet(RunDir(out).summary)
    timed = ("latency", "ttft", "total_p")  # measured times differ between two runs
    return summary.select(c for c in summary.columns if not any(t in c for t in timed))
