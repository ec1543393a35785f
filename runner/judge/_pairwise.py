"""The pairwise judge's side: which pairs it judges, the two calls per pair, its verdicts.

For every row where the baseline and a candidate both answered ok with different outputs, the
judge is called twice, baseline first (``AB``) and swapped (``BA``); a side wins only when both
orders pick it (:func:`runner.judge._parse.combine`). Identical outputs are ties that cost no
call. A pair whose order was not read has no verdict: it is left out of the win rate and
counted as ``pairwise_unread``, never taken for a tie. :func:`write_pairwise` writes
``pairwise.parquet``; :func:`pairwise_metrics` sums it up per candidate for the comparison
and the ``--min-win-rate`` and ``--min-judge-consistency`` gates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import polars as pl

from runner.judge._parse import (
    Preference,
    Score,
    Verdict,
    combine,
    combine_strength,
    parse_winner,
)
from runner.records import STATUS_OK
from runner.store import RunDir, atomic_write_parquet

ORDERS: Final = ("AB", "BA")
"""``AB``: output_a is the baseline's answer; ``BA``: the candidate's."""


def input_column(results: pl.LazyFrame) -> pl.Expr:
    """The row's prompt input: its value when the row has one input column, else the JSON
    object of all of them (as the results store it)."""
    first = results.select("inputs").head(1).collect()
    keys = list(json.loads(first.item())) if first.height and first.item() else []
    if len(keys) == 1:
        return pl.col("inputs").str.json_path_match(f"$['{keys[0]}']").fill_null("")
    return pl.col("inputs").fill_null("{}")


def with_variables(frame: pl.LazyFrame, variables: Mapping[str, str]) -> pl.LazyFrame:
    return frame.with_columns(pl.lit(value).alias(name) for name, value in variables.items())


def call_id(*columns: str | pl.Expr) -> pl.Expr:
    """A judge call's id: its parts (variant, repeat, [order,] row id) as one JSON object, so
    no two calls share an id whatever the variant names and row ids hold."""
    return pl.struct(*columns).struct.json_encode()


_ID_PARTS: Final = {"variant": pl.String, "repeat": pl.Int32, "order": pl.String,
                    "row_id": pl.String}  # fmt: skip


def split_ids(ids: pl.Series, *, ordered: bool) -> pl.DataFrame:
    """A judge call's id (:func:`call_id`) back into its parts."""
    names = ["variant", "repeat", "order", "row_id"] if ordered else ["variant", "repeat", "row_id"]
    dtype = pl.Struct({name: _ID_PARTS[name] for name in names})
    return ids.str.json_decode(dtype).struct.unnest().select(names)


def answers(outcomes: pl.DataFrame) -> list[str | None]:
    """Each judge call's answer, or None where the call itself failed."""
    return [
        out if status == STATUS_OK else None
        for status, out in outcomes.select("status", "output").iter_rows()
    ]


def judged_calls(
    outcomes: pl.DataFrame,
    parsed: Sequence[Score | Preference | None],
    columns: Sequence[pl.Series],
    *,
    ordered: bool,
) -> pl.DataFrame:
    """One line per judge call: its id's parts, ``columns`` (what its answer said, in the
    order of ``parsed``) and ``judge_error``: why its answer was not read, or why the call
    failed (where ``parsed`` holds None)."""
    errors = [
        (p.error if p is not None else f"judge call failed: {message}")
        for p, message in zip(parsed, outcomes["error_message"], strict=True)
    ]
    return split_ids(outcomes["id"], ordered=ordered).with_columns(
        *columns, pl.Series("judge_error", errors, dtype=pl.String)
    )


def pairwise_pairs(results: pl.LazyFrame, baseline: str) -> pl.LazyFrame:
    """Every (row, repeat, candidate variant) where the baseline and the candidate both
    answered ok: their outputs, and whether they are identical (a tie that costs no call)."""
    ok = results.filter(pl.col("status") == STATUS_OK)
    base = ok.filter(pl.col("variant") == baseline).select(
        "row_id", "repeat", pl.col("output").alias("baseline_output"),
        input_column(results).alias("input"), pl.col("expected").fill_null(""),
    )  # fmt: skip
    cand = ok.filter(pl.col("variant") != baseline).select(
        "row_id", "repeat", "variant", pl.col("output").alias("candidate_output")
    )
    return cand.join(
        base, on=["row_id", "repeat"], how="inner", maintain_order="left"
    ).with_columns(
        (pl.col("candidate_output") == pl.col("baseline_output")).alias("identical"),
        pl.lit(baseline).alias("baseline"),
    )


def pairwise_calls(pairs: pl.LazyFrame, variables: Mapping[str, str]) -> pl.LazyFrame:
    """Two judge calls per differing pair: baseline first (AB), then swapped (BA)."""
    differing = pairs.filter(~pl.col("identical"))
    orders = []
    for order in ORDERS:
        a, b = ("baseline_output", "candidate_output")[:: 1 if order == "AB" else -1]
        key = call_id("variant", "repeat", pl.lit(order).alias("order"), "row_id")
        orders.append(
            differing.select(
                key.alias("id"),
                "input",
                pl.col(a).alias("output_a"),
                pl.col(b).alias("output_b"),
                "expected",
                pl.lit("judge").alias("role"),
                pl.col("variant").alias("judged_variant"),
                pl.col("row_id").alias("judged_row_id"),
                pl.col("repeat").alias("judged_repeat"),
                pl.lit(order).alias("order"),
            )
        )
    return with_variables(pl.concat(orders), variables)


def write_pairwise(
    rundir: RunDir,
    pairs: pl.LazyFrame,
    outcomes: pl.DataFrame,
    baseline: str,
    pattern: re.Pattern[str] | None = None,
) -> int:
    """pairwise.parquet: one row per pair, each order's winner, strength, reason and judge
    error, and the candidate's verdict; return how many answers did not parse.

    An order whose call failed or whose answer was not read has a null winner and a
    ``judge_error_<order>``; the row then has no verdict (null, never ``tie``) and its
    ``judge_error`` names the orders that failed. ``pattern`` is ``--pairwise-pattern``.
    """
    prefs = [parse_winner(a, pattern) if a is not None else None for a in answers(outcomes)]
    read = [
        pl.Series("winner", [p.winner if p else None for p in prefs], dtype=pl.String),
        pl.Series("strength", [p.strength if p else None for p in prefs], dtype=pl.String),
        pl.Series("reason", [p.reason if p else None for p in prefs], dtype=pl.String),
    ]
    judged = judged_calls(outcomes, prefs, read, ordered=True)
    per_order = ("winner", "strength", "reason", "judge_error")
    by_order = {
        order: judged.filter(pl.col("order") == order)
        .drop("order")
        .rename({name: f"{name}_{order}" for name in per_order})
        for order in ORDERS
    }
    keys = ["row_id", "repeat", "variant"]
    frame = (
        pairs.collect()
        .join(by_order["AB"], on=keys, how="left", maintain_order="left")
        .join(by_order["BA"], on=keys, how="left", maintain_order="left")
    )
    verdicts: list[Verdict | None] = []
    agreed: list[bool | None] = []
    strengths: list[str | None] = []
    row_errors: list[str | None] = []
    for row in frame.iter_rows(named=True):
        verdict: Verdict | None
        consistent: bool | None
        if row["identical"]:
            verdict, consistent, error = "tie", None, None
        else:
            verdict, consistent = combine(row["winner_AB"], row["winner_BA"])
            error = _row_error(row)
        verdicts.append(verdict)
        agreed.append(consistent)
        strengths.append(combine_strength(verdict, row["strength_AB"], row["strength_BA"]))
        row_errors.append(error)
    frame = frame.with_columns(
        pl.Series("verdict", verdicts, dtype=pl.String),
        pl.Series("strength", strengths, dtype=pl.String),
        pl.Series("consistent", agreed, dtype=pl.Boolean),
        pl.Series("judge_error", row_errors, dtype=pl.String),
        pl.col("identical").alias("judged").not_(),
    ).select(
        "row_id", "repeat", "variant", "baseline", "identical", "judged", "winner_AB",
        "winner_BA", "verdict", "strength", "consistent", "strength_AB", "strength_BA",
        "reason_AB", "reason_BA", "judge_error", "judge_error_AB", "judge_error_BA",
    )  # fmt: skip
    atomic_write_parquet(rundir.pairwise, frame)
    return sum(1 for p in prefs if p is not None and p.error is not None)


def _row_error(row: Mapping[str, Any]) -> str | None:
    """Why a judged pair has no verdict: each failed order's error (``AB: …; BA: …``)."""
    parts = []
    for order in ORDERS:
        if row[f"winner_{order}"] is None:
            error = row[f"judge_error_{order}"] or "no judge call was made"
            parts.append(f"{order}: {error}")
    return "; ".join(parts) or None
