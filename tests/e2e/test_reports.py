"""Reports and gates end to end: runs on the simulator, then `runner report` / `runner compare`."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from runner.simulator import (
    SimulatorConfig,
    SimulatorServer,
    VariantProfile,
    is_wrong,
)
from runner.store._results import read_results
from tests.support import cli, graded_tickets, write_graded_tickets

ROWS = 200


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_graded_tickets(tmp_path / "tickets.csv", graded_tickets(ROWS))


def sim_config(seed: int, baseline_wrong: float, candidate_wrong: float) -> SimulatorConfig:
    return SimulatorConfig(
        seed=seed,
        variants={
            "baseline": VariantProfile(wrong_rate=baseline_wrong),
            "candidate": VariantProfile(wrong_rate=candidate_wrong, latency_factor=1.5),
        },
        faults={"http_502": 0.1},
    )


def run(sim: SimulatorServer, dataset: Path, out: Path, *variants: str) -> None:
    flags = [f for v in variants for f in ("-v", v)]
    result = cli("run", str(dataset), "-d", "support-reply", *flags, "--expected-column",
                 "expected", "--base-url", sim.base_url, "--out", str(out), "-c", "8")  # fmt: skip
    assert result.exit_code == 0, result.output


def wrong_rows(seed: int, variant: str, rate: float, dataset: Path) -> int:
    tickets = pl.read_csv(dataset)["ticket"]
    return sum(is_wrong(seed, variant, {"ticket": t}, rate) for t in tickets)


def test_summary_and_comparison_recover_the_known_wrong_share(
    dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ab"
    with SimulatorServer(sim_config(seed=4, baseline_wrong=0.0, candidate_wrong=0.15)) as sim:
        run(sim, dataset, out, "baseline", "candidate")
    wrong = wrong_rows(4, "candidate", 0.15, dataset)
    assert 10 < wrong < 50

    summary = pl.read_parquet(out / "summary.parquet")
    scores = dict(zip(summary["variant"], summary["score_mean"], strict=True))
    assert scores == {"baseline": 1.0, "candidate": pytest.approx(1 - wrong / ROWS)}
    assert summary["errors"].to_list() == [0, 0]

    comparison = pl.read_parquet(out / "comparison.parquet").row(0, named=True)
    assert comparison["variant"] == "candidate"
    assert comparison["losses"] == wrong
    assert comparison["wins"] == 0
    assert comparison["score_diff"] == pytest.approx(-wrong / ROWS)
    assert comparison["score_p_value"] < 0.001
    assert "mcnemar" in comparison["score_test"].lower()

    side = pl.read_parquet(out / "side_by_side.parquet")
    assert side.height == ROWS
    assert side["regression"].sum() == wrong
    assert side["regression"][:wrong].all()  # regressions come first
    html = (out / "report.html").read_text()
    assert "candidate" in html and "<svg" in html  # charts drawn inline, no script bundle


def test_report_rescores_without_calling_the_api(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "ab"
    with SimulatorServer(sim_config(seed=4, baseline_wrong=0.0, candidate_wrong=0.15)) as sim:
        run(sim, dataset, out, "baseline", "candidate")
        sent = sim.stats.requests
        result = cli("report", str(out), "--score", "contains")
        assert result.exit_code == 0, result.output
        assert sim.stats.requests == sent
    results = read_results(out)
    assert results["score"].null_count() == 0
    candidate_mean = results.filter(pl.col("variant") == "candidate")["score"].mean()
    assert isinstance(candidate_mean, float) and candidate_mean < 1.0
    assert pq.read_schema(out / "scores.parquet").metadata[b"runner.score"] == b"contains"


def test_compare_gates_a_seeded_regression_and_passes_a_rerun(
    dataset: Path, tmp_path: Path
) -> None:
    good = sim_config(seed=9, baseline_wrong=0.0, candidate_wrong=0.0)
    bad = sim_config(seed=9, baseline_wrong=0.2, candidate_wrong=0.0)
    with SimulatorServer(good) as sim:
        run(sim, dataset, tmp_path / "night1", "baseline")
        run(sim, dataset, tmp_path / "night2", "baseline")
    with SimulatorServer(bad) as sim:
        run(sim, dataset, tmp_path / "night3", "baseline")
    gates = ["--max-score-drop", "2", "--max-error-rate-increase", "1", "--min-agreement", "0.9"]

    unchanged = cli("compare", str(tmp_path / "night1"), str(tmp_path / "night2"), *gates)
    assert unchanged.exit_code == 0, unchanged.output

    regressed = cli("compare", str(tmp_path / "night1"), str(tmp_path / "night3"), *gates)
    assert regressed.exit_code == 1, regressed.output
    assert "--max-score-drop" in regressed.output
    markdown = (tmp_path / "night3" / "regression.md").read_text()
    drop = 100 * wrong_rows(9, "baseline", 0.2, dataset) / ROWS
    assert f"{drop:.2f}" in markdown  # the measured value
    assert "2.00" in markdown  # the limit
    assert "FAIL" in markdown
    assert (tmp_path / "night3" / "regression.parquet").exists()


def test_gate_inside_one_run_fails_the_worse_variant_and_passes_an_equal_one(
    dataset: Path, tmp_path: Path
) -> None:
    worse, equal = tmp_path / "worse", tmp_path / "equal"
    with SimulatorServer(sim_config(seed=4, baseline_wrong=0.0, candidate_wrong=0.15)) as sim:
        run(sim, dataset, worse, "baseline", "candidate")
    with SimulatorServer(sim_config(seed=4, baseline_wrong=0.0, candidate_wrong=0.0)) as sim:
        run(sim, dataset, equal, "baseline", "candidate")
    failed = cli("gate", str(worse), "--max-score-drop", "2")
    assert failed.exit_code == 1, failed.output
    drop = 100 * wrong_rows(4, "candidate", 0.15, dataset) / ROWS
    assert f"--max-score-drop on candidate: measured -{drop:.2f} points" in failed.output
    assert (worse / "gate.md").read_text().startswith("## Gate: variants against baseline: FAIL")
    passed = cli("gate", str(equal), "--max-score-drop", "2", "--max-error-rate-increase", "1")
    assert passed.exit_code == 0, passed.output


def test_run_applies_its_gate_options_when_it_ends(dataset: Path, tmp_path: Path) -> None:
    """One command is a CI check of a prompt change: exit 1 on a regression, 0 without."""
    gate = ("--max-score-drop", "2", "--expected-column", "expected", "-c", "8")
    with SimulatorServer(sim_config(seed=5, baseline_wrong=0.0, candidate_wrong=0.2)) as sim:
        worse = cli("run", str(dataset), "-d", "support-reply", "-v", "baseline", "-v", "candidate",
                    "--base-url", sim.base_url, "--out", str(tmp_path / "w"), *gate)  # fmt: skip
    assert worse.exit_code == 1, worse.output
    assert "--max-score-drop on candidate" in worse.output
    assert (tmp_path / "w" / "gate.md").exists() and (tmp_path / "w" / "report.html").exists()
    with SimulatorServer(sim_config(seed=5, baseline_wrong=0.0, candidate_wrong=0.0)) as sim:
        same = cli("run", str(dataset), "-d", "support-reply", "-v", "baseline", "-v", "candidate",
                   "--base-url", sim.base_url, "--out", str(tmp_path / "s"), *gate)  # fmt: skip
    assert same.exit_code == 0, same.output
