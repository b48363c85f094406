"""Build the recording ledger named by `LEDGER_STORE` (or derived from `IDEMPOTENCY_STORE`).

- `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`: embedded file (WAL).
- `dynamodb://TABLE`: DynamoDB table (boto3 honours `AWS_ENDPOINT_URL_DYNAMODB` for moto).
- `dynamodb://TABLE?fallback=OLD`: the same, reading entries of the previous table layout from
  `OLD` until they have moved or expired (`handler/adapters/ledger_fallback.py`).

Unset, the ledger sits beside the idempotency store: `ledger.db` next to its SQLite file, or the
table `<idempotency table>-ledger`. A Redis idempotency store needs `LEDGER_STORE` set.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qs, urlsplit

from handler.domain.ledger import Ledger

_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


class LedgerUrlError(ValueError):
    """`LEDGER_STORE` is malformed or cannot be derived."""


def default_ledger_url(idempotency_store: str) -> str:
    if idempotency_store.startswith("sqlite:///"):
        path = idempotency_store[len("sqlite:///") :]
        return "sqlite:///" + os.path.join(os.path.dirname(path), "ledger.db")
    if idempotency_store.startswith("dynamodb://"):
        return idempotency_store + "-ledger"
    raise LedgerUrlError("LEDGER_STORE: set it (sqlite:///path or dynamodb://TABLE) for this store")


def build_ledger(url: str, ttl_seconds: int) -> Ledger:
    if url.startswith("sqlite:///"):
        from handler.adapters.ledger_sqlite import SQLiteLedger

        path = url[len("sqlite:///") :]
        if not path:
            raise LedgerUrlError("LEDGER_STORE: sqlite URL needs a path")
        return SQLiteLedger(path, ttl_seconds)
    parts = urlsplit(url)
    if parts.scheme == "dynamodb" and _TABLE.match(parts.netloc) and parts.path in ("", "/"):
        from handler.adapters.ledger_dynamodb import DynamoDBLedger

        query = parse_qs(parts.query, keep_blank_values=True)
        fallback = query.pop("fallback", [])
        if query or len(fallback) > 1 or (fallback and not _TABLE.match(fallback[0])):
            raise LedgerUrlError("LEDGER_STORE: the only option is ?fallback=TABLE")
        ledger = DynamoDBLedger(parts.netloc, ttl_seconds)
        if not fallback:
            return ledger
        from handler.adapters.ledger_fallback import FallbackLedger, LegacyTable

        return FallbackLedger(ledger, LegacyTable(fallback[0]))
    raise LedgerUrlError(
        f"LEDGER_STORE: expected sqlite:///path or dynamodb://TABLE, got scheme {parts.scheme!r}"
    )
