"""The run directory ``OUT``: every path under it (the manifest's types are in
:mod:`runner.store._manifest`, the lock in :mod:`runner.store._lock`).

Every other module finds a file of a run through :class:`RunDir` and reads or writes the
manifest through :class:`Manifest`; nothing else spells a file name under ``OUT``::

    OUT/.runner.lock          held by the one process working on OUT (host and pid inside)
    OUT/manifest.json         what the run is and how far it got (Manifest, written atomically)
    OUT/journal.jsonl         one JSON line per finished call, appended as each call finishes
    OUT/journal.rejected.jsonl  damaged journal lines set aside by recovery (their calls re-sent)
    OUT/results.parquet       the journal compacted: one row per (row_id, variant, repeat);
                              written whole (compaction at a session's end, or merge)
    OUT/scores.parquet        the scorer's score and score_error, row for row with results
    OUT/judgements.parquet    the pointwise judge's scores, reasons and errors, by key
    OUT/summary.parquet, comparison.parquet, side_by_side.parquet, report.html   the reports
    OUT/summary_by_segment.parquet, comparison_by_segment.parquet   ``--segment-column``
    OUT/gate.md, gate.parquet                 ``runner gate`` (variants of one run)
    OUT/regression.md, regression.parquet     ``runner compare`` (one run against another)
    OUT/regression_rows.parquet               the rows that comparison found changed
    OUT/pairwise.parquet                      the pairwise judge's verdicts
    OUT/judges/pointwise/, judges/pairwise/   judging passes: run directories of their own
    OUT/export.parquet (.csv, .jsonl)         ``runner export``: the dataset plus its outputs
    OUT/experiment.toml                       the run's resolved options (``runner rerun``)
    OUT/shards/shard-III-of-NNN/              a shard: a run directory of its own
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, ParamSpec, TypeVar

if TYPE_CHECKING:
    from runner.config import RunConfig

from runner.errors import ResultsDirError
from runner.store._fsutil import atomic_write_json, describe_os_error
from runner.store._lock import RunLock, adopt_lock, hold_lock
from runner.store._manifest import MANIFEST, Manifest, read_manifest_json
from runner.store._provenance import Provenance

P = ParamSpec("P")
T = TypeVar("T")

SHARDS_DIR: Final = "shards"
LOCK_NAME: Final = ".runner.lock"
JOURNAL: Final = "journal.jsonl"
REJECTED: Final = "journal.rejected.jsonl"
RESULTS: Final = "results.parquet"
#: Parquet key-value metadata of ``scores.parquet``: the scorer spec behind ``score``.
SCORER_KEY: Final = b"runner.score"
#: Parquet key-value metadata of ``judgements.parquet``: its judge (``judge grader:v1``).
JUDGE_KEY: Final = b"runner.judge"


def judge_pass_calls(pass_dir: Path) -> Path:
    """The judge calls a judging pass sends: ``pass-NNN.calls.parquet`` beside its directory."""
    return pass_dir.with_name(pass_dir.name + ".calls.parquet")


def shard_dir_name(index: int, count: int) -> str:
    """``shard-001-of-004``: zero-padded so a listing sorts in shard order."""
    width = max(3, len(str(count)))
    return f"shard-{index:0{width}d}-of-{count:0{width}d}"


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

    def judge_passes(self, kind: str) -> list[Path]:
        """The judging passes of ``kind`` so far, in order (``OUT/judges/<kind>/pass-NNN``)."""
        return sorted(p for p in self.judges(kind).glob("pass-*") if p.is_dir())

    def judge_pass(self, kind: str, index: int) -> tuple[Path, Path]:
        """Pass ``index`` of ``kind``: its run directory and the judge calls it sends."""
        pass_dir = self.judges(kind) / f"pass-{index:03d}"
        return pass_dir, judge_pass_calls(pass_dir)

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
    def regression_rows(self) -> Path:
        """The changed rows of the last ``runner compare``, for report.html's baseline section."""
        return self.root / "regression_rows.parquet"

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

    def provenance(self) -> Provenance:
        """What the run's files are made from, by its manifest (:meth:`read_manifest`)."""
        return Provenance.of(self.read_manifest(), self.root)

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
            raise ResultsDirError(
                f"--out {self.root} cannot be created: {describe_os_error(exc)}"
            ) from exc
        if not self.root.is_dir():
            raise ResultsDirError(f"--out {self.root} exists and is not a directory")

    def locked(self) -> contextlib.AbstractContextManager[RunLock]:
        """Hold this directory's exclusive lock for the ``with`` block (re-entrant within a
        process; :func:`runner.store._lock.hold_lock` says how)."""
        return hold_lock(self)

    def adopted(self, fd: int) -> contextlib.AbstractContextManager[RunLock]:
        """Hold the lock through ``fd``, inherited from the process that locked ``OUT``
        (:func:`runner.store._lock.adopt_lock`)."""
        return adopt_lock(self, fd)


def under_lock(func: Callable[P, T]) -> Callable[P, T]:
    """Run ``func(out_dir, …)`` holding ``out_dir``'s lock (re-entrant: an experiment that
    holds it already goes on), so a library call gets the protection a command gets."""

    @functools.wraps(func)
    def locked(*args: P.args, **kwargs: P.kwargs) -> T:
        target = args[0] if args else kwargs["out_dir"]
        with RunDir(Path(target)).locked():  # type: ignore[arg-type]
            return func(*args, **kwargs)

    return locked
