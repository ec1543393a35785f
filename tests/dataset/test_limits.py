"""Rate control: ``--rps`` holds its ceiling in every window; ``--adaptive`` backs off, recovers."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import httpx
import numpy as np
import pytest

from runner.config import RunConfig
from runner.http._client import InvokeClient
from runner.http._retry import RetryPolicy
from runner.records import Row
from runner.run._counters import Counters
from runner.run._job import run_job
from runner.run._limits import AdaptiveLimiter, Limits, RateLimiter
from runner.run._pipeline import Pipeline
from runner.simulator import SimulatorConfig, SimulatorServer, call_key, fault_for
from runner.store._results import DoneKeys, Journal, read_manifest, read_results
from tests.fakes import ok_response

MakeConfig = Callable[..., RunConfig]


class InstantClock:
    """Virtual time for a limiter: ``sleep`` moves the clock forward at once, without yielding.

    A request therefore reaches the transport at exactly the time its slot was given.
    """

    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def max_in_window(times: list[float], window: float) -> int:
    """The most starts that fall in any half-open window ``[t, t + window)``."""
    times = sorted(times)
    eps = 1e-9  # slots are sums of floats
    return max(sum(1 for u in times[i:] if u < t + window - eps) for i, t in enumerate(times))


def rows(n: int, prefix: str = "r") -> list[Row]:
    return [Row(f"{prefix}{i}", {"text": f"ticket {i}"}) for i in range(n)]


def run_pipeline(
    config: RunConfig,
    batch: list[Row],
    tmp_path: Path,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    limits: Limits | None = None,
) -> Pipeline:
    """Send ``batch`` through a pipeline (no job around it) and return the pipeline."""

    async def main() -> Pipeline:
        counters = Counters()
        journal = Journal(tmp_path / "journal.jsonl")
        async with InvokeClient(
            config.base_url, "fhk_test", max_connections=config.concurrency, transport=transport
        ) as client:
            pipeline = Pipeline(
                config, "r-test", client, journal, DoneKeys(np.empty(0, dtype=np.uint64)),
                counters, RetryPolicy.without_waiting(), limits=limits,
            )  # fmt: skip
            await pipeline.run(iter([batch]))
        journal.close()
        return pipeline

    return anyio.run(main)


# --- RateLimiter -------------------------------------------------------------------------------


def test_rate_limiter_spaces_slots_exactly_and_reaches_the_ceiling() -> None:
    clock = InstantClock()
    limiter = RateLimiter(20, clock=clock.time, sleep=clock.sleep)

    async def main() -> list[float]:
        return [await limiter.acquire() for _ in range(100)]

    slots = anyio.run(main)
    assert slots[0] == 0.0
    assert np.allclose(np.diff(slots), 1 / 20)
    assert max_in_window(slots, 1.0) == 20  # held, and reached


def test_rate_limiter_allows_a_burst_then_spaces() -> None:
    clock = InstantClock()
    limiter = RateLimiter(10, burst=3, clock=clock.time, sleep=clock.sleep)

    async def main() -> list[float]:
        return [await limiter.acquire() for _ in range(6)]

    assert anyio.run(main) == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2, 0.3])


def test_a_late_wake_up_never_brings_two_starts_closer_than_the_interval() -> None:
    """Timers fire late; the next start is then measured from the late one (exactness)."""
    clock = InstantClock()

    async def oversleep(seconds: float) -> None:
        clock.now += seconds + 0.03

    limiter = RateLimiter(10, clock=clock.time, sleep=oversleep)

    async def main() -> list[float]:
        return [await limiter.acquire() for _ in range(50)]

    starts = anyio.run(main)
    assert min(np.diff(starts)) >= 0.1 - 1e-9
    assert max_in_window(starts, 1.0) <= 10


def test_a_stall_does_not_release_a_burst() -> None:
    """Waiters queued during a stall of the event loop still start one interval apart."""
    clock = InstantClock()
    limiter = RateLimiter(10, clock=clock.time, sleep=clock.sleep)
    starts: list[float] = []

    async def one() -> None:
        starts.append(await limiter.acquire())

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(one)
            await anyio.lowlevel.checkpoint()
            clock.now += 3.0  # the loop was blocked for 3 s with five waiters queued

    anyio.run(main)
    assert min(np.diff(sorted(starts))) >= 0.1 - 1e-9


def test_an_idle_limiter_does_not_save_up_a_burst() -> None:
    clock = InstantClock()
    limiter = RateLimiter(10, clock=clock.time, sleep=clock.sleep)

    async def main() -> list[float]:
        first = await limiter.acquire()
        clock.now = 100.0
        return [first] + [await limiter.acquire() for _ in range(3)]

    assert anyio.run(main) == pytest.approx([0.0, 100.0, 100.1, 100.2])


@pytest.mark.parametrize("rate", [0, -1, math.inf])
def test_rate_limiter_rejects_a_rate_that_is_not_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(rate)


def test_rps_holds_its_ceiling_in_every_window_of_request_starts(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """300 calls (150 rows × 2 variants) at --rps 25, 16 in flight: every 1 s and 10 s window
    of request starts (as the transport saw them, on virtual time) holds at most 25 × window,
    and the ceiling is reached."""
    clock = InstantClock()
    starts: list[float] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        starts.append(clock.now)
        await anyio.lowlevel.checkpoint()  # let the other workers run
        return ok_response(json.loads(request.content))

    config = make_config(concurrency=16, rps=25.0)
    limits = Limits(RateLimiter(25.0, clock=clock.time, sleep=clock.sleep))
    pipeline = run_pipeline(
        config, rows(150), tmp_path, transport=httpx.MockTransport(handle), limits=limits
    )
    assert pipeline.counters.done == len(starts) == 300
    assert max_in_window(starts, 1.0) == 25
    assert max_in_window(starts, 10.0) == 250


def test_rps_from_the_config_paces_a_real_run(make_config: MakeConfig) -> None:
    """--rps reaches the pipeline: request starts are paced, not sent at once. (The exact
    ceiling is checked above on the limiter's own clock; here the transport sees each start a
    scheduling delay after its slot, which can bring two observed starts closer than 1/R, so
    one start of slack is allowed. Unpaced, all 40 would land in the same few milliseconds.)"""
    starts: list[float] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        starts.append(anyio.current_time())
        return ok_response(json.loads(request.content))

    config = make_config(concurrency=8, rps=100.0)  # 20 rows × 2 variants, about 0.4 s
    run_job(config, api_key="fhk_test", transport=httpx.MockTransport(handle), handle_signals=False)
    assert len(starts) == 40
    assert max_in_window(starts, 0.2) <= 20 + 1


# --- AdaptiveLimiter ---------------------------------------------------------------------------


def test_adaptive_halves_on_429_down_to_one_and_grows_back_by_one_per_window() -> None:
    counters = Counters()
    limiter = AdaptiveLimiter(8, counters=counters)

    async def main() -> None:
        for _ in range(4):  # 8 → 4 → 2 → 1 → 1
            limiter.release(await limiter.acquire(), throttled=True)
        for _ in range(1 + 2 + 3):  # a window is as many successes as the limit: 1 → 2 → 3 → 4
            limiter.release(await limiter.acquire(), ok=True)

    anyio.run(main)
    assert list(limiter.trace) == [8, 4, 2, 1, 1, 2, 3, 4]
    assert (counters.concurrency, counters.min_concurrency) == (4, 1)


def test_adaptive_never_grows_above_the_configured_concurrency() -> None:
    limiter = AdaptiveLimiter(3)

    async def main() -> None:
        for _ in range(50):
            limiter.release(await limiter.acquire(), ok=True)

    anyio.run(main)
    assert limiter.limit == 3
    assert list(limiter.trace) == [3]


def test_a_burst_of_429s_from_requests_already_in_flight_halves_once() -> None:
    limiter = AdaptiveLimiter(8)

    async def main() -> None:
        tickets = [await limiter.acquire() for _ in range(8)]
        for ticket in tickets:  # all started before the first 429 came back
            limiter.release(ticket, throttled=True)
        limiter.release(await limiter.acquire(), throttled=True)  # started after: counts

    anyio.run(main)
    assert list(limiter.trace) == [8, 4, 2]


def test_other_failures_leave_the_adaptive_limit_alone() -> None:
    limiter = AdaptiveLimiter(4)

    async def main() -> None:
        for _ in range(10):
            limiter.release(await limiter.acquire())  # a 502, a timeout …

    anyio.run(main)
    assert list(limiter.trace) == [4]


def test_adaptive_limit_bounds_attempts_in_flight() -> None:
    limiter = AdaptiveLimiter(8)
    in_flight = peak = 0

    async def attempt() -> None:
        nonlocal in_flight, peak
        ticket = await limiter.acquire()
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.001)
        in_flight -= 1
        limiter.release(ticket)

    async def main() -> None:
        limiter.release(await limiter.acquire(), throttled=True)  # 8 → 4
        limiter.release(await limiter.acquire(), throttled=True)  # 4 → 2
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(attempt)

    anyio.run(main)
    assert peak == 2


# --- --adaptive against the simulator's seeded 429s --------------------------------------------

SIM_FAULTS = SimulatorConfig(faults={"http_429": 0.5}, max_faults_per_key=1, retry_after="0")


def seeded_rows(config: RunConfig, throttled: int, clean: int) -> list[Row]:
    """``throttled`` rows whose first attempt the simulator answers 429, then ``clean`` rows it
    answers at once (its fault plan is a pure function of the call key)."""
    picked: dict[bool, list[Row]] = {True: [], False: []}
    want = {True: throttled, False: clean}
    for i in range(100 * (throttled + clean)):
        row = Row(f"k{i}", {"text": f"ticket {i}"})
        metadata = {"row_id": row.row_id, "repeat": 0}
        key = call_key(config.deployment, config.variants[0], row.inputs, metadata)
        is_429 = fault_for(SIM_FAULTS, key, 1) == "http_429"
        if len(picked[is_429]) < want[is_429]:
            picked[is_429].append(row)
        if all(len(picked[k]) == want[k] for k in want):
            break
    return picked[True] + picked[False]


@pytest.fixture
def throttling_sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SIM_FAULTS) as sim:
        yield sim


def test_adaptive_halves_on_the_simulators_429s_and_recovers(
    make_config: MakeConfig, tmp_path: Path, throttling_sim: SimulatorServer
) -> None:
    config = make_config(
        base_url=throttling_sim.base_url, variants=("baseline",), concurrency=8, adaptive=True
    )
    batch = seeded_rows(config, throttled=12, clean=300)
    pipeline = run_pipeline(config, batch, tmp_path)
    assert pipeline.limits is not None and pipeline.limits.adaptive is not None
    trace = list(pipeline.limits.adaptive.trace)

    assert throttling_sim.stats.faults == {"http_429": 12}
    assert trace[:2] == [8, 4]  # the first 429 halves
    assert all(b in (a // 2, a + 1) or (a == b == 1) for a, b in itertools.pairwise(trace))
    assert min(trace) < 4  # 429s from later attempts halve again
    assert trace[-1] == 8  # and 300 clean answers grow it back, one per window
    assert pipeline.counters.done == 312
    assert throttling_sim.stats.max_in_flight <= 8


def test_adaptive_run_records_live_and_lowest_concurrency_in_the_manifest(
    make_config: MakeConfig, tmp_path: Path, throttling_sim: SimulatorServer
) -> None:
    config = make_config(base_url=throttling_sim.base_url, concurrency=6, adaptive=True)
    run_job(config, api_key="fhk_test", handle_signals=False)
    session = read_manifest(config.out_dir)["sessions"][-1]
    assert throttling_sim.stats.faults.get("http_429", 0) > 0
    assert 1 <= session["concurrency"]["min"] < 6
    assert session["concurrency"]["min"] <= session["concurrency"]["live"] <= 6
    assert (read_results(config.out_dir)["status"] == "ok").all()


def test_without_rps_or_adaptive_the_pipeline_holds_no_limiter(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    async def handle(request: httpx.Request) -> httpx.Response:
        return ok_response(json.loads(request.content))

    pipeline = run_pipeline(
        make_config(concurrency=3, adaptive=False),
        rows(5),
        tmp_path,
        transport=httpx.MockTransport(handle),
    )
    assert pipeline.limits is None
    assert (pipeline.counters.concurrency, pipeline.counters.min_concurrency) == (3, 3)


def test_limits_and_counters_load_without_the_terminal_ui() -> None:
    """runner.run._limits counts through runner.run._counters, which imports no rich."""
    code = (
        "import sys, runner.run._limits, runner.run._counters; "
        "assert 'rich' not in sys.modules, sorted(m for m in sys.modules if 'rich' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_counters_are_still_importable_from_progress() -> None:
    from runner.run import _counters as counters
    from runner.run import _progress as progress

    assert progress.Counters is counters.Counters
