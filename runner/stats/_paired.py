"""Paired metrics: each variant against the baseline, matched by row (``comparison.parquet``).

* :func:`compare_variants` — one row per variant other than the baseline.
* :func:`pairs_of` and :func:`paired_metrics` — one pairing and its metrics, shared with
  :mod:`runner.gates._pairing` and :mod:`runner.stats._segments`.

The unit of every test, interval and gate is the row, never the call: with ``--repeat`` the
calls of one row are not independent samples, so each arm is first reduced to one value per
row (:func:`arm`) and the arms are joined on ``row_id``. A row's score is the mean of its
scored repeats, its error share the share of its calls that failed, its latency and tokens
the means over its ok calls, and its output one hash when every ok repeat gave the same
answer (none otherwise). Without repeats a row is its one call, and nothing is aggregated.
A pairing holds no text: per row, whether each arm had an ok call, whether the outputs are
equal (by hash), and the numbers of both arms; the metrics read it a column at a time.

One rule for verdicts: the interval shown next to a p-value comes from the same test, so
the interval excludes 0 exactly when the test rejects at ``1 - confidence``, and the verdict
word (:func:`score_verdict`) and ``--require-significance`` read that same p-value.

* binary rows (the scores are 0/1 and every row's mean is 0 or 1, as with a deterministic
  model at any ``--repeat``): McNemar's exact test on rows, with the exact Clopper–Pearson
  interval on the share of discordant rows the candidate wins, mapped onto the score
  difference (:func:`runner.stats.mcnemar_diff_ci`);
* otherwise (graded scores, or 0/1 scores whose repeats disagree), by default: the paired
  t-test on per-row means with its t interval;
* with ``graded_test="wilcoxon"``: the signed-rank test, which has no interval on the mean
  difference, so none is given.

Error rates follow the same rule: McNemar on rows whose calls all failed or all succeeded,
the paired t-test on per-row error shares otherwise. ``score_test`` and ``error_test`` name
the test used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import polars as pl

from runner.errors import ConfigError
from runner.stats import _stats as stats
from runner.stats._frames import (
    DEFAULT_OPTIONS,
    ENGINE,
    OK,
    Results,
    StatOptions,
    lazy_results,
    nan_to_none,
    output_hash,
    scores_are_binary,
    variant_order,
)
from runner.store import DEFAULT_MEMORY, MemoryPlan

Verdict = Literal["better", "worse", "no significant difference"]

#: The unit of every paired statistic, and the key two arms are joined on.
ROW: Final = "row_id"
#: The numbers of each row a pairing keeps, as ``b_<name>`` and ``c_<name>``.
_NUMBERS: Final = ("score", "latency_ms", "total_tokens")

#: The hash seed that splits a large pairing into parts of row ids (``pair_part_rows``).
_PART_SEED: Final = 3


def is_repeated(*frames: pl.LazyFrame) -> bool:
    """Whether any call of ``frames`` is a repeat (``repeat > 0``): only then can a row hold
    more than one call of a variant."""
    return any(
        lf.select((pl.col("repeat") > 0).any()).collect(engine=ENGINE).item() for lf in frames
    )


def arm(
    lf: pl.LazyFrame,
    variant: str,
    prefix: str,
    keep: Sequence[str] = (),
    *,
    repeated: bool = True,
) -> pl.LazyFrame:
    """One variant's rows as one side of a pairing, one line per row: ``row_id``, ``keep``
    (its first value in the row) and, prefixed, ``calls`` (the row's calls), ``ok`` (some
    call was ok), ``errors`` (the share of its calls that failed), ``output`` (the hash of
    the answer every ok repeat gave; null when they differ or none was ok) and the numbers:
    ``score`` the mean of the scored repeats, ``latency_ms`` and ``total_tokens`` the means
    over ok calls. ``repeated=False`` (no call is a repeat) skips the group-by: each row is
    its one call."""
    calls = lf.filter(pl.col("variant") == variant).select(
        ROW,
        *keep,
        OK.alias("_ok"),
        (~OK).cast(pl.Float64).alias("_errors"),
        pl.when(OK).then(output_hash()).alias("_hash"),
        pl.col("score").cast(pl.Float64),
        pl.when(OK).then(pl.col("latency_ms")).cast(pl.Float64).alias("latency_ms"),
        pl.when(OK).then(pl.col("total_tokens")).cast(pl.Float64).alias("total_tokens"),
    )
    if not repeated:
        return calls.select(
            ROW,
            *keep,
            pl.lit(1, dtype=pl.UInt32).alias(prefix + "calls"),
            pl.col("_ok").alias(prefix + "ok"),
            pl.col("_errors").alias(prefix + "errors"),
            pl.col("_hash").alias(prefix + "output"),
            *[pl.col(c).alias(prefix + c) for c in _NUMBERS],
        )
    # Every aggregation below is a plain streaming one (nulls skipped): ok-only values are
    # null on the other calls already.
    rows = calls.group_by(ROW).agg(
        *[pl.col(k).first() for k in keep],
        pl.len().alias(prefix + "calls"),
        pl.col("_ok").any().alias(prefix + "ok"),
        pl.col("_errors").mean().alias(prefix + "errors"),
        pl.col("_hash").min().alias("_low"),
        pl.col("_hash").max().alias("_high"),
        *[pl.col(c).mean().alias(prefix + c) for c in _NUMBERS],
    )
    same = pl.when(pl.col("_low") == pl.col("_high")).then(pl.col("_low"))
    return rows.select(
        ROW,
        *keep,
        prefix + "calls",
        prefix + "ok",
        prefix + "errors",
        same.alias(prefix + "output"),
        *[prefix + c for c in _NUMBERS],
    )


def paired(
    base: pl.LazyFrame,
    cand: pl.LazyFrame,
    variant_b: str,
    variant_c: str,
    keep: Sequence[str] = (),
    *,
    memory: MemoryPlan = DEFAULT_MEMORY,
) -> pl.DataFrame:
    """Rows of ``variant_b`` in ``base`` joined with those of ``variant_c`` in ``cand`` on
    ``row_id``, one line per row both arms hold, as :func:`paired_metrics` reads them:
    ``keep`` (columns of ``base``), ``b_calls``, ``c_calls``, ``b_ok``, ``c_ok``,
    ``b_errors``, ``c_errors``, ``same_output`` and the ``b_*``/``c_*`` numbers, each arm
    reduced to one value per row first (:func:`arm`): repeats never count as more rows.

    The arms are joined in parts of ``memory.pair_part_rows`` baseline calls, split by a hash
    of ``row_id`` (the join holds both arms of a part whole); the pairs are the same in any
    parts, in no particular order."""
    repeated = is_repeated(base, cand)
    calls = base.filter(pl.col("variant") == variant_b).select(pl.len())
    parts = max(1, math.ceil(calls.collect(engine=ENGINE).item() / memory.pair_part_rows))
    frames = []
    for part in range(parts):
        in_part = (pl.col(ROW).hash(seed=_PART_SEED) % parts) == part
        left = arm(base.filter(in_part), variant_b, "b_", keep, repeated=repeated)
        right = arm(cand.filter(in_part), variant_c, "c_", repeated=repeated)
        # No order is kept (it costs a third of the time): no paired metric depends on it.
        joined = left.join(right, on=ROW).select(
            *keep,
            "b_calls",
            "c_calls",
            "b_ok",
            "c_ok",
            "b_errors",
            "c_errors",
            (pl.col("b_output") == pl.col("c_output")).fill_null(False).alias("same_output"),
            *[pl.col(p + c) for c in _NUMBERS for p in ("b_", "c_")],
        )
        frames.append(joined.collect(engine=ENGINE))
    return pl.concat(frames, how="vertical", rechunk=False)


def pairs_of(
    base: Results,
    cand: Results,
    variant_b: str,
    variant_c: str,
    *,
    memory: MemoryPlan = DEFAULT_MEMORY,
) -> pl.DataFrame:
    """Rows of ``variant_b`` in ``base`` paired with those of ``variant_c`` in ``cand`` on
    ``row_id``, one line per paired row (see :func:`paired`)."""
    return paired(lazy_results(base), lazy_results(cand), variant_b, variant_c, memory=memory)


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
    """Every paired metric of one baseline/candidate pairing (as :func:`paired` makes it):
    ``pairs`` counts rows, and every test and interval takes the row as its unit."""
    both_ok = pairs["b_ok"] & pairs["c_ok"]
    n_both = int(both_ok.sum())
    identical = pairs["same_output"].filter(both_ok).mean() if n_both else None
    metrics: dict[str, Any] = {
        "pairs": pairs.height,
        "both_ok": n_both,
        "identical_share": identical,
        **_score_metrics(pairs, binary, options),
        **_error_metrics(pairs),
        **_latency_metrics(pairs, both_ok, options),
        "tokens_mean_diff": _tokens_diff(pairs, both_ok),
    }
    return {k: nan_to_none(v) if isinstance(v, float) else v for k, v in metrics.items()}


def _both(pairs: pl.DataFrame, name: str, mask: pl.Series) -> tuple[Any, Any]:
    """``b_<name>`` and ``c_<name>`` where ``mask`` holds, as numpy arrays."""
    return pairs[f"b_{name}"].filter(mask).to_numpy(), pairs[f"c_{name}"].filter(mask).to_numpy()


def zero_one(values: Any) -> bool:
    """Whether every value of a numpy array is 0 or 1 (a binary outcome per row)."""
    return bool(((values == 0.0) | (values == 1.0)).all())


def _score_metrics(pairs: pl.DataFrame, binary: bool, options: StatOptions) -> dict[str, Any]:
    b, c = _both(pairs, "score", pairs["b_score"].is_not_null() & pairs["c_score"].is_not_null())
    # 0/1 scores whose repeats disagree give rows between 0 and 1: no longer a binary outcome.
    binary = binary and zero_one(b) and zero_one(c)
    wins, losses = int((c > b).sum()), int((c < b).sum())
    out: dict[str, Any] = {"scored_pairs": len(b), "wins": wins, "losses": losses}
    out["ties"] = len(b) - wins - losses
    if len(b) == 0:
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
    """The test the comparison names, and the interval that agrees with it, over rows."""
    confidence = options.confidence
    if binary:
        # Discordant rows: baseline right and candidate wrong are the losses, and so on.
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
    b, c = pairs["b_errors"].to_numpy(), pairs["c_errors"].to_numpy()
    out: dict[str, Any] = {
        "baseline_error_rate": float(b.mean()),
        "candidate_error_rate": float(c.mean()),
        "error_rate_diff": float(c.mean() - b.mean()),
    }
    if zero_one(b) and zero_one(c):
        # Paired rows: McNemar on the error indicators is the paired two-proportion test.
        failed_b, failed_c = b == 1.0, c == 1.0
        p_value = stats.mcnemar_exact(
            int((failed_b & ~failed_c).sum()), int((failed_c & ~failed_b).sum())
        )
        return out | {"error_test": "mcnemar_exact", "error_p_value": p_value}
    return out | {"error_test": "paired_t", "error_p_value": stats.paired_t_test(b, c)}


def _latency_metrics(
    pairs: pl.DataFrame, both_ok: pl.Series, options: StatOptions
) -> dict[str, Any]:
    """Latency quantiles over rows (a row's latency: the mean of its ok calls), so repeats
    narrow no interval."""
    timed = both_ok & pairs["b_latency_ms"].is_not_null() & pairs["c_latency_ms"].is_not_null()
    b, c = _both(pairs, "latency_ms", timed)
    if len(b) == 0:
        return {}
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


def _tokens_diff(pairs: pl.DataFrame, both_ok: pl.Series) -> float | None:
    diff = (pairs["c_total_tokens"] - pairs["b_total_tokens"]).filter(both_ok).drop_nulls()
    return float(diff.mean()) if diff.len() else None  # type: ignore[arg-type]


def metrics_frame(rows: list[dict[str, Any]], head: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Rows of :func:`paired_metrics` (after ``head``'s columns) as a frame of fixed schema."""
    schema = {**head, **COMPARISON_SCHEMA}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def compare_variants(
    results: Results,
    baseline: str,
    *,
    variants: Sequence[str] | None = None,
    options: StatOptions = DEFAULT_OPTIONS,
    memory: MemoryPlan = DEFAULT_MEMORY,
) -> pl.DataFrame:
    """One row per variant other than ``baseline``: paired metrics against the baseline
    (``memory`` sets the parts a pairing is joined in)."""
    lf = lazy_results(results)
    order = variant_order(results, variants)
    if baseline not in order:
        raise ConfigError(f"baseline variant {baseline!r} is not in the results ({order})")
    binary = scores_are_binary(lf)
    rows = [
        {
            "baseline": baseline,
            "variant": v,
            **paired_metrics(pairs_of(lf, lf, baseline, v, memory=memory), binary, options),
        }
        for v in order
        if v != baseline
    ]
    return metrics_frame(rows, {"baseline": pl.String(), "variant": pl.String()})
