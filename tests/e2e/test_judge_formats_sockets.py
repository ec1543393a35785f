"""Judges over real sockets: the simulator's grader deployments answer in each published
format, and a run judged by them reads every answer to the right score or winner.

The graders grade by the ticket's reference label, so every figure is known in advance
(see tests/e2e/test_judge.py for the same data with the runner's own JSON answers).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import Result

from runner.simulator import (
    FORMAT_SCALES,
    SimulatorConfig,
    SimulatorServer,
    VariantProfile,
    is_wrong,
    reference_answer,
)
from runner.store._results import read_results
from tests.support import cli, graded_tickets, write_graded_tickets

ROWS = 60
SEED = 5
WRONG = {"baseline": 0.1, "candidate": 0.3}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(
        seed=SEED,
        variants={name: VariantProfile(wrong_rate=rate) for name, rate in WRONG.items()},
        judges={
            **{f"grader-{fmt}": fmt for fmt in FORMAT_SCALES},
            "biased-grader": "biased:mtbench",
            "garbage-grader": "garbage",
        },
    )
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tickets.csv"
    return write_graded_tickets(path, graded_tickets(ROWS), expected=False)


def run(sim: SimulatorServer, dataset: Path, out: Path, *judge: str) -> Result:
    return cli(
        "run", str(dataset), "-d", "support-reply", "-v", "baseline", "-v", "candidate",
        "--base-url", sim.base_url, "--out", str(out), "-c", "8", "--input-column", "ticket",
        *judge,
    )  # fmt: skip


def wrong(variant: str, dataset: Path) -> list[bool]:
    tickets = pl.read_csv(dataset)["ticket"]
    return [is_wrong(SEED, variant, {"ticket": t}, WRONG[variant]) for t in tickets]


def judge_outputs(out: Path, kind: str) -> list[str]:
    """What the judge deployment answered, as its own pass recorded it."""
    passes = sorted((out / "judges" / kind).glob("pass-*/results.parquet"))
    return pl.concat(pl.read_parquet(p) for p in passes)["output"].to_list()


@pytest.mark.parametrize("fmt", sorted(FORMAT_SCALES))
def test_a_grader_in_each_published_format_scores_every_answer_right(
    sim: SimulatorServer, dataset: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / "out"
    scale = FORMAT_SCALES[fmt]
    judge = ["--judge", f"grader-{fmt}:v1", *(["--judge-scale", scale] if scale else [])]
    result = run(sim, dataset, out, *judge)
    assert result.exit_code == 0, result.output
    results = read_results(out)
    assert results["judge_error"].null_count() == results.height
    for variant in WRONG:
        scores = results.filter(pl.col("variant") == variant).sort("row_id")["score"]
        assert scores.null_count() == 0
        assert sorted(set(scores)) in ([0.0, 1.0], [1.0])
        assert scores.sum() == ROWS - sum(wrong(variant, dataset))
    answers = judge_outputs(out, "pointwise")
    assert len({a.split("\n")[0][:12] for a in answers}) >= 2  # written more than one way


PAIRWISE_FORMATS = ["arena_hard", "json", "mtbench", "prometheus", "winner_line"]


def expected_verdicts(dataset: Path, out: Path) -> dict[str, str | None]:
    """The verdict of each row from the seeded wrong answers; None where outputs are equal."""
    outputs = read_results(out).pivot(on="variant", index="row_id", values="output")
    truth = {f"t{i}": reference_answer({"input": t}) for i, t in
             enumerate(pl.read_csv(dataset)["ticket"])}  # fmt: skip
    verdicts: dict[str, str | None] = {}
    for row_id, base, cand in outputs.select("row_id", "baseline", "candidate").iter_rows():
        right_b, right_c = base == truth[row_id], cand == truth[row_id]
        verdicts[row_id] = (
            "tie" if base == cand or right_b == right_c else "win" if right_c else "loss"
        )
    return verdicts


@pytest.mark.parametrize("fmt", PAIRWISE_FORMATS)
def test_a_pairwise_grader_in_each_published_format_finds_every_verdict(
    sim: SimulatorServer, dataset: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / "out"
    result = run(sim, dataset, out, "--pairwise-judge", f"grader-{fmt}:v1")
    assert result.exit_code == 0, result.output
    pairwise = pl.read_parquet(out / "pairwise.parquet").sort("row_id")
    expected = expected_verdicts(dataset, out)
    assert dict(zip(pairwise["row_id"], pairwise["verdict"], strict=True)) == expected
    assert {"win", "loss"} <= set(expected.values())
    judged = pairwise.filter(pl.col("judged"))
    assert judged["judge_error"].null_count() == judged.height
    both_wrong = judged.filter(pl.col("verdict") == "tie")
    if fmt == "prometheus":  # no tie label: the judge picks A in both orders
        assert both_wrong["consistent"].to_list() == [False] * both_wrong.height
    else:
        assert judged["consistent"].all()
    if fmt == "arena_hard":
        decided = judged.filter(pl.col("verdict") != "tie")
        assert set(decided["strength"]) <= {"strong", "slight"}
        assert decided["strength"].null_count() == 0
        assert both_wrong["strength"].null_count() == both_wrong.height


def test_an_all_garbage_pairwise_judge_gives_null_verdicts_and_fails_the_gate(
    sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run(sim, dataset, out, "--pairwise-judge", "garbage-grader:v1")
    # Exit 4 is the judge error budget (everything written first); never 0 with a tie.
    assert result.exit_code in (0, 4), result.output
    pairwise = pl.read_parquet(out / "pairwise.parquet")
    judged = pairwise.filter(pl.col("judged"))
    assert judged.height > 0
    assert judged["verdict"].null_count() == judged.height
    assert judged["judge_error"].null_count() == 0
    assert set(pairwise.filter(~pl.col("judged"))["verdict"]) == {"tie"}  # identical outputs
    gate = cli("gate", str(out), "--min-win-rate", "0.45")
    assert gate.exit_code == 1, gate.output
    assert "nothing to measure" in gate.output


def test_a_position_biased_judge_fails_a_win_rate_gate_on_its_consistency(
    sim: SimulatorServer, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run(sim, dataset, out, "--pairwise-judge", "biased-grader:v1").exit_code == 0
    pairwise = pl.read_parquet(out / "pairwise.parquet")
    judged = pairwise.filter(pl.col("judged"))
    assert set(judged["verdict"]) == {"tie"} and not judged["consistent"].any()
    gate = cli("gate", str(out), "--min-win-rate", "0.45")
    assert gate.exit_code == 1, gate.output
    assert "--min-judge-consistency on candidate: measured 0.000, limit ≥ 0.600: FAIL" in (
        gate.output
    )
    assert "--min-win-rate on candidate" not in gate.output  # the bias alone passes it (0.5)
    fair = tmp_path / "fair"
    assert run(sim, dataset, fair, "--pairwise-judge", "grader-mtbench:v1").exit_code == 0
    passed = cli("gate", str(fair), "--min-win-rate", "0.1")
    assert passed.exit_code == 0, passed.output
