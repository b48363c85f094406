"""The gateway's pace slows for the spread of its round trips, and says so.

GME is the one part replaced here: `Answers` answers after round trips the test chooses, on a
clock the test owns, and the slot store hands out every slot at once, recording the pace each
was asked at. What is under test is `RateLimitedGme`: what it times, the pace it asks for,
and what it reports. The same rule against the emulator's state and the real worker, at the
deployed shape, is in tests/bench/test_scale_pace.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from handler.adapters.ratelimited_gme import RateLimitedGme
from handler.domain.decision import RecordMode, RecordPlan
from handler.domain.gme import GmeError, RunningTask
from handler.domain.ratelimit import SPREAD_MARGIN, SPREAD_WINDOW, Pace

CONFIGURED = Pace(19, 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Answers:
    """GME answering each call ``trips`` seconds after it was made; a trip given as an error
    code is answered with that error after 0.3 s (``request_id`` None: no answer came back)."""

    def __init__(self, clock: Clock, trips: Iterator[float | tuple[str, str | None]]) -> None:
        self._clock = clock
        self._trips = trips

    def describe_task(self, biz_id: int, room_id: str) -> RunningTask | None:
        trip = next(self._trips)
        if isinstance(trip, tuple):
            self._clock.sleep(0.3)
            code, request_id = trip
            raise GmeError("DescribeTaskInfo", code, "refused", request_id)
        self._clock.sleep(trip)
        return None

    def start_record(self, biz_id: int, room_id: str, plan: RecordPlan) -> str:
        self._clock.sleep(0.3)
        return "1"


class Slots:
    """Every slot due at once; remembers the pace each was reserved at."""

    pace = CONFIGURED

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.asked: list[Pace] = []

    def reserve(self, key: str, max_wait: float, pace: Pace | None = None) -> float | None:
        self.asked.append(pace or self.pace)
        return self._clock()


def gateway(
    trips: list[float | tuple[str, str | None]],
) -> tuple[RateLimitedGme, Slots, list[tuple[str, float, float]]]:
    clock = Clock()
    slots = Slots(clock)
    reports: list[tuple[str, float, float]] = []
    gme = RateLimitedGme(
        Answers(clock, iter(trips)),  # type: ignore[arg-type]
        slots,
        scope=lambda: "tag#region",
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: 0.0,
        on_pace=lambda *report: reports.append(report),
    )
    return gme, slots, reports


def calls(gme: RateLimitedGme, n: int) -> None:
    for _ in range(n):
        with contextlib.suppress(GmeError):
            gme.describe_task(1400000000, "room")


def test_a_spread_beyond_the_tolerance_slows_the_next_slots_and_is_reported_once() -> None:
    steady, late = 0.3, 0.36  # 60 ms apart: more than the 52.6 ms 19 a second tolerate
    gme, slots, reports = gateway([steady] * 10 + [late] + [steady] * SPREAD_WINDOW)
    calls(gme, 11)
    assert slots.asked == [CONFIGURED] * 11  # the late answer came after its slot was taken
    jitter = SPREAD_MARGIN * (late - steady)
    slowed = pytest.approx(20 / (1 + jitter))  # 18.66 a second
    assert gme.pace("DescribeTaskInfo").rate == slowed
    calls(gme, SPREAD_WINDOW - 1)
    assert [p.rate for p in slots.asked[11:]] == [slowed] * (SPREAD_WINDOW - 1)  # all window
    assert reports == [("DescribeTaskInfo", slowed, pytest.approx(jitter))]
    calls(gme, 1)  # the late one is out of the window: the configured pace, and said so
    assert gme.pace("DescribeTaskInfo") == CONFIGURED
    assert reports[1:] == [("DescribeTaskInfo", 19.0, 0.0)]


def test_a_spread_the_pace_tolerates_changes_nothing_and_reports_nothing() -> None:
    gme, slots, reports = gateway([0.30, 0.34] * 20)  # 40 ms (48 with the margin) < 52.6
    calls(gme, 40)
    assert slots.asked == [CONFIGURED] * 40
    assert reports == []


def test_each_action_keeps_its_own_spread() -> None:
    gme, slots, _ = gateway([0.3, 0.5])
    calls(gme, 2)
    assert gme.pace("DescribeTaskInfo").rate < 19
    assert gme.pace("StartRecord") == CONFIGURED
    gme.start_record(1400000000, "room", RecordPlan(record_mode=RecordMode.MIXED))
    assert slots.asked[-1] == CONFIGURED


def test_a_gme_error_is_a_round_trip_but_a_call_that_got_no_answer_is_not() -> None:
    # Refused by GME (a request id): timed like an answer. No answer (a network error, no
    # request id): its time says nothing about when a request arrives.
    gme, _, _ = gateway([0.3, ("ResourceNotFound.RoomNotFound", "req-1")])
    calls(gme, 2)
    assert gme.pace("DescribeTaskInfo").rate == pytest.approx(19)  # both took 0.3 s
    gme, _, _ = gateway([0.2, ("ClientNetworkError", None)])
    calls(gme, 2)
    assert gme.pace("DescribeTaskInfo") == CONFIGURED  # one sample: no spread
    gme, _, _ = gateway([0.2, ("ResourceNotFound.RoomNotFound", "req-2")])
    calls(gme, 2)
    assert gme.pace("DescribeTaskInfo").rate < 19  # 0.2 s and 0.3 s: 100 ms apart


def test_small_moves_of_the_slowed_rate_are_not_reported_but_the_return_always_is() -> None:
    # 60 ms of spread (18.66 a second), a little more (61 ms: 18.64, not said), then only 46 ms
    # once the 60 ms ones aged out (18.95: said), then none (19, only 0.05 up: said all the same).
    trips = [0.30, 0.36, 0.361] + [0.30] * 10 + [0.346] + [0.30] * SPREAD_WINDOW
    gme, _, reports = gateway(trips)
    calls(gme, len(trips))
    gme.pace("DescribeTaskInfo")  # the pace the next call would take
    assert [round(rate, 2) for _, rate, _ in reports] == [18.66, 18.95, 19.0]
    assert [round(jitter * 1000) for _, _, jitter in reports] == [72, 55, 0]
