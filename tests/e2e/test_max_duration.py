"""A lost close does not record forever: the scheduler ends a session at its rule's
`max_duration` (default 6 h), through the same ending step as a schedule window's end. Real SDK
against the emulator, real SQLite ledger, the scheduler entry point with a moved `now`."""

from __future__ import annotations

import time
from typing import Any

import pytest

from handler.bootstrap import app
from handler.domain.ledger import LedgerState
from tests.conftest import BIZ_ID, Stack
from tests.e2e.test_lifecycle import HOUR, ROOM, created, entry, running, send, tick


@pytest.fixture
def counted(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """Quota slots counted from the ledger's open sessions, as deployed."""
    monkeypatch.setenv("ACTIVE_RECORDINGS", "ledger:")
    app.reset()
    return stack


def test_a_session_whose_close_is_lost_ends_at_the_default_6_hours(
    counted: Stack, capsys: Any
) -> None:
    from handler.tools.cli import main

    t0 = time.time()
    task_id = send(counted, created())["task_id"]  # ...and its room.closed never arrives
    assert app.ledger().count_open("ranked-mixed") == 1
    assert tick(counted, t0 + 5 * HOUR).get("max_duration_ended", 0) == 0
    assert len(running(counted)) == 1
    assert main(["room", str(BIZ_ID), ROOM]) == 0
    assert "ends " in capsys.readouterr().out  # the deadline, shown while it records

    report = tick(counted, t0 + 6 * HOUR + 60)
    assert report["max_duration_ended"] == 1
    assert report.get("windows_ended", 0) == 0  # not taken for a schedule window
    assert running(counted) == []
    [stop] = counted.emulator.calls("StopRecord")
    assert str(stop.task_id) == task_id
    e = entry()
    assert (e.state, e.closed) == (LedgerState.STOPPED, True)
    [close] = [h.detail for h in e.history if h.what == "close"]
    assert close.startswith("max_duration: 6h")
    assert app.ledger().count_open("ranked-mixed") == 0  # its quota slot is free again
    assert main(["room", str(BIZ_ID), ROOM]) == 0
    assert "close: max_duration: 6h since the session began" in capsys.readouterr().out
    assert tick(counted, t0 + 7 * HOUR).get("sweep_restarted", 0) == 0
    assert counted.starts() == 1  # never started again


def test_none_records_until_the_room_closes(stack: Stack, policy_limits: Any) -> None:
    policy_limits(**{"ranked-mixed": "none"})
    t0 = time.time()
    send(stack, created())
    assert entry().ends_at is None
    report = tick(stack, t0 + 20 * HOUR)
    assert report.get("max_duration_ended", 0) == 0
    assert len(running(stack)) == 1


def test_a_rules_own_max_duration_is_kept(stack: Stack, policy_limits: Any) -> None:
    policy_limits(**{"ranked-mixed": "90m"})
    t0 = time.time()
    send(stack, created())
    assert tick(stack, t0 + 80 * 60).get("max_duration_ended", 0) == 0
    assert tick(stack, t0 + 95 * 60)["max_duration_ended"] == 1
    assert running(stack) == []


def test_renewal_never_renews_past_max_duration(stack: Stack, policy_limits: Any) -> None:
    """24 h is GME's own cap: the task is not renewed 15 minutes before it (the renewal would
    only outlive the limit); the limit ends the session instead."""
    policy_limits(**{"ranked-mixed": "24h"})
    t0 = time.time()
    send(stack, created())
    stack.emulator.advance(23 * HOUR + 50 * 60)
    assert tick(stack, t0 + 23 * HOUR + 50 * 60).get("renewed", 0) == 0
    stack.emulator.advance(15 * 60)
    report = tick(stack, t0 + 24 * HOUR + 5 * 60)
    assert report["max_duration_ended"] == 1
    assert report.get("sweep_restarted", 0) == report.get("renewed", 0) == 0
    assert stack.starts() == 1
    assert entry().state is LedgerState.STOPPED


def test_a_limit_past_the_cap_renews_once_then_ends(stack: Stack, policy_limits: Any) -> None:
    policy_limits(**{"ranked-mixed": "30h"})
    t0 = time.time()
    send(stack, created())
    stack.emulator.advance(23 * HOUR + 50 * 60)
    assert tick(stack, t0 + 23 * HOUR + 50 * 60)["renewed"] == 1
    stack.emulator.advance(6 * HOUR + 20 * 60)
    assert tick(stack, t0 + 30 * HOUR + 10 * 60)["max_duration_ended"] == 1
    assert running(stack) == []
    assert stack.starts() == 2


def test_a_failed_start_past_its_deadline_is_ended_by_the_next_tick(stack: Stack) -> None:
    from handler.entrypoints import webhook

    stack.emulator.fail_next("StartRecord", "InternalError", count=1)
    result = webhook.handler(stack.room_event_request(created()), stack.context("webhook"))
    assert result["statusCode"] == 503  # and suppose nobody retried it
    t0 = time.time()
    first = tick(stack, t0 + 6 * HOUR + 60)  # the sweep starts it once more...
    assert first.get("sweep_restarted", 0) == 1
    second = tick(stack, t0 + 6 * HOUR + 360)  # ...and the next tick's ending step stops it
    assert second["max_duration_ended"] == 1
    assert running(stack) == []
    assert entry().state is LedgerState.STOPPED
