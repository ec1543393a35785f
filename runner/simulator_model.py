"""Former home of the simulator's pure core; kept so old imports keep working.

Import from :mod:`runner.simulator` instead (the pieces now live in its ``config``,
``request``, ``model``, ``faults`` and ``wire`` modules).
"""

from runner.simulator.config import (
    FAULT_KINDS,
    PERMANENT_KINDS,
    SimulatorConfig,
    SimulatorConfigError,
    VariantProfile,
)
from runner.simulator.faults import fault_for
from runner.simulator.model import LABELS, is_wrong, latency_for, model_response, reference_answer
from runner.simulator.request import CallKey, call_key, canonical_json

__all__ = [
    "FAULT_KINDS",
    "LABELS",
    "PERMANENT_KINDS",
    "CallKey",
    "SimulatorConfig",
    "SimulatorConfigError",
    "VariantProfile",
    "call_key",
    "canonical_json",
    "fault_for",
    "is_wrong",
    "latency_for",
    "model_response",
    "reference_answer",
]
