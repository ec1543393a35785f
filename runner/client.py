"""One HTTP attempt against the invoke API, JSON or SSE, turned into an ``Answer``.

Every failure leaves this module as an :class:`~runner.errors.AttemptError` with a stable
``error_type``; no httpx exception escapes it. The API key is sent in a header and scrubbed from
any text that could reach a log or a result (a server echoing it back, say).
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

import anyio
import httpx

from runner.errors import AttemptError
from runner.records import Answer
from runner.retry import parse_retry_after
from runner.transport import AiohttpTransport

INVOKE_PATH: Final = "/prompt/invoke"
_MAX_ERROR_TEXT: Final = 500


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_usage(usage: Any) -> tuple[int | None, int | None, int | None]:
    """Token counts from either usage shape: nested ``{"total_tokens": n}`` or flat ints."""
    if not isinstance(usage, dict):
        return None, None, None

    def count(value: Any) -> int | None:
        if isinstance(value, dict):
            return _int(value.get("total_tokens"))
        return _int(value)

    prompt = count(usage.get("prompt_tokens"))
    completion = count(usage.get("completion_tokens"))
    total = _int(usage.get("total_tokens"))
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    return prompt, completion, total


def error_from_body(status: int, text: str) -> tuple[str | None, str]:
    """(code, message) from an error body, read defensively (it may be HTML or empty)."""
    code: str | None = None
    message = ""
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        raw_code = body.get("error_code") or body.get("code")
        code = str(raw_code) if raw_code is not None else None
        raw_message = body.get("message") or body.get("error")
        message = str(raw_message) if raw_message is not None else ""
    if not message:
        message = " ".join(text.split())[:_MAX_ERROR_TEXT] or f"HTTP {status} with an empty body"
    return code, message


class InvokeClient:
    """Sends invoke requests; one instance per run, shared by every worker.

    ``transport`` is injectable: tests pass ``httpx.MockTransport``. The default sends over
    aiohttp's connection pool (see :mod:`runner.transport` for why).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 120.0,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_key = api_key
        self._timeout = timeout
        self._url = httpx.URL(base_url.rstrip("/") + INVOKE_PATH)
        # Raw header pairs, Content-Length added per request: httpx.Request then skips its
        # own header merging and body encoding (a quarter of the CPU of building a request).
        self._headers: list[tuple[bytes, bytes]] = [
            (b"Host", self._url.netloc),
            (b"Authorization", f"Bearer {api_key}".encode()),
            (b"Content-Type", b"application/json"),
            (b"Accept", b"application/json, text/event-stream"),
            (b"User-Agent", b"fetchhive-runner"),
        ]
        self._extensions = {
            "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        }
        # The transport is driven directly: the runner needs none of httpx.AsyncClient's cookie
        # jar, auth flow or redirect handling (redirects are never followed: a redirect could
        # carry the key to another host), and they cost more CPU than the request itself.
        self._transport = transport or AiohttpTransport(limit=max_connections)

    async def __aenter__(self) -> InvokeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    def redact(self, text: str) -> str:
        return text.replace(self._api_key, "[REDACTED]") if self._api_key else text

    async def invoke(self, body: bytes, *, stream: bool) -> Answer:
        """Send one request (``body`` is the JSON-encoded request) and return its answer."""
        started = time.perf_counter()
        try:
            # A bare cancel scope, not fail_after: the same deadline at half the CPU.
            with anyio.CancelScope(deadline=anyio.current_time() + self._timeout):
                return await self._send(body, stream, started)
            raise TimeoutError  # the deadline cancelled the attempt
        except AttemptError as exc:
            exc.latency_ms = exc.latency_ms or _elapsed_ms(started)
            exc.message = self.redact(exc.message)
            raise
        except TimeoutError as exc:
            raise AttemptError(
                "timeout",
                f"no complete answer within {self._timeout:g} s",
                latency_ms=_elapsed_ms(started),
            ) from exc
        except httpx.TimeoutException as exc:
            raise AttemptError(
                "timeout", f"{type(exc).__name__}: the server did not answer in time",
                latency_ms=_elapsed_ms(started),
            ) from exc  # fmt: skip
        except httpx.ConnectError as exc:
            raise AttemptError(
                "connect_error", self.redact(f"cannot connect: {exc}"),
                latency_ms=_elapsed_ms(started),
            ) from exc  # fmt: skip
        except httpx.RemoteProtocolError as exc:
            kind = "stream_cut" if stream else "network_error"
            raise AttemptError(
                kind, self.redact(f"connection broken: {exc}"), latency_ms=_elapsed_ms(started)
            ) from exc
        except httpx.HTTPError as exc:
            raise AttemptError(
                "network_error", self.redact(f"{type(exc).__name__}: {exc}"),
                latency_ms=_elapsed_ms(started),
            ) from exc  # fmt: skip

    async def _send(self, body: bytes, stream: bool, started: float) -> Answer:
        request = httpx.Request(
            "POST",
            self._url,
            headers=[*self._headers, (b"Content-Length", str(len(body)).encode())],
            stream=httpx.ByteStream(body),
            extensions=self._extensions,
        )
        response = await self._transport.handle_async_request(request)
        try:
            if response.status_code != 200:
                await response.aread()
                raise self._status_error(response, started)
            if stream:
                return await _read_sse(response, started)
            await response.aread()
            return _parse_json_answer(response, started)
        finally:
            await response.aclose()

    def _status_error(self, response: httpx.Response, started: float) -> AttemptError:
        status = response.status_code
        if 300 <= status < 400:
            where = response.headers.get("location", "?")
            code, message = None, f"redirect to {where} not followed"
        else:
            code, message = error_from_body(status, response.text)
        return AttemptError(
            f"http_{status}",
            message,
            http_status=status,
            code=code,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            latency_ms=_elapsed_ms(started),
        )


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _parse_json_answer(response: httpx.Response, started: float) -> Answer:
    try:
        data = response.json()
    except ValueError as exc:
        raise AttemptError(
            "invalid_response", "HTTP 200 with a body that is not JSON", http_status=200
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("response"), str):
        raise AttemptError(
            "invalid_response", "HTTP 200 without a 'response' text field", http_status=200
        )
    prompt, completion, total = parse_usage(data.get("usage"))
    return Answer(
        output=data["response"],
        model=_str_or_none(data.get("model")),
        request_id=_str_or_none(data.get("request_id")),
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        latency_ms=_elapsed_ms(started),
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class _SseState:
    """What a stream has said so far."""

    __slots__ = ("answer", "done", "model", "reasoning", "request_id", "ttft_ms", "usage")

    def __init__(self) -> None:
        self.answer: list[str] = []
        self.reasoning: list[str] = []
        self.model: str | None = None
        self.request_id: str | None = None
        self.usage: Any = None
        self.ttft_ms: float | None = None
        self.done = False


async def _read_sse(response: httpx.Response, started: float) -> Answer:
    state = _SseState()
    # Lines are split from the bytes here, not by aiter_lines: its text decoding and line
    # buffering cost more than parsing the events. SSE is UTF-8; lines end in \n, \r\n or \r.
    pending = b""
    async for chunk in response.aiter_bytes():
        lines = (pending + chunk).splitlines(keepends=True)
        pending = lines.pop() if lines and lines[-1][-1:] not in (b"\n", b"\r") else b""
        for line in lines:
            _apply_line(state, line, started)
            if state.done:
                break
        if state.done:
            break
    else:
        if pending:  # a last line without its newline
            _apply_line(state, pending, started)
    if not state.done and state.usage is None:
        raise AttemptError(
            "stream_cut", "stream ended before its usage event and [DONE]", http_status=None
        )
    prompt, completion, total = parse_usage(state.usage)
    return Answer(
        output="".join(state.answer),
        reasoning="".join(state.reasoning) or None,
        model=state.model,
        request_id=state.request_id,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        latency_ms=_elapsed_ms(started),
        ttft_ms=state.ttft_ms,
    )


def _apply_line(state: _SseState, line: bytes, started: float) -> None:
    if not line.startswith(b"data:"):
        return  # blank separators, ": comments", event:/id: lines
    payload = line[5:].strip()
    if payload == b"[DONE]":
        state.done = True
        return
    try:
        event = json.loads(payload)
    except ValueError:
        return  # a malformed event must not sink a good answer
    if isinstance(event, dict):
        _apply_event(state, event, started)


def _apply_event(state: _SseState, event: dict[str, Any], started: float) -> None:
    kind = event.get("type")
    state.request_id = state.request_id or _str_or_none(event.get("request_id"))
    state.model = state.model or _str_or_none(event.get("model"))
    piece = event.get("response")
    if kind == "response" and isinstance(piece, str):
        if state.ttft_ms is None:
            state.ttft_ms = _elapsed_ms(started)
        state.answer.append(piece)
    elif kind == "reasoning" and isinstance(piece, str):
        state.reasoning.append(piece)
    elif kind == "usage":
        state.usage = event.get("usage") or {}
    elif kind == "error":
        raw_code = event.get("error_code") or event.get("code")
        message = event.get("message") or event.get("error") or "error event in stream"
        raise AttemptError(
            "stream_error",
            str(message),
            code=str(raw_code) if raw_code is not None else None,
            request_id=state.request_id,
        )
