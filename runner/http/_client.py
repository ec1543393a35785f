"""One HTTP attempt against the invoke API, JSON or SSE, turned into an ``Answer``.

Every failure leaves this module as an :class:`~runner.errors.AttemptError` with a stable
``error_type`` (the transport maps its library's failures; none reaches this module). The API
key is sent in a header, and every error leaves already redacted
(:meth:`~runner.errors.AttemptError.redacted`): a server echoing the key in a body, an event, a
redirect or an exception text cannot put it in a log or a result.

An answer is read up to ``max_response_bytes`` and no further: a larger one (by its
``Content-Length``, or counted as its chunks or events arrive) is a ``response_too_large``
failure that is not retried. Error bodies are read up to 64 KiB, the rest is ignored.
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

import httpx
import orjson

from runner.errors import AttemptError
from runner.http._retry import parse_retry_after
from runner.http._transport import Transport, as_transport
from runner.records import Answer

INVOKE_PATH: Final = "/prompt/invoke"
#: The default bound on one answer's body (``--max-response-bytes``).
DEFAULT_MAX_RESPONSE_BYTES: Final = 10 * 1024 * 1024
_MAX_ERROR_TEXT: Final = 500
#: How much of an error body is read: its first characters are all a report keeps.
_MAX_ERROR_BODY: Final = 64 * 1024


def loads(data: bytes) -> Any:
    """JSON from bytes: orjson, several times faster than the stdlib's on answers; the stdlib's
    only for what orjson refuses and JSON allows (a lone surrogate escape such as ``\\ud800``).
    Raises ``ValueError`` on anything that is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


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

    ``transport`` is the one seam to the wire (:class:`~runner.http._transport.Transport`), the same
    for tests and production: aiohttp's connection pool by default, or any httpx transport
    (tests pass ``httpx.MockTransport`` with scripted answers). ``max_response_bytes`` bounds
    the body of one answer (JSON or the whole event stream); ``timeout`` the whole attempt.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 120.0,
        max_connections: int = 100,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        transport: Transport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_response_bytes < 1:
            raise ValueError(f"max_response_bytes must be at least 1, got {max_response_bytes}")
        self._api_key = api_key
        self._max_bytes = max_response_bytes
        self._timeout = timeout
        self._url = base_url.rstrip("/") + INVOKE_PATH
        # No Host or Content-Length: the transport writes them. Redirects are never followed
        # (a redirect could carry the key to another host).
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "User-Agent": "fetchhive-runner",
        }
        self._transport = as_transport(transport, max_connections)

    async def __aenter__(self) -> InvokeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    def redact(self, text: str) -> str:
        return text.replace(self._api_key, "[REDACTED]") if self._api_key else text

    async def invoke(self, body: bytes, *, stream: bool) -> Answer:
        """Send one request (``body`` is the JSON-encoded request) and return its answer.

        Raises :class:`AttemptError`, built free of the API key.
        """
        started = time.perf_counter()
        try:
            return await self._send(body, stream, started)
        except AttemptError as exc:
            error = exc
        if error.latency_ms is None:
            error.latency_ms = _elapsed_ms(started)
        # Raised here, outside the except block, so that the unredacted original is not
        # linked to the redacted copy as its __context__.
        raise error.redacted(self._api_key)

    async def _send(self, body: bytes, stream: bool, started: float) -> Answer:
        reply = await self._transport.post(
            self._url,
            self._headers,
            body,
            stream=stream,
            timeout=self._timeout,
            max_body=self._max_bytes,
        )
        if isinstance(reply, bytes):  # a whole 200 answer
            if stream:  # an event stream delivered whole, or a JSON answer to a stream request
                return await _read_sse(httpx.Response(200, content=reply), started, self._max_bytes)
            if len(reply) > self._max_bytes:
                raise _too_large(self._max_bytes, f"{len(reply)} bytes")
            return _parse_json_answer(reply, started)
        response = reply
        try:
            if response.status_code != 200:
                limit = min(self._max_bytes, _MAX_ERROR_BODY)
                text = (await _read_body(response, limit, truncate=True)).decode(errors="replace")
                raise self._status_error(response, text, started)
            if stream:
                return await _read_sse(response, started, self._max_bytes)
            return _parse_json_answer(await _read_body(response, self._max_bytes), started)
        finally:
            await response.aclose()

    def _status_error(self, response: httpx.Response, text: str, started: float) -> AttemptError:
        status = response.status_code
        if 300 <= status < 400:
            where = response.headers.get("location", "?")
            code, message = None, f"redirect to {where} not followed"
        else:
            code, message = error_from_body(status, text)
        return AttemptError(
            f"http_{status}",
            message,
            http_status=status,
            code=code,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            latency_ms=_elapsed_ms(started),
        )


def _too_large(limit: int, seen: str) -> AttemptError:
    return AttemptError(
        "response_too_large",
        f"answer larger than {limit} bytes ({seen}); raise --max-response-bytes to accept it",
        http_status=200,
    )


def _declared_length(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


async def _read_body(response: httpx.Response, limit: int, *, truncate: bool = False) -> bytes:
    """The body, up to ``limit`` bytes: past it, the first ``limit`` bytes or response_too_large.

    Nothing past the limit is asked of the transport (beyond the chunk that crosses it).
    """
    try:
        content = response.content  # already in memory: a small body, or MockTransport
    except httpx.ResponseNotRead:
        pass
    else:
        if len(content) > limit and not truncate:
            raise _too_large(limit, f"{len(content)} bytes")
        return content[:limit]
    declared = _declared_length(response)
    if declared is not None and declared > limit and not truncate:
        raise _too_large(limit, f"Content-Length: {declared}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            if not truncate:
                raise _too_large(limit, f"over {limit} bytes arrived")
            chunks.append(chunk[: len(chunk) - (size - limit)])
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _parse_json_answer(content: bytes, started: float) -> Answer:
    try:
        data = loads(content)
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


async def _read_sse(response: httpx.Response, started: float, limit: int) -> Answer:
    state = _SseState()
    # Lines are split from the bytes here, not by aiter_lines: its text decoding and line
    # buffering cost more than parsing the events. SSE is UTF-8; lines end in \n, \r\n or \r.
    pending = b""
    size = 0
    declared = _declared_length(response)
    if declared is not None and declared > limit:
        raise _too_large(limit, f"Content-Length: {declared}")
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, f"the event stream passed {limit} bytes")
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
        event = loads(payload)
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
