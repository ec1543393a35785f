"""The run directory: every path under OUT, the manifest and the lock, the journal and its
compaction into results.parquet, the scored results as they are read, atomic writes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.store._buckets import (
        MISSING,
        BucketWriters,
        OutcomeJoin,
        SortedBucket,
        bucket_count,
        bucket_of,
        count_missing,
        join_outcomes,
    )
    from runner.store._compaction import compact
    from runner.store._finishing import FINISHING, finish_deferred
    from runner.store._fsutil import (
        atomic_path,
        atomic_write_parquet,
        atomic_write_text,
        current_umask,
        describe_os_error,
        fsync_dir,
        remove_stale_temps,
    )
    from runner.store._identity import (
        choose_run_id,
        config_changes,
        config_fingerprint,
        shard_of,
        versions,
        work_fingerprint,
    )
    from runner.store._journal import (
        DoneKeys,
        Journal,
        journal_fragment,
        key_frame,
        read_done_keys,
    )
    from runner.store._lock import RunLock
    from runner.store._manifest import (
        RESULT_STAGES,
        Fingerprint,
        Manifest,
        RunStatus,
        SessionRecord,
        now_iso,
    )
    from runner.store._memory import DEFAULT_MEMORY, MemoryPlan
    from runner.store._provenance import (
        PROVENANCE_KEY,
        Provenance,
        package_versions,
        read_provenance,
        with_provenance,
    )
    from runner.store._recovery import recover_journal
    from runner.store._results import iter_scored_batches, read_results, scan_scored
    from runner.store._rundir import (
        JUDGE_KEY,
        SCORER_KEY,
        SHARDS_DIR,
        RunDir,
        judge_pass_calls,
        shard_dir_name,
        under_lock,
    )

# Names load on first use: the door costs nothing until a name is taken through it.
_EXPORTS = {
    "JUDGE_KEY": "runner.store._rundir",
    "SCORER_KEY": "runner.store._rundir",
    "BucketWriters": "runner.store._buckets",
    "DEFAULT_MEMORY": "runner.store._memory",
    "DoneKeys": "runner.store._journal",
    "FINISHING": "runner.store._finishing",
    "Fingerprint": "runner.store._manifest",
    "Journal": "runner.store._journal",
    "MISSING": "runner.store._buckets",
    "Manifest": "runner.store._manifest",
    "RESULT_STAGES": "runner.store._manifest",
    "MemoryPlan": "runner.store._memory",
    "OutcomeJoin": "runner.store._buckets",
    "RunDir": "runner.store._rundir",
    "RunLock": "runner.store._lock",
    "RunStatus": "runner.store._manifest",
    "SHARDS_DIR": "runner.store._rundir",
    "SessionRecord": "runner.store._manifest",
    "SortedBucket": "runner.store._buckets",
    "atomic_path": "runner.store._fsutil",
    "atomic_write_parquet": "runner.store._fsutil",
    "atomic_write_text": "runner.store._fsutil",
    "bucket_count": "runner.store._buckets",
    "bucket_of": "runner.store._buckets",
    "choose_run_id": "runner.store._identity",
    "compact": "runner.store._compaction",
    "config_changes": "runner.store._identity",
    "config_fingerprint": "runner.store._identity",
    "count_missing": "runner.store._buckets",
    "current_umask": "runner.store._fsutil",
    "describe_os_error": "runner.store._fsutil",
    "finish_deferred": "runner.store._finishing",
    "fsync_dir": "runner.store._fsutil",
    "iter_scored_batches": "runner.store._results",
    "join_outcomes": "runner.store._buckets",
    "judge_pass_calls": "runner.store._rundir",
    "journal_fragment": "runner.store._journal",
    "key_frame": "runner.store._journal",
    "now_iso": "runner.store._manifest",
    "package_versions": "runner.store._provenance",
    "PROVENANCE_KEY": "runner.store._provenance",
    "Provenance": "runner.store._provenance",
    "read_provenance": "runner.store._provenance",
    "with_provenance": "runner.store._provenance",
    "read_done_keys": "runner.store._journal",
    "read_results": "runner.store._results",
    "recover_journal": "runner.store._recovery",
    "remove_stale_temps": "runner.store._fsutil",
    "scan_scored": "runner.store._results",
    "shard_dir_name": "runner.store._rundir",
    "shard_of": "runner.store._identity",
    "under_lock": "runner.store._rundir",
    "versions": "runner.store._identity",
    "work_fingerprint": "runner.store._identity",
}


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else
    from runner import door_getattr

    __getattr__ = door_getattr(__name__, _EXPORTS)


__all__ = [
    "DEFAULT_MEMORY",
    "FINISHING",
    "JUDGE_KEY",
    "MISSING",
    "PROVENANCE_KEY",
    "RESULT_STAGES",
    "SCORER_KEY",
    "SHARDS_DIR",
    "BucketWriters",
    "DoneKeys",
    "Fingerprint",
    "Journal",
    "Manifest",
    "MemoryPlan",
    "OutcomeJoin",
    "Provenance",
    "RunDir",
    "RunLock",
    "RunStatus",
    "SessionRecord",
    "SortedBucket",
    "atomic_path",
    "atomic_write_parquet",
    "atomic_write_text",
    "bucket_count",
    "bucket_of",
    "choose_run_id",
    "compact",
    "config_changes",
    "config_fingerprint",
    "count_missing",
    "current_umask",
    "describe_os_error",
    "finish_deferred",
    "fsync_dir",
    "iter_scored_batches",
    "join_outcomes",
    "journal_fragment",
    "judge_pass_calls",
    "key_frame",
    "now_iso",
    "package_versions",
    "read_done_keys",
    "read_provenance",
    "read_results",
    "recover_journal",
    "remove_stale_temps",
    "scan_scored",
    "shard_dir_name",
    "shard_of",
    "under_lock",
    "versions",
    "with_provenance",
    "work_fingerprint",
]
