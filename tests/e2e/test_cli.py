"""The CLI end to end against the simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from runner.simulator import SimulatorConfig, SimulatorServer
from runner.store._results import read_manifest, read_results
from tests.support import cli, write_tickets

TRANSIENT_MIX = {"http_502": 0.12, "http_429": 0.05, "http_500": 0.05, "http_503_html": 0.04,
                 "reset": 0.04}  # fmt: skip
STREAM_MIX = {"http_502": 0.1, "stream_error": 0.1, "truncate": 0.1}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_tickets(tmp_path / "tickets.jsonl", 120)


@pytest.fixture
def faulty_sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(seed=3, faults=TRANSIENT_MIX)) as sim:
        yield sim


def run_args(sim: SimulatorServer, dataset: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run", str(dataset), "--deployment", "support-reply", "--variant", "baseline",
        "--variant", "candidate", "--expected-column", "expected", "--concurrency", "8",
        "--base-url", sim.base_url, "--out", str(out), *extra,
    ]  # fmt: skip


def assert_retries_match_faults(results: pl.DataFrame, sim: SimulatorServer) -> int:
    """Every row ok; a row whose first attempt was faulted shows the extra attempt."""
    stats = sim.stats
    assert (results["status"] == "ok").all()
    faulted = 0
    for row in results.iter_rows(named=True):
        key = next(
            k for k in stats.requests_per_key
            if (k.row, k.variant, k.repeat) == (row["row_id"], row["variant"], str(row["repeat"]))
        )  # fmt: skip
        assert row["attempts"] == stats.requests_per_key[key]
        faulted += row["attempts"] > 1
    return faulted


def test_transient_faults_on_30_percent_all_end_ok(
    faulty_sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    result = cli(*run_args(faulty_sim, dataset, tmp_path / "out"))
    assert result.exit_code == 0, result.output
    results = read_results(tmp_path / "out")
    assert results.height == 240
    faulted = assert_retries_match_faults(results, faulty_sim)
    assert 0.2 * 240 < faulted < 0.4 * 240
    assert sum(faulty_sim.stats.faults.values()) == faulted
    manifest = read_manifest(tmp_path / "out")
    assert manifest["status"] == "complete"
    assert manifest["counts"] == {"ok": 240, "error": 0}


def test_streaming_faults_mid_stream_are_retried(dataset: Path, tmp_path: Path) -> None:
    with SimulatorServer(SimulatorConfig(seed=5, faults=STREAM_MIX, latency_ms=2)) as sim:
        result = cli(*run_args(sim, dataset, tmp_path / "out", "--stream"))
        assert result.exit_code == 0, result.output
        results = read_results(tmp_path / "out")
        faulted = assert_retries_match_faults(results, sim)
    assert faulted > 0.15 * 240
    assert results["ttft_ms"].null_count() == 0
    assert (results["ttft_ms"] <= results["latency_ms"]).all()
    assert results["reasoning"].null_count() == 0
    baseline = results.filter(pl.col("variant") == "baseline")
    assert (baseline["output"] == baseline["expected"]).all()


def test_permanent_errors_are_recorded_as_rows(dataset: Path, tmp_path: Path) -> None:
    """422s are rows, never retried; about 10 % of them is over the default 5 % error
    budget, so the run completes with exit 4 (a 404 would stop it: see test_fail_fast)."""
    config = SimulatorConfig(seed=1, permanent={"http_422": 0.1})
    with SimulatorServer(config) as sim:
        result = cli(*run_args(sim, dataset, tmp_path / "out"))
    assert result.exit_code == 4, result.output
    results = read_results(tmp_path / "out")
    errors = results.filter(pl.col("status") == "error")
    assert 0 < errors.height < 60
    assert set(errors["error_type"]) == {"http_422"}
    assert set(errors["attempts"]) == {1}
    manifest = read_manifest(tmp_path / "out")
    assert manifest["status"] == "complete"
    assert manifest["counts"]["error"] == errors.height


def test_auth_failure_aborts_with_exit_3(dataset: Path, tmp_path: Path) -> None:
    with SimulatorServer(SimulatorConfig(api_key="fhk_right")) as sim:
        result = cli(*run_args(sim, dataset, tmp_path / "out"),
                      env={"FETCH_HIVE_API_KEY": "fhk_wrong"})  # fmt: skip
        sent = sim.stats.requests
    assert result.exit_code == 3
    assert "FETCH_HIVE_API_KEY" in result.output
    assert sent <= 8 * 2
    assert read_manifest(tmp_path / "out")["status"] == "aborted"


def test_daily_cap_aborts_with_exit_3(dataset: Path, tmp_path: Path) -> None:
    with SimulatorServer(SimulatorConfig(daily_limit=50)) as sim:
        result = cli(*run_args(sim, dataset, tmp_path / "out"))
        sent = sim.stats.requests
    assert result.exit_code == 3
    assert "daily" in result.output
    assert sent <= 50 + 16


def test_resume_after_abort_sends_only_what_is_missing(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with SimulatorServer(SimulatorConfig(daily_limit=150)) as sim:
        assert cli(*run_args(sim, dataset, out)).exit_code == 3
        first = read_results(out).height
        sim.reset_stats()  # the cap resets at midnight
        result = cli(*run_args(sim, dataset, out, "--resume"))
        assert result.exit_code == 0, result.output
        assert sim.stats.requests == 240 - first
    results = read_results(out)
    assert results.height == 240
    assert results.select("row_id", "variant", "repeat").is_unique().all()


def test_retry_errors_resends_only_errors(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    flaky = SimulatorConfig(seed=2, faults={"http_502": 0.3}, max_faults_per_key=99)
    with SimulatorServer(flaky) as sim:
        first = cli(*run_args(sim, dataset, out, "--max-attempts", "1"))
        assert first.exit_code == 4, first.output  # 30 % error rows: over the budget
    errors = read_results(out).filter(pl.col("status") == "error").height
    assert errors > 20
    with SimulatorServer(SimulatorConfig()) as sim:
        plain = cli(
            *run_args(sim, dataset, out, "--max-attempts", "1", "--resume", "--max-error-rate", "1")
        )
        assert plain.exit_code == 0
        assert sim.stats.requests == 0  # errors are final outcomes unless asked
        result = cli(*run_args(sim, dataset, out, "--resume", "--retry-errors"))
        assert result.exit_code == 0, result.output
        assert sim.stats.requests == errors
    results = read_results(out)
    assert results.height == 240
    assert (results["status"] == "ok").all()
