"""The nightly comparison step: pick the baseline, compare, gate, and say the verdict.

:func:`compare_with_baseline` picks the baseline
(:func:`runner.gates._baseline.resolve_baseline`), compares and gates (``regression.md``,
``regression.parquet``, the changed rows for ``report.html``), and returns a
:class:`BaselineVerdict` the caller records with
:func:`runner.gates._verdict.record_gate_verdict`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from runner.errors import GateFailed
from runner.gates._baseline import BaselinePick, resolve_baseline
from runner.gates._gates import Gates, RegressionReport
from runner.gates._verdict import GateVerdict
from runner.stats import DEFAULT_OPTIONS, StatOptions
from runner.store import RunDir

#: The first line said (and written at the top of regression.md) on an accepted first night.
NO_BASELINE_YET: Final = "no baseline yet: this run becomes the baseline once its gates pass"


@dataclass(frozen=True, slots=True)
class BaselineVerdict:
    """The outcome of the nightly comparison step, for the caller to record and act on."""

    verdict: GateVerdict
    baseline: Path | None
    pick: BaselinePick
    report: RegressionReport | None
    """The gated comparison; None when there was no baseline."""
    markdown: Path
    """The written ``regression.md``."""
    message: str = ""
    """Why the verdict is a failure, in one line (empty when it is not)."""

    @property
    def passed(self) -> bool:
        return self.verdict is not GateVerdict.FAIL

    def gate_record(self) -> dict[str, Any]:
        """``Manifest.gate`` of this verdict (``record_gate_verdict`` keeps ``accepted``)."""
        baseline = None if self.baseline is None else str(self.baseline)
        return {"verdict": self.verdict.value, "baseline": baseline, "accepted": False}

    def raise_if_failed(self) -> None:
        """:class:`GateFailed` (exit 1) with :attr:`message` when the verdict is a failure."""
        if not self.passed:
            raise GateFailed(self.message)


def compare_with_baseline(
    out: Path,
    compare_with: Path,
    gates: Gates,
    *,
    allow_no_baseline: bool = False,
    allow_different_deployment: bool = False,
    variant_map: Mapping[str, str] | None = None,
    score: str | None = None,
    allow_incomplete: bool = False,
    options: StatOptions = DEFAULT_OPTIONS,
    say: Callable[[str], None] = lambda line: None,
) -> BaselineVerdict:
    """Compare run ``out`` with the baseline ``compare_with`` names and gate on the result.

    Writes ``regression.md`` into ``out`` always (a first night too), and when a baseline was
    found ``regression.parquet`` and the changed rows
    (:func:`runner.gates._regression.write_regression`; the caller refreshes ``report.html``
    with :func:`runner.report.refresh_baseline_section`). Every pick is said, one
    line per call of ``say``, and written into ``regression.md``.

    Returns the verdict, failed or not; the caller records it (``record_gate_verdict``)
    and then calls :meth:`BaselineVerdict.raise_if_failed`. Raises :class:`ConfigError` for a
    baseline that does not exist or calls another deployment, :class:`GateFailed` for an
    incomplete run (unless ``allow_incomplete``).
    """
    from runner.gates._regression import forget_regression, write_no_baseline, write_regression

    pick = resolve_baseline(
        compare_with, out, allow_different_deployment=allow_different_deployment
    )
    markdown = RunDir(out).regression_md
    if pick.chosen is None:
        forget_regression(out)  # an earlier comparison's files would tell of another baseline
        if allow_no_baseline:
            say(f"no gate was applied: {NO_BASELINE_YET} ({compare_with} holds no eligible run)")
            for line in pick.lines()[1:]:
                say(line)
            write_no_baseline(out, pick, allowed=True)
            return BaselineVerdict(GateVerdict.NO_BASELINE, None, pick, None, markdown)
        message = (
            f"no baseline: {compare_with} holds no eligible run other than {out}, so the gates "
            "were not applied; pass --allow-no-baseline (experiment key allow_no_baseline = "
            "true) to accept a first night"
        )
        for line in pick.lines():
            say(line)
        write_no_baseline(out, pick, allowed=False)
        return BaselineVerdict(GateVerdict.FAIL, None, pick, None, markdown, message)
    for line in pick.lines():
        say(line)
    report = write_regression(
        pick.chosen.out_dir,
        out,
        out,
        gates,
        score=score,
        variant_map=variant_map,
        allow_incomplete=allow_incomplete,
        options=options,
        picked=pick.lines(),
    )
    if not report.gates_set:
        verdict = GateVerdict.NONE
    else:
        verdict = GateVerdict.PASS if report.passed else GateVerdict.FAIL
    message = "; ".join(g.describe() for g in report.failures)
    return BaselineVerdict(verdict, pick.chosen.out_dir, pick, report, markdown, message)


__all__ = ["NO_BASELINE_YET", "BaselineVerdict", "compare_with_baseline"]
