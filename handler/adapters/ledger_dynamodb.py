"""Recording ledger in a DynamoDB table (deployed).

Item: `pk` = "{biz_id}#{room_id}", `sk` = session, the whole entry as JSON in `doc`, a `version`
counter, `expiration` (the table's TTL attribute; absent on open entries) and the attributes the
indexes are keyed on. Each index is sparse where it can be (an item carries the attribute only
while the index should list it) and projects keys only (`task` adds two small numbers): a query
finds keys, and the entries are then read by key, consistently, in one BatchGetItem.

`update` is optimistic: it applies the change to the entry it last saw (remembered per key, or
"absent" for a key it never saw when the change makes a first decision, as a new room's first
write does) and puts on condition that `version` is unchanged. A failed
condition returns the stored item (`ReturnValuesOnConditionCheckFailure`), and the change is
applied again to that, so concurrent writers never lose each other's change, and a new room's
`starting` write and its outcome write cost one request each.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Any

from handler.adapters.ledger_sqlite import expiry
from handler.adapters.ledger_table import (
    INDEXES,
    create_table,
    item_key,
    newest_with_prefix,
    num,
    open_table,
    pk,
    query_items,
)
from handler.domain.ledger import (
    COUNTED_STATES,
    OPEN_STATES,
    Change,
    LedgerEntry,
    LedgerState,
    SessionRef,
    is_open,
    sweepable,
)

MAX_CONFLICT_RETRIES = 20
#: Entries remembered for the next optimistic write (per process; a stale one costs a retry).
#: At most 256 x 64 KB (the entry budget) of memory; a room's writes follow each other closely.
REMEMBERED = 256


class LedgerConflict(RuntimeError):
    """Too many concurrent writers on one entry; the caller's delivery is retried."""


class DynamoDBLedger:
    def __init__(self, table_name: str, ttl_seconds: int = 30 * 86400, client: Any = None) -> None:
        self._table = open_table(table_name, client)
        self.ttl_seconds = ttl_seconds
        self._seen: OrderedDict[tuple[str, str], tuple[LedgerEntry | None, int]] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------- entries

    def get(self, biz_id: int, room_id: str, session: str) -> LedgerEntry | None:
        key = item_key(biz_id, room_id, session)
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        entry, version = _parse(item)
        self._remember(key, entry, version)
        return entry

    def update(self, biz_id: int, room_id: str, session: str, change: Change) -> LedgerEntry | None:
        from botocore.exceptions import ClientError

        key = item_key(biz_id, room_id, session)
        with self._lock:
            remembered = self._seen.get((key["pk"], key["sk"]))
        current, version = remembered if remembered is not None else (None, 0)
        confirmed = False  # whether `current` is what the table held a moment ago
        for _ in range(MAX_CONFLICT_RETRIES):
            updated = change(current)
            if remembered is None and not confirmed and not _creates(updated):
                updated = None  # most likely stored already: read it rather than guess
            if updated is None:
                if confirmed:
                    return current
                current, version = _parse(
                    self._table.get_item(Key=key, ConsistentRead=True).get("Item")
                )
                self._remember(key, current, version)
                confirmed = True
                continue
            condition: dict[str, Any] = (
                {
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": version},
                }
                if version
                else {"ConditionExpression": "attribute_not_exists(pk)"}
            )
            try:
                self._table.put_item(
                    Item=self._item(updated, version + 1),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **condition,
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                current, version = _parse_raw(exc.response.get("Item"))
                self._remember(key, current, version)
                confirmed = True
                continue
            self._remember(key, updated, version + 1)
            return updated
        raise LedgerConflict(f"ledger entry {biz_id}/{room_id}/{session}: too many conflicts")

    def _remember(self, key: dict[str, str], entry: LedgerEntry | None, version: int) -> None:
        with self._lock:
            self._seen[(key["pk"], key["sk"])] = (entry, version)
            self._seen.move_to_end((key["pk"], key["sk"]))
            while len(self._seen) > REMEMBERED:
                self._seen.popitem(last=False)

    def _item(self, e: LedgerEntry, version: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            **item_key(e.biz_id, e.room_id, e.session),
            "state": e.state.value,
            "checked_at": num(e.checked_at),
            "created_at": num(e.created_at),
            "updated_at": num(e.updated_at),
            "retryable": e.retryable,
            "version": version,
            "doc": e.model_dump_json(),
        }
        optional = {
            "due": e.state.value if sweepable(e) else None,
            # Only while counted: the sparse `open-rule` index then holds exactly the sessions
            # a cap counts, and a count reads the rule's own, never the whole fleet's.
            "open_rule": e.rule if e.state in COUNTED_STATES and e.rule else None,
            "open_room": pk(e.biz_id, e.room_id) if is_open(e) else None,
            "task_id": e.task_id,
            "task_started_at": num(e.task_started_at),
            "ends_at": num(e.ends_at) if e.closed_at is None else None,
            "closed_at": num(e.closed_at),
            "expiration": expiry(e, self.ttl_seconds),
        }
        item.update({k: v for k, v in optional.items() if v is not None})
        return item

    def _fetch(self, keys: list[dict[str, Any]]) -> list[LedgerEntry]:
        """The entries at `keys`, read consistently, in the order given (gone ones left out)."""
        wanted = [{"pk": k["pk"], "sk": k["sk"]} for k in keys]
        found: dict[tuple[str, str], LedgerEntry] = {}
        client = self._table.meta.client  # the resource's: it takes and gives Python values
        for start in range(0, len(wanted), 100):  # BatchGetItem takes 100 keys
            pending: dict[str, Any] = {
                self._table.name: {
                    "Keys": wanted[start : start + 100],
                    "ConsistentRead": True,
                    "ProjectionExpression": "doc",
                }
            }
            for attempt in range(MAX_CONFLICT_RETRIES):
                if not pending:
                    break
                if attempt:  # keys DynamoDB left unprocessed (throttled): back off, ask again
                    time.sleep(min(1.0, 0.05 * 2**attempt))
                page = client.batch_get_item(RequestItems=pending)
                for item in page["Responses"].get(self._table.name, []):
                    entry = LedgerEntry.model_validate_json(item["doc"])
                    found[(pk(entry.biz_id, entry.room_id), entry.session)] = entry
                pending = page.get("UnprocessedKeys") or {}
            if pending:
                raise LedgerConflict("ledger: DynamoDB kept refusing a batch read; retried")
        return [found[(k["pk"], k["sk"])] for k in wanted if (k["pk"], k["sk"]) in found]

    # -------------------------------------------------------------- queries

    def _keys(self, limit: int, **kwargs: Any) -> list[dict[str, Any]]:
        return query_items(self._table, limit, **kwargs)

    def _by_index(
        self,
        index: str,
        states: tuple[LedgerState, ...],
        order_by: str,
        limit: int,
        upto: float | None = None,
        newest_first: bool = False,
    ) -> list[LedgerEntry]:
        """The first `limit` entries of `index` over `states` (one query each, merged on the
        range key), then read by key."""
        hash_key = INDEXES[index][0]
        found: list[dict[str, Any]] = []
        for state in states:
            cond = "#h = :h" + (" AND #r <= :t" if upto is not None else "")
            values: dict[str, Any] = {":h": state.value}
            if upto is not None:
                values[":t"] = num(upto)
            found += self._keys(
                limit,
                IndexName=index,
                KeyConditionExpression=cond,
                ExpressionAttributeNames={"#h": hash_key, "#r": order_by}
                if upto is not None
                else {"#h": hash_key},
                ExpressionAttributeValues=values,
                ScanIndexForward=not newest_first,
            )
        found.sort(key=lambda i: i.get(order_by, 0), reverse=newest_first)
        return self._fetch(found[:limit])

    def by_room(self, biz_id: int, room_id: str, limit: int = 100) -> list[LedgerEntry]:
        from boto3.dynamodb.conditions import Key

        items = self._keys(
            limit, KeyConditionExpression=Key("pk").eq(pk(biz_id, room_id)), ConsistentRead=True
        )
        found = [LedgerEntry.model_validate_json(i["doc"]) for i in items]
        return sorted(found, key=lambda e: e.created_at)

    def newest_session(self, biz_id: int, room_id: str, prefix: str) -> LedgerEntry | None:
        return newest_with_prefix(self._table, pk(biz_id, room_id), prefix)

    def open_sessions(self, biz_id: int, room_id: str, limit: int = 20) -> list[SessionRef]:
        items = self._keys(
            limit,
            IndexName="room-open",
            KeyConditionExpression="open_room = :r",
            ExpressionAttributeValues={":r": pk(biz_id, room_id)},
            ScanIndexForward=False,
        )
        return [
            SessionRef(
                biz_id=biz_id, room_id=room_id, session=i["sk"], created_at=float(i["created_at"])
            )
            for i in items
        ]

    def task_sessions(self, biz_id: int, task_id: str, limit: int = 10) -> list[SessionRef]:
        items = self._keys(
            limit,
            IndexName="task",
            KeyConditionExpression="task_id = :t",
            ExpressionAttributeValues={":t": task_id},
        )
        prefix = f"{biz_id}#"
        refs = [
            SessionRef(
                biz_id=biz_id,
                room_id=i["pk"][len(prefix) :],
                session=i["sk"],
                created_at=float(i.get("created_at", 0)),
                closed="closed_at" in i,
            )
            for i in items
            if i["pk"].startswith(prefix)  # TaskIds are GME's; keep to this app's
        ]
        return sorted(refs, key=lambda r: r.created_at, reverse=True)

    def count_open(self, rule: str) -> int:
        kwargs: dict[str, Any] = {
            "IndexName": "open-rule",
            "KeyConditionExpression": "open_rule = :r",
            "ExpressionAttributeValues": {":r": rule},
            "Select": "COUNT",
            "Limit": 1000,
        }
        total = 0
        while True:
            page = self._table.query(**kwargs)
            total += int(page["Count"])
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def rule_page(
        self, rule: str, limit: int, after: str | None = None
    ) -> tuple[list[LedgerEntry], str | None]:
        kwargs: dict[str, Any] = {
            "IndexName": "open-rule",
            "KeyConditionExpression": "open_rule = :r",
            "ExpressionAttributeValues": {":r": rule},
            "Limit": limit,
        }
        if after:
            kwargs["ExclusiveStartKey"] = json.loads(after)
        page = self._table.query(**kwargs)
        # The index may lag its entries by a moment: the entries read are the truth.
        found = [e for e in self._fetch(page["Items"]) if e.rule == rule]
        last = page.get("LastEvaluatedKey")
        return found, json.dumps(last, sort_keys=True) if last else None

    def by_state(self, state: LedgerState | None = None, limit: int = 1000) -> list[LedgerEntry]:
        states = (state,) if state is not None else tuple(LedgerState)
        return self._by_index("state-updated", states, "updated_at", limit, newest_first=True)

    def nearing_cap(self, started_before: float, limit: int) -> list[LedgerEntry]:
        return self._by_index(
            "state-started", (LedgerState.RECORDING,), "task_started_at", limit, started_before
        )

    def ending(self, now: float, limit: int) -> list[LedgerEntry]:
        return self._by_index("state-ends", OPEN_STATES, "ends_at", limit, now)

    def due_for_check(self, checked_before: float, limit: int) -> list[LedgerEntry]:
        states = (*OPEN_STATES, LedgerState.FAILED)  # only retryable failures carry `due`
        return self._by_index("due-checked", states, "checked_at", limit, checked_before)

    def purge_expired(self, now: float) -> int:
        return 0  # DynamoDB's TTL deletes expired items itself

    def create_table(self) -> None:
        """Create the table as the deployment does (tests and local moto_server runs)."""
        create_table(self._table)


def _creates(entry: LedgerEntry | None) -> bool:
    """Whether a change applied to "absent" made a first decision: what a new room's first
    write does. Only then is "absent" a good guess; a failed conditional put is billed like
    a write, so for anything else (a close, an outcome) the adapter reads first."""
    return entry is not None and entry.state in (LedgerState.STARTING, LedgerState.SKIPPED)


def _parse(item: dict[str, Any] | None) -> tuple[LedgerEntry | None, int]:
    if not item:
        return None, 0
    return LedgerEntry.model_validate_json(item["doc"]), int(item["version"])


def _parse_raw(item: dict[str, Any] | None) -> tuple[LedgerEntry | None, int]:
    """The same from DynamoDB's wire form (what a failed condition returns)."""
    if not item:
        return None, 0
    return LedgerEntry.model_validate_json(item["doc"]["S"]), int(item["version"]["N"])
