"""A run never reports success when the work failed: fail fast, outages, error budget, caps.

Every test runs the CLI (or the library) against the simulator on 127.0.0.1 over real sockets.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.config import RunConfig
from runner.errors import RunAborted
from runner.run._job import run_job
from runner.simulator import SimulatorConfig, SimulatorServer
from runner.store._results import read_manifest, read_results
from tests import support
from tests.support import write_rows

ROWS = 120


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_rows(tmp_path / "rows.csv", ROWS, column="text")


def cli(*args: str) -> tuple[int, str]:
    result = support.cli(*args)
    return result.exit_code, result.output


def run_args(base_url: str, dataset: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run", str(dataset), "-d", "support-reply", "-v", "baseline", "-v", "candidate",
        "--base-url", base_url, "--out", str(out), "--concurrency", "8", *extra,
    ]  # fmt: skip


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def known_sim() -> Iterator[SimulatorServer]:
    """A simulator that knows one deployment (any variant of it): others answer 404."""
    config = SimulatorConfig(latency_ms=5, deployments={"support-reply": ()})
    with SimulatorServer(config) as server:
        yield server


def test_typod_deployment_stops_within_two_concurrency_with_the_servers_message(
    known_sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    args = run_args(known_sim.base_url, dataset, tmp_path / "out")
    args[args.index("support-reply")] = "uper"
    code, output = cli(*args)
    assert code == 3, output
    assert "HTTP 404" in output and "not found" in output  # the server's own words
    assert "--deployment" in output
    assert known_sim.stats.requests <= 2 * 8
    manifest = read_manifest(tmp_path / "out")
    assert manifest["status"] == "aborted"
    assert "404" in manifest["reason"]


def test_typod_variant_stops_though_the_other_variant_answers(
    dataset: Path, tmp_path: Path
) -> None:
    config = SimulatorConfig(latency_ms=2, deployments={"support-reply": ("baseline",)})
    with SimulatorServer(config) as sim:
        code, output = cli(*run_args(sim.base_url, dataset, tmp_path / "out"))
        assert code == 3, output
        assert "variant 'candidate'" in output
        assert sim.stats.requests < ROWS  # far from the 240 calls of the dataset


def test_refused_port_aborts_after_the_outage_budget(dataset: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    code, output = cli(*run_args(url, dataset, tmp_path / "out", "--max-outage", "1"))
    assert code == 3, output
    assert "cannot be reached" in output and "Resume with:" in output
    manifest = read_manifest(tmp_path / "out")
    assert manifest["status"] == "aborted"
    assert manifest["counts"] == {"ok": 0, "error": 0}  # no row was turned into an error


def test_hung_api_aborts_within_two_timeouts_and_the_outage_budget(
    dataset: Path, tmp_path: Path
) -> None:
    with SimulatorServer(SimulatorConfig(hang=True)) as sim:
        code, output = cli(
            *run_args(sim.base_url, dataset, tmp_path / "out", "--timeout", "0.5"),
            "--max-outage", "1",
        )  # fmt: skip
        assert code == 3, output
        assert "cannot be reached" in output
        # The first wave (8 in flight) and the probes; never the dataset's 240 calls.
        assert sim.stats.requests <= 8 + 4
    assert read_manifest(tmp_path / "out")["status"] == "aborted"


def test_a_short_outage_pauses_the_run_and_every_row_ends_ok(dataset: Path, tmp_path: Path) -> None:
    with SimulatorServer(SimulatorConfig(latency_ms=10)) as sim:
        config = RunConfig(
            dataset=(str(dataset),), out_dir=tmp_path / "out", deployment="support-reply",
            variants=("baseline", "candidate"), base_url=sim.base_url, concurrency=8,
            max_attempts=2, backoff_initial=0.05, max_outage=30,
        )  # fmt: skip
        journal = tmp_path / "out" / "journal.jsonl"
        outage_done = threading.Event()

        def outage() -> None:
            # Down once a quarter of the calls have landed, for long enough that many
            # attempts fail (more than --max-attempts 2 would allow), then back up.
            while not (journal.exists() and journal.read_bytes().count(b"\n") >= 60):
                threading.Event().wait(0.01)
            sim.go_down()
            threading.Event().wait(1.5)
            sim.come_back()
            outage_done.set()

        thread = threading.Thread(target=outage, daemon=True)
        thread.start()
        result = run_job(config, api_key=None)
        thread.join(timeout=30)
    assert outage_done.is_set()
    assert result.status == "complete"
    results = read_results(tmp_path / "out")
    assert results.height == 2 * ROWS
    assert results["status"].to_list() == ["ok"] * (2 * ROWS)
    # The outage was real: attempts were refused, yet no call used up its attempts.
    assert result.counters.attempts > 2 * ROWS


def test_thirty_percent_error_rows_exit_4_with_every_report_written(
    dataset: Path, tmp_path: Path
) -> None:
    config = SimulatorConfig(latency_ms=1, seed=3, permanent={"http_422": 0.3})
    with SimulatorServer(config) as sim:
        code, output = cli(*run_args(sim.base_url, dataset, tmp_path / "out"))
        assert code == 4, output
        assert "--max-error-rate" in output and "http_422" in output
        for name in ("results.parquet", "summary.parquet", "report.html"):
            assert (tmp_path / "out" / name).exists(), name
        assert read_manifest(tmp_path / "out")["status"] == "complete"

        code, output = cli(
            *run_args(sim.base_url, dataset, tmp_path / "again", "--max-error-rate", "1")
        )
        assert code == 0, output


def test_a_concurrency_cap_slows_the_run_but_fails_no_row(dataset: Path, tmp_path: Path) -> None:
    config = SimulatorConfig(latency_ms=20, max_in_flight=8)
    with SimulatorServer(config) as sim:
        args = run_args(sim.base_url, dataset, tmp_path / "out")
        args[args.index("--concurrency") + 1] = "32"
        code, output = cli(*args)
        assert code == 0, output
        assert sim.stats.throttled > 0  # the cap was hit
    results = read_results(tmp_path / "out")
    assert set(results["status"]) == {"ok"}
    assert results.height == 2 * ROWS


def test_library_abort_is_a_runner_error_with_the_reason(
    known_sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    config = RunConfig(
        dataset=(str(dataset),), out_dir=tmp_path / "out", deployment="nope",
        variants=("a",), base_url=known_sim.base_url, concurrency=4,
    )  # fmt: skip
    with pytest.raises(RunAborted, match="HTTP 404"):
        run_job(config, api_key=None)
