"""Gated comparisons written to disk: regression.md/.parquet, gate.md/.parquet, and the
refusal of runs that did not finish."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from runner.errors import ConfigError, GateFailed
from runner.gates._gates import Gates
from runner.gates._regression import gate_run, write_regression
from runner.report._report import build_reports
from tests.reports_helpers import answers, frame, write_run


def _two_runs(tmp_path: Path, cand_right: int, cand_status: str = "complete") -> tuple[Path, Path]:
    base = write_run(tmp_path / "base", frame(answers("v", 18, total=20)), run_id="r-base")
    cand = write_run(
        tmp_path / "cand",
        frame(answers("v", cand_right, total=20)),
        run_id="r-cand",
        status=cand_status,
    )
    return base, cand


def test_compare_passes_an_unchanged_rerun(tmp_path: Path) -> None:
    base, cand = _two_runs(tmp_path, cand_right=18)
    gates = Gates(max_score_drop_points=2.0, min_agreement=0.95)
    report = write_regression(base, cand, tmp_path / "out", gates, score="exact")
    assert report.passed
    report.raise_if_failed()
    markdown = (tmp_path / "out" / "regression.md").read_text()
    assert markdown.startswith("## Regression check: PASS")
    assert markdown.endswith("\n")


def test_compare_fails_a_seeded_regression_and_names_gate_value_and_limit(tmp_path: Path) -> None:
    """18 → 8 right of 20: -50 points, McNemar on 10 discordant pairs p = 0.002."""
    base, cand = _two_runs(tmp_path, cand_right=8)
    gates = Gates(max_score_drop_points=2.0, min_agreement=0.95, require_significance=0.05)
    report = write_regression(base, cand, tmp_path / "out", gates, score="exact")
    assert not report.passed
    markdown = (tmp_path / "out" / "regression.md").read_text(encoding="utf-8")
    assert markdown.startswith("## Regression check: FAIL")
    # One sign for a drop everywhere: the gate, the verdict and the metrics table.
    assert (
        "| `--max-score-drop` | v | -50.00 points | ≥ -2.00 points | 0.002 | **FAIL** |" in markdown
    )
    assert "| `--min-agreement` | v | 0.500 | ≥ 0.950 |  | **FAIL** |" in markdown
    assert "- v: worse on exact match: -50.0 points, 95 % CI [" in markdown
    assert "| v | 20 | 100.0 % | 90.0 % → 40.0 % | -50.0 [" in markdown
    assert "`r-base`" in markdown and "`r-cand`" in markdown
    with pytest.raises(GateFailed, match=r"--max-score-drop on v: measured -50\.00 points"):
        report.raise_if_failed()
    metrics = pl.read_parquet(tmp_path / "out" / "regression.parquet")
    assert metrics.select("variant", "pairs", "score_diff", "passed").row(0) == (
        "v", 20, pytest.approx(-0.5), False,
    )  # fmt: skip
    prov = json.loads(
        (pq.read_schema(tmp_path / "out" / "regression.parquet").metadata or {})[
            b"runner.provenance"
        ]
    )
    assert prov["baseline"]["run_id"] == "r-base"
    assert prov["gates"]["max_score_drop_points"] == 2.0


def test_compare_warns_when_the_datasets_differ(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", frame(answers("v", 5)), fingerprint="fp-1")
    cand = write_run(tmp_path / "cand", frame(answers("v", 5)), fingerprint="fp-2")
    write_regression(base, cand, tmp_path / "out", Gates())
    markdown = (tmp_path / "out" / "regression.md").read_text(encoding="utf-8")
    assert "dataset fingerprints differ" in markdown
    assert "No gate was set." in markdown


def test_compare_never_says_no_gate_was_set_when_one_was(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", frame(answers("v1", 5)))
    cand = write_run(tmp_path / "cand", frame(answers("v2", 5)))
    report = write_regression(base, cand, tmp_path / "out", Gates(max_score_drop_points=2.0))
    markdown = (tmp_path / "out" / "regression.md").read_text(encoding="utf-8")
    assert not report.passed
    assert "No gate was set" not in markdown
    assert "pair them with --variant-map v1=v2" in markdown


def test_compare_refuses_runs_scored_differently(tmp_path: Path) -> None:
    base, cand = _two_runs(tmp_path, cand_right=18)
    build_reports(base, score="exact")
    build_reports(cand, score="normalized")
    with pytest.raises(ConfigError, match="scored differently"):
        write_regression(base, cand, tmp_path / "out", Gates(max_score_drop_points=1.0))


def test_a_run_never_scored_is_scored_as_the_other_was(tmp_path: Path) -> None:
    base, cand = _two_runs(tmp_path, cand_right=8)
    build_reports(base, score="exact")
    report = write_regression(base, cand, tmp_path / "out", Gates(max_score_drop_points=2.0))
    assert report.metrics["score_diff"][0] == pytest.approx(-0.5)


def test_an_interrupted_candidate_is_refused_before_any_scoring_question(tmp_path: Path) -> None:
    """Even with scores that differ, the first thing said is the true cause."""
    base, cand = _two_runs(tmp_path, cand_right=18, cand_status="interrupted")
    build_reports(base, score="exact")
    build_reports(cand, score="normalized")
    with pytest.raises(GateFailed, match=rf"candidate run {cand} is not complete \(status: interr"):
        write_regression(base, cand, tmp_path / "out", Gates(max_score_drop_points=2.0))
    assert not (tmp_path / "out" / "regression.md").exists()


def test_allow_incomplete_gates_on_what_an_interrupted_run_holds(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", frame(answers("v", 20, total=20)))
    cand = write_run(tmp_path / "cand", frame(answers("v", 5, total=5)), status="interrupted")
    gates = Gates(max_score_drop_points=2.0)
    partial = write_regression(
        base, cand, tmp_path / "out", gates, score="exact", allow_incomplete=True
    )
    assert [g.gate for g in partial.failures] == ["min_coverage"]
    markdown = (tmp_path / "out" / "regression.md").read_text(encoding="utf-8")
    assert "is not complete (status: interrupted)" in markdown
    lowered = Gates(max_score_drop_points=2.0, min_coverage=0.25)
    assert write_regression(
        base, cand, tmp_path / "out", lowered, score="exact", allow_incomplete=True
    ).passed


def test_require_significance_computes_the_shown_interval_at_one_minus_alpha(
    tmp_path: Path,
) -> None:
    base, cand = _two_runs(tmp_path, cand_right=8)
    gates = Gates(max_score_drop_points=2.0, require_significance=0.01)
    write_regression(base, cand, tmp_path / "out", gates, score="exact")
    markdown = (tmp_path / "out" / "regression.md").read_text(encoding="utf-8")
    assert "99 % CI" in markdown


# ------------------------------------------------------------------------------- gate_run


def _ab_run(tmp_path: Path, cand_right: int, status: str = "complete") -> Path:
    rows = answers("a", 18, total=20) + answers("b", cand_right, total=20)
    return write_run(tmp_path / "ab", frame(rows), variants=["a", "b"], status=status)


def test_gate_run_writes_gate_md_and_parquet_and_fails_a_regression(tmp_path: Path) -> None:
    out = _ab_run(tmp_path, cand_right=8)
    report = gate_run(out, Gates(max_score_drop_points=2.0), score="exact")
    assert not report.passed
    markdown = (out / "gate.md").read_text(encoding="utf-8")
    assert markdown.startswith("## Gate: variants against a: FAIL")
    assert "| `--max-score-drop` | b | -50.00 points |" in markdown
    metrics = pl.read_parquet(out / "gate.parquet")
    assert metrics.select("baseline_variant", "variant", "passed").row(0) == ("a", "b", False)


def test_gate_run_passes_identical_variants_with_stored_scores(tmp_path: Path) -> None:
    out = _ab_run(tmp_path, cand_right=18)
    build_reports(out, score="exact")
    assert gate_run(out, Gates(max_score_drop_points=2.0)).passed


def test_gate_run_refuses_an_interrupted_run(tmp_path: Path) -> None:
    out = _ab_run(tmp_path, cand_right=18, status="interrupted")
    with pytest.raises(GateFailed, match="not complete"):
        gate_run(out, Gates(max_score_drop_points=2.0), score="exact")
    assert gate_run(out, Gates(max_score_drop_points=2.0), score="exact", allow_incomplete=True)
