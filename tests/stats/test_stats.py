"""The statistics behind the reports, checked against answers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runner.stats import _stats as stats


def test_mcnemar_exact_ten_discordant_one_way_two_the_other() -> None:
    """p = 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096 = 158/4096 ≈ 0.0386."""
    assert stats.mcnemar_exact(10, 2) == pytest.approx(158 / 4096)
    assert stats.mcnemar_exact(2, 10) == pytest.approx(158 / 4096)


def test_mcnemar_exact_without_discordant_pairs_is_one() -> None:
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.mcnemar_exact(3, 3) == pytest.approx(1.0)


def test_mcnemar_exact_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        stats.mcnemar_exact(-1, 2)


def test_wilson_eight_of_ten() -> None:
    """z = 1.95996: centre (0.8 + z²/20) / (1 + z²/10), half-width z·√(0.016 + z²/400) / same."""
    low, high = stats.wilson_interval(8, 10)
    assert low == pytest.approx(0.49016, abs=1e-5)
    assert high == pytest.approx(0.94331, abs=1e-5)


def test_wilson_zero_of_ten_starts_at_zero() -> None:
    """For 0/n the upper end is z² / (n + z²) = 3.84146 / 13.84146."""
    low, high = stats.wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(3.841459 / 13.841459, abs=1e-6)


def test_wilson_of_nothing_is_nan() -> None:
    assert all(math.isnan(x) for x in stats.wilson_interval(0, 0))


def test_wilson_rejects_successes_above_n() -> None:
    with pytest.raises(ValueError):
        stats.wilson_interval(11, 10)


def test_quantile_nearest_rank_takes_the_ceil_q_n_th_value() -> None:
    values = [10.0, 1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0, 6.0, 5.0]
    assert stats.quantile_nearest_rank(values, 0.5) == 5.0  # 5th of 10
    assert stats.quantile_nearest_rank(values, 0.95) == 10.0  # ceil(9.5) = 10th
    assert stats.quantile_nearest_rank(values, 0.1) == 1.0
    assert math.isnan(stats.quantile_nearest_rank([], 0.5))


def test_bootstrap_of_a_median_matches_its_exact_distribution() -> None:
    """Median of 3 draws from {1, 2, 3}: P(1) = P(3) = 7/27, P(2) = 13/27."""
    draws = stats.bootstrap_quantiles(
        [3.0, 1.0, 2.0], 0.5, resamples=200_000, rng=np.random.default_rng(1)
    )
    shares = {v: float(np.mean(draws == v)) for v in (1.0, 2.0, 3.0)}
    assert shares[1.0] == pytest.approx(7 / 27, abs=0.004)
    assert shares[2.0] == pytest.approx(13 / 27, abs=0.004)
    assert shares[3.0] == pytest.approx(7 / 27, abs=0.004)


def test_bootstrap_means_of_zero_one_values_have_the_binomial_spread() -> None:
    """Resampled means of n 0/1 values with share p have sd √(p(1-p)/n)."""
    values = np.array([1.0] * 30 + [0.0] * 70)
    draws = stats.bootstrap_means(values, resamples=20_000, seed=3)
    assert draws.mean() == pytest.approx(0.3, abs=0.002)
    assert draws.std() == pytest.approx(math.sqrt(0.3 * 0.7 / 100), rel=0.03)


def test_bootstrap_means_of_many_distinct_values_resample_indices() -> None:
    """Past the multinomial limit the spread is still sd/√n (here 1/√5000)."""
    values = np.random.default_rng(5).normal(0.0, 1.0, 5000)
    draws = stats.bootstrap_means(values, resamples=1000, seed=3)
    assert draws.std() == pytest.approx(values.std() / math.sqrt(5000), rel=0.08)


def test_bootstrap_is_reproducible_with_a_seed() -> None:
    values = [0.0, 0.5, 1.0, 1.0, 0.5]
    assert stats.bootstrap_mean_ci(values, seed=9) == stats.bootstrap_mean_ci(values, seed=9)


def test_bootstrap_of_constant_values_is_a_point() -> None:
    assert stats.bootstrap_mean_ci([0.4] * 12) == pytest.approx((0.4, 0.4))


def test_bootstrap_of_nothing_is_nan() -> None:
    assert all(math.isnan(x) for x in stats.bootstrap_mean_ci([]))


def test_paired_bootstrap_of_a_constant_shift_is_that_shift() -> None:
    base = np.array([0.1, 0.5, 0.9, 0.3])
    assert stats.paired_bootstrap_diff_ci(base, base + 0.1) == pytest.approx((0.1, 0.1))


def test_paired_bootstrap_rejects_unequal_lengths() -> None:
    with pytest.raises(ValueError):
        stats.paired_bootstrap_diff_ci([1.0, 2.0], [1.0])


def test_quantile_diff_ci_holds_a_shift() -> None:
    base = np.random.default_rng(2).exponential(100.0, 400)
    low, high = stats.quantile_diff_ci(base, base + 50.0, 0.5)
    assert low < 50.0 < high


def test_paired_t_test_by_hand() -> None:
    """Differences 1, 2, 3, 4: t = 2.5 / (1.29099 / 2) = 3.87298 with 3 df, p = 0.03047."""
    assert stats.paired_t_test([0, 0, 0, 0], [1, 2, 3, 4]) == pytest.approx(0.030466, abs=1e-6)


def test_paired_t_test_of_equal_pairs_is_one() -> None:
    assert stats.paired_t_test([1.0, 2.0], [1.0, 2.0]) == 1.0


def test_wilcoxon_all_five_differences_positive() -> None:
    """Exact: only 1 of 2^5 sign patterns is as extreme on each side, p = 2/32."""
    assert stats.wilcoxon_signed_rank([0] * 5, [1, 2, 3, 4, 5]) == pytest.approx(0.0625)


def test_wilcoxon_of_equal_pairs_is_one() -> None:
    assert stats.wilcoxon_signed_rank([0.5, 1.0], [0.5, 1.0]) == 1.0


# Coverage: a 95 % interval should hold the truth in about 95 % of seeded trials.

TRIALS = 400


def _coverage(hits: list[bool]) -> float:
    return sum(hits) / len(hits)


def test_wilson_covers_the_true_share_about_95_percent_of_the_time() -> None:
    """The true share is drawn per trial: Wilson's coverage wobbles with p for a fixed n."""
    rng = np.random.default_rng(11)
    hits = []
    for _ in range(1000):
        share = float(rng.uniform(0.1, 0.9))
        low, high = stats.wilson_interval(int(rng.binomial(100, share)), 100)
        hits.append(low <= share <= high)
    assert 0.93 <= _coverage(hits) <= 0.97


def _graded_pair(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Graded scores with a row effect shared by both arms; the candidate is a bit better."""
    row = rng.uniform(0.2, 0.8, n)
    base = np.clip(row + rng.normal(0.0, 0.15, n), 0, 1).round(1)
    cand = np.clip(row + 0.05 + rng.normal(0.0, 0.15, n), 0, 1).round(1)
    return base, cand


def test_paired_bootstrap_covers_the_true_difference_about_95_percent() -> None:
    base, cand = _graded_pair(np.random.default_rng(99), 500_000)
    truth = float(cand.mean() - base.mean())  # the population difference, to ~3e-4
    rng = np.random.default_rng(12)
    hits = []
    for trial in range(TRIALS):
        base, cand = _graded_pair(rng, 150)
        low, high = stats.paired_bootstrap_diff_ci(base, cand, resamples=1000, seed=trial)
        hits.append(low <= truth <= high)
    assert 0.93 <= _coverage(hits) <= 0.97


def test_quantile_diff_ci_covers_the_true_median_difference_about_95_percent() -> None:
    """Exponential latencies, means 300 and 360 ms: true median difference 60·ln 2."""
    rng = np.random.default_rng(13)
    truth = 60.0 * math.log(2.0)
    hits = []
    for trial in range(TRIALS):
        base, cand = rng.exponential(300.0, 200), rng.exponential(360.0, 200)
        low, high = stats.quantile_diff_ci(base, cand, 0.5, resamples=1000, seed=trial)
        hits.append(low <= truth <= high)
    assert 0.93 <= _coverage(hits) <= 0.97


def test_clopper_pearson_zero_of_four_by_hand() -> None:
    """For 0/n the upper end solves (1 - p)^n = α/2: 1 - 0.025^(1/4) ≈ 0.6024."""
    low, high = stats.clopper_pearson(0, 4)
    assert low == 0.0
    assert high == pytest.approx(1 - 0.025 ** (1 / 4))


def test_clopper_pearson_is_symmetric() -> None:
    low, high = stats.clopper_pearson(3, 10)
    low2, high2 = stats.clopper_pearson(7, 10)
    assert (low, high) == pytest.approx((1 - high2, 1 - low2))


def test_mcnemar_diff_ci_is_the_range_over_both_intervals() -> None:
    """4 lost of 20 pairs: s in [0, 0.6024] (exact), r = 4/20 in Wilson's [0.0807, 0.4160];
    the difference (2s - 1)·r runs from -1·0.4160 to (2·0.6024 - 1)·0.4160."""
    r_low, r_high = stats.wilson_interval(4, 20)
    s_high = 1 - 0.025 ** (1 / 4)
    low, high = stats.mcnemar_diff_ci(4, 0, 20)
    assert low == pytest.approx(-r_high)
    assert high == pytest.approx((2 * s_high - 1) * r_high)
    assert r_low > 0


def test_mcnemar_diff_ci_holds_its_estimate_inside_when_one_arm_wins_every_discordant_pair() -> (
    None
):
    """31 lost of 200, none won (the demo): the estimate -0.155 is inside, not on an edge."""
    low, high = stats.mcnemar_diff_ci(31, 0, 200)
    assert low < -0.155 < high < 0


def test_mcnemar_diff_ci_without_discordant_pairs_is_bounded_by_the_unseen() -> None:
    """No disagreement in 10 pairs: 0, give or take the discordant share that could hide."""
    _, r_high = stats.wilson_interval(0, 10)
    assert stats.mcnemar_diff_ci(0, 0, 10) == (-r_high, r_high)
    assert all(math.isnan(x) for x in stats.mcnemar_diff_ci(0, 0, 0))


def test_paired_t_ci_excludes_zero_exactly_when_the_t_test_rejects() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        base = rng.random(8)
        cand = base + rng.normal(0.1, 0.2, 8)
        low, high = stats.paired_t_ci(base, cand)
        assert (low > 0 or high < 0) == (stats.paired_t_test(base, cand) < 0.05)


def test_paired_t_ci_of_a_constant_shift_is_that_shift() -> None:
    assert stats.paired_t_ci([0.1, 0.2, 0.3], [0.3, 0.4, 0.5]) == pytest.approx((0.2, 0.2))
