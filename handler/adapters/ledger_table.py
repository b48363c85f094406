"""The DynamoDB ledger table's layout and the reads both table layouts share.

The layout (keys, sparse indexes, TTL) is what serverless.yml deploys; `create_table` builds
the same for tests and local moto_server runs, and a test holds the two equal. The query
helpers serve the current table (`ledger_dynamodb`) and the previous one, read during an
upgrade (`ledger_fallback`), which share the item's `pk`/`sk`/`doc` form.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from handler.domain.ledger import LedgerEntry

#: Items asked for per query page (every query passes a Limit).
PAGE = 100
#: Secondary indexes, as serverless.yml declares them (a test holds the two equal):
#: name -> (hash key, range key, projection, extra projected attributes).
INDEXES: dict[str, tuple[str, str | None, str, tuple[str, ...]]] = {
    # The sweep's queue: only open or retryably failed entries carry `due` (= their state).
    "due-checked": ("due", "checked_at", "KEYS_ONLY", ()),
    "state-updated": ("state", "updated_at", "KEYS_ONLY", ()),
    "state-started": ("state", "task_started_at", "KEYS_ONLY", ()),
    "state-ends": ("state", "ends_at", "KEYS_ONLY", ()),
    # Counted (starting, recording) sessions of a rule, for max_concurrent caps.
    "open-rule": ("open_rule", None, "KEYS_ONLY", ()),
    # A room's sessions a close may still end: `open_room` (= pk) while open.
    "room-open": ("open_room", "created_at", "KEYS_ONLY", ()),
    # Which sessions a task belongs to (GME callbacks, a task shared by two sessions).
    "task": ("task_id", None, "INCLUDE", ("created_at", "closed_at")),
}
_STRING_KEYS = {"pk", "sk", "state", "due", "open_rule", "open_room", "task_id"}


def open_table(table_name: str, client: Any = None) -> Any:
    """The boto3 Table on `client` (a DynamoDB resource), or on a default one; boto3 is
    imported only here, so the SQLite path never pays for it."""
    if client is None:
        import boto3

        client = boto3.resource("dynamodb")
    return client.Table(table_name)


def pk(biz_id: int, room_id: str) -> str:
    return f"{biz_id}#{room_id}"


def item_key(biz_id: int, room_id: str, session: str) -> dict[str, str]:
    return {"pk": pk(biz_id, room_id), "sk": session}


def num(value: float | None) -> Decimal | None:
    """A number as DynamoDB takes it (boto3 refuses floats)."""
    return None if value is None else Decimal(repr(float(value)))


def query_items(table: Any, limit: int, **kwargs: Any) -> list[dict[str, Any]]:
    """Up to `limit` items of a query, page by page, each page asking for no more than is
    still wanted (so a query never reads past what its caller takes)."""
    out: list[dict[str, Any]] = []
    while len(out) < limit:
        page = table.query(Limit=min(PAGE, limit - len(out)), **kwargs)
        out.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return out


def newest_with_prefix(table: Any, pk: str, prefix: str) -> LedgerEntry | None:
    """The item of `pk` with the greatest sort key starting with `prefix`: one item read."""
    from boto3.dynamodb.conditions import Key

    page = table.query(
        KeyConditionExpression=Key("pk").eq(pk) & Key("sk").begins_with(prefix),
        ScanIndexForward=False,
        Limit=1,
        ConsistentRead=True,
    )
    return LedgerEntry.model_validate_json(page["Items"][0]["doc"]) if page["Items"] else None


def create_table(table: Any) -> None:
    """Create the table as the deployment does, and wait until it is there."""
    client = table.meta.client
    keyed = {a for h, r, _, _ in INDEXES.values() for a in (h, r) if a is not None}
    client.create_table(
        TableName=table.name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S" if a in _STRING_KEYS else "N"}
            for a in sorted(keyed | {"pk", "sk"})
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": name,
                "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"}]
                + ([{"AttributeName": range_key, "KeyType": "RANGE"}] if range_key else []),
                "Projection": {"ProjectionType": projection}
                | ({"NonKeyAttributes": list(extra)} if extra else {}),
            }
            for name, (hash_key, range_key, projection, extra) in INDEXES.items()
        ],
    )
    client.get_waiter("table_exists").wait(TableName=table.name)
    client.update_time_to_live(
        TableName=table.name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
    )
