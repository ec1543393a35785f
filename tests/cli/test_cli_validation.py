"""Bad usage and bad input: a clear message naming the problem, exit 2, zero requests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.simulator import SimulatorConfig, SimulatorServer


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig()) as server:
        yield server


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    pl.DataFrame({"id": ["a", "b", "c"], "q": ["x", "y", "z"], "gold": ["1", "2", "3"]}).write_csv(
        path
    )
    return path


def check_refused(
    sim: SimulatorServer, args: list[str], *, says: str, env: dict[str, str] | None = None
) -> str:
    before = sim.stats.requests
    env = {"FETCH_HIVE_API_KEY": "", "FETCH_HIVE_BASE_URL": "", **(env or {})}
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert says in result.output, result.output
    assert sim.stats.requests == before
    return result.output


def args(sim: SimulatorServer, dataset: Path | str, out: Path, *extra: str) -> list[str]:
    return ["run", str(dataset), "-d", "dep", "-v", "baseline", "--base-url", sim.base_url,
            "--out", str(out), *extra]  # fmt: skip


def test_missing_file(sim: SimulatorServer, tmp_path: Path) -> None:
    check_refused(sim, args(sim, tmp_path / "nope.csv", tmp_path / "o"), says="nope.csv")


def test_unknown_format(sim: SimulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    check_refused(sim, args(sim, path, tmp_path / "o"), says="data.xlsx")


def test_empty_dataset(sim: SimulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("id,q\n")
    check_refused(sim, args(sim, path, tmp_path / "o"), says="empty.csv")


def test_unknown_column(sim: SimulatorServer, data: Path, tmp_path: Path) -> None:
    out = check_refused(sim, args(sim, data, tmp_path / "o", "--expected-column", "answer"),
                        says="answer")  # fmt: skip
    assert "gold" in out  # the available columns are listed


def test_duplicate_ids(sim: SimulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "dupes.csv"
    path.write_text("id,q\n1,a\n2,b\n1,c\n")
    out = check_refused(sim, args(sim, path, tmp_path / "o"), says="dupes.csv")
    assert "duplicate" in out.lower()


def test_missing_deployment(sim: SimulatorServer, data: Path, tmp_path: Path) -> None:
    check_refused(sim, ["run", str(data), "-v", "a", "--base-url", sim.base_url],
                  says="--deployment")  # fmt: skip


def test_missing_variant(sim: SimulatorServer, data: Path, tmp_path: Path) -> None:
    check_refused(sim, ["run", str(data), "-d", "dep", "--base-url", sim.base_url],
                  says="--variant")  # fmt: skip


def test_tag_not_key_value(sim: SimulatorServer, data: Path, tmp_path: Path) -> None:
    check_refused(sim, args(sim, data, tmp_path / "o", "--tag", "team"), says="KEY=VALUE")


def test_tag_reusing_a_reserved_metadata_key(
    sim: SimulatorServer, data: Path, tmp_path: Path
) -> None:
    check_refused(sim, args(sim, data, tmp_path / "o", "--tag", "run_id=x"), says="run_id")


def test_nested_metadata_column(sim: SimulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "nested.jsonl"
    path.write_text('{"id": "1", "q": "x", "ctx": {"a": 1}}\n')
    check_refused(sim, args(sim, path, tmp_path / "o", "--metadata-column", "ctx"), says="ctx")


def test_api_key_missing_for_a_remote_api(sim: SimulatorServer, data: Path, tmp_path: Path) -> None:
    argv = ["run", str(data), "-d", "dep", "-v", "a", "--out", str(tmp_path / "o"),
            "--base-url", "https://api.fetchhive.com/v1"]  # fmt: skip
    check_refused(sim, argv, says="FETCH_HIVE_API_KEY")


def test_plain_http_to_a_remote_host(sim: SimulatorServer, data: Path, tmp_path: Path) -> None:
    argv = ["run", str(data), "-d", "dep", "-v", "a", "--base-url", "http://example.com/v1"]
    check_refused(sim, argv, says="plain http", env={"FETCH_HIVE_API_KEY": "fhk_x"})


def test_non_empty_out_without_resume(sim: SimulatorServer, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    check_refused(sim, args(sim, data, out), says="--resume")
    assert (out / "keep.txt").read_text() == "precious"


def test_resume_with_another_dataset_is_refused(
    sim: SimulatorServer, data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o"
    first = CliRunner().invoke(main, args(sim, data, out), env={"FETCH_HIVE_API_KEY": ""})
    assert first.exit_code == 0, first.output
    results_before = (out / "results.parquet").read_bytes()
    data.write_text("id,q,gold\na,changed,1\n")
    check_refused(sim, args(sim, data, out, "--resume"), says="dataset differs")
    assert (out / "results.parquet").read_bytes() == results_before


def test_resume_with_another_config_names_the_change(
    sim: SimulatorServer, data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o"
    assert CliRunner().invoke(main, args(sim, data, out)).exit_code == 0
    check_refused(sim, args(sim, data, out, "--resume", "--repeat", "2"), says="repeat")


def test_bad_concurrency(sim: SimulatorServer, data: Path, tmp_path: Path) -> None:
    check_refused(sim, args(sim, data, tmp_path / "o", "--concurrency", "0"),
                  says="--concurrency")  # fmt: skip
