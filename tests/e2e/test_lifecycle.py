"""Recording lifecycle end to end: real SDK over HTTP to the emulator, real SQLite idempotency
and ledger files, the scheduler entry point with a moved `now` and the emulator's moved task
clock. The emulator's task list is the ground truth for what GME runs."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from handler import app, scheduler, webhook, worker
from handler.domain.ledger import LedgerState
from handler.domain.ledger_rules import closing
from tests.conftest import BIZ_ID, Stack, load_event, sqs_event

ROOM = "ranked-eu-1042"
HOUR = 3600.0


def created(session: str = "match-7f3a", room: str = ROOM) -> dict[str, Any]:
    return {
        **load_event("room-created.json"),
        "id": f"c-{session}",
        "session": session,
        "room_id": room,
    }


def closed(session: str = "match-7f3a", room: str = ROOM) -> dict[str, Any]:
    return {
        **load_event("room-closed.json"),
        "id": f"x-{session}",
        "session": session,
        "room_id": room,
    }


def send(stack: Stack, doc: dict[str, Any]) -> dict[str, Any]:
    result = webhook.handler(stack.room_event_request(doc), stack.context("webhook"))
    assert result["statusCode"] == 200, result["body"]
    body: dict[str, Any] = json.loads(result["body"])
    return body


def tick(stack: Stack, at: float) -> dict[str, Any]:
    iso = datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result: dict[str, Any] = scheduler.handler({"time": iso, "id": "t"}, stack.context("sched"))
    return result


def entry(session: str = "match-7f3a", room: str = ROOM) -> Any:
    return app.ledger().get(BIZ_ID, room, session)


def running(stack: Stack, room: str = ROOM) -> list[Any]:
    return stack.emulator.tasks(room_id=room, running_only=True)


# ------------------------------------------------------------------ close


def test_create_then_close_stops_the_task(stack: Stack) -> None:
    started = send(stack, created())
    assert started["status"] == "started"
    assert entry().state is LedgerState.RECORDING
    assert entry().task_id == started["task_id"]
    stopped = send(stack, closed())
    assert (stopped["status"], stopped["task_id"]) == ("stopped", started["task_id"])
    assert running(stack) == []
    assert entry().state is LedgerState.STOPPED
    [call] = stack.emulator.calls("StopRecord")
    assert str(call.task_id) == started["task_id"]


def test_duplicate_close_stops_once(stack: Stack) -> None:
    send(stack, created())
    first, second = send(stack, closed()), send(stack, closed())
    assert first["status"] == second["status"] == "stopped"
    assert second["duplicate"] is True
    assert len(stack.emulator.calls("StopRecord")) == 1


def test_close_before_create_leaves_the_room_unrecorded(stack: Stack) -> None:
    assert send(stack, closed())["status"] == "stopped"
    late = send(stack, created())
    assert late["status"] == "skipped"
    assert "closed" in late["reason"]
    assert stack.starts() == 0
    assert stack.emulator.tasks() == []
    assert entry().state is LedgerState.STOPPED


def test_close_racing_a_slow_start_ends_with_the_task_stopped(stack: Stack) -> None:
    # StartRecord is held 0.6 s before GME creates the task; the close lands in between.
    stack.emulator.delay_next("StartRecord", 0.6, after_execute=False)
    outcome: dict[str, Any] = {}
    create = threading.Thread(
        target=lambda: outcome.update(send(stack, created())), name="slow-create"
    )
    create.start()
    time.sleep(0.25)
    assert send(stack, closed())["status"] == "stopped"
    create.join(10)
    assert outcome["status"] == "started"  # GME did start it...
    assert running(stack) == []  # ...and the start path saw the close and stopped it
    assert entry().state is LedgerState.STOPPED
    assert entry().closed


def test_trtc_dismissed_resolves_the_session_by_room(stack: Stack) -> None:
    doc = load_event("trtc-room-created.json")
    room = str(doc["EventInfo"]["RoomId"])
    result = webhook.handler(stack.trtc_request(doc), stack.context("webhook"))
    assert json.loads(result["body"])["status"] == "started"
    dismissed = {
        **load_event("trtc-room-dismissed.json"),
        "EventInfo": {**load_event("trtc-room-dismissed.json")["EventInfo"], "RoomId": room},
    }
    result = webhook.handler(stack.trtc_request(dismissed), stack.context("webhook"))
    assert json.loads(result["body"])["status"] == "stopped"
    assert running(stack, room) == []
    [session] = app.ledger().by_room(BIZ_ID, room)
    assert session.session.startswith("trtc-")
    assert session.state is LedgerState.STOPPED


def test_trtc_dismissed_before_created_records_nothing(stack: Stack) -> None:
    doc = load_event("trtc-room-created.json")
    room = str(doc["EventInfo"]["RoomId"])
    info = doc["EventInfo"]
    dismissed = {
        **load_event("trtc-room-dismissed.json"),
        "EventInfo": {
            "RoomId": room,
            "EventTs": info["EventTs"] + 60,
            "EventMsTs": info["EventMsTs"] + 60_000,
        },
    }
    webhook.handler(stack.trtc_request(dismissed), stack.context("webhook"))
    result = webhook.handler(stack.trtc_request(doc), stack.context("webhook"))
    assert json.loads(result["body"])["status"] == "skipped"
    assert stack.starts() == 0


# ------------------------------------------------------------- crash, callbacks


class CrashAfterStart:
    """The real ledger, except that the write after the start fails once, like a process
    killed between StartRecord and the ledger write."""

    def __init__(self, real: Any) -> None:
        self.real, self.crashed = real, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def update(self, *key: Any) -> Any:
        current = self.real.get(*key[:3])
        if not self.crashed and current is not None and current.state is LedgerState.STARTING:
            self.crashed = True
            raise RuntimeError("process killed")
        return self.real.update(*key)


def test_crash_between_start_and_ledger_write_is_healed_by_the_sweep(stack: Stack) -> None:
    service = app.service()
    service.ledger = CrashAfterStart(app.ledger())
    crashed = webhook.handler(stack.room_event_request(created()), stack.context("webhook"))
    assert crashed["statusCode"] == 500
    service.ledger = app.ledger()
    [task] = running(stack)
    assert entry().state is LedgerState.STARTING
    assert entry().task_id is None
    report = tick(stack, time.time() + 600)
    assert report["sweep_adopted"] == 1
    assert entry().state is LedgerState.RECORDING
    assert entry().task_id == str(task.task_id)
    assert stack.starts() == 1
    send(stack, closed())
    assert running(stack) == []


def test_crash_between_start_and_ledger_write_is_healed_by_redelivery(stack: Stack) -> None:
    service = app.service()
    service.ledger = CrashAfterStart(app.ledger())
    crashed = webhook.handler(stack.room_event_request(created()), stack.context("webhook"))
    assert crashed["statusCode"] == 500
    service.ledger = app.ledger()
    again = send(stack, created())
    assert again["duplicate"] is True
    assert entry().state is LedgerState.RECORDING
    assert entry().task_id == again["task_id"]
    assert stack.starts() == 1


def gme_callback(task_id: str, event_type: int, seq: int) -> dict[str, Any]:
    return {
        "BizID": BIZ_ID,
        "RoomID": ROOM,
        "UserID": "0",
        "TaskID": int(task_id),
        "RecordMode": 1,
        "Timestamp": int(time.time()),
        "EventType": event_type,
        "Detail": {"SeqNo": seq, "FileName": f"{ROOM}/seg{seq}_{task_id}.mp3"},
    }


def test_callbacks_out_of_order_and_repeated_are_noted_once(stack: Stack) -> None:
    task_id = send(stack, created())["task_id"]
    batch = [
        gme_callback(task_id, 3, 0),
        gme_callback(task_id, 1, 0),
        gme_callback(task_id, 3, 0),
        gme_callback(task_id, 2, 0),
    ]
    response, report = worker.process_batch(sqs_event(*batch), stack.context("worker"))
    assert response == {"batchItemFailures": []}
    assert all(r["outcome"]["status"] == "ignored" for r in report)
    e = entry()
    assert e.files == (f"{ROOM}/seg0_{task_id}.mp3",)
    assert [h.what for h in e.history if h.what.startswith("callback")] == [
        "callback: uploaded",
        "callback: started",
        "callback: finished",
    ]
    assert e.state is LedgerState.RECORDING  # callbacks never move the state


def test_lost_callbacks_change_nothing(stack: Stack) -> None:
    send(stack, created())
    send(stack, closed())
    e = entry()
    assert (e.state, e.files) == (LedgerState.STOPPED, ())
    assert [h.what for h in e.history] == ["decision: record", "started", "close", "stop"]


# ------------------------------------------------------------------ renewal


def test_a_25_hour_room_is_renewed_once_without_gap_or_overlap(stack: Stack) -> None:
    t0 = time.time()
    first_id = send(stack, created())["task_id"]
    stack.emulator.advance(23 * HOUR + 50 * 60)  # ticks every 5 minutes; renewal 15 min ahead
    report = tick(stack, t0 + 23 * HOUR + 50 * 60)
    assert report["renewed"] == 1
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


def test_a_task_gme_ended_at_the_cap_is_replaced_on_the_next_tick(stack: Stack) -> None:
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
    from handler.__main__ import main

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
