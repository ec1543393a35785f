"""What names a run and splits it: run ids, config fingerprints, shard assignment, versions.

Pure functions shared by the job, the merge and the Ray executor (none of which needs the
others to compute them).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any, Final

from runner.config import RunConfig
from runner.store._provenance import package_versions

#: The packages whose versions every manifest records.
RUN_PACKAGES: Final = ("runner", "anyio", "httpx", "polars", "pyarrow", "aiohttp")


def versions() -> dict[str, str]:
    return package_versions(RUN_PACKAGES)


def work_fingerprint(work: dict[str, Any]) -> str:
    """A stable digest of :meth:`RunConfig.work_fields` (as stored in a manifest's ``work``)."""
    canonical = json.dumps(work, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def config_fingerprint(config: RunConfig) -> str:
    return work_fingerprint(config.work_fields())


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``name: old → new`` for every field that differs between two ``work`` dicts."""
    return [
        f"{name}: {old.get(name)!r} → {new.get(name)!r}"
        for name in sorted(set(old) | set(new))
        if old.get(name) != new.get(name)
    ]


def new_run_id() -> str:
    return f"r-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def shared_run_id(config: RunConfig, dataset_fingerprint: str) -> str:
    """The run id every shard of one run agrees on without talking to the others: a digest
    of the dataset and of the config without its shard (``--run-id`` tells apart two runs
    of the same config and data)."""
    work = {**config.work_fields(), "shard": None}
    seed = f"{dataset_fingerprint}:{work_fingerprint(work)}"
    return f"r-{hashlib.sha256(seed.encode('utf-8')).hexdigest()[:12]}"


def choose_run_id(config: RunConfig, dataset_fingerprint: str) -> str:
    if config.run_id is not None:
        return config.run_id
    if config.shard is not None:
        return shared_run_id(config, dataset_fingerprint)
    return new_run_id()


def shard_of(row_id: str, count: int) -> int:
    """The shard a row belongs to: blake2b of its id, the same on every machine and Python."""
    digest = hashlib.blake2b(row_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count
