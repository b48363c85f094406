"""The sweep's checks as the worker runs them (`session.check` commands): each check finds what
GME runs for a session and heals the ledger toward it — adopting, restarting, finishing a stop —
or leaves it, saying why, when the session changed, is being started elsewhere or GME is busy.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from handler.bootstrap import app
from handler.domain.commands import Check
from handler.domain.decision import Decision, RecordPlan
from handler.domain.ledger import LedgerState
from handler.entrypoints import worker
from tests.conftest import BIZ_ID, Stack, sqs_event
from tests.e2e.test_lifecycle import ROOM, created, entry, running, send
from tests.e2e.test_lifecycle_commands import (
    WINDOW,
    close_the_room_after,
    deliver,
    results,
    start_window,
)


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


def test_a_close_arriving_while_a_check_finds_the_task_gone_starts_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task vanished and, while the check looks, the room closes: the session ends there and
    no task is started for a closed room."""
    send(stack, created())
    old = entry()
    app.recorder().stop_task(BIZ_ID, old.task_id)  # GME ended it; nobody told the ledger
    close_the_room_after(stack, monkeypatch, "running_task")
    starts = stack.starts()
    assert results(deliver(stack, check_of(old, time.time() + 60))) == ["sweep_closed"]
    assert stack.starts() == starts
    assert running(stack) == []
    assert (entry().state, entry().closed) == (LedgerState.STOPPED, True)


def test_a_check_of_a_scheduled_room_empty_while_its_window_is_open_waits_and_says_so(
    stack: Stack,
) -> None:
    """GME knows no such room (nobody is in it yet, or any more), but the window is still open
    and the room may fill up before its end: the check leaves the session open, notes why, and
    a later check finds the task again."""
    room = "scheduled-room"
    assert results(deliver(stack, start_window(room))) == ["window_started"]
    window = entry(session=WINDOW, room=room)
    stack.emulator.missing_rooms.add((BIZ_ID, room))  # the room is empty
    at = time.time() + 60
    assert results(deliver(stack, check_of(window, at))) == ["sweep_waiting"]
    after = entry(session=WINDOW, room=room)
    assert (after.state, after.closed, after.task_id) == (
        LedgerState.RECORDING,
        False,
        window.task_id,
    )
    assert after.checked_at == at  # to the back of the sweep's queue
    assert after.history[-1].detail == "room empty; window still open"
    assert stack.emulator.calls("StopRecord") == []
    assert [str(t.task_id) for t in running(stack, room)] == [window.task_id]
    stack.emulator.missing_rooms.discard((BIZ_ID, room))  # the room fills up
    assert results(deliver(stack, check_of(after, at + 60))) == ["sweep_ok"]
