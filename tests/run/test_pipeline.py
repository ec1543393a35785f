"""The run pipeline over a scripted API: bounds, order, metadata, retries, errors as rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import polars as pl
import pytest

from runner.config import RunConfig
from runner.errors import RunAborted
from runner.records import RESULT_COLUMNS, Call, Row
from runner.run._job import run_job
from runner.run._pipeline import request_body
from runner.store._identity import shard_of
from runner.store._results import read_manifest, read_results
from tests.fakes import FakeApi, ok_response

MakeConfig = Callable[..., RunConfig]


def run(config: RunConfig, api: FakeApi) -> pl.DataFrame:
    run_job(config, api_key="fhk_test", transport=api.transport, handle_signals=False)
    return read_results(config.out_dir)


def test_concurrency_is_never_exceeded_and_is_used(make_config: MakeConfig) -> None:
    api = FakeApi(latency=0.01)
    run(make_config(concurrency=4), api)
    assert api.max_in_flight == 4


def test_concurrency_holds_during_retries(make_config: MakeConfig) -> None:
    """Every call fails twice with 502 before succeeding; in-flight stays within the cap."""

    def respond(body: dict[str, Any], attempt: int) -> httpx.Response:
        if attempt <= 2:
            return httpx.Response(502, json={"error": "provider failed"})
        return ok_response(body)

    api = FakeApi(respond=respond, latency=0.005)
    results = run(make_config(concurrency=3), api)
    assert api.max_in_flight <= 3
    assert results["attempts"].to_list() == [3] * 40
    assert (results["status"] == "ok").all()


def test_variants_of_a_row_go_out_together(make_config: MakeConfig) -> None:
    api = FakeApi()
    run(make_config(concurrency=1, repeat=2), api)
    order = [(b["metadata"]["row_id"], b["variant"], b["metadata"]["repeat"]) for b in api.bodies]
    assert order[:6] == [
        ("t000", "baseline", 0), ("t000", "candidate", 0),
        ("t000", "baseline", 1), ("t000", "candidate", 1),
        ("t001", "baseline", 0), ("t001", "candidate", 0),
    ]  # fmt: skip


def test_interleaving_holds_under_concurrency(make_config: MakeConfig) -> None:
    """With 4 in flight, a row's two variants start within a few requests of each other."""
    api = FakeApi(latency=0.002)
    run(make_config(concurrency=4), api)
    position: dict[tuple[str, str], int] = {}
    for i, body in enumerate(api.bodies):
        position[(body["metadata"]["row_id"], body["variant"])] = i
    gaps = [abs(position[(r, "baseline")] - position[(r, "candidate")])
            for r in {k[0] for k in position}]  # fmt: skip
    assert max(gaps) <= 4


def test_every_call_carries_flat_experiment_metadata(make_config: MakeConfig) -> None:
    api = FakeApi()
    config = make_config(
        experiment="nightly", tags={"team": "support"}, metadata_columns=("region",), limit=3
    )
    run(config, api)
    manifest = read_manifest(config.out_dir)
    assert len(api.bodies) == 6
    for body in api.bodies:
        meta = body["metadata"]
        assert meta["experiment"] == "nightly"
        assert meta["team"] == "support"
        assert meta["run_id"] == manifest["run_id"]
        assert meta["variant"] == body["variant"]
        assert meta["repeat"] == 0
        assert meta["region"] in ("eu", "us")
        assert all(isinstance(v, str | int | float | bool) for v in meta.values())
        assert body["streaming"] is False
        assert body["deployment"] == "support-reply"
        assert "region" not in body["inputs"]
        assert "expected" not in body["inputs"]
        assert set(body["inputs"]) == {"text"}


def test_results_have_one_row_per_key_with_every_column(make_config: MakeConfig) -> None:
    results = run(make_config(repeat=2), FakeApi())
    assert results.height == 20 * 2 * 2
    assert results.select("row_id", "variant", "repeat").is_unique().all()
    assert set(RESULT_COLUMNS) <= set(results.columns)
    first = results.row(0, named=True)
    assert first["status"] == "ok"
    assert first["expected"] == "account"
    assert json.loads(first["inputs"]) == {"text": "ticket number 0", "region": "us"}
    assert first["total_tokens"] == 8
    assert first["latency_ms"] > 0
    assert first["total_ms"] >= first["latency_ms"]
    assert first["finished_at"] >= first["started_at"]


def test_permanent_errors_are_rows_not_exceptions(make_config: MakeConfig) -> None:
    def respond(body: dict[str, Any], attempt: int) -> httpx.Response:
        if body["variant"] == "candidate":
            return httpx.Response(422, json={"error": "Input too long", "code": "validation_error"})
        return ok_response(body)

    api = FakeApi(respond=respond)
    results = run(make_config(), api)
    errors = results.filter(pl.col("status") == "error")
    assert errors.height == 20
    assert set(errors["variant"]) == {"candidate"}
    assert set(errors["error_type"]) == {"http_422"}
    assert set(errors["attempts"]) == {1}  # a 422 is never retried
    assert errors["error_message"][0] == "Input too long"
    assert read_manifest(make_config().out_dir)["status"] == "complete"


def test_transient_errors_exhaust_attempts_and_become_rows(make_config: MakeConfig) -> None:
    api = FakeApi(respond=lambda body, attempt: httpx.Response(503, text="<html>down</html>"))
    results = run(make_config(max_attempts=3, limit=2), api)
    assert results["attempts"].to_list() == [3, 3, 3, 3]
    assert set(results["error_type"]) == {"http_503"}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error": "Invalid access."}),
        (402, {"error": "No credits", "code": "insufficient_hosted_llm_credits"}),
        (429, {"error": "Daily API rate limit reached", "code": "api_rate_limit_exceeded"}),
    ],
)
def test_fatal_answers_stop_the_run_early(
    make_config: MakeConfig, status: int, body: dict[str, Any]
) -> None:
    api = FakeApi(respond=lambda b, a: httpx.Response(status, json=body), latency=0.001)
    config = make_config(concurrency=2)
    with pytest.raises(RunAborted):
        run(config, api)
    assert len(api.bodies) <= 2 + 2  # in flight when the first answer came, not every row
    manifest = read_manifest(config.out_dir)
    assert manifest["status"] == "aborted"
    # nothing is recorded for the refused calls: a resume after fixing the key sends them
    assert read_results(config.out_dir).height == 0


@pytest.mark.parametrize(
    ("row_id", "count", "shard"),
    [
        ("row-0", 3, 1),
        ("row-1", 3, 2),
        ("row-2", 3, 0),
        ("T0001", 4, 0),
        ("T0042", 4, 1),
        ("17", 2, 0),
        ("row-0", 7, 4),
        ("row-2", 7, 6),
        ("é-ünïcode", 7, 0),
    ],
)
def test_shard_assignment_is_the_same_on_every_machine(row_id: str, count: int, shard: int) -> None:
    """Pinned values: shards of one split run on different machines and Pythons, so a row's
    shard must never move (a changed hash or encoding would lose or duplicate rows)."""
    assert shard_of(row_id, count) == shard


def test_shards_split_rows_evenly() -> None:
    shards = [shard_of(f"row-{i}", 3) for i in range(3000)]
    assert min(shards.count(s) for s in range(3)) > 900


def test_request_body_matches_the_protocol(make_config: MakeConfig) -> None:
    config = make_config(experiment="e", tags={"team": "t"}, user="u1", stream=True)
    call = Call(Row("17", {"ticket": "My invoice is wrong"}, {"region": "eu"}), "candidate", 0)
    body = json.loads(request_body(config, "r-1", call))
    assert body == {
        "deployment": "support-reply",
        "variant": "candidate",
        "inputs": {"ticket": "My invoice is wrong"},
        "streaming": True,
        "user": "u1",
        "metadata": {"team": "t", "region": "eu", "experiment": "e", "run_id": "r-1",
                     "row_id": "17", "variant": "candidate", "repeat": 0},
    }  # fmt: skip
