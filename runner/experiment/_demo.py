"""``runner demo``: the main job on the built-in simulator, end to end, with no key and no
network. Two variants over the sample tickets shipped inside the package (``runner/data``),
streamed, with injected 502s, then a pairwise judge (the simulator's ``grader:pairwise``, which
prefers the answer with the right label) compares the candidate with the baseline row by row;
it works from any directory after a plain ``pip install``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Final

from runner.config import RunConfig
from runner.errors import ResultsDirError
from runner.experiment import ExperimentResult, Hooks
from runner.simulator import SimulatorConfig, SimulatorServer, VariantProfile
from runner.store import RunDir

#: The sample dataset's name inside the package (``runner/data/tickets.csv``).
SAMPLE_NAME = "tickets.csv"
#: The ``experiment`` a demo run is tagged with: how a later demo knows it may replace it.
DEMO_EXPERIMENT = "demo"
#: The judge deployment and variant the demo's pairwise judge calls on the simulator.
DEMO_JUDGE: Final = ("grader", "pairwise")


@contextmanager
def sample_dataset() -> Iterator[Path]:
    """The packaged sample tickets as a file on disk, for the ``with`` block.

    A real path inside an installed package; extracted to a temporary file only when the
    package is imported from a zip.
    """
    resource = resources.files("runner") / "data" / SAMPLE_NAME
    with resources.as_file(resource) as path:
        yield path


def _clear_previous_demo(out: Path) -> None:
    """Replace an earlier demo's output, and refuse anything that is not one."""
    run_dir = RunDir(out)
    if not out.exists() or not any(out.iterdir()):
        return
    if run_dir.has_manifest() and (
        run_dir.read_manifest().config.get("experiment") == DEMO_EXPERIMENT
    ):
        shutil.rmtree(out)
        return
    raise ResultsDirError(f"{out} is not empty and not an earlier demo; choose another --out")


def demo_config(out: Path, dataset: Path, base_url: str, rows: int) -> RunConfig:
    """The demo's run: two variants of ``support-reply``, streamed, scored on ``expected``."""
    return RunConfig(
        dataset=(str(dataset),),
        out_dir=out,
        deployment="support-reply",
        variants=("baseline", "candidate"),
        expected_column="expected",
        metadata_columns=("plan",),
        limit=rows,
        experiment=DEMO_EXPERIMENT,
        tags={"source": "runner-demo"},
        base_url=base_url,
        stream=True,
        concurrency=16,
        backoff_initial=0.05,
    )


def run_demo(
    out: Path,
    *,
    rows: int = 200,
    dataset: Path | None = None,
    hooks: Hooks | None = None,
) -> ExperimentResult:
    """Run the demo into ``out`` (replacing an earlier demo there) and return its result:
    an experiment like any other (send, pairwise judge, reports), on a simulator of its own.

    ``dataset`` defaults to the packaged sample tickets; ``hooks`` (the CLI's print and handle
    signals) default to the library's, which say nothing.
    """
    from runner.experiment import Experiment, JudgePlan, run_experiment

    _clear_previous_demo(out)
    variants = {
        **SimulatorConfig().variants,
        DEMO_JUDGE[1]: VariantProfile(judge="pairwise"),
    }
    sim = SimulatorConfig(
        latency_ms=40.0, jitter_ms=20.0, seed=7, faults={"http_502": 0.1}, variants=variants
    )
    with SimulatorServer(sim) as server, _dataset_path(dataset) as path:
        experiment = Experiment(
            demo_config(out, path, server.base_url, rows),
            score="contains",
            judges=JudgePlan(pairwise_judge=":".join(DEMO_JUDGE)),
        )
        return run_experiment(experiment, api_key=None, hooks=hooks or Hooks())


@contextmanager
def _dataset_path(dataset: Path | None) -> Iterator[Path]:
    if dataset is not None:
        yield dataset
        return
    with sample_dataset() as path:
        yield path
