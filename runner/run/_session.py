"""The sending session: one process's turn at a run, from the first request to the commit.

:func:`runner.run._job.run_job` checks everything and locks ``OUT``, then hands over a
:class:`SendingSession`; it sends through the :class:`~runner.run._pipeline.Pipeline`, ticks
the progress line, stops on signals, then compacts the journal and writes the manifest with
this session's record (:class:`~runner.store.SessionRecord`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx

from runner.config import RunConfig
from runner.dataset import Dataset
from runner.errors import (
    InputError,
    RunAborted,
    RunInterrupted,
    RunnerError,
    StorageError,
)
from runner.http import InvokeClient, RetryPolicy
from runner.run._pipeline import Pipeline
from runner.run._progress import Counters, Display
from runner.store import (
    FINISHING,
    Journal,
    Manifest,
    RunDir,
    RunLock,
    RunStatus,
    SessionRecord,
    compact,
    now_iso,
    read_done_keys,
)

#: Signals that stop a run the way Ctrl-C does (SIGHUP: the terminal or the pod went away).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class RunResult:
    """What a finished (complete) session reports."""

    out_dir: Path
    run_id: str
    status: RunStatus
    counts: dict[str, int]
    counters: Counters
    elapsed_s: float
    manifest: Manifest = field(repr=False)
    compacted: bool = True
    """False when the session left compaction to :func:`finish_deferred` (``defer_from``)."""


def first_runner_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first :class:`RunnerError` in ``group`` (nested groups searched), else ``group``."""
    for exc in group.exceptions:
        found = first_runner_error(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if isinstance(found, RunnerError):
            return found
    return group


@dataclass(eq=False)
class SendingSession:
    """One process's turn at sending a run: the pipeline under a task group, the progress
    line, signals, and the commit (compaction and the manifest) at the end."""

    config: RunConfig
    dataset: Dataset
    rundir: RunDir
    manifest: Manifest
    api_key: str = field(repr=False)
    display: Display
    policy: RetryPolicy
    transport: httpx.AsyncBaseTransport | None = None
    resume_command: str | None = None
    quit_now: Callable[[], None] | None = None
    lock: RunLock | None = None
    sample: frozenset[str] | None = None
    defer_from: int | None = None
    phase: str = "run"
    on_start: Callable[[], None] | None = None
    """Called after the manifest's first write of this session, before the first request."""
    interrupted: bool = False
    session: SessionRecord = field(
        default_factory=lambda: SessionRecord(
            started_at=now_iso(), host=socket.gethostname(), pid=os.getpid()
        )
    )

    async def run(self, handle_signals: bool) -> RunResult:
        """Send, then commit. With ``handle_signals`` the stop signals are received from the
        first line on, before the manifest says ``running``: a signal at any moment of the
        session stops it the graceful way (asyncio's own SIGINT handler, in place until then,
        would cancel the task without a commit)."""
        if not handle_signals:
            return await self._send(None)
        with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
            return await self._send(signals)

    async def _send(self, signals: AsyncIterator[int] | None) -> RunResult:
        config, manifest, rundir = self.config, self.manifest, self.rundir
        started = time.monotonic()
        done = read_done_keys(rundir.root, retry_errors=config.retry_errors)
        manifest.status, manifest.reason = RunStatus.RUNNING, None
        manifest.stage = "send"
        manifest.stages["send"] = "running"
        manifest.sessions.append(self.session)
        if self.resume_command:
            manifest.resume_command = self.resume_command
        rundir.write_manifest(manifest)  # the run really starts here
        if self.on_start is not None:
            self.on_start()

        counters = Counters(total=max(0, self._estimate() - len(done)), phase=self.phase)
        counters.concurrency = config.concurrency
        stopped: RunAborted | StorageError | InputError | None = None
        journal = Journal(rundir.journal)
        try:
            async with InvokeClient(
                config.base_url,
                self.api_key,
                timeout=config.timeout,
                max_connections=config.concurrency,
                max_response_bytes=config.max_response_bytes,
                transport=self.transport,
            ) as client:
                pipeline = Pipeline(
                    config, manifest.run_id, client, journal, done, counters, self.policy,
                    sample=self.sample,
                )  # fmt: skip
                self.display.start(counters)
                try:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._tick, journal, pipeline)
                        if signals is not None:
                            tg.start_soon(self._watch_signals, signals, pipeline, tg)
                        try:
                            await pipeline.run(self.dataset.iter_batches())
                        except (RunAborted, StorageError, InputError) as exc:
                            stopped = exc
                        except BaseExceptionGroup as group:
                            found = first_runner_error(group)
                            if not isinstance(found, RunAborted | StorageError | InputError):
                                raise
                            stopped = found
                        tg.cancel_scope.cancel()
                finally:
                    self.display.stop()
        finally:
            try:
                journal.close()
            except StorageError as exc:
                stopped = stopped or exc
        return self._commit(pipeline, counters, stopped, started)

    def _estimate(self) -> int:
        rows = self.dataset.num_rows if self.sample is None else len(self.sample)
        if self.config.shard is not None:
            rows = -(-rows // self.config.shard[1])  # an estimate until the producer counted
        return rows * self.config.repeat * len(self.config.variants)

    def _commit(
        self,
        pipeline: Pipeline,
        counters: Counters,
        stopped: RunAborted | StorageError | InputError | None,
        started: float,
    ) -> RunResult:
        """Compact the journal, write the manifest, and say how the session ended."""
        config, manifest, rundir = self.config, self.manifest, self.rundir
        counts: dict[str, int] | None = None
        sent_all = (
            stopped is None
            and pipeline.produced_all
            and pipeline.skipped + counters.done >= pipeline.planned
        )
        if sent_all and self.defer_from is not None and pipeline.planned >= self.defer_from:
            return self._leave_for_finishing(pipeline, counters, started)
        if isinstance(stopped, StorageError):
            # The disk is full or failing: compacting would only fail again. Give back the
            # space held in reserve so the manifest can still say what happened.
            if self.lock is not None:
                self.lock.release_reserve()
        else:
            try:
                counts = compact(rundir.root, config.variants)
            except StorageError as exc:
                stopped = exc
        finished = counters.done if counts is None else sum(counts.values())
        if isinstance(stopped, RunAborted):
            status = RunStatus.ABORTED
        elif stopped is None and pipeline.produced_all and finished >= pipeline.planned:
            status = RunStatus.COMPLETE
        else:
            status = RunStatus.INTERRUPTED
        reason = None if stopped is None else str(stopped)
        self._end_session(status, reason, counters)
        manifest.status, manifest.reason, manifest.finished_at = status, reason, now_iso()
        manifest.stages["send"] = "done" if status is RunStatus.COMPLETE else status.value
        if counts is not None:
            manifest.counts = {"ok": counts.get("ok", 0), "error": counts.get("error", 0)}
        manifest.planned = pipeline.planned if pipeline.produced_all else None
        try:
            rundir.write_manifest(manifest)
        except StorageError as exc:
            if stopped is None:
                stopped = exc
        hint = f" Resume with: {self.resume_command}" if self.resume_command else ""
        if isinstance(stopped, RunAborted):
            raise RunAborted(
                f"run aborted: {stopped}. {finished} outcomes are committed in {rundir.root}.{hint}"
            )
        if isinstance(stopped, StorageError):
            raise StorageError(
                f"{stopped}; the run stopped. {finished} outcomes are committed in "
                f"{rundir.root}; free space or fix the disk, then resume.{hint}"
            )
        if isinstance(stopped, InputError):  # a bad row or page found while streaming
            raise InputError(
                f"{stopped}; the run stopped. {finished} outcomes are committed in "
                f"{rundir.root}; fix the dataset, then resume.{hint}"
            )
        if status is RunStatus.INTERRUPTED:
            raise RunInterrupted(
                f"interrupted; {finished} outcomes are committed in {rundir.root}.{hint}"
            )
        return RunResult(
            rundir.root, manifest.run_id, status, counts or {}, counters,
            time.monotonic() - started, manifest,
        )  # fmt: skip

    def _end_session(self, status: RunStatus, reason: str | None, counters: Counters) -> None:
        session = self.session
        session.finished_at = now_iso()
        session.status, session.reason = status, reason
        session.attempts, session.retries = counters.attempts, counters.retries
        session.outcomes, session.max_in_flight = counters.done, counters.max_in_flight
        session.concurrency = {"live": counters.concurrency, "min": counters.min_concurrency}

    def _leave_for_finishing(
        self, pipeline: Pipeline, counters: Counters, started: float
    ) -> RunResult:
        """Every call has its outcome in the journal; the manifest stays ``running`` until
        :func:`finish_deferred` has compacted it (if that never happens, ``running`` is the
        truth: a resume compacts and completes the run without sending anything)."""
        manifest = self.manifest
        self._end_session(RunStatus.COMPLETE, None, counters)
        manifest.reason = FINISHING
        manifest.stage, manifest.stages["send"] = "compact", "done"
        manifest.planned = pipeline.planned
        self.rundir.write_manifest(manifest)
        return RunResult(
            self.rundir.root, manifest.run_id, RunStatus.RUNNING, {}, counters,
            time.monotonic() - started, manifest, compacted=False,
        )  # fmt: skip

    async def _tick(self, journal: Journal, pipeline: Pipeline) -> None:
        last_sync = time.monotonic()
        while True:
            await anyio.sleep(0.5)
            self.display.tick()
            if time.monotonic() - last_sync >= 2.0:
                last_sync = time.monotonic()
                try:
                    await anyio.to_thread.run_sync(journal.sync)
                except StorageError as exc:  # the disk failed under us: stop like Ctrl-C
                    pipeline.fail(exc)
                    return

    async def _watch_signals(
        self, signals: AsyncIterator[int], pipeline: Pipeline, tg: anyio.abc.TaskGroup
    ) -> None:
        grace = self.config.grace_period
        async for signum in signals:
            if self.interrupted:
                self._quit_now(pipeline)
                continue
            self.interrupted = True
            print(
                f"\nstopping ({signal.Signals(signum).name}): no new requests; waiting up to "
                f"{grace:g} s for those in flight (interrupt again to quit at once)",
                file=sys.stderr,
                flush=True,
            )
            pipeline.stop()
            tg.start_soon(self._cancel_after, pipeline, grace)

    def _quit_now(self, pipeline: Pipeline) -> None:
        """A second signal: mark the run interrupted without waiting for anything else, then
        let the caller quit (the CLI exits at once; a library caller's work is cancelled)."""
        self.manifest.status = RunStatus.INTERRUPTED
        self.manifest.reason = "quit at once on a second interrupt"
        self.session.status, self.session.finished_at = RunStatus.INTERRUPTED, now_iso()
        # Best effort: the journal, not the manifest, is the record of what finished.
        with contextlib.suppress(StorageError):
            self.rundir.write_manifest(self.manifest)
        print("second interrupt: quitting now", file=sys.stderr, flush=True)
        if self.quit_now is not None:
            self.quit_now()
        pipeline.cancel()

    @staticmethod
    async def _cancel_after(pipeline: Pipeline, grace: float) -> None:
        await anyio.sleep(grace)
        pipeline.cancel()
