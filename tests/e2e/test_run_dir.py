"""The run directory: one writer at a time, checked up front, a typed manifest, named changes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from runner.errors import ResultsDirError
from runner.simulator import SimulatorConfig, SimulatorServer
from runner.store._manifest import Manifest, RunStatus
from runner.store._rundir import LOCK_NAME, RunDir
from tests import support
from tests.support import SmallDisk, StartRunner, write_rows

KEY = "fhk_rundir_test_key_1234"


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(latency_ms=20, api_key=KEY)


def args(sim: SimulatorServer, dataset: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run", str(dataset), "-d", "support-reply", "-v", "a",
        "--base-url", sim.base_url, "--out", str(out), "--concurrency", "4", *extra,
    ]  # fmt: skip


def cli(argv: list[str], key: str = KEY) -> tuple[int, str]:
    result = support.cli(*argv, env={"FETCH_HIVE_API_KEY": key})
    return result.exit_code, result.output


# ---------------------------------------------------------------------------- the lock


def test_a_second_holder_is_refused_naming_host_and_pid(tmp_path: Path) -> None:
    rundir = RunDir(tmp_path / "out")
    rundir.create()
    other = [sys.executable, "-c", "import sys; from runner.store._rundir import RunDir\n"
             "with RunDir(sys.argv[1]).locked(): pass", str(rundir.root)]  # fmt: skip
    with rundir.locked() as held:
        with rundir.locked() as again:  # the same process: the lock it holds (re-entrant)
            assert again is held
        refused = subprocess.run(other, capture_output=True, text=True, check=False)
        assert refused.returncode != 0 and "RunDirLocked" in refused.stderr
        assert f"pid {os.getpid()}" in refused.stderr
    free = subprocess.run(other, capture_output=True, text=True, check=False)
    assert free.returncode == 0, free.stderr  # released when the block ends


def test_the_lock_file_does_not_make_out_non_empty(tmp_path: Path) -> None:
    rundir = RunDir(tmp_path / "out")
    rundir.create()
    with rundir.locked():
        assert (rundir.root / LOCK_NAME).exists()
        assert rundir.is_empty()


def test_two_fresh_runs_on_one_empty_out_never_both_run(
    runner_process: StartRunner, sim: SimulatorServer, tmp_path: Path
) -> None:
    dataset = write_rows(tmp_path / "rows.csv", 30)
    for attempt in range(4):
        out = tmp_path / f"out{attempt}"
        out.mkdir()
        sim.reset_stats()
        procs = [
            runner_process(args(sim, dataset, out), name=f"p{attempt}{i}", key=KEY)
            for i in range(2)
        ]
        codes = sorted(p.wait(timeout=120) for p in procs)
        assert codes == [0, 2], codes
        lines = (out / "journal.jsonl").read_text().splitlines()
        run_ids = {json.loads(line)["run_id"] for line in lines}
        assert len(run_ids) == 1
        assert sim.stats.requests == 30  # every call paid once


def test_two_resumes_after_a_kill_never_send_a_call_twice(
    runner_process: StartRunner, sim: SimulatorServer, tmp_path: Path
) -> None:
    dataset = write_rows(tmp_path / "rows.csv", 400)
    out = tmp_path / "out"
    first = runner_process(args(sim, dataset, out), name="first", key=KEY)
    journal = out / "journal.jsonl"
    deadline = time.monotonic() + 60
    while not (journal.exists() and journal.read_bytes().count(b"\n") >= 80):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    committed = journal.read_bytes().count(b"\n")
    sim.reset_stats()
    resumes = [
        runner_process([*args(sim, dataset, out), "--resume"], name=f"r{i}", key=KEY)
        for i in range(2)
    ]
    codes = sorted(p.wait(timeout=120) for p in resumes)
    assert codes == [0, 2], codes
    refused = [p for p in (tmp_path / "r0.err", tmp_path / "r1.err") if b"in use" in p.read_bytes()]
    assert len(refused) == 1 and b"pid" in refused[0].read_bytes()
    assert sim.stats.requests == 400 - committed  # each remaining call once, none twice
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert len(manifest["sessions"]) == 2  # the killed one and the one that resumed


# ---------------------------------------------------------------- checked before sending


def test_a_parent_that_is_a_file_is_bad_input_with_nothing_sent(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    dataset = write_rows(tmp_path / "rows.csv", 5)
    (tmp_path / "file").write_text("not a directory")
    code, output = cli(args(sim, dataset, tmp_path / "file" / "out"))
    assert code == 2, output
    assert "cannot be created" in output and "Traceback" not in output
    assert sim.stats.requests == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only tmpfs needs root")
def test_a_read_only_out_is_bad_input_with_nothing_sent(
    small_disk: SmallDisk, sim: SimulatorServer, tmp_path: Path
) -> None:
    dataset = write_rows(tmp_path / "rows.csv", 5)
    mount = small_disk("64k", read_only=True)
    code, output = cli(args(sim, dataset, mount / "out"))
    assert code == 2, output
    assert "Read-only file system" in output
    assert sim.stats.requests == 0


def test_a_key_with_a_trailing_newline_works(sim: SimulatorServer, tmp_path: Path) -> None:
    dataset = write_rows(tmp_path / "rows.csv", 5)
    code, output = cli(args(sim, dataset, tmp_path / "out"), key=KEY + "\n")
    assert code == 0, output


def test_a_key_that_cannot_be_a_header_is_exit_2_and_never_echoed(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    dataset = write_rows(tmp_path / "rows.csv", 5)
    bad = "fhk_secret\nvalue"
    code, output = cli(args(sim, dataset, tmp_path / "out"), key=bad)
    assert code == 2, output
    assert "header" in output
    assert "fhk_secret" not in output
    assert sim.stats.requests == 0
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------- the manifest


def test_a_manifest_reads_back_typed(tmp_path: Path) -> None:
    rundir = RunDir(tmp_path)
    manifest = Manifest(run_id="r-1", status=RunStatus.INTERRUPTED, planned=4)
    manifest.fingerprint.files["a.csv"] = "abc"
    rundir.write_manifest(manifest)
    again = rundir.read_manifest()
    assert again == manifest
    assert again.status is RunStatus.INTERRUPTED


def test_a_broken_manifest_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"run_id": "r", "status": "weird"}))
    with pytest.raises(ResultsDirError, match="not a runner manifest"):
        RunDir(tmp_path).read_manifest()


def test_a_refused_resume_names_the_file_that_changed(sim: SimulatorServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        pl.DataFrame({"id": [f"{i}-{j}" for j in range(3)], "q": ["x"] * 3}).write_parquet(
            data / f"part-{i}.parquet"
        )
    out = tmp_path / "out"
    code, output = cli(args(sim, data, out))
    assert code == 0, output
    pl.DataFrame({"id": ["1-0", "1-1", "1-2"], "q": ["y"] * 3}).write_parquet(
        data / "part-1.parquet"
    )
    (data / "part-2.parquet").unlink()
    code, output = cli([*args(sim, data, out), "--resume"])
    assert code == 2, output
    assert "changed: " in output and "part-1.parquet" in output
    assert "missing: " in output and "part-2.parquet" in output


def test_reports_carry_the_manifests_dataset_fingerprint(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    """Provenance reads the typed manifest: the fingerprint a resume checks is the one the
    reports (and the regression check's "different datasets" warning) see."""
    import pyarrow.parquet as pq

    dataset = write_rows(tmp_path / "rows.csv", 5)
    out = tmp_path / "out"
    assert cli(args(sim, dataset, out))[0] == 0
    metadata = pq.read_schema(out / "summary.parquet").metadata or {}
    provenance = json.loads(metadata[b"runner.provenance"])
    manifest = RunDir(out).read_manifest()
    assert provenance["dataset_fingerprint"] == manifest.fingerprint.dataset is not None
    assert provenance["status"] == "complete"
