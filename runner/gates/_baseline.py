"""Which earlier run a nightly run is compared with.

A nightly job is trusted to turn red on a regression, so its baseline must exist and be good:

* :func:`resolve_baseline` — ``compare_with`` is a run directory (a pinned baseline) or a
  folder of runs; a path that does not exist is a :class:`ConfigError` naming it, never
  "nothing to compare with".
* :func:`pick_baseline` — in a folder, the most recent run that is eligible: ``complete``,
  finished before the candidate started, of the candidate's deployment, and that did not fail
  its own gates (:data:`~runner.gates._verdict.INELIGIBLE` verdicts, unless ``accepted``).
  Every newer run passed over is named with the reason (:class:`BaselinePick`).

The verdict each run keeps is in :mod:`runner.gates._verdict`; the nightly step that picks,
compares and gates is :func:`runner.gates._nightly.compare_with_baseline`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runner.errors import ConfigError, ResultsDirError
from runner.gates._verdict import INELIGIBLE
from runner.store import Manifest, RunDir, RunStatus


@dataclass(frozen=True, slots=True)
class PastRun:
    """A complete run found in a folder of runs, and when it finished."""

    out_dir: Path
    finished_at: datetime

    def describe(self) -> str:
        return f"{self.out_dir} (finished {self.finished_at:%Y-%m-%d %H:%M:%S %Z})".rstrip()


@dataclass(frozen=True, slots=True)
class Skipped:
    """A run passed over by the pick, and why."""

    out_dir: Path
    reason: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the pick needs to know of tonight's run: when it started and what it calls."""

    out_dir: Path | None
    started_at: datetime
    deployment: str | None

    @classmethod
    def of_run(cls, out_dir: Path) -> Candidate:
        """The candidate run ``out_dir``: it started at its first session (or its creation)."""
        manifest = RunDir(out_dir).read_manifest()
        return cls(out_dir, started_at(manifest), manifest.deployment)


@dataclass(frozen=True, slots=True)
class BaselinePick:
    """The baseline chosen for a candidate (``None``: no baseline) and how it was chosen."""

    given: Path
    """``compare_with`` as given: a run directory or a folder of runs."""
    chosen: PastRun | None
    pinned: bool = False
    """``given`` is the run itself."""
    skipped: tuple[Skipped, ...] = ()
    """Runs in the folder newer than the chosen one (every run when none was chosen) that
    were passed over, newest first."""
    notes: tuple[str, ...] = ()
    """What the caller should know about the chosen run (its gate, its dataset)."""

    def lines(self) -> list[str]:
        """The pick in words, one line each: what was chosen, then every run skipped."""
        if self.chosen is None:
            head = f"no eligible baseline in {self.given}"
        elif self.pinned:
            head = f"baseline: {self.chosen.describe()}, pinned"
        else:
            head = f"baseline: {self.chosen.describe()}, the latest eligible run in {self.given}"
        return [
            head,
            *self.notes,
            *(f"skipped {s.out_dir}: {s.reason}" for s in self.skipped),
        ]


def started_at(manifest: Manifest) -> datetime:
    """When a run started: its first session, or its creation, whichever is earlier."""
    times = [parse_time(manifest.created_at)]
    times += [parse_time(s.started_at) for s in manifest.sessions[:1]]
    known = [t for t in times if t is not None]
    return min(known) if known else datetime.now(UTC)


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time from a manifest (UTC when it has no zone); None when absent or bad."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def ineligibility(
    path: Path,
    manifest: Manifest,
    candidate: Candidate,
    *,
    allow_different_deployment: bool = False,
) -> str | None:
    """Why run ``path`` (its ``manifest``) cannot be the candidate's baseline, in words; None
    when it can."""
    if manifest.status != RunStatus.COMPLETE:
        return f"not complete (status: {manifest.status.value})"
    unfinished = manifest.unfinished_stage()
    if unfinished is not None:
        return (
            f"its {unfinished} stage did not finish (killed, or still running): its judges, "
            "reports or gates never ran; resume it with --resume"
        )
    finished = parse_time(manifest.finished_at)
    if finished is None:
        return "no finishing time in its manifest"
    if finished >= candidate.started_at:
        return (
            f"finished {finished:%Y-%m-%d %H:%M:%S %Z} after this run started "
            f"({candidate.started_at:%Y-%m-%d %H:%M:%S %Z}), e.g. resumed later"
        )
    deployment = manifest.deployment
    if (
        candidate.deployment is not None
        and deployment != candidate.deployment
        and not allow_different_deployment
    ):
        return (
            f"calls deployment {deployment}, not {candidate.deployment} "
            "(--allow-different-deployment admits it)"
        )
    gate = manifest.gate or {}
    verdict = gate.get("verdict")
    if verdict in INELIGIBLE and not gate.get("accepted"):
        return f"its own gate verdict was {verdict}; 'runner baseline accept {path}' admits it"
    return None


def pick_baseline(
    folder: Path,
    candidate: Candidate,
    *,
    allow_different_deployment: bool = False,
) -> BaselinePick:
    """The most recent eligible run (by finishing time) one level down in ``folder``, other
    than the candidate, and every newer run passed over with the reason.

    Directories without a manifest (not runs) are passed over in silence; a run whose manifest
    cannot be read is named as skipped."""
    skip = candidate.out_dir.resolve() if candidate.out_dir is not None else None
    try:
        entries = sorted(p for p in folder.iterdir() if p.is_dir())
    except FileNotFoundError as exc:
        raise ConfigError(f"the baseline folder {folder} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"cannot list the runs in {folder}: {exc}") from exc
    eligible: list[PastRun] = []
    passed_over: list[tuple[datetime | None, Skipped]] = []
    for path in entries:
        rundir = RunDir(path)
        if path.resolve() == skip or not rundir.has_manifest():
            continue
        try:
            manifest = rundir.read_manifest()
        except ResultsDirError as exc:
            passed_over.append((None, Skipped(path, f"its manifest cannot be read ({exc})")))
            continue
        why = ineligibility(
            path, manifest, candidate, allow_different_deployment=allow_different_deployment
        )
        finished = parse_time(manifest.finished_at)
        if why is None and finished is not None:
            eligible.append(PastRun(path, finished))
        else:
            passed_over.append((finished or started_at(manifest), Skipped(path, why or "")))
    chosen = max(eligible, key=lambda run: run.finished_at, default=None)
    newer = [
        (moment, s)
        for moment, s in passed_over
        if chosen is None or moment is None or moment > chosen.finished_at
    ]
    newer.sort(key=lambda item: item[0] or datetime.max.replace(tzinfo=UTC), reverse=True)
    notes = _notes(chosen.out_dir, candidate) if chosen is not None else ()
    return BaselinePick(folder, chosen, skipped=tuple(s for _, s in newer), notes=notes)


def resolve_baseline(
    compare_with: Path, candidate: Path, *, allow_different_deployment: bool = False
) -> BaselinePick:
    """The baseline ``compare_with`` names for run ``candidate``: the run itself when it is a
    run directory (refused when it calls another deployment, unless
    ``allow_different_deployment``), else the pick in the folder (:func:`pick_baseline`).

    A path that does not exist, or is not a directory, is a :class:`ConfigError` naming it."""
    if not compare_with.exists():
        raise ConfigError(
            f"the baseline {compare_with} does not exist: give a run directory or a folder "
            "of runs (is it a typo?)"
        )
    if not compare_with.is_dir():
        raise ConfigError(f"the baseline {compare_with} is not a directory")
    tonight = Candidate.of_run(candidate)
    if not RunDir(compare_with).has_manifest():
        return pick_baseline(
            compare_with, tonight, allow_different_deployment=allow_different_deployment
        )
    if compare_with.resolve() == candidate.resolve():
        raise ConfigError(f"the baseline {compare_with} is the candidate run itself")
    manifest = RunDir(compare_with).read_manifest()
    deployment = manifest.deployment
    if deployment != tonight.deployment and not allow_different_deployment:
        raise ConfigError(
            f"the baseline {compare_with} calls deployment {deployment}, the candidate "
            f"{candidate} calls {tonight.deployment}; pass --allow-different-deployment to "
            "compare them anyway"
        )
    return pinned_baseline(compare_with, tonight)


def pinned_baseline(run: Path, candidate: Candidate) -> BaselinePick:
    """Run directory ``run`` as the baseline of ``candidate``, as it is (nothing picked): with
    a note when its own gate failed, and the notes on what differs from the candidate."""
    manifest = RunDir(run).read_manifest()
    finished = parse_time(manifest.finished_at) or started_at(manifest)
    notes = list(_notes(run, candidate))
    gate = manifest.gate or {}
    if gate.get("verdict") in INELIGIBLE and not gate.get("accepted"):
        notes.append(f"note: the pinned baseline's own gate verdict was {gate['verdict']}")
    return BaselinePick(run, PastRun(run, finished), pinned=True, notes=tuple(notes))


def _notes(baseline: Path, candidate: Candidate) -> tuple[str, ...]:
    """What differs between a chosen baseline and the candidate that the gates judge."""
    if candidate.out_dir is None:
        return ()
    base, cand = RunDir(baseline).read_manifest(), RunDir(candidate.out_dir).read_manifest()
    notes = []
    if base.fingerprint.dataset != cand.fingerprint.dataset:
        notes.append(
            f"note: the baseline read a different dataset (fingerprint "
            f"{base.fingerprint.dataset}, this run {cand.fingerprint.dataset}); "
            "--min-coverage decides whether the rows still pair"
        )
    if base.deployment != cand.deployment:
        notes.append(
            f"note: the baseline calls deployment {base.deployment}, this run "
            f"{cand.deployment} (--allow-different-deployment)"
        )
    return tuple(notes)


def latest_eligible_run(folder: Path, candidate: Path | None = None) -> PastRun | None:
    """The run :func:`pick_baseline` chooses in ``folder`` for run ``candidate`` (any run
    finished by now, of any deployment, when ``candidate`` is None or holds no manifest)."""
    if candidate is not None and RunDir(candidate).has_manifest():
        return pick_baseline(folder, Candidate.of_run(candidate)).chosen
    return pick_baseline(folder, Candidate(candidate, datetime.now(UTC), None)).chosen


__all__ = [
    "BaselinePick",
    "Candidate",
    "PastRun",
    "Skipped",
    "latest_eligible_run",
    "pick_baseline",
    "resolve_baseline",
]
