"""Paired metrics: each variant against the baseline, matched by row (``comparison.parquet``).

* :func:`compare_variants` — one row per variant other than the baseline.
* :func:`pairs_of` and :func:`paired_metrics` — one pairing and its metrics, shared with
  :mod:`runner.gates` and :mod:`runner.segments`.

Pairs are matched on ``(row_id, repeat)``: with ``--repeat`` the pairs of one row are not
independent, so p-values then lean optimistic. A pairing holds no text: per pair, whether
each call was ok, whether the outputs are equal (by hash), and the numbers (score, latency,
tokens) of both calls; the metrics read it a column at a time, never copying the frame.

One rule for verdicts: the interval shown next to a p-value comes from the same test, so
the interval excludes 0 exactly when the test rejects at ``1 - confidence``, and the verdict
word (:func:`score_verdict`) and ``--require-significance`` read that same p-value.

* binary scores: McNemar's exact test, with the exact Clopper–Pearson interval on the share
  of discordant pairs the candidate wins, mapped onto the score difference
  (:func:`runner.stats.mcnemar_diff_ci`);
* graded scores (default): the paired t-test with its t interval;
* graded scores with ``graded_test="wilcoxon"``: the signed-rank test, which has no interval
  on the mean difference, so none is given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import polars as pl

from runner import stats
from runner.errors import ConfigError
from runner.result_frames import (
    DEFAULT_OPTIONS,
    ENGINE,
    OK,
    PAIR_KEYS,
    Results,
    StatOptions,
    lazy_results,
    nan_to_none,
    output_hash,
    scores_are_binary,
    variant_order,
)

Verdict = Literal["better", "worse", "no significant difference"]

#: The numbers of each call a pairing keeps, as ``b_<name>`` and ``c_<name>``.
_NUMBERS: Final = ("score", "latency_ms", "total_tokens")


#: Baseline calls paired at a time: the join of two arms holds both whole, so a large pairing
#: is made in parts of row ids (by hash), each joined alone (0.25 GB less at 2 M results).
PART_ROWS: Final = 250_000
_PART_SEED: Final = 3


def arm(lf: pl.LazyFrame, variant: str, prefix: str, keep: Sequence[str] = ()) -> pl.LazyFrame:
    """One variant's calls as one side of a pairing: the keys, ``keep``, and ``<prefix>ok``,
    ``<prefix>output`` (a hash) and the numbers, all prefixed."""
    return lf.filter(pl.col("variant") == variant).select(
        *PAIR_KEYS,
        *keep,
        OK.alias(prefix + "ok"),
        output_hash().alias(prefix + "output"),
        *[pl.col(c).alias(prefix + c) for c in _NUMBERS],
    )


def paired(
    base: pl.LazyFrame, cand: pl.LazyFrame, variant_b: str, variant_c: str, keep: Sequence[str] = ()
) -> pl.DataFrame:
    """Calls of ``variant_b`` in ``base`` joined with those of ``variant_c`` in ``cand`` on
    ``(row_id, repeat)``, as :func:`paired_metrics` reads them: ``keep`` (columns of
    ``base``), ``b_ok``, ``c_ok``, ``same_output`` and the ``b_*``/``c_*`` numbers."""
    calls = base.filter(pl.col("variant") == variant_b).select(pl.len())
    parts = max(1, math.ceil(calls.collect(engine=ENGINE).item() / PART_ROWS))
    frames = []
    for part in range(parts):
        in_part = (pl.col("row_id").hash(seed=_PART_SEED) % parts) == part
        left = arm(base.filter(in_part), variant_b, "b_", keep)
        right = arm(cand.filter(in_part), variant_c, "c_")
        # No order is kept (it costs a third of the time): no paired metric depends on it.
        joined = left.join(right, on=PAIR_KEYS).select(
            *keep,
            "b_ok",
            "c_ok",
            (pl.col("b_output") == pl.col("c_output")).alias("same_output"),
            *[pl.col(p + c) for c in _NUMBERS for p in ("b_", "c_")],
        )
        frames.append(joined.collect(engine=ENGINE))
    return pl.concat(frames, how="vertical", rechunk=False)


def pairs_of(base: Results, cand: Results, variant_b: str, variant_c: str) -> pl.DataFrame:
    """Calls of ``variant_b`` in ``base`` paired with those of ``variant_c`` in ``cand`` on
    ``(row_id, repeat)``, one row per pair (see :func:`paired`)."""
    return paired(lazy_results(base), lazy_results(cand), variant_b, variant_c)


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
    """Every paired metric of one baseline/candidate pairing (as :func:`paired` makes it)."""
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


def _score_metrics(pairs: pl.DataFrame, binary: bool, options: StatOptions) -> dict[str, Any]:
    b, c = _both(pairs, "score", pairs["b_score"].is_not_null() & pairs["c_score"].is_not_null())
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
    b = (~pairs["b_ok"]).to_numpy()
    c = (~pairs["c_ok"]).to_numpy()
    return {
        "baseline_error_rate": float(b.mean()),
        "candidate_error_rate": float(c.mean()),
        "error_rate_diff": float(c.mean() - b.mean()),
        # Paired rows: McNemar on the error indicators is the paired two-proportion test.
        "error_test": "mcnemar_exact",
        "error_p_value": stats.mcnemar_exact(int((b & ~c).sum()), int((c & ~b).sum())),
    }


def _latency_metrics(
    pairs: pl.DataFrame, both_ok: pl.Series, options: StatOptions
) -> dict[str, Any]:
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
) -> pl.DataFrame:
    """One row per variant other than ``baseline``: paired metrics against the baseline."""
    lf = lazy_results(results)
    order = variant_order(results, variants)
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
