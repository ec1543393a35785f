"""Helpers for the simulator's tests: servers started by keyword, stopped and checked after."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from runner.simulator import SimulatorConfig, SimulatorServer

Serve = Callable[..., SimulatorServer]

#: A support ticket, the inputs of an invoke body.
TICKET = {"ticket": "My invoice is wrong"}


def body(**fields: Any) -> dict[str, Any]:
    """An invoke body like the runner's, with ``fields`` replaced."""
    base: dict[str, Any] = {
        "deployment": "support-reply",
        "variant": "baseline",
        "streaming": False,
        "inputs": TICKET,
        "metadata": {"experiment": "nightly", "row_id": "17", "repeat": 0},
    }
    return base | fields


@contextmanager
def simulators(caplog: pytest.LogCaptureFixture) -> Iterator[Serve]:
    """Start simulators configured by keyword; stop them at the end, which must log no error."""
    servers: list[SimulatorServer] = []

    def start(**fields: Any) -> SimulatorServer:
        server = SimulatorServer(SimulatorConfig(**fields)).start()
        servers.append(server)
        return server

    with caplog.at_level(logging.WARNING):
        yield start
        for server in servers:
            server.stop()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("aiohttp")] == []
