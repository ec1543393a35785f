"""The package's public door stays what it says."""

from __future__ import annotations

from pathlib import Path

import runner


def test_all_names_resolve() -> None:
    for name in runner.__all__:
        assert hasattr(runner, name), name


def test_public_api_is_deliberate() -> None:
    """Adding or removing a public name is a decision: update this list with it."""
    assert sorted(runner.__all__) == sorted(
        [
            "RESULT_SCHEMA", "Answer", "AttemptError", "Call", "ConfigError", "Dataset",
            "ErrorBudgetExceeded", "Experiment", "ExperimentResult", "ExportPlan",
            "GateFailed", "Gates", "InputError", "JudgePlan", "Manifest", "Outcome",
            "RegressionReport", "ResultsDirError", "RetryPolicy", "Row", "RunAborted",
            "RunConfig", "RunDir", "RunDirLocked", "RunInterrupted", "RunResult", "RunStatus",
            "RunnerError", "ShardsError", "SimulatorConfig", "SimulatorServer", "Stage",
            "StorageError", "UsageError", "__version__", "arun_experiment", "arun_job",
            "build_reports", "gate_run", "open_dataset", "read_results", "run_experiment",
            "run_job", "write_regression",
        ]
    )  # fmt: skip


def test_every_error_is_a_runner_error() -> None:
    for name in runner.__all__:
        value = getattr(runner, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, runner.RunnerError), name


def test_importing_runner_stays_light() -> None:
    """`import runner` loads no statistics or HTTP stack until they are used."""
    import subprocess
    import sys

    code = "import runner, sys; print(sorted({'scipy', 'aiohttp'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_public_door_is_typed_for_a_users_type_checker(tmp_path: Path) -> None:
    """mypy sees real types through the lazy door: a wrong argument is an error."""
    import subprocess
    import sys

    script = tmp_path / "user_script.py"
    script.write_text(
        "from pathlib import Path\n"
        "import runner\n"
        "ok = runner.RunConfig(dataset=('a.csv',), out_dir=Path('o'), deployment='d',"
        " variants=('v',))\n"
        "bad = runner.RunConfig(dataset=1, out_dir=Path('o'), deployment='d', variants=('v',))\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--strict", str(script)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 1, out.stdout
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and "user_script.py:4:" in errors[0], out.stdout
    assert "dataset" in errors[0]


def test_the_readme_layout_names_every_module() -> None:
    """The README's layout section is the tree: every top-level module and every package of
    runner/ is named in it, one line each."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    layout = readme.split("The package reads as the data flows", 1)[1].split("```", 2)[1]
    modules = {p.name for p in (root / "runner").glob("*.py")} - {"__main__.py"}
    packages = {f"{p.name}/" for p in (root / "runner").iterdir()
                if p.is_dir() and p.name != "__pycache__"}  # fmt: skip
    named = {line.split()[0] for line in layout.splitlines()[1:] if line.strip()}
    assert modules | packages <= named, (
        f"README layout does not name: {sorted((modules | packages) - named)}"
    )
