"""The typed experiment: what is sent (:class:`RunConfig`) and everything done after it.

One :class:`Experiment` is the whole job; :func:`experiment_from_params` builds it from
``runner run``'s parameters (the command line and the experiment file merged) and
:func:`experiment_params` gives them back, so ``OUT/experiment.toml`` holds an experiment that
runs again as it is (``runner rerun``) and a fresh process can carry on from it.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

from runner.config import RunConfig, parse_tag
from runner.errors import ConfigError, RunnerError
from runner.experiment._fields import FRESH_PROCESS_FROM
from runner.gates import Gates
from runner.store import DEFAULT_MEMORY, MemoryPlan, RunDir, RunStatus


class Stage(enum.StrEnum):
    """The stages of an experiment, in order; the manifest records the one reached."""

    SEND = "send"
    COMPACT = "compact"
    JUDGE = "judge"
    EXPORT = "export"
    REPORT = "report"
    GATE = "gate"
    DONE = "done"


@dataclass(frozen=True)
class JudgePlan:
    """The judges of an experiment (none by default)."""

    judge: str | None = None
    """``DEPLOYMENT:VARIANT`` of the pointwise judge."""
    pairwise_judge: str | None = None
    variables: tuple[str, ...] = ()
    """``NAME=VALUE`` prompt inputs of every judge call (a rubric, say)."""
    scale: str | None = None
    """``MIN-MAX`` of the pointwise judge's scores."""
    pattern: str | None = None
    pairwise_pattern: str | None = None
    max_error_rate: float = 0.05
    """Largest share of judge errors (failed calls plus unread answers) a judge may have."""

    @property
    def any(self) -> bool:
        return self.judge is not None or self.pairwise_judge is not None


@dataclass(frozen=True)
class ExportPlan:
    """Where the dataset with its new columns goes when the run ends (nowhere by default)."""

    to: Path | None = None
    overwrite: bool = False
    prefix: str = ""
    csv_raw: bool = False


@dataclass(frozen=True)
class Experiment:
    """One whole job: send, compact, judge, export, report, gate, error budget."""

    config: RunConfig
    score: str | None = None
    """A deterministic scorer (default ``exact`` when the dataset has an expected column and
    no pointwise judge owns the score)."""
    judges: JudgePlan = field(default_factory=JudgePlan)
    export: ExportPlan = field(default_factory=ExportPlan)
    report: bool = True
    """False (``--no-report``): write no reports; gates and the error budget still apply."""
    baseline_variant: str | None = None
    gates: Gates = field(default_factory=Gates)
    compare_with: Path | None = None
    """A folder of past runs (or one run) to compare with and gate on."""
    allow_no_baseline: bool = False
    allow_different_deployment: bool = False
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    ray_tasks: int = 4
    fresh_process_from: int = FRESH_PROCESS_FROM
    """Runs of at least this many calls end in a fresh process; 0 never."""
    memory: MemoryPlan = DEFAULT_MEMORY
    """The piece sizes of the export and the reports (:mod:`runner.store._memory`); not written to
    ``OUT/experiment.toml``: it changes how much they hold at a time, never what they write.
    Compaction (inside the send stage) still runs with
    :data:`~runner.store._memory.DEFAULT_MEMORY`."""

    def __post_init__(self) -> None:
        if self.fresh_process_from < 0:
            raise ConfigError(
                f"--fresh-process-from must be 0 (never) or more, got {self.fresh_process_from}"
            )
        if self.ray_tasks < 1:
            raise ConfigError(f"--ray-tasks must be at least 1, got {self.ray_tasks}")
        rate = self.judges.max_error_rate
        if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
            raise ConfigError(f"--max-judge-error-rate must be in [0, 1], got {rate}")

    @property
    def out_dir(self) -> Path:
        return RunDir.of(self.config).root

    @property
    def scorer(self) -> str | None:
        """The deterministic scorer the reports use."""
        if self.score is not None:
            return self.score
        if self.judges.judge is not None:
            return None  # the judge's score is the run's score
        return "exact" if self.config.expected_column else None


@dataclass
class ExperimentResult:
    """How an experiment ended: its status, the stage reached, the exit code and why."""

    out_dir: Path
    status: RunStatus
    stage: Stage
    exit_code: int
    error: RunnerError | None = None
    """The error behind a non-zero exit code (a failed gate, the error budget, a signal)."""
    verdicts: dict[str, str] = field(default_factory=dict)
    """Each stage's outcome by name (``done``, ``skipped``, ``interrupted``, ``failed``)."""
    paths: dict[str, Path] = field(default_factory=dict)
    """What was written: ``results``, ``report``, ``export``, ``regression``, …"""
    sent: dict[str, int] = field(default_factory=dict)
    """Calls sent in this session by stage: ``send``, ``pointwise``, ``pairwise``."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def raise_for_status(self) -> None:
        """Raise the error behind a non-zero exit code (a library caller's ``check``)."""
        if self.error is not None:
            raise self.error


# ----------------------------------------------------------------- parameters, both ways


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    index, sep, count = text.partition("/")
    try:
        if not sep:
            raise ValueError
        return int(index), int(count)
    except ValueError:
        raise ConfigError(f"--shard {text!r} is not I/N (for example 0/4)") from None


def _finite(name: str, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ConfigError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
    return value


#: ``run`` parameters that map one to one onto a RunConfig field of the same name.
_CONFIG_SAME: Final = (
    "deployment", "input_format", "id_column", "expected_column", "limit", "sample", "seed",
    "repeat", "experiment", "user", "base_url", "stream", "concurrency", "max_attempts",
    "timeout", "rps", "adaptive", "max_outage", "max_error_rate", "max_response_bytes",
    "grace_period", "resume", "retry_errors", "run_id",
)  # fmt: skip
#: Gate parameters: ``run`` name → :class:`Gates` field.
_GATES: Final = {
    "max_error_rate_increase": "max_error_rate_increase",
    "max_p95_latency_increase": "max_p95_latency_increase_pct",
    "max_score_drop": "max_score_drop_points",
    "min_agreement": "min_agreement",
    "require_significance": "require_significance",
    "min_coverage": "min_coverage",
    "min_win_rate": "min_win_rate",
    "min_judge_consistency": "min_judge_consistency",
}


def default_out(deployment: str | None, now: datetime | None = None) -> Path:
    return Path("reports") / f"{deployment}-{(now or datetime.now()):%Y%m%d-%H%M%S}"


def experiment_from_params(params: Mapping[str, Any]) -> Experiment:
    """The :class:`Experiment` of ``runner run``'s parsed parameters (:class:`ConfigError`,
    exit 2, for a bad value: found before anything is sent)."""
    from runner.experiment._file import fill_placeholders

    get = params.get
    if not get("dataset"):
        raise ConfigError(
            "no dataset given: name it on the command line or as dataset in the --config file"
        )
    for name, value in params.items():
        if isinstance(value, float):
            _finite(name, value)
    out = get("out")
    out = default_out(get("deployment")) if out is None else out
    out = Path(fill_placeholders(str(out), datetime.now(), "--out"))
    config = RunConfig(
        dataset=tuple(str(d) for d in params["dataset"]),
        out_dir=out,
        variants=tuple(get("variants") or ()),
        input_columns=tuple(get("input_columns") or ()),
        metadata_columns=tuple(get("metadata_columns") or ()),
        segment_columns=tuple(get("segment_columns") or ()),
        tags=dict(parse_tag(t) for t in get("tags") or ()),
        shard=_shard(get("shard")),
        deployment=get("deployment") or "",
        **{name: params[name] for name in _CONFIG_SAME[1:] if get(name) is not None},
    )
    gate_values = {field: get(name) for name, field in _GATES.items() if name in _gate_fields()}
    export_to = get("export_to")
    return Experiment(
        config=config,
        score=get("score"),
        judges=JudgePlan(
            judge=get("judge"),
            pairwise_judge=get("pairwise_judge"),
            variables=tuple(get("judge_vars") or ()),
            scale=get("judge_scale"),
            pattern=get("judge_pattern"),
            pairwise_pattern=get("pairwise_pattern"),
            max_error_rate=_or(get("max_judge_error_rate"), 0.05),
        ),
        export=ExportPlan(
            to=None if export_to is None else Path(export_to),
            overwrite=bool(get("overwrite")),
            prefix=get("export_prefix") or "",
            csv_raw=bool(get("csv_raw")),
        ),
        report=not get("no_report"),
        baseline_variant=get("baseline_variant"),
        gates=Gates(**gate_values),
        compare_with=_path(get("compare_with")),
        allow_no_baseline=bool(get("allow_no_baseline")),
        allow_different_deployment=bool(get("allow_different_deployment")),
        executor=get("executor") or "local",
        ray_address=get("ray_address"),
        ray_tasks=_or(get("ray_tasks"), 4),
        fresh_process_from=_or(get("fresh_process_from"), FRESH_PROCESS_FROM),
    )


def _path(value: Any) -> Path | None:
    return None if value is None else Path(value)


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _gate_fields() -> frozenset[str]:
    names = {f.name for f in dataclasses.fields(Gates)}
    return frozenset(name for name, field in _GATES.items() if field in names)


def experiment_params(experiment: Experiment) -> dict[str, Any]:
    """``runner run``'s parameters of ``experiment`` (the inverse of
    :func:`experiment_from_params`, for ``OUT/experiment.toml``): absolute paths, so the file
    runs the same job from any working directory."""
    config = experiment.config
    params: dict[str, Any] = {name: getattr(config, name) for name in _CONFIG_SAME}
    for name in ("resume", "retry_errors", "run_id"):
        params.pop(name)
    params.update(
        dataset=tuple(_absolute_dataset(d) for d in config.dataset),
        out=_absolute(config.out_dir),
        variants=config.variants,
        input_columns=config.input_columns,
        metadata_columns=config.metadata_columns,
        segment_columns=config.segment_columns,
        tags=tuple(f"{k}={v}" for k, v in config.tags.items()),
        shard=None if config.shard is None else f"{config.shard[0]}/{config.shard[1]}",
        score=experiment.score,
        judge=experiment.judges.judge,
        pairwise_judge=experiment.judges.pairwise_judge,
        judge_vars=experiment.judges.variables,
        judge_scale=experiment.judges.scale,
        judge_pattern=experiment.judges.pattern,
        pairwise_pattern=experiment.judges.pairwise_pattern,
        max_judge_error_rate=experiment.judges.max_error_rate,
        export_to=None if experiment.export.to is None else _absolute(experiment.export.to),
        overwrite=experiment.export.overwrite,
        export_prefix=experiment.export.prefix or None,
        csv_raw=experiment.export.csv_raw,
        no_report=not experiment.report,
        baseline_variant=experiment.baseline_variant,
        compare_with=None
        if experiment.compare_with is None
        else _absolute(experiment.compare_with),
        allow_no_baseline=experiment.allow_no_baseline,
        allow_different_deployment=experiment.allow_different_deployment,
        executor=experiment.executor,
        ray_address=experiment.ray_address,
        ray_tasks=experiment.ray_tasks,
        fresh_process_from=experiment.fresh_process_from,
    )
    for name, field_name in _GATES.items():
        if name in _gate_fields():
            params[name] = getattr(experiment.gates, field_name)
    return params


def _absolute(path: Path) -> Path:
    """``path`` from the root, ``..`` resolved (links are not: a glob may name none yet)."""
    return Path(os.path.abspath(path.expanduser()))


def _absolute_dataset(entry: str) -> str:
    return str(_absolute(Path(entry)))
