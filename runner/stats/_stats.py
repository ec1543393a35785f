"""Pure statistics for reports: intervals and tests on plain numbers and numpy arrays.

Nothing here knows about results or frames; :mod:`runner.stats._compare` decides which function
applies. Every interval is two-sided at ``confidence``; every random draw comes from a
``numpy.random.Generator`` seeded by the caller, so a report is reproducible.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from types import ModuleType
from typing import Final

import numpy as np
import numpy.typing as npt

from runner.stats import _binomial as binomial

FloatArray = npt.NDArray[np.float64]

DEFAULT_RESAMPLES: Final = 2000
DEFAULT_SEED: Final = 20240601

# Above this many distinct values the multinomial draw costs more than resampling indices.
_MULTINOMIAL_MAX_DISTINCT: Final = 2000
# Resampled indices held in memory at once (elements), to bound memory on large inputs.
_CHUNK_ELEMENTS: Final = 20_000_000


def _scipy_stats() -> ModuleType:
    """``scipy.stats``, imported on first use: 0.6–0.8 s and 70 MB, which only the tests of
    graded scores (t, Wilcoxon) pay; the binomial ones use :mod:`runner.stats._binomial`."""
    import scipy.stats

    module: ModuleType = scipy.stats
    return module


def _z(confidence: float) -> float:
    """The standard normal quantile for a two-sided ``confidence`` (the stdlib's, to within
    1e-15 of scipy's ``norm.ppf``: no scipy import for a Wilson interval)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / n``.

    Unlike the normal (Wald) interval it stays inside [0, 1] and keeps close to its nominal
    coverage for small ``n`` and proportions near 0 or 1. ``n == 0`` gives ``(nan, nan)``.
    """
    if n == 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    z = _z(confidence)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0/n (n/n) centre and half are equal in exact arithmetic: the interval starts at 0
    # (ends at 1) exactly, whatever the rounding; elsewhere the rounding error is clamped.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def _percentile_interval(draws: FloatArray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return (float(low), float(high))


def bootstrap_means(
    values: npt.ArrayLike, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> FloatArray:
    """Means of ``resamples`` bootstrap resamples of ``values`` (drawn with replacement).

    When the values take few distinct levels (0/1 or graded scores), a resample is fully
    described by how often it drew each level, so one multinomial draw per resample gives
    the exact bootstrap distribution at a cost independent of ``len(values)``.
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n == 0:
        return np.full(resamples, np.nan)
    rng = np.random.default_rng(seed)
    levels, counts = np.unique(x, return_counts=True)
    if levels.size <= _MULTINOMIAL_MAX_DISTINCT:
        draws = rng.multinomial(n, counts / n, size=resamples)
        return (draws @ levels) / n
    x = np.sort(x)  # so the draws do not depend on the order the values came in
    out = np.empty(resamples)
    step = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = x[idx].mean(axis=1)
    return out


def bootstrap_mean_ci(
    values: npt.ArrayLike,
    *,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of ``values``; ``(nan, nan)`` when empty."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return (math.nan, math.nan)
    return _percentile_interval(bootstrap_means(x, resamples=resamples, seed=seed), confidence)


def paired_bootstrap_diff_ci(
    baseline: npt.ArrayLike,
    candidate: npt.ArrayLike,
    *,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """Paired bootstrap interval for ``mean(candidate) - mean(baseline)``.

    Resampling pairs and taking the mean of the differences is the same thing, and keeps
    the correlation between the two arms (an easy row is easy for both).
    """
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in length: {a.size} and {b.size}")
    return bootstrap_mean_ci(b - a, confidence=confidence, resamples=resamples, seed=seed)


def quantile_nearest_rank(values: npt.ArrayLike, q: float) -> float:
    """The nearest-rank ``q``-quantile: the ``ceil(q * n)``-th smallest value (``nan`` if empty).

    This is the definition the quantile bootstrap below resamples exactly.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    if x.size == 0:
        return math.nan
    return float(x[_rank(q, x.size) - 1])


def _rank(q: float, n: int) -> int:
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {q}")
    return min(n, max(1, math.ceil(q * n)))


def bootstrap_quantiles(
    values: npt.ArrayLike,
    q: float,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    rng: np.random.Generator,
) -> FloatArray:
    """Nearest-rank ``q``-quantiles of ``resamples`` bootstrap resamples of ``values``.

    A resample's ``m``-th smallest value is the ``J``-th order statistic of the data, where
    ``P(J <= j) = P(Binomial(n, j/n) >= m)``: drawing ``J`` by inverting that distribution
    gives the exact bootstrap distribution in O(n log n), whatever ``resamples`` is.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    if n == 0:
        return np.full(resamples, np.nan)
    m = _rank(q, n)
    # J lies within a few binomial standard deviations of m; outside this window its
    # probability is below 1e-15, so the CDF is evaluated on the window alone.
    spread = 9.0 * math.sqrt(n * q * (1.0 - q)) + 10.0
    lo, hi = max(1, math.floor(m - spread)), min(n, math.ceil(m + spread))
    j = np.arange(lo, hi + 1)
    cdf = binomial.binom_sf(m - 1, n, j / n)
    cdf[-1] = 1.0  # every uniform must find an order statistic, float error or not
    picks = lo - 1 + np.searchsorted(cdf, rng.random(resamples), side="left")
    return x[picks]


def quantile_diff_ci(
    baseline: npt.ArrayLike,
    candidate: npt.ArrayLike,
    q: float,
    *,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """Bootstrap interval for ``quantile(candidate, q) - quantile(baseline, q)`` (nearest rank).

    The two arms are resampled independently (see :func:`bootstrap_quantiles`): exact and
    fast on millions of rows. When the arms are positively correlated, as latencies of one
    row under two variants often are, this interval is a little wider than a paired one.
    """
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    draws_a = bootstrap_quantiles(a, q, resamples=resamples, rng=rng)
    draws_b = bootstrap_quantiles(b, q, resamples=resamples, rng=rng)
    return _percentile_interval(draws_b - draws_a, confidence)


def mcnemar_exact(baseline_only: int, candidate_only: int) -> float:
    """Two-sided exact McNemar p-value from the two discordant counts.

    Under no difference each discordant pair is equally likely to go either way, so the
    test is an exact binomial test of ``baseline_only`` out of the discordant pairs at 1/2.
    No discordant pair gives 1.0.
    """
    if baseline_only < 0 or candidate_only < 0:
        raise ValueError("discordant counts must not be negative")
    n = baseline_only + candidate_only
    if n == 0:
        return 1.0
    return binomial.binom_test_half(baseline_only, n)


def paired_t_test(baseline: npt.ArrayLike, candidate: npt.ArrayLike) -> float:
    """Two-sided paired t-test p-value for a mean difference; 1.0 when every pair is equal."""
    d = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if d.size < 2:
        return math.nan
    if np.all(d == d[0]):
        # No spread: the t statistic is undefined; equal pairs mean no evidence of change.
        return 1.0 if d[0] == 0 else 0.0
    return float(_scipy_stats().ttest_1samp(d, 0.0).pvalue)


def wilcoxon_signed_rank(baseline: npt.ArrayLike, candidate: npt.ArrayLike) -> float:
    """Two-sided Wilcoxon signed-rank p-value on paired differences (zero differences dropped).

    Makes no normality assumption, which suits bounded, lumpy graded scores. 1.0 when every
    pair is equal.
    """
    d = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    d = d[d != 0]
    if d.size == 0:
        return 1.0
    return float(_scipy_stats().wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def clopper_pearson(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval for a binomial proportion; ``(nan, nan)`` when ``n == 0``.

    It inverts two one-sided exact binomial tests at ``(1 - confidence) / 2`` each, so it
    excludes ``p0`` exactly when the two-sided exact test of ``p0 = 1/2`` (a symmetric
    distribution) rejects at ``1 - confidence``.
    """
    _z(confidence)  # validates confidence
    if n == 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    tail = (1.0 - confidence) / 2.0
    low = 0.0 if successes == 0 else binomial.beta_ppf(tail, successes, n - successes + 1)
    high = 1.0 if successes == n else binomial.beta_ppf(1 - tail, successes + 1, n - successes)
    return (low, high)


def mcnemar_diff_ci(
    baseline_only: int, candidate_only: int, pairs: int, *, confidence: float = 0.95
) -> tuple[float, float]:
    """Interval for the paired difference of two 0/1 means that agrees with :func:`mcnemar_exact`.

    With ``d`` discordant pairs of ``pairs``, the difference of the means is
    ``(candidate_only - baseline_only) / pairs = (2·s - 1)·r`` where ``s`` is the share of
    discordant pairs the candidate wins and ``r = d / pairs`` the share of discordant pairs.
    ``s`` gets the exact Clopper–Pearson interval (conditional on ``d``, as the exact test is)
    and ``r`` a Wilson interval; the result is the range of ``(2·s - 1)·r`` over both. Its sign
    is the sign of ``2·s - 1``, so it excludes 0 exactly when the exact McNemar test rejects at
    ``1 - confidence``; ``r``'s own uncertainty sets its width (conditioning on ``d`` alone
    would put the estimate on the interval's edge whenever one arm wins every discordant
    pair). No discordant pair gives ``(-r_high, r_high)``: no difference seen, bounded by how
    few disagreements could have been missed.
    """
    if baseline_only < 0 or candidate_only < 0:
        raise ValueError("discordant counts must not be negative")
    discordant = baseline_only + candidate_only
    if pairs < discordant:
        raise ValueError(f"pairs ({pairs}) must be at least the discordant pairs ({discordant})")
    if pairs == 0:
        return (math.nan, math.nan)
    r_low, r_high = wilson_interval(discordant, pairs, confidence=confidence)
    if discordant == 0:
        return (-r_high, r_high)
    low, high = clopper_pearson(candidate_only, discordant, confidence=confidence)
    low_line, high_line = 2.0 * low - 1.0, 2.0 * high - 1.0
    return (
        min(low_line * r_low, low_line * r_high),
        max(high_line * r_low, high_line * r_high),
    )


def paired_t_ci(
    baseline: npt.ArrayLike, candidate: npt.ArrayLike, *, confidence: float = 0.95
) -> tuple[float, float]:
    """The t interval for ``mean(candidate - baseline)``: the interval of :func:`paired_t_test`.

    It excludes 0 exactly when the two-sided paired t-test rejects at ``1 - confidence``.
    Fewer than two pairs give ``(nan, nan)``; pairs that all differ by one constant give that
    constant as a point (the test's answer then is 1.0 or 0.0 alike).
    """
    _z(confidence)
    d = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if d.size < 2:
        return (math.nan, math.nan)
    mean = float(d.mean())
    if np.all(d == d[0]):
        return (mean, mean)
    half = float(_scipy_stats().t.ppf(0.5 + confidence / 2.0, d.size - 1)) * float(d.std(ddof=1))
    half /= math.sqrt(d.size)
    return (mean - half, mean + half)
