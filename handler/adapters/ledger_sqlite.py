"""Recording ledger in one SQLite file (embedded default; local runs, tests, single hosts).

The whole entry is stored as JSON beside the columns the queries need. `update` is a
read-modify-write inside `BEGIN IMMEDIATE`, which takes the file's write lock before reading,
so concurrent threads and processes (WAL, busy_timeout) apply their changes one after another
and each sees the previous one: a close and a start racing on one session cannot both miss.
Terminal entries get an `expires_at` (TTL); open ones never expire; `purge_expired` deletes.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from handler.adapters.sqlite_files import ThreadConnections
from handler.domain.ledger import (
    COUNTED_STATES,
    OPEN_STATES,
    Change,
    LedgerEntry,
    LedgerState,
    sweepable,
)

BUSY_TIMEOUT_MS = 10_000
_COLUMNS = (
    "biz_id, room_id, session, state, task_id, task_started_at, ends_at, closed_at,"
    " checked_at, retryable, created_at, updated_at, expires_at, doc"
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ledger (biz_id INTEGER NOT NULL, room_id TEXT NOT NULL,"
    " session TEXT NOT NULL, state TEXT NOT NULL, task_id TEXT, task_started_at REAL,"
    " ends_at REAL, closed_at REAL, checked_at REAL NOT NULL, retryable INTEGER NOT NULL,"
    " created_at REAL NOT NULL, updated_at REAL NOT NULL, expires_at INTEGER, doc TEXT NOT NULL,"
    " PRIMARY KEY (biz_id, room_id, session))",
    "CREATE INDEX IF NOT EXISTS ledger_state ON ledger (state, checked_at)",
    "CREATE INDEX IF NOT EXISTS ledger_expires ON ledger (expires_at)",
    # On the document itself, so files written before the index existed need no migration.
    "CREATE INDEX IF NOT EXISTS ledger_rule ON ledger (json_extract(doc, '$.rule'), state)",
)
# An upsert, not INSERT OR REPLACE: REPLACE deletes the row and inserts it again, which rewrites
# every index twice on each update (measured: 20 % of an update's time).
_UPSERT = (  # built from the constant column list only; values travel as parameters
    f"INSERT INTO ledger ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
    " ON CONFLICT (biz_id, room_id, session) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.replace(" ", "").split(",")[3:])
)
_OPEN = tuple(s.value for s in OPEN_STATES)
_COUNTED = tuple(s.value for s in COUNTED_STATES)
_COUNT_OPEN = (  # placeholders only; the rule and states travel as parameters
    "SELECT COUNT(*) FROM ledger WHERE json_extract(doc, '$.rule') = ?"  # noqa: S608
    f" AND state IN ({', '.join('?' for _ in _COUNTED)})"
)
_OPEN_SQL = ", ".join("?" for _ in _OPEN)


def expiry(entry: LedgerEntry, ttl_seconds: int) -> int | None:
    """Open (or retryable) entries never expire: the sweep still needs them."""
    return None if sweepable(entry) else int(entry.updated_at + ttl_seconds)


class SQLiteLedger:
    def __init__(self, path: str | os.PathLike[str], ttl_seconds: int = 30 * 86400) -> None:
        self.path = Path(path)
        self.ttl_seconds = ttl_seconds
        self._files = ThreadConnections(path, _SCHEMA, busy_timeout_ms=BUSY_TIMEOUT_MS)

    def _conn(self) -> sqlite3.Connection:
        return self._files.get()

    def close(self) -> None:
        self._files.close()

    # ----------------------------------------------------------------- port

    def get(self, biz_id: int, room_id: str, session: str) -> LedgerEntry | None:
        row = (
            self._conn()
            .execute(
                "SELECT doc FROM ledger WHERE biz_id = ? AND room_id = ? AND session = ?",
                (biz_id, room_id, session),
            )
            .fetchone()
        )
        return LedgerEntry.model_validate_json(row[0]) if row else None

    def update(self, biz_id: int, room_id: str, session: str, change: Change) -> LedgerEntry | None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT doc FROM ledger WHERE biz_id = ? AND room_id = ? AND session = ?",
                (biz_id, room_id, session),
            ).fetchone()
            current = LedgerEntry.model_validate_json(row[0]) if row else None
            updated = change(current)
            if updated is not None:
                self._write(conn, updated)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return updated if updated is not None else current

    def _write(self, conn: sqlite3.Connection, e: LedgerEntry) -> None:
        conn.execute(
            _UPSERT,
            (
                e.biz_id,
                e.room_id,
                e.session,
                e.state.value,
                e.task_id,
                e.task_started_at,
                e.ends_at,
                e.closed_at,
                e.checked_at,
                int(e.retryable),
                e.created_at,
                e.updated_at,
                expiry(e, self.ttl_seconds),
                e.model_dump_json(),
            ),
        )

    def _select(self, where: str, params: tuple[object, ...]) -> list[LedgerEntry]:
        # `where` is always one of the constant clauses below; values travel as parameters.
        sql = f"SELECT doc FROM ledger WHERE {where}"  # noqa: S608
        rows = self._conn().execute(sql, params).fetchall()
        return [LedgerEntry.model_validate_json(r[0]) for r in rows]

    def count_open(self, rule: str) -> int:
        row = self._conn().execute(_COUNT_OPEN, (rule, *_COUNTED)).fetchone()
        return int(row[0])

    def by_room(self, biz_id: int, room_id: str) -> list[LedgerEntry]:
        return self._select("biz_id = ? AND room_id = ? ORDER BY created_at", (biz_id, room_id))

    def by_state(self, state: LedgerState | None = None, limit: int = 1000) -> list[LedgerEntry]:
        if state is None:
            return self._select("1 ORDER BY updated_at DESC LIMIT ?", (limit,))
        return self._select("state = ? ORDER BY updated_at DESC LIMIT ?", (state.value, limit))

    def nearing_cap(self, started_before: float, limit: int) -> list[LedgerEntry]:
        return self._select(
            "state = ? AND task_started_at IS NOT NULL AND task_started_at <= ?"
            " ORDER BY task_started_at LIMIT ?",
            (LedgerState.RECORDING.value, started_before, limit),
        )

    def ending(self, now: float, limit: int) -> list[LedgerEntry]:
        return self._select(
            f"state IN ({_OPEN_SQL}) AND closed_at IS NULL AND ends_at IS NOT NULL"
            " AND ends_at <= ? ORDER BY ends_at LIMIT ?",
            (*_OPEN, now, limit),
        )

    def due_for_check(self, checked_before: float, limit: int) -> list[LedgerEntry]:
        return self._select(
            f"(state IN ({_OPEN_SQL}) OR (state = ? AND retryable = 1)) AND checked_at <= ?"
            " ORDER BY checked_at LIMIT ?",
            (*_OPEN, LedgerState.FAILED.value, checked_before, limit),
        )

    def purge_expired(self, now: float) -> int:
        cursor = self._conn().execute(
            "DELETE FROM ledger WHERE expires_at IS NOT NULL AND expires_at < ?", (now,)
        )
        return cursor.rowcount
