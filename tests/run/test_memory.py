"""MemoryPlan: the piece sizes of the stages after sending, checked when built."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from runner.errors import ConfigError
from runner.store._memory import DEFAULT_MEMORY, MemoryPlan


def test_a_plan_names_only_the_fields_it_changes() -> None:
    plan = MemoryPlan(bucket_rows=7)
    assert plan.bucket_rows == 7
    assert dataclasses.replace(plan, bucket_rows=DEFAULT_MEMORY.bucket_rows) == DEFAULT_MEMORY


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "8"])
def test_a_size_that_is_not_a_positive_int_is_refused_naming_the_field(value: object) -> None:
    with pytest.raises(ConfigError, match=r"MemoryPlan\.score_rows must be a positive int"):
        MemoryPlan(score_rows=value)  # type: ignore[arg-type]


def test_a_fan_in_below_two_is_refused_as_it_would_never_finish_merging() -> None:
    with pytest.raises(ConfigError, match="fan_in must be at least 2"):
        MemoryPlan(fan_in=1)


def test_fields_are_keywords_only() -> None:
    with pytest.raises(TypeError):
        MemoryPlan(1024)  # type: ignore[call-arg]  # positional on purpose: it must be refused


def test_every_field_says_what_it_trades() -> None:
    """Each field has a docstring (read from the module source) in the class body."""
    import ast
    import inspect

    from runner.store import _memory as memory

    body = next(
        node
        for node in ast.parse(inspect.getsource(memory)).body
        if isinstance(node, ast.ClassDef) and node.name == "MemoryPlan"
    ).body
    documented = {
        target.target.id
        for target, doc in itertools.pairwise(body)
        if isinstance(target, ast.AnnAssign)
        and isinstance(target.target, ast.Name)
        and isinstance(doc, ast.Expr)
        and isinstance(doc.value, ast.Constant)
        and isinstance(doc.value.value, str)
    }
    assert documented == {field.name for field in dataclasses.fields(MemoryPlan)}


def test_an_experiment_exports_and_reports_by_its_memory_plan(tmp_path: Path) -> None:
    """The plan reaches export_run and build_reports: row groups of its sizes, same rows."""
    import polars as pl
    import pyarrow.parquet as pq

    from runner.config import RunConfig
    from runner.experiment import Experiment, ExportPlan, run_experiment
    from runner.simulator import SimulatorConfig, SimulatorServer

    data = tmp_path / "data.csv"
    pl.DataFrame({"id": [f"r{i}" for i in range(7)], "text": ["hi"] * 7}).write_csv(data)
    plan = MemoryPlan(export_batch_rows=2, score_rows=3)
    with SimulatorServer(SimulatorConfig()) as sim:
        config = RunConfig(dataset=(str(data),), out_dir=tmp_path / "out", deployment="d",
                           variants=("a", "b"), base_url=sim.base_url)  # fmt: skip
        target = tmp_path / "export.parquet"
        experiment = Experiment(config, score="exact", export=ExportPlan(to=target), memory=plan)
        result = run_experiment(experiment, api_key="fhk_test")
    assert result.exit_code == 0, result.error
    assert pq.ParquetFile(target).metadata.num_row_groups == 4  # 7 rows, 2 at a time
    assert pl.read_parquet(target)["id"].to_list() == [f"r{i}" for i in range(7)]
    scores = pq.ParquetFile(tmp_path / "out" / "scores.parquet").metadata
    assert scores.num_row_groups == 5  # 14 results, 3 at a time
