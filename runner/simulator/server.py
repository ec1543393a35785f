"""Running the simulator: in a background thread (:class:`SimulatorServer`), with controls
for outages and hung requests, or in the foreground until a signal (:func:`serve_forever`).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Final, Self

from aiohttp import web

from runner.config_checks import is_loopback_host
from runner.simulator.app import SimulatorApp
from runner.simulator.config import SimulatorConfig, SimulatorConfigError
from runner.simulator.stats import SimulatorStats

#: Seconds in-flight requests get to finish when the server stops.
_SHUTDOWN_TIMEOUT: Final = 1.0


def _drop_connections(runner: web.AppRunner) -> None:
    """Close every open connection at once, idle keep-alive ones and those mid-request."""
    server = runner.server
    if server is not None:
        for connection in server.connections:
            connection.force_close()


def _check_loopback(host: str) -> None:
    if not is_loopback_host(host):
        raise SimulatorConfigError(
            f"the simulator serves on a loopback address only (127.0.0.1, ::1), not {host!r}"
        )


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


async def _start(
    simulator: SimulatorApp, host: str, port: int, reuse_port: bool = False
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
        self._simulator = SimulatorApp(self.config)
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
    asyncio.run(_serve(SimulatorApp(config), host, port, ready, reuse_port))


async def _serve(
    simulator: SimulatorApp,
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
