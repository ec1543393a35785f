"""The transports over real sockets and scripted answers: keep-alive, framing, limits, the
deadline, and every failure as the runner's attempt error that means the same thing."""

from __future__ import annotations

import asyncio
import gzip
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

from runner.errors import AttemptError
from runner.http._client import InvokeClient
from runner.http._transport import AiohttpTransport, HttpxTransport, Transport
from runner.records import Answer

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok": 1}\r\n'


class Server:
    """A scripted server on 127.0.0.1: ``script`` serves each connection."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.open = 0
        self.max_open = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            writer.close()


@asynccontextmanager
async def serving(script: Script) -> AsyncIterator[tuple[Server, str]]:
    server = Server(script)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server, f"http://127.0.0.1:{port}/v1/prompt/invoke"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


def answering(*responses: bytes, then_close: bool = False) -> Script:
    """Answer each request on a connection with the next response."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for response in responses:
            await read_request(reader)
            writer.write(response)
            await writer.drain()
        if not then_close:
            await reader.read()  # keep the connection until the client closes it

    return script


def keep_answering(response: bytes = OK, delay: float = 0.0) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            if delay:
                await asyncio.sleep(delay)
            writer.write(response)
            await writer.drain()

    return script


async def post(
    transport: Transport, url: str, timeout: float = 5.0, *, stream: bool = False
) -> httpx.Response:
    """POST and read the whole answer (a whole 200 body handed over as bytes included)."""
    reply = await transport.post(
        url, {}, b'{"q": 1}', stream=stream, timeout=timeout, max_body=1 << 30
    )
    if isinstance(reply, bytes):
        return httpx.Response(200, content=reply)
    try:
        await reply.aread()
    finally:
        await reply.aclose()
    return reply


async def open_reply(transport: Transport, url: str, *, max_body: int = 1 << 30) -> httpx.Response:
    """POST and hand over the answer unread."""
    reply = await transport.post(url, {}, b"{}", stream=False, timeout=5.0, max_body=max_body)
    assert isinstance(reply, httpx.Response)
    return reply


def run(main: Callable[[], Awaitable[None]]) -> None:
    anyio.run(main)


def test_requests_reuse_one_keep_alive_connection() -> None:
    async def main() -> None:
        async with serving(keep_answering()) as (server, url):
            transport = AiohttpTransport(limit=4)
            for _ in range(5):
                response = await post(transport, url)
                assert (response.status_code, response.json()) == (200, {"ok": 1})
            await transport.aclose()
        assert server.connections == 1

    run(main)


def test_the_request_on_the_wire_carries_host_length_and_body() -> None:
    seen: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(OK)
        await writer.drain()

    async def main() -> None:
        async with serving(script) as (_, url):
            transport = AiohttpTransport()
            await post(transport, url)
            await transport.aclose()

    run(main)
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/prompt/invoke HTTP/1.1"
    assert any(line.lower().startswith(b"host: 127.0.0.1:") for line in lines)
    assert b"Content-Length: 8" in lines
    assert body == b'{"q": 1}'


def test_no_more_connections_than_the_limit_and_every_request_answered() -> None:
    async def main() -> None:
        async with serving(keep_answering(delay=0.01)) as (server, url):
            transport = AiohttpTransport(limit=3)
            statuses: list[int] = []

            async def one() -> None:
                statuses.append((await post(transport, url)).status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(one)
            await transport.aclose()
        assert statuses == [200] * 20
        assert server.max_open == 3

    run(main)


def test_a_chunked_body_is_decoded_across_packet_boundaries() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        wire = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
        )
        for i in range(0, len(wire), 3):  # three bytes a packet
            writer.write(wire[i : i + 3])
            await writer.drain()
            await asyncio.sleep(0)
        await reader.read()

    async def main() -> None:
        async with serving(script) as (_, url):
            transport = AiohttpTransport()
            assert (await post(transport, url)).content == b"hello, world"
            await transport.aclose()

    run(main)


def test_a_streamed_body_is_handed_over_as_it_arrives() -> None:
    got_first = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst\n\r\n")
        await writer.drain()
        await got_first.wait()  # the rest only once the client has read the first piece
        writer.write(b"5\r\nlast\n\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async def main() -> None:
        async with serving(script) as (_, url):
            transport = AiohttpTransport()
            response = await open_reply(transport, url)
            pieces = []
            async for chunk in response.aiter_raw():
                pieces.append(chunk)
                got_first.set()
            await response.aclose()
            assert pieces == [b"first\n", b"last\n"]
            await transport.aclose()

    run(main)


def test_a_large_body_is_read_whole_through_flow_control() -> None:
    big = b"x" * (3 * 1024 * 1024)

    async def main() -> None:
        response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big
        async with serving(answering(response)) as (_, url):
            transport = AiohttpTransport()
            reply = await open_reply(transport, url)
            received = 0
            async for chunk in reply.aiter_raw():
                received += len(chunk)
                await anyio.sleep(0)  # a slow reader
            await reply.aclose()
            assert received == len(big)
            await transport.aclose()

    run(main)


def test_a_body_declared_over_the_callers_limit_is_handed_over_unread() -> None:
    """A small body declared over max_body is handed over as a stream, not read at once."""
    body = b"x" * 5000
    response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    async def main() -> None:
        async with serving(keep_answering(response)) as (_, url):
            transport = AiohttpTransport()
            reply = await open_reply(transport, url, max_body=1000)
            with pytest.raises(httpx.ResponseNotRead):
                reply.content  # noqa: B018
            await reply.aclose()
            assert (await post(transport, url)).content == body  # no limit: read at once
            await transport.aclose()

    run(main)


def test_a_body_without_length_is_read_until_close_and_not_reused() -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"

    async def main() -> None:
        async with serving(answering(response, then_close=True)) as (server, url):
            transport = AiohttpTransport()
            assert (await post(transport, url)).content == b"all of it"
            assert (await post(transport, url)).content == b"all of it"
            await transport.aclose()
        assert server.connections == 2

    run(main)


def test_connection_close_is_honoured() -> None:
    response = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"

    async def main() -> None:
        async with serving(answering(response)) as (server, url):
            transport = AiohttpTransport()
            await post(transport, url)
            await post(transport, url)
            await transport.aclose()
        assert server.connections == 2

    run(main)


def test_an_idle_connection_the_server_closed_is_not_handed_out() -> None:
    async def main() -> None:
        async with serving(answering(OK, then_close=True)) as (server, url):
            transport = AiohttpTransport()
            await post(transport, url)
            await anyio.sleep(0.05)  # the server's FIN arrives while the connection is idle
            assert (await post(transport, url)).status_code == 200
            await transport.aclose()
        assert server.connections == 2

    run(main)


def test_an_interim_response_is_skipped() -> None:
    response = b"HTTP/1.1 100 Continue\r\n\r\n" + OK

    async def main() -> None:
        async with serving(answering(response)) as (_, url):
            transport = AiohttpTransport()
            assert (await post(transport, url)).status_code == 200
            await transport.aclose()

    run(main)


def test_headers_and_status_are_handed_to_httpx() -> None:
    response = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 2\r\n\r\n{}"

    async def main() -> None:
        async with serving(answering(response)) as (_, url):
            transport = AiohttpTransport()
            reply = await post(transport, url)
            assert reply.status_code == 429
            assert reply.headers["retry-after"] == "3"
            await transport.aclose()

    run(main)


# --- failures --------------------------------------------------------------------------------


async def closing_without_answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await read_request(reader)


async def resetting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def cutting_the_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
    await writer.drain()


async def speaking_nonsense(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    await writer.drain()
    await reader.read()


async def stalling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.sleep(10)


@pytest.mark.parametrize(
    ("script", "stream", "error_type", "message"),
    [
        (closing_without_answer, False, "network_error", "connection broken"),
        (resetting, False, "network_error", "ReadError"),
        (cutting_the_body, False, "network_error", "connection broken"),
        (cutting_the_body, True, "stream_cut", "connection broken"),
        (speaking_nonsense, False, "network_error", "connection broken"),
        (stalling, False, "timeout", "no complete answer within 0.2 s"),
    ],
)
def test_failures_become_the_attempt_error_that_means_the_same(
    script: Script, stream: bool, error_type: str, message: str
) -> None:
    async def main() -> None:
        async with serving(script) as (_, url):
            transport = AiohttpTransport()
            with pytest.raises(AttemptError) as caught:
                await post(transport, url, timeout=0.2, stream=stream)
            await transport.aclose()
        assert caught.value.error_type == error_type
        assert caught.value.message.startswith(message), caught.value.message

    run(main)


def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused

        async def main() -> None:
            transport = AiohttpTransport()
            with pytest.raises(AttemptError, match="cannot connect") as caught:
                await post(transport, f"http://127.0.0.1:{port}/v1/prompt/invoke")
            assert caught.value.error_type == "connect_error"
            await transport.aclose()

        run(main)


def test_a_cancelled_request_closes_its_connection() -> None:
    async def main() -> None:
        async with serving(keep_answering(delay=0.2)) as (server, url):
            transport = AiohttpTransport()
            with anyio.move_on_after(0.05):
                await post(transport, url)
            assert (await post(transport, url)).status_code == 200  # on a new connection
            await transport.aclose()
        assert server.connections == 2

    run(main)


def test_only_http_and_https_urls() -> None:
    async def main() -> None:
        transport = AiohttpTransport()
        with pytest.raises(AttemptError, match="UnsupportedProtocol") as caught:
            await post(transport, "ftp://127.0.0.1/x")
        assert caught.value.error_type == "network_error"
        await transport.aclose()

    run(main)


# --- the deadline (issue 14: kept by aiohttp, not by a cancel scope per call) --------------


def trickling(pieces: int, gap: float) -> Script:
    """A chunked answer of ``pieces`` chunks, ``gap`` seconds apart: each read is quick, the
    whole answer slow."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(pieces):
            writer.write(b"4\r\nabc\n\r\n")
            await writer.drain()
            await asyncio.sleep(gap)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()

    return script


def test_the_deadline_ends_a_body_whose_every_read_is_quick() -> None:
    async def main() -> None:
        async with serving(trickling(pieces=50, gap=0.02)) as (_, url):
            transport = AiohttpTransport()
            with pytest.raises(AttemptError, match=r"no complete answer within 0\.2 s"):
                await post(transport, url, timeout=0.2)
            await transport.aclose()

    run(main)


def test_within_the_deadline_a_trickling_body_is_read_whole() -> None:
    async def main() -> None:
        async with serving(trickling(pieces=10, gap=0.02)) as (_, url):
            transport = AiohttpTransport()
            assert (await post(transport, url, timeout=5.0)).content == b"abc\n" * 10
            await transport.aclose()

    run(main)


# --- any httpx transport (MockTransport in tests) behind the same seam ----------------------


def test_an_httpx_transport_keeps_the_deadline_of_the_whole_exchange() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(10)
        return httpx.Response(200)

    async def main() -> None:
        transport = HttpxTransport(httpx.MockTransport(slow))
        with anyio.fail_after(5), pytest.raises(AttemptError) as caught:
            await post(transport, "http://127.0.0.1:9/v1/prompt/invoke", timeout=0.05)
        assert (caught.value.error_type, caught.value.message) == (
            "timeout",
            "no complete answer within 0.05 s",
        )

    run(main)


@pytest.mark.parametrize(
    ("failure", "stream", "error_type"),
    [
        (httpx.ConnectError("refused"), False, "connect_error"),
        (httpx.ConnectTimeout("slow"), False, "timeout"),
        (httpx.RemoteProtocolError("cut"), False, "network_error"),
        (httpx.RemoteProtocolError("cut"), True, "stream_cut"),
        (httpx.ReadError("reset"), False, "network_error"),
    ],
)
def test_an_httpx_failure_becomes_the_attempt_error_that_means_the_same(
    failure: httpx.HTTPError, stream: bool, error_type: str
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    async def main() -> None:
        transport = HttpxTransport(httpx.MockTransport(fail))
        with pytest.raises(AttemptError) as caught:
            await post(transport, "http://127.0.0.1:9/v1/prompt/invoke", stream=stream)
        assert caught.value.error_type == error_type
        assert caught.value.__cause__ is failure

    run(main)


# --- the runner's own call: a JSON answer straight from aiohttp to the parser ---------------


def invoking(url: str, body: bytes = b'{"q": 1}', **kwargs: Any) -> Any:
    """``InvokeClient.invoke`` over its own aiohttp transport: the Answer, or the AttemptError."""
    base = url.removesuffix("/prompt/invoke")
    outcome: list[Any] = []

    async def main() -> None:
        async with InvokeClient(base, "fhk_wire_key", timeout=5.0, **kwargs) as client:
            try:
                outcome.append(await client.invoke(body, stream=False))
            except AttemptError as exc:
                outcome.append(exc)

    run(main)
    return outcome[0]


def http(status: str, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_the_runners_call_on_the_wire_carries_every_header_once() -> None:
    seen: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(http("200 OK", b'{"response": "hi"}', "Content-Type: application/json"))
        await writer.drain()

    async def main() -> None:
        async with serving(script) as (_, url):
            result.append(await anyio.to_thread.run_sync(invoking, url, b'{"q": "\xc3\xa9"}'))

    result: list[Any] = []
    run(main)
    assert isinstance(result[0], Answer) and result[0].output == "hi"
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = [line.lower() for line in head.split(b"\r\n")[1:]]
    names = sorted(line.split(b":", 1)[0] for line in lines)
    assert names == sorted(
        [b"host", b"authorization", b"content-type", b"accept", b"user-agent",
         b"content-length", b"accept-encoding"]
    )  # fmt: skip
    assert b"authorization: bearer fhk_wire_key" in lines
    assert b"user-agent: fetchhive-runner" in lines
    assert b"content-length: %d" % len(body) in lines and body == b'{"q": "\xc3\xa9"}'


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        # An encoded body goes the httpx way, which decodes it.
        (http("200 OK", gzip.compress(b'{"response": "zipped"}'), "Content-Encoding: gzip"),
         "zipped"),
        (http("200 OK", b'{"response": "plain", "model": "m"}'), "plain"),
        (http("200 OK", b"not json"), "invalid_response"),
        (http("200 OK", b'{"answer": 1}'), "invalid_response"),
        (http("429 Too Many Requests", b'{"error": "slow down"}', "Retry-After: 3"), "http_429"),
        (http("302 Found", b"", "Location: http://127.0.0.9/"), "http_302"),
        (http("200 OK", b'{"response": "' + b"x" * 100 + b'"}'), "response_too_large"),
    ],
)  # fmt: skip
def test_the_runners_call_turns_each_answer_into_an_answer_or_a_typed_error(
    response: bytes, expected: str
) -> None:
    async def main() -> None:
        async with serving(answering(response)) as (_, url):
            result.append(
                await anyio.to_thread.run_sync(lambda: invoking(url, max_response_bytes=64))
            )

    result: list[Any] = []
    run(main)
    got = result[0]
    if isinstance(got, Answer):
        assert got.output == expected
    else:
        assert got.error_type == expected, got
        if expected == "http_429":
            assert got.retry_after == 3.0
        assert "fhk_wire_key" not in str(got)
