"""The breaker's decisions, on a clock the test moves: when it opens, probes, closes, gives up."""

from __future__ import annotations

import anyio
import pytest

from runner.errors import AttemptError
from runner.run._breaker import Breaker, threshold_for


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def refused() -> AttemptError:
    return AttemptError("connect_error", "cannot connect: refused")


def not_found() -> AttemptError:
    return AttemptError("http_404", "deployment 'x' not found", http_status=404)


@pytest.mark.parametrize(("concurrency", "threshold"), [(1, 2), (2, 2), (8, 8), (64, 10)])
def test_the_threshold_is_the_concurrency_between_two_and_ten(
    concurrency: int, threshold: int
) -> None:
    assert threshold_for(concurrency) == threshold


def test_unreachable_attempts_below_the_threshold_count_as_usual() -> None:
    breaker = Breaker(threshold=3, max_outage=10, clock=Clock())
    assert breaker.failed(refused()) is False
    assert breaker.failed(refused()) is False
    assert not breaker.is_open


def test_a_success_in_between_resets_the_streak() -> None:
    breaker = Breaker(threshold=2, max_outage=10, clock=Clock())
    breaker.failed(refused())
    breaker.succeeded()
    assert breaker.failed(refused()) is False
    assert not breaker.is_open


def test_an_http_answer_is_not_an_outage() -> None:
    breaker = Breaker(threshold=1, max_outage=10, clock=Clock())
    assert breaker.failed(AttemptError("http_502", "bad gateway", http_status=502)) is False
    assert not breaker.is_open


def test_the_threshold_opens_it_and_the_attempt_does_not_count() -> None:
    breaker = Breaker(threshold=2, max_outage=10, clock=Clock())
    breaker.failed(refused())
    assert breaker.failed(refused()) is True
    assert breaker.is_open


def test_one_probe_at_a_time_after_a_pause_and_any_answer_closes_it() -> None:
    clock = Clock()
    breaker = Breaker(threshold=1, max_outage=60, clock=clock)

    async def main() -> None:
        assert breaker.failed(refused()) is True
        clock.now = 0.5  # the first pause has passed
        assert await breaker.admit() is True  # this attempt is the probe
        admitted: list[bool] = []

        async def another() -> None:
            admitted.append(await breaker.admit())

        async with anyio.create_task_group() as tg:
            tg.start_soon(another)
            await anyio.wait_all_tasks_blocked()
            assert admitted == []  # held while the probe is out
            breaker.succeeded(probe=True)
        assert admitted == [False] and not breaker.is_open

    anyio.run(main)


def test_a_failed_probe_doubles_the_pause() -> None:
    clock = Clock()
    breaker = Breaker(threshold=1, max_outage=60, clock=clock)

    async def main() -> None:
        breaker.failed(refused())
        clock.now = 0.5
        assert await breaker.admit() is True
        assert breaker.failed(refused(), probe=True) is True
        clock.now = 0.9  # the next probe is due at 0.5 + 0.5
        with anyio.move_on_after(0.05):
            await breaker.admit()
            raise AssertionError("admitted before the pause was over")
        clock.now = 1.0
        assert await breaker.admit() is True

    anyio.run(main)


def test_nothing_answering_for_max_outage_gives_the_abort_reason() -> None:
    clock = Clock()
    breaker = Breaker(threshold=1, max_outage=5, clock=clock)
    breaker.failed(refused())
    clock.now = 5.0
    assert breaker.failed(refused(), probe=True) is True
    assert breaker.abort_reason is not None
    assert "cannot be reached" in breaker.abort_reason and "--max-outage" in breaker.abort_reason


def test_a_404_streak_over_all_variants_aborts_with_the_servers_message() -> None:
    breaker = Breaker(threshold=3, max_outage=60, clock=Clock())
    for variant in ("a", "b", "a"):
        breaker.outcome(variant, not_found(), "x")
    assert breaker.abort_reason is not None
    assert "HTTP 404: deployment 'x' not found" in breaker.abort_reason


def test_one_variants_404_streak_aborts_though_the_other_answers() -> None:
    breaker = Breaker(threshold=3, max_outage=60, clock=Clock())
    for _ in range(2):
        breaker.outcome("good", None, "d")
        breaker.outcome("typo", not_found(), "d")
    assert breaker.abort_reason is None
    breaker.outcome("good", None, "d")
    breaker.outcome("typo", not_found(), "d")
    assert breaker.abort_reason is not None and "variant 'typo'" in breaker.abort_reason


def test_a_success_of_the_variant_resets_its_404_streak() -> None:
    breaker = Breaker(threshold=2, max_outage=60, clock=Clock())
    breaker.outcome("a", not_found(), "d")
    breaker.outcome("a", None, "d")
    breaker.outcome("a", not_found(), "d")
    assert breaker.abort_reason is None
