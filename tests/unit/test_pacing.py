"""The pacing rule (pure GCRA arithmetic), its settings, and how the app wires the limiter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handler import app
from handler.adapters.gme_client import TencentGme
from handler.adapters.ratelimited_gme import RateLimitedGme
from handler.config import ConfigError, Settings
from handler.domain.ratelimit import Pace, reserve
from handler.local import LocalContext
from tests.conftest import Stack


@given(
    rate=st.integers(min_value=1, max_value=40),
    burst=st.integers(min_value=1, max_value=5),
    gaps=st.lists(st.floats(min_value=0, max_value=0.2), min_size=1, max_size=150),
)
def test_no_second_ever_holds_more_than_rate_plus_burst_minus_one(
    rate: int, burst: int, gaps: list[float]
) -> None:
    """Whatever the arrival pattern, callers that wait for their slot stay within the pace."""
    pace, tat, now, slots = Pace(rate, burst), 0.0, 1_000_000.0, []
    for gap in gaps:
        now += gap
        got = reserve(tat, now, pace, max_wait=1e9)
        assert got is not None
        tat, start = got
        assert start >= now  # a slot is never in the past
        slots.append(start)
    assert slots == sorted(slots)  # handed out in order
    worst = max(sum(1 for s in slots if t - 1 + 1e-6 < s <= t) for t in slots)
    assert worst <= rate + burst - 1


def test_a_caller_that_cannot_wait_reserves_nothing() -> None:
    pace = Pace(2, 1)
    tat, first = reserve(0.0, 10.0, pace, max_wait=0) or (0.0, 0.0)
    assert first == 10.0
    assert reserve(tat, 10.0, pace, max_wait=0.4) is None  # next slot is 0.5 s away
    assert reserve(tat, 10.0, pace, max_wait=0.5) == (11.0, 10.5)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_pace_refuses_nonsense(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        Pace(rate, burst)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GME_RATE_LIMIT_PER_SECOND", "-1"),
        ("GME_RATE_LIMIT_PER_SECOND", "fast"),
        ("GME_RATE_LIMIT_BURST", "0"),
    ],
)
def test_bad_rate_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_defaults_stay_under_gme_limit() -> None:
    s = Settings.from_env({})
    assert (s.gme_rate_limit_per_second, s.gme_rate_limit_burst) == (18, 2)
    assert s.gme_rate_limit_per_second + s.gme_rate_limit_burst - 1 < 20


def test_app_wraps_the_sdk_and_binds_the_invocation_deadline(stack: Stack) -> None:
    ctx = LocalContext("worker", timeout_ms=10_000)
    app.bind_context(ctx)
    gme = app.gme()
    assert isinstance(gme, RateLimitedGme)
    assert 7 < gme.budget() <= 10 - 2.5  # GME_TIMEOUT_SECONDS 2 + 0.5 kept in reserve
    later = LocalContext("worker", timeout_ms=4_000)
    app.bind_context(later)  # the next invocation's deadline replaces the last one
    assert gme.budget() <= 4 - 2.5


def test_rate_limit_zero_turns_the_limiter_off(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GME_RATE_LIMIT_PER_SECOND", "0")
    app.reset()
    assert isinstance(app.gme(), TencentGme)
