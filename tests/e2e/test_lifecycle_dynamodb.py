"""The lifecycle with the deployed ledger backend: `LEDGER_STORE=dynamodb://TABLE` on a real
moto_server, through the entry points, plus concurrent duplicate deliveries on SQLite."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from handler.bootstrap import app
from handler.domain.ledger import LedgerState
from handler.entrypoints import scheduler, webhook
from tests.conftest import BIZ_ID, Stack, load_event
from tests.servers import moto_env


def _send(stack: Stack, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    result = webhook.handler(stack.room_event_request(doc), stack.context("webhook"))
    return result["statusCode"], json.loads(result["body"])


def test_create_close_and_tick_on_a_dynamodb_ledger(
    stack: Stack,
    moto_url: str,
    monkeypatch: pytest.MonkeyPatch,
    policy_limits: Any,
) -> None:
    policy_limits(**{"ranked-mixed": "none"})  # lives past GME's 24 h cap
    table = f"ledger-{uuid.uuid4().hex[:8]}"
    moto_env(monkeypatch, moto_url, "dynamodb")
    monkeypatch.setenv("LEDGER_STORE", f"dynamodb://{table}")
    app.reset()
    from handler.adapters.ledger_dynamodb import DynamoDBLedger

    ledger = app.ledger()
    stored = getattr(ledger, "inner", ledger)  # the metrics watcher wraps the adapter
    assert isinstance(stored, DynamoDBLedger)
    stored.create_table()
    doc = load_event("room-created.json")
    status, started = _send(stack, doc)
    assert (status, started["status"]) == (200, "started")
    entry = ledger.get(BIZ_ID, doc["room_id"], doc["session"])
    assert entry is not None
    assert entry.task_id == started["task_id"]
    stack.emulator.advance(24 * 3600 + 60)  # GME ended it; the next tick replaces it
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 24 * 3600 + 120))
    report = scheduler.handler({"time": iso}, stack.context("scheduler"))
    assert report["renewed"] + report.get("sweep_restarted", 0) == 1
    assert len(stack.emulator.tasks(running_only=True)) == 1
    closed = {**load_event("room-closed.json"), "session": doc["session"]}
    assert _send(stack, closed)[1]["status"] == "stopped"
    assert stack.emulator.tasks(running_only=True) == []
    entry = ledger.get(BIZ_ID, doc["room_id"], doc["session"])
    assert entry is not None
    assert (entry.state, entry.generation) == (LedgerState.STOPPED, 1)


def test_concurrent_duplicate_deliveries_leave_one_task_and_one_entry(stack: Stack) -> None:
    doc = load_event("room-created.json")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _send(stack, doc), range(8)))
    statuses = sorted(status for status, _ in answers)
    assert set(statuses) <= {200, 503}  # 503: a concurrent delivery held the lock; retried
    assert len(stack.emulator.tasks()) == 1
    [entry] = app.ledger().by_room(BIZ_ID, doc["room_id"])
    assert entry.state is LedgerState.RECORDING
    assert entry.task_id == str(stack.emulator.tasks()[0].task_id)
