"""Shared fixtures: tiny datasets, a scripted fake API for MockTransport, run configs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import polars as pl
import pytest

from runner.config import RunConfig

Handler = Callable[[dict[str, Any], int], httpx.Response]


@dataclass
class FakeApi:
    """A scripted invoke API for ``httpx.MockTransport`` that records what it was asked.

    ``respond(body, attempt)`` decides each answer; ``attempt`` counts requests per call key.
    ``latency`` makes each request take that long, so concurrency can be observed.
    """

    respond: Handler | None = None
    latency: float = 0.0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[tuple[str, str, int], int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        meta = body["metadata"]
        key = (meta["row_id"], body["variant"], meta["repeat"])
        self.attempts[key] = attempt = self.attempts.get(key, 0) + 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await anyio.sleep(self.latency)
            if self.respond is not None:
                return self.respond(body, attempt)
            return ok_response(body)
        finally:
            self.in_flight -= 1

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def ok_response(body: dict[str, Any]) -> httpx.Response:
    text = f"{body['variant']}:{json.dumps(body['inputs'], sort_keys=True)}"
    return httpx.Response(
        200,
        json={
            "request_id": "req_" + "0" * 32,
            "model": "fake-model",
            "response": text,
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
        },
    )


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
