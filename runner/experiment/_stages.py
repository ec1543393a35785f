"""Run an experiment in stages, under one lock, from start to end.

::

    send → compact → judge (pointwise, then pairwise) → export → report → gate (and budget)

The lock on ``OUT`` is taken by the sending session and kept in this object's stack until the
last stage is over; a fresh process (the memory plan of large runs) adopts it without a gap.
Before each stage the manifest records it (``Manifest.stage``) and after it its outcome
(``Manifest.stages``), so a resume continues where the last session stopped: nothing sent
again that has an outcome, nothing judged again that has a judgement, no export redone.
A signal during any stage commits, marks the run ``interrupted`` with the stage, and ends
in :class:`RunInterrupted` with the command that resumes it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

# The experiment's door exports it; the runner reads the key in runner.config alone.
from runner.config import api_key_from_env as api_key_from_env
from runner.errors import (
    ErrorBudgetExceeded,
    GateFailed,
    RunInterrupted,
    RunnerError,
    StorageError,
    UsageError,
)
from runner.experiment._model import Experiment, ExperimentResult, Stage
from runner.experiment._signals import StageStopped, stopping_on_signals
from runner.http import RetryPolicy
from runner.run import Display
from runner.store import Manifest, RunDir, RunLock, RunStatus, now_iso

if TYPE_CHECKING:
    from runner.judge import JudgeReport

#: What a stage is doing, in words, for the line an interrupted run prints.
_DOING = {
    Stage.SEND: "sending",
    Stage.COMPACT: "compacting the journal",
    Stage.JUDGE: "judging",
    Stage.EXPORT: "exporting",
    Stage.REPORT: "writing reports",
    Stage.GATE: "applying the gates",
}


@dataclass
class Hooks:
    """How an experiment talks and is driven; the library's defaults say nothing."""

    display: Display | None = None
    say: Callable[[str], None] = lambda line: None
    """Hears one line at a time of what the experiment does (the CLI prints it on stderr)."""
    show_reports: Callable[[Any], None] | None = None
    """Hears the :class:`~runner.report.ReportPaths` once every report is written."""
    show_gate: Callable[[Path], None] | None = None
    """Hears the markdown file of a gate verdict (gate.md or regression.md)."""
    handle_signals: bool = False
    quit_now: Callable[[], None] | None = None
    resume_command: str | None = None
    transport: httpx.AsyncBaseTransport | None = None
    policy: RetryPolicy | None = None
    replace_process: bool = False
    """The fresh process of a large run replaces this one (``exec``: the CLI) rather than
    running beside it while this one waits (a library caller's process must go on)."""


@dataclass
class _Run:
    experiment: Experiment
    api_key: str | None
    hooks: Hooks
    stack: contextlib.ExitStack
    adopted: bool = False
    """A fresh process: OUT's lock was handed over, the calls were sent by the process before."""
    result: ExperimentResult = field(init=False)
    heavy: bool = False
    """This process sent or compacted: its heap is large (see :mod:`._send`)."""
    judged: JudgeReport | None = None
    before: dict[str, str] = field(default_factory=dict)
    """Each stage's outcome as the last session left it (a resume skips a finished export)."""

    def __post_init__(self) -> None:
        self.rundir = RunDir(self.experiment.out_dir)
        self.result = ExperimentResult(self.rundir.root, RunStatus.RUNNING, Stage.SEND, 0)

    def held_lock(self) -> RunLock:
        """OUT's lock, which this process holds from the send stage on."""
        return self.stack.enter_context(self.rundir.locked())

    # -- the manifest --------------------------------------------------------------------

    def _mark(self, stage: Stage, outcome: str) -> Manifest:
        manifest = self.rundir.read_manifest()
        manifest.stage = stage.value
        manifest.stages[stage.value] = outcome
        if self.hooks.resume_command:
            manifest.resume_command = self.hooks.resume_command
        self.rundir.write_manifest(manifest)
        self.result.stage = stage
        self.result.verdicts[stage.value] = outcome
        return manifest

    def interrupted(self, stage: Stage, why: str) -> RunInterrupted:
        """Mark the run interrupted in ``stage``; the error that says so, with the resume."""
        doing = _DOING.get(stage, stage.value)
        self._stopped(
            stage, RunStatus.INTERRUPTED, "interrupted", f"interrupted while {doing} ({why})"
        )
        hint = f" Resume with: {self.hooks.resume_command}" if self.hooks.resume_command else ""
        return RunInterrupted(
            f"interrupted while {doing}; finished work is committed in {self.rundir.root}.{hint}"
        )

    def _failed(self, stage: Stage, error: RunnerError) -> None:
        """A stage that could not finish (a full disk, a refused judge): the manifest says
        so, with the resume command, and the status says it is not complete."""
        if isinstance(error, StorageError):  # a full disk: the lock's reserve makes room
            self.held_lock().release_reserve()
        status = RunStatus.ABORTED if error.exit_code == 3 else RunStatus.INTERRUPTED
        self._stopped(stage, status, "failed", f"{stage.value}: {error}")

    def _stopped(self, stage: Stage, status: RunStatus, outcome: str, reason: str) -> None:
        """The manifest of a run stopped in ``stage`` (best effort: the journal, not the
        manifest, is the record of what finished)."""
        with contextlib.suppress(RunnerError, OSError):
            manifest = self.rundir.read_manifest()
            manifest.status, manifest.reason, manifest.finished_at = status, reason, now_iso()
            manifest.stage, manifest.stages[stage.value] = stage.value, outcome
            if self.hooks.resume_command:
                manifest.resume_command = self.hooks.resume_command
            self.rundir.write_manifest(manifest)
        self.result.verdicts[stage.value] = outcome

    # -- the stages ----------------------------------------------------------------------

    def run(self) -> ExperimentResult:
        from runner.experiment._send import send

        stage = Stage.SEND
        try:
            sent_all = send(self)
            if not sent_all:  # a fresh process finished the run (a library caller's child)
                return self.result
            self.before = dict(self.rundir.read_manifest().stages)
            for stage, step in (
                (Stage.JUDGE, self._judge),
                (Stage.EXPORT, self._export),
                (Stage.REPORT, self._report),
                (Stage.GATE, self._gate),
            ):
                self._stage(stage, step)
        except RunInterrupted as exc:
            return self._end(stage, exc)
        except (GateFailed, ErrorBudgetExceeded) as exc:
            outcome = "over-budget" if isinstance(exc, ErrorBudgetExceeded) else "fail"
            self._mark(Stage.GATE, outcome)
            self._mark(Stage.DONE, "done")
            return self._end(Stage.GATE, exc)
        except UsageError as exc:
            if stage is Stage.SEND:
                raise  # nothing was sent: bad input is exit 2, before any result
            self._failed(stage, exc)
            return self._end(stage, exc)
        except RunnerError as exc:
            if stage is not Stage.SEND:
                self._failed(stage, exc)
                exc = type(exc)(_with_resume(str(exc), self.hooks.resume_command))
            return self._end(stage, exc)
        self._mark(Stage.DONE, "done")
        self.result.status = RunStatus.COMPLETE
        return self.result

    def _stage(self, stage: Stage, step: Callable[[], str]) -> None:
        """Run one stage between two manifest marks; a signal interrupts it cleanly."""
        self.result.stage = stage
        self._mark(stage, "running")
        if not self.hooks.handle_signals:
            self._mark(stage, step())
            return
        with stopping_on_signals(self.hooks.quit_now):
            try:
                outcome = step()
            except StageStopped as stop:
                self.hooks.say(f"\nstopping ({stop}): {_DOING[stage]} stopped")
                raise self.interrupted(stage, str(stop)) from None
        self._mark(stage, outcome)

    def _end(self, stage: Stage, error: RunnerError) -> ExperimentResult:
        self.result.stage, self.result.error = stage, error
        self.result.exit_code = error.exit_code
        with contextlib.suppress(RunnerError, OSError):
            self.result.status = self.rundir.read_manifest().status
        return self.result

    def _judge(self) -> str:
        from runner.experiment._judging import judge

        return judge(self)

    def _export(self) -> str:
        plan = self.experiment.export
        if plan.to is None:
            return "skipped"
        from runner.export import export_run, format_of, remove_export_scratch

        remove_export_scratch(self.rundir.root, plan.to)  # a killed export's leftovers
        if self.before.get(Stage.EXPORT.value) == "done" and plan.to.exists():
            self.result.paths["export"] = plan.to  # exported by an earlier session of this run
            return "done"
        fmt = format_of(plan.to, "--export")
        written = export_run(
            self.rundir.root,
            plan.to,
            format=fmt,
            overwrite=plan.overwrite,
            prefix=plan.prefix,
            csv_raw=plan.csv_raw,
            memory=self.experiment.memory,
        )
        self.result.paths["export"] = written
        self.hooks.say(f"exported the dataset with its outputs to {written}")
        return "done"

    def _report(self) -> str:
        if not self.experiment.report:
            root = self.rundir.root
            counts = self.rundir.read_manifest().counts
            self.hooks.say(
                f"results in {self.rundir.results}: {counts.get('ok', 0)} ok, "
                f"{counts.get('error', 0)} errors; no report (--no-report): runner report {root} "
                "writes it"
            )
            return "skipped"
        from runner.report import build_reports

        try:
            paths = build_reports(
                self.rundir.root,
                score=self.experiment.scorer,
                baseline=self.experiment.baseline_variant,
                segments=self.experiment.config.segment_columns,
                memory=self.experiment.memory,
            )
        except StorageError as exc:
            raise StorageError(
                f"{exc}. The run itself is complete; build its reports later with: "
                f"runner report {self.rundir.root}"
            ) from exc
        self.result.paths["report"] = paths.html
        if self.hooks.show_reports is not None:
            self.hooks.show_reports(paths)
        return "done"

    def _gate(self) -> str:
        from runner.experiment._gating import gate

        return gate(self)


def _with_resume(message: str, command: str | None) -> str:
    if not command or "Resume with:" in message:
        return message
    return f"{message.rstrip().rstrip('.')}. Resume with: {command}"


def run_stages(
    experiment: Experiment, api_key: str | None, hooks: Hooks, *, lock_fd: int | None = None
) -> ExperimentResult:
    """Every stage of ``experiment`` under one lock (see the module docstring); ``lock_fd``:
    a fresh process's inherited descriptor of OUT's lock."""
    with contextlib.ExitStack() as stack:
        run = _Run(experiment, api_key, hooks, stack, adopted=lock_fd is not None)
        if lock_fd is not None:
            stack.enter_context(run.rundir.adopted(lock_fd))
        return run.run()


def flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
