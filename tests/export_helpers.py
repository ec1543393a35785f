"""Helpers for the export-safety tests: a finished run made through the library with the fake
API, and fingerprints of whole folders to show that a refusal changed nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from click.testing import Result

from runner.config import RunConfig
from runner.run._job import run_job
from runner.store._rundir import LOCK_NAME
from tests.fakes import FakeApi, ok_response
from tests.support import cli

Respond = Callable[[dict[str, Any], int], httpx.Response]


def make_run(
    dataset: Path,
    out: Path,
    *variants: str,
    respond: Respond | None = None,
    real: bool = False,
    **overrides: Any,
) -> Path:
    """Run ``variants`` over ``dataset`` into ``out`` against the fake API (``real``: over
    the network to ``base_url``); return ``out``."""
    values: dict[str, Any] = {
        "dataset": (str(dataset),),
        "out_dir": out,
        "deployment": "backfill",
        "variants": variants,
        "input_columns": ("question",),
        "base_url": "http://127.0.0.1:9/v1",
        "max_attempts": 1,
        "max_error_rate": 1.0,
        **overrides,
    }
    config = RunConfig(**values)
    transport = None if real else FakeApi(respond=respond or answer).transport
    run_job(config, api_key="fhk_test", transport=transport)
    return out


def export_cli(run_dir: Path, *args: str | Path) -> Result:
    """``runner export RUN_DIR ARGS``, in this process."""
    return cli("export", run_dir, *args)


def answer(body: dict[str, Any], attempt: int) -> httpx.Response:
    return ok_response(body)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(path: Path) -> dict[str, str]:
    """Every entry under ``path`` (not following links): file → hash, link → its target,
    folder → ``dir``. Equal trees hold the same bytes under the same names. The lock file is
    left out: each holder writes its pid into it (it holds no data)."""
    found: dict[str, str] = {}
    if path.is_file() and not path.is_symlink():
        return {".": digest(path)}
    for entry in sorted(path.rglob("*")):
        name = str(entry.relative_to(path))
        if entry.name == LOCK_NAME:
            continue
        if entry.is_symlink():
            found[name] = "-> " + str(entry.readlink())
        elif entry.is_dir():
            found[name] = "dir"
        else:
            found[name] = digest(entry)
    return found
