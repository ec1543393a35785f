"""An export cannot hurt data: refused targets, incomplete runs, column clashes, scratch of a
killed export, and the scores carried next to the outputs (issue 21, points 1 and 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from polars.testing import assert_series_equal

import runner
from runner.errors import ConfigError
from runner.export import _export as export_module
from runner.export._export import (
    SCORE_FIELDS,
    check_export_columns,
    check_export_target,
    export_run,
    remove_export_scratch,
)
from runner.export._target import MARK, PARTS_MARK, scratch_prefix
from runner.store._rundir import RunDir
from tests.export_helpers import digest, export_cli, make_run, tree
from tests.fakes import ok_response
from tests.support import write_rows

ROWS = 10


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_rows(tmp_path / "data.csv", ROWS, column="question")


@pytest.fixture
def run_dir(tmp_path: Path, dataset: Path) -> Path:
    return make_run(dataset, tmp_path / "out", "a", "b", id_column="id")


# -- point 1: targets that cannot hurt ------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_the_dataset_itself_is_refused_as_target_and_nothing_changes(
    run_dir: Path, dataset: Path, fmt: str
) -> None:
    before_data, before_out = digest(dataset), tree(run_dir)
    result = export_cli(run_dir, "--to", str(dataset), "--format", fmt, "--overwrite")
    assert result.exit_code == 2, result.output
    assert "dataset" in result.output and "data.csv" in result.output
    assert digest(dataset) == before_data and tree(run_dir) == before_out


def test_the_dataset_under_another_spelling_or_a_hard_link_is_refused(
    tmp_path: Path, run_dir: Path, dataset: Path
) -> None:
    (tmp_path / "sub").mkdir()
    roundabout = tmp_path / "sub" / ".." / "data.csv"
    linked = tmp_path / "same.csv"
    os.link(dataset, linked)
    for target in (roundabout, linked):
        with pytest.raises(ConfigError, match="dataset"):
            check_export_target(run_dir, target, dataset_files=[dataset], overwrite=True)


@pytest.mark.parametrize(
    "inside", ["manifest.json", "results.parquet", "journal.jsonl", "new/x.parquet", "x.csv"]
)
def test_a_target_inside_out_is_refused_and_out_is_unchanged(
    run_dir: Path, dataset: Path, inside: str
) -> None:
    before_data, before_out = digest(dataset), tree(run_dir)
    result = export_cli(run_dir, "--to", str(run_dir / inside), "--overwrite")
    assert result.exit_code == 2, result.output
    assert "inside the run directory" in result.output
    assert digest(dataset) == before_data and tree(run_dir) == before_out


def test_a_folder_holding_out_or_the_dataset_is_refused_even_with_overwrite(
    tmp_path: Path, run_dir: Path, dataset: Path
) -> None:
    before = tree(tmp_path)
    result = export_cli(run_dir, "--to", str(tmp_path), "--format", "csv", "--overwrite")
    assert result.exit_code == 2, result.output
    assert tree(tmp_path) == before


def test_the_default_target_inside_out_is_allowed(run_dir: Path) -> None:
    result = export_cli(run_dir)
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(run_dir / "export.parquet").height == ROWS


def test_an_existing_file_is_kept_without_overwrite_and_replaced_whole_with_it(
    tmp_path: Path, run_dir: Path, dataset: Path
) -> None:
    target = tmp_path / "mine.csv"
    target.write_text("precious,data\n1,2\n", encoding="utf-8")
    before_target, before_out, before_data = digest(target), tree(run_dir), digest(dataset)
    refused = export_cli(run_dir, "--to", str(target))
    assert refused.exit_code == 2, refused.output
    assert "--overwrite" in refused.output and "exists" in refused.output
    assert digest(target) == before_target
    assert tree(run_dir) == before_out and digest(dataset) == before_data
    done = export_cli(run_dir, "--to", str(target), "--overwrite")
    assert done.exit_code == 0, done.output
    assert pl.read_csv(target)["status_a"].to_list() == ["ok"] * ROWS
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_an_existing_folder_of_part_files_is_replaced_only_with_overwrite(
    tmp_path: Path, run_dir: Path
) -> None:
    target = tmp_path / "parts"
    parts = ("--to", str(target), "--format", "csv", "--max-file-rows", "4")
    assert export_cli(run_dir, *parts).exit_code == 0
    before = tree(target)
    refused = export_cli(run_dir, *parts)
    assert refused.exit_code == 2 and tree(target) == before
    done = export_cli(run_dir, *parts, "--overwrite")
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in target.iterdir()) == [
        PARTS_MARK,
        *(f"part-0000{i}.csv" for i in range(3)),
    ]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("fmt", [("--max-file-rows", "4"), ()])
def test_a_folder_that_is_not_an_export_is_never_replaced_even_with_overwrite(
    tmp_path: Path, run_dir: Path, fmt: tuple[str, ...]
) -> None:
    """A folder of the user's, or another run's directory: --overwrite replaces an earlier
    export, never them (it would delete everything inside)."""
    mine = tmp_path / "important"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("precious", encoding="utf-8")
    (mine / "part-00000.csv").write_text("a,b\n", encoding="utf-8")
    parts_of_mine = tmp_path / "spark-output"  # part files no export wrote: no mark
    parts_of_mine.mkdir()
    for n in range(2):
        (parts_of_mine / f"part-0000{n}.parquet").write_bytes(b"PAR1 not ours")
    other_run = make_run(tmp_path / "data.csv", tmp_path / "other", "a", id_column="id")
    for target in (mine, parts_of_mine, other_run):
        before = tree(target)
        refused = export_cli(run_dir, "--to", str(target), *fmt, "--overwrite")
        assert refused.exit_code == 2, refused.output
        assert "which no export wrote" in refused.output
        assert tree(target) == before


KILL_MID_EXPORT = """
import os, signal, sys
from pathlib import Path
from runner.export import _writers as export_writers
from runner.export import export_run

write = export_writers.ExportSink.write

def write_then_die(self, table):
    write(self, table)
    os.kill(os.getpid(), signal.SIGKILL)

export_writers.ExportSink.write = write_then_die
export_run(Path(sys.argv[1]), Path(sys.argv[2]), format="csv")
"""


def test_a_kill_9_mid_export_leaves_scratch_that_the_next_export_removes(
    tmp_path: Path, run_dir: Path
) -> None:
    target = tmp_path / "x.csv"
    source = str(Path(runner.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": source}
    killed = subprocess.run(
        [sys.executable, "-c", KILL_MID_EXPORT, str(run_dir), str(target)], env=env, check=False
    )
    assert killed.returncode == -signal.SIGKILL
    beside = [p for p in tmp_path.iterdir() if p.name.startswith(scratch_prefix(target))]
    inside = [p for p in run_dir.iterdir() if p.name.startswith(".export-")]
    assert len(beside) == 1 and len(inside) == 1 and not target.exists()  # the scene
    assert (beside[0] / "x.csv").is_file()  # the half-written export
    done = export_cli(run_dir, "--to", str(target))
    assert done.exit_code == 0, done.output
    assert not beside[0].exists() and not inside[0].exists()
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == [".runner.lock"]
    assert pl.read_csv(target).height == ROWS


def test_scratch_without_this_runs_mark_is_never_removed(tmp_path: Path, run_dir: Path) -> None:
    target = tmp_path / "x.csv"
    other = tmp_path / f"{scratch_prefix(target)}abc"  # another run's export, perhaps live
    other.mkdir()
    (other / MARK).write_text("/somewhere/else", encoding="utf-8")
    mine = tmp_path / f"{scratch_prefix(target)}def"
    mine.mkdir()
    (mine / MARK).write_text(os.path.realpath(run_dir), encoding="utf-8")
    assert remove_export_scratch(run_dir, target) == [mine]
    assert other.exists() and not mine.exists()


# -- point 2: complete exports, or a clear refusal -------------------------------------------


def interrupted_run(tmp_path: Path, dataset: Path) -> Path:
    """A run the API stopped (401 from the 7th row on): 6 rows have outcomes, 4 do not."""

    def respond(body: dict[str, Any], attempt: int) -> httpx.Response:
        if int(body["metadata"]["row_id"][1:]) >= 6:
            return httpx.Response(401, json={"error": "invalid api key"})
        return ok_response(body)

    with pytest.raises(runner.errors.RunAborted):
        make_run(dataset, tmp_path / "out", "a", respond=respond, id_column="id", concurrency=1)
    return tmp_path / "out"


def test_an_interrupted_run_is_refused_with_the_missing_count_and_nothing_written(
    tmp_path: Path, dataset: Path
) -> None:
    out = interrupted_run(tmp_path, dataset)
    assert RunDir(out).read_manifest().status != "complete"
    before_out, before_data = tree(out), digest(dataset)
    target = tmp_path / "x.parquet"
    refused = export_cli(out, "--to", str(target))
    assert refused.exit_code == 2, refused.output
    assert "4 of 10 rows" in refused.output and "--allow-incomplete" in refused.output
    assert not target.exists() and tree(out) == before_out and digest(dataset) == before_data


def test_allow_incomplete_exports_the_missing_rows_with_a_one_line_warning(
    tmp_path: Path, dataset: Path
) -> None:
    out = interrupted_run(tmp_path, dataset)
    target = tmp_path / "x.parquet"
    result = export_cli(out, "--to", target, "--allow-incomplete")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "4 of 10 rows" in warnings[0]
    exported = pl.read_parquet(target)
    assert exported["status"].to_list() == ["ok"] * 6 + ["missing"] * 4
    assert exported["output"].null_count() == 4


def test_a_run_killed_while_judging_is_refused_unless_allowed(
    run_dir: Path, tmp_path: Path
) -> None:
    """kill -9 in the judge stage leaves the status complete; the export would lack the
    judge's columns without a word."""
    rundir = RunDir(run_dir)
    manifest = rundir.read_manifest()
    manifest.stages = {"send": "done", "compact": "done", "judge": "running"}
    rundir.write_manifest(manifest)
    target = tmp_path / "x.parquet"
    refused = export_cli(run_dir, "--to", str(target))
    assert refused.exit_code == 2, refused.output
    assert "killed in its judge stage" in refused.output and not target.exists()
    assert export_cli(run_dir, "--to", str(target), "--allow-incomplete").exit_code == 0


def test_a_complete_run_exports_without_warning(run_dir: Path, tmp_path: Path) -> None:
    said: list[str] = []
    export_run(run_dir, tmp_path / "x.parquet", warn=said.append)
    assert said == []


def scored(out_dir: Path) -> pl.LazyFrame:
    """The run's outcomes with a scorer's and a judge's columns, as scan_scored gives them."""
    frame = pl.read_parquet(out_dir / "results.parquet")
    number = pl.col("row_id").str.slice(1).cast(pl.Int64)
    return frame.lazy().with_columns(
        (number % 2).cast(pl.Float64).alias("score"),
        pl.when(number == 3).then(pl.lit("scorer raised")).alias("score_error"),
        (number / 10).alias("judge_score"),
        pl.format("because {}", pl.col("variant")).alias("judge_reason"),
        pl.lit(None, dtype=pl.String).alias("judge_error"),
    )


def test_scores_and_judge_columns_come_next_to_the_outputs_per_variant(
    tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_module, "scan_scored", scored)
    out = pl.read_parquet(export_run(run_dir, tmp_path / "x.parquet"))
    base = ["output", "status", "error_type", "error_message"]
    added = ["score", "score_error", "judge_score", "judge_reason", "judge_error"]
    wanted = [f for f in SCORE_FIELDS if f in added]
    assert out.columns == ["id", "question", *[f"{f}_{v}" for v in "ab" for f in base + wanted]]
    assert out.schema["score_a"] == pl.Float64 and out.schema["judge_score_b"] == pl.Float64
    assert_series_equal(out["score_a"], pl.Series("score_a", [float(i % 2) for i in range(ROWS)]))
    assert out["judge_reason_b"].to_list() == ["because b"] * ROWS
    assert out["score_error_a"].to_list()[3] == "scorer raised"


def test_scores_in_a_csv_export_are_numbers(
    tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_module, "scan_scored", scored)
    out = pl.read_csv(export_run(run_dir, tmp_path / "x.csv", format="csv", variants=["a"]))
    assert out["score"].to_list() == [float(i % 2) for i in range(ROWS)]


def test_a_dataset_column_the_export_adds_is_refused_naming_export_prefix(
    tmp_path: Path,
) -> None:
    path = tmp_path / "clash.csv"
    pl.DataFrame({"question": ["q0", "q1"], "output_b": ["x", "y"]}).write_csv(path)
    out = make_run(path, tmp_path / "out", "a", "b")
    before = tree(out)
    refused = export_cli(out, "--to", str(tmp_path / "x.parquet"))
    assert refused.exit_code == 2, refused.output
    assert "output_b" in refused.output and "--export-prefix PREFIX" in refused.output
    assert tree(out) == before and not (tmp_path / "x.parquet").exists()
    done = export_cli(out, "--to", str(tmp_path / "x.parquet"), "--export-prefix", "run_")
    assert done.exit_code == 0, done.output
    columns = pl.read_parquet(tmp_path / "x.parquet").columns
    assert columns[:2] == ["question", "output_b"] and "run_output_b" in columns


def test_check_export_columns_finds_a_clash_before_the_run() -> None:
    check_export_columns(["question", "output"], ["a", "b"])  # per variant: no clash
    with pytest.raises(ConfigError, match=r"output_b.*--export-prefix PREFIX"):
        check_export_columns(["question", "output_b"], ["a", "b"])
    with pytest.raises(ConfigError, match="judge_score_a"):
        check_export_columns(["judge_score_a"], ["a", "b"], extra=SCORE_FIELDS)
    check_export_columns(["output_b"], ["a", "b"], prefix="x_")
    with pytest.raises(ConfigError, match="x_status_a"):
        check_export_columns(["x_status", "x_status_a"], ["a"], prefix="x_")


def test_one_variant_with_a_taken_plain_name_is_suffixed_and_checked_again() -> None:
    check_export_columns(["output"], ["a"])  # the export names its columns <field>_a
    with pytest.raises(ConfigError, match="status_a"):
        check_export_columns(["output", "status_a"], ["a"])


def test_the_manifest_names_the_dataset_files_refused_as_targets(
    run_dir: Path, dataset: Path
) -> None:
    files = export_module.run_dataset_files(RunDir(run_dir).read_manifest())
    assert dataset.resolve() in [f.resolve() for f in files]
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["dataset"]["files"]
