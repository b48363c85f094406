"""The fleet-wide pace slows itself for the arrival jitter it sees, and only then.

The scale benchmark's model (`bench._stack`): the real worker, recorder, ledger and
`RateLimitedGme` on a virtual clock, GME's state and its 20/s limit from the emulator, each
request reaching GME after half the round trip L, jittered by +-20 %. At L = 0.3 s two requests'
trips differ by up to 60 ms, more than the 52.6 ms the configured 19 a second tolerate: a pace
that does not slow for it has some 21 arrivals in one of GME's seconds (10 of 1,000 rooms were
throttled before the pace measured its round trips).
"""

from __future__ import annotations

import pytest

from bench._fleet import batch_runs_side_by_side
from bench._stack import deployed_shape
from bench.scale import run_burst
from handler.domain.ratelimit import Pace

ROOMS = 1000


def burst(latency: float) -> tuple[int, int, Pace]:
    """1,000 rooms created within 10 s at the deployed shape, through the benchmark's own run:
    (started, throttled, the pace the gateway reserved StartRecord slots at by the end)."""
    shape = deployed_shape()
    run = run_burst(latency, ROOMS, 10.0, shape, batch_runs_side_by_side(shape.batch_size))
    return len(run.started), run.throttled, run.pace


def test_far_from_gme_the_pace_slows_for_the_jitter_and_nothing_is_throttled() -> None:
    started, throttled, pace = burst(latency=0.3)
    assert (started, throttled) == (ROOMS, 0)
    assert pace.rate < 19
    assert pace.jitter_tolerance() >= 0.06 * 0.95  # the spread seen, nearly all of 60 ms
    assert pace.rate >= 20 / 1.1  # never slower than the cap on jitter


def test_near_gme_the_pace_keeps_the_configured_rate() -> None:
    started, throttled, pace = burst(latency=0.1)  # trips differ by 20 ms at most
    assert (started, throttled) == (ROOMS, 0)
    assert pace.rate == pytest.approx(19)
