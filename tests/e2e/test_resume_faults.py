"""A resume survives what crashes leave in OUT, and the files of a run are a team's to read.

The runner runs through the CLI against the simulator on 127.0.0.1; the damage is written into
the journal by hand, as a power loss or a bad disk would leave it.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path

import pytest

from runner.simulator import SimulatorConfig, SimulatorServer
from runner.store._results import read_manifest, read_results
from tests import support
from tests.support import SmallDisk, write_rows

ROWS = 40


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(latency_ms=1)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_rows(tmp_path / "rows.csv", ROWS)


def cli(*args: str) -> tuple[int, str]:
    result = support.cli(*args)
    return result.exit_code, result.output


def run(sim: SimulatorServer, dataset: Path, out: Path, *extra: str) -> tuple[int, str]:
    return cli(
        "run", str(dataset), "-d", "support-reply", "-v", "a", "-v", "b",
        "--base-url", sim.base_url, "--out", str(out), *extra,
    )  # fmt: skip


def key(line: bytes) -> tuple[str, str]:
    record = json.loads(line)
    return record["row_id"], record["variant"]


DAMAGE = {
    "a torn tail": lambda good: [*good[:-1], good[-1][: len(good[-1]) // 2]],
    "a garbage line in the middle": lambda good: [*good[:10], b"\x00\xff garbage\n", *good[11:]],
    "a line cut short in the middle": lambda good: [
        *good[:10],
        good[10][: len(good[10]) // 3] + b"\n",
        *good[11:],
    ],
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_journal_resumes_to_one_result_per_key_resending_only_the_damaged(
    sim: SimulatorServer, dataset: Path, tmp_path: Path, damage: str
) -> None:
    out = tmp_path / "out"
    code, output = run(sim, dataset, out)
    assert code == 0, output
    journal = out / "journal.jsonl"
    good = journal.read_bytes().splitlines(keepends=True)
    damaged = DAMAGE[damage](good)
    lost = {key(line) for line in good} - {
        key(line)
        for line in damaged
        if line.endswith(b"\n") and line.startswith(b"{") and _parses(line)
    }
    assert len(lost) == 1
    journal.write_bytes(b"".join(damaged))
    state = json.loads((out / "manifest.json").read_text())  # as an interrupted send leaves it
    state.update(status="interrupted", stage="send", stages={"send": "interrupted"})
    (out / "manifest.json").write_text(json.dumps(state))

    sim.reset_stats()
    code, output = run(sim, dataset, out, "--resume")
    assert code == 0, output
    assert sim.stats.requests == len(lost)  # only the damaged call is sent again
    sent = {(k.row, k.variant) for k in sim.stats.requests_per_key}
    assert sent == lost
    results = read_results(out)
    assert results.height == 2 * ROWS
    assert results.select("row_id", "variant", "repeat").is_unique().all()
    assert read_manifest(out)["status"] == "complete"
    if damage != "a torn tail":
        assert "line 11" in output and "journal.rejected.jsonl" in output
        assert (out / "journal.rejected.jsonl").exists()


def _parses(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def test_a_resume_that_is_refused_leaves_a_complete_manifest_untouched(
    sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run(sim, dataset, out)[0] == 0
    before = (out / "manifest.json").read_bytes()
    code, output = cli(
        "run", str(dataset), "-d", "support-reply", "-v", "a", "-v", "c",
        "--base-url", sim.base_url, "--out", str(out), "--resume",
    )  # fmt: skip
    assert code == 2, output
    assert "variants" in output
    assert (out / "manifest.json").read_bytes() == before


def test_stale_temp_files_are_removed_by_a_resume(
    sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run(sim, dataset, out)[0] == 0
    (out / ".results.parquet.k3j2.tmp").write_bytes(b"half a file")
    (out / ".compact-x1y2").mkdir()
    (out / "notes.tmp").write_text("mine")
    assert run(sim, dataset, out, "--resume")[0] == 0
    assert not (out / ".results.parquet.k3j2.tmp").exists()
    assert not (out / ".compact-x1y2").exists()
    assert (out / "notes.tmp").read_text() == "mine"


def test_every_file_of_a_run_honours_the_umask(
    sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    old = os.umask(0o022)
    try:
        assert run(sim, dataset, tmp_path / "out")[0] == 0
    finally:
        os.umask(old)
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "out").iterdir() if p.is_file()
    }
    assert {"journal.jsonl", "results.parquet", "manifest.json", "report.html"} <= modes.keys()
    assert set(modes.values()) == {0o644}, modes


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_while_writing_reports_keeps_the_run_complete_and_report_finishes_later(
    small_disk: SmallDisk, sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    disk = small_disk("8m")
    out = disk / "out"
    code, output = run(sim, dataset, out, "--no-report")
    assert code == 0, output
    ballast = disk / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)  # fill the disk to the last byte
    try:
        for size in (1 << 16, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    sim.reset_stats()
    code, output = cli("report", str(out))
    assert code == 5, output
    assert "No space left on device" in output and "Traceback" not in output
    assert f"cannot write {out}" in output  # names the report it could not write
    assert read_manifest(out)["status"] == "complete"
    ballast.unlink()
    code, output = cli("report", str(out))
    assert code == 0, output
    assert (out / "report.html").exists()
    assert sim.stats.requests == 0


def test_when_the_reports_of_a_run_fail_it_says_the_run_is_complete_and_how_to_finish(
    sim: SimulatorServer, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's own message on a failed report: exit 5, the cause, `runner report OUT`."""
    import runner.report as report_module  # the door the report stage takes it from
    from runner.errors import StorageError

    def full_disk(out_dir: Path, *args: object, **kwargs: object) -> None:
        raise StorageError(f"cannot write {out_dir}/report.html: No space left on device")

    monkeypatch.setattr(report_module, "build_reports", full_disk)
    out = tmp_path / "out"
    code, output = run(sim, dataset, out)
    assert code == 5, output
    assert "report.html: No space left on device" in output
    assert "The run itself is complete" in output and f"runner report {out}" in output
    state = read_manifest(out)  # every call sent; the report stage failed and is resumable
    assert (state["stage"], state["stages"]["send"], state["stages"]["report"]) == (
        "report",
        "done",
        "failed",
    )
