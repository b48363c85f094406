"""Lifecycle commands through the worker entry point (real SDK, emulator, SQLite stores): each
kind runs once however often it is delivered, racing room events keep one task per session, and
the HTTP webhook never accepts a command on any route."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from handler.bootstrap import app
from handler.domain.commands import EndWindow, Renew, StartWindow
from handler.domain.decision import Decision, RecordPlan
from handler.domain.ledger import LedgerState
from handler.entrypoints import webhook, worker
from tests.conftest import BIZ_ID, Stack, sqs_event
from tests.e2e.test_lifecycle import created, entry, running, send
from tests.webhook.conftest import gme_request

WINDOW = "window-2026-12-01T10:00:00Z"


def deliver(stack: Stack, *commands: Any) -> list[dict[str, Any]]:
    """One SQS batch of these commands through the worker entry; the per-message report."""
    _, report = worker.process_batch(
        sqs_event(*(c.body() for c in commands)), stack.context("worker")
    )
    return report


def results(report: list[dict[str, Any]]) -> list[str]:
    return [r["outcome"]["result"] if r["ok"] else r["reason"] for r in report]


def start_window(room: str = "scheduled-room") -> StartWindow:
    return StartWindow(
        biz_id=BIZ_ID,
        room_id=room,
        session=WINDOW,
        at=time.time(),
        schedule="nightly",
        ends_at=time.time() + 3600,
        decision=Decision(
            record=True,
            rule="schedule:nightly",
            reason="scheduled window",
            policy_version="sha256:test",
            plan=RecordPlan(),
        ),
    )


def renew_of(e: Any, at: float) -> Renew:
    return Renew(
        biz_id=e.biz_id,
        room_id=e.room_id,
        session=e.session,
        at=at,
        generation=e.generation,
        task_id=e.task_id,
    )


def close_the_room_after(stack: Stack, monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """The room's close arrives once, right after the recorder's `method` first returns: a close
    racing whatever step called it."""
    from tests.e2e.test_lifecycle import closed

    recorder = app.recorder()
    real = getattr(recorder, method)
    closes = [closed()]

    def then_close(*args: Any) -> Any:
        answer = real(*args)
        if closes:
            send(stack, closes.pop())
        return answer

    monkeypatch.setattr(recorder, method, then_close)


def test_a_window_start_delivered_three_times_makes_one_task(stack: Stack) -> None:
    command = start_window()
    first = deliver(stack, command)
    again = deliver(stack, command, command)
    assert results(first) == ["window_started"]
    assert results(again) == ["window_stale", "window_stale"]
    assert stack.starts() == 1
    assert len(running(stack, "scheduled-room")) == 1
    e = app.ledger().get(BIZ_ID, "scheduled-room", WINDOW)
    assert (e.state, e.rule, e.ends_at) == (
        LedgerState.RECORDING,
        "schedule:nightly",
        command.ends_at,
    )


def test_a_window_start_after_its_session_closed_or_failed_for_good_is_stale(stack: Stack) -> None:
    """A late delivery of a window's start: a session that already ended, or whose start GME
    refused for good, is left as it is (no GME call, the stored answer not replayed)."""
    command = start_window()
    deliver(stack, command)
    deliver(
        stack, EndWindow(biz_id=BIZ_ID, room_id=command.room_id, session=WINDOW, at=time.time())
    )
    refused = start_window("refused-room")
    stack.emulator.fail_next("StartRecord", "InvalidParameter.RoomId")
    assert results(deliver(stack, refused)) == ["window_failed"]
    calls = len(stack.emulator.calls())
    assert results(deliver(stack, command, refused)) == ["window_stale", "window_stale"]
    assert len(stack.emulator.calls()) == calls


def test_a_window_start_racing_a_room_event_of_the_room_keeps_one_task(stack: Stack) -> None:
    task_id = send(stack, created(room="scheduled-room"))["task_id"]
    assert results(deliver(stack, start_window())) == ["window_adopted"]  # one task per room
    assert len(stack.emulator.tasks(room_id="scheduled-room")) == 1
    assert [str(t.task_id) for t in running(stack, "scheduled-room")] == [task_id]


def test_a_renewal_delivered_twice_renews_once(stack: Stack) -> None:
    send(stack, created())
    before = entry()
    command = renew_of(before, time.time())
    assert results(deliver(stack, command)) == ["renewed"]
    assert results(deliver(stack, command)) == ["renew_stale"]
    after = entry()
    assert (after.state, after.generation) == (LedgerState.RECORDING, 1)
    [task] = running(stack)
    assert str(task.task_id) == after.task_id != before.task_id
    assert len(stack.emulator.calls("StopRecord")) == 1
    assert stack.starts() == 2


def test_a_renewal_cut_after_its_stop_is_finished_by_the_next_delivery(stack: Stack) -> None:
    send(stack, created())
    command = renew_of(entry(), time.time())
    stack.emulator.fail_next("StartRecord", "InternalError")  # the new task's start fails once
    [failed] = deliver(stack, command)
    assert not failed["ok"]
    assert failed["reason"].startswith("retry: InternalError")
    assert running(stack) == []  # the old task is stopped, the new one not started yet
    between = entry()  # the ledger says why, and that a retry may still succeed
    assert (between.state, between.retryable) == (LedgerState.FAILED, True)
    assert between.last_error.startswith("InternalError")
    assert results(deliver(stack, command)) == ["renewed"]  # SQS delivers it again
    assert (entry().state, entry().generation) == (LedgerState.RECORDING, 1)
    assert len(running(stack)) == 1


def test_a_renewal_whose_new_start_gme_refuses_for_good_leaves_the_session_failed(
    stack: Stack,
) -> None:
    send(stack, created())
    stack.emulator.fail_next("StartRecord", "InvalidParameter.RoomId")
    # Reported as what happened (the old task stopped, no new one), never as "renewed".
    assert results(deliver(stack, renew_of(entry(), time.time()))) == ["renew_failed"]
    after = entry()
    assert (after.state, after.retryable) == (LedgerState.FAILED, False)
    assert after.last_error.startswith("InvalidParameter.RoomId")
    assert running(stack) == []


def test_a_renewal_of_a_session_no_longer_recording_is_stale(stack: Stack) -> None:
    """Its task and generation still match, but the entry moved on since the renewal was
    planned (here: a stop in flight): nothing is stopped or started."""
    send(stack, created())
    command = renew_of(entry(), time.time())
    app.ledger().update(*entry().key, lambda e: e.changed(time.time(), state=LedgerState.STOPPING))
    calls = len(stack.emulator.calls())
    assert results(deliver(stack, command)) == ["renew_stale"]
    assert len(stack.emulator.calls()) == calls


def test_a_step_gme_fails_is_retried_by_the_queue(stack: Stack) -> None:
    """A GME error inside a step fails the command's message with a retry reason, so SQS
    delivers it again; the entry keeps what is still to do."""
    deliver(stack, start_window())
    stack.emulator.fail_next("StopRecord", "InternalError")
    end = EndWindow(biz_id=BIZ_ID, room_id="scheduled-room", session=WINDOW, at=time.time())
    [failed] = deliver(stack, end)
    assert not failed["ok"]
    assert failed["reason"].startswith("retry: InternalError")
    assert results(deliver(stack, end)) == ["windows_ended"]
    assert running(stack, "scheduled-room") == []


def test_a_close_arriving_between_a_renewals_stop_and_start_ends_the_session(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The room closes while the renewal is between its two GME calls: the session ends there,
    and no new task is started for a closed room."""
    send(stack, created())
    close_the_room_after(stack, monkeypatch, "stop_task")
    starts = stack.starts()
    assert results(deliver(stack, renew_of(entry(), time.time()))) == ["renew_stale"]
    assert stack.starts() == starts
    assert running(stack) == []
    assert (entry().state, entry().closed) == (LedgerState.STOPPED, True)


def test_a_close_arriving_while_a_renewal_starts_the_next_task_stops_that_task(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    send(stack, created())
    command = renew_of(entry(), time.time())
    close_the_room_after(stack, monkeypatch, "ensure")  # the renewal's start: its only ensure
    deliver(stack, command)
    assert running(stack) == []
    assert (entry().state, entry().closed) == (LedgerState.STOPPED, True)


def test_a_renewal_of_a_closed_session_does_nothing(stack: Stack) -> None:
    from tests.e2e.test_lifecycle import closed

    send(stack, created())
    command = renew_of(entry(), time.time())
    send(stack, closed())
    calls = len(stack.emulator.calls())
    assert results(deliver(stack, command)) == ["renew_stale"]
    assert len(stack.emulator.calls()) == calls
    assert running(stack) == []


def test_commands_for_a_session_the_ledger_never_saw_are_stale(stack: Stack) -> None:
    """A renewal or a window's end that outlived its session's entry (a purged ledger, a
    command from another deployment) changes nothing and calls GME for nothing."""
    nobody = {"biz_id": BIZ_ID, "room_id": "no-such-room", "session": "gone", "at": time.time()}
    renew = Renew(**nobody, generation=0, task_id="1234")
    end = EndWindow(**nobody)
    assert results(deliver(stack, renew, end)) == ["renew_stale", "window_end_stale"]
    assert stack.emulator.calls() == []


def test_a_renewal_of_a_task_the_session_no_longer_runs_is_stale(stack: Stack) -> None:
    """Same generation, another task (the command was planned for a task since replaced): the
    running task is left alone, nothing is stopped or started."""
    send(stack, created())
    before = entry()
    calls = len(stack.emulator.calls())
    stale = renew_of(before, time.time()).model_copy(update={"task_id": "1234"})
    assert results(deliver(stack, stale)) == ["renew_stale"]
    assert len(stack.emulator.calls()) == calls
    assert (entry().generation, entry().task_id) == (0, before.task_id)


def test_a_renewal_after_the_stored_answer_expired_still_moves_a_generation_on(
    stack: Stack,
) -> None:
    """With IDEMPOTENCY_EXPIRY_SECONDS shorter than a day, the session's stored answer is gone
    when its renewal comes: the new task is still started under the next generation's key."""
    import sqlite3

    send(stack, created())
    with sqlite3.connect(stack.store_path) as db:  # what expiry and purging leave
        db.execute("DELETE FROM idempotency")
    assert results(deliver(stack, renew_of(entry(), time.time()))) == ["renewed"]
    after = entry()
    assert (after.state, after.generation) == (LedgerState.RECORDING, 1)
    assert [str(t.task_id) for t in running(stack)] == [after.task_id]


def test_a_window_end_stops_its_task_once(stack: Stack) -> None:
    deliver(stack, start_window())
    end = EndWindow(biz_id=BIZ_ID, room_id="scheduled-room", session=WINDOW, at=time.time())
    assert results(deliver(stack, end)) == ["windows_ended"]
    assert results(deliver(stack, end)) == ["window_end_stale"]
    assert running(stack, "scheduled-room") == []
    assert len(stack.emulator.calls("StopRecord")) == 1
    assert app.ledger().get(BIZ_ID, "scheduled-room", WINDOW).state is LedgerState.STOPPED


# ------------------------------------------------------------- never by HTTP


@pytest.mark.parametrize("route", ["room-events", "trtc", "gme-callbacks"])
def test_the_webhook_never_accepts_a_command(stack: Stack, route: str) -> None:
    send(stack, created())
    before = entry()
    calls = len(stack.emulator.calls())
    command = json.loads(renew_of(before, time.time()).body())
    request = {
        "room-events": lambda: stack.room_event_request(command),
        "trtc": lambda: stack.trtc_request(command),
        "gme-callbacks": lambda: gme_request(command),
    }[route]()
    result = webhook.handler(request, stack.context("webhook"))
    assert 400 <= result["statusCode"] < 500, result
    body = json.loads(result["body"])
    assert body["code"] in {"invalid_field", "command_not_accepted"}, body
    assert len(stack.emulator.calls()) == calls  # nothing was stopped or started
    assert entry() == before
