"""``runner demo``: the main job on the built-in simulator, end to end, with no key and no
network. Two variants over the sample tickets, streamed, with injected 502s."""

from __future__ import annotations

import shutil
from pathlib import Path

from runner.config import RunConfig
from runner.errors import ResultsDirError
from runner.job import RunResult, run_job
from runner.progress import auto_display
from runner.results import MANIFEST, read_manifest
from runner.simulator import SimulatorConfig, SimulatorServer

SAMPLE = Path(__file__).resolve().parent.parent / "datasets" / "tickets.csv"


def _clear_previous_demo(out: Path) -> None:
    """Replace an earlier demo's output, and refuse anything that is not one."""
    if not out.exists() or not any(out.iterdir()):
        return
    if (out / MANIFEST).exists() and read_manifest(out).get("config", {}).get(
        "experiment"
    ) == "demo":
        shutil.rmtree(out)
        return
    raise ResultsDirError(f"{out} is not empty and not an earlier demo; choose another --out")


def run_demo(out: Path, *, rows: int = 200, dataset: Path = SAMPLE) -> RunResult:
    _clear_previous_demo(out)
    sim = SimulatorConfig(latency_ms=40.0, jitter_ms=20.0, seed=7, faults={"http_502": 0.1})
    with SimulatorServer(sim) as server:
        config = RunConfig(
            dataset=(str(dataset),),
            out_dir=out,
            deployment="support-reply",
            variants=("baseline", "candidate"),
            expected_column="expected",
            metadata_columns=("plan",),
            limit=rows,
            experiment="demo",
            tags={"source": "runner-demo"},
            base_url=server.base_url,
            stream=True,
            concurrency=16,
            backoff_initial=0.05,
        )
        return run_job(config, api_key=None, display=auto_display())
