"""One run session, end to end: validate, prepare ``OUT``, send, commit, compact, manifest.

Everything that can be checked is checked before the first request: the config (on
construction), the API key, the dataset (:func:`runner.inputs.open_dataset`) and the output
directory (empty, or a resume of the same dataset and config).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx

from runner.client import InvokeClient
from runner.config import RunConfig, is_loopback_url
from runner.errors import ConfigError, ResultsDirError, RunAborted, RunInterrupted
from runner.inputs import Dataset, open_dataset
from runner.pipeline import Pipeline
from runner.progress import Counters, Display
from runner.provenance import package_versions
from runner.results import (
    JOURNAL,
    MANIFEST,
    Journal,
    compact,
    read_done_keys,
    read_manifest,
    write_manifest,
)
from runner.retry import RetryPolicy

#: The key sent to a loopback server (the simulator) when no real key is set.
LOCAL_KEY = "fhk_local_simulator"

_VERSIONED = ("runner", "anyio", "httpx", "polars", "pyarrow", "tenacity")


def versions() -> dict[str, str]:
    return package_versions(_VERSIONED)


def work_fingerprint(work: dict[str, Any]) -> str:
    """A stable digest of :meth:`RunConfig.work_fields` (as stored in a manifest's ``work``)."""
    canonical = json.dumps(work, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def config_fingerprint(config: RunConfig) -> str:
    return work_fingerprint(config.work_fields())


def new_run_id() -> str:
    return f"r-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def shared_run_id(config: RunConfig, dataset_fingerprint: str) -> str:
    """The run id every shard of one run agrees on without talking to the others: a digest
    of the dataset and of the config without its shard (``--run-id`` tells apart two runs
    of the same config and data)."""
    work = {**config.work_fields(), "shard": None}
    seed = f"{dataset_fingerprint}:{work_fingerprint(work)}"
    return f"r-{hashlib.sha256(seed.encode('utf-8')).hexdigest()[:12]}"


def _choose_run_id(config: RunConfig, dataset_fingerprint: str) -> str:
    if config.run_id is not None:
        return config.run_id
    if config.shard is not None:
        return shared_run_id(config, dataset_fingerprint)
    return new_run_id()


def resolve_api_key(config: RunConfig, api_key: str | None) -> str:
    """The key to send: the given one, or a placeholder for a loopback simulator."""
    if api_key:
        return api_key
    if is_loopback_url(config.base_url):
        return LOCAL_KEY
    raise ConfigError(
        "FETCH_HIVE_API_KEY is not set. Export your Fetch Hive API key (fhk_…), "
        "or point --base-url at a local simulator (runner simulate)."
    )


@dataclass
class RunResult:
    """What a finished (complete) session reports."""

    out_dir: Path
    run_id: str
    status: str
    counts: dict[str, int]
    counters: Counters
    elapsed_s: float
    manifest: dict[str, Any] = field(repr=False)


@dataclass
class _Prepared:
    dataset: Dataset
    run_id: str
    manifest: dict[str, Any]


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [
        f"{name}: {old.get(name)!r} → {new.get(name)!r}"
        for name in sorted(set(old) | set(new))
        if old.get(name) != new.get(name)
    ]


def _shard_info(config: RunConfig) -> dict[str, int] | None:
    if config.shard is None:
        return None
    return {"index": config.shard[0], "count": config.shard[1]}


def _resuming(config: RunConfig, out: Path) -> bool:
    """Whether to continue ``out``. A shard's ``--resume`` also starts a shard that has not
    started, so one command serves a pod's first run and its restarts (an Indexed Job)."""
    if config.shard is not None and not (out / MANIFEST).exists():
        return False
    return config.resume


def prepare_out_dir(config: RunConfig, dataset: Dataset) -> _Prepared:
    """Create ``OUT`` for a new run, or check that a resume matches what is there."""
    out = config.run_dir
    fingerprint = {"dataset": dataset.fingerprint, "config": config_fingerprint(config)}
    if out.exists() and not out.is_dir():
        raise ResultsDirError(f"--out {out} exists and is not a directory")
    if not _resuming(config, out):
        if out.exists() and not _is_empty_dir(out):
            raise ResultsDirError(
                f"--out {out} is not empty. Add --resume to continue the run stored there, "
                "or choose a new --out directory; existing results are never overwritten."
            )
        out.mkdir(parents=True, exist_ok=True)
        run_id = _choose_run_id(config, dataset.fingerprint)
        manifest: dict[str, Any] = {
            "run_id": run_id,
            "status": "running",
            "created_at": datetime.now(UTC).isoformat(),
            "sessions": [],
        }
    else:
        if not (out / MANIFEST).exists():
            raise ResultsDirError(f"--resume: {out} holds no {MANIFEST}; nothing to resume")
        manifest = read_manifest(out)
        if config.shard is None and "shards" in manifest:
            raise ResultsDirError(
                f"--resume: {out} holds shards merged by `runner merge`; resume a shard with "
                "--shard I/N --resume, then merge again"
            )
        if config.run_id is not None and config.run_id != manifest.get("run_id"):
            raise ResultsDirError(
                f"--resume: {out} holds run {manifest.get('run_id')}, not --run-id {config.run_id}"
            )
        old = manifest.get("fingerprint", {})
        if old.get("dataset") != fingerprint["dataset"]:
            raise ResultsDirError(
                f"--resume: the dataset differs from the one {out} was run on "
                f"(fingerprint {old.get('dataset')} → {fingerprint['dataset']}); "
                "resume with the same files, or start a new --out"
            )
        if old.get("config") != fingerprint["config"]:
            changes = _config_diff(manifest.get("work", {}), config.work_fields())
            raise ResultsDirError(
                f"--resume: the run configuration differs from the one in {out}: "
                + "; ".join(changes or ["(details unavailable)"])
            )
        run_id = str(manifest["run_id"])
    manifest.update(
        {
            "status": "running",
            "deployment": config.deployment,
            "variants": list(config.variants),
            "config": config.to_dict(),
            "work": config.work_fields(),
            "fingerprint": fingerprint,
            "shard": _shard_info(config),
            "dataset": {
                "files": [str(f) for f in dataset.files],
                "format": dataset.format,
                "num_rows": dataset.num_rows,
                "fingerprint": dataset.fingerprint,
            },
            "dataset_fingerprint": dataset.fingerprint,
            "versions": versions(),
        }
    )
    return _Prepared(dataset, run_id, manifest)


def prepare(config: RunConfig, api_key: str | None) -> tuple[_Prepared, str]:
    """Every check that comes before the first request, in the order a user fixes them."""
    key = resolve_api_key(config, api_key)
    dataset = open_dataset(config)
    return prepare_out_dir(config, dataset), key


def run_job(
    config: RunConfig,
    *,
    api_key: str | None,
    display: Display | None = None,
    policy: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    handle_signals: bool = True,
    resume_command: str | None = None,
) -> RunResult:
    """Run (or resume) one job to the end. Raises ``RunAborted`` / ``RunInterrupted``
    after committing what finished; validation errors are raised before anything is sent."""
    prepared, key = prepare(config, api_key)
    policy = policy or RetryPolicy(
        max_attempts=config.max_attempts,
        initial=config.backoff_initial,
        cap=config.backoff_max,
        max_elapsed=config.max_elapsed,
    )
    session = _Session(config, prepared, key, display or Display(), policy, transport)
    return anyio.run(session.run, handle_signals, resume_command)


class _Session:
    def __init__(
        self,
        config: RunConfig,
        prepared: _Prepared,
        api_key: str,
        display: Display,
        policy: RetryPolicy,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self.config = config
        self.prepared = prepared
        self.api_key = api_key
        self.display = display
        self.policy = policy
        self.transport = transport
        self.interrupted = False

    async def run(self, handle_signals: bool, resume_command: str | None) -> RunResult:
        config, manifest = self.config, self.prepared.manifest
        out = config.run_dir
        started = time.monotonic()
        session_info: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat()}
        manifest["sessions"].append(session_info)
        if resume_command:
            manifest["resume_command"] = resume_command
        write_manifest(out, manifest)

        done = read_done_keys(out, retry_errors=config.retry_errors)
        journal = Journal(out / JOURNAL)
        per_call = config.repeat * len(config.variants)
        rows = self.prepared.dataset.num_rows
        if config.shard is not None:
            rows = -(-rows // config.shard[1])  # an estimate until the producer has counted
        counters = Counters(total=max(0, rows * per_call - len(done)))
        counters.concurrency = config.concurrency
        aborted: RunAborted | None = None
        async with InvokeClient(
            config.base_url,
            self.api_key,
            timeout=config.timeout,
            max_connections=config.concurrency,
            transport=self.transport,
        ) as client:
            pipeline = Pipeline(
                config, self.prepared.run_id, client, journal, done, counters, self.policy
            )
            self.display.start(counters)
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._tick, journal)
                    if handle_signals:
                        tg.start_soon(self._watch_signals, pipeline, tg)
                    try:
                        await pipeline.run(self.prepared.dataset.iter_batches())
                    except RunAborted as exc:
                        aborted = exc
                    tg.cancel_scope.cancel()
            finally:
                self.display.stop()
                journal.close()

        counts = compact(out, config.variants)
        finished = sum(counts.values())
        complete = pipeline.produced_all and finished >= pipeline.planned
        status = "aborted" if aborted else "complete" if complete else "interrupted"
        session_info.update(
            finished_at=datetime.now(UTC).isoformat(),
            status=status,
            attempts=counters.attempts,
            retries=counters.retries,
            outcomes=counters.done,
            max_in_flight=counters.max_in_flight,
            concurrency={"live": counters.concurrency, "min": counters.min_concurrency},
        )
        manifest.update(
            status=status,
            counts={"ok": counts.get("ok", 0), "error": counts.get("error", 0)},
            planned=pipeline.planned if pipeline.produced_all else None,
            finished_at=datetime.now(UTC).isoformat(),
        )
        write_manifest(out, manifest)
        if aborted is not None:
            raise aborted
        if status == "interrupted":
            hint = f" Resume with: {resume_command}" if resume_command else ""
            raise RunInterrupted(f"interrupted; {finished} outcomes are committed in {out}.{hint}")
        return RunResult(
            out, self.prepared.run_id, status, counts, counters, time.monotonic() - started,
            manifest,
        )  # fmt: skip

    async def _tick(self, journal: Journal) -> None:
        last_sync = time.monotonic()
        while True:
            await anyio.sleep(0.5)
            self.display.tick()
            if time.monotonic() - last_sync >= 2.0:
                last_sync = time.monotonic()
                await anyio.to_thread.run_sync(journal.sync)

    async def _watch_signals(self, pipeline: Pipeline, tg: anyio.abc.TaskGroup) -> None:
        grace = self.config.grace_period
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if self.interrupted:
                    print("second interrupt: quitting now", file=sys.stderr, flush=True)
                    os._exit(130)
                self.interrupted = True
                print(
                    f"\nstopping: no new requests; waiting up to {grace:g} s for those in "
                    "flight (interrupt again to quit at once)",
                    file=sys.stderr,
                    flush=True,
                )
                pipeline.stop()
                tg.start_soon(self._cancel_after, pipeline, grace)

    @staticmethod
    async def _cancel_after(pipeline: Pipeline, grace: float) -> None:
        await anyio.sleep(grace)
        pipeline.cancel()
