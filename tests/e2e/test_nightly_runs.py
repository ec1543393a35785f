"""Nightly sequences driven through ``runner run --config`` (issue 20): a baseline that exists,
a baseline that is good, and paths that travel."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import Result

from runner.simulator import SimulatorConfig, SimulatorServer, VariantProfile
from runner.store._rundir import RunDir
from tests.support import cli

ROWS = 16


@pytest.fixture
def job(tmp_path: Path) -> Path:
    """A job folder: its dataset and nightly.toml, paths relative to the file."""
    folder = tmp_path / "job"
    folder.mkdir()
    pl.DataFrame(
        {
            "id": [f"t{i:02d}" for i in range(ROWS)],
            "text": [f"my invoice {i} is wrong" for i in range(ROWS)],
            "expected": ["billing"] * ROWS,
        }
    ).write_csv(folder / "data.csv")
    (folder / "nightly.toml").write_text(
        'dataset = "data.csv"\ndeployment = "support-reply"\nvariants = ["support"]\n'
        'expected_column = "expected"\nscore = "exact"\ncompare_with = "nights"\n'
        "max_score_drop = 5\nconcurrency = 4\n"
    )
    return folder


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(seed=1)


def night(job: Path, url: str, name: str, *extra: str) -> Result:
    return cli("run", "--config", str(job / "nightly.toml"), "--base-url", url,
               "--out", str(job / "nights" / name), *extra)  # fmt: skip


def test_a_typo_in_compare_with_exits_2_before_anything_is_sent(
    job: Path, sim: SimulatorServer
) -> None:
    result = night(job, sim.base_url, "mon", "--compare-with", str(job / "nightyl"))
    assert result.exit_code == 2, result.output
    assert "nightyl" in result.output and sim.stats.requests == 0


def test_a_first_night_fails_without_allow_no_baseline_and_passes_with_it(
    job: Path, sim: SimulatorServer
) -> None:
    refused = night(job, sim.base_url, "mon")
    assert refused.exit_code == 1, refused.output
    assert "no baseline" in refused.output and "--allow-no-baseline" in refused.output
    assert RunDir(job / "nights" / "mon").read_manifest().gate["verdict"] == "fail"  # type: ignore[index]
    first = night(job, sim.base_url, "tue", "--allow-no-baseline")
    assert first.exit_code == 0, first.output
    md = (job / "nights" / "tue" / "regression.md").read_text()
    assert md.splitlines()[0].startswith("## No gate was applied: no baseline yet")
    # mon failed (no gate was applied): the next night compares with tue, never with mon
    second = night(job, sim.base_url, "wed")
    assert second.exit_code == 0, second.output
    assert f"baseline: {job / 'nights' / 'tue'}" in second.output


def test_a_pinned_run_directory_is_the_baseline(job: Path, sim: SimulatorServer) -> None:
    assert night(job, sim.base_url, "mon", "--allow-no-baseline").exit_code == 0
    assert night(job, sim.base_url, "tue").exit_code == 0
    pinned = night(job, sim.base_url, "wed", "--compare-with", str(job / "nights" / "mon"))
    assert pinned.exit_code == 0, pinned.output
    assert f"baseline: {job / 'nights' / 'mon'}" in pinned.output


def test_an_accepted_degraded_night_is_the_next_baseline(job: Path) -> None:
    worse = SimulatorConfig(seed=1, variants={"support": VariantProfile(wrong_rate=0.5)})
    with SimulatorServer(SimulatorConfig(seed=1)) as good:
        assert night(job, good.base_url, "mon", "--allow-no-baseline").exit_code == 0
    with SimulatorServer(worse) as bad:
        assert night(job, bad.base_url, "tue").exit_code == 1
        assert night(job, bad.base_url, "wed").exit_code == 1  # still against mon
        accepted = cli("baseline", "accept", str(job / "nights" / "wed"))
        assert accepted.exit_code == 0, accepted.output
        thu = night(job, bad.base_url, "thu")
    assert thu.exit_code == 0, thu.output
    assert f"baseline: {job / 'nights' / 'wed'}" in thu.output


def test_the_experiment_file_and_rerun_work_from_any_directory(
    job: Path, sim: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = cli("run", "--config", "../job/nightly.toml", "--base-url", sim.base_url,
                 "--out", "../job/nights/mon", "--allow-no-baseline")  # fmt: skip
    assert result.exit_code == 0, result.output
    kept = (job / "nights" / "mon" / "experiment.toml").read_text()
    assert f'"{job / "data.csv"}"' in kept  # absolute: the file runs from anywhere
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    rerun = cli("rerun", str(job / "nights" / "mon"), "--out", str(job / "nights" / "tue"))
    assert rerun.exit_code == 0, rerun.output
    assert RunDir(job / "nights" / "tue").read_manifest().counts == {"ok": ROWS, "error": 0}


def test_date_and_time_in_out_on_the_command_line_are_filled_in(
    job: Path, sim: SimulatorServer, tmp_path: Path
) -> None:
    before = datetime.now()
    result = night(job, sim.base_url, "{date}-{time}", "--allow-no-baseline")
    assert result.exit_code == 0, result.output
    (made,) = list((job / "nights").iterdir())
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{6}", made.name), made.name
    assert made.name.startswith(f"{before:%Y-%m-%d}")
