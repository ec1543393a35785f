"""Shared fixtures: tiny datasets, the fake API (tests/fakes.py), run configs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fakes import FakeApi

from runner.config import RunConfig


@pytest.fixture
def fake_api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def tickets_csv(tmp_path: Path) -> Path:
    """Twenty rows: id, text, expected label, a metadata-able region."""
    path = tmp_path / "tickets.csv"
    pl.DataFrame(
        {
            "id": [f"t{i:03d}" for i in range(20)],
            "text": [f"ticket number {i}" for i in range(20)],
            "expected": ["billing" if i % 2 else "account" for i in range(20)],
            "region": ["eu" if i % 3 else "us" for i in range(20)],
        }
    ).write_csv(path)
    return path


@pytest.fixture
def make_config(tmp_path: Path, tickets_csv: Path) -> Callable[..., RunConfig]:
    """A config over ``tickets_csv`` writing to ``tmp_path/out``; keywords override."""

    def make(**overrides: Any) -> RunConfig:
        values: dict[str, Any] = {
            "dataset": (str(tickets_csv),),
            "out_dir": tmp_path / "out",
            "deployment": "support-reply",
            "variants": ("baseline", "candidate"),
            "expected_column": "expected",
            "base_url": "http://127.0.0.1:9/v1",
            "concurrency": 4,
            "backoff_initial": 0.0,
        }
        values.update(overrides)
        return RunConfig(**values)

    return make
