"""The simulator's bodies on the wire: answers (JSON and server-sent events) and errors.

Pure: an answer is planned in full (:class:`PlannedAnswer`) before a byte of it is sent, and
the bodies follow the protocol page (``docs/fetchhive-protocol.md``) word for word.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from runner.simulator.config import SimulatorConfig, UsageShape
from runner.simulator.model import (
    REASONING_PIECES,
    latency_for,
    model_response,
    response_pieces,
    usage,
)
from runner.simulator.request import CallKey

PROVIDER_ERROR: Final = "openai API error: provider rejected the request"
_COMPACT: Final = json.JSONEncoder(separators=(",", ":"))
_DONE: Final = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class PlannedAnswer:
    """One answer of the simulator, decided before a byte of it is sent."""

    key: CallKey
    request_id: str
    model: str
    text: str
    inputs_json: str
    """The canonical JSON of the inputs (prompt tokens are counted from it)."""
    delay: float
    """Seconds the answer takes (see :func:`latency_for`)."""
    streaming: bool


def plan_answer(
    config: SimulatorConfig,
    key: CallKey,
    attempt: int,
    inputs: Mapping[str, Any],
    inputs_json: str,
    *,
    streaming: bool,
    request_id: str,
) -> PlannedAnswer:
    """Everything the answer to this attempt will say, and how long it takes."""
    return PlannedAnswer(
        key=key,
        request_id=request_id,
        model=config.profile(key.variant, key.deployment).model,
        text=model_response(config, key.variant, inputs, inputs_json, key.deployment),
        inputs_json=inputs_json,
        delay=latency_for(config, key, attempt),
        streaming=streaming,
    )


def answer_payload(answer: PlannedAnswer, shape: UsageShape) -> dict[str, Any]:
    """The JSON body of a non-streaming success."""
    return {
        "request_id": answer.request_id,
        "model": answer.model,
        "response": answer.text,
        "usage": usage(shape, answer.inputs_json, answer.text, answer.delay),
    }


def sse(event: Mapping[str, Any]) -> bytes:
    """One server-sent event: ``data: <compact JSON>`` and a blank line."""
    return b"data: " + _COMPACT.encode(event).encode() + b"\n\n"


def stream_events(
    answer: PlannedAnswer, ttft_share: float, cut: str | None = None
) -> list[tuple[float, bytes]]:
    """The stream of an answer as (seconds after it starts, bytes to send).

    Reasoning pieces fill the first ``ttft_share`` of the delay, answer pieces the rest, then
    usage and ``[DONE]``. ``cut`` stops half-way through the answer: ``stream_error`` with an
    error event, ``truncate`` with nothing more.
    """
    rid, model, delay = answer.request_id, answer.model, answer.delay
    first = delay * ttft_share
    events = [
        (first * i / len(REASONING_PIECES), _piece(rid, model, "reasoning", piece))
        for i, piece in enumerate(REASONING_PIECES)
    ]
    pieces = response_pieces(answer.text)
    sent = pieces if cut is None else pieces[: max(1, len(pieces) // 2)]
    step = (delay - first) / len(pieces)
    events += [
        (first + step * j, _piece(rid, model, "response", piece)) for j, piece in enumerate(sent)
    ]
    if cut == "stream_error":
        error = {
            "type": "error",
            "error": PROVIDER_ERROR,
            "error_code": "provider_error",
            "request_id": rid,
        }
        events.append((first + step * len(sent), sse(error)))
    elif cut is None:
        final = {
            "request_id": rid,
            "type": "usage",
            "usage": usage("nested", answer.inputs_json, answer.text, delay),  # the docs' shape
            "stop_reason": "completed",
        }
        events.append((delay, sse(final) + _DONE))
    return events


def _piece(request_id: str, model: str, kind: str, text: str) -> bytes:
    return sse({"request_id": request_id, "type": kind, "model": model, "response": text})


def error_body(message: str, code: str) -> dict[str, Any]:
    """An API error body: ``error`` and ``message`` carry the text, ``code`` the machine code."""
    return {"error": message, "code": code, "message": message}


def daily_cap_body(limit: int, current: int) -> dict[str, Any]:
    """The daily plan cap's 429 body, word for word as on the protocol page."""
    return {
        "error": "Daily API rate limit reached",
        "code": "api_rate_limit_exceeded",
        "message": f"You have reached your daily limit of {limit} API calls. "
        "Resets at midnight UTC.",
        "limit": limit,
        "current": current,
    }


#: Status and JSON body of the faults that are a plain JSON error.
FAULT_REPLIES: Final[Mapping[str, tuple[int, dict[str, Any]]]] = {
    "http_502": (502, {"error": PROVIDER_ERROR}),
    "stream_error": (502, {"error": PROVIDER_ERROR}),  # without streaming
    "http_429": (429, error_body("Too many requests, slow down", "too_many_requests")),
    "http_500": (500, error_body("Internal server error", "internal_server_error")),
    "http_400": (400, error_body("Invalid parameters for this deployment", "bad_request")),
    "http_422": (
        422,
        error_body("inputs: the prompt cannot be rendered with these inputs", "validation_error"),
    ),
}

#: The 429 of ``max_in_flight``: a concurrency cap, transient, unlike the daily cap.
CONCURRENCY_CAP_BODY: Final = {
    "error": "You've reached your concurrency limit",
    "code": "too_many_requests",
}

HTML_503: Final = (
    "<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
    "<center><h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center>"
    "</body></html>"
)
