"""The pacing rule (pure GCRA arithmetic), its settings, and how the app wires the limiter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handler.adapters.gme_client import TencentGme
from handler.adapters.ratelimited_gme import RateLimitedGme
from handler.bootstrap import app
from handler.bootstrap.config import ConfigError, Settings
from handler.domain.ratelimit import (
    MAX_JITTER,
    SPREAD_MARGIN,
    ArrivalSpread,
    Pace,
    credential_tag,
    endpoint_region,
    limit_scope,
    reserve,
    reserve_each,
)
from handler.tools.local import LocalContext
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


@given(
    tat=st.floats(min_value=0, max_value=2000),
    asks=st.lists(
        st.tuples(
            st.builds(
                Pace,
                st.floats(min_value=1, max_value=40),
                st.integers(min_value=1, max_value=5),
            ),
            st.floats(min_value=0, max_value=2),
        ),
        max_size=12,
    ),
)
def test_slots_taken_together_are_the_slots_taken_in_turn(
    tat: float, asks: list[tuple[Pace, float]]
) -> None:
    """One write for several callers hands out exactly what their writes one by one would,
    each at its own pace (a caller that sees jitter reserves at a slower one)."""
    now = 1000.0
    expected: list[float | None] = []
    one_by_one = tat
    for pace, wait in asks:
        got = reserve(one_by_one, now, pace, wait)
        if got is not None:
            one_by_one = got[0]
        expected.append(None if got is None else got[1])
    assert reserve_each(tat, now, asks) == (one_by_one, expected)


def test_a_caller_short_of_time_leaves_its_slot_to_the_next() -> None:
    pace = Pace(2, 1)
    tat, starts = reserve_each(0.0, 10.0, [(pace, 0), (pace, 0.2), (pace, 5), (pace, 5)])
    assert starts == [10.0, None, 10.5, 11.0]  # the second could not wait 0.5 s
    assert tat == 11.5


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
    assert (s.gme_rate_limit_per_second, s.gme_rate_limit_burst) == (19, 1)
    assert s.gme_rate_limit_per_second + s.gme_rate_limit_burst - 1 < 20
    pace = Pace(s.gme_rate_limit_per_second, s.gme_rate_limit_burst)
    assert pace.jitter_tolerance() == pytest.approx(1 / 19)  # 52.6 ms of arrival jitter


@given(rate=st.floats(min_value=1, max_value=19.9), burst=st.integers(min_value=1, max_value=4))
def test_jitter_tolerance_is_the_lateness_that_puts_21_in_a_second(rate: float, burst: int) -> None:
    """21 back-to-back slots from a fresh schedule (the tightest the pace ever packs them) span
    one second plus the tolerance: a request arriving later than that after its slot (the one
    20 slots later on time) is the only way 21 arrivals share one second at GME."""
    pace, tat, slots = Pace(rate, burst), 0.0, []
    for _ in range(21):
        got = reserve(tat, 1000.0, pace, max_wait=1e9)
        assert got is not None
        tat, start = got
        slots.append(start)
    assert slots[20] - slots[0] == pytest.approx(1 + pace.jitter_tolerance())
    # The rule of thumb is the same statement: some jitter is tolerated iff rate + burst - 1 < 20.
    if abs(rate + burst - 21) > 1e-9:
        assert (pace.jitter_tolerance() > 0) == (rate + burst - 1 < 20)


@given(
    rate=st.floats(min_value=1, max_value=19.9),
    burst=st.integers(min_value=1, max_value=4),
    jitter=st.floats(min_value=0, max_value=0.5),
)
def test_a_pace_within_some_jitter_tolerates_it_and_is_never_faster(
    rate: float, burst: int, jitter: float
) -> None:
    pace = Pace(rate, burst)
    slowed = pace.within(jitter)
    assert slowed.burst == burst
    assert slowed.rate <= rate
    if pace.jitter_tolerance() >= 0:
        assert slowed.jitter_tolerance() >= jitter - 1e-9
    else:  # set past GME's 20 even without jitter: a raised quota, left as set
        assert slowed is pace
    if slowed.rate < rate:  # slowed no more than the jitter needs
        assert slowed.jitter_tolerance() == pytest.approx(jitter)


@pytest.mark.parametrize(("rate", "burst"), [(1000, 100), (48, 1), (20, 2)])
def test_a_pace_set_past_gme_documented_limit_is_a_raised_quota_and_never_slowed(
    rate: float, burst: int
) -> None:
    assert Pace(rate, burst).within(0.1) == Pace(rate, burst)


def test_the_default_pace_slows_only_for_more_jitter_than_it_tolerates() -> None:
    pace = Pace(19, 1)
    assert pace.within(0.05) is pace  # 50 ms: 19 a second tolerate 52.6 ms
    assert pace.within(0.06).rate == pytest.approx(20 / 1.06)  # 18.87 a second
    assert pace.within(0.06).jitter_tolerance() == pytest.approx(0.06)


def test_the_arrival_spread_is_the_recent_round_trips_spread_with_its_margin() -> None:
    spread = ArrivalSpread(window=4)
    assert spread.jitter() == 0.0  # nothing seen: the configured pace
    spread.add(0.30)
    assert spread.jitter() == 0.0  # one round trip has no spread
    for trip in (0.33, 0.27, 0.31):
        spread.add(trip)
    assert spread.jitter() == pytest.approx(SPREAD_MARGIN * 0.06)
    for trip in (0.30, 0.30, 0.31):  # the outliers age out of the window
        spread.add(trip)
    assert spread.jitter() == pytest.approx(SPREAD_MARGIN * 0.01)
    spread.add(5.0)  # a stall is not a reason to crawl: capped
    assert spread.jitter() == MAX_JITTER


def test_an_outlier_slows_the_pace_for_the_next_64_answers_and_no_further() -> None:
    spread = ArrivalSpread()
    spread.add(0.5)  # one slow answer among steady ones
    for _ in range(63):
        spread.add(0.3)
    assert spread.jitter() == pytest.approx(0.1)  # 200 ms seen: capped at 100 ms
    assert Pace(19, 1).within(spread.jitter()).rate == pytest.approx(20 / 1.1)  # 18.2 a second
    spread.add(0.3)  # the 64th since: the outlier is out of the window
    assert spread.jitter() == 0.0
    assert Pace(19, 1).within(spread.jitter()) == Pace(19, 1)


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("gme.tencentcloudapi.com", "nearest"),
        ("GME.tencentcloudapi.com.", "nearest"),
        ("gme.ap-guangzhou.tencentcloudapi.com", "ap-guangzhou"),
        ("gme.na-siliconvalley.tencentcloudapi.com", "na-siliconvalley"),
        ("127.0.0.1:8089", "127.0.0.1:8089"),
    ],
)
def test_the_region_of_a_limit_is_the_endpoint_s(host: str, region: str) -> None:
    assert endpoint_region(host) == region


def test_the_scope_names_the_credential_by_a_hash_only() -> None:
    scope = limit_scope("AKIDexample1234567890", "gme.ap-guangzhou.tencentcloudapi.com")
    assert "AKID" not in scope
    assert "1234567890" not in scope
    assert scope == f"{credential_tag('AKIDexample1234567890')}#ap-guangzhou"
    assert credential_tag("AKIDexample1234567890") != credential_tag("AKIDexample1234567891")


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


def test_slots_are_keyed_by_action_credential_and_region_never_by_biz_id(stack: Stack) -> None:
    """Every BizId under these credentials takes its slot from the same schedule, stored under
    a hash of the SecretId: the SecretId itself is in no key."""
    import sqlite3

    from emulator import DEFAULT_SECRET_ID
    from handler.domain.decision import RecordMode, RecordPlan

    gme = app.gme()
    gme.start_record(1400000001, "room-a", RecordPlan(record_mode=RecordMode.MIXED))
    gme.start_record(1400000002, "room-b", RecordPlan(record_mode=RecordMode.MIXED))
    gme.describe_task(1400000002, "room-b")
    with sqlite3.connect(stack.store_path) as db:
        keys = sorted(row[0] for row in db.execute("SELECT id FROM gme_rate"))
    scope = limit_scope(DEFAULT_SECRET_ID, stack.emulator.url.removeprefix("http://"))
    assert keys == [
        f"gme-autorecord.rate#DescribeTaskInfo#{scope}",
        f"gme-autorecord.rate#StartRecord#{scope}",
    ]
    assert not any(DEFAULT_SECRET_ID in key for key in keys)


def test_a_pace_without_a_burst_spaces_every_slot() -> None:
    pace = Pace(10)
    assert pace.burst == 1
    first = reserve(0.0, 100.0, pace, max_wait=1.0)
    assert first is not None
    second = reserve(first[0], 100.0, pace, max_wait=1.0)
    assert second is not None
    assert (first[1], second[1]) == (100.0, 100.1)


def test_the_credential_tag_is_the_documented_hash_prefix() -> None:
    """docs/lifecycle.md: the first 16 hex digits of the SecretId's SHA-256."""
    import hashlib

    tag = credential_tag("AKIDexample1234567890")
    assert tag == hashlib.sha256(b"AKIDexample1234567890").hexdigest()[:16]
    assert len(tag) == 16
