"""The outbox port against both adapters, in the ledger's own store: the SQLite ledger file and
the DynamoDB ledger table on moto_server. Outbox items never show in the ledger's queries."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from handler.adapters.ledger_sqlite import SQLiteLedger
from handler.adapters.outbox_dynamodb import DynamoDBOutbox
from handler.adapters.outbox_sqlite import SQLiteOutbox
from handler.domain.decision import Decision, RecordPlan
from handler.domain.ledger import Ledger, LedgerState
from handler.domain.ledger_rules import starting
from handler.domain.outbox import Outbox, OutboxItem

DECISION = Decision(
    record=True, rule="r", reason="test", policy_version="v1", plan=RecordPlan(record_mode=2)
)


@pytest.fixture(params=["sqlite", "dynamodb"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Ledger, Outbox]:
    if request.param == "sqlite":
        return SQLiteLedger(tmp_path / "ledger.db"), SQLiteOutbox(tmp_path / "ledger.db")
    import boto3

    from handler.adapters.ledger_dynamodb import DynamoDBLedger

    resource: Any = boto3.resource(
        "dynamodb",
        endpoint_url=request.getfixturevalue("moto_url"),
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"ledger-{os.getpid()}-{time.monotonic_ns()}"
    ledger = DynamoDBLedger(name, client=resource)
    ledger.create_table()
    return ledger, DynamoDBOutbox(name, client=resource)


def item(event_id: str, sink: str = "webhook", at: float = 100.0) -> OutboxItem:
    body = f'{{"id":"{event_id}","type":"recording.started","task_id":"18446744073709551557"}}'
    return OutboxItem(
        event_id=event_id, sink=sink, body=body, created_at=at, next_at=at, expires_at=at + 60
    )


def test_due_oldest_first_replaced_in_place_and_deleted(stores: tuple[Ledger, Outbox]) -> None:
    _, outbox = stores
    outbox.put(item("msg_b", at=200.0))
    outbox.put(item("msg_a", at=100.0))
    outbox.put(item("msg_a", sink="eventbridge", at=100.0))  # each sink on its own
    assert [(i.event_id, i.sink) for i in outbox.due(300.0, 10)] == [
        ("msg_a", "eventbridge"),
        ("msg_a", "webhook"),
        ("msg_b", "webhook"),
    ]
    assert [i.event_id for i in outbox.due(150.0, 10)] == ["msg_a", "msg_a"]
    later = item("msg_a", at=100.0).failed_again(300.0, "HTTP 503")
    outbox.put(later)  # a failed attempt replaces the item: one per (event, sink)
    assert later.next_at == 300.0 + 300
    due = outbox.due(300.0, 10)
    assert [(i.event_id, i.sink) for i in due] == [("msg_a", "eventbridge"), ("msg_b", "webhook")]
    [kept] = [i for i in outbox.due(10_000.0, 10) if i.sink == "webhook" and i.event_id == "msg_a"]
    assert (kept.attempts, kept.last_error) == (2, "HTTP 503")
    assert '"18446744073709551557"' in kept.body  # bytes kept exactly
    outbox.delete("msg_a", "webhook")
    outbox.delete("msg_a", "eventbridge")
    assert [i.event_id for i in outbox.due(10_000.0, 10)] == ["msg_b"]
    assert len(outbox.due(10_000.0, 0)) == 0


def test_outbox_items_stay_out_of_the_ledgers_queries(stores: tuple[Ledger, Outbox]) -> None:
    ledger, outbox = stores
    ledger.update(1, "room", "s", starting(1, "room", "s", DECISION, 100.0))
    outbox.put(item("msg_x"))
    assert [e.session for e in ledger.by_state(None)] == ["s"]
    assert [e.session for e in ledger.by_state(LedgerState.STARTING)] == ["s"]
    assert [e.session for e in ledger.due_for_check(1_000.0, 10)] == ["s"]
    assert ledger.count_open("r") == 1
    assert [i.event_id for i in outbox.due(1_000.0, 10)] == ["msg_x"]
