"""Pairing what is gated, then gating it: pure polars, like :mod:`runner.stats._compare`.

* :func:`compare_runs` — a candidate run against a baseline run, variant by variant
  (``runner compare``); renamed variants are paired with ``variant_map``.
* :func:`gate_variants` — each variant of one run against its baseline variant
  (``runner gate``, and ``runner run`` with gate options).

A variant on either side without a counterpart fails every gate set (:func:`pair_variants`
says how to pair it); the rules of each gate are in :mod:`runner.gates._gates`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import polars as pl

from runner.errors import ConfigError
from runner.gates._gates import GateResult, Gates, RegressionReport, check_gates, pairing_label
from runner.stats import (
    DEFAULT_OPTIONS,
    Results,
    StatOptions,
    metrics_frame,
    paired_metrics,
    pairs_of,
    scores_are_binary,
    variants_of,
)

#: The columns gate metrics carry before :data:`runner.stats._compare.COMPARISON_SCHEMA`.
HEAD: Final[dict[str, pl.DataType]] = {
    "baseline_variant": pl.String(),
    "variant": pl.String(),
    "baseline_calls": pl.Int64(),
    "coverage": pl.Float64(),
}


#: The baseline calls whose row has a partner: the count behind ``coverage`` (a key of a gate
#: row, not a column).
PAIRED_CALLS: Final = "paired_baseline_calls"

Side = Literal["baseline", "candidate"]


# ------------------------------------------------------------------------------ pairing


def pair_variants(
    base_variants: Sequence[str],
    cand_variants: Sequence[str],
    variant_map: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """``(baseline, candidate)`` variant pairs: ``variant_map`` first, then equal names.

    A mapped name is not paired again by name; a name in ``variant_map`` that a run does not
    hold is a :class:`ConfigError` naming what the run has.
    """
    mapping = dict(variant_map or {})
    for base, cand in mapping.items():
        if base not in base_variants:
            raise ConfigError(
                f"--variant-map {base}={cand}: the baseline has no variant {base!r} "
                f"(it has {', '.join(base_variants) or 'no variant'})"
            )
        if cand not in cand_variants:
            raise ConfigError(
                f"--variant-map {base}={cand}: the candidate has no variant {cand!r} "
                f"(it has {', '.join(cand_variants) or 'no variant'})"
            )
    if len(set(mapping.values())) != len(mapping):
        raise ConfigError("--variant-map pairs one candidate variant with two baseline variants")
    mapped_cand = set(mapping.values())
    pairs = list(mapping.items())
    for v in base_variants:
        if v not in mapping and v in cand_variants and v not in mapped_cand:
            pairs.append((v, v))
    return pairs


def _unpaired(side: Side, variant: str, other: Sequence[str], *, suggest: str | None) -> GateResult:
    other_side = "candidate" if side == "baseline" else "baseline"
    has = ", ".join(other) if other else "no variant"
    note = (
        f"variant {variant} of the {side} has no counterpart in the {other_side} "
        f"({other_side} has {has})"
    )
    if suggest:
        note += f"; pair them with --variant-map {suggest}"
    return GateResult("pairing", variant, None, 1.0, False, note=note, at_least=True)


def _pairing_failures(
    base_variants: Sequence[str],
    cand_variants: Sequence[str],
    pairs: Sequence[tuple[str, str]],
) -> list[GateResult]:
    """A failed gate for every variant on either side left without a partner."""
    only_base = [v for v in base_variants if v not in {b for b, _ in pairs}]
    only_cand = [v for v in cand_variants if v not in {c for _, c in pairs}]
    one_each = len(only_base) == 1 and len(only_cand) == 1
    hint = f"{only_base[0]}={only_cand[0]}" if one_each else None
    if not only_base and not only_cand:
        return []
    if not hint:
        hint = "BASE=CAND" if only_base and only_cand else None
    return [
        *(_unpaired("baseline", v, cand_variants, suggest=hint) for v in only_base),
        *(_unpaired("candidate", v, base_variants, suggest=hint) for v in only_cand),
    ]


# ------------------------------------------------------------------------------- gating


def compare_runs(
    base_results: Results,
    cand_results: Results,
    gates: Gates,
    *,
    variant_map: Mapping[str, str] | None = None,
    options: StatOptions = DEFAULT_OPTIONS,
    pairwise: pl.DataFrame | None = None,
) -> RegressionReport:
    """Compare a candidate run with a baseline run, row by row, and check ``gates``.

    ``pairwise`` (the candidate run's ``pairwise.parquet``) gives ``--min-win-rate`` the win
    rate its pairwise judge found for each candidate variant against its own baseline.

    Rows pair on ``(row_id, variant)``, a baseline variant named in ``variant_map`` standing
    for its candidate variant; each arm's repeats are first reduced to one value per row. With
    any gate set, a variant on either side without a counterpart fails, and so does a pairing
    whose coverage (the share of the baseline's calls whose row has a partner) is below the
    coverage limit.
    """
    base_variants, cand_variants = variants_of(base_results), variants_of(cand_results)
    pairs = pair_variants(base_variants, cand_variants, variant_map)
    binary = scores_are_binary(
        pl.concat([_scores(base_results), _scores(cand_results)], how="vertical")
    )
    rows = [_pair_row(base_results, cand_results, b, c, binary, options) for b, c in pairs]
    _add_pairwise(rows, pairwise)
    unpaired = _pairing_failures(base_variants, cand_variants, pairs) if gates.limits_set else []
    only_base = tuple(v for v in base_variants if v not in {b for b, _ in pairs})
    only_cand = tuple(v for v in cand_variants if v not in {c for _, c in pairs})
    unmatched_base = sum(r["baseline_calls"] - r[PAIRED_CALLS] for r in rows)
    unmatched_base += _calls(base_results, only_base)
    unmatched_cand = sum(
        _calls(cand_results, [c]) - r["_candidate_paired_calls"]
        for (_, c), r in zip(pairs, rows, strict=True)
    )
    unmatched_cand += _calls(cand_results, only_cand)
    return _report(rows, gates, unpaired, unmatched_base, unmatched_cand, only_base, only_cand)


def gate_variants(
    results: Results,
    baseline: str,
    gates: Gates,
    *,
    variants: Sequence[str] | None = None,
    options: StatOptions = DEFAULT_OPTIONS,
    pairwise: pl.DataFrame | None = None,
) -> RegressionReport:
    """Check ``gates`` on each variant of one run against its ``baseline`` variant
    (``pairwise``: the run's ``pairwise.parquet``, for ``--min-win-rate``).

    Rows pair on ``row_id`` (repeats reduced to one value per row). A run with no variant
    besides the baseline fails every gate set: there is nothing the gate could have passed on.
    """
    order = list(variants) if variants is not None else variants_of(results)
    if baseline not in order:
        raise ConfigError(
            f"--baseline-variant {baseline!r} is not in the results; variants: {', '.join(order)}"
        )
    binary = scores_are_binary(results)
    rows = [
        _pair_row(results, results, baseline, v, binary, options) for v in order if v != baseline
    ]
    _add_pairwise(rows, pairwise)
    failures = []
    if gates.limits_set and not rows:
        note = f"the run has one variant only ({baseline}): no variant to gate against it"
        failures.append(GateResult("pairing", baseline, None, 1.0, False, note=note))
    unmatched = sum(r["baseline_calls"] - r[PAIRED_CALLS] for r in rows)
    return _report(rows, gates, failures, unmatched, 0, (), (), one_run=True)


def _add_pairwise(rows: list[dict[str, Any]], pairwise: pl.DataFrame | None) -> None:
    """Put each variant's pairwise-judge metrics into its row (for ``--min-win-rate``)."""
    if pairwise is None:
        return
    from runner.stats import pairwise_metrics

    by_variant = {m["variant"]: m for m in pairwise_metrics(pairwise).iter_rows(named=True)}
    for row in rows:
        found = by_variant.get(row["variant"], {})
        row.update({k: v for k, v in found.items() if k != "variant"})


def _scores(results: Results) -> pl.LazyFrame:
    lf = results.lazy()
    if "score" not in lf.collect_schema().names():
        return lf.select(pl.lit(None, dtype=pl.Float64).alias("score"))
    return lf.select(pl.col("score").cast(pl.Float64))


def _calls(results: Results, variants: Sequence[str]) -> int:
    if not variants:
        return 0
    counted = results.lazy().filter(pl.col("variant").is_in(list(variants))).select(pl.len())
    return int(counted.collect().item())


def _pair_row(
    base: Results, cand: Results, b: str, c: str, binary: bool, options: StatOptions
) -> dict[str, Any]:
    # Pairs are rows (the unit of every statistic); a baseline call has a partner when its
    # row has one, so coverage does not depend on how many repeats either run made.
    pairs = pairs_of(base, cand, b, c)
    calls = _calls(base, [b])
    paired_calls = int(pairs["b_calls"].sum())
    return {
        "baseline_variant": b,
        "variant": c,
        "baseline_calls": calls,
        "coverage": paired_calls / calls if calls else None,
        PAIRED_CALLS: paired_calls,
        "_candidate_paired_calls": int(pairs["c_calls"].sum()),
        **paired_metrics(pairs, binary, options),
    }


def _report(
    rows: list[dict[str, Any]],
    gates: Gates,
    failures: list[GateResult],
    unmatched_base: int,
    unmatched_cand: int,
    only_base: tuple[str, ...],
    only_cand: tuple[str, ...],
    *,
    one_run: bool = False,
) -> RegressionReport:
    if one_run:
        labels = [str(r["variant"]) for r in rows]
    else:
        labels = [pairing_label(r["baseline_variant"], r["variant"]) for r in rows]
    checked = [*failures]
    for row, label in zip(rows, labels, strict=True):
        checked += check_gates(row, gates, label)
    verdicts = [all(g.passed for g in checked if g.variant == label) for label in labels]
    metrics = metrics_frame(rows, HEAD)
    if any("pairwise_win_rate" in row for row in rows):
        from runner.stats import PAIRWISE_METRICS

        extra = {k: v for k, v in PAIRWISE_METRICS.items() if k != "variant"}
        metrics = metrics.with_columns(
            pl.Series(name, [row.get(name) for row in rows], dtype=dtype)
            for name, dtype in extra.items()
        )
    return RegressionReport(
        metrics=metrics.with_columns(pl.Series("passed", verdicts, dtype=pl.Boolean)),
        gates=tuple(checked),
        gates_set=gates.limits_set,
        unmatched_baseline=unmatched_base,
        unmatched_candidate=unmatched_cand,
        only_in_baseline=only_base,
        only_in_candidate=only_cand,
    )
