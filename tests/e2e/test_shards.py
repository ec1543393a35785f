"""Shards: a deterministic split, each shard resuming on its own, and a merge that refuses a set
of shards that is incomplete or inconsistent, saying which shard and how many results."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runner.config import RunConfig
from runner.errors import ResultsDirError, RunAborted
from runner.run._job import run_job
from runner.scale._merge import merge_shards
from runner.simulator import SimulatorConfig, SimulatorServer
from runner.store._results import MANIFEST, RESULTS, read_manifest, read_results
from runner.store._rundir import RunDir
from tests.shards_helpers import assert_same_run, journal_lines, run_args, wait_for
from tests.support import cli, write_tickets

#: Permanent 422s on a few keys, so statuses and error types are compared too.
SIM = SimulatorConfig(seed=1, permanent={"http_422": 0.05})


def shard_dir(out: Path, index: int, count: int = 3) -> Path:
    return out / "shards" / f"shard-{index:03d}-of-{count:03d}"


# -------------------------------------------------------------- three processes, one killed


Processes = list["subprocess.Popen[bytes]"]


@pytest.fixture
def processes() -> Iterator[Processes]:
    """The shard processes a test starts; any still running when it ends are killed."""
    started: Processes = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def start_shard(
    processes: Processes, base_url: str, dataset: Path, out: Path, index: int
) -> subprocess.Popen[bytes]:
    """One pod's command, the same for its first run and its restarts (``--resume``)."""
    args = run_args(base_url, dataset, out, "--shard", f"{index}/3", "-c", "4", "--resume")
    env = {**os.environ, "FETCH_HIVE_API_KEY": "", "FETCH_HIVE_BASE_URL": ""}
    with open(out.parent / f"shard-{index}.log", "ab") as log:  # the child keeps its own copy
        command = [sys.executable, "-m", "runner", *args]
        process = subprocess.Popen(command, stdout=log, stderr=log, env=env, cwd=out.parent)
    processes.append(process)
    return process


@pytest.mark.slow
def test_three_shard_processes_one_killed_and_resumed_merge_into_the_single_run(
    tmp_path: Path, processes: Processes
) -> None:
    dataset = write_tickets(tmp_path / "tickets.jsonl", 480)
    out, single = tmp_path / "sharded", tmp_path / "single"
    out.mkdir()
    with SimulatorServer(replace(SIM, latency_ms=20)) as sim:
        shards = [start_shard(processes, sim.base_url, dataset, out, i) for i in range(3)]
        wait_for(lambda: journal_lines(shard_dir(out, 1)) >= 20, 60, "shard 1's first outcomes")
        shards[1].send_signal(signal.SIGKILL)
        assert shards[1].wait(timeout=10) == -signal.SIGKILL
        assert [shards[i].wait(timeout=90) for i in (0, 2)] == [0, 0], _logs(tmp_path)
        killed = read_manifest(shard_dir(out, 1))
        assert killed["status"] == "running"  # killed mid-way: no end-of-run bookkeeping
        assert not (shard_dir(out, 1) / RESULTS).exists()

        resumed = start_shard(processes, sim.base_url, dataset, out, 1)
        assert resumed.wait(timeout=90) == 0, _logs(tmp_path)
        assert read_manifest(shard_dir(out, 1))["status"] == "complete"
        # Each call was sent once, but those in flight at the kill (at most its concurrency).
        assert 960 <= sim.stats.requests <= 960 + 4

        merged = cli("merge", str(out))
        assert merged.exit_code == 0, merged.output
        assert cli(*run_args(sim.base_url, dataset, single, "-c", "12")).exit_code == 0
    assert_same_run(out, single)
    assert (out / "report.html").exists()


def _logs(tmp_path: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-2000:] for p in tmp_path.glob("shard-*.log"))


# -------------------------------------------------------------------- in-process shards


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_tickets(tmp_path / "tickets.jsonl", 60)


def shard_config(dataset: Path, out: Path, base_url: str, **overrides: Any) -> RunConfig:
    values: dict[str, Any] = {
        "dataset": (str(dataset),),
        "out_dir": out,
        "deployment": "support-reply",
        "variants": ("baseline", "candidate"),
        "expected_column": "expected",
        "base_url": base_url,
        "concurrency": 8,
    }
    return RunConfig(**{**values, **overrides})


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SIM


@pytest.fixture
def shards(dataset: Path, tmp_path: Path, sim: SimulatorServer) -> Path:
    """A complete three-way split of 60 rows × 2 variants in ``tmp_path/out``."""
    out = tmp_path / "out"
    for index in range(3):
        config = shard_config(dataset, out, sim.base_url, shard=(index, 3))
        run_job(config, api_key=None, handle_signals=False)
    return out


def assert_nothing_merged(out: Path) -> None:
    assert not (out / RESULTS).exists()
    assert not (out / MANIFEST).exists()


def test_a_shard_writes_its_own_directory(dataset: Path, tmp_path: Path) -> None:
    """``--shard 1/3 --out OUT`` is ``OUT/shards/shard-001-of-003``, and says so."""
    config = shard_config(dataset, tmp_path / "out", "http://127.0.0.1:9/v1", shard=(1, 3))
    assert RunDir.of(config).root == tmp_path / "out" / "shards" / "shard-001-of-003"


def test_a_shards_resume_starts_it_when_it_has_not_started(
    dataset: Path, tmp_path: Path, sim: SimulatorServer
) -> None:
    config = shard_config(dataset, tmp_path / "out", sim.base_url, shard=(0, 2), resume=True)
    assert run_job(config, api_key=None, handle_signals=False).status == "complete"
    unsharded = shard_config(dataset, tmp_path / "other", sim.base_url, resume=True)
    with pytest.raises(ResultsDirError, match="nothing to resume"):
        run_job(unsharded, api_key=None, handle_signals=False)


def test_shards_split_the_rows_and_agree_on_one_run(shards: Path) -> None:
    manifests = [read_manifest(shard_dir(shards, i)) for i in range(3)]
    assert len({m["run_id"] for m in manifests}) == 1
    assert [m["shard"] for m in manifests] == [{"index": i, "count": 3} for i in range(3)]
    rows = [set(read_results(shard_dir(shards, i))["row_id"]) for i in range(3)]
    assert set().union(*rows) == {str(i) for i in range(60)}
    assert sum(len(r) for r in rows) == 60
    assert all(len(r) > 5 for r in rows)  # the hash spreads them


def test_merge_writes_one_run(shards: Path, dataset: Path, tmp_path: Path, sim: Any) -> None:
    report = merge_shards(shards)
    assert report.shards == 3
    assert report.planned == 120
    manifest = read_manifest(shards)
    assert [s["dir"] for s in manifest["shards"]] == [
        f"shards/shard-{i:03d}-of-003" for i in range(3)
    ]
    assert manifest["config"]["concurrency"] == 24  # three shards of 8 in flight
    single = tmp_path / "single"
    run_job(shard_config(dataset, single, sim.base_url), api_key=None, handle_signals=False)
    assert_same_run(shards, single)


def test_merge_refuses_a_missing_shard(shards: Path) -> None:
    lost = read_manifest(shard_dir(shards, 1))["planned"]
    shutil.rmtree(shard_dir(shards, 1))
    result = cli("merge", str(shards))
    assert result.exit_code == 1
    assert "shard(s) 1 of 3 missing" in result.output
    assert f"{lost} of the run's 120 calls are in no shard" in result.output
    assert_nothing_merged(shards)


def test_merge_refuses_a_key_in_two_shards(shards: Path, dataset: Path, sim: Any) -> None:
    """A journal line of shard 0 copied into shard 2 (then compacted by its resume)."""
    line = (shard_dir(shards, 0) / "journal.jsonl").read_text().splitlines()[0]
    with open(shard_dir(shards, 2) / "journal.jsonl", "a") as fh:
        fh.write(line + "\n")
    config = shard_config(dataset, shards, sim.base_url, shard=(2, 3), resume=True)
    run_job(config, api_key=None, handle_signals=False)
    key = json.loads(line)
    result = cli("merge", str(shards))
    assert result.exit_code == 1
    assert "shard 2 of 3" in result.output
    assert "1 result(s) duplicate keys of shard 0" in result.output
    assert f"row_id={key['row_id']!r} variant={key['variant']!r}" in result.output
    assert_nothing_merged(shards)


def test_merge_refuses_an_incomplete_shard(dataset: Path, tmp_path: Path) -> None:
    """Shard 1 stopped by the daily cap after 10 calls: it must be resumed first."""
    out = tmp_path / "out"
    for index in range(3):
        cap = 10 if index == 1 else None
        with SimulatorServer(SimulatorConfig(daily_limit=cap)) as server:
            config = shard_config(dataset, out, server.base_url, shard=(index, 3), concurrency=1)
            try:
                run_job(config, api_key=None, handle_signals=False)
            except RunAborted:
                assert index == 1
    result = cli("merge", str(out))
    assert result.exit_code == 1
    assert "shard 1 of 3" in result.output
    assert "is aborted: 10 calls done so far" in result.output
    assert "--shard 1/3 --resume" in result.output
    assert_nothing_merged(out)


def test_merge_refuses_shards_of_different_runs(shards: Path, dataset: Path, sim: Any) -> None:
    shutil.rmtree(shard_dir(shards, 2))
    other = shard_config(dataset, shards, sim.base_url, shard=(2, 3), tags={"team": "other"})
    run_job(other, api_key=None, handle_signals=False)
    result = cli("merge", str(shards))
    assert result.exit_code == 1
    assert "shard 2 of 3" in result.output
    assert "ran with another configuration: tags: {} → {'team': 'other'}" in result.output
    assert_nothing_merged(shards)


def test_a_merged_run_cannot_be_resumed_as_one(shards: Path, dataset: Path, sim: Any) -> None:
    """Its results came from the shards' journals; resuming means resuming a shard."""
    merge_shards(shards)
    result = cli(*run_args(sim.base_url, dataset, shards, "--resume"))
    assert result.exit_code == 2
    assert "merged by `runner merge`" in result.output
