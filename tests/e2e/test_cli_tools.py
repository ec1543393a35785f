"""``runner demo`` and ``runner simulate`` from the command line."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import polars as pl
import pytest

from runner.simulator import reference_answer
from runner.store._rundir import RunDir
from tests.support import cli

AUTH = {"Authorization": "Bearer fhk_test"}


# --- runner demo ------------------------------------------------------------------------


def test_demo_runs_both_variants_over_the_packaged_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a directory with no dataset in sight, the demo runs 2 variants × --rows rows."""
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    result = cli("demo", "--out", "out", "--rows", "12")
    assert result.exit_code == 0, result.output
    out = workdir / "out"
    manifest = RunDir(out).read_manifest()
    assert manifest.status == "complete"
    assert manifest.config["experiment"] == "demo"
    results = pl.read_parquet(RunDir(out).results)
    assert results.group_by("variant").len().sort("variant").rows() == [
        ("baseline", 12),
        ("candidate", 12),
    ]
    assert (out / "report.html").stat().st_size > 0
    assert "baseline" in result.output and "candidate" in result.output


def test_demo_judges_the_candidate_pairwise_and_prints_the_verdict(tmp_path: Path) -> None:
    """The simulator's pairwise judge prefers the right label: the candidate's wrong answers
    are losses, and the verdict is printed in words."""
    out = tmp_path / "demo"
    result = cli("demo", "--out", str(out), "--rows", "40")
    assert result.exit_code == 0, result.output
    pairwise = pl.read_parquet(RunDir(out).pairwise)
    assert pairwise.height == 40 and set(pairwise["variant"]) == {"candidate"}
    losses = int((pairwise["verdict"] == "loss").sum())
    assert losses > 0
    lines = result.output.splitlines()
    assert "pairwise judge: 80 calls sent" in lines  # 40 pairs, both orders
    line = next(x for x in lines if x.startswith("candidate: pairwise judge "))
    assert f"{losses} losses" in line
    assert "pairwise judge" in (out / "report.html").read_text(encoding="utf-8")


def test_demo_replaces_an_earlier_demo(tmp_path: Path) -> None:
    """A second demo into the same --out starts over instead of refusing the directory."""
    out = tmp_path / "demo"
    assert cli("demo", "--out", str(out), "--rows", "3").exit_code == 0
    (out / "stale-marker").write_text("from the first demo")
    second = cli("demo", "--out", str(out), "--rows", "5")
    assert second.exit_code == 0, second.output
    assert not (out / "stale-marker").exists()
    assert pl.read_parquet(RunDir(out).results).height == 10


def test_demo_refuses_a_directory_that_is_not_a_demo(tmp_path: Path) -> None:
    """A non-empty --out that no demo wrote is left alone: exit 2 and one line naming it."""
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = cli("demo", "--out", str(out), "--rows", "3")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {out} is not empty and not an earlier demo; choose another --out"
    ]
    assert (out / "notes.txt").read_text() == "keep me"


# --- runner simulate --------------------------------------------------------------------


@pytest.mark.slow
def test_simulate_serves_until_sigterm(tmp_path: Path) -> None:
    """``runner simulate`` says where it listens, answers an invoke, and exits 0 on SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "simulate", "--port", "0", "--latency-ms", "0"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.fullmatch(r"simulator listening on (http://127\.0\.0\.1:\d+/v1)\n", line)
        assert found is not None, line
        inputs = {"ticket": "Please refund my last invoice"}
        body = {"deployment": "support-reply", "variant": "baseline", "inputs": inputs}
        response = httpx.post(f"{found[1]}/prompt/invoke", json=body, headers=AUTH, timeout=10)
        assert response.status_code == 200
        assert response.json()["response"] == reference_answer(inputs) == "billing"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "Traceback" not in process.stderr.read()
    finally:
        process.kill()
        process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_simulate_refuses_a_non_loopback_host() -> None:
    """Asked to listen on every interface, it exits 2 with one line and never binds."""
    result = cli("simulate", "--host", "0.0.0.0", "--port", "0")
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "loopback" in line and "'0.0.0.0'" in line


def test_simulate_names_an_unknown_key_of_its_config_file(tmp_path: Path) -> None:
    """A typo in the --config file is exit 2 and one line naming the key."""
    config = tmp_path / "sim.json"
    config.write_text(json.dumps({"seed": 1, "latncy_ms": 5}))
    result = cli("simulate", "--config", str(config), "--port", "0")
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert "latncy_ms" in line and line.startswith("error: ")
