"""The client against scripted responses (httpx.MockTransport): JSON, SSE and every failure."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import httpx
import pytest

from runner.errors import AttemptError
from runner.http._client import InvokeClient, error_from_body, parse_usage
from runner.http._retry import Decision, decide
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


# --- errors are built without the key ----------------------------------------------------


def assert_key_free(error: AttemptError) -> None:
    """The key is in no text of the error, nor of anything chained to it."""
    assert KEY not in str(error)
    assert KEY not in repr(error)
    assert all(KEY not in str(arg) for arg in error.args)
    assert KEY not in error.message
    assert all(KEY not in str(value) for value in vars(error).values())
    linked: BaseException | None = error
    while linked is not None:
        assert KEY not in str(linked)
        assert KEY not in repr(linked)
        linked = linked.__cause__ or linked.__context__


def echo_auth(request: httpx.Request) -> str:
    return request.headers["authorization"]


@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(
            lambda r: httpx.Response(401, json={"error": f"bad header {echo_auth(r)}"}),
            id="json error message",
        ),
        pytest.param(
            lambda r: httpx.Response(400, json={"error": "no", "code": echo_auth(r)}),
            id="json error code",
        ),
        pytest.param(
            lambda r: httpx.Response(502, text=f"<html>proxy saw {echo_auth(r)}</html>"),
            id="html error body",
        ),
        pytest.param(
            lambda r: httpx.Response(302, headers={"location": f"https://x.test/?k={KEY}"}),
            id="redirect location",
        ),
    ],
)
def test_an_echoed_key_is_in_no_part_of_a_status_error(
    handler: Callable[[httpx.Request], httpx.Response],
) -> None:
    error = failure(handler)
    assert_key_free(error)
    assert "[REDACTED]" in error.message or "[REDACTED]" in str(error.code)


def test_an_echoed_key_is_in_no_part_of_a_stream_error_event() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        event = {"type": "error", "error": f"rejected {echo_auth(request)}", "request_id": KEY}
        return sse({"type": "response", "response": "par"}, event, done=False)

    error = failure(handler, stream=True)
    assert error.error_type == "stream_error"
    assert_key_free(error)
    assert error.message == "rejected Bearer [REDACTED]"


@pytest.mark.parametrize(
    ("exc_type", "error_type"),
    [
        (httpx.ConnectError, "connect_error"),
        (httpx.ReadError, "network_error"),
        (httpx.RemoteProtocolError, "network_error"),
        (httpx.ReadTimeout, "timeout"),
    ],
)
def test_an_exception_text_holding_the_key_is_not_chained(
    exc_type: type[httpx.TransportError], error_type: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type(f"failed sending {echo_auth(request)}")

    error = failure(handler)
    assert error.error_type == error_type
    assert_key_free(error)


def test_a_key_free_exception_stays_chained_as_the_cause() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    error = failure(handler)
    assert isinstance(error.__cause__, httpx.ConnectError)
    assert error.message == "cannot connect: connection refused"


def test_attempt_error_message_is_read_only_and_agrees_with_args() -> None:
    error = AttemptError("http_400", f"saw {KEY}", code=KEY)
    clean = error.redacted(KEY)
    assert clean.message == clean.args[0] == str(clean) == "saw [REDACTED]"
    assert clean.code == "[REDACTED]"
    with pytest.raises(AttributeError):
        clean.message = "changed"  # type: ignore[misc]
    assert error.redacted("absent") is error


# --- a bounded answer ----------------------------------------------------------------------

LIMIT = 64 * 1024


def invoke_bounded(
    handler: Callable[[httpx.Request], httpx.Response], *, stream: bool = False
) -> Answer:
    async def main() -> Answer:
        async with InvokeClient(
            "https://api.example.test/v1",
            KEY,
            max_response_bytes=LIMIT,
            transport=httpx.MockTransport(handler),
        ) as client:
            return await client.invoke(BODY, stream=stream)

    return anyio.run(main)


class Pulled:
    """An endless body in 4 KiB chunks that counts how much of it was asked for."""

    def __init__(self, piece: bytes = b" " * 4096) -> None:
        self.piece = piece
        self.bytes = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(50 * 256):  # 50 MB
            self.bytes += len(self.piece)
            yield self.piece


def test_an_answer_at_the_limit_is_read() -> None:
    text = "x" * (LIMIT - len('{"response": ""}'))
    answer = invoke_bounded(lambda r: httpx.Response(200, text=json.dumps({"response": text})))
    assert answer.output == text


def test_an_answer_over_the_limit_is_response_too_large_and_not_retried() -> None:
    big = json.dumps({"response": "x" * LIMIT})
    with pytest.raises(AttemptError) as info:
        invoke_bounded(lambda r: httpx.Response(200, text=big))
    error = info.value
    assert error.error_type == "response_too_large"
    assert f"answer larger than {LIMIT} bytes" in error.message
    assert "--max-response-bytes" in error.message
    assert decide(error) is Decision.FAIL


def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    body = Pulled()
    headers = {"content-length": str(50 * 1024 * 1024)}
    with pytest.raises(AttemptError) as info:
        invoke_bounded(lambda r: httpx.Response(200, headers=headers, content=body))
    assert info.value.error_type == "response_too_large"
    assert "Content-Length: 52428800" in info.value.message
    assert body.bytes == 0


@pytest.mark.parametrize("stream", [False, True])
def test_a_chunked_answer_is_read_no_further_than_the_limit(stream: bool) -> None:
    body = Pulled(b"data: " + b"x" * 4088 + b"\n\n" if stream else b" " * 4096)
    with pytest.raises(AttemptError) as info:
        invoke_bounded(lambda r: httpx.Response(200, content=body), stream=stream)
    assert info.value.error_type == "response_too_large"
    assert LIMIT < body.bytes <= LIMIT + 4096


def test_a_huge_error_body_is_read_in_part_and_keeps_its_status() -> None:
    body = Pulled()
    with pytest.raises(AttemptError) as info:
        invoke_bounded(lambda r: httpx.Response(502, content=body))
    assert info.value.error_type == "http_502"
    assert body.bytes <= LIMIT + 4096


# --- over real sockets: the deadline kept by the aiohttp transport; answers through orjson --


def served(script: Callable[[anyio.abc.SocketStream], Awaitable[None]]) -> Callable[..., Answer]:
    """``call(stream=…, timeout=…)``: one invoke through the default (aiohttp) transport against
    a local server running ``script`` on each connection."""

    def call(*, stream: bool = False, timeout: float = 5.0) -> Answer:
        async def main() -> Answer | AttemptError:
            async def closing(conn: anyio.abc.SocketStream) -> None:
                async with conn:  # closed even when the script is cancelled mid-answer
                    await script(conn)

            listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            url = f"http://127.0.0.1:{port}/v1"
            async with listener, anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, closing)
                try:
                    async with InvokeClient(url, KEY, timeout=timeout) as client:
                        result: Answer | AttemptError = await client.invoke(BODY, stream=stream)
                except AttemptError as error:
                    result = error  # raised below, outside the task group
                finally:
                    tg.cancel_scope.cancel()
            return result

        result = anyio.run(main)
        if isinstance(result, AttemptError):
            raise result
        return result

    return call


async def read_head(conn: anyio.abc.SocketStream) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await conn.receive()


def test_the_default_transport_ends_a_slow_event_stream_at_the_timeout() -> None:
    """Every event arrives well within the timeout, the whole answer does not: the attempt is a
    timeout all the same (the deadline covers the whole exchange, not each read)."""

    async def script(conn: anyio.abc.SocketStream) -> None:
        await read_head(conn)
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
        while True:
            await conn.send(b'data: {"type": "response", "response": "."}\n\n')
            await anyio.sleep(0.02)

    with pytest.raises(AttemptError) as info:
        served(script)(stream=True, timeout=0.3)
    assert info.value.error_type == "timeout"
    assert info.value.message == "no complete answer within 0.3 s"


def test_the_default_transport_ends_a_silent_server_at_the_timeout() -> None:
    async def script(conn: anyio.abc.SocketStream) -> None:
        await read_head(conn)
        await anyio.sleep(30)

    with pytest.raises(AttemptError) as info:
        served(script)(timeout=0.2)
    assert (info.value.error_type, info.value.message) == (
        "timeout",
        "no complete answer within 0.2 s",
    )


def answer_bytes(body: bytes) -> Callable[[anyio.abc.SocketStream], Awaitable[None]]:
    async def script(conn: anyio.abc.SocketStream) -> None:
        await read_head(conn)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        await conn.send(head % len(body) + body)
        await anyio.sleep(30)

    return script


def test_a_json_answer_over_real_sockets_is_decoded_whole() -> None:
    body = json.dumps(
        {"response": 'héllo "q" 😀', "model": "m", "request_id": "req_1", "usage": NESTED_USAGE},
        ensure_ascii=False,
    ).encode()
    answer = served(answer_bytes(body))()
    assert (answer.output, answer.model, answer.request_id) == ('héllo "q" 😀', "m", "req_1")
    assert (answer.prompt_tokens, answer.completion_tokens, answer.total_tokens) == (24, 170, 194)


def test_an_answer_with_a_lone_surrogate_escape_is_still_an_answer() -> None:
    """JSON allows ``\\ud800`` alone; orjson refuses it, so the stdlib decodes that answer."""
    answer = invoke(lambda r: httpx.Response(200, content=b'{"response": "a\\ud800b"}'))
    assert answer.output == "a\ud800b"


def test_a_body_that_is_not_json_is_still_invalid_response() -> None:
    for content in (b'{"response": "x"', b"\xff\xfe", b"NaN-ish", b""):
        error = failure(lambda r, c=content: httpx.Response(200, content=c))  # type: ignore[misc]
        assert error.error_type == "invalid_response"
