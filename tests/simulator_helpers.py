"""Helpers for the simulator's tests: servers started by keyword, stopped and checked after."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import pytest

from runner.simulator import SimulatorConfig, SimulatorServer, VariantProfile

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


def judge_styles(styles: Mapping[str, str]) -> Mapping[str, VariantProfile]:
    """``SimulatorConfig(judges=...)`` given as style strings (``{"grader": "mtbench"}``), as
    its docstring allows: ``__post_init__`` turns each into a profile. The field is annotated
    with the profiles it ends up holding only, so the cast tells mypy what the runtime accepts;
    the strings reach the config unchanged."""
    return cast(Mapping[str, VariantProfile], styles)


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
