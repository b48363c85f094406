"""Upgrading the DynamoDB ledger: entries of the previous table layout keep working through the
fallback (read, found by room and by the sweep) and move to the new table on their first
change. Both tables on a real moto_server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from handler.adapters.ledger_dynamodb import DynamoDBLedger
from handler.adapters.ledger_fallback import FallbackLedger, LegacyTable
from handler.adapters.ledgers import LedgerUrlError, build_ledger
from handler.domain.ledger import LedgerEntry, LedgerState, new_entry
from handler.domain.ledger_rules import checked
from tests.servers import Moto, moto_env

BIZ = 1400000000
#: What an item of the previous layout held (no `due`, `open_room` or `updated_at` index keys).
OLD_ATTRIBUTES = {
    "pk", "sk", "state", "checked_at", "created_at", "updated_at", "retryable", "version", "doc",
    "open_rule", "task_id", "task_started_at", "ends_at", "closed_at", "expiration",
}  # fmt: skip


def old_table(moto: Moto) -> Any:
    """The previous layout, as serverless.yml declared it before the upgrade."""
    name = f"old-{uuid.uuid4().hex[:8]}"
    indexes = {
        "state-checked": ("state", "checked_at", "ALL"),
        "state-started": ("state", "task_started_at", "ALL"),
        "state-ends": ("state", "ends_at", "ALL"),
        "open-rule": ("open_rule", None, "KEYS_ONLY"),
    }
    moto.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": t}
            for a, t in (
                ("pk", "S"),
                ("sk", "S"),
                ("state", "S"),
                ("open_rule", "S"),
                ("checked_at", "N"),
                ("task_started_at", "N"),
                ("ends_at", "N"),
            )
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": n,
                "KeySchema": [{"AttributeName": h, "KeyType": "HASH"}]
                + ([{"AttributeName": r, "KeyType": "RANGE"}] if r else []),
                "Projection": {"ProjectionType": p},
            }
            for n, (h, r, p) in indexes.items()
        ],
    )
    return moto.resource("dynamodb").Table(name)


def put_old(table: Any, shape: DynamoDBLedger, entry: LedgerEntry) -> None:
    item = shape._item(entry, 3)
    table.put_item(Item={k: v for k, v in item.items() if k in OLD_ATTRIBUTES})


@pytest.fixture
def upgraded(moto: Moto) -> tuple[FallbackLedger, Any]:
    resource = moto.resource("dynamodb")
    new = DynamoDBLedger(f"new-{uuid.uuid4().hex[:8]}", client=resource)
    new.create_table()
    old = old_table(moto)
    put_old(
        old,
        new,
        new_entry(BIZ, "r1", "s", LedgerState.RECORDING, 10.0, task_id="77", checked_at=10.0),
    )
    tombstone = new_entry(
        BIZ, "r2", "trtc-close-1700000009000", LedgerState.STOPPED, 20.0, closed_at=20.0
    )
    put_old(old, new, tombstone)
    return FallbackLedger(new, LegacyTable(old.name, client=resource)), old


def test_old_entries_are_read_found_and_moved_on_their_first_change(
    upgraded: tuple[FallbackLedger, Any],
) -> None:
    ledger, old = upgraded
    entry = ledger.get(BIZ, "r1", "s")
    assert entry is not None
    assert entry.task_id == "77"
    assert [r.session for r in ledger.open_sessions(BIZ, "r1")] == ["s"]
    tombstone = ledger.newest_session(BIZ, "r2", "trtc-close-")
    assert tombstone is not None
    assert tombstone.closed_at == 20.0
    assert [e.key for e in ledger.due_for_check(1000.0, 10)] == [(BIZ, "r1", "s")]
    moved = ledger.update(BIZ, "r1", "s", checked(500.0))
    assert moved is not None
    assert moved.checked_at == 500.0
    assert "Item" not in old.get_item(Key={"pk": f"{BIZ}#r1", "sk": "s"})  # never in both
    assert ledger.primary.get(BIZ, "r1", "s") == moved
    assert [r.session for r in ledger.task_sessions(BIZ, "77")] == ["s"]  # the new indexes
    assert [e.key for e in ledger.due_for_check(1000.0, 10)] == [(BIZ, "r1", "s")]  # once


def test_the_store_url_names_the_fallback(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> None:
    moto_env(monkeypatch, moto.url, "dynamodb")
    built = build_ledger("dynamodb://new-table?fallback=old-table", 3600)
    assert isinstance(built, FallbackLedger)
    for bad in (
        "dynamodb://tab?fallback=",
        "dynamodb://tab?other=x",
        "dynamodb://tab?fallback=a&fallback=b",
    ):
        with pytest.raises(LedgerUrlError, match="fallback"):
            build_ledger(bad, 3600)
