"""Pure polars: results in, summaries and comparisons out.

* :func:`summarize` — one row per variant (``summary.parquet``).
* :func:`compare_variants` — each variant against the baseline, paired by row
  (``comparison.parquet``).
* :func:`side_by_side` — one row per row with every variant's answer (``side_by_side.parquet``).
* :func:`compare_runs` — one run against another, paired by ``(row_id, variant, repeat)``, with
  the regression gates of ``runner compare``.

Pairs are matched on ``(row_id, repeat)``: with ``--repeat`` the pairs of one row are not
independent, so p-values then lean optimistic. A score is binary when every score in the
results is 0 or 1; binary scores get Wilson intervals and McNemar's exact test, graded scores
bootstrap intervals and a Wilcoxon signed-rank (or paired t) test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import polars as pl

from runner import stats
from runner.errors import ConfigError, GateFailed
from runner.records import STATUS_ERROR, STATUS_OK

Results = pl.DataFrame | pl.LazyFrame
GradedTest = Literal["wilcoxon", "t"]

PAIR_KEYS: Final = ("row_id", "repeat")
LATENCY_QUANTILES: Final = (0.5, 0.9, 0.95, 0.99)

_OK: Final = pl.col("status") == STATUS_OK
_ARM_COLUMNS: Final = ("status", "output", "score", "latency_ms", "total_tokens")


@dataclass(frozen=True, slots=True)
class StatOptions:
    """How intervals and tests are computed; the defaults are what reports use."""

    confidence: float = 0.95
    resamples: int = stats.DEFAULT_RESAMPLES
    seed: int = stats.DEFAULT_SEED
    graded_test: GradedTest = "wilcoxon"


DEFAULT_OPTIONS: Final = StatOptions()


def _lazy(results: Results) -> pl.LazyFrame:
    lf = results.lazy()
    if "score" not in lf.collect_schema().names():
        lf = lf.with_columns(pl.lit(None, dtype=pl.Float64).alias("score"))
    return lf


def variants_of(results: Results) -> list[str]:
    """The variants in ``results``, in order of first appearance."""
    col = results.lazy().select(pl.col("variant").unique(maintain_order=True)).collect()
    return [str(v) for v in col["variant"]]


def scores_are_binary(results: Results) -> bool:
    """True when there are scores and every one of them is 0 or 1."""
    score = pl.col("score").drop_nulls()
    row = (
        _lazy(results)
        .select(score.len().alias("n"), score.is_in([0.0, 1.0]).all().alias("binary"))
        .collect()
    )
    return bool(row["n"][0] > 0 and row["binary"][0])


def _order(results: Results, variants: Sequence[str] | None) -> list[str]:
    return list(variants) if variants is not None else variants_of(results)


def _nan_to_none(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


# ---------------------------------------------------------------------------- summary


def summarize(
    results: Results,
    *,
    variants: Sequence[str] | None = None,
    options: StatOptions = DEFAULT_OPTIONS,
) -> pl.DataFrame:
    """One row per variant: counts, errors, retries, latency, tokens, score and consistency."""
    lf = _lazy(results)
    order = _order(results, variants)
    base = lf.group_by("variant").agg(*_summary_aggs())
    frame = (
        pl.DataFrame({"variant": order}, schema={"variant": pl.String})
        .lazy()
        .join(base, on="variant", how="left", maintain_order="left")
        .join(_errors_by_type(lf), on="variant", how="left", maintain_order="left")
        .join(_consistency(lf), on="variant", how="left", maintain_order="left")
        .with_columns(
            (pl.col("errors") / pl.col("rows")).alias("error_rate"),
            pl.col("errors_by_type").fill_null(pl.lit([], dtype=_ERRORS_BY_TYPE)),
        )
        .collect()
    )
    frame = frame.with_columns(**_score_intervals(lf, frame, options, scores_are_binary(lf)))
    return frame.select(SUMMARY_COLUMNS)


_ERRORS_BY_TYPE: Final = pl.List(pl.Struct({"error_type": pl.String, "count": pl.Int64}))

SUMMARY_COLUMNS: Final = (
    "variant", "rows", "ok", "errors", "error_rate", "errors_by_type", "retries",
    "latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms",
    "ttft_p50_ms", "ttft_p95_ms", "tokens_mean", "tokens_total", "output_chars_mean",
    "scored", "score_mean", "score_ci_low", "score_ci_high", "score_ci_method",
    "consistency_rows", "consistency_rate",
)  # fmt: skip


def _summary_aggs() -> list[pl.Expr]:
    latency = pl.col("latency_ms").filter(_OK)
    ttft = pl.col("ttft_ms").filter(_OK)
    tokens = pl.col("total_tokens").filter(_OK)
    return [
        pl.len().cast(pl.Int64).alias("rows"),
        _OK.sum().cast(pl.Int64).alias("ok"),
        (pl.col("status") == STATUS_ERROR).sum().cast(pl.Int64).alias("errors"),
        (pl.col("attempts") - 1).clip(lower_bound=0).sum().cast(pl.Int64).alias("retries"),
        latency.mean().alias("latency_mean_ms"),
        *[
            latency.quantile(q, "linear").alias(f"latency_p{round(q * 100)}_ms")
            for q in LATENCY_QUANTILES
        ],
        ttft.quantile(0.5, "linear").alias("ttft_p50_ms"),
        ttft.quantile(0.95, "linear").alias("ttft_p95_ms"),
        tokens.mean().alias("tokens_mean"),
        # A sum over no tokens at all is unknown, not zero.
        pl.when(tokens.count() > 0).then(tokens.sum()).cast(pl.Int64).alias("tokens_total"),
        pl.col("output").filter(_OK).str.len_chars().mean().alias("output_chars_mean"),
        pl.col("score").count().cast(pl.Int64).alias("scored"),
        pl.col("score").mean().alias("score_mean"),
    ]


def _errors_by_type(lf: pl.LazyFrame) -> pl.LazyFrame:
    counts = (
        lf.filter(pl.col("status") == STATUS_ERROR)
        .group_by("variant", pl.col("error_type").fill_null("unknown"))
        .agg(pl.len().cast(pl.Int64).alias("count"))
        .sort(["count", "error_type"], descending=[True, False])
    )
    return counts.group_by("variant", maintain_order=True).agg(
        pl.struct("error_type", "count").alias("errors_by_type")
    )


def _consistency(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Among rows with two or more ok repeats, the share whose outputs are all identical."""
    # Without --repeat there is nothing to agree; skip a group-by over every row.
    repeated = lf.select((pl.col("repeat") > 0).any()).collect().item()
    per_row = (
        lf.filter(_OK & repeated)
        .group_by("variant", "row_id")
        .agg(pl.len().alias("n"), pl.col("output").n_unique().alias("distinct"))
        .filter(pl.col("n") >= 2)
    )
    return per_row.group_by("variant").agg(
        pl.len().cast(pl.Int64).alias("consistency_rows"),
        (pl.col("distinct") == 1).mean().alias("consistency_rate"),
    )


def _score_intervals(
    lf: pl.LazyFrame, frame: pl.DataFrame, options: StatOptions, binary: bool
) -> dict[str, pl.Series]:
    lows: list[float | None] = []
    highs: list[float | None] = []
    methods: list[str | None] = []
    for variant, scored, mean in frame.select("variant", "scored", "score_mean").iter_rows():
        if not scored:
            low, high, method = math.nan, math.nan, None
        elif binary:
            successes = round(mean * scored)
            low, high = stats.wilson_interval(successes, scored, confidence=options.confidence)
            method = "wilson"
        else:
            values = lf.filter(pl.col("variant") == variant).select("score").collect()
            low, high = stats.bootstrap_mean_ci(
                values["score"].drop_nulls().to_numpy(),
                confidence=options.confidence,
                resamples=options.resamples,
                seed=options.seed,
            )
            method = "bootstrap"
        lows.append(_nan_to_none(low))
        highs.append(_nan_to_none(high))
        methods.append(method)
    return {
        "score_ci_low": pl.Series(lows, dtype=pl.Float64),
        "score_ci_high": pl.Series(highs, dtype=pl.Float64),
        "score_ci_method": pl.Series(methods, dtype=pl.String),
    }


# ------------------------------------------------------------------------- paired metrics


def _arm(lf: pl.LazyFrame, variant: str, prefix: str) -> pl.LazyFrame:
    return lf.filter(pl.col("variant") == variant).select(
        *PAIR_KEYS, *[pl.col(c).alias(prefix + c) for c in _ARM_COLUMNS]
    )


def _pairs(base: pl.LazyFrame, cand: pl.LazyFrame, variant_b: str, variant_c: str) -> pl.DataFrame:
    # No order is kept (it costs a third of the time): no paired metric depends on row order.
    return _arm(base, variant_b, "b_").join(_arm(cand, variant_c, "c_"), on=PAIR_KEYS).collect()


COMPARISON_SCHEMA: Final[dict[str, pl.DataType]] = {
    "pairs": pl.Int64(), "both_ok": pl.Int64(), "identical_share": pl.Float64(),
    "scored_pairs": pl.Int64(), "wins": pl.Int64(), "losses": pl.Int64(), "ties": pl.Int64(),
    "baseline_score": pl.Float64(), "candidate_score": pl.Float64(), "score_diff": pl.Float64(),
    "score_diff_ci_low": pl.Float64(), "score_diff_ci_high": pl.Float64(),
    "score_test": pl.String(), "score_p_value": pl.Float64(),
    "baseline_error_rate": pl.Float64(), "candidate_error_rate": pl.Float64(),
    "error_rate_diff": pl.Float64(), "error_test": pl.String(), "error_p_value": pl.Float64(),
    "baseline_latency_p50_ms": pl.Float64(), "candidate_latency_p50_ms": pl.Float64(),
    "latency_p50_diff_ms": pl.Float64(),
    "latency_p50_diff_ci_low": pl.Float64(), "latency_p50_diff_ci_high": pl.Float64(),
    "baseline_latency_p95_ms": pl.Float64(), "candidate_latency_p95_ms": pl.Float64(),
    "latency_p95_diff_ms": pl.Float64(),
    "latency_p95_diff_ci_low": pl.Float64(), "latency_p95_diff_ci_high": pl.Float64(),
    "p95_latency_increase_pct": pl.Float64(),
    "tokens_mean_diff": pl.Float64(),
}  # fmt: skip
"""Paired metrics shared by ``comparison.parquet`` and ``regression.parquet``."""


def paired_metrics(pairs: pl.DataFrame, binary: bool, options: StatOptions) -> dict[str, Any]:
    """Every paired metric of one baseline/candidate pairing (``b_*`` and ``c_*`` columns)."""
    both_ok = pairs.filter((pl.col("b_status") == STATUS_OK) & (pl.col("c_status") == STATUS_OK))
    scored = pairs.filter(pl.col("b_score").is_not_null() & pl.col("c_score").is_not_null())
    identical = (both_ok["b_output"] == both_ok["c_output"]).mean() if both_ok.height else None
    metrics: dict[str, Any] = {
        "pairs": pairs.height,
        "both_ok": both_ok.height,
        "identical_share": identical,
        **_score_metrics(scored, binary, options),
        **_error_metrics(pairs),
        **_latency_metrics(both_ok, options),
        "tokens_mean_diff": _tokens_diff(both_ok),
    }
    return {k: _nan_to_none(v) if isinstance(v, float) else v for k, v in metrics.items()}


def _score_metrics(scored: pl.DataFrame, binary: bool, options: StatOptions) -> dict[str, Any]:
    b = scored["b_score"].to_numpy()
    c = scored["c_score"].to_numpy()
    wins, losses = int((c > b).sum()), int((c < b).sum())
    out: dict[str, Any] = {"scored_pairs": scored.height, "wins": wins, "losses": losses}
    out["ties"] = scored.height - wins - losses
    if scored.height == 0:
        return out
    low, high = stats.paired_bootstrap_diff_ci(
        b, c, confidence=options.confidence, resamples=options.resamples, seed=options.seed
    )
    out |= {
        "baseline_score": float(b.mean()),
        "candidate_score": float(c.mean()),
        "score_diff": float(c.mean() - b.mean()),
        "score_diff_ci_low": low,
        "score_diff_ci_high": high,
    }
    if binary:
        # Discordant pairs: baseline right and candidate wrong are the losses, and so on.
        out |= {"score_test": "mcnemar_exact", "score_p_value": stats.mcnemar_exact(losses, wins)}
    elif options.graded_test == "t":
        out |= {"score_test": "paired_t", "score_p_value": stats.paired_t_test(b, c)}
    else:
        out |= {"score_test": "wilcoxon", "score_p_value": stats.wilcoxon_signed_rank(b, c)}
    return out


def _error_metrics(pairs: pl.DataFrame) -> dict[str, Any]:
    if pairs.height == 0:
        return {}
    b = (pairs["b_status"] != STATUS_OK).to_numpy()
    c = (pairs["c_status"] != STATUS_OK).to_numpy()
    return {
        "baseline_error_rate": float(b.mean()),
        "candidate_error_rate": float(c.mean()),
        "error_rate_diff": float(c.mean() - b.mean()),
        # Paired rows: McNemar on the error indicators is the paired two-proportion test.
        "error_test": "mcnemar_exact",
        "error_p_value": stats.mcnemar_exact(int((b & ~c).sum()), int((c & ~b).sum())),
    }


def _latency_metrics(both_ok: pl.DataFrame, options: StatOptions) -> dict[str, Any]:
    timed = both_ok.filter(
        pl.col("b_latency_ms").is_not_null() & pl.col("c_latency_ms").is_not_null()
    )
    if timed.height == 0:
        return {}
    b = timed["b_latency_ms"].to_numpy()
    c = timed["c_latency_ms"].to_numpy()
    out: dict[str, Any] = {}
    for q, name in ((0.5, "p50"), (0.95, "p95")):
        qb, qc = stats.quantile_nearest_rank(b, q), stats.quantile_nearest_rank(c, q)
        low, high = stats.quantile_diff_ci(
            b, c, q, confidence=options.confidence, resamples=options.resamples, seed=options.seed
        )
        out |= {
            f"baseline_latency_{name}_ms": qb,
            f"candidate_latency_{name}_ms": qc,
            f"latency_{name}_diff_ms": qc - qb,
            f"latency_{name}_diff_ci_low": low,
            f"latency_{name}_diff_ci_high": high,
        }
    before, after = out["baseline_latency_p95_ms"], out["candidate_latency_p95_ms"]
    out["p95_latency_increase_pct"] = (after / before - 1.0) * 100.0 if before > 0 else None
    return out


def _tokens_diff(both_ok: pl.DataFrame) -> float | None:
    diff = (both_ok["c_total_tokens"] - both_ok["b_total_tokens"]).drop_nulls()
    return float(diff.mean()) if diff.len() else None  # type: ignore[arg-type]


def _metrics_frame(rows: list[dict[str, Any]], head: Mapping[str, pl.DataType]) -> pl.DataFrame:
    schema = {**head, **COMPARISON_SCHEMA}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


# -------------------------------------------------------------------------- comparison


def compare_variants(
    results: Results,
    baseline: str,
    *,
    variants: Sequence[str] | None = None,
    options: StatOptions = DEFAULT_OPTIONS,
) -> pl.DataFrame:
    """One row per variant other than ``baseline``: paired metrics against the baseline."""
    lf = _lazy(results)
    order = _order(results, variants)
    if baseline not in order:
        raise ConfigError(f"baseline variant {baseline!r} is not in the results ({order})")
    binary = scores_are_binary(lf)
    rows = [
        {
            "baseline": baseline,
            "variant": v,
            **paired_metrics(_pairs(lf, lf, baseline, v), binary, options),
        }
        for v in order
        if v != baseline
    ]
    return _metrics_frame(rows, {"baseline": pl.String(), "variant": pl.String()})


def side_by_side(
    results: Results, baseline: str, *, variants: Sequence[str] | None = None
) -> pl.DataFrame:
    """One row per ``(row_id, repeat)`` with every variant's output, status, score and latency.

    Columns ``output_<variant>``, ``status_<variant>``, ``score_<variant>`` and
    ``latency_ms_<variant>`` follow ``inputs`` and ``expected``. ``changed`` is set when any
    variant's output or status differs from the baseline's; ``regression`` when a variant
    scored below the baseline or errored where the baseline was scored; ``improvement`` the
    other way round. Regressions come first, then improvements, then other changes, each in
    the order of the results.
    """
    lf = _lazy(results)
    order = _order(results, variants)
    if baseline not in order:
        raise ConfigError(f"baseline variant {baseline!r} is not in the results ({order})")
    frame = (
        lf.select(*PAIR_KEYS, "inputs", "expected")
        .unique(PAIR_KEYS, keep="first", maintain_order=True)
        .with_row_index("_position")
    )
    fields = ("output", "status", "score", "latency_ms")
    for v in order:
        arm = lf.filter(pl.col("variant") == v).select(
            *PAIR_KEYS, *[pl.col(f).alias(f"{f}_{v}") for f in fields]
        )
        frame = frame.join(arm, on=PAIR_KEYS, how="left")
    candidates = [v for v in order if v != baseline] or [baseline]
    flags = {
        "changed": pl.any_horizontal(_changed(baseline, v) for v in candidates),
        "regression": pl.any_horizontal(_worse(baseline, v) for v in candidates),
        "improvement": pl.any_horizontal(_worse(v, baseline) for v in candidates),
    }
    order_by = ["regression", "improvement", "changed", "_position"]
    return (
        frame.with_columns(**{k: e.fill_null(False) for k, e in flags.items()})
        .sort(order_by, descending=[True, True, True, False])
        .drop("_position")
        .collect()
    )


def _changed(baseline: str, variant: str) -> pl.Expr:
    return pl.col(f"output_{variant}").ne_missing(pl.col(f"output_{baseline}")) | pl.col(
        f"status_{variant}"
    ).ne_missing(pl.col(f"status_{baseline}"))


def _worse(reference: str, variant: str) -> pl.Expr:
    """``variant`` did worse than ``reference`` on this row."""
    ref_score, score = pl.col(f"score_{reference}"), pl.col(f"score_{variant}")
    errored = pl.col(f"status_{variant}") == STATUS_ERROR
    return ref_score.is_not_null() & (errored | (score < ref_score)).fill_null(False)


# ------------------------------------------------------------------------ run against run


@dataclass(frozen=True, slots=True)
class Gates:
    """The regression gates of ``runner compare``; ``None`` switches a gate off.

    Rates and scores are compared in percentage points (an error rate going from 2 % to 3 %
    is +1 point), latency in percent of the baseline's p95, agreement as a share in [0, 1].
    """

    max_error_rate_increase: float | None = None
    """Largest allowed rise of the error rate, in points."""
    max_p95_latency_increase_pct: float | None = None
    """Largest allowed rise of p95 latency (rows ok in both runs), in percent."""
    max_score_drop_points: float | None = None
    """Largest allowed fall of the mean score, in points."""
    min_agreement: float | None = None
    """Smallest allowed share of identical outputs among rows ok in both runs."""
    require_significance: float | None = None
    """ALPHA: the score and error gates fail only when their change has p < ALPHA."""

    def __post_init__(self) -> None:
        for name in (
            "max_error_rate_increase",
            "max_p95_latency_increase_pct",
            "max_score_drop_points",
        ):
            value = getattr(self, name)
            if value is not None and (math.isnan(value) or value < 0):
                raise ConfigError(f"{_OPTIONS[name]} must be a number >= 0, got {value}")
        if self.min_agreement is not None and not 0.0 <= self.min_agreement <= 1.0:
            raise ConfigError(
                f"--min-agreement must be a share in [0, 1], got {self.min_agreement}"
            )
        alpha = self.require_significance
        if alpha is not None and not 0.0 < alpha < 1.0:
            raise ConfigError(f"--require-significance must be in (0, 1), got {alpha}")


_OPTIONS: Final = {
    "max_error_rate_increase": "--max-error-rate-increase",
    "max_p95_latency_increase_pct": "--max-p95-latency-increase",
    "max_score_drop_points": "--max-score-drop",
    "min_agreement": "--min-agreement",
}
_UNITS: Final = {
    "max_error_rate_increase": "points",
    "max_p95_latency_increase_pct": "%",
    "max_score_drop_points": "points",
    "min_agreement": "share",
}


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate checked on one variant."""

    gate: str
    variant: str
    measured: float | None
    limit: float
    passed: bool
    p_value: float | None = None
    note: str = ""

    @property
    def option(self) -> str:
        return _OPTIONS[self.gate]

    @property
    def unit(self) -> str:
        return _UNITS[self.gate]

    @property
    def measured_text(self) -> str:
        """``+6.10 points``, ``+12.0 %``, ``0.930``, or ``n/a``."""
        return _with_unit(self.measured, self.unit, signed=True)

    @property
    def limit_text(self) -> str:
        return _with_unit(self.limit, self.unit, signed=False)

    def describe(self) -> str:
        """``--max-score-drop on v1: measured +6.10 points, limit 2.00 points: FAIL``."""
        verdict = "pass" if self.passed else "FAIL"
        note = f" ({self.note})" if self.note else ""
        measured = "not measurable" if self.measured is None else f"measured {self.measured_text}"
        return (
            f"{self.option} on {self.variant}: {measured}, limit {self.limit_text}: {verdict}{note}"
        )


def _with_unit(value: float | None, unit: str, *, signed: bool) -> str:
    if value is None:
        return "n/a"
    if unit == "share":
        return f"{value:.3f}"
    return f"{value:+.2f} {unit}" if signed else f"{value:.2f} {unit}"


@dataclass(frozen=True, slots=True)
class RegressionReport:
    """The outcome of one run against another: per-variant metrics and every gate checked."""

    metrics: pl.DataFrame
    """One row per variant found in both runs (``regression.parquet``)."""
    gates: tuple[GateResult, ...]
    unmatched_baseline: int = 0
    """Result rows of the baseline run with no partner in the candidate run."""
    unmatched_candidate: int = 0
    only_in_baseline: tuple[str, ...] = ()
    only_in_candidate: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failures(self) -> tuple[GateResult, ...]:
        return tuple(g for g in self.gates if not g.passed)

    def raise_if_failed(self) -> None:
        """Raise :class:`GateFailed` naming every failed gate, its measured value and limit."""
        if not self.passed:
            raise GateFailed("; ".join(g.describe() for g in self.failures))


def compare_runs(
    base_results: Results,
    cand_results: Results,
    gates: Gates,
    *,
    options: StatOptions = DEFAULT_OPTIONS,
) -> RegressionReport:
    """Compare a candidate run with a baseline run, row by row, and check ``gates``.

    Rows pair on ``(row_id, variant, repeat)``; each variant found in both runs is compared
    with itself and must pass every gate.
    """
    base, cand = _lazy(base_results), _lazy(cand_results)
    base_variants, cand_variants = variants_of(base), variants_of(cand)
    shared = [v for v in base_variants if v in cand_variants]
    binary = scores_are_binary(pl.concat([base.select("score"), cand.select("score")]))
    rows = [
        {"variant": v, **paired_metrics(_pairs(base, cand, v, v), binary, options)} for v in shared
    ]
    checked = tuple(g for row in rows for g in _check_gates(row, gates))
    verdicts = [all(g.passed for g in checked if g.variant == v) for v in shared]
    metrics = _metrics_frame(rows, {"variant": pl.String()})
    return RegressionReport(
        metrics=metrics.with_columns(pl.Series("passed", verdicts, dtype=pl.Boolean)),
        gates=checked,
        unmatched_baseline=_unmatched(base, cand),
        unmatched_candidate=_unmatched(cand, base),
        only_in_baseline=tuple(v for v in base_variants if v not in cand_variants),
        only_in_candidate=tuple(v for v in cand_variants if v not in base_variants),
    )


def _unmatched(left: pl.LazyFrame, right: pl.LazyFrame) -> int:
    keys = ["row_id", "variant", "repeat"]
    anti = left.select(keys).join(right.select(keys), on=keys, how="anti")
    return int(anti.select(pl.len()).collect().item())


def _check_gates(row: Mapping[str, Any], gates: Gates) -> list[GateResult]:
    """Every configured gate for one variant's metrics row."""
    variant = row["variant"]
    error_rise, score_diff = row.get("error_rate_diff"), row.get("score_diff")
    out = []
    if gates.max_error_rate_increase is not None:
        rise = None if error_rise is None else error_rise * 100.0
        limit, p = gates.max_error_rate_increase, row.get("error_p_value")
        out.append(_at_most("max_error_rate_increase", variant, rise, limit, p, gates))
    if gates.max_p95_latency_increase_pct is not None:
        rise, limit = row.get("p95_latency_increase_pct"), gates.max_p95_latency_increase_pct
        out.append(_at_most("max_p95_latency_increase_pct", variant, rise, limit, None, None))
    if gates.max_score_drop_points is not None:
        drop = None if score_diff is None else 0.0 - score_diff * 100.0
        limit, p = gates.max_score_drop_points, row.get("score_p_value")
        out.append(_at_most("max_score_drop_points", variant, drop, limit, p, gates))
    if gates.min_agreement is not None:
        share = row.get("identical_share")
        passed = share is not None and share >= gates.min_agreement
        note = "" if share is not None else "no row answered in both runs"
        out.append(
            GateResult("min_agreement", variant, share, gates.min_agreement, passed, note=note)
        )
    return out


def _at_most(
    gate: str,
    variant: str,
    measured: float | None,
    limit: float,
    p_value: float | None,
    gates: Gates | None,
) -> GateResult:
    """A value that must stay at or below ``limit``; pass ``gates`` where significance applies."""
    if measured is None:
        # A gate that was asked for but cannot be measured must not pass silently.
        return GateResult(gate, variant, None, limit, False, p_value, "nothing to measure")
    alpha = gates.require_significance if gates is not None else None
    if measured > limit and alpha is not None and (p_value is None or p_value >= alpha):
        note = f"not significant at {alpha:g}"
        return GateResult(gate, variant, measured, limit, True, p_value, note)
    return GateResult(gate, variant, measured, limit, measured <= limit, p_value)
