"""Nightly jobs as code: the experiment file, ``init``, ``rerun``, and comparing with the latest
complete run in a folder of runs."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import Result

from runner.errors import ConfigError
from runner.experiment import (
    KEYS,
    STARTER,
    experiment_toml,
    key_line,
    load_experiment,
    parse_experiment,
)
from runner.gates._regression import latest_complete_run
from runner.simulator import SimulatorConfig, SimulatorServer, VariantProfile
from runner.store._results import read_results
from runner.store._rundir import RunDir
from tests.reports_helpers import answers, frame, write_run
from tests.support import cli, write_topic_tickets


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_topic_tickets(tmp_path / "tickets.csv", 40, plan=["free", "pro"] * 20)


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(seed=5)


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def job_file(path: Path, dataset: Path, base_url: str, **extra: str) -> Path:
    lines = [
        f'dataset = "{dataset}"',
        'deployment = "support-reply"',
        'variants = ["baseline", "candidate"]',
        'expected_column = "expected"',
        'metadata_columns = ["plan"]',
        "concurrency = 4",
        'score = "exact"',
        f'base_url = "{base_url}"',
        'experiment = "nightly"',
        *(f"{k} = {v}" for k, v in extra.items()),
        "",
        "[tags]",
        'team = "support"',
    ]
    return write_toml(path, "\n".join(lines) + "\n")


def comparable(out: Path) -> tuple[pl.DataFrame, dict[str, object]]:
    """A run's answers in a stable order and its configuration, less what must differ."""
    results = read_results(out)
    answers_ = results.select("row_id", "variant", "output", "status", "score").sort(
        "row_id", "variant"
    )
    config = dict(RunDir(out).read_manifest().config)
    for differs in ("out_dir", "run_id"):
        config.pop(differs)
    return answers_, config


# --------------------------------------------------------------------- the experiment file


def test_a_run_from_an_experiment_file_equals_the_same_options_on_the_command_line(
    tmp_path: Path, dataset: Path, sim: SimulatorServer
) -> None:
    by_flags = cli(
        "run", str(dataset), "-d", "support-reply", "-v", "baseline", "-v", "candidate",
        "--expected-column", "expected", "--metadata-column", "plan", "--concurrency", "4",
        "--score", "exact", "--base-url", sim.base_url, "--experiment", "nightly",
        "--tag", "team=support", "--out", str(tmp_path / "flags"),
    )  # fmt: skip
    assert by_flags.exit_code == 0, by_flags.output
    config = job_file(tmp_path / "eval.toml", dataset, sim.base_url)
    by_file = cli("run", "--config", str(config), "--out", str(tmp_path / "file"))
    assert by_file.exit_code == 0, by_file.output
    flags_answers, flags_config = comparable(tmp_path / "flags")
    file_answers, file_config = comparable(tmp_path / "file")
    assert file_config == flags_config
    assert file_config["tags"] == {"team": "support"}
    assert file_answers.equals(flags_answers)
    assert flags_answers["score"].null_count() == 0  # scored, so the equality says something


def test_an_option_on_the_command_line_overrides_the_file(
    tmp_path: Path, dataset: Path, sim: SimulatorServer
) -> None:
    config = job_file(tmp_path / "eval.toml", dataset, sim.base_url, limit="10")
    result = cli(
        "run", "--config", str(config), "--limit", "3", "-v", "baseline",
         "--out", str(tmp_path / "out")
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = RunDir(tmp_path / "out").read_manifest()
    assert manifest.config["limit"] == 3  # the command line's
    assert manifest.config["variants"] == ["baseline"]  # the command line's
    assert manifest.config["concurrency"] == 4  # the file's
    assert pl.read_parquet(RunDir(tmp_path / "out").results).height == 3


def test_an_unknown_key_exits_2_naming_the_key_the_file_and_the_line(
    tmp_path: Path, dataset: Path
) -> None:
    config = write_toml(
        tmp_path / "eval.toml",
        f'dataset = "{dataset}"\ndeployment = "d"\n\n# limits\nconcurency = 8\n',
    )
    result = cli("run", "--config", str(config))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {config}, line 5: unknown key 'concurency' (did you mean 'concurrency'?)"
    )


def test_a_value_of_the_wrong_type_exits_2_naming_the_key_and_the_line(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "eval.toml", 'deployment = "d"\nconcurrency = "8"\n')
    result = cli("run", "--config", str(config))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {config}, line 2: concurrency must be an integer, got string '8'"
    )


@pytest.mark.parametrize(
    ("line", "said", "given"),
    [
        ("rps = nan", "rps must be a finite number, got nan", ("--rps", "nan")),
        ("concurrency = 0", "concurrency must be at least 1, got 0", ("--concurrency", "0")),
        (
            'baseline_variant = "c"',
            "baseline_variant 'c' is not one of the run's variants (a)",
            ("--baseline-variant", "c"),
        ),
    ],
)
def test_a_value_refused_by_the_run_is_said_of_the_file_key_and_line(
    tmp_path: Path, dataset: Path, line: str, said: str, given: tuple[str, str]
) -> None:
    config = write_toml(
        tmp_path / "eval.toml", f'dataset = "{dataset}"\ndeployment = "d"\n{line}\n'
    )
    result = cli("run", "--config", str(config), "-v", "a", "--dry-run")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {config}, line 3: {said}"
    typed = cli("run", "--config", str(config), "-v", "a", "--dry-run", *given)
    assert typed.exit_code == 2  # the command line's value, said of its option
    assert typed.stderr.startswith(f"error: {given[0]} ") and str(config) not in typed.stderr


def test_a_table_value_of_the_wrong_type_names_its_dotted_key_and_line() -> None:
    text = 'deployment = "d"\n\n[tags]\nteam = "support"\ncost = 3\n'
    with pytest.raises(ConfigError, match=r"^eval.toml, line 5: tags.cost must be a string"):
        parse_experiment(text, Path("eval.toml"))


def test_a_choice_outside_its_list_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"line 1: format must be one of auto, csv"):
        parse_experiment('format = "xlsx"\n', Path("eval.toml"))


def test_broken_toml_is_one_line_naming_the_file(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "eval.toml", 'deployment = "d\n')
    result = cli("run", "--config", str(config))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {config}: not valid TOML: ")
    assert "Traceback" not in result.output


def test_out_fills_in_date_and_time() -> None:
    exp = parse_experiment(
        'out = "reports/nightly/{date}-{time}"\n',
        Path("eval.toml"),
        now=datetime(2024, 5, 31, 2, 30, 5),
    )
    assert exp.params["out"] == Path("reports/nightly/2024-05-31-023005")


def test_an_unknown_placeholder_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"line 1: out: unknown placeholder \{day\}"):
        parse_experiment('out = "reports/{day}"\n', Path("eval.toml"))


def test_keys_are_the_long_options_with_underscores() -> None:
    """Plural for repeatable options, the gates named as compare's options."""
    exp = parse_experiment(
        'dataset = "a.csv"\nvariants = ["x"]\ninput_columns = ["q"]\nformat = "csv"\n'
        'max_score_drop = 2\nmin_win_rate = 0.4\nexport = "o.parquet"\n'
        '[judge_vars]\nrubric = "be kind"\n',
        Path("e.toml"),
    )
    assert exp.params == {
        "dataset": ("a.csv",), "variants": ("x",), "input_columns": ("q",),
        "input_format": "csv", "max_score_drop": 2.0, "min_win_rate": 0.4,
        "export_to": Path("o.parquet"), "judge_vars": ("rubric=be kind",),
    }  # fmt: skip


def test_key_line_finds_top_level_keys_table_keys_and_dotted_keys() -> None:
    text = 'a = 1\n# c\n"b" = 2\n[tags]\nteam = "x"\n[other]\nk.j = 1\n'
    assert key_line(text, ("a",)) == 1
    assert key_line(text, ("b",)) == 3
    assert key_line(text, ("tags",)) == 4
    assert key_line(text, ("tags", "team")) == 5
    assert key_line(text, ("other", "k")) == 7
    assert key_line(text, ("missing",)) is None


def test_a_written_experiment_reads_back_as_the_same_parameters(tmp_path: Path) -> None:
    params = {
        "dataset": ("a b.csv", 'q"uote.csv'), "deployment": "d", "variants": ("x", "y"),
        "concurrency": 3, "timeout": 2.5, "stream": True, "no_report": False,
        "tags": ("team=a=b", "odd key=v"), "out": Path("o/ut"), "max_score_drop": 2.0,
    }  # fmt: skip
    path = write_toml(tmp_path / "e.toml", experiment_toml(params, header="a\nb"))
    read = load_experiment(path).params
    # Relative paths are the file's folder's: the file works from any working directory.
    beside = {"dataset": tuple(str(tmp_path / d) for d in params["dataset"]),  # type: ignore[attr-defined]
              "out": tmp_path / "o/ut"}  # fmt: skip
    assert read == {**{k: v for k, v in params.items() if k != "no_report"}, **beside}


def test_the_starter_file_names_only_known_keys() -> None:
    exp = parse_experiment(STARTER, Path("eval.toml"))
    assert {"dataset", "deployment", "variants", "compare_with", "max_score_drop"} <= set(
        exp.params
    )
    assert set(exp.params) <= {key.param for key in KEYS.values()}


def test_init_writes_the_starter_and_will_not_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "eval.toml"
    assert cli("init", str(target)).exit_code == 0
    assert target.read_text(encoding="utf-8") == STARTER
    target.write_text("mine")
    again = cli("init", str(target))
    assert again.exit_code == 2 and target.read_text() == "mine"
    assert again.stderr.strip() == f"error: {target} exists; pass --force to replace it"


# ------------------------------------------------------------------------------- rerun


def test_rerun_reproduces_the_configuration(
    tmp_path: Path, dataset: Path, sim: SimulatorServer
) -> None:
    config = job_file(tmp_path / "eval.toml", dataset, sim.base_url, max_error_rate_increase="5")
    first = cli("run", "--config", str(config), "--out", str(tmp_path / "first"))
    assert first.exit_code == 0, first.output
    again = cli("rerun", str(tmp_path / "first"), "--out", str(tmp_path / "again"))
    assert again.exit_code == 0, again.output
    first_answers, first_config = comparable(tmp_path / "first")
    again_answers, again_config = comparable(tmp_path / "again")
    assert again_config == first_config
    assert again_answers.equals(first_answers)
    kept = {
        name: dict(load_experiment(RunDir(out).experiment).params)
        for name, out in (("first", tmp_path / "first"), ("again", tmp_path / "again"))
    }
    assert kept["again"].pop("out") == tmp_path / "again"
    assert kept["first"].pop("out") == tmp_path / "first"
    assert kept["again"] == kept["first"]
    assert kept["first"]["score"] == "exact"
    assert kept["first"]["max_error_rate_increase"] == 5.0
    assert (tmp_path / "again" / "gate.md").is_file()  # the gate ran again, too


def test_rerun_of_a_directory_that_is_no_run_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = cli("rerun", str(tmp_path / "empty"))
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# ----------------------------------------------------------- the latest complete run


def _run_at(folder: Path, name: str, finished: str, status: str = "complete") -> Path:
    out = write_run(folder / name, frame(answers("v", 9)), run_id=name, status=status)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["finished_at"] = finished
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


@pytest.fixture
def nights(tmp_path: Path) -> Path:
    """Four nights: the latest complete one is "tue" (wed was interrupted, thu is tonight).
    Names sort differently from finishing times, so a pick by name would be wrong."""
    folder = tmp_path / "nightly"
    _run_at(folder, "b-mon", "2024-05-27T02:10:00+00:00")
    _run_at(folder, "a-tue", "2024-05-28T02:10:00+00:00")
    _run_at(folder, "c-wed", "2024-05-29T02:10:00+00:00", status="interrupted")
    _run_at(folder, "d-thu", "2024-05-30T02:10:00+00:00")
    (folder / "notes").mkdir()  # not a run: passed over
    return folder


def test_the_latest_complete_run_is_picked_by_its_finishing_time(nights: Path) -> None:
    latest = latest_complete_run(nights, exclude=nights / "d-thu")
    assert latest is not None and latest.out_dir == nights / "a-tue"


def test_compare_against_a_folder_picks_the_latest_complete_run_and_says_which(
    nights: Path,
) -> None:
    result = cli(
        "compare", str(nights), str(nights / "d-thu"), "--score", "exact", "--max-score-drop", "5"
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"baseline: {nights / 'a-tue'} (finished 2024-05-28 02:10")
    markdown = (nights / "d-thu" / "regression.md").read_text(encoding="utf-8")
    assert "Baseline `a-tue`" in markdown and "candidate `d-thu`" in markdown


def test_compare_against_a_folder_with_no_other_complete_run_exits_1(tmp_path: Path) -> None:
    """No baseline: the gates were not applied, which fails the check (see test_nightly)."""
    folder = tmp_path / "nightly"
    only = _run_at(folder, "only", "2024-05-28T02:10:00+00:00")
    result = cli("compare", str(folder), str(only))
    assert result.exit_code == 1
    assert f"no baseline: {folder} holds no eligible run other than {only}" in result.stderr


# ------------------------------------------------------- a job that compares itself


def _night(tmp_path: Path, config: Path, name: str, wrong_rate: float) -> Result:
    profile = VariantProfile(wrong_rate=wrong_rate)
    with SimulatorServer(SimulatorConfig(seed=1, variants={"support": profile})) as server:
        return cli(
            "run", "--config", str(config), "--base-url", server.base_url,
             "--out", str(tmp_path / "nightly" / name)
        )  # fmt: skip


def test_a_run_configured_to_compare_itself_exits_1_on_a_seeded_regression(
    tmp_path: Path, dataset: Path
) -> None:
    config = write_toml(
        tmp_path / "nightly.toml",
        f'dataset = "{dataset}"\ndeployment = "support-reply"\nvariants = ["support"]\n'
        'expected_column = "expected"\nscore = "exact"\nconcurrency = 8\n'
        f'compare_with = "{tmp_path / "nightly"}"\nmax_score_drop = 5\n'
        "allow_no_baseline = true\n",
    )
    first = _night(tmp_path, config, "mon", wrong_rate=0.0)
    assert first.exit_code == 0, first.output
    assert "no gate was applied: no baseline yet" in first.stderr
    assert (tmp_path / "nightly" / "mon" / "regression.md").exists()
    same = _night(tmp_path, config, "tue", wrong_rate=0.0)
    assert same.exit_code == 0, same.output
    assert f"baseline: {tmp_path / 'nightly' / 'mon'}" in same.stderr
    worse = _night(tmp_path, config, "wed", wrong_rate=0.5)
    assert worse.exit_code == 1, worse.output
    assert f"baseline: {tmp_path / 'nightly' / 'tue'}" in worse.stderr
    again = _night(tmp_path, config, "thu", wrong_rate=0.5)
    assert again.exit_code == 1, again.output  # a failed night is never the baseline
    assert f"baseline: {tmp_path / 'nightly' / 'tue'}" in again.stderr
    markdown = (tmp_path / "nightly" / "wed" / "regression.md").read_text(encoding="utf-8")
    assert markdown.startswith("## Regression check: FAIL")
    assert "### Regressed rows (5 of " in markdown  # a few examples, and how many in all
    assert "| support | `" in markdown
    assert f"Full report: `{tmp_path / 'nightly' / 'wed' / 'report.html'}`" in markdown
