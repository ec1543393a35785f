"""The bounded fan-out: rows × variants × repeats → calls → outcomes in the journal.

One task group holds a producer and ``concurrency`` workers joined by a bounded queue of
calls, so at most ``concurrency`` requests are ever in flight (retries included: a worker keeps its
call through every attempt and backoff) and memory does not grow with the dataset. The
producer emits the variants of one row next to each other (row 1 A, row 1 B, row 2 A …) so an
A/B comparison does not confound variant with time of day.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import orjson

from runner.config import RunConfig
from runner.errors import AttemptError, RunAborted, StorageError
from runner.http import Decision, InvokeClient, RetryPolicy, decide, is_throttled
from runner.records import STATUS_ERROR, STATUS_OK, Answer, Call, Outcome, Row
from runner.run._breaker import Breaker, threshold_for
from runner.run._call_queue import CallQueue
from runner.run._limits import Limits, Ticket
from runner.run._progress import Counters
from runner.store import DoneKeys, Journal, key_frame, now_iso, shard_of

# Module-level encoder: json.dumps with options builds a new encoder on every call.
_INPUTS_JSON = json.JSONEncoder(ensure_ascii=False)
_STDLIB_BODY = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def request_body(config: RunConfig, run_id: str, call: Call) -> bytes:
    """The JSON body of one invoke request, metadata flat and tagged for the experiment."""
    metadata: dict[str, Any] = dict(config.tags)
    metadata.update(call.row.metadata)
    if config.experiment is not None:
        metadata["experiment"] = config.experiment
    metadata["run_id"] = run_id
    metadata["row_id"] = call.row.row_id
    metadata["variant"] = call.variant
    metadata["repeat"] = call.repeat
    for key, column in config.metadata_from.items():  # a judge pass: what it judges
        metadata[key] = metadata.pop(column, None)
    body: dict[str, Any] = {
        "deployment": config.deployment,
        "variant": call.variant,
        "inputs": call.row.inputs,
        "streaming": config.stream,
        "metadata": metadata,
    }
    if config.user is not None:
        body["user"] = config.user
    try:
        return orjson.dumps(body)  # 1.5 µs a body here; the stdlib took 8.6 (timeit)
    except TypeError:  # a value orjson will not write (an integer past 64 bits): the stdlib's
        return _STDLIB_BODY.encode(body).encode("utf-8")


def expected_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


class _Abandoned(Exception):
    """A call given up because the run is stopping; it stays pending for a resume."""


@dataclass(slots=True)
class _Timing:
    """When a call started, and how many HTTP attempts it has made (all of them count: a
    502 or a timeout may have been billed)."""

    started_at: str
    t0: float
    sent: int = 0


class Pipeline:
    """Runs the calls of one run session through the client into the journal."""

    def __init__(
        self,
        config: RunConfig,
        run_id: str,
        client: InvokeClient,
        journal: Journal,
        done: DoneKeys,
        counters: Counters,
        policy: RetryPolicy,
        *,
        limits: Limits | None = None,
        sample: frozenset[str] | None = None,
    ) -> None:
        self.config = config
        self.run_id = run_id
        self.client = client
        self.journal = journal
        self.done = done
        self.counters = counters
        self.policy = policy
        counters.concurrency = counters.min_concurrency = config.concurrency
        if limits is None:
            limits = Limits.for_run(config.rps, config.adaptive, config.concurrency, counters)
        self.limits = limits if limits.active else None
        """``--rps`` and ``--adaptive``, held around every attempt; None when neither is set."""
        self.sample = sample
        """``--sample``: the row ids to send (None: every row)."""
        self.breaker = Breaker(threshold_for(config.concurrency), config.max_outage)
        """Stops a run that cannot succeed, pauses it through a short outage."""
        self.stopping = anyio.Event()
        self.aborted: RunAborted | None = None
        self.storage_error: StorageError | None = None
        """Set when an outcome could not be written (disk full): the run stops."""
        self.planned = 0
        """Calls the dataset asks for in this shard, done ones included (exact once produced)."""
        self.skipped = 0
        """Planned calls not sent because an earlier session finished them."""
        self.produced_all = False
        self._queue = CallQueue(low=config.concurrency)

    # -- the run --------------------------------------------------------------------------

    async def run(self, batches: Iterator[list[Row]]) -> None:
        """Send every call not already done; return when all are done, or on stop/abort."""
        async with anyio.create_task_group() as tg:
            self._work_scope = tg.cancel_scope
            tg.start_soon(self._produce, batches)
            for _ in range(self.config.concurrency):
                tg.start_soon(self._work)
        if self.storage_error is not None:
            raise self.storage_error
        if self.aborted is not None:
            raise self.aborted

    def stop(self) -> None:
        """Stop sending: no new call starts; calls in flight may finish."""
        self.stopping.set()
        self._queue.close()

    def fail(self, error: StorageError) -> None:
        """Nothing more can be committed (disk full, I/O error): stop at once, and say why."""
        if self.storage_error is None:
            self.storage_error = error
        self.cancel()

    def cancel(self) -> None:
        """Cancel everything still in flight (after the grace period)."""
        self.stop()
        self._work_scope.cancel()

    # -- producer -------------------------------------------------------------------------

    def _calls(self, rows: list[Row]) -> list[Call]:
        if self.sample is not None:
            rows = [row for row in rows if row.row_id in self.sample]
        shard = self.config.shard
        if shard is not None:
            rows = [row for row in rows if shard_of(row.row_id, shard[1]) == shard[0]]
        calls = [
            Call(row, variant, repeat)
            for row in rows
            for repeat in range(self.config.repeat)
            for variant in self.config.variants
        ]
        self.planned += len(calls)
        if len(self.done) and calls:
            keys = key_frame(
                (c.row.row_id for c in calls), (c.variant for c in calls), (c.repeat for c in calls)
            )
            mask = self.done.contains(keys)
            self.skipped += int(mask.sum())
            calls = [c for c, skip in zip(calls, mask, strict=True) if not skip]
        return calls

    async def _produce(self, batches: Iterator[list[Row]]) -> None:
        try:
            while not self.stopping.is_set():
                rows = await anyio.to_thread.run_sync(next, batches, None)
                if rows is None:
                    # Done, like a stream's sender, once no more than ``low`` calls wait.
                    self.produced_all = await self._queue.extend([])
                    return
                await self._queue.extend(self._calls(rows))
        finally:
            self._queue.close()

    # -- workers --------------------------------------------------------------------------

    async def _work(self) -> None:
        while (call := await self._queue.get()) is not None:
            if self.stopping.is_set():
                return
            outcome = await self._run_call(call)
            if outcome is None:
                continue
            try:
                self.journal.append(outcome)
            except StorageError as exc:
                self.fail(exc)
                return
            self.counters.record(outcome.status)

    async def _run_call(self, call: Call) -> Outcome | None:
        body = request_body(self.config, self.run_id, call)
        timing = _Timing(now_iso(), time.perf_counter())
        try:
            answer = await self.policy.run(
                lambda: self._attempt(body, timing),
                on_retry=self._count_retry,
                cut_short=self.stopping,  # a stopping run abandons the call at its next attempt
            )
        except _Abandoned:
            return None
        except AttemptError as error:
            return self._failed(call, error, timing)
        return self._ok_outcome(call, answer, timing)

    def _failed(self, call: Call, error: AttemptError, timing: _Timing) -> Outcome | None:
        if decide(error) is Decision.ABORT:
            self._abort(abort_message(error))
            return None
        self._watch_outcome(call, error)
        return self._error_outcome(call, error, timing)

    def _watch_outcome(self, call: Call, error: AttemptError | None) -> None:
        """Let the breaker see a call's final outcome; abort when it says the run cannot
        succeed (the outcome itself is still committed)."""
        self.breaker.outcome(call.variant, error, self.config.deployment)
        if self.breaker.abort_reason is not None:
            self._abort(self.breaker.abort_reason)

    async def _attempt(self, body: bytes, timing: _Timing) -> Answer:
        """One counted attempt. Attempts that fail while the API is unreachable wait at the
        breaker and go again without counting against ``--max-attempts``."""
        while True:
            probe = await self.breaker.admit()
            if self.stopping.is_set():
                raise _Abandoned
            timing.sent += 1
            try:
                answer = await self._send(body)
            except AttemptError as error:
                if not self.breaker.failed(error, probe):
                    raise
                if self.breaker.abort_reason is not None:
                    self._abort(self.breaker.abort_reason)
                    raise _Abandoned from error
                continue
            self.breaker.succeeded(probe)
            return answer

    async def _send(self, body: bytes) -> Answer:
        limits = self.limits
        ticket: Ticket | None = await limits.acquire() if limits is not None else None
        c = self.counters
        c.in_flight += 1
        c.attempts += 1
        if c.in_flight > c.max_in_flight:
            c.max_in_flight = c.in_flight
        throttled = ok = False
        try:
            answer = await self.client.invoke(body, stream=self.config.stream)
            ok = True
            return answer
        except AttemptError as error:
            throttled = is_throttled(error)
            raise
        finally:
            c.in_flight -= 1
            if limits is not None:
                limits.release(ticket, throttled=throttled, ok=ok)

    def _count_retry(self, _wait: float) -> None:
        self.counters.retries += 1

    def _abort(self, reason: str) -> None:
        if self.aborted is None:
            self.aborted = RunAborted(reason)
        self.cancel()

    # -- outcomes -------------------------------------------------------------------------

    def _base(self, call: Call, timing: _Timing, last: Answer | AttemptError) -> dict[str, Any]:
        """The fields every outcome has: the call's, and its last attempt's (``last``)."""
        return {
            "run_id": self.run_id,
            "row_id": call.row.row_id,
            "variant": call.variant,
            "deployment": self.config.deployment,
            "repeat": call.repeat,
            "attempts": timing.sent,
            "request_id": last.request_id,
            "http_status": last.http_status,
            "latency_ms": last.latency_ms,
            "total_ms": (time.perf_counter() - timing.t0) * 1000.0,
            "started_at": timing.started_at,
            "finished_at": now_iso(),
            "inputs": _INPUTS_JSON.encode(call.row.inputs),
            "expected": expected_text(call.row.expected),
            "metadata": _INPUTS_JSON.encode(call.row.metadata) if call.row.metadata else None,
        }

    def _ok_outcome(self, call: Call, answer: Answer, timing: _Timing) -> Outcome:
        self._watch_outcome(call, None)
        return Outcome(
            status=STATUS_OK,
            output=answer.output,
            reasoning=answer.reasoning,
            model=answer.model,
            ttft_ms=answer.ttft_ms,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            total_tokens=answer.total_tokens,
            **self._base(call, timing, answer),
        )

    def _error_outcome(self, call: Call, error: AttemptError, timing: _Timing) -> Outcome:
        return Outcome(
            status=STATUS_ERROR,
            error_type=error.error_type,
            error_message=error.message,
            **self._base(call, timing, error),
        )


def abort_message(error: AttemptError) -> str:
    """Why the run stopped early, in words a user can act on."""
    detail = f"HTTP {error.http_status}: {error.message}"
    if error.http_status == 401:
        return f"the API refused the key ({detail}); check FETCH_HIVE_API_KEY"
    if error.http_status == 402:
        return f"the plan's credit limit is reached ({detail})"
    return f"the plan's daily API limit is reached ({detail}); it resets at midnight UTC"
