"""Model-graded scoring: Fetch Hive deployments as judges, pointwise and pairwise.

Judge calls are calls. Each judging pass is an ordinary run of the runner, in its own run
directory under ``OUT/judges/<kind>/``, whose dataset is the table of judge calls still to make
(``pass-NNN.calls.parquet``): so a judge call has the same concurrency limit, retries, rate
limit, breaker, lock, journal and resume as any call, and a finished judgement is never paid
twice. The caller runs the passes (``send``, a :class:`~runner.judge._passes.SendPass`): the
judge package composes no stage of its own. A pass of the same judge that was interrupted is
resumed first (with the options given now); a pass of another judge (a typo corrected, say) is
left alone. Then the calls that have no outcome from this judge (with ``retry_errors``: no ok
outcome) make the next pass (:mod:`runner.judge._passes`). When every call has an outcome, the
answers are read (:mod:`runner.judge._parse`) and written, never into ``results.parquet``:

* pointwise: ``judgements.parquet``, one row per judged outcome (``judge_score``,
  ``judge_reason``, ``judge_error``), joined to the results when read
  (:func:`runner.store._results.scan_scored`; written by :mod:`runner.judge._verdicts`);
* pairwise: ``pairwise.parquet``, one row per (row_id, repeat, variant) against the baseline
  (:mod:`runner.judge._pairwise`).

Judging again sends nothing when every judgement is there: it only reads and writes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from runner.config import RunConfig
from runner.errors import ConfigError
from runner.judge._pairwise import pairwise_calls, pairwise_pairs, write_pairwise
from runner.judge._parse import JudgeSpec
from runner.judge._passes import Kind, SendPass, pass_outcomes, pointwise_calls, run_passes
from runner.judge._verdicts import count_errors, write_pointwise
from runner.records import STATUS_OK
from runner.store import RunDir


@dataclass(frozen=True)
class JudgeOptions:
    """What to judge with, and how."""

    pointwise: JudgeSpec | None = None
    pairwise: JudgeSpec | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    """``--judge-var NAME=VALUE``: more prompt inputs of every judge call (a rubric, say)."""
    scale: tuple[float, float] | None = None
    """``--judge-scale MIN-MAX``: the pointwise judge's scale, mapped onto [0, 1]."""
    baseline: str | None = None
    base_url: str | None = None
    """The API base URL for judge calls (default: the run's)."""
    pattern: re.Pattern[str] | None = None
    """``--judge-pattern``: the first group of its last match is the score."""
    pairwise_pattern: re.Pattern[str] | None = None
    """``--pairwise-pattern``: the first group of its last match is the winner."""
    retry_errors: bool = False
    """Send again the judge calls that ended in an error (HTTP errors, not unread answers)."""
    keep_score: bool = False
    """A deterministic scorer owns ``score``: the judge's is ``judge_score``. Otherwise the
    judge's score is the run's score, and an earlier scorer's ``scores.parquet`` goes."""

    def __post_init__(self) -> None:
        if self.pointwise is None and self.pairwise is None:
            raise ConfigError("give --judge DEPLOYMENT:VARIANT, --pairwise-judge, or both")
        reserved = {"input", "output", "output_a", "output_b", "expected"}
        clash = sorted(reserved & set(self.variables))
        if clash:
            raise ConfigError(f"--judge-var cannot set {', '.join(clash)}: the runner sets it")


@dataclass
class KindReport:
    """One judge's pass over a run: what was sent, judged, failed and not read."""

    sent: int = 0
    calls: int = 0
    """Judge calls the run asks for (made now or before)."""
    failed: int = 0
    """Calls that ended in an error (HTTP, timeout): ``--retry-errors`` sends them again."""
    unparsed: int = 0
    """Answers in which no verdict could be read."""
    reasons: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    """One answer (or error) per reason, as the judge gave it."""
    hint: str | None = None

    @property
    def errors(self) -> int:
        return self.failed + self.unparsed

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass
class JudgeReport:
    """What judging did, per kind (``pointwise``, ``pairwise``)."""

    kinds: dict[str, KindReport] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)

    @property
    def sent(self) -> dict[str, int]:
        return {kind: report.sent for kind, report in self.kinds.items()}

    @property
    def unparsed(self) -> dict[str, int]:
        return {kind: report.unparsed for kind, report in self.kinds.items()}


def judge_run(out_dir: Path, options: JudgeOptions, *, send: SendPass) -> JudgeReport:
    """Judge the run in ``out_dir`` (every call sent) with ``options``, under its lock;
    ``send`` runs each judging pass (:class:`~runner.judge._passes.SendPass`)."""
    rundir = RunDir(out_dir)
    with rundir.locked():
        manifest = rundir.read_manifest()
        if not manifest.sending_done:
            raise ConfigError(
                f"{out_dir} is {manifest.status.value}: judge a run whose every call was sent "
                "(resume it first)"
            )
        parent = RunConfig.from_mapping({**manifest.config, "resume": False, "retry_errors": False})
        results = pl.scan_parquet(rundir.results)
        report = JudgeReport()
        if options.pointwise is not None:
            calls = pointwise_calls(results, options.variables)
            kind = report.kinds["pointwise"] = KindReport()
            outcomes = run_passes(rundir, "pointwise", options.pointwise, calls, parent, manifest,
                              options, send, kind)  # fmt: skip
            write_pointwise(rundir, outcomes, options, kind)
            report.paths.append(rundir.judgements)
        if options.pairwise is not None:
            variants = manifest.variants
            baseline = options.baseline or (variants[0] if variants else None)
            if baseline is None or len(variants) < 2:
                raise ConfigError("--pairwise-judge needs a run with two or more variants")
            if baseline not in variants:
                raise ConfigError(f"--baseline-variant {baseline!r} is not one of {variants}")
            pairs = pairwise_pairs(results, baseline)
            calls = pairwise_calls(pairs, options.variables)
            kind = report.kinds["pairwise"] = KindReport()
            outcomes = run_passes(rundir, "pairwise", options.pairwise, calls, parent, manifest,
                              options, send, kind)  # fmt: skip
            kind.unparsed = write_pairwise(
                rundir, pairs, outcomes, baseline, options.pairwise_pattern
            )
            count_errors(kind, outcomes, pl.read_parquet(rundir.pairwise))
            report.paths.append(rundir.pairwise)
    return report


def pending_calls(rundir: RunDir, results: pl.LazyFrame, options: JudgeOptions) -> tuple[int, int]:
    """How many pointwise and pairwise judge calls judging would send now (a dry run)."""
    counts = []
    kinds: tuple[tuple[Kind, JudgeSpec | None], ...] = (
        ("pointwise", options.pointwise), ("pairwise", options.pairwise),
    )  # fmt: skip
    for kind, spec in kinds:
        if spec is None:
            counts.append(0)
            continue
        if kind == "pointwise":
            calls = pointwise_calls(results, options.variables)
        else:
            baseline = options.baseline or RunDir(rundir.root).read_manifest().variants[0]
            calls = pairwise_calls(pairwise_pairs(results, baseline), options.variables)
        outcomes = pass_outcomes(rundir, kind, spec)
        if options.retry_errors:
            outcomes = outcomes.filter(status=STATUS_OK)
        pending = calls.join(outcomes.lazy().select("id"), on="id", how="anti")
        counts.append(pending.select(pl.len()).collect().item())
    return counts[0], counts[1]


__all__ = [
    "JudgeOptions",
    "JudgeReport",
    "KindReport",
    "judge_run",
    "pending_calls",
]
