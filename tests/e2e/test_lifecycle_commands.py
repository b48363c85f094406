"""Lifecycle commands through the worker entry point (real SDK, emulator, SQLite stores): each
kind runs once however often it is delivered, racing room events keep one task per session, and
the HTTP webhook never accepts a command on any route."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from handler.bootstrap import app
from handler.domain.commands import Check, EndWindow, Renew, StartWindow
from handler.domain.decision import Decision, RecordPlan
from handler.domain.ledger import LedgerState
from handler.entrypoints import webhook, worker
from tests.conftest import BIZ_ID, Stack, sqs_event
from tests.e2e.test_lifecycle import ROOM, created, entry, running, send
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
    from tests.e2e.test_lifecycle import closed

    send(stack, created())
    recorder = app.recorder()
    stop = recorder.stop_task
    closes = [closed()]

    def stop_then_close(biz_id: int, task_id: str) -> bool:
        stopped = stop(biz_id, task_id)
        if closes:
            send(stack, closes.pop())
        return stopped

    monkeypatch.setattr(recorder, "stop_task", stop_then_close)
    starts = stack.starts()
    assert results(deliver(stack, renew_of(entry(), time.time()))) == ["renew_stale"]
    assert stack.starts() == starts
    assert running(stack) == []
    assert (entry().state, entry().closed) == (LedgerState.STOPPED, True)


def test_a_close_arriving_while_a_renewal_starts_the_next_task_stops_that_task(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.e2e.test_lifecycle import closed

    send(stack, created())
    command = renew_of(entry(), time.time())
    recorder = app.recorder()
    ensure = recorder.ensure
    closes = [closed()]

    def ensure_then_close(start: Any) -> Any:
        outcome = ensure(start)
        if closes and start.session != entry().session:  # the renewal's start, not the close's
            send(stack, closes.pop())
        return outcome

    monkeypatch.setattr(recorder, "ensure", ensure_then_close)
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


def test_a_check_planned_before_the_last_check_is_stale(stack: Stack) -> None:
    send(stack, created())
    e = entry()
    fresh = Check(
        biz_id=BIZ_ID,
        room_id=ROOM,
        session=e.session,
        at=time.time() + 600,
        checked_at=e.checked_at,
    )
    assert results(deliver(stack, fresh)) == ["sweep_ok"]
    describes = len(stack.emulator.calls("DescribeTaskInfo"))
    assert results(deliver(stack, fresh)) == ["sweep_stale"]  # checked since it was planned
    assert len(stack.emulator.calls("DescribeTaskInfo")) == describes


def test_a_check_finding_the_stored_task_gone_starts_the_next_generation_at_once(
    stack: Stack,
) -> None:
    """The start's answer was stored but its ledger write lost (a crash in between) and that task
    has ended since: the stored answer is stale, so the check starts a task under the next
    generation's key at once, instead of recording a task that no longer runs."""
    send(stack, created())
    old = entry()
    app.recorder().stop_task(BIZ_ID, old.task_id)  # the task ends; the ledger never hears of it
    app.ledger().update(
        *old.key, lambda e: e.changed(time.time(), state=LedgerState.STARTING, task_id=None)
    )
    check = Check(
        biz_id=BIZ_ID, room_id=ROOM, session=old.session, at=time.time() + 600,
        checked_at=entry().checked_at,
    )  # fmt: skip
    assert results(deliver(stack, check)) == ["sweep_restarted"]
    after = entry()
    assert (after.state, after.generation) == (LedgerState.RECORDING, 1)
    assert [str(t.task_id) for t in running(stack)] == [after.task_id] != [old.task_id]


def test_a_check_gme_has_no_room_for_comes_back_without_an_error_noted(stack: Stack) -> None:
    """Throttled until the invocation's time ran out: nothing is wrong with the session, so the
    check's message is retried by the queue and the entry is not marked as checked or failed."""
    from handler.tools.local import LocalContext

    send(stack, created())
    before = entry()
    check = Check(
        biz_id=BIZ_ID, room_id=ROOM, session=before.session, at=time.time() + 600,
        checked_at=before.checked_at,
    )  # fmt: skip
    stack.emulator.fail_next("DescribeTaskInfo", "RequestLimitExceeded", count=100)
    _, [report] = worker.process_batch(sqs_event(check.body()), LocalContext("worker", 1500))
    assert not report["ok"]
    assert report["reason"].startswith("retry: "), report["reason"]
    after = entry()
    assert (after.checked_at, after.last_error) == (before.checked_at, before.last_error)


def test_a_check_gme_refuses_is_noted_and_moves_to_the_back_of_the_sweep(stack: Stack) -> None:
    send(stack, created())
    before = entry()
    at = time.time() + 600
    check = Check(
        biz_id=BIZ_ID, room_id=ROOM, session=before.session, at=at, checked_at=before.checked_at
    )
    stack.emulator.fail_next("DescribeTaskInfo", "InternalError")
    assert results(deliver(stack, check)) == ["sweep_errors"]
    after = entry()
    assert after.checked_at == at
    assert after.history[-1].detail.startswith("error: ")
    assert "InternalError" in after.history[-1].detail


def check_of(e: Any, at: float) -> Check:
    return Check(biz_id=e.biz_id, room_id=e.room_id, session=e.session, at=at,
                 checked_at=e.checked_at)  # fmt: skip


def test_a_check_of_a_session_that_just_failed_waits_for_the_queue(stack: Stack) -> None:
    """A start that failed retryably is still being retried by its queue: the sweep leaves it
    for SWEEP_RETRY_AFTER_SECONDS and only moves it to the back of the line."""
    send(stack, created())
    now = time.time()
    app.ledger().update(
        *entry().key,
        lambda e: e.changed(now, state=LedgerState.FAILED, retryable=True, failed_at=now),
    )
    calls = len(stack.emulator.calls())
    assert results(deliver(stack, check_of(entry(), now + 60))) == ["sweep_retry_wait"]
    assert entry().checked_at == now + 60
    assert len(stack.emulator.calls()) == calls


def test_a_check_finishes_an_interrupted_stop(stack: Stack) -> None:
    """The room closed but its StopRecord never got through: the sweep stops the task."""
    send(stack, created())
    now = time.time()
    app.ledger().update(
        *entry().key, lambda e: e.changed(now, state=LedgerState.STOPPING, closed_at=now)
    )
    assert results(deliver(stack, check_of(entry(), now + 60))) == ["sweep_stopped"]
    assert running(stack) == []
    assert entry().state is LedgerState.STOPPED


def test_a_check_adopts_the_task_gme_runs_for_a_session_the_ledger_lost_track_of(
    stack: Stack,
) -> None:
    send(stack, created())
    task_id = entry().task_id
    now = time.time()
    app.ledger().update(
        *entry().key, lambda e: e.changed(now, state=LedgerState.STARTING, task_id=None)
    )
    assert results(deliver(stack, check_of(entry(), now + 60))) == ["sweep_adopted"]
    after = entry()
    assert (after.state, after.task_id, after.checked_at) == (
        LedgerState.RECORDING,
        task_id,
        now + 60,
    )


def test_a_check_of_a_room_busy_with_another_sessions_task_leaves_both(stack: Stack) -> None:
    """GME allows one task per room: while an older session of the room still records, a newer
    one waits; the check says so and starts nothing."""
    from handler.domain.ledger_rules import starting

    send(stack, created())
    now = time.time()
    decision = Decision(record=True, rule="r", reason="test", policy_version="v", plan=RecordPlan())
    app.ledger().update(BIZ_ID, ROOM, "next", starting(BIZ_ID, ROOM, "next", decision, now))
    newer = entry(session="next")
    starts = stack.starts()
    assert results(deliver(stack, check_of(newer, now + 60))) == ["sweep_busy"]
    assert stack.starts() == starts
    after = entry(session="next")
    assert (after.state, after.checked_at) == (LedgerState.STARTING, now + 60)
    assert after.history[-1].detail == "room busy with another session's task"


@pytest.mark.parametrize("stored_answer", ["kept", "expired"])
def test_a_check_restarts_a_vanished_task_and_says_it_vanished(
    stack: Stack, stored_answer: str
) -> None:
    """Restarted under the next generation's key, whether or not the first start's stored
    answer is still there (IDEMPOTENCY_EXPIRY_SECONDS may be shorter than the task lived)."""
    import sqlite3

    send(stack, created())
    old = entry()
    if stored_answer == "expired":
        with sqlite3.connect(stack.store_path) as db:
            db.execute("DELETE FROM idempotency")
    app.recorder().stop_task(BIZ_ID, old.task_id)  # GME ended it; nobody told the ledger
    assert results(deliver(stack, check_of(old, time.time() + 60))) == ["sweep_restarted"]
    after = entry()
    assert (after.state, after.generation) == (LedgerState.RECORDING, 1)
    assert [str(t.task_id) for t in running(stack)] == [after.task_id]
    lost = [h for h in after.history if h.what == "task lost"]
    assert [h.detail for h in lost] == ["sweep: task vanished from GME"]


def test_a_check_racing_a_start_in_flight_is_noted_and_starts_nothing(stack: Stack) -> None:
    """Another delivery holds the session's start (its in-progress lock): the check says so on
    the entry and leaves the start to it."""
    import hashlib
    import sqlite3

    from handler.service_layer.recorder import KEY_PREFIX

    send(stack, created())
    task_id = entry().task_id
    app.recorder().stop_task(BIZ_ID, task_id)
    now = time.time()
    app.ledger().update(
        *entry().key, lambda e: e.changed(now, state=LedgerState.STARTING, task_id=None)
    )
    e = entry()
    digest = hashlib.md5(json.dumps([BIZ_ID, ROOM, e.session]).encode()).hexdigest()  # noqa: S324
    with sqlite3.connect(stack.store_path) as db:  # a start in flight elsewhere
        db.execute(
            "UPDATE idempotency SET status = 'INPROGRESS', expiration = ?,"
            " in_progress_expiration = ? WHERE id = ?",
            (int(now) + 3600, int((now + 600) * 1000), f"{KEY_PREFIX}#{digest}"),
        )
    starts = stack.starts()
    assert results(deliver(stack, check_of(e, now + 60))) == ["sweep_errors"]
    assert stack.starts() == starts
    after = entry()
    assert after.checked_at == now + 60
    assert after.history[-1].detail.startswith("error: ")


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
