"""The deployed shape of the lifecycle: the scheduler plans and enqueues (a real SQS API on
moto_server, SendMessageBatch), makes no GME call itself, and the worker entry runs every unit
it finds on the queue. Planning stops at the tick's deadline and the next tick goes on from
there; nothing is planned twice that was not run yet (windows), and nothing due is left behind
by a batch limit (checks beyond the old cap of 50)."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handler.bootstrap import app
from handler.domain.ledger import LedgerState
from handler.entrypoints import worker
from tests.conftest import Stack
from tests.e2e.test_lifecycle import tick
from tests.e2e.test_lifecycle_scale import write_windows
from tests.webhook import conftest as webhook_fixtures
from tests.webhook.conftest import Queue

#: The webhook suites' fixture: the stack in queue mode, on a fresh queue of moto_server.
queue = webhook_fixtures.queue


def accepted_starts(stack: Stack) -> int:
    """StartRecords GME accepted: a throttled one (the backoff repeats it) made no task."""
    return sum(c.error_code is None for c in stack.emulator.calls("StartRecord"))


def drain(stack: Stack, q: Queue) -> list[dict[str, Any]]:
    """Run everything on the queue through the worker entry, ten messages a batch, as the
    event source mapping would; returns the per-message reports."""
    messages = q.receive_all()
    reports: list[dict[str, Any]] = []
    for i in range(0, len(messages), 10):
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {
                    k: {"stringValue": v["StringValue"], "dataType": v["DataType"]}
                    for k, v in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:records",
                "awsRegion": "eu-west-1",
            }
            for m in messages[i : i + 10]
        ]
        _, report = worker.process_batch({"Records": records}, stack.context("worker"))
        reports.extend(report)
    return reports


def open_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    begun = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    path = tmp_path / "schedules.yaml"
    write_windows(path, count, begun)
    monkeypatch.setenv("RECORDING_SCHEDULES", str(path))
    app.reset()


def test_the_tick_enqueues_and_the_workers_record(
    stack: Stack, queue: Queue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_windows(tmp_path, monkeypatch, 60)
    now = time.time()
    first = tick(stack, now)
    assert first["planned_window_start"] == 60, first
    assert stack.emulator.calls() == []  # the scheduler plans; it calls no GME API
    assert tick(stack, now + 30).get("planned_window_start", 0) == 0  # claimed: not again
    reports = drain(stack, queue)
    assert [r["outcome"]["result"] for r in reports] == ["window_started"] * 60
    assert len(stack.emulator.tasks(running_only=True)) == 60
    # Three minutes on, every session is due for its check: all 60 in one tick (old cap: 50).
    later = tick(stack, now + 180)
    assert later["planned_session_check"] == 60, later
    checks = drain(stack, queue)
    assert {r["outcome"]["result"] for r in checks} == {"sweep_ok"}
    assert len(checks) == 60
    assert accepted_starts(stack) == 60  # never a second task
    assert len(stack.emulator.tasks()) == 60


class SlowClock:
    """Every reading is a second after the previous one: a tick whose every step is slow."""

    def __init__(self) -> None:
        self._ticks = itertools.count()

    def __call__(self) -> float:
        return float(next(self._ticks))


def test_planning_stops_at_the_deadline_and_the_next_tick_goes_on(
    stack: Stack, queue: Queue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICK_DEADLINE_SECONDS", "5")
    open_windows(tmp_path, monkeypatch, 12)
    planned: list[int] = []
    now = time.time()
    for n in range(6):
        app.lifecycle().clock = SlowClock()
        report = tick(stack, now + n)
        planned.append(report.get("planned_window_start", 0))
        if report.get("deadline_reached"):
            assert planned[-1] < 12
    assert sum(planned) == 12, planned  # each window planned exactly once over the ticks
    assert planned[0] < 12  # the first tick was cut by its deadline
    drain(stack, queue)
    assert len(stack.emulator.tasks(running_only=True)) == 12
    assert accepted_starts(stack) == 12


def test_checks_cut_by_the_deadline_continue_where_they_stopped(
    stack: Stack, queue: Queue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICK_DEADLINE_SECONDS", "5")
    open_windows(tmp_path, monkeypatch, 12)
    now = time.time()
    tick(stack, now)
    drain(stack, queue)
    checked: list[int] = []
    for n in range(6):  # every tick at least SWEEP_MIN_AGE_SECONDS after the windows started
        app.lifecycle().clock = SlowClock()
        checked.append(tick(stack, now + 180 + n).get("planned_session_check", 0))
        drain(stack, queue)
    assert checked[0] < 12
    assert sum(checked) == 12, checked  # each session checked once, none twice, none left
    entries = app.ledger().by_state(LedgerState.RECORDING)
    assert len(entries) == 12
    assert all(e.checked_at > now + 170 for e in entries)  # tick times are whole seconds


def test_a_refused_send_ends_the_tick_and_the_sweep_heals_its_claims(
    stack: Stack, queue: Queue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.servers import free_port

    open_windows(tmp_path, monkeypatch, 25)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{free_port()}")  # nobody there
    app.reset()
    now = time.time()
    failed = tick(stack, now)
    assert failed["enqueue_failed"] == 10  # the first batch of ten; the tick stopped there
    assert failed["planned_window_start"] == 10
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", queue.client.meta.endpoint_url)
    app.reset()
    again = tick(stack, now + 30)
    assert again["planned_window_start"] == 15  # the ten claimed are not planned again...
    drain(stack, queue)
    healed = tick(stack, now + 180)  # ...the sweep finds their `starting` entries
    assert healed["planned_session_check"] >= 10
    results = [r["outcome"]["result"] for r in drain(stack, queue)]
    assert results.count("sweep_restarted") == 10
    assert len(stack.emulator.tasks(running_only=True)) == 25
    assert accepted_starts(stack) == 25
