"""The simulator's controls for other tests: a concurrency cap, an outage, a hung API, and
unknown deployments. Real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import anyio
import httpx
import pytest

from runner.errors import AttemptError
from runner.http._client import InvokeClient
from runner.http._retry import Decision, decide, is_throttled
from runner.simulator import SimulatorConfig, SimulatorServer
from tests.simulator_helpers import Serve, body

AUTH = {"Authorization": "Bearer fhk_test"}
KEY = "fhk_test"


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    """Threads for requests that must stay in flight while the test goes on."""
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def post(sim: SimulatorServer, payload: dict[str, Any], timeout: float = 10.0) -> httpx.Response:
    """One request on a connection of its own (proxies ignored: traffic stays on 127.0.0.1)."""
    with httpx.Client(trust_env=False) as client:
        return client.post(
            sim.base_url + "/prompt/invoke", json=payload, headers=AUTH, timeout=timeout
        )


def until(condition: Callable[[], bool], what: str, deadline: float = 10.0) -> None:
    """Wait for a condition the server reaches on its own thread, failing after ``deadline``."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.005)


def held_request(sim: SimulatorServer, pool: ThreadPoolExecutor) -> Future[httpx.Response]:
    """One request sent on ``pool`` that the simulator holds: in flight, not answered yet."""
    held = pool.submit(post, sim, body())
    until(lambda: sim.stats.in_flight == 1, "the request is held")
    return held


def invoke(sim: SimulatorServer, payload: dict[str, Any], timeout: float = 5.0) -> str:
    async def main() -> str:
        async with InvokeClient(sim.base_url, KEY, timeout=timeout) as client:
            return (await client.invoke(json.dumps(payload).encode(), stream=False)).output

    return anyio.run(main)


def invoke_error(
    sim: SimulatorServer, payload: dict[str, Any], timeout: float = 5.0
) -> AttemptError:
    with pytest.raises(AttemptError) as info:
        invoke(sim, payload, timeout)
    return info.value


# --- max_in_flight -------------------------------------------------------------------------


def test_config_rejects_a_max_in_flight_below_one() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        SimulatorConfig(max_in_flight=0)


def test_from_mapping_accepts_the_new_controls() -> None:
    config = SimulatorConfig.from_mapping({"max_in_flight": 3, "hang": True})
    assert (config.max_in_flight, config.hang) == (3, True)


def test_a_request_past_max_in_flight_gets_the_concurrency_429(
    serve: Serve, pool: ThreadPoolExecutor
) -> None:
    """Two held requests fill a cap of two; the third is refused at once, and counted."""
    sim = serve(max_in_flight=2, hang=True)
    held = [pool.submit(post, sim, body(metadata={"row_id": str(i)})) for i in range(2)]
    until(lambda: sim.stats.max_answering == 2, "two requests are being answered")
    refused = post(sim, body(metadata={"row_id": "3"}))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "0"
    assert refused.json() == {
        "error": "You've reached your concurrency limit",
        "code": "too_many_requests",
    }
    sim.hang(False)
    assert [f.result().status_code for f in held] == [200, 200]
    stats = sim.stats
    assert (stats.throttled, stats.max_answering, stats.statuses[429]) == (1, 2, 1)
    assert sim.stats.to_json()["throttled"] == 1


def test_within_max_in_flight_nothing_is_refused(serve: Serve) -> None:
    sim = serve(max_in_flight=1)
    assert [post(sim, body()).status_code for _ in range(3)] == [200, 200, 200]
    assert sim.stats.throttled == 0


def test_the_client_reads_the_cap_as_a_transient_429(
    serve: Serve, pool: ThreadPoolExecutor
) -> None:
    """Not the daily cap: retryable, Retry-After 0."""
    sim = serve(max_in_flight=1, hang=True)
    held = pool.submit(post, sim, body())
    until(lambda: sim.stats.max_answering == 1, "one request is being answered")
    error = invoke_error(sim, body(metadata={"row_id": "2"}))
    sim.hang(False)
    assert held.result().status_code == 200
    assert (error.http_status, error.code, error.retry_after) == (429, "too_many_requests", 0.0)
    assert decide(error) is Decision.RETRY
    assert is_throttled(error)


# --- an outage -----------------------------------------------------------------------------


def test_go_down_refuses_connections_and_come_back_serves_on_the_same_port(
    serve: Serve,
) -> None:
    sim = serve()
    port = sim.port
    assert post(sim, body()).status_code == 200
    sim.go_down()
    assert not sim.is_up
    with pytest.raises(httpx.ConnectError):
        post(sim, body())
    assert invoke_error(sim, body()).error_type == "connect_error"
    sim.come_back()
    assert sim.is_up
    assert sim.port == port
    assert post(sim, body()).status_code == 200


def test_go_down_drops_an_idle_keep_alive_connection(serve: Serve) -> None:
    """A connection kept open after its answer is closed by the outage (EOF, not a hang)."""
    sim = serve()
    payload = json.dumps(body()).encode()
    request = (
        f"POST /v1/prompt/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {AUTH['Authorization']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sim.go_down()
        assert sock.recv(65536) == b""  # closed by the server


def test_go_down_cuts_a_request_in_progress(serve: Serve, pool: ThreadPoolExecutor) -> None:
    sim = serve(hang=True)
    held = held_request(sim, pool)
    sim.go_down()
    with pytest.raises(httpx.TransportError):
        held.result()
    until(lambda: sim.stats.in_flight == 0, "the cut request's handler ended")


def test_come_back_while_up_and_go_down_while_down_change_nothing(serve: Serve) -> None:
    sim = serve()
    sim.come_back()
    assert post(sim, body()).status_code == 200
    sim.go_down()
    sim.go_down()
    sim.come_back()
    assert post(sim, body()).status_code == 200


def test_the_controls_need_a_running_simulator() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        SimulatorServer().go_down()


def test_a_simulator_stops_cleanly_while_down(serve: Serve) -> None:
    threads = threading.active_count()
    with SimulatorServer() as sim:
        sim.go_down()
    assert threading.active_count() == threads


# --- a hung API ----------------------------------------------------------------------------


def test_a_hung_simulator_answers_nothing_until_the_client_gives_up(serve: Serve) -> None:
    sim = serve(hang=True)
    error = invoke_error(sim, body(), timeout=0.2)
    assert error.error_type == "timeout"
    until(lambda: sim.stats.in_flight == 0, "the abandoned handler ended")
    assert (sim.stats.requests, sim.stats.successes) == (1, 0)


def test_hang_false_answers_the_held_requests(serve: Serve, pool: ThreadPoolExecutor) -> None:
    sim = serve()
    sim.hang(True)
    held = held_request(sim, pool)
    assert not held.done()
    sim.hang(False)
    assert held.result().status_code == 200
    assert post(sim, body()).status_code == 200


def test_a_simulator_stops_promptly_with_requests_held(
    serve: Serve, pool: ThreadPoolExecutor
) -> None:
    sim = serve(hang=True)
    held = held_request(sim, pool)
    sim.stop()
    with pytest.raises(httpx.TransportError):
        held.result()


# --- unknown deployments and variants ------------------------------------------------------


def test_by_default_any_deployment_and_variant_is_served(serve: Serve) -> None:
    sim = serve()
    assert post(sim, body(deployment="anything", variant="whatever")).status_code == 200


def test_an_unknown_deployment_is_404_saying_so(serve: Serve) -> None:
    sim = serve(deployments={"support-reply": ()})
    response = post(sim, body(deployment="other"))
    assert response.status_code == 404
    assert response.json()["error"] == "deployment 'other' not found"
    error = invoke_error(sim, body(deployment="other"))
    assert (error.error_type, error.code) == ("http_404", "not_found")
    assert error.message == "deployment 'other' not found"
    assert decide(error) is Decision.FAIL


def test_an_unknown_variant_is_404_saying_so(serve: Serve) -> None:
    sim = serve(deployments={"support-reply": ("baseline",)})
    response = post(sim, body(variant="candidate"))
    assert response.status_code == 404
    assert (
        response.json()["message"] == "variant 'candidate' not found in deployment 'support-reply'"
    )
