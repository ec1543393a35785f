"""Time ``build_reports`` on a 1,000,000-row results file (2 variants x 500,000 rows).

    .venv/bin/python bench/bench_reports.py [--rows-per-variant N] [--out DIR]

Builds a synthetic run directory (results.parquet and manifest.json) with numpy and polars,
then times full report builds: exact-match scoring, the rewrite of results.parquet, the
summary, comparison and side-by-side frames, and report.html. The first build also pays for
plotly's and scipy's first-use costs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from runner.records import RESULT_SCHEMA
from runner.report._report import build_reports

VARIANTS = ("baseline", "candidate")


def synthetic_results(rows_per_variant: int, seed: int = 7) -> pl.DataFrame:
    """Results with realistic shapes: ~70-75 % right, 2-3 % errors, lognormal latency."""
    rng = np.random.default_rng(seed)
    n = rows_per_variant
    ids = np.arange(n)
    expected = pl.Series([f"answer {i % 997}" for i in range(n)])
    frames = []
    for k, variant in enumerate(VARIANTS):
        right = rng.random(n) < 0.70 + 0.05 * k
        error = rng.random(n) < 0.02 + 0.01 * k
        latency = rng.lognormal(np.log(400 + 40 * k), 0.35, n)
        frames.append(
            pl.DataFrame(
                {
                    "row_id": pl.Series(ids).cast(pl.String),
                    "variant": variant,
                    "right": right,
                    "error": error,
                    "latency_ms": latency,
                    "tokens": rng.integers(80, 400, n),
                    "expected": expected,
                }
            )
        )
    base = pl.concat(frames)
    ok = ~pl.col("error")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    frame = base.select(
        pl.lit("r-bench").alias("run_id"),
        "row_id",
        "variant",
        pl.lit("bench-deployment").alias("deployment"),
        pl.lit(0, dtype=pl.Int32).alias("repeat"),
        pl.when(ok).then(pl.lit("ok")).otherwise(pl.lit("error")).alias("status"),
        pl.when(ok)
        .then(pl.when("right").then("expected").otherwise(pl.lit("something else")))
        .alias("output"),
        pl.lit(None, dtype=pl.String).alias("reasoning"),
        pl.lit("model-x").alias("model"),
        pl.lit(None, dtype=pl.String).alias("request_id"),
        pl.when(ok).then(200).otherwise(502).cast(pl.Int32).alias("http_status"),
        pl.when(ok).then(None).otherwise(pl.lit("http_502")).alias("error_type"),
        pl.when(ok).then(None).otherwise(pl.lit("bad gateway")).alias("error_message"),
        pl.when(ok).then(1).otherwise(4).cast(pl.Int32).alias("attempts"),
        pl.when(ok).then("latency_ms").alias("latency_ms"),
        pl.col("latency_ms").alias("total_ms"),
        pl.lit(None, dtype=pl.Float64).alias("ttft_ms"),
        (pl.col("tokens") // 2).alias("prompt_tokens"),
        (pl.col("tokens") - pl.col("tokens") // 2).alias("completion_tokens"),
        pl.col("tokens").alias("total_tokens"),
        pl.lit(start).alias("started_at"),
        pl.lit(start).alias("finished_at"),
        pl.format('{{"question": "what is item {}?"}}', "row_id").alias("inputs"),
        "expected",
        # Columns the result schema gained later (metadata), empty here.
        *[pl.lit(None, dtype=pl.String).alias(n) for n in RESULT_SCHEMA.names[24:]],
    )
    return pl.from_arrow(frame.to_arrow().cast(RESULT_SCHEMA))  # type: ignore[return-value]


def write_run(out_dir: Path, results: pl.DataFrame) -> None:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    results.write_parquet(out_dir / "results.parquet", compression="zstd")
    manifest = {
        "run_id": "r-bench",
        "status": "complete",
        "config": {"deployment": "bench-deployment", "variants": list(VARIANTS), "repeat": 1},
        "dataset_fingerprint": "bench",
        "started_at": "2025-01-01T00:00:00Z",
        "finished_at": "2025-01-01T01:00:00Z",
        "versions": {"runner": "bench"},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-variant", type=int, default=500_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "reports")
    parser.add_argument("--repeat", type=int, default=3, help="timed builds (the first is cold)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    results = synthetic_results(args.rows_per_variant)
    write_run(args.out, results)
    print(f"built {results.height:,} result rows in {time.perf_counter() - t0:.1f} s")

    times, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        build_reports(args.out, score="exact")
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    size = (args.out / "report.html").stat().st_size / 1e6
    runs = ", ".join(f"{t:.2f}" for t in times)
    print(
        f"build_reports on {results.height:,} rows: median {statistics.median(times):.2f} s "
        f"wall over {args.repeat} runs ({runs} s), median {statistics.median(cpu):.2f} s CPU "
        f"(all threads); report.html {size:.1f} MB"
    )


if __name__ == "__main__":
    main()
