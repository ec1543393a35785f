"""Regression gates and baselines: the gates' rules, the pairing of what is gated, the
comparison of two runs, the baseline pick, the verdict a run keeps, the nightly step, the error
budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.gates._baseline import (
        Candidate,
        pick_baseline,
        pinned_baseline,
        resolve_baseline,
    )
    from runner.gates._budget import check_error_budget
    from runner.gates._gates import Gates, RegressionReport
    from runner.gates._nightly import compare_with_baseline
    from runner.gates._regression import gate_run, write_regression
    from runner.gates._verdict import GateVerdict, accept_baseline, record_gate_verdict

# Names load on first use: the door costs nothing until a name is taken through it.
_EXPORTS = {
    "Candidate": "runner.gates._baseline",
    "GateVerdict": "runner.gates._verdict",
    "Gates": "runner.gates._gates",
    "RegressionReport": "runner.gates._gates",
    "accept_baseline": "runner.gates._verdict",
    "check_error_budget": "runner.gates._budget",
    "compare_with_baseline": "runner.gates._nightly",
    "gate_run": "runner.gates._regression",
    "pick_baseline": "runner.gates._baseline",
    "pinned_baseline": "runner.gates._baseline",
    "record_gate_verdict": "runner.gates._verdict",
    "resolve_baseline": "runner.gates._baseline",
    "write_regression": "runner.gates._regression",
}


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else
    from runner import door_getattr

    __getattr__ = door_getattr(__name__, _EXPORTS)


__all__ = [
    "Candidate",
    "GateVerdict",
    "Gates",
    "RegressionReport",
    "accept_baseline",
    "check_error_budget",
    "compare_with_baseline",
    "gate_run",
    "pick_baseline",
    "pinned_baseline",
    "record_gate_verdict",
    "resolve_baseline",
    "write_regression",
]
