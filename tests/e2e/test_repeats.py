"""Repeats end to end on the simulator (a deterministic model: an answer depends on the
variant and the row only): `runner run --repeat 3` reports, gates and compares as
`--repeat 1` does (issue 20, point 3)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from click.testing import Result

from runner.simulator import SimulatorConfig, SimulatorServer, VariantProfile, is_wrong
from runner.stats import _stats as stats
from tests.support import cli, write_graded_tickets

ROWS = 40
WRONG_RATE = 0.1


def _tickets() -> list[str]:
    return [f"ticket {i} about a refund of invoice" for i in range(ROWS)]


def _seed_with_four_wrong() -> int:
    """A seed for which the candidate gets exactly 4 of the 40 rows wrong: McNemar p = 0.125."""
    return next(
        seed
        for seed in range(1000)
        if sum(is_wrong(seed, "candidate", {"ticket": t}, WRONG_RATE) for t in _tickets()) == 4
    )


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_graded_tickets(tmp_path / "tickets.csv", _tickets())


def _simulator(seed: int, candidate_wrong: float) -> SimulatorServer:
    variants = {
        "baseline": VariantProfile(),
        "candidate": VariantProfile(wrong_rate=candidate_wrong),
    }
    return SimulatorServer(SimulatorConfig(seed=seed, variants=variants))


GATE = ("--max-score-drop", "2", "--require-significance", "0.05")


def _run(sim: SimulatorServer, dataset: Path, out: Path, repeat: int, *variants: str) -> Result:
    """A run of ``variants``; with two, gated on the first as ``runner run`` gates."""
    flags = [f for v in variants for f in ("-v", v)]
    gates = GATE if len(variants) > 1 else ()
    return cli("run", dataset, "-d", "support-reply", *flags, "--expected-column", "expected",
               "--base-url", sim.base_url, "--out", out, "-c", "8", "--repeat", str(repeat),
               *gates)  # fmt: skip


SCORE_NUMBERS = ("score_p_value", "score_diff", "score_diff_ci_low", "score_diff_ci_high")


def test_three_repeats_give_the_p_value_interval_and_gate_of_one(
    dataset: Path, tmp_path: Path
) -> None:
    """The issue's flip: 40 rows, 4 lost, McNemar p = 0.125 passes a 0.05 significance gate
    with one repeat and, now, with three; the summary's Wilson interval is over 40 rows."""
    seed = _seed_with_four_wrong()
    outs = {n: tmp_path / f"repeat-{n}" for n in (1, 3)}
    with _simulator(seed, WRONG_RATE) as sim:
        for n, out in outs.items():
            result = _run(sim, dataset, out, n, "baseline", "candidate")
            assert result.exit_code == 0, result.output
    results = pl.read_parquet(outs[3] / "results.parquet")
    assert results.height == 3 * 2 * ROWS
    comparisons = {n: pl.read_parquet(out / "comparison.parquet") for n, out in outs.items()}
    once, thrice = (comparisons[n].row(0, named=True) for n in (1, 3))
    assert once["score_test"] == "mcnemar_exact"
    assert once["score_p_value"] == pytest.approx(0.125, rel=1e-12)
    assert (thrice["score_test"], thrice["pairs"]) == ("mcnemar_exact", ROWS)
    for column in SCORE_NUMBERS:
        assert thrice[column] == pytest.approx(once[column], rel=1e-12), column
    summaries = {n: pl.read_parquet(out / "summary.parquet") for n, out in outs.items()}
    interval = ("score_mean", "score_ci_low", "score_ci_high", "score_ci_method")
    for variant in ("baseline", "candidate"):
        once_row, thrice_row = (
            summaries[n].filter(variant=variant).row(0, named=True) for n in (1, 3)
        )
        assert thrice_row["score_ci_method"] == once_row["score_ci_method"] == "wilson"
        for column in interval[:3]:
            assert thrice_row[column] == pytest.approx(once_row[column], rel=1e-12), column
    candidate = summaries[3].filter(variant="candidate")
    wilson = stats.wilson_interval(ROWS - 4, ROWS)
    assert candidate.select("score_ci_low", "score_ci_high").row(0) == pytest.approx(wilson)
    assert summaries[3]["consistency_rate"].to_list() == [1.0, 1.0]


def test_runner_compare_against_a_baseline_run_is_not_inflated_by_repeats(
    dataset: Path, tmp_path: Path
) -> None:
    """A good night, then a night 4 rows worse, at one repeat and at three: the same p-value,
    and the 0.05 significance gate passes both (it failed at three before)."""
    seed = _seed_with_four_wrong()
    good = tmp_path / "good"
    with _simulator(seed, 0.0) as sim:
        assert _run(sim, dataset, good, 1, "candidate").exit_code == 0
    assert not (good / "comparison.parquet").exists()  # one variant: nothing to compare
    nights = {n: tmp_path / f"worse-{n}" for n in (1, 3)}
    with _simulator(seed, WRONG_RATE) as sim:
        for n, out in nights.items():
            assert _run(sim, dataset, out, n, "candidate").exit_code == 0
    p_values = {}
    for n, out in nights.items():
        result = cli("compare", good, out, *GATE)
        assert result.exit_code == 0, result.output
        metrics = pl.read_parquet(out / "regression.parquet").row(0, named=True)
        assert (metrics["score_test"], metrics["pairs"], metrics["coverage"]) == (
            "mcnemar_exact", ROWS, 1.0,
        )  # fmt: skip
        p_values[n] = metrics["score_p_value"]
    assert p_values[3] == pytest.approx(p_values[1], rel=1e-12)
    assert p_values[1] == pytest.approx(0.125, rel=1e-12)
