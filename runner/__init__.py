"""runner: the batch evaluation runner for Fetch Hive prompt deployments.

The library's one public door; the CLI (``runner.cli``) is a thin shell over it::

    from runner import RunConfig, run_job, build_reports

    config = RunConfig(dataset=("tickets.csv",), out_dir=Path("reports/x"),
                       deployment="support-reply", variants=("baseline", "candidate"))
    result = run_job(config, api_key=os.environ["FETCH_HIVE_API_KEY"])
    build_reports(result.out_dir, score="exact")
"""

from __future__ import annotations

import importlib
from typing import Any

# Names load on first use: `import runner` (and so every CLI command) must not pay for scipy,
# plotly or aiohttp unless it uses them.
_EXPORTS = {
    "RunConfig": "runner.config",
    "AttemptError": "runner.errors",
    "ConfigError": "runner.errors",
    "GateFailed": "runner.errors",
    "InputError": "runner.errors",
    "ResultsDirError": "runner.errors",
    "RunAborted": "runner.errors",
    "RunInterrupted": "runner.errors",
    "RunnerError": "runner.errors",
    "ShardsError": "runner.errors",
    "UsageError": "runner.errors",
    "Dataset": "runner.inputs",
    "open_dataset": "runner.inputs",
    "RunResult": "runner.job",
    "run_job": "runner.job",
    "RESULT_SCHEMA": "runner.records",
    "Answer": "runner.records",
    "Call": "runner.records",
    "Outcome": "runner.records",
    "Row": "runner.records",
    "build_reports": "runner.report",
    "write_regression": "runner.report",
    "RetryPolicy": "runner.retry",
    "SimulatorConfig": "runner.simulator",
    "SimulatorServer": "runner.simulator",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "RESULT_SCHEMA",
    "Answer",
    "AttemptError",
    "Call",
    "ConfigError",
    "Dataset",
    "GateFailed",
    "InputError",
    "Outcome",
    "ResultsDirError",
    "RetryPolicy",
    "Row",
    "RunAborted",
    "RunConfig",
    "RunInterrupted",
    "RunResult",
    "RunnerError",
    "ShardsError",
    "SimulatorConfig",
    "SimulatorServer",
    "UsageError",
    "__version__",
    "build_reports",
    "open_dataset",
    "run_job",
    "write_regression",
]
