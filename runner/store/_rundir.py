"""The run directory ``OUT``: every path under it, its typed manifest, and its lock.

Every other module finds a file of a run through :class:`RunDir` and reads or writes the
manifest through :class:`Manifest`; nothing else spells a file name under ``OUT``::

    OUT/.runner.lock          held by the one process working on OUT (host and pid inside)
    OUT/manifest.json         what the run is and how far it got (Manifest, written atomically)
    OUT/journal.jsonl         one JSON line per finished call, appended as each call finishes
    OUT/journal.rejected.jsonl  damaged journal lines set aside by recovery (their calls re-sent)
    OUT/results.parquet       the journal compacted: one row per (row_id, variant, repeat);
                              written once (compaction, or merge), never rewritten after
    OUT/scores.parquet        the scorer's score and score_error, row for row with results
    OUT/judgements.parquet    the pointwise judge's scores, reasons and errors, by key
    OUT/summary.parquet, comparison.parquet, side_by_side.parquet, report.html   the reports
    OUT/summary_by_segment.parquet, comparison_by_segment.parquet   ``--segment-column``
    OUT/gate.md, gate.parquet                 ``runner gate`` (variants of one run)
    OUT/regression.md, regression.parquet     ``runner compare`` (one run against another)
    OUT/pairwise.parquet                      the pairwise judge's verdicts
    OUT/judges/pointwise/, judges/pairwise/   judging passes: run directories of their own
    OUT/export.parquet (.csv, .jsonl)         ``runner export``: the dataset plus its outputs
    OUT/experiment.toml                       the run's resolved options (``runner rerun``)
    OUT/shards/shard-III-of-NNN/              a shard: a run directory of its own
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import errno
import fcntl
import functools
import json
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

if TYPE_CHECKING:
    from runner.config import RunConfig

from runner.errors import ResultsDirError, RunDirLocked
from runner.store._fsutil import atomic_write_json

P = ParamSpec("P")
T = TypeVar("T")

SHARDS_DIR: Final = "shards"
LOCK_NAME: Final = ".runner.lock"
MANIFEST: Final = "manifest.json"
JOURNAL: Final = "journal.jsonl"
REJECTED: Final = "journal.rejected.jsonl"
RESULTS: Final = "results.parquet"
#: Parquet key-value metadata of ``scores.parquet``: the scorer spec behind ``score``.
SCORER_KEY: Final = b"runner.score"
#: Parquet key-value metadata of ``judgements.parquet``: its judge (``judge grader:v1``).
JUDGE_KEY: Final = b"runner.judge"


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


def shard_dir_name(index: int, count: int) -> str:
    """``shard-001-of-004``: zero-padded so a listing sorts in shard order."""
    width = max(3, len(str(count)))
    return f"shard-{index:0{width}d}-of-{count:0{width}d}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Fingerprint:
    """What a resume must match: the dataset (whole and per file) and the work config."""

    dataset: str | None = None
    config: str | None = None
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class Session:
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
    sessions: list[Session] = field(default_factory=list)
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
    """Each stage's outcome by name: ``done``, ``interrupted``, ``failed``, ``skipped``."""
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
_SESSION_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(Session))


def _session(data: Mapping[str, Any]) -> Session:
    values = {k: v for k, v in data.items() if k in _SESSION_FIELDS}
    if values.get("status") is not None:
        values["status"] = RunStatus(values["status"])
    return Session(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class RunDir:
    """One run directory: the paths under it, its manifest and its lock."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    @classmethod
    def of(cls, config: RunConfig) -> RunDir:
        """A session's directory: ``out_dir``, or for a shard ``out_dir/shards/shard-I-of-N``,
        so each shard keeps its own journal and manifest and resumes on its own."""
        root = cls(config.out_dir)
        return root if config.shard is None else root.shard(*config.shard)

    # -- paths ------------------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL

    @property
    def rejected(self) -> Path:
        return self.root / REJECTED

    @property
    def results(self) -> Path:
        return self.root / RESULTS

    @property
    def summary(self) -> Path:
        return self.root / "summary.parquet"

    @property
    def comparison(self) -> Path:
        return self.root / "comparison.parquet"

    @property
    def side_by_side(self) -> Path:
        return self.root / "side_by_side.parquet"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def summary_by_segment(self) -> Path:
        return self.root / "summary_by_segment.parquet"

    @property
    def comparison_by_segment(self) -> Path:
        return self.root / "comparison_by_segment.parquet"

    @property
    def scores(self) -> Path:
        """The deterministic scorer's ``score`` and ``score_error``, row for row with
        ``results.parquet`` (which is never rewritten after compaction)."""
        return self.root / "scores.parquet"

    @property
    def judgements(self) -> Path:
        """The pointwise judge's verdicts, by (row_id, variant, repeat)."""
        return self.root / "judgements.parquet"

    @property
    def pairwise(self) -> Path:
        return self.root / "pairwise.parquet"

    def judges(self, kind: str) -> Path:
        """Where the passes of the ``pointwise`` or ``pairwise`` judge live."""
        return self.root / "judges" / kind

    @property
    def experiment(self) -> Path:
        """The run's resolved options as an experiment file, for ``runner rerun``."""
        return self.root / "experiment.toml"

    def export(self, fmt: str) -> Path:
        """``runner export``'s default target: ``export.parquet``, ``.csv`` or ``.jsonl``."""
        return self.root / f"export.{fmt}"

    @property
    def gate_md(self) -> Path:
        return self.root / "gate.md"

    @property
    def gate_parquet(self) -> Path:
        return self.root / "gate.parquet"

    @property
    def regression_md(self) -> Path:
        return self.root / "regression.md"

    @property
    def regression_parquet(self) -> Path:
        return self.root / "regression.parquet"

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    @property
    def shards_dir(self) -> Path:
        return self.root / SHARDS_DIR

    def shard(self, index: int, count: int) -> RunDir:
        return RunDir(self.shards_dir / shard_dir_name(index, count))

    # -- state ------------------------------------------------------------------------------

    def has_manifest(self) -> bool:
        return self.manifest_path.exists()

    def is_empty(self) -> bool:
        """True when the directory holds nothing but (perhaps) our lock file."""
        return self.root.is_dir() and all(p.name == LOCK_NAME for p in self.root.iterdir())

    def read_manifest(self) -> Manifest:
        """The typed manifest; a ``ResultsDirError`` (exit 2) if it is missing or unreadable."""
        return Manifest.from_json(read_manifest_json(self.root), self.manifest_path)

    def write_manifest(self, manifest: Manifest) -> None:
        """Replace the manifest atomically (a ``StorageError`` if the disk says no)."""
        atomic_write_json(self.manifest_path, manifest.to_json())

    def owned_files(self) -> list[Path]:
        """Every file the runner writes directly in ``OUT`` (lock, journal, rejected lines,
        manifest, results, reports, exports): none of them may be a symlink."""
        return [
            self.lock_path, self.manifest_path, self.journal, self.rejected, self.results,
            self.scores, self.judgements, self.summary, self.comparison, self.side_by_side,
            self.report_html,
            self.summary_by_segment, self.comparison_by_segment, self.pairwise,
            self.experiment, self.gate_md, self.gate_parquet, self.regression_md,
            self.regression_parquet, *(self.export(fmt) for fmt in ("parquet", "csv", "jsonl")),
        ]  # fmt: skip

    def check_no_symlinks(self) -> None:
        """Refuse a run directory where a symlink stands in place of one of the runner's files
        (:meth:`owned_files`), with :class:`ResultsDirError` (exit 2) naming it: writing
        through it would change a file outside ``OUT``. Reads and writes nothing."""
        for path in self.owned_files():
            if path.is_symlink():
                raise ResultsDirError(
                    f"{path} is a symbolic link; the runner writes this file itself and never "
                    "through a link (it could change a file outside the run directory). "
                    "Remove the link, then try again"
                )

    # -- making and locking -----------------------------------------------------------------

    def create(self) -> None:
        """Create the directory (and its parents), or say in one line why it cannot be."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:
            raise ResultsDirError(f"--out {self.root} exists and is not a directory") from exc
        except OSError as exc:
            raise ResultsDirError(f"--out {self.root} cannot be created: {_reason(exc)}") from exc
        if not self.root.is_dir():
            raise ResultsDirError(f"--out {self.root} exists and is not a directory")

    @contextlib.contextmanager
    def locked(self) -> Iterator[RunLock]:
        """Hold the run directory's exclusive lock for the ``with`` block.

        The lock is ``flock`` on ``OUT/.runner.lock``: released by the kernel when the process
        ends in any way (kill -9 included), so a stale lock cannot outlive its holder. Creating
        the lock file is also the check that ``OUT`` is writable. A second process gets
        :class:`RunDirLocked` (exit 2) naming the holder's host and pid. A symlink in place
        of one of the runner's files is refused first (:meth:`check_no_symlinks`), and the lock
        file is opened ``O_NOFOLLOW``.

        Re-entrant within a process: while this process holds OUT's lock (an experiment that
        runs its stages, or a fresh process that adopted it, :meth:`adopted`), ``locked``
        yields that lock again, so every library operation can take the lock itself.
        """
        held = _HELD.get(_lock_key(self.root))
        if held is not None:
            yield held
            return
        self.check_no_symlinks()  # before anything in OUT is read or written
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ResultsDirError(
                    f"{self.lock_path} is a symbolic link; remove it, then try again"
                ) from exc
            raise ResultsDirError(f"--out {self.root} is not writable: {_reason(exc)}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise RunDirLocked(
                    f"{self.root} is in use by another runner ({_holder(fd)}); wait for it to "
                    "end or stop it, then try again"
                ) from exc
            except OSError as exc:
                raise ResultsDirError(
                    f"--out {self.root} cannot be locked: {_reason(exc)}"
                ) from exc
            holder = json.dumps(
                {"host": socket.gethostname(), "pid": os.getpid(), "since": now_iso()}
            ).encode("utf-8")
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, holder, 0)
            except OSError as exc:
                raise ResultsDirError(f"--out {self.root} is not writable: {_reason(exc)}") from exc
            lock = RunLock(fd, len(holder))
            _HELD[_lock_key(self.root)] = lock
            try:
                yield lock
            finally:
                del _HELD[_lock_key(self.root)]
                lock.release_reserve()  # the reserve is for a session, not for the disk's life
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    @contextlib.contextmanager
    def adopted(self, fd: int) -> Iterator[RunLock]:
        """Hold OUT's lock through ``fd``, a descriptor of ``OUT/.runner.lock`` inherited from
        the process that locked it and then replaced itself (or started this one): the lock
        passes from one process to the next without a moment in which it is free. Refused
        (:class:`ResultsDirError`) when ``fd`` is not that file or does not hold its lock."""
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.lock_path, follow_symlinks=False))
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours already: a no-op
        except BlockingIOError:
            same = False
        except OSError as exc:
            raise ResultsDirError(f"{self.root}: no lock to take over ({_reason(exc)})") from exc
        if not same:
            raise ResultsDirError(f"{self.root}: descriptor {fd} does not hold its lock")
        lock = RunLock(fd, len(os.pread(fd, 4096, 0).split(b"\0")[0]), reserve=False)
        _HELD[_lock_key(self.root)] = lock
        try:
            yield lock
        finally:
            del _HELD[_lock_key(self.root)]
            lock.release_reserve()  # the reserve the first process took, at the run's end
            os.close(fd)


def under_lock(func: Callable[P, T]) -> Callable[P, T]:
    """Run ``func(out_dir, …)`` holding ``out_dir``'s lock (re-entrant: an experiment that
    holds it already goes on), so a library call gets the protection a command gets."""

    @functools.wraps(func)
    def locked(*args: P.args, **kwargs: P.kwargs) -> T:
        target = args[0] if args else kwargs["out_dir"]
        with RunDir(Path(target)).locked():  # type: ignore[arg-type]
            return func(*args, **kwargs)

    return locked


#: The run directories this process holds the lock of, by real path (see :meth:`RunDir.locked`).
_HELD: Final[dict[str, RunLock]] = {}


def _lock_key(root: Path) -> str:
    return os.path.realpath(root)


class RunLock:
    """The held lock, and a little disk space it keeps in reserve.

    The lock file is grown to :data:`RESERVE_BYTES` of allocated space; when the disk fills up
    during a run, :meth:`release_reserve` gives that space back, so the manifest can still say
    ``interrupted`` and name the cause.
    """

    def __init__(self, fd: int, holder_bytes: int, *, reserve: bool = True) -> None:
        self._fd = fd
        self._holder_bytes = holder_bytes
        if reserve:
            with contextlib.suppress(OSError):  # no reserve where the file system cannot
                os.posix_fallocate(fd, holder_bytes, RESERVE_BYTES)

    @property
    def fd(self) -> int:
        """The descriptor that holds the lock (for :meth:`RunDir.adopted` in a next process)."""
        return self._fd

    def release_reserve(self) -> None:
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._holder_bytes)


#: Disk space held in the lock file for the last manifest of a run that filled the disk.
RESERVE_BYTES: Final = 256 * 1024


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).rstrip(b"\0") or b"{}")  # the reserve is zeros
        return f"host {info['host']}, pid {info['pid']}, since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def _reason(exc: OSError) -> str:
    if exc.errno is not None:
        return os.strerror(exc.errno)
    return str(exc) or errno.errorcode.get(exc.errno or 0, "unknown error")


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
