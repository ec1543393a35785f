"""Gates on hand-built frames: run against run, variants of one run, and nothing passes by
accident (unpaired variants, missing calls, unmeasurable values)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import pytest

from runner.errors import ConfigError, GateFailed
from runner.gates._gates import GateResult, Gates
from runner.gates._pairing import compare_runs, gate_variants, pair_variants
from tests.reports_helpers import frame, paired, row, with_scores


def _run(
    scores: Sequence[float | None], latency: float = 100.0, suffix: str = "", variant: str = "v"
) -> pl.DataFrame:
    rows = []
    for i, score in enumerate(scores):
        status = "ok" if score is not None else "error"
        out = f"out{i}" + (suffix if score == 0.0 else "")
        rows.append(row(f"r{i}", variant, out, expected="e", status=status, latency_ms=latency))
    return with_scores(frame(rows), scores)


ALL_GATES = Gates(
    max_error_rate_increase=2.0,
    max_p95_latency_increase_pct=20.0,
    max_score_drop_points=5.0,
    min_agreement=0.9,
)


def test_an_unchanged_rerun_passes_every_gate() -> None:
    base = _run([1.0] * 15 + [0.0] * 5)
    report = compare_runs(base, base, ALL_GATES)
    assert report.passed
    assert [(g.gate, g.measured, g.passed) for g in report.gates] == [
        ("min_coverage", 1.0, True),
        ("max_error_rate_increase", 0.0, True),
        ("max_p95_latency_increase_pct", 0.0, True),
        ("max_score_drop_points", 0.0, True),
        ("min_agreement", 1.0, True),
    ]
    assert report.metrics["passed"].to_list() == [True]


def test_a_seeded_regression_fails_the_gates_it_breaks() -> None:
    """On the 18 rows scored in both: 15 → 9 right (-33.3 points); +2 errors in 20 rows
    (+10 points); p95 100 → 150 ms (+50 %); 9 of 18 outputs identical."""
    base = _run([1.0] * 15 + [0.0] * 5)
    cand = _run([1.0] * 9 + [0.0] * 9 + [None] * 2, latency=150.0, suffix="!")
    report = compare_runs(base, cand, ALL_GATES)
    assert not report.passed
    failed = {g.gate: g for g in report.failures}
    assert set(failed) == {
        "max_error_rate_increase", "max_p95_latency_increase_pct", "max_score_drop_points",
        "min_agreement",
    }  # fmt: skip
    # A drop is negative, as in every other report: the change must stay >= -5 points.
    assert failed["max_score_drop_points"].measured == pytest.approx(-100 * 6 / 18)
    assert failed["max_score_drop_points"].limit == -5.0
    assert failed["max_error_rate_increase"].measured == pytest.approx(10.0)
    assert failed["max_p95_latency_increase_pct"].measured == pytest.approx(50.0)
    assert failed["min_agreement"].measured == pytest.approx(9 / 18)
    assert report.metrics["passed"].to_list() == [False]


def test_a_failed_gate_names_its_measured_value_and_limit() -> None:
    gate = GateResult("max_score_drop_points", "v", -30.0, -5.0, passed=False, at_least=True)
    assert gate.describe() == (
        "--max-score-drop on v: measured -30.00 points, limit ≥ -5.00 points: FAIL"
    )


def test_raise_if_failed_raises_gate_failed_naming_the_gate() -> None:
    report = compare_runs(_run([1.0] * 10), _run([0.0] * 10, suffix="!"), ALL_GATES)
    with pytest.raises(GateFailed, match=r"--max-score-drop on v: measured -100\.00 points"):
        report.raise_if_failed()


def test_require_significance_lets_a_non_significant_drop_pass() -> None:
    """One row of 20 lost: -5 points, over a 2-point limit, but McNemar p = 1."""
    base, cand = _run([1.0] * 20), _run([1.0] * 19 + [0.0], suffix="!")
    strict = compare_runs(base, cand, Gates(max_score_drop_points=2.0))
    lenient = compare_runs(base, cand, Gates(max_score_drop_points=2.0, require_significance=0.05))
    assert not strict.passed
    assert lenient.passed
    score_gate = next(g for g in lenient.gates if g.gate == "max_score_drop_points")
    assert score_gate.note == "not significant at 0.05"
    assert score_gate.p_value == pytest.approx(1.0)


def test_require_significance_reads_the_test_the_comparison_names() -> None:
    """Graded scores: the paired t-test decides, and its p-value is the one in the metrics."""
    base = _run([0.9, 0.8, 0.7, 0.9, 0.8, 0.9])
    cand = _run([0.5, 0.4, 0.3, 0.5, 0.4, 0.6], suffix="")
    report = compare_runs(base, cand, Gates(max_score_drop_points=2.0, require_significance=0.05))
    metrics = report.metrics.row(0, named=True)
    gate = next(g for g in report.gates if g.gate == "max_score_drop_points")
    assert metrics["score_test"] == "paired_t"
    assert gate.p_value == metrics["score_p_value"] < 0.05
    assert not gate.passed


def test_a_gate_that_cannot_be_measured_fails() -> None:
    base = _run([1.0] * 3).with_columns(pl.lit(None, dtype=pl.Float64).alias("score"))
    report = compare_runs(base, base, Gates(max_score_drop_points=1.0))
    assert not report.passed
    gate = next(g for g in report.gates if g.gate == "max_score_drop_points")
    assert gate.measured is None
    assert "not measurable" in gate.describe()


def test_rows_and_variants_without_a_partner_are_counted() -> None:
    base = pl.concat([_run([1.0] * 5), paired([1.0], [1.0], names=("old", "older"))])
    cand = _run([1.0] * 3)
    report = compare_runs(base, cand, Gates())
    assert report.unmatched_baseline == 4
    assert report.unmatched_candidate == 0
    assert report.only_in_baseline == ("old", "older")
    assert report.metrics["variant"].to_list() == ["v"]
    assert report.passed and not report.gates_set  # no gate asked for: nothing can fail


# ------------------------------------------------------------------ nothing passes by accident


def test_renamed_variants_fail_a_gate_and_say_how_to_pair_them() -> None:
    base, cand = _run([1.0] * 5, variant="v1"), _run([1.0] * 5, variant="v2")
    report = compare_runs(base, cand, Gates(max_score_drop_points=2.0))
    assert not report.passed
    messages = [g.describe() for g in report.failures]
    assert messages == [
        "variant v1 of the baseline has no counterpart in the candidate (candidate has v2); "
        "pair them with --variant-map v1=v2: FAIL",
        "variant v2 of the candidate has no counterpart in the baseline (baseline has v1); "
        "pair them with --variant-map v1=v2: FAIL",
    ]
    assert report.gates_set


def test_a_variant_map_pairs_renamed_variants_and_applies_the_gate() -> None:
    base = _run([1.0] * 10, variant="v1")
    cand = _run([1.0] * 5 + [0.0] * 5, variant="v2", suffix="!")
    report = compare_runs(base, cand, Gates(max_score_drop_points=2.0), variant_map={"v1": "v2"})
    assert [(g.gate, g.variant, g.passed) for g in report.gates] == [
        ("min_coverage", "v2 (baseline v1)", True),
        ("max_score_drop_points", "v2 (baseline v1)", False),
    ]
    assert report.metrics.select("baseline_variant", "variant").row(0) == ("v1", "v2")


def test_a_variant_map_naming_a_missing_variant_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"--variant-map v1=v9: the candidate has no variant"):
        pair_variants(["v1"], ["v2"], {"v1": "v9"})


def test_a_partial_candidate_fails_the_default_coverage_gate() -> None:
    """146 of 1,000 calls: every gate set implies --min-coverage 1.0."""
    base, cand = _run([1.0] * 1000), _run([1.0] * 146)
    report = compare_runs(base, cand, Gates(max_score_drop_points=2.0))
    coverage = report.failures[0]
    assert coverage.gate == "min_coverage"
    assert coverage.measured == pytest.approx(0.146)
    assert "146 of 1,000 baseline calls have a partner" in coverage.describe()


def test_an_explicit_min_coverage_allows_a_partial_candidate() -> None:
    base, cand = _run([1.0] * 100), _run([1.0] * 95)
    assert compare_runs(base, cand, Gates(max_score_drop_points=2.0, min_coverage=0.9)).passed
    assert not compare_runs(base, cand, Gates(min_coverage=0.96)).passed


def test_no_gate_no_coverage_gate() -> None:
    assert Gates().coverage_limit is None
    assert Gates(min_agreement=0.5).coverage_limit == 1.0
    assert Gates(min_coverage=0.5).coverage_limit == 0.5


# ------------------------------------------------------------------------- one run's variants


def test_gate_variants_fails_a_seeded_regression_inside_one_run() -> None:
    results = pl.concat([_run([1.0] * 10, variant="a"), _run([0.0] * 10, variant="b", suffix="!")])
    report = gate_variants(results, "a", Gates(max_score_drop_points=2.0))
    assert not report.passed
    assert report.metrics.select("baseline_variant", "variant", "passed").row(0) == (
        "a",
        "b",
        False,
    )


def test_gate_variants_passes_identical_variants() -> None:
    results = pl.concat([_run([1.0] * 10, variant="a"), _run([1.0] * 10, variant="b")])
    assert gate_variants(results, "a", ALL_GATES).passed


def test_gate_variants_on_a_single_variant_run_fails_rather_than_passing_nothing() -> None:
    report = gate_variants(_run([1.0] * 3, variant="a"), "a", Gates(max_score_drop_points=1.0))
    assert not report.passed
    assert "one variant only" in report.failures[0].describe()


@pytest.mark.parametrize(
    "gates",
    [
        {"max_score_drop_points": -1.0},
        {"min_agreement": 1.5},
        {"min_coverage": -0.1},
        {"require_significance": 0.0},
        {"max_p95_latency_increase_pct": float("nan")},
    ],
)
def test_gates_reject_impossible_limits(gates: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        Gates(**gates)
