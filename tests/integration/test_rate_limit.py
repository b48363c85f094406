"""The fleet-wide GME pacing and the throttling backoff, with the real SDK against the emulator.

Several worker *processes* share one schedule store (the SQLite file, DynamoDB on moto_server,
Redis; the store contract itself is in test_stores.py) and must together stay under the
emulator's 20 requests per second per action and credential (SecretId), GME's own dimension,
which answers RequestLimitExceeded above it exactly as GME does, whatever the BizId.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, GmeEmulator
from handler.adapters.buckets import build_slot_store
from handler.adapters.gme_client import TencentGme
from handler.adapters.ratelimited_gme import RateLimitedGme
from handler.domain.decision import RecordMode, RecordPlan
from handler.domain.gme import NO_TIME_LEFT, GmeError
from handler.domain.ratelimit import Pace, limit_scope, reserve
from tests.conftest import Stack, load_event, sqs_event

BIZ = 1400000000
PLAN = RecordPlan(record_mode=RecordMode.MIXED)


class Context:
    def __init__(self, remaining_s: float) -> None:
        self._deadline = time.monotonic() + remaining_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


DEFAULT_PACE = Pace(18, 2)


def gateway(emu_url: str, store: str, pace: Pace = DEFAULT_PACE, **kw: Any) -> RateLimitedGme:
    sdk = TencentGme(emu_url, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, timeout_seconds=2)
    scope = limit_scope(DEFAULT_SECRET_ID, emu_url.removeprefix("http://"))
    return RateLimitedGme(sdk, build_slot_store(store, pace), scope=lambda: scope, **kw)


def _describe_many(emu_url: str, store: str, count: int, pace: Pace = DEFAULT_PACE) -> int:
    gme = gateway(emu_url, store, pace, reserve_seconds=0)
    gme.bind_context(Context(60))
    for i in range(count):
        gme.describe_task(BIZ, f"room-{i}")
    return gme.stats["throttled"]


def test_reserve_never_puts_more_than_rate_plus_burst_in_a_second() -> None:
    pace, tat, slots = Pace(18, 2), 0.0, []
    now = 1000.0
    for _ in range(200):
        got = reserve(tat, now, pace, max_wait=60)
        assert got is not None
        tat, start = got
        slots.append(start)
    # Any window of one second (open at the start, like the emulator's) holds at most
    # rate + burst - 1 slots; 1e-9 absorbs float rounding of slots exactly 1 s apart.
    worst = max(sum(1 for s in slots if t - 1 + 1e-9 < s <= t) for t in slots)
    assert worst == 19
    assert slots[-1] - slots[0] == pytest.approx(198 / 18)


def test_four_processes_stay_under_the_limit(store_url: str) -> None:
    """On each store family: the processes find it in the URL (and, for DynamoDB, moto in the
    environment they inherit, as a Lambda instance finds its endpoint)."""
    # 15/s tolerates 333 ms of arrival jitter (18 + 2: 55.6 ms), which a loaded 2-core test box
    # can exceed between a process's wake-up and the emulator's clock.
    pace = Pace(15, 1)
    with GmeEmulator(rate_limit_per_second=20) as emu:
        ctx = multiprocessing.get_context("spawn")
        began = time.monotonic()
        with ctx.Pool(4) as pool:
            throttled = pool.starmap(_describe_many, [(emu.url, store_url, 20, pace)] * 4)
        elapsed = time.monotonic() - began
        calls = emu.calls("DescribeTaskInfo")
    assert sum(throttled) == 0
    assert [c.error_code for c in calls] == [None] * 80
    stamps = sorted(c.at for c in calls)
    assert max(sum(1 for s in stamps if t - 1 < s <= t) for t in stamps) <= 20
    assert elapsed >= 79 / 15 - 0.2  # really paced, not just lucky


def _worker_process(bodies: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
    """One worker process: the real ``process_batch`` over its share of the rooms, configured
    from the environment it inherited (as a Lambda instance is)."""
    from handler.entrypoints import worker
    from handler.tools.local import LocalContext

    report: list[dict[str, Any]] = []
    for at in range(0, len(bodies), batch_size):
        event = sqs_event(*bodies[at : at + batch_size])
        report += worker.process_batch(event, LocalContext("worker", 60_000))[1]
    return report


def test_two_biz_ids_under_one_credential_never_throttle(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tencent limits per Action + region + credentials, not per BizId: two apps under one
    SecretId share one 20/s, so the fleet's pace must be one schedule for both."""
    # 15/s tolerates 333 ms of arrival jitter (19/s: 52.6 ms), which a loaded 2-core test box
    # can exceed between a worker's wake-up and the emulator's clock. Two schedules of 15 (one
    # per BizId) would still send 30 a second.
    monkeypatch.setenv("GME_RATE_LIMIT_PER_SECOND", "15")
    created = load_event("room-created.json")
    processes, rooms = 4, 48
    bodies = [
        {
            **created,
            "id": f"evt-two-apps-{i}",
            "biz_id": (BIZ, BIZ + 1)[i % 2],
            "room_id": f"ranked-two-apps-{i}",
        }
        for i in range(rooms)
    ]
    shares = [(bodies[p::processes], 6) for p in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        reports = pool.starmap(_worker_process, shares)
    calls = stack.emulator.calls()
    assert [c for c in calls if (c.error_code or "").startswith("RequestLimitExceeded")] == []
    failed = [item for report in reports for item in report if not item["ok"]]
    assert failed == []
    tasks = stack.emulator.tasks()
    assert sorted(t.room_id for t in tasks) == sorted(b["room_id"] for b in bodies)
    assert {t.biz_id for t in tasks} == {BIZ, BIZ + 1}


def test_a_slot_overslept_is_given_up_for_a_new_one(tmp_path: Path) -> None:
    """A caller that wakes well after its slot (a descheduled process) would send a request
    that can meet 20 later slots' requests inside one GME second: it takes a new slot."""
    sent: list[float] = []

    def oversleep_once(seconds: float) -> None:
        time.sleep(seconds + (0.1 if not sent else 0.0))
        sent.append(time.time())

    with GmeEmulator() as emu:
        gme = gateway(emu.url, f"sqlite:///{tmp_path}/i.db", Pace(19, 1), sleep=oversleep_once)
        gme.describe_task(BIZ, "room-1")  # slot now: no sleep
        gme.describe_task(BIZ, "room-2")  # slot 52.6 ms later, slept past by 100 ms
        gme.describe_task(BIZ, "room-3")
        arrivals = [c.at for c in emu.calls("DescribeTaskInfo")]
    assert gme.stats["late"] == 1  # 100 ms late > half the 52.6 ms tolerance
    # Kept, the late slot would have sent room-2 and room-3 back to back (room-3's slot was due
    # by then); given up, room-3 still comes one interval after room-2.
    assert arrivals[2] - arrivals[1] >= 1 / 19 - 0.005


def test_throttled_answer_is_retried_with_backoff(tmp_path: Path) -> None:
    sleeps: list[float] = []
    with GmeEmulator() as emu:
        gme = gateway(
            emu.url,
            f"sqlite:///{tmp_path}/i.db",
            Pace(1000, 10),  # no waiting for slots here: only the backoff sleeps
            sleep=sleeps.append,
            jitter=lambda: 1.0,  # the top of each jitter range
        )
        gme.bind_context(Context(30))
        emu.fail_next("StartRecord", "RequestLimitExceeded", count=3)
        task_id = gme.start_record(BIZ, "room-1", PLAN)
        assert [t.task_id for t in emu.tasks()] == [int(task_id)]
        assert len(emu.calls("StartRecord")) == 4
    assert gme.stats["throttled"] == 3
    assert sleeps == pytest.approx([0.1, 0.2, 0.4])  # exponential; jitter scales each down


def test_no_backoff_sleeps_past_the_deadline(tmp_path: Path) -> None:
    with GmeEmulator() as emu:
        gme = gateway(emu.url, f"sqlite:///{tmp_path}/i.db", reserve_seconds=0.5, backoff_base=0.2)
        gme.bind_context(Context(1.5))
        emu.fail_next("StartRecord", "RequestLimitExceeded", count=1000)
        began = time.monotonic()
        with pytest.raises(GmeError) as caught:
            gme.start_record(BIZ, "room-1", PLAN)
        spent = time.monotonic() - began
        assert emu.tasks() == []
    assert caught.value.code.startswith("RequestLimitExceeded") or caught.value.code == NO_TIME_LEFT
    assert spent <= 1.0 + 0.1  # the 1.5 s Lambda keeps its 0.5 s reserve


def test_no_slot_before_the_deadline_fails_fast_without_calling_gme(tmp_path: Path) -> None:
    with GmeEmulator() as emu:
        gme = gateway(emu.url, f"sqlite:///{tmp_path}/i.db", Pace(1, 1), reserve_seconds=1)
        gme.bind_context(Context(1.5))  # 0.5 s to spend; the next slot is 1 s away
        gme.describe_task(BIZ, "room-1")
        began = time.monotonic()
        with pytest.raises(GmeError) as caught:
            gme.describe_task(BIZ, "room-2")
        assert time.monotonic() - began < 0.2
        assert caught.value.code == NO_TIME_LEFT
        assert len(emu.calls("DescribeTaskInfo")) == 1
        # Another action has a schedule of its own; another BizId under the same credentials
        # does not (GME counts them together).
        gme.start_record(BIZ, "room-1", PLAN)
        with pytest.raises(GmeError) as caught:
            gme.describe_task(BIZ + 1, "room-1")
        assert caught.value.code == NO_TIME_LEFT


def test_backoff_doubles_up_to_its_two_second_cap(tmp_path: Path) -> None:
    """docs/lifecycle.md: 0.1 s doubling, capped at 2 s, full jitter."""
    sleeps: list[float] = []
    with GmeEmulator() as emu:
        gme = gateway(
            emu.url,
            f"sqlite:///{tmp_path}/i.db",
            Pace(1000, 10),
            sleep=sleeps.append,
            jitter=lambda: 1.0,
        )
        emu.fail_next("DescribeTaskInfo", "RequestLimitExceeded", count=7)
        assert gme.describe_task(BIZ, "room-1") is None
    assert sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
    assert gme.stats == {"waited": 0, "throttled": 7, "no_time_left": 0, "late": 0}


def test_every_action_goes_through_the_pace_and_reaches_gme(tmp_path: Path) -> None:
    """Stop, modify and the stream listing take a slot like starts do, and do their work."""
    with GmeEmulator() as emu:
        gme = gateway(emu.url, f"sqlite:///{tmp_path}/i.db", Pace(20, 1))
        gme.bind_context(Context(30))
        task_id = gme.start_record(BIZ, "room-1", PLAN)
        streams = gme.describe_record_info(BIZ, task_id)
        assert [s.user_id for s in streams] == ["0"]  # the room's mix
        gme.modify_record(BIZ, task_id, RecordPlan(record_mode=RecordMode.SINGLE))
        assert [t.record_mode for t in emu.tasks()] == [1]
        gme.stop_record(BIZ, task_id)
        assert emu.tasks(running_only=True) == []
        actions = [c.action for c in emu.calls()]
    assert actions == ["StartRecord", "DescribeRecordInfo", "ModifyRecordInfo", "StopRecord"]
    # Four actions, four schedules: none waited for another's slot.
    assert gme.stats == {"waited": 0, "throttled": 0, "no_time_left": 0, "late": 0}


def test_waits_and_deadlines_are_counted(tmp_path: Path) -> None:
    with GmeEmulator() as emu:
        gme = gateway(emu.url, f"sqlite:///{tmp_path}/i.db", Pace(5, 1), reserve_seconds=0)
        gme.bind_context(Context(30))
        gme.describe_task(BIZ, "room-1")
        gme.describe_task(BIZ, "room-2")  # waits 0.2 s for its slot
        assert (gme.stats["waited"], gme.stats["no_time_left"]) == (1, 0)
        gme.bind_context(Context(0.05))
        with pytest.raises(GmeError):
            gme.describe_task(BIZ, "room-3")
        assert (gme.stats["waited"], gme.stats["no_time_left"]) == (1, 1)
        assert len(emu.calls()) == 2


def test_other_errors_pass_through_at_once_and_operators_see_waits_and_throttles(
    tmp_path: Path,
) -> None:
    waits: list[float] = []
    throttles: list[str] = []
    with GmeEmulator() as emu:
        gme = gateway(
            emu.url,
            f"sqlite:///{tmp_path}/i.db",
            Pace(5, 1),
            reserve_seconds=0,
            jitter=lambda: 0.0,
            on_wait=waits.append,
            on_throttle=throttles.append,
        )
        gme.bind_context(Context(30))
        emu.fail_next("StartRecord", "InternalError")
        with pytest.raises(GmeError) as caught:
            gme.start_record(BIZ, "room-1", PLAN)
        assert caught.value.code == "InternalError"
        assert len(emu.calls("StartRecord")) == 1  # not retried here: the queue decides
        emu.fail_next("StartRecord", "RequestLimitExceeded.UinLimitExceeded")
        gme.start_record(BIZ, "room-1", PLAN)  # waits for the slot after the refused one
    assert throttles == ["RequestLimitExceeded.UinLimitExceeded"]
    assert len(waits) == gme.stats["waited"] >= 1
    assert all(0 < w <= 0.2 + 0.05 for w in waits)
