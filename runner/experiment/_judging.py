"""The judge stage: the pointwise judge, then the pairwise judge, as the experiment says."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from runner.config import parse_tag
from runner.errors import RunInterrupted, RunnerError
from runner.experiment._model import Experiment, JudgePlan, Stage

if TYPE_CHECKING:
    from runner.config import RunConfig
    from runner.experiment._stages import _Run
    from runner.judge import JudgeOptions, JudgeReport
    from runner.run import RunResult


def judge_options(
    plan: JudgePlan,
    *,
    baseline: str | None,
    base_url: str | None,
    retry_errors: bool = False,
    keep_score: bool = False,
) -> JudgeOptions | None:
    """The :class:`~runner.judge.JudgeOptions` of ``plan``, None without a judge
    (:class:`~runner.errors.ConfigError` for a bad spec, scale or pattern: exit 2)."""
    if not plan.any:
        return None
    from runner.judge import JudgeOptions, JudgeSpec, compile_pattern, parse_scale

    return JudgeOptions(
        pointwise=JudgeSpec.parse(plan.judge, "--judge") if plan.judge else None,
        pairwise=(
            JudgeSpec.parse(plan.pairwise_judge, "--pairwise-judge")
            if plan.pairwise_judge
            else None
        ),
        variables=dict(parse_tag(v, "--judge-var") for v in plan.variables),
        scale=parse_scale(plan.scale),
        baseline=baseline,
        base_url=base_url,
        pattern=compile_pattern(plan.pattern, "--judge-pattern"),
        pairwise_pattern=compile_pattern(plan.pairwise_pattern, "--pairwise-pattern"),
        retry_errors=retry_errors,
        keep_score=keep_score,
    )


def check_judges(experiment: Experiment) -> None:
    """Every judge option checked before the first call is sent."""
    judge_options(experiment.judges, baseline=experiment.baseline_variant, base_url=None)


def judge(run: _Run) -> str:
    """Judge the run; the report is kept on ``run`` for the budget and the console.

    Each judging pass is sent here, as a session of its own with the run's hooks: the
    experiment composes the stages, the judge package only says what to send."""
    from runner.judge import judge_run
    from runner.run import run_job

    experiment = run.experiment
    options = judge_options(
        experiment.judges,
        baseline=experiment.baseline_variant,
        base_url=experiment.config.base_url,
        retry_errors=experiment.config.retry_errors,
        keep_score=experiment.score is not None,
    )
    if options is None:
        return "skipped"

    def quit_now() -> None:  # a second signal during a judge pass: say so in OUT too
        with contextlib.suppress(RunnerError, OSError):
            run.interrupted(Stage.JUDGE, "quit at once on a second interrupt")
        if run.hooks.quit_now is not None:
            run.hooks.quit_now()

    def send(config: RunConfig, kind: str) -> RunResult:
        return run_job(
            config,
            api_key=run.api_key,
            display=run.hooks.display,
            transport=run.hooks.transport,
            handle_signals=run.hooks.handle_signals,
            quit_now=quit_now,
            phase="judge" if kind == "pointwise" else "pairwise",
        )

    try:
        report = judge_run(run.rundir.root, options, send=send)
    except RunInterrupted as exc:
        raise run.interrupted(Stage.JUDGE, "a signal") from exc
    run.judged = report
    for kind, outcome in report.kinds.items():
        run.result.sent[kind] = outcome.sent
        run.hooks.say(describe(kind, outcome))
        for line in top_reasons(outcome):
            run.hooks.say(f"  {kind} judge: {line}")
    return "done"


def top_reasons(report: object, most: int = 3) -> list[str]:
    """The most frequent judge errors, each with one example answer (cut, made inert)."""
    from runner.judge import KindReport
    from runner.terminal import terminal_safe

    assert isinstance(report, KindReport)
    return [
        f"{count}× {reason} (e.g. {terminal_safe(report.examples[reason])[:120]!r})"
        for reason, count in report.reasons.most_common(most)
    ]


def describe(kind: str, report: object) -> str:
    """``pointwise judge: 120 calls sent; 4 of 240 judgements are errors (…)``."""
    from runner.judge import KindReport

    assert isinstance(report, KindReport)
    line = f"{kind} judge: {report.sent} calls sent"
    if report.errors:
        line += (
            f"; {report.errors} of {report.calls} judgements are errors "
            f"({report.failed} failed calls, {report.unparsed} answers not read)"
        )
    if report.hint:
        line += f"; {report.hint}"
    return line


def budget_lines(report: JudgeReport | None, max_error_rate: float) -> list[str]:
    """One line per judge over ``--max-judge-error-rate``: its rate and top reasons."""
    if report is None:
        return []
    lines = []
    for kind, outcome in report.kinds.items():
        if outcome.error_rate <= max_error_rate:
            continue
        reasons = "; ".join(top_reasons(outcome))
        lines.append(
            f"{kind} judge: {outcome.errors} of {outcome.calls} judgements are errors "
            f"({outcome.error_rate:.1%}, above --max-judge-error-rate {max_error_rate:g}); "
            f"{reasons}" + (f"; {outcome.hint}" if outcome.hint else "")
        )
    return lines
