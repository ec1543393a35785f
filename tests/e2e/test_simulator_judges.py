"""The simulator's judge deployments: any deployment name answers as a grader in a published
format, for every variant, over the wire and from ``runner simulate``."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.judge._parse import parse_score, parse_winner
from runner.simulator import SimulatorConfig, SimulatorServer

AUTH = {"Authorization": "Bearer fhk_test"}
TICKET = "Please refund my last invoice"  # the reference label is billing


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as c:  # never a proxy: 127.0.0.1 only
        yield c


def invoke(client: httpx.Client, base_url: str, deployment: str, **inputs: str) -> httpx.Response:
    body = {"deployment": deployment, "variant": "any-variant", "inputs": inputs}
    return client.post(f"{base_url}/prompt/invoke", json=body, headers=AUTH, timeout=10)


def test_a_judge_deployment_grades_in_its_format_and_is_never_404(client: httpx.Client) -> None:
    config = SimulatorConfig(
        deployments={"support-reply": ()},
        judges={"grader": "mtbench", "arena": "arena_hard"},
    )
    with SimulatorServer(config) as sim:
        right = invoke(client, sim.base_url, "grader", input=TICKET, output="billing")
        wrong = invoke(client, sim.base_url, "grader", input=TICKET, output="shipping")
        pair = invoke(
            client, sim.base_url, "arena", input=TICKET, output_a="shipping", output_b="billing"
        )
        unknown = invoke(client, sim.base_url, "someone-else", input=TICKET)
    assert right.status_code == wrong.status_code == pair.status_code == 200
    assert re.search(r"\[\[10(\.0)?\]\]", right.json()["response"])
    assert parse_score(right.json()["response"], (1.0, 10.0)).value == 1.0
    assert parse_score(wrong.json()["response"], (1.0, 10.0)).value == 0.0
    preference = parse_winner(pair.json()["response"])
    assert preference.winner == "B" and preference.strength in ("strong", "slight")
    assert unknown.status_code == 404


def test_runner_simulate_serves_a_judge_deployment(tmp_path: Path, client: httpx.Client) -> None:
    """``--judge-deployment NAME=STYLE`` makes NAME a judge of that style."""
    judges = [
        "--judge-deployment",
        "grader=prometheus",
        "--judge-deployment",
        "pairs=biased:mtbench",
    ]
    args = ["simulate", "--port", "0", "--latency-ms", "0", *judges]
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", *args], cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.fullmatch(r"simulator listening on (http://127\.0\.0\.1:\d+/v1)\n", line)
        assert found is not None, line
        graded = invoke(client, found[1], "grader", input=TICKET, output="billing")
        assert "[RESULT] 5" in graded.json()["response"]
        biased = invoke(client, found[1], "pairs", input=TICKET, output_a="x", output_b="billing")
        assert parse_winner(biased.json()["response"]).winner == "A"  # the first, always
        plain = invoke(client, found[1], "support-reply", ticket=TICKET)
        assert plain.json()["response"] == "billing"  # other deployments are unchanged
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.parametrize("value", ["grader", "grader=gpt4", "=mtbench"])
def test_runner_simulate_refuses_a_bad_judge_deployment(value: str) -> None:
    result = CliRunner().invoke(
        main,
        ["simulate", "--port", "0", "--judge-deployment", value],
        env={"FETCH_HIVE_API_KEY": ""},
    )
    assert result.exit_code == 2, result.output
    assert "judge" in result.output
