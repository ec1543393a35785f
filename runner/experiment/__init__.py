"""The whole job in stages, owned by the library: send → compact → judge → export → report →
gate (and the error budgets).

::

    from runner.experiment import Experiment, run_experiment
    from runner import RunConfig

    experiment = Experiment(RunConfig(dataset=("tickets.csv",), out_dir=Path("reports/x"),
                                      deployment="support-reply",
                                      variants=("baseline", "candidate"),
                                      expected_column="expected"),
                            judges=JudgePlan(judge="grader:v1"))
    result = run_experiment(experiment)          # an ExperimentResult: status, stage, exit code
    result.raise_for_status()                    # or read result.exit_code

``OUT`` is locked from the first call to the last gate; the manifest records the stage reached
and each stage's outcome, so ``resume=True`` continues where the last session stopped. The
CLI (``runner run``) only parses, builds an :class:`Experiment`, calls :func:`run_experiment`
(with signals handled) and prints.

The experiment file (``runner run --config``, ``OUT/experiment.toml``) is read and written by
:func:`load_experiment` / :func:`experiment_toml`; :data:`KEYS` is its table of keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from runner.experiment._check import ExperimentPlan, check_experiment, plan_experiment
from runner.experiment._fields import BY_PARAM, FIELDS, FRESH_PROCESS_FROM, Field
from runner.experiment._file import (
    CLI_ONLY,
    KEY_OF_PARAM,
    KEYS,
    PLACEHOLDERS,
    STARTER,
    ExperimentFile,
    Key,
    experiment_toml,
    fill_placeholders,
    key_line,
    load_experiment,
    parse_experiment,
)
from runner.experiment._model import (
    Experiment,
    ExperimentResult,
    ExportPlan,
    JudgePlan,
    Stage,
    experiment_from_params,
    experiment_params,
)
from runner.experiment._stages import Hooks, api_key_from_env, run_stages
from runner.run import Display

if TYPE_CHECKING:
    from runner.experiment._demo import run_demo
from runner.http import RetryPolicy

__all__ = [
    "BY_PARAM",
    "CLI_ONLY",
    "FIELDS",
    "FRESH_PROCESS_FROM",
    "KEYS",
    "KEY_OF_PARAM",
    "PLACEHOLDERS",
    "STARTER",
    "Experiment",
    "ExperimentFile",
    "ExperimentPlan",
    "ExperimentResult",
    "ExportPlan",
    "Field",
    "Hooks",
    "JudgePlan",
    "Key",
    "Stage",
    "api_key_from_env",
    "arun_experiment",
    "check_experiment",
    "continue_experiment",
    "experiment_from_params",
    "experiment_params",
    "experiment_toml",
    "fill_placeholders",
    "key_line",
    "load_experiment",
    "parse_experiment",
    "plan_experiment",
    "run_demo",
    "run_experiment",
]


def run_experiment(
    experiment: Experiment,
    *,
    api_key: str | None = None,
    display: Display | None = None,
    policy: RetryPolicy | None = None,
    transport: object = None,
    hooks: Hooks | None = None,
) -> ExperimentResult:
    """Run (or, with ``experiment.config.resume``, continue) every stage of ``experiment``.

    ``api_key`` defaults to ``$FETCH_HIVE_API_KEY``. Bad input raises a
    :class:`~runner.errors.UsageError` before anything is sent; everything after that ends in
    the returned :class:`ExperimentResult` (its ``exit_code`` and ``error``), whose
    :meth:`~ExperimentResult.raise_for_status` raises the error. A library caller's signals are
    left alone; a large run's last stages run in a fresh process this one waits for.
    """
    check_experiment(experiment)
    if hooks is None:
        hooks = Hooks(display=display, policy=policy, transport=transport)  # type: ignore[arg-type]
    key = api_key if api_key is not None else api_key_from_env()
    return run_stages(experiment, key, hooks)


async def arun_experiment(
    experiment: Experiment,
    *,
    api_key: str | None = None,
    display: Display | None = None,
    policy: RetryPolicy | None = None,
) -> ExperimentResult:
    """:func:`run_experiment` for async code, on a worker thread (the event loop goes on)."""

    def run() -> ExperimentResult:
        return run_experiment(experiment, api_key=api_key, display=display, policy=policy)

    return await anyio.to_thread.run_sync(run)


def continue_experiment(out: Path, lock_fd: int, hooks: Hooks) -> ExperimentResult:
    """The fresh process of a large run: adopt OUT's lock through ``lock_fd`` and go on from
    the stage its manifest records, with the experiment of ``OUT/experiment.toml``."""
    from runner.errors import ResultsDirError
    from runner.store import RunDir

    rundir = RunDir(out)
    if not rundir.experiment.exists():
        raise ResultsDirError(f"{out} holds no experiment.toml to go on with")
    params = dict(load_experiment(rundir.experiment).params)
    config = rundir.read_manifest().config
    params.update(resume=True, retry_errors=bool(config.get("retry_errors")),
                  run_id=None)  # fmt: skip
    experiment = experiment_from_params(params)
    if hooks.resume_command is None:
        hooks.resume_command = rundir.read_manifest().resume_command
    return run_stages(experiment, api_key_from_env(), hooks, lock_fd=lock_fd)


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else

    def __getattr__(name: str) -> Any:
        """``run_demo`` loads the simulator (aiohttp) only when the demo runs."""
        if name == "run_demo":
            from runner.experiment._demo import run_demo

            return run_demo
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
