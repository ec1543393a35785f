"""Regression gates: limits on paired metrics, checked so that no gate passes by accident.

The gates (:class:`Gates`), one gate's result (:class:`GateResult`), and the check of one
pairing's metrics (:func:`check_gates`); :mod:`runner.gates._pairing` pairs what is gated (two runs,
or the variants of one run). Rules that keep a gate honest:

* a gate that was asked for but cannot be measured fails ("nothing to measure");
* a variant with no counterpart fails every gate, naming both sides' variants;
* when any gate is set, a coverage gate (default 1.0) fails when fewer of the baseline's
  calls have a partner than ``--min-coverage`` asks;
* ``--min-win-rate`` reads the pairs the judge gave a verdict (an unread verdict is not a
  tie) and fails with "nothing to measure" when there is none; beside it, a judge-consistency
  gate (default 0.6) fails a judge that picks a position rather than an answer;
* ``--require-significance`` reads the p-value of the test the comparison names, the same
  p-value the verdict word and the shown interval agree with (see :mod:`runner.stats._compare`).

A score drop is negative everywhere: the score gate measures the score change in points and
fails when it falls below ``-max_score_drop_points``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from runner.errors import ConfigError, GateFailed

_OPTIONS: Final = {
    "max_error_rate_increase": "--max-error-rate-increase",
    "max_p95_latency_increase_pct": "--max-p95-latency-increase",
    "max_score_drop_points": "--max-score-drop",
    "min_agreement": "--min-agreement",
    "min_coverage": "--min-coverage",
    "min_judge_consistency": "--min-judge-consistency",
    "min_win_rate": "--min-win-rate",
    "pairing": "--variant-map",
}
_UNITS: Final = {
    "max_error_rate_increase": "points",
    "max_p95_latency_increase_pct": "%",
    "max_score_drop_points": "points",
    "min_agreement": "share",
    "min_coverage": "share",
    "min_judge_consistency": "share",
    "min_win_rate": "share",
    "pairing": "share",
}


#: The ``--min-judge-consistency`` in force whenever a pairwise gate is set without one.
DEFAULT_JUDGE_CONSISTENCY: Final = 0.6


@dataclass(frozen=True, slots=True)
class Gates:
    """The regression gates; ``None`` switches a gate off.

    Rates and scores are compared in percentage points (an error rate going from 2 % to 3 %
    is +1 point), latency in percent of the baseline's p95, agreement and coverage as shares
    in [0, 1].
    """

    max_error_rate_increase: float | None = None
    """Largest allowed rise of the error rate, in points."""
    max_p95_latency_increase_pct: float | None = None
    """Largest allowed rise of p95 latency (rows ok in both arms), in percent."""
    max_score_drop_points: float | None = None
    """Largest allowed fall of the mean score, in points (the change must stay >= -this)."""
    min_agreement: float | None = None
    """Smallest allowed share of identical outputs among rows ok in both arms."""
    require_significance: float | None = None
    """ALPHA: the score and error gates fail only when their change has p < ALPHA."""
    min_coverage: float | None = None
    """Smallest allowed share of the baseline's calls with a partner; 1.0 when unset and any
    other gate is set (see :attr:`coverage_limit`)."""
    min_win_rate: float | None = None
    """Smallest allowed pairwise win rate (wins plus half the ties, over pairs) of a candidate
    against its baseline, as the pairwise judge found it, over the pairs it gave a verdict."""
    min_judge_consistency: float | None = None
    """Smallest allowed position consistency of the pairwise judge (the share of judged pairs,
    both orders read, whose two orders agree); 0.6 when unset and ``min_win_rate`` is set
    (see :attr:`judge_consistency_limit`): a judge that picks a position cannot pass."""

    def __post_init__(self) -> None:
        for name in (
            "max_error_rate_increase",
            "max_p95_latency_increase_pct",
            "max_score_drop_points",
        ):
            value = getattr(self, name)
            if value is not None and (math.isnan(value) or value < 0):
                raise ConfigError(f"{_OPTIONS[name]} must be a number >= 0, got {value}")
        for name in ("min_agreement", "min_coverage", "min_win_rate", "min_judge_consistency"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{_OPTIONS[name]} must be a share in [0, 1], got {value}")
        alpha = self.require_significance
        if alpha is not None and not 0.0 < alpha < 1.0:
            raise ConfigError(f"--require-significance must be in (0, 1), got {alpha}")

    @property
    def limits_set(self) -> bool:
        """True when any limit is set (``require_significance`` alone limits nothing)."""
        return any(
            getattr(self, name) is not None
            for name in (
                "max_error_rate_increase",
                "max_p95_latency_increase_pct",
                "max_score_drop_points",
                "min_agreement",
                "min_coverage",
                "min_win_rate",
                "min_judge_consistency",
            )
        )

    @property
    def coverage_limit(self) -> float | None:
        """The coverage gate in force: the explicit value, else 1.0 whenever a gate is set."""
        if self.min_coverage is not None:
            return self.min_coverage
        return 1.0 if self.limits_set else None

    @property
    def judge_consistency_limit(self) -> float | None:
        """The judge-consistency gate in force: the explicit value, else
        :data:`DEFAULT_JUDGE_CONSISTENCY` whenever a pairwise gate is set."""
        if self.min_judge_consistency is not None:
            return self.min_judge_consistency
        return DEFAULT_JUDGE_CONSISTENCY if self.min_win_rate is not None else None

    def as_dict(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate checked on one variant.

    ``limit`` is a bound on ``measured``: at most for rises, at least for the score change
    (``-max_score_drop_points``), agreement and coverage.
    """

    gate: str
    variant: str
    measured: float | None
    limit: float
    passed: bool
    p_value: float | None = None
    note: str = ""
    at_least: bool = False

    @property
    def option(self) -> str:
        return _OPTIONS[self.gate]

    @property
    def unit(self) -> str:
        return _UNITS[self.gate]

    @property
    def measured_text(self) -> str:
        """``-6.10 points``, ``+12.0 %``, ``0.930``, or ``n/a``."""
        return _with_unit(self.measured, self.unit)

    @property
    def limit_text(self) -> str:
        """``>= -2.00 points``, ``<= +1.00 points``, ``>= 0.950``."""
        return ("≥ " if self.at_least else "≤ ") + _with_unit(self.limit, self.unit)

    def describe(self) -> str:
        """``--max-score-drop on v1: measured -6.10 points, limit ≥ -2.00 points: FAIL``."""
        verdict = "pass" if self.passed else "FAIL"
        if self.gate == "pairing":
            return f"{self.note}: {verdict}"
        note = f" ({self.note})" if self.note else ""
        measured = "not measurable" if self.measured is None else f"measured {self.measured_text}"
        return (
            f"{self.option} on {self.variant}: {measured}, limit {self.limit_text}: {verdict}{note}"
        )


def _with_unit(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "share":
        return f"{value:.3f}"
    return f"{value:+.2f} {unit}"


@dataclass(frozen=True, slots=True)
class RegressionReport:
    """The outcome of a gated comparison: per-pairing metrics and every gate checked."""

    metrics: pl.DataFrame
    """One row per paired variant (``regression.parquet``, ``gate.parquet``)."""
    gates: tuple[GateResult, ...]
    gates_set: bool = False
    """Whether any gate was asked for (so "no gate was set" is never said when one was)."""
    unmatched_baseline: int = 0
    """Calls of the baseline with no partner in the candidate."""
    unmatched_candidate: int = 0
    only_in_baseline: tuple[str, ...] = ()
    only_in_candidate: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failures(self) -> tuple[GateResult, ...]:
        return tuple(g for g in self.gates if not g.passed)

    def raise_if_failed(self) -> None:
        """Raise :class:`GateFailed` naming every failed gate, its measured value and limit."""
        if not self.passed:
            raise GateFailed("; ".join(g.describe() for g in self.failures))


def pairing_label(base: str, cand: str) -> str:
    """How a pairing is named: the candidate, and its baseline variant if renamed."""
    return cand if base == cand else f"{cand} (baseline {base})"


def check_gates(row: Mapping[str, Any], gates: Gates, label: str | None = None) -> list[GateResult]:
    """Every configured gate for one pairing's metrics row (``HEAD`` and paired metrics),
    named ``label`` (default: the candidate variant, and its baseline variant if renamed)."""
    variant = label or pairing_label(row["baseline_variant"], row["variant"])
    error_rise, score_diff = row.get("error_rate_diff"), row.get("score_diff")
    out = []
    if gates.coverage_limit is not None:
        out.append(_coverage(row, variant, gates.coverage_limit))
    if gates.max_error_rate_increase is not None:
        rise = None if error_rise is None else error_rise * 100.0
        limit, p = gates.max_error_rate_increase, row.get("error_p_value")
        out.append(_bounded("max_error_rate_increase", variant, rise, limit, p, gates))
    if gates.max_p95_latency_increase_pct is not None:
        rise, limit = row.get("p95_latency_increase_pct"), gates.max_p95_latency_increase_pct
        out.append(_bounded("max_p95_latency_increase_pct", variant, rise, limit, None, None))
    if gates.max_score_drop_points is not None:
        change = None if score_diff is None else score_diff * 100.0
        limit, p = -gates.max_score_drop_points, row.get("score_p_value")
        out.append(_bounded("max_score_drop_points", variant, change, limit, p, gates, True))
    if gates.min_agreement is not None:
        share = row.get("identical_share")
        out.append(_bounded("min_agreement", variant, share, gates.min_agreement, None, None, True))
    if gates.min_win_rate is not None:
        rate, p = row.get("pairwise_win_rate"), row.get("pairwise_p_value")
        out.append(_bounded("min_win_rate", variant, rate, gates.min_win_rate, p, gates, True))
    consistency = gates.judge_consistency_limit
    if consistency is not None:
        explicit = gates.min_judge_consistency is not None
        out.append(_judge_consistency(row, variant, consistency, explicit))
    return out


def _judge_consistency(
    row: Mapping[str, Any], variant: str, limit: float, explicit: bool
) -> GateResult:
    """The pairwise judge's position consistency against its limit. Asked for explicitly, it
    fails when nothing can be measured; as the default beside ``--min-win-rate`` it passes
    when no pair had both orders read (the win-rate gate then speaks for itself)."""
    measured = row.get("judge_position_consistency")
    if measured is None and not explicit:
        note = "no judged pair had both orders read"
        gate = "min_judge_consistency"
        return GateResult(gate, variant, None, limit, True, note=note, at_least=True)
    return _bounded("min_judge_consistency", variant, measured, limit, None, None, True)


def _coverage(row: Mapping[str, Any], variant: str, limit: float) -> GateResult:
    share, calls = row.get("coverage"), row["baseline_calls"]
    pairs = row.get("paired_baseline_calls", row["pairs"])  # calls whose row has a partner
    passed = share is not None and share >= limit
    note = f"{pairs:,} of {calls:,} baseline calls have a partner"
    if passed:
        note = ""
    return GateResult("min_coverage", variant, share, limit, passed, note=note, at_least=True)


def _bounded(
    gate: str,
    variant: str,
    measured: float | None,
    limit: float,
    p_value: float | None,
    gates: Gates | None,
    at_least: bool = False,
) -> GateResult:
    """``measured`` must stay at or below (or at or above) ``limit``; pass ``gates`` where
    significance applies."""
    if measured is None:
        # A gate that was asked for but cannot be measured must not pass silently.
        return GateResult(
            gate, variant, None, limit, False, p_value, "nothing to measure", at_least
        )
    within = measured >= limit if at_least else measured <= limit
    alpha = gates.require_significance if gates is not None else None
    if not within and alpha is not None and (p_value is None or p_value >= alpha):
        note = f"not significant at {alpha:g}"
        return GateResult(gate, variant, measured, limit, True, p_value, note, at_least)
    return GateResult(gate, variant, measured, limit, within, p_value, at_least=at_least)
