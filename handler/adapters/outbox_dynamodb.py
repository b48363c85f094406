"""The outbox in the DynamoDB ledger table, under a key of its own.

Items: `pk` = "outbox" (no ledger key looks like it: theirs are "{biz_id}#{room_id}"), `sk` =
"{event_id}#{sink}", `next_at`, the item as JSON in `doc`, and `expiration` (the table's TTL)
a day after the item itself expires, so an outbox nobody flushes still empties. They carry none
of the ledger's index attributes, so no ledger index sees them. The outbox holds only what
could not be delivered, so one partition, read with a filter on `next_at`, is enough.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from handler.adapters.ledger_table import open_table
from handler.domain.outbox import OutboxItem

PARTITION = "outbox"
TTL_GRACE_SECONDS = 86_400


class DynamoDBOutbox:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table = open_table(table_name, client)

    @staticmethod
    def _key(event_id: str, sink: str) -> dict[str, str]:
        return {"pk": PARTITION, "sk": f"{event_id}#{sink}"}

    def put(self, item: OutboxItem) -> None:
        self._table.put_item(
            Item={
                **self._key(item.event_id, item.sink),
                "next_at": Decimal(repr(item.next_at)),
                "created_at": Decimal(repr(item.created_at)),
                "expiration": int(item.expires_at) + TTL_GRACE_SECONDS,
                "doc": item.model_dump_json(),
            }
        )

    def due(self, now: float, limit: int) -> list[OutboxItem]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :p",
            "FilterExpression": "next_at <= :t",
            "ExpressionAttributeValues": {":p": PARTITION, ":t": Decimal(repr(now))},
            "ConsistentRead": True,
        }
        found: list[OutboxItem] = []
        while True:
            page = self._table.query(**kwargs)
            found.extend(OutboxItem.model_validate_json(i["doc"]) for i in page["Items"])
            if "LastEvaluatedKey" not in page or len(found) >= 10 * limit:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(found, key=lambda i: (i.created_at, i.event_id, i.sink))[:limit]

    def delete(self, event_id: str, sink: str) -> None:
        self._table.delete_item(Key=self._key(event_id, sink))
