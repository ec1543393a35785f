"""Helpers for the simulator's tests: servers started by keyword, stopped and checked after."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from runner.simulator import SimulatorConfig, SimulatorServer

Serve = Callable[..., SimulatorServer]


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
