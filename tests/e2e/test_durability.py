"""Crash safety and secrets, with the runner as a real process: SIGKILL, SIGINT, canary key."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from runner.simulator import SimulatorConfig, SimulatorServer
from runner.store._results import JOURNAL, read_manifest, read_results
from tests.support import StartRunner, write_rows

CANARY = "fhk_CANARY_7f3a9c_do_not_leak"
ROWS = 300
CONCURRENCY = 8


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_rows(tmp_path / "rows.parquet", ROWS, column="ticket", text="refund please")


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(latency_ms=15, api_key=CANARY)


def run_args(sim: SimulatorServer, dataset: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run", str(dataset), "-d", "support-reply", "-v", "baseline", "-v", "candidate",
        "--concurrency", str(CONCURRENCY), "--base-url", sim.base_url, "--out", str(out),
        "--grace-period", "5", *extra,
    ]  # fmt: skip


def wait_for_lines(journal: Path, at_least: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_bytes().count(b"\n") >= at_least:
            return
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.01)
    raise AssertionError(f"{journal} never reached {at_least} lines")


def finish(proc: subprocess.Popen[bytes]) -> int:
    return proc.wait(timeout=120)


def interrupt(
    start: StartRunner, sim: SimulatorServer, dataset: Path, out: Path, sig: int, after: int
) -> int:
    """Start a run into ``out``, send it ``sig`` once its journal holds ``after`` lines, and
    return its exit code (its stderr is in the test's ``tmp_path/first.err``)."""
    proc = start(run_args(sim, dataset, out), name="first", key=CANARY)
    wait_for_lines(out / JOURNAL, after, proc)
    proc.send_signal(sig)
    return finish(proc)


def resumed_whole(out: Path) -> pl.DataFrame:
    """The results of a run resumed to the end: every call once, the manifest complete."""
    results = read_results(out)
    assert results.height == ROWS * 2
    assert results.select("row_id", "variant", "repeat").is_unique().all()
    assert read_manifest(out)["status"] == "complete"
    return results


def test_sigkill_then_resume_loses_nothing_and_repeats_only_in_flight(
    runner_process: StartRunner, sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert interrupt(runner_process, sim, dataset, out, signal.SIGKILL, 150) == -signal.SIGKILL
    committed = (out / JOURNAL).read_bytes().count(b"\n")
    assert read_manifest(out)["status"] == "running"  # it never got to say anything else

    resumed = runner_process(run_args(sim, dataset, out, "--resume"), name="resume", key=CANARY)
    assert finish(resumed) == 0, (tmp_path / "resume.err").read_text()

    results = resumed_whole(out)
    assert (results["status"] == "ok").all()
    per_key = sim.stats.requests_per_key
    sent_twice = sum(1 for n in per_key.values() if n > 1)
    assert sent_twice <= CONCURRENCY  # only what was in flight at the kill
    assert sum(per_key.values()) - ROWS * 2 == sent_twice
    assert committed >= 150


def test_sigint_commits_marks_interrupted_and_resume_completes(
    runner_process: StartRunner, sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert interrupt(runner_process, sim, dataset, out, signal.SIGINT, 100) == 130
    err = (tmp_path / "first.err").read_text()
    manifest = read_manifest(out)
    assert manifest["status"] == "interrupted"
    done = read_results(out).height
    assert 100 <= done < ROWS * 2
    assert "--resume" in err
    resume_line = next(line for line in err.splitlines() if "Resume with:" in line)
    command = resume_line.split("Resume with:", 1)[1].strip().split()
    assert command[0] == "runner" and command[-1] == "--resume"

    resumed = runner_process(command[1:], name="resume", key=CANARY)
    assert finish(resumed) == 0, (tmp_path / "resume.err").read_text()
    resumed_whole(out)
    assert sum(1 for n in sim.stats.requests_per_key.values() if n > 1) == 0  # drained cleanly


def test_sigterm_is_handled_like_ctrl_c(
    runner_process: StartRunner, sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert interrupt(runner_process, sim, dataset, out, signal.SIGTERM, 50) == 130
    assert read_manifest(out)["status"] == "interrupted"


def all_text(*paths: Path) -> Iterator[tuple[Path, bytes]]:
    for root in paths:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            yield path, path.read_bytes()


def test_the_api_key_never_leaks(
    runner_process: StartRunner, dataset: Path, tmp_path: Path
) -> None:
    """Through faults, permanent errors, an abort and a resume, the key is nowhere written."""
    out = tmp_path / "out"
    faults = SimulatorConfig(
        api_key=CANARY, faults={"http_502": 0.2, "reset": 0.05, "http_503_html": 0.05},
        permanent={"http_422": 0.05}, daily_limit=400,
    )  # fmt: skip
    with SimulatorServer(faults) as server:
        first = runner_process(run_args(server, dataset, out), name="first", key=CANARY)
        assert finish(first) == 3  # the daily cap
        second = runner_process(
            run_args(server, dataset, out, "--resume"), name="second", key=CANARY
        )
        assert finish(second) == 3
    with SimulatorServer(SimulatorConfig(api_key="fhk_other")) as server:
        refused = runner_process(
            run_args(server, dataset, out, "--resume"), name="refused", key=CANARY
        )
        assert finish(refused) == 3  # 401
    assert read_results(out).height > 0
    leaks = [str(p) for p, data in all_text(out, *tmp_path.glob("*.out"), *tmp_path.glob("*.err"))
             if CANARY.encode() in data]  # fmt: skip
    assert leaks == []
    assert b"Invalid access" in (tmp_path / "refused.err").read_bytes()
