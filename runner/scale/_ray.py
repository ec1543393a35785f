"""``runner run --executor ray``: the same job as shards that run as Ray tasks.

The driver splits the run into K shards (``--ray-tasks``) and submits one Ray task per shard.
A task is the single-process runner, :func:`runner.run._job.run_job` with ``shard=(i, K)`` and a
K-th of the concurrency and rate limit: it reads the dataset, keeps the rows that hash to its
shard, runs the async pipeline in an event loop of its own (a plain task may block on
``anyio.run``; it needs no async actor) and commits to its own shard directory through the
same journal as a local run. The driver follows the shard journals for whole-job progress and
merges the shards at the end (:func:`runner.scale._merge.merge_shards`). A re-run with ``--resume``
resumes each shard; Ray retrying a task whose worker died does the same.

Every path must mean the same file on every Ray node: one machine, or a shared file system.
Ray is imported only here, and only when this executor is chosen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from runner.config import RunConfig, api_key_from_env
from runner.dataset import open_dataset
from runner.errors import (
    ConfigError,
    ResultsDirError,
    RunAborted,
    RunInterrupted,
    RunnerError,
    ShardsError,
    UsageError,
)
from runner.records import STATUS_OK
from runner.run import Counters, Display, RunResult, resolve_api_key, run_job
from runner.scale._merge import merge_shards
from runner.scale._shards import find_shard_dirs
from runner.store import RunDir, RunStatus, journal_fragment

INSTALL_HINT: Final = "--executor ray needs Ray: pip install 'runner[ray]'"

#: A shard waits on the network nearly all the time: a quarter of a CPU each lets four run
#: per core, so a small machine runs every task at once instead of queueing them.
TASK_CPUS: Final = 0.25

#: Ray retries a task whose worker process died; the retry resumes the shard's journal.
TASK_RETRIES: Final = 3

_POLL_S: Final = 0.5


@dataclass(frozen=True, slots=True)
class RayOptions:
    """Where and how wide to run on Ray."""

    address: str | None = None
    """Cluster address; ``None`` lets Ray decide ($RAY_ADDRESS, a ``ray start`` one, or new)."""
    tasks: int = 4
    """Shards, one Ray task each; on ``--resume`` the split already in OUT is kept."""
    task_cpus: float = TASK_CPUS
    """CPUs Ray reserves for each task."""

    def __post_init__(self) -> None:
        if self.tasks < 1:
            raise ConfigError(f"--ray-tasks must be at least 1, got {self.tasks}")
        if self.task_cpus <= 0:
            raise ConfigError(f"Ray task CPUs must be positive, got {self.task_cpus}")


def import_ray() -> ModuleType:
    """The ``ray`` module, or a ConfigError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(INSTALL_HINT) from exc
    return ray


def shard_configs(config: RunConfig, tasks: int) -> list[RunConfig]:
    """One config per shard with its share of the limits, paths made absolute for workers."""
    concurrency = -(-config.concurrency // tasks)
    rps = config.rps / tasks if config.rps is not None else None
    dataset = tuple(str(Path(spec).absolute()) for spec in config.dataset)
    return [
        replace(
            config,
            dataset=dataset,
            out_dir=config.out_dir.absolute(),
            shard=(index, tasks),
            concurrency=concurrency,
            rps=rps,
        )
        for index in range(tasks)
    ]


def run_shard(values: dict[str, Any]) -> dict[str, Any]:
    """The body of one Ray task: run or resume one shard to the end; errors come back as data.

    A shard's ``resume`` starts it when it has not started, so Ray's retry of a task whose
    worker died continues what the first attempt committed. The API key comes from the worker's
    own ``FETCH_HIVE_API_KEY`` (a local Ray instance inherits the driver's environment; give a
    cluster's nodes the secret): it is never a task argument, which Ray keeps in its metadata.
    """
    config = replace(RunConfig.from_mapping(values), resume=True)
    index = config.shard[0] if config.shard else 0
    try:
        result = run_job(config, api_key=api_key_from_env())
    except RunnerError as exc:
        return {"index": index, "status": "failed", "error": exc}
    return {"index": index, "status": result.status, "counts": result.counts}


def run_on_ray(
    config: RunConfig,
    *,
    api_key: str | None,
    options: RayOptions | None = None,
    display: Display | None = None,
    resume_command: str | None = None,
) -> RunResult:
    """Run (or resume) ``config`` as Ray tasks, one per shard, then merge the shards."""
    options = options or RayOptions()
    if config.shard is not None:
        raise ConfigError("--executor ray splits the run itself; drop --shard")
    ray = import_ray()
    dataset = open_dataset(config)  # bad input fails here, before a Ray cluster starts
    resolve_api_key(config, api_key)
    configs = shard_configs(config, _task_count(config, options.tasks))
    total = dataset.num_rows * len(config.variants) * config.repeat
    started = time.monotonic()
    owns_ray = _connect(ray, options.address)
    try:
        task = ray.remote(max_retries=TASK_RETRIES)(run_shard)
        refs = [task.options(num_cpus=options.task_cpus).remote(c.to_dict()) for c in configs]
        counters = _follow(ray, refs, configs, total, display or Display(), resume_command)
        outcomes = [_outcome(ray, ref, i) for i, ref in enumerate(refs)]
    finally:
        if owns_ray:
            ray.shutdown()
    _raise_failures(outcomes, resume_command)
    report = merge_shards(config.out_dir)
    return RunResult(
        config.out_dir, report.run_id, RunStatus.COMPLETE, report.counts, counters,
        time.monotonic() - started, report.manifest,
    )  # fmt: skip


def _task_count(config: RunConfig, requested: int) -> int:
    """K for a new run (OUT must be empty), or the split a resumed run already has."""
    out = config.out_dir
    splits = sorted({count for _, count in find_shard_dirs(out)})
    if not config.resume:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ResultsDirError(
                f"--out {out} is not empty. Add --resume to continue the run stored there, "
                "or choose a new --out directory; existing results are never overwritten."
            )
        return requested
    if len(splits) != 1:
        found = "no shards" if not splits else f"splits into {splits} shards"
        raise ResultsDirError(f"--resume: {out} holds {found}; nothing to resume with Ray")
    return splits[0]


def _connect(ray: ModuleType, address: str | None) -> bool:
    """Join the running Ray, or ``ray.init`` the way Ray users expect; True if we started it."""
    if ray.is_initialized():
        return False
    ray.init(address=address, logging_level=logging.WARNING)
    return True


def _follow(
    ray: ModuleType,
    refs: Sequence[Any],
    configs: Sequence[RunConfig],
    total: int,
    display: Display,
    resume_command: str | None,
) -> Counters:
    """Show whole-job progress, read from the shard journals, until every task has ended."""
    progress = JournalProgress([RunDir.of(c).journal for c in configs])
    counters = Counters(total=max(0, total - progress.baseline()))
    counters.concurrency = sum(c.concurrency for c in configs)
    display.start(counters)
    pending = list(refs)
    try:
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=_POLL_S)
            progress.update(counters)
            display.tick()
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref)
        hint = f" Resume with: {resume_command}" if resume_command else ""
        message = f"interrupted; finished calls are committed in the shards.{hint}"
        raise RunInterrupted(message) from None
    finally:
        display.stop()
    return counters


def _outcome(ray: ModuleType, ref: Any, index: int) -> dict[str, Any]:
    """A task's result; a task that Ray itself lost (worker died past its retries) as data."""
    try:
        outcome: dict[str, Any] = ray.get(ref)
    except ray.exceptions.RayError as exc:
        # A task's traceback ends with the error itself; a lost worker's message is one line.
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        error = ShardsError(f"shard {index} failed on Ray: {lines[-1]}")
        return {"index": index, "status": "failed", "error": error}
    return outcome


def _raise_failures(outcomes: list[dict[str, Any]], resume_command: str | None) -> None:
    """Raise the most telling error of the shards that did not complete, if any."""
    errors = [o["error"] for o in outcomes if o["status"] == "failed"]
    for kind in (RunAborted, UsageError, RunInterrupted):
        for error in errors:
            if isinstance(error, kind):
                raise error
    if errors:
        raise errors[0]
    unfinished = [str(o["index"]) for o in outcomes if o["status"] != "complete"]
    if unfinished:
        hint = f" Resume with: {resume_command}" if resume_command else ""
        raise RunInterrupted(f"shard(s) {', '.join(unfinished)} did not complete.{hint}")


class JournalProgress:
    """Counts outcomes as they land in the shard journals: new complete lines since the last
    look, and those whose status is ok, without parsing a line of JSON."""

    #: How a journal line says ``"status": "ok"``: spelled by the journal's own encoder.
    _OK: Final = journal_fragment("status", STATUS_OK)

    def __init__(self, paths: Sequence[Path]) -> None:
        self._offsets = dict.fromkeys(paths, 0)

    def baseline(self) -> int:
        """Lines already there (a resumed run): read and forgotten, so progress counts anew."""
        return sum(self._read(path)[0] for path in self._offsets)

    def update(self, counters: Counters) -> None:
        for path in self._offsets:
            lines, ok = self._read(path)
            counters.done += lines
            counters.ok += ok
            counters.errors += lines - ok

    def _read(self, path: Path) -> tuple[int, int]:
        """(complete new lines, ok among them); a torn last line is read next time."""
        try:
            with open(path, "rb") as fh:
                fh.seek(self._offsets[path])
                chunk = fh.read()
        except FileNotFoundError:
            return 0, 0
        end = chunk.rfind(b"\n") + 1
        self._offsets[path] += end
        return chunk.count(b"\n", 0, end), chunk.count(self._OK, 0, end)
