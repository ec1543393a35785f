"""Model-graded scoring: Fetch Hive deployments as judges, pointwise and pairwise.

Judge calls are calls. Each judging pass is an ordinary run of the runner, in its own run
directory under ``OUT/judges/<kind>/``, whose dataset is the table of judge calls still to make
(``pass-NNN.calls.parquet``): so a judge call has the same concurrency limit, retries, rate
limit, breaker, lock, journal and resume as any call, and a finished judgement is never paid
twice. A pass of the same judge that was interrupted is resumed first (with the options given
now); a pass of another judge (a typo corrected, say) is left alone. Then the calls that have
no outcome from this judge (with ``retry_errors``: no ok outcome) make the next pass. When every
call has an outcome, the answers are read (:mod:`runner.judge._parse`) and written, never into
``results.parquet``:

* pointwise: ``judgements.parquet``, one row per judged outcome (``judge_score``,
  ``judge_reason``, ``judge_error``), joined to the results when read
  (:func:`runner.store._results.scan_scored`);
* pairwise: ``pairwise.parquet``, one row per (row_id, repeat, variant) against the baseline.

Judging again sends nothing when every judgement is there: it only reads and writes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import polars as pl
import pyarrow.parquet as pq

from runner.config import RunConfig
from runner.errors import ConfigError
from runner.judge._pairwise import (
    answers,
    call_id,
    input_column,
    pairwise_calls,
    pairwise_pairs,
    split_ids,
    with_variables,
    write_pairwise,
)
from runner.judge._parse import JudgeSpec, parse_score, scale_hint
from runner.records import STATUS_OK
from runner.run import Display, RunResult, run_job
from runner.store import JUDGE_KEY, Manifest, RunDir, RunStatus, atomic_path, atomic_write_parquet

Kind = Literal["pointwise", "pairwise"]


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


@dataclass(frozen=True)
class PassRunner:
    """How a judging pass sends: the same hooks as the run's own session."""

    api_key: str | None
    display: Display | None = None
    transport: Any = None
    handle_signals: bool = False
    quit_now: Callable[[], None] | None = None

    def __call__(self, config: RunConfig, kind: Kind) -> RunResult:
        return run_job(
            config,
            api_key=self.api_key,
            display=self.display,
            transport=self.transport,
            handle_signals=self.handle_signals,
            quit_now=self.quit_now,
            phase="judge" if kind == "pointwise" else "pairwise",
        )


def judge_run(
    out_dir: Path,
    options: JudgeOptions,
    *,
    api_key: str | None,
    display: Display | None = None,
    transport: Any = None,
    handle_signals: bool = False,
    quit_now: Callable[[], None] | None = None,
) -> JudgeReport:
    """Judge the run in ``out_dir`` (every call sent) with ``options``, under its lock."""
    rundir = RunDir(out_dir)
    send = PassRunner(api_key, display, transport, handle_signals, quit_now)
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
            outcomes = _judge(rundir, "pointwise", options.pointwise, calls, parent, manifest,
                              options, send, kind)  # fmt: skip
            _write_pointwise(rundir, outcomes, options, kind)
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
            outcomes = _judge(rundir, "pairwise", options.pairwise, calls, parent, manifest,
                              options, send, kind)  # fmt: skip
            kind.unparsed = write_pairwise(
                rundir, pairs, outcomes, baseline, options.pairwise_pattern
            )
            _count(kind, outcomes, pl.read_parquet(rundir.pairwise))
            report.paths.append(rundir.pairwise)
    return report


def pending_calls(rundir: RunDir, results: pl.LazyFrame, options: JudgeOptions) -> tuple[int, int]:
    """How many pointwise and pairwise judge calls judging would send now (a dry run)."""
    counts = []
    for kind, spec in (("pointwise", options.pointwise), ("pairwise", options.pairwise)):
        if spec is None:
            counts.append(0)
            continue
        if kind == "pointwise":
            calls = pointwise_calls(results, options.variables)
        else:
            baseline = options.baseline or RunDir(rundir.root).read_manifest().variants[0]
            calls = pairwise_calls(pairwise_pairs(results, baseline), options.variables)
        outcomes = _outcomes(rundir.judges(kind), spec)
        if options.retry_errors:
            outcomes = outcomes.filter(status=STATUS_OK)
        pending = calls.join(outcomes.lazy().select("id"), on="id", how="anti")
        counts.append(pending.select(pl.len()).collect().item())
    return counts[0], counts[1]


# ------------------------------------------------------------------------------ the calls


def pointwise_calls(results: pl.LazyFrame, variables: Mapping[str, str]) -> pl.LazyFrame:
    """One judge call per ok outcome: id, input, output, expected, the judge vars, and the
    metadata of the call (role, judged_variant, judged_row_id, judged_repeat)."""
    calls = results.filter(pl.col("status") == STATUS_OK).select(
        call_id("variant", "repeat", "row_id").alias("id"),
        input_column(results).alias("input"),
        pl.col("output").fill_null(""),
        pl.col("expected").fill_null(""),
        *judge_metadata(),
    )
    return with_variables(calls, variables)


def judge_metadata(order: str | None = None) -> list[pl.Expr]:
    """The metadata of a judge call: what it judges (the dataset's row id and repeat)."""
    exprs = [
        pl.lit("judge").alias("role"),
        pl.col("variant").alias("judged_variant"),
        pl.col("row_id").alias("judged_row_id"),
        pl.col("repeat").alias("judged_repeat"),
    ]
    if order is not None:
        exprs.append(pl.lit(order).alias("order"))
    return exprs


METADATA_COLUMNS: Final = ("role", "judged_variant", "judged_row_id", "judged_repeat", "order")

# ------------------------------------------------------------------------------ the passes

#: The :class:`RunConfig` fields a judge pass takes from the run it judges, on purpose: who
#: the calls are for (experiment, tags, user) and how fast and how patiently they are sent.
#: Every other field is set by :func:`judge_pass_config` (a test holds the two lists whole).
INHERITED: Final = (
    "experiment", "tags", "user", "concurrency", "max_attempts", "timeout", "backoff_initial",
    "backoff_max", "max_elapsed", "rps", "adaptive", "max_outage", "max_error_rate",
    "max_response_bytes", "grace_period",
)  # fmt: skip


def judge_pass_config(
    parent: RunConfig,
    *,
    run_id: str,
    spec: JudgeSpec,
    source: Path,
    out_dir: Path,
    inputs: Sequence[str],
    metadata: Sequence[str],
    base_url: str | None,
    resume: bool,
) -> RunConfig:
    """The configuration of one judging pass over ``source`` (its table of judge calls):
    the judge's deployment, the parent run's identity and limits (:data:`INHERITED`), and
    nothing of the parent's selection (no sample, shard, segment, repeat or limit)."""
    inherited = {name: getattr(parent, name) for name in INHERITED}
    return RunConfig(
        dataset=(str(source),),
        out_dir=out_dir,
        deployment=spec.deployment,
        variants=(spec.variant,),
        input_format="parquet",
        id_column="id",
        input_columns=tuple(inputs),
        metadata_columns=tuple(metadata),
        segment_columns=(),
        expected_column=None,
        limit=None,
        sample=None,
        seed=0,
        repeat=1,
        stream=False,
        base_url=base_url or parent.base_url,
        resume=resume,
        retry_errors=False,
        shard=None,
        run_id=run_id,
        metadata_from={
            key: column
            for key, column in (("row_id", "judged_row_id"), ("repeat", "judged_repeat"))
            if column in metadata
        },
        **inherited,
    )


def _judge(
    rundir: RunDir,
    kind: Kind,
    spec: JudgeSpec,
    calls: pl.LazyFrame,
    parent: RunConfig,
    manifest: Manifest,
    options: JudgeOptions,
    send: PassRunner,
    report: KindReport,
) -> pl.DataFrame:
    """Make every judge call that has no outcome from this judge yet; return all outcomes
    (id, status, output, error_message) of this kind and judge."""
    home = rundir.judges(kind)
    home.mkdir(parents=True, exist_ok=True)

    def config_of(source: Path, out: Path, columns: Sequence[str], resume: bool) -> RunConfig:
        metadata = [c for c in columns if c in METADATA_COLUMNS]
        inputs = [c for c in columns if c != "id" and c not in METADATA_COLUMNS]
        return judge_pass_config(
            parent, run_id=manifest.run_id, spec=spec, source=source, out_dir=out,
            inputs=inputs, metadata=metadata, base_url=options.base_url, resume=resume,
        )  # fmt: skip

    for done in _passes(home):
        pass_manifest = RunDir(done).read_manifest()
        if pass_manifest.status is RunStatus.COMPLETE or not _same_judge(pass_manifest, spec):
            continue  # finished, or another judge's (its calls go to this judge's next pass)
        source = _source_of(done)
        columns = pl.read_parquet_schema(source)
        report.sent += send(config_of(source, done, list(columns), True), kind).counters.done
    outcomes = _outcomes(home, spec)
    finished = outcomes if not options.retry_errors else outcomes.filter(status=STATUS_OK)
    pending = calls.join(finished.lazy().select("id"), on="id", how="anti").collect()
    if pending.height:
        index = len(_passes(home))
        source = home / f"pass-{index:03d}.calls.parquet"
        atomic_write_parquet(source, pending)
        config = config_of(source, home / f"pass-{index:03d}", pending.columns, False)
        report.sent += send(config, kind).counters.done
        outcomes = _outcomes(home, spec)
    report.calls = calls.select(pl.len()).collect().item()
    return outcomes.join(calls.select("id").collect(), on="id", how="semi")


def _source_of(pass_dir: Path) -> Path:
    return pass_dir.with_name(pass_dir.name + ".calls.parquet")


def _same_judge(manifest: Manifest, spec: JudgeSpec) -> bool:
    return (manifest.deployment, tuple(manifest.variants)) == (spec.deployment, (spec.variant,))


def _passes(home: Path) -> list[Path]:
    return sorted(p for p in home.glob("pass-*") if p.is_dir())


def _outcomes(home: Path, spec: JudgeSpec) -> pl.DataFrame:
    """The outcomes of every pass of this judge, the latest per call (a pass of another
    judge, say before --judge was corrected, is not reused)."""
    frames = []
    for path in _passes(home):
        manifest = RunDir(path).read_manifest()
        if _same_judge(manifest, spec) and RunDir(path).results.exists():
            frames.append(
                pl.scan_parquet(RunDir(path).results).select(
                    pl.col("row_id").alias("id"), "status", "output", "error_message"
                )
            )
    if not frames:
        return pl.DataFrame(
            schema=dict.fromkeys(("id", "status", "output", "error_message"), pl.String)
        )
    return pl.concat(frames).unique("id", keep="last", maintain_order=True).collect()


# ------------------------------------------------------------------------------- writing


def _write_pointwise(
    rundir: RunDir, outcomes: pl.DataFrame, options: JudgeOptions, report: KindReport
) -> None:
    """``judgements.parquet``: each judged outcome's score, reason and error."""
    texts = answers(outcomes)
    parsed = [
        parse_score(a, options.scale, options.pattern) if a is not None else None for a in texts
    ]
    errors = [
        (p.error if p is not None else f"judge call failed: {msg}")
        for p, msg in zip(parsed, outcomes["error_message"], strict=True)
    ]
    judged = split_ids(outcomes["id"], ordered=False).with_columns(
        pl.Series("judge_score", [p.value if p else None for p in parsed], dtype=pl.Float64),
        pl.Series("judge_reason", [p.reason if p else None for p in parsed], dtype=pl.String),
        pl.Series("judge_error", errors, dtype=pl.String),
    )
    table = judged.select("row_id", "variant", "repeat", "judge_score", "judge_reason",
                          "judge_error").to_arrow()  # fmt: skip
    metadata = {JUDGE_KEY: f"judge {options.pointwise}".encode()}
    with atomic_path(rundir.judgements) as tmp:
        pq.write_table(table.replace_schema_metadata(metadata), tmp, compression="zstd")
    if not options.keep_score:
        rundir.scores.unlink(missing_ok=True)
    report.unparsed = sum(1 for p in parsed if p is not None and p.error is not None)
    report.hint = scale_hint([p.raw for p in parsed if p is not None], options.scale)
    _count(report, outcomes, judged.with_columns(pl.Series("answer", texts, dtype=pl.String)))


def _count(report: KindReport, outcomes: pl.DataFrame, judged: pl.DataFrame) -> None:
    """Failed calls, and the most frequent reasons of judge errors with one example each."""
    report.failed = outcomes.filter(pl.col("status") != STATUS_OK).height
    for column in [c for c in judged.columns if c.startswith("judge_error")]:
        if column == "judge_error" and "judge_error_AB" in judged.columns:
            continue  # a pairwise row's error repeats its orders'
        for error in judged[column].drop_nulls():
            reason = _reason_of(error)
            report.reasons[reason] += 1
            report.examples.setdefault(reason, error)
    if "answer" in judged.columns:
        for error, answer in judged.select("judge_error", "answer").iter_rows():
            if error is not None and answer is not None:
                report.examples[_reason_of(error)] = answer


def _reason_of(error: str) -> str:
    """The kind of a judge error, without the details that make each one unique."""
    if error.startswith("judge call failed"):
        return error.split(";")[0][:80]
    return re.sub(r"[-+]?\d+(\.\d+)?", "N", error)[:80]


__all__ = [
    "INHERITED",
    "JudgeOptions",
    "JudgeReport",
    "KindReport",
    "judge_pass_config",
    "judge_run",
]
