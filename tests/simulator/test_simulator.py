"""The simulator speaks the invoke protocol, over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from typing import Any

import httpx
import pytest

from runner.simulator import (
    FAULT_KINDS,
    CallKey,
    SimulatorConfig,
    SimulatorServer,
    VariantProfile,
    call_key,
    fault_for,
    is_wrong,
    model_response,
    reference_answer,
    serve_forever,
)
from tests.simulator_helpers import TICKET, Serve, body

AUTH = {"Authorization": "Bearer fhk_test"}


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    _CLIENT.close()


# One client for the module (building one per request is slow); proxies from the environment
# are ignored so that traffic never leaves 127.0.0.1.
_CLIENT = httpx.Client(trust_env=False)


def post(
    sim: SimulatorServer,
    payload: Any,
    *,
    path: str = "/prompt/invoke",
    headers: dict[str, str] = AUTH,
    timeout: float = 5.0,
) -> httpx.Response:
    return _CLIENT.post(sim.base_url + path, json=payload, headers=headers, timeout=timeout)


def stream(sim: SimulatorServer, payload: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """Stream one request; return its JSON events and whether ``data: [DONE]`` arrived."""
    events: list[dict[str, Any]] = []
    done = False
    with _CLIENT.stream(
        "POST", sim.base_url + "/prompt/invoke", json=payload | {"streaming": True}, headers=AUTH
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    return events, done


def texts(events: list[dict[str, Any]], kind: str) -> str:
    return "".join(e["response"] for e in events if e["type"] == kind)


# --- the pure model ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Please refund my last order", "billing"),
        ("I was charged twice this month", "billing"),
        ("I forgot my password", "account"),
        ("2FA codes never arrive", "account"),
        ("The app crashes on start", "technical"),
        ("I get an error when saving", "technical"),
        ("My package has not arrived", "shipping"),
        ("Delivery is late", "shipping"),
        ("Do you have a store in Lyon?", "other"),
        ("The invoice page shows an error", "billing"),  # billing outranks technical
    ],
)
def test_reference_answer_labels_tickets_by_keyword(text: str, label: str) -> None:
    """The reference answer is the first category whose keywords appear in the inputs."""
    assert reference_answer({"ticket": text}) == label


def test_reference_answer_reads_every_string_value() -> None:
    """Keywords are found in any string value of the inputs, nested ones included."""
    assert reference_answer({"id": 3, "thread": [{"body": "where is my parcel"}]}) == "shipping"


def test_call_key_falls_back_to_canonical_inputs_without_row_id() -> None:
    """Without metadata.row_id the row is the inputs' canonical JSON, whatever their key order."""
    key = call_key("d", "v", {"b": 1, "a": "x"}, {"repeat": 2})
    assert key == CallKey("d", "v", '{"a":"x","b":1}', "2")
    assert key == call_key("d", "v", {"a": "x", "b": 1}, {"repeat": 2})


def test_fault_for_caps_transient_faults_per_key() -> None:
    """With every attempt drawing a fault, a key gets exactly max_faults_per_key of them."""
    config = SimulatorConfig(faults={"http_502": 1.0}, max_faults_per_key=3)
    key = CallKey("d", "baseline", "1", "0")
    assert [fault_for(config, key, n) for n in range(1, 6)] == ["http_502"] * 3 + [None] * 2


def test_config_rejects_unknown_fault_kinds() -> None:
    """An unknown fault kind is a ValueError that names it."""
    with pytest.raises(ValueError, match="http_418"):
        SimulatorConfig(faults={"http_418": 0.1})


@pytest.mark.parametrize(
    "fields",
    [
        {"faults": {"http_502": 1.5}},
        {"faults": {"http_502": 0.6, "reset": 0.6}},
        {"permanent": {"http_400": -0.1}},
        {"variants": {"x": {"wrong_rate": 2.0}}},
    ],
    ids=["fault>1", "faults-sum>1", "permanent<0", "wrong_rate>1"],
)
def test_config_rejects_rates_outside_the_unit_interval(fields: dict[str, Any]) -> None:
    """Probabilities must lie in [0, 1], and so must each group's sum."""
    with pytest.raises(ValueError):
        SimulatorConfig.from_mapping(fields)


def test_from_mapping_rejects_unknown_keys() -> None:
    """A config file with an unknown key, top-level or in a variant, names the key."""
    with pytest.raises(ValueError, match="latency"):
        SimulatorConfig.from_mapping({"latency": 5})
    with pytest.raises(ValueError, match="slowness"):
        SimulatorConfig.from_mapping({"variants": {"a": {"slowness": 2}}})


def test_from_mapping_builds_profiles_and_deployments() -> None:
    """Plain JSON values become profiles and variant tuples."""
    config = SimulatorConfig.from_mapping(
        {
            "variants": {"fast": {"latency_factor": 0.5}},
            "deployments": {"support-reply": ["fast"]},
            "retry_after": 2,
        }
    )
    assert config.variants == {"fast": VariantProfile(latency_factor=0.5)}
    assert config.deployments == {"support-reply": ("fast",)}
    assert config.retry_after == "2"


# --- auth and validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sk_123"}, {"Authorization": "fhk_123"}],
    ids=["missing", "not-fhk", "not-bearer"],
)
def test_requests_without_a_valid_key_get_401(serve: Serve, headers: dict[str, str]) -> None:
    """No key, or one that is not a Bearer fhk_ key, is refused with the documented body."""
    response = post(serve(), body(), headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid access."}


def test_a_configured_api_key_is_the_only_one_accepted(serve: Serve) -> None:
    """With api_key set, another fhk_ key is refused and that key is accepted."""
    sim = serve(api_key="fhk_secret")
    assert post(sim, body()).status_code == 401
    assert post(sim, body(), headers={"Authorization": "Bearer fhk_secret"}).status_code == 200


def test_invalid_json_is_400(serve: Serve) -> None:
    """A body that is not JSON is a 400."""
    sim = serve()
    response = _CLIENT.post(sim.base_url + "/prompt/invoke", content=b"{nope", headers=AUTH)
    assert response.status_code == 400


def test_nested_metadata_is_422_naming_the_key(serve: Serve) -> None:
    """A metadata value that is an array or object is a validation error naming its key."""
    response = post(serve(), body(metadata={"row_id": "1", "tags": ["a", "b"]}))
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert "metadata.tags" in response.json()["message"]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"deployment": None}, "deployment"),
        ({"variant": 3}, "variant"),
        ({"inputs": ["a"]}, "inputs"),
        ({"streaming": "yes"}, "streaming"),
        ({"metadata": "nightly"}, "metadata"),
    ],
)
def test_fields_of_the_wrong_type_are_422(serve: Serve, fields: dict[str, Any], named: str) -> None:
    """Each field of the body is type-checked; the error names the field."""
    response = post(serve(), body(**fields))
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert named in response.json()["message"]


def test_unknown_deployment_is_404(serve: Serve) -> None:
    """With deployments configured, any other deployment is not found."""
    response = post(serve(deployments={"support-reply": ()}), body(deployment="other"))
    assert response.status_code == 404


def test_unknown_variant_is_404(serve: Serve) -> None:
    """A deployment that lists its variants refuses the others."""
    sim = serve(deployments={"support-reply": ("baseline",)})
    assert post(sim, body(variant="candidate")).status_code == 404
    assert post(sim, body(variant="baseline")).status_code == 200


# --- answers -------------------------------------------------------------------------------


def test_json_success_has_the_documented_shape(serve: Serve) -> None:
    """A non-streaming success carries request_id, model, response and nested usage."""
    answer = post(serve(), body()).json()
    assert re.fullmatch(r"req_[0-9a-f]{32}", answer["request_id"])
    assert answer["model"] == "gpt-5-nano"
    assert answer["response"] == reference_answer(TICKET) == "billing"
    usage = answer["usage"]
    assert set(usage) == {"duration", "prompt_tokens", "completion_tokens", "total_tokens"}
    assert set(usage["prompt_tokens"]) == {"total_tokens", "cached_tokens"}
    assert set(usage["completion_tokens"]) == {"total_tokens", "reasoning_tokens"}
    assert usage["total_tokens"] == (
        usage["prompt_tokens"]["total_tokens"] + usage["completion_tokens"]["total_tokens"]
    )


def test_flat_usage_shape_has_integer_counts(serve: Serve) -> None:
    """usage_shape='flat' answers the SDK schema's flat integers."""
    usage = post(serve(usage_shape="flat"), body()).json()["usage"]
    assert set(usage) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert all(isinstance(v, int) for v in usage.values())


@pytest.mark.parametrize("path", ["/prompt/invoke", "/invoke"])
def test_both_invoke_paths_answer(serve: Serve, path: str) -> None:
    """The current and the older SDK path are served by the same handler."""
    response = post(serve(), body(), path=path)
    assert response.status_code == 200
    assert response.json()["response"] == "billing"


def test_stream_sends_reasoning_answer_usage_then_done(serve: Serve) -> None:
    """A stream is reasoning pieces, answer pieces that concatenate to the answer, usage, [DONE]."""
    events, done = stream(serve(), body())
    kinds = [e["type"] for e in events]
    assert kinds == sorted(kinds, key=["reasoning", "response", "usage"].index)
    assert kinds.count("reasoning") >= 2 and kinds.count("response") >= 2
    assert texts(events, "response") == reference_answer(TICKET)
    assert texts(events, "reasoning")
    assert events[-1]["stop_reason"] == "completed"
    assert events[-1]["usage"]["completion_tokens"]["reasoning_tokens"] > 0
    assert len({e["request_id"] for e in events}) == 1
    assert done


def test_stream_first_answer_piece_waits_for_its_share_of_the_latency(serve: Serve) -> None:
    """With ttft_share 0.4, the first answer piece comes no sooner than 40 % of the latency."""
    sim = serve(latency_ms=250, ttft_share=0.4)
    started = time.perf_counter()
    first_answer = None
    with _CLIENT.stream(
        "POST", sim.base_url + "/prompt/invoke", json=body(streaming=True), headers=AUTH
    ) as response:
        for line in response.iter_lines():
            if '"type":"response"' in line and first_answer is None:
                first_answer = time.perf_counter() - started
    total = time.perf_counter() - started
    assert first_answer is not None
    assert first_answer >= 0.1
    assert total >= 0.25


def test_variant_latency_factor_scales_the_latency(serve: Serve) -> None:
    """A variant with latency_factor 2 takes at least twice latency_ms."""
    sim = serve(latency_ms=100, variants={"slow": VariantProfile(latency_factor=2.0)})
    started = time.perf_counter()
    assert post(sim, body(variant="slow")).status_code == 200
    assert time.perf_counter() - started >= 0.2


def test_wrong_answers_are_exactly_the_rows_is_wrong_predicts(serve: Serve) -> None:
    """A variant with wrong_rate answers a different label on exactly the is_wrong rows."""
    sim = serve(seed=7, variants={"cand": VariantProfile(wrong_rate=0.3)})
    rows = [{"ticket": f"Refund request number {n}"} for n in range(40)]
    answers = [post(sim, body(variant="cand", inputs=row)).json()["response"] for row in rows]
    wrong = [answer != "billing" for answer in answers]
    assert wrong == [is_wrong(7, "cand", row, 0.3) for row in rows]
    assert 0 < sum(wrong) < len(rows)


def test_verbose_variant_appends_a_sentence(serve: Serve) -> None:
    """The default candidate is verbose: its answer starts with a label and is longer."""
    sim = serve()
    answer = post(sim, body(variant="candidate")).json()["response"]
    assert answer == model_response(sim.config, "candidate", TICKET)
    assert answer.split(".")[0] in ("billing", "account", "technical", "shipping", "other")
    assert len(answer) > len("billing") + 20


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("http_502", 502, None), ("http_500", 500, "internal_server_error")],
)
def test_http_fault_answers_its_documented_body(
    serve: Serve, kind: str, status: int, code: str | None
) -> None:
    """A 502 carries the provider's error text; a 500 is internal_server_error."""
    sim = serve(faults={kind: 1.0})
    response = post(sim, body())
    assert response.status_code == status
    assert response.json().get("code") == code
    if kind == "http_502":
        assert response.json() == {"error": "openai API error: provider rejected the request"}
    assert sim.stats.faults == {kind: 1}


def test_http_429_fault_sends_retry_after(serve: Serve) -> None:
    """A transient 429 is too_many_requests with the configured Retry-After."""
    response = post(serve(faults={"http_429": 1.0}, retry_after="2"), body())
    assert response.status_code == 429
    assert response.json()["code"] == "too_many_requests"
    assert response.headers["retry-after"] == "2"


def test_http_503_html_fault_answers_html(serve: Serve) -> None:
    """A 503 from a proxy is an HTML page, not JSON."""
    response = post(serve(faults={"http_503_html": 1.0}), body())
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<html>")


@pytest.mark.parametrize("streaming", [False, True])
def test_reset_fault_resets_the_connection(serve: Serve, streaming: bool) -> None:
    """A reset closes the TCP connection without a response: a transport error."""
    sim = serve(faults={"reset": 1.0})
    with pytest.raises(httpx.TransportError):
        post(sim, body(streaming=streaming))
    assert sim.stats.faults == {"reset": 1}


def test_stream_error_fault_ends_with_an_error_event(serve: Serve) -> None:
    """A stream error sends some answer, then an error event, and no usage or [DONE]."""
    events, done = stream(serve(faults={"stream_error": 1.0}), body())
    assert texts(events, "response")
    assert events[-1] == {
        "type": "error",
        "error": "openai API error: provider rejected the request",
        "error_code": "provider_error",
        "request_id": events[0]["request_id"],
    }
    assert "usage" not in [e["type"] for e in events]
    assert not done


def test_stream_error_fault_without_streaming_is_a_502(serve: Serve) -> None:
    """Without streaming, a stream error fault behaves like http_502."""
    sim = serve(faults={"stream_error": 1.0})
    assert post(sim, body()).status_code == 502
    assert sim.stats.faults == {"stream_error": 1}


def test_truncate_fault_ends_the_stream_without_usage_or_done(serve: Serve) -> None:
    """A truncated stream stops after part of the answer, without usage or [DONE]."""
    events, done = stream(serve(faults={"truncate": 1.0}), body(inputs={"ticket": "a bug"}))
    answer = texts(events, "response")
    assert answer and answer != reference_answer({"ticket": "a bug"})
    assert [e["type"] for e in events if e["type"] not in ("reasoning", "response")] == []
    assert not done


def test_truncate_fault_without_streaming_sends_less_than_content_length(serve: Serve) -> None:
    """A truncated JSON body is shorter than its Content-Length: a protocol error."""
    with pytest.raises(httpx.RemoteProtocolError):
        post(serve(faults={"truncate": 1.0}), body())


def test_stall_fault_outlasts_a_short_client_timeout(serve: Serve) -> None:
    """A stall keeps the request waiting past a client's read timeout."""
    with pytest.raises(httpx.ReadTimeout):
        post(serve(faults={"stall": 1.0}, stall_seconds=30), body(), timeout=0.2)


def test_stall_fault_answers_after_stall_seconds(serve: Serve) -> None:
    """A patient client gets the answer once stall_seconds have passed."""
    sim = serve(faults={"stall": 1.0}, stall_seconds=0.2)
    started = time.perf_counter()
    assert post(sim, body()).status_code == 200
    assert time.perf_counter() - started >= 0.2


@pytest.mark.parametrize(("kind", "status"), [("http_400", 400), ("http_422", 422)])
def test_permanent_fault_repeats_on_every_attempt(serve: Serve, kind: str, status: int) -> None:
    """A key drawn for a permanent fault gets it every time, past max_faults_per_key."""
    sim = serve(permanent={kind: 1.0})
    assert [post(sim, body()).status_code for _ in range(3)] == [status] * 3
    assert sim.stats.faults == {kind: 3}


def test_each_fault_kind_is_served_under_a_mixed_config(serve: Serve) -> None:
    """With all kinds enabled, every kind is served and counted; nothing else is."""
    config = {kind: 1 / len(FAULT_KINDS) for kind in FAULT_KINDS if kind != "stall"}
    sim = serve(seed=3, faults=config)
    keys = [CallKey("support-reply", "baseline", str(n), "0") for n in range(60)]
    expected = [fault_for(sim.config, key, 1) for key in keys]
    for n in range(60):
        with suppress(httpx.TransportError):  # reset and truncate break the connection
            post(sim, body(metadata={"row_id": str(n), "repeat": 0}))
    assert set(expected) - {None} == set(config)
    assert sim.stats.faults == {kind: expected.count(kind) for kind in config}


# --- determinism -----------------------------------------------------------------------------


def _first_attempt_statuses(sim: SimulatorServer, rows: int) -> list[int]:
    return [post(sim, body(metadata={"row_id": str(n)})).status_code for n in range(rows)]


def test_same_seed_gives_the_same_fault_pattern(serve: Serve) -> None:
    """One seed faults the same keys on two servers, as fault_for predicts; another seed differs."""
    faults = {"http_502": 0.3, "http_500": 0.2}
    first = _first_attempt_statuses(serve(seed=1, faults=faults), 40)
    again = _first_attempt_statuses(serve(seed=1, faults=faults), 40)
    other = _first_attempt_statuses(serve(seed=2, faults=faults), 40)
    config = SimulatorConfig(seed=1, faults=faults)
    predicted = [
        {None: 200, "http_502": 502, "http_500": 500}[
            fault_for(config, call_key("support-reply", "baseline", TICKET, {"row_id": str(n)}), 1)
        ]
        for n in range(40)
    ]
    assert first == again == predicted
    assert other != first


def test_faulted_key_succeeds_on_its_second_attempt(serve: Serve) -> None:
    """With max_faults_per_key=1 the retry of a faulted key succeeds, and stats show it."""
    sim = serve(faults={"http_502": 1.0})
    assert [post(sim, body()).status_code for _ in range(2)] == [502, 200]
    key = CallKey("support-reply", "baseline", "17", "0")
    assert sim.stats.requests_per_key == {key: 2}
    assert sim.stats.successes_per_key == {key: 1}


def test_each_repeat_is_its_own_call_key(serve: Serve) -> None:
    """A different metadata.repeat is a different call key, with its own attempt count."""
    sim = serve(faults={"http_502": 1.0})
    assert post(sim, body(metadata={"row_id": "1", "repeat": 0})).status_code == 502
    assert post(sim, body(metadata={"row_id": "1", "repeat": 1})).status_code == 502


# --- plan limits -----------------------------------------------------------------------------


def test_daily_limit_answers_the_documented_cap(serve: Serve) -> None:
    """After daily_limit served requests, the protocol page's daily-cap 429 comes back."""
    sim = serve(daily_limit=2)
    assert [post(sim, body()).status_code for _ in range(2)] == [200, 200]
    response = post(sim, body())
    assert response.status_code == 429
    assert response.json() == {
        "error": "Daily API rate limit reached",
        "code": "api_rate_limit_exceeded",
        "message": "You have reached your daily limit of 2 API calls. Resets at midnight UTC.",
        "limit": 2,
        "current": 2,
    }


def test_credit_limit_answers_402(serve: Serve) -> None:
    """After credit_limit served requests, the answer is 402 insufficient credits."""
    sim = serve(credit_limit=1)
    assert post(sim, body()).status_code == 200
    response = post(sim, body())
    assert response.status_code == 402
    assert response.json()["code"] == "insufficient_hosted_llm_credits"


# --- stats and lifecycle ---------------------------------------------------------------------


def test_stats_count_requests_in_flight_at_once(serve: Serve) -> None:
    """Six streams held open together are six requests in flight."""
    sim = serve(latency_ms=10_000)
    open_streams = []  # a line iterator closed early would close its connection
    url = sim.base_url + "/prompt/invoke"
    with ExitStack() as stack:
        for n in range(6):
            payload = body(streaming=True, metadata={"row_id": str(n)})
            response = stack.enter_context(_CLIENT.stream("POST", url, json=payload, headers=AUTH))
            open_streams.append(response.iter_lines())
            next(open_streams[-1])  # the first reasoning piece: the handler is running
        assert sim.stats.in_flight == 6
    assert sim.stats.max_in_flight == 6


def test_stats_record_metadata_and_auth_presence_but_not_the_key(serve: Serve) -> None:
    """Received metadata and whether a key was sent are recorded; the key itself is not."""
    sim = serve()
    post(sim, body())
    post(sim, body(), headers={})
    stats = sim.stats
    assert [r.has_authorization for r in stats.received] == [True, False]
    assert stats.received[0].metadata == body()["metadata"]
    assert "fhk_test" not in json.dumps(stats.to_json()) + repr(stats)


def test_stats_endpoint_serves_json_and_reset_clears_it(serve: Serve) -> None:
    """GET /_sim/stats reports the counters; POST /_sim/reset starts them over."""
    sim = serve(faults={"http_502": 1.0})
    root = sim.base_url.removesuffix("/v1")
    post(sim, body())
    stats = _CLIENT.get(root + "/_sim/stats").json()
    assert (stats["requests"], stats["faults"]) == (1, {"http_502": 1})
    assert stats["keys"][0]["row"] == "17"
    assert _CLIENT.post(root + "/_sim/reset").status_code == 200
    assert _CLIENT.get(root + "/_sim/stats").json()["requests"] == 0
    assert post(sim, body()).status_code == 502  # attempt counting starts over too


def test_server_stops_cleanly(serve: Serve) -> None:
    """Leaving the with-block joins the server thread and closes the port."""
    threads = threading.active_count()
    with SimulatorServer() as sim:
        url = sim.base_url
        assert post(sim, body()).status_code == 200
    assert threading.active_count() == threads
    with pytest.raises(httpx.ConnectError):
        _CLIENT.post(url + "/prompt/invoke", json=body(), headers=AUTH)


def test_a_port_in_use_fails_at_start(serve: Serve) -> None:
    """Starting on a taken port raises the bind error in the caller's thread."""
    taken = serve().port
    with pytest.raises(OSError):
        SimulatorServer(port=taken).start()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])
def test_serve_forever_refuses_non_loopback_hosts(host: str) -> None:
    """The simulator only ever listens on a loopback address."""
    with pytest.raises(ValueError, match="loopback"):
        serve_forever(SimulatorConfig(), host=host, port=0)


@pytest.mark.slow
def test_serve_forever_serves_until_sigterm() -> None:
    """In a subprocess, serve_forever announces its URL, answers, and exits 0 on SIGTERM."""
    code = (
        "from runner.simulator import SimulatorConfig, serve_forever\n"
        "serve_forever(SimulatorConfig(), port=0, ready=lambda url: print(url, flush=True))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        response = _CLIENT.post(url + "/prompt/invoke", json=body(), headers=AUTH)
        assert response.status_code == 200
        process.terminate()
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()
        if process.stdout:
            process.stdout.close()
