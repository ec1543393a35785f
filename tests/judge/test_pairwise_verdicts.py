"""Pairwise verdicts from both orders: an unread verdict is an error, never a tie; the win rate
is measured on the pairs with a verdict; a judge that picks a position cannot pass a gate.

The judge answers here are scripted per call by what the call shows (``output_a``,
``output_b``), so each test states exactly what the judge said in each order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.errors import ConfigError, GateFailed
from runner.gates._gates import DEFAULT_JUDGE_CONSISTENCY, Gates, RegressionReport
from runner.gates._pairing import gate_variants
from runner.judge._pairwise import pairwise_calls, pairwise_pairs, write_pairwise
from runner.judge._parse import compile_pattern
from runner.stats import _stats as stats
from runner.stats._judged import pairwise_metrics, position_bias_warning
from runner.store._rundir import RunDir
from tests.reports_helpers import frame, row, write_run

Judge = Callable[[str, str], str | None]
"""What the judge answers for (output_a, output_b); None: the call failed."""


def results_of(outputs: list[tuple[str, str]]) -> pl.DataFrame:
    """Rows r0.. with the baseline's and the candidate's output."""
    rows = []
    for i, (base, cand) in enumerate(outputs):
        rows += [row(f"r{i}", "base", base), row(f"r{i}", "cand", cand)]
    return frame(rows)


def judged(
    tmp_path: Path, outputs: list[tuple[str, str]], judge: Judge, **kw: object
) -> pl.DataFrame:
    """pairwise.parquet as write_pairwise leaves it after ``judge`` answered every call."""
    results = results_of(outputs).lazy()
    pairs = pairwise_pairs(results, "base")
    calls = pairwise_calls(pairs, {}).collect()
    answers = [judge(a, b) for a, b in calls.select("output_a", "output_b").iter_rows()]
    outcomes = pl.DataFrame(
        {
            "id": calls["id"],
            "status": ["ok" if a is not None else "error" for a in answers],
            "output": answers,
            "error_message": [None if a is not None else "HTTP 502 bad gateway" for a in answers],
        },
        schema={"id": pl.String, "status": pl.String, "output": pl.String,
                "error_message": pl.String},
    )  # fmt: skip
    rundir = RunDir(tmp_path / "run")
    rundir.root.mkdir(exist_ok=True)
    write_pairwise(rundir, pairs, outcomes, "base", **kw)  # type: ignore[arg-type]
    return pl.read_parquet(rundir.pairwise)


def fair(a: str, b: str) -> str:
    """MT-Bench's verdict for the answer that says ``good``."""
    return "Final Verdict: [[A]]" if a.startswith("good") else "Final Verdict: [[B]]"


def garbage(a: str, b: str) -> str:
    return "Both answers have merits; I cannot decide."


def biased(a: str, b: str) -> str:
    return "My final verdict is [[A>B]]"


BETTER = [(f"bad {i}", f"good {i}") for i in range(6)]  # the candidate is better on every row


def test_an_order_not_read_gives_the_pair_no_verdict_and_a_judge_error(tmp_path: Path) -> None:
    def half_read(a: str, b: str) -> str:
        return fair(a, b) if a.startswith("bad") else "I lean towards the first one."

    pairwise = judged(tmp_path, BETTER[:1], half_read)
    got = pairwise.select("winner_AB", "winner_BA", "verdict", "consistent").row(0)
    assert got == ("B", None, None, None)
    assert pairwise["judge_error_BA"][0].startswith("no winner")
    assert pairwise["judge_error_AB"][0] is None
    assert pairwise["judge_error"][0] == "BA: " + pairwise["judge_error_BA"][0]


def test_a_failed_judge_call_is_a_judge_error_not_a_tie(tmp_path: Path) -> None:
    pairwise = judged(tmp_path, BETTER[:2], lambda a, b: None)
    assert pairwise["verdict"].to_list() == [None, None]
    assert pairwise["judge_error_AB"].to_list() == ["judge call failed: HTTP 502 bad gateway"] * 2
    assert pairwise["judge_error"][0] == (
        "AB: judge call failed: HTTP 502 bad gateway; BA: judge call failed: HTTP 502 bad gateway"
    )


def test_an_all_garbage_judge_gives_null_verdicts_and_no_win_rate(tmp_path: Path) -> None:
    pairwise = judged(tmp_path, BETTER, garbage)
    assert pairwise["verdict"].null_count() == len(BETTER)
    assert pairwise["winner_AB"].null_count() == pairwise["winner_BA"].null_count() == len(BETTER)
    metrics = pairwise_metrics(pairwise).row(0, named=True)
    assert (metrics["pairwise_pairs"], metrics["pairwise_unread"]) == (0, len(BETTER))
    assert metrics["pairwise_win_rate"] is None
    assert metrics["pairwise_win_rate_ci_low"] is None
    assert metrics["pairwise_p_value"] is None
    assert metrics["judge_position_consistency"] is None


def test_identical_outputs_alone_do_not_make_a_win_rate_when_the_judge_read_nothing(
    tmp_path: Path,
) -> None:
    outputs = [("same", "same")] * 4 + BETTER[:2]
    metrics = pairwise_metrics(judged(tmp_path, outputs, garbage)).row(0, named=True)
    assert (metrics["pairwise_ties"], metrics["pairwise_unread"]) == (4, 2)
    assert metrics["pairwise_win_rate"] is None


def test_identical_outputs_only_are_ties_that_need_no_judge(tmp_path: Path) -> None:
    pairwise = judged(tmp_path, [("same", "same")] * 3, garbage)
    assert pairwise["verdict"].to_list() == ["tie"] * 3
    assert pairwise["judge_error"].to_list() == [None] * 3
    assert pairwise_metrics(pairwise)["pairwise_win_rate"].to_list() == [0.5]


def test_the_win_rate_interval_and_sign_test_count_pairs_with_a_verdict_only(
    tmp_path: Path,
) -> None:
    def fails_on_two(a: str, b: str) -> str | None:
        return None if a in ("bad 4", "good 4", "bad 5", "good 5") else fair(a, b)

    metrics = pairwise_metrics(judged(tmp_path, BETTER, fails_on_two)).row(0, named=True)
    assert (metrics["pairwise_wins"], metrics["pairwise_pairs"]) == (4, 4)
    assert metrics["pairwise_unread"] == 2
    assert metrics["pairwise_win_rate"] == 1.0  # not (4 + 2 / 2) / 6, as ties would make it
    assert (metrics["pairwise_win_rate_ci_low"], metrics["pairwise_win_rate_ci_high"]) == (
        stats.wilson_interval(4, 4)
    )
    assert metrics["pairwise_p_value"] == stats.mcnemar_exact(4, 0)


def test_consistency_is_the_share_of_pairs_read_in_both_orders_that_agree(
    tmp_path: Path,
) -> None:
    def mixed(a: str, b: str) -> str:
        if "0" in a:  # row 0: both orders say A, a position bias
            return "[[A]]"
        if "1" in a and a.startswith("good"):  # row 1: one order not read
            return "no verdict"
        return fair(a, b)

    pairwise = judged(tmp_path, BETTER[:4], mixed)
    assert pairwise["consistent"].to_list() == [False, None, True, True]
    assert pairwise["verdict"].to_list() == ["tie", None, "win", "win"]
    metrics = pairwise_metrics(pairwise).row(0, named=True)
    assert metrics["judge_position_consistency"] == pytest.approx(2 / 3)


def test_arena_hard_strength_is_kept_per_order_and_per_pair(tmp_path: Path) -> None:
    def arena(a: str, b: str) -> str:
        row_id = a.split()[-1]
        good = "A" if a.startswith("good") else "B"
        bad = "B" if good == "A" else "A"
        if row_id == "0":
            return f"My final verdict is [[{good}>>{bad}]]"
        if row_id == "1":
            return f"My final verdict is [[{good}>{bad}]]" if good == "A" else "[[B>>A]]"
        return "My final verdict is tie: [[A=B]]"

    pairwise = judged(tmp_path, BETTER[:3], arena)
    assert pairwise["verdict"].to_list() == ["win", "win", "tie"]
    assert pairwise["strength"].to_list() == ["strong", "slight", None]
    assert pairwise["strength_AB"].to_list() == ["strong", "strong", None]
    assert pairwise["strength_BA"].to_list() == ["strong", "slight", None]


def test_a_pairwise_pattern_reads_a_teams_own_verdict_words(tmp_path: Path) -> None:
    def own(a: str, b: str) -> str:
        return "Preferred: first" if a.startswith("good") else "Preferred: second. Done."

    pattern = compile_pattern(r"Preferred: (\w+)", "--pairwise-pattern")
    pairwise = judged(tmp_path, BETTER[:2], own, pattern=pattern)
    # 'first' and 'second' are not A, B or a tie word: an error naming what was read.
    assert pairwise["verdict"].to_list() == [None, None]
    assert "'first'" in pairwise["judge_error_BA"][0]

    def letters(a: str, b: str) -> str:
        return "Preferred: " + ("a" if a.startswith("good") else "b")  # any case

    again = judged(tmp_path, BETTER[:2], letters, pattern=pattern)
    assert again["verdict"].to_list() == ["win", "win"]


# ------------------------------------------------------------------------------------ gates


def gate(
    outputs: list[tuple[str, str]], judge: Judge, tmp_path: Path, gates: Gates
) -> RegressionReport:
    return gate_variants(
        results_of(outputs), "base", gates, pairwise=judged(tmp_path, outputs, judge)
    )


def test_min_win_rate_fails_with_nothing_to_measure_when_no_pair_has_a_verdict(
    tmp_path: Path,
) -> None:
    report = gate(BETTER, garbage, tmp_path, Gates(min_win_rate=0.45))
    assert not report.passed
    failed = [g.describe() for g in report.failures]
    assert failed == [
        "--min-win-rate on cand: not measurable, limit ≥ 0.450: FAIL (nothing to measure)"
    ]
    with pytest.raises(GateFailed, match="nothing to measure"):
        report.raise_if_failed()


def test_a_position_biased_judge_fails_the_default_consistency_gate(tmp_path: Path) -> None:
    report = gate(BETTER, biased, tmp_path, Gates(min_win_rate=0.45))
    by_gate = {g.gate: g for g in report.gates}
    assert by_gate["min_win_rate"].passed  # every pair a tie: 0.5, as the bias would have it
    consistency = by_gate["min_judge_consistency"]
    assert (consistency.measured, consistency.limit, consistency.passed) == (0.0, 0.6, False)
    assert consistency.describe() == (
        "--min-judge-consistency on cand: measured 0.000, limit ≥ 0.600: FAIL"
    )
    assert not report.passed


def test_a_fair_judge_passes_the_default_consistency_gate(tmp_path: Path) -> None:
    report = gate(BETTER, fair, tmp_path, Gates(min_win_rate=0.45))
    assert report.passed
    assert {g.gate: g.measured for g in report.gates}["min_judge_consistency"] == 1.0


def test_an_explicit_consistency_limit_replaces_the_default(tmp_path: Path) -> None:
    loose = gate(BETTER, biased, tmp_path, Gates(min_win_rate=0.45, min_judge_consistency=0.0))
    assert loose.passed
    strict = gate(BETTER, fair, tmp_path, Gates(min_judge_consistency=1.0))
    assert strict.passed and "min_judge_consistency" in {g.gate for g in strict.gates}


def test_the_consistency_gate_is_on_only_with_a_pairwise_gate_or_asked_for() -> None:
    assert Gates(min_win_rate=0.5).judge_consistency_limit == DEFAULT_JUDGE_CONSISTENCY == 0.6
    assert Gates(max_score_drop_points=1.0).judge_consistency_limit is None
    assert Gates(min_judge_consistency=0.8).judge_consistency_limit == 0.8


def test_an_asked_for_consistency_gate_with_nothing_to_measure_fails(tmp_path: Path) -> None:
    explicit = gate(BETTER, garbage, tmp_path, Gates(min_judge_consistency=0.6))
    assert [g.describe() for g in explicit.failures] == [
        "--min-judge-consistency on cand: not measurable, limit ≥ 0.600: FAIL (nothing to measure)"
    ]
    # As the default beside --min-win-rate, only the win-rate gate says there is nothing.
    implicit = gate(BETTER, garbage, tmp_path, Gates(min_win_rate=0.45))
    assert [g.gate for g in implicit.failures] == ["min_win_rate"]


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_consistency_limit_must_be_a_share(share: float) -> None:
    with pytest.raises(ConfigError, match="--min-judge-consistency"):
        Gates(min_judge_consistency=share)


def test_runner_gate_takes_min_judge_consistency(tmp_path: Path) -> None:
    out = write_run(tmp_path / "out", results_of(BETTER))
    biased_pairs = judged(tmp_path, BETTER, biased)
    biased_pairs.write_parquet(out / "pairwise.parquet")
    cli = CliRunner()
    failed = cli.invoke(main, ["gate", str(out), "--min-win-rate", "0.45"])
    assert failed.exit_code == 1, failed.output
    assert "--min-judge-consistency on cand: measured 0.000" in failed.output
    allowed = cli.invoke(
        main, ["gate", str(out), "--min-win-rate", "0.45", "--min-judge-consistency", "0"]
    )
    assert allowed.exit_code == 0, allowed.output


def test_a_position_bias_warning_below_one_half() -> None:
    warning = position_bias_warning(0.3)
    assert warning is not None and warning.startswith("the judge prefers a position")
    assert "30.0 %" in warning
    assert position_bias_warning(0.5) is None
    assert position_bias_warning(None) is None
