"""``OUT/manifest.json``: the run's typed manifest (:class:`Manifest`), its status and the
record of each session that worked on it (:class:`SessionRecord`).

Read and written through :class:`runner.store._rundir.RunDir`; :func:`read_manifest_json` is the
plain JSON, for tools and tests.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from runner.errors import ResultsDirError

MANIFEST: Final = "manifest.json"


class RunStatus(enum.StrEnum):
    """Where a run stands; ``complete`` is the only status a gate accepts by default."""

    RUNNING = "running"
    """A session is working on it now, or died without a word (kill -9, power loss)."""
    COMPLETE = "complete"
    """Every planned call has an outcome (ok or error)."""
    INTERRUPTED = "interrupted"
    """Stopped by a signal or a local error before the end; resumable."""
    ABORTED = "aborted"
    """The API refused the run (key, credit, daily cap, not found, unreachable); resumable."""


#: The stages after sending that make a run's results whole: compaction and the judges. A run
#: killed in one of them is not exported or gated (its scores would be missing, unsaid).
RESULT_STAGES: Final = ("compact", "judge")


def now_iso() -> str:
    """Now, in UTC, as ISO 8601: the one clock of manifests, journals and locks."""
    return datetime.now(UTC).isoformat()


@dataclass
class Fingerprint:
    """What a resume must match: the dataset (whole and per file) and the work config."""

    dataset: str | None = None
    config: str | None = None
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class SessionRecord:
    """One process's turn at a run (a first run or a resume)."""

    started_at: str
    finished_at: str | None = None
    status: RunStatus | None = None
    reason: str | None = None
    attempts: int = 0
    retries: int = 0
    outcomes: int = 0
    max_in_flight: int = 0
    concurrency: dict[str, int] = field(default_factory=dict)
    host: str | None = None
    pid: int | None = None
    shard: int | None = None
    """In a merged run's manifest: the shard this session ran."""


@dataclass
class Manifest:
    """``manifest.json``: the run's identity, configuration, progress and provenance."""

    run_id: str
    status: RunStatus = RunStatus.RUNNING
    created_at: str = field(default_factory=now_iso)
    config: dict[str, Any] = field(default_factory=dict)
    """The run's configuration (``RunConfig.to_dict()``; it holds no secret)."""
    work: dict[str, Any] = field(default_factory=dict)
    """The fingerprinted part of the configuration (``RunConfig.work_fields()``)."""
    fingerprint: Fingerprint = field(default_factory=Fingerprint)
    dataset: dict[str, Any] = field(default_factory=dict)
    """Files, format and number of rows of the dataset."""
    shard: dict[str, int] | None = None
    sessions: list[SessionRecord] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    """Outcomes by status, ``{"ok": n, "error": m}``, as of the last session's end."""
    planned: int | None = None
    """Calls the dataset asks for (known once every row was read)."""
    finished_at: str | None = None
    reason: str | None = None
    """Why the last session stopped early, in words (abort or local error)."""
    resume_command: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    shards: list[dict[str, Any]] | None = None
    """In a merged run: one entry per shard."""
    merged_at: str | None = None
    stage: str | None = None
    """The experiment's stage reached (``runner.experiment.Stage``): ``send``, ``compact``,
    ``judge``, ``export``, ``report``, ``gate``, ``done``. A resume continues from it."""
    stages: dict[str, str] = field(default_factory=dict)
    """Each stage's outcome by name: ``done``, ``interrupted``, ``failed``, ``skipped``, and
    ``running`` while it runs (still so after a ``kill -9``)."""
    gate: dict[str, Any] | None = None
    """The run's own gate verdict, once its gates ran: ``{"verdict": "pass" | "fail" |
    "none" | "no-baseline" | "over-budget", "baseline": path or None, "accepted": bool}``.
    A nightly folder's baseline pick skips runs whose verdict is ``fail`` or ``over-budget``
    unless ``accepted`` (``runner baseline accept``)."""

    @property
    def variants(self) -> list[str]:
        return [str(v) for v in self.config.get("variants") or self.work.get("variants") or []]

    @property
    def sending_done(self) -> bool:
        """Whether every call of the run has an outcome (a run made before stages were
        recorded says so by its status)."""
        return self.stages.get("send") == "done" or (
            not self.stages and self.status is RunStatus.COMPLETE
        )

    def unfinished_stage(self, among: Collection[str] | None = None) -> str | None:
        """A stage left ``running`` (of ``among``, when given): the run was killed in it. Its
        status stays ``complete`` once sending is done, so only the stages tell."""
        return next(
            (
                name
                for name, outcome in self.stages.items()
                if outcome == "running" and (among is None or name in among)
            ),
            None,
        )

    @property
    def deployment(self) -> str | None:
        value = self.config.get("deployment") or self.work.get("deployment")
        return None if value is None else str(value)

    def to_json(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(dataclasses.asdict(self))
        return plain

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: Path) -> Manifest:
        """Read a manifest written by this or an earlier version; unknown keys are ignored."""
        try:
            values = {k: data[k] for k in _FIELDS if k in data}
            values["status"] = RunStatus(data.get("status", RunStatus.RUNNING))
            fp = data.get("fingerprint") or {}
            values["fingerprint"] = Fingerprint(
                dataset=fp.get("dataset") or data.get("dataset_fingerprint"),
                config=fp.get("config"),
                files=dict(fp.get("files") or {}),
            )
            values["sessions"] = [_session(s) for s in data.get("sessions") or []]
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultsDirError(f"{where} is not a runner manifest: {exc}") from exc


_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(Manifest))
_SESSION_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(SessionRecord))


def _session(data: Mapping[str, Any]) -> SessionRecord:
    values = {k: v for k, v in data.items() if k in _SESSION_FIELDS}
    if values.get("status") is not None:
        values["status"] = RunStatus(values["status"])
    return SessionRecord(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def read_manifest_json(out_dir: Path) -> dict[str, Any]:
    """``OUT/manifest.json`` as plain JSON (for tools and tests; code uses :class:`RunDir`)."""
    path = Path(out_dir) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ResultsDirError(f"{out_dir} has no {MANIFEST}: it is not a runner output") from exc
    except (OSError, ValueError) as exc:
        raise ResultsDirError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ResultsDirError(f"{path} is not a JSON object")
    return data
