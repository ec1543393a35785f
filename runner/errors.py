"""The one exception tree of the runner.

::

    RunnerError                 base of everything the runner raises on purpose
    ├── UsageError              bad usage or input, found before the first request   (exit 2)
    │   ├── ConfigError         an invalid option or combination of options
    │   ├── InputError          the dataset: missing, unreadable, bad column or row
    │   └── ResultsDirError     OUT is not empty, unwritable, or does not match on resume
    │       └── RunDirLocked    another process holds OUT's lock (names host and pid)
    ├── RunAborted              the API refused the run: key, credit, daily cap, deployment
    │                           or variant not found, unreachable                   (exit 3)
    ├── ErrorBudgetExceeded     the run completed, but a variant's error rows are over
    │                           --max-error-rate; every report is written           (exit 4)
    ├── StorageError            a local file could not be written or read (disk full, I/O):
    │                           finished work is committed; resume or rebuild later (exit 5)
    ├── RunInterrupted          Ctrl-C, SIGTERM or SIGHUP; finished work is committed (exit 130)
    ├── GateFailed              a regression gate failed                            (exit 1)
    ├── ShardsError             shards that cannot be merged                         (exit 1)
    └── AttemptError            one HTTP attempt failed (internal to client/retry/pipeline)

A failed *row* is not an exception: the pipeline turns the last ``AttemptError`` of a row into
a result row with ``status = 'error'``. Only ``RunAborted`` stops a run from the server side.
"""

from __future__ import annotations


class RunnerError(Exception):
    """Base class of every error the runner raises on purpose."""

    exit_code = 1


class UsageError(RunnerError):
    """Bad usage or input, detected before any request was sent."""

    exit_code = 2


class ConfigError(UsageError):
    """An option, or a combination of options, is invalid."""


class InputError(UsageError):
    """The dataset cannot be used: names the file, and where known the row and column."""


class ResultsDirError(UsageError):
    """The output directory cannot be used for this run (not empty, or a resume mismatch)."""


class RunDirLocked(ResultsDirError):
    """Another runner process holds the lock on the run directory."""


class RunAborted(RunnerError):
    """The server refused in a way that would fail every row; the run stopped early."""

    exit_code = 3


class ErrorBudgetExceeded(RunnerError):
    """The run completed, but some variant's share of error rows is over the budget."""

    exit_code = 4


class StorageError(RunnerError):
    """A local file could not be written or read (disk full, read-only, I/O error).

    Raised with the path and the cause in the message; what finished before is committed.
    """

    exit_code = 5


class RunInterrupted(RunnerError):
    """The run was interrupted by a signal after committing its finished work."""

    exit_code = 130


class GateFailed(RunnerError):
    """A regression gate failed."""

    exit_code = 1


class ShardsError(RunnerError):
    """A set of shard directories is incomplete or inconsistent."""

    exit_code = 1


class AttemptError(RunnerError):
    """One attempt at one request failed.

    ``error_type`` is a short stable label (``http_502``, ``timeout``, ``stream_cut`` …) that
    reports group by; ``retryable`` and ``fatal`` come from :mod:`runner.http._retry`'s decision.

    ``message`` is read-only and is ``args[0]``: the text is final when the error is built, so
    a secret scrubbed from it cannot survive in ``args`` (see :meth:`redacted`).
    """

    def __init__(
        self,
        error_type: str,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        latency_ms: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.http_status = http_status
        self.code = code
        self.retry_after = retry_after
        self.request_id = request_id
        self.latency_ms = latency_ms

    @property
    def message(self) -> str:
        """The one-line description (the same text as ``str(error)`` and ``args[0]``)."""
        return str(self.args[0]) if self.args else ""

    def redacted(self, secret: str, placeholder: str = "[REDACTED]") -> AttemptError:
        """A copy with ``secret`` replaced in every text field; ``self`` if it holds none.

        The copy keeps the cause only when the cause's text is free of the secret too. Raise
        the copy outside the ``except`` block that caught the original, or Python links the
        original back as ``__context__``.
        """
        if not secret:
            return self

        def scrub(text: str | None) -> str | None:
            return None if text is None else text.replace(secret, placeholder)

        cause, context = self.__cause__, self.__context__
        safe_cause = cause is None or secret not in f"{cause!s}{cause!r}"
        safe_context = context is None or context is cause or secret not in f"{context!s}"
        texts = (self.error_type, self.message, self.code, self.request_id)
        clean = not any(text is not None and secret in text for text in texts)
        if clean and safe_cause and safe_context:
            return self
        copy = AttemptError(
            scrub(self.error_type) or "",
            scrub(self.message) or "",
            http_status=self.http_status,
            code=scrub(self.code),
            retry_after=self.retry_after,
            request_id=scrub(self.request_id),
            latency_ms=self.latency_ms,
        )
        if safe_cause:
            copy.__cause__ = cause
        copy.__suppress_context__ = True
        return copy

    def __repr__(self) -> str:
        return (
            f"AttemptError({self.error_type!r}, {self.message!r}, http_status={self.http_status})"
        )
