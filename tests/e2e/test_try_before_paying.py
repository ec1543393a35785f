"""Try a big table cheaply: a reproducible sample, a dry run that sends nothing, and the
metadata columns kept in the results for segment breakdowns."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import Result

from runner.run._preflight import choose_sample
from runner.simulator import SimulatorConfig, SimulatorServer, VariantProfile
from runner.store._results import read_results
from tests.support import cli

ROWS = 200


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "rows.parquet"
    pl.DataFrame(
        {
            "id": list(range(ROWS)),
            "q": [f"question {i}" for i in range(ROWS)],
            "region": ["eu" if i % 3 else "us" for i in range(ROWS)],
        }
    ).write_parquet(path)
    return path


def run(url: str, dataset: Path, out: Path, *extra: str) -> Result:
    return cli(
        "run", str(dataset), "-d", "support-reply", "-v", "a", "-v", "b", "--base-url", url,
        "--out", str(out), "--metadata-column", "region", *extra,
    )  # fmt: skip


def test_a_sample_is_the_same_rows_every_time_and_depends_on_the_seed() -> None:
    ids = [str(i) for i in range(1000)]
    first = choose_sample(ids, 50, seed=7)
    assert len(first) == 50
    assert choose_sample(reversed(ids), 50, seed=7) == first  # order of reading does not matter
    assert choose_sample(ids, 50, seed=8) != first


def test_sample_runs_pick_the_same_rows_twice(dataset: Path, tmp_path: Path) -> None:
    with SimulatorServer(SimulatorConfig()) as sim:
        for name in ("one", "two"):
            result = run(sim.base_url, dataset, tmp_path / name, "--sample", "25", "--seed", "3")
            assert result.exit_code == 0, result.output
        assert sim.stats.requests == 2 * 25 * 2
    one, two = (set(read_results(tmp_path / n)["row_id"]) for n in ("one", "two"))
    assert one == two and len(one) == 25
    assert one == choose_sample((str(i) for i in range(ROWS)), 25, seed=3)


def test_a_sample_resumes_to_the_same_rows(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with SimulatorServer(SimulatorConfig(daily_limit=20)) as capped:
        aborted = run(capped.base_url, dataset, out, "--sample", "40")
        assert aborted.exit_code == 3, aborted.output
    with SimulatorServer(SimulatorConfig()) as sim:
        resumed = run(sim.base_url, dataset, out, "--sample", "40", "--resume")
        assert resumed.exit_code == 0, resumed.output
        assert sim.stats.requests == 80 - 20  # the rest of the sample, nothing twice
    results = read_results(out)
    assert set(results["row_id"]) == choose_sample((str(i) for i in range(ROWS)), 40, seed=0)
    assert results.height == 80


def test_a_dry_run_sends_nothing_writes_nothing_and_counts_right(
    dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with SimulatorServer(SimulatorConfig()) as sim:
        planned = run(sim.base_url, dataset, out, "--dry-run")
        assert planned.exit_code == 0, planned.output
        assert f"{ROWS} rows × 2 variant(s) × 1 repeat(s) = {2 * ROWS} calls" in planned.output
        assert f"{2 * ROWS} would be sent" in planned.output
        assert not out.exists()
        sampled = run(sim.base_url, dataset, out, "--dry-run", "--sample", "30")
        assert "= 60 calls" in sampled.output
        assert sim.stats.requests == 0


def test_a_dry_run_of_a_resume_counts_the_calls_still_to_send(
    dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with SimulatorServer(SimulatorConfig(daily_limit=50)) as capped:
        assert run(capped.base_url, dataset, out).exit_code == 3
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with SimulatorServer(SimulatorConfig()) as sim:
        planned = run(sim.base_url, dataset, out, "--dry-run", "--resume")
        assert planned.exit_code == 0, planned.output
        assert f"50 already have an outcome in {out}; {2 * ROWS - 50} would be sent" in (
            planned.output
        )
        assert sim.stats.requests == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_a_dry_run_makes_every_check_a_run_makes(dataset: Path, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    result = run("http://127.0.0.1:9/v1", dataset, tmp_path / "full", "--dry-run")
    assert result.exit_code == 2
    assert "not empty" in result.output


def test_metadata_columns_are_kept_in_the_results(dataset: Path, tmp_path: Path) -> None:
    with SimulatorServer(SimulatorConfig()) as sim:
        assert run(sim.base_url, dataset, tmp_path / "out", "--limit", "6").exit_code == 0
    results = read_results(tmp_path / "out")
    regions = [
        json.loads(m)["region"] for m in results.filter(pl.col("variant") == "a")["metadata"]
    ]
    assert regions == ["us", "eu", "eu", "us", "eu", "eu"]


def test_run_export_hands_back_the_dataset_with_its_new_columns(
    dataset: Path, tmp_path: Path
) -> None:
    """`runner run … --export PATH`: the original table, same columns and types (the integer
    id stays an integer), plus each variant's output and status, when the run ends."""
    target = tmp_path / "with_outputs.parquet"
    with SimulatorServer(SimulatorConfig()) as sim:
        result = run(sim.base_url, dataset, tmp_path / "out", "--limit", "12", "--export",
                     str(target))  # fmt: skip
        assert result.exit_code == 0, result.output
    exported = pl.read_parquet(target)
    original = pl.read_parquet(dataset).head(12)  # the run's rows: --limit 12
    assert exported.select(original.columns).equals(original)
    assert exported.schema["id"] == pl.Int64
    assert exported["status_a"].to_list() == exported["status_b"].to_list() == ["ok"] * 12
    assert exported["output_b"].null_count() == 0


def test_no_report_writes_no_report_and_report_writes_them_later(
    dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with SimulatorServer(SimulatorConfig()) as sim:
        quiet = run(sim.base_url, dataset, out, "--limit", "5", "--no-report")
        assert quiet.exit_code == 0, quiet.output
        assert not (out / "report.html").exists() and not (out / "summary.parquet").exists()
        assert (  # where the results are, and how to get the report later
            f"results in {out / 'results.parquet'}: 10 ok, 0 errors; no report (--no-report): "
            f"runner report {out} writes it"
        ) in quiet.stderr
        assert cli("report", str(out)).exit_code == 0
        assert sim.stats.requests == 10
    assert (out / "report.html").exists()


def test_no_report_still_applies_the_gates(dataset: Path, tmp_path: Path) -> None:
    """A nightly backfill with --no-report and a gate must fail when the gate fails."""
    out = tmp_path / "out"
    worse_b = SimulatorConfig(variants={"b": VariantProfile(wrong_rate=0.5)})
    with SimulatorServer(worse_b) as sim:
        result = run(
            sim.base_url, dataset, out, "--limit", "20", "--no-report", "--min-agreement", "0.9"
        )
    assert result.exit_code == 1, result.output
    assert "--min-agreement on b" in result.output
    assert (out / "gate.md").exists() and not (out / "report.html").exists()


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (("--segment-column", "nope"), ("--segment-column 'nope'", "metadata: region")),
        (("--min-agreement", "1.5"), ("--min-agreement",)),
    ],
    ids=["an unknown segment column", "a bad gate option"],
)
def test_a_bad_option_is_refused_before_anything_is_sent(
    dataset: Path, tmp_path: Path, flags: tuple[str, ...], named: tuple[str, ...]
) -> None:
    with SimulatorServer(SimulatorConfig()) as sim:
        result = run(sim.base_url, dataset, tmp_path / "out", *flags)
        assert result.exit_code == 2, result.output
        assert all(words in result.output for words in named), result.output
        assert sim.stats.requests == 0
    assert not (tmp_path / "out").exists()


def test_a_large_runs_end_runs_in_a_fresh_process_with_the_same_outcome(
    dataset: Path, tmp_path: Path
) -> None:
    """Past --fresh-process-from calls the run replaces itself (exec) with its last steps —
    compaction, export, reports, gates, budget — so their memory starts from a fresh process.
    The user sees the same output and the same exit code."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "FETCH_HIVE_API_KEY": ""}
    out, export = tmp_path / "out", tmp_path / "export.csv"
    worse_b = SimulatorConfig(variants={"b": VariantProfile(wrong_rate=0.5)})
    with SimulatorServer(worse_b) as sim:
        proc = subprocess.run(
            [sys.executable, "-m", "runner", "run", str(dataset), "-d", "support-reply",
             "-v", "a", "-v", "b", "--base-url", sim.base_url, "--out", str(out),
             "--limit", "20", "--segment-column", "region", "--export", str(export),
             "--min-agreement", "0.9", "--fresh-process-from", "1"],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        assert sim.stats.requests == 40
    # b answers half the rows with another label: agreement about 0.5, the gate fails.
    assert proc.returncode == 1, proc.stderr
    assert "--min-agreement on b" in proc.stdout + proc.stderr
    for name in ("report.html", "summary_by_segment.parquet", "gate.md", "experiment.toml"):
        assert (out / name).exists(), name
    assert pl.read_csv(export).height == 20
    assert "results in" in proc.stdout  # the summary table, printed by the fresh process
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["status"], manifest["counts"]) == ("complete", {"ok": 40, "error": 0})
    assert read_results(out).height == 40  # compacted by the fresh process
    assert proc.stderr.count("finishing: compacting the journal") == 1


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (("--baseline-variant", "c"), "--baseline-variant 'c'"),
        (("--judge-pattern", r"\[\[(\d+)\]\]"), "--judge-pattern"),
        (("--pairwise-pattern", r"\[\[([AB])\]\]"), "--pairwise-pattern"),
        (("--min-win-rate", "0.5"), "--min-win-rate reads the pairwise judge's verdicts"),
        (("--min-judge-consistency", "0.8"), "--min-judge-consistency reads the pairwise"),
        (("--judge", "grader:v1", "--judge-var", "norubric"), "--judge-var 'norubric' is not"),
        (("--tag", "team"), "--tag 'team' is not KEY=VALUE"),
    ],
)
def test_an_option_that_cannot_apply_is_refused_before_any_call(
    dataset: Path, tmp_path: Path, options: tuple[str, ...], named: str
) -> None:
    out = tmp_path / "out"
    with SimulatorServer(SimulatorConfig()) as sim:
        refused = run(sim.base_url, dataset, out, *options)
        assert sim.stats.requests == 0
    assert refused.exit_code == 2, refused.output
    assert named in refused.output and not out.exists()


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (("--pairwise-judge", "grader:v2"), "--pairwise-judge needs a run with two or more"),
        (
            ("--max-score-drop", "1", "--score", "exact"),
            "the gates compare variants, and the run has one (a)",
        ),
    ],
)
def test_what_compares_variants_is_refused_on_one_variant_before_any_call(
    dataset: Path, tmp_path: Path, options: tuple[str, ...], said: str
) -> None:
    out = tmp_path / "out"
    with SimulatorServer(SimulatorConfig()) as sim:
        refused = cli(
            "run", str(dataset), "-d", "support-reply", "-v", "a", "--base-url", sim.base_url,
            "--out", str(out), *options,
        )  # fmt: skip
        assert sim.stats.requests == 0
    assert refused.exit_code == 2, refused.output
    assert said in refused.output and not out.exists()
