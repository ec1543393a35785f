"""Pure polars: results in, summaries and comparisons out.

* :func:`summarize` — one row per variant (``summary.parquet``).
* :func:`compare_variants` — each variant against the baseline, paired by row
  (``comparison.parquet``).
* :func:`side_by_side` — one row per row with every variant's answer (``side_by_side.parquet``).
* :func:`paired_metrics` — the metrics of one pairing, shared with :mod:`runner.gates`.

Pairs are matched on ``(row_id, repeat)``: with ``--repeat`` the pairs of one row are not
independent, so p-values then lean optimistic. A score is binary when every score in the
results is 0 or 1.

One rule for verdicts: the interval shown next to a p-value comes from the same test, so
the interval excludes 0 exactly when the test rejects at ``1 - confidence``, and the verdict
word (:func:`score_verdict`) and ``--require-significance`` read that same p-value.

* binary scores: McNemar's exact test, with the exact Clopper–Pearson interval on the share
  of discordant pairs the candidate wins, mapped onto the score difference
  (:func:`runner.stats.mcnemar_diff_ci`);
* graded scores (default): the paired t-test with its t interval;
* graded scores with ``graded_test="wilcoxon"``: the signed-rank test, which has no interval
  on the mean difference, so none is given.

A variant's own score interval (``summary.parquet``) is Wilson for binary scores and a
bootstrap for graded ones: it describes one arm and gives no verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import polars as pl

from runner import stats
from runner.errors import ConfigError
from runner.records import STATUS_ERROR, STATUS_OK

Results = pl.DataFrame | pl.LazyFrame
GradedTest = Literal["t", "wilcoxon"]
Verdict = Literal["better", "worse", "no significant difference"]

PAIR_KEYS: Final = ("row_id", "repeat")
LATENCY_QUANTILES: Final = (0.5, 0.9, 0.95, 0.99)

_OK: Final = pl.col("status") == STATUS_OK
_HASH_SEED: Final = 5

#: The polars engine of every query here: streaming, so a scan of results.parquet is read in
#: pieces and only the columns a query names are loaded.
ENGINE: Final = "streaming"
_ARM_COLUMNS: Final = ("status", "output", "score", "latency_ms", "total_tokens")

TOP_ERRORS: Final = 5
"""Error types kept per variant in ``summary.parquet``, most frequent first."""
EXAMPLE_CHARS: Final = 200
"""An example error message is cut to this many characters."""


@dataclass(frozen=True, slots=True)
class StatOptions:
    """How intervals and tests are computed; the defaults are what reports use."""

    confidence: float = 0.95
    resamples: int = stats.DEFAULT_RESAMPLES
    seed: int = stats.DEFAULT_SEED
    graded_test: GradedTest = "t"


DEFAULT_OPTIONS: Final = StatOptions()


def lazy_results(results: Results) -> pl.LazyFrame:
    """``results`` as a LazyFrame that has ``score`` and ``score_error`` columns (null when
    the results carry none)."""
    lf = results.lazy()
    names = lf.collect_schema().names()
    if "score" not in names:
        lf = lf.with_columns(pl.lit(None, dtype=pl.Float64).alias("score"))
    if "score_error" not in names:
        lf = lf.with_columns(pl.lit(None, dtype=pl.String).alias("score_error"))
    return lf


_lazy = lazy_results


def variants_of(results: Results) -> list[str]:
    """The variants in ``results``, in order of first appearance."""
    col = (
        results.lazy().select(pl.col("variant").unique(maintain_order=True)).collect(engine=ENGINE)
    )
    return [str(v) for v in col["variant"]]


def scores_are_binary(results: Results) -> bool:
    """True when there are scores and every one of them is 0 or 1."""
    score = pl.col("score").drop_nulls()
    row = (
        _lazy(results)
        .select(score.len().alias("n"), score.is_in([0.0, 1.0]).all().alias("binary"))
        .collect(engine=ENGINE)
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
        .join(_output_chars(lf), on="variant", how="left", maintain_order="left")
        .join(_errors_by_type(lf), on="variant", how="left", maintain_order="left")
        .join(_consistency(lf), on="variant", how="left", maintain_order="left")
        .with_columns(
            (pl.col("errors") / pl.col("rows")).alias("error_rate"),
            pl.col("errors_by_type").fill_null(pl.lit([], dtype=_ERRORS_BY_TYPE)),
        )
        .collect(engine=ENGINE)
    )
    frame = frame.with_columns(**_score_intervals(lf, frame, options, scores_are_binary(lf)))
    return frame.select(SUMMARY_COLUMNS)


ERROR_FIELDS: Final = pl.Struct(
    {"error_type": pl.String, "count": pl.Int64, "http_status": pl.Int32, "example": pl.String}
)
"""One error type of one variant: how often, its most frequent HTTP status, one message."""
_ERRORS_BY_TYPE: Final = pl.List(ERROR_FIELDS)

SUMMARY_COLUMNS: Final = (
    "variant", "rows", "ok", "errors", "error_rate", "errors_by_type", "retries",
    "latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms",
    "total_p50_ms", "total_p95_ms", "ttft_p50_ms", "ttft_p95_ms", "tokens_mean", "tokens_total", "output_chars_mean",
    "scored", "score_errors", "score_mean", "score_ci_low", "score_ci_high", "score_ci_method",
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
        # The whole call, every attempt and backoff included (latency_ms is the last attempt).
        pl.col("total_ms").quantile(0.5, "linear").alias("total_p50_ms"),
        pl.col("total_ms").quantile(0.95, "linear").alias("total_p95_ms"),
        ttft.quantile(0.5, "linear").alias("ttft_p50_ms"),
        ttft.quantile(0.95, "linear").alias("ttft_p95_ms"),
        tokens.mean().alias("tokens_mean"),
        # A sum over no tokens at all is unknown, not zero.
        pl.when(tokens.count() > 0).then(tokens.sum()).cast(pl.Int64).alias("tokens_total"),
        pl.col("score").count().cast(pl.Int64).alias("scored"),
        pl.col("score_error").count().cast(pl.Int64).alias("score_errors"),
        pl.col("score").mean().alias("score_mean"),
    ]


def _output_chars(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Mean output length of ok calls per variant, as a query of its own: in one query with
    the other aggregations the output texts were held whole (0.3 GB at 2 M rows)."""
    chars = (
        lf.filter(_OK)
        .select("variant", pl.col("output").str.len_chars().alias("output_chars_mean"))
        .group_by("variant")
        .agg(pl.col("output_chars_mean").mean())
        .collect(engine=ENGINE)
    )
    return chars.lazy()


def _errors_by_type(lf: pl.LazyFrame) -> pl.LazyFrame:
    """The :data:`TOP_ERRORS` most frequent error types per variant, each with an example."""
    message = pl.col("error_message").drop_nulls()
    counts = (
        lf.filter(pl.col("status") == STATUS_ERROR)
        .group_by("variant", pl.col("error_type").fill_null("unknown"))
        .agg(
            pl.len().cast(pl.Int64).alias("count"),
            pl.col("http_status").drop_nulls().mode().sort().first().cast(pl.Int32),
            message.first().str.slice(0, EXAMPLE_CHARS).alias("example"),
        )
        .sort(["count", "error_type"], descending=[True, False])
    )
    return counts.group_by("variant", maintain_order=True).agg(
        pl.struct("error_type", "count", "http_status", "example")
        .head(TOP_ERRORS)
        .alias("errors_by_type")
    )


def _consistency(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Among rows with two or more ok repeats, the share whose outputs are all identical."""
    # Without --repeat there is nothing to agree; skip a group-by over every row.
    repeated = lf.select((pl.col("repeat") > 0).any()).collect(engine=ENGINE).item()
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
            values = lf.filter(pl.col("variant") == variant).select("score").collect(engine=ENGINE)
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
    """One variant's calls; the output as a 64-bit hash (equal outputs, equal hashes), so a
    pairing of a million rows holds numbers, not texts."""
    columns = {c: pl.col(c) for c in _ARM_COLUMNS}
    columns["output"] = pl.col("output").hash(seed=_HASH_SEED)
    return lf.filter(pl.col("variant") == variant).select(
        *PAIR_KEYS, *[expr.alias(prefix + c) for c, expr in columns.items()]
    )


def pairs_of(base: Results, cand: Results, variant_b: str, variant_c: str) -> pl.DataFrame:
    """Calls of ``variant_b`` in ``base`` joined with those of ``variant_c`` in ``cand`` on
    ``(row_id, repeat)``: columns ``b_*`` and ``c_*`` as :func:`paired_metrics` reads them."""
    # No order is kept (it costs a third of the time): no paired metric depends on row order.
    left, right = _arm(_lazy(base), variant_b, "b_"), _arm(_lazy(cand), variant_c, "c_")
    return left.join(right, on=PAIR_KEYS).collect(engine=ENGINE)


COMPARISON_SCHEMA: Final[dict[str, pl.DataType]] = {
    "pairs": pl.Int64(), "both_ok": pl.Int64(), "identical_share": pl.Float64(),
    "scored_pairs": pl.Int64(), "wins": pl.Int64(), "losses": pl.Int64(), "ties": pl.Int64(),
    "baseline_score": pl.Float64(), "candidate_score": pl.Float64(), "score_diff": pl.Float64(),
    "score_diff_ci_low": pl.Float64(), "score_diff_ci_high": pl.Float64(),
    "score_diff_ci_method": pl.String(), "score_test": pl.String(), "score_p_value": pl.Float64(),
    "score_verdict": pl.String(),
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
    diff = float(c.mean() - b.mean())
    out |= {"baseline_score": float(b.mean()), "candidate_score": float(c.mean())}
    out |= {"score_diff": diff, **_score_test(b, c, wins, losses, binary, options)}
    alpha = 1.0 - options.confidence
    out["score_verdict"] = score_verdict(diff, out.get("score_p_value"), alpha)
    return out


def _score_test(
    b: Any, c: Any, wins: int, losses: int, binary: bool, options: StatOptions
) -> dict[str, Any]:
    """The test the comparison names, and the interval that agrees with it."""
    confidence = options.confidence
    if binary:
        # Discordant pairs: baseline right and candidate wrong are the losses, and so on.
        low, high = stats.mcnemar_diff_ci(losses, wins, len(b), confidence=confidence)
        return {
            "score_test": "mcnemar_exact",
            "score_p_value": stats.mcnemar_exact(losses, wins),
            "score_diff_ci_method": "clopper_pearson_discordant",
            "score_diff_ci_low": low,
            "score_diff_ci_high": high,
        }
    if options.graded_test == "wilcoxon":
        # The signed-rank test has no interval on the mean difference: show none.
        return {"score_test": "wilcoxon", "score_p_value": stats.wilcoxon_signed_rank(b, c)}
    low, high = stats.paired_t_ci(b, c, confidence=confidence)
    return {
        "score_test": "paired_t",
        "score_p_value": stats.paired_t_test(b, c),
        "score_diff_ci_method": "paired_t",
        "score_diff_ci_low": low,
        "score_diff_ci_high": high,
    }


def score_verdict(diff: float | None, p_value: float | None, alpha: float) -> Verdict | None:
    """``better`` or ``worse`` when the named test rejects at ``alpha``, else ``no significant
    difference``; ``None`` when nothing was compared. The same rule gates use."""
    if diff is None or (isinstance(diff, float) and math.isnan(diff)):
        return None
    if p_value is None or math.isnan(p_value) or p_value >= alpha or diff == 0:
        return "no significant difference"
    return "better" if diff > 0 else "worse"


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


def metrics_frame(rows: list[dict[str, Any]], head: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Rows of :func:`paired_metrics` (after ``head``'s columns) as a frame of fixed schema."""
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
            **paired_metrics(pairs_of(lf, lf, baseline, v), binary, options),
        }
        for v in order
        if v != baseline
    ]
    return metrics_frame(rows, {"baseline": pl.String(), "variant": pl.String()})


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
    flagged = side_by_side_flagged(results, baseline, variants=variants).collect(engine=ENGINE)
    return in_side_by_side_order(flagged.lazy()).collect(engine=ENGINE)


SIDE_BY_SIDE_RANK: Final = "_rank"
"""A helper column of :func:`side_by_side_flagged`: 0 for the rows shown first, 7 last."""


def side_by_side_flagged(
    results: Results, baseline: str, *, variants: Sequence[str] | None = None
) -> pl.LazyFrame:
    """The rows of :func:`side_by_side` in the order of the results, with their flags and a
    :data:`SIDE_BY_SIDE_RANK` column; :func:`in_side_by_side_order` puts them in order."""
    lf = _lazy(results)
    order = _order(results, variants)
    if baseline not in order:
        raise ConfigError(f"baseline variant {baseline!r} is not in the results ({order})")
    frame = lf.select(*PAIR_KEYS, "inputs", "expected").unique(
        PAIR_KEYS, keep="first", maintain_order=True
    )
    fields = ("output", "status", "score", "latency_ms")
    for v in order:
        arm = lf.filter(pl.col("variant") == v).select(
            *PAIR_KEYS, *[pl.col(f).alias(f"{f}_{v}") for f in fields]
        )
        frame = frame.join(arm, on=PAIR_KEYS, how="left", maintain_order="left")
    candidates = [v for v in order if v != baseline] or [baseline]
    flags = {
        "changed": pl.any_horizontal(_changed(baseline, v) for v in candidates),
        "regression": pl.any_horizontal(_worse(baseline, v) for v in candidates),
        "improvement": pl.any_horizontal(_worse(v, baseline) for v in candidates),
    }
    flagged = frame.with_columns(**{k: e.fill_null(False) for k, e in flags.items()})
    rank = (
        (~pl.col("regression")).cast(pl.Int8) * 4
        + (~pl.col("improvement")).cast(pl.Int8) * 2
        + (~pl.col("changed")).cast(pl.Int8)
    )
    return flagged.with_columns(rank.alias(SIDE_BY_SIDE_RANK))


def in_side_by_side_order(flagged: pl.LazyFrame) -> pl.LazyFrame:
    """Regressions first, then improvements, then other changes, each in the results' order.

    Eight order-keeping filtered passes instead of a sort: over a file on disk each pass
    streams, so no pass holds the table (a sort would)."""
    rank = pl.col(SIDE_BY_SIDE_RANK)
    parts = [flagged.filter(rank == r) for r in range(8)]
    return pl.concat(parts, how="vertical").drop(SIDE_BY_SIDE_RANK)


def _changed(baseline: str, variant: str) -> pl.Expr:
    return pl.col(f"output_{variant}").ne_missing(pl.col(f"output_{baseline}")) | pl.col(
        f"status_{variant}"
    ).ne_missing(pl.col(f"status_{baseline}"))


def _worse(reference: str, variant: str) -> pl.Expr:
    """``variant`` did worse than ``reference`` on this row."""
    ref_score, score = pl.col(f"score_{reference}"), pl.col(f"score_{variant}")
    errored = pl.col(f"status_{variant}") == STATUS_ERROR
    return ref_score.is_not_null() & (errored | (score < ref_score)).fill_null(False)
