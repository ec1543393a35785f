"""One attempt on the wire: the invoke client (JSON or SSE), the transport under it, and
the decision whether a failed attempt is worth another (retry, backoff, Retry-After)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.http._client import InvokeClient
    from runner.http._retry import Decision, RetryPolicy, decide, is_throttled

# Names load on first use: the door costs nothing until a name is taken through it.
_EXPORTS = {
    "Decision": "runner.http._retry",
    "InvokeClient": "runner.http._client",
    "RetryPolicy": "runner.http._retry",
    "decide": "runner.http._retry",
    "is_throttled": "runner.http._retry",
}


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else
    from runner import door_getattr

    __getattr__ = door_getattr(__name__, _EXPORTS)


__all__ = [
    "Decision",
    "InvokeClient",
    "RetryPolicy",
    "decide",
    "is_throttled",
]
