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
from runner.regression_md import regressed_rows, regression_markdown
from runner.report import PROVENANCE_KEY
from runner.report_inputs import (
    RunFacts,
    Scored,
    baseline_of,
    read_run_facts,
    scored_results,
    variant_order,
)
from runner.rundir import RunDir
from runner.scoring import parse_scorer, score_results
from runner.wording import score_label

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
