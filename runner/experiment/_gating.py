"""The last stage: the gates (against a baseline run, or variant against variant), then the
error budgets of the run's calls and of its judges. The run's own verdict goes into its
manifest, where the next night's baseline pick reads it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.errors import ErrorBudgetExceeded, GateFailed, UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from runner.experiment._stages import _Run
    from runner.gates import GateVerdict


def gate(run: _Run) -> str:
    """Apply the gates and the budgets; raise :class:`GateFailed` (exit 1) or
    :class:`ErrorBudgetExceeded` (exit 4, which wins: the run itself cannot be trusted)."""
    from runner.gates import GateVerdict, record_gate_verdict

    experiment, rundir = run.experiment, run.rundir
    failed: GateFailed | None = None
    verdict, baseline = GateVerdict.NONE, None
    try:
        if experiment.compare_with is not None:
            verdict, baseline = _against_baseline(run)
        elif experiment.gates.limits_set:
            verdict = _between_variants(run)
    except GateFailed as exc:
        failed, verdict = exc, GateVerdict.FAIL
    except UsageError as exc:
        # The comparison cannot be made (runs scored by different judges, a baseline that is
        # not a run): found after every call was paid for, so the gate fails (exit 1) and the
        # run stays complete, never exit 2 ("nothing was sent"); the budget still wins.
        failed, verdict = GateFailed(f"the gate could not be applied: {exc}"), GateVerdict.FAIL
    over = _over_budget(run)
    if over is not None:
        verdict = GateVerdict.OVER_BUDGET
    record_gate_verdict(rundir, verdict, baseline)
    run.result.verdicts["gate_verdict"] = verdict.value
    if over is not None:
        if failed is not None:
            run.hooks.say(f"error: {failed}")
        raise over
    if failed is not None:
        raise failed
    return "done"


def _against_baseline(run: _Run) -> tuple[GateVerdict, Path | None]:
    from runner.gates import compare_with_baseline
    from runner.report import refresh_baseline_section

    experiment = run.experiment
    assert experiment.compare_with is not None
    outcome = compare_with_baseline(
        run.rundir.root,
        experiment.compare_with,
        experiment.gates,
        allow_no_baseline=experiment.allow_no_baseline,
        allow_different_deployment=experiment.allow_different_deployment,
        score=experiment.scorer,
        say=run.hooks.say,
    )
    refresh_baseline_section(run.rundir.root)  # the comparison, or none, in report.html
    run.result.paths["regression"] = outcome.markdown
    if run.hooks.show_gate is not None:
        run.hooks.show_gate(outcome.markdown)
    if not outcome.passed:
        raise GateFailed(outcome.message)
    return outcome.verdict, outcome.baseline


def _between_variants(run: _Run) -> GateVerdict:
    from runner.gates import GateVerdict, gate_run

    experiment = run.experiment
    report = gate_run(
        run.rundir.root,
        experiment.gates,
        score=experiment.scorer,
        baseline=experiment.baseline_variant,
    )
    run.result.paths["gate"] = run.rundir.gate_md
    if run.hooks.show_gate is not None:
        run.hooks.show_gate(run.rundir.gate_md)
    report.raise_if_failed()
    return GateVerdict.PASS


def _over_budget(run: _Run) -> ErrorBudgetExceeded | None:
    """The run's calls against ``--max-error-rate``, its judges against
    ``--max-judge-error-rate``: the error that says which are over, or None."""
    from runner.experiment._judging import budget_lines
    from runner.gates import check_error_budget

    experiment = run.experiment
    lines: list[str] = []
    written = "every report is written" if experiment.report else "no report was asked for"
    try:
        check_error_budget(run.rundir.results, experiment.config.max_error_rate, written=written)
    except ErrorBudgetExceeded as exc:
        lines.append(str(exc))
    judged = budget_lines(run.judged, experiment.judges.max_error_rate)
    if judged:
        head = f"judging ended with too many judge errors ({written}):"
        lines.append("\n  ".join([head, *judged]))
    return ErrorBudgetExceeded("\n".join(lines)) if lines else None
