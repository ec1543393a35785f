"""Model-graded scoring: Fetch Hive deployments as judges, pointwise and pairwise.

Judge calls are calls. Each judging pass is an ordinary run of the runner, in its own run
directory under ``OUT/judges/<kind>/``, whose dataset is the table of judge calls still to make
(``pass-NNN.calls.parquet``): so a judge call has the same concurrency limit, retries, rate
limit, breaker, lock, journal and resume as any call, and a finished judgement is never paid
twice. A pass that was interrupted is resumed first; then the calls no pass has an outcome for
make the next pass. When every call has an outcome, the answers are parsed
(:mod:`runner.judge_parse`) and written back:

* pointwise: into ``results.parquet`` as ``score`` / ``score_reason`` / ``judge_error`` (or, when
  a deterministic scorer owns ``score``, as ``judge_score`` / ``judge_reason`` / ``judge_error``);
* pairwise: into ``pairwise.parquet``, one row per (row_id, repeat, variant) against the baseline.

Judging again sends nothing when every judgement is there: it only parses and writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from runner.config import RunConfig
from runner.errors import ConfigError
from runner.fsutil import atomic_path, atomic_write_parquet
from runner.job import RunResult, run_job
from runner.judge_parse import JudgeSpec, parse_score
from runner.pairwise import (
    SEP,
    answers,
    input_column,
    pairwise_calls,
    pairwise_pairs,
    split_ids,
    with_variables,
    write_pairwise,
)
from runner.progress import Display
from runner.records import RESULT_SCHEMA, STATUS_OK
from runner.report_inputs import SCORER_KEY
from runner.rundir import Manifest, RunDir, RunStatus

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
    keep_score: bool = False
    """A deterministic scorer owns ``score``: the judge writes ``judge_score`` instead."""
    baseline: str | None = None
    base_url: str | None = None
    """The API base URL for judge calls (default: the run's)."""

    def __post_init__(self) -> None:
        if self.pointwise is None and self.pairwise is None:
            raise ConfigError("give --judge DEPLOYMENT:VARIANT, --pairwise-judge, or both")
        reserved = {"input", "output", "output_a", "output_b", "expected"}
        clash = sorted(reserved & set(self.variables))
        if clash:
            raise ConfigError(f"--judge-var cannot set {', '.join(clash)}: the runner sets it")


@dataclass
class JudgeReport:
    """What judging did: calls sent per kind, and answers that did not parse."""

    sent: dict[str, int] = field(default_factory=dict)
    unparsed: dict[str, int] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)


def judge_run(
    out_dir: Path,
    options: JudgeOptions,
    *,
    api_key: str | None,
    display: Display | None = None,
    transport: Any = None,
) -> JudgeReport:
    """Judge the run in ``out_dir`` (which must be complete) with ``options``."""
    rundir = RunDir(out_dir)
    manifest = rundir.read_manifest()
    if manifest.status is not RunStatus.COMPLETE:
        raise ConfigError(
            f"{out_dir} is {manifest.status.value}: judge a complete run (resume it first)"
        )
    main = RunConfig.from_mapping({**manifest.config, "resume": False, "retry_errors": False})
    results = pl.scan_parquet(rundir.results)
    report = JudgeReport()
    if options.pointwise is not None:
        calls = pointwise_calls(results, options.variables)
        outcomes = _judge(rundir, "pointwise", options.pointwise, calls, main, manifest, options,
                          api_key, display, transport, report)  # fmt: skip
        report.unparsed["pointwise"] = _write_pointwise(rundir, outcomes, options)
    if options.pairwise is not None:
        variants = manifest.variants
        baseline = options.baseline or (variants[0] if variants else None)
        if baseline is None or len(variants) < 2:
            raise ConfigError("--pairwise-judge needs a run with two or more variants")
        if baseline not in variants:
            raise ConfigError(f"--baseline-variant {baseline!r} is not one of {variants}")
        pairs = pairwise_pairs(results, baseline)
        calls = pairwise_calls(pairs, options.variables)
        outcomes = _judge(rundir, "pairwise", options.pairwise, calls, main, manifest, options,
                          api_key, display, transport, report)  # fmt: skip
        report.unparsed["pairwise"] = write_pairwise(rundir, pairs, outcomes, baseline)
    return report


# ------------------------------------------------------------------------------ the calls


def pointwise_calls(results: pl.LazyFrame, variables: Mapping[str, str]) -> pl.LazyFrame:
    """One judge call per ok outcome: id, input, output, expected, the judge vars, role and
    judged_variant (the last two are sent as metadata)."""
    key = pl.concat_str(
        [pl.col("variant"), pl.col("repeat").cast(pl.String), pl.col("row_id")], separator=SEP
    )
    calls = results.filter(pl.col("status") == STATUS_OK).select(
        key.alias("id"),
        input_column(results).alias("input"),
        pl.col("output").fill_null(""),
        pl.col("expected").fill_null(""),
        pl.lit("judge").alias("role"),
        pl.col("variant").alias("judged_variant"),
    )
    return with_variables(calls, variables)


# ------------------------------------------------------------------------------ the passes


def _judge(
    rundir: RunDir,
    kind: Kind,
    spec: JudgeSpec,
    calls: pl.LazyFrame,
    main: RunConfig,
    manifest: Manifest,
    options: JudgeOptions,
    api_key: str | None,
    display: Display | None,
    transport: Any,
    report: JudgeReport,
) -> pl.DataFrame:
    """Make every judge call that has no outcome yet; return all outcomes (id, status,
    output, error_message) of this kind and judge."""
    home = rundir.judges(kind)
    home.mkdir(parents=True, exist_ok=True)
    sent = 0
    for done in _passes(home):
        if RunDir(done).read_manifest().status is not RunStatus.COMPLETE:
            config = RunConfig.from_mapping({**RunDir(done).read_manifest().config, "resume": True})
            sent += _run_pass(config, api_key, display, transport).counters.done
    outcomes = _outcomes(home, spec)
    pending = calls.join(outcomes.lazy().select("id"), on="id", how="anti").collect()
    if pending.height:
        index = len(_passes(home))
        source = home / f"pass-{index:03d}.calls.parquet"
        atomic_write_parquet(source, pending)
        inputs = [c for c in pending.columns if c not in ("id", "role", "judged_variant")]
        config = replace(
            main,
            dataset=(str(source),),
            out_dir=home / f"pass-{index:03d}",
            deployment=spec.deployment,
            variants=(spec.variant,),
            input_format="parquet",
            id_column="id",
            input_columns=tuple(inputs),
            metadata_columns=("role", "judged_variant"),
            expected_column=None,
            limit=None,
            repeat=1,
            stream=False,
            shard=None,
            run_id=manifest.run_id,
            base_url=options.base_url or main.base_url,
        )
        sent += _run_pass(config, api_key, display, transport).counters.done
        outcomes = _outcomes(home, spec)
    report.sent[kind] = sent
    return outcomes


def _passes(home: Path) -> list[Path]:
    return sorted(p for p in home.glob("pass-*") if p.is_dir())


def _run_pass(
    config: RunConfig, api_key: str | None, display: Display | None, transport: Any
) -> RunResult:
    return run_job(config, api_key=api_key, display=display, transport=transport)


def _outcomes(home: Path, spec: JudgeSpec) -> pl.DataFrame:
    """The outcomes of every complete pass of this judge (a pass of another judge, say after
    --judge changed, is not reused)."""
    frames = []
    for path in _passes(home):
        manifest = RunDir(path).read_manifest()
        if (manifest.deployment, tuple(manifest.variants)) != (spec.deployment, (spec.variant,)):
            continue
        if RunDir(path).results.exists():
            frames.append(
                pl.scan_parquet(RunDir(path).results).select(
                    pl.col("row_id").alias("id"), "status", "output", "error_message"
                )
            )
    if not frames:
        return pl.DataFrame(
            schema=dict.fromkeys(("id", "status", "output", "error_message"), pl.String)
        )
    return pl.concat(frames).unique("id", keep="last").collect()


# ------------------------------------------------------------------------------- writing


def _write_pointwise(rundir: RunDir, outcomes: pl.DataFrame, options: JudgeOptions) -> int:
    """Join the parsed scores into results.parquet; return how many answers did not parse."""
    parsed = [parse_score(a, options.scale) if a is not None else None for a in answers(outcomes)]
    errors = [
        (p.error if p is not None else f"judge call failed: {msg}")
        for p, msg in zip(parsed, outcomes["error_message"], strict=True)
    ]
    score, reason = (
        ("judge_score", "judge_reason") if options.keep_score else ("score", "score_reason")
    )
    judged = split_ids(outcomes["id"], ordered=False).with_columns(
        pl.Series(score, [p.value if p else None for p in parsed], dtype=pl.Float64),
        pl.Series(reason, [p.reason if p else None for p in parsed], dtype=pl.String),
        pl.Series("judge_error", errors, dtype=pl.String),
    )
    keys = ["row_id", "variant", "repeat"]
    results = pl.read_parquet(rundir.results)
    stale = [c for c in (score, reason, "judge_error") if c in results.columns]
    merged = results.drop(stale).join(judged, on=keys, how="left", maintain_order="left")
    table = merged.to_arrow()
    old = pq.read_schema(rundir.results).metadata or {}
    metadata = dict(old)
    if not options.keep_score:
        metadata[SCORER_KEY] = f"judge {options.pointwise}".encode()
    fields = [
        RESULT_SCHEMA.field(n) if n in RESULT_SCHEMA.names else table.schema.field(n)
        for n in table.column_names
    ]
    with atomic_path(rundir.results) as tmp:
        pq.write_table(table.cast(pa.schema(fields, metadata=metadata)), tmp, compression="zstd")
    return sum(1 for p in parsed if p is not None and p.error is not None)


def judge_agreement(results: pl.DataFrame, deterministic: str, judge: str) -> pl.DataFrame:
    """Per variant: how often the judge (score >= 0.5) agrees with a 0/1 deterministic score,
    and Cohen's kappa, over rows scored by both."""
    rows: list[dict[str, Any]] = []
    both = results.filter(pl.col(deterministic).is_not_null() & pl.col(judge).is_not_null())
    for (variant,), group in both.group_by("variant", maintain_order=True):
        det = (group[deterministic] >= 0.5).to_list()
        jud = (group[judge] >= 0.5).to_list()
        rows.append({"variant": variant, **_kappa(det, jud)})
    return pl.DataFrame(
        rows,
        schema={"variant": pl.String, "judge_rows": pl.Int64, "judge_agreement": pl.Float64,
                "judge_kappa": pl.Float64},
    )  # fmt: skip


def _kappa(a: Sequence[bool], b: Sequence[bool]) -> dict[str, Any]:
    n = len(a)
    if n == 0:
        return {"judge_rows": 0, "judge_agreement": None, "judge_kappa": None}
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    kappa = None if expected == 1 else (observed - expected) / (1 - expected)
    return {"judge_rows": n, "judge_agreement": observed, "judge_kappa": kappa}
