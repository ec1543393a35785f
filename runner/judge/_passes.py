"""The judge calls of a run and the passes that make them.

A judging pass is an ordinary run of the runner, in its own run directory under
``OUT/judges/<kind>/pass-NNN``, whose dataset is the table of judge calls still to make
(``pass-NNN.calls.parquet``). The judge package does not send: the caller supplies the
:class:`SendPass` that runs a pass (the experiment's judge stage runs it as a session of its
own), so a judge call has the same limits, retries, journal and resume as any call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Protocol

import polars as pl

from runner.config import RunConfig
from runner.judge._pairwise import call_id, input_column, with_variables
from runner.records import STATUS_OK
from runner.store import Manifest, RunDir, RunStatus, atomic_write_parquet, judge_pass_calls

if TYPE_CHECKING:
    from runner.judge._judge import JudgeOptions, KindReport
    from runner.judge._parse import JudgeSpec
    from runner.run import RunResult

Kind = Literal["pointwise", "pairwise"]


class SendPass(Protocol):
    """Runs one judging pass (its :class:`RunConfig`) to the end, as a run of its own."""

    def __call__(self, config: RunConfig, kind: Kind, /) -> RunResult: ...


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


def run_passes(
    rundir: RunDir,
    kind: Kind,
    spec: JudgeSpec,
    calls: pl.LazyFrame,
    parent: RunConfig,
    manifest: Manifest,
    options: JudgeOptions,
    send: SendPass,
    report: KindReport,
) -> pl.DataFrame:
    """Make every judge call that has no outcome from this judge yet; return all outcomes
    (id, status, output, error_message) of this kind and judge."""
    rundir.judges(kind).mkdir(parents=True, exist_ok=True)

    def config_of(source: Path, out: Path, columns: Sequence[str], resume: bool) -> RunConfig:
        metadata = [c for c in columns if c in METADATA_COLUMNS]
        inputs = [c for c in columns if c != "id" and c not in METADATA_COLUMNS]
        return judge_pass_config(
            parent, run_id=manifest.run_id, spec=spec, source=source, out_dir=out,
            inputs=inputs, metadata=metadata, base_url=options.base_url, resume=resume,
        )  # fmt: skip

    for done in rundir.judge_passes(kind):
        pass_manifest = RunDir(done).read_manifest()
        if pass_manifest.status is RunStatus.COMPLETE or not _same_judge(pass_manifest, spec):
            continue  # finished, or another judge's (its calls go to this judge's next pass)
        source = judge_pass_calls(done)
        columns = pl.read_parquet_schema(source)
        report.sent += send(config_of(source, done, list(columns), True), kind).counters.done
    outcomes = pass_outcomes(rundir, kind, spec)
    finished = outcomes if not options.retry_errors else outcomes.filter(status=STATUS_OK)
    pending = calls.join(finished.lazy().select("id"), on="id", how="anti").collect()
    if pending.height:
        pass_dir, source = rundir.judge_pass(kind, len(rundir.judge_passes(kind)))
        atomic_write_parquet(source, pending)
        config = config_of(source, pass_dir, pending.columns, False)
        report.sent += send(config, kind).counters.done
        outcomes = pass_outcomes(rundir, kind, spec)
    report.calls = calls.select(pl.len()).collect().item()
    return outcomes.join(calls.select("id").collect(), on="id", how="semi")


def _same_judge(manifest: Manifest, spec: JudgeSpec) -> bool:
    return (manifest.deployment, tuple(manifest.variants)) == (spec.deployment, (spec.variant,))


def pass_outcomes(rundir: RunDir, kind: Kind, spec: JudgeSpec) -> pl.DataFrame:
    """The outcomes of every pass of this judge, the latest per call (a pass of another
    judge, say before --judge was corrected, is not reused)."""
    frames = []
    for path in rundir.judge_passes(kind):
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


__all__ = [
    "INHERITED",
    "METADATA_COLUMNS",
    "Kind",
    "SendPass",
    "judge_metadata",
    "judge_pass_config",
    "pass_outcomes",
    "pointwise_calls",
    "run_passes",
]
