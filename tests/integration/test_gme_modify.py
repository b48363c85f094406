"""ModifyRecordInfo through the real SDK against the emulator, bare and paced: a running task
takes the new mode and lists (a plan without lists records everyone again), GME's refusals
arrive as `GmeError` with GME's code and change nothing, and the paced gateway takes a slot of
its own action and rides out a throttled answer like every other call."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, GmeEmulator
from handler.adapters.buckets import build_slot_store
from handler.adapters.gme_client import TencentGme
from handler.adapters.ratelimited_gme import RateLimitedGme
from handler.domain.decision import RecordMode, RecordPlan
from handler.domain.gme import GmeError
from handler.domain.ratelimit import Pace, limit_scope

BIZ = 1400000000


@pytest.fixture
def gme(emulator: GmeEmulator) -> TencentGme:
    return TencentGme(emulator.url, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, timeout_seconds=2)


def lists(emulator: GmeEmulator) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    (task,) = emulator.tasks()
    return task.record_mode, task.subscribe_user_ids, task.unsubscribe_user_ids


def test_a_running_task_takes_the_new_mode_and_lists(
    gme: TencentGme, emulator: GmeEmulator
) -> None:
    task_id = gme.start_record(BIZ, "r1", RecordPlan(record_mode=RecordMode.MIXED))
    gme.modify_record(BIZ, task_id, RecordPlan(record_mode=RecordMode.BOTH, allow_user_ids=("a",)))
    assert lists(emulator) == (3, ("a",), ())
    gme.modify_record(
        BIZ, task_id, RecordPlan(record_mode=RecordMode.SINGLE, block_user_ids=("x",))
    )
    assert lists(emulator) == (1, (), ("x",))
    gme.modify_record(BIZ, task_id, RecordPlan(record_mode=RecordMode.MIXED))
    assert lists(emulator) == (2, (), ())  # no lists in the plan: everyone again
    running = gme.describe_task(BIZ, "r1")
    assert running is not None
    assert running.record_mode is RecordMode.MIXED
    (call,) = emulator.calls("ModifyRecordInfo")[-1:]
    assert call.task_id == int(task_id)  # exact: TaskIds exceed 2**53
    assert call.error_code is None


def test_refusals_carry_gme_codes_and_change_nothing(
    gme: TencentGme, emulator: GmeEmulator
) -> None:
    task_id = gme.start_record(BIZ, "r1", RecordPlan(record_mode=RecordMode.MIXED))
    with pytest.raises(GmeError) as caught:
        gme.modify_record(BIZ + 1, task_id, RecordPlan(record_mode=RecordMode.SINGLE))
    assert caught.value.code == "ResourceNotFound.TaskNotFound"
    gme.stop_record(BIZ, task_id)
    with pytest.raises(GmeError) as caught:
        gme.modify_record(BIZ, task_id, RecordPlan(record_mode=RecordMode.SINGLE))
    assert (caught.value.action, caught.value.code) == (
        "ModifyRecordInfo",
        "ResourceNotFound.TaskNotFound",
    )
    assert lists(emulator) == (2, (), ())


def test_the_paced_gateway_takes_a_slot_and_rides_out_a_throttle(
    gme: TencentGme, emulator: GmeEmulator, tmp_path: Path
) -> None:
    sleeps: list[float] = []
    slots = build_slot_store(f"sqlite:///{tmp_path}/pace.db", Pace(1000, 10))
    scope = limit_scope(DEFAULT_SECRET_ID, emulator.url.removeprefix("http://"))
    paced = RateLimitedGme(gme, slots, scope=lambda: scope, sleep=sleeps.append, jitter=lambda: 1)
    task_id = paced.start_record(BIZ, "r1", RecordPlan(record_mode=RecordMode.MIXED))
    emulator.fail_next("ModifyRecordInfo", "RequestLimitExceeded", count=2)
    paced.modify_record(BIZ, task_id, RecordPlan(record_mode=RecordMode.SINGLE))
    assert lists(emulator) == (1, (), ())
    assert len(emulator.calls("ModifyRecordInfo")) == 3
    assert paced.stats["throttled"] == 2
    assert sleeps == pytest.approx([0.1, 0.2])
