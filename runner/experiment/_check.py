"""What is checked before the first call, and what a dry run counts.

Every option of every stage is checked before anything is sent: a bad judge, pattern, scorer,
export target or export column, a baseline folder that does not exist, is exit 2 with nothing
sent and nothing written. :func:`plan_experiment` counts the calls each stage would send.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.errors import ConfigError
from runner.experiment._model import Experiment, Stage
from runner.store import RunDir


def check_experiment(experiment: Experiment) -> None:
    """Every check of the stages after sending, before the first call."""
    from runner.experiment._judging import check_judges

    check_judges(experiment)
    _check_options_apply(experiment)
    if experiment.score is not None:
        from runner.score import parse_scorer

        parse_scorer(experiment.score)
    if experiment.compare_with is not None and not _will_exist(experiment):
        raise ConfigError(
            f"compare_with {experiment.compare_with}: no such folder or run directory "
            "(a typo? the first night needs the folder to exist: create it, and pass "
            "--allow-no-baseline)"
        )
    if experiment.compare_with is not None and experiment.compare_with.is_file():
        raise ConfigError(
            f"compare_with {experiment.compare_with} is a file: give a run directory or a "
            "folder of runs"
        )
    if experiment.export.to is not None:
        _check_export(experiment)


def _check_options_apply(experiment: Experiment) -> None:
    """Options that cannot apply to this run's variants, judges or gates: refused before any
    call is paid for, not after sending."""
    variants, judges = experiment.config.variants, experiment.judges
    base = experiment.baseline_variant
    if base is not None and base not in variants:
        raise ConfigError(
            f"--baseline-variant {base!r} is not one of the run's variants ({', '.join(variants)})"
        )
    if judges.pairwise_judge is not None and len(variants) < 2:
        raise ConfigError(
            "--pairwise-judge needs a run with two or more variants (it compares each "
            "variant's answer with the baseline's)"
        )
    if judges.pattern is not None and judges.judge is None:
        raise ConfigError("--judge-pattern reads a pointwise judge's answers: pass --judge too")
    if judges.pairwise_pattern is not None and judges.pairwise_judge is None:
        raise ConfigError("--pairwise-pattern reads the pairwise judge's answers: pass it too")
    gates = experiment.gates
    if gates.limits_set and len(variants) < 2 and experiment.compare_with is None:
        raise ConfigError(
            f"the gates compare variants, and the run has one ({variants[0]}): pass a second "
            "--variant, or --compare-with an earlier run to gate against"
        )
    pairwise_gate = gates.min_win_rate is not None or gates.min_judge_consistency is not None
    if pairwise_gate and judges.pairwise_judge is None and not _judged_pairwise(experiment):
        option = "--min-win-rate" if gates.min_win_rate is not None else "--min-judge-consistency"
        raise ConfigError(
            f"{option} reads the pairwise judge's verdicts: pass --pairwise-judge too"
        )


def _judged_pairwise(experiment: Experiment) -> bool:
    """Whether a resumed run already holds pairwise verdicts (``runner judge`` gave them)."""
    rundir = RunDir.of(experiment.config)
    return experiment.config.resume and rundir.pairwise.exists()


def _will_exist(experiment: Experiment) -> bool:
    """Whether ``compare_with`` exists, or will once this run is written (a first night whose
    ``--out`` lies inside the folder of runs creates it)."""
    folder = experiment.compare_with
    assert folder is not None
    if folder.exists():
        return True
    out = experiment.out_dir.absolute()
    return folder.absolute() in out.parents


def _check_export(experiment: Experiment) -> None:
    from runner.dataset import open_dataset
    from runner.export import SCORE_FIELDS, check_export_columns, check_export_target, format_of

    to, config = experiment.export.to, experiment.config
    assert to is not None
    format_of(to, "--export")  # a ConfigError for an extension that names no format
    rundir = RunDir.of(config)
    resumed = config.resume and rundir.has_manifest()
    if resumed and rundir.read_manifest().stages.get(Stage.EXPORT.value) == "done":
        return  # exported by an earlier session: the target is ours
    dataset = open_dataset(config)
    check_export_target(
        rundir.root, to, dataset_files=list(dataset.files),
        overwrite=experiment.export.overwrite, option="--export", dataset_specs=config.dataset,
    )  # fmt: skip
    check_export_columns(
        dataset.columns,
        config.variants,
        prefix=experiment.export.prefix,
        extra=("reasoning", *SCORE_FIELDS),
    )


@dataclass(frozen=True)
class ExperimentPlan:
    """What ``runner run --dry-run`` says: the calls of each stage and the stages to run."""

    rows: int
    variants: int
    repeat: int
    calls: int
    done: int
    pointwise: int
    """Pointwise judge calls still to make (an upper bound while outputs are unknown)."""
    pairwise: int
    """Pairwise judge calls still to make (an upper bound: identical outputs cost none)."""
    stages: tuple[str, ...]
    exact: bool
    """True when every dataset call has an outcome, so the judge counts are exact."""

    def describe(self, out: Path) -> str:
        sent = self.calls - self.done
        lines = [
            f"dry run: {self.rows} rows × {self.variants} variant(s) × {self.repeat} repeat(s) "
            f"= {self.calls} calls"
            + (f"; {self.done} already have an outcome in {out}" if self.done else "")
            + f"; {sent} would be sent."
        ]
        bound = "" if self.exact else "at most "
        if self.pointwise:
            lines.append(f"pointwise judge: {bound}{self.pointwise} calls would be sent.")
        if self.pairwise:
            lines.append(f"pairwise judge: {bound}{self.pairwise} calls would be sent.")
        lines.append("stages: " + " → ".join(self.stages) + ". Nothing was sent or written.")
        return "\n".join(lines)


def plan_experiment(experiment: Experiment, api_key: str | None) -> ExperimentPlan:
    """Count, without sending or writing, what each stage of ``experiment`` would send."""
    from runner.run import plan_run

    config = experiment.config
    rundir = RunDir.of(config)
    resuming = config.resume and rundir.has_manifest()
    manifest = rundir.read_manifest() if resuming else None
    check_experiment(experiment)
    plan = plan_run(config, api_key)
    judges = experiment.judges
    variants = len(config.variants)
    pointwise = plan.calls if judges.judge else 0
    pairwise = 2 * plan.calls * (variants - 1) // max(variants, 1) if judges.pairwise_judge else 0
    exact = False
    if manifest is not None and rundir.results.exists() and plan.to_send == 0:
        pointwise, pairwise = _judge_calls_left(experiment, rundir)
        exact = True
    stages = [Stage.SEND.value] if plan.to_send or manifest is None else []
    if manifest is not None and manifest.stage == Stage.COMPACT.value:
        stages.append(Stage.COMPACT.value)
    if judges.any:
        stages.append(Stage.JUDGE.value)
    if experiment.export.to is not None:
        stages.append(Stage.EXPORT.value)
    if experiment.report:
        stages.append(Stage.REPORT.value)
    stages.append(Stage.GATE.value)
    return ExperimentPlan(plan.rows, plan.variants, plan.repeat, plan.calls, plan.done,
                          pointwise, pairwise, tuple(stages), exact)  # fmt: skip


def _judge_calls_left(experiment: Experiment, rundir: RunDir) -> tuple[int, int]:
    """The judge calls a resume of a run whose every call was sent would make."""
    import polars as pl

    from runner.experiment._judging import judge_options
    from runner.judge import pending_calls

    options = judge_options(
        experiment.judges,
        baseline=experiment.baseline_variant,
        base_url=None,
        retry_errors=experiment.config.retry_errors,
    )
    if options is None:
        return 0, 0
    results = pl.scan_parquet(rundir.results)
    return pending_calls(rundir, results, options)
