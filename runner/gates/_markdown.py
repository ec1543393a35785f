"""The markdown of a gated comparison, fit for a CI job summary (``regression.md``,
``gate.md``): the verdict, warnings, the gate table, verdict sentences, the metrics, and a
few regressed rows as examples. Pure: frames and dicts in, text out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from runner.gates._gates import RegressionReport
from runner.stats import format_p, score_sentence, test_name

#: Regressed rows regression.md shows as examples, and how much of each output.
EXAMPLE_ROWS: Final = 5
EXAMPLE_CHARS: Final = 80


@dataclass(frozen=True, slots=True)
class RegressedRows:
    """A few rows the candidate did worse on than the baseline, and how many there are."""

    total: int
    rows: tuple[dict[str, Any], ...]


def regressed_rows(
    base: pl.DataFrame, cand: pl.DataFrame, metrics: pl.DataFrame, limit: int = EXAMPLE_ROWS
) -> RegressedRows:
    """Calls whose candidate answer did worse than the baseline's: an error where the baseline
    was ok, or a lower score. One pair of variants per row of ``metrics``
    (``baseline_variant``, ``variant``), matched on row id and repeat."""
    keys = ["row_id", "repeat"]
    columns = [*keys, "output", "status", "score"]
    found: list[pl.DataFrame] = []
    for b_variant, c_variant in metrics.select("baseline_variant", "variant").iter_rows():
        b = base.filter(pl.col("variant") == b_variant).select(columns)
        c = cand.filter(pl.col("variant") == c_variant).select(columns)
        joined = b.join(c, on=keys, suffix="_cand")
        worse = ((pl.col("status") == "ok") & (pl.col("status_cand") != "ok")) | (
            pl.col("score") > pl.col("score_cand")
        ).fill_null(False)
        found.append(
            joined.filter(worse).with_columns(
                pl.lit(b_variant).alias("baseline_variant"), pl.lit(c_variant).alias("variant")
            )
        )
    if not found:
        return RegressedRows(0, ())
    rows = pl.concat(found, how="diagonal_relaxed")
    return RegressedRows(rows.height, tuple(rows.head(limit).iter_rows(named=True)))


#: Changed rows kept for report.html's comparison section (regression_rows.parquet).
SHOWN_PAIRS: Final = 200

#: The columns of each side of a changed row, as ``regression_rows.parquet`` holds them.
_SIDE: Final = ("output", "status", "score")


@dataclass(frozen=True, slots=True)
class ChangedPairs:
    """Calls whose answer changed between the baseline and the candidate: the first
    :data:`SHOWN_PAIRS`, regressions first, then improvements, then other changes; and how
    many of each there are."""

    shown: pl.DataFrame
    """``baseline_variant``, ``variant``, ``row_id``, ``repeat``, ``inputs``, ``expected``,
    ``kind`` and ``output``/``status``/``score`` of each side (``_baseline`` suffix for the
    baseline's)."""
    regressions: int
    improvements: int
    changed: int

    def counts(self) -> dict[str, int]:
        return {
            "regressions": self.regressions,
            "improvements": self.improvements,
            "changed": self.changed,
        }


def changed_pairs(
    base: pl.DataFrame, cand: pl.DataFrame, metrics: pl.DataFrame, limit: int = SHOWN_PAIRS
) -> ChangedPairs:
    """The changed calls of each pairing in ``metrics`` (``baseline_variant``, ``variant``),
    matched on row id and repeat: worse (an error where the baseline was ok, or a lower
    score), better, or only different (another output or status)."""
    keys = ["row_id", "repeat"]
    found: list[pl.DataFrame] = []
    for b_variant, c_variant in metrics.select("baseline_variant", "variant").iter_rows():
        b = base.filter(pl.col("variant") == b_variant).select(
            *keys, *(pl.col(c).alias(f"{c}_baseline") for c in _SIDE)
        )
        c = cand.filter(pl.col("variant") == c_variant).select(*keys, "inputs", "expected", *_SIDE)
        joined = c.join(b, on=keys)
        worse = ((pl.col("status_baseline") == "ok") & (pl.col("status") != "ok")) | (
            pl.col("score_baseline") > pl.col("score")
        ).fill_null(False)
        better = ((pl.col("status") == "ok") & (pl.col("status_baseline") != "ok")) | (
            pl.col("score") > pl.col("score_baseline")
        ).fill_null(False)
        other = pl.col("output").ne_missing(pl.col("output_baseline")) | pl.col(
            "status"
        ).ne_missing(pl.col("status_baseline"))
        kind = (
            pl.when(worse)
            .then(pl.lit("regression"))
            .when(better)
            .then(pl.lit("improvement"))
            .when(other)
            .then(pl.lit("changed"))
        )
        found.append(
            joined.with_columns(
                pl.lit(b_variant).alias("baseline_variant"),
                pl.lit(c_variant).alias("variant"),
                kind.alias("kind"),
            ).filter(pl.col("kind").is_not_null())
        )
    columns = [
        "baseline_variant", "variant", *keys, "inputs", "expected", "kind",
        *(f"{c}_baseline" for c in _SIDE), *_SIDE,
    ]  # fmt: skip
    if not found:
        empty = pl.DataFrame(schema={c: pl.String() for c in columns})
        return ChangedPairs(empty, 0, 0, 0)
    rows = pl.concat(found, how="diagonal_relaxed").select(
        *columns[:4], pl.col("inputs").cast(pl.String), pl.col("expected").cast(pl.String),
        *columns[6:],
    )  # fmt: skip
    order = pl.col("kind").replace_strict(
        {"regression": 0, "improvement": 1, "changed": 2}, return_dtype=pl.Int8
    )
    ranked = rows.with_columns(order.alias("_rank")).sort("_rank", maintain_order=True)
    counted = rows.get_column("kind").value_counts()
    by_kind = dict(zip(counted["kind"].to_list(), counted["count"].to_list(), strict=True))
    return ChangedPairs(
        ranked.drop("_rank").head(limit),
        int(by_kind.get("regression", 0)),
        int(by_kind.get("improvement", 0)),
        rows.height,
    )


def no_baseline_markdown(
    picked: Sequence[str], candidate: Mapping[str, Any], *, allowed: bool
) -> str:
    """``regression.md`` of a night with no baseline; its first line says no gate was
    applied (and, when not ``allowed``, that this is a failure). Ends in a newline."""
    from runner.gates._nightly import NO_BASELINE_YET

    if allowed:
        head = f"## No gate was applied: {NO_BASELINE_YET}"
        why = (
            "This night was accepted without a baseline (`--allow-no-baseline`). Its gates "
            "apply from the next night on, against this run."
        )
    else:
        head = "## Regression check: FAIL (no baseline: the gates were not applied)"
        why = (
            "Nothing was compared, so no gate could pass. Pass `--allow-no-baseline` "
            "(experiment key `allow_no_baseline = true`) to accept a first night, or point "
            "`compare_with` at a run or a folder holding an eligible run."
        )
    lines = [
        head,
        "",
        f"Candidate `{candidate['run_id']}` ({candidate['out_dir']}). {why}",
        "",
        *_picked(picked),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def _picked(picked: Sequence[str]) -> list[str]:
    if not picked:
        return []
    return ["Baseline pick:", "", *(f"- {_cell(line)}" for line in picked), ""]


def regression_markdown(
    report: RegressionReport,
    baseline: Mapping[str, Any],
    candidate: Mapping[str, Any],
    score_label: str = "score",
    *,
    confidence: float = 0.95,
    title: str = "Regression check",
    examples: RegressedRows | None = None,
    report_path: Path | None = None,
    picked: Sequence[str] = (),
) -> str:
    """A markdown summary of a gated comparison fit for a CI job summary; ends in a newline.

    ``examples`` adds a few regressed rows; ``report_path`` names the candidate's report.html;
    ``picked`` says how the baseline was chosen (one line each, after the scope).
    """
    verdict = "PASS" if report.passed else "FAIL"
    if baseline is candidate:
        scope = (
            f"Variants of run `{baseline['run_id']}` ({baseline['out_dir']}), calls matched on "
            f"row_id and repeat. Score: {score_label}."
        )
    else:
        scope = (
            f"Baseline `{baseline['run_id']}` ({baseline['out_dir']}) against candidate "
            f"`{candidate['run_id']}` ({candidate['out_dir']}), calls matched on row_id, "
            f"variant and repeat. Score: {score_label}."
        )
    if report_path is not None:
        scope += f" Full report: `{report_path}`"
    lines = [
        f"## {title}: {verdict}",
        "",
        scope,
        "",
        *_picked(picked),
        *_warnings(report, baseline, candidate),
        *_gate_table(report),
        "",
        "Error rates and scores change in percentage points (a drop is negative), p95 latency "
        "in percent of the baseline's (rows ok in both), agreement is the share of identical "
        "outputs, coverage the share of the baseline's calls with a partner. The interval "
        "beside each p-value comes from the same test, so they agree.",
        "",
        *_verdicts(report.metrics, score_label, confidence),
        "",
        *_metrics_table(report.metrics, confidence),
        *_examples(examples),
    ]
    return "\n".join(lines) + "\n"


def _examples(examples: RegressedRows | None) -> list[str]:
    if examples is None or not examples.total:
        return []
    lines = [
        "",
        f"### Regressed rows ({len(examples.rows)} of {examples.total:,})",
        "",
        "| row | variant | baseline answer | candidate answer |",
        "|---|---|---|---|",
    ]
    for r in examples.rows:
        ident = f"{r['row_id']}" + (f" #{r['repeat']}" if r["repeat"] else "")
        lines.append(
            f"| {_cell(ident)} | {_cell(_pair(r))} "
            f"| {_answer(r['output'], r['status'], r['score'])} "
            f"| {_answer(r['output_cand'], r['status_cand'], r['score_cand'])} |"
        )
    return lines


def _answer(output: str | None, status: str | None, score: float | None) -> str:
    text = " ".join((output or "").split())
    if len(text) > EXAMPLE_CHARS:
        text = text[: EXAMPLE_CHARS - 1] + "…"
    shown = f"`{_cell(text)}`" if text else "–"
    note = status if status != "ok" else "" if score is None else f"score {score:g}"
    return f"{shown} ({note})" if note else shown


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def _warnings(
    report: RegressionReport, baseline: Mapping[str, Any], candidate: Mapping[str, Any]
) -> list[str]:
    notes = []
    if baseline["dataset_fingerprint"] != candidate["dataset_fingerprint"]:
        notes.append("the two runs read different datasets (dataset fingerprints differ)")
    if baseline["deployment"] != candidate["deployment"]:
        notes.append(f"deployments differ: {baseline['deployment']} and {candidate['deployment']}")
    for prov in {id(baseline): baseline, id(candidate): candidate}.values():
        if prov.get("status") != "complete":
            notes.append(f"{prov['out_dir']} is not complete (status: {prov.get('status')})")
    if report.unmatched_baseline or report.unmatched_candidate:
        notes.append(
            f"unmatched calls: {report.unmatched_baseline:,} only in the baseline, "
            f"{report.unmatched_candidate:,} only in the candidate"
        )
    for side, variants in (
        ("baseline", report.only_in_baseline),
        ("candidate", report.only_in_candidate),
    ):
        if variants:
            notes.append(f"variants only in the {side}, not compared: {', '.join(variants)}")
    return [*(f"> **Note:** {n}" for n in notes), *([""] if notes else [])]


def _gate_table(report: RegressionReport) -> list[str]:
    if not report.gates:
        return ["No gate was set."]
    lines = [
        "| gate | variant | measured | limit | p | result |",
        "|---|---|---|---:|---:|---|",
    ]
    for g in report.gates:
        p = "" if g.p_value is None else format_p(g.p_value).removeprefix("p = ")
        result = ("pass" if g.passed else "**FAIL**") + (f" ({g.note})" if g.note else "")
        lines.append(
            f"| `{g.option}` | {g.variant} | {g.measured_text} | {g.limit_text} | {p} | {result} |"
        )
    return lines


def _verdicts(metrics: pl.DataFrame, label: str, confidence: float) -> list[str]:
    return [
        f"- {_pair(r)}: {score_sentence(r, label, confidence)}"
        for r in metrics.iter_rows(named=True)
    ]


def _pair(row: Mapping[str, Any]) -> str:
    base, cand = row["baseline_variant"], row["variant"]
    return cand if base == cand else f"{base} → {cand}"


def _metrics_table(metrics: pl.DataFrame, confidence: float) -> list[str]:
    lines = [
        f"| variant | pairs | coverage | score base → cand | Δ score [{confidence * 100:g} % CI] "
        "| test, p | error rate base → cand | p95 ms base → cand | identical outputs |",
        "|---|---:|---:|---|---|---|---|---|---:|",
    ]
    for r in metrics.iter_rows(named=True):
        lines.append(
            f"| {_pair(r)} | {r['pairs']} | {_pct(r['coverage'])} "
            f"| {_pct(r['baseline_score'])} → {_pct(r['candidate_score'])} "
            f"| {_diff_ci(r)} | {test_name(r['score_test'])}, {format_p(r['score_p_value'])} "
            f"| {_pct(r['baseline_error_rate'])} → {_pct(r['candidate_error_rate'])} "
            f"| {_num(r['baseline_latency_p95_ms'])} → {_num(r['candidate_latency_p95_ms'])} "
            f"| {_pct(r['identical_share'])} |"
        )
    return lines


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f} %"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def _diff_ci(row: Mapping[str, Any]) -> str:
    if row["score_diff"] is None:
        return "–"
    text = f"{row['score_diff'] * 100:+.1f}"
    if row["score_diff_ci_low"] is not None and row["score_diff_ci_high"] is not None:
        text += f" [{row['score_diff_ci_low'] * 100:+.1f}, {row['score_diff_ci_high'] * 100:+.1f}]"
    return text + " points"
