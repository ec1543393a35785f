"""Gated comparisons written to disk: the I/O edge around :mod:`runner.gates`.

* :func:`write_regression` — ``runner compare``: a candidate run against a baseline run,
  written to ``regression.parquet`` and ``regression.md``.
* :func:`gate_run` — ``runner gate`` (and ``runner run`` with gate options): each variant of
  one run against its baseline variant, written to ``gate.parquet`` and ``gate.md``.

Both refuse, before any scoring question, a run whose manifest status is not ``complete``
(:class:`GateFailed`, naming the run directory and its status) unless ``allow_incomplete``.
With ``--require-significance ALPHA`` every interval is computed at ``1 - ALPHA``, so the
interval, the verdict word and the gate all say the same thing. The caller decides the exit
code, e.g. with :meth:`RegressionReport.raise_if_failed`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl

from runner.compare import DEFAULT_OPTIONS, StatOptions
from runner.errors import ConfigError, GateFailed
from runner.fsutil import atomic_write_parquet, atomic_write_text
from runner.gates import Gates, RegressionReport
from runner.gating import compare_runs, gate_variants
from runner.report import (
    PROVENANCE_KEY,
    RunFacts,
    Scored,
    baseline_of,
    format_p,
    read_run_facts,
    score_label,
    score_sentence,
    scored_results,
    test_name,
    variant_order,
)
from runner.rundir import RunDir
from runner.scoring import parse_scorer, score_results

COMPLETE: Final = "complete"


def require_complete(facts: RunFacts, role: str, *, allow_incomplete: bool) -> None:
    """Refuse to gate on a run that did not finish: its missing calls would pass unseen."""
    if allow_incomplete or facts.status == COMPLETE:
        return
    raise GateFailed(
        f"the {role} run {facts.out_dir} is not complete (status: {facts.status or 'unknown'}); "
        "resume it with runner run ... --resume, or pass --allow-incomplete to gate on "
        "what it holds"
    )


@dataclass(frozen=True, slots=True)
class PastRun:
    """A complete run found in a folder of runs, and when it finished."""

    out_dir: Path
    finished_at: datetime

    def describe(self) -> str:
        return f"{self.out_dir} (finished {self.finished_at:%Y-%m-%d %H:%M:%S %Z})".rstrip()


def latest_complete_run(folder: Path, *, exclude: Path | None = None) -> PastRun | None:
    """The run directory in ``folder`` (one level down) whose manifest says ``complete`` and
    that finished last, other than ``exclude`` (the candidate); None when there is none.

    Directories without a readable manifest (not runs, or damaged) are passed over."""
    from runner.errors import ResultsDirError

    skip = exclude.resolve() if exclude is not None else None
    found: list[PastRun] = []
    try:
        entries = sorted(p for p in folder.iterdir() if p.is_dir())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot list the runs in {folder}: {exc}") from exc
    for path in entries:
        rundir = RunDir(path)
        if path.resolve() == skip or not rundir.has_manifest():
            continue
        try:
            manifest = rundir.read_manifest()
        except ResultsDirError:
            continue
        finished = _parse_time(manifest.finished_at)
        if manifest.status == COMPLETE and finished is not None:
            found.append(PastRun(path, finished))
    return max(found, key=lambda run: run.finished_at, default=None)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _for_gates(options: StatOptions, gates: Gates) -> StatOptions:
    alpha = gates.require_significance
    return options if alpha is None else dataclasses.replace(options, confidence=1.0 - alpha)


def write_regression(
    base_dir: Path,
    cand_dir: Path,
    out_dir: Path,
    gates: Gates,
    *,
    score: str | None = None,
    variant_map: Mapping[str, str] | None = None,
    allow_incomplete: bool = False,
    options: StatOptions = DEFAULT_OPTIONS,
) -> RegressionReport:
    """Compare two run directories, write ``regression.parquet`` and ``regression.md``.

    With ``score`` both runs are scored afresh (in memory; their files are left alone);
    without it the scores stored by ``runner report`` are used, and must come from one
    scorer (a run with no stored scores is scored with the other run's scorer).
    """
    base_facts, cand_facts = read_run_facts(base_dir), read_run_facts(cand_dir)
    require_complete(base_facts, "baseline", allow_incomplete=allow_incomplete)
    require_complete(cand_facts, "candidate", allow_incomplete=allow_incomplete)
    base, cand = _scored_alike(base_dir, cand_dir, score)
    options = _for_gates(options, gates)
    report = compare_runs(
        base.results, cand.results, gates, variant_map=variant_map, options=options,
        pairwise=_pairwise(cand_dir),
    )  # fmt: skip
    base_prov = _run_provenance(base_facts, base.scorer)
    cand_prov = _run_provenance(cand_facts, cand.scorer)
    provenance = {"baseline": base_prov, "candidate": cand_prov, "gates": gates.as_dict()}
    if variant_map:
        provenance["variant_map"] = dict(variant_map)
    _write_metrics(RunDir(out_dir).regression_parquet, report, provenance)
    markdown = regression_markdown(
        report,
        base_prov,
        cand_prov,
        score_label(base.scorer),
        confidence=options.confidence,
        examples=regressed_rows(base.results, cand.results, report.metrics),
        report_path=_report_path(cand_dir),
    )
    atomic_write_text(RunDir(out_dir).regression_md, markdown)
    return report


def gate_run(
    out_dir: Path,
    gates: Gates,
    *,
    score: str | None = None,
    baseline: str | None = None,
    allow_incomplete: bool = False,
    options: StatOptions = DEFAULT_OPTIONS,
) -> RegressionReport:
    """Gate each variant of run ``out_dir`` against its baseline variant (default: the first
    configured), write ``gate.parquet`` and ``gate.md`` into ``out_dir``.

    With ``score`` the run is scored afresh in memory; without it its stored scores are used.
    """
    facts = read_run_facts(out_dir)
    require_complete(facts, "gated", allow_incomplete=allow_incomplete)
    scored = scored_results(out_dir, score)
    variants = variant_order(scored.results, facts)
    base = baseline_of(baseline, variants)
    options = _for_gates(options, gates)
    report = gate_variants(
        scored.results, base, gates, variants=variants, options=options,
        pairwise=_pairwise(out_dir),
    )  # fmt: skip
    prov = _run_provenance(facts, scored.scorer)
    _write_metrics(
        RunDir(out_dir).gate_parquet,
        report,
        {"run": prov, "baseline_variant": base, "gates": gates.as_dict()},
    )
    markdown = regression_markdown(
        report,
        prov,
        prov,
        score_label(scored.scorer),
        examples=regressed_rows(scored.results, scored.results, report.metrics),
        report_path=_report_path(out_dir),
        confidence=options.confidence,
        title=f"Gate: variants against {base}",
    )
    atomic_write_text(RunDir(out_dir).gate_md, markdown)
    return report


def _report_path(out_dir: Path) -> Path | None:
    path = RunDir(out_dir).report_html
    return path if path.exists() else None


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


def _pairwise(out_dir: Path) -> pl.DataFrame | None:
    path = RunDir(out_dir).pairwise
    return pl.read_parquet(path) if path.exists() else None


def _scored_alike(base_dir: Path, cand_dir: Path, score: str | None) -> tuple[Scored, Scored]:
    base, cand = scored_results(base_dir, score), scored_results(cand_dir, score)
    if base.scorer == cand.scorer:
        return base, cand
    # One run was never scored (e.g. its reports were not built): score it as the other was.
    if cand.scorer is None and base.scorer is not None:
        return base, _rescored(cand, base.scorer)
    if base.scorer is None and cand.scorer is not None:
        return _rescored(base, cand.scorer), cand
    raise ConfigError(
        f"the runs were scored differently ({base.scorer} in {base_dir}, {cand.scorer} in "
        f"{cand_dir}); pass --score to score both alike"
    )


def _rescored(scored: Scored, spec: str) -> Scored:
    return Scored(score_results(scored.results, parse_scorer(spec)), spec, scored.notes)


def _write_metrics(path: Path, report: RegressionReport, provenance: Mapping[str, Any]) -> None:
    metadata = {PROVENANCE_KEY: json.dumps(provenance, default=str).encode("utf-8")}
    atomic_write_parquet(path, report.metrics.to_arrow().replace_schema_metadata(metadata))


def _run_provenance(facts: RunFacts, scorer: str | None) -> dict[str, Any]:
    return {
        "out_dir": str(facts.out_dir),
        "run_id": facts.run_id,
        "status": facts.status,
        "deployment": facts.deployment,
        "dataset_fingerprint": facts.dataset_fingerprint,
        "finished_at": facts.finished_at,
        "versions": dict(facts.versions),
        "scorer": scorer,
    }


# ------------------------------------------------------------------------------ markdown


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
) -> str:
    """A markdown summary of a gated comparison fit for a CI job summary; ends in a newline.

    ``examples`` adds a few regressed rows; ``report_path`` names the candidate's report.html.
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
