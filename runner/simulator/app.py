"""The simulator's HTTP application: the invoke handlers, on aiohttp.

What to answer is decided by the pure modules (:mod:`~runner.simulator.model`,
:mod:`~runner.simulator.faults`, :mod:`~runner.simulator.wire`); this module only serves it,
on the schedule the answer was planned with, and records it (:mod:`~runner.simulator.stats`).
Besides the invoke paths it serves ``GET /_sim/stats`` and ``POST /_sim/reset``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import socket
import struct
from typing import Any, Final

from aiohttp import web

from runner.simulator.config import PERMANENT_KINDS, SimulatorConfig
from runner.simulator.faults import fault_for
from runner.simulator.request import call_key, canonical_json, validate_body
from runner.simulator.stats import ReceivedRequest, Recorder
from runner.simulator.wire import (
    CONCURRENCY_CAP_BODY,
    FAULT_REPLIES,
    HTML_503,
    PlannedAnswer,
    answer_payload,
    daily_cap_body,
    error_body,
    plan_answer,
    stream_events,
)

INVOKE_PATHS: Final = ("/v1/prompt/invoke", "/v1/invoke")

_JSON_HEADERS: Final = {"Content-Type": "application/json"}
_SSE_HEADERS: Final = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_COMPACT: Final = json.JSONEncoder(separators=(",", ":"))
#: Faults answered at once: the server refuses before any work; the others take the latency.
_IMMEDIATE: Final = frozenset({"http_429", *PERMANENT_KINDS})


def _body_of(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class SimulatorApp:
    """The request handlers, sharing one config and one recorder."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.recorder = Recorder(config.record_limit)
        self.hanging = config.hang
        self._unhung: asyncio.Event | None = None

    def bind(self) -> None:
        """Make the loop-bound state on the serving loop (called once it runs)."""
        self._unhung = asyncio.Event()
        self.set_hanging(self.hanging)

    def set_hanging(self, hanging: bool) -> None:
        """Hold every new request (and those held) unanswered, or let them all go on."""
        self.hanging = hanging
        if self._unhung is not None:
            if hanging:
                self._unhung.clear()
            else:
                self._unhung.set()

    def app(self) -> web.Application:
        app = web.Application()
        for path in INVOKE_PATHS:
            app.router.add_post(path, self.invoke)
        app.router.add_get("/_sim/stats", self.get_stats)
        app.router.add_post("/_sim/reset", self.reset_stats)
        return app

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.recorder.snapshot().to_json())

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.recorder.reset()
        return web.json_response({"reset": True})

    async def invoke(self, request: web.Request) -> web.StreamResponse:
        body = _body_of(await request.read())
        auth = request.headers.get("Authorization")
        self.recorder.enter(ReceivedRequest(request.path, auth is not None, body))
        try:
            if not self.recorder.admit(self.config.max_in_flight):
                return self._reply(429, CONCURRENCY_CAP_BODY, {"Retry-After": "0"})
            try:
                if self.hanging and self._unhung is not None:
                    # Held, and counted as being answered; a client that gives up (or an
                    # outage) cancels this handler.
                    await self._unhung.wait()
                return await self._invoke(request, auth, body)
            finally:
                self.recorder.answered()
        finally:
            self.recorder.leave()

    async def _invoke(
        self, request: web.Request, auth: str | None, body: dict[str, Any] | None
    ) -> web.StreamResponse:
        if not self._authorized(auth):
            return self._reply(401, {"error": "Invalid access."})
        if body is None:
            return self._reply(400, error_body("the body must be a JSON object", "bad_request"))
        problem = validate_body(body)
        if problem is not None:
            return self._reply(422, error_body(problem, "validation_error"))
        deployment, variant = body["deployment"], body.get("variant")
        missing = self._not_found(deployment, variant)
        if missing is not None:
            return self._reply(404, error_body(missing, "not_found"))
        inputs = body.get("inputs", {})
        inputs_json = canonical_json(inputs)
        key = call_key(deployment, variant, inputs_json, body.get("metadata", {}))
        attempt = self.recorder.attempt(key)
        refusal = self._over_limit()
        if refusal is not None:
            return refusal
        answer = plan_answer(
            self.config,
            key,
            attempt,
            inputs,
            inputs_json,
            streaming=body.get("streaming") is True,
            request_id="req_" + os.urandom(16).hex(),
        )
        fault = fault_for(self.config, key, attempt)
        if fault is not None:
            self.recorder.fault(fault)
            return await self._fault(request, answer, fault)
        return await self._answer(request, answer)

    def _authorized(self, auth: str | None) -> bool:
        if auth is None or not auth.startswith("Bearer "):
            return False
        key = auth.removeprefix("Bearer ").strip()
        if self.config.api_key is not None:
            return hmac.compare_digest(key.encode(), self.config.api_key.encode())
        return key.startswith("fhk_") and len(key) > len("fhk_")

    def _not_found(self, deployment: str, variant: str | None) -> str | None:
        known = self.config.deployments
        if not known or deployment in self.config.judges:
            return None
        if deployment not in known:
            return f"deployment {deployment!r} not found"
        variants = known[deployment]
        if variants and variant is not None and variant not in variants:
            return f"variant {variant!r} not found in deployment {deployment!r}"
        return None

    def _over_limit(self) -> web.Response | None:
        config, served = self.config, self.recorder.served
        if config.daily_limit is not None and served >= config.daily_limit:
            return self._reply(429, daily_cap_body(config.daily_limit, served))
        if config.credit_limit is not None and served >= config.credit_limit:
            message = "Insufficient hosted LLM credits"
            return self._reply(402, error_body(message, "insufficient_hosted_llm_credits"))
        self.recorder.serve()
        return None

    def _reply(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> web.Response:
        self.recorder.status(status)
        return web.Response(
            status=status,
            body=_COMPACT.encode(payload).encode(),
            headers=_JSON_HEADERS if headers is None else {**_JSON_HEADERS, **headers},
        )

    async def _answer(self, request: web.Request, answer: PlannedAnswer) -> web.StreamResponse:
        if answer.streaming:
            return await self._stream(request, answer)
        await _sleep(answer.delay)
        self.recorder.success(answer.key)
        return self._reply(200, answer_payload(answer, self.config.usage_shape))

    async def _stream(
        self, request: web.Request, answer: PlannedAnswer, cut: str | None = None
    ) -> web.StreamResponse:
        """Stream the answer on its schedule; ``cut`` (stream_error, truncate) stops half-way."""
        response = web.StreamResponse(headers=_SSE_HEADERS)
        self.recorder.status(200)
        await response.prepare(request)
        events = stream_events(answer, self.config.ttft_share, cut)
        if answer.delay <= 0:
            events = [(0.0, b"".join(data for _, data in events))]
        loop = asyncio.get_running_loop()
        start, last = loop.time(), len(events) - 1
        for i, (offset, data) in enumerate(events):
            await _sleep(start + offset - loop.time())
            if i < last:
                await response.write(data)
                continue
            if cut is None:
                self.recorder.success(answer.key)  # before the client can see [DONE]
            await response.write_eof(data)  # the last event and the end of the body, in one send
        return response

    async def _fault(
        self, request: web.Request, answer: PlannedAnswer, kind: str
    ) -> web.StreamResponse:
        if kind == "reset":
            return _reset(request)
        if kind == "stall":
            await _sleep(self.config.stall_seconds)
            return await self._answer(request, answer)
        if answer.streaming and kind in ("stream_error", "truncate"):
            return await self._stream(request, answer, cut=kind)
        if kind not in _IMMEDIATE:
            await _sleep(answer.delay)
        if kind == "truncate":
            return await self._truncated_json(request, answer)
        if kind == "http_503_html":
            self.recorder.status(503)
            return web.Response(status=503, text=HTML_503, content_type="text/html")
        status, payload = FAULT_REPLIES[kind]
        retry_after = {"Retry-After": self.config.retry_after} if kind == "http_429" else None
        return self._reply(status, payload, retry_after)

    async def _truncated_json(
        self, request: web.Request, answer: PlannedAnswer
    ) -> web.StreamResponse:
        """Announce the whole body's length, send half of it, then close the connection."""
        body = _COMPACT.encode(answer_payload(answer, self.config.usage_shape)).encode()
        response = web.StreamResponse(headers=_JSON_HEADERS)
        response.content_length = len(body)
        self.recorder.status(200)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        if request.transport is not None:
            request.transport.close()
        return response


def _reset(request: web.Request) -> web.Response:
    """Reset the TCP connection (RST, no response); the returned response is never sent."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=500)


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)
