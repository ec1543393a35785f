"""The package's public door stays what it says."""

from __future__ import annotations

import runner


def test_all_names_resolve() -> None:
    for name in runner.__all__:
        assert hasattr(runner, name), name


def test_public_api_is_deliberate() -> None:
    """Adding or removing a public name is a decision: update this list with it."""
    assert sorted(runner.__all__) == sorted(
        [
            "RESULT_SCHEMA", "Answer", "AttemptError", "Call", "ConfigError", "Dataset",
            "GateFailed", "InputError", "Outcome", "ResultsDirError", "RetryPolicy", "Row",
            "RunAborted", "RunConfig", "RunInterrupted", "RunResult", "RunnerError",
            "ShardsError", "SimulatorConfig", "SimulatorServer", "UsageError", "__version__",
            "build_reports", "open_dataset", "run_job", "write_regression",
        ]
    )  # fmt: skip


def test_every_error_is_a_runner_error() -> None:
    for name in runner.__all__:
        value = getattr(runner, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, runner.RunnerError), name


def test_importing_runner_stays_light() -> None:
    """`import runner` loads no statistics, plotting or HTTP stack until they are used."""
    import subprocess
    import sys

    code = "import runner, sys; print(sorted({'scipy', 'plotly', 'aiohttp'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
