"""`runner compare`, `runner gate` and `runner report` on small run directories built on disk."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.store._results import read_results
from tests.reports_helpers import answers, frame, row, write_run
from tests.support import cli

GATE = ["--max-score-drop", "2"]


def _run(
    path: Path, variant: str, right: int, *, status: str = "complete", total: int = 20
) -> Path:
    return write_run(path, frame(answers(variant, right, total=total)), status=status)


def test_compare_with_renamed_variants_fails_and_says_how_to_pair_them(tmp_path: Path) -> None:
    base = _run(tmp_path / "last-night", "v1", 18)
    cand = _run(tmp_path / "tonight", "v2", 18)
    result = cli("compare", base, cand, *GATE, "--score", "exact")
    assert result.exit_code == 1, result.output
    assert "No gate was set" not in result.output
    assert (
        "variant v2 of the candidate has no counterpart in the baseline (baseline has v1); "
        "pair them with --variant-map v1=v2" in result.output
    )


def test_compare_with_a_variant_map_applies_the_gate(tmp_path: Path) -> None:
    base = _run(tmp_path / "last-night", "v1", 18)
    same = _run(tmp_path / "same", "v2", 18)
    worse = _run(tmp_path / "worse", "v2", 8)
    passed = cli("compare", base, same, *GATE, "--score", "exact", "--variant-map", "v1=v2")
    assert passed.exit_code == 0, passed.output
    failed = cli("compare", base, worse, *GATE, "--score", "exact", "--variant-map", "v1=v2")
    assert failed.exit_code == 1, failed.output
    assert "--max-score-drop on v2 (baseline v1): measured -50.00 points" in failed.output


def test_a_malformed_variant_map_is_a_usage_error(tmp_path: Path) -> None:
    base, cand = _run(tmp_path / "a", "v1", 18), _run(tmp_path / "b", "v2", 18)
    result = cli("compare", base, cand, *GATE, "--variant-map", "v1")
    assert result.exit_code == 2
    assert "expected BASE=CAND" in result.output


def test_compare_against_an_interrupted_run_fails_unless_allowed(tmp_path: Path) -> None:
    base = _run(tmp_path / "last-night", "v", 18, total=20)
    cand = _run(tmp_path / "tonight", "v", 5, status="interrupted", total=5)
    refused = cli("compare", base, cand, *GATE)
    assert refused.exit_code == 1, refused.output
    assert f"candidate run {cand} is not complete (status: interrupted)" in refused.output
    assert "scored differently" not in refused.output
    # Allowed, the missing calls still fail the default coverage gate: never a silent PASS.
    partial = cli("compare", base, cand, *GATE, "--score", "exact", "--allow-incomplete")
    assert partial.exit_code == 1, partial.output
    assert "--min-coverage on v: measured 0.250" in partial.output
    lowered = [*GATE, "--score", "exact", "--allow-incomplete", "--min-coverage", "0.25"]
    assert cli("compare", base, cand, *lowered).exit_code == 0


def killed_while_judging(run: Path) -> Path:
    """``run`` as a kill -9 in its judge stage leaves it: status complete, the stage running."""
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    manifest["stages"] = {"send": "done", "compact": "done", "judge": "running"}
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return run


def test_a_run_killed_while_judging_is_not_compared_or_gated_unless_allowed(
    tmp_path: Path,
) -> None:
    base = _run(tmp_path / "last-night", "v", 18)
    cand = killed_while_judging(_run(tmp_path / "tonight", "v", 18))
    refused = cli("compare", base, cand, *GATE, "--score", "exact")
    assert refused.exit_code == 1, refused.output
    assert f"candidate run {cand} is not finished: its judge stage was killed" in refused.output
    assert (
        cli("compare", base, cand, *GATE, "--score", "exact", "--allow-incomplete").exit_code == 0
    )
    rows = answers("baseline", 18) + answers("candidate", 18)
    one = killed_while_judging(write_run(tmp_path / "ab", frame(rows)))
    gated = cli("gate", one, *GATE, "--score", "exact")
    assert gated.exit_code == 1 and "its judge stage was killed" in gated.output, gated.output


def test_compare_prints_the_markdown_ending_in_one_newline(tmp_path: Path) -> None:
    base, cand = _run(tmp_path / "a", "v", 18), _run(tmp_path / "b", "v", 18)
    result = cli("compare", base, cand, *GATE, "--score", "exact")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("## Regression check: PASS")  # the pick is on stderr
    assert result.stdout.endswith("|\n")


def _ab(tmp_path: Path, cand_right: int) -> Path:
    rows = answers("baseline", 18, total=20) + answers("candidate", cand_right, total=20)
    return write_run(tmp_path / "ab", frame(rows), variants=["baseline", "candidate"])


def test_gate_fails_a_seeded_regression_inside_one_run(tmp_path: Path) -> None:
    out = _ab(tmp_path, cand_right=8)
    result = cli("gate", out, *GATE, "--score", "exact")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("## Gate: variants against baseline: FAIL")
    assert "--max-score-drop on candidate: measured -50.00 points" in result.output
    assert (out / "gate.md").is_file() and (out / "gate.parquet").is_file()


def test_gate_passes_identical_variants(tmp_path: Path) -> None:
    out = _ab(tmp_path, cand_right=18)
    result = cli("gate", out, *GATE, "--max-error-rate-increase", "1", "--score", "exact")
    assert result.exit_code == 0, result.output
    assert "## Gate: variants against baseline: PASS" in result.output


def test_gate_takes_the_baseline_variant_option(tmp_path: Path) -> None:
    out = _ab(tmp_path, cand_right=8)
    result = cli("gate", out, *GATE, "--score", "exact", "--baseline-variant", "candidate")
    assert result.exit_code == 0, result.output  # baseline improves on candidate: no drop


def test_gate_refuses_an_interrupted_run_unless_allowed(tmp_path: Path) -> None:
    rows = answers("baseline", 18) + answers("candidate", 18)
    out = write_run(tmp_path / "ab", frame(rows), status="aborted")
    refused = cli("gate", out, *GATE, "--score", "exact")
    assert refused.exit_code == 1
    assert "status: aborted" in refused.output
    assert cli("gate", out, *GATE, "--score", "exact", "--allow-incomplete").exit_code == 0


@pytest.fixture
def scorers(importable: Callable[[str, str], str]) -> str:
    return importable(
        "cli_scorers_h4",
        """
        def rubric(output, expected, row):
            return 1.0 if expected is None and output else 0.0

        def flaky(output, expected, row):
            if row['row_id'] == 'r1':
                raise RuntimeError('grader offline')
            return 1.0
        """,
    )


def test_report_with_a_reference_free_scorer_scores_every_row(tmp_path: Path, scorers: str) -> None:
    out = write_run(tmp_path / "run", frame([row(f"r{i}", "v", "an answer") for i in range(5)]))
    result = cli("report", out, "--score", f"{scorers}:rubric")
    assert result.exit_code == 0, result.output
    assert read_results(out)["score"].to_list() == [1.0] * 5


def test_report_with_a_scorer_raising_on_one_row_writes_everything(
    tmp_path: Path, scorers: str
) -> None:
    out = write_run(tmp_path / "run", frame(answers("v", 3, total=4)))
    result = cli("report", out, "--score", f"{scorers}:flaky")
    assert result.exit_code == 0, result.output
    assert "the scorer failed on 1 rows" in result.output
    results = read_results(out).sort("row_id")
    assert results.select("row_id", "score", "score_error").rows() == [
        ("r0", 1.0, None),
        ("r1", None, "RuntimeError: grader offline"),
        ("r2", 1.0, None),
        ("r3", 1.0, None),
    ]
    for name in ("summary.parquet", "report.html"):
        assert (out / name).is_file()
    assert not (out / "comparison.parquet").exists()  # one variant: nothing to compare


def test_report_says_once_how_many_rows_have_no_expected_value(tmp_path: Path) -> None:
    rows = [row("r0", "v", "Paris", expected="Paris"), row("r1", "v", "Paris"), row("r2", "v", "x")]
    out = write_run(tmp_path / "run", frame(rows))
    result = cli("report", out, "--score", "exact")
    assert result.exit_code == 0, result.output
    assert result.output.count("2 rows have no expected value: not scored") == 1
