"""runner.stats._binomial against scipy.stats: the same numbers to 1e-9 relative over a grid that
runs from one trial to a million, so the reports need not import scipy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from runner.stats import _binomial as binomial
from runner.stats import _stats as stats
from tests.reports_helpers import answers, frame, write_run

RTOL = 1e-9
TRIALS = (1, 2, 3, 4, 5, 10, 11, 37, 100, 1001, 12_345, 100_000, 1_000_000)


def _successes(n: int) -> list[int]:
    return sorted(
        {k for k in (0, 1, 2, n // 20, n // 3, (n - 1) // 2, n // 2, n - 1, n) if 0 <= k <= n}
    )


@pytest.mark.parametrize("n", TRIALS)
def test_binomial_upper_tails_match_scipy(n: int) -> None:
    p = np.array([1e-6, 0.001, 0.01, 0.1, 0.3, 0.5, 0.7, 0.95, 0.999])
    for k in [-1, *_successes(n)]:
        expected = scipy.stats.binom.sf(k, n, p)
        np.testing.assert_allclose(binomial.binom_sf(k, n, p), expected, rtol=RTOL, atol=1e-300)


@pytest.mark.parametrize("n", TRIALS[:-1])
def test_the_exact_test_at_one_half_is_scipys_binomtest(n: int) -> None:
    for k in _successes(n):
        expected = scipy.stats.binomtest(k, n, 0.5, alternative="two-sided").pvalue
        assert binomial.binom_test_half(k, n) == pytest.approx(expected, rel=RTOL, abs=1e-300)


@pytest.mark.parametrize("trials", [1, 2, 3, 7, 20, 100, 1000, 54_321, 200_000])
def test_beta_quantiles_match_scipy(trials: int) -> None:
    for s in sorted({1, 2, trials // 3, trials // 2, trials - 1, trials} - {0}):
        for q in (0.005, 0.025, 0.05, 0.5, 0.975, 0.995):
            for a, b in ((s, trials - s + 1), (s + 1, trials - s)):
                if b >= 1:
                    expected = scipy.stats.beta.ppf(q, a, b)
                    assert binomial.beta_ppf(q, a, b) == pytest.approx(expected, rel=RTOL)


def test_clopper_pearson_is_scipys_interval() -> None:
    for successes, n in ((0, 5), (3, 5), (5, 5), (412, 1000), (49_000, 100_000)):
        tail = 0.025
        low, high = stats.clopper_pearson(successes, n)
        want_low = scipy.stats.beta.ppf(tail, successes, n - successes + 1) if successes else 0.0
        want_high = (
            scipy.stats.beta.ppf(1 - tail, successes + 1, n - successes) if successes < n else 1.0
        )
        assert (low, high) == pytest.approx((want_low, want_high), rel=RTOL)


def test_the_quantile_bootstrap_draws_the_same_order_statistics_as_with_scipy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same seed, same picks: the CDF it inverts is scipy's to far below a uniform's grain."""
    values = np.random.default_rng(3).lognormal(6.0, 0.4, 200_000)
    ours = stats.bootstrap_quantiles(values, 0.95, rng=np.random.default_rng(9))
    monkeypatch.setattr(binomial, "binom_sf", lambda k, n, p: scipy.stats.binom.sf(k, n, p))
    theirs = stats.bootstrap_quantiles(values, 0.95, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(ours, theirs)


def test_a_report_on_exact_scores_does_not_import_scipy(tmp_path: Path) -> None:
    rows = [*answers("base", 4, total=10), *answers("cand", 7, total=10, latency_ms=150.0)]
    out = write_run(tmp_path / "run", frame(rows), variants=["base", "cand"])
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from runner.report import build_reports\n"
        f"build_reports(Path({str(out)!r}), score='exact')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
