"""One experiment, in stages, locked from start to end (issue 18): signals at every stage,
the lock while judging, judges corrected or retried on resume, the fresh process, and the
checks before the first call. Real sockets: a simulator on 127.0.0.1, the runner in a
subprocess where signals are sent."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

from runner.simulator import SimulatorConfig, SimulatorServer, VariantProfile
from runner.store._results import scan_scored
from runner.store._rundir import RunDir
from tests.support import cli

ROWS = 20
#: The runner's console script in this environment (not ``-m runner``: a test below puts a
#: package named ``runner`` in the working directory).
RUNNER = str(Path(sys.executable).parent / "runner")
ENV = {**os.environ, "FETCH_HIVE_API_KEY": "", "FETCH_HIVE_BASE_URL": ""}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "tickets.csv"
    pl.DataFrame(
        {
            "id": [f"t{i:02d}" for i in range(ROWS)],
            "text": [f"my invoice number {i} is wrong" for i in range(ROWS)],
            "region": ["eu" if i % 3 else "us" for i in range(ROWS)],
            "expected": ["billing"] * ROWS,
        }
    ).write_csv(path)
    return path


def simulator(judge_latency_ms: float = 0.0, **fields: object) -> SimulatorServer:
    """Instant dataset variants; judges ``grader`` (pointwise and pairwise by the inputs),
    each judge call taking ``judge_latency_ms``."""
    slow = VariantProfile(judge="grader", latency_factor=1.0)
    config = SimulatorConfig(
        latency_ms=judge_latency_ms,
        variants={
            "baseline": VariantProfile(latency_factor=0.0),
            "candidate": VariantProfile(latency_factor=0.0, wrong_rate=0.3),
        },
        judges={"grader": slow},
        **fields,  # type: ignore[arg-type]
    )
    return SimulatorServer(config).start()


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    server = simulator()
    yield server
    server.stop()


def run_args(url: str, dataset: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run", str(dataset), "-d", "support-reply", "-v", "baseline", "-v", "candidate",
        "--base-url", url, "--out", str(out), "--concurrency", "4", *extra,
    ]  # fmt: skip


def judge_requests(server: SimulatorServer, deployment: str = "grader") -> int:
    return sum(
        1 for r in server.stats.received if r.body and r.body.get("deployment") == deployment
    )


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds (a state to reach, not a delay to sit out)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def manifest(out: Path) -> dict[str, object]:
    data = json.loads((out / "manifest.json").read_text())
    assert isinstance(data, dict)
    return data


def resume_of(stderr: str) -> list[str]:
    line = next(x for x in stderr.splitlines() if "Resume with: " in x)
    return shlex.split(line.split("Resume with: ", 1)[1])


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [RUNNER, *args], cwd=cwd, env=ENV, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


# ------------------------------------------------------------------------ signals, lock


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_judging_commits_marks_the_stage_and_the_resume_pays_little(
    dataset: Path, tmp_path: Path, signum: int
) -> None:
    out = tmp_path / "out"
    server = simulator(judge_latency_ms=400)
    try:
        proc = start(run_args(server.base_url, dataset, out, "--judge", "grader:v1",
                              "--grace-period", "5"), tmp_path)  # fmt: skip
        wait_for(lambda: judge_requests(server) >= 4, "judge calls in flight")
        # The run holds OUT while it judges: nothing else may take it.
        report = cli("report", str(out))
        assert report.exit_code == 2, report.output
        assert f"pid {proc.pid}" in report.output
        again = cli(*run_args(server.base_url, dataset, out, "--resume"))
        assert again.exit_code == 2 and "in use by another runner" in again.output
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        state = manifest(out)
        assert state["status"] == "interrupted" and state["stage"] == "judge", state
        assert "interrupted while judging" in stderr
        first = judge_requests(server)
        command = resume_of(stderr)
        assert command[:2] == ["runner", "run"] and "--resume" in command
        resumed = subprocess.run([RUNNER, *command[1:]], cwd=tmp_path, env=ENV, text=True,
                                 capture_output=True, timeout=120, check=False)  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
    finally:
        server.stop()
    ok_rows = 2 * ROWS  # the simulator answers every dataset call
    assert judge_requests(server) <= ok_rows + 4, (first, judge_requests(server))
    scored = scan_scored(out).collect()
    assert scored["score"].null_count() == 0 and scored["judge_error"].null_count() == ok_rows
    assert manifest(out)["status"] == "complete" and manifest(out)["stage"] == "done"


def _blocking_scorer(tmp_path: Path) -> None:
    """A team's own scorer that says when the report stage reached it, then waits for a file:
    the report stage is where the signal lands."""
    (tmp_path / "slowscore.py").write_text(
        "import pathlib, time\n"
        "HERE = pathlib.Path(__file__).parent\n"
        "def score(output, expected, row):\n"
        "    (HERE / 'scoring').touch()\n"
        "    while not (HERE / 'release').exists():\n"
        "        time.sleep(0.01)\n"
        "    return 1.0\n"
    )


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_writing_reports_marks_the_stage_and_resumes_without_calls(
    dataset: Path, tmp_path: Path, sim: SimulatorServer, signum: int
) -> None:
    _blocking_scorer(tmp_path)
    out = tmp_path / "out"
    env = {**ENV, "PYTHONPATH": str(tmp_path)}
    args = run_args(sim.base_url, dataset, out, "--score", "slowscore:score")
    proc = subprocess.Popen([RUNNER, *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    wait_for(lambda: (tmp_path / "scoring").exists(), "the report stage")
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    state = manifest(out)
    assert (state["status"], state["stage"]) == ("interrupted", "report"), state
    assert "interrupted while writing reports" in stderr
    assert not (out / "report.html").exists()
    (tmp_path / "release").touch()
    sim.reset_stats()
    command = resume_of(stderr)
    resumed = subprocess.run([RUNNER, *command[1:]], cwd=tmp_path, env=env, text=True,
                             capture_output=True, timeout=120, check=False)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert sim.stats.requests == 0  # every call had its outcome
    assert (out / "report.html").exists() and manifest(out)["stage"] == "done"


def test_a_signal_while_exporting_marks_the_stage_and_leaves_no_target(
    dataset: Path, tmp_path: Path, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process: the export stage is stopped by a SIGTERM that arrives while it writes."""
    import runner.export as export  # the door the export stage takes it from
    from runner.experiment import Hooks, experiment_from_params, run_experiment

    real = export.export_run

    def interrupted_export(*args: object, **kwargs: object) -> Path:
        signal.raise_signal(signal.SIGTERM)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(export, "export_run", interrupted_export)
    out, target = tmp_path / "out", tmp_path / "backfill.parquet"
    params = {"dataset": (str(dataset),), "deployment": "support-reply",
              "variants": ("baseline", "candidate"), "base_url": sim.base_url, "out": out,
              "export_to": target}  # fmt: skip
    hooks = Hooks(handle_signals=True, resume_command="runner run … --resume")
    result = run_experiment(experiment_from_params(params), hooks=hooks)
    assert result.exit_code == 130 and result.error is not None
    assert "Resume with: runner run … --resume" in str(result.error)
    assert (manifest(out)["status"], manifest(out)["stage"]) == ("interrupted", "export")
    assert not target.exists()
    monkeypatch.setattr(export, "export_run", real)
    again = run_experiment(experiment_from_params({**params, "resume": True}), hooks=hooks)
    assert again.exit_code == 0 and target.exists()
    assert pl.read_parquet(target).height == ROWS


# ------------------------------------------------------------------------------- judges


def test_a_typo_in_the_judge_then_the_corrected_judge_on_resume_judges_everything(
    dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    known = {"support-reply": ("baseline", "candidate")}
    server = simulator(deployments=known)
    try:
        typo = cli(*run_args(server.base_url, dataset, out, "--judge", "grder:v1"))
        assert typo.exit_code == 3, typo.output
        assert manifest(out)["stage"] == "judge" and manifest(out)["status"] == "aborted"
        server.reset_stats()
        fixed = cli(*run_args(server.base_url, dataset, out, "--judge", "grader:v1", "--resume"))
        assert fixed.exit_code == 0, fixed.output
        assert judge_requests(server, "grder") == 0
        assert judge_requests(server) == 2 * ROWS
    finally:
        server.stop()
    scored = scan_scored(out).collect()
    assert scored["score"].null_count() == 0


def test_failed_judge_calls_are_sent_again_by_judge_retry_errors(
    dataset: Path, tmp_path: Path, sim: SimulatorServer
) -> None:
    out = tmp_path / "out"
    assert cli(*run_args(sim.base_url, dataset, out, "--max-attempts", "1")).exit_code == 0
    flaky = simulator(faults={"http_502": 0.5}, max_faults_per_key=99, seed=3)
    try:
        first = cli("judge", str(out), "--judge", "grader:v1", "--base-url", flaky.base_url)
    finally:
        flaky.stop()
    assert first.exit_code == 4, first.output  # judge errors over --max-judge-error-rate
    assert "pointwise judge:" in first.output and "judgements are errors" in first.output
    failed = scan_scored(out).collect()["judge_error"].drop_nulls().len()
    assert failed > 5
    sim.reset_stats()
    again = cli("judge", str(out), "--judge", "grader:v1", "--retry-errors",
                 "--base-url", sim.base_url)  # fmt: skip
    assert again.exit_code == 0, again.output
    assert judge_requests(sim) == failed
    scored = scan_scored(out).collect()
    assert scored["judge_error"].null_count() == scored.height


def test_a_sample_with_a_judge_judges_every_sampled_output(
    dataset: Path, tmp_path: Path, sim: SimulatorServer
) -> None:
    out = tmp_path / "out"
    result = cli(*run_args(sim.base_url, dataset, out, "--sample", "10", "--judge", "grader:v1"))
    assert result.exit_code == 0, result.output
    assert judge_requests(sim) == 10 * 2
    assert pl.read_parquet(RunDir(out).judgements).height == 10 * 2


def test_segments_with_both_judges_work_end_to_end_and_a_plain_resume_keeps_every_column(
    dataset: Path, tmp_path: Path, sim: SimulatorServer
) -> None:
    out = tmp_path / "out"
    args = run_args(sim.base_url, dataset, out, "--metadata-column", "region",
                    "--segment-column", "region", "--judge", "grader:v1",
                    "--pairwise-judge", "grader:v2")  # fmt: skip
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert RunDir(out).summary_by_segment.exists() and RunDir(out).pairwise.exists()
    before = scan_scored(out).collect()
    assert {"score", "score_reason", "judge_error"} <= set(before.columns)
    sim.reset_stats()
    resumed = cli(*args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert sim.stats.requests == 0
    after = scan_scored(out).collect()
    assert after.equals(before)


def test_judge_calls_carry_what_they_judge_in_their_metadata(
    dataset: Path, tmp_path: Path, sim: SimulatorServer
) -> None:
    out = tmp_path / "out"
    assert (
        cli(
            *run_args(
                sim.base_url,
                dataset,
                out,
                "--judge",
                "grader:v1",
                "--experiment",
                "nightly",
                "--tag",
                "team=support",
            )
        ).exit_code
        == 0
    )
    judged = [r.metadata for r in sim.stats.received if r.body and r.body["deployment"] == "grader"]
    ids = {f"t{i:02d}" for i in range(ROWS)}
    for metadata in judged:
        assert metadata is not None
        assert metadata["row_id"] in ids and metadata["role"] == "judge"  # the dataset's id
        assert metadata["repeat"] == 0 and "judged_row_id" not in metadata
        assert metadata["judged_variant"] in ("baseline", "candidate")
        assert metadata["experiment"] == "nightly" and metadata["team"] == "support"
        assert metadata["run_id"] == manifest(out)["run_id"]
    pairwise = cli("judge", str(out), "--pairwise-judge", "grader:v2")
    assert pairwise.exit_code == 0, pairwise.output
    orders = [r.metadata for r in sim.stats.received if r.body and r.body["variant"] == "v2"]
    assert orders and all(m is not None and m["row_id"] in ids for m in orders)
    assert {m["order"] for m in orders if m is not None} == {"AB", "BA"}


def test_a_judge_pass_sets_every_field_of_its_config_on_purpose() -> None:
    import dataclasses

    from runner.config import RunConfig
    from runner.judge._parse import JudgeSpec
    from runner.judge._passes import INHERITED, judge_pass_config

    parent = RunConfig(
        dataset=("d.csv",), out_dir=Path("out"), deployment="support-reply",
        variants=("a", "b"), sample=10, seed=4, repeat=3, shard=(1, 4), limit=7,
        segment_columns=("region",), metadata_columns=("region",), expected_column="e",
        stream=True, resume=True, retry_errors=True, experiment="x", tags={"t": "1"},
        concurrency=9, metadata_from={"row_id": "region"},
    )  # fmt: skip
    config = judge_pass_config(
        parent, run_id="r1", spec=JudgeSpec("grader", "v1"), source=Path("calls.parquet"),
        out_dir=Path("out/judges/pointwise/pass-000"), inputs=("input", "output"),
        metadata=("role", "judged_row_id", "judged_repeat"), base_url=None, resume=False,
    )  # fmt: skip
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    assert set(INHERITED) <= fields
    for name in fields - set(INHERITED):
        assert getattr(config, name) != getattr(parent, name) or name in (
            "base_url",
            "input_format",
            "max_attempts",
        ), name  # set by the pass, never leaked from the parent
    assert (config.sample, config.shard, config.repeat, config.limit) == (None, None, 1, None)
    assert config.segment_columns == () and not config.retry_errors
    assert all(getattr(config, name) == getattr(parent, name) for name in INHERITED)


def test_judge_call_ids_cannot_collide_whatever_the_names_hold() -> None:
    from runner.judge._pairwise import call_id, split_ids

    frame = pl.DataFrame({"variant": ["a|0", "a"], "repeat": [0, 0], "row_id": ["x", "0|x"]})
    ids = frame.select(call_id("variant", "repeat", "row_id").alias("id"))["id"]
    assert ids.n_unique() == 2
    assert split_ids(ids, ordered=False).equals(frame.cast({"repeat": pl.Int32}))


# -------------------------------------------------------------------- the fresh process


@pytest.mark.slow
def test_the_fresh_process_never_runs_a_runner_package_of_the_working_directory(
    dataset: Path, tmp_path: Path, sim: SimulatorServer
) -> None:
    """A run handed to a fresh process (--fresh-process-from 1) with a 300 KB judge rubric:
    the installed runner takes over, not ./runner, and the rubric reaches every judge call."""
    fake = tmp_path / "runner"
    fake.mkdir()
    marker = tmp_path / "ran-the-wrong-runner"
    body = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    (fake / "__init__.py").write_text(body)
    (fake / "__main__.py").write_text(body)
    rubric = "be fair. " * 37_500  # 300 KB: more than one argument may hold (128 KB)
    (tmp_path / "eval.toml").write_text(f'judge = "grader:v1"\n[judge_vars]\nrubric = "{rubric}"\n')
    out = tmp_path / "out"
    args = run_args(sim.base_url, dataset, out, "--config", "eval.toml",
                    "--fresh-process-from", "1")  # fmt: skip
    done = subprocess.run([RUNNER, *args], cwd=tmp_path, env=ENV, text=True,
                          capture_output=True, timeout=180, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "finishing: compacting the journal" in done.stderr  # the fresh process ran
    assert not marker.exists()
    rubrics = [r.body["inputs"]["rubric"] for r in sim.stats.received
               if r.body and r.body["deployment"] == "grader"]  # fmt: skip
    assert len(rubrics) == 2 * ROWS and set(rubrics) == {rubric}
    assert manifest(out)["stage"] == "done" and manifest(out)["status"] == "complete"
    assert (out / ".runner.lock").stat().st_size < 4096  # the disk reserve given back at the end


# ------------------------------------------------------------------- before the first call


def test_a_corrupt_parquet_page_is_bad_input_not_a_bug(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    path = tmp_path / "rows.parquet"
    frame = pl.DataFrame({"id": [f"r{i}" for i in range(20_000)],
                          "text": [f"text {i} " * 8 for i in range(20_000)]})  # fmt: skip
    frame.write_parquet(path, row_group_size=2_000, compression="uncompressed")
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 4096] = b"\xff" * 4096  # a data page in the middle, not the footer
    path.write_bytes(bytes(raw))
    out = tmp_path / "out"
    result = cli(*run_args(sim.base_url, path, out))
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output
    if RunDir(out).has_manifest():
        assert manifest(out)["status"] != "running"


@pytest.mark.parametrize(
    "option", [("--timeout", "inf"), ("--rps", "nan"), ("--max-outage", "nan"),
               ("--grace-period", "inf"), ("--max-error-rate", "nan")],
)  # fmt: skip
def test_options_that_are_not_finite_are_refused_before_anything_is_sent(
    dataset: Path, tmp_path: Path, sim: SimulatorServer, option: tuple[str, str]
) -> None:
    result = cli(*run_args(sim.base_url, dataset, tmp_path / "out", *option))
    assert result.exit_code == 2, result.output
    assert "finite" in result.output and option[0] in result.output
    assert sim.stats.requests == 0 and not (tmp_path / "out").exists()


def test_a_toml_inf_is_refused_too(dataset: Path, tmp_path: Path, sim: SimulatorServer) -> None:
    config = tmp_path / "eval.toml"
    config.write_text(
        f'dataset = "{dataset.name}"\ndeployment = "support-reply"\n'
        f'variants = ["baseline"]\nbase_url = "{sim.base_url}"\ntimeout = inf\n'
    )
    result = cli("run", "--config", str(config), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert f"{config}, line 5: timeout must be a finite number, got inf" in result.output
    assert sim.stats.requests == 0


def test_a_bad_judge_pattern_is_refused_before_anything_is_sent(
    dataset: Path, tmp_path: Path, sim: SimulatorServer
) -> None:
    for pattern in ("Rating: \\d+", "Rating: ([0-9"):
        result = cli(*run_args(sim.base_url, dataset, tmp_path / "out", "--judge", "grader:v1",
                              "--judge-pattern", pattern))  # fmt: skip
        assert result.exit_code == 2 and "--judge-pattern" in result.output, result.output
    assert sim.stats.requests == 0


def test_the_dry_run_counts_the_calls_of_every_stage(
    dataset: Path, tmp_path: Path, sim: SimulatorServer
) -> None:
    out = tmp_path / "out"
    judges = ("--judge", "grader:v1", "--pairwise-judge", "grader:v2")
    planned = cli(*run_args(sim.base_url, dataset, out, *judges, "--dry-run"))
    assert planned.exit_code == 0, planned.output
    assert f"= {2 * ROWS} calls; {2 * ROWS} would be sent" in planned.output
    assert f"pointwise judge: at most {2 * ROWS} calls" in planned.output
    assert f"pairwise judge: at most {2 * ROWS} calls" in planned.output
    assert "send → judge → report → gate" in planned.output
    assert cli(*run_args(sim.base_url, dataset, out)).exit_code == 0
    resumed = cli(*run_args(sim.base_url, dataset, out, *judges, "--resume", "--dry-run"))
    assert resumed.exit_code == 0, resumed.output
    pairs = pl.read_parquet(RunDir(out).results).pivot("variant", index="row_id", values="output")
    differing = int((pairs["baseline"] != pairs["candidate"]).sum())
    assert f"pointwise judge: {2 * ROWS} calls would be sent" in resumed.output
    assert f"pairwise judge: {2 * differing} calls would be sent" in resumed.output
    assert "stages: judge → report → gate" in resumed.output
    sim.reset_stats()
    assert cli(*run_args(sim.base_url, dataset, out, *judges, "--resume")).exit_code == 0
    assert judge_requests(sim) == 2 * ROWS + 2 * differing


# ---------------------------------------------------------------- one table of options


def test_every_run_option_is_an_experiment_key_and_every_key_an_option() -> None:
    from runner.cli.run import run
    from runner.experiment import CLI_ONLY, KEYS

    options = {p.name for p in run.params if p.name is not None}
    keys = {key.param for key in KEYS.values()}
    assert options - keys == set(CLI_ONLY), "an option of run that no experiment file can set"
    assert keys - options == set(), "an experiment key that is no option of run"


def test_cli_run_is_a_thin_shell() -> None:
    import runner.cli.run as module

    assert module.__file__ is not None
    assert len(Path(module.__file__).read_text().splitlines()) < 150


def test_the_console_names_each_phase_and_shows_the_judge_beside_the_score(
    dataset: Path, tmp_path: Path, sim: SimulatorServer
) -> None:
    out = tmp_path / "out"
    result = cli(*run_args(sim.base_url, dataset, out, "--expected-column", "expected",
                          "--score", "exact", "--judge", "grader:v1",
                          "--pairwise-judge", "grader:v2"))  # fmt: skip
    assert result.exit_code == 0, result.output
    phases = {line.split(":")[0] for line in result.output.splitlines() if " done, " in line}
    assert phases == {"run", "judge", "pairwise"}
    assert "agrees" in result.output  # the judge's column beside the deterministic score
    summary = pl.read_parquet(RunDir(out).summary)
    assert summary["judge_score_mean"].is_not_null().all()


def test_a_judge_that_answers_nothing_readable_for_30_percent_exits_4_with_every_report(
    dataset: Path, tmp_path: Path
) -> None:
    """A scripted API: the dataset's deployment answers, the judge answers a score for 7 rows
    in 10 and a paragraph with no verdict for the rest."""
    import httpx

    from runner.config import RunConfig
    from runner.errors import ErrorBudgetExceeded
    from runner.experiment import Experiment, JudgePlan, run_experiment

    def api(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["deployment"] != "grader":
            return httpx.Response(200, json={"response": "billing"})
        row = int(body["metadata"]["row_id"][1:])
        text = "I would rather not say." if row % 10 < 3 else "Fine work. Rating: [[0.8]]"
        return httpx.Response(200, json={"response": text})

    config = RunConfig(dataset=(str(dataset),), out_dir=tmp_path / "out", deployment="d",
                       variants=("a",), base_url="http://127.0.0.1:9/v1")  # fmt: skip
    result = run_experiment(
        Experiment(config, judges=JudgePlan(judge="grader:v1")),
        api_key="fhk_test",
        transport=httpx.MockTransport(api),
    )
    assert result.exit_code == 4 and isinstance(result.error, ErrorBudgetExceeded)
    message = str(result.error)
    assert "pointwise judge: 6 of 20 judgements are errors (30.0%" in message
    assert "every report is written" in message and "I would rather not say." in message
    assert (tmp_path / "out" / "report.html").exists()
    assert manifest(tmp_path / "out")["gate"] == {
        "verdict": "over-budget",
        "baseline": None,
        "accepted": False,
    }


def test_a_position_biased_judge_is_named_in_the_console_and_fails_its_gate(
    dataset: Path, tmp_path: Path
) -> None:
    biased = SimulatorConfig(
        variants={"candidate": VariantProfile(wrong_rate=0.5)},
        judges={"grader": "biased:mtbench"},
    )
    with SimulatorServer(biased) as server:
        result = cli(*run_args(server.base_url, dataset, tmp_path / "out", "--expected-column",
                              "expected", "--pairwise-judge", "grader:v1",
                              "--min-win-rate", "0.1"))  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "Warning: the judge prefers a position" in result.output
    assert "--min-judge-consistency" in result.output
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "the judge prefers a position" in html


def test_a_gate_that_cannot_compare_after_sending_fails_the_gate_and_keeps_the_run_complete(
    dataset: Path, tmp_path: Path, sim: SimulatorServer
) -> None:
    """Tonight's judge is a new version: the runs are scored differently. Found after every
    call was paid for, so exit 1 (a failed gate), never exit 2 (nothing sent); the night stays
    complete, and `runner baseline accept` can make it the next baseline."""
    folder = tmp_path / "nightly"
    nightly = ("--compare-with", str(folder), "--max-score-drop", "5")
    first = cli(*run_args(sim.base_url, dataset, folder / "1", "--judge", "grader:v1",
                          "--judge-scale", "0-10", *nightly, "--allow-no-baseline"))  # fmt: skip
    assert first.exit_code == 0, first.output
    second = cli(*run_args(sim.base_url, dataset, folder / "2", "--judge", "grader:v2",
                           "--judge-scale", "0-10", *nightly))  # fmt: skip
    assert second.exit_code == 1, second.output
    assert "the gate could not be applied: the runs were scored differently" in second.output
    assert manifest(folder / "2")["status"] == "complete"
    assert manifest(folder / "2")["gate"] == {
        "verdict": "fail",
        "baseline": None,
        "accepted": False,
    }
    assert cli("baseline", "accept", str(folder / "2")).exit_code == 0


def test_compare_with_a_file_is_refused_before_any_call(
    dataset: Path, tmp_path: Path, sim: SimulatorServer
) -> None:
    out = tmp_path / "out"
    result = cli(*run_args(sim.base_url, dataset, out, "--compare-with", str(dataset)))
    assert result.exit_code == 2, result.output
    assert "is a file: give a run directory or a folder of runs" in result.output
    assert sim.stats.requests == 0 and not out.exists()
