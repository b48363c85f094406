"""The outbox in the SQLite ledger file: a table of its own beside `ledger`.

Same file, same connections (`sqlite_files`), so a local run or a single host keeps its
undelivered events where it keeps its recordings. Every call is one autocommit statement.
"""

from __future__ import annotations

import os
import sqlite3

from handler.adapters.sqlite_files import ThreadConnections
from handler.domain.outbox import OutboxItem

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS outbox (event_id TEXT NOT NULL, sink TEXT NOT NULL,"
    " created_at REAL NOT NULL, next_at REAL NOT NULL, doc TEXT NOT NULL,"
    " PRIMARY KEY (event_id, sink))",
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_at)",
)


class SQLiteOutbox:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._files = ThreadConnections(path, _SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._files.get()

    def put(self, item: OutboxItem) -> None:
        self._conn().execute(
            "INSERT INTO outbox (event_id, sink, created_at, next_at, doc) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (event_id, sink) DO UPDATE SET next_at = excluded.next_at,"
            " doc = excluded.doc",
            (item.event_id, item.sink, item.created_at, item.next_at, item.model_dump_json()),
        )

    def due(self, now: float, limit: int) -> list[OutboxItem]:
        rows = self._conn().execute(
            "SELECT doc FROM outbox WHERE next_at <= ? ORDER BY created_at, event_id, sink LIMIT ?",
            (now, limit),
        )
        return [OutboxItem.model_validate_json(doc) for (doc,) in rows]

    def delete(self, event_id: str, sink: str) -> None:
        self._conn().execute("DELETE FROM outbox WHERE event_id = ? AND sink = ?", (event_id, sink))

    def close(self) -> None:
        self._files.close()
