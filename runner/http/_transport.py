"""The runner's transport seam: one POST on the wire, every failure an ``AttemptError``.

:class:`Transport` is what :class:`~runner.http._client.InvokeClient` sends through, in production
and in tests alike. :class:`AiohttpTransport` (the default) sends over aiohttp's connection
pool; :class:`HttpxTransport` sends through any httpx transport (``httpx.MockTransport`` with
scripted answers, httpx's own pool, a proxy). Each maps its library's failures once, here,
straight to the runner's attempt error kinds (``timeout``, ``connect_error``,
``network_error``, ``stream_cut``), with the original as ``__cause__``; nothing else from
aiohttp or httpx escapes a transport.

Measured on this machine against the simulator (BENCHMARKS.md), httpcore's pool spends 3–5 ms
of CPU per request and scans every connection on every request, while aiohttp's pool spends well
under 1 ms: the difference between ~110 and ~700 requests/s per core. A whole, small ``200``
body comes back as bytes, without httpx's request and response objects (a fifth of the CPU of
a call); any other answer is an ``httpx.Response`` to read (httpx stays the runner's response
type: headers, content decoding, streamed bytes).
"""

from __future__ import annotations

import abc
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Final

import aiohttp
import anyio
import httpx
import yarl

from runner.errors import AttemptError


@dataclass(frozen=True, slots=True)
class Post:
    """One POST of the runner, as a transport is handed it.

    ``stream``: an event stream is expected (a cut is then ``stream_cut``). ``timeout`` bounds
    the whole exchange, body included. A body declared over ``max_body`` bytes is handed over
    unread, for the caller to refuse.
    """

    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool
    timeout: float
    max_body: int


class Transport(abc.ABC):
    """Sends the runner's POST; raises :class:`AttemptError` (also while its body is read).

    An implementation writes :meth:`send`, which takes the POST as one :class:`Post`, and
    :meth:`aclose`.
    """

    async def post(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        *,
        stream: bool,
        timeout: float,
        max_body: int,
    ) -> bytes | httpx.Response:
        """POST ``body``: a whole ``200`` body as bytes, or the response to read (any status).

        The arguments are the fields of :class:`Post`.
        """
        return await self.send(Post(url, headers, body, stream, timeout, max_body))

    @abc.abstractmethod
    async def send(self, post: Post) -> bytes | httpx.Response:
        """Send ``post``, as :meth:`post` says."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...


def deadline_passed(timeout: float) -> AttemptError:
    return AttemptError("timeout", f"no complete answer within {timeout:g} s")


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What an error needs to be named: an event stream or not, and the deadline."""

    stream: bool
    started: float
    timeout: float

    def timed_out(self, kind: str) -> AttemptError:
        if time.perf_counter() - self.started >= self.timeout:
            return deadline_passed(self.timeout)
        return AttemptError("timeout", f"{kind}: the server did not answer in time")

    def broken(self, message: str) -> AttemptError:
        kind = "stream_cut" if self.stream else "network_error"
        return AttemptError(kind, f"connection broken: {message}")


@contextlib.contextmanager
def _mapped_errors(attempt: _Attempt) -> Iterator[None]:
    """aiohttp's failures as the runner's attempt errors."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise attempt.timed_out("ConnectTimeout") from exc
    except (aiohttp.ServerTimeoutError, TimeoutError) as exc:  # a read, or the total deadline
        raise attempt.timed_out("ReadTimeout") from exc
    except aiohttp.ClientConnectorError as exc:
        raise AttemptError("connect_error", f"cannot connect: {exc}") from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise attempt.broken(str(exc) or "server disconnected") from exc
    except aiohttp.ClientResponseError as exc:  # a malformed response
        raise attempt.broken(str(exc)) from exc
    except (aiohttp.ClientOSError, ConnectionError) as exc:
        raise AttemptError("network_error", f"ReadError: {exc or 'connection reset'}") from exc
    except (aiohttp.NonHttpUrlClientError, aiohttp.InvalidUrlClientError) as exc:
        raise AttemptError("network_error", f"UnsupportedProtocol: {exc}") from exc
    except aiohttp.ClientError as exc:
        raise AttemptError("network_error", f"TransportError: {exc}") from exc


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, attempt: _Attempt) -> None:
        self._response = response
        self._attempt = attempt

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped_errors(self._attempt):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # A body left unread (refused as too large, say) closes its connection rather than
        # draining the rest of it into the pool.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


#: A body of known length up to this size, not an event stream, is read in one call.
_READ_AT_ONCE: Final = 1 << 20

_ENCODING: Final = "Content-Encoding"


def _to_httpx(
    response: aiohttp.ClientResponse, content: bytes | None, attempt: _Attempt
) -> httpx.Response:
    """The httpx response for an aiohttp one: its body in ``content``, or still to stream."""
    reply = httpx.Response(
        status_code=response.status,
        headers=response.raw_headers,
        stream=(
            _ResponseStream(response, attempt) if content is None else httpx.ByteStream(content)
        ),
        extensions={"http_version": b"HTTP/1.1"},
    )
    if content is not None:
        reply.read()  # decoded here, synchronously: the caller's aread() then has nothing to do
    return reply


def _read_at_once(response: aiohttp.ClientResponse, max_body: int) -> bool:
    length = response.content_length
    return (
        length is not None
        and length <= _READ_AT_ONCE
        and length <= max_body
        and not response.content_type.startswith("text/event-stream")
    )


class AiohttpTransport(Transport):
    """The default :class:`Transport`: one ``aiohttp.ClientSession`` with ``limit`` connections.

    The session is created on first use, inside the running event loop (asyncio only).
    """

    def __init__(self, *, limit: int = 100) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        # The runner sends every request to one URL with one timeout: parse them once.
        self._urls: dict[str, yarl.URL] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit)
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # httpx decodes content-encoding: hand over raw bytes
                skip_auto_headers=("User-Agent",),
                cookie_jar=aiohttp.DummyCookieJar(),  # the runner keeps no cookies
            )
        return self._session

    def _url(self, url: str) -> yarl.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) > 64:
                self._urls.clear()
            parsed = self._urls[url] = yarl.URL(url, encoded=True)
        return parsed

    def _timeout(self, timeout: float) -> aiohttp.ClientTimeout:
        # aiohttp keeps the whole exchange's deadline with one timer per request, a tenth of
        # the CPU of an anyio cancel scope around the call (BENCHMARKS.md, issue 14).
        client_timeout = self._timeouts.get(timeout)
        if client_timeout is None:
            if len(self._timeouts) > 64:
                self._timeouts.clear()
            client_timeout = self._timeouts[timeout] = aiohttp.ClientTimeout(
                total=timeout, sock_connect=timeout, sock_read=timeout
            )
        return client_timeout

    async def send(self, post: Post) -> bytes | httpx.Response:
        """See :meth:`Transport.post`. A small whole body (a JSON answer or error) is read at
        once and the connection goes back to the pool before the caller looks at it."""
        attempt = _Attempt(post.stream, time.perf_counter(), post.timeout)
        session = self._get_session()
        with _mapped_errors(attempt):
            response = await session.request(
                "POST",
                self._url(post.url),
                headers=post.headers,
                data=post.body,
                allow_redirects=False,
                timeout=self._timeout(post.timeout),
            )
            if not _read_at_once(response, post.max_body):
                return _to_httpx(response, None, attempt)
            content = await response.read()
            response.release()
        if response.status == 200 and _ENCODING not in response.headers:
            return content
        return _to_httpx(response, content, attempt)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpxTransport(Transport):
    """A :class:`Transport` over any httpx transport: ``httpx.MockTransport`` and scripted
    answers in tests, httpx's own pool or a proxy in production. The deadline is a cancel
    scope around the request and around each read of its body."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def send(self, post: Post) -> bytes | httpx.Response:
        """See :meth:`Transport.post` (every answer comes back as an ``httpx.Response``)."""
        attempt = _Attempt(post.stream, time.perf_counter(), post.timeout)
        deadline = anyio.current_time() + post.timeout
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), post.timeout)
        request = httpx.Request(
            "POST", post.url, headers=post.headers, content=post.body,
            extensions={"timeout": timeouts},
        )  # fmt: skip
        with _httpx_errors(attempt), anyio.CancelScope(deadline=deadline):
            response = await self._transport.handle_async_request(request)
            try:
                response.content  # noqa: B018 (in memory already: MockTransport, a small body)
            except httpx.ResponseNotRead:
                pass
            else:
                return response
            return httpx.Response(
                response.status_code,
                headers=response.headers.raw,
                stream=_DeadlineStream(response, attempt, deadline),
                extensions=response.extensions,
            )
        raise deadline_passed(post.timeout)  # the scope cancelled the request

    async def aclose(self) -> None:
        await self._transport.aclose()


class _DeadlineStream(httpx.AsyncByteStream):
    def __init__(self, response: httpx.Response, attempt: _Attempt, deadline: float) -> None:
        self._response = response
        self._attempt = attempt
        self._deadline = deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self._response.aiter_raw().__aiter__()
        while True:
            with _httpx_errors(self._attempt), anyio.CancelScope(deadline=self._deadline):
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
            if anyio.current_time() >= self._deadline:
                raise deadline_passed(self._attempt.timeout)
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()


@contextlib.contextmanager
def _httpx_errors(attempt: _Attempt) -> Iterator[None]:
    """httpx's failures as the runner's attempt errors."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise attempt.timed_out(type(exc).__name__) from exc
    except httpx.ConnectError as exc:
        raise AttemptError("connect_error", f"cannot connect: {exc}") from exc
    except httpx.RemoteProtocolError as exc:
        raise attempt.broken(str(exc)) from exc
    except httpx.HTTPError as exc:
        raise AttemptError("network_error", f"{type(exc).__name__}: {exc}") from exc


def as_transport(transport: Transport | httpx.AsyncBaseTransport | None, limit: int) -> Transport:
    """The transport to send through: an httpx transport adapted, aiohttp's pool by default."""
    if transport is None:
        return AiohttpTransport(limit=limit)
    if isinstance(transport, httpx.AsyncBaseTransport):
        return HttpxTransport(transport)
    return transport
