"""An answer larger than max_response_bytes is refused without being held in memory, over real
sockets on 127.0.0.1 (the aiohttp transport under the client)."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest

from runner.errors import AttemptError
from runner.http._client import InvokeClient
from runner.records import Answer

KEY = "fhk_limit_test_key"
LIMIT = 1024 * 1024
HUGE = 50 * 1024 * 1024
PIECE = b"x" * 65536

Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]


async def content_length_body(writer: asyncio.StreamWriter) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUGE}\r\n\r\n"
    writer.write(head.encode() + b'{"response": "')
    for _ in range(HUGE // len(PIECE)):
        writer.write(PIECE)
        await writer.drain()


async def chunked_body(writer: asyncio.StreamWriter, content_type: str, piece: bytes) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    writer.write(head.encode())
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    for _ in range(HUGE // len(piece)):
        writer.write(frame)
        await writer.drain()
    writer.write(b"0\r\n\r\n")


async def chunked_json(writer: asyncio.StreamWriter) -> None:
    await chunked_body(writer, "application/json", PIECE)


async def event_stream(writer: asyncio.StreamWriter) -> None:
    event = {"type": "response", "response": "y" * 60000}
    await chunked_body(writer, "text/event-stream", f"data: {json.dumps(event)}\n\n".encode())


class Server:
    """Answers every request with ``write``; counts the connections it was given."""

    def __init__(self, write: Writer) -> None:
        self.write = write
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = json.loads(await reader.readexactly(length))
                await (self.write if request["variant"] == "huge" else small_answer)(writer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def small_answer(writer: asyncio.StreamWriter) -> None:
    body = b'{"response": "fine"}'
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    writer.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


@asynccontextmanager
async def serving(write: Writer) -> AsyncIterator[tuple[Server, str]]:
    server = Server(write)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    async with listener:
        yield server, f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/v1"


def request_body(variant: str) -> bytes:
    return json.dumps({"deployment": "d", "variant": variant, "streaming": False}).encode()


@pytest.mark.parametrize(
    ("write", "stream", "seen"),
    [
        pytest.param(content_length_body, False, "Content-Length: 52428800", id="content-length"),
        pytest.param(chunked_json, False, "over 1048576 bytes arrived", id="chunked"),
        pytest.param(event_stream, True, "the event stream passed 1048576 bytes", id="sse"),
    ],
)
def test_a_50_mb_answer_is_refused_without_holding_it(
    write: Writer, stream: bool, seen: str
) -> None:
    """The error names the limit; memory never held more than a few times the limit."""

    async def main() -> tuple[AttemptError, int, Answer, int]:
        async with serving(write) as (server, base_url):
            async with InvokeClient(base_url, KEY, max_response_bytes=LIMIT) as client:
                tracemalloc.start()
                try:
                    with pytest.raises(AttemptError) as info:
                        await client.invoke(request_body("huge"), stream=stream)
                    _, peak = tracemalloc.get_traced_memory()
                finally:
                    tracemalloc.stop()
                # The refused connection is closed, not drained into the pool: the next
                # request gets a fresh one and its answer.
                answer = await client.invoke(request_body("small"), stream=False)
            return info.value, peak, answer, server.connections

    error, peak, answer, connections = anyio.run(main)
    assert error.error_type == "response_too_large"
    assert error.message == (
        f"answer larger than {LIMIT} bytes ({seen}); raise --max-response-bytes to accept it"
    )
    assert peak < 6 * LIMIT  # a buffered body would be 50 times the limit
    assert answer.output == "fine"
    assert connections == 2
