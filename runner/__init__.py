"""runner: the batch evaluation runner for Fetch Hive prompt deployments.

The library's one public door; the CLI (``runner.cli``) is a thin shell over it::

    from runner import RunConfig, run_job, build_reports

    config = RunConfig(dataset=("tickets.csv",), out_dir=Path("reports/x"),
                       deployment="support-reply", variants=("baseline", "candidate"))
    result = run_job(config, api_key=os.environ["FETCH_HIVE_API_KEY"])
    build_reports(result.out_dir, score="exact")
"""

from runner.config import RunConfig
from runner.errors import (
    AttemptError,
    ConfigError,
    GateFailed,
    InputError,
    ResultsDirError,
    RunAborted,
    RunInterrupted,
    RunnerError,
    ShardsError,
    UsageError,
)
from runner.inputs import Dataset, open_dataset
from runner.job import RunResult, run_job
from runner.records import RESULT_SCHEMA, Answer, Call, Outcome, Row
from runner.report import build_reports, write_regression
from runner.retry import RetryPolicy
from runner.simulator import SimulatorConfig, SimulatorServer

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
