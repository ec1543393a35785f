"""Every check that comes before the first request, and what a run would send.

In the order a user fixes things: the config (checked on construction), the API key
(:func:`resolve_api_key`), the dataset (:func:`runner.dataset._dataset.open_dataset`), then the
output
directory (:func:`refuse_early`, and under its lock :func:`prepare_manifest`: empty, or a
resume of the same dataset and config). :func:`plan_run` makes the same checks without
creating, locking or sending anything: ``runner run --dry-run``.
"""

from __future__ import annotations

import hashlib
import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np

from runner.config import RunConfig, is_loopback_url
from runner.dataset import Dataset, dataset_changes, open_dataset
from runner.errors import ConfigError, ResultsDirError
from runner.store import (
    DoneKeys,
    Fingerprint,
    Manifest,
    RunDir,
    choose_run_id,
    config_changes,
    config_fingerprint,
    key_frame,
    read_done_keys,
    shard_of,
    versions,
)

#: The key sent to a loopback server (the simulator) when no real key is set.
LOCAL_KEY: Final = "fhk_local_simulator"

#: What may stand in an HTTP header value: visible ASCII, no spaces or control characters.
_HEADER_SAFE: Final = re.compile(r"[\x21-\x7e]+")


def resolve_api_key(config: RunConfig, api_key: str | None) -> str:
    """The key to send: the given one without surrounding whitespace (a secret made from a
    file ends in a newline), or a placeholder for a loopback simulator."""
    key = (api_key or "").strip()
    if key:
        if not _HEADER_SAFE.fullmatch(key):
            raise ConfigError(
                "FETCH_HIVE_API_KEY holds a character that cannot be sent in an HTTP header "
                "(a space or a control character inside it); check how the secret was made"
            )
        return key
    if is_loopback_url(config.base_url):
        return LOCAL_KEY
    raise ConfigError(
        "FETCH_HIVE_API_KEY is not set. Export your Fetch Hive API key (fhk_…), "
        "or point --base-url at a local simulator (runner simulate)."
    )


def is_resuming(config: RunConfig, rundir: RunDir) -> bool:
    """Whether to continue ``rundir``. A shard's ``--resume`` also starts a shard that has not
    started, so one command serves a pod's first run and its restarts (an Indexed Job)."""
    if config.shard is not None and not rundir.has_manifest():
        return False
    return config.resume


def refuse_early(config: RunConfig, rundir: RunDir) -> None:
    """Refuse a directory that is plainly wrong before creating or locking anything in it."""
    out = rundir.root
    if out.exists() and not out.is_dir():
        raise ResultsDirError(f"--out {out} exists and is not a directory")
    if not is_resuming(config, rundir) and out.exists() and not rundir.is_empty():
        raise ResultsDirError(
            f"--out {out} is not empty. Add --resume to continue the run stored there, "
            "or choose a new --out directory; existing results are never overwritten."
        )
    if is_resuming(config, rundir) and not rundir.has_manifest():
        raise ResultsDirError(f"--resume: {out} holds no manifest.json; nothing to resume")


def prepare_manifest(config: RunConfig, dataset: Dataset, rundir: RunDir) -> Manifest:
    """Under the lock: the manifest of a new run, or the checked one of a resumed run."""
    refuse_early(config, rundir)  # again, now that no other process can change it
    fingerprint = fingerprint_of(config, dataset)
    if is_resuming(config, rundir):
        manifest = rundir.read_manifest()
        check_resume(config, rundir, manifest, fingerprint)
    else:
        manifest = Manifest(run_id=choose_run_id(config, dataset.fingerprint))
    manifest.config = config.to_dict()
    manifest.work = config.work_fields()
    manifest.fingerprint = fingerprint
    if config.shard is not None:
        manifest.shard = {"index": config.shard[0], "count": config.shard[1]}
    manifest.dataset = {
        "files": [str(f) for f in dataset.files],
        "format": dataset.format,
        "num_rows": dataset.num_rows,
    }
    manifest.versions = versions()
    return manifest


def check_resume(
    config: RunConfig, rundir: RunDir, manifest: Manifest, fingerprint: Fingerprint
) -> None:
    out = rundir.root
    if config.shard is None and manifest.shards is not None:
        raise ResultsDirError(
            f"--resume: {out} holds shards merged by `runner merge`; resume a shard with "
            "--shard I/N --resume, then merge again"
        )
    if config.run_id is not None and config.run_id != manifest.run_id:
        raise ResultsDirError(
            f"--resume: {out} holds run {manifest.run_id}, not --run-id {config.run_id}"
        )
    old = manifest.fingerprint
    if old.dataset != fingerprint.dataset:
        changes = dataset_changes(old.files, fingerprint.files) if old.files else []
        detail = "; ".join(changes) or f"fingerprint {old.dataset} → {fingerprint.dataset}"
        raise ResultsDirError(
            f"--resume: the dataset differs from the one {out} was run on ({detail}); "
            "resume with the same files, or start a new --out"
        )
    if old.config != fingerprint.config:
        changes = config_changes(manifest.work, config.work_fields())
        raise ResultsDirError(
            f"--resume: the run configuration differs from the one in {out}: "
            + "; ".join(changes or ["(details unavailable)"])
        )


def check_segments(config: RunConfig, dataset: Dataset) -> None:
    """Each ``--segment-column`` must be an input or a metadata column: found out before the
    first request, not when the reports are built after every call was paid for."""
    known = (*dataset.input_columns, *dataset.metadata_columns)
    unknown = [c for c in config.segment_columns if c not in known]
    if unknown:
        raise ConfigError(
            f"--segment-column {', '.join(map(repr, unknown))} is not an input or metadata "
            f"column of the dataset (inputs: {', '.join(dataset.input_columns) or 'none'}; "
            f"metadata: {', '.join(dataset.metadata_columns) or 'none'})"
        )


def fingerprint_of(config: RunConfig, dataset: Dataset) -> Fingerprint:
    """What a resume must match: the dataset (whole and per file) and the work config."""
    return Fingerprint(
        dataset=dataset.fingerprint,
        config=config_fingerprint(config),
        files=dict(dataset.file_fingerprints),
    )


# ------------------------------------------------------------------------------- the sample


def sample_rank(seed: int, row_id: str) -> int:
    """A row's place in the random order of ``--seed``: blake2b, the same on every machine."""
    digest = hashlib.blake2b(f"{seed}:{row_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def choose_sample(row_ids: Iterable[str], size: int, seed: int) -> frozenset[str]:
    """The ``size`` rows first in the random order of ``seed``: a reproducible sample that
    every shard, every resume and every machine agrees on, without talking to the others."""
    return frozenset(heapq.nsmallest(size, row_ids, key=lambda r: sample_rank(seed, r)))


def sample_of(config: RunConfig, dataset: Dataset) -> frozenset[str] | None:
    """The rows of ``--sample N --seed S`` (one pass over the row ids), or None for all rows."""
    if config.sample is None:
        return None
    ids = (row.row_id for batch in dataset.iter_batches() for row in batch)
    return choose_sample(ids, config.sample, config.seed)


# ------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """What ``runner run`` would do with this config: ``runner run --dry-run``."""

    rows: int
    variants: int
    repeat: int
    calls: int
    """Calls the selected rows ask for (rows × variants × repeats)."""
    done: int
    """Of those, calls that already have an outcome in ``--out`` (a resume)."""

    @property
    def to_send(self) -> int:
        return self.calls - self.done

    def describe(self, out: str) -> str:
        resume = f"; {self.done} already have an outcome in {out}" if self.done else ""
        return (
            f"dry run: {self.rows} rows × {self.variants} variant(s) × {self.repeat} repeat(s) "
            f"= {self.calls} calls{resume}; {self.to_send} would be sent. Nothing was sent or "
            "written."
        )


def plan_run(config: RunConfig, api_key: str | None) -> Plan:
    """Every check a run makes, then count what it would send; create, lock, send nothing."""
    resolve_api_key(config, api_key)
    dataset = open_dataset(config)
    check_segments(config, dataset)
    rundir = RunDir.of(config)
    refuse_early(config, rundir)
    done = DoneKeys(np.empty(0, dtype=np.uint64))
    if is_resuming(config, rundir):
        check_resume(config, rundir, rundir.read_manifest(), fingerprint_of(config, dataset))
        done = read_done_keys(rundir.root, retry_errors=config.retry_errors)
    sample = sample_of(config, dataset)
    rows = calls = finished = 0
    per_row = [(variant, repeat) for repeat in range(config.repeat) for variant in config.variants]
    for batch in dataset.iter_batches():
        ids = [r.row_id for r in batch if keeps(config, sample, r.row_id)]
        rows += len(ids)
        calls += len(ids) * len(per_row)
        if len(done) and ids:
            keys = key_frame(
                (i for i in ids for _ in per_row),
                (v for _ in ids for v, _r in per_row),
                (r for _ in ids for _v, r in per_row),
            )
            finished += int(done.contains(keys).sum())
    return Plan(rows, len(config.variants), config.repeat, calls, finished)


def keeps(config: RunConfig, sample: frozenset[str] | None, row_id: str) -> bool:
    """Whether this session sends the row: in the sample (if any) and in its shard (if any)."""
    if sample is not None and row_id not in sample:
        return False
    return config.shard is None or shard_of(row_id, config.shard[1]) == config.shard[0]
