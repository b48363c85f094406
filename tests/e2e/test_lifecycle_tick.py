"""Recording lifecycle on the scheduler's tick, end to end: 24-hour renewal with the emulator's
task clock moved, schedule windows in a non-UTC zone across midnight, the reconciliation sweep
draining a backlog within GME's rate limit, and operator commands."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from handler.bootstrap import app
from handler.domain.ledger import LedgerState
from handler.domain.ledger_rules import closing
from handler.entrypoints import webhook
from tests.conftest import BIZ_ID, Stack, load_event
from tests.e2e.test_lifecycle import HOUR, ROOM, closed, created, entry, running, send, tick

# ------------------------------------------------------------------ renewal


def test_a_25_hour_room_is_renewed_once_without_gap_or_overlap(
    stack: Stack, policy_limits: Any
) -> None:
    policy_limits(**{"ranked-mixed": "none"})  # a room that truly lives for days
    t0 = time.time()
    first_id = send(stack, created())["task_id"]
    stack.emulator.advance(23 * HOUR + 50 * 60)  # ticks every 5 minutes; renewal 15 min ahead
    report = tick(stack, t0 + 23 * HOUR + 50 * 60)
    assert report["renewed"] == 1
    assert (report["sweep_ok"], report["swept"]) == (1, 1)  # the renewal is not a sweep check
    stack.emulator.advance(70 * 60)  # 25 h after the start
    report = tick(stack, t0 + 25 * HOUR)
    assert report.get("renewed", 0) == 0
    tasks = sorted(stack.emulator.tasks(room_id=ROOM), key=lambda t: t.started_at)
    assert len(tasks) == 2
    old, new = tasks
    assert str(old.task_id) == first_id
    assert old.stopped_at is not None
    assert old.stopped_at - old.started_at < 24 * HOUR  # stopped by renewal, not by the cap
    assert new.running
    assert new.started_at >= old.stopped_at  # no overlap
    assert new.started_at - old.stopped_at < 300  # gap well under one tick
    e = entry()
    assert (e.state, e.task_id, e.generation) == (LedgerState.RECORDING, str(new.task_id), 1)
    assert stack.starts() == 2
    send(stack, closed())
    assert running(stack) == []


def test_a_task_gme_ended_at_the_cap_is_replaced_on_the_next_tick(
    stack: Stack, policy_limits: Any
) -> None:
    policy_limits(**{"ranked-mixed": "30h"})
    t0 = time.time()
    send(stack, created())
    stack.emulator.advance(24 * HOUR + 60)  # no tick ran: GME ended the task at 24 h
    assert running(stack) == []
    report = tick(stack, t0 + 24 * HOUR + 120)
    assert report.get("renewed", 0) + report.get("sweep_restarted", 0) == 1
    assert len(running(stack)) == 1
    assert entry().generation == 1


# ---------------------------------------------------------------- schedules

SCHEDULES = """
version: 1
schedules:
  - name: late-show
    biz_id: 1400000000
    room_id: late-show
    start: "30 23 * * 6"       # Saturdays 23:30 in New York
    duration: 2h
    timezone: America/New_York
    record_mode: both
"""


def test_schedule_window_across_midnight_in_new_york(
    stack: Stack, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "schedules.yaml"
    path.write_text(SCHEDULES)
    monkeypatch.setenv("RECORDING_SCHEDULES", str(path))
    monkeypatch.setenv("SWEEP_MIN_AGE_SECONDS", "0")
    app.reset()
    # Saturday 2026-11-28 23:30 EST is Sunday 04:30 UTC; the window ends 01:30 EST (06:30 UTC).
    start = datetime(2026, 11, 29, 4, 30, tzinfo=UTC).timestamp()
    assert tick(stack, start - 300).get("window_started", 0) == 0
    assert tick(stack, start + 60)["window_started"] == 1
    [task] = running(stack, "late-show")
    assert task.record_mode == 3
    session = "window-2026-11-29T04:30:00Z"
    assert app.ledger().get(BIZ_ID, "late-show", session).state is LedgerState.RECORDING
    after_midnight = tick(stack, start + 75 * 60)  # 00:45 local, Sunday
    assert after_midnight.get("window_started", 0) == 0
    assert len(running(stack, "late-show")) == 1
    assert tick(stack, start + 2 * HOUR + 60)["windows_ended"] == 1
    assert running(stack, "late-show") == []
    assert stack.starts() == 1
    done = app.ledger().get(BIZ_ID, "late-show", session)
    assert done.state is LedgerState.STOPPED


# -------------------------------------------------------------------- sweep


def test_sweep_drains_a_backlog_over_several_ticks_within_the_rate_limit(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEP_BATCH", "10")
    monkeypatch.setenv("SWEEP_CALLS_PER_SECOND", "20")
    app.reset()
    from handler.domain.decision import Decision, RecordPlan
    from handler.domain.ledger_rules import starting

    decision = Decision(
        record=True, rule="r", reason="backlog", policy_version="v", plan=RecordPlan()
    )
    ledger = app.ledger()
    t0 = time.time() - 3600
    for i in range(25):  # sessions whose start never completed (queue retries ran out)
        ledger.update(
            BIZ_ID, f"backlog-{i}", "s", starting(BIZ_ID, f"backlog-{i}", "s", decision, t0)
        )
    reports = [tick(stack, time.time() + 600 * n) for n in (1, 2, 3)]
    assert [r.get("sweep_restarted", 0) for r in reports] == [10, 10, 5], reports
    assert len(stack.emulator.tasks(running_only=True)) == 25
    assert all(c.error_code is None for c in stack.emulator.calls())  # never throttled
    assert len(ledger.by_state(LedgerState.RECORDING)) == 25


def test_sweep_marks_a_vanished_room_as_gone(stack: Stack) -> None:
    send(stack, created())
    assert len(running(stack)) == 1
    stack.emulator.reset()  # GME forgot everything...
    stack.emulator.missing_rooms.add((BIZ_ID, ROOM))  # ...and the room is empty
    report = tick(stack, time.time() + 600)
    assert report["sweep_room_gone"] == 1
    assert entry().state is LedgerState.STOPPED
    assert entry().closed
    assert stack.starts() == 0  # after the reset: nothing restarted


def test_operator_stop_closes_the_latest_session(stack: Stack, capsys: Any) -> None:
    from handler.tools.cli import main

    send(stack, created())
    assert main(["stop", str(BIZ_ID), ROOM]) == 0
    assert running(stack) == []
    assert main(["stop", str(BIZ_ID), ROOM]) == 1
    assert main(["recordings", "--state", "stopped"]) == 0
    assert main(["room", str(BIZ_ID), ROOM]) == 0
    out = capsys.readouterr().out
    assert "stopped by an operator" in out
    assert "1 recording(s)" in out
    assert (
        app.ledger()
        .update(BIZ_ID, ROOM, "match-7f3a", closing(BIZ_ID, ROOM, "match-7f3a", 0, "x"))
        .state
        is LedgerState.STOPPED
    )  # a repeated close changes nothing


def test_a_window_and_a_session_sharing_the_rooms_task_do_not_stop_each_other(
    stack: Stack, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "schedules.yaml"
    path.write_text(
        "version: 1\nschedules:\n  - {name: all-day, biz_id: 1400000000, room_id: "
        f"{ROOM}, start: '0 0 * * *', duration: 24h}}\n"
    )
    monkeypatch.setenv("RECORDING_SCHEDULES", str(path))
    app.reset()
    task_id = send(stack, created())["task_id"]
    assert tick(stack, time.time())["window_adopted"] == 1  # GME allows one task per room
    closed_now = send(stack, closed())
    assert "another open session" in closed_now["reason"]
    assert [str(t.task_id) for t in running(stack)] == [task_id]  # the window keeps recording


def test_a_skipped_room_is_final_in_the_ledger_and_never_swept_into_recording(
    stack: Stack,
) -> None:
    doc = load_event("room-created-practice.json")
    assert send(stack, doc)["status"] == "skipped"
    [e] = app.ledger().by_room(BIZ_ID, doc["room_id"])
    assert e.state is LedgerState.SKIPPED
    assert tick(stack, time.time() + 3600).get("swept", 0) == 0
    assert stack.starts() == 0


def test_a_start_that_failed_retryably_is_retried_by_the_sweep_after_the_queue(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.emulator.fail_next("StartRecord", "InternalError", count=1)
    result = webhook.handler(stack.room_event_request(created()), stack.context("webhook"))
    assert result["statusCode"] == 503  # the sender (or SQS) would retry; suppose it gave up
    assert (entry().state, entry().retryable) == (LedgerState.FAILED, True)
    t0 = time.time()
    for minutes in (5, 9):  # ticks before SWEEP_RETRY_AFTER_SECONDS only look
        report = tick(stack, t0 + minutes * 60)
        assert report.get("sweep_restarted", 0) == 0, report
    report = tick(stack, t0 + 15 * 60)
    assert report["sweep_restarted"] == 1, report
    assert entry().state is LedgerState.RECORDING
    assert len(running(stack)) == 1


def test_a_tick_purges_ended_sessions_past_the_ledgers_ttl_and_counts_them(stack: Stack) -> None:
    """What DynamoDB's TTL does deployed, the tick does for the embedded ledger: an ended
    session is kept LEDGER_TTL_SECONDS (30 days), then deleted, and the tick says how many."""
    send(stack, created())
    send(stack, closed())
    assert tick(stack, time.time() + 3600).get("purged") == 0
    assert tick(stack, time.time() + 31 * 86400)["purged"] == 1
    assert entry() is None


def test_the_tick_keeps_ten_seconds_of_its_invocation_for_the_unit_in_flight() -> None:
    """The deadline: TICK_DEADLINE_SECONDS from now, but never later than 10 s before the
    invocation ends (the unit running then and the last SendMessageBatch need that time)."""
    from handler.service_layer.lifecycle.settings import LifecycleSettings
    from handler.service_layer.lifecycle.tick import Lifecycle

    class Context:
        def __init__(self, remaining_ms: int) -> None:
            self.get_remaining_time_in_millis = lambda: remaining_ms

    lifecycle = Lifecycle(
        None,  # type: ignore[arg-type]  # the deadline reads only the settings and the clock
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        LifecycleSettings(tick_deadline_seconds=40),
        None,
        clock=lambda: 1000.0,
    )
    assert lifecycle.deadline() == 1040.0
    assert lifecycle.deadline(Context(60_000)) == 1040.0
    assert lifecycle.deadline(Context(25_000)) == 1015.0
    assert lifecycle.deadline(Context(5_000)) == 1000.0


def test_an_in_process_tick_runs_every_due_unit_and_counts_a_failed_one(
    stack: Stack, policy_limits: Any
) -> None:
    """Without a queue the tick runs its units itself: one failing (GME refuses a renewal's
    stop) is counted and logged, and the units after it still run."""
    policy_limits(**{"ranked-mixed": "none"})
    t0 = time.time()
    for session in ("a", "b", "c"):
        send(stack, created(session=session, room=f"room-{session}"))
    stack.emulator.advance(23 * HOUR + 50 * 60)
    stack.emulator.fail_next("StopRecord", "InternalError")  # the first renewal's stop
    report = tick(stack, t0 + 23 * HOUR + 50 * 60)
    assert (report["renew_errors"], report["renewed"]) == (1, 2), report
    assert report["swept"] == 3, report


def no_second_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, a pace of one GME call per action every 100 s: each action's next call gets
    its slot at once, the one after it finds none within the invocation's time and fails at
    once with NoTimeLeft (throttled, as a `RequestLimitExceeded` GME kept answering would be)."""
    monkeypatch.setenv("GME_RATE_LIMIT_PER_SECOND", "0.01")
    app.reset()


def test_an_in_process_tick_ends_its_sweep_at_a_check_gme_has_no_room_for(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A throttled check is nothing wrong with its session: it is counted as throttled, noted
    nowhere, and the rest of the sweep waits for the next tick instead of meeting the same
    limit check after check."""
    for session in ("a", "b", "c"):
        send(stack, created(session=session, room=f"room-{session}"))
    before = {s: entry(session=s, room=f"room-{s}") for s in ("a", "b", "c")}
    no_second_slot(monkeypatch)
    describes = len(stack.emulator.calls("DescribeTaskInfo"))
    report = tick(stack, time.time() + 600)
    assert (report["sweep_ok"], report["swept"], report["sweep_throttled"]) == (1, 1, 1), report
    assert "sweep_errors" not in report, report
    assert len(stack.emulator.calls("DescribeTaskInfo")) == describes + 1
    after = {s: entry(session=s, room=f"room-{s}") for s in ("a", "b", "c")}
    moved = [s for s in after if after[s].checked_at != before[s].checked_at]
    assert len(moved) == 1, moved  # the throttled check and the one after it: untouched
    assert [after[s].last_error for s in after] == [before[s].last_error for s in before]


def test_an_in_process_tick_goes_on_after_a_renewal_gme_has_no_room_for(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, policy_limits: Any
) -> None:
    """Only a throttled check ends the tick (the sweep can wait): a renewal the pace has no slot
    for is counted as a renewal error, as any failed unit, and the units after it still run."""
    policy_limits(**{"ranked-mixed": "none"})
    t0 = time.time()
    for session in ("a", "b"):
        send(stack, created(session=session, room=f"room-{session}"))
    stack.emulator.advance(23 * HOUR + 50 * 60)
    no_second_slot(monkeypatch)  # the second renewal's StopRecord finds no slot
    report = tick(stack, t0 + 23 * HOUR + 50 * 60)
    assert (report["renewed"], report["renew_errors"]) == (1, 1), report
    assert report["swept"] == 1, report  # the sweep ran after both (to its own throttled check)
    assert len(stack.emulator.calls("StopRecord")) == 1  # the second stop was never sent...
    assert sorted(e.generation for e in app.ledger().by_state(LedgerState.RECORDING)) == [0, 1]
    assert len(stack.emulator.tasks(running_only=True)) == 2  # ...so its old task still runs
