"""Peak RSS of the after-sending phases of a run, each as its own process: reports, export.

    .venv/bin/python -m bench.memory_phases --rows 100000,1000000

For each size, builds a run directory as a finished two-variant run leaves it (a Parquet
dataset of ROWS rows with extra columns, results.parquet of 2 x ROWS outcomes, a manifest
with the dataset's fingerprints), then runs, each as a child process timed and measured with
``os.wait4`` (its own peak RSS, not the tree's):

* ``python -m runner report OUT --score exact``  (scoring, summary, comparison, side_by_side,
  report.html);
* ``python -m runner export OUT``                (the dataset with both variants' columns).

Sending and compaction are measured by ``bench.run --only memory`` (the simulator at 0 ms as
its own process); this script isolates what comes after them, which is where the peak was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(out: Path, rows: int) -> None:
    # Imported here, in the builder's own process: the measuring parent must stay small, as
    # a child's peak RSS starts at its parent's size (fork copies it; wait4 reports it).
    import polars as pl

    from bench.bench_reports import VARIANTS, synthetic_results
    from runner.config import RunConfig
    from runner.dataset._dataset import open_dataset
    from runner.store._rundir import Fingerprint, Manifest, RunDir, RunStatus

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    data = out.parent / f"data-{rows}.parquet"
    ids = pl.int_range(0, rows, eager=True).alias("id")
    pl.DataFrame(
        {
            "id": ids,
            "question": [f"what is item {i}?" for i in range(rows)],
            "region": pl.Series(["eu", "us", "apac"] * (rows // 3 + 1))[:rows],
            "weight": ids.cast(pl.Float64) / 7,
        }
    ).write_parquet(data, row_group_size=65_536)
    synthetic_results(rows).write_parquet(out / "results.parquet", compression="zstd")
    config = RunConfig(
        dataset=(str(data),),
        out_dir=out,
        deployment="bench-deployment",
        variants=VARIANTS,
        id_column="id",
        input_columns=("question",),
    )
    dataset = open_dataset(config)
    manifest = Manifest(
        run_id="r-bench",
        status=RunStatus.COMPLETE,
        config=config.to_dict(),
        work=config.work_fields(),
        fingerprint=Fingerprint(dataset.fingerprint, None, dict(dataset.file_fingerprints)),
    )
    RunDir(out).write_manifest(manifest)


def measure(args: list[str]) -> tuple[float, float]:
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(args)} failed with status {status}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "phases")
    parser.add_argument("--build", nargs=2, metavar=("OUT", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build(Path(args.build[0]), int(args.build[1]))
        return
    print("| rows x variants | phase | peak RSS MB | wall s | load (1 min) |")
    print("|---:|---|---:|---:|---:|")
    for rows in [int(r) for r in args.rows.split(",")]:
        out = args.out / f"run-{rows}"
        py = sys.executable
        # Built in a child of its own: Linux carries a parent's peak RSS into the children it
        # forks (exec keeps it), so this process must stay small for wait4 to tell the truth.
        subprocess.run([py, "-m", "bench.memory_phases", "--build", str(out), str(rows)],
                       cwd=ROOT, check=True)  # fmt: skip
        phases = {
            "reports": [py, "-m", "runner", "report", str(out), "--score", "exact"],
            "export": [py, "-m", "runner", "export", str(out)],
        }
        for phase, command in phases.items():
            wall, peak = measure(command)
            load = os.getloadavg()[0]  # the machine is shared: figures read with their load
            print(f"| {rows:,} x 2 | {phase} | {peak:,.0f} | {wall:.1f} | {load:.2f} |", flush=True)


if __name__ == "__main__":
    main()
