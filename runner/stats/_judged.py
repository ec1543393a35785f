"""What judges said, summed up: the pairwise win rate with its interval and sign test, the
judge's position consistency, and a judge's agreement with a deterministic score (Cohen's
kappa). Pure functions of ``pairwise.parquet`` and the scored results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import polars as pl

from runner.stats._stats import mcnemar_exact, wilson_interval

#: What a verdict is worth to the candidate: a win 1, a tie ½, a loss 0.
_POINTS: Final = {"win": 1.0, "tie": 0.5, "loss": 0.0}


def pairwise_metrics(pairwise: pl.DataFrame) -> pl.DataFrame:
    """Per candidate variant: pairwise wins, losses and ties, the win rate with a 95 % Wilson
    interval, and the two-sided sign test of wins against losses, over the ROWS with a verdict
    (None when the judge read none of the pairs it was asked about).

    The row is the unit, as in every other comparison: with ``--repeat`` a row's verdicts
    (one per repeat) count as one, their mean points (win 1, tie ½, loss 0): above ½ the row is
    a win, below a loss, at ½ a tie; the win rate is the mean of the rows' points. With one
    repeat that is the plain count of pairs.

    ``pairwise_unread`` counts the pairs left out (an order's call failed or its answer was
    not read), and the judge's position consistency is the share of judged pairs, both orders
    read, whose two orders agree: both are about the judge's calls, so they count pairs."""
    rows: list[dict[str, Any]] = []
    for (variant,), group in pairwise.group_by("variant", maintain_order=True):
        read = group.filter(pl.col("verdict").is_not_null())
        unread = group.height - read.height
        points = _row_points(read)
        wins = int((points > 0.5).sum())
        losses = int((points < 0.5).sum())
        n = points.len()
        ties = n - wins - losses
        # Identical outputs are ties that need no judge; when the judge read none of the pairs
        # it was asked about, those ties alone would make a win rate of 0.5: nothing to measure.
        measurable = n > 0 and not (unread > 0 and read.filter(pl.col("judged")).is_empty())
        total = float(points.sum()) if n else 0.0
        rate = total / n if measurable else None
        low, high = wilson_interval(round(total), n) if measurable else (None, None)
        both_read = group.filter(pl.col("judged") & pl.col("consistent").is_not_null())
        rows.append(
            {
                "variant": variant,
                "pairwise_pairs": n,
                "pairwise_wins": wins,
                "pairwise_losses": losses,
                "pairwise_ties": ties,
                "pairwise_unread": unread,
                "pairwise_win_rate": rate,
                "pairwise_win_rate_ci_low": low,
                "pairwise_win_rate_ci_high": high,
                "pairwise_p_value": mcnemar_exact(wins, losses) if measurable else None,
                "judge_position_consistency": (
                    float(both_read["consistent"].mean())  # type: ignore[arg-type]
                    if both_read.height
                    else None
                ),
            }
        )
    return pl.DataFrame(rows, schema=PAIRWISE_METRICS)


def _row_points(read: pl.DataFrame) -> pl.Series:
    """Each row's points: the mean over its read verdicts (its repeats)."""
    points = pl.col("verdict").replace_strict(_POINTS, return_dtype=pl.Float64)
    return read.group_by("row_id", maintain_order=True).agg(points.mean())["verdict"]


#: Below this position consistency, the judge mostly picks a position, not an answer.
POSITION_BIAS_BELOW: Final = 0.5


def position_bias_warning(consistency: float | None) -> str | None:
    """The warning to show beside a pairwise result whose judge prefers a position (its two
    orders agree on fewer than half of the judged pairs), else None."""
    if consistency is None or consistency >= POSITION_BIAS_BELOW:
        return None
    return (
        f"the judge prefers a position: its two orders agree on only {consistency * 100:.1f} % "
        "of the judged pairs, so its verdicts say little about the answers"
    )


PAIRWISE_METRICS: Final[dict[str, pl.DataType]] = {
    "variant": pl.String(), "pairwise_pairs": pl.Int64(), "pairwise_wins": pl.Int64(),
    "pairwise_losses": pl.Int64(), "pairwise_ties": pl.Int64(), "pairwise_unread": pl.Int64(),
    "pairwise_win_rate": pl.Float64(), "pairwise_win_rate_ci_low": pl.Float64(),
    "pairwise_win_rate_ci_high": pl.Float64(), "pairwise_p_value": pl.Float64(),
    "judge_position_consistency": pl.Float64(),
}  # fmt: skip


def judge_agreement(results: pl.DataFrame, deterministic: str, judge: str) -> pl.DataFrame:
    """Per variant: how often the judge (score >= 0.5) agrees with a 0/1 deterministic score,
    and Cohen's kappa, over rows scored by both."""
    rows: list[dict[str, Any]] = []
    both = results.filter(pl.col(deterministic).is_not_null() & pl.col(judge).is_not_null())
    for (variant,), group in both.group_by("variant", maintain_order=True):
        det = (group[deterministic] >= 0.5).to_list()
        jud = (group[judge] >= 0.5).to_list()
        rows.append({"variant": variant, **_kappa(det, jud)})
    return pl.DataFrame(
        rows,
        schema={"variant": pl.String, "judge_rows": pl.Int64, "judge_agreement": pl.Float64,
                "judge_kappa": pl.Float64},
    )  # fmt: skip


def _kappa(a: Sequence[bool], b: Sequence[bool]) -> dict[str, Any]:
    n = len(a)
    if n == 0:
        return {"judge_rows": 0, "judge_agreement": None, "judge_kappa": None}
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa_, pb = sum(a) / n, sum(b) / n
    expected = pa_ * pb + (1 - pa_) * (1 - pb)
    kappa = None if expected == 1 else (observed - expected) / (1 - expected)
    return {"judge_rows": n, "judge_agreement": observed, "judge_kappa": kappa}
