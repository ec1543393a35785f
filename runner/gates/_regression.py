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

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from runner.errors import ConfigError, GateFailed
from runner.gates._baseline import BaselinePick, PastRun, latest_eligible_run
from runner.gates._gates import GateResult, Gates, RegressionReport
from runner.gates._markdown import (
    changed_pairs,
    no_baseline_markdown,
    regressed_rows,
    regression_markdown,
)
from runner.gates._pairing import compare_runs, gate_variants
from runner.score import Scored, parse_scorer, score_results, scored_results
from runner.stats import DEFAULT_OPTIONS, StatOptions, baseline_of, score_label, variant_order
from runner.store import (
    RESULT_STAGES,
    RunDir,
    RunStatus,
    atomic_write_parquet,
    atomic_write_text,
    under_lock,
    with_provenance,
)


def require_complete(out_dir: Path, role: str, *, allow_incomplete: bool) -> None:
    """Refuse to gate on a run that did not finish: its missing calls would pass unseen, and
    a run killed while compacting or judging holds results or scores not yet whole."""
    if allow_incomplete:
        return
    manifest = RunDir(out_dir).read_manifest()
    unfinished = manifest.unfinished_stage(RESULT_STAGES)
    if manifest.status is RunStatus.COMPLETE and unfinished is None:
        return
    why = (
        f"not complete (status: {manifest.status.value})"
        if unfinished is None
        else f"not finished: its {unfinished} stage was killed"
    )
    raise GateFailed(
        f"the {role} run {out_dir} is {why}; resume it with runner run ... --resume, or pass "
        "--allow-incomplete to gate on what it holds"
    )


def latest_complete_run(folder: Path, *, exclude: Path | None = None) -> PastRun | None:
    """The eligible run in ``folder`` that finished last, for candidate run ``exclude``
    (:func:`runner.gates._baseline.latest_eligible_run`;
    :func:`runner.gates._baseline.pick_baseline` says
    why each newer run was passed over). A folder that does not exist is a ConfigError."""
    return latest_eligible_run(folder, exclude)


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
    picked: Sequence[str] = (),
) -> RegressionReport:
    """Compare two run directories, write ``regression.parquet``, ``regression.md`` and the
    changed rows (``regression_rows.parquet``, regressions first).

    With ``score`` both runs are scored afresh (in memory; their files are left alone);
    without it the scores stored by ``runner report`` are used, and must come from one
    scorer (a run with no stored scores is scored with the other run's scorer). ``picked``
    (how the baseline was chosen, one line each) goes at the top of ``regression.md``.

    The candidate's ``report.html`` shows the comparison once it is rebuilt (``runner
    report``) or refreshed (:func:`runner.report.refresh_baseline_section`, which the
    experiment's gate stage and ``runner compare`` call): gates write no report.
    """
    base_facts, cand_facts = RunDir(base_dir).provenance(), RunDir(cand_dir).provenance()
    require_complete(base_dir, "baseline", allow_incomplete=allow_incomplete)
    require_complete(cand_dir, "candidate", allow_incomplete=allow_incomplete)
    base, cand = _scored_alike(base_dir, cand_dir, score)
    options = _for_gates(options, gates)
    report = compare_runs(
        base.results, cand.results, gates, variant_map=variant_map, options=options,
        pairwise=_pairwise(cand_dir),
    )  # fmt: skip
    base_prov = base_facts.scored_by(base.scorer).as_dict()
    cand_prov = cand_facts.scored_by(cand.scorer).as_dict()
    provenance: dict[str, Any] = {
        "baseline": base_prov,
        "candidate": cand_prov,
        "gates": gates.as_dict(),
        "gate_results": [_gate_result(g) for g in report.gates],
        "gates_set": report.gates_set,
        "passed": report.passed,
        "picked": list(picked),
        "score_label": score_label(base.scorer),
        "compared_at": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
    }
    if variant_map:
        provenance["variant_map"] = dict(variant_map)
    rundir = RunDir(out_dir)
    rows = changed_pairs(base.results, cand.results, report.metrics)
    _write_frame(rundir.regression_rows, rows.shown, {**provenance, **rows.counts()})
    _write_frame(rundir.regression_parquet, report.metrics, provenance)
    markdown = regression_markdown(
        report,
        base_prov,
        cand_prov,
        score_label(base.scorer),
        confidence=options.confidence,
        examples=regressed_rows(base.results, cand.results, report.metrics),
        report_path=_report_path(cand_dir),
        picked=picked,
    )
    atomic_write_text(rundir.regression_md, markdown)
    return report


def forget_regression(out_dir: Path) -> None:
    """Remove an earlier comparison's files from ``out_dir``: a night with no baseline must not
    show another night's comparison (its report.html section goes with the next refresh)."""
    rundir = RunDir(out_dir)
    for path in (rundir.regression_parquet, rundir.regression_rows):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def write_no_baseline(out_dir: Path, pick: BaselinePick, *, allowed: bool) -> Path:
    """``regression.md`` of a night with no baseline: no gate was applied, said first."""
    facts = RunDir(out_dir).provenance().as_dict()
    markdown = no_baseline_markdown(pick.lines(), facts, allowed=allowed)
    atomic_write_text(RunDir(out_dir).regression_md, markdown)
    return RunDir(out_dir).regression_md


def _gate_result(g: GateResult) -> dict[str, Any]:
    return {
        "option": g.option,
        "variant": g.variant,
        "measured": g.measured_text,
        "limit": g.limit_text,
        "p_value": g.p_value,
        "passed": g.passed,
        "note": g.note,
        "described": g.describe(),
    }


def _write_frame(path: Path, frame: pl.DataFrame, provenance: Mapping[str, Any]) -> None:
    atomic_write_parquet(path, with_provenance(frame.to_arrow(), provenance))


@under_lock
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
    facts = RunDir(out_dir).provenance()
    require_complete(out_dir, "gated", allow_incomplete=allow_incomplete)
    scored = scored_results(out_dir, score)
    variants = variant_order(scored.results, facts.variants)
    base = baseline_of(baseline, variants)
    options = _for_gates(options, gates)
    report = gate_variants(
        scored.results, base, gates, variants=variants, options=options,
        pairwise=_pairwise(out_dir),
    )  # fmt: skip
    prov = facts.scored_by(scored.scorer).as_dict()
    _write_frame(
        RunDir(out_dir).gate_parquet,
        report.metrics,
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


# ------------------------------------------------------------------------------ markdown
