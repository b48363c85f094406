"""The DynamoDB ledger during an upgrade from the previous table layout.

The previous layout (one table, indexes projecting ALL, no index to find a room's open sessions
or a task's owner) cannot be changed in place: CloudFormation creates or deletes one global
secondary index per stack update. So the new layout is a new table, and the old one is read
through this fallback until what it holds has moved or expired:

* an entry only the old table has is read from it (`get`), and moved on its first change:
  written to the new table, then deleted from the old one, so no entry is ever in both;
* the sweep's queue reads both tables, so every open old entry is checked, and so moved, within
  one sweep cycle of the upgrade; renewals and window ends then find it in the new table;
* a room's open sessions and a task's sessions come from the new table's indexes, and from up
  to `LEGACY_ROOM_LIMIT` of the room's old entries while the new table knows none;
* closed old entries stay where they are until their TTL deletes them (`LEDGER_TTL_SECONDS`).

Each write of a session the new table does not hold also asks the old table once (one more
request per new room); drop `?fallback=` from `LEDGER_STORE` once the old table is empty.
"""

from __future__ import annotations

from typing import Any

from handler.adapters.ledger_dynamodb import DynamoDBLedger
from handler.adapters.ledger_table import (
    item_key,
    newest_with_prefix,
    num,
    open_table,
    pk,
    query_items,
)
from handler.adapters.ledger_wrapper import LedgerWrapper
from handler.domain.ledger import (
    OPEN_STATES,
    Change,
    LedgerEntry,
    SessionRef,
    is_open,
)

#: Old entries read per room when the new table knows no open session (or task) of it.
LEGACY_ROOM_LIMIT = 50


class LegacyTable:
    """The previous table, read-only but for deleting what moved (its own indexes: ALL)."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table = open_table(table_name, client)

    def get(self, biz_id: int, room_id: str, session: str) -> LedgerEntry | None:
        key = item_key(biz_id, room_id, session)
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        return LedgerEntry.model_validate_json(item["doc"]) if item else None

    def delete(self, biz_id: int, room_id: str, session: str) -> None:
        self._table.delete_item(Key=item_key(biz_id, room_id, session))

    def _query(self, limit: int, **kwargs: Any) -> list[LedgerEntry]:
        items = query_items(self._table, limit, **kwargs)
        return [LedgerEntry.model_validate_json(i["doc"]) for i in items]

    def by_room(self, biz_id: int, room_id: str, limit: int) -> list[LedgerEntry]:
        from boto3.dynamodb.conditions import Key

        return self._query(
            limit, KeyConditionExpression=Key("pk").eq(pk(biz_id, room_id)), ConsistentRead=True
        )

    def newest(self, biz_id: int, room_id: str, prefix: str) -> LedgerEntry | None:
        return newest_with_prefix(self._table, pk(biz_id, room_id), prefix)

    def due(self, checked_before: float, limit: int) -> list[LedgerEntry]:
        """Open entries least recently checked first, from the old `state-checked` index (old
        retryable failures are left to expire: the queue gave up on them long ago)."""
        from boto3.dynamodb.conditions import Key

        found = [
            e
            for state in OPEN_STATES
            for e in self._query(
                limit,
                IndexName="state-checked",
                KeyConditionExpression=Key("state").eq(state.value)
                & Key("checked_at").lte(num(checked_before)),
            )
        ]
        return sorted(found, key=lambda e: e.checked_at)[:limit]


class FallbackLedger(LedgerWrapper):
    """The ledger port over the new table, falling back to the old one (see the module).

    The calls not written out here read the new table only: the old table has no task index
    (a task's owners are found through its room: `service.note_callback` falls back to the
    room's open sessions), and old entries reach the new table within one sweep cycle, where
    renewals, window ends, caps and the policy's followers find them."""

    def __init__(self, primary: DynamoDBLedger, legacy: LegacyTable) -> None:
        super().__init__(primary)
        self.primary = primary
        self.legacy = legacy

    def get(self, biz_id: int, room_id: str, session: str) -> LedgerEntry | None:
        found = self.primary.get(biz_id, room_id, session)
        return found if found is not None else self.legacy.get(biz_id, room_id, session)

    def update(self, biz_id: int, room_id: str, session: str, change: Change) -> LedgerEntry | None:
        old: list[LedgerEntry | None] = []  # the old table's entry, read at most once

        def moving(current: LedgerEntry | None) -> LedgerEntry | None:
            if current is not None:
                return change(current)
            if not old:
                old.append(self.legacy.get(biz_id, room_id, session))
            return change(old[0]) if old[0] is not None else change(None)

        stored = self.primary.update(biz_id, room_id, session, moving)
        if old and old[0] is not None:
            if stored is None:
                return old[0]  # the change left it: it stays in the old table
            self.legacy.delete(biz_id, room_id, session)
        return stored

    def by_room(self, biz_id: int, room_id: str, limit: int = 100) -> list[LedgerEntry]:
        new = self.primary.by_room(biz_id, room_id, limit)
        seen = {e.session for e in new}
        old = [e for e in self.legacy.by_room(biz_id, room_id, limit) if e.session not in seen]
        return sorted([*new, *old], key=lambda e: e.created_at)[:limit]

    def newest_session(self, biz_id: int, room_id: str, prefix: str) -> LedgerEntry | None:
        found = self.primary.newest_session(biz_id, room_id, prefix)
        if found is not None:
            return found
        return self.legacy.newest(biz_id, room_id, prefix)

    def open_sessions(self, biz_id: int, room_id: str, limit: int = 20) -> list[SessionRef]:
        found = self.primary.open_sessions(biz_id, room_id, limit)
        if found:
            return found
        old = sorted(
            (e for e in self._old(biz_id, room_id) if is_open(e)),
            key=lambda e: e.created_at,
            reverse=True,
        )
        return [_ref(e) for e in old[:limit]]

    def _old(self, biz_id: int, room_id: str) -> list[LedgerEntry]:
        return self.legacy.by_room(biz_id, room_id, LEGACY_ROOM_LIMIT)

    def due_for_check(self, checked_before: float, limit: int) -> list[LedgerEntry]:
        new = self.primary.due_for_check(checked_before, limit)
        old = self.legacy.due(checked_before, limit)
        return sorted([*old, *new], key=lambda e: e.checked_at)[:limit]

    def create_table(self) -> None:
        self.primary.create_table()


def _ref(e: LedgerEntry) -> SessionRef:
    return SessionRef(
        biz_id=e.biz_id,
        room_id=e.room_id,
        session=e.session,
        created_at=e.created_at,
        closed=e.closed,
    )
