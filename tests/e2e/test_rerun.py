"""``runner rerun`` of a run that did not finish (found by QA): a run stopped while sending keeps
its ``experiment.toml`` (judge, gates), so its rerun judges and gates; a rerun works from any
working directory; and a rerun only reads the run it repeats, never writes into it (another
runner may hold it, still sending).

The runner is a real process stopped with a real SIGINT, at a state the test waits for (the
simulator holds the first calls unanswered), not after a delay."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.experiment import load_experiment
from runner.simulator import SimulatorConfig, SimulatorServer, VariantProfile
from runner.store._results import read_manifest, scan_scored
from runner.store._rundir import RunDir
from tests.support import StartRunner, cli, write_topic_tickets

ROWS = 20
CONCURRENCY = 2
JUDGED = ["--judge", "gm:v1", "--judge-scale", "0-10", "--max-score-drop", "1"]


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """The candidate answers 30 % of the rows wrong and judge ``gm`` grades it accordingly:
    the judge's score drops by well over a point, so ``--max-score-drop 1`` fails (exit 1)."""
    return SimulatorConfig(
        seed=3,
        variants={"candidate": VariantProfile(wrong_rate=0.3)},
        judges={"gm": VariantProfile(judge="grader")},
    )


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The folder a run is started from, holding its dataset (given by a relative path)."""
    folder = tmp_path / "work"
    folder.mkdir()
    write_topic_tickets(folder / "t40.csv", ROWS)
    return folder


def run_args(base_url: str, out: str, *extra: str) -> list[str]:
    return [
        "run", "t40.csv", "-d", "support-reply", "-v", "baseline", "-v", "candidate",
        "--expected-column", "expected", "--base-url", base_url,
        "-c", str(CONCURRENCY), "--out", out, *extra,
    ]  # fmt: skip


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.005)


def start_held(
    runner_process: StartRunner, sim: SimulatorServer, args: list[str], cwd: Path, name: str
) -> subprocess.Popen[bytes]:
    """Start ``runner ARGS`` in ``cwd`` with the simulator holding every call: it returns once
    the run holds its OUT and has its calls in flight, none answered."""
    sim.hang(True)
    before = sim.stats.in_flight
    proc = runner_process(args, name=name, cwd=cwd)
    wait_until(lambda: sim.stats.in_flight >= before + CONCURRENCY, proc, "calls in flight")
    return proc


def stop_while_sending(
    runner_process: StartRunner, sim: SimulatorServer, cwd: Path, tmp_path: Path, out: str
) -> Path:
    """A judged and gated run, Ctrl-C'd while it sends: the calls in flight finish in the
    grace period, the rest is never sent (exit 130)."""
    proc = start_held(runner_process, sim, run_args(sim.base_url, out, *JUDGED), cwd, "first")
    proc.send_signal(signal.SIGINT)
    err = tmp_path / "first.err"
    wait_until(lambda: b"stopping" in err.read_bytes(), proc, "the run stopping")
    sim.hang(False)  # the calls in flight are answered in the grace period
    assert proc.wait(timeout=60) == 130, err.read_text()
    manifest = read_manifest(cwd / out)
    assert (manifest["status"], manifest["stage"]) == ("interrupted", "send"), manifest
    assert manifest["counts"]["ok"] < 2 * ROWS  # stopped while sending, indeed
    sim.reset_stats()
    return cwd / out


def judge_calls(sim: SimulatorServer) -> int:
    return sum(1 for r in sim.stats.received if r.body and r.body.get("deployment") == "gm")


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: what a rerun must leave as it was."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_judged_and_gated(out: Path) -> None:
    """``out`` ran the judge on every answer and applied the gate, which failed."""
    assert read_manifest(out)["counts"] == {"ok": 2 * ROWS, "error": 0}
    assert scan_scored(out).collect()["judge_error"].null_count() == 2 * ROWS
    assert read_manifest(out)["gate"]["verdict"] == "fail"
    assert "--max-score-drop" in (out / "gate.md").read_text()


def test_a_run_stopped_while_sending_keeps_its_experiment_and_its_rerun_judges_and_gates(
    runner_process: StartRunner, sim: SimulatorServer, work: Path, tmp_path: Path
) -> None:
    first = stop_while_sending(runner_process, sim, work, tmp_path, "rr1")
    kept = load_experiment(RunDir(first).experiment).params
    assert kept["judge"] == "gm:v1" and kept["judge_scale"] == "0-10"
    assert kept["max_score_drop"] == 1.0
    assert kept["dataset"] == (str(work / "t40.csv"),)  # absolute
    before = files_of(first)
    again = cli("rerun", first, "--out", work / "rr3")
    assert again.exit_code == 1, again.output  # the gate failed, as it says
    assert "no scorer, judge or gate options" not in again.output
    assert "older run" not in again.output
    assert judge_calls(sim) == 2 * ROWS
    assert_judged_and_gated(work / "rr3")
    assert files_of(first) == before


def test_rerun_of_a_stopped_run_works_from_another_working_directory(
    runner_process: StartRunner,
    sim: SimulatorServer,
    work: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = stop_while_sending(runner_process, sim, work, tmp_path, "rr1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    again = cli("rerun", "../work/rr1", "--out", "../work/rr3")
    assert again.exit_code == 1, again.output  # ran, judged, and the gate failed
    assert_judged_and_gated(work / "rr3")
    resume = RunDir(work / "rr3").read_manifest().resume_command or ""
    assert "--config ../work/rr3/experiment.toml" in resume  # its own experiment file
    assert str(RunDir(first).experiment) not in resume


def test_rerun_of_a_run_without_experiment_file_reads_it_only_and_works_from_anywhere(
    runner_process: StartRunner,
    sim: SimulatorServer,
    work: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run from before the runner kept ``experiment.toml``, its dataset given by a relative
    path, rerun from another directory while another process holds its lock."""
    monkeypatch.chdir(work)
    older = work / "older"
    assert cli(*run_args(sim.base_url, "older")).exit_code == 0
    RunDir(older).experiment.unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sim.reset_stats()
    # The lock is held by a process that is not the rerun's (this one; the rerun is a child).
    with RunDir(older).locked():
        before = files_of(older)
        again = runner_process(
            ["rerun", "../work/older", "--out", "../work/again"], name="again", cwd=elsewhere
        )
        code = again.wait(timeout=120)
        assert files_of(older) == before
    err = (tmp_path / "again.err").read_text()
    assert code == 0, err
    assert "has no experiment.toml" in err
    assert sim.stats.requests == 2 * ROWS
    manifest = RunDir(work / "again").read_manifest()
    assert manifest.counts == {"ok": 2 * ROWS, "error": 0}
    assert manifest.config["dataset"] == [str(work / "t40.csv")]  # absolute: the files it read
    kept = load_experiment(RunDir(work / "again").experiment).params
    assert kept["dataset"] == (str(work / "t40.csv"),)


def test_rerun_of_a_run_still_sending_reads_it_only_and_repeats_its_judge_and_gate(
    runner_process: StartRunner, sim: SimulatorServer, work: Path, tmp_path: Path
) -> None:
    """The run being repeated holds its OUT, sending (its calls held by the simulator): the
    rerun writes nothing there, and repeats the whole experiment, judge and gate."""
    first = start_held(
        runner_process, sim, run_args(sim.base_url, "rr1", *JUDGED), work, name="first"
    )
    before = files_of(work / "rr1")
    assert "experiment.toml" in before  # kept before the first call
    rerun = start_held(
        runner_process, sim, ["rerun", "rr1", "--out", "rr3"], work, name="rerun"
    )  # both runs now hold their calls in flight: the rerun has read rr1 and is sending
    assert files_of(work / "rr1") == before
    sim.hang(False)
    assert first.wait(timeout=120) == 1, (tmp_path / "first.err").read_text()
    assert rerun.wait(timeout=120) == 1, (tmp_path / "rerun.err").read_text()
    assert "no scorer, judge or gate options" not in (tmp_path / "rerun.err").read_text()
    assert_judged_and_gated(work / "rr3")


def test_a_resume_keeps_the_experiment_file_consistent_with_what_it_runs(
    runner_process: StartRunner,
    sim: SimulatorServer,
    work: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused resume leaves the file as it was; a resume with another gate option writes
    it again, and a rerun then repeats what the resume ran."""
    first = stop_while_sending(runner_process, sim, work, tmp_path, "rr1")
    kept = RunDir(first).experiment.read_bytes()
    monkeypatch.chdir(work)
    refused = cli(*run_args(sim.base_url, "rr1", *JUDGED, "-v", "other", "--resume"))
    assert refused.exit_code == 2, refused.output
    assert RunDir(first).experiment.read_bytes() == kept
    looser = [*JUDGED[:-1], "5"]  # --max-score-drop 5: the drop of about 2.5 points passes
    resumed = cli(*run_args(sim.base_url, "rr1", *looser, "--resume"))
    assert resumed.exit_code == 0, resumed.output
    assert load_experiment(RunDir(first).experiment).params["max_score_drop"] == 5.0
    again = cli("rerun", "rr1", "--out", "rr3")
    assert again.exit_code == 0, again.output
    assert read_manifest(work / "rr3")["gate"]["verdict"] == "pass"
