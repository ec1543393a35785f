"""Nights in a row over real sockets: each night is a run against the simulator on 127.0.0.1
(``run_job`` and ``build_reports``, as ``runner run`` does), then the nightly gate step,
``runner compare FOLDER TONIGHT`` or :func:`runner.gates._baseline.compare_with_baseline`. The
baseline must exist, be good, and show in a red night's report.html."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import Result

from runner.config import RunConfig
from runner.errors import ConfigError
from runner.gates._gates import Gates
from runner.gates._nightly import compare_with_baseline
from runner.gates._verdict import GateVerdict
from runner.report._report import build_reports
from runner.run._job import run_job
from runner.simulator import SimulatorConfig, SimulatorServer, VariantProfile
from runner.store._rundir import RunDir
from tests.support import cli, write_topic_tickets

GATE = ("--score", "exact", "--max-score-drop", "5")
DEPLOYMENT = "support-reply"


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_topic_tickets(tmp_path / "tickets.csv", 40)


@pytest.fixture
def sims() -> Iterator[dict[str, SimulatorServer]]:
    """A good prompt and a degraded one (half its answers wrong), each its own server."""
    good = SimulatorServer(SimulatorConfig(seed=1, variants={"support": VariantProfile()}))
    bad = VariantProfile(wrong_rate=0.5)
    degraded = SimulatorServer(SimulatorConfig(seed=1, variants={"support": bad}))
    with good, degraded:
        yield {"good": good, "degraded": degraded}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "nightly"


def night(
    dataset: Path,
    out: Path,
    sim: SimulatorServer,
    *,
    deployment: str = DEPLOYMENT,
) -> Path:
    """One night's run, to the end, with its reports (report.html) written."""
    config = RunConfig(
        dataset=(str(dataset),),
        out_dir=out,
        deployment=deployment,
        variants=("support",),
        expected_column="expected",
        base_url=sim.base_url,
        concurrency=8,
        backoff_initial=0.0,
    )
    run_job(config, api_key="fhk_test")
    build_reports(out, score="exact")
    return out


def gate_step(folder: Path, tonight: Path, *extra: str) -> Result:
    """The nightly gate step: tonight against the folder of runs, its verdict recorded."""
    return cli("compare", folder, tonight, *GATE, *extra)


def first_good_night(dataset: Path, folder: Path, sim: SimulatorServer) -> Path:
    """Night ``1-good``, gated with no baseline yet (it passes): the next nights' baseline."""
    good = night(dataset, folder / "1-good", sim)
    assert gate_step(folder, good, "--allow-no-baseline").exit_code == 0
    return good


def good_then_failed_night(
    dataset: Path, folder: Path, sims: dict[str, SimulatorServer]
) -> tuple[Path, Path]:
    """Night ``1-good``, then night ``2-bad`` (degraded), gated against it: its gate fails."""
    good = night(dataset, folder / "1-good", sims["good"])
    bad = night(dataset, folder / "2-bad", sims["degraded"])
    assert gate_step(folder, bad).exit_code == 1
    return good, bad


def verdict_of(run: Path) -> dict[str, object] | None:
    return RunDir(run).read_manifest().gate


def first_line(path: Path) -> str:
    return path.read_text(encoding="utf-8").splitlines()[0]


# -------------------------------------------------------------- 1. a baseline that exists


def test_a_typo_in_compare_with_exits_2_naming_the_path(
    dataset: Path, folder: Path, sims: dict[str, SimulatorServer]
) -> None:
    tonight = night(dataset, folder / "mon", sims["good"])
    typo = folder.parent / "nightyl"
    result = gate_step(typo, tonight, "--allow-no-baseline")
    assert result.exit_code == 2, result.output
    assert f"the baseline {typo} does not exist" in result.stderr
    assert verdict_of(tonight) is None  # nothing was judged
    with pytest.raises(ConfigError, match="nightyl does not exist"):
        compare_with_baseline(tonight, typo, Gates(max_score_drop_points=5.0))


def test_a_folder_holding_only_tonight_fails_the_night_saying_no_gate_was_applied(
    dataset: Path, folder: Path, sims: dict[str, SimulatorServer]
) -> None:
    """A CI cache miss: the folder holds tonight only. Without a baseline no gate ran: red."""
    tonight = night(dataset, folder / "mon", sims["good"])
    result = gate_step(folder, tonight)
    assert result.exit_code == 1, result.output
    assert "no baseline" in result.stderr and "gates were not applied" in result.stderr
    assert "--allow-no-baseline" in result.stderr
    assert first_line(tonight / "regression.md").startswith(
        "## Regression check: FAIL (no baseline: the gates were not applied)"
    )
    assert verdict_of(tonight) == {"verdict": "fail", "baseline": None, "accepted": False}


def test_a_first_night_allowed_without_baseline_passes_and_says_so_first(
    dataset: Path, folder: Path, sims: dict[str, SimulatorServer]
) -> None:
    tonight = night(dataset, folder / "mon", sims["good"])
    result = gate_step(folder, tonight, "--allow-no-baseline")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0].startswith(
        "no gate was applied: no baseline yet: this run becomes the baseline once its gates pass"
    )
    assert first_line(tonight / "regression.md") == (
        "## No gate was applied: no baseline yet: this run becomes the baseline once its gates pass"
    )
    assert result.stdout.startswith("## No gate was applied")
    assert verdict_of(tonight) == {"verdict": "no-baseline", "baseline": None, "accepted": False}
    assert not (tonight / "regression.parquet").exists()


def test_the_first_night_writes_regression_md_from_the_library(
    dataset: Path, folder: Path, sims: dict[str, SimulatorServer]
) -> None:
    tonight = night(dataset, folder / "mon", sims["good"])
    said: list[str] = []
    verdict = compare_with_baseline(
        tonight, folder, Gates(max_score_drop_points=5.0), allow_no_baseline=True, say=said.append
    )
    assert verdict.verdict is GateVerdict.NO_BASELINE and verdict.passed
    assert verdict.gate_record() == {"verdict": "no-baseline", "baseline": None, "accepted": False}
    assert said[0].startswith("no gate was applied: no baseline yet")
    assert verdict.markdown == tonight / "regression.md"
    assert first_line(verdict.markdown).startswith("## No gate was applied")


def test_a_pinned_run_directory_is_the_baseline(
    dataset: Path, folder: Path, sims: dict[str, SimulatorServer]
) -> None:
    """Pinned to Monday, Tuesday's degraded night is passed by although it is newer."""
    monday = night(dataset, folder / "mon", sims["good"])
    night(dataset, folder / "tue", sims["degraded"])
    tonight = night(dataset, folder / "wed", sims["good"])
    result = gate_step(monday, tonight)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"baseline: {monday} (finished ")
    assert "pinned" in result.stderr.splitlines()[0]
    markdown = (tonight / "regression.md").read_text(encoding="utf-8")
    assert f"- baseline: {monday} (finished" in markdown and "pinned" in markdown
    assert verdict_of(tonight) == {"verdict": "pass", "baseline": str(monday), "accepted": False}


# ---------------------------------------------------------------- 2. a baseline that is good


def test_a_failed_night_is_never_the_next_nights_baseline(
    dataset: Path, folder: Path, sims: dict[str, SimulatorServer]
) -> None:
    """good → degraded (red) → the same degraded prompt again: red again, against the good
    night, which every pick names; the failed night is skipped, and said so."""
    good = first_good_night(dataset, folder, sims["good"])
    bad = night(dataset, folder / "2-bad", sims["degraded"])
    first = gate_step(folder, bad)
    assert first.exit_code == 1, first.output
    assert first.stderr.startswith(f"baseline: {good} (finished ")
    assert verdict_of(bad) == {"verdict": "fail", "baseline": str(good), "accepted": False}
    again = night(dataset, folder / "3-bad-again", sims["degraded"])
    second = gate_step(folder, again)
    assert second.exit_code == 1, second.output
    assert second.stderr.startswith(f"baseline: {good} (finished ")
    assert f"skipped {bad}: its own gate verdict was fail" in second.stderr
    assert "--max-score-drop on support: measured -" in second.stderr
    markdown = (again / "regression.md").read_text(encoding="utf-8")
    assert f"- baseline: {good} (finished" in markdown
    assert f"- skipped {bad}: its own gate verdict was fail" in markdown
    assert verdict_of(again) == {"verdict": "fail", "baseline": str(good), "accepted": False}


def test_runner_baseline_accept_makes_a_degraded_night_the_baseline(
    dataset: Path, folder: Path, sims: dict[str, SimulatorServer]
) -> None:
    """A deliberate change: the degraded night is accepted, and the next one like it passes."""
    good = first_good_night(dataset, folder, sims["good"])
    changed = night(dataset, folder / "2-changed", sims["degraded"])
    assert gate_step(folder, changed).exit_code == 1
    accepted = cli("baseline", "accept", changed)
    assert accepted.exit_code == 0, accepted.output
    assert verdict_of(changed) == {
        "verdict": "fail", "baseline": str(good), "accepted": True,
    }  # fmt: skip
    tonight = night(dataset, folder / "3-tonight", sims["degraded"])
    result = gate_step(folder, tonight)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"baseline: {changed} (finished ")


def test_a_run_that_finished_after_tonight_started_is_not_tonights_baseline(
    dataset: Path, folder: Path, sims: dict[str, SimulatorServer]
) -> None:
    """A night resumed (and finished) after tonight's run started is newer than tonight: the
    pick goes back to the night before, and names the late one."""
    before = night(dataset, folder / "a-before", sims["good"])
    tonight = night(dataset, folder / "b-tonight", sims["good"])
    late = night(dataset, folder / "c-resumed-late", sims["degraded"])
    result = gate_step(folder, tonight)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"baseline: {before} (finished ")
    assert f"skipped {late}: finished " in result.stderr
    assert "after this run started" in result.stderr


def test_a_baseline_of_another_deployment_is_refused(
    dataset: Path, folder: Path, sims: dict[str, SimulatorServer]
) -> None:
    other = night(dataset, folder / "other", sims["good"], deployment="billing-reply")
    tonight = night(dataset, folder / "tonight", sims["good"])
    pinned = gate_step(other, tonight)
    assert pinned.exit_code == 2, pinned.output
    assert "calls deployment billing-reply" in pinned.stderr
    assert "--allow-different-deployment" in pinned.stderr
    in_folder = gate_step(folder, tonight)  # the folder's only other run: no baseline at all
    assert in_folder.exit_code == 1, in_folder.output
    assert f"skipped {other}: calls deployment billing-reply, not {DEPLOYMENT}" in (
        in_folder.stderr
    )
    allowed = gate_step(other, tonight, "--allow-different-deployment")
    assert allowed.exit_code == 0, allowed.output
    assert "deployments differ: billing-reply and support-reply" in (
        (tonight / "regression.md").read_text(encoding="utf-8")
    )


def test_a_baseline_that_read_another_dataset_is_named(
    dataset: Path, folder: Path, sims: dict[str, SimulatorServer], tmp_path: Path
) -> None:
    more = tmp_path / "more.csv"
    frame = pl.read_csv(dataset)
    pl.concat([frame, frame.head(1).with_columns(pl.lit("t99").alias("id"))]).write_csv(more)
    base = night(more, folder / "mon", sims["good"])
    tonight = night(dataset, folder / "tue", sims["good"])
    result = gate_step(folder, tonight)
    assert result.stderr.startswith(f"baseline: {base} (finished ")
    assert "note: the baseline read a different dataset" in result.stderr
    markdown = (tonight / "regression.md").read_text(encoding="utf-8")
    assert "note: the baseline read a different dataset" in markdown
    # One baseline row has no partner tonight: the coverage gate decides, and fails.
    assert result.exit_code == 1, result.output
    assert "--min-coverage on support" in result.stderr


def test_runner_baseline_show_names_the_pick_and_why_newer_runs_were_skipped(
    dataset: Path, folder: Path, sims: dict[str, SimulatorServer]
) -> None:
    good, bad = good_then_failed_night(dataset, folder, sims)
    shown = cli("baseline", "show", folder)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"baseline: {good} (finished ")
    assert lines[1:] == [
        f"skipped {bad}: its own gate verdict was fail; 'runner baseline accept {bad}' admits it"
    ]
    empty = folder.parent / "empty"
    empty.mkdir()
    assert cli("baseline", "show", empty).exit_code == 1
    pinned = cli("baseline", "show", bad)  # one run: --compare-with pins it, nothing picked
    assert pinned.exit_code == 0, pinned.output
    assert pinned.stdout.splitlines()[0].startswith(f"baseline: {bad} (finished ")
    assert pinned.stdout.splitlines()[0].endswith(", pinned")
    assert "note: the pinned baseline's own gate verdict was fail" in pinned.stdout


# ------------------------------------------------------------- 4. the report a red night needs


def test_the_report_of_a_red_night_shows_the_baseline_and_the_regressed_rows(
    dataset: Path, folder: Path, sims: dict[str, SimulatorServer]
) -> None:
    good, bad = good_then_failed_night(dataset, folder, sims)
    html = (bad / "report.html").read_text(encoding="utf-8")
    assert "<h2>Compared with the baseline: FAIL</h2>" in html
    assert f"Baseline run <code>{good}</code>" in html
    assert "--max-score-drop" in html and "≥ -5.00 points" in html
    assert "gates failed. --max-score-drop on support: measured -" in html  # in words
    rows = pl.read_parquet(bad / "regression_rows.parquet")
    regressed = rows.filter(pl.col("kind") == "regression")
    assert regressed.height > 0
    assert rows["kind"].to_list()[: regressed.height] == ["regression"] * regressed.height
    first = regressed.row(0, named=True)
    assert first["output_baseline"] != first["output"]
    section = html[html.index("<h2>Compared with the baseline") : html.index("<h2>Verdict</h2>")]
    assert f">{first['output_baseline']}<" in section  # the baseline's answer, in its cell
    assert first["output"] in section  # tonight's answer (marked word by word)
    assert first["row_id"] in section and first["expected"] in section
    # Rebuilding the reports keeps the comparison (runner report OUT).
    assert cli("report", bad).exit_code == 0
    rebuilt = (bad / "report.html").read_text(encoding="utf-8")
    assert rebuilt.count("<h2>Compared with the baseline: FAIL</h2>") == 1


def test_a_night_without_baseline_shows_no_earlier_comparison_in_its_report(
    dataset: Path, folder: Path, sims: dict[str, SimulatorServer]
) -> None:
    """Compared once against a pinned run, then gated against an empty folder: the stale
    comparison leaves regression.parquet and report.html."""
    base = night(dataset, folder.parent / "elsewhere" / "base", sims["good"])
    tonight = night(dataset, folder / "tonight", sims["good"])
    assert gate_step(base, tonight).exit_code == 0
    assert "Compared with the baseline" in (tonight / "report.html").read_text(encoding="utf-8")
    assert gate_step(folder, tonight, "--allow-no-baseline").exit_code == 0
    assert "Compared with the baseline" not in (tonight / "report.html").read_text("utf-8")
    assert not (tonight / "regression.parquet").exists()
    manifest = json.loads((tonight / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["gate"]["verdict"] == "no-baseline"
