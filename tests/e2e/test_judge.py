"""Judges end to end: deployments on the simulator grade a run, pointwise and pairwise.

The simulator's judge variants grade by the ticket's reference label, so what they say is
known in advance: every figure below is checked against that truth, exactly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import Result

from runner.simulator import (
    SimulatorConfig,
    SimulatorServer,
    VariantProfile,
    is_wrong,
)
from runner.store._results import read_manifest, read_results
from runner.store._rundir import RunDir
from tests.support import StartRunner, cli, graded_tickets, write_graded_tickets

ROWS = 120
SEED = 11
CANDIDATE_WRONG = 0.2
BASELINE_WRONG = 0.1


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_graded_tickets(tmp_path / "tickets.csv", graded_tickets(ROWS))


def sim_config(**judge_latency: float) -> SimulatorConfig:
    slow = judge_latency.get("factor", 1.0)
    return SimulatorConfig(
        seed=SEED,
        latency_ms=2,
        variants={
            "baseline": VariantProfile(wrong_rate=BASELINE_WRONG),
            "candidate": VariantProfile(wrong_rate=CANDIDATE_WRONG),
            "pointwise": VariantProfile(judge="pointwise", latency_factor=slow),
            "text": VariantProfile(judge="pointwise_text"),
            "pairwise": VariantProfile(judge="pairwise"),
            "biased": VariantProfile(judge="pairwise_biased"),
            "garbage": VariantProfile(judge="garbage"),
        },
    )


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(sim_config()) as server:
        yield server


def run(sim: SimulatorServer, dataset: Path, out: Path, *extra: str) -> Result:
    return cli(
        "run", str(dataset), "-d", "support-reply", "-v", "baseline", "-v", "candidate",
        "--base-url", sim.base_url, "--out", str(out), "-c", "8", "--experiment", "judged",
        "--input-column", "ticket",
        "--tag", "team=qa", *extra,
    )  # fmt: skip


def wrong(variant: str, rate: float, dataset: Path) -> list[bool]:
    return [is_wrong(SEED, variant, {"ticket": t}, rate) for t in pl.read_csv(dataset)["ticket"]]


def judge_bodies(sim: SimulatorServer, deployment: str = "grader") -> list[dict[str, object]]:
    return [
        r.body
        for r in sim.stats.received
        if r.body is not None and r.body.get("deployment") == deployment
    ]


def test_a_pointwise_judge_recovers_the_seeded_wrong_share_exactly(
    sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run(sim, dataset, out, "--judge", "grader:pointwise", "--judge-var", "rubric=labels")
    assert result.exit_code == 0, result.output
    results = read_results(out)
    for variant, rate in (("baseline", BASELINE_WRONG), ("candidate", CANDIDATE_WRONG)):
        scores = results.filter(pl.col("variant") == variant)["score"]
        assert scores.null_count() == 0
        assert scores.sum() == ROWS - sum(wrong(variant, rate, dataset))
    assert results["score_reason"].null_count() == 0
    summary = pl.read_parquet(out / "summary.parquet")
    assert summary["score_mean"].to_list() == [
        1 - sum(wrong(v, r, dataset)) / ROWS
        for v, r in (("baseline", BASELINE_WRONG), ("candidate", CANDIDATE_WRONG))
    ]
    # One judge call per ok answer, each tagged on the wire.
    bodies = judge_bodies(sim)
    assert len(bodies) == results.filter(pl.col("status") == "ok").height == 2 * ROWS
    run_id = read_manifest(out)["run_id"]
    for body in bodies:
        meta = body["metadata"]
        assert isinstance(meta, dict)
        assert meta["role"] == "judge" and meta["judged_variant"] in ("baseline", "candidate")
        assert (meta["run_id"], meta["experiment"], meta["team"]) == (run_id, "judged", "qa")
        inputs = body["inputs"]
        assert isinstance(inputs, dict) and inputs["rubric"] == "labels"
        assert set(inputs) == {"input", "output", "expected", "rubric"}


def test_report_and_a_second_judge_send_nothing(
    sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run(sim, dataset, out).exit_code == 0
    sim.reset_stats()
    first = cli("judge", str(out), "--judge", "grader:text", "--base-url", sim.base_url)
    assert first.exit_code == 0, first.output
    assert len(judge_bodies(sim)) == 2 * ROWS
    scored = read_results(out)["score"]
    sim.reset_stats()
    again = cli("judge", str(out), "--judge", "grader:text", "--base-url", sim.base_url)
    assert again.exit_code == 0, again.output
    assert "0 calls sent" in again.output
    report = cli("report", str(out))
    assert report.exit_code == 0, report.output
    assert sim.stats.requests == 0
    assert read_results(out)["score"].to_list() == scored.to_list()  # the judge's score stays


def test_with_an_explicit_scorer_the_judge_score_sits_next_to_it_and_their_agreement_shows(
    sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run(
        sim, dataset, out, "--expected-column", "expected", "--score", "exact",
        "--judge", "grader:pointwise",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = read_results(out)
    # This judge and exact match agree on every row, and the summary says so.
    assert results["judge_score"].to_list() == results["score"].to_list()
    summary = pl.read_parquet(out / "summary.parquet")
    assert summary["judge_agreement"].to_list() == [1.0, 1.0]
    assert summary["judge_kappa"].to_list() == [1.0, 1.0]
    assert summary["judge_errors"].to_list() == [0, 0]
    assert "judge_reason" in results.columns


def test_a_pairwise_judge_finds_the_seeded_wins_and_losses_with_two_calls_per_differing_row(
    sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run(sim, dataset, out, "--pairwise-judge", "grader:pairwise")
    assert result.exit_code == 0, result.output
    base, cand = (
        wrong("baseline", BASELINE_WRONG, dataset),
        wrong("candidate", CANDIDATE_WRONG, dataset),
    )
    wins = sum(b and not c for b, c in zip(base, cand, strict=True))
    losses = sum(c and not b for b, c in zip(base, cand, strict=True))
    pairwise = pl.read_parquet(out / "pairwise.parquet")
    assert pairwise.height == ROWS
    assert (pairwise["verdict"] == "win").sum() == wins
    assert (pairwise["verdict"] == "loss").sum() == losses
    results = read_results(out)
    outputs = results.pivot(on="variant", index="row_id", values="output")
    differing = int((outputs["baseline"] != outputs["candidate"]).sum())
    assert len(judge_bodies(sim)) == 2 * differing
    assert pairwise.filter(pl.col("judged"))["consistent"].all()


def test_a_position_biased_judge_yields_only_ties_and_no_consistency(
    sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    from runner.stats._judged import pairwise_metrics

    out = tmp_path / "out"
    assert run(sim, dataset, out, "--pairwise-judge", "grader:biased").exit_code == 0
    pairwise = pl.read_parquet(out / "pairwise.parquet")
    assert set(pairwise["verdict"]) == {"tie"}
    metrics = pairwise_metrics(pairwise).row(0, named=True)
    assert metrics["judge_position_consistency"] == 0.0
    assert metrics["pairwise_wins"] == metrics["pairwise_losses"] == 0


def test_unparseable_judge_answers_give_null_scores_and_a_count(
    sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run(sim, dataset, out, "--judge", "grader:garbage")
    assert result.exit_code == 4, result.output  # a judge that says nothing readable fails
    assert f"{2 * ROWS} answers not read" in result.output
    assert "every report is written" in result.output and RunDir(out).report_html.exists()
    assert "Both answers have merits" in result.output  # an example of what it answered
    results = read_results(out)
    assert results["score"].null_count() == 2 * ROWS
    assert results["judge_error"].null_count() == 0


def test_a_kill_while_judging_then_judge_again_resends_at_most_the_concurrency(
    dataset: Path, tmp_path: Path
) -> None:
    with SimulatorServer(sim_config(factor=20.0)) as sim:  # judge calls take 40 ms
        out = tmp_path / "out"
        assert run(sim, dataset, out).exit_code == 0
        sim.reset_stats()
        env = {**os.environ, "FETCH_HIVE_API_KEY": ""}
        args = ["judge", str(out), "--judge", "grader:pointwise", "--base-url", sim.base_url]
        proc = subprocess.Popen([sys.executable, "-m", "runner", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        journal = out / "judges" / "pointwise" / "pass-000" / "journal.jsonl"
        deadline = time.monotonic() + 60
        while not (journal.exists() and journal.read_bytes().count(b"\n") >= 60):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        committed = journal.read_bytes().count(b"\n")
        sent_before = len(judge_bodies(sim))
        sim.reset_stats()
        again = cli(*args)
        assert again.exit_code == 0, again.output
        resent = len(judge_bodies(sim)) - (2 * ROWS - sent_before)
        assert resent <= 8  # only what was in flight at the kill (-c 8)
        assert len(judge_bodies(sim)) == 2 * ROWS - committed
        assert read_results(out)["score"].null_count() == 0


def test_pairwise_results_reach_the_comparison_and_the_min_win_rate_gate(
    sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    """The candidate is worse (more wrong labels): its win rate is below one half."""
    out = tmp_path / "out"
    assert run(sim, dataset, out, "--pairwise-judge", "grader:pairwise").exit_code == 0
    comparison = pl.read_parquet(out / "comparison.parquet").row(0, named=True)
    pairwise = pl.read_parquet(out / "pairwise.parquet")
    wins, losses = (int((pairwise["verdict"] == v).sum()) for v in ("win", "loss"))
    assert (comparison["pairwise_wins"], comparison["pairwise_losses"]) == (wins, losses)
    assert comparison["pairwise_win_rate"] == (wins + (ROWS - wins - losses) / 2) / ROWS
    assert comparison["judge_position_consistency"] == 1.0
    failed = cli("gate", str(out), "--min-win-rate", "0.5")
    assert failed.exit_code == 1, failed.output
    assert "--min-win-rate on candidate" in failed.output
    assert cli("gate", str(out), "--min-win-rate", "0.3").exit_code == 0


def test_judging_a_run_another_runner_is_sending_names_that_runner(
    tmp_path: Path, runner_process: StartRunner
) -> None:
    """Not "resume it first": a resume would be refused too, while that runner holds OUT."""
    from tests.reports_helpers import answers, frame, write_run

    out = write_run(tmp_path / "sending", frame(answers("a", 3)), status="running")
    with RunDir(out).locked():  # the runner still sending (this process; the judge is a child)
        judge = runner_process(["judge", str(out), "--judge", "grader:v1"], name="judge")
        code = judge.wait(timeout=60)
    err = (tmp_path / "judge.err").read_text()
    assert code == 2, err
    assert f"{out} is in use by another runner (" in err and "resume it first" not in err
