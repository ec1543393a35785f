"""Small hand-built result frames for the report tests (imported, not a pytest conftest)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from runner.records import RESULT_SCHEMA

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def row(
    row_id: str,
    variant: str,
    output: str | None = "",
    *,
    expected: str | None = None,
    status: str = "ok",
    repeat: int = 0,
    latency_ms: float | None = 100.0,
    error_type: str | None = None,
    http_status: int | None = None,
    error_message: str | None = None,
    attempts: int = 1,
    ttft_ms: float | None = None,
    total_tokens: int | None = None,
    inputs: dict[str, Any] | None = None,
    run_id: str = "r-test",
) -> dict[str, Any]:
    """One result row with every RESULT_SCHEMA column; errors get no output and no latency."""
    ok = status == "ok"
    return {
        "run_id": run_id,
        "row_id": row_id,
        "variant": variant,
        "deployment": "dep",
        "repeat": repeat,
        "status": status,
        "output": output if ok else None,
        "reasoning": None,
        "model": "m",
        "request_id": None,
        "http_status": http_status or (200 if ok else 502),
        "error_type": None if ok else (error_type or "http_502"),
        "error_message": None if ok else (error_message or "bad gateway"),
        "attempts": attempts,
        "latency_ms": latency_ms if ok else None,
        "total_ms": latency_ms or 0.0,
        "ttft_ms": ttft_ms,
        "prompt_tokens": None,
        "completion_tokens": None,
        "total_tokens": total_tokens,
        "started_at": T0,
        "finished_at": T0,
        "inputs": json.dumps(inputs if inputs is not None else {"q": row_id}),
        "expected": expected,
    }


def frame(rows: Iterable[dict[str, Any]]) -> pl.DataFrame:
    """A results frame with exactly RESULT_SCHEMA's columns and types."""
    table = pa.Table.from_pylist(list(rows), schema=RESULT_SCHEMA)
    out = pl.from_arrow(table)
    assert isinstance(out, pl.DataFrame)
    return out


def answers(
    variant: str, right: int, total: int = 10, latency_ms: float = 100.0
) -> list[dict[str, Any]]:
    """Rows r0.. of one variant: the first ``right`` answer "Paris", the others "paris"."""
    return [
        row(
            f"r{i}",
            variant,
            "Paris" if i < right else "paris",
            expected="Paris",
            latency_ms=latency_ms,
        )
        for i in range(total)
    ]


def with_scores(results: pl.DataFrame, scores: Sequence[float | None]) -> pl.DataFrame:
    return results.with_columns(pl.Series("score", list(scores), dtype=pl.Float64))


def paired(
    base: Sequence[float | None],
    cand: Sequence[float | None],
    *,
    names: tuple[str, str] = ("base", "cand"),
) -> pl.DataFrame:
    """Two variants over rows r0, r1, …; ``None`` marks an errored call (score null)."""
    rows, scores = [], []
    for variant, values in zip(names, (base, cand), strict=True):
        for i, value in enumerate(values):
            status = "ok" if value is not None else "error"
            rows.append(row(f"r{i}", variant, f"{variant}-{value}", expected="x", status=status))
            scores.append(value)
    return with_scores(frame(rows), scores)


def write_run(
    out_dir: Path,
    results: pl.DataFrame,
    *,
    run_id: str = "r-test",
    fingerprint: str = "fp-1",
    variants: Sequence[str] | None = None,
    status: str = "complete",
) -> Path:
    """A run directory as the runner leaves it: results.parquet and manifest.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(results.to_arrow(), out_dir / "results.parquet")
    if variants is None:
        variants = results["variant"].unique(maintain_order=True).to_list()
    manifest = {
        "run_id": run_id,
        "status": status,
        "config": {"deployment": "dep", "variants": list(variants), "repeat": 1},
        "dataset_fingerprint": fingerprint,
        "started_at": "2025-01-01T00:00:00Z",
        "finished_at": "2025-01-01T00:01:00Z",
        "versions": {"runner": "0.1.0"},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return out_dir
