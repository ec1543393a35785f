"""What judging writes, never into ``results.parquet``: the pointwise judgements
(``judgements.parquet``, one row per judged outcome: ``judge_score``, ``judge_reason``,
``judge_error``, joined to the results when read) and, for both kinds, the count of failed
calls and unread answers by reason, with one example each.

The pairwise verdicts are written by :func:`runner.judge._pairwise.write_pairwise`.
"""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING

import polars as pl
import pyarrow.parquet as pq

from runner.judge._pairwise import answers, judged_calls
from runner.judge._parse import parse_score, scale_hint
from runner.records import STATUS_OK
from runner.store import JUDGE_KEY, RunDir, atomic_path

if TYPE_CHECKING:
    from runner.judge._judge import JudgeOptions, KindReport


def write_pointwise(
    rundir: RunDir, outcomes: pl.DataFrame, options: JudgeOptions, report: KindReport
) -> None:
    """``judgements.parquet``: each judged outcome's score, reason and error."""
    texts = answers(outcomes)
    parsed = [
        parse_score(a, options.scale, options.pattern) if a is not None else None for a in texts
    ]
    read = [
        pl.Series("judge_score", [p.value if p else None for p in parsed], dtype=pl.Float64),
        pl.Series("judge_reason", [p.reason if p else None for p in parsed], dtype=pl.String),
    ]
    judged = judged_calls(outcomes, parsed, read, ordered=False)
    table = judged.select("row_id", "variant", "repeat", "judge_score", "judge_reason",
                          "judge_error").to_arrow()  # fmt: skip
    metadata = {JUDGE_KEY: f"judge {options.pointwise}".encode()}
    with atomic_path(rundir.judgements) as tmp:
        pq.write_table(table.replace_schema_metadata(metadata), tmp, compression="zstd")
    if not options.keep_score:
        rundir.scores.unlink(missing_ok=True)
    report.unparsed = sum(1 for p in parsed if p is not None and p.error is not None)
    report.hint = scale_hint([p.raw for p in parsed if p is not None], options.scale)
    count_errors(report, outcomes, judged.with_columns(pl.Series("answer", texts, dtype=pl.String)))


def count_errors(report: KindReport, outcomes: pl.DataFrame, judged: pl.DataFrame) -> None:
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
    """The kind of a judge error, without the details that make each one unique, cut at a
    word (never mid-phrase) to fit a console line."""
    if error.startswith("judge call failed"):
        kind = error.split(";")[0]
    else:
        kind = re.sub(r"\d+(\.\d+)?", "N", error)  # a scale 0-10 reads N-N
    return textwrap.shorten(kind, width=80, placeholder=" …")


__all__ = ["count_errors", "write_pointwise"]
