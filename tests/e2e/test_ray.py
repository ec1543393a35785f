"""``--executor ray`` on a local Ray instance: the same results as a local run."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.config import RunConfig
from runner.scale._ray import shard_configs
from runner.simulator import SimulatorConfig, SimulatorServer
from runner.store._results import read_manifest
from tests.shards_helpers import assert_same_run, run_args
from tests.support import cli, write_tickets


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """Two CPUs, like a small CI machine: four tasks of a quarter CPU must all fit at once."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


def test_without_ray_the_executor_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when not installed
    dataset = write_tickets(tmp_path / "tickets.jsonl", 4)
    args = run_args("http://127.0.0.1:9/v1", dataset, tmp_path / "out", "--executor", "ray")
    result = cli(*args)
    assert result.exit_code == 2
    assert "pip install 'runner[ray]'" in result.output


def test_each_task_gets_its_share_of_the_limits(tmp_path: Path) -> None:
    config = RunConfig(
        dataset=("t.jsonl",), out_dir=tmp_path, deployment="d", variants=("a",),
        concurrency=30, rps=20.0,
    )  # fmt: skip
    shards = shard_configs(config, 4)
    assert [c.shard for c in shards] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert {c.concurrency for c in shards} == {8}  # rounded up: never a task with nothing
    assert {c.rps for c in shards} == {5.0}
    assert all(Path(c.dataset[0]).is_absolute() for c in shards)  # workers have their own cwd


@pytest.mark.slow
def test_ray_run_equals_a_local_run(local_ray: Any, tmp_path: Path) -> None:
    dataset = write_tickets(tmp_path / "tickets.jsonl", 3000)
    on_ray, local = tmp_path / "ray", tmp_path / "local"
    config = SimulatorConfig(seed=1, latency_ms=5, permanent={"http_422": 0.05})
    with SimulatorServer(config) as sim:
        args = run_args(sim.base_url, dataset, on_ray, "-c", "32")
        result = cli(*args, "--executor", "ray", "--ray-tasks", "4")
        assert result.exit_code == 0, result.output
        ray_requests = sim.stats.requests
        assert cli(*run_args(sim.base_url, dataset, local, "-c", "32")).exit_code == 0
    assert ray_requests == 6000
    assert_same_run(on_ray, local)
    manifest = read_manifest(on_ray)
    assert [s["index"] for s in manifest["shards"]] == [0, 1, 2, 3]
    assert manifest["config"]["concurrency"] == 32  # four tasks of 8


@pytest.mark.slow
def test_ray_resume_finishes_only_what_is_missing(local_ray: Any, tmp_path: Path) -> None:
    """A run stopped by the daily cap is resumed shard by shard, then merged."""
    dataset = write_tickets(tmp_path / "tickets.jsonl", 200)
    out = tmp_path / "ray"
    args = [*run_args("", dataset, out, "-c", "8"), "--executor", "ray", "--ray-tasks", "2"]
    with SimulatorServer(SimulatorConfig(daily_limit=250)) as sim:
        args[args.index("--base-url") + 1] = sim.base_url
        first = cli(*args)
        assert first.exit_code == 3, first.output
        sim.reset_stats()  # the cap resets at midnight
        second = cli(*args, "--resume")
        assert second.exit_code == 0, second.output
        resent = sim.stats.requests
    manifest = read_manifest(out)
    assert manifest["counts"] == {"ok": 400, "error": 0}
    assert resent <= 400 - 250 + 8  # only what was missing, and what was in flight at the cap
