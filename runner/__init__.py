"""runner: the batch evaluation runner for Fetch Hive prompt deployments.

The library's one public door; the CLI (``runner.cli``) is a thin shell over it::

    from runner import Experiment, JudgePlan, RunConfig, read_results, run_experiment

    config = RunConfig(dataset=("tickets.csv",), out_dir=Path("reports/x"),
                       deployment="support-reply", variants=("baseline", "candidate"),
                       expected_column="expected")
    result = run_experiment(Experiment(config, judges=JudgePlan(judge="grader:v1")))
    result.raise_for_status()                 # or read result.exit_code, result.stage
    frame = read_results(result.out_dir)      # a polars DataFrame, one row per call

``run_job`` is the sending stage alone; ``build_reports`` rebuilds the reports of a run.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # real types for type checkers; at run time names load on first use
    from runner.config import RunConfig
    from runner.dataset import Dataset, open_dataset
    from runner.errors import (
        AttemptError,
        ConfigError,
        ErrorBudgetExceeded,
        GateFailed,
        InputError,
        ResultsDirError,
        RunAborted,
        RunDirLocked,
        RunInterrupted,
        RunnerError,
        ShardsError,
        StorageError,
        UsageError,
    )
    from runner.experiment import (
        Experiment,
        ExperimentResult,
        ExportPlan,
        JudgePlan,
        Stage,
        arun_experiment,
        run_experiment,
    )
    from runner.gates import Gates, RegressionReport, gate_run, write_regression
    from runner.http import RetryPolicy
    from runner.records import RESULT_SCHEMA, Answer, Call, Outcome, Row
    from runner.report import build_reports
    from runner.run import RunResult, arun_job, run_job
    from runner.simulator import SimulatorConfig, SimulatorServer
    from runner.store import Manifest, RunDir, RunStatus, read_results

# Names load on first use: `import runner` (and so every CLI command) must not pay for scipy
# or aiohttp unless it uses them.
_EXPORTS = {
    "RunConfig": "runner.config",
    "AttemptError": "runner.errors",
    "ConfigError": "runner.errors",
    "ErrorBudgetExceeded": "runner.errors",
    "GateFailed": "runner.errors",
    "InputError": "runner.errors",
    "ResultsDirError": "runner.errors",
    "RunAborted": "runner.errors",
    "RunDirLocked": "runner.errors",
    "RunInterrupted": "runner.errors",
    "RunnerError": "runner.errors",
    "ShardsError": "runner.errors",
    "StorageError": "runner.errors",
    "UsageError": "runner.errors",
    "Experiment": "runner.experiment",
    "ExperimentResult": "runner.experiment",
    "ExportPlan": "runner.experiment",
    "JudgePlan": "runner.experiment",
    "Stage": "runner.experiment",
    "arun_experiment": "runner.experiment",
    "run_experiment": "runner.experiment",
    "Gates": "runner.gates",
    "RegressionReport": "runner.gates",
    "Dataset": "runner.dataset._dataset",
    "open_dataset": "runner.dataset._dataset",
    "RunResult": "runner.run._session",
    "arun_job": "runner.run._job",
    "run_job": "runner.run._job",
    "RESULT_SCHEMA": "runner.records",
    "Answer": "runner.records",
    "Call": "runner.records",
    "Outcome": "runner.records",
    "Row": "runner.records",
    "gate_run": "runner.gates._regression",
    "write_regression": "runner.gates._regression",
    "build_reports": "runner.report",
    "read_results": "runner.store._results",
    "RetryPolicy": "runner.http._retry",
    "Manifest": "runner.store._manifest",
    "RunDir": "runner.store._rundir",
    "RunStatus": "runner.store._manifest",
    "SimulatorConfig": "runner.simulator",
    "SimulatorServer": "runner.simulator",
}


def door_getattr(door: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` of a package's door (this one and each package's ``__init__``): a
    name of ``exports`` is imported from its private module on first use, then kept in the
    door, so a door costs nothing until a name is taken through it."""

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {door!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[door], name, value)
        return value

    return getattr_


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else
    __getattr__ = door_getattr(__name__, _EXPORTS)


__version__ = "0.2.0"

__all__ = [
    "RESULT_SCHEMA",
    "Answer",
    "AttemptError",
    "Call",
    "ConfigError",
    "Dataset",
    "ErrorBudgetExceeded",
    "Experiment",
    "ExperimentResult",
    "ExportPlan",
    "GateFailed",
    "Gates",
    "InputError",
    "JudgePlan",
    "Manifest",
    "Outcome",
    "RegressionReport",
    "ResultsDirError",
    "RetryPolicy",
    "Row",
    "RunAborted",
    "RunConfig",
    "RunDir",
    "RunDirLocked",
    "RunInterrupted",
    "RunResult",
    "RunStatus",
    "RunnerError",
    "ShardsError",
    "SimulatorConfig",
    "SimulatorServer",
    "Stage",
    "StorageError",
    "UsageError",
    "__version__",
    "arun_experiment",
    "arun_job",
    "build_reports",
    "gate_run",
    "open_dataset",
    "read_results",
    "run_experiment",
    "run_job",
    "write_regression",
]
