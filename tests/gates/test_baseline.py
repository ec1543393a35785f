"""The baseline pick's rules, the verdict a run keeps, and the report section, on run
directories built on disk (no API)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner.errors import ConfigError
from runner.gates._baseline import Candidate, pick_baseline, resolve_baseline
from runner.gates._verdict import GateVerdict, accept_baseline, record_gate_verdict
from runner.report._baseline_section import with_baseline_section
from runner.store._rundir import RunDir
from tests.reports_helpers import answers, frame, write_run

TONIGHT = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)


def _run(folder: Path, name: str, finished: str, **manifest: Any) -> Path:
    out = write_run(folder / name, frame(answers("v", 9)), run_id=name)
    data = json.loads((out / "manifest.json").read_text())
    data.update(finished_at=finished, **manifest)
    (out / "manifest.json").write_text(json.dumps(data))
    return out


def _tonight(deployment: str | None = "dep") -> Candidate:
    return Candidate(None, TONIGHT, deployment)


def _gate(verdict: str, *, accepted: bool = False) -> dict[str, Any]:
    return {"gate": {"verdict": verdict, "baseline": None, "accepted": accepted}}


def test_the_pick_skips_each_kind_of_ineligible_run_and_says_why(tmp_path: Path) -> None:
    good = _run(tmp_path, "a-good", "2024-05-27T02:00:00+00:00", **_gate("pass"))
    failed = _run(tmp_path, "b-failed", "2024-05-28T02:00:00+00:00", **_gate("fail"))
    over = _run(tmp_path, "c-over", "2024-05-29T02:00:00+00:00", **_gate("over-budget"))
    stopped = _run(tmp_path, "d-stopped", "2024-05-30T02:00:00+00:00", status="interrupted")
    other = _run(tmp_path, "e-other", "2024-05-31T02:00:00+00:00", config={"deployment": "other"})
    late = _run(tmp_path, "f-late", "2024-06-01T03:00:00+00:00")
    # killed (kill -9) while judging: the status stays complete, the stage says it stopped
    killed = _run(
        tmp_path, "g-killed", "2024-05-31T12:00:00+00:00",
        stage="judge", stages={"send": "done", "judge": "running"},
    )  # fmt: skip
    pick = pick_baseline(tmp_path, _tonight())
    assert pick.chosen is not None and pick.chosen.out_dir == good
    assert [(s.out_dir, s.reason.split(" (")[0].split(";")[0]) for s in pick.skipped] == [
        (late, "finished 2024-06-01 03:00:00 UTC after this run started"),
        (killed, "its judge stage did not finish"),
        (other, "calls deployment other, not dep"),
        (stopped, "not complete"),
        (over, "its own gate verdict was over-budget"),
        (failed, "its own gate verdict was fail"),
    ]


def test_a_run_without_a_gate_record_or_accepted_as_a_first_night_is_eligible(
    tmp_path: Path,
) -> None:
    _run(tmp_path, "a-old", "2024-05-27T02:00:00+00:00")
    first = _run(
        tmp_path, "b-first", "2024-05-28T02:00:00+00:00", **_gate("no-baseline"),
        stage="done", stages={"send": "done", "judge": "skipped", "gate": "done"},
    )  # fmt: skip
    assert (pick := pick_baseline(tmp_path, _tonight())).chosen is not None
    assert pick.chosen.out_dir == first and pick.skipped == ()


def test_an_accepted_failed_run_is_eligible(tmp_path: Path) -> None:
    _run(tmp_path, "a-good", "2024-05-27T02:00:00+00:00")
    changed = _run(tmp_path, "b-changed", "2024-05-28T02:00:00+00:00", **_gate("fail"))
    accept_baseline(changed)
    assert RunDir(changed).read_manifest().gate == {
        "verdict": "fail", "baseline": None, "accepted": True,
    }  # fmt: skip
    chosen = pick_baseline(tmp_path, _tonight()).chosen
    assert chosen is not None and chosen.out_dir == changed


def test_accepting_a_run_that_is_not_complete_is_refused(tmp_path: Path) -> None:
    stopped = _run(tmp_path, "stopped", "2024-05-27T02:00:00+00:00", status="interrupted")
    with pytest.raises(ConfigError, match="is not complete"):
        accept_baseline(stopped)
    assert RunDir(stopped).read_manifest().gate is None


def test_recording_a_verdict_keeps_the_acceptance(tmp_path: Path) -> None:
    run = _run(tmp_path, "r", "2024-05-27T02:00:00+00:00", **_gate("fail", accepted=True))
    record_gate_verdict(RunDir(run), GateVerdict.PASS, tmp_path / "base")
    assert RunDir(run).read_manifest().gate == {
        "verdict": "pass", "baseline": str(tmp_path / "base"), "accepted": True,
    }  # fmt: skip
    with pytest.raises(ValueError):
        record_gate_verdict(RunDir(run), "passed", None)


def test_a_damaged_manifest_is_named_among_the_skipped(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{", encoding="utf-8")
    (tmp_path / "notes").mkdir()  # not a run: passed over in silence
    pick = pick_baseline(tmp_path, _tonight())
    assert pick.chosen is None
    assert [s.out_dir.name for s in pick.skipped] == ["broken"]
    assert "manifest cannot be read" in pick.skipped[0].reason


def test_a_baseline_path_that_does_not_exist_or_is_a_file_is_a_usage_error(
    tmp_path: Path,
) -> None:
    tonight = _run(tmp_path / "nightly", "tonight", "2024-06-01T02:10:00+00:00")
    with pytest.raises(ConfigError, match="nightyl does not exist"):
        resolve_baseline(tmp_path / "nightyl", tonight)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is not a directory"):
        resolve_baseline(tmp_path / "file", tonight)
    with pytest.raises(ConfigError, match="is the candidate run itself"):
        resolve_baseline(tonight, tonight)


def test_a_pinned_run_is_used_as_it_is_and_its_failed_gate_noted(tmp_path: Path) -> None:
    pinned = _run(tmp_path, "pinned", "2024-05-27T02:00:00+00:00", **_gate("fail"))
    tonight = _run(tmp_path, "tonight", "2024-06-01T02:10:00+00:00")
    pick = resolve_baseline(pinned, tonight)
    assert pick.pinned and pick.chosen is not None and pick.chosen.out_dir == pinned
    assert "note: the pinned baseline's own gate verdict was fail" in pick.lines()


def test_the_baseline_section_is_replaced_and_removed_in_place() -> None:
    html = "<body>\n<header><h1>r</h1></header>\n<h2>Verdict</h2>\n</body>"
    once = with_baseline_section(html, "<h2>Compared with the baseline: PASS</h2>")
    twice = with_baseline_section(once, "<h2>Compared with the baseline: FAIL</h2>")
    assert twice.count("Compared with the baseline") == 1 and "FAIL" in twice
    assert twice.index("Compared with") < twice.index("<h2>Verdict</h2>")
    assert with_baseline_section(twice, None) == html
