"""The pairwise judge's win rate and sign test count rows, not (row, repeat) pairs: repeating
every call three times must not make the same evidence three times as significant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl
import pytest

from runner.stats._judged import pairwise_metrics
from runner.stats._stats import mcnemar_exact


def _pairwise(verdicts: Mapping[str, Sequence[str | None]]) -> pl.DataFrame:
    """pairwise.parquet's columns the metrics read: one row per (row, repeat)."""
    rows = [
        {"row_id": row_id, "repeat": repeat, "variant": "cand", "verdict": verdict,
         "judged": True, "consistent": None if verdict is None else True}
        for row_id, per_repeat in verdicts.items()
        for repeat, verdict in enumerate(per_repeat)
    ]  # fmt: skip
    return pl.DataFrame(rows, schema_overrides={"verdict": pl.String, "consistent": pl.Boolean})


def _metrics(verdicts: Mapping[str, Sequence[str | None]]) -> dict[str, object]:
    return pairwise_metrics(_pairwise(verdicts)).row(0, named=True)


def test_repeats_of_the_same_verdicts_give_the_same_p_value_and_interval() -> None:
    once = {f"r{i}": ["win"] for i in range(8)} | {f"s{i}": ["loss"] for i in range(2)}
    thrice = {row: list(verdicts) * 3 for row, verdicts in once.items()}
    one, three = _metrics(once), _metrics(thrice)
    assert one["pairwise_pairs"] == three["pairwise_pairs"] == 10
    assert (three["pairwise_wins"], three["pairwise_losses"]) == (8, 2)
    assert three["pairwise_p_value"] == pytest.approx(mcnemar_exact(8, 2))
    assert three["pairwise_p_value"] == one["pairwise_p_value"]
    for key in ("pairwise_win_rate", "pairwise_win_rate_ci_low", "pairwise_win_rate_ci_high"):
        assert three[key] == one[key]
    # counted as pairs, 24 wins against 6 losses would look far more certain than 8 against 2
    assert mcnemar_exact(24, 6) < 0.01 < float(str(three["pairwise_p_value"]))


def test_a_row_is_won_lost_or_tied_by_the_mean_of_its_repeats() -> None:
    metrics = _metrics(
        {
            "a": ["win", "win", "loss"],  # 2/3: a win
            "b": ["loss", "tie", "loss"],  # 1/6: a loss
            "c": ["win", "loss", "tie"],  # 1/2: a tie
            "d": ["win", None, None],  # one read verdict: a win; its two unread pairs counted
        }
    )
    assert (metrics["pairwise_wins"], metrics["pairwise_losses"]) == (2, 1)
    assert (metrics["pairwise_ties"], metrics["pairwise_pairs"]) == (1, 4)
    assert metrics["pairwise_unread"] == 2
    expected_rate = (2 / 3 + 1 / 6 + 1 / 2 + 1) / 4
    assert metrics["pairwise_win_rate"] == pytest.approx(expected_rate)
