"""Recording lifecycle end to end: real SDK over HTTP to the emulator, real SQLite idempotency
and ledger files, the scheduler entry point with a moved `now` and the emulator's moved task
clock. The emulator's task list is the ground truth for what GME runs."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

from handler.bootstrap import app
from handler.domain.ledger import LedgerState
from handler.entrypoints import scheduler, webhook, worker
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
    # The batch's records run side by side, so the three are noted in any order, each once.
    assert sorted(h.what for h in e.history if h.what.startswith("callback")) == [
        "callback: finished",
        "callback: started",
        "callback: uploaded",
    ]
    assert e.state is LedgerState.RECORDING  # callbacks never move the state


def test_lost_callbacks_change_nothing(stack: Stack) -> None:
    send(stack, created())
    send(stack, closed())
    e = entry()
    assert (e.state, e.files) == (LedgerState.STOPPED, ())
    assert [h.what for h in e.history] == ["decision: record", "started", "close", "stop"]
