"""Which earlier run a nightly run is compared with, and the verdict each run keeps.

A nightly job is trusted to turn red on a regression, so its baseline must exist and be good:

* :func:`resolve_baseline` — ``compare_with`` is a run directory (a pinned baseline) or a
  folder of runs; a path that does not exist is a :class:`ConfigError` naming it, never
  "nothing to compare with".
* :func:`pick_baseline` — in a folder, the most recent run that is eligible: ``complete``,
  finished before the candidate started, of the candidate's deployment, and that did not fail
  its own gates (:data:`INELIGIBLE` verdicts, unless ``accepted``). Every newer run passed
  over is named with the reason (:class:`BaselinePick`).
* :func:`compare_with_baseline` — the nightly comparison step: pick, compare and gate
  (``regression.md``, ``regression.parquet``, the comparison in ``report.html``), and return
  a :class:`BaselineVerdict` the caller records with :func:`record_gate_verdict`.
* :func:`accept_baseline` — ``runner baseline accept RUN``: make a run eligible although its
  gate failed (after a deliberate change).

The verdict a run keeps is ``Manifest.gate``: ``{"verdict": GateVerdict, "baseline": path or
None, "accepted": bool}``. A run without one (no gates, or made before verdicts were kept) is
eligible.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from runner.errors import ConfigError, GateFailed, ResultsDirError
from runner.gates._gates import Gates, RegressionReport
from runner.stats import DEFAULT_OPTIONS, StatOptions
from runner.store import Manifest, RunDir, RunStatus


class GateVerdict(enum.StrEnum):
    """A run's own gate verdict, as its manifest keeps it (``Manifest.gate["verdict"]``)."""

    PASS = "pass"
    """Compared with a baseline; every gate passed."""
    FAIL = "fail"
    """A gate failed, or there was no baseline and ``allow_no_baseline`` was not given."""
    NONE = "none"
    """No gate was set."""
    NO_BASELINE = "no-baseline"
    """No baseline yet, accepted as a first night (``allow_no_baseline``): no gate applied."""
    OVER_BUDGET = "over-budget"
    """The run's error rows were over its error budget."""


#: Verdicts that keep a run from being a baseline, unless it was accepted.
INELIGIBLE: Final = frozenset({GateVerdict.FAIL, GateVerdict.OVER_BUDGET})

#: The first line said (and written at the top of regression.md) on an accepted first night.
NO_BASELINE_YET: Final = "no baseline yet: this run becomes the baseline once its gates pass"


# ------------------------------------------------------------------------------ picking


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
    finished = parse_time(manifest.finished_at) or started_at(manifest)
    notes = list(_notes(compare_with, tonight))
    gate = manifest.gate or {}
    if gate.get("verdict") in INELIGIBLE and not gate.get("accepted"):
        notes.append(f"note: the pinned baseline's own gate verdict was {gate['verdict']}")
    return BaselinePick(
        compare_with, PastRun(compare_with, finished), pinned=True, notes=tuple(notes)
    )


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


# ----------------------------------------------------------------------------- verdicts


@dataclass(frozen=True, slots=True)
class BaselineVerdict:
    """The outcome of the nightly comparison step, for the caller to record and act on."""

    verdict: GateVerdict
    baseline: Path | None
    pick: BaselinePick
    report: RegressionReport | None
    """The gated comparison; None when there was no baseline."""
    markdown: Path
    """The written ``regression.md``."""
    message: str = ""
    """Why the verdict is a failure, in one line (empty when it is not)."""

    @property
    def passed(self) -> bool:
        return self.verdict is not GateVerdict.FAIL

    def gate_record(self) -> dict[str, Any]:
        """``Manifest.gate`` of this verdict (:func:`record_gate_verdict` keeps ``accepted``)."""
        baseline = None if self.baseline is None else str(self.baseline)
        return {"verdict": self.verdict.value, "baseline": baseline, "accepted": False}

    def raise_if_failed(self) -> None:
        """:class:`GateFailed` (exit 1) with :attr:`message` when the verdict is a failure."""
        if not self.passed:
            raise GateFailed(self.message)


def record_gate_verdict(
    rundir: RunDir, verdict: GateVerdict | str, baseline: Path | None
) -> Manifest:
    """Write the run's own gate verdict into its manifest; ``accepted`` is kept as it was.

    Takes no lock: the caller holds ``rundir.locked()`` (a run ending holds it already)."""
    manifest = rundir.read_manifest()
    accepted = bool((manifest.gate or {}).get("accepted"))
    manifest.gate = {
        "verdict": GateVerdict(verdict).value,
        "baseline": None if baseline is None else str(baseline),
        "accepted": accepted,
    }
    rundir.write_manifest(manifest)
    return manifest


def accept_baseline(out: Path) -> Manifest:
    """``runner baseline accept OUT``: mark a complete run as an accepted baseline, whatever
    its own gate said, under the run's lock. A run that is not complete is refused."""
    rundir = RunDir(out)
    if not rundir.has_manifest():
        raise ConfigError(f"{out} is not a run directory (no manifest.json)")
    with rundir.locked():
        manifest = rundir.read_manifest()
        if manifest.status != RunStatus.COMPLETE:
            raise ConfigError(
                f"{out} is not complete (status: {manifest.status.value}); only a complete "
                "run can be a baseline"
            )
        gate = dict(manifest.gate or {"verdict": GateVerdict.NONE.value, "baseline": None})
        gate["accepted"] = True
        manifest.gate = gate
        rundir.write_manifest(manifest)
    return manifest


# --------------------------------------------------------------------- the nightly step


def compare_with_baseline(
    out: Path,
    compare_with: Path,
    gates: Gates,
    *,
    allow_no_baseline: bool = False,
    allow_different_deployment: bool = False,
    variant_map: Mapping[str, str] | None = None,
    score: str | None = None,
    allow_incomplete: bool = False,
    options: StatOptions = DEFAULT_OPTIONS,
    say: Callable[[str], None] = lambda line: None,
) -> BaselineVerdict:
    """Compare run ``out`` with the baseline ``compare_with`` names and gate on the result.

    Writes ``regression.md`` into ``out`` always (a first night too), and when a baseline was
    found ``regression.parquet``, the regressed rows and the comparison section of ``out``'s
    ``report.html`` (:func:`runner.gates._regression.write_regression`). Every pick is said, one
    line
    per call of ``say``, and written into ``regression.md``.

    Returns the verdict, failed or not; the caller records it (:func:`record_gate_verdict`)
    and then calls :meth:`BaselineVerdict.raise_if_failed`. Raises :class:`ConfigError` for a
    baseline that does not exist or calls another deployment, :class:`GateFailed` for an
    incomplete run (unless ``allow_incomplete``).
    """
    from runner.gates._regression import forget_regression, write_no_baseline, write_regression

    pick = resolve_baseline(
        compare_with, out, allow_different_deployment=allow_different_deployment
    )
    markdown = RunDir(out).regression_md
    if pick.chosen is None:
        forget_regression(out)  # an earlier comparison's files would tell of another baseline
        if allow_no_baseline:
            say(f"no gate was applied: {NO_BASELINE_YET} ({compare_with} holds no eligible run)")
            for line in pick.lines()[1:]:
                say(line)
            write_no_baseline(out, pick, allowed=True)
            return BaselineVerdict(GateVerdict.NO_BASELINE, None, pick, None, markdown)
        message = (
            f"no baseline: {compare_with} holds no eligible run other than {out}, so the gates "
            "were not applied; pass --allow-no-baseline (experiment key allow_no_baseline = "
            "true) to accept a first night"
        )
        for line in pick.lines():
            say(line)
        write_no_baseline(out, pick, allowed=False)
        return BaselineVerdict(GateVerdict.FAIL, None, pick, None, markdown, message)
    for line in pick.lines():
        say(line)
    report = write_regression(
        pick.chosen.out_dir,
        out,
        out,
        gates,
        score=score,
        variant_map=variant_map,
        allow_incomplete=allow_incomplete,
        options=options,
        picked=pick.lines(),
    )
    if not report.gates_set:
        verdict = GateVerdict.NONE
    else:
        verdict = GateVerdict.PASS if report.passed else GateVerdict.FAIL
    message = "; ".join(g.describe() for g in report.failures)
    return BaselineVerdict(verdict, pick.chosen.out_dir, pick, report, markdown, message)


def latest_eligible_run(folder: Path, candidate: Path | None = None) -> PastRun | None:
    """The run :func:`pick_baseline` chooses in ``folder`` for run ``candidate`` (any run
    finished by now, of any deployment, when ``candidate`` is None or holds no manifest)."""
    if candidate is not None and RunDir(candidate).has_manifest():
        return pick_baseline(folder, Candidate.of_run(candidate)).chosen
    return pick_baseline(folder, Candidate(candidate, datetime.now(UTC), None)).chosen
