"""side_by_side.parquet built in bounded memory: the same rows, in the same order, as the
in-memory table, however many buckets and batches it is cut into."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from runner.errors import ConfigError
from runner.stats._side_by_side import bucketed_side_by_side, side_by_side
from runner.store._memory import MemoryPlan
from tests.reports_helpers import answers, frame, row, with_scores


def _mixed_results() -> pl.DataFrame:
    """Three variants over 40 rows and two repeats, in no tidy order: some rows lack a
    variant, some errored, scores go up, down or stay, and a row's first result may belong
    to any variant."""
    rows, scores = [], []
    variants = ("base", "cand", "other")
    for i in range(40):
        for repeat in (0, 1):
            for k, variant in enumerate(variants[i % 3 :] + variants[: i % 3]):
                if (i + k) % 7 == 3:
                    continue  # this call is missing
                errored = (i * 3 + k + repeat) % 11 == 0
                rows.append(
                    row(
                        f"r{(i * 17) % 40}",
                        variant,
                        f"answer {(i + k * repeat) % 4}",
                        expected=None if i % 9 == 0 else "answer 0",
                        status="error" if errored else "ok",
                        repeat=repeat,
                        latency_ms=100.0 + i,
                    )
                )
                scores.append(None if errored else float((i + k + repeat) % 3 == 0))
    return with_scores(frame(rows), scores)


@pytest.mark.parametrize(
    ("memory", "size", "buckets"),
    [
        (MemoryPlan(side_by_side_read_rows=1000), 1000, 1),
        (MemoryPlan(bucket_rows=41, side_by_side_read_rows=7, bucket_group_rows=3), 3, 5),
        (MemoryPlan(bucket_rows=16, side_by_side_read_rows=16, bucket_group_rows=2), 1, 13),
    ],
)
def test_the_bucketed_table_is_the_in_memory_table(
    tmp_path: Path, memory: MemoryPlan, size: int, buckets: int
) -> None:
    """Same rows, same columns, same order, whatever the buckets, reads and batches."""
    results = _mixed_results()  # 204 results: ceil(204 / bucket_rows) buckets
    # The results as a run keeps them: results.parquet without scores, scores.parquet row for
    # row beside it, in row groups of another size (the two are read in step).
    results = results.with_columns(pl.lit(None, pl.String).alias("score_error"))
    results.drop("score", "score_error").write_parquet(tmp_path / "results.parquet")
    results.select("score", "score_error").write_parquet(
        tmp_path / "scores.parquet", row_group_size=11
    )
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    expected = side_by_side(results, "cand", variants=["base", "cand", "other"])
    table = bucketed_side_by_side(
        tmp_path, "cand", variants=["base", "cand", "other"], scratch=scratch, memory=memory
    )
    assert len(table.buckets) == buckets
    assert_frame_equal(pl.concat(list(table.batches(size)), how="vertical"), expected)


def test_the_changed_rows_are_counted_and_come_first(tmp_path: Path) -> None:
    results = frame([*answers("base", 10, total=30), *answers("cand", 4, total=30)])
    results = results.with_columns(score=(pl.col("output") == "Paris").cast(pl.Float64))
    path = tmp_path / "results.parquet"
    results.write_parquet(path)
    four = MemoryPlan(bucket_rows=15)  # 60 results
    table = bucketed_side_by_side(
        tmp_path, "base", variants=["base", "cand"], scratch=tmp_path, memory=four
    )
    rows = pl.concat(list(table.batches(5)))
    assert len(table.buckets) == 4
    assert table.changed == 6
    assert rows["row_id"].head(6).to_list() == [f"r{i}" for i in range(4, 10)]
    assert not rows["changed"].tail(24).any()


def test_results_without_scores_still_pair_up(tmp_path: Path) -> None:
    results = frame([row("r1", "a", "x"), row("r1", "b", "y"), row("r2", "b", "z")])
    path = tmp_path / "results.parquet"
    results.write_parquet(path)
    table = bucketed_side_by_side(tmp_path, "a", variants=["a", "b"], scratch=tmp_path)
    got = pl.concat(list(table.batches(10)))
    assert_frame_equal(got, side_by_side(results, "a", variants=["a", "b"]))
    assert got["score_a"].null_count() == 2


def test_an_unknown_baseline_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "results.parquet"
    frame([row("r1", "a", "x")]).write_parquet(path)
    with pytest.raises(ConfigError, match="'zz'"):
        bucketed_side_by_side(tmp_path, "zz", variants=["a"], scratch=tmp_path)
