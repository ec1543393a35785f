"""Shared fixtures: tiny datasets, the fake API (tests/fakes.py), run configs, the simulator,
the runner as a real process and a small real disk. Plain helpers live in tests/support.py.

Tests mirror the package tree (``tests/<package>/``); whole runs live in ``tests/e2e/`` and
carry the ``e2e`` marker, given here by folder, so ``./dev test -m "not e2e"`` is the fast loop.

A test file that needs a differently configured simulator overrides ``sim_config``; one that
needs several servers asks ``make_sim`` for each.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from runner.config import RunConfig
from runner.simulator import SimulatorConfig, SimulatorServer
from tests.fakes import FakeApi
from tests.simulator_helpers import Serve, simulators
from tests.support import MakeSim, SmallDisk, StartRunner

E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(E2E):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def fake_api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def tickets_csv(tmp_path: Path) -> Path:
    """Twenty rows: id, text, expected label, a metadata-able region."""
    path = tmp_path / "tickets.csv"
    pl.DataFrame(
        {
            "id": [f"t{i:03d}" for i in range(20)],
            "text": [f"ticket number {i}" for i in range(20)],
            "expected": ["billing" if i % 2 else "account" for i in range(20)],
            "region": ["eu" if i % 3 else "us" for i in range(20)],
        }
    ).write_csv(path)
    return path


@pytest.fixture
def make_config(tmp_path: Path, tickets_csv: Path) -> Callable[..., RunConfig]:
    """A config over ``tickets_csv`` writing to ``tmp_path/out``; keywords override."""

    def make(**overrides: Any) -> RunConfig:
        values: dict[str, Any] = {
            "dataset": (str(tickets_csv),),
            "out_dir": tmp_path / "out",
            "deployment": "support-reply",
            "variants": ("baseline", "candidate"),
            "expected_column": "expected",
            "base_url": "http://127.0.0.1:9/v1",
            "concurrency": 4,
            "backoff_initial": 0.0,
        }
        values.update(overrides)
        return RunConfig(**values)

    return make


@pytest.fixture
def importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], str]:
    """``importable(NAME, SOURCE)`` writes module NAME into ``tmp_path`` and puts that folder
    on ``sys.path`` for this test only; it returns NAME (e.g. for ``MODULE:function`` specs)."""

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(tmp_path))
        return name

    return write


@pytest.fixture
def serve(caplog: pytest.LogCaptureFixture) -> Iterator[Serve]:
    """Start simulators configured by keyword; stop them after the test, which must log no error."""
    with simulators(caplog) as start:
        yield start


@pytest.fixture
def make_sim() -> Iterator[MakeSim]:
    """Start simulators configured by keyword (``SimulatorConfig`` fields); stopped after."""
    servers: list[SimulatorServer] = []

    def start(**fields: Any) -> SimulatorServer:
        server = SimulatorServer(SimulatorConfig(**fields)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """The ``sim`` fixture's configuration: override it in a file that needs another."""
    return SimulatorConfig()


@pytest.fixture
def sim(sim_config: SimulatorConfig) -> Iterator[SimulatorServer]:
    """A simulator on 127.0.0.1 configured by ``sim_config``."""
    with SimulatorServer(sim_config) as server:
        yield server


@pytest.fixture
def runner_process(tmp_path: Path) -> Iterator[StartRunner]:
    """Start ``python -m runner ARGS`` as a real process; any still running at the end is killed.

    Its output goes to ``tmp_path/NAME.out`` and ``NAME.err``. The environment is this one
    without ``FETCH_HIVE_BASE_URL``, and with ``FETCH_HIVE_API_KEY`` only if ``key`` is given.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(
        args: list[str], *, name: str = "runner", key: str | None = None, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FETCH_HIVE_")}
        if key is not None:
            env["FETCH_HIVE_API_KEY"] = key
        # The child keeps its own copies of the descriptors; ours are closed at once.
        with (
            open(tmp_path / f"{name}.out", "wb") as out,
            open(tmp_path / f"{name}.err", "wb") as err,
        ):
            process = subprocess.Popen(
                [sys.executable, "-m", "runner", *args], env=env, stdout=out, stderr=err, cwd=cwd
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """Mount a real tmpfs of ``size`` (e.g. "1m", ``read_only=True`` for "ro") under
    ``tmp_path``; skips where mounting is not permitted, and unmounts after the test."""
    mounts: list[Path] = []

    def mount(size: str, *, read_only: bool = False) -> Path:
        disk = tmp_path / f"disk{len(mounts) or ''}"
        disk.mkdir()
        options = f"ro,size={size}" if read_only else f"size={size}"
        try:
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)], capture_output=True
            )
        except OSError as exc:
            pytest.skip(f"mount is not available here: {exc}")
        if done.returncode != 0:
            pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.decode().strip()}")
        mounts.append(disk)
        return disk

    yield mount
    busy = []
    for disk in mounts:
        if subprocess.run(["umount", str(disk)]).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=True)  # never leave a mount
            busy.append(disk)
    if busy:
        pytest.fail(f"{busy} still busy at the end: a file on it was left open")
