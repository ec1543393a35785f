"""One run session, end to end: validate, lock ``OUT``, then hand over to the
:class:`~runner.run._session.SendingSession` (send, commit, compact, manifest).

Everything that can be checked is checked before the first request, in the order a user fixes
things: the config (on construction), the API key, the dataset
(:func:`runner.dataset.open_dataset`), then the output directory under its lock (empty, or a
resume of the same dataset and config). The manifest is first written when sending starts,
and ``on_start`` is called right after it, before the first request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import httpx

from runner.config import RunConfig
from runner.dataset import open_dataset
from runner.errors import ConfigError
from runner.http import RetryPolicy
from runner.run._preflight import (
    check_segments,
    prepare_manifest,
    refuse_early,
    resolve_api_key,
    sample_of,
)
from runner.run._progress import Display
from runner.run._session import RunResult, SendingSession, first_runner_error
from runner.store import RunDir, recover_journal, remove_stale_temps


@dataclass(frozen=True)
class RunOptions:
    """How a job is run, as opposed to what it computes (:class:`RunConfig`)."""

    display: Display | None = None
    policy: RetryPolicy | None = None
    transport: httpx.AsyncBaseTransport | None = None
    handle_signals: bool = False
    resume_command: str | None = None
    quit_now: Callable[[], None] | None = None
    defer_from: int | None = None
    """A session that sent every call of a run of at least this many calls leaves the
    journal uncompacted and the manifest ``running``: :func:`finish_deferred`, in a fresh
    process, completes it (the CLI's memory plan for large runs). None: compact here."""
    phase: str = "run"
    """What the progress line calls this session: ``run``, ``judge`` or ``pairwise``."""
    hold: contextlib.ExitStack | None = None
    """Where OUT's lock is kept: the caller's stack, so the lock outlives the session (an
    experiment holds it through every stage). None: released when the session ends."""
    on_start: Callable[[], None] | None = None
    """Called once the session holds OUT's lock and has written the manifest, before the
    first request: what must be in OUT for every run that sent anything (an experiment's
    ``experiment.toml``). Its error ends the session before anything is sent."""


def run_job(
    config: RunConfig,
    *,
    api_key: str | None,
    display: Display | None = None,
    policy: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    handle_signals: bool = False,
    resume_command: str | None = None,
    quit_now: Callable[[], None] | None = None,
    defer_from: int | None = None,
    hold: contextlib.ExitStack | None = None,
    phase: str = "run",
    on_start: Callable[[], None] | None = None,
) -> RunResult:
    """Run (or resume) one job to the end.

    Raises ``RunAborted`` (the API refused the run), ``StorageError`` (a file could not be
    written) or ``RunInterrupted`` after committing what finished; validation errors before
    anything is sent. ``handle_signals`` (the CLI sets it; a library leaves signals alone)
    makes SIGINT, SIGTERM and SIGHUP stop sending and commit; a second signal marks the
    manifest and calls ``quit_now``. Called where an event loop is already running (a notebook
    cell), the job runs on a worker thread and this returns its result all the same.
    ``on_start`` is called under OUT's lock, once the manifest is written and before the
    first request (see :class:`RunOptions`).
    """
    options = RunOptions(
        display, policy, transport, handle_signals, resume_command, quit_now, defer_from,
        phase, hold, on_start,
    )  # fmt: skip
    if _loop_running():
        if handle_signals:
            raise ConfigError("handle_signals needs the main thread, with no event loop running")
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="runner") as pool:
            return pool.submit(_run_blocking, config, api_key, options).result()
    return _run_blocking(config, api_key, options)


async def arun_job(
    config: RunConfig,
    *,
    api_key: str | None,
    display: Display | None = None,
    policy: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RunResult:
    """:func:`run_job` for async code: ``await arun_job(config, api_key=…)``.

    The checks before sending (reading the dataset, locking ``OUT``) run on a worker thread,
    so the event loop is not blocked; signals are left to the caller.
    """
    options = RunOptions(display, policy, transport)
    stack = contextlib.ExitStack()
    try:
        session = await anyio.to_thread.run_sync(_open, config, api_key, options, stack)
        try:
            return await session.run(False)
        except BaseExceptionGroup as group:
            raise first_runner_error(group) from None
    finally:
        stack.close()


def _run_blocking(config: RunConfig, api_key: str | None, options: RunOptions) -> RunResult:
    stack = contextlib.ExitStack()
    try:
        session = _open(config, api_key, options, options.hold or stack)
        return _unwrapped(anyio.run, session.run, options.handle_signals)
    finally:
        stack.close()


def _unwrapped(run: Callable[..., RunResult], *args: object) -> RunResult:
    """``run(*args)``, with a runner error raised inside a task group (an ``InputError`` from a
    corrupt Parquet page, say) raised as itself rather than in an ``ExceptionGroup``: its exit
    code, not 70."""
    try:
        return run(*args)
    except BaseExceptionGroup as group:
        raise first_runner_error(group) from None


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _open(
    config: RunConfig, api_key: str | None, options: RunOptions, stack: contextlib.ExitStack
) -> SendingSession:
    """Every check before the first request, then ``OUT`` locked (held until ``stack`` ends)."""
    key = resolve_api_key(config, api_key)
    dataset = open_dataset(config)
    check_segments(config, dataset)
    rundir = RunDir.of(config)
    refuse_early(config, rundir)
    sample = sample_of(config, dataset)
    rundir.create()
    lock = stack.enter_context(rundir.locked())
    manifest = prepare_manifest(config, dataset, rundir)
    _warn(recover_journal(rundir.journal).messages())
    remove_stale_temps(rundir.root)
    policy = options.policy or RetryPolicy(
        max_attempts=config.max_attempts,
        initial=config.backoff_initial,
        cap=config.backoff_max,
        max_elapsed=config.max_elapsed,
    )
    session = SendingSession(
        config, dataset, rundir, manifest, key, options.display or Display(), policy
    )
    session.transport, session.resume_command, session.quit_now, session.lock = (
        options.transport, options.resume_command, options.quit_now, lock,
    )  # fmt: skip
    session.sample, session.defer_from = sample, options.defer_from
    session.phase, session.on_start = options.phase, options.on_start
    return session


def _warn(lines: list[str], most: int = 10) -> None:
    """Print warnings on stderr, at most ``most`` of them and a count of the rest."""
    for line in lines[:most]:
        print(f"warning: {line}", file=sys.stderr, flush=True)
    if len(lines) > most:
        print(f"warning: … and {len(lines) - most} more like these", file=sys.stderr, flush=True)
