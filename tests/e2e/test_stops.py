"""How a run stops when it is told to or cannot go on: SIGHUP, a second Ctrl-C, Ctrl-C while
the dataset is checked, and a full disk. The runner is a real process; the disk a real tmpfs."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from runner.simulator import SimulatorConfig, SimulatorServer
from runner.store._results import read_manifest, read_results
from tests.support import SmallDisk, StartRunner, write_rows


def run_args(base_url: str, dataset: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run", str(dataset), "-d", "support-reply", "-v", "a", "--base-url", base_url,
        "--out", str(out), "--concurrency", "8", *extra,
    ]  # fmt: skip


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def wait_until(condition: object, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():  # type: ignore[operator]
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.005)


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(latency_ms=30)


def test_sighup_is_handled_like_sigterm(
    runner_process: StartRunner, sim: SimulatorServer, tmp_path: Path
) -> None:
    dataset, out = write_rows(tmp_path / "rows.csv", 400), tmp_path / "out"
    proc = runner_process(run_args(sim.base_url, dataset, out), name="run")
    wait_until(lambda: lines(out / "journal.jsonl") >= 40, proc, "40 outcomes")
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=60) == 130
    assert read_manifest(out)["status"] == "interrupted"
    assert "SIGHUP" in (tmp_path / "run.err").read_text()


def test_a_second_ctrl_c_quits_at_once_and_leaves_the_manifest_interrupted(
    runner_process: StartRunner,
    tmp_path: Path,
) -> None:
    with SimulatorServer(SimulatorConfig(latency_ms=3000)) as slow:
        dataset, out = write_rows(tmp_path / "rows.csv", 100), tmp_path / "out"
        proc = runner_process(
            run_args(slow.base_url, dataset, out, "--grace-period", "60"), name="run"
        )
        wait_until(lambda: slow.stats.in_flight >= 8, proc, "8 requests in flight")
        proc.send_signal(signal.SIGINT)
        wait_until(lambda: b"stopping" in (tmp_path / "run.err").read_bytes(), proc, "stopping")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130  # far less than the 60 s grace period
    assert read_manifest(out)["status"] == "interrupted"
    assert "quitting now" in (tmp_path / "run.err").read_text()


def test_ctrl_c_while_the_dataset_is_checked_exits_130_with_nothing_written(
    runner_process: StartRunner, sim: SimulatorServer, tmp_path: Path
) -> None:
    dataset = tmp_path / "big.csv"
    write_rows(dataset, 2_000_000)  # about a second to check: a wide window
    out = tmp_path / "out"
    proc = runner_process(run_args(sim.base_url, dataset, out), name="run")

    def reading() -> bool:
        fds = Path(f"/proc/{proc.pid}/fd")
        try:
            return any(os.readlink(fd) == str(dataset) for fd in fds.iterdir())
        except OSError:
            return False

    wait_until(reading, proc, "the dataset being read")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    err = (tmp_path / "run.err").read_text()
    assert "Traceback" not in err and "Aborted" not in err
    assert "interrupted" in err
    assert not out.exists()
    assert sim.stats.requests == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_stops_the_run_and_a_resume_after_freeing_space_completes(
    small_disk: SmallDisk, runner_process: StartRunner, sim: SimulatorServer, tmp_path: Path
) -> None:
    disk = small_disk("1m")
    dataset, out = (
        write_rows(tmp_path / "rows.csv", 3000, text="a question long enough " * 4),
        disk / "out",
    )
    first = runner_process(run_args(sim.base_url, dataset, out), name="first")
    assert first.wait(timeout=120) == 5
    err = (tmp_path / "first.err").read_text()
    assert "No space left on device" in err and "Traceback" not in err
    assert "Resume with:" in err
    manifest = read_manifest(out)
    assert manifest["status"] == "interrupted"
    assert "No space left on device" in manifest["reason"]
    committed = lines(out / "journal.jsonl")
    assert 0 < committed < 3000

    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
    sim.reset_stats()
    resumed = runner_process(run_args(sim.base_url, dataset, out, "--resume"), name="resume")
    assert resumed.wait(timeout=120) == 0, (tmp_path / "resume.err").read_text()
    assert sim.stats.requests == 3000 - committed  # nothing committed is sent again
    results = read_results(out)
    assert results.height == 3000 and set(results["status"]) == {"ok"}
    assert read_manifest(out)["status"] == "complete"


def test_a_signal_the_moment_the_session_starts_stops_it_gracefully(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    """SIGINT right after the manifest says running, before the first request (found lost
    once by QA: until the watcher's receiver was in place, asyncio's own SIGINT handler
    cancelled the task, with no commit): the stop is the graceful one, nothing is sent, the
    manifest says interrupted."""
    from runner.config import RunConfig
    from runner.errors import RunInterrupted
    from runner.run import run_job

    dataset = write_rows(tmp_path / "rows.csv", 50)
    out = tmp_path / "out"
    config = RunConfig(dataset=(str(dataset),), out_dir=out, deployment="support-reply",
                       variants=("a",), base_url=sim.base_url)  # fmt: skip
    with pytest.raises(RunInterrupted, match="0 outcomes are committed"):
        run_job(
            config, api_key=None, handle_signals=True,
            on_start=lambda: signal.raise_signal(signal.SIGINT),
        )  # fmt: skip
    assert sim.stats.requests == 0
    assert read_manifest(out)["status"] == "interrupted"
