"""The client against scripted responses (httpx.MockTransport): JSON, SSE and every failure."""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio
import httpx
import pytest

from runner.client import InvokeClient, error_from_body, parse_usage
from runner.errors import AttemptError
from runner.records import Answer

KEY = "fhk_test_canary_0123456789"
BODY = json.dumps({"deployment": "d", "variant": "v", "inputs": {}, "streaming": False}).encode()

NESTED_USAGE = {
    "duration": 4.79,
    "prompt_tokens": {"total_tokens": 24, "cached_tokens": 0},
    "completion_tokens": {"total_tokens": 170, "reasoning_tokens": 64},
    "total_tokens": 194,
}


def invoke(
    handler: Callable[[httpx.Request], httpx.Response], *, stream: bool = False, timeout: float = 5
) -> Answer:
    async def main() -> Answer:
        transport = httpx.MockTransport(handler)
        async with InvokeClient(
            "https://api.example.test/v1", KEY, timeout=timeout, transport=transport
        ) as client:
            return await client.invoke(BODY, stream=stream)

    return anyio.run(main)


def failure(handler: Callable[[httpx.Request], httpx.Response], **kw: object) -> AttemptError:
    with pytest.raises(AttemptError) as info:
        invoke(handler, **kw)  # type: ignore[arg-type]
    return info.value


def sse(*events: object, done: bool = True, extra: str = "") -> httpx.Response:
    lines = [extra] if extra else []
    for event in events:
        lines.append(event if isinstance(event, str) else f"data: {json.dumps(event)}\n\n")
    if done:
        lines.append("data: [DONE]\n\n")
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content="".join(lines).encode()
    )


def test_json_success_and_request_shape() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={"request_id": "req_" + "a" * 32, "model": "gpt-5-nano", "response": "Hi",
                  "usage": NESTED_USAGE},
        )  # fmt: skip

    answer = invoke(handler)
    assert answer.output == "Hi"
    assert answer.model == "gpt-5-nano"
    assert answer.request_id == "req_" + "a" * 32
    assert (answer.prompt_tokens, answer.completion_tokens, answer.total_tokens) == (24, 170, 194)
    assert answer.latency_ms > 0
    request = seen[0]
    assert request.method == "POST"
    assert request.url.path == "/v1/prompt/invoke"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.content == BODY


def test_both_usage_shapes() -> None:
    assert parse_usage(NESTED_USAGE) == (24, 170, 194)
    assert parse_usage({"prompt_tokens": 24, "completion_tokens": 170, "total_tokens": 194}) == (
        24, 170, 194,
    )  # fmt: skip
    assert parse_usage({"prompt_tokens": 3, "completion_tokens": 4}) == (3, 4, 7)
    assert parse_usage(None) == (None, None, None)


def test_missing_usage_is_not_an_error() -> None:
    answer = invoke(lambda r: httpx.Response(200, json={"response": "x"}))
    assert answer.output == "x"
    assert answer.total_tokens is None


def test_sse_with_reasoning_usage_comments_and_a_bad_line() -> None:
    response = sse(
        ": keep-alive comment\n\n",
        {"request_id": "req_1", "type": "reasoning", "model": "m", "response": "think "},
        {"request_id": "req_1", "type": "reasoning", "model": "m", "response": "hard"},
        "data: {not json\n\n",
        "event: whatever\nid: 7\n\n",
        {"request_id": "req_1", "type": "response", "model": "m", "response": "Hel"},
        {"request_id": "req_1", "type": "response", "model": "m", "response": "lo", "x": 1},
        {"request_id": "req_1", "type": "usage", "usage": NESTED_USAGE, "stop_reason": "completed"},
    )
    answer = invoke(lambda r: response, stream=True)
    assert answer.output == "Hello"
    assert answer.reasoning == "think hard"
    assert answer.request_id == "req_1"
    assert answer.model == "m"
    assert answer.total_tokens == 194
    assert answer.ttft_ms is not None and answer.ttft_ms <= answer.latency_ms


def test_sse_flat_usage_shape() -> None:
    response = sse(
        {"type": "response", "response": "ok"},
        {"type": "usage", "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}},
    )
    assert invoke(lambda r: response, stream=True).total_tokens == 3


def test_sse_usage_without_done_is_a_complete_answer() -> None:
    response = sse({"type": "response", "response": "ok"}, {"type": "usage", "usage": {}},
                   done=False)  # fmt: skip
    assert invoke(lambda r: response, stream=True).output == "ok"


def test_sse_error_event_is_a_transient_failure() -> None:
    response = sse(
        {"type": "response", "response": "par"},
        {"type": "error", "error": "provider failed", "error_code": "provider_error"},
        done=False,
    )
    error = failure(lambda r: response, stream=True)
    assert error.error_type == "stream_error"
    assert error.message == "provider failed"
    assert error.code == "provider_error"


def test_sse_truncated_stream_is_a_failed_attempt() -> None:
    response = sse({"type": "response", "response": "half an ans"}, done=False)
    error = failure(lambda r: response, stream=True)
    assert error.error_type == "stream_cut"


def test_json_error_body_with_code_and_message() -> None:
    body = {"error": "Daily API rate limit reached", "code": "api_rate_limit_exceeded",
            "message": "You have reached your daily limit of 50 API calls."}  # fmt: skip
    error = failure(lambda r: httpx.Response(429, json=body))
    assert error.error_type == "http_429"
    assert error.http_status == 429
    assert error.code == "api_rate_limit_exceeded"
    assert error.message.startswith("You have reached")


def test_error_code_field_wins_over_code() -> None:
    assert error_from_body(422, json.dumps({"error_code": "a", "code": "b", "error": "m"})) == (
        "a", "m",
    )  # fmt: skip


def test_html_error_body_from_a_proxy() -> None:
    html = "<html><body><h1>503 Service Unavailable</h1></body></html>"
    error = failure(lambda r: httpx.Response(503, text=html))
    assert error.http_status == 503
    assert error.code is None
    assert "503 Service Unavailable" in error.message


def test_empty_error_body() -> None:
    error = failure(lambda r: httpx.Response(502))
    assert error.message == "HTTP 502 with an empty body"


def test_retry_after_header_is_read() -> None:
    error = failure(lambda r: httpx.Response(429, headers={"Retry-After": "3"},
                                            json={"code": "too_many_requests"}))  # fmt: skip
    assert error.retry_after == 3.0


def test_redirect_is_not_followed() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(307, headers={"location": "https://elsewhere.test/steal"})

    error = failure(handler)
    assert error.http_status == 307
    assert len(calls) == 1
    assert "not followed" in error.message


def test_200_without_json_is_invalid_response() -> None:
    error = failure(lambda r: httpx.Response(200, text="<html>"))
    assert error.error_type == "invalid_response"


@pytest.mark.parametrize(
    ("exc", "error_type"),
    [
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectTimeout("slow"), "timeout"),
        (httpx.ConnectError("refused"), "connect_error"),
        (httpx.ReadError("reset by peer"), "network_error"),
        (httpx.RemoteProtocolError("peer closed"), "network_error"),
    ],
)
def test_transport_errors_become_attempt_errors(exc: Exception, error_type: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    assert failure(handler).error_type == error_type


def test_overall_attempt_timeout() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(5)
        return httpx.Response(200, json={"response": "late"})

    error = failure(handler, timeout=0.05)  # type: ignore[arg-type]
    assert error.error_type == "timeout"


def test_key_echoed_by_a_server_is_redacted() -> None:
    error = failure(lambda r: httpx.Response(400, json={"error": f"bad key {KEY} here"}))
    assert KEY not in error.message
    assert "[REDACTED]" in error.message
