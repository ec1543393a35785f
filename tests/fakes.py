"""Fakes shared by the tests: a scripted invoke API for ``httpx.MockTransport``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

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
