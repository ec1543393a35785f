"""The gate verdict a run keeps, and a run accepted as a baseline against it.

The verdict is ``Manifest.gate``: ``{"verdict": GateVerdict, "baseline": path or None,
"accepted": bool}``. A run without one (no gates, or made before verdicts were kept) is
eligible as a baseline; a run whose verdict is :data:`INELIGIBLE` is not, unless ``runner
baseline accept RUN`` (:func:`accept_baseline`) accepted it after a deliberate change.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Final

from runner.errors import ConfigError
from runner.store import Manifest, RunDir, RunStatus


class GateVerdict(enum.StrEnum):
    """A run's own gate verdict, as its manifest keeps it (``Manifest.gate["verdict"]``)."""

    PASS = "pass"
    """Compared with a baseline; every gate passed."""
    FAIL = "fail"
    """A gate failed, or there was no baseline and ``allow_no_baseline`` was not given."""
    NONE = "none"
    """No gate was set."""
    NO_BASELINE = "no-baseline"
    """No baseline yet, accepted as a first night (``allow_no_baseline``): no gate applied."""
    OVER_BUDGET = "over-budget"
    """The run's error rows were over its error budget."""


#: Verdicts that keep a run from being a baseline, unless it was accepted.
INELIGIBLE: Final = frozenset({GateVerdict.FAIL, GateVerdict.OVER_BUDGET})


def record_gate_verdict(
    rundir: RunDir, verdict: GateVerdict | str, baseline: Path | None
) -> Manifest:
    """Write the run's own gate verdict into its manifest; ``accepted`` is kept as it was.

    Takes no lock: the caller holds ``rundir.locked()`` (a run ending holds it already)."""
    manifest = rundir.read_manifest()
    accepted = bool((manifest.gate or {}).get("accepted"))
    manifest.gate = {
        "verdict": GateVerdict(verdict).value,
        "baseline": None if baseline is None else str(baseline),
        "accepted": accepted,
    }
    rundir.write_manifest(manifest)
    return manifest


def accept_baseline(out: Path) -> Manifest:
    """``runner baseline accept OUT``: mark a complete run as an accepted baseline, whatever
    its own gate said, under the run's lock. A run that is not complete is refused."""
    rundir = RunDir(out)
    if not rundir.has_manifest():
        raise ConfigError(f"{out} is not a run directory (no manifest.json)")
    with rundir.locked():
        manifest = rundir.read_manifest()
        if manifest.status != RunStatus.COMPLETE:
            raise ConfigError(
                f"{out} is not complete (status: {manifest.status.value}); only a complete "
                "run can be a baseline"
            )
        gate = dict(manifest.gate or {"verdict": GateVerdict.NONE.value, "baseline": None})
        gate["accepted"] = True
        manifest.gate = gate
        rundir.write_manifest(manifest)
    return manifest


__all__ = ["INELIGIBLE", "GateVerdict", "accept_baseline", "record_gate_verdict"]
