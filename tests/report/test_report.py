"""Report files from a run directory, their wording, and report.html rendered in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal
from rich.console import Console

from runner.errors import ConfigError
from runner.report._console import summary_table
from runner.report._report import ReportPaths, build_reports
from runner.stats._compare import COMPARISON_SCHEMA
from runner.stats._words import verdict_lines
from runner.store._memory import MemoryPlan
from runner.store._results import read_results
from tests.reports_helpers import answers, frame, row, write_run

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """base: 4 of 10 exactly right, 9 of 10 once case is folded; cand: 9 right, 1 error."""
    rows = [
        *answers("base", 4, total=9, latency_ms=200.0),
        row("r9", "base", "<script>alert(1)</script>", expected="Paris", latency_ms=200.0),
        *answers("cand", 9, total=9, latency_ms=260.0),
        row("r9", "cand", status="error", error_type="timeout"),
    ]
    return write_run(tmp_path / "run", frame(rows), variants=["base", "cand"])


def read_comparison(paths: ReportPaths) -> pl.DataFrame:
    """comparison.parquet, which a report of two or more variants always writes."""
    assert paths.comparison is not None
    return pl.read_parquet(paths.comparison)


def test_build_reports_writes_every_report(run_dir: Path) -> None:
    paths = build_reports(run_dir, score="exact")
    for path in (paths.summary, paths.comparison, paths.side_by_side, paths.html):
        assert path is not None and path.is_file() and path.parent == run_dir
    assert paths.side_by_side is not None
    assert pl.read_parquet(paths.summary)["variant"].to_list() == ["base", "cand"]
    assert pl.read_parquet(paths.side_by_side).height == 10


def test_scores_land_beside_results_parquet_which_is_never_rewritten(run_dir: Path) -> None:
    before = (run_dir / "results.parquet").read_bytes()
    build_reports(run_dir, score="exact")
    assert (run_dir / "results.parquet").read_bytes() == before
    schema = pq.read_schema(run_dir / "scores.parquet")
    assert schema.remove_metadata() == pa.schema(
        [pa.field("score", pa.float64()), pa.field("score_error", pa.string())]
    )
    assert (schema.metadata or {})[b"runner.score"] == b"exact"
    results = read_results(run_dir)
    null_scores = results.group_by("status").agg(pl.col("score").null_count())
    assert dict(null_scores.iter_rows()) == {"ok": 0, "error": 1}


def test_another_scorer_rebuilds_the_reports(run_dir: Path) -> None:
    exact = pl.read_parquet(build_reports(run_dir, score="exact").summary)
    folded = pl.read_parquet(build_reports(run_dir, score="normalized").summary)
    assert exact["score_mean"].to_list() == [0.4, 1.0]
    assert folded["score_mean"].to_list() == [0.9, 1.0]  # only the <script> answer is wrong


def test_without_score_the_stored_scores_and_their_scorer_are_kept(run_dir: Path) -> None:
    build_reports(run_dir, score="normalized")
    paths = build_reports(run_dir)
    assert pl.read_parquet(paths.summary)["score_mean"].to_list() == [0.9, 1.0]
    assert "normalized match" in paths.html.read_text(encoding="utf-8")


def test_unscored_results_still_report(run_dir: Path) -> None:
    paths = build_reports(run_dir)
    summary = pl.read_parquet(paths.summary)
    assert summary["scored"].to_list() == [0, 0]
    assert "no score to compare" in paths.html.read_text(encoding="utf-8")


def test_baseline_defaults_to_the_first_configured_variant(tmp_path: Path) -> None:
    out = write_run(tmp_path / "run", frame(answers("a", 5) + answers("b", 6)), variants=["b", "a"])
    comparison = read_comparison(build_reports(out))
    assert comparison.select("baseline", "variant").row(0) == ("b", "a")


def test_baseline_variant_can_be_chosen(run_dir: Path) -> None:
    comparison = read_comparison(build_reports(run_dir, baseline="cand"))
    assert comparison.select("baseline", "variant").row(0) == ("cand", "base")


def test_unknown_baseline_variant_is_a_config_error(run_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"--baseline-variant 'nope'.*base, cand"):
        build_reports(run_dir, baseline="nope")


def test_report_files_carry_the_run_provenance(run_dir: Path) -> None:
    paths = build_reports(run_dir, score="exact")
    for path in (paths.summary, paths.comparison, paths.side_by_side):
        metadata = pq.read_schema(path).metadata or {}
        prov = json.loads(metadata[b"runner.provenance"])
        assert (prov["run_id"], prov["dataset_fingerprint"], prov["scorer"]) == (
            "r-test",
            "fp-1",
            "exact",
        )
        assert prov["versions"] == {"runner": "0.1.0"}
    html = paths.html.read_text(encoding="utf-8")
    assert "r-test" in html and "fp-1" in html


def test_report_html_is_self_contained_and_escapes_outputs(run_dir: Path) -> None:
    html = build_reports(run_dir, score="exact").html.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
    assert charts_in(html) == ["latency", "score", "errors"]


def charts_in(html: str) -> list[str]:
    """The ids of the inline SVG charts, in page order."""
    return re.findall(r'<figure class="chart" id="chart-([a-z]+)"><svg', html)


def test_report_html_weighs_kilobytes_not_megabytes(run_dir: Path) -> None:
    """No charting library is inlined: the charts are SVG drawn by the runner."""
    html = build_reports(run_dir, score="exact").html
    assert html.stat().st_size < 60_000
    assert "plotly" not in html.read_text(encoding="utf-8").lower()


def test_a_single_variant_reports_without_a_comparison(tmp_path: Path) -> None:
    out = write_run(tmp_path / "run", frame(answers("solo", 7)))
    for stale in ("side_by_side.parquet", "comparison.parquet"):  # from an earlier report
        (out / stale).write_bytes(b"stale")
    paths = build_reports(out, score="exact")
    assert paths.comparison is None and not (out / "comparison.parquet").exists()
    assert paths.side_by_side is None and not (out / "side_by_side.parquet").exists()
    html = paths.html.read_text(encoding="utf-8")
    for section in ("Against the baseline", "Changed rows", "Errors"):
        assert f"<h2>{section}" not in html
    assert charts_in(html) == ["latency", "score"]  # no error: no errors chart
    assert "One variant: nothing to compare it with." in html


def test_without_a_score_there_is_no_score_chart(run_dir: Path) -> None:
    html = build_reports(run_dir).html.read_text(encoding="utf-8")
    assert 'id="chart-score"' not in html
    assert charts_in(html) == ["latency", "errors"]


def test_the_html_shows_the_first_changed_rows_and_counts_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.report import _report as report

    monkeypatch.setattr(report, "MAX_CHANGED_ROWS", 3)
    rows = [*answers("base", 10, total=10), *answers("cand", 2, total=10)]  # r2..r9 regress
    out = write_run(tmp_path / "run", frame(rows), variants=["base", "cand"])
    paths = build_reports(out, score="exact")
    html = paths.html.read_text(encoding="utf-8")
    assert "showing 3 of 8 changed rows" in html
    assert paths.side_by_side is not None
    side = pl.read_parquet(paths.side_by_side)
    assert side["row_id"].to_list() == [f"r{i}" for i in (*range(2, 10), 0, 1)]


def _comparison_row(**values: object) -> pl.DataFrame:
    base = dict.fromkeys(COMPARISON_SCHEMA)
    base.update(values)
    return pl.DataFrame([{"baseline": "base", "variant": "candidate", **base}])


def test_verdict_reads_as_the_issue_says_with_its_word_first() -> None:
    comparison = _comparison_row(
        score_diff=0.061,
        score_diff_ci_low=0.023,
        score_diff_ci_high=0.098,
        score_test="paired_t",
        score_p_value=0.0021,
        error_rate_diff=0.0,
        latency_p95_diff_ms=140.2,
    )
    assert verdict_lines(comparison, score_label="exact match") == [
        "candidate: better on exact match: +6.1 points, 95 % CI [+2.3, +9.8], paired t-test "
        "p = 0.002; p95 latency +140 ms"
    ]


def test_a_drop_that_the_test_does_not_reject_is_no_significant_difference() -> None:
    """The reported contradiction in words: 20 pairs, -20 points, McNemar p = 0.125."""
    comparison = _comparison_row(
        score_diff=-0.2,
        score_diff_ci_low=-0.2,
        score_diff_ci_high=0.041,
        score_test="mcnemar_exact",
        score_p_value=0.125,
    )
    assert verdict_lines(comparison, score_label="exact match") == [
        "candidate: no significant difference on exact match: -20.0 points, 95 % CI "
        "[-20.0, +4.1], McNemar exact test p = 0.125"
    ]


def test_a_significant_drop_is_worse() -> None:
    comparison = _comparison_row(
        score_diff=-0.4,
        score_diff_ci_low=-0.6,
        score_diff_ci_high=-0.1,
        score_test="mcnemar_exact",
        score_p_value=0.039,
    )
    assert verdict_lines(comparison)[0].startswith("candidate: worse on score: -40.0 points")


def test_verdict_mentions_error_rate_changes_and_missing_scores() -> None:
    comparison = _comparison_row(error_rate_diff=0.05, error_p_value=0.0004)
    assert verdict_lines(comparison) == [
        "candidate: no score to compare; error rate +5.0 points (p < 0.001)"
    ]


def test_summary_table_prints_one_line_per_variant(run_dir: Path) -> None:
    summary = pl.read_parquet(build_reports(run_dir, score="exact").summary)
    console = Console(record=True, width=120)
    console.print(summary_table(summary, title="run r-test"))
    text = console.export_text()
    assert "run r-test" in text
    assert re.search(r"base +10 +0 \(0\.0 %\) +200 +200 +– +40\.0\n", text)
    assert re.search(r"cand +10 +1 \(10\.0 %\) +260 +260 +– +100\.0\n", text)
    assert "cand: timeout ×1" in text  # the top errors, under the table


@pytest.fixture
def long_names_summary(tmp_path: Path) -> pl.DataFrame:
    """A 21-character and a 40-character variant name, thousands of calls, 5-digit latencies."""
    names = ("bad_candidate_2024_v2", "baseline_" + "x" * 31)
    rows = [
        *(row(f"r{i}", names[0], status="error", error_type="http_502", http_status=502,
              error_message="Bad gateway " * 20) for i in range(3)),
        *answers(names[0], 1234, total=1234, latency_ms=12345.6)[3:],
        *answers(names[1], 617, total=1234, latency_ms=98765.4),
    ]  # fmt: skip
    out = write_run(tmp_path / "run", frame(rows), variants=list(names))
    return pl.read_parquet(build_reports(out, score="exact").summary)


def _printed_at_80(summary: pl.DataFrame) -> list[str]:
    console = Console(record=True, width=80)
    console.print(summary_table(summary, title="results in reports/nightly/2024-05-31"))
    return console.export_text().splitlines()


def test_the_console_table_fits_80_columns_and_keeps_every_number_whole(
    long_names_summary: pl.DataFrame,
) -> None:
    """Piped output is 80 columns wide: no line is longer, and no number is cut."""
    lines = _printed_at_80(long_names_summary)
    assert max(len(line) for line in lines) <= 80
    table = "\n".join(lines[: lines.index("top errors:")])
    for whole in ("1,234", "3 (0.2 %)", "12,346", "98,765", "100.0", "[99.7, 100.0]", "50.0"):
        assert whole in table, whole
    assert "…" not in table
    assert any(line.startswith("bad_candidate_2024_v2 ") for line in lines)


def test_a_variant_name_too_long_for_80_columns_wraps_instead_of_being_cut(
    long_names_summary: pl.DataFrame,
) -> None:
    lines = _printed_at_80(long_names_summary)
    start = next(i for i, line in enumerate(lines) if line.startswith("baseline_"))
    width = lines[start].index(" ")
    name = "".join(line[:width].strip() for line in lines[start : start + 3])
    assert name.startswith("baseline_" + "x" * 31)


# ----------------------------------------------------------------------- headless Chromium

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail(
            "chromium is not installed, so report.html cannot be rendered: "
            "`apt-get install chromium` (./dev test installs it where it can)"
        )
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.iterdir()))}"
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


@pytest.mark.slow
def test_report_html_renders_its_charts_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    """The three SVG charts are in the rendered page, the console stays clean, and a screenshot
    is kept."""
    url = build_reports(run_dir, score="exact").html.as_uri()
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    page = _chromium(
        tmp_path,
        "--window-size=1280,2400",
        "--virtual-time-budget=5000",
        f"--screenshot={screenshot}",
        "--dump-dom",
        url,
    )
    assert page.returncode == 0, page.stderr[-2000:]
    console = [line for line in page.stderr.splitlines() if ":CONSOLE" in line]
    errors = [line for line in console if re.search(r"error|uncaught|failed", line, re.I)]
    assert not errors, "console errors:\n" + "\n".join(console)
    assert charts_in(page.stdout) == ["latency", "score", "errors"]
    assert screenshot.stat().st_size > 20_000


# ------------------------------------------------------------------- errors and scorer trouble


@pytest.fixture
def errored_run(tmp_path: Path) -> Path:
    """v: 3 calls refused with 404, 1 timeout, 2 answered (one without an expected value)."""
    rows = [
        *(row(f"r{i}", "v", status="error", error_type="http_404", http_status=404,
              error_message="Deployment not found") for i in range(3)),
        row("r3", "v", status="error", error_type="timeout", error_message="read timed out"),
        row("r4", "v", "Paris", expected="Paris"),
        row("r5", "v", "Paris", expected=None),
    ]  # fmt: skip
    return write_run(tmp_path / "run", frame(rows))


def test_summary_parquet_names_the_top_errors_with_status_and_example(errored_run: Path) -> None:
    summary = pl.read_parquet(build_reports(errored_run, score="exact").summary)
    assert summary["errors_by_type"][0].to_list()[0] == {
        "error_type": "http_404", "count": 3, "http_status": 404,
        "example": "Deployment not found",
    }  # fmt: skip


def test_the_console_table_and_the_html_show_the_top_errors(errored_run: Path) -> None:
    paths = build_reports(errored_run, score="exact")
    console = Console(record=True, width=200)
    console.print(summary_table(pl.read_parquet(paths.summary)))
    text = console.export_text()
    assert "http_404 ×3 (HTTP 404): Deployment not found" in text
    html = paths.html.read_text(encoding="utf-8")
    assert "http_404 ×3 (HTTP 404): Deployment not found" in html


def test_rows_without_expected_value_are_named_once(errored_run: Path) -> None:
    paths = build_reports(errored_run, score="exact")
    assert paths.notes == ("1 rows have no expected value: not scored",)
    assert "1 rows have no expected value: not scored" in paths.html.read_text(encoding="utf-8")


@pytest.fixture
def scorer_module(importable: Callable[[str, str], str]) -> str:
    return importable(
        "report_scorers_h4",
        """
        def picky(output, expected, row):
            if row['row_id'] == 'r2':
                raise ValueError('cannot grade r2')
            return 1.0

        def rubric(output, expected, row):
            return 0.5 if expected is None else 1.0
        """,
    )


def test_a_scorer_failing_on_one_row_still_writes_every_report(
    tmp_path: Path, scorer_module: str
) -> None:
    out = write_run(tmp_path / "run", frame(answers("v", 4, total=5)))
    paths = build_reports(out, score=f"{scorer_module}:picky")
    for path in (paths.results, paths.summary, paths.html):
        assert path.is_file()
    results = read_results(out)
    failed = results.filter(pl.col("score_error").is_not_null())
    assert failed.select("row_id", "score", "score_error").rows() == [
        ("r2", None, "ValueError: cannot grade r2")
    ]
    assert pl.read_parquet(paths.summary)["score_errors"].to_list() == [1]
    assert paths.notes[0].startswith("the scorer failed on 1 rows")


def test_a_reference_free_scorer_scores_every_row(tmp_path: Path, scorer_module: str) -> None:
    rows = [row(f"r{i}", "v", "text") for i in range(4)]  # no expected value at all
    out = write_run(tmp_path / "run", frame(rows))
    summary = pl.read_parquet(build_reports(out, score=f"{scorer_module}:rubric").summary)
    assert summary.select("scored", "score_mean").row(0) == (4, 0.5)


def test_the_same_built_in_scorer_again_leaves_results_parquet_as_it_is(
    errored_run: Path,
) -> None:
    """Its scores would be the same: no rewrite, and the notes are still told."""
    build_reports(errored_run, score="exact")
    results = errored_run / "results.parquet"
    before = (results.stat().st_ino, results.read_bytes())
    paths = build_reports(errored_run, score="exact")
    assert (results.stat().st_ino, results.read_bytes()) == before
    assert paths.notes == ("1 rows have no expected value: not scored",)


def test_a_scorer_from_a_module_is_run_again_under_the_same_spec(
    tmp_path: Path, scorer_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its code may have changed since: the stored spec does not vouch for the scores."""
    import importlib

    out = write_run(tmp_path / "run", frame(answers("v", 4, total=5)))
    build_reports(out, score=f"{scorer_module}:rubric")
    module = importlib.import_module(scorer_module)
    monkeypatch.setattr(module, "rubric", lambda output, expected, row: 0.25)
    summary = pl.read_parquet(build_reports(out, score=f"{scorer_module}:rubric").summary)
    assert summary["score_mean"].to_list() == [0.25]


def test_scoring_streams_results_parquet_into_row_groups_of_its_batches(tmp_path: Path) -> None:
    """Every row is scored once and kept in order, however many batches the file takes."""
    rows = [*answers("base", 4, total=10), *answers("cand", 7, total=10)]
    out = write_run(tmp_path / "run", frame(rows), variants=["base", "cand"])
    build_reports(out, score="exact", memory=MemoryPlan(score_rows=3))
    assert pq.ParquetFile(out / "scores.parquet").metadata.num_row_groups == 7
    results = read_results(out)
    assert results["row_id"].to_list() == [f"r{i}" for i in range(10)] * 2
    assert results["score"].to_list() == [float(i < 4) for i in range(10)] + [
        float(i < 7) for i in range(10)
    ]


# ------------------------------------------------------------------- the console's ETA


def _steady_run(total: int, latency: float, rate: float, until: float) -> list[float | None]:
    """ETAs read twice a second from a run whose calls finish ``rate`` a second once the first
    answer is back after ``latency`` seconds (call k finishes at ``latency + k / rate``)."""
    from runner.run._counters import Counters

    counters = Counters(total=total, started=0.0)
    etas: list[float | None] = []
    for tick in range(1, int(until * 2) + 1):
        now = tick / 2
        while counters.done < total and latency + counters.done / rate <= now:
            counters.record("ok", now=latency + counters.done / rate)
        etas.append(counters.eta(now))
    return etas


def test_the_eta_is_withheld_until_enough_calls_are_done() -> None:
    etas = _steady_run(total=2000, latency=3.0, rate=10.0, until=4.5)
    assert etas == [None] * len(etas)  # 15 calls done: too few to say


def test_the_first_calls_latency_does_not_inflate_the_early_eta() -> None:
    """The issue's jump (434 s, then 40 s): the first answers take the latency to come back.
    Measured from the first completion, each early ETA is near the true time left."""
    etas = _steady_run(total=2000, latency=3.0, rate=10.0, until=30.0)
    shown = [(i, e) for i, e in enumerate(etas) if e is not None]
    assert shown, "an ETA is shown once enough calls are done"
    for i, eta in shown:
        now = (i + 1) * 0.5
        truth = (2000 - (10.0 * (now - 3.0) + 1)) / 10.0
        assert abs(eta - truth) < 0.1 * truth, (now, eta, truth)


def test_a_burst_moves_the_eta_a_little_not_tenfold() -> None:
    from runner.run._counters import Counters

    counters = Counters(total=10_000, started=0.0)
    for i in range(100):  # 10 a second for 10 s
        counters.record("ok", now=i / 10)
    before = counters.eta(10.0)
    for _ in range(200):  # a burst: 200 calls in the next second
        counters.record("ok", now=10.5)
    after = counters.eta(11.0)
    assert before is not None and after is not None
    assert 0.5 * before < after < before


def test_reports_under_a_tiny_memory_plan_are_the_reports_of_the_default_plan(
    tmp_path: Path,
) -> None:
    """Scored in batches of 2, paired in parts of 3, side by side in buckets of 4 results."""
    rows = [*answers("base", 6, total=15), *answers("cand", 9, total=15)]
    tiny = MemoryPlan(
        score_rows=2,
        pair_part_rows=3,
        bucket_rows=4,
        bucket_group_rows=2,
        side_by_side_read_rows=5,
        side_by_side_write_rows=3,
    )
    runs = {
        name: write_run(tmp_path / name, frame(rows), variants=["base", "cand"])
        for name in ("default", "tiny")
    }
    default = build_reports(runs["default"], score="exact")
    small = build_reports(runs["tiny"], score="exact", memory=tiny)
    assert pq.ParquetFile(runs["tiny"] / "scores.parquet").metadata.num_row_groups == 15
    assert pq.ParquetFile(runs["default"] / "scores.parquet").metadata.num_row_groups == 1
    for name in ("summary", "comparison", "side_by_side"):
        got, want = getattr(small, name), getattr(default, name)
        assert got is not None and want is not None
        assert_frame_equal(pl.read_parquet(got), pl.read_parquet(want))
