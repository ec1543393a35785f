"""The built-in fake of the Fetch Hive invoke API, served on 127.0.0.1 by aiohttp.

It speaks the wire contract of ``/work/shared/fetchhive-protocol.md`` (JSON and server-sent
events), answers like a deterministic ticket classifier (:func:`reference_answer`), injects
seeded, reproducible faults and plan limits, and records what it was asked
(:class:`SimulatorStats`). What it answers is decided in :mod:`runner.simulator_model`; this
module only serves it.

Run it in-process with ``with SimulatorServer(config) as sim:`` (a background thread with its
own event loop), or in the foreground with :func:`serve_forever` (``runner simulate``).
Besides the invoke paths it serves ``GET /_sim/stats`` and ``POST /_sim/reset``.

Beyond the seeded faults, a running :class:`SimulatorServer` can be driven from the test's
thread: ``go_down()`` / ``come_back()`` (an outage: connections refused, then served again on
the same port) and ``hang(True/False)`` (requests accepted and never answered).
``SimulatorConfig.max_in_flight`` caps concurrency with 429s, and ``deployments`` makes unknown
deployments and variants 404.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import os
import signal
import socket
import struct
import threading
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

from aiohttp import web

from runner.simulator_model import (
    CONCURRENCY_CAP_BODY,
    FAULT_KINDS,
    FAULT_REPLIES,
    HTML_503,
    LABELS,
    PERMANENT_KINDS,
    CallKey,
    PlannedAnswer,
    SimulatorConfig,
    SimulatorConfigError,
    VariantProfile,
    answer_payload,
    call_key,
    canonical_json,
    daily_cap_body,
    error_body,
    fault_for,
    is_wrong,
    latency_for,
    model_response,
    plan_answer,
    reference_answer,
    stream_events,
    validate_body,
)

__all__ = [
    "FAULT_KINDS",
    "INVOKE_PATHS",
    "LABELS",
    "PERMANENT_KINDS",
    "CallKey",
    "ReceivedRequest",
    "SimulatorConfig",
    "SimulatorConfigError",
    "SimulatorServer",
    "SimulatorStats",
    "VariantProfile",
    "call_key",
    "fault_for",
    "is_wrong",
    "latency_for",
    "model_response",
    "reference_answer",
    "serve_forever",
]

INVOKE_PATHS: Final = ("/v1/prompt/invoke", "/v1/invoke")

#: Seconds in-flight requests get to finish when the server stops.
_SHUTDOWN_TIMEOUT: Final = 1.0


# --- what the simulator records ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One invoke request as received; the API key itself is never kept."""

    path: str
    has_authorization: bool
    body: dict[str, Any] | None
    """The parsed JSON body, or None when it was not a JSON object."""

    @property
    def metadata(self) -> dict[str, Any] | None:
        value = self.body.get("metadata") if self.body is not None else None
        return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class SimulatorStats:
    """A snapshot of what the simulator was asked and what it answered."""

    requests: int
    """Invoke requests received, rejected ones included."""
    served: int
    """Requests that passed auth, validation and the plan limits (what the limits count)."""
    successes: int
    """Complete answers sent (a JSON 200, or a stream up to ``[DONE]``)."""
    in_flight: int
    max_in_flight: int
    requests_per_key: dict[CallKey, int]
    """Attempts per call key (valid, known-deployment requests only)."""
    successes_per_key: dict[CallKey, int]
    faults: dict[str, int]
    """Injected faults served, by kind (transient and permanent)."""
    statuses: dict[int, int]
    """Responses by HTTP status (a reset connection has none)."""
    received: tuple[ReceivedRequest, ...]
    """The most recent requests, up to ``SimulatorConfig.record_limit``."""
    throttled: int = 0
    """429s answered because ``SimulatorConfig.max_in_flight`` requests were being answered."""
    max_answering: int = 0
    """The most requests answered at once (those refused by ``max_in_flight`` not counted)."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (served by ``GET /_sim/stats``)."""
        keys = sorted(self.requests_per_key.keys() | self.successes_per_key.keys())
        return {
            "requests": self.requests,
            "served": self.served,
            "successes": self.successes,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "throttled": self.throttled,
            "max_answering": self.max_answering,
            "faults": self.faults,
            "statuses": {str(status): n for status, n in sorted(self.statuses.items())},
            "keys": [
                {
                    **key._asdict(),
                    "requests": self.requests_per_key.get(key, 0),
                    "successes": self.successes_per_key.get(key, 0),
                }
                for key in keys
            ],
            "received": [
                {"path": r.path, "has_authorization": r.has_authorization, "body": r.body}
                for r in self.received
            ],
        }


class _Recorder:
    """The live counters: written on the server's loop, readable from any thread."""

    def __init__(self, record_limit: int) -> None:
        self._lock = threading.Lock()
        self._record_limit = record_limit
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = self.served = self.successes = 0
            self.in_flight = self.max_in_flight = 0
            self.answering = self.max_answering = self.throttled = 0
            self.attempts: Counter[CallKey] = Counter()
            self.key_successes: Counter[CallKey] = Counter()
            self.faults: Counter[str] = Counter()
            self.statuses: Counter[int] = Counter()
            self.received: deque[ReceivedRequest] = deque(maxlen=self._record_limit)

    def enter(self, received: ReceivedRequest) -> None:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.received.append(received)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def admit(self, cap: int | None) -> bool:
        """Count one more request being answered, unless ``cap`` are already (then a 429)."""
        with self._lock:
            if cap is not None and self.answering >= cap:
                self.throttled += 1
                return False
            self.answering += 1
            self.max_answering = max(self.max_answering, self.answering)
            return True

    def answered(self) -> None:
        with self._lock:
            self.answering -= 1

    def attempt(self, key: CallKey) -> int:
        with self._lock:
            self.attempts[key] += 1
            return self.attempts[key]

    def serve(self) -> None:
        with self._lock:
            self.served += 1

    def success(self, key: CallKey) -> None:
        with self._lock:
            self.successes += 1
            self.key_successes[key] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def status(self, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1

    def snapshot(self) -> SimulatorStats:
        with self._lock:
            return SimulatorStats(
                requests=self.requests,
                served=self.served,
                successes=self.successes,
                in_flight=self.in_flight,
                max_in_flight=self.max_in_flight,
                requests_per_key=dict(self.attempts),
                successes_per_key=dict(self.key_successes),
                faults=dict(self.faults),
                statuses=dict(self.statuses),
                received=tuple(self.received),
                throttled=self.throttled,
                max_answering=self.max_answering,
            )


# --- the HTTP application --------------------------------------------------------------

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


class _Simulator:
    """The request handlers, sharing one config and one recorder."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.recorder = _Recorder(config.record_limit)
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
        if not known:
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


def _drop_connections(runner: web.AppRunner) -> None:
    """Close every open connection at once, idle keep-alive ones and those mid-request."""
    server = runner.server
    if server is not None:
        for connection in server.connections:
            connection.force_close()


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


# --- running it ----------------------------------------------------------------------------


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SimulatorConfigError(
            f"the simulator serves on a loopback address only (127.0.0.1, ::1), not {host!r}"
        )


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


async def _start(
    simulator: _Simulator, host: str, port: int, reuse_port: bool = False
) -> tuple[web.AppRunner, int]:
    """Start serving; return the runner (to clean up) and the bound port."""
    runner = web.AppRunner(
        simulator.app(),
        access_log=None,  # no per-request logging: the simulator must stay fast
        handler_cancellation=True,  # a client that gives up (timeout) ends its handler
        shutdown_timeout=_SHUTDOWN_TIMEOUT,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, int(runner.addresses[0][1])


class SimulatorServer:
    """The simulator on 127.0.0.1, in a background thread with its own event loop.

    ::

        with SimulatorServer(SimulatorConfig(faults={"http_502": 0.1})) as sim:
            client = httpx.Client(base_url=sim.base_url)
            ...
            assert sim.stats.max_in_flight <= 8
    """

    def __init__(self, config: SimulatorConfig | None = None, *, port: int = 0) -> None:
        if not 0 <= port <= 65535:
            raise SimulatorConfigError(f"port must be in 0..65535, got {port}")
        self.config = config if config is not None else SimulatorConfig()
        self._simulator = _Simulator(self.config)
        self._requested_port = port
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.BaseSite | None = None

    @property
    def port(self) -> int:
        """The bound port (only while running)."""
        if self._port is None:
            raise RuntimeError("the simulator is not running")
        return self._port

    @property
    def base_url(self) -> str:
        """The API base URL, up to and including ``/v1``."""
        return _base_url("127.0.0.1", self.port)

    @property
    def stats(self) -> SimulatorStats:
        """A snapshot of the stats, safe to read from any thread, during or after the run."""
        return self._simulator.recorder.snapshot()

    def reset_stats(self) -> None:
        """Forget everything recorded, attempt counts and plan-limit counters included."""
        self._simulator.recorder.reset()

    def hang(self, on: bool = True) -> None:
        """Hold requests unanswered (``True``) or answer them again, the held ones included.

        Takes effect before it returns; safe from any thread.
        """
        if self._loop is None:
            self._simulator.set_hanging(on)
            return
        self._on_loop(self._set_hanging(on))

    def go_down(self) -> None:
        """An outage: stop listening (connections are refused) and drop every open connection.

        Requests in progress are cut. Returns once the port is closed; safe from any thread.
        """
        self._on_loop(self._go_down())

    def come_back(self) -> None:
        """End an outage: listen again on the same port. A no-op while up."""
        self._on_loop(self._come_back())

    @property
    def is_up(self) -> bool:
        """Whether the simulator accepts connections (running and not down)."""
        return self._site is not None

    def _on_loop(self, coro: Coroutine[Any, Any, None]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            raise RuntimeError("the simulator is not running")
        asyncio.run_coroutine_threadsafe(coro, loop).result()

    async def _set_hanging(self, on: bool) -> None:
        self._simulator.set_hanging(on)

    async def _go_down(self) -> None:
        site, runner = self._site, self._runner
        if site is None or runner is None:
            return
        self._site = None
        await site.stop()
        _drop_connections(runner)

    async def _come_back(self) -> None:
        if self._site is not None or self._runner is None:
            return
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self._site = site

    def start(self) -> Self:
        """Start serving; return once the port is bound (or raise why it could not be)."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="runner-simulator", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self

    def stop(self) -> None:
        """Stop serving and join the thread; in-flight requests get a second to finish."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join()
        self._thread = self._loop = self._stop = None
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._simulator.bind()
        self._stop = asyncio.Event()
        try:
            runner, self._port = await _start(self._simulator, "127.0.0.1", self._requested_port)
        except BaseException as exc:  # handed to the starting thread, which raises it
            self._error = exc
            self._ready.set()
            return
        self._runner, self._site = runner, next(iter(runner.sites))
        self._loop = asyncio.get_running_loop()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            self._loop = None
            if self._simulator.hanging:
                _drop_connections(runner)  # held requests would keep the cleanup waiting
            await runner.cleanup()
            self._runner = self._site = None


def serve_forever(
    config: SimulatorConfig,
    host: str = "127.0.0.1",
    port: int = 8787,
    ready: Callable[[str], None] | None = None,
    reuse_port: bool = False,
) -> None:
    """Serve until SIGINT or SIGTERM; ``ready`` gets the base URL once the port is bound.

    Only loopback hosts are accepted. Port 0 picks a free port (``ready`` tells which).
    ``reuse_port`` lets several processes serve one port (``SO_REUSEPORT``: the kernel
    spreads connections between them), to serve more than one core can.
    """
    _check_loopback(host)
    asyncio.run(_serve(_Simulator(config), host, port, ready, reuse_port))


async def _serve(
    simulator: _Simulator,
    host: str,
    port: int,
    ready: Callable[[str], None] | None,
    reuse_port: bool = False,
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    simulator.bind()
    runner, bound = await _start(simulator, host, port, reuse_port)
    try:
        if ready is not None:
            ready(_base_url(host, bound))
        await stop.wait()
    finally:
        await runner.cleanup()
        for sig in handled:
            loop.remove_signal_handler(sig)
