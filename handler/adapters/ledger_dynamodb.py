"""Recording ledger in a DynamoDB table (deployed).

Item: `pk` = "{biz_id}#{room_id}", `sk` = session, the query attributes, the whole entry as JSON
in `doc`, a `version` counter and `expiration` (the table's TTL attribute; absent on open
entries). `update` is optimistic: read (consistent), apply the change, put on condition that
`version` is unchanged, retry on conflict, so concurrent writers never lose each other's change.

Table (see docs/lifecycle.md): key pk (S, hash) + sk (S, range); global secondary indexes
`state-checked` (state, checked_at), `state-started` (state, task_started_at) and
`state-ends` (state, ends_at), all projecting ALL; TTL on `expiration`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from handler.adapters.ledger_sqlite import expiry
from handler.domain.ledger import COUNTED_STATES, OPEN_STATES, Change, LedgerEntry, LedgerState

MAX_CONFLICT_RETRIES = 20
#: Secondary indexes, as serverless.yml declares them (a test holds the two equal):
#: name -> (hash key, range key, projection).
INDEXES: dict[str, tuple[str, str | None, str]] = {
    "state-checked": ("state", "checked_at", "ALL"),
    "state-started": ("state", "task_started_at", "ALL"),
    "state-ends": ("state", "ends_at", "ALL"),
    "open-rule": ("open_rule", None, "KEYS_ONLY"),
}


class LedgerConflict(RuntimeError):
    """Too many concurrent writers on one entry; the caller's delivery is retried."""


def _num(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(float(value)))


class DynamoDBLedger:
    def __init__(self, table_name: str, ttl_seconds: int = 30 * 86400, client: Any = None) -> None:
        if client is None:
            import boto3  # lazily: the SQLite path never pays for boto3

            client = boto3.resource("dynamodb")
        self._table = client.Table(table_name)
        self.ttl_seconds = ttl_seconds

    @staticmethod
    def _key(biz_id: int, room_id: str, session: str) -> dict[str, str]:
        return {"pk": f"{biz_id}#{room_id}", "sk": session}

    def get(self, biz_id: int, room_id: str, session: str) -> LedgerEntry | None:
        item = self._table.get_item(
            Key=self._key(biz_id, room_id, session), ConsistentRead=True
        ).get("Item")
        return LedgerEntry.model_validate_json(item["doc"]) if item else None

    def update(self, biz_id: int, room_id: str, session: str, change: Change) -> LedgerEntry | None:
        from botocore.exceptions import ClientError

        key = self._key(biz_id, room_id, session)
        for _ in range(MAX_CONFLICT_RETRIES):
            item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
            current = LedgerEntry.model_validate_json(item["doc"]) if item else None
            updated = change(current)
            if updated is None:
                return current
            version = int(item["version"]) if item else 0
            condition: dict[str, Any] = (
                {
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": version},
                }
                if item
                else {"ConditionExpression": "attribute_not_exists(pk)"}
            )
            try:
                self._table.put_item(Item=self._item(updated, version + 1), **condition)
                return updated
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        raise LedgerConflict(f"ledger entry {biz_id}/{room_id}/{session}: too many conflicts")

    def _item(self, e: LedgerEntry, version: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            **self._key(e.biz_id, e.room_id, e.session),
            "state": e.state.value,
            "checked_at": _num(e.checked_at),
            "created_at": _num(e.created_at),
            "updated_at": _num(e.updated_at),
            "retryable": e.retryable,
            "version": version,
            "doc": e.model_dump_json(),
        }
        optional = {
            # Only while counted: the sparse `open-rule` index then holds exactly the sessions
            # a cap counts, and a count reads the rule's own, never the whole fleet's.
            "open_rule": e.rule if e.state in COUNTED_STATES and e.rule else None,
            "task_id": e.task_id,
            "task_started_at": _num(e.task_started_at),
            "ends_at": _num(e.ends_at) if e.closed_at is None else None,
            "closed_at": _num(e.closed_at),
            "expiration": expiry(e, self.ttl_seconds),
        }
        item.update({k: v for k, v in optional.items() if v is not None})
        return item

    def _query(
        self,
        index: str,
        state: LedgerState,
        cond: str,
        values: dict[str, Any],
        limit: int,
        filter_expr: str | None = None,
    ) -> list[LedgerEntry]:
        found: list[LedgerEntry] = []
        kwargs: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": f"#s = :s{' AND ' + cond if cond else ''}",
            "ExpressionAttributeNames": {"#s": "state"},
            "ExpressionAttributeValues": {":s": state.value, **values},
        }
        if filter_expr:
            kwargs["FilterExpression"] = filter_expr
        while len(found) < limit:
            page = self._table.query(**kwargs)
            found.extend(LedgerEntry.model_validate_json(i["doc"]) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found[:limit]

    def count_open(self, rule: str) -> int:
        kwargs: dict[str, Any] = {
            "IndexName": "open-rule",
            "KeyConditionExpression": "open_rule = :r",
            "ExpressionAttributeValues": {":r": rule},
            "Select": "COUNT",
        }
        total = 0
        while True:
            page = self._table.query(**kwargs)
            total += int(page["Count"])
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def by_room(self, biz_id: int, room_id: str) -> list[LedgerEntry]:
        from boto3.dynamodb.conditions import Key

        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(f"{biz_id}#{room_id}"),
            "ConsistentRead": True,
        }
        found: list[LedgerEntry] = []
        while True:
            page = self._table.query(**kwargs)
            found.extend(LedgerEntry.model_validate_json(i["doc"]) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(found, key=lambda e: e.created_at)

    def by_state(self, state: LedgerState | None = None, limit: int = 1000) -> list[LedgerEntry]:
        states = [state] if state is not None else list(LedgerState)
        found = [e for s in states for e in self._query("state-checked", s, "", {}, limit)]
        return sorted(found, key=lambda e: e.updated_at, reverse=True)[:limit]

    def nearing_cap(self, started_before: float, limit: int) -> list[LedgerEntry]:
        found = self._query(
            "state-started",
            LedgerState.RECORDING,
            "task_started_at <= :t",
            {":t": _num(started_before)},
            limit,
        )
        return found

    def ending(self, now: float, limit: int) -> list[LedgerEntry]:
        found = [
            e
            for s in OPEN_STATES
            for e in self._query("state-ends", s, "ends_at <= :t", {":t": _num(now)}, limit)
        ]
        return sorted(found, key=lambda e: e.ends_at or 0.0)[:limit]

    def due_for_check(self, checked_before: float, limit: int) -> list[LedgerEntry]:
        cond, values = "checked_at <= :t", {":t": _num(checked_before)}
        found = [
            e for s in OPEN_STATES for e in self._query("state-checked", s, cond, values, limit)
        ]
        found += self._query(
            "state-checked",
            LedgerState.FAILED,
            cond,
            {**values, ":r": True},
            limit,
            filter_expr="retryable = :r",
        )
        return sorted(found, key=lambda e: e.checked_at)[:limit]

    def purge_expired(self, now: float) -> int:
        return 0  # DynamoDB's TTL deletes expired items itself

    def create_table(self) -> None:
        """Create the table as the deployment does (tests and local moto_server runs)."""
        client = self._table.meta.client
        types = {"pk": "S", "sk": "S", "state": "S", "open_rule": "S"}
        keyed = {a for h, r, _ in INDEXES.values() for a in (h, r) if a is not None}
        client.create_table(
            TableName=self._table.name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": a, "AttributeType": types.get(a, "N")}
                for a in sorted(keyed | {"pk", "sk"})
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": name,
                    "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"}]
                    + ([{"AttributeName": range_key, "KeyType": "RANGE"}] if range_key else []),
                    "Projection": {"ProjectionType": projection},
                }
                for name, (hash_key, range_key, projection) in INDEXES.items()
            ],
        )
        client.get_waiter("table_exists").wait(TableName=self._table.name)
        client.update_time_to_live(
            TableName=self._table.name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
        )
