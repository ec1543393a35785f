"""Checks the configurations share: unknown keys rejected, loopback hosts recognised.

Used by :class:`runner.config.RunConfig` and :class:`runner.simulator.SimulatorConfig`, so both
reject a typo'd key and judge "is this host loopback" the same way.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from typing import Any

from runner.errors import ConfigError


def known_keys(
    cls: type, values: Any, where: str, error: type[ConfigError] = ConfigError
) -> dict[str, Any]:
    """``values`` as a dict, after checking every key is a field of the dataclass ``cls``.

    ``where`` names the thing in the message (``"simulator configuration"``, ``"variant 'b'"``);
    ``error`` is the :class:`~runner.errors.ConfigError` subclass raised.
    """
    if not isinstance(values, Mapping):
        raise error(f"{where} must be a mapping, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known, key=str)
    if unknown:
        raise error(f"unknown key(s) in {where}: {', '.join(map(str, unknown))}")
    return dict(values)


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
