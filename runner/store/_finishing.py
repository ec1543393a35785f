"""The end of a large run, apart from its sending: a session that sent every call of a large
run leaves the journal uncompacted and the manifest ``running`` (reason :data:`FINISHING`);
:func:`finish_deferred`, in a fresh process, compacts it and says whether the run is complete.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from runner.errors import RunInterrupted
from runner.store._compaction import compact
from runner.store._manifest import RunStatus, now_iso
from runner.store._rundir import RunDir

#: The manifest's reason while a complete session's journal waits for :func:`finish_deferred`.
FINISHING: Final = "every call has an outcome; compacting the journal"


def finish_deferred(out_dir: Path, say: Callable[[str], None] | None = None) -> bool:
    """Complete a run whose last session sent everything and left compaction to this (see
    :attr:`RunOptions.defer_from`): compact the journal under the run's lock and mark the
    manifest ``complete``. False, doing nothing, for a run that is not waiting for it.
    ``say`` hears one line before the compaction starts (it takes seconds at a million rows)."""
    rundir = RunDir(out_dir)
    with rundir.locked():
        manifest = rundir.read_manifest()
        if manifest.status is not RunStatus.RUNNING or manifest.reason != FINISHING:
            return False
        if say is not None:
            say(f"finishing: compacting the journal into {rundir.results}")
        counts = compact(rundir.root, tuple(manifest.variants))
        finished = sum(counts.values())
        manifest.counts = {"ok": counts.get("ok", 0), "error": counts.get("error", 0)}
        manifest.finished_at = now_iso()
        if manifest.planned is not None and finished >= manifest.planned:
            manifest.status, manifest.reason = RunStatus.COMPLETE, None
            manifest.stages["compact"] = "done"
        else:  # the journal disagrees with the session that wrote it: say so, never "complete"
            manifest.status = RunStatus.INTERRUPTED
            manifest.reason = f"the journal holds {finished} of {manifest.planned} outcomes"
        rundir.write_manifest(manifest)
    if manifest.status is RunStatus.INTERRUPTED:
        hint = f" Resume with: {manifest.resume_command}" if manifest.resume_command else ""
        raise RunInterrupted(f"interrupted: {manifest.reason}, in {rundir.root}.{hint}")
    return True
