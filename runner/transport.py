"""An httpx transport that sends through aiohttp's connection pool.

httpx stays the runner's HTTP API (requests, responses, ``MockTransport`` in tests); only the
wire under it changes. One shortcut: :meth:`AiohttpTransport.post_answer`, the runner's own
non-streamed call, hands a whole small ``200`` body over as bytes without building httpx's
request and response objects (a fifth of the CPU of a call); any other answer is the
``httpx.Response`` every caller gets.

Measured on this machine against the simulator (BENCHMARKS.md), httpcore's pool spends 3–5 ms
of CPU per request and scans every connection on every request, while aiohttp's pool spends well
under 1 ms: the difference between ~110 and ~700 requests/s per core.

Unlike the ``httpx-aiohttp`` package, this maps each aiohttp failure to the httpx error that
means the same thing (a reset is a ``ReadError``, a cut body a ``RemoteProtocolError``, not a
"connect timeout"), which the runner's retry decision and error reports rely on.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final

import aiohttp
import httpx
import yarl


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc) or "connect timeout") from exc
    except aiohttp.ServerTimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "read timeout") from exc
    except TimeoutError as exc:  # the request's total deadline (TOTAL_TIMEOUT_EXTENSION)
        raise httpx.ReadTimeout(str(exc) or "no complete answer within the total timeout") from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc)) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise httpx.RemoteProtocolError(str(exc) or "server disconnected") from exc
    except aiohttp.ClientResponseError as exc:  # a malformed response
        raise httpx.RemoteProtocolError(str(exc)) from exc
    except (aiohttp.ClientOSError, ConnectionError) as exc:
        raise httpx.ReadError(str(exc) or "connection reset") from exc
    except (aiohttp.NonHttpUrlClientError, aiohttp.InvalidUrlClientError) as exc:
        raise httpx.UnsupportedProtocol(str(exc)) from exc
    except aiohttp.ClientError as exc:
        raise httpx.TransportError(str(exc)) from exc


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped_errors():
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

#: A request extension: the most body bytes the caller will read. A body declared longer is
#: handed over unread, as a stream the caller can refuse without receiving it.
MAX_BODY_EXTENSION: Final = "runner.max_body_bytes"

#: A request extension: seconds for the whole exchange, from the wait for a connection to the
#: last byte of the body (an event stream included); past it the request fails with
#: ``httpx.ReadTimeout``. aiohttp keeps this deadline with one timer per request, which costs
#: a tenth of an anyio cancel scope around the call (BENCHMARKS.md, issue 14).
TOTAL_TIMEOUT_EXTENSION: Final = "runner.total_timeout"


_ENCODING: Final = "Content-Encoding"


def _to_httpx(response: aiohttp.ClientResponse, content: bytes | None) -> httpx.Response:
    """The httpx response for an aiohttp one: its body in ``content``, or still to stream."""
    reply = httpx.Response(
        status_code=response.status,
        headers=response.raw_headers,
        stream=_ResponseStream(response) if content is None else httpx.ByteStream(content),
        extensions={"http_version": b"HTTP/1.1"},
    )
    if content is not None:
        reply.read()  # decoded here, synchronously: the caller's aread() then has nothing to do
    return reply


def _read_at_once(response: aiohttp.ClientResponse, max_body: int | None) -> bool:
    length = response.content_length
    return (
        length is not None
        and length <= _READ_AT_ONCE
        and (max_body is None or length <= max_body)
        and not response.content_type.startswith("text/event-stream")
    )


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests over one ``aiohttp.ClientSession`` with ``limit`` connections.

    The session is created on first use, inside the running event loop (asyncio only).
    """

    def __init__(self, *, limit: int = 100) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        # The runner sends every request to one URL with one timeout: parse them once.
        self._urls: dict[str, yarl.URL] = {}
        self._timeouts: dict[tuple[Any, Any, Any], aiohttp.ClientTimeout] = {}

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

    def _url(self, url: httpx.URL) -> yarl.URL:
        text = str(url)
        parsed = self._urls.get(text)
        if parsed is None:
            if len(self._urls) > 64:
                self._urls.clear()
            parsed = self._urls[text] = yarl.URL(text, encoded=True)
        return parsed

    def _timeout(self, extensions: dict[str, Any]) -> aiohttp.ClientTimeout:
        timeouts = extensions.get("timeout", {})
        key = (
            timeouts.get("connect"),
            timeouts.get("read"),
            extensions.get(TOTAL_TIMEOUT_EXTENSION),
        )
        timeout = self._timeouts.get(key)
        if timeout is None:
            if len(self._timeouts) > 64:
                self._timeouts.clear()
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                total=key[2], sock_connect=key[0], sock_read=key[1]
            )
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # A body in memory is read without an async generator (the event loop tracks each).
        body = (
            request.read()
            if isinstance(request.stream, httpx.SyncByteStream)
            else (await request.aread())
        )
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        response, content = await self._exchange(
            request.method, request.url, headers, body, request.extensions
        )
        return _to_httpx(response, content)

    async def post_answer(
        self, url: httpx.URL, headers: dict[str, str], body: bytes, extensions: dict[str, Any]
    ) -> bytes | httpx.Response:
        """POST ``body``: a whole, small, unencoded ``200`` body as bytes, without building
        httpx's request and response objects (a fifth of the runner's CPU per call at 0 ms,
        BENCHMARKS.md, issue 14); anything else (another status, an encoded, streamed or large
        body) as the ``httpx.Response`` :meth:`handle_async_request` would give."""
        response, content = await self._exchange("POST", url, headers, body, extensions)
        if content is not None and response.status == 200 and _ENCODING not in response.headers:
            return content
        return _to_httpx(response, content)

    async def _exchange(
        self,
        method: str,
        url: httpx.URL,
        headers: list[tuple[str, str]] | dict[str, str],
        body: bytes,
        extensions: dict[str, Any],
    ) -> tuple[aiohttp.ClientResponse, bytes | None]:
        """Send a request. A small whole body (a JSON answer or error) is read at once and the
        connection goes back to the pool before the caller even looks at it (content not
        None); any other is left to stream."""
        session = self._get_session()
        with _mapped_errors():
            response = await session.request(
                method,
                self._url(url),
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=self._timeout(extensions),
            )
            if not _read_at_once(response, extensions.get(MAX_BODY_EXTENSION)):
                return response, None
            content = await response.read()
            response.release()
        return response, content

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
