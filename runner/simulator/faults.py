"""The fault plan: which attempt of which call key gets which injected fault.

A pure function of the config's ``seed``, the call key and the attempt number, so a test knows
in advance which calls fail and how (:func:`fault_for`).
"""

from __future__ import annotations

from collections.abc import Mapping

from runner.simulator.config import SimulatorConfig
from runner.simulator.model import unit_hash
from runner.simulator.request import CallKey


def fault_for(config: SimulatorConfig, key: CallKey, attempt: int) -> str | None:
    """The fault served to this attempt (1-based) of this call key, or None for a clean answer.

    A key drawn for a permanent fault gets it on every attempt. Otherwise each attempt draws a
    transient fault with the configured probabilities, until the key has had
    ``max_faults_per_key`` of them.
    """
    if config.permanent:
        kind = _pick(config.permanent, unit_hash(config.seed, "permanent", *key))
        if kind is not None:
            return kind
    if not config.faults:
        return None
    kind = _transient_draw(config, key, attempt)
    if kind is None or attempt <= config.max_faults_per_key:
        return kind  # fewer earlier attempts than the cap: the cap cannot have been reached
    earlier = sum(_transient_draw(config, key, n) is not None for n in range(1, attempt))
    return kind if earlier < config.max_faults_per_key else None


def _transient_draw(config: SimulatorConfig, key: CallKey, attempt: int) -> str | None:
    return _pick(config.faults, unit_hash(config.seed, "fault", *key, attempt))


def _pick(rates: Mapping[str, float], draw: float) -> str | None:
    total = 0.0
    for kind, rate in rates.items():
        total += rate
        if draw < total:
            return kind
    return None
