"""The scale benchmark keeps running: its virtual clock keeps time right, and one tiny
configuration of each figure runs through the real code in seconds."""

from __future__ import annotations

import math

import pytest

from bench import scale
from bench._virtual import SimQueue, VirtualClock, Waiter


def test_the_virtual_clock_wakes_participants_in_time_order() -> None:
    clock = VirtualClock(100.0)
    clock.enter()
    seen: list[tuple[str, float]] = []

    def nap(name: str, seconds: float) -> None:
        clock.sleep(seconds)
        seen.append((name, clock.now()))

    clock.spawn(nap, "slow", 3.0)
    clock.spawn(nap, "fast", 1.0)
    clock.sleep(5.0)
    assert seen == [("fast", 101.0), ("slow", 103.0)]
    assert clock.now() == 105.0


def test_a_wake_beats_the_timeout_and_the_stale_timeout_is_ignored() -> None:
    clock = VirtualClock(0.0)
    clock.enter()
    waiter = Waiter()
    woke: list[float] = []

    def parked() -> None:
        clock.wait(waiter, timeout=10.0)
        woke.append(clock.now())
        clock.sleep(20.0)  # the timeout at 10 s must not wake this sleep
        woke.append(clock.now())

    clock.spawn(parked)
    clock.sleep(2.0)
    clock.wake(waiter)
    clock.sleep(30.0)
    assert woke == [2.0, 22.0]


def test_the_queue_redelivers_after_the_visibility_timeout_then_dead_letters() -> None:
    clock = VirtualClock(0.0)
    clock.enter()
    queue = SimQueue(clock, visibility_timeout=30.0, max_receives=2)
    msg = queue.send("{}")
    received: list[float] = []

    def consumer() -> None:
        while True:
            (got,) = queue.receive(10)
            received.append(clock.now())
            queue.settle(got, ok=False)

    clock.spawn(consumer)
    clock.sleep(100.0)
    assert received == [0.0, 30.0]
    assert queue.dlq == [msg]


TINY = {
    "burst": ["--rooms", "40", "--spread", "1", "--latency", "0.1"],
    "apps": ["--app-rooms", "12"],
    "ddb": ["--ddb-rooms", "2"],
    "windows": ["--windows", "20"],
    "renewal": ["--tasks", "10"],
    "sweep": ["--sessions", "30"],
}


@pytest.mark.parametrize("only", sorted(TINY))
def test_one_tiny_configuration_runs(only: str) -> None:
    results = scale.main(["--only", only, *TINY[only]])
    assert results
    assert all(math.isfinite(r.value) for r in results)  # every room was started
    throttled = [r for r in results if "throttled" in r.metric]
    assert all(r.value == 0 for r in throttled)
