"""What the simulator reads from a request: its call key, and what is wrong with its body.

A call key is ``(deployment, variant, row, repeat)``: ``row`` is ``metadata.row_id`` when the
request carries one, else the canonical JSON of its inputs; ``repeat`` is ``metadata.repeat``
as text, or ``""``. The server counts attempts per call key (1, 2, …), and every seeded
decision (:mod:`runner.simulator.model`, :mod:`runner.simulator.faults`) is taken over it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, NamedTuple


class CallKey(NamedTuple):
    """What identifies one logical call across its retries."""

    deployment: str
    variant: str
    row: str
    """``metadata.row_id`` as text, else the canonical JSON of the inputs."""
    repeat: str
    """``metadata.repeat`` as text, ``""`` when absent."""


_CANONICAL: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the form every hash of inputs is taken over."""
    return _CANONICAL.encode(value)


def call_key(
    deployment: str,
    variant: str | None,
    inputs: Mapping[str, Any] | str,
    metadata: Mapping[str, Any],
) -> CallKey:
    """The call key of a request (module docstring); ``inputs`` may be its canonical JSON."""
    row_id = metadata.get("row_id")
    if row_id is not None:
        row = str(row_id)
    else:
        row = inputs if isinstance(inputs, str) else canonical_json(inputs)
    repeat = metadata.get("repeat")
    return CallKey(deployment, variant or "", row, "" if repeat is None else str(repeat))


def validate_body(body: Mapping[str, Any]) -> str | None:
    """What is wrong with an invoke body per the protocol page, naming the field; None if valid."""
    deployment = body.get("deployment")
    if not isinstance(deployment, str) or not deployment:
        return "deployment: required, must be a non-empty string"
    for name, kind, label in (
        ("variant", str, "a string"),
        ("user", str, "a string"),
        ("inputs", dict, "an object"),
        ("metadata", dict, "an object"),
        ("streaming", bool, "a boolean"),
    ):
        if name in body and not isinstance(body[name], kind):
            return f"{name}: must be {label}, got {_json_type(body[name])}"
    for name in ("image_urls", "attachments"):
        if name in body:
            return f"{name}: not accepted by prompt invoke (use /v1/agent/invoke)"
    for key, value in body.get("metadata", {}).items():
        if not key:
            return "metadata: keys must be non-empty strings"
        if isinstance(value, dict | list):
            return (
                f"metadata.{key}: must be a string, number, boolean or null, "
                f"got {_json_type(value)}; metadata must be flat"
            )
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
